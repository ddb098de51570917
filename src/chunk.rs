//! One chunk of the log: [`Chunk::CAP`] slots for a fixed range of sequence
//! numbers, each holding its item *inline* (no allocation per item), a link
//! to the next chunk, and what retention needs to know about it without
//! opening its items.
//!
//! # Invariants
//! - Chunk `k` holds sequence numbers `[k * CAP, (k + 1) * CAP)`; slot `i`
//!   holds sequence number `k * CAP + i`. `CAP` is a power of two chosen from
//!   the slot's size (about 64 KiB of slots per chunk, 32 to 1024 slots; 2
//!   under loom).
//! - A slot's `owners` count goes `0 → 1` exactly once, by the producer's
//!   `Release` store that publishes the item it wrote into the slot. From
//!   then on it counts the item's owners: one for the log (from publication
//!   until the slot is cleared, one grace period after `head` passed it; see
//!   `Log::detach`), plus one per [`Held`] (a consumer's delivery). The owner
//!   whose decrement takes it to 0 drops the item in place; the slot is then
//!   never written again. Zero therefore means "reserved but not yet
//!   published" while the sequence number is at or above `head`, and
//!   "cleared" below it; readers tell the two apart by re-reading `head`.
//! - A reader increments `owners` in one of two ways. Pinned: only for a
//!   slot it claimed while pinned, having seen it published after pinning;
//!   the log's count is released only by a clearing deferred after `head`
//!   passed the slot, which runs after that guard is gone, so the plain
//!   increment never starts from 0 ([`Held::acquire`]). Unpinned, through
//!   a consumer's lease (`lease.rs`): only *if the count is not 0*
//!   ([`Held::try_acquire`], a CAS), so it never revives a cleared item,
//!   and before it claims the slot (a reader that then loses the claim
//!   gives the count back).
//! - `refs` counts the owners of the chunk's memory: one for the list link
//!   (dropped when the chunk is unlinked), one per consumer group whose
//!   chunk hint points here, one per consumer handle whose lease holds it
//!   (`lease.rs`), one per removed range whose slots are waiting
//!   to be cleared, and one per slot whose item outlived its clearing (a
//!   delivery still holds it; the clearing adds that reference before it
//!   gives up the log's count, and the last [`Held`] releases it). The chunk
//!   is handed to the epoch collector when `refs` reaches zero, and a new
//!   reference is only ever taken from a count the taker knows is non-zero
//!   (its own, or through [`Chunk::try_acquire`]), so a dying chunk is never
//!   revived.
//! - A chunk whose `refs` reached zero is *recycled*, not freed: the
//!   collector hands it, one grace period later (so no reader pinned before
//!   its last release can still hold a pointer to it), to its queue's
//!   [`Pool`], a few slots from which [`alloc`] takes a chunk for a new
//!   index before it asks the allocator. Its slots are all cleared (owner
//!   count 0) by then; `alloc` resets its index, link, time and count. A
//!   full pool, or a closed one (the log is gone), frees the chunk instead.
//!   So in the steady state no chunk is allocated, and a recycled chunk is
//!   reachable only through references taken after its new index was set
//!   (the ABA a recycle could cause is excluded by the grace period and by
//!   the counts: a lease or hint holds `refs`, so its chunk is never
//!   recycled under it).

use crate::envelope::{Item, Name};
use crate::sync::epoch::{self, Atomic, Guard, Shared};
use crate::sync::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicU64 as StatCounter;

/// About how many bytes of slots one chunk holds (see [`capacity`]).
const CHUNK_BYTES: usize = 64 << 10;

/// The chunk capacity for slots of `slot_size` bytes: the largest power of
/// two from 32 to 1024 whose slots fit in [`CHUNK_BYTES`] (32 if none
/// does); 2 under loom, so that models reach chunk boundaries in a few
/// steps.
const fn capacity(slot_size: usize) -> u64 {
    if cfg!(loom) {
        return 2;
    }
    let mut cap = 1024;
    while cap > 32 && cap * slot_size > CHUNK_BYTES {
        cap /= 2;
    }
    cap as u64
}

/// What a queue's items need of it for as long as any of them lives (a
/// delivery may outlive the queue): the log and each of its chunks hold it.
pub(crate) struct Tether<T> {
    /// The queue's name, which the enqueue events of its items borrow
    /// (see `Event::borrowed`): held for its count, never read.
    #[allow(dead_code)]
    pub(crate) name: Name,
    /// Payload `Drop`s that panicked while chunkq dropped removed items
    /// (see `Log::drop_panics`). A plain std atomic: a statistic that
    /// orders nothing.
    pub(crate) drop_panics: StatCounter,
    /// Chunks kept for reuse (see the module docs).
    pub(crate) pool: Pool<T>,
}

impl<T> Tether<T> {
    /// The tether of a new log named `name`.
    pub(crate) fn new(name: Name) -> Self {
        Self {
            name,
            drop_panics: StatCounter::new(0),
            pool: Pool::new(),
        }
    }
}

/// How many retired chunks a queue keeps for reuse: enough to cover the
/// chunks the epoch collector hands back in one batch in the steady state
/// (a few hundred KiB at most per queue).
const POOL: usize = if cfg!(loom) { 1 } else { 8 };

/// Retired chunks kept for reuse (see the module docs): a few slots, each
/// null or owning one chunk, taken by a swap, so that no chunk is handed out
/// twice; `closed` once the log is gone.
pub(crate) struct Pool<T> {
    /// The kept chunks (each owned by its slot; null when empty).
    slots: [AtomicPtr<Chunk<T>>; POOL],
    /// Set by `close` (the log is dropped): chunks given later are freed.
    closed: AtomicBool,
}

impl<T> Pool<T> {
    /// An empty, open pool.
    fn new() -> Self {
        Self {
            slots: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            closed: AtomicBool::new(false),
        }
    }

    /// A kept chunk, if any.
    fn take(&self) -> Option<Box<Chunk<T>>> {
        for slot in &self.slots {
            // Relaxed: a look only; the swap below takes it.
            if slot.load(Ordering::Relaxed).is_null() {
                continue;
            }
            // Acquire: pairs with the SeqCst CAS in `give`, so the chunk's
            // reset state and the clearing of its slots are visible.
            let p = slot.swap(std::ptr::null_mut(), Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: a non-null slot owns its chunk (a leaked `Box`),
                // and the swap took it out exactly once.
                return Some(unsafe { Box::from_raw(p) });
            }
        }
        None
    }

    /// Keeps `chunk` (retired one grace period ago, every slot cleared),
    /// or frees it when the pool is full or closed.
    fn give(&self, chunk: Box<Chunk<T>>) {
        // SeqCst: with the CAS below and the store and swaps in `close`, a
        // Dekker pair: either `close` finds the chunk we put, or we see
        // `closed` after putting it and take it back out.
        if self.closed.load(Ordering::SeqCst) {
            return drop(chunk);
        }
        let p = Box::into_raw(chunk);
        for slot in &self.slots {
            // SeqCst: see above; also the Release that `take` pairs with.
            if slot
                .compare_exchange(std::ptr::null_mut(), p, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                if self.closed.load(Ordering::SeqCst) {
                    self.drain();
                }
                return;
            }
        }
        // SAFETY: no slot took `p`; we still own it.
        drop(unsafe { Box::from_raw(p) });
    }

    /// Frees every kept chunk, and every chunk given from now on (the log
    /// is being dropped: the pool's chunks hold its `Tether`).
    pub(crate) fn close(&self) {
        // SeqCst: see `give`.
        self.closed.store(true, Ordering::SeqCst);
        self.drain();
    }

    /// Frees every kept chunk.
    fn drain(&self) {
        for slot in &self.slots {
            // SeqCst: see `give`.
            let p = slot.swap(std::ptr::null_mut(), Ordering::SeqCst);
            if !p.is_null() {
                // SAFETY: as in `take`.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

impl<T> Drop for Pool<T> {
    fn drop(&mut self) {
        self.drain();
    }
}

/// The largest accounted size of one item: a slot stores it in 32 bits.
pub(crate) const MAX_ITEM_BYTES: usize = u32::MAX as usize;

/// An owner count above this aborts the process (as `Arc`'s does above
/// `isize::MAX`): it would take some two billion deliveries of one item
/// alive at once, i.e. leaked in a loop, and wrapping would free the item
/// under them.
const MAX_OWNERS: u32 = u32::MAX / 2;

/// One slot: an item written in place, its owner count and accounted size.
pub(crate) struct Slot<T> {
    /// The item's owners (see the module docs): 0 until published and after
    /// the item was dropped. 32 bits (with `bytes`, one word per slot): the
    /// count is 1 plus one per group holding a delivery of the item, and
    /// the increments abort the process before it could wrap
    /// ([`MAX_OWNERS`]).
    owners: AtomicU32,
    /// Bytes reserved against the memory budget for this item (at most
    /// [`MAX_ITEM_BYTES`]: a push refuses a larger item as `Full`). Written
    /// (`Relaxed`) before the `Release` publication, read after an
    /// `Acquire` load of `owners`, so it needs no ordering of its own.
    bytes: AtomicU32,
    /// The item, initialised while `owners > 0`.
    item: UnsafeCell<MaybeUninit<Item<T>>>,
}

// SAFETY: the item is written once by the producer that reserved the slot,
// before its `Release` publication, then only read (shared, `T: Sync`) until
// the last owner drops it in place, on whatever thread that is (`T: Send`);
// the owner count orders these accesses (see the module docs).
unsafe impl<T: Send + Sync> Sync for Slot<T> {}
// SAFETY: as above; a slot moves between threads only inside its chunk.
unsafe impl<T: Send + Sync> Send for Slot<T> {}

impl<T> Slot<T> {
    /// An empty slot.
    fn new() -> Self {
        Self {
            owners: AtomicU32::new(0),
            bytes: AtomicU32::new(0),
            item: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Whether the item is published and not yet dropped.
    #[inline]
    pub(crate) fn is_published(&self) -> bool {
        // Acquire: pairs with the Release publication in `write`, so the
        // caller may read the item and its size.
        self.owners.load(Ordering::Acquire) != 0
    }

    /// The accounted size (after `is_published` returned true).
    #[inline]
    pub(crate) fn bytes(&self) -> usize {
        // Relaxed: ordered by the Acquire load that saw the slot published.
        self.bytes.load(Ordering::Relaxed) as usize
    }

    /// Writes and publishes `item` with its accounted size.
    ///
    /// # Safety
    /// The caller reserved this slot's sequence number (it is the only
    /// writer), and the slot was never published.
    #[inline]
    pub(crate) unsafe fn write(&self, item: Item<T>, bytes: usize) {
        debug_assert_eq!(self.owners.load(Ordering::Relaxed), 0);
        debug_assert!(bytes <= MAX_ITEM_BYTES);
        // Relaxed: ordered before readers by the Release store below.
        self.bytes.store(bytes as u32, Ordering::Relaxed);
        // SAFETY: nobody reads the cell while `owners` is 0 (module docs),
        // and the caller is its only writer.
        unsafe { (*self.item.get()).write(item) };
        // Release: pairs with the Acquire loads in `is_published`; the
        // log's count.
        self.owners.store(1, Ordering::Release);
    }

    /// The item.
    ///
    /// # Safety
    /// The caller saw the slot published under a guard it still holds (so
    /// the log's count is not released yet), or holds a count itself.
    #[inline]
    pub(crate) unsafe fn item(&self) -> &Item<T> {
        // SAFETY: initialised while counted (the caller's contract), and
        // only read until the last owner drops it.
        let item = unsafe { (*self.item.get()).assume_init_ref() };
        item.touch();
        item
    }

    /// Gives up one count; returns whether it was the last (the caller must
    /// then drop the item with [`Slot::drop_item`]).
    #[inline]
    fn release_owner(&self) -> bool {
        // AcqRel: Release publishes this owner's reads of the item to the
        // last owner, Acquire (when last) sees every other owner's reads
        // before the drop (as `Arc` does).
        self.owners.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Drops the item in place.
    ///
    /// # Safety
    /// The caller's `release_owner` returned true (it was the last owner).
    unsafe fn drop_item(&self) {
        // SAFETY: the caller was the last owner; nobody else reads it.
        unsafe {
            let item = (*self.item.get()).assume_init_mut();
            item.retire();
            std::ptr::drop_in_place(item);
        }
    }

    /// Whether [`Slot::drop_item`] would do anything (see
    /// `Item::needs_drop`).
    ///
    /// # Safety
    /// As [`Slot::drop_item`].
    #[inline]
    unsafe fn needs_drop(&self) -> bool {
        // SAFETY: the caller was the last owner; the item is initialised.
        unsafe { (*self.item.get()).assume_init_ref() }.needs_drop()
    }
}

/// A chunk of [`Chunk::CAP`] slots. See the module docs for its invariants.
pub(crate) struct Chunk<T> {
    /// The chunk number `k`: it holds `[k * CAP, (k + 1) * CAP)`.
    pub(crate) index: u64,
    /// The next chunk (`index + 1`), installed once by CAS; null until then.
    pub(crate) next: Atomic<Chunk<T>>,
    /// Newest enqueue time (ns since the Unix epoch) of any item published
    /// here; lets a sweep expire a whole chunk without reading its items.
    /// Raised by `fetch_max` before the slot's `Release` publication.
    pub(crate) newest: AtomicU64,
    /// Owners of this chunk's memory (see module docs).
    refs: AtomicUsize,
    /// What the chunk's items need of their queue after it may be gone
    /// (shared by the log and all its chunks).
    tether: Arc<Tether<T>>,
    /// The slots.
    slots: Box<[Slot<T>]>,
}

impl<T> Chunk<T> {
    /// Slots per chunk (see the module docs).
    pub(crate) const CAP: u64 = capacity(std::mem::size_of::<Slot<T>>());

    /// A fresh chunk `index` with one reference (the list link it is about to
    /// be installed into).
    fn new(index: u64, tether: Arc<Tether<T>>) -> Self {
        Self {
            index,
            next: Atomic::null(),
            newest: AtomicU64::new(0),
            refs: AtomicUsize::new(1),
            tether,
            slots: (0..Self::CAP).map(|_| Slot::new()).collect(),
        }
    }

    /// Makes a recycled chunk (out of the pool: owned, every slot cleared)
    /// chunk `index`, with one reference, as [`Chunk::new`] would.
    fn reset(&mut self, index: u64) {
        debug_assert!(
            self.slots
                .iter()
                .all(|s| s.owners.load(Ordering::Relaxed) == 0),
            "a chunk recycled with a live item"
        );
        self.index = index;
        self.next = Atomic::null();
        self.newest = AtomicU64::new(0);
        self.refs = AtomicUsize::new(1);
    }

    /// First sequence number held here.
    pub(crate) fn start(&self) -> u64 {
        self.index * Self::CAP
    }

    /// One past the last sequence number held here.
    pub(crate) fn end(&self) -> u64 {
        self.start() + Self::CAP
    }

    /// The slot for sequence number `seq` (which must lie in this chunk).
    #[inline]
    pub(crate) fn slot(&self, seq: u64) -> &Slot<T> {
        debug_assert!(seq >= self.start() && seq < self.end());
        let i = (seq % Self::CAP) as usize;
        debug_assert_eq!(self.slots.len(), Self::CAP as usize);
        // SAFETY: `slots` has `CAP` entries (`new`), and `i < CAP`. (The
        // bounds check this skips showed in the profiles: a slot is looked
        // up four or five times per item.)
        unsafe { self.slots.get_unchecked(i) }
    }

    /// Raises `newest` to `at` (an enqueue time about to be published
    /// here). Relaxed: ordered before readers by the slot's Release
    /// publication, which the caller makes afterwards; the load spares the
    /// contended RMW when a newer time is already there.
    #[inline]
    pub(crate) fn raise_newest(&self, at: u64) {
        if self.newest.load(Ordering::Relaxed) < at {
            self.newest.fetch_max(at, Ordering::Relaxed);
        }
    }

    /// The queue's tether, for a new chunk.
    pub(crate) fn tether(&self) -> &Arc<Tether<T>> {
        &self.tether
    }

    /// The first sequence number in `[from, to)` (within this chunk) whose
    /// slot is not published, or `to` if all are.
    pub(crate) fn published_until(&self, from: u64, to: u64) -> u64 {
        (from..to)
            .find(|&s| !self.slot(s).is_published())
            .unwrap_or(to)
    }

    /// Takes one more reference, unless the count already reached zero (the
    /// chunk is on its way to the collector). Returns whether it took one.
    pub(crate) fn try_acquire(&self) -> bool {
        // AcqRel on success: pairs with the AcqRel decrement in `release`, so
        // a reference is never taken from a count another thread saw hit zero.
        self.refs
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                (r != 0).then_some(r + 1)
            })
            .is_ok()
    }

    /// Drops one reference; the last one hands the chunk to the epoch
    /// collector.
    ///
    /// # Safety
    /// The caller owns one of the counted references to `this`, and gives it
    /// up here; `this` was loaded under `guard`, or the caller's reference
    /// kept it alive since.
    pub(crate) unsafe fn release(this: Shared<'_, Chunk<T>>, guard: &Guard) {
        // SAFETY: the caller's contract.
        unsafe { Self::release_n(this, 1, guard) }
    }

    /// Drops `n` (>= 1) references at once (see [`Chunk::release`]).
    ///
    /// # Safety
    /// As [`Chunk::release`], for `n` references the caller owns.
    unsafe fn release_n(this: Shared<'_, Chunk<T>>, n: usize, guard: &Guard) {
        // SAFETY: the caller holds counted references, so the chunk is alive.
        let chunk = unsafe { this.deref() };
        // AcqRel: the Release half publishes this owner's last use of the
        // chunk to whoever drops the count to zero; the Acquire half makes the
        // destroyer see every other owner's uses.
        if chunk.refs.fetch_sub(n, Ordering::AcqRel) == n {
            // The count is zero: no list link, hint, lease, pending
            // clearing or delivery refers here any more, and `try_acquire`
            // cannot revive it, so nothing new can reach it; threads that
            // loaded it earlier are pinned, and the collector runs this only
            // after they unpin. (A function pointer and an address: the
            // closure names no `T`, so it is `Send + 'static`, and it fits
            // in crossbeam's inline deferred storage.)
            let raw = ErasedChunk(this.as_raw().cast_mut().cast());
            let recycle: unsafe fn(*mut ()) = recycle::<T>;
            // SAFETY: `raw` is this chunk, handed over by the last reference.
            guard.defer(move || unsafe { recycle(raw.into_raw()) });
        }
    }

    /// Gives up the log's count of the items in `[from, to)` (a removed
    /// range, one grace period after `head` passed it, or the retained items
    /// of a log being dropped), dropping those no delivery holds. Each item
    /// still held by a delivery keeps a chunk reference, which the last
    /// delivery releases. Returns how many payload drops panicked (caught,
    /// see [`drop_contained`]).
    ///
    /// # Safety
    /// The caller owns a counted reference to the chunk (kept), and the
    /// log's count of every published slot in the range (given up here);
    /// unpublished slots in the range are skipped (a log dropped with pushes
    /// that never published, after `close`).
    pub(crate) unsafe fn clear(&self, from: u64, to: u64) -> u64 {
        // Relaxed: we own a reference, so the count is non-zero (as in
        // `Arc::clone`). Taken *before* the slots' counts are given up, so
        // that a delivery whose drop comes last finds its chunk reference
        // in place. Steady state: the surplus goes back below.
        self.refs.fetch_add((to - from) as usize, Ordering::Relaxed);
        let mut surplus = 0;
        let mut panics = 0;
        for seq in from..to {
            let slot = self.slot(seq);
            // Relaxed: a skip only happens for slots that were never
            // published (no other thread is left to publish them).
            if slot.owners.load(Ordering::Relaxed) == 0 {
                surplus += 1;
                continue;
            }
            if slot.release_owner() {
                surplus += 1;
                // SAFETY: we were the last owner. A payload's panicking
                // `Drop` must not leak the other items (invariant 7). Plain
                // items (nothing to drop) skip the call (under loom too,
                // so the witness still sees the drop).
                if (cfg!(loom) || unsafe { slot.needs_drop() })
                    && drop_contained(|| unsafe { slot.drop_item() })
                {
                    panics += 1;
                }
            }
        }
        if panics > 0 {
            // Relaxed: a statistic.
            self.tether
                .drop_panics
                .fetch_add(panics, std::sync::atomic::Ordering::Relaxed);
        }
        if surplus > 0 {
            // Relaxed: we still own our own reference, so this cannot reach
            // zero; the last release of that one orders everything.
            self.refs.fetch_sub(surplus, Ordering::Relaxed);
        }
        panics
    }
}

impl<T> Drop for Chunk<T> {
    fn drop(&mut self) {
        // Every item was dropped before the last reference went (cleared
        // slots, items dropped by their last delivery); nothing to drop.
        debug_assert!(
            self.slots
                .iter()
                .all(|s| s.owners.load(Ordering::Relaxed) == 0),
            "a chunk freed with a live item"
        );
    }
}

/// A counted reference to a published item in a chunk: one of the slot's
/// owners, and, once the log has cleared the slot, through it one reference
/// to the chunk (see the module docs). What a [`crate::Delivery`] holds.
pub(crate) struct Held<T> {
    /// The chunk.
    chunk: NonNull<Chunk<T>>,
    /// The slot, inside `chunk`.
    slot: NonNull<Slot<T>>,
}

// SAFETY: a `Held` reads the item (shared: `T: Sync`) and may drop it, on
// whatever thread drops the last owner (`T: Send`); the chunk is shared
// memory of atomics.
unsafe impl<T: Send + Sync> Send for Held<T> {}
// SAFETY: `&Held` only reads the item.
unsafe impl<T: Send + Sync> Sync for Held<T> {}

impl<T> Held<T> {
    /// Takes one more count of `slot` in `chunk`.
    ///
    /// # Safety
    /// The caller saw `slot` published under a guard it still holds (see the
    /// module docs: the log's count is not released yet), and `slot` lies in
    /// `chunk`.
    #[inline]
    pub(crate) unsafe fn acquire(chunk: &Chunk<T>, slot: &Slot<T>) -> Self {
        // Relaxed: the count is at least the log's 1 (the caller's
        // contract), as in `Arc::clone`; the reads it allows were ordered by
        // the caller's Acquire load.
        if slot.owners.fetch_add(1, Ordering::Relaxed) > MAX_OWNERS {
            std::process::abort();
        }
        Self {
            chunk: NonNull::from(chunk),
            slot: NonNull::from(slot),
        }
    }

    /// Takes one more count of `slot` in `chunk` if its count is not 0
    /// (the slot is published and its item not yet dropped); `None`
    /// otherwise. What a leased read uses instead of a guard (see the
    /// module docs and `lease.rs`).
    ///
    /// # Safety
    /// The caller holds a counted reference to `chunk` (so its memory is
    /// alive), and `slot` lies in `chunk`.
    #[inline]
    pub(crate) unsafe fn try_acquire(chunk: &Chunk<T>, slot: &Slot<T>) -> Option<Self> {
        // Acquire (load and success): pairs with the Release publication in
        // `Slot::write`, so the item may be read; a count seen non-zero is
        // never revived from 0 (the CAS fails if it dropped meanwhile).
        let mut n = slot.owners.load(Ordering::Acquire);
        loop {
            if n == 0 {
                return None;
            }
            if n > MAX_OWNERS {
                std::process::abort();
            }
            match slot
                .owners
                .compare_exchange_weak(n, n + 1, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => {
                    return Some(Self {
                        chunk: NonNull::from(chunk),
                        slot: NonNull::from(slot),
                    });
                }
                Err(now) => n = now,
            }
        }
    }

    /// The item.
    #[inline]
    pub(crate) fn item(&self) -> &Item<T> {
        // SAFETY: we hold a count of the slot, so the item and its chunk
        // are alive.
        unsafe { self.slot.as_ref().item() }
    }

    /// The payload by value, if this is the item's last owner (the log cleared it and
    /// no other delivery holds it); otherwise `self` back.
    pub(crate) fn try_take(self) -> Result<T, Self> {
        // SAFETY: we hold a count, so the slot is alive.
        let slot = unsafe { self.slot.as_ref() };
        // Acquire: as the last owner we see every other owner's reads before
        // we move the item out (pairs with their AcqRel decrements).
        if slot
            .owners
            .compare_exchange(1, 0, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(self);
        }
        // SAFETY: we were the last owner: the item is initialised, and the
        // slot is never read or dropped again (its count is 0).
        let item = unsafe {
            let cell = &mut *slot.item.get();
            cell.assume_init_mut().retire();
            cell.assume_init_read()
        };
        let chunk = self.chunk;
        std::mem::forget(self);
        // The rest of the envelope goes while the chunk (and the name its
        // events may borrow) is still held.
        let payload = item.into_payload();
        release_chunk(chunk);
        Ok(payload)
    }
}

impl<T> Clone for Held<T> {
    /// One more counted reference to the same slot (`Arc::clone`'s rule).
    #[inline]
    fn clone(&self) -> Self {
        // SAFETY: we hold a count of the slot, so the slot and its chunk are
        // alive and the count is at least 1, which is all `acquire` needs
        // (the item stays alive while any count is held, whether the log's
        // is released or not).
        unsafe { Held::acquire(self.chunk.as_ref(), self.slot.as_ref()) }
    }
}

impl<T> Drop for Held<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we hold a count, so the slot is alive.
        let slot = unsafe { self.slot.as_ref() };
        if slot.release_owner() {
            self.drop_last();
        }
    }
}

impl<T> Held<T> {
    /// The last owner's part of the drop, after the log cleared the slot:
    /// drops the item here, then the chunk reference the clearing took for
    /// it. A panicking payload `Drop` unwinds in this thread (as dropping an
    /// `Arc` would), but only after the chunk reference is released. Out of
    /// line: most deliveries are dropped while the log still holds the item.
    #[cold]
    #[inline(never)]
    fn drop_last(&mut self) {
        // SAFETY: we hold a count (just given up as the last), so the slot
        // is alive.
        let slot = unsafe { self.slot.as_ref() };
        // SAFETY: we were the last owner.
        let dropped =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { slot.drop_item() }));
        release_chunk(self.chunk);
        if let Err(panic) = dropped {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Releases the chunk reference that the clearing of a slot left to its
/// last delivery.
fn release_chunk<T>(chunk: NonNull<Chunk<T>>) {
    // SAFETY: we own the reference, which has kept the chunk alive since it
    // was taken.
    unsafe { release_pinned(chunk.as_ptr()) };
}

/// Drops `value`, containing a panic from its `Drop` (a payload's `Drop` is
/// user code): returns whether it panicked. chunkq drops removed items on
/// whatever thread runs the epoch collector, often one that is in the middle
/// of an unrelated operation, so a panic must neither escape there nor stop
/// the loop that drops the other items (invariant 7). The panic hook has
/// already reported the panic when this returns.
pub(crate) fn drop_contained(drop: impl FnOnce()) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(drop)).is_err()
}

/// Chunk `index` as an epoch `Owned`: a recycled chunk from the queue's
/// pool if there is one, a new allocation otherwise.
pub(crate) fn alloc<T>(index: u64, tether: &Arc<Tether<T>>) -> epoch::Owned<Chunk<T>> {
    match tether.pool.take() {
        Some(mut chunk) => {
            chunk.reset(index);
            epoch::Owned::from(chunk)
        }
        None => epoch::Owned::new(Chunk::new(index, tether.clone())),
    }
}

/// A retired chunk on its way to [`recycle`], type-erased so that the
/// deferred closure names no `T`.
struct ErasedChunk(*mut ());

// SAFETY: the chunk it points to is handed over whole (nothing else refers
// to it), and a `Chunk<T>` is shared memory of atomics and of items that
// are `Send + Sync` (see `Slot`).
unsafe impl Send for ErasedChunk {}

impl ErasedChunk {
    /// The pointer (a method, so that a closure captures the whole value,
    /// which is `Send`, not its raw field).
    fn into_raw(self) -> *mut () {
        self.0
    }
}

/// The collector's end of a chunk's last release: keeps the chunk in its
/// queue's pool, or frees it.
///
/// # Safety
/// `raw` is a `*mut Chunk<T>` from an epoch `Owned`, whose count reached
/// zero one grace period ago; it is handed over here.
unsafe fn recycle<T>(raw: *mut ()) {
    // SAFETY: the caller's contract: nothing refers to the chunk any more.
    let chunk = unsafe { Box::from_raw(raw.cast::<Chunk<T>>()) };
    // Our own count of the tether: the chunk's may be the last, and the pool
    // lives in it.
    let tether = chunk.tether.clone();
    tether.pool.give(chunk);
}

/// A chunk release waiting for a guard (see [`release_pinned`]): the chunk,
/// type-erased, and the function that releases it.
#[cfg_attr(loom, allow(dead_code))]
struct Release {
    /// The `Chunk<T>`.
    chunk: *const (),
    /// `Chunk::<T>::release` for that `T`.
    release: unsafe fn(*const (), &Guard),
}

/// [`Chunk::release`] of a type-erased chunk pointer.
///
/// # Safety
/// As [`Chunk::release`]; `chunk` is a `*const Chunk<T>`.
#[cfg_attr(loom, allow(dead_code))]
unsafe fn release_erased<T>(chunk: *const (), guard: &Guard) {
    // SAFETY: the caller's contract.
    unsafe { Chunk::release(Shared::from(chunk.cast::<Chunk<T>>()), guard) }
}

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

/// Releases one counted reference to `chunk` (which may defer the chunk's
/// destruction) under a pinned guard, without recursing.
///
/// The clearing of removed slots runs inside the epoch collector. Normally
/// that is inside some `pin`, so its own `pin` is nested and collects
/// nothing. But while a thread exits, crossbeam's thread-local handle is
/// gone: every `pin` registers a fresh participant, whose first pin
/// collects, which runs more clearings, each pinning a fresh participant
/// again, until the stack overflows (found by the `stress_test` example
/// under load). So only the outermost call pins; a call made while one is
/// running (from the collection inside that `pin`) queues its release, and
/// the outermost call runs the queue under its guard.
///
/// # Safety
/// The caller owns one counted reference to `chunk` and gives it up here.
pub(crate) unsafe fn release_pinned<T>(chunk: *const Chunk<T>) {
    // Under loom the stand-in collector never registers participants (and
    // all model threads share one OS thread's thread-locals): just pin.
    #[cfg(loom)]
    {
        // SAFETY: the caller's contract.
        unsafe { Chunk::release(Shared::from(chunk), &epoch::pin()) };
    }
    #[cfg(not(loom))]
    {
        let release = Release {
            chunk: chunk.cast(),
            release: release_erased::<T>,
        };
        if RELEASING.with(|r| r.replace(true)) {
            let next = PENDING.with(std::cell::Cell::get);
            let node = Box::into_raw(Box::new(Pending { release, next }));
            PENDING.with(|p| p.set(node));
            return;
        }
        let mut first = Some(release);
        loop {
            let guard = epoch::pin();
            if let Some(r) = first.take() {
                // SAFETY: the caller's reference (see above).
                unsafe { (r.release)(r.chunk, &guard) };
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
                    // Each was queued by a caller that gave up its reference.
                    let Pending { release: r, next } = *unsafe { Box::from_raw(cur) };
                    // SAFETY: as above.
                    unsafe { (r.release)(r.chunk, &guard) };
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

#[cfg(all(test, target_pointer_width = "64", not(loom)))]
mod tests {
    use super::*;
    use crate::envelope::Event;
    use std::mem::size_of;

    /// The envelope's layout, which sets what an item costs beyond its
    /// payload (`engine::fixed_overhead`): owner count and size in one
    /// word, UUID, sequence number, creation time, and a history in one
    /// word (a fresh item stores no event).
    #[test]
    fn slot_layout() {
        assert_eq!(size_of::<Event>(), 24);
        assert_eq!(size_of::<crate::envelope::History>(), 8);
        assert_eq!(size_of::<Slot<u64>>() - size_of::<u64>(), 48);
        // 48 B of slot, and the chunk header's share (56 B over 512 slots)
        // rounded up.
        assert_eq!(
            crate::engine::fixed_overhead::<u64>() - size_of::<u64>(),
            49
        );
    }
}
