//! The engine that every handle of one queue shares: the log, the queue's
//! identity and retention settings, and the policy that sits above the
//! lock-free log. [`crate::Queue`] (producers), [`crate::Consumer`] and the
//! sweeper thread each hold an `Arc<Engine<T>>`; data flows one way (they
//! use the engine, the engine uses the log), so no handle module imports
//! another.
//!
//! The lock-free mechanics live in `log/mod.rs`; this module decides *what* to
//! push (envelope, size estimate) and applies the retention policy when the
//! budget is full: first release what every consumer has read, then refuse
//! (`Reject`) or evict the oldest items (`DropOldest`).

use crate::chunk::{Chunk, MAX_ITEM_BYTES, Slot};
use crate::error::{PushBatchError, PushError};
use crate::item::{Event, EventKind, History, Item};
use crate::lease::Lease;
use crate::log::Log;
use crate::size::SizeFn;
use crate::sync::{Spin, epoch};
use crate::wait::Next;
use uuid::Uuid;

/// What `push` does when the memory budget is full (after releasing the
/// items every consumer has already read).
///
/// # Examples
///
/// ```
/// use chunkq::{Overflow, PushError, Queue};
/// let q: Queue<u64> = Queue::builder("a").memory_limit(1000).overflow(Overflow::Reject).build().unwrap();
/// let mut pushed = 0;
/// while q.push(pushed).is_ok() { pushed += 1; }
/// assert!(pushed > 0);
/// assert!(matches!(q.push(99), Err(PushError::Full(99))));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Refuse the push: [`PushError::Full`] hands the payload back.
    #[default]
    Reject,
    /// Evict the oldest retained items until the new one fits; consumers
    /// that had not read them count them as `evicted`. An eviction also
    /// takes the oldest items that fit wholly in a 64th of the budget more
    /// (within one chunk of up to 1024 items), so that the pushes after it
    /// fit at once rather than each evicting one item: a full queue holds
    /// between 63/64 of its budget (less one item) and all of it. A budget
    /// smaller than 64 items evicts exactly what each push needs.
    ///
    /// ```
    /// use chunkq::{Overflow, Queue};
    /// let q: Queue<u64> = Queue::builder("a").memory_limit(64 << 10).overflow(Overflow::DropOldest).build().unwrap();
    /// let c = q.subscribe();
    /// for i in 0..10_000 { q.push(i).unwrap(); }
    /// assert!(q.memory_used() <= q.memory_limit());
    /// assert!(q.memory_used() >= q.memory_limit() / 64 * 63 - 200);
    /// assert_eq!(c.missed().evicted + c.lag() as u64, 10_000); // nothing vanishes
    /// ```
    DropOldest,
}

/// Why [`Engine::make_room`] found no room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// The queue is closed.
    Closed,
    /// The budget is full now (`Reject`).
    Full,
    /// The item can never fit: larger than the whole budget, or than one
    /// slot can account for.
    TooLarge,
}

/// Everything the handles and consumers of one queue share.
pub(crate) struct Engine<T> {
    /// The lock-free log.
    pub(crate) log: Log<T>,
    /// The queue's UUID.
    pub(crate) id: Uuid,
    /// Time to live, in nanoseconds.
    pub(crate) ttl: u64,
    /// Overflow policy.
    pub(crate) overflow: Overflow,
    /// Heap-size estimate of a payload.
    pub(crate) sizer: SizeFn<T>,
    /// Pushes refused with `PushError::Full` (for `Queue::stats`). A plain
    /// std atomic: a statistic, touched only on the refusal path.
    pub(crate) refused: std::sync::atomic::AtomicU64,
}

/// Accounted bytes of an item beyond its payload's heap size and history:
/// its slot (owner count, size, and the envelope `Item<T>` with the payload
/// inline) and its share of the chunk header.
pub(crate) fn fixed_overhead<T>() -> usize {
    std::mem::size_of::<Slot<T>>()
        + std::mem::size_of::<Chunk<T>>().div_ceil(Chunk::<T>::CAP as usize)
}

impl<T: Send + Sync + 'static> Engine<T> {
    /// Accounted bytes for `payload` with a history of `events` events.
    pub(crate) fn accounted(&self, payload: &T, events: usize) -> usize {
        let history = if events > 1 {
            events * std::mem::size_of::<Event>()
        } else {
            0
        };
        fixed_overhead::<T>()
            .saturating_add((self.sizer)(payload))
            .saturating_add(history)
    }

    /// Whether an item (or a batch) accounted `bytes` could ever fit: not
    /// larger than the whole budget nor than one slot can account for
    /// (`MAX_ITEM_BYTES`, 4 GiB).
    #[inline]
    fn can_fit(&self, bytes: usize) -> bool {
        bytes <= self.log.limit && bytes <= MAX_ITEM_BYTES
    }

    /// Reserves `bytes` against the budget, applying the overflow policy:
    /// first release what every consumer has read, then refuse (`Reject`) or
    /// evict the oldest items (`DropOldest`).
    #[inline]
    fn make_room(&self, bytes: usize, guard: &mut epoch::Guard) -> Result<(), Refusal> {
        if bytes <= MAX_ITEM_BYTES && self.log.try_reserve(bytes) {
            return Ok(());
        }
        self.make_room_slow(bytes, guard)
    }

    /// [`Engine::make_room`] when the bytes do not fit at once.
    #[cold]
    #[inline(never)]
    fn make_room_slow(&self, bytes: usize, guard: &mut epoch::Guard) -> Result<(), Refusal> {
        let log = &self.log;
        // An item larger than the whole budget, or than a slot can account
        // (`MAX_ITEM_BYTES`, 4 GiB), never fits.
        if !self.can_fit(bytes) {
            return Err(Refusal::TooLarge);
        }
        let mut spin = Spin::new();
        loop {
            if log.is_closed() {
                return Err(Refusal::Closed);
            }
            if log.try_reserve(bytes) {
                return Ok(());
            }
            if log.trim_step(guard) > 0 {
                continue;
            }
            match self.overflow {
                Overflow::Reject => return Err(Refusal::Full),
                Overflow::DropOldest => {
                    if log.evict_step(bytes, guard) == 0 {
                        // The oldest slot is reserved by a push in flight
                        // (it will publish, then it can be evicted), or room
                        // appeared meanwhile: look again. Unpinned while it
                        // waits: nothing loaded under the guard is kept, and
                        // a producer descheduled mid-push must not hold back
                        // reclamation as well.
                        guard.repin_after(|| spin.wait());
                    }
                }
            }
        }
    }

    /// The enqueue event of an item published into this log at `now`.
    #[inline]
    fn enqueue_event(&self, now: u64) -> Event {
        // SAFETY: the event goes into an envelope that is published into a
        // chunk of this log (the callers reserved its sequence number), and
        // every chunk of the log holds the log's `Tether`, whose name is
        // this one.
        unsafe { Event::borrowed(EventKind::Enqueued, &self.log.name, now) }
    }

    /// The envelope of a fresh item with sequence number `seq`, enqueued
    /// (and created) at `now`: a new UUID, its enqueue as its history.
    #[inline]
    fn fresh(&self, seq: u64, now: u64, payload: T) -> Item<T> {
        // SAFETY: the item goes into a chunk of this log (the callers
        // reserved its sequence number), and every chunk of the log holds
        // the log's `Tether`, whose name is this one.
        let history = unsafe { History::fresh(&self.log.name) };
        Item::new(crate::id::uuid_v7_at(now), seq, now, history, payload)
    }

    /// The envelope of a forwarded item: `origin` is its UUID, creation time
    /// and events so far (the dequeue included); its enqueue here at `now`
    /// is appended.
    fn forwarded(
        &self,
        seq: u64,
        now: u64,
        payload: T,
        (id, created, mut events): (Uuid, u64, Vec<Event>),
    ) -> Item<T> {
        events.push(self.enqueue_event(now));
        Item::new(id, seq, created, History::forwarded(events), payload)
    }

    /// The push path: budget, sequence number, envelope, publication.
    /// `origin` is the previous history of a forwarded item (its UUID,
    /// creation time and events including the dequeue), `None` for a fresh
    /// one.
    #[inline]
    pub(crate) fn push(
        &self,
        payload: T,
        origin: Option<(Uuid, u64, Vec<Event>)>,
    ) -> Result<Uuid, PushError<T>> {
        match origin {
            None => self.push_fresh(payload),
            Some(origin) => {
                let bytes = self.accounted(&payload, origin.2.len() + 1);
                self.push_with(payload, bytes, move |seq, now, payload| {
                    self.forwarded(seq, now, payload, origin)
                })
            }
        }
    }

    /// [`Engine::push`] of a fresh item.
    #[inline]
    pub(crate) fn push_fresh(&self, payload: T) -> Result<Uuid, PushError<T>> {
        let bytes = self.accounted(&payload, 1);
        self.push_with(payload, bytes, |seq, now, payload| {
            self.fresh(seq, now, payload)
        })
    }

    /// [`Engine::push_fresh`] by a producer handle with a `lease` (the hot
    /// path of `Queue::push`): without an epoch pin while the next sequence
    /// number lies in the leased chunk and the bytes fit at once
    /// (`Log::reserve_leased`); otherwise the pinned path, which moves the
    /// lease to the chunk it published into.
    #[inline]
    pub(crate) fn push_fresh_leased(
        &self,
        payload: T,
        lease: &Lease<T>,
    ) -> Result<Uuid, PushError<T>> {
        let log = &self.log;
        let bytes = self.accounted(&payload, 1);
        let Some((leased, seq)) = log.reserve_leased(lease, bytes) else {
            return self.push_pinned(payload, bytes, Some(lease), |seq, now, payload| {
                self.fresh(seq, now, payload)
            });
        };
        let now = log.clock.now_nanos();
        let item = self.fresh(seq, now, payload);
        let id = item.id();
        log.publish_leased(lease, leased, seq, item, bytes, now);
        Ok(id)
    }

    /// The push once the payload is sized (`bytes`, as `accounted` gives
    /// them): `make` builds the envelope from the sequence number, the time
    /// and the payload. Generic in `make`, so the fresh path carries no
    /// forwarding state.
    #[inline(always)]
    fn push_with(
        &self,
        payload: T,
        bytes: usize,
        make: impl FnOnce(u64, u64, T) -> Item<T>,
    ) -> Result<Uuid, PushError<T>> {
        self.push_pinned(payload, bytes, None, make)
    }

    /// [`Engine::push_with`], moving `lease` (if any) to the chunk the item
    /// went into. Out of line: the leased push's slow path.
    #[inline(never)]
    fn push_pinned(
        &self,
        payload: T,
        bytes: usize,
        lease: Option<&Lease<T>>,
        make: impl FnOnce(u64, u64, T) -> Item<T>,
    ) -> Result<Uuid, PushError<T>> {
        let log = &self.log;
        // Waits (briefly, boundedly) while many retired chunks await their
        // grace period (see `Tether::pace`): before the pin, since a pin
        // held while waiting would hold back the very reclamation it waits
        // for, and before any reservation (nobody waits on us meanwhile).
        log.pace_reclamation();
        // Pinned once, before any reservation: pinning may run the epoch
        // collector, which must not run while we hold bytes or a sequence
        // number that others wait on (invariant 7).
        let mut guard = epoch::pin();
        match self.make_room(bytes, &mut guard) {
            Ok(()) => {}
            Err(Refusal::Closed) => return Err(PushError::Closed(payload)),
            Err(refusal) => {
                // Relaxed: a statistic.
                self.refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(if refusal == Refusal::TooLarge {
                    PushError::TooLarge(payload)
                } else {
                    PushError::Full(payload)
                });
            }
        }
        let Some(seq) = log.reserve_seqs(1, &guard) else {
            log.unreserve(bytes);
            return Err(PushError::Closed(payload));
        };
        let now = log.clock.now_nanos();
        let item = make(seq, now, payload);
        let id = item.id();
        let chunk = log.publish(seq, item, bytes, now, &guard);
        if let Some(lease) = lease {
            // After the publication: nothing waits on us any more.
            if let Some(renewed) = Lease::renew(lease.take(), chunk, &guard) {
                lease.put(renewed, &log.leases);
            }
        }
        Ok(id)
    }

    /// One try of a push that waits for room (`Queue::push_timeout`,
    /// `Queue::push_async`), of a fresh payload sized `bytes` (sized once by
    /// the caller: the sizer is user code). `Ok` with the push's result,
    /// except that a full budget gives the payload back with what to do:
    /// `Next::Wait` for the `room` signal, or `Next::Again` (soon, without
    /// sleeping) when a trim released something meanwhile or is held up by
    /// a push in flight, whose publication notifies readers, not `room`. A
    /// payload larger than the whole budget is `Ok(Err(TooLarge))` at once:
    /// waiting cannot help.
    #[allow(clippy::type_complexity)]
    pub(crate) fn try_push_for_room(
        &self,
        payload: T,
        bytes: usize,
    ) -> Result<Result<Uuid, PushError<T>>, (T, Next)> {
        self.room_or_next(self.push_with(payload, bytes, |seq, now, payload| {
            self.fresh(seq, now, payload)
        }))
    }

    /// The rest of a try of a push that waits for room, given what the push
    /// returned: a full budget gives the payload back with what to do next
    /// (see [`Engine::try_push_for_room`]), anything else is the result.
    #[allow(clippy::type_complexity)]
    fn room_or_next(
        &self,
        pushed: Result<Uuid, PushError<T>>,
    ) -> Result<Result<Uuid, PushError<T>>, (T, Next)> {
        match pushed {
            Err(PushError::Full(payload)) => {
                let guard = epoch::pin();
                let mut held = false;
                let released = self.log.trim_step_noting(&guard, &mut held);
                let next = if released > 0 || held {
                    Next::Again
                } else {
                    Next::Wait
                };
                Err((payload, next))
            }
            done => Ok(done),
        }
    }

    /// [`Engine::try_push_for_room`] of an item that keeps its envelope
    /// (`Queue::push_envelope_async`): `origin` is its UUID, creation time
    /// and events so far, as for [`Engine::push`], and `bytes` were sized
    /// with them. The origin is taken only by the push that publishes; after
    /// a refusal it is left in place for the next try.
    #[cfg(feature = "async")]
    #[allow(clippy::type_complexity)]
    pub(crate) fn try_push_origin_for_room(
        &self,
        payload: T,
        bytes: usize,
        origin: &mut (Uuid, u64, Vec<Event>),
    ) -> Result<Result<Uuid, PushError<T>>, (T, Next)> {
        self.room_or_next(self.push_with(payload, bytes, |seq, now, payload| {
            self.forwarded(seq, now, payload, std::mem::take(origin))
        }))
    }

    /// Pushes a batch: one budget reservation, one `fetch_add` and one
    /// wake-up for the whole batch when it fits at once; item by item (with
    /// the overflow policy) otherwise.
    pub(crate) fn push_batch(&self, mut items: Vec<T>) -> Result<usize, PushBatchError<T>> {
        let log = &self.log;
        let n = items.len();
        if n == 0 {
            return Ok(0);
        }
        let sizes: Vec<usize> = items.iter().map(|p| self.accounted(p, 1)).collect();
        let total = sizes.iter().fold(0usize, |a, &b| a.saturating_add(b));
        log.pace_reclamation(); // as in `push_pinned`
        // Pinned before any reservation (invariant 7, see `push`).
        let guard = epoch::pin();
        // (Each item's size fits a slot if the total does; otherwise the
        // item-by-item path refuses the one that does not.)
        if self.can_fit(total) && log.try_reserve(total) {
            let Some(first) = log.reserve_seqs(n as u64, &guard) else {
                log.unreserve(total);
                return Err(PushBatchError::Closed(items));
            };
            let now = log.clock.now_nanos();
            let envelopes = items
                .into_iter()
                .zip(sizes)
                .zip(first..)
                .map(|((payload, bytes), seq)| (self.fresh(seq, now, payload), bytes));
            log.publish_all(first, envelopes, now, &guard);
            return Ok(n);
        }
        drop(guard);
        let mut rest = items.drain(..);
        let mut pushed = 0;
        while let Some(payload) = rest.next() {
            if let Err(e) = self.push_fresh(payload) {
                let (closed, too_large) = (e.is_closed(), e.is_too_large());
                let mut back = vec![e.into_inner()];
                back.extend(rest);
                return Err(if closed {
                    PushBatchError::Closed(back)
                } else if too_large {
                    PushBatchError::TooLarge(back)
                } else {
                    PushBatchError::Full(back)
                });
            }
            pushed += 1;
        }
        Ok(pushed)
    }

    /// Releases what every consumer has read, then expires what is older
    /// than the TTL. Returns how many items expired.
    pub(crate) fn sweep(&self) -> usize {
        loop {
            let guard = epoch::pin();
            if self.log.trim_step(&guard) == 0 {
                break;
            }
        }
        let cutoff = self.log.clock.now_nanos().saturating_sub(self.ttl);
        let mut expired = 0;
        loop {
            let guard = epoch::pin();
            match self.log.expire_step(cutoff, &guard) {
                0 => return expired,
                n => expired += n as usize,
            }
        }
    }
}

#[cfg(all(test, target_pointer_width = "64", not(loom)))]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// The envelope's layout, which sets what an item costs beyond its
    /// payload (`fixed_overhead`): owner count and size in one word, UUID,
    /// sequence number, creation time, and a history in one word (a fresh
    /// item stores no event).
    #[test]
    fn slot_layout() {
        assert_eq!(size_of::<Event>(), 24);
        assert_eq!(size_of::<History>(), 8);
        assert_eq!(size_of::<Slot<u64>>() - size_of::<u64>(), 48);
        // 48 B of slot, and the chunk header's share (56 B over 512 slots)
        // rounded up.
        assert_eq!(fixed_overhead::<u64>() - size_of::<u64>(), 49);
    }
}
