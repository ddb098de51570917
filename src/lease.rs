//! A handle's *lease*: one counted reference to the chunk it last read
//! from (a `Consumer`) or pushed into (a `Queue`), so that the next
//! `try_recv` or `push` in the same chunk runs without pinning an epoch
//! guard.
//!
//! # Why
//! A pinned read costs a thread-local lookup, a `SeqCst` store and fence,
//! and an unpin (about 33 instructions, and the fence's cycles) on every
//! item. The guard does two jobs in a read: it keeps the chunk's memory
//! alive, and it keeps the log's count of the claimed slot from being
//! released before the reader takes its own. A lease does the first job
//! with a counted reference that lives as long as the handle reads in that
//! chunk; an owner count taken *only if it is not zero*
//! (`Held::try_acquire`) does the second. So a read within the leased
//! chunk pins nothing; crossing into the next chunk (once per
//! [`Chunk::CAP`] items), an empty queue's slow cases and the trim at a
//! chunk's end pin as before.
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
//! # Invariants
//! - `chunk` is null or holds one counted reference (`Chunk::refs`) owned by
//!   the lease. A chunk with a lease on it is never handed to the collector,
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
use crate::sync::{AtomicPtr, Ordering};
use std::ptr::NonNull;

/// A handle's counted reference to a chunk (see the module docs).
pub(crate) struct Lease<T> {
    /// The leased chunk, or null (none yet, or taken by a reader).
    chunk: AtomicPtr<Chunk<T>>,
}

impl<T> Lease<T> {
    /// An empty lease.
    pub(crate) fn new() -> Self {
        Self {
            chunk: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Takes the leased reference for this thread's read, if there is one
    /// and no other thread is using it. The caller owns the reference until
    /// it [`put`](Lease::put)s it back or releases it.
    #[inline]
    pub(crate) fn take(&self) -> Option<NonNull<Chunk<T>>> {
        // Acquire: pairs with the Release in `put`, so the reference (and
        // the chunk fields the putter read) are handed over with it.
        NonNull::new(self.chunk.swap(std::ptr::null_mut(), Ordering::Acquire))
    }

    /// Puts a taken (or newly acquired) reference back; if another thread
    /// of this handle installed one meanwhile, releases ours instead.
    #[inline]
    pub(crate) fn put(&self, chunk: NonNull<Chunk<T>>) {
        // Release: pairs with the Acquire swap in `take`.
        if self
            .chunk
            .compare_exchange(
                std::ptr::null_mut(),
                chunk.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
        {
            // SAFETY: we own this reference and give it up.
            unsafe { release_pinned(chunk.as_ptr().cast_const()) };
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
            // SAFETY: the lease owned this reference.
            unsafe { release_pinned(chunk.as_ptr().cast_const()) };
        }
    }
}
