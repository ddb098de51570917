//! A consumer group's channel of [`Notice`]s ([`Notifications`], made by
//! [`crate::Consumer::notifications`]): how many items the group will never
//! read, by cause, delivered out of band. The counts live in the group
//! (`group.rs`); this receiver takes them. It is not generic: it reaches its
//! group through a `dyn NoticeSource`, so one type serves every payload.

use crate::engine::Engine;
use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::group::Group;
use crate::sync::Arc;
use crate::wait::Signal;
#[cfg(feature = "async")]
use crate::wait::{AsyncWait, Next};
use std::fmt;
use std::time::{Duration, Instant, SystemTime};
#[cfg(feature = "async")]
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};
use uuid::Uuid;

/// One notice: items a consumer will never read, by cause, and when the
/// latest of them was counted.
///
/// # Examples
///
/// ```
/// let mut n = chunkq::Notice::default();
/// n.expired = 1;
/// assert_eq!(n.total(), 1);
/// assert_eq!(n.at, std::time::UNIX_EPOCH);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Notice {
    /// Items that expired unread since the previous notice.
    pub expired: u64,
    /// Items evicted unread since the previous notice.
    pub evicted: u64,
    /// Items abandoned since the previous notice (see
    /// [`Missed::abandoned`]; serialized only when not 0).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "crate::consumer::is_zero")
    )]
    pub abandoned: u64,
    /// When the latest of them was counted.
    pub at: SystemTime,
}

impl Default for Notice {
    /// No item, at the Unix epoch.
    fn default() -> Self {
        Self {
            expired: 0,
            evicted: 0,
            abandoned: 0,
            at: SystemTime::UNIX_EPOCH,
        }
    }
}

impl Notice {
    /// `expired + evicted + abandoned`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut n = chunkq::Notice::default();
    /// (n.expired, n.evicted) = (1, 2);
    /// assert_eq!(n.total(), 3);
    /// ```
    #[must_use]
    pub fn total(&self) -> u64 {
        self.expired + self.evicted + self.abandoned
    }
}

/// What a [`Notifications`] receiver needs of its group, without the payload
/// type.
trait NoticeSource: Send + Sync {
    /// Counts what removals passed since the group last looked, then takes
    /// the pending counts: `(expired, evicted, abandoned, time of the
    /// latest)`.
    fn take(&self) -> (u64, u64, u64, u64);
    /// Whether something may be pending (a counted miss not taken yet, or a
    /// cursor below `head`); SeqCst loads, as a waiter's re-check needs.
    fn pending(&self) -> bool;
    /// Whether no more notices are expected: the queue is closed or every
    /// `Consumer` handle of the group dropped.
    fn over(&self) -> bool;
    /// The signal notified when a miss is counted or the end comes.
    fn signal(&self) -> &Signal;
    /// The group's UUID.
    fn id(&self) -> Uuid;
}

/// A group of a queue of `T`, as a [`NoticeSource`].
struct GroupNotices<T: Send + Sync + 'static> {
    /// The queue's shared state.
    shared: Arc<Engine<T>>,
    /// The group whose misses are reported.
    group: Arc<Group<T>>,
}

impl<T: Send + Sync + 'static> NoticeSource for GroupNotices<T> {
    fn take(&self) -> (u64, u64, u64, u64) {
        // Cursors below `head` are caught up lazily (see `log/mod.rs`).
        self.shared.log.catch_up(&self.group);
        let (expired, evicted, at) = self.group.take_pending();
        let abandoned = self.group.take_pending_abandoned();
        (expired, evicted, abandoned, at)
    }

    fn pending(&self) -> bool {
        // SeqCst loads: the eventcount's re-check (see `wait.rs`); the
        // changes are `count_missed`'s and `count_abandoned`'s `fetch_add`s
        // and a removal's `head` CAS (which may leave this group's cursor
        // below `head`: misses not counted yet), each followed by a notify
        // of the log's `noticed` signal.
        self.group.has_pending()
            || self.group.has_pending_abandoned()
            || self.group.cursor() < self.shared.log.head_seq()
    }

    fn over(&self) -> bool {
        // SeqCst loads: `close`'s `fetch_or` and the last consumer handle's
        // `fetch_sub` are followed by a notify of `noticed`.
        self.shared.log.is_closed() || self.group.handles() == 0
    }

    fn signal(&self) -> &Signal {
        &self.shared.log.noticed
    }

    fn id(&self) -> Uuid {
        self.group.id()
    }
}

/// The receiving end of a consumer group's notices (see
/// [`crate::Consumer::notifications`]). Not generic: the same type for every
/// payload type. Receivers of one group compete, like clones of a consumer.
///
/// Notices nobody has received yet coalesce into one: a consumer that never
/// looks at its notices costs a few counters, never a growing buffer. So the
/// number of notices depends on how often they are received, but their sum is
/// exact, and equals the growth of [`crate::Consumer::missed`].
///
/// The receives tell "nothing yet" from "no more", as a consumer's do:
/// `Empty` / `Timeout` when no notice is pending; `Closed` (`RecvError`)
/// when none is pending and none is expected, because the queue is closed
/// or every [`crate::Consumer`] handle of the group dropped. (Items a closed
/// queue still retains can still expire: a later call may then find a
/// notice after all.)
///
/// # Examples
///
/// ```
/// use chunkq::{Overflow, Queue, TryRecvError};
/// let q: Queue<u64> = Queue::builder("a").memory_limit(600).overflow(Overflow::DropOldest).build().unwrap();
/// let c = q.subscribe();
/// let notices = c.notifications();
/// assert_eq!(notices.try_recv().unwrap_err(), TryRecvError::Empty);
/// for i in 0..50 { q.push(i).unwrap(); }
/// let evicted: u64 = notices.try_iter().map(|n| n.evicted).sum();
/// assert_eq!(evicted, c.missed().evicted);
/// q.close();
/// assert_eq!(notices.try_recv().unwrap_err(), TryRecvError::Closed);
/// ```
pub struct Notifications {
    /// The group, type-erased.
    source: std::sync::Arc<dyn NoticeSource>,
}

impl Notifications {
    /// The receiver of `group`'s notices.
    pub(crate) fn new<T: Send + Sync + 'static>(
        shared: Arc<Engine<T>>,
        group: Arc<Group<T>>,
    ) -> Self {
        Self {
            source: std::sync::Arc::new(GroupNotices { shared, group }),
        }
    }

    /// The pending notice, if any.
    fn take(&self) -> Option<Notice> {
        let (expired, evicted, abandoned, at) = self.source.take();
        if expired == 0 && evicted == 0 && abandoned == 0 {
            return None;
        }
        Some(Notice {
            expired,
            evicted,
            abandoned,
            at: crate::clock::to_system_time(at),
        })
    }

    /// Takes the pending notice without blocking.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if none is pending; [`TryRecvError::Closed`]
    /// if none is pending and the queue is closed or every consumer handle
    /// of the group dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Clock, Queue, TryRecvError};
    /// use std::time::Duration;
    /// let clock = Clock::manual();
    /// let q: Queue<u8> = Queue::builder("a").ttl(Duration::from_secs(1)).clock(clock.clone()).build().unwrap();
    /// let c = q.subscribe();
    /// let notices = c.notifications();
    /// assert_eq!(notices.try_recv().unwrap_err(), TryRecvError::Empty);
    /// q.push(1).unwrap();
    /// clock.advance(Duration::from_secs(2));
    /// q.expire_now();
    /// assert_eq!(notices.try_recv().unwrap().expired, 1);
    /// drop(c); // the group's last handle
    /// assert_eq!(notices.try_recv().unwrap_err(), TryRecvError::Closed);
    /// ```
    pub fn try_recv(&self) -> Result<Notice, TryRecvError> {
        if let Some(n) = self.take() {
            return Ok(n);
        }
        if self.source.over() {
            // One more look: a notice counted just before the end.
            return self.take().ok_or(TryRecvError::Closed);
        }
        Err(TryRecvError::Empty)
    }

    /// Blocks until a notice arrives, or none is pending and none is
    /// expected (the queue closed, or every consumer handle of the group
    /// dropped: a thread blocked here wakes up then).
    ///
    /// # Errors
    /// [`RecvError`] when no notice is pending and none is expected.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Overflow, Queue};
    /// let q: Queue<u64> = Queue::builder("a").memory_limit(600).overflow(Overflow::DropOldest).build().unwrap();
    /// let c = q.subscribe();
    /// let notices = c.notifications();
    /// let waiter = std::thread::spawn(move || {
    ///     let mut evicted = 0;
    ///     while let Ok(n) = notices.recv() {
    ///         evicted += n.evicted;
    ///     }
    ///     evicted // ends when the queue closes
    /// });
    /// for i in 0..50 { q.push(i).unwrap(); }
    /// q.close();
    /// assert_eq!(waiter.join().unwrap(), c.missed().evicted);
    /// ```
    pub fn recv(&self) -> Result<Notice, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Waits up to `timeout` for a notice; returns earlier, with
    /// `Closed`, as soon as no notice is pending and none is expected (see
    /// [`Notifications::recv`]).
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if none arrived in time;
    /// [`RecvTimeoutError::Closed`] as above.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::RecvTimeoutError;
    /// use std::time::Duration;
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// let notices = c.notifications();
    /// assert_eq!(
    ///     notices.recv_timeout(Duration::from_millis(1)).unwrap_err(),
    ///     RecvTimeoutError::Timeout,
    /// );
    /// // Closing wakes a blocked receiver at once.
    /// let waiter = std::thread::spawn(move || notices.recv_timeout(Duration::from_secs(3600)));
    /// q.close();
    /// assert_eq!(waiter.join().unwrap().unwrap_err(), RecvTimeoutError::Closed);
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Notice, RecvTimeoutError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// Blocks until a notice, the end, or `deadline` (`None`: none).
    fn recv_until(&self, deadline: Option<Instant>) -> Result<Notice, RecvTimeoutError> {
        let source = &*self.source;
        loop {
            match self.try_recv() {
                Ok(n) => return Ok(n),
                Err(TryRecvError::Closed) => return Err(RecvTimeoutError::Closed),
                Err(TryRecvError::Empty) => {}
            }
            // The eventcount's protocol (`wait.rs`), with `pending` and
            // `over` as the re-check.
            if !source
                .signal()
                .wait_until(|| source.pending() || source.over(), deadline)
            {
                return self.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Closed => RecvTimeoutError::Closed,
                });
            }
        }
    }

    /// An iterator over the pending notices (at most one, since pending
    /// notices coalesce, unless more arrive while iterating).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// assert_eq!(c.notifications().try_iter().count(), 0);
    /// ```
    pub fn try_iter(&self) -> impl Iterator<Item = Notice> + '_ {
        std::iter::from_fn(|| self.try_recv().ok())
    }

    /// One try of an async wait for a notice: a notice, `Err(RecvError)`
    /// at the end, or wait for `noticed`.
    #[cfg(feature = "async")]
    fn try_notice_step(&self) -> Result<Result<Notice, RecvError>, Next> {
        match self.try_recv() {
            Ok(n) => Ok(Ok(n)),
            Err(TryRecvError::Closed) => Ok(Err(RecvError)),
            Err(TryRecvError::Empty) => Err(Next::Wait),
        }
    }

    /// Waits (asynchronously) for a notice: the async
    /// [`Notifications::recv`] (put it in a `select!` with a timer for a
    /// timeout). Cancel-safe: a notice is taken only in the poll that
    /// returns it.
    ///
    /// # Errors
    /// [`RecvError`] as soon as no notice is pending and none is expected.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// use chunkq::{Overflow, Queue};
    /// let q: Queue<u64> = Queue::builder("a").memory_limit(600).overflow(Overflow::DropOldest).build().unwrap();
    /// let c = q.subscribe();
    /// let notices = c.notifications();
    /// for i in 0..20 { q.push(i).unwrap(); } // evicts unread items
    /// let n = notices.recv_async().await.unwrap();
    /// assert_eq!(n.evicted, c.missed().evicted);
    /// q.close();
    /// assert!(notices.recv_async().await.is_err());
    /// # });
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn recv_async(&self) -> impl Future<Output = Result<Notice, RecvError>> + Send + '_ {
        NoticeAsync {
            notifications: self,
            wait: AsyncWait::new(),
        }
    }

    /// These notifications as a [`Stream`](futures_core::Stream) of
    /// [`Notice`]s, which ends when [`Notifications::recv_async`] would
    /// return `Err`.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// use chunkq::{Overflow, Queue};
    /// use futures_core::Stream;
    /// use std::pin::pin;
    ///
    /// let q: Queue<u64> = Queue::builder("a").memory_limit(600).overflow(Overflow::DropOldest).build().unwrap();
    /// let c = q.subscribe();
    /// let mut notices = pin!(c.notifications().into_stream());
    /// for i in 0..20 { q.push(i).unwrap(); }
    /// q.close();
    /// let mut evicted = 0;
    /// while let Some(n) = std::future::poll_fn(|cx| notices.as_mut().poll_next(cx)).await {
    ///     evicted += n.evicted;
    /// }
    /// assert_eq!(evicted, c.missed().evicted);
    /// # });
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn into_stream(self) -> impl futures_core::Stream<Item = Notice> + Send + Unpin {
        NoticeStream {
            notifications: self,
            wait: AsyncWait::new(),
        }
    }
}

/// The future of [`Notifications::recv_async`].
#[cfg(feature = "async")]
struct NoticeAsync<'a> {
    /// The receiver.
    notifications: &'a Notifications,
    /// The wait on the log's `noticed` signal.
    wait: AsyncWait,
}

#[cfg(feature = "async")]
impl Future for NoticeAsync<'_> {
    type Output = Result<Notice, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let n = this.notifications;
        this.wait
            .poll(n.source.signal(), cx, || n.try_notice_step())
    }
}

#[cfg(feature = "async")]
impl Drop for NoticeAsync<'_> {
    fn drop(&mut self) {
        self.wait.finish(self.notifications.source.signal());
    }
}

/// The stream of [`Notifications::into_stream`].
#[cfg(feature = "async")]
struct NoticeStream {
    /// The receiver, owned.
    notifications: Notifications,
    /// The wait on the log's `noticed` signal.
    wait: AsyncWait,
}

#[cfg(feature = "async")]
impl futures_core::Stream for NoticeStream {
    type Item = Notice;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Notice>> {
        let this = self.get_mut();
        let n = &this.notifications;
        this.wait
            .poll(n.source.signal(), cx, || n.try_notice_step())
            .map(Result::ok)
    }
}

#[cfg(feature = "async")]
impl Drop for NoticeStream {
    fn drop(&mut self) {
        self.wait.finish(self.notifications.source.signal());
    }
}

impl fmt::Debug for Notifications {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifications")
            .field("consumer", &self.source.id())
            .finish()
    }
}
