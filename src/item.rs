//! What a chunk stores: the [`Item`] every payload travels in (UUID,
//! creation time, sequence number, event [`History`], payload), its
//! [`Event`]s and the [`Events`] view of them, and the queue's [`Name`]
//! they share.
//!
//! An item is written in place into its slot of the log's chunk (no
//! allocation per item) and is immutable once published. This module knows
//! nothing of chunks or consumers: `chunk.rs` stores items, and the
//! [`Delivery`](crate::Delivery) a consumer receives (`envelope.rs`) holds
//! a counted reference to one, so the dependencies go one way
//! (`envelope.rs` → `chunk.rs` → `item.rs`).

use crate::clock::{from_system_time, to_system_time};
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;
use std::time::SystemTime;
use uuid::Uuid;

/// A queue's name, shared by the queue and by every [`Event`] that names
/// it: freed when the queue and the last such event are gone (names are not
/// interned for the life of the process). An `Arc` of a `Box<str>` rather
/// than an `Arc<str>`: its pointer is thin, so an [`Event`] (and with it
/// every item's envelope) is 8 bytes smaller; reading the name costs one
/// more load.
pub(crate) type Name = std::sync::Arc<Box<str>>;

/// A [`Name`] holding `name`.
pub(crate) fn name(name: &str) -> Name {
    Name::new(Box::from(name))
}

/// What happened to an item.
///
/// # Examples
///
/// ```
/// use chunkq::{EventKind, Queue};
/// let q: Queue<&str> = Queue::new("in");
/// let c = q.subscribe();
/// q.push("hi").unwrap();
/// let d = c.try_recv().unwrap();
/// assert_eq!(d.events()[0].kind(), EventKind::Enqueued);
/// assert_eq!(d.dequeue_event().kind(), EventKind::Dequeued);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum EventKind {
    /// The item was pushed into a queue.
    Enqueued,
    /// The item was received from a queue by a consumer.
    Dequeued,
}

/// One entry of an item's history: what happened, in which queue, and when.
///
/// # Examples
///
/// ```
/// use chunkq::{EventKind, Queue};
/// let q: Queue<u8> = Queue::new("ingest");
/// let c = q.subscribe();
/// q.push(7).unwrap();
/// let d = c.try_recv().unwrap();
/// let e = &d.events()[0];
/// assert_eq!((e.kind(), e.queue()), (EventKind::Enqueued, "ingest"));
/// assert!(e.at() <= d.dequeued_at());
/// ```
pub struct Event {
    /// The queue's name: the `Box<str>` of a [`Name`]. When `owned`
    /// this event holds one strong count of that `Arc`; otherwise it is
    /// *borrowed*: the event lives inside an item stored in a chunk, and the
    /// chunk holds a count of the name (its `Tether`) for as long as any
    /// of its items lives. A borrowed event never leaves its item: `Clone`
    /// makes an owned one. So an item pushed fresh costs no reference count
    /// on the queue's name, which every producer and consumer would share.
    queue: NonNull<Box<str>>,
    /// When, in nanoseconds since the Unix epoch.
    at: u64,
    /// Enqueue or dequeue.
    kind: EventKind,
    /// Whether `queue` carries a strong count of its `Arc` (see above).
    owned: bool,
}

// SAFETY: an `Event` is a shared, immutable `Name` (owned or borrowed
// as documented on `queue`), a time and two flags; a `Name` is `Send` and
// `Sync`.
unsafe impl Send for Event {}
// SAFETY: as above.
unsafe impl Sync for Event {}

impl Event {
    /// An event, e.g. to rebuild the history of an item that crossed a
    /// process boundary (see [`crate::Envelope`] and [`crate::Queue::push_envelope`]).
    /// Times before the Unix epoch are taken as the epoch.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Event, EventKind};
    /// use std::time::{Duration, UNIX_EPOCH};
    /// let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// let e = Event::new(EventKind::Dequeued, "orders", at);
    /// assert_eq!((e.kind(), e.queue(), e.at()), (EventKind::Dequeued, "orders", at));
    /// ```
    pub fn new(kind: EventKind, queue: &str, at: SystemTime) -> Self {
        Self::owned(kind, name(queue), from_system_time(at))
    }

    /// Builds an event that owns a count of `queue`.
    pub(crate) fn owned(kind: EventKind, queue: Name, at: u64) -> Self {
        let raw = Name::into_raw(queue).cast_mut();
        Self {
            // SAFETY: `Arc::into_raw` never returns null.
            queue: unsafe { NonNull::new_unchecked(raw) },
            at,
            kind,
            owned: true,
        }
    }

    /// Builds an event that borrows `queue` (see the field's docs).
    ///
    /// # Safety
    /// The event is stored in an item that is written into a chunk whose
    /// `Tether` holds a count of `queue`, and is never moved out of it
    /// (only cloned, which makes an owned event).
    pub(crate) unsafe fn borrowed(kind: EventKind, queue: &Name, at: u64) -> Self {
        Self {
            // `Arc::as_ptr`, not a reference to the `str`: the pointer keeps
            // the `Arc`'s own provenance, so `name` may later reach the
            // counts beside the `str` through it (as `into_raw`'s would);
            // one made from `&str` may only read the `str` (Miri, tree
            // borrows, found this).
            // SAFETY: `Arc::as_ptr` never returns null.
            queue: unsafe { NonNull::new_unchecked(Name::as_ptr(queue).cast_mut()) },
            at,
            kind,
            owned: false,
        }
    }

    /// An event that borrows the name `queue` points to (the `Box<str>` of
    /// a [`Name`]), as [`Event::borrowed`] does.
    ///
    /// # Safety
    /// As [`Event::borrowed`]: the name stays alive while the event does,
    /// and the event is never moved out of where the caller keeps it.
    pub(crate) unsafe fn borrowed_raw(queue: NonNull<Box<str>>, at: u64) -> Self {
        Self {
            queue,
            at,
            kind: EventKind::Enqueued,
            owned: false,
        }
    }

    /// The queue's name as an owned [`Name`].
    pub(crate) fn name(&self) -> Name {
        let raw = self.queue.as_ptr().cast_const();
        // SAFETY: `raw` came from a live `Arc<str>` (`into_raw`, or the
        // `str` of one the chunk holds), which is alive while `self` is
        // (see the field's docs); we take our own count.
        unsafe {
            Name::increment_strong_count(raw);
            Name::from_raw(raw)
        }
    }

    /// What happened.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::{EventKind, Queue};
    /// # let q: Queue<u8> = Queue::new("a"); let c = q.subscribe(); q.push(1).unwrap();
    /// assert_eq!(c.try_recv().unwrap().events()[0].kind(), EventKind::Enqueued);
    /// ```
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The name of the queue it happened in.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::Queue;
    /// # let q: Queue<u8> = Queue::new("a"); let c = q.subscribe(); q.push(1).unwrap();
    /// assert_eq!(c.try_recv().unwrap().events()[0].queue(), "a");
    /// ```
    pub fn queue(&self) -> &str {
        // SAFETY: the name is alive while `self` is (see the field's docs).
        unsafe { self.queue.as_ref() }.as_ref()
    }

    /// When it happened (wall clock, see [`crate::Clock`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::Queue;
    /// # let q: Queue<u8> = Queue::new("a"); let c = q.subscribe(); q.push(1).unwrap();
    /// assert!(c.try_recv().unwrap().events()[0].at() > std::time::UNIX_EPOCH);
    /// ```
    pub fn at(&self) -> SystemTime {
        to_system_time(self.at)
    }

    /// When it happened, in nanoseconds since the Unix epoch.
    pub(crate) fn at_nanos(&self) -> u64 {
        self.at
    }
}

impl Clone for Event {
    fn clone(&self) -> Self {
        Self::owned(self.kind, self.name(), self.at)
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: an owned event holds one count of the `Arc` that
            // `queue` came from (`new`), released exactly once, here.
            drop(unsafe { Name::from_raw(self.queue.as_ptr().cast_const()) });
        }
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, self.queue(), self.at) == (other.kind, other.queue(), other.at)
    }
}

impl Eq for Event {}

impl std::hash::Hash for Event {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.kind, self.queue(), self.at).hash(state);
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("kind", &self.kind)
            .field("queue", &self.queue())
            .field("at", &self.at())
            .finish()
    }
}

/// An item's history in one word (a tagged pointer), so that a fresh item
/// stores no event at all:
/// - *fresh* (low bit 0): the item was pushed into this queue at its
///   creation time, and that enqueue is its whole history. The word points
///   to the queue's name (the `Box<str>` inside its [`Name`]), *borrowed*
///   as an [`Event`]'s can be: the chunk's `Tether` holds the name for as
///   long as the item lives.
/// - *forwarded* (low bit 1): the word points to a boxed slice of every
///   event so far (owned), the enqueue here last.
pub(crate) struct History(NonNull<()>);

/// The tag bit of a forwarded [`History`] (both pointees are 8-aligned).
const FORWARDED: usize = 1;

// SAFETY: a fresh history is a shared, immutable name (as a borrowed
// `Event`); a forwarded one owns its events, which are `Send + Sync`.
unsafe impl Send for History {}
// SAFETY: as above.
unsafe impl Sync for History {}

impl History {
    /// The history of an item pushed fresh into the queue named `queue`.
    ///
    /// # Safety
    /// As [`Event::borrowed`]: the item goes into a chunk whose `Tether`
    /// holds a count of `queue`, and never leaves it (only a clone of its
    /// events does).
    pub(crate) unsafe fn fresh(queue: &Name) -> Self {
        // `Arc::as_ptr`, for the provenance (see `Event::borrowed`).
        // SAFETY: `Arc::as_ptr` never returns null.
        Self(unsafe { NonNull::new_unchecked(Name::as_ptr(queue).cast_mut().cast()) })
    }

    /// The history of a forwarded item: `events`, oldest first, the enqueue
    /// into this queue last.
    pub(crate) fn forwarded(events: Vec<Event>) -> Self {
        let raw = Box::into_raw(Box::new(events.into_boxed_slice()));
        // SAFETY: `Box::into_raw` never returns null, and the tag keeps it so.
        Self(unsafe { NonNull::new_unchecked(raw.cast::<()>().map_addr(|a| a | FORWARDED)) })
    }

    /// Whether the item was forwarded (its events are stored).
    #[inline]
    pub(crate) fn is_forwarded(&self) -> bool {
        self.0.as_ptr().addr() & FORWARDED != 0
    }

    /// The stored events of a forwarded item.
    fn stored(&self) -> Option<&[Event]> {
        if !self.is_forwarded() {
            return None;
        }
        let raw = self
            .0
            .as_ptr()
            .map_addr(|a| a & !FORWARDED)
            .cast::<Box<[Event]>>();
        // SAFETY: a forwarded history owns this box (`forwarded`).
        Some(unsafe { &**raw })
    }

    /// The last stored event of a forwarded item (its enqueue here).
    fn last_stored(&self) -> Option<&Event> {
        self.stored().and_then(<[Event]>::last)
    }

    /// The queue name a fresh history borrows.
    fn fresh_name(&self) -> Option<NonNull<Box<str>>> {
        (!self.is_forwarded()).then(|| self.0.cast())
    }
}

impl Drop for History {
    fn drop(&mut self) {
        if self.is_forwarded() {
            let raw = self
                .0
                .as_ptr()
                .map_addr(|a| a & !FORWARDED)
                .cast::<Box<[Event]>>();
            // SAFETY: a forwarded history owns this box, dropped once, here.
            drop(unsafe { Box::from_raw(raw) });
        }
    }
}

/// An item's history, oldest first, as [`Item::events`] lends it: it
/// derefs to a slice of [`Event`]s (index it, iterate it, take its
/// `last()`), and its last event is the item's enqueue into the queue that
/// holds it. A fresh item stores no event: its one enqueue event is made
/// here, from its creation time and its queue's name, at no cost.
///
/// # Examples
///
/// ```
/// use chunkq::{EventKind, Queue};
/// let q: Queue<u8> = Queue::new("in");
/// let c = q.subscribe();
/// q.push(1).unwrap();
/// let d = c.try_recv().unwrap();
/// let events = d.events();
/// assert_eq!(events.len(), 1);
/// assert_eq!((events[0].kind(), events[0].queue()), (EventKind::Enqueued, "in"));
/// let owned: Vec<chunkq::Event> = events.to_vec();
/// assert_eq!(owned[0].at(), d.created());
/// ```
pub struct Events<'a> {
    /// A fresh item's one event (borrowed, never moved out: the view hands
    /// out references only, and `Clone` of an event makes an owned one),
    /// or a forwarded item's stored events.
    repr: EventsRepr<'a>,
}

/// See [`Events`].
enum EventsRepr<'a> {
    /// A fresh item's enqueue event.
    Fresh(Event),
    /// A forwarded item's events.
    Stored(&'a [Event]),
}

impl Deref for Events<'_> {
    type Target = [Event];
    fn deref(&self) -> &[Event] {
        match &self.repr {
            EventsRepr::Fresh(e) => std::slice::from_ref(e),
            EventsRepr::Stored(s) => s,
        }
    }
}

impl<'b> IntoIterator for &'b Events<'_> {
    type Item = &'b Event;
    type IntoIter = std::slice::Iter<'b, Event>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterating the view itself (`for e in item.events()`) yields *owned*
/// events, oldest first (each a clone: it takes a count of its queue's
/// name); iterate `&events` or `events.iter()` for references.
impl IntoIterator for Events<'_> {
    type Item = Event;
    type IntoIter = std::vec::IntoIter<Event>;
    // The iterator must own its events: the view it borrows from is
    // consumed here (clippy's `iter().cloned()` would borrow it).
    #[allow(clippy::unnecessary_to_owned)]
    fn into_iter(self) -> Self::IntoIter {
        self.to_vec().into_iter()
    }
}

impl fmt::Debug for Events<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A payload in its envelope: UUID, creation time, sequence number in the
/// queue that holds it, and the history of its travels.
///
/// Consumers see items through a [`crate::Delivery`], which derefs to `Item`.
///
/// # Examples
///
/// ```
/// use chunkq::Queue;
/// let q: Queue<String> = Queue::new("jobs");
/// let c = q.subscribe();
/// let id = q.push("build".to_string()).unwrap();
/// let item = c.try_recv().unwrap();
/// assert_eq!(item.id(), id);
/// assert_eq!(item.payload(), "build");
/// assert_eq!(item.seq(), 0);
/// ```
pub struct Item<T> {
    /// The item's identity; kept when it is forwarded to another queue.
    id: Uuid,
    /// Its sequence number in the queue that holds this envelope.
    seq: u64,
    /// When it was first pushed anywhere (ns since the Unix epoch).
    created: u64,
    /// Everything that happened to it, oldest first; the last event is its
    /// enqueue into this queue, whose time is what the TTL counts from.
    history: History,
    /// The user's value.
    payload: T,
    /// Loom witness: written when the envelope is built and when it is
    /// dropped, read on every access, so loom flags a read not ordered after
    /// publication or not ordered before the drop.
    #[cfg(loom)]
    witness: crate::sync::UnsafeCell<u8>,
}

impl<T> Item<T> {
    /// Builds an envelope.
    pub(crate) fn new(id: Uuid, seq: u64, created: u64, history: History, payload: T) -> Self {
        let item = Self {
            id,
            seq,
            created,
            history,
            payload,
            #[cfg(loom)]
            witness: crate::sync::UnsafeCell::new(0),
        };
        #[cfg(loom)]
        // SAFETY: the item is not shared yet; this is its only access.
        item.witness.with_mut(|w| unsafe { *w = 1 });
        item
    }

    /// Loom: records a read of the envelope (see `witness`).
    #[inline]
    pub(crate) fn touch(&self) {
        #[cfg(loom)]
        // SAFETY: only reads happen after publication; loom checks that this
        // read is ordered after the write in `new`.
        self.witness
            .with(|w| assert_eq!(unsafe { *w }, 1, "read of an unpublished item"));
    }

    /// Loom: records the drop of the envelope (see `witness`); called by the
    /// last owner just before it drops or moves the item out.
    #[inline]
    pub(crate) fn retire(&mut self) {
        #[cfg(loom)]
        // SAFETY: the last owner's access; loom checks that every read was
        // ordered before it.
        self.witness.with_mut(|w| unsafe { *w = 2 });
    }

    /// The item's UUID (v7), the same in every queue it is forwarded to.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::Queue;
    /// let q: Queue<u8> = Queue::new("a");
    /// let c = q.subscribe();
    /// let id = q.push(1).unwrap();
    /// assert_eq!(c.try_recv().unwrap().id(), id);
    /// ```
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The payload.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::Queue;
    /// let q: Queue<Vec<u8>> = Queue::new("a");
    /// let c = q.subscribe();
    /// q.push(vec![1, 2]).unwrap();
    /// assert_eq!(c.try_recv().unwrap().payload(), &vec![1, 2]);
    /// ```
    pub fn payload(&self) -> &T {
        self.touch();
        &self.payload
    }

    /// When the item was first pushed into any queue.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::Queue;
    /// let q: Queue<u8> = Queue::new("a");
    /// let c = q.subscribe();
    /// let before = std::time::SystemTime::now();
    /// q.push(1).unwrap();
    /// // The default clock ticks in milliseconds (see `Clock::system`).
    /// assert!(c.try_recv().unwrap().created() >= before - std::time::Duration::from_millis(50));
    /// ```
    pub fn created(&self) -> SystemTime {
        to_system_time(self.created)
    }

    /// Its sequence number in this queue: 0 for the first item ever pushed,
    /// then one more per push.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::Queue;
    /// let q: Queue<u8> = Queue::new("a");
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// q.push(2).unwrap();
    /// assert_eq!(c.try_recv().unwrap().seq(), 0);
    /// assert_eq!(c.try_recv().unwrap().seq(), 1);
    /// ```
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The item's history, oldest first; the last event is its enqueue into
    /// this queue. (A delivery's own dequeue is
    /// [`crate::Delivery::dequeue_event`].)
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{EventKind, Queue};
    /// let a: Queue<u8> = Queue::new("a");
    /// let b: Queue<u8> = Queue::new("b");
    /// let (ca, cb) = (a.subscribe(), b.subscribe());
    /// a.push(1).unwrap();
    /// b.forward(&ca.try_recv().unwrap()).unwrap();
    /// let kinds: Vec<_> = cb.try_recv().unwrap().events().iter().map(|e| (e.kind(), e.queue().to_string())).collect();
    /// assert_eq!(kinds, [
    ///     (EventKind::Enqueued, "a".to_string()),
    ///     (EventKind::Dequeued, "a".to_string()),
    ///     (EventKind::Enqueued, "b".to_string()),
    /// ]);
    /// ```
    pub fn events(&self) -> Events<'_> {
        self.touch();
        let repr = match self.history.fresh_name() {
            // SAFETY: the name is alive while the item is (see `History`);
            // the event stays inside the view, which lends it by reference.
            Some(name) => EventsRepr::Fresh(unsafe { Event::borrowed_raw(name, self.created) }),
            None => EventsRepr::Stored(self.history.stored().unwrap_or(&[])),
        };
        Events { repr }
    }

    /// The name of the queue that holds the item (the queue of its last
    /// event), borrowed from the item.
    pub(crate) fn queue_str(&self) -> &str {
        match self.history.fresh_name() {
            // SAFETY: the name is alive while the item is (see `History`).
            Some(name) => unsafe { name.as_ref() },
            None => self.history.last_stored().map_or("", Event::queue),
        }
    }

    /// [`Item::queue_str`] as an owned [`Name`]: the name of the last
    /// event (its own count of it).
    pub(crate) fn queue_name(&self) -> Name {
        self.events().last().map_or_else(|| name(""), Event::name)
    }

    /// When the item was pushed into this queue: the start of its TTL.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::Queue;
    /// let q: Queue<u8> = Queue::new("a");
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// let d = c.try_recv().unwrap();
    /// assert_eq!(d.enqueued(), d.events().last().unwrap().at());
    /// ```
    pub fn enqueued(&self) -> SystemTime {
        to_system_time(self.enqueued_nanos())
    }

    /// See [`Item::enqueued`]; nanoseconds since the Unix epoch.
    pub(crate) fn enqueued_nanos(&self) -> u64 {
        self.history
            .last_stored()
            .map_or(self.created, Event::at_nanos)
    }

    /// Whether dropping the envelope does anything: a payload that needs
    /// dropping, or a forwarded history (a fresh one borrows its queue's
    /// name and owns nothing). Lets the clearing of a removed range
    /// skip the drop of plain items.
    #[inline]
    pub(crate) fn needs_drop(&self) -> bool {
        std::mem::needs_drop::<T>() || self.history.is_forwarded()
    }

    /// The payload, dropping the rest of the envelope.
    pub(crate) fn into_payload(self) -> T {
        self.payload
    }

    /// Creation time in ns (crate-internal, for forwarding).
    pub(crate) fn created_nanos(&self) -> u64 {
        self.created
    }
}

impl<T: fmt::Debug> fmt::Debug for Item<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("id", &self.id)
            .field("seq", &self.seq)
            .field("created", &self.created())
            .field("events", &self.events())
            .field("payload", &self.payload)
            .finish()
    }
}
