//! The producer side: [`Queue`] (a cheap, cloneable handle over the
//! queue's `Engine`, see `engine.rs`) and its [`Builder`].

use crate::clock::Clock;
use crate::consumer::Consumer;
use crate::engine::{Engine, Overflow};
use crate::envelope::{Delivery, Envelope};
use crate::error::{ConfigError, PushBatchError, PushError, PushTimeoutError};
use crate::group::Start;
use crate::item::Name;
use crate::lease::Lease;
use crate::log::Log;
use crate::size::{EstimateSize, SizeFn};
use crate::stats::Stats;
use crate::sync::{Arc, epoch};
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Default memory budget: 1 MiB of accounted bytes.
///
/// # Examples
///
/// ```
/// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
/// assert_eq!(q.memory_limit(), chunkq::DEFAULT_MEMORY_LIMIT);
/// ```
pub const DEFAULT_MEMORY_LIMIT: usize = 1_048_576;
/// Default time to live: 10 minutes from an item's enqueue.
///
/// # Examples
///
/// ```
/// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
/// assert_eq!(q.ttl(), chunkq::DEFAULT_TTL);
/// ```
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Default sweep interval: 30 seconds.
///
/// # Examples
///
/// ```
/// assert_eq!(chunkq::DEFAULT_SWEEP_INTERVAL, std::time::Duration::from_secs(30));
/// ```
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// A handle to a named queue. Cheap to clone (`Send + Sync`); every clone
/// pushes into the same queue. When the last handle drops, the queue closes
/// (consumers drain what is left) and leaves the background sweeps
/// (without waiting for one in progress).
///
/// # Examples
///
/// ```
/// use chunkq::Queue;
/// use std::thread;
///
/// let q: Queue<String> = Queue::new("greetings");
/// let c = q.subscribe();
/// let producer = {
///     let q = q.clone();
///     thread::spawn(move || q.push("hello".to_string()).unwrap())
/// };
/// producer.join().unwrap();
/// assert_eq!(c.recv().unwrap().payload(), "hello");
/// ```
///
/// # Why `T: Sync`
/// An item is not moved to its reader: it stays in the queue, and every
/// consumer group that reads it gets a [`Delivery`], a counted reference to
/// the same item. Several groups, on several threads, can hold references
/// to one payload at the same moment, so the payload must be shareable
/// between threads (`Sync`); and it is dropped by whichever thread lets go
/// of it last (`Send`).
///
/// A work queue of jobs that are `Send` but not `Sync`, such as
/// `Box<dyn FnOnce() + Send>`, wraps each job in a `Mutex` (which is `Sync`
/// for any `Send` content) and takes it out once:
///
/// ```
/// use chunkq::Queue;
/// use std::sync::Mutex;
///
/// type Job = Mutex<Option<Box<dyn FnOnce() -> u32 + Send>>>;
/// let q: Queue<Job> = Queue::builder("jobs").sizer(|_| 0).build().unwrap();
/// let workers = q.subscribe();
/// q.push(Mutex::new(Some(Box::new(|| 6 * 7)))).unwrap();
/// let d = workers.try_recv().unwrap();
/// let job = d.payload().lock().unwrap().take().expect("run once");
/// assert_eq!(job(), 42);
/// ```
///
/// (Calling an `FnOnce` takes it by value, and a delivery only lends the
/// payload: the `Option` lets the one worker that runs the job take it.)
/// With one reader group and no need for retention, TTL or broadcast, a
/// channel that moves each value to its one receiver (crossbeam-channel,
/// flume) asks for `Send` only.
pub struct Queue<T: Send + Sync + 'static> {
    /// This handle's counted reference to the chunk it last pushed into,
    /// so that `push` within that chunk pins no epoch guard (its own:
    /// clones start without one; see `lease.rs`). Declared first, so it is
    /// released before the handle.
    lease: Lease<T>,
    /// The shared handle; its drop closes the queue.
    handle: std::sync::Arc<Handle<T>>,
}

/// A handle to a queue that does not keep it open ([`Queue::downgrade`]):
/// for registries, caches and callbacks that should not hold a queue alive.
/// Cheap to clone, `Send + Sync`.
///
/// # Examples
///
/// ```
/// use chunkq::Queue;
/// let q: Queue<u32> = Queue::new("a");
/// let c = q.subscribe();
/// let weak = q.downgrade();
/// let w2 = weak.clone();
/// std::thread::spawn(move || {
///     if let Some(q) = w2.upgrade() {
///         q.push(7).unwrap();
///     }
/// })
/// .join()
/// .unwrap();
/// assert_eq!(*c.try_recv().unwrap().payload(), 7);
/// drop(q); // the last strong handle: the queue closes
/// assert!(weak.upgrade().is_none());
/// assert!(c.try_recv().is_err());
/// ```
pub struct WeakQueue<T: Send + Sync + 'static> {
    /// The shared handle, not counted: a `Queue` while one lives.
    handle: std::sync::Weak<Handle<T>>,
}

impl<T: Send + Sync + 'static> WeakQueue<T> {
    /// A `Queue` handle, if another one still lives.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let weak = q.downgrade();
    /// assert_eq!(weak.upgrade().unwrap().name(), "a");
    /// ```
    pub fn upgrade(&self) -> Option<Queue<T>> {
        self.handle.upgrade().map(|handle| Queue {
            lease: Lease::new(),
            handle,
        })
    }
}

impl<T: Send + Sync + 'static> Clone for WeakQueue<T> {
    fn clone(&self) -> Self {
        Self {
            handle: self.handle.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for WeakQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakQueue")
            .field("alive", &(self.handle.strong_count() > 0))
            .finish()
    }
}

/// An envelope's payload, and its origin as the engine takes it (UUID,
/// creation time on chunkq's clock, history so far); its `seq` is not used
/// (see [`Queue::push_envelope`]).
#[allow(clippy::type_complexity)]
fn origin_of<T>(envelope: Envelope<T>) -> (T, (Uuid, u64, Vec<crate::Event>)) {
    let Envelope {
        id,
        created,
        history,
        payload,
        ..
    } = envelope;
    (
        payload,
        (id, crate::clock::from_system_time(created), history),
    )
}

/// The future of [`Queue::push_async`].
#[cfg(feature = "async")]
struct PushAsync<'a, T: Send + Sync + 'static> {
    /// The queue.
    engine: &'a Engine<T>,
    /// The payload's accounted bytes, sized once.
    bytes: usize,
    /// The payload until it is pushed (or handed back).
    payload: Option<T>,
    /// The UUID, creation time and history the item keeps
    /// ([`Queue::push_envelope_async`]); `None` for a fresh item.
    origin: Option<(Uuid, u64, Vec<crate::item::Event>)>,
    /// The wait on the log's `room` signal.
    wait: crate::wait::AsyncWait,
}

// The payload is never pinned (only moved in and out by value), so the
// future is `Unpin` whatever `T` is.
#[cfg(feature = "async")]
impl<T: Send + Sync + 'static> Unpin for PushAsync<'_, T> {}

#[cfg(feature = "async")]
impl<T: Send + Sync + 'static> std::future::Future for PushAsync<'_, T> {
    type Output = Result<Uuid, PushError<T>>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        let (engine, bytes, slot) = (this.engine, this.bytes, &mut this.payload);
        let origin = &mut this.origin;
        if slot.is_none() {
            // Polled after it completed: nothing left to do.
            return std::task::Poll::Pending;
        }
        this.wait.poll(&engine.log.room, cx, || {
            let Some(payload) = slot.take() else {
                return Err(crate::wait::Next::Wait);
            };
            let tried = match origin {
                None => engine.try_push_for_room(payload, bytes),
                Some(origin) => engine.try_push_origin_for_room(payload, bytes, origin),
            };
            tried.map_err(|(payload, next)| {
                *slot = Some(payload);
                next
            })
        })
    }
}

#[cfg(feature = "async")]
impl<T: Send + Sync + 'static> Drop for PushAsync<'_, T> {
    fn drop(&mut self) {
        self.wait.finish(&self.engine.log.room);
    }
}

/// What all `Queue` clones share; dropping it closes the queue and
/// deregisters it from the housekeeping thread (which holds the `Engine`
/// only weakly, and never this, so it cannot keep the queue alive).
struct Handle<T: Send + Sync + 'static> {
    /// The queue state, shared with consumers and the sweeper.
    shared: Arc<Engine<T>>,
    /// The registration for background sweeps, if any.
    sweeper: Option<crate::sweeper::Sweeper>,
    /// The queue's groups by name, and its anonymous groups' numbers.
    directory: std::sync::Arc<crate::directory::Directory<T>>,
}

impl<T: Send + Sync + 'static> Drop for Handle<T> {
    fn drop(&mut self) {
        self.shared.log.close();
        // Deregisters from the housekeeping thread; never waits for it.
        self.sweeper = None;
        // Its final figures are reported, and its `queue` label is free
        // for another queue of the same name.
        #[cfg(feature = "metrics")]
        crate::metrics::unregister(self.shared.id, &crate::stats::snapshot(&self.shared));
    }
}

impl<T: Send + Sync + 'static> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self {
            lease: Lease::new(),
            handle: self.handle.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name())
            .field("id", &self.id())
            // `retained()` may wait for a `close` in flight; `Debug` never
            // waits.
            .field("retained", &{
                let log = &self.shared().log;
                log.tail_now().saturating_sub(log.head_seq())
            })
            .field("memory_used", &self.memory_used())
            .field("consumers", &self.consumer_count())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T: EstimateSize + Send + Sync + 'static> Queue<T> {
    /// A queue with the default settings: 1 MiB budget, `Reject` on
    /// overflow, 10-minute TTL, a sweep every 30 seconds.
    ///
    /// # Panics
    /// If `name` contains a NUL byte, or the operating system refuses to
    /// start the sweeper thread (use [`Queue::builder`] to get either as a
    /// [`ConfigError`] instead).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u64> = chunkq::Queue::new("metrics");
    /// assert_eq!(q.name(), "metrics");
    /// assert_eq!(q.memory_limit(), 1_048_576);
    /// ```
    pub fn new(name: &str) -> Self {
        Self::builder(name)
            .build()
            .expect("the default settings are valid")
    }
}

impl<T: Send + Sync + 'static> Queue<T> {
    /// A builder for a queue named `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Overflow, Queue};
    /// use std::time::Duration;
    /// let q: Queue<Vec<u8>> = Queue::builder("frames")
    ///     .memory_limit(64 << 20)
    ///     .ttl(Duration::from_secs(5))
    ///     .overflow(Overflow::DropOldest)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(q.ttl(), Duration::from_secs(5));
    /// ```
    pub fn builder(name: &str) -> Builder<T> {
        Builder {
            name: name.to_owned(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            ttl: DEFAULT_TTL,
            sweep_interval: Some(DEFAULT_SWEEP_INTERVAL),
            overflow: Overflow::Reject,
            clock: Clock::system(),
            sizer: TraitSizer,
            _payload: PhantomData,
        }
    }

    /// The shared state.
    pub(crate) fn shared(&self) -> &Arc<Engine<T>> {
        &self.handle.shared
    }

    /// The queue's name.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("orders");
    /// assert_eq!(q.name(), "orders");
    /// ```
    pub fn name(&self) -> &str {
        &self.shared().log.name
    }

    /// The queue's UUID (v7), distinct for every queue built.
    ///
    /// # Examples
    ///
    /// ```
    /// let a: chunkq::Queue<u8> = chunkq::Queue::new("x");
    /// let b: chunkq::Queue<u8> = chunkq::Queue::new("x");
    /// assert_ne!(a.id(), b.id());
    /// assert_eq!(a.id(), a.clone().id());
    /// ```
    pub fn id(&self) -> Uuid {
        self.shared().id
    }

    /// Pushes `payload` as a new item and returns its UUID.
    ///
    /// Never blocks: with `Overflow::DropOldest` it may evict older items
    /// (and wait for a push in flight to publish the slot it evicts).
    ///
    /// # Errors
    /// Each hands the payload back: [`PushError::Full`] if the budget is
    /// full under `Overflow::Reject` (a retry may succeed);
    /// [`PushError::TooLarge`] if this one payload is larger than the whole
    /// budget (under either policy; a retry cannot succeed);
    /// [`PushError::Closed`] if the queue is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<&str> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// let id = q.push("x").unwrap();
    /// assert_eq!(c.try_recv().unwrap().id(), id);
    /// ```
    pub fn push(&self, payload: T) -> Result<Uuid, PushError<T>> {
        self.shared().push_fresh_leased(payload, &self.lease)
    }

    /// Pushes `payload`, blocking up to `timeout` for room when the budget
    /// is full under `Overflow::Reject` (where [`Queue::push`] would return
    /// `Full`): backpressure for producer threads. Room appears when
    /// consumers read (what every consumer has read is released), when
    /// items expire, and when a consumer that held the oldest items back is
    /// dropped; the waiting producer is woken then, and takes no lock and
    /// costs nothing to the other pushes while it waits. Under
    /// `Overflow::DropOldest` it never waits (it evicts, as `push` does).
    ///
    /// The payload is sized once, before the first try. `Duration::ZERO`
    /// tries once (trimming what every consumer has read, as `push` does).
    ///
    /// # Errors
    /// Each hands the payload back: [`PushTimeoutError::Timeout`] if no room
    /// appeared in time, [`PushTimeoutError::Closed`] if the queue is closed
    /// (also when it closes while the push waits: the wait ends at once),
    /// and [`PushTimeoutError::TooLarge`] at once if this one payload is
    /// larger than the whole budget.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{PushTimeoutError, Queue};
    /// use std::time::Duration;
    ///
    /// let q: Queue<u64> = Queue::builder("jobs").memory_limit(1000).build().unwrap();
    /// let c = q.subscribe();
    /// while q.push(0).is_ok() {} // full, under the default Overflow::Reject
    /// let t = std::thread::spawn({
    ///     let q = q.clone();
    ///     // Waits for the consumer below instead of failing with Full.
    ///     move || q.push_timeout(42, Duration::from_secs(60))
    /// });
    /// let mut last = 0;
    /// while last != 42 {
    ///     last = *c.recv().unwrap().payload();
    /// }
    /// assert!(t.join().unwrap().is_ok());
    ///
    /// // Nobody reads now: the time runs out and the payload comes back.
    /// while q.push(0).is_ok() {}
    /// let err = q.push_timeout(7, Duration::from_millis(10)).unwrap_err();
    /// assert!(matches!(err, PushTimeoutError::Timeout(7)));
    /// ```
    pub fn push_timeout(&self, payload: T, timeout: Duration) -> Result<Uuid, PushTimeoutError<T>> {
        let engine = self.shared();
        let bytes = engine.accounted(&payload, 1);
        let deadline = Instant::now().checked_add(timeout);
        let pushed = engine.log.room.wait_for(
            payload,
            |payload| engine.try_push_for_room(payload, bytes),
            deadline,
        );
        match pushed {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(PushError::Closed(payload))) => Err(PushTimeoutError::Closed(payload)),
            Ok(Err(PushError::TooLarge(payload))) => Err(PushTimeoutError::TooLarge(payload)),
            // (`try_push_for_room` waits on `Full`, never returns it.)
            Ok(Err(PushError::Full(payload))) | Err(payload) => {
                Err(PushTimeoutError::Timeout(payload))
            }
        }
    }

    /// Pushes `payload`, waiting (asynchronously) for room when the budget
    /// is full under `Overflow::Reject`, where [`Queue::push`] would return
    /// `Full`: backpressure for async producers. The async form of
    /// [`Queue::push_timeout`] without a deadline (put it in a `select!`
    /// with a timer for one); runtime-agnostic. Under `Overflow::DropOldest`
    /// it never waits.
    ///
    /// The payload is sized when this is called. It is pushed only inside
    /// the poll that returns `Ok`: dropping the future before that drops
    /// the payload without pushing it (nothing half-done is left behind).
    ///
    /// # Errors
    /// [`PushError::Closed`] if the queue is closed (also when it closes
    /// while the push waits), [`PushError::TooLarge`] at once if this one
    /// payload is larger than the whole budget (waiting cannot help); both
    /// hand the payload back. It never returns [`PushError::Full`]: it
    /// waits instead.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// use chunkq::Queue;
    ///
    /// let q: Queue<u64> = Queue::builder("jobs").memory_limit(2000).build().unwrap();
    /// let c = q.subscribe();
    /// let reader = std::thread::spawn(move || c.iter().map(|d| *d.payload()).sum::<u64>());
    /// for i in 1..=1000 {
    ///     q.push_async(i).await.unwrap(); // waits for the reader when full
    /// }
    /// q.close();
    /// assert_eq!(reader.join().unwrap(), 500_500);
    /// # });
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn push_async(
        &self,
        payload: T,
    ) -> impl std::future::Future<Output = Result<Uuid, PushError<T>>> + Send + '_ {
        let engine = self.shared();
        PushAsync {
            engine,
            bytes: engine.accounted(&payload, 1),
            payload: Some(payload),
            origin: None,
            wait: crate::wait::AsyncWait::new(),
        }
    }

    /// Pushes every payload of `items`, in order, as consecutive items.
    /// Returns how many were pushed (all of them on success).
    ///
    /// When the whole batch fits in the budget it costs one budget
    /// reservation, one sequence reservation and one wake-up; otherwise the
    /// items go one by one under the overflow policy. On a refusal the
    /// error holds the payloads that were not pushed, the refused one first;
    /// everything before them was pushed.
    ///
    /// # Errors
    /// [`PushBatchError::Full`], [`PushBatchError::TooLarge`] or
    /// [`PushBatchError::Closed`] (as [`PushError`]'s variants, for the first
    /// payload not pushed), with the payloads not pushed.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u32> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// assert_eq!(q.push_batch(0..100).unwrap(), 100);
    /// let mut got = Vec::new();
    /// assert_eq!(c.try_recv_many(&mut got, 1000).unwrap(), 64); // one claim
    /// assert_eq!(*got[63].payload(), 63);
    /// ```
    pub fn push_batch<I>(&self, items: I) -> Result<usize, PushBatchError<T>>
    where
        I: IntoIterator<Item = T>,
    {
        self.shared().push_batch(items.into_iter().collect())
    }

    /// Pushes a copy of a delivered item into this queue, keeping its UUID,
    /// creation time and history, plus the dequeue from the old queue and the
    /// enqueue here. Returns the (unchanged) UUID.
    ///
    /// # Errors
    /// As [`Queue::push`]; the error holds the cloned payload.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{EventKind, Queue};
    /// let raw: Queue<String> = Queue::new("raw");
    /// let clean: Queue<String> = Queue::new("clean");
    /// let (r, c) = (raw.subscribe(), clean.subscribe());
    /// let id = raw.push("msg".into()).unwrap();
    /// let d = r.try_recv().unwrap();
    /// assert_eq!(clean.forward(&d).unwrap(), id);
    /// let f = c.try_recv().unwrap();
    /// assert_eq!(f.id(), id);
    /// assert_eq!(f.events().len(), 3);
    /// assert_eq!(f.events()[2].kind(), EventKind::Enqueued);
    /// assert_eq!(f.events()[2].queue(), "clean");
    /// ```
    pub fn forward(&self, delivery: &Delivery<T>) -> Result<Uuid, PushError<T>>
    where
        T: Clone,
    {
        let mut events = Vec::with_capacity(delivery.events().len() + 2);
        events.extend_from_slice(&delivery.events());
        events.push(delivery.dequeue_event());
        self.shared().push(
            delivery.payload().clone(),
            Some((delivery.id(), delivery.created_nanos(), events)),
        )
    }

    /// Pushes an item that arrives in its envelope, from another process or
    /// another system ([`Delivery::to_envelope`] on the sending side): it
    /// keeps its UUID, creation time and history, and gets this queue's
    /// enqueue event appended and a new sequence number here (the
    /// envelope's `seq` is not used). The history counts against the
    /// budget, as for [`Queue::forward`].
    ///
    /// # Errors
    /// As [`Queue::push`]; the error hands the payload back.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Envelope, Event, EventKind, Queue, Uuid};
    /// use std::time::SystemTime;
    /// let q: Queue<&str> = Queue::new("import");
    /// let c = q.subscribe();
    /// let id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    /// let created = SystemTime::now();
    /// let env = Envelope {
    ///     id,
    ///     created,
    ///     seq: 41,
    ///     history: vec![Event::new(EventKind::Enqueued, "remote", created)],
    ///     payload: "hello",
    /// };
    /// assert_eq!(q.push_envelope(env).unwrap(), id);
    /// let d = c.try_recv().unwrap();
    /// assert_eq!((d.id(), d.seq(), d.events().len()), (id, 0, 2));
    /// assert_eq!(d.events()[1].queue(), "import");
    /// ```
    pub fn push_envelope(&self, envelope: Envelope<T>) -> Result<Uuid, PushError<T>> {
        let (payload, origin) = origin_of(envelope);
        self.shared().push(payload, Some(origin))
    }

    /// [`Queue::push_envelope`] that waits (asynchronously) for room when
    /// the budget is full under `Overflow::Reject`, as
    /// [`Queue::push_async`] does for a fresh payload: the item keeps its
    /// UUID, creation time and history, gets this queue's enqueue event
    /// appended and a new sequence number here. The way in of a bridge
    /// from another system that wants backpressure instead of a retry loop
    /// on `Full`; runtime-agnostic. Under `Overflow::DropOldest` it never
    /// waits.
    ///
    /// The item (payload and history) is sized when this is called. It is
    /// pushed only inside the poll that returns `Ok`: dropping the future
    /// before that drops the envelope without pushing it.
    ///
    /// # Errors
    /// As [`Queue::push_async`]: [`PushError::Closed`] if the queue is
    /// closed (also when it closes while the push waits),
    /// [`PushError::TooLarge`] at once if this one item is larger than the
    /// whole budget; both hand the payload back. It never returns
    /// [`PushError::Full`]: it waits instead.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// use chunkq::{Envelope, Event, EventKind, Queue, Uuid};
    /// use std::time::SystemTime;
    ///
    /// let q: Queue<u64> = Queue::builder("import").memory_limit(2000).build().unwrap();
    /// let c = q.subscribe();
    /// let reader = std::thread::spawn(move || {
    ///     c.iter().map(|d| (d.id(), d.events().len(), *d.payload())).collect::<Vec<_>>()
    /// });
    /// let created = SystemTime::now();
    /// for i in 1..=200u64 {
    ///     let env = Envelope {
    ///         id: Uuid::from_u128(u128::from(i)),
    ///         created,
    ///         seq: 0,
    ///         history: vec![Event::new(EventKind::Enqueued, "remote", created)],
    ///         payload: i,
    ///     };
    ///     // Waits for the reader when the budget is full.
    ///     assert_eq!(q.push_envelope_async(env).await.unwrap(), Uuid::from_u128(u128::from(i)));
    /// }
    /// q.close();
    /// let got = reader.join().unwrap();
    /// assert_eq!(got.len(), 200);
    /// assert!(got.iter().all(|&(id, events, i)| id == Uuid::from_u128(u128::from(i)) && events == 2));
    /// # });
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn push_envelope_async(
        &self,
        envelope: Envelope<T>,
    ) -> impl std::future::Future<Output = Result<Uuid, PushError<T>>> + Send + '_ {
        let (payload, origin) = origin_of(envelope);
        let engine = self.shared();
        PushAsync {
            engine,
            bytes: engine.accounted(&payload, origin.2.len() + 1),
            payload: Some(payload),
            origin: Some(origin),
            wait: crate::wait::AsyncWait::new(),
        }
    }

    /// A new independent consumer, starting at the oldest retained item.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// q.push(1).unwrap();
    /// let (a, b) = (q.subscribe(), q.subscribe());
    /// assert_eq!(*a.try_recv().unwrap().payload(), 1);
    /// assert_eq!(*b.try_recv().unwrap().payload(), 1); // b has its own cursor
    /// ```
    #[must_use = "a consumer dropped at once deregisters its group"]
    pub fn subscribe(&self) -> Consumer<T> {
        self.subscribe_from(Start::Oldest)
    }

    /// A new independent consumer starting at `start`.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Queue, Start, TryRecvError};
    /// let q: Queue<u8> = Queue::new("a");
    /// q.push(1).unwrap();
    /// let c = q.subscribe_from(Start::Latest);
    /// assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Empty);
    /// ```
    #[must_use = "a consumer dropped at once deregisters its group"]
    pub fn subscribe_from(&self, start: Start) -> Consumer<T> {
        Consumer::new(self.shared().clone(), start, &self.handle.directory)
    }

    /// A member of the consumer group named `name`: joins the group (its
    /// cursor, its missed counts, its notices) if one of that name lives in
    /// this queue, otherwise makes it, starting at `start` (ignored when
    /// joining). The in-process form of a Kafka `group.id` or a JetStream
    /// durable consumer: handles made by separate calls compete for the
    /// group's items, as clones do. The group lives while any of its
    /// handles does; after the last drops, the name starts a new group.
    ///
    /// [`Queue::stats`] and the `metrics` feature label a named group by
    /// its name (anonymous groups by a small number: `#0`, `#1`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Queue, Start};
    /// let q: Queue<u32> = Queue::new("orders");
    /// let billing = q.subscribe_group("billing", Start::Oldest);
    /// q.push_batch([1, 2, 3]).unwrap();
    /// assert_eq!(*billing.try_recv().unwrap().payload(), 1);
    /// // Elsewhere in the program: the same group, where it stands.
    /// let billing2 = q.subscribe_group("billing", Start::Latest);
    /// assert_eq!(billing2.id(), billing.id());
    /// assert_eq!(*billing2.try_recv().unwrap().payload(), 2);
    /// assert_eq!(q.consumer_count(), 1);
    /// let s = q.stats();
    /// assert_eq!((s.groups[0].name.as_deref(), s.groups[0].members), (Some("billing"), 2));
    /// ```
    #[must_use = "a consumer dropped at once leaves its group (and ends it if it was the last)"]
    pub fn subscribe_group(&self, name: &str, start: Start) -> Consumer<T> {
        Consumer::named(self.shared().clone(), name, start, &self.handle.directory)
    }

    /// Items some consumer group has not read yet (tokio's `len`): from the
    /// slowest group's cursor to the newest item, counting only retained
    /// items (an item that expired or was evicted unread is missed, not
    /// queued). With no group subscribed, every retained item counts: it
    /// is kept for a subscriber that may come. A push in flight counts.
    ///
    /// Items every group has read are not counted, even while they are
    /// still retained (they are released a chunk at a time: when a consumer
    /// leaves a chunk, when the budget is full, or on a sweep); see
    /// [`Queue::retained`] for those.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// q.push_batch([1, 2, 3]).unwrap(); // nobody subscribed: kept
    /// assert_eq!(q.len(), 3);
    /// let (fast, slow) = (q.subscribe(), q.subscribe());
    /// while fast.try_recv().is_ok() {}
    /// assert_eq!(q.len(), 3); // `slow` has read nothing
    /// while slow.try_recv().is_ok() {}
    /// assert_eq!(q.len(), 0); // read by every group...
    /// assert_eq!(q.retained(), 3); // ...and not released yet
    /// ```
    pub fn len(&self) -> usize {
        crate::stats::unread(&self.shared().log)
    }

    /// Whether no consumer group has anything left to read ([`Queue::len`]
    /// is 0).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// assert!(q.is_empty());
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// assert!(!q.is_empty());
    /// c.try_recv().unwrap();
    /// assert!(q.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Retained items: pushed and not yet expired, evicted, or released
    /// after every consumer read them, whether read already or not. (Items
    /// read by every consumer are released a chunk at a time, when a
    /// consumer leaves a chunk, when the budget is full, or on a sweep;
    /// until then they still count here.) What [`Queue::memory_used`]
    /// accounts for.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// q.push(2).unwrap();
    /// c.try_recv().unwrap();
    /// assert_eq!((q.retained(), q.len()), (2, 1));
    /// ```
    pub fn retained(&self) -> usize {
        // Saturates where `usize` is narrower than the sequence numbers.
        usize::try_from(self.shared().log.len()).unwrap_or(usize::MAX)
    }

    /// The overflow policy this queue was built with
    /// ([`Builder::overflow`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Overflow, Queue};
    /// let q: Queue<u8> = Queue::builder("a").overflow(Overflow::DropOldest).build().unwrap();
    /// assert_eq!(q.overflow(), Overflow::DropOldest);
    /// assert_eq!(Queue::<u8>::new("b").overflow(), Overflow::Reject);
    /// ```
    pub fn overflow(&self) -> Overflow {
        self.shared().overflow
    }

    /// Registered consumer groups (independent cursors; clones of one
    /// consumer count once).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let a = q.subscribe();
    /// let a2 = a.clone();
    /// let _b = q.subscribe();
    /// assert_eq!(q.consumer_count(), 2);
    /// drop(a);
    /// drop(a2);
    /// assert_eq!(q.consumer_count(), 1);
    /// ```
    pub fn consumer_count(&self) -> usize {
        let guard = epoch::pin();
        self.shared().log.registry.load(&guard).len()
    }

    /// Closes the queue: pushes fail with [`PushError::Closed`]; consumers
    /// still read what is retained, then get `Closed`. Blocked receivers
    /// wake up. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Queue, TryRecvError};
    /// let q: Queue<u8> = Queue::new("a");
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// q.close();
    /// assert!(q.push(2).is_err());
    /// assert_eq!(*c.try_recv().unwrap().payload(), 1);
    /// assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Closed);
    /// ```
    pub fn close(&self) {
        self.shared().log.close();
    }

    /// Whether the queue is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// q.close();
    /// assert!(q.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared().log.is_closed()
    }

    /// A handle that does not keep the queue open: [`WeakQueue::upgrade`]
    /// gives a `Queue` back while another `Queue` handle lives, `None`
    /// once the last one dropped (the queue then closed and its sweeper
    /// stopped, as without the weak handle).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let weak = q.downgrade();
    /// weak.upgrade().unwrap().push(1).unwrap();
    /// drop(q);
    /// assert!(weak.upgrade().is_none());
    /// ```
    #[must_use]
    pub fn downgrade(&self) -> WeakQueue<T> {
        WeakQueue {
            handle: std::sync::Arc::downgrade(&self.handle),
        }
    }

    /// Blocks until no consumer is subscribed (every `Consumer` handle of
    /// every group dropped), or `timeout` passes; returns whether none is.
    /// A producer's way to learn that nobody listens any more (tokio's
    /// `Sender::closed`); it returns at once if none is subscribed now.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// assert!(!q.wait_unsubscribed(Duration::from_millis(1)));
    /// let t = std::thread::spawn(move || drop(c));
    /// assert!(q.wait_unsubscribed(Duration::from_secs(60)));
    /// t.join().unwrap();
    /// ```
    #[must_use = "false means a consumer is still subscribed"]
    pub fn wait_unsubscribed(&self, timeout: Duration) -> bool {
        let log = &self.shared().log;
        // The last handle of a group deregisters it (a SeqCst store of the
        // registry), then notifies `noticed`: the eventcount's protocol
        // (`wait.rs`) with `consumer_count`'s SeqCst load as the re-check.
        let deadline = std::time::Instant::now().checked_add(timeout);
        log.noticed
            .wait_until(|| self.consumer_count() == 0, deadline)
    }

    /// How many payload `Drop`s panicked when chunkq dropped items it had
    /// removed (expired, evicted, or released after every consumer read
    /// them).
    ///
    /// chunkq drops a removed item's payload after a grace period, on
    /// whichever thread next runs the epoch collector: often a thread that
    /// is pushing into or reading from another queue. A panic there is
    /// *caught*: the panic hook reports it as usual, the other items are
    /// still dropped, the queue stays consistent, and the panic is counted
    /// here instead of unwinding through an unrelated operation. (The
    /// panicking item's own allocation is leaked, as `Arc` leaks it.) A
    /// panic in the `Drop` of a payload *you* drop, the last [`Delivery`] of
    /// an item, unwinds in your thread as usual.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// q.push(1).unwrap();
    /// assert_eq!(q.drop_panics(), 0);
    /// ```
    pub fn drop_panics(&self) -> u64 {
        self.shared().log.drop_panics()
    }

    /// Accounted bytes of the retained items (and of pushes in flight).
    /// Never above [`Queue::memory_limit`]. The memory of released items is
    /// freed a little later, by the epoch collector, once no reader can
    /// reach them.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<String> = chunkq::Queue::new("a");
    /// assert_eq!(q.memory_used(), 0);
    /// q.push("x".repeat(100)).unwrap();
    /// assert!(q.memory_used() >= 100);
    /// ```
    pub fn memory_used(&self) -> usize {
        self.shared().log.used()
    }

    /// A snapshot of the queue's state and counters, and of every consumer
    /// group: see [`Stats`]. Each figure is read atomically, the snapshot as
    /// a whole is not (a push racing with it may show in one figure and not
    /// in another). Cursors left behind by a removal are caught up first,
    /// so the groups' missed totals are exact as of the call (as
    /// [`Consumer::missed`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::Queue;
    /// let q: Queue<u32> = Queue::new("jobs");
    /// let c = q.subscribe();
    /// q.push_batch([1, 2, 3]).unwrap();
    /// c.try_recv().unwrap();
    /// let s = q.stats();
    /// // Two items are unread; three are still retained.
    /// assert_eq!((s.len, s.retained, s.pushed, s.refused), (2, 3, 3, 0));
    /// assert_eq!(s.groups.len(), 1);
    /// assert_eq!((s.groups[0].id, s.groups[0].members, s.groups[0].lag), (c.id(), 1, 2));
    /// assert!(s.oldest_age.is_some());
    /// ```
    pub fn stats(&self) -> Stats {
        crate::stats::snapshot(self.shared())
    }

    /// Reports [`Queue::stats`] through the `metrics` facade to the
    /// installed recorder: gauges and counters labelled with the queue's
    /// name (and per group its UUID); the table of metric names is in the
    /// crate docs' "Cargo features" section. The sweeper thread also
    /// reports after every sweep. Feature `metrics`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "metrics")] {
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("orders");
    /// q.push(1).unwrap();
    /// // With a recorder installed (metrics-exporter-prometheus, ...), this
    /// // sets chunkq_len{queue="orders"} to 1, and so on.
    /// q.report_metrics();
    /// # }
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn report_metrics(&self) {
        crate::metrics::report(&self.stats());
    }

    /// Items per chunk of the log: a power of two from 32 to 1024, chosen
    /// from the size of the envelope with its payload inline (about 64 KiB
    /// of slots per chunk). Chunks are allocated whole, so an empty queue
    /// holds one or two of them; and what every consumer has read is
    /// released a chunk at a time (when the slowest consumer leaves a
    /// chunk, or by a sweep).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u64> = chunkq::Queue::new("a");
    /// let cap = q.chunk_capacity();
    /// assert!(cap.is_power_of_two() && (32..=1024).contains(&cap));
    /// ```
    pub fn chunk_capacity(&self) -> usize {
        self.shared().log.chunk_capacity() as usize
    }

    /// The memory budget in accounted bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::builder("a").memory_limit(4096).build().unwrap();
    /// assert_eq!(q.memory_limit(), 4096);
    /// ```
    pub fn memory_limit(&self) -> usize {
        self.shared().log.limit
    }

    /// The time to live of items in this queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// assert_eq!(q.ttl(), std::time::Duration::from_secs(600));
    /// ```
    pub fn ttl(&self) -> Duration {
        Duration::from_nanos(self.shared().ttl)
    }

    /// Sweeps now, on this thread: releases what every consumer has read,
    /// then expires every retained item whose TTL has run out, counting them
    /// as missed for each consumer that had not read them. Returns how many
    /// items expired.
    ///
    /// Between two sweeps an item older than its TTL is still retained, and
    /// a consumer may still read it; it is then delivered, not counted as
    /// missed. Expiry goes in sequence order and stops at the first item that
    /// is still young, so an old item queued right behind a younger one
    /// (pushed concurrently) expires with it.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Clock, Queue};
    /// use std::time::Duration;
    /// let clock = Clock::manual();
    /// let q: Queue<u8> = Queue::builder("a").ttl(Duration::from_secs(1)).clock(clock.clone()).build().unwrap();
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(q.expire_now(), 1);
    /// assert_eq!(c.missed().expired, 1);
    /// ```
    pub fn expire_now(&self) -> usize {
        self.shared().sweep()
    }
}

/// Sizing by [`EstimateSize`] (the builder's default).
///
/// # Examples
///
/// ```
/// use chunkq::{Builder, Queue, TraitSizer};
/// let b: Builder<String, TraitSizer> = Queue::builder("a");
/// let q = b.build().unwrap();
/// q.push("x".repeat(64)).unwrap();
/// assert!(q.memory_used() >= 64);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TraitSizer;

/// Sizing by a user closure (see [`Builder::sizer`]).
///
/// # Examples
///
/// ```
/// use chunkq::{Builder, FnSizer, Queue};
/// let b: Builder<Vec<u8>, FnSizer<Vec<u8>>> = Queue::builder("a").sizer(|v: &Vec<u8>| v.len());
/// let q = b.build().unwrap();
/// q.push(vec![0; 100]).unwrap();
/// assert!(q.memory_used() >= 100);
/// ```
pub struct FnSizer<T>(SizeFn<T>);

impl<T> fmt::Debug for FnSizer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnSizer(..)")
    }
}

/// Builds a [`Queue`] with non-default settings. Invalid settings make
/// [`Builder::build`] return a [`ConfigError`]; nothing panics.
///
/// # Examples
///
/// ```
/// use chunkq::{ConfigError, Queue};
/// use std::time::Duration;
/// assert_eq!(
///     Queue::<u8>::builder("a").ttl(Duration::ZERO).build().unwrap_err(),
///     ConfigError::ZeroTtl
/// );
/// ```
#[derive(Debug)]
#[must_use = "a Builder makes no queue until `build` is called"]
pub struct Builder<T, S = TraitSizer> {
    /// Queue name.
    name: String,
    /// Budget in accounted bytes.
    memory_limit: usize,
    /// Time to live.
    ttl: Duration,
    /// Background sweep period, `None` for none.
    sweep_interval: Option<Duration>,
    /// Overflow policy.
    overflow: Overflow,
    /// Time source.
    clock: Clock,
    /// How payloads are sized.
    sizer: S,
    /// The payload type.
    _payload: PhantomData<fn(T) -> T>,
}

impl<T: Send + Sync + 'static, S> Builder<T, S> {
    /// The memory budget in accounted bytes (default 1 MiB). Must be > 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::builder("a").memory_limit(1 << 20).build().unwrap();
    /// assert_eq!(q.memory_limit(), 1 << 20);
    /// ```
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Time to live from an item's enqueue (default 10 minutes). Must be > 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q: chunkq::Queue<u8> = chunkq::Queue::builder("a").ttl(Duration::from_millis(50)).build().unwrap();
    /// assert_eq!(q.ttl(), Duration::from_millis(50));
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How often this queue is swept in the background (default 30 s);
    /// `None`: never (call [`Queue::expire_now`] yourself), no background
    /// work at all. `Some(ZERO)` is an error.
    ///
    /// One housekeeping thread per process (named `chunkq-sweeper`) sweeps
    /// every queue at its own interval. It starts with the first queue that
    /// needs it and exits when the last one is dropped; dropping a queue
    /// never waits for it. A sweep may run payload drops (user code), so a
    /// slow `Drop` delays the other queues' sweeps too. Under `--cfg loom` there is no such thread: loom cannot
    /// model it, so queues are swept only on demand.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q: chunkq::Queue<u8> = chunkq::Queue::builder("a").sweep_interval(None).build().unwrap();
    /// # drop(q);
    /// ```
    pub fn sweep_interval(mut self, every: Option<Duration>) -> Self {
        self.sweep_interval = every;
        self
    }

    /// What to do when the budget is full (default [`Overflow::Reject`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Overflow, Queue};
    /// let q: Queue<u8> = Queue::builder("a").overflow(Overflow::DropOldest).memory_limit(500).build().unwrap();
    /// for i in 0..100 { q.push(i).unwrap(); } // never Full: old items make room
    /// ```
    pub fn overflow(mut self, policy: Overflow) -> Self {
        self.overflow = policy;
        self
    }

    /// The time source (default [`Clock::system`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = chunkq::Clock::manual();
    /// let q: chunkq::Queue<u8> = chunkq::Queue::builder("a").clock(clock).build().unwrap();
    /// # drop(q);
    /// ```
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Sizes payloads with `f`, which returns the heap bytes a payload owns
    /// (chunkq adds `size_of::<T>()` and the envelope itself). Works for any
    /// `T`, with or without [`EstimateSize`].
    ///
    /// # Examples
    ///
    /// ```
    /// struct Frame(Vec<u8>);
    /// let q: chunkq::Queue<Frame> = chunkq::Queue::builder("frames")
    ///     .sizer(|f: &Frame| f.0.capacity())
    ///     .build()
    ///     .unwrap();
    /// q.push(Frame(vec![0; 1000])).unwrap();
    /// assert!(q.memory_used() >= 1000);
    /// ```
    pub fn sizer<F>(self, f: F) -> Builder<T, FnSizer<T>>
    where
        F: Fn(&T) -> usize + Send + Sync + 'static,
    {
        self.with_sizer(FnSizer(Box::new(f)))
    }

    /// Sizes payloads with the `get-size2` crate's `GetSize::get_heap_size`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "get-size2")] {
    /// let q: chunkq::Queue<Vec<String>> = chunkq::Queue::builder("a").get_size2().build().unwrap();
    /// q.push(vec!["x".repeat(500)]).unwrap();
    /// assert!(q.memory_used() >= 500);
    /// # }
    /// ```
    #[cfg(feature = "get-size2")]
    #[cfg_attr(docsrs, doc(cfg(feature = "get-size2")))]
    pub fn get_size2(self) -> Builder<T, FnSizer<T>>
    where
        T: get_size2::GetSize,
    {
        self.sizer(|t: &T| get_size2::GetSize::get_heap_size(t))
    }

    /// Replaces the sizing strategy.
    fn with_sizer<S2>(self, sizer: S2) -> Builder<T, S2> {
        Builder {
            name: self.name,
            memory_limit: self.memory_limit,
            ttl: self.ttl,
            sweep_interval: self.sweep_interval,
            overflow: self.overflow,
            clock: self.clock,
            sizer,
            _payload: PhantomData,
        }
    }

    /// Validates the settings and builds the queue with `sizer`.
    fn finish(self, sizer: SizeFn<T>) -> Result<Queue<T>, ConfigError> {
        if self.memory_limit == 0 {
            return Err(ConfigError::ZeroMemoryLimit);
        }
        if self.ttl.is_zero() {
            return Err(ConfigError::ZeroTtl);
        }
        if self.sweep_interval.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::ZeroSweepInterval);
        }
        if self.name.contains('\0') {
            return Err(ConfigError::NulInName);
        }
        let shared = Arc::new(Engine {
            log: Log::new(
                Name::new(self.name.into_boxed_str()),
                self.clock,
                self.memory_limit,
            ),
            id: crate::id::uuid_v7(),
            ttl: u64::try_from(self.ttl.as_nanos()).unwrap_or(u64::MAX),
            overflow: self.overflow,
            sizer,
            refused: Default::default(),
        });
        let sweeper = match self.sweep_interval {
            None => None,
            Some(every) => Some(
                crate::sweeper::Sweeper::start(&shared, every)
                    .map_err(|_| ConfigError::SweeperSpawn)?,
            ),
        };
        // Registered once nothing can fail (the `Handle` built below
        // unregisters it); a sweep before that reports nothing.
        #[cfg(feature = "metrics")]
        crate::metrics::register(&shared.log.name, shared.id);
        let directory = std::sync::Arc::new(crate::directory::Directory::new(shared.id));
        Ok(Queue {
            lease: Lease::new(),
            handle: std::sync::Arc::new(Handle {
                shared,
                sweeper,
                directory,
            }),
        })
    }
}

impl<T: EstimateSize + Send + Sync + 'static> Builder<T, TraitSizer> {
    /// Builds the queue, sizing payloads with [`EstimateSize`].
    ///
    /// # Errors
    /// [`ConfigError`] for a zero memory limit, TTL or sweep interval, or a
    /// NUL byte in the name.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = chunkq::Queue::<String>::builder("a").build().unwrap();
    /// assert!(q.is_empty());
    /// ```
    pub fn build(self) -> Result<Queue<T>, ConfigError> {
        self.finish(Box::new(|t: &T| t.heap_size()))
    }
}

impl<T: Send + Sync + 'static> Builder<T, FnSizer<T>> {
    /// Builds the queue, sizing payloads with the closure given to
    /// [`Builder::sizer`].
    ///
    /// # Errors
    /// [`ConfigError`] for a zero memory limit, TTL or sweep interval, or a
    /// NUL byte in the name.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = chunkq::Queue::<[u8; 64]>::builder("a").sizer(|_| 0).build().unwrap();
    /// assert!(q.is_empty());
    /// ```
    pub fn build(mut self) -> Result<Queue<T>, ConfigError> {
        let FnSizer(f) = std::mem::replace(&mut self.sizer, FnSizer(Box::new(|_| 0)));
        self.finish(f)
    }
}
