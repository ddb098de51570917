//! The consumer side: [`Consumer`] (a cursor into the log; clones share it)
//! and the running [`Missed`] totals. Its channel of notices is in
//! `notice.rs`.
//!
//! A consumer reads with one CAS on its group's cursor per item (see
//! `group.rs`); blocking receives park on the queue's eventcount
//! (`wait.rs`), so producers pay one load when nobody waits.

use crate::directory::Directory;
use crate::engine::Engine;
use crate::envelope::Delivery;
use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::group::{Group, Start};
use crate::item::Item;
use crate::lease::Lease;
use crate::log::Nothing;
use crate::notice::Notifications;
use crate::sync::Arc;
#[cfg(feature = "async")]
use crate::wait::{AsyncWait, Next};
use std::fmt;

mod gaps;
mod prefetch;

pub use gaps::Received;
pub use prefetch::Prefetch;
use std::time::{Duration, Instant};
#[cfg(feature = "async")]
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};
use uuid::Uuid;

/// A reader of a queue. Every consumer made by [`crate::Queue::subscribe`]
/// has its own cursor and reads every retained item, in sequence order.
/// `clone()` makes a *member of the same group*: clones share the cursor and
/// compete, so each item goes to exactly one of them. Dropping the last clone
/// deregisters the cursor.
///
/// Items a consumer never reads because they expired or were evicted are
/// counted exactly: see [`Consumer::missed`] and [`Consumer::notifications`].
///
/// # Examples
///
/// ```
/// use chunkq::Queue;
/// use std::thread;
///
/// let q: Queue<u32> = Queue::new("work");
/// let worker = q.subscribe();
/// let workers: Vec<_> = (0..2)
///     .map(|_| {
///         let w = worker.clone();
///         thread::spawn(move || {
///             let mut got = 0;
///             while let Ok(d) = w.recv() { got += *d.payload(); }
///             got
///         })
///     })
///     .collect();
/// for i in 1..=100 { q.push(i).unwrap(); }
/// q.close();
/// let total: u32 = workers.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(total, 5050); // each item went to exactly one clone
/// ```
pub struct Consumer<T: Send + Sync + 'static> {
    /// This handle's counted reference to the chunk it last read from, so
    /// that `try_recv` within that chunk pins no epoch guard (its own:
    /// clones start without one; see `lease.rs`). Declared first, so it is
    /// released before the queue: it lives in the log's lease table.
    lease: Lease<T>,
    /// The queue.
    shared: Arc<Engine<T>>,
    /// The cursor and counters this handle shares with its clones.
    group: Arc<Group<T>>,
    /// How this handle's blocking receives wait (its own: clones copy it).
    wait: Wait,
    /// What every handle of the group shares beyond the engine's group
    /// state: the in-band gap baseline and the queue's directory.
    member: std::sync::Arc<Member<T>>,
}

/// What the handles of one group share beyond its `Group`: the baseline of
/// the gaps reported in band (`gaps.rs`), and the queue's directory of
/// groups, where the last handle releases the group's name or number.
pub(crate) struct Member<T> {
    /// Misses reported in band so far.
    reported: gaps::Reported,
    /// The queue's directory of groups.
    directory: std::sync::Arc<Directory<T>>,
}

/// How a consumer's blocking receives (`recv`, `recv_timeout`,
/// `recv_many`, `iter`) wait for the next item ([`Consumer::with_wait`]).
///
/// `Park` (the default) sleeps on the queue's eventcount and costs a push
/// one load while nobody sleeps; a wake-up costs a few microseconds of the
/// scheduler's time. A thread pinned to its own core that must react in
/// nanoseconds (the disruptor's busy-spin strategy) can `Spin` instead: it
/// never sleeps and keeps its core busy; `Yield` spins briefly, then yields
/// its core to other runnable threads between checks. Neither makes the
/// producers do anything: they find nobody parked.
///
/// # Examples
///
/// ```
/// use chunkq::{Queue, Wait};
/// use std::thread;
/// let q: Queue<u64> = Queue::new("ticks");
/// let c = q.subscribe().with_wait(Wait::Spin);
/// let t = thread::spawn(move || c.recv().map(|d| *d.payload()));
/// q.push(7).unwrap();
/// assert_eq!(t.join().unwrap().unwrap(), 7);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Wait {
    /// Sleep until a push or a close wakes the thread (the default).
    #[default]
    Park,
    /// Busy-spin (`std::hint::spin_loop`) re-checking, never sleeping.
    Spin,
    /// Spin briefly, then yield the core (`std::thread::yield_now`)
    /// between re-checks, never sleeping.
    Yield,
}

impl<T: Send + Sync + 'static> Consumer<T> {
    /// Registers a new anonymous group, numbered in `directory`.
    pub(crate) fn new(
        shared: Arc<Engine<T>>,
        start: Start,
        directory: &std::sync::Arc<Directory<T>>,
    ) -> Self {
        let group = shared.log.register(start);
        directory.label_anonymous(&group);
        let member = std::sync::Arc::new(Member {
            reported: Default::default(),
            directory: directory.clone(),
        });
        Self::handle(shared, group, member)
    }

    /// A handle of the group named `name` in `directory`: a new member of
    /// it if it lives, else a new group registered at `start`.
    pub(crate) fn named(
        shared: Arc<Engine<T>>,
        name: &str,
        start: Start,
        directory: &std::sync::Arc<Directory<T>>,
    ) -> Self {
        let (group, member) = directory.join_or_make(name, || {
            let group = shared.log.register(start);
            let member = std::sync::Arc::new(Member {
                reported: Default::default(),
                directory: directory.clone(),
            });
            (group, member)
        });
        Self::handle(shared, group, member)
    }

    /// A handle over a group whose handle count already includes it.
    fn handle(
        shared: Arc<Engine<T>>,
        group: Arc<Group<T>>,
        member: std::sync::Arc<Member<T>>,
    ) -> Self {
        Self {
            shared,
            group,
            wait: Wait::Park,
            lease: Lease::new(),
            member,
        }
    }

    /// This handle, waiting the given way in its blocking receives (see
    /// [`Wait`]); clones made from it afterwards copy it.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Queue, Wait};
    /// let q: Queue<u8> = Queue::new("a");
    /// let c = q.subscribe().with_wait(Wait::Yield);
    /// assert_eq!(c.wait(), Wait::Yield);
    /// assert_eq!(c.clone().wait(), Wait::Yield);
    /// assert_eq!(q.subscribe().wait(), Wait::Park);
    /// ```
    #[must_use = "the consumer is returned, not changed in place"]
    pub fn with_wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    /// How this handle's blocking receives wait.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// assert_eq!(q.subscribe().wait(), chunkq::Wait::Park);
    /// ```
    pub fn wait(&self) -> Wait {
        self.wait
    }

    /// Blocks, the way this handle waits, until `try_recv` may find
    /// something (an item or the close) or `deadline` passes.
    fn block(&self, deadline: Option<Instant>) {
        let spin_then = match self.wait {
            Wait::Park => {
                self.shared
                    .log
                    .readable
                    .wait_until(|| self.ready(), deadline);
                return;
            }
            Wait::Spin => None,
            // Spin this many rounds, then yield between checks.
            Wait::Yield => Some(64u32),
        };
        let mut rounds = 0u32;
        while !self.ready() {
            rounds = rounds.wrapping_add(1);
            // The clock only every 64 rounds: reading it costs more than a
            // check.
            if rounds % 64 == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
            match spin_then {
                Some(n) if rounds > n => std::thread::yield_now(),
                _ => std::hint::spin_loop(),
            }
        }
    }

    /// Takes the next item without blocking.
    ///
    /// If the next item's producer has reserved its slot but not yet
    /// published it, this waits (spinning, briefly) for it rather than skip
    /// it.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if there is nothing to read now,
    /// [`TryRecvError::Closed`] if the queue is closed and this consumer has
    /// read everything.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Queue, TryRecvError};
    /// let q: Queue<u8> = Queue::new("a");
    /// let c = q.subscribe();
    /// assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Empty);
    /// q.push(5).unwrap();
    /// assert_eq!(*c.try_recv().unwrap().payload(), 5);
    /// ```
    #[inline]
    pub fn try_recv(&self) -> Result<Delivery<T>, TryRecvError> {
        let log = &self.shared.log;
        match log.try_recv_one(&self.group, &self.lease) {
            Ok(item) => Ok(Delivery::new(item, self.group.id(), log.clock.now_nanos())),
            Err(nothing) => Err(recv_error(nothing)),
        }
    }

    /// Claims up to `max` items and hands each to `sink` with the dequeue
    /// time.
    fn claim(
        &self,
        max: usize,
        mut sink: impl FnMut(crate::chunk::Held<T>, u64),
    ) -> Result<usize, TryRecvError> {
        let log = &self.shared.log;
        let mut at = None;
        log.try_recv(&self.group, &self.lease, max, |item| {
            let now = *at.get_or_insert_with(|| log.clock.now_nanos());
            sink(item, now)
        })
        .map_err(recv_error)
    }

    /// Whether the queue is closed: [`crate::Queue::close`] was called, or
    /// the last `Queue` handle dropped (no producer is left). Retained items
    /// can still be read; `try_recv` says `Closed` once they are.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// drop(q); // the last producer handle
    /// assert!(c.is_closed());
    /// assert_eq!(*c.try_recv().unwrap().payload(), 1);
    /// assert!(c.try_recv().is_err());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.log.is_closed()
    }

    /// The sequence number this consumer's group started at: where its
    /// [`Start`] put it, raised to the oldest item retained at that moment
    /// if what it asked for was already gone (those items are not owed, so
    /// not counted in [`Consumer::missed`]; a `Start::Seq(n)` that finds
    /// them gone lost `start_seq() - n`). Clones share it.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Queue, Start};
    /// let q: Queue<u8> = Queue::new("a");
    /// q.push_batch([1, 2, 3]).unwrap();
    /// assert_eq!(q.subscribe_from(Start::Latest).start_seq(), 3);
    /// assert_eq!(q.subscribe_from(Start::Seq(2)).start_seq(), 2);
    /// ```
    pub fn start_seq(&self) -> u64 {
        self.shared.log.start_seq(&self.group)
    }

    /// The borrowed read path: takes up to `max` available items without
    /// blocking and lends each, in order, to `f` by reference; returns how
    /// many. No reference count is taken per item and no [`Delivery`] is
    /// built: one epoch pin and one cursor CAS for up to 64 items (within one
    /// chunk), in the style of the disruptor's event handlers. The cheapest
    /// way to read; use [`Consumer::try_recv`] to keep an item past `f`
    /// (clone what you need out of it inside `f`).
    ///
    /// The items are claimed before `f` sees them. If `f` panics, the panic
    /// goes on to the caller once the claimed items `f` did not see are
    /// counted as missed by this group, as [`Missed::abandoned`] (in
    /// [`Consumer::missed`], the [`crate::Notice`]s and [`crate::Queue::stats`]):
    /// nothing is served again, and nothing vanishes uncounted. The item
    /// `f` panicked on counts as read (`f` saw it). While `f` runs, the
    /// thread holds an epoch guard,
    /// which delays the freeing of removed items queue-wide: keep `f`
    /// short, and do not block in it.
    ///
    /// # Errors
    /// As [`Consumer::try_recv`], when not even one item is available.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u64> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// q.push_batch([1, 2, 3]).unwrap();
    /// let mut sum = 0;
    /// assert_eq!(c.read(64, |item| sum += *item.payload()).unwrap(), 3);
    /// assert_eq!(sum, 6);
    /// assert!(c.read(64, |_| {}).is_err()); // empty now
    /// ```
    pub fn read(&self, max: usize, mut f: impl FnMut(&Item<T>)) -> Result<usize, TryRecvError> {
        if max == 0 {
            return self.no_room();
        }
        let log = &self.shared.log;
        // `f` is user code that may panic between items the claim made this
        // group's: the panic is caught here, the rest of the claim counted
        // as abandoned, and the panic resumed. Catching costs nothing until
        // a panic (unwind tables); the claim's own bookkeeping (the trim when
        // a chunk is left) still runs, since nothing unwinds through it.
        let mut panicked = None;
        let mut abandoned = 0u64;
        let read = log.read(&self.group, max, |item| {
            if panicked.is_some() {
                abandoned += 1;
                return;
            }
            // AssertUnwindSafe: the panic is resumed below, so the caller
            // sees it as if it had not been caught.
            if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item))) {
                panicked = Some(panic);
            }
        });
        if let Some(panic) = panicked {
            count_abandoned(&self.shared, &self.group, abandoned);
            std::panic::resume_unwind(panic);
        }
        read.map_err(recv_error)
    }

    /// Takes up to `max` available items without blocking, appending them to
    /// `out` in order; returns how many. One CAS on the cursor claims up to
    /// 64 items at once (within one chunk), so this is the cheap way to
    /// drain a backlog; call it again for more.
    ///
    /// # Errors
    /// As [`Consumer::try_recv`], when not even one item is available. With
    /// `max == 0`, `Ok(0)` unless the queue is closed and this consumer has
    /// read everything ([`TryRecvError::Closed`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// q.push_batch([1, 2, 3]).unwrap();
    /// let mut got = Vec::new();
    /// assert_eq!(c.try_recv_many(&mut got, 2).unwrap(), 2);
    /// assert_eq!(c.try_recv_many(&mut got, 2).unwrap(), 1);
    /// assert_eq!(got.iter().map(|d| *d.payload()).collect::<Vec<_>>(), [1, 2, 3]);
    /// ```
    pub fn try_recv_many(
        &self,
        out: &mut Vec<Delivery<T>>,
        max: usize,
    ) -> Result<usize, TryRecvError> {
        if max == 0 {
            return self.no_room();
        }
        let id = self.group.id();
        self.claim(max, |item, at| out.push(Delivery::new(item, id, at)))
    }

    /// Blocks until at least one item is available, then takes up to `max`
    /// like [`Consumer::try_recv_many`] (tokio's and kanal's name for it).
    /// With `max == 0` it does not block: `Ok(0)`, or the error below.
    ///
    /// # Errors
    /// [`RecvError`] once the queue is closed and this consumer has read
    /// everything.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// q.push_batch([1, 2]).unwrap();
    /// let mut got = Vec::new();
    /// assert_eq!(c.recv_many(&mut got, 10).unwrap(), 2);
    /// ```
    pub fn recv_many(&self, out: &mut Vec<Delivery<T>>, max: usize) -> Result<usize, RecvError> {
        loop {
            match self.try_recv_many(out, max) {
                Ok(n) => return Ok(n),
                Err(TryRecvError::Closed) => return Err(RecvError),
                Err(TryRecvError::Empty) => {
                    self.block(None);
                }
            }
        }
    }

    /// Takes every item available now, appending them to `out`; returns how
    /// many (0 if none). Never blocks.
    ///
    /// # Errors
    /// [`TryRecvError::Closed`] if the queue is closed and nothing was left.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u16> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// q.push_batch(0..1500).unwrap();
    /// let mut got = Vec::new();
    /// assert_eq!(c.drain_into(&mut got).unwrap(), 1500);
    /// assert_eq!(c.drain_into(&mut got).unwrap(), 0);
    /// ```
    pub fn drain_into(&self, out: &mut Vec<Delivery<T>>) -> Result<usize, TryRecvError> {
        let mut total = 0;
        loop {
            match self.try_recv_many(out, usize::MAX) {
                Ok(n) => total += n,
                Err(TryRecvError::Empty) => return Ok(total),
                Err(TryRecvError::Closed) if total == 0 => return Err(TryRecvError::Closed),
                Err(TryRecvError::Closed) => return Ok(total),
            }
        }
    }

    /// Whether `try_recv` may find something (an item or the close); read
    /// with SeqCst loads, as the eventcount requires.
    /// A batch read with room for nothing: `Ok(0)`, or the end like any
    /// other call (so that `while c.try_recv_many(&mut v, room).is_ok()`
    /// ends once the queue is closed and drained).
    fn no_room(&self) -> Result<usize, TryRecvError> {
        if self.finished() {
            Err(TryRecvError::Closed)
        } else {
            Ok(0)
        }
    }

    /// Whether the queue is closed and this group has nothing left to read.
    fn finished(&self) -> bool {
        let log = &self.shared.log;
        let c = self.group.cursor();
        let h = log.head_seq();
        let (t, closed) = log.tail_seq();
        closed && c.max(h) >= t
    }

    fn ready(&self) -> bool {
        let c = self.group.cursor();
        let (t, closed) = self.shared.log.tail_seq();
        closed || c < t
    }

    /// Blocks until an item arrives or the queue is closed and drained.
    ///
    /// # Errors
    /// [`RecvError`] once the queue is closed and this consumer has read
    /// everything.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// let p = q.clone();
    /// std::thread::spawn(move || p.push(9).unwrap());
    /// assert_eq!(*c.recv().unwrap().payload(), 9);
    /// ```
    pub fn recv(&self) -> Result<Delivery<T>, RecvError> {
        loop {
            match self.try_recv() {
                Ok(d) => return Ok(d),
                Err(TryRecvError::Closed) => return Err(RecvError),
                Err(TryRecvError::Empty) => {
                    self.block(None);
                }
            }
        }
    }

    /// Blocks until an item arrives, the queue is closed and drained, or
    /// `timeout` passes.
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
    /// assert_eq!(c.recv_timeout(Duration::from_millis(5)).unwrap_err(), RecvTimeoutError::Timeout);
    /// q.push(1).unwrap();
    /// assert!(c.recv_timeout(Duration::from_millis(5)).is_ok());
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Delivery<T>, RecvTimeoutError> {
        recv_until(&mut &*self, timeout, |c| c.try_recv(), |c, d| c.block(d))
    }

    /// Waits (asynchronously) until an item arrives or the queue is closed
    /// and drained: the async [`Consumer::recv`], runtime-agnostic. A
    /// producer wakes a waiting future the way it wakes a parked thread
    /// (see `Signal` in `wait.rs`), and pays one load when nobody waits.
    ///
    /// Cancel-safe: an item is claimed only inside the poll that returns
    /// it, so dropping the future (a losing `select!` branch, a timeout)
    /// never loses an item; the next receive gets it.
    ///
    /// # Errors
    /// [`RecvError`] once the queue is closed and this consumer has read
    /// everything.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// let p = q.clone();
    /// std::thread::spawn(move || p.push(9).unwrap());
    /// assert_eq!(*c.recv_async().await.unwrap().payload(), 9);
    /// q.close();
    /// assert!(c.recv_async().await.is_err());
    /// # });
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn recv_async(
        &self,
    ) -> impl std::future::Future<Output = Result<Delivery<T>, RecvError>> + Send + '_ {
        RecvAsync::new(self, Self::try_recv_step)
    }

    /// This consumer as a [`Stream`](futures_core::Stream) of its items,
    /// which ends when the queue is closed and this consumer has read
    /// everything: the async [`Consumer::iter`]. It owns the consumer; to
    /// keep one, stream a clone (`c.clone().into_stream()`: a member of the
    /// same group, sharing the cursor). Cancel-safe like
    /// [`Consumer::recv_async`]: an item is claimed only in the poll that
    /// yields it.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// use futures_core::Stream;
    /// use std::pin::pin;
    ///
    /// let q: chunkq::Queue<u32> = chunkq::Queue::new("a");
    /// let mut items = pin!(q.subscribe().into_stream());
    /// q.push_batch([1, 2, 3]).unwrap();
    /// q.close();
    /// let mut sum = 0;
    /// while let Some(d) = std::future::poll_fn(|cx| items.as_mut().poll_next(cx)).await {
    ///     sum += *d.payload();
    /// }
    /// assert_eq!(sum, 6);
    /// # });
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn into_stream(self) -> impl futures_core::Stream<Item = Delivery<T>> + Send + Unpin {
        ConsumerStream::new(self, Self::try_recv_step)
    }

    /// One try of an async receive: the item, `None` for closed and
    /// drained, or wait for the `readable` signal.
    #[cfg(feature = "async")]
    fn try_recv_step(&self) -> Result<Option<Delivery<T>>, Next> {
        step_of(self.try_recv())
    }

    /// An iterator over the items available now (stops at the first
    /// `Empty` or `Closed`).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// for i in 0..3 { q.push(i).unwrap(); }
    /// let got: Vec<u8> = c.try_iter().map(|d| *d.payload()).collect();
    /// assert_eq!(got, [0, 1, 2]);
    /// ```
    pub fn try_iter(&self) -> impl Iterator<Item = Delivery<T>> + '_ {
        std::iter::from_fn(|| self.try_recv().ok())
    }

    /// A blocking iterator that ends when the queue is closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// q.push(2).unwrap();
    /// q.close();
    /// assert_eq!(c.iter().count(), 2);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = Delivery<T>> + '_ {
        std::iter::from_fn(|| self.recv().ok())
    }

    /// This consumer's UUID, shared by its clones.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// assert_eq!(c.id(), c.clone().id());
    /// assert_ne!(c.id(), q.subscribe().id());
    /// ```
    pub fn id(&self) -> Uuid {
        self.group.id()
    }

    /// Retained items this consumer (group) has not read yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// q.push(2).unwrap();
    /// assert_eq!(c.lag(), 2);
    /// c.try_recv().unwrap();
    /// assert_eq!(c.lag(), 1);
    /// ```
    pub fn lag(&self) -> usize {
        self.shared.log.lag(&self.group)
    }

    /// Running totals of the items this consumer (group) never read, by
    /// cause. The same on every clone. Items that left the queue but that
    /// the group's cursor has not been moved past yet are counted when it is:
    /// by the remover right after the removal, or by the next `try_recv`.
    /// A move of the cursor that another thread has begun is waited for
    /// (briefly), so after `try_recv` reports `Closed` the totals are final.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Overflow, Queue};
    /// let q: Queue<u64> = Queue::builder("a").memory_limit(600).overflow(Overflow::DropOldest).build().unwrap();
    /// let c = q.subscribe();
    /// for i in 0..20 { q.push(i).unwrap(); }
    /// let missed = c.missed();
    /// let read = c.try_iter().count() as u64;
    /// assert!(missed.evicted > 0);
    /// assert_eq!(read + missed.total(), 20);
    /// ```
    pub fn missed(&self) -> Missed {
        // Cursors left below `head` are caught up lazily (see `log/mod.rs`):
        // count what this group has missed so far first.
        self.shared.log.catch_up(&self.group);
        missed_of(&self.group)
    }

    /// The channel of notices for this consumer (group): one each time its
    /// cursor is moved past items it had not read. Every call returns a
    /// receiver of the same channel (receivers compete, like clones).
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Clock, Queue};
    /// use std::time::Duration;
    /// let clock = Clock::manual();
    /// let q: Queue<u8> = Queue::builder("a").ttl(Duration::from_secs(1)).clock(clock.clone()).build().unwrap();
    /// let c = q.subscribe();
    /// let notices = c.notifications();
    /// q.push(1).unwrap();
    /// clock.advance(Duration::from_secs(2));
    /// q.expire_now();
    /// let n = notices.try_recv().unwrap();
    /// assert_eq!((n.expired, n.evicted), (1, 0));
    /// ```
    #[must_use]
    pub fn notifications(&self) -> Notifications {
        Notifications::new(self.shared.clone(), self.group.clone())
    }
}

/// Counts `n` items this group claimed and will never hand out as missed
/// by it, [`Missed::abandoned`] (the totals, the notices, `stats`, the
/// in-band gaps), and wakes notice waiters. The one path for every cause of
/// abandonment: a panicking [`Consumer::read`] closure, a dropped
/// [`Prefetch`] buffer.
pub(crate) fn count_abandoned<T: Send + Sync + 'static>(
    shared: &Engine<T>,
    group: &Group<T>,
    n: u64,
) {
    if n == 0 {
        return;
    }
    let log = &shared.log;
    group.count_abandoned(n, log.clock.now_nanos());
    // The change a notice waiter re-checks is the count's SeqCst
    // `fetch_add` (see `wait.rs`).
    log.noticed.notify();
}

/// Why the log had nothing, as the public error.
fn recv_error(n: Nothing) -> TryRecvError {
    match n {
        Nothing::Empty => TryRecvError::Empty,
        Nothing::Closed => TryRecvError::Closed,
    }
}

impl<T: Send + Sync + 'static> Clone for Consumer<T> {
    /// Another member of the same group: shares the cursor (see the type
    /// docs).
    fn clone(&self) -> Self {
        let before = self.group.add_handle();
        // As `Arc` and crossbeam-channel's counter do: a count this high
        // means clones are leaked in a loop (`mem::forget`); wrapping would
        // let the group be deregistered while handles still use it.
        if before > isize::MAX as usize {
            std::process::abort();
        }
        Self {
            shared: self.shared.clone(),
            group: self.group.clone(),
            wait: self.wait,
            lease: Lease::new(),
            member: self.member.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> Drop for Consumer<T> {
    fn drop(&mut self) {
        if self.member.directory.release(&self.group) {
            self.shared.log.deregister(&self.group);
            // No more notices: wake `Notifications::recv_timeout` waiters.
            self.shared.log.noticed.notify();
            // The group no longer holds trimming back: wake producers
            // waiting for room (the change is the registry's SeqCst swap).
            self.shared.log.room.notify();
        }
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("id", &self.group.id())
            .field("queue", &self.shared.log.name)
            .field("cursor", &self.group.cursor())
            // `lag()` may wait for a `close` in flight; `Debug` never waits.
            .field("lag", &{
                let log = &self.shared.log;
                let c = self.group.cursor();
                log.tail_now().saturating_sub(c.max(log.head_seq()))
            })
            // `missed()` may wait for a move in flight; `Debug` never waits.
            .field("missed", &{
                let (expired, evicted) = self.group.missed_now();
                Missed {
                    expired,
                    evicted,
                    abandoned: self.group.abandoned(),
                }
            })
            .finish()
    }
}

/// Running totals of items a consumer never read, by cause.
///
/// # Examples
///
/// ```
/// let mut m = chunkq::Missed::default();
/// m.expired = 2;
/// m.evicted = 3;
/// assert_eq!(m.total(), 5);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Missed {
    /// Items whose TTL ran out before this consumer read them.
    pub expired: u64,
    /// Items evicted (`Overflow::DropOldest`) before this consumer read them.
    pub evicted: u64,
    /// Items this group claimed and never handed out: a [`Consumer::read`]
    /// claimed them and never lent them to its closure, because the closure
    /// panicked on an earlier one; or a [`Prefetch`] handle still held them
    /// in its buffer when it was dropped.
    /// (Serialized only when not 0, so the serialized form of the other
    /// causes is what it was before this field existed.)
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "crate::consumer::is_zero")
    )]
    pub abandoned: u64,
}

impl Missed {
    /// `expired + evicted + abandoned`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(chunkq::Missed::default().total(), 0);
    /// ```
    #[must_use]
    pub fn total(&self) -> u64 {
        self.expired + self.evicted + self.abandoned
    }
}

/// Whether a count is 0 (serde's `skip_serializing_if`).
#[cfg(feature = "serde")]
pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The loop of every `recv_timeout`: tries `try_once` on `state` until it
/// gets something or says `Closed`, or `timeout` passes, waiting with
/// `block` (until the deadline) after each `Empty`. The state is passed
/// to both, so a handle that tries with `&mut self` can block through a
/// field of itself.
fn recv_until<S, R>(
    state: &mut S,
    timeout: Duration,
    mut try_once: impl FnMut(&mut S) -> Result<R, TryRecvError>,
    mut block: impl FnMut(&S, Option<Instant>),
) -> Result<R, RecvTimeoutError> {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        match try_once(state) {
            Ok(r) => return Ok(r),
            Err(TryRecvError::Closed) => return Err(RecvTimeoutError::Closed),
            Err(TryRecvError::Empty) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(RecvTimeoutError::Timeout);
                }
                block(state, deadline);
            }
        }
    }
}

/// A group's running miss totals, by cause (after the caller's catch-up).
pub(crate) fn missed_of<T>(group: &Group<T>) -> Missed {
    let (expired, evicted) = group.missed();
    Missed {
        expired,
        evicted,
        abandoned: group.abandoned(),
    }
}

/// One try of an async receive (`Consumer::try_recv_step` and its
/// gap-reporting twin): what it got, `None` for closed and drained, or wait
/// for the `readable` signal.
#[cfg(feature = "async")]
type Step<T, R> = fn(&Consumer<T>) -> Result<Option<R>, Next>;

/// The future of [`Consumer::recv_async`] (`R` = [`Delivery`]) and of
/// `Consumer::recv_async_or_missed` (`R` = `Received`): `step` until it
/// gets something, waiting on the log's `readable` signal between tries.
#[cfg(feature = "async")]
struct RecvAsync<'a, T: Send + Sync + 'static, R> {
    /// The consumer.
    consumer: &'a Consumer<T>,
    /// One try.
    step: Step<T, R>,
    /// The wait on the log's `readable` signal.
    wait: AsyncWait,
}

#[cfg(feature = "async")]
impl<'a, T: Send + Sync + 'static, R> RecvAsync<'a, T, R> {
    /// A receive by `consumer` through `step`.
    fn new(consumer: &'a Consumer<T>, step: Step<T, R>) -> Self {
        Self {
            consumer,
            step,
            wait: AsyncWait::new(),
        }
    }
}

#[cfg(feature = "async")]
impl<T: Send + Sync + 'static, R> Future for RecvAsync<'_, T, R> {
    type Output = Result<R, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let (consumer, step) = (this.consumer, this.step);
        this.wait
            .poll(&consumer.shared.log.readable, cx, || step(consumer))
            .map(|r| r.ok_or(RecvError))
    }
}

#[cfg(feature = "async")]
impl<T: Send + Sync + 'static, R> Drop for RecvAsync<'_, T, R> {
    fn drop(&mut self) {
        self.wait.finish(&self.consumer.shared.log.readable);
    }
}

/// The stream of [`Consumer::into_stream`] (`R` = [`Delivery`]) and of
/// `Consumer::into_stream_or_missed` (`R` = `Received`): as [`RecvAsync`],
/// owning the consumer, ending at `None`.
#[cfg(feature = "async")]
struct ConsumerStream<T: Send + Sync + 'static, R> {
    /// The consumer, owned.
    consumer: Consumer<T>,
    /// One try.
    step: Step<T, R>,
    /// The wait on the log's `readable` signal.
    wait: AsyncWait,
}

#[cfg(feature = "async")]
impl<T: Send + Sync + 'static, R> ConsumerStream<T, R> {
    /// A stream of `consumer` through `step`.
    fn new(consumer: Consumer<T>, step: Step<T, R>) -> Self {
        Self {
            consumer,
            step,
            wait: AsyncWait::new(),
        }
    }
}

#[cfg(feature = "async")]
impl<T: Send + Sync + 'static, R> futures_core::Stream for ConsumerStream<T, R> {
    type Item = R;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<R>> {
        let this = self.get_mut();
        let (consumer, step) = (&this.consumer, this.step);
        this.wait
            .poll(&consumer.shared.log.readable, cx, || step(consumer))
    }
}

#[cfg(feature = "async")]
impl<T: Send + Sync + 'static, R> Drop for ConsumerStream<T, R> {
    fn drop(&mut self) {
        self.wait.finish(&self.consumer.shared.log.readable);
    }
}

/// An async receive's reading of a `try_recv`-like result (see [`Step`]).
#[cfg(feature = "async")]
fn step_of<R>(tried: Result<R, TryRecvError>) -> Result<Option<R>, Next> {
    match tried {
        Ok(r) => Ok(Some(r)),
        Err(TryRecvError::Closed) => Ok(None),
        Err(TryRecvError::Empty) => Err(Next::Wait),
    }
}
