//! Retention: how items leave the log. Expiry, eviction and trimming
//! (releasing what every group has read) all move `head` through
//! [`Log::advance`] (help on a change of cause, claim, finish; the protocol
//! and its proofs are in the parent module's essay, "Removal" and "Why each
//! miss is counted with the right cause"), give the removed items' bytes
//! back (`detach`), hand the clearing of their slots to the epoch collector
//! (`Doomed`), and unlink chunks that lie wholly below `head`
//! (`retire_chunks`). The chunk-list mechanics, pushes and reads stay in the
//! parent module; this one only removes.

use super::{Log, cause_of, head_word, seq_of};
use crate::chunk::{Chunk, release_pinned};
use crate::group::{Cause, JOINING};
use crate::sync::epoch::Guard;
use crate::sync::{Ordering, Spin};

/// What a removal's deciding closure says about the range at `head`.
pub(crate) enum Decision {
    /// Nothing to remove.
    Stop,
    /// Remove up to (excluding) this sequence number, within `head`'s chunk.
    Advance(u64),
    /// `head` moved while deciding: read it again.
    Retry,
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
        mut decide: impl FnMut(u64, u64, &Chunk<T>) -> Decision,
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
            let h1 = match decide(hw, h, chunk) {
                Decision::Stop => return 0,
                Decision::Retry => continue,
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
                self.detach(chunk, h, h1, guard);
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
                self.retire_chunks(guard);
                return h1 - h;
            }
        }
    }

    /// Gives back the bytes of `[from, to)` in `chunk` (which this thread
    /// just removed from the retained range) and arranges for the items to be
    /// dropped after the grace period.
    ///
    /// The slots are cleared by a closure the epoch collector runs once every
    /// thread pinned now has unpinned: until then a reader that loaded `head`
    /// before our claim may still load these slots; after it, no reader looks
    /// below `head` again (they all load `head` after pinning). The caller
    /// took a counted reference to the chunk before its claim; the closure
    /// owns it, so the chunk outlives the closure.
    fn detach(&self, chunk: &Chunk<T>, from: u64, to: u64, guard: &Guard) {
        let mut bytes = 0;
        for seq in from..to {
            // Relaxed: the `Release` publication of the slot, which `decide`
            // loaded with `Acquire`, ordered this store before us.
            bytes += chunk.slot(seq).bytes();
        }
        self.unreserve(bytes);
        // Three words: crossbeam stores the closure inline, unboxed.
        let doomed = Doomed {
            chunk: chunk as *const Chunk<T>,
            from,
            to,
        };
        guard.defer(move || doomed.clear());
        // Hand this thread's garbage to the global collector now, a chunk
        // at a time, rather than when its bag of 64 deferred functions
        // fills: the items are then freed in small batches, which the
        // allocator recycles cheaply (frees of 64 chunks' items at once cost
        // a push ~140 more instructions in `malloc_consolidate` and
        // friends). `flush` also collects: payload drops (user code) may
        // run here, which invariant 7 allows: after its claim, nobody waits
        // on a remover (readers wait on producers, `missed()` on cursor
        // moves, and a push that evicts holds no reservation yet).
        guard.flush();
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
        self.advance(Cause::Consumed, guard, |_, h, chunk| {
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
        self.advance(Cause::Expired, guard, |_, h, chunk| {
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
                let slot = chunk.slot(s);
                // Acquire (in `is_published`): pairs with the Release
                // publication.
                if !slot.is_published() {
                    break; // mid-push (or removed by someone else: CAS fails)
                }
                // SAFETY: seen published under `guard` (see `try_recv`).
                if unsafe { slot.item() }.enqueued_nanos() > cutoff {
                    break;
                }
                s += 1;
            }
            Decision::up_to(h, s)
        })
    }

    /// Evicts once: removes the oldest items (at least one) until `need`
    /// more bytes would fit, within `head`'s chunk. Waits for the oldest
    /// slot if its producer is mid-push. Returns how many it removed.
    pub(crate) fn evict_step(&self, need: usize, guard: &Guard) -> u64 {
        self.advance(Cause::Evicted, guard, |hw, h, chunk| {
            let (t, _) = self.tail_seq();
            let end = chunk.end().min(t);
            if h >= end {
                return Decision::Stop;
            }
            let over = self.used().saturating_add(need).saturating_sub(self.limit);
            let mut freed = 0usize;
            let mut s = h;
            let mut spin = Spin::new();
            while s < end && (s == h || freed < over) {
                // Acquire (in `is_published`): pairs with the Release
                // publication.
                if !chunk.slot(s).is_published() {
                    if s > h {
                        break;
                    }
                    // The oldest item is mid-push: wait for it, unless
                    // `head` moved (then the slot may be detached for good).
                    if self.head.load(Ordering::SeqCst) != hw {
                        return Decision::Retry;
                    }
                    spin.wait();
                    continue;
                }
                freed += chunk.slot(s).bytes();
                s += 1;
            }
            Decision::Advance(s)
        })
    }
}

/// Removed slots `[from, to)` of a chunk, cleared after the grace period
/// (see `Log::detach`). Holds one counted reference to the chunk.
struct Doomed<T> {
    /// The chunk; kept alive by the reference this value owns.
    chunk: *const Chunk<T>,
    /// First removed sequence number.
    from: u64,
    /// One past the last removed sequence number.
    to: u64,
}

// SAFETY: the chunk is shared memory whose items are `Send + Sync` when `T`
// is (the queue requires `T: Send + Sync`), so clearing them on the
// collector's thread is sound.
unsafe impl<T: Send + Sync> Send for Doomed<T> {}

impl<T: 'static> Doomed<T> {
    /// Gives up the log's count of the removed items, dropping those no
    /// delivery holds, then the chunk reference. Runs on whatever thread the
    /// epoch collector runs on, inside its `pin()`: a payload's panicking
    /// `Drop` is caught and counted, and the other items and the chunk
    /// reference are still released (invariant 7).
    fn clear(self) {
        // SAFETY: we own a counted reference to the chunk (taken in
        // `advance`), so it is alive; the removal that made us owns the
        // log's count of every slot in the range (all published: every
        // deciding closure checks it), and hands it to us.
        unsafe { (*self.chunk).clear(self.from, self.to) };
        let chunk = self.chunk;
        // SAFETY: we own the reference taken in `advance`; the chunk was
        // loaded under the guard of that call and has been kept alive by
        // this reference since.
        unsafe { release_pinned(chunk) };
    }
}
