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
//!   until the slot is cleared by the remover whose `head` claim passed it,
//!   right after that claim: `Log::advance`), plus one per [`Held`] (a
//!   consumer's delivery, or a count chunkq takes for a moment). The owner
//!   whose decrement takes it to 0 drops the item in place; the slot is
//!   then never written again until the chunk is recycled. Zero therefore
//!   means "reserved but not yet published" while the sequence number is
//!   at or above `head`, and "cleared" below it; readers tell the two apart
//!   by re-reading `head`.
//! - **Every read of an item is under one of its counts**, taken *only if
//!   the count is not 0* ([`Slot::try_own`], a CAS): so a count that
//!   reached 0 is never revived, and a remover may drop an item the moment
//!   it gives up the log's count, whatever guards are pinned. (This is what
//!   keeps a flood's garbage small: before issue 16 the clearing waited for
//!   an epoch grace period, and unreclaimed payloads grew to tens of
//!   megabytes on a 1 MiB budget.) A claimed read takes its counts before
//!   its claim (`Log::claim`, the leased `Log::try_recv_one`) and gives
//!   them back if it loses the claim; a look at an item's time takes one
//!   for the look ([`Chunk::peek`]). A count chunkq gives back itself is
//!   released *contained* ([`Held::release_contained`]): if it was the last,
//!   the payload's `Drop` runs there, and a panic is caught and counted.
//! - `refs` counts the owners of the chunk's memory: one for the list link
//!   (dropped when the chunk is unlinked), one per consumer group whose
//!   chunk hint points here, one per handle lease that holds it
//!   (`lease.rs`; both revoked when the chunk is unlinked, so idle handles
//!   and groups keep no chunk), one per remover while it clears slots
//!   here, and one per slot whose item outlived its clearing (a delivery
//!   still holds it; the clearing adds that reference before it gives up
//!   the log's count, and the last [`Held`] releases it). The chunk is
//!   handed to the epoch collector when `refs` reaches zero, and a new
//!   reference is only ever taken from a count the taker knows is non-zero
//!   (its own, or through [`Chunk::try_acquire`]), so a dying chunk is never
//!   revived. The epoch now guards chunk memory only: no payload waits for
//!   a grace period.
//! - A chunk that deliveries keep after it was unlinked is *charged*: its
//!   whole size ([`Chunk::BYTES`]) is counted in the tether's `pinned`
//!   (`Stats::memory_pinned`) until its last reference goes
//!   ([`Chunk::charge`]), so the memory a held delivery keeps is accounted.
//! - A chunk whose `refs` reached zero is *recycled*, not freed: the
//!   collector hands it, one grace period later (so no reader pinned before
//!   its last release can still hold a pointer to it), to its queue's
//!   [`Pool`], a few slots (at most 256 KiB and a quarter of the budget,
//!   and at least one chunk) from which [`alloc`] takes a chunk for a new
//!   index before it asks the allocator. Its slots are all cleared (owner
//!   count 0) by then; `alloc` resets its index, link, time, flags and
//!   count. A full pool, or a closed one (the log is gone), frees the chunk
//!   instead. So in the steady state no chunk is allocated, and a recycled
//!   chunk is reachable only through references taken after its new index
//!   was set (the ABA a recycle could cause is excluded by the grace period
//!   and by the counts: a lease or hint holds `refs`, so its chunk is never
//!   recycled under it).
//! - Between its last release and its recycling a chunk is in *limbo*
//!   (counted in the tether's `limbo`). One pinned thread that the
//!   scheduler preempted holds every grace period back, and a flood retires
//!   chunks at hundreds of megabytes a second: before this count, limbo
//!   reached 3-14 MiB on a 1 MiB budget. Producers therefore pace
//!   themselves ([`Tether::pace`], before they pin): while more than 256
//!   KiB of chunks are in limbo they flush, yield, then sleep briefly,
//!   for at most about 3 ms, so the preempted thread gets to run. It
//!   bounds real memory in practice, not in theory (a thread that never
//!   runs again holds everything back, and pacing gives up after its
//!   rounds); type-stable chunks reused without a grace period would
//!   bound it in theory, at the cost of a generation check on every
//!   reader's access.

use crate::item::{Item, Name};
use crate::sync::epoch::{self, Atomic, Guard, Shared};
use crate::sync::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;
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
    /// Accounted bytes of every item reserved or retained: the budget's
    /// counter (`Log::try_reserve`), never above the limit.
    pub(crate) used: CachePadded<AtomicUsize>,
    /// The whole size of each chunk that deliveries keep alive after the
    /// log let go of it ([`Chunk::charge`]), for `Stats::memory_pinned`.
    /// Here, not in the log, because the last delivery of such a chunk
    /// gives its charge back, perhaps after the log is gone. Written once
    /// per such chunk, never on the hot paths.
    pub(crate) pinned: CachePadded<AtomicUsize>,
    /// Payload `Drop`s that panicked while chunkq dropped removed items
    /// (see `Log::drop_panics`). A plain std atomic: a statistic that
    /// orders nothing.
    pub(crate) drop_panics: StatCounter,
    /// Chunks kept for reuse (see the module docs).
    pub(crate) pool: Pool<T>,
    /// Chunks whose last reference is gone and that wait for their grace
    /// period before the collector recycles them ([`Chunk::release`] adds
    /// one, [`recycle`] takes it off). A flood retires chunks faster than a
    /// collector held back by one descheduled pinned thread hands them
    /// back; producers pace themselves on this ([`Tether::pace`]). A plain
    /// std atomic, Relaxed throughout: a heuristic that orders nothing
    /// (invisible to loom, like the statistics).
    limbo: CachePadded<std::sync::atomic::AtomicUsize>,
    /// Above how many chunks in `limbo` producers pace themselves.
    #[cfg_attr(loom, allow(dead_code))]
    limbo_cap: usize,
}

impl<T> Tether<T> {
    /// The tether of a new log named `name`, with a budget of `limit` bytes
    /// (which caps the pool).
    pub(crate) fn new(name: Name, limit: usize) -> Self {
        Self {
            name,
            used: CachePadded::new(AtomicUsize::new(0)),
            pinned: CachePadded::new(AtomicUsize::new(0)),
            drop_panics: StatCounter::new(0),
            pool: Pool::new(pool_cap(Chunk::<T>::BYTES, limit)),
            limbo: CachePadded::new(std::sync::atomic::AtomicUsize::new(0)),
            limbo_cap: limbo_cap(Chunk::<T>::BYTES),
        }
    }

    /// Paces a producer (before it pins, see `Engine::push_pinned`) while
    /// more than `limbo_cap` retired chunks wait for their grace period: it
    /// lets the collector try again and gives the processor away (a yield,
    /// then short sleeps) until they are back under the cap, for at most
    /// [`PACE_ROUNDS`] rounds (about 3 ms), then goes on regardless. Why:
    /// one pinned thread that the scheduler preempted stops every
    /// recycling until it runs again (tens of milliseconds on a busy
    /// machine), and a flood retires chunks at a rate that turns that into
    /// megabytes (issue 16); giving the processor away lets it run. A push
    /// that waits here holds nothing anyone waits on. One Relaxed load
    /// otherwise, on the pinned path only (a chunk boundary, a full
    /// budget). Nothing under loom: the stand-in collector recycles at
    /// quiescent points, and the wait has no part in any protocol (it
    /// runs before the push reserves anything), so the models would only
    /// explore more interleavings of the same states.
    #[inline]
    pub(crate) fn pace(&self) {
        #[cfg(not(loom))]
        // Relaxed: see the field.
        if self.limbo.load(std::sync::atomic::Ordering::Relaxed) > self.limbo_cap {
            self.pace_slow();
        }
    }

    /// [`Tether::pace`] when over the cap.
    #[cfg(not(loom))]
    #[cold]
    #[inline(never)]
    fn pace_slow(&self) {
        for round in 0..PACE_ROUNDS {
            // A short pin that flushes: tries to advance the epoch and
            // recycles what is due (no user code runs there: items are
            // dropped by their removers).
            epoch::pin().flush();
            // Relaxed: see the field.
            if self.limbo.load(std::sync::atomic::Ordering::Relaxed) <= self.limbo_cap {
                return;
            }
            if round < PACE_YIELDS {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }
}

/// At most how many rounds [`Tether::pace`] waits: [`PACE_YIELDS`] yields,
/// then sleeps of 50 µs (about 3 ms in all).
#[cfg(not(loom))]
const PACE_ROUNDS: u32 = 64;

/// How many of [`PACE_ROUNDS`] yield rather than sleep.
#[cfg(not(loom))]
const PACE_YIELDS: u32 = 8;

/// About how many bytes of retired chunks may wait for their grace period
/// before producers pace themselves (see [`Tether::pace`]).
const LIMBO_BYTES: usize = 256 << 10;

/// How many chunks of `chunk_bytes` may wait for their grace period before
/// producers pace themselves: [`LIMBO_BYTES`] worth, at least 4.
fn limbo_cap(chunk_bytes: usize) -> usize {
    (LIMBO_BYTES / chunk_bytes.max(1)).max(4)
}

/// At most how many retired chunks a queue keeps for reuse: enough to cover
/// the chunks the epoch collector hands back in one batch in the steady
/// state.
const POOL: usize = if cfg!(loom) { 1 } else { 8 };

/// At most how many bytes of retired chunks a queue keeps for reuse (and
/// never more than a quarter of its budget), so that the pool's memory
/// stays small beside the budget; at least one chunk.
const POOL_BYTES: usize = 256 << 10;

/// How many chunks of `chunk_bytes` the pool of a queue with a budget of
/// `limit` bytes keeps: up to [`POOL`], within [`POOL_BYTES`] and a quarter
/// of the budget, and at least one.
fn pool_cap(chunk_bytes: usize, limit: usize) -> usize {
    (POOL_BYTES.min(limit / 4) / chunk_bytes.max(1)).clamp(1, POOL)
}

/// Retired chunks kept for reuse (see the module docs): a few slots, each
/// null or owning one chunk, taken by a swap, so that no chunk is handed out
/// twice; `closed` once the log is gone.
pub(crate) struct Pool<T> {
    /// The kept chunks (each owned by its slot; null when empty).
    slots: [AtomicPtr<Chunk<T>>; POOL],
    /// How many of `slots` are used (`pool_cap`).
    cap: usize,
    /// Set by `close` (the log is dropped): chunks given later are freed.
    closed: AtomicBool,
}

impl<T> Pool<T> {
    /// An empty, open pool that keeps up to `cap` chunks.
    fn new(cap: usize) -> Self {
        Self {
            slots: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            cap: cap.min(POOL),
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
        for slot in &self.slots[..self.cap] {
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
    /// The caller holds one of the item's counts (a [`Held`], or one taken
    /// with [`Slot::try_own`] and not yet given back).
    #[inline]
    pub(crate) unsafe fn item(&self) -> &Item<T> {
        // SAFETY: initialised while counted (the caller's contract), and
        // only read until the last owner drops it.
        let item = unsafe { (*self.item.get()).assume_init_ref() };
        item.touch();
        item
    }

    /// Takes one more count if the count is not 0 (the item is published
    /// and not yet dropped); returns whether it took one. A count that
    /// reached 0 is never revived: the CAS fails if the item was dropped
    /// meanwhile.
    #[inline]
    pub(crate) fn try_own(&self) -> bool {
        // Acquire (load and success): pairs with the Release publication in
        // `write`, so the item may be read, and with the AcqRel decrements
        // of other owners.
        let mut n = self.owners.load(Ordering::Acquire);
        loop {
            if n == 0 {
                return false;
            }
            if n > MAX_OWNERS {
                std::process::abort();
            }
            match self
                .owners
                .compare_exchange_weak(n, n + 1, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
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
    /// Set (`SeqCst`) by `Log::retire_chunks` once the chunk is unlinked,
    /// before it revokes the hints on it; a hint set on the chunk later
    /// sees it and lets go (`Group::set_hint`, pinned). Leases use their
    /// table's `unlinked_below` instead: their putter may be unpinned and
    /// must not touch the chunk after its put (`lease.rs`).
    unlinked: AtomicBool,
    /// Whether a clearing left an item here to its deliveries (set, `SeqCst`,
    /// before the clearing looks at `unlinked`; see [`Chunk::charge`]).
    held: AtomicBool,
    /// Whether the chunk's memory is charged to the budget ([`Chunk::charge`]):
    /// it outlived its unlinking, kept by deliveries. Set before the list
    /// link's reference is released; read by the last release, which gives
    /// the charge back.
    charged: AtomicBool,
    /// What the chunk's items need of their queue after it may be gone
    /// (shared by the log and all its chunks).
    tether: Arc<Tether<T>>,
    /// The slots.
    slots: Box<[Slot<T>]>,
}

impl<T> Chunk<T> {
    /// Slots per chunk (see the module docs).
    pub(crate) const CAP: u64 = capacity(std::mem::size_of::<Slot<T>>());

    /// The memory of one chunk: its header and its slots.
    pub(crate) const BYTES: usize =
        std::mem::size_of::<Self>() + Self::CAP as usize * std::mem::size_of::<Slot<T>>();

    /// A fresh chunk `index` with one reference (the list link it is about to
    /// be installed into).
    fn new(index: u64, tether: Arc<Tether<T>>) -> Self {
        Self {
            index,
            next: Atomic::null(),
            newest: AtomicU64::new(0),
            refs: AtomicUsize::new(1),
            unlinked: AtomicBool::new(false),
            held: AtomicBool::new(false),
            charged: AtomicBool::new(false),
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
        self.unlinked = AtomicBool::new(false);
        self.held = AtomicBool::new(false);
        self.charged = AtomicBool::new(false);
    }

    /// Whether `Log::retire_chunks` unlinked the chunk.
    #[inline]
    pub(crate) fn is_unlinked(&self) -> bool {
        // SeqCst: the load half of the pair in `Group::set_hint`.
        self.unlinked.load(Ordering::SeqCst)
    }

    /// Marks the chunk unlinked.
    fn mark_unlinked(&self) {
        // SeqCst: the store half of the pair in `Group::set_hint`.
        self.unlinked.store(true, Ordering::SeqCst);
    }

    /// Marks the chunk unlinked (`Log::retire_chunks`, right after its
    /// unlink CAS, before it revokes leases and hints), and charges it if
    /// a clearing already left an item to its deliveries.
    pub(crate) fn retire(&self) {
        self.mark_unlinked();
        // SeqCst: after our SeqCst store of `unlinked`, against `clear`'s
        // store of `held` and load of `unlinked`.
        if self.held.load(Ordering::SeqCst) {
            self.charge();
        }
    }

    /// Counts the chunk's whole memory ([`Chunk::BYTES`]) as pinned
    /// (`Stats::memory_pinned`), once: the chunk is unlinked, but
    /// deliveries of its items keep it alive (a held [`crate::Delivery`]
    /// keeps the chunk it points into).
    /// The two facts are set by different threads (`retire` after the
    /// unlink, `clear` when it leaves an item to its deliveries), each with
    /// a `SeqCst` store and then a `SeqCst` load of the other's, so at
    /// least one of them sees both and charges; the swap of `charged`
    /// charges once. The charger holds a reference meanwhile (the list
    /// link's, or the clearing remover's), so the charge comes before the
    /// last release, which gives it back ([`Chunk::release`]). So the
    /// memory that held deliveries keep beyond the budget's items is
    /// accounted: it shows in `Stats::memory_pinned`.
    fn charge(&self) {
        // Relaxed: the last release reads it after the AcqRel decrement of
        // the reference the charger holds.
        if !self.charged.swap(true, Ordering::Relaxed) {
            // Relaxed: a statistic.
            self.tether.pinned.fetch_add(Self::BYTES, Ordering::Relaxed);
        }
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

    /// `f` of item `seq` (which lies in this chunk), under a count taken
    /// for the look and given back after it (`Held::release_contained`);
    /// `None` if the slot is not published or its item already dropped.
    /// What a remover or a statistic uses to read an item's time: no item
    /// is read without one of its counts (see the module docs).
    ///
    /// # Safety
    /// The caller keeps the chunk's memory alive (a counted reference, or a
    /// guard pinned before it loaded the chunk).
    pub(crate) unsafe fn peek<R>(&self, seq: u64, f: impl FnOnce(&Item<T>) -> R) -> Option<R> {
        // SAFETY: the caller's contract; the slot lies in this chunk.
        let held = unsafe { Held::try_acquire(self, self.slot(seq)) }?;
        let r = f(held.item());
        held.release_contained();
        Some(r)
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
            // Relaxed: ordered by the AcqRel decrements (see `charge`).
            if chunk.charged.load(Ordering::Relaxed) {
                // Relaxed: a statistic.
                chunk
                    .tether
                    .pinned
                    .fetch_sub(Self::BYTES, Ordering::Relaxed);
            }
            // The count is zero: no list link, hint, lease, pending
            // clearing or delivery refers here any more, and `try_acquire`
            // cannot revive it, so nothing new can reach it; threads that
            // loaded it earlier are pinned, and the collector runs this only
            // after they unpin. (A function pointer and an address: the
            // closure names no `T`, so it is `Send + 'static`, and it fits
            // in crossbeam's inline deferred storage.)
            // Relaxed: see `Tether::limbo`.
            chunk
                .tether
                .limbo
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let raw = ErasedChunk(this.as_raw().cast_mut().cast());
            let recycle: unsafe fn(*mut ()) = recycle::<T>;
            // SAFETY: `raw` is this chunk, handed over by the last reference.
            guard.defer(move || unsafe { recycle(raw.into_raw()) });
            // Hand it to the global collector now, not when this thread's
            // bag of 64 deferred functions fills: otherwise up to 64 retired
            // chunks per thread wait there, unrecycled (megabytes under a
            // flood). `flush` also collects, which only recycles chunks:
            // no user code runs in the collector (items are dropped by
            // their remover, see `Log::advance`).
            guard.flush();
        }
    }

    /// Gives up the log's count of the items in `[from, to)` (a removed
    /// range, by its remover right after its `head` claim, or the retained
    /// items of a log being dropped), dropping those no delivery holds. Each item
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
        let mut surplus: u64 = 0;
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
        if surplus < to - from {
            // Some item outlives its clearing, kept by its deliveries: if
            // the chunk is (or gets) unlinked, its memory is charged.
            // SeqCst: the pair with `retire` (see `charge`).
            self.held.store(true, Ordering::SeqCst);
            if self.is_unlinked() {
                self.charge();
            }
        }
        if surplus > 0 {
            // Relaxed: we still own our own reference, so this cannot reach
            // zero; the last release of that one orders everything.
            self.refs.fetch_sub(surplus as usize, Ordering::Relaxed);
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
    /// Adopts a count of `slot` in `chunk` that the caller took with
    /// [`Slot::try_own`] (a claimed read takes its counts before its claim,
    /// then adopts them once the claim succeeded).
    ///
    /// # Safety
    /// The caller owns one count of `slot` (from `try_own`) and hands it
    /// over; `slot` lies in `chunk`.
    #[inline]
    pub(crate) unsafe fn adopt(chunk: &Chunk<T>, slot: &Slot<T>) -> Self {
        Self {
            chunk: NonNull::from(chunk),
            slot: NonNull::from(slot),
        }
    }

    /// Takes one more count of `slot` in `chunk` if its count is not 0
    /// (the slot is published and its item not yet dropped); `None`
    /// otherwise. Every reader takes its count this way (see the module
    /// docs): a count that reached 0 is never revived.
    ///
    /// # Safety
    /// The caller keeps `chunk`'s memory alive (a counted reference, or a
    /// guard pinned before it loaded the chunk), and `slot` lies in
    /// `chunk`.
    #[inline]
    pub(crate) unsafe fn try_acquire(chunk: &Chunk<T>, slot: &Slot<T>) -> Option<Self> {
        if !slot.try_own() {
            return None;
        }
        // SAFETY: `try_own` took the count we hand over.
        Some(unsafe { Self::adopt(chunk, slot) })
    }

    /// Gives the count back, dropping the item if it was the last; a
    /// panicking payload `Drop` is caught and counted (`Log::drop_panics`)
    /// instead of unwinding. For the counts chunkq itself takes and gives
    /// back (a lost claim, a look at an item, a borrowed read), where the
    /// drop is chunkq's, not the user's (invariant 7).
    pub(crate) fn release_contained(self) {
        let mut this = std::mem::ManuallyDrop::new(self);
        // SAFETY: we hold a count, so the slot is alive.
        let slot = unsafe { this.slot.as_ref() };
        if slot.release_owner() {
            // SAFETY: the chunk is alive: the clearing that gave up the
            // log's count left a chunk reference for the last owner, which
            // `drop_last` releases only after the drop.
            let tether = unsafe { this.chunk.as_ref() }.tether.clone();
            if drop_contained(|| this.drop_last()) {
                // Relaxed: a statistic.
                tether
                    .drop_panics
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        // alive (the item stays alive while any count is held, whether the
        // log's is released or not).
        let slot = unsafe { self.slot.as_ref() };
        // Relaxed: the count is at least our own 1, so this never starts
        // from 0 (as in `Arc::clone`); the reads it allows were ordered when
        // we took ours.
        if slot.owners.fetch_add(1, Ordering::Relaxed) > MAX_OWNERS {
            std::process::abort();
        }
        Self {
            chunk: self.chunk,
            slot: self.slot,
        }
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

/// Gives back a chunk from [`alloc`] that was never shared (its install
/// lost to another thread's): to the pool, or freed.
pub(crate) fn unused<T>(chunk: epoch::Owned<Chunk<T>>, tether: &Arc<Tether<T>>) {
    tether.pool.give(chunk.into_box());
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
    // Relaxed: see `Tether::limbo`.
    tether
        .limbo
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
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
        // A chunk released after its queue is gone (by a lease or a
        // delivery that outlived it): nothing else will reach a quiescent
        // point in this execution, so run the deferred recycling here, as
        // crossbeam's collector would at some later pin. Read before the
        // release (which may free the chunk).
        // SAFETY: the caller owns a reference, so the chunk is alive.
        let orphaned = unsafe { &*chunk }.tether.pool.closed.load(Ordering::SeqCst);
        // SAFETY: the caller's contract.
        unsafe { Chunk::release(Shared::from(chunk), &epoch::pin()) };
        if orphaned {
            epoch::quiesce();
        }
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
