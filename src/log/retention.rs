//! Retention: how items leave the log. Expiry, eviction and trimming
//! (releasing what every group has read) all move `head` through
//! [`Log::advance`] (help on a change of cause, claim, finish; the protocol
//! and its proofs are in the parent module's essay, "Removal" and "Why each
//! miss is counted with the right cause"), give the removed items' bytes
//! back (`detach`), hand the clearing of their slots to the epoch collector
//! (`Doomed`), and unlink chunks that lie wholly below `head`
//! (`retire_chunks`). The chunk-list mechanics, pushes and reads stay in the
//! parent module; this one only removes.

use super::{CAP, Log, cause_of, head_word, seq_of};
use crate::chunk::{Chunk, drop_contained};
use crate::envelope::ItemArc;
use crate::group::{Cause, JOINING};
use crate::sync::epoch::{self, Guard, Shared};
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
            // Acquire: pairs with the AcqRel CAS in `retire_chunks`.
            let mut cur = self.head_chunk.load(Ordering::Acquire, guard);
            let chunk = loop {
                // SAFETY: `head_chunk` or reached from it by `next` under
                // `guard` (see `locate`).
                let c = unsafe { cur.deref() };
                if c.index >= h / CAP {
                    break c;
                }
                cur = c.next.load(Ordering::Acquire, guard);
                if cur.is_null() {
                    // `h` sits at the start of a chunk nobody installed yet:
                    // nothing is retained there.
                    return 0;
                }
            };
            if chunk.index != h / CAP {
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
                self.detach(chunk, h, h1, guard);
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
            bytes += chunk.slot(seq).bytes.load(Ordering::Relaxed);
        }
        self.unreserve(bytes);
        let doomed = Doomed {
            chunk: chunk as *const Chunk<T>,
            from,
            to,
            panics: self.drop_panics.clone(),
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
        self.advance(Cause::Consumed, guard, |_, h, chunk| {
            let groups = self.registry.load(guard);
            if groups.is_empty() {
                return Decision::Stop;
            }
            let mut min = chunk.end();
            for g in groups {
                let c = g.cursor.load(Ordering::SeqCst);
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
            Decision::up_to(h, chunk.published_until(h, min))
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
                // Acquire: pairs with the Release publication.
                let p = chunk.slot(s).item.load(Ordering::Acquire);
                if p.is_null() {
                    break; // mid-push (or removed by someone else: CAS fails)
                }
                // SAFETY: loaded under `guard` (see `try_recv`).
                if unsafe { &*p }.enqueued_nanos() > cutoff {
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
                // Acquire: pairs with the Release publication.
                let p = chunk.slot(s).item.load(Ordering::Acquire);
                if p.is_null() {
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
                freed += chunk.slot(s).bytes.load(Ordering::Relaxed);
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
    /// The queue's count of panicking payload drops (see `Log::drop_panics`).
    panics: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

// SAFETY: the slots hold `Arc<Item<T>>` counts and the chunk is shared
// memory; `Item<T>` and `Chunk<T>` are `Send + Sync` when `T` is (the queue
// requires `T: Send + Sync`), so clearing them on the collector's thread is
// sound.
unsafe impl<T: Send + Sync> Send for Doomed<T> {}

impl<T: 'static> Doomed<T> {
    /// Drops the removed items and the chunk reference. Runs on whatever
    /// thread the epoch collector runs on, inside its `pin()`: a payload's
    /// panicking `Drop` is caught and counted, and the other items and the
    /// chunk reference are still released (invariant 7).
    fn clear(self) {
        // SAFETY: we own a counted reference to the chunk (taken in
        // `detach`), so it is alive.
        let chunk = unsafe { &*self.chunk };
        for seq in self.from..self.to {
            // AcqRel: Acquire pairs with the producer's Release publication
            // (we drop the item); the swap makes the slot null so that
            // `Chunk::drop` does not drop it again.
            let p = chunk
                .slot(seq)
                .item
                .swap(std::ptr::null_mut(), Ordering::AcqRel);
            // SAFETY: the slot owned one count of this `Arc`, and the swap
            // handed it to us, exactly once.
            if !p.is_null() && drop_contained(unsafe { ItemArc::from_raw(p) }) {
                // Relaxed: a statistic.
                self.panics
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let chunk = self.chunk;
        // SAFETY (of the closure's call): we own the reference taken in
        // `detach`; the chunk was loaded under the guard of that call and
        // has been kept alive by this reference since.
        release_pinned(Box::new(move |guard| unsafe {
            Chunk::release(Shared::from(chunk), guard)
        }));
    }
}

/// A chunk release waiting for a guard (see [`release_pinned`]).
#[cfg_attr(loom, allow(dead_code))]
type Release = Box<dyn FnOnce(&Guard)>;

/// A node of the list of releases that nested clears leave to the
/// outermost one.
#[cfg(not(loom))]
struct Pending {
    /// The release.
    release: Release,
    /// The next node, or null.
    next: *mut Pending,
}

#[cfg(not(loom))]
std::thread_local! {
    /// Whether a `release_pinned` is running on this thread (const and
    /// free of `Drop`, so it still works while the thread exits).
    static RELEASING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Releases left by nested calls, for the outermost call (a list of
    /// leaked boxes: const and free of `Drop`, like `RELEASING`).
    static PENDING: std::cell::Cell<*mut Pending> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// Runs `release` (a chunk release, which may defer the chunk's
/// destruction) under a pinned guard, without recursing.
///
/// `Doomed::clear` runs inside the epoch collector. Normally that is inside
/// some `pin`, so its own `pin` is nested and collects nothing. But while a
/// thread exits, crossbeam's thread-local handle is gone: every `pin`
/// registers a fresh participant, whose first pin collects, which runs more
/// `Doomed::clear`s, each pinning a fresh participant again, until the
/// stack overflows (found by the `stress_test` example under load). So only
/// the outermost call pins; a call made while one is running (from the
/// collection inside that `pin`) queues its release, and the outermost call
/// runs the queue under its guard.
fn release_pinned(release: Release) {
    // Under loom the stand-in collector never registers participants (and
    // all model threads share one OS thread's thread-locals): just pin.
    #[cfg(loom)]
    {
        release(&epoch::pin());
    }
    #[cfg(not(loom))]
    {
        if RELEASING.with(|r| r.replace(true)) {
            let next = PENDING.with(std::cell::Cell::get);
            let node = Box::into_raw(Box::new(Pending { release, next }));
            PENDING.with(|p| p.set(node));
            return;
        }
        let mut first = Some(release);
        loop {
            let guard = epoch::pin();
            if let Some(release) = first.take() {
                release(&guard);
            }
            loop {
                let node = PENDING.with(|p| p.replace(std::ptr::null_mut()));
                if node.is_null() {
                    break;
                }
                let mut cur = node;
                while !cur.is_null() {
                    // SAFETY: every node was leaked by `Box::into_raw` above
                    // and is taken off the list exactly once (the `replace`).
                    let Pending { release, next } = *unsafe { Box::from_raw(cur) };
                    release(&guard);
                    cur = next;
                }
            }
            // Unpinning may run the collector again (a participant
            // registered during thread exit finalizes itself): go round
            // once more if that queued anything.
            drop(guard);
            if PENDING.with(|p| p.get().is_null()) {
                break;
            }
        }
        RELEASING.with(|r| r.set(false));
    }
}
