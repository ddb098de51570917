//! What a consumer receives and what crosses a process boundary: the
//! [`Delivery`] (a counted reference to a stored [`Item`], with the
//! consumer and the dequeue time) and the owned [`Envelope`].
//!
//! Every consumer group that reads an item gets a [`Delivery`] holding a
//! counted reference to its slot (`chunk::Held`), so a broadcast never
//! copies the payload. The payload is dropped once, in place, when the last
//! of {the log, every delivery} lets go of it. The stored parts (item,
//! events, history, names) are in `item.rs`, below `chunk.rs`.

use crate::chunk::Held;
use crate::clock::to_system_time;
use std::fmt;
use std::ops::Deref;
use std::time::SystemTime;
use uuid::Uuid;

// The stored parts, also for the modules that still name them through here
// (`engine.rs`, `log/`): `item.rs` is where they live.
#[cfg(loom)]
pub(crate) use crate::item::name;
pub(crate) use crate::item::{Event, EventKind, History, Item, Name};

/// An item as one consumer received it: the shared [`Item`] (through
/// `Deref`), plus which consumer took it from which queue, and when.
///
/// # Examples
///
/// ```
/// use chunkq::Queue;
/// let q: Queue<u32> = Queue::new("ticks");
/// let c = q.subscribe();
/// q.push(42).unwrap();
/// let d = c.try_recv().unwrap();
/// assert_eq!(*d.payload(), 42);
/// assert_eq!(d.consumer_id(), c.id());
/// assert_eq!(d.queue(), "ticks");
/// ```
pub struct Delivery<T> {
    /// The shared envelope: a counted reference to its slot.
    item: Held<T>,
    /// The consumer (group) that dequeued it.
    consumer: Uuid,
    /// When it was dequeued (ns since the Unix epoch). The queue it was
    /// dequeued from is the one its last history event names.
    at: u64,
}

impl<T> Delivery<T> {
    /// Wraps a counted reference to a published item.
    pub(crate) fn new(item: Held<T>, consumer: Uuid, at: u64) -> Self {
        Self { item, consumer, at }
    }

    /// The UUID of the consumer that received it ([`crate::Consumer::id`];
    /// clones of a consumer share it).
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::Queue;
    /// let q: Queue<u8> = Queue::new("a");
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// assert_eq!(c.try_recv().unwrap().consumer_id(), c.id());
    /// ```
    pub fn consumer_id(&self) -> Uuid {
        self.consumer
    }

    /// When it was dequeued.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::Queue;
    /// let q: Queue<u8> = Queue::new("a");
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// let d = c.try_recv().unwrap();
    /// assert!(d.dequeued_at() >= d.enqueued());
    /// ```
    pub fn dequeued_at(&self) -> SystemTime {
        to_system_time(self.at)
    }

    /// The name of the queue it was dequeued from.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::Queue;
    /// let q: Queue<u8> = Queue::new("inbox");
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// assert_eq!(c.try_recv().unwrap().queue(), "inbox");
    /// ```
    pub fn queue(&self) -> &str {
        self.item.item().queue_str()
    }

    /// The dequeue as an [`Event`] (what [`crate::Queue::forward`] appends to
    /// the history).
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{EventKind, Queue};
    /// let q: Queue<u8> = Queue::new("a");
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// let d = c.try_recv().unwrap();
    /// assert_eq!(d.dequeue_event().kind(), EventKind::Dequeued);
    /// assert_eq!(d.dequeue_event().at(), d.dequeued_at());
    /// ```
    pub fn dequeue_event(&self) -> Event {
        Event::owned(EventKind::Dequeued, self.item.item().queue_name(), self.at)
    }

    /// The payload by value, if no other consumer still holds this item;
    /// otherwise the delivery back.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::Queue;
    /// let q: Queue<String> = Queue::new("a");
    /// let c = q.subscribe();
    /// q.push("x".into()).unwrap();
    /// let d = c.try_recv().unwrap();
    /// // The queue still retains the item, so it is shared:
    /// let d = d.try_into_payload().unwrap_err();
    /// assert_eq!(d.payload(), "x");
    /// ```
    pub fn try_into_payload(self) -> Result<T, Self> {
        let Self { item, consumer, at } = self;
        match item.try_take() {
            Ok(payload) => Ok(payload),
            Err(item) => Err(Self { item, consumer, at }),
        }
    }
}

impl<T: Clone> Delivery<T> {
    /// The item as an owned [`Envelope`]: its UUID, creation time, sequence
    /// number, history *including this delivery's dequeue*, and a clone of
    /// the payload. What to send to another process, whose
    /// [`crate::Queue::push_envelope`] continues the history (the
    /// cross-process counterpart of [`crate::Queue::forward`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{EventKind, Queue};
    /// let q: Queue<String> = Queue::new("a");
    /// let c = q.subscribe();
    /// let id = q.push("x".into()).unwrap();
    /// let env = c.try_recv().unwrap().to_envelope();
    /// assert_eq!((env.id, env.seq, env.payload.as_str()), (id, 0, "x"));
    /// let kinds: Vec<_> = env.history.iter().map(|e| e.kind()).collect();
    /// assert_eq!(kinds, [EventKind::Enqueued, EventKind::Dequeued]);
    /// ```
    pub fn to_envelope(&self) -> Envelope<T> {
        let mut history = Vec::with_capacity(self.events().len() + 1);
        history.extend_from_slice(&self.events());
        history.push(self.dequeue_event());
        Envelope {
            id: self.id(),
            created: self.created(),
            seq: self.seq(),
            history,
            payload: self.payload().clone(),
        }
    }
}

/// An item's envelope as a plain owned value: what crosses a process
/// boundary. Made from a [`Delivery`] ([`Delivery::to_envelope`]), pushed
/// with [`crate::Queue::push_envelope`], which keeps `id`, `created` and
/// `history` and appends its own enqueue. With the `serde` feature it is
/// `Serialize` and `Deserialize` when `T` is.
///
/// # Examples
///
/// ```
/// use chunkq::{Envelope, EventKind, Queue};
/// let a: Queue<u32> = Queue::new("a");
/// let b: Queue<u32> = Queue::new("b");
/// let (ca, cb) = (a.subscribe(), b.subscribe());
/// let id = a.push(7).unwrap();
/// let env: Envelope<u32> = ca.try_recv().unwrap().to_envelope();
/// // ... sent to another process, and pushed there:
/// assert_eq!(b.push_envelope(env).unwrap(), id);
/// let d = cb.try_recv().unwrap();
/// assert_eq!((d.id(), *d.payload()), (id, 7));
/// let events = d.events();
/// let trail: Vec<_> = events.iter().map(|e| (e.kind(), e.queue())).collect();
/// assert_eq!(trail, [
///     (EventKind::Enqueued, "a"),
///     (EventKind::Dequeued, "a"),
///     (EventKind::Enqueued, "b"),
/// ]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Envelope<T> {
    /// The item's UUID, kept across queues and processes.
    pub id: Uuid,
    /// When the item was first pushed anywhere.
    pub created: SystemTime,
    /// Its sequence number in the queue it was taken from (informational:
    /// a queue it is pushed into gives it a new one).
    pub seq: u64,
    /// Everything that happened to it so far, oldest first.
    pub history: Vec<Event>,
    /// The user's value.
    pub payload: T,
}

/// Another counted reference to the same delivered item (no copy of the
/// payload, no new dequeue: the clone reports the same consumer and dequeue
/// time). The item stays alive until its last `Delivery` drops; while two
/// are held, [`Delivery::try_into_payload`] hands back the delivery.
///
/// # Examples
///
/// ```
/// use chunkq::Queue;
/// let q: Queue<String> = Queue::new("a");
/// let c = q.subscribe();
/// q.push("x".into()).unwrap();
/// let d = c.try_recv().unwrap();
/// let e = d.clone();
/// assert!(std::ptr::eq(d.payload(), e.payload()));
/// assert_eq!((e.id(), e.dequeued_at()), (d.id(), d.dequeued_at()));
/// drop(q);
/// drop(c);
/// drop(d);
/// assert_eq!(e.payload(), "x"); // still alive
/// ```
impl<T> Clone for Delivery<T> {
    fn clone(&self) -> Self {
        Self {
            item: self.item.clone(),
            consumer: self.consumer,
            at: self.at,
        }
    }
}

impl<T> Deref for Delivery<T> {
    type Target = Item<T>;
    fn deref(&self) -> &Item<T> {
        self.item.item()
    }
}

impl<T: fmt::Debug> fmt::Debug for Delivery<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("item", self.item.item())
            .field("consumer", &self.consumer)
            .field("queue", &self.queue())
            .field("dequeued_at", &self.dequeued_at())
            .finish()
    }
}
