//! One chunk of the log: `CHUNK_CAP` slots for a fixed range of sequence
//! numbers, a link to the next chunk, and what retention needs to know about
//! it without opening its items.
//!
//! # Invariants
//! - Chunk `k` holds sequence numbers `[k * CHUNK_CAP, (k + 1) * CHUNK_CAP)`;
//!   slot `i` holds sequence number `k * CHUNK_CAP + i`.
//! - A slot's item pointer goes null → item exactly once (the producer's
//!   `Release` publication) and item → null at most once (cleared one grace
//!   period after `head` passed it, see `Log::detach`). Null therefore means
//!   "reserved but not yet published" while the sequence number is at or
//!   above `head`, and "cleared" below it; readers tell the two apart by
//!   re-reading `head`.
//! - `refs` counts the owners of the chunk's memory: one for the list link
//!   (dropped when the chunk is unlinked), one per consumer group whose
//!   chunk hint points here, and one per removed range whose slots are
//!   waiting to be cleared. The chunk is handed to the epoch collector when
//!   `refs` reaches zero, and a new reference is only ever taken from a
//!   non-zero count ([`Chunk::try_acquire`]), so a dying chunk is never
//!   revived.

use crate::envelope::Item;
use crate::sync::epoch::{self, Atomic, Guard, Shared};
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, CHUNK_CAP, Ordering};
use std::ptr;

/// One slot: the published item and its accounted size.
pub(crate) struct Slot<T> {
    /// The item, as `Arc::into_raw`; null until published (see module docs).
    /// The slot owns one strong count of the `Arc` while non-null.
    pub(crate) item: AtomicPtr<Item<T>>,
    /// Bytes reserved against the memory budget for this item. Written
    /// (`Relaxed`) before the `Release` publication of `item`, read after an
    /// `Acquire` load of `item`, so it needs no ordering of its own.
    pub(crate) bytes: AtomicUsize,
}

/// A chunk of `CHUNK_CAP` slots. See the module docs for its invariants.
pub(crate) struct Chunk<T> {
    /// The chunk number `k`: it holds `[k * CHUNK_CAP, (k + 1) * CHUNK_CAP)`.
    pub(crate) index: u64,
    /// The next chunk (`index + 1`), installed once by CAS; null until then.
    pub(crate) next: Atomic<Chunk<T>>,
    /// Newest enqueue time (ns since the Unix epoch) of any item published
    /// here; lets a sweep expire a whole chunk without reading its items.
    /// Raised by `fetch_max` before the slot's `Release` publication.
    pub(crate) newest: AtomicU64,
    /// Owners of this chunk's memory (see module docs).
    pub(crate) refs: AtomicUsize,
    /// The slots.
    pub(crate) slots: Box<[Slot<T>]>,
}

impl<T> Chunk<T> {
    /// A fresh chunk `index` with one reference (the list link it is about to
    /// be installed into).
    pub(crate) fn new(index: u64) -> Self {
        Self {
            index,
            next: Atomic::null(),
            newest: AtomicU64::new(0),
            refs: AtomicUsize::new(1),
            slots: (0..CHUNK_CAP)
                .map(|_| Slot {
                    item: AtomicPtr::new(ptr::null_mut()),
                    bytes: AtomicUsize::new(0),
                })
                .collect(),
        }
    }

    /// First sequence number held here.
    pub(crate) fn start(&self) -> u64 {
        self.index * CHUNK_CAP as u64
    }

    /// One past the last sequence number held here.
    pub(crate) fn end(&self) -> u64 {
        self.start() + CHUNK_CAP as u64
    }

    /// The slot for sequence number `seq` (which must lie in this chunk).
    pub(crate) fn slot(&self, seq: u64) -> &Slot<T> {
        debug_assert!(seq >= self.start() && seq < self.end());
        &self.slots[(seq - self.start()) as usize]
    }

    /// The first sequence number in `[from, to)` (within this chunk) whose
    /// slot is not published, or `to` if all are.
    pub(crate) fn published_until(&self, from: u64, to: u64) -> u64 {
        // Acquire: pairs with the Release publication of each slot, so the
        // caller may read what the producer wrote before it (the size).
        (from..to)
            .find(|&s| self.slot(s).item.load(Ordering::Acquire).is_null())
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
    /// up here; `this` was loaded under `guard`.
    pub(crate) unsafe fn release(this: Shared<'_, Chunk<T>>, guard: &Guard) {
        // SAFETY: the caller holds a counted reference, so the chunk is alive.
        let chunk = unsafe { this.deref() };
        // AcqRel: the Release half publishes this owner's last use of the
        // chunk to whoever drops the count to zero; the Acquire half makes the
        // destroyer see every other owner's uses.
        if chunk.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: the count is zero: no list link and no hint points here
            // any more, and `try_acquire` cannot revive it, so nothing new can
            // reach it; threads that loaded it earlier are pinned, and the
            // collector waits for them.
            unsafe { guard.defer_destroy(this) };
        }
    }
}

impl<T> Drop for Chunk<T> {
    fn drop(&mut self) {
        // Items never detached (the queue is being dropped with items inside)
        // are released here; detached slots are null.
        for slot in self.slots.iter_mut() {
            let p = slot.item.load(Ordering::Relaxed);
            if !p.is_null() {
                // SAFETY: a non-null slot owns one strong count of an
                // `Arc<Item<T>>` made by `Arc::into_raw`; dropping the chunk
                // (we are its unique owner) releases it exactly once. A
                // panicking payload `Drop` must not leak the other slots'
                // items (invariant 7).
                drop_contained(unsafe { crate::envelope::ItemArc::from_raw(p) });
            }
        }
    }
}

/// Drops `value`, containing a panic from its `Drop` (a payload's `Drop` is
/// user code): returns whether it panicked. chunkq drops removed items on
/// whatever thread runs the epoch collector, often one that is in the middle
/// of an unrelated operation, so a panic must neither escape there nor stop
/// the loop that drops the other items (invariant 7). The panic hook has
/// already reported the panic when this returns.
pub(crate) fn drop_contained<V>(value: V) -> bool {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(value)));
    caught.is_err()
}

/// Allocates chunk `index` as an epoch `Owned`.
pub(crate) fn alloc<T>(index: u64) -> epoch::Owned<Chunk<T>> {
    epoch::Owned::new(Chunk::new(index))
}
