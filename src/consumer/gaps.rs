//! Loss in band: receives that report a gap where the reader is, before the
//! next item ([`Received::Missed`]), as tokio's broadcast receiver reports
//! `Lagged(n)`. Opt-in: these are their own methods; `try_recv` and the rest
//! stay as they are (the totals and notices keep counting either way).
//!
//! A gap is what the group's [`Missed`] totals grew by since the last report
//! to any handle of the group. Each handle compares the totals with the
//! group's reported baseline and raises the baseline by `fetch_max`, so
//! every missed item is reported in band exactly once, to one handle,
//! however the handles race; the common case (no gap) costs loads only.

use super::{Consumer, Missed, missed_of};
use crate::envelope::Delivery;
use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::sync::{AtomicU64, Ordering};
#[cfg(feature = "async")]
use crate::wait::Next;
use std::fmt;
#[cfg(feature = "async")]
use std::future::Future;
use std::time::Duration;

/// What a gap-reporting receive ([`Consumer::try_recv_or_missed`] and its
/// blocking and async forms) returns: the next item, or first the items
/// this consumer group missed since the previous report, by cause.
///
/// # Examples
///
/// ```
/// use chunkq::{Overflow, Queue, Received};
/// let q: Queue<u64> = Queue::builder("a").memory_limit(600).overflow(Overflow::DropOldest).build().unwrap();
/// let c = q.subscribe();
/// for i in 0..20 { q.push(i).unwrap(); } // the oldest are evicted unread
/// let mut seen = Vec::new();
/// while let Ok(r) = c.try_recv_or_missed() {
///     match r {
///         Received::Item(d) => seen.push(format!("{}", d.payload())),
///         Received::Missed(m) => seen.push(format!("gap of {}", m.evicted)),
///         _ => unreachable!(),
///     }
/// }
/// let gap = c.missed().evicted;
/// assert_eq!(seen[0], format!("gap of {gap}")); // where the reader is
/// assert_eq!(seen[1], gap.to_string()); // the first item after the gap
/// ```
#[non_exhaustive]
pub enum Received<T> {
    /// The next item.
    Item(Delivery<T>),
    /// Items this group will never read, counted since the previous report
    /// and before the next item (see [`Consumer::try_recv_or_missed`]).
    Missed(Missed),
}

impl<T> Received<T> {
    /// The item, if this is one.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// q.push(7).unwrap();
    /// assert_eq!(*c.try_recv_or_missed().unwrap().item().unwrap().payload(), 7);
    /// ```
    #[must_use]
    pub fn item(self) -> Option<Delivery<T>> {
        match self {
            Received::Item(d) => Some(d),
            Received::Missed(_) => None,
        }
    }

    /// The gap, if this is one.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// q.push(7).unwrap();
    /// assert!(c.try_recv_or_missed().unwrap().missed().is_none());
    /// ```
    #[must_use]
    pub fn missed(&self) -> Option<Missed> {
        match self {
            Received::Item(_) => None,
            Received::Missed(m) => Some(*m),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Received<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Received::Item(d) => f.debug_tuple("Item").field(d).finish(),
            Received::Missed(m) => f.debug_tuple("Missed").field(m).finish(),
        }
    }
}

/// A group's in-band baseline: the totals reported so far, by cause.
#[derive(Default)]
pub(crate) struct Reported {
    /// Expired items reported in band.
    expired: AtomicU64,
    /// Evicted items reported in band.
    evicted: AtomicU64,
    /// Abandoned items reported in band.
    abandoned: AtomicU64,
}

impl Reported {
    /// Raises the baseline to `now` (the group's totals); returns by how
    /// much, or `None` if not at all (this handle's share: a racing handle
    /// that raised it first reports the rest).
    fn take(&self, now: Missed) -> Option<Missed> {
        let raise = |reported: &AtomicU64, total: u64| {
            // Relaxed: the baseline only orders against itself (`fetch_max`
            // makes each increment reported once); the totals were read
            // with the group's own orderings.
            let seen = reported.load(Ordering::Relaxed);
            if total <= seen {
                return 0;
            }
            total.saturating_sub(reported.fetch_max(total, Ordering::Relaxed))
        };
        let gap = Missed {
            expired: raise(&self.expired, now.expired),
            evicted: raise(&self.evicted, now.evicted),
            abandoned: raise(&self.abandoned, now.abandoned),
        };
        (gap.total() > 0).then_some(gap)
    }
}

impl<T: Send + Sync + 'static> Consumer<T> {
    /// The gap not reported in band yet, if any.
    fn take_gap(&self) -> Option<Missed> {
        // Cursors below `head` are caught up lazily: count first.
        self.shared.log.catch_up(&self.group);
        self.member.reported.take(missed_of(&self.group))
    }

    /// Takes the next item without blocking, as [`Consumer::try_recv`], but
    /// reports a gap first: if this group missed items (expired, evicted
    /// or abandoned) since the previous report, returns
    /// [`Received::Missed`] with their counts, and the item after them on
    /// the next call. tokio's `Lagged(n)`, in band, exactly counted.
    ///
    /// Each missed item is reported in band once, to one handle of the
    /// group (clones compete for reports as for items), and also, as
    /// always, in [`Consumer::missed`] and the notices (those count
    /// independently). A miss counted while this call reads (a removal
    /// racing with it) is reported by the next call.
    ///
    /// # Errors
    /// As [`Consumer::try_recv`]: `Empty` when there is neither an item
    /// nor a gap; `Closed` once the queue is closed, this group read
    /// everything and every gap was reported.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Clock, Queue, Received, TryRecvError};
    /// use std::time::Duration;
    /// let clock = Clock::manual();
    /// let q: Queue<u8> = Queue::builder("a").ttl(Duration::from_secs(1)).clock(clock.clone()).build().unwrap();
    /// let c = q.subscribe();
    /// q.push_batch([1, 2]).unwrap();
    /// clock.advance(Duration::from_secs(2));
    /// q.expire_now();
    /// q.push(3).unwrap();
    /// assert_eq!(c.try_recv_or_missed().unwrap().missed().unwrap().expired, 2);
    /// assert_eq!(*c.try_recv_or_missed().unwrap().item().unwrap().payload(), 3);
    /// assert_eq!(c.try_recv_or_missed().unwrap_err(), TryRecvError::Empty);
    /// ```
    pub fn try_recv_or_missed(&self) -> Result<Received<T>, TryRecvError> {
        if let Some(gap) = self.take_gap() {
            return Ok(Received::Missed(gap));
        }
        match self.try_recv() {
            Ok(d) => Ok(Received::Item(d)),
            // One more look: a gap counted just before the end.
            Err(TryRecvError::Closed) => self
                .take_gap()
                .map(Received::Missed)
                .ok_or(TryRecvError::Closed),
            Err(TryRecvError::Empty) => Err(TryRecvError::Empty),
        }
    }

    /// Blocks until an item arrives or the queue is closed and drained, as
    /// [`Consumer::recv`], reporting a gap first as
    /// [`Consumer::try_recv_or_missed`] does.
    ///
    /// # Errors
    /// [`RecvError`] once the queue is closed, this group read everything
    /// and every gap was reported.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Overflow, Queue, Received};
    /// let q: Queue<u64> = Queue::builder("a").memory_limit(600).overflow(Overflow::DropOldest).build().unwrap();
    /// let c = q.subscribe();
    /// for i in 0..20 { q.push(i).unwrap(); }
    /// q.close();
    /// let (mut items, mut lost) = (0, 0);
    /// while let Ok(r) = c.recv_or_missed() {
    ///     match r {
    ///         Received::Item(_) => items += 1,
    ///         Received::Missed(m) => lost += m.total(),
    ///         _ => {}
    ///     }
    /// }
    /// assert_eq!(items + lost, 20);
    /// ```
    pub fn recv_or_missed(&self) -> Result<Received<T>, RecvError> {
        loop {
            match self.try_recv_or_missed() {
                Ok(r) => return Ok(r),
                Err(TryRecvError::Closed) => return Err(RecvError),
                Err(TryRecvError::Empty) => self.block(None),
            }
        }
    }

    /// As [`Consumer::recv_or_missed`], for at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Queue, RecvTimeoutError};
    /// use std::time::Duration;
    /// let q: Queue<u8> = Queue::new("a");
    /// let c = q.subscribe();
    /// let r = c.recv_timeout_or_missed(Duration::from_millis(1));
    /// assert_eq!(r.unwrap_err(), RecvTimeoutError::Timeout);
    /// ```
    pub fn recv_timeout_or_missed(
        &self,
        timeout: Duration,
    ) -> Result<Received<T>, RecvTimeoutError> {
        super::recv_until(
            &mut &*self,
            timeout,
            |c| c.try_recv_or_missed(),
            |c, d| c.block(d),
        )
    }

    /// One try of an async gap-reporting receive.
    #[cfg(feature = "async")]
    fn try_recv_or_missed_step(&self) -> Result<Option<Received<T>>, Next> {
        super::step_of(self.try_recv_or_missed())
    }

    /// The async [`Consumer::recv_or_missed`]: as
    /// [`Consumer::recv_async`] (runtime-agnostic, cancel-safe: an item or
    /// a gap is taken only in the poll that returns it), reporting a gap
    /// first.
    ///
    /// # Errors
    /// [`RecvError`] once the queue is closed, this group read everything
    /// and every gap was reported.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// use chunkq::{Overflow, Queue};
    /// let q: Queue<u64> = Queue::builder("a").memory_limit(600).overflow(Overflow::DropOldest).build().unwrap();
    /// let c = q.subscribe();
    /// for i in 0..20 { q.push(i).unwrap(); }
    /// let gap = c.recv_async_or_missed().await.unwrap().missed().unwrap();
    /// assert_eq!(gap.evicted, c.missed().evicted);
    /// # });
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn recv_async_or_missed(
        &self,
    ) -> impl Future<Output = Result<Received<T>, RecvError>> + Send + '_ {
        super::RecvAsync::new(self, Self::try_recv_or_missed_step)
    }

    /// This consumer as a [`Stream`](futures_core::Stream) of items and
    /// gaps ([`Received`]): the gap-reporting [`Consumer::into_stream`],
    /// which ends when [`Consumer::recv_async_or_missed`] would return
    /// `Err`.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// use chunkq::{Overflow, Queue, Received};
    /// use futures_core::Stream;
    /// use std::pin::pin;
    ///
    /// let q: Queue<u64> = Queue::builder("a").memory_limit(600).overflow(Overflow::DropOldest).build().unwrap();
    /// let c = q.subscribe();
    /// let mut stream = pin!(c.clone().into_stream_or_missed());
    /// for i in 0..20 { q.push(i).unwrap(); }
    /// q.close();
    /// let (mut items, mut lost) = (0, 0);
    /// while let Some(r) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
    ///     match r {
    ///         Received::Item(_) => items += 1,
    ///         Received::Missed(m) => lost += m.total(),
    ///         _ => {}
    ///     }
    /// }
    /// assert_eq!((items + lost, lost), (20, c.missed().total()));
    /// # });
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn into_stream_or_missed(
        self,
    ) -> impl futures_core::Stream<Item = Received<T>> + Send + Unpin {
        super::ConsumerStream::new(self, Self::try_recv_or_missed_step)
    }
}
