//! Retention: how items leave the log. Expiry, eviction and trimming
//! (releasing what every group has read) all move `head` through
//! [`Log::advance`] (help on a change of cause, claim, finish; the protocol
//! and its proofs are in the parent module's essay, "Removal" and "Why each
//! miss is counted with the right cause"), give the removed items' bytes
//! back (`detach`), clear their slots at once (dropping the items no
//! delivery holds), and unlink chunks that lie wholly below `head`
//! (`retire_chunks`). The chunk-list mechanics, pushes and reads stay in the
//! parent module; this one only removes.

use super::{Log, cause_of, head_word, seq_of};
use crate::chunk::Chunk;
use crate::group::{Cause, JOINING};
use crate::sync::Ordering;
use crate::sync::epoch::Guard;

/// What a removal's deciding closure says about the range at `head`.
pub(crate) enum Decision {
    /// Nothing to remove.
    Stop,
    /// Remove up to (excluding) this sequence number, within `head`'s chunk.
    Advance(u64),
}

impl Decision {
    /// Remove `[h, s)` if it is not empty, else nothing.
    fn up_to(h: u64, s: u64) -> Self {
        if s > h { Self::Advance(s) } else { Self::Stop }
    }
}

impl<T: Send + Sync + 'static> Log<T> {
    // ----- removal -----------------------------------------------------------

    /// One removal step (see the module docs): moves `head` across the range
    /// `decide` picks within `head`'s chunk, with `cause`. Returns how many
    /// items it removed (0 when `decide` says `Stop`).
    fn advance(
        &self,
        cause: Cause,
        guard: &Guard,
        mut decide: impl FnMut(u64, &Chunk<T>) -> Decision,
    ) -> u64 {
        loop {
            let hw = self.head.load(Ordering::SeqCst);
            // Step 1, only where the cause changes (see the module docs).
            if cause != Cause::Consumed && cause_of(hw) != cause {
                self.help(hw, guard);
            }
            let h = seq_of(hw);
            let cur = self.chunk_from_head(h / Self::CAP, guard);
            // SAFETY: loaded under `guard` (see `chunk_from_head`).
            let Some(chunk) = (unsafe { cur.as_ref() }) else {
                // `h` sits at the start of a chunk nobody installed yet:
                // nothing is retained there.
                return 0;
            };
            if chunk.index != h / Self::CAP {
                continue; // `head` moved on under us
            }
            let h1 = match decide(h, chunk) {
                Decision::Stop => return 0,
                Decision::Advance(h1) => h1,
            };
            debug_assert!(h < h1 && h1 <= chunk.end());
            // The reference `detach` hands to the deferred clearing of the
            // slots. Failure means the chunk is on its way out, so `head`
            // has moved past it.
            if !chunk.try_acquire() {
                continue;
            }
            // SeqCst: the claim of [h, h1); see the module docs.
            if self
                .head
                .compare_exchange(hw, head_word(h1, cause), Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                // SAFETY: we took this reference just above.
                unsafe { Chunk::release(cur, guard) };
            } else {
                self.count_removed(cause, h1 - h);
                self.detach(chunk, h, h1);
                if cause != Cause::Evicted {
                    // Bytes came back: wake producers waiting for room (the
                    // change is `detach`'s `fetch_sub` on `used`, Relaxed,
                    // ordered by the fences of both sides, see `wait.rs`).
                    // Evictions happen only under `Overflow::DropOldest`,
                    // whose pushes never wait for room.
                    self.room.notify();
                }
                if cause != Cause::Consumed {
                    // Cursors may now lie below `head`: blocked notice
                    // receivers catch up themselves. The change they
                    // re-check is our SeqCst `head` CAS.
                    self.noticed.notify();
                }
                // The items go now, on this thread (after the wake-ups):
                // we own the log's count of every slot in [h, h1) (all
                // published: every deciding closure checks it), and the
                // reference taken above keeps the chunk's count above zero
                // while `clear` adds the references that items still held
                // by deliveries keep.
                // SAFETY: both, as just said.
                unsafe { chunk.clear(h, h1) };
                // Released before `retire_chunks`, so that it does not
                // count as a holder there (`Chunk::charge`).
                // SAFETY: we took this reference above.
                unsafe { Chunk::release(cur, guard) };
                self.retire_chunks(guard);
                return h1 - h;
            }
        }
    }

    /// Gives back the bytes of `[from, to)` in `chunk` (which this thread
    /// just removed from the retained range).
    fn detach(&self, chunk: &Chunk<T>, from: u64, to: u64) {
        let mut bytes = 0;
        for seq in from..to {
            // Relaxed: the `Release` publication of the slot, which `decide`
            // loaded with `Acquire`, ordered this store before us.
            bytes += chunk.slot(seq).bytes();
        }
        self.unreserve(bytes);
    }

    /// Unlinks chunks that lie wholly below `head` (and have a successor).
    pub(super) fn retire_chunks(&self, guard: &Guard) {
        loop {
            let first = self.head_chunk.load(Ordering::Acquire, guard);
            // SAFETY: `head_chunk` is never null; loaded under `guard`.
            let c = unsafe { first.deref() };
            if c.end() > self.head_seq() {
                return;
            }
            let next = c.next.load(Ordering::Acquire, guard);
            if next.is_null() {
                return;
            }
            // Move the producers' hint off `first` *before* unlinking it, so
            // that the hint is never behind `head_chunk` (see `tail_chunk`'s
            // docs for the argument). Moving it after the unlink would let a
            // stale remover move the hint onto a chunk that a second remover
            // unlinked and freed meanwhile. Failure: the hint is already past
            // `first`. AcqRel: pairs with the Acquire loads of the hint.
            let _ = self.tail_chunk.compare_exchange(
                first,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
                guard,
            );
            // AcqRel: pairs with the Acquire loads of `head_chunk`.
            if self
                .head_chunk
                .compare_exchange(first, next, Ordering::AcqRel, Ordering::Relaxed, guard)
                .is_ok()
            {
                // No lease or group hint keeps the chunk any more: idle
                // handles and groups hold no chunk the log let go of (see
                // `lease.rs`). Marked first, so that a lease or hint put
                // back meanwhile lets go by itself.
                c.retire();
                self.leases.revoke(first, guard);
                for group in self.registry.load(guard) {
                    group.revoke_hint(first, guard);
                }
                // SAFETY: the list link owned one counted reference, and our
                // CAS removed the link.
                unsafe { Chunk::release(first, guard) };
            }
        }
    }

    /// Trims once: releases items every registered group has read, up to the
    /// end of `head`'s chunk. Returns how many.
    pub(crate) fn trim_step(&self, guard: &Guard) -> u64 {
        self.trim_step_noting(guard, &mut false)
    }

    /// [`Log::trim_step`], also setting `*held` to whether it stopped at a
    /// push in flight: every group has read past a slot below `tail` that
    /// is reserved but not yet published. Its publication notifies readers,
    /// not producers waiting for room, so such a producer retries soon
    /// rather than sleep (`Engine::try_push_for_room`).
    pub(crate) fn trim_step_noting(&self, guard: &Guard, held: &mut bool) -> u64 {
        self.advance(Cause::Consumed, guard, |h, chunk| {
            *held = false;
            let groups = self.registry.load(guard);
            if groups.is_empty() {
                return Decision::Stop;
            }
            let mut min = chunk.end();
            for g in groups {
                let c = g.cursor();
                // A joining group, or one that has not read past `h` (a
                // cursor left below `head` by evictions included): nothing
                // to release. Stopping at the first such group keeps a
                // push that finds the budget full O(1) in the consumers.
                if c & JOINING != 0 || c <= h {
                    return Decision::Stop;
                }
                min = min.min(c);
            }
            // Every group has read [h, min), except that a `Start::Latest`
            // cursor starts at `tail`, which counts pushes still in flight:
            // stop at the first slot not yet published (invariant 6).
            let p = chunk.published_until(h, min);
            *held = p < min && p < self.tail_seq().0;
            Decision::up_to(h, p)
        })
    }

    /// Expires once: removes the items at `head` enqueued at or before
    /// `cutoff`, up to the end of `head`'s chunk. Returns how many.
    pub(crate) fn expire_step(&self, cutoff: u64, guard: &Guard) -> u64 {
        self.advance(Cause::Expired, guard, |h, chunk| {
            let (t, _) = self.tail_seq();
            let end = chunk.end().min(t);
            if h >= end {
                return Decision::Stop;
            }
            // Whole rest of the chunk at once, from the chunk's newest time,
            // if every slot is published (checked from the slots, without
            // opening the items).
            if end == chunk.end()
                && chunk.published_until(h, end) == end
                // Relaxed: every `fetch_max` happened before a publication
                // we just loaded with Acquire.
                && chunk.newest.load(Ordering::Relaxed) <= cutoff
            {
                return Decision::Advance(end);
            }
            let mut s = h;
            while s < end {
                // Read under a count (`Chunk::peek`): a remover may drop
                // the item the moment it passes it. `None`: mid-push, or
                // removed by someone else (our CAS fails then).
                // SAFETY: `chunk` was loaded under `guard`.
                match unsafe { chunk.peek(s, |item| item.enqueued_nanos()) } {
                    Some(at) if at <= cutoff => s += 1,
                    _ => break,
                }
            }
            Decision::up_to(h, s)
        })
    }

    /// Evicts once: removes the oldest items (at least one) until `need`
    /// more bytes would fit, and then those that fit wholly in
    /// `Log::evict_slack` bytes more (so a small budget evicts exactly what
    /// it must), within `head`'s chunk. Stops (returns 0) at an oldest slot
    /// whose producer is mid-push: the caller waits for it unpinned
    /// (`Engine::make_room_slow`), so that a producer descheduled mid-push
    /// does not hold back reclamation as well. Returns how many it removed.
    pub(crate) fn evict_step(&self, need: usize, guard: &Guard) -> u64 {
        self.advance(Cause::Evicted, guard, |h, chunk| {
            let (t, _) = self.tail_seq();
            let end = chunk.end().min(t);
            if h >= end {
                return Decision::Stop;
            }
            // Bytes that must go for `need` to fit, and at most how many
            // may go with the slack.
            let over = self.used().saturating_add(need).saturating_sub(self.limit);
            let most = over.saturating_add(self.evict_slack);
            let mut freed = 0usize;
            let mut s = h;
            while s < end {
                // Acquire (in `is_published`): pairs with the Release
                // publication.
                if !chunk.slot(s).is_published() {
                    break;
                }
                let bytes = chunk.slot(s).bytes();
                if s > h && freed >= over && freed.saturating_add(bytes) > most {
                    break;
                }
                freed += bytes;
                s += 1;
            }
            Decision::up_to(h, s)
        })
    }
}
