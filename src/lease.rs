//! A handle's *lease*: one counted reference to the chunk it last read
//! from (a `Consumer`) or pushed into (a `Queue`), so that the next
//! `try_recv` or `push` in the same chunk runs without pinning an epoch
//! guard.
//!
//! # Why
//! A pinned read costs a thread-local lookup, a `SeqCst` store and fence,
//! and an unpin (about 33 instructions, and the fence's cycles) on every
//! item. In a read the guard only keeps the chunk's memory alive (every
//! reader takes the item's count *only if it is not zero*,
//! `Slot::try_own`, so no guard is needed to keep the item). A lease does
//! that job with a counted reference that lives as long as the handle
//! reads in that chunk. So a read within the leased chunk pins nothing;
//! crossing into the next chunk (once per [`Chunk::CAP`] items), an empty
//! queue's slow cases and the trim at a chunk's end pin as before.
//!
//! A push needs the guard for one more reason: pinning may collect, which
//! runs payload drops (user code), and that must not happen while the
//! pusher holds a reservation (invariant 7), so the pinned push pins
//! *before* it reserves. The leased push never pins: it reserves its bytes,
//! then takes the next sequence number by a CAS from a `tail` it saw inside
//! the leased chunk (not at its first slot, whose producer installs the
//! next chunk), so the number always lands in the chunk it holds; when
//! `tail` has left the chunk it gives the bytes back and takes the pinned
//! path, reserving nothing unpinned (`Log::reserve_leased`). The slot it
//! writes cannot be removed under it (no removal passes an unpublished
//! slot, invariant 6), so the chunk is still linked.
//!
//! # Idle handles
//! A lease must not keep a chunk alive after the log let go of it: 200
//! producer clones that pushed once and went idle would otherwise keep 200
//! chunks (megabytes) for a budget of kilobytes. So each lease lives in a
//! slot of its log's lease table ([`Leases`]), which the log can reach: when
//! `retire_chunks` unlinks a chunk, it *revokes* every lease on it
//! ([`Leases::revoke`]): it raises the table's `unlinked_below` past the
//! chunk's index, then CASes every slot that holds the chunk to null; the
//! CAS's winner releases the reference. A reader that has taken its lease
//! out (a swap to null) is not disturbed: the revoker finds null and moves
//! on, and the reader checks, after putting the lease back, whether the
//! chunk was unlinked meanwhile ([`Lease::put`]: the `SeqCst` CAS that puts
//! it back, then a `SeqCst` load of `unlinked_below`, against the revoker's
//! `SeqCst` raise of `unlinked_below`, then `SeqCst` load of the slot; in
//! their single total order one of the two sees the other), and if so
//! revokes it itself. Either way exactly one CAS takes the reference out of
//! the slot and releases it, so an idle handle holds no chunk once the log
//! has unlinked it.
//!
//! The flag the putter reads lives in the table, not in the chunk: once
//! its CAS has put the reference back, the putter owns nothing, and a
//! revoker may release the chunk at once. A putter that is not pinned (the
//! leased read and push paths) must then not touch the chunk again, not
//! even its `unlinked` flag: the chunk may already be back in the pool,
//! being reset for its next life (ThreadSanitizer found exactly that race
//! while the flag was the chunk's). So `put` reads the chunk's index
//! *before* its CAS, while it still owns the reference, and compares it
//! with `unlinked_below` after. Chunks are unlinked in index order (only
//! the list's first chunk is ever unlinked), so `index < unlinked_below`
//! is the same as "unlinked"; `fetch_max` keeps the value monotone when two
//! retirers finish out of order.
//!
//! # Invariants
//! - A slot's `chunk` is null or holds one counted reference
//!   (`Chunk::refs`) owned by the slot. A chunk with a lease on it is never handed to the collector,
//!   so it is never freed (nor, later, recycled) under a reader that uses
//!   the lease.
//! - The reference is used by one thread at a time: a reader *takes* it
//!   ([`Lease::take`], a swap with null) and *puts* it back
//!   ([`Lease::put`]) when done. A `Consumer` is `Sync`, so two threads may
//!   share one handle; the second finds the lease taken (null) and reads
//!   the pinned way. A put that finds a lease already there (another
//!   thread of the same handle installed one meanwhile) releases its own.
//! - A leased chunk may have been unlinked and its slots cleared: the
//!   reader finds the slot's count at 0 and falls back to the pinned path,
//!   which compares with `head`. Slots are written once (a chunk's memory
//!   is not reused while a reference exists), so a non-zero count in slot
//!   `seq % CAP` of the chunk with index `seq / CAP` is item `seq`.

use crate::chunk::{Chunk, release_pinned};
use crate::sync::epoch::{Guard, Shared};
use crate::sync::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::ptr::NonNull;

/// Slots per block of the lease table (2 under loom, so that models reach
/// a second block).
const BLOCK: usize = if cfg!(loom) { 2 } else { 16 };

/// One lease's place in its log's table.
pub(crate) struct LeaseSlot<T> {
    /// The leased chunk (one counted reference), or null (none, or taken
    /// by a reader, or revoked).
    chunk: AtomicPtr<Chunk<T>>,
    /// Whether a handle owns this slot.
    in_use: AtomicBool,
}

/// A block of lease slots; blocks form a list that only grows while the
/// log lives (a handle's slot is reused once the handle is dropped).
struct LeaseBlock<T> {
    /// The slots, each on its own cache line (handles on different threads
    /// swap their own slot on every operation).
    slots: [CachePadded<LeaseSlot<T>>; BLOCK],
    /// The next block, or null; installed once by CAS, freed with the log.
    next: AtomicPtr<LeaseBlock<T>>,
}

impl<T> LeaseBlock<T> {
    /// A block of free, empty slots.
    fn new() -> Self {
        Self {
            slots: std::array::from_fn(|_| {
                CachePadded::new(LeaseSlot {
                    chunk: AtomicPtr::new(std::ptr::null_mut()),
                    in_use: AtomicBool::new(false),
                })
            }),
            next: AtomicPtr::new(std::ptr::null_mut()),
        }
    }
}

/// A log's lease table: every handle's lease, reachable by the log so that
/// retiring a chunk revokes the leases on it (see the module docs).
pub(crate) struct Leases<T> {
    /// The first block (inline); later ones hang off its `next`.
    first: LeaseBlock<T>,
    /// One past the highest index of a chunk `retire_chunks` has unlinked
    /// (0 before the first): every chunk with a lower index is unlinked
    /// (chunks leave the list in index order). Raised by
    /// [`Leases::revoke`], read by [`Lease::put`] (the pair in the module
    /// docs).
    unlinked_below: CachePadded<AtomicU64>,
}

impl<T> Leases<T> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Self {
            first: LeaseBlock::new(),
            unlinked_below: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// Every block, in list order.
    fn blocks(&self) -> impl Iterator<Item = &LeaseBlock<T>> {
        let mut cur: *const LeaseBlock<T> = &self.first;
        std::iter::from_fn(move || {
            // SAFETY: `first` is ours; later blocks are freed only with the
            // table (`drop`).
            let block = unsafe { cur.as_ref() }?;
            // Acquire: pairs with the AcqRel install CAS in `claim_slot`.
            cur = block.next.load(Ordering::Acquire);
            Some(block)
        })
    }

    /// A free slot, now owned by the caller (a new block if all are taken).
    fn claim_slot(&self) -> &LeaseSlot<T> {
        let mut last = &self.first;
        for block in self.blocks() {
            for slot in &block.slots {
                // Relaxed look, then Acquire CAS: pairs with the Release
                // store in `Lease::drop`, so the previous owner's last use of
                // the slot happens before ours.
                if !slot.in_use.load(Ordering::Relaxed)
                    && slot
                        .in_use
                        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    return slot;
                }
            }
            last = block;
        }
        let block = Box::new(LeaseBlock::new());
        // Relaxed: published by the install CAS below.
        block.slots[0].in_use.store(true, Ordering::Relaxed);
        let fresh = Box::into_raw(block);
        let mut tail = last;
        loop {
            // AcqRel: Release publishes the new block; Acquire sees a
            // winner's.
            match tail.next.compare_exchange(
                std::ptr::null_mut(),
                fresh,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                // SAFETY: installed; freed only with the table.
                Ok(_) => return unsafe { &(&*fresh).slots[0] },
                // SAFETY: another thread's block, freed only with the table.
                Err(next) => tail = unsafe { &*next },
            }
        }
    }

    /// Revokes every lease on `chunk`, which `retire_chunks` just unlinked
    /// (see the module docs): raises `unlinked_below` past it, then a slot
    /// that holds it gives up its reference. Leases taken out by readers
    /// meanwhile are revoked by their own `put`.
    pub(crate) fn revoke(&self, chunk: Shared<'_, Chunk<T>>, guard: &Guard) {
        let target = chunk.as_raw().cast_mut();
        // SAFETY: loaded under `guard` by the caller, which still owns the
        // list link's reference.
        let index = unsafe { chunk.deref() }.index;
        // SeqCst: the revoker's store half of the pair with `Lease::put`
        // (module docs), before the slot loads below.
        self.unlinked_below.fetch_max(index + 1, Ordering::SeqCst);
        for block in self.blocks() {
            for slot in &block.slots {
                // SeqCst: after our SeqCst raise of `unlinked_below` (the pair in
                // the module docs); the CAS takes the reference exactly once
                // (against `put`'s own revocation and a reader's `take`).
                if slot.chunk.load(Ordering::SeqCst) == target
                    && slot
                        .chunk
                        .compare_exchange(
                            target,
                            std::ptr::null_mut(),
                            Ordering::SeqCst,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    // SAFETY: the slot owned one counted reference to the
                    // chunk (alive under `guard`, where the caller loaded
                    // it); our CAS took it.
                    unsafe { Chunk::release(chunk, guard) };
                }
            }
        }
    }
}

impl<T> Drop for Leases<T> {
    fn drop(&mut self) {
        // Every handle is gone (they hold the log), so every slot is free
        // and empty; free the blocks after the first.
        // Acquire: pairs with the install CAS (we are the only user now).
        let mut cur = self.first.next.load(Ordering::Acquire);
        while !cur.is_null() {
            // SAFETY: installed by `claim_slot` from a `Box`, freed once here.
            let block = unsafe { Box::from_raw(cur) };
            // Acquire: as above.
            cur = block.next.load(Ordering::Acquire);
        }
    }
}

/// A handle's lease (see the module docs): its slot in the log's table,
/// claimed when the handle first holds a chunk.
pub(crate) struct Lease<T> {
    /// The slot, or null until the first `put`. The table outlives the
    /// handle: the handle holds the log, and declares its lease first, so
    /// the lease drops first.
    slot: AtomicPtr<LeaseSlot<T>>,
}

impl<T> Lease<T> {
    /// An empty lease.
    pub(crate) fn new() -> Self {
        Self {
            slot: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The slot, if claimed.
    #[inline]
    fn slot(&self) -> Option<&LeaseSlot<T>> {
        // Acquire: pairs with the AcqRel CAS in `slot_or_claim`.
        // SAFETY: a claimed slot lives as long as the table, which outlives
        // this lease (see `slot`'s docs).
        unsafe { self.slot.load(Ordering::Acquire).as_ref() }
    }

    /// The slot, claiming one from `table` on first use. Inlined, the
    /// claim kept out of line: every `put` runs this (the call alone was
    /// about 16 instructions per item of `benches/icount.sh`'s push-recv).
    #[inline]
    fn slot_or_claim<'a>(&'a self, table: &'a Leases<T>) -> &'a LeaseSlot<T> {
        match self.slot() {
            Some(slot) => slot,
            None => self.claim(table),
        }
    }

    /// Claims a slot from `table` for this lease (its first `put`), or
    /// finds the one another thread sharing the handle claimed first.
    #[cold]
    #[inline(never)]
    fn claim<'a>(&'a self, table: &'a Leases<T>) -> &'a LeaseSlot<T> {
        let mine = table.claim_slot();
        let p = (mine as *const LeaseSlot<T>).cast_mut();
        // AcqRel: Release publishes our claim; Acquire sees another
        // thread's (two threads sharing this handle).
        match self.slot.compare_exchange(
            std::ptr::null_mut(),
            p,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => mine,
            Err(theirs) => {
                // Release: pairs with the Acquire CAS in `claim_slot`.
                mine.in_use.store(false, Ordering::Release);
                // SAFETY: as in `slot`.
                unsafe { &*theirs }
            }
        }
    }

    /// Takes the leased reference for this thread's read, if there is one
    /// and no other thread is using it. The caller owns the reference until
    /// it [`put`](Lease::put)s it back or releases it.
    #[inline]
    pub(crate) fn take(&self) -> Option<NonNull<Chunk<T>>> {
        let slot = self.slot()?;
        // Acquire: pairs with the SeqCst CAS in `put`, so the reference (and
        // the chunk fields the putter read) are handed over with it.
        NonNull::new(slot.chunk.swap(std::ptr::null_mut(), Ordering::Acquire))
    }

    /// Puts a taken (or newly acquired) reference back into this lease's
    /// slot in `table`; if another thread of this handle installed one
    /// meanwhile, releases ours instead. If the chunk was unlinked
    /// meanwhile, revokes it (see the module docs).
    #[inline]
    pub(crate) fn put(&self, chunk: NonNull<Chunk<T>>, table: &Leases<T>) {
        let slot = self.slot_or_claim(table);
        let p = chunk.as_ptr();
        // SAFETY: we still own the reference, so the chunk is alive; after
        // the CAS below we touch it no more (module docs).
        let index = unsafe { chunk.as_ref() }.index;
        // SeqCst: the put half of the pair with `Leases::revoke` (module
        // docs); also the Release that `take` pairs with.
        if slot
            .chunk
            .compare_exchange(std::ptr::null_mut(), p, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: we own this reference and give it up.
            unsafe { release_pinned(p.cast_const()) };
            return;
        }
        // SeqCst: the load half of the pair with `Leases::revoke` (module
        // docs). The chunk itself may be gone by now: compare the index we
        // read while we owned it.
        if index < table.unlinked_below.load(Ordering::SeqCst) {
            self.revoke_own(slot, p);
        }
    }

    /// `put` found its chunk unlinked: takes the reference back out, unless
    /// a revoker or a reader got it first. The slot may hold `p` again as a
    /// new life of the same memory (recycled, then put by another thread
    /// of this handle): the CAS then takes that lease instead, which costs
    /// the handle its lease and nothing else, since the slot owned one
    /// reference to whatever `p` is now.
    #[cold]
    #[inline(never)]
    fn revoke_own(&self, slot: &LeaseSlot<T>, p: *mut Chunk<T>) {
        // SeqCst: as in `Leases::revoke`.
        if slot
            .chunk
            .compare_exchange(p, std::ptr::null_mut(), Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: our CAS took the slot's reference.
            unsafe { release_pinned(p.cast_const()) };
        }
    }

    /// Moves a lease to `chunk` (loaded under `guard`): keeps `held` if it is
    /// that chunk; otherwise takes a new reference to `chunk` and releases
    /// `held`. Returns the reference the caller now owns, if any (none when
    /// `chunk` is already on its way to the collector).
    pub(crate) fn renew(
        held: Option<NonNull<Chunk<T>>>,
        chunk: &Chunk<T>,
        guard: &Guard,
    ) -> Option<NonNull<Chunk<T>>> {
        if held.is_some_and(|h| std::ptr::eq(h.as_ptr(), chunk)) {
            return held;
        }
        let new = chunk.try_acquire().then(|| NonNull::from(chunk));
        if let Some(old) = held {
            // SAFETY: we own the reference `old` and give it up; it kept the
            // chunk alive until now.
            unsafe { Chunk::release(Shared::from(old.as_ptr().cast_const()), guard) };
        }
        new
    }
}

impl<T> Drop for Lease<T> {
    fn drop(&mut self) {
        if let Some(chunk) = self.take() {
            // SAFETY: the slot owned this reference.
            unsafe { release_pinned(chunk.as_ptr().cast_const()) };
        }
        if let Some(slot) = self.slot() {
            // Release: pairs with the Acquire CAS in `claim_slot`: the next
            // owner of the slot comes after our last use.
            slot.in_use.store(false, Ordering::Release);
        }
    }
}
