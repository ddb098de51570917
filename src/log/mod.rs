//! The chunked log: an append-only linked list of chunks, with an atomic
//! `tail` where producers reserve sequence numbers, an atomic `head` that
//! retention advances, a memory counter, and the registry of consumer groups.
//!
//! # State
//! - `tail`: the next sequence number to hand out; bit 63 is `CLOSED`.
//! - `head`: the oldest retained sequence number in bits 0..62, and in bits
//!   62..64 the [`Cause`] of the move that set it. `head <= tail` always.
//! - `head_chunk`: the oldest chunk still linked (`index * CAP <= head`);
//!   `tail_chunk`: a producer's hint, never behind `head_chunk` (moved off
//!   a chunk before the chunk is unlinked; see the field's docs and
//!   [`Log::chunk_for_push`]).
//! - `used`: accounted bytes of every item reserved or retained.
//!
//! # Push (no lock)
//! 1. Reserve the item's bytes: CAS `used → used + bytes` while it stays
//!    `<= limit` (*before* the sequence number, so a refused push leaves no
//!    hole in the sequence).
//! 2. `tail.fetch_add(1)` reserves sequence number `s` (if `CLOSED` was set,
//!    give the bytes back and fail).
//! 3. Find chunk `s / CAP`, installing it by CAS on the predecessor's `next`
//!    if needed; the producer of a chunk's first slot installs the following
//!    chunk ahead of need.
//! 4. Store the slot's size (Relaxed), raise the chunk's `newest` time, and
//!    publish the item pointer with a `Release` store.
//!
//! # Removal: moving `head` (no lock)
//! Expiry, eviction and trimming (releasing what every group has read) all
//! go through [`Log::advance`], which moves `head` from `h` to `h1` (within
//! one chunk) in three steps:
//! 1. *Help*, only when the cause changes: if `head`'s word carries a cause
//!    other than this removal's, bring every registered cursor below `h` up
//!    to `h`, counting with `head`'s cause ([`Log::help`]). A run of
//!    removals with one cause (a flood of evictions, a sweep) skips it, so
//!    its cost does not grow with the number of consumers. Trimming never
//!    helps: it only claims when every registered cursor is past `h`.
//! 2. *Claim*: CAS `head` from the word read in step 1 to `h1 | cause`. Only
//!    one thread claims a range. Every slot in `[h, h1)` is published (the
//!    deciding closure checks it), so `head` never passes a slot whose
//!    producer is mid-push (invariant 6).
//! 3. *Finish*: give the bytes of `[h, h1)` back, wake blocked notice
//!    receivers and (trims and expiries) producers waiting for room (one
//!    load each when none waits), then clear the slots at once: give up the
//!    log's count of each item, dropping those no delivery holds (contained,
//!    invariant 7: a remover holds nothing others wait on after its claim;
//!    an evicting push has not reserved yet). Then unlink chunks that lie
//!    wholly below `head`, revoking the leases and hints on them.
//!
//! *Eviction* (`Overflow::DropOldest`) removes the oldest items until the
//! push fits, then the whole items that fit in a 64th of the budget more
//! (`evict_slack`), within `head`'s chunk: the pushes after it fit at once,
//! on the leased path, instead of each evicting one item under a pin. A
//! push whose oldest slot is still mid-push waits for it with its guard
//! dropped (`repin_after`), never inside `advance`.
//!
//! A cursor left below `head` is moved, and its misses counted, lazily: by
//! its group's next read (`try_recv` finds `c < head`), by `missed()` and
//! the notice receiver ([`Log::catch_up`]), or by the next removal with
//! another cause. Whoever looks sees exact totals.
//!
//! # Why each miss is counted with the right cause
//! A cursor move `c → h` (by anyone) counts `h - c` items with `cause(h)`.
//! It is right because of this invariant, **L**: at every instant, for
//! every registered group whose cursor `c` is below `h = seq(head)`, every
//! item of `[c, h)` was removed with `cause(head)`. A mover loads `c`, then
//! `head`, then CASes the cursor from `c`; the CAS succeeding proves the
//! cursor held `c` when `head` was loaded (cursors only grow), so L at that
//! instant says the count is right.
//!
//! L holds at first (nothing removed). A cursor move keeps it (`c` grows).
//! A claim `hw → h1 | Y` keeps it:
//! - *Same cause* (`Y = cause(hw)`): a group with `c < h` had `[c, h)`
//!   removed with `Y` (L), and the claim removes `[h, h1)` with `Y`.
//! - *Other cause*: the claimer `P` loaded `hw`, then the registry, then
//!   helped every group in it up to `h`; cursors only grow, so at the claim
//!   every group of `P`'s snapshot has `c >= h`. A group not in the
//!   snapshot was published after `P`'s registry load, still `JOINING`, and
//!   took its first position from a `head` load made after that
//!   publication ([`Log::join`]: every start, `Start::Seq` and `Since`
//!   included, is raised to that `head`), hence after `P` loaded `hw`;
//!   `head` still held `hw` at `P`'s claim (the CAS succeeded), so that
//!   position is `>= h`. Either way no cursor is below `h`, and `[h, h1)` is `P`'s.
//! - *Trimming* (`Consumed`) claims only when every group of its snapshot
//!   has `c >= h1`; a group registering concurrently may start at `h`, and
//!   `[h, h1)` is then `Consumed` for it, which counts nothing (it starts
//!   after what was released).
//!
//! (Loads and stores of `head`, cursors and the registry are all SeqCst, so
//! "after" is the single total order.)
//!
//! # Reclamation
//! Items live inline in their chunk's slots and count their owners there
//! (`chunk.rs`): the log's count until the remover clears the slot (right
//! after its claim), plus one per delivery. Every reader takes its count
//! only if the count is not 0, and before its claim, so a remover may drop
//! an item at once, pinned readers or not: payloads never wait for the
//! epoch. Unlinked chunks are recycled through crossbeam-epoch once their
//! own count (list link, group hints, handle leases, a remover clearing,
//! cleared items still held) reaches zero, so a reader that loaded a
//! pointer under a guard can still use it. A pointer is only ever followed
//! when it was loaded under the current guard from a location that still
//! held it (`head_chunk`, `tail_chunk`, a group's hint, or `next` of a chunk
//! reached that way), or when the follower owns a counted reference to it
//! (a handle's lease, `lease.rs`). The `// SAFETY:` comments say why each
//! such chunk is still alive.
//!
//! The accounted bytes are released when `head` passes an item, and the
//! item is dropped then, unless a delivery still holds it; a chunk that
//! deliveries keep after it was unlinked is counted as pinned
//! (`Stats::memory_pinned`) until the last of them is dropped.
//!
//! Real memory, besides the budget, is then the chunks that wait for their
//! grace period, and one pinned thread that the scheduler preempts holds
//! all of them back. So pins are short and rare where a flood runs: reads
//! within a handle's leased chunk pin nothing (`try_recv`, `try_recv_one`),
//! evictions come in slack-sized batches, every wait for a push in flight
//! drops the guard first, and producers pace themselves (a bounded yield,
//! before they pin) while more than 256 KiB of chunks wait
//! (`Tether::pace`).

use crate::chunk::{self, Chunk, Held, Tether};
use crate::clock::Clock;
use crate::group::{Cause, Group, JOINING, Registry, Start};
use crate::item::{Item, Name};
use crate::lease::{Lease, Leases};
use crate::sync::epoch::{self, Atomic, Guard, Shared};
use crate::sync::{Arc, AtomicU64, Ordering, Spin};
use crate::wait::Signal;
use crossbeam_utils::CachePadded;
use std::ptr::NonNull;

mod retention;

/// `tail` flag: the queue is closed.
const CLOSED: u64 = 1 << 63;
/// The sequence-number bits of `head`.
const SEQ_MASK: u64 = (1 << 62) - 1;
/// Where `head`'s cause sits.
const CAUSE_SHIFT: u32 = 62;
/// `final_tail` before `close` has stored it.
const UNSET: u64 = u64::MAX;
/// Most items one `try_recv` claims with one CAS.
pub(crate) const MAX_CLAIM: usize = 64;

/// `head`'s word for `seq` reached by a move with `cause`.
fn head_word(seq: u64, cause: Cause) -> u64 {
    seq | ((cause as u64) << CAUSE_SHIFT)
}

/// The sequence number in a `head` word.
pub(crate) fn seq_of(word: u64) -> u64 {
    word & SEQ_MASK
}

/// The cause in a `head` word.
fn cause_of(word: u64) -> Cause {
    match word >> CAUSE_SHIFT {
        1 => Cause::Expired,
        2 => Cause::Evicted,
        _ => Cause::Consumed,
    }
}

/// Why `try_recv` returned no item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Nothing {
    /// Nothing to read yet.
    Empty,
    /// Closed and nothing left to read.
    Closed,
}

/// An eviction frees this fraction of the budget beyond what the evicting
/// push needs (see `Log::evict_slack`).
pub(crate) const EVICT_SLACK_DIVISOR: usize = 64;

/// The log. See the module docs.
pub(crate) struct Log<T> {
    /// The queue's name, stamped on events (shared with them, see `Name`).
    pub(crate) name: Name,
    /// The time source for events, TTLs and notices.
    pub(crate) clock: Clock,
    /// The memory budget in accounted bytes.
    pub(crate) limit: usize,
    /// Bytes an eviction frees beyond what the push that evicts needs
    /// (`limit / EVICT_SLACK_DIVISOR`, within one chunk: `evict_step`), so
    /// that the pushes after it fit at once, on the leased path, instead of
    /// each evicting one item under a pin (issue 16: about 2.5 times the
    /// flood throughput). The queue then holds at least `limit - slack -
    /// need` bytes after an eviction.
    pub(crate) evict_slack: usize,
    /// Next sequence number to hand out; `CLOSED` in bit 63.
    tail: CachePadded<AtomicU64>,
    /// `tail` at the moment the queue closed (`UNSET` before): readers stop
    /// there, ignoring the reservations failed pushes made after it.
    final_tail: AtomicU64,
    /// Oldest retained sequence number, and the cause of its last move.
    head: CachePadded<AtomicU64>,
    /// Oldest linked chunk; never null.
    head_chunk: CachePadded<Atomic<Chunk<T>>>,
    /// Producers' hint: a recent chunk; never null, and never behind
    /// `head_chunk`, so it only ever points at a linked chunk. Every store
    /// to it is a CAS that raises its chunk index (a producer moves it to the
    /// chunk of its own unpublished slot; `retire_chunks` from `first` to
    /// `first.next`), so its index only grows. `retire_chunks` moves it off
    /// `first` before unlinking `first`: when that unlink succeeds, the hint
    /// is past `first` (our CAS moved it, or its failure saw it elsewhere,
    /// i.e. later), so `head_chunk` never overtakes it.
    tail_chunk: CachePadded<Atomic<Chunk<T>>>,
    /// The name and the count of payload `Drop`s that panicked while chunkq
    /// dropped removed items (caught, see `chunk::drop_contained`), shared
    /// with every chunk: their items may outlive the log.
    tether: std::sync::Arc<Tether<T>>,
    /// Items removed so far, by cause (`Cause as usize`: released after
    /// every group read them, expired, evicted), for `Queue::stats`. Plain
    /// std atomics: statistics that order nothing, added once per removal
    /// step (a range), never per item.
    removed: [std::sync::atomic::AtomicU64; 3],
    /// The consumer groups.
    pub(crate) registry: Registry<T>,
    /// Every handle's lease, revoked when its chunk is unlinked
    /// (`lease.rs`).
    pub(crate) leases: Leases<T>,
    /// Wakes consumers blocked in `recv`.
    pub(crate) readable: Signal,
    /// Wakes `Notifications::recv_timeout` waiters: on every expiry and
    /// eviction (their cursors may now lie below `head`), every count of
    /// misses, `close`, and the drop of a group's last handle.
    pub(crate) noticed: Signal,
    /// Wakes producers waiting for room (`Queue::push_timeout`,
    /// `Queue::push_async`: `Overflow::Reject` only, so evictions never
    /// notify it). Notified where room may appear: a trim or an expiry gave
    /// bytes back (`advance`), a read moved a cursor that sat at `head` (so
    /// a trim may now release what every group has read: `claim`), a group
    /// joined (`register`) or left (`Consumer`'s drop), and `close`. Never
    /// by a push that fits the budget (only a push that trims, like any
    /// trim, notifies it).
    pub(crate) room: Signal,
}

impl<T: Send + Sync + 'static> Log<T> {
    /// Slots per chunk (see `chunk.rs`).
    const CAP: u64 = Chunk::<T>::CAP;

    /// Slots per chunk, for `Queue::chunk_capacity`.
    pub(crate) fn chunk_capacity(&self) -> u64 {
        Self::CAP
    }

    /// Waits, boundedly, while many retired chunks await their grace
    /// period (see `Tether::pace`). Producers call it before they pin.
    #[inline]
    pub(crate) fn pace_reclamation(&self) {
        self.tether.pace();
    }

    /// An empty log with chunk 0 installed.
    pub(crate) fn new(name: Name, clock: Clock, limit: usize) -> Self {
        let tether = std::sync::Arc::new(Tether::new(name.clone(), limit));
        let first = chunk::alloc::<T>(0, &tether).into_shared(
            // SAFETY: the chunk is not shared yet; no guard is needed.
            unsafe { epoch::unprotected() },
        );
        // The list link owns the first reference; the tail hint is a plain
        // hint (not counted), kept valid by `retire_chunks`.
        Self {
            name,
            clock,
            limit,
            evict_slack: limit / EVICT_SLACK_DIVISOR,
            tail: CachePadded::new(AtomicU64::new(0)),
            final_tail: AtomicU64::new(UNSET),
            head: CachePadded::new(AtomicU64::new(0)),
            head_chunk: CachePadded::new(Atomic::from(first)),
            tail_chunk: CachePadded::new(Atomic::from(first)),
            tether,
            removed: Default::default(),
            registry: Registry::new(),
            leases: Leases::new(),
            readable: Signal::new(),
            noticed: Signal::new(),
            room: Signal::new(),
        }
    }

    // ----- positions -------------------------------------------------------

    /// The oldest retained sequence number.
    pub(crate) fn head_seq(&self) -> u64 {
        seq_of(self.head.load(Ordering::SeqCst))
    }

    /// One past the newest reserved sequence number that readers may wait
    /// for, and whether the queue is closed.
    pub(crate) fn tail_seq(&self) -> (u64, bool) {
        // SeqCst: pairs with the producers' SeqCst `fetch_add` and `close`'s
        // `fetch_or`; `Signal`'s no-lost-wake-up argument needs it.
        let t = self.tail.load(Ordering::SeqCst);
        if t & CLOSED == 0 {
            return (t, false);
        }
        let mut spin = Spin::new();
        loop {
            // Acquire: pairs with the Release store in `close`.
            let f = self.final_tail.load(Ordering::Acquire);
            if f != UNSET {
                return (f, true);
            }
            spin.wait();
        }
    }

    /// `tail` as it stands, without waiting for `close` to publish the
    /// final value (for `Debug`, which never waits): during `close`'s two
    /// stores it may count a reservation that failed.
    pub(crate) fn tail_now(&self) -> u64 {
        self.tail.load(Ordering::SeqCst) & !CLOSED
    }

    /// Retained items that `group` has not read yet (0 for a cursor ahead
    /// of `tail`); saturates where `usize` is narrower than the sequence
    /// numbers.
    pub(crate) fn lag(&self, group: &Group<T>) -> usize {
        // SeqCst (in each load): the cursor, then `head`, then `tail`.
        let c = group.cursor();
        let h = self.head_seq();
        let (t, _) = self.tail_seq();
        usize::try_from(t.saturating_sub(c.max(h))).unwrap_or(usize::MAX)
    }

    /// Retained items (published or about to be).
    pub(crate) fn len(&self) -> u64 {
        let h = self.head_seq();
        self.tail_seq().0.saturating_sub(h)
    }

    /// Accounted bytes in use.
    pub(crate) fn used(&self) -> usize {
        self.tether.used.load(Ordering::Relaxed)
    }

    /// Bytes of the chunks that deliveries keep after the log let go of
    /// them (`Chunk::charge`).
    pub(crate) fn pinned(&self) -> usize {
        // Relaxed: a statistic.
        self.tether.pinned.load(Ordering::Relaxed)
    }

    /// Items removed so far with `cause`.
    pub(crate) fn removed(&self, cause: Cause) -> u64 {
        self.removed[cause as usize].load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts `n` items removed with `cause` (see `removed`).
    fn count_removed(&self, cause: Cause, n: u64) {
        // Relaxed: a statistic.
        self.removed[cause as usize].fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Enqueue time (ns) of the oldest retained item, `None` if nothing is
    /// retained; a push still in flight there counts as enqueued `now`.
    pub(crate) fn oldest_enqueued(&self, now: u64) -> Option<u64> {
        let guard = epoch::pin();
        let h = self.head_seq();
        if h >= self.tail_seq().0 {
            return None;
        }
        // SAFETY: loaded under `guard` (see `chunk_from_head`).
        match unsafe { self.chunk_from_head(h / Self::CAP, &guard).as_ref() } {
            Some(c) if c.index == h / Self::CAP => {
                // In flight, or removed meanwhile (then a younger item is
                // the oldest): either way, about now.
                // SAFETY: `c` was loaded under `guard`.
                Some(unsafe { c.peek(h, |item| item.enqueued_nanos()) }.unwrap_or(now))
            }
            // `head` moved past the chunks we walked: about now.
            _ => Some(now),
        }
    }

    /// The first linked chunk whose index is at least `index`, walking from
    /// `head_chunk`; null if the list ends before it (not installed yet).
    /// The chunk, and every chunk reached from it by `next`, is alive while
    /// `guard` is held: unlinking goes in index order and frees after a
    /// grace period.
    fn chunk_from_head<'g>(&self, index: u64, guard: &'g Guard) -> Shared<'g, Chunk<T>> {
        // Acquire: pairs with the AcqRel CAS in `retire_chunks`.
        let mut cur = self.head_chunk.load(Ordering::Acquire, guard);
        // SAFETY: `head_chunk` or reached from it by `next` under `guard`
        // (see above).
        while let Some(c) = unsafe { cur.as_ref() } {
            if c.index >= index {
                break;
            }
            // Acquire: pairs with the install CAS in `next_chunk`.
            cur = c.next.load(Ordering::Acquire, guard);
        }
        cur
    }

    /// How many payload `Drop`s panicked when chunkq dropped removed items.
    pub(crate) fn drop_panics(&self) -> u64 {
        self.tether
            .drop_panics
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `close` has run.
    pub(crate) fn is_closed(&self) -> bool {
        self.tail.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Closes the log: later pushes fail, readers drain what is there.
    pub(crate) fn close(&self) {
        // SeqCst: pairs with the producers' `fetch_add` (whoever comes first
        // in the total order wins) and with readers' `tail` loads.
        let prev = self.tail.fetch_or(CLOSED, Ordering::SeqCst);
        if prev & CLOSED == 0 {
            // Release: pairs with the Acquire load in `tail_seq`.
            self.final_tail.store(prev, Ordering::Release);
        }
        self.readable.notify();
        // Notice receivers stop waiting on a closed queue, and so do
        // producers waiting for room.
        self.noticed.notify();
        self.room.notify();
    }

    // ----- memory ------------------------------------------------------------

    /// Reserves `bytes` against the budget; false if they do not fit.
    pub(crate) fn try_reserve(&self, bytes: usize) -> bool {
        // Relaxed: the counter orders nothing else; the CAS alone keeps the
        // sum at or under the limit, whatever the interleaving.
        let mut cur = self.tether.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = cur.checked_add(bytes).filter(|&n| n <= self.limit) else {
                return false;
            };
            match self.tether.used.compare_exchange_weak(
                cur,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => {
                    crate::sync::count!(BudgetCasFail);
                    cur = actual
                }
            }
        }
    }

    /// Gives `bytes` back to the budget.
    pub(crate) fn unreserve(&self, bytes: usize) {
        // Relaxed: see `try_reserve`.
        self.tether.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    // ----- push --------------------------------------------------------------

    /// Reserves `n` consecutive sequence numbers and returns the first, or
    /// `None` if the queue is closed.
    ///
    /// `_pinned` is the guard the caller will publish under, pinned *before*
    /// this call (and before the caller reserved its bytes): pinning may run
    /// the epoch collector, which drops removed payloads (user code), and
    /// that must not happen while this thread holds a reservation that
    /// readers and evicting producers wait on (invariant 7). Nested pins do
    /// not collect, so nothing runs user code between here and the
    /// publication.
    pub(crate) fn reserve_seqs(&self, n: u64, _pinned: &Guard) -> Option<u64> {
        // SeqCst: ordered against `close`'s `fetch_or`, against the `head`
        // CAS of removers (who never pass an unpublished reservation), and
        // against `Signal`'s `waiters` (see `wait.rs`).
        let t = self.tail.fetch_add(n, Ordering::SeqCst);
        (t & CLOSED == 0).then_some(t)
    }

    /// Publishes `item` at the sequence number `seq` that `reserve_seqs` gave
    /// out, with its accounted `bytes` and enqueue time `at`; then wakes
    /// blocked readers. Returns the chunk it went into. (The one-item case
    /// of [`Log::publish_all`], kept apart: it is the pinned path of
    /// `push`.)
    #[inline]
    pub(crate) fn publish<'g>(
        &self,
        seq: u64,
        item: Item<T>,
        bytes: usize,
        at: u64,
        guard: &'g Guard,
    ) -> &'g Chunk<T> {
        let c = self.chunk_for_push(seq, guard);
        c.raise_newest(at);
        // SAFETY: as in `publish_all`.
        unsafe { c.slot(seq).write(item, bytes) };
        self.readable.notify();
        c
    }

    /// The unpinned push (see `lease.rs`): reserves `bytes` and the next
    /// sequence number, if that number lies in the chunk the producer
    /// handle's `lease` holds and is not the chunk's first slot (whose
    /// producer moves the push hint and installs the next chunk). Returns
    /// the leased chunk (taken from the lease until [`Log::publish_leased`]
    /// puts it back) and the number; `None` with nothing reserved (take the
    /// pinned path).
    ///
    /// Nothing here runs user code or pins (invariant 7: a pin may collect),
    /// and the number is taken by a CAS from a `tail` seen in the leased
    /// chunk, so it never lands in a chunk this thread has no reference to.
    #[inline]
    pub(crate) fn reserve_leased(
        &self,
        lease: &Lease<T>,
        bytes: usize,
    ) -> Option<(NonNull<Chunk<T>>, u64)> {
        let leased = lease.take()?;
        // SAFETY: the lease owned a counted reference (now ours).
        let index = unsafe { leased.as_ref() }.index;
        let fits = |t: u64| t & CLOSED == 0 && t / Self::CAP == index && t % Self::CAP != 0;
        // SeqCst: as `reserve_seqs`' `fetch_add`, whose part in the total
        // order (against `close`, removers' `head` CAS and `Signal`'s
        // `waiters`) the CAS below takes.
        let mut t = self.tail.load(Ordering::SeqCst);
        // Bytes first, then the number (see the module docs).
        if fits(t) && bytes <= chunk::MAX_ITEM_BYTES && self.try_reserve(bytes) {
            loop {
                // SeqCst: see above.
                match self
                    .tail
                    .compare_exchange_weak(t, t + 1, Ordering::SeqCst, Ordering::SeqCst)
                {
                    Ok(_) => return Some((leased, t)),
                    Err(now) if fits(now) => {
                        crate::sync::count!(TailCasFail);
                        t = now
                    }
                    Err(_) => {
                        crate::sync::count!(TailCasFail);
                        break;
                    }
                }
            }
            self.unreserve(bytes);
        }
        lease.put(leased, &self.leases);
        None
    }

    /// Publishes `item` at `seq` in `leased` (both from
    /// [`Log::reserve_leased`]), puts the lease back, and wakes blocked
    /// readers.
    #[inline]
    pub(crate) fn publish_leased(
        &self,
        lease: &Lease<T>,
        leased: NonNull<Chunk<T>>,
        seq: u64,
        item: Item<T>,
        bytes: usize,
        at: u64,
    ) {
        // SAFETY: we own a counted reference to the chunk (taken from the
        // lease), so it is alive.
        let c = unsafe { leased.as_ref() };
        c.raise_newest(at);
        // SAFETY: we reserved `seq`, which lies in `c` (`reserve_leased`), and
        // a sequence number is handed out once, so its slot was never
        // published; no removal passes it before it is (invariant 6), so `c`
        // is still linked. The Release publication pairs as in
        // `publish_all`.
        unsafe { c.slot(seq).write(item, bytes) };
        // Wake readers first: putting the lease back may release a chunk
        // reference (another thread of this handle put one meanwhile).
        self.readable.notify();
        lease.put(leased, &self.leases);
    }

    /// Publishes items at consecutive sequence numbers from `first` (all
    /// reserved by the caller under `guard`), each with its accounted bytes,
    /// all enqueued at `at`; then wakes blocked readers once. `items` must
    /// run no user code (invariant 7).
    pub(crate) fn publish_all(
        &self,
        first: u64,
        items: impl IntoIterator<Item = (Item<T>, usize)>,
        at: u64,
        guard: &Guard,
    ) {
        let mut chunk: Option<&Chunk<T>> = None;
        for (seq, (item, bytes)) in (first..).zip(items) {
            let c = match chunk {
                Some(c) if seq < c.end() => c,
                _ => {
                    let c = self.chunk_for_push(seq, guard);
                    c.raise_newest(at);
                    chunk = Some(c);
                    c
                }
            };
            // SAFETY: we reserved `seq` (`reserve_seqs`), and a sequence
            // number is handed out once, so its slot was never published.
            // The Release publication pairs with the Acquire loads of the
            // slot in `claim`, `expire_step`, `evict_step` and `detach`.
            unsafe { c.slot(seq).write(item, bytes) };
        }
        self.readable.notify();
    }

    /// The chunk for sequence number `seq`, reserved by the caller and not
    /// yet published.
    #[inline]
    fn chunk_for_push<'g>(&self, seq: u64, guard: &'g Guard) -> &'g Chunk<T> {
        // Acquire: pairs with the AcqRel CASes that move the hints.
        let hint = self.tail_chunk.load(Ordering::Acquire, guard);
        // SAFETY: see `chunk_for_push_slow`.
        let c = unsafe { hint.deref() };
        // The common case: the hint is our chunk, and ours is not its first
        // slot (whose producer moves the hint and installs the next chunk).
        if c.index == seq / Self::CAP && seq % Self::CAP != 0 {
            return c;
        }
        self.chunk_for_push_slow(seq, guard)
    }

    /// [`Log::chunk_for_push`] when the hint is not (only) the answer.
    #[cold]
    #[inline(never)]
    fn chunk_for_push_slow<'g>(&self, seq: u64, guard: &'g Guard) -> &'g Chunk<T> {
        let index = seq / Self::CAP;
        // Acquire: pairs with the AcqRel CASes that move the hints.
        let mut cur = self.tail_chunk.load(Ordering::Acquire, guard);
        // SAFETY: `tail_chunk` is never null, and a chunk is unlinked only
        // after the hint was moved off it (`retire_chunks`), and freed only
        // after a grace period: loaded under `guard`, it is alive.
        if unsafe { cur.deref() }.index > index {
            // The hint ran ahead of us (we were preempted for a whole chunk):
            // start from the oldest linked chunk instead. It is not past our
            // chunk, because no removal passes our unpublished slot
            // (invariant 6, checked by every deciding closure).
            cur = self.head_chunk.load(Ordering::Acquire, guard);
        }
        // The walk below goes forward one chunk per step until it reaches
        // `index`; it starts at or before `index` (checked here, not only in
        // debug builds), so it ends. A start past `index` would mean our
        // chunk was unlinked under our reservation: a broken invariant, and
        // walking on would install chunks for ever.
        // SAFETY: as below.
        let start = unsafe { cur.deref() }.index;
        assert!(
            start <= index,
            "chunkq: the chunk of an in-flight push was unlinked (chunk {start} > {index})"
        );
        loop {
            // SAFETY: `cur` came from a hint, `head_chunk`, or `next` of a
            // chunk alive under `guard`; unlinking goes in index order and
            // frees after a grace period, so the successor of a chunk that
            // was alive when we pinned is alive too.
            let c = unsafe { cur.deref() };
            if c.index == index {
                if seq % Self::CAP == 0 {
                    // First slot of the chunk: move the hint here and install
                    // the next chunk ahead of need.
                    let hint = self.tail_chunk.load(Ordering::Acquire, guard);
                    // SAFETY: as above.
                    if unsafe { hint.deref() }.index < index {
                        // AcqRel: pairs with the Acquire loads of the hint.
                        let _ = self.tail_chunk.compare_exchange(
                            hint,
                            cur,
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                            guard,
                        );
                    }
                    self.next_chunk(c, guard);
                }
                return c;
            }
            cur = self.next_chunk(c, guard);
        }
    }

    /// The chunk after `c`, installing it if nobody has yet.
    fn next_chunk<'g>(&self, c: &Chunk<T>, guard: &'g Guard) -> Shared<'g, Chunk<T>> {
        // Acquire: pairs with the AcqRel install CAS below.
        let next = c.next.load(Ordering::Acquire, guard);
        if !next.is_null() {
            return next;
        }
        let fresh = chunk::alloc::<T>(c.index + 1, c.tether());
        // AcqRel: Release publishes the initialised chunk to the Acquire
        // loads of `next`; Acquire (on failure) sees the winner's chunk.
        match c.next.compare_exchange(
            Shared::null(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
            guard,
        ) {
            Ok(installed) => installed,
            Err(e) => {
                // Ours (`e.new`) was never shared: back to the pool it may
                // have come from, or freed.
                chunk::unused(e.new, c.tether());
                e.current
            }
        }
    }

    // ----- reading -----------------------------------------------------------

    /// Reads up to `max` (>= 1) next items for `group`, in order, handing
    /// each to `sink` as a counted reference to its slot; returns how many,
    /// or why there are none (the path of every `Consumer` read that takes
    /// deliveries). Reads within the chunk the handle's `lease` holds pin
    /// nothing (see `lease.rs`): a reader that keeps up never holds back
    /// the reclamation of retired chunks, even when it is descheduled
    /// between two reads. The rest go through [`Log::claim`], which moves
    /// the lease along.
    ///
    /// The protocol is `claim`'s, on the leased chunk: the counts first
    /// (`try_own`, only if not 0), then the claim of `[c, c + n)` on the
    /// cursor; losing it gives the counts back and retries the pinned way.
    #[inline]
    pub(crate) fn try_recv(
        &self,
        group: &Group<T>,
        lease: &Lease<T>,
        max: usize,
        mut sink: impl FnMut(Held<T>),
    ) -> Result<usize, Nothing> {
        let Some(leased) = lease.take() else {
            return self.try_recv_pinned(group, lease, None, max, sink);
        };
        // SAFETY: the lease owns a counted reference to the chunk (now ours
        // until we put it back), so its memory is alive.
        let chunk = unsafe { leased.as_ref() };
        // SeqCst: as in `claim`.
        let c = group.cursor();
        let hw = self.head.load(Ordering::SeqCst);
        if c < seq_of(hw) || c / Self::CAP != chunk.index {
            // Behind `head` (the pinned path moves the cursor), or past the
            // leased chunk (the pinned path finds the next one).
            return self.try_recv_pinned(group, lease, Some(leased), max, sink);
        }
        let end = chunk.end().min(c + max.clamp(1, MAX_CLAIM) as u64);
        let mut n = 0;
        // Acquire (in `try_own`): pairs with the Release publication in
        // `Slot::write`. Stops at a slot not yet published, or cleared since
        // `head` passed it (which the pinned path sorts out).
        while c + n < end && chunk.slot(c + n).try_own() {
            n += 1;
        }
        if n == 0 {
            // An empty queue answers without a pin.
            if let Some(nothing) = self.nothing_at(c) {
                lease.put(leased, &self.leases);
                return Err(nothing);
            }
            return self.try_recv_pinned(group, lease, Some(leased), max, sink);
        }
        let counted = Counted {
            chunk,
            next: c,
            end: c + n,
        };
        // The claim, after the counts: no item can be dropped between them.
        // Losing it (to a clone, or to a remover's move) gives the counts
        // back (contained: ours may be the last, invariant 7) and retries
        // the pinned way.
        if !group.claim(c, c + n) {
            drop(counted);
            return self.try_recv_pinned(group, lease, Some(leased), max, sink);
        }
        // SeqCst: as in `claim` (wake producers waiting for room).
        let hw = self.head.load(Ordering::SeqCst);
        if c <= hw {
            self.claimed_at_head(c, hw);
        }
        counted.for_each(&mut sink);
        lease.put(leased, &self.leases);
        if (c + n) % Self::CAP == 0 {
            self.left_chunk();
        }
        Ok(n as usize)
    }

    /// Reads the next item for `group` as a counted reference to its slot,
    /// or says why there is none: [`Log::try_recv`] for one item (the path
    /// of every `Consumer::try_recv`), without the sink: kept apart for its
    /// cost, about 70 instructions per item below the batch path's with a
    /// sink of one (`benches/icount.sh`). The same protocol.
    #[inline]
    pub(crate) fn try_recv_one(
        &self,
        group: &Group<T>,
        lease: &Lease<T>,
    ) -> Result<Held<T>, Nothing> {
        let Some(leased) = lease.take() else {
            return self.try_recv_one_pinned(group, lease, None);
        };
        // SAFETY: the lease owns a counted reference to the chunk (now ours
        // until we put it back), so its memory is alive.
        let chunk = unsafe { leased.as_ref() };
        // SeqCst: as in `claim`.
        let c = group.cursor();
        let hw = self.head.load(Ordering::SeqCst);
        if c < seq_of(hw) || c / Self::CAP != chunk.index {
            // Behind `head` (the pinned path moves the cursor), or past the
            // leased chunk (the pinned path finds the next one).
            return self.try_recv_one_pinned(group, lease, Some(leased));
        }
        // SAFETY: we hold a counted reference to `chunk`, and the slot lies
        // in it (its index is `c / CAP`).
        let Some(held) = (unsafe { Held::try_acquire(chunk, chunk.slot(c)) }) else {
            // Not published yet (or cleared since `head` passed it, which the
            // pinned path sorts out). An empty queue answers without a pin.
            if let Some(nothing) = self.nothing_at(c) {
                lease.put(leased, &self.leases);
                return Err(nothing);
            }
            return self.try_recv_one_pinned(group, lease, Some(leased));
        };
        // The claim, after the count: the item cannot be dropped between
        // them. Losing it (to a clone, or to a remover's move) gives the
        // count back (the `Held`'s drop) and retries the pinned way.
        if !group.claim(c, c + 1) {
            // Ours may be the last count (a remover cleared the slot
            // meanwhile): the drop is chunkq's, contained (invariant 7).
            held.release_contained();
            return self.try_recv_one_pinned(group, lease, Some(leased));
        }
        // SeqCst: as in `claim` (wake producers waiting for room).
        let hw = self.head.load(Ordering::SeqCst);
        if c <= hw {
            self.claimed_at_head(c, hw);
        }
        lease.put(leased, &self.leases);
        if (c + 1) % Self::CAP == 0 {
            self.left_chunk();
        }
        Ok(held)
    }

    /// [`Log::try_recv_one`]'s pinned path: [`Log::try_recv_pinned`] of
    /// one item.
    #[cold]
    #[inline(never)]
    fn try_recv_one_pinned(
        &self,
        group: &Group<T>,
        lease: &Lease<T>,
        leased: Option<NonNull<Chunk<T>>>,
    ) -> Result<Held<T>, Nothing> {
        let mut got = None;
        self.try_recv_pinned(group, lease, leased, 1, |held| got = Some(held))?;
        Ok(got.expect("a read of at least one item hands one over"))
    }

    /// [`Log::try_recv`] through [`Log::claim`] (pinned), moving the lease
    /// to the chunk it read from; `leased` is the reference the caller took
    /// from `lease`, if any.
    #[cold]
    #[inline(never)]
    fn try_recv_pinned(
        &self,
        group: &Group<T>,
        lease: &Lease<T>,
        leased: Option<NonNull<Chunk<T>>>,
        max: usize,
        sink: impl FnMut(Held<T>),
    ) -> Result<usize, Nothing> {
        crate::sync::count!(PinnedRead);
        let mut leased = leased;
        let got = self.claim(group, max, |counted, guard| {
            leased = Lease::renew(leased.take(), counted.chunk(), guard);
            let n = counted.len();
            counted.for_each(sink);
            n
        });
        if let Some(l) = leased {
            lease.put(l, &self.leases);
        }
        got
    }

    /// A read left a chunk (claimed its last slot) without a guard: trims
    /// what every group has read, as `claim` does.
    #[cold]
    #[inline(never)]
    fn left_chunk(&self) {
        let guard = epoch::pin();
        while self.trim_step(&guard) > 0 {}
    }

    /// Reads up to `max` (>= 1) next items for `group`, in order, lending
    /// each to `f` by reference, with no reference count taken: the borrowed
    /// read path. The references live while this call's epoch guard does,
    /// and `f` runs after the claim (user code, but no thread waits on a
    /// claim that is done: invariant 7). See [`Log::claim`].
    pub(crate) fn read(
        &self,
        group: &Group<T>,
        max: usize,
        mut f: impl FnMut(&Item<T>),
    ) -> Result<usize, Nothing> {
        self.claim(group, max, |mut counted, _| {
            let n = counted.len();
            // Each item is lent under the count the claim took for it, given
            // back after `f` (and, if `f` panics, by `counted`'s drop).
            while let Some(item) = counted.current() {
                f(item);
                counted.release_current();
            }
            n
        })
    }

    /// Claims up to `max` (>= 1) next items for `group`, in order, and
    /// hands them to `take` as [`Counted`] (one count of each item, taken
    /// *before* the claim) while still pinned; returns what `take` made, or
    /// why there are none. Claims them with one CAS on the cursor (at most
    /// `MAX_CLAIM` at a time, within one chunk). Waits for a slot that is
    /// reserved but not yet published, rather than skip it.
    ///
    /// The counts come first because a remover drops an item as soon as it
    /// gives up the log's count (right after its `head` claim, see
    /// `retention.rs`): a count is taken only if it is not 0
    /// (`Slot::try_own`), so a reader either holds the item before the
    /// remover lets go, or finds it gone and looks at `head` again. A
    /// reader that then loses the claim gives its counts back, contained.
    #[inline]
    fn claim<R>(
        &self,
        group: &Group<T>,
        max: usize,
        take: impl FnOnce(Counted<'_, T>, &Guard) -> R,
    ) -> Result<R, Nothing> {
        let mut guard = epoch::pin();
        let mut spin = Spin::new();
        loop {
            // SeqCst: cursor, head and tail loads take part in the total
            // order the accounting proof (module docs) relies on.
            let c = group.cursor();
            debug_assert_eq!(c & JOINING, 0, "handles see registered groups only");
            let hw = self.head.load(Ordering::SeqCst);
            let h = seq_of(hw);
            if c < h {
                // Items [c, h) left before we read them.
                self.move_cursor(group, c, hw);
                continue;
            }
            // Look at the slots first: a published slot is below `tail`, so
            // the common case never reads `tail` (producers' hot line).
            let mut n = 0;
            let chunk = self.locate(group, c, &guard);
            if let Some(chunk) = chunk {
                let end = chunk.end().min(c + max.clamp(1, MAX_CLAIM) as u64);
                // Acquire (in `try_own`): pairs with the Release publication
                // in `Slot::write`. Stops at a slot not yet published, or
                // whose item a remover dropped since we loaded `head`.
                while c + n < end && chunk.slot(c + n).try_own() {
                    n += 1;
                }
            }
            let Some(chunk) = chunk.filter(|_| n > 0) else {
                if let Some(nothing) = self.nothing_at(c) {
                    return Err(nothing);
                }
                // Reserved but not yet published (wait for it, never skip
                // it), its chunk not installed yet, or removed because
                // `head` moved (the next loop sees `c < head`). Waits
                // unpinned: a producer descheduled mid-push must not hold
                // back reclamation as well (nothing loaded under the guard
                // is kept across iterations).
                crate::sync::count!(UnpublishedWait);
                guard.repin_after(|| spin.wait());
                continue;
            };
            let counted = Counted {
                chunk,
                next: c,
                end: c + n,
            };
            // The claim; exactly one of {this read, a clone's read, a
            // remover's move} takes each of [c, c + n) (see `group.rs`).
            if !group.claim(c, c + n) {
                drop(counted); // gives the counts back, contained
                continue;
            }
            // A cursor that sat at `head` held trimming back (a trim needs
            // every cursor past `head`): a producer waiting for room may
            // now trim. `head` is loaded after our CAS, so a waiter whose
            // re-check saw the old cursor also saw a `head` at or below the
            // one we load here (`head` only grows), and we notify it. One
            // load when the cursor is ahead of `head` (the common case);
            // `c < head` after a removal passed us counts too. The raw word
            // is compared here: it is `head`'s sequence number itself after
            // a trim (`Cause::Consumed` is 0), so the usual case costs no
            // masking; it only overestimates (cause bits set), and
            // `claimed_at_head` checks exactly.
            // SeqCst: ordered after our cursor CAS (see above).
            let hw = self.head.load(Ordering::SeqCst);
            if c <= hw {
                self.claimed_at_head(c, hw);
            }
            let taken = take(counted, &guard);
            if (c + n) % Self::CAP == 0 {
                // We left a chunk: release what every group has read.
                while self.trim_step(&guard) > 0 {}
            }
            return Ok(taken);
        }
    }

    /// Why a reader whose cursor is `c` finds nothing, if `c` has reached
    /// `tail` (`Empty`, or `Closed` when the queue is closed); `None` when
    /// `c` lies below `tail` (a push reserved it: wait for it).
    #[inline]
    fn nothing_at(&self, c: u64) -> Option<Nothing> {
        let (t, closed) = self.tail_seq();
        crate::sync::count!(Empty if c >= t && !closed);
        (c >= t).then_some(if closed {
            Nothing::Closed
        } else {
            Nothing::Empty
        })
    }

    /// The rest of `claim`'s check after a claim from `c` with `head`'s
    /// word `hw` loaded after it: wakes producers waiting for room if the
    /// cursor sat at or below `head`. Kept out of line (so that the raw
    /// comparison in `claim` stays the only cost there).
    #[cold]
    #[inline(never)]
    fn claimed_at_head(&self, c: u64, hw: u64) {
        if c <= seq_of(hw) {
            self.room.notify();
        }
    }

    /// The chunk holding `seq` for `group`, or `None` if `head` has passed
    /// it or the chunk is not installed yet.
    #[inline]
    fn locate<'g>(&self, group: &Group<T>, seq: u64, guard: &'g Guard) -> Option<&'g Chunk<T>> {
        // Acquire: pairs with the AcqRel swap in `Group::set_hint`.
        let hint = group.hint(guard);
        // SAFETY: the hint owns a counted reference; a chunk it drops is
        // destroyed only after a grace period, so it is alive under `guard`
        // (linked or not: its slots are what they were when `head` passed
        // them, or cleared, and `claim` sorts that out with `head`).
        if let Some(c) = unsafe { hint.as_ref() } {
            if c.index == seq / Self::CAP {
                return Some(c);
            }
        }
        self.locate_slow(group, seq, guard)
    }

    /// [`Log::locate`] when the group's hint is not the chunk: walks from
    /// the hint or from `head_chunk`, and moves the hint.
    #[inline(never)]
    fn locate_slow<'g>(
        &self,
        group: &Group<T>,
        seq: u64,
        guard: &'g Guard,
    ) -> Option<&'g Chunk<T>> {
        let index = seq / Self::CAP;
        // Acquire: pairs with the AcqRel CAS in `retire_chunks`.
        let first = self.head_chunk.load(Ordering::Acquire, guard);
        // SAFETY: `head_chunk` is never null; loaded under `guard`, the chunk
        // is freed (if ever) after `guard` is dropped.
        let first_index = unsafe { first.deref() }.index;
        // Acquire: pairs with the AcqRel swap in `Group::set_hint`.
        let hint = group.hint(guard);
        let mut cur = first;
        if !hint.is_null() {
            // SAFETY: the hint owns a counted reference; a chunk it drops is
            // destroyed only after a grace period, so it is alive under
            // `guard`.
            let hi = unsafe { hint.deref() }.index;
            // Only start from the hint if it was still linked when we read
            // `head_chunk` (index at or after it): then the chunks after it
            // were linked after we pinned and are alive under `guard`.
            if hi >= first_index && hi <= index {
                cur = hint;
            }
        }
        loop {
            // SAFETY: `cur` is `head_chunk`, a linked hint, or reached from
            // them by `next`; all were linked after we pinned (see above).
            let c = unsafe { cur.deref() };
            if c.index == index {
                if cur != hint {
                    group.set_hint(cur, guard);
                }
                return Some(c);
            }
            if c.index > index {
                return None;
            }
            // Acquire: pairs with the install CAS in `next_chunk`.
            cur = c.next.load(Ordering::Acquire, guard);
            if cur.is_null() {
                return None;
            }
        }
    }

    /// Moves `group`'s cursor from `c` up to `head` word `hw`'s sequence
    /// number, counting the passed items with `hw`'s cause, if the cursor
    /// still holds `c`. Returns whether this call moved it.
    fn move_cursor(&self, group: &Group<T>, c: u64, hw: u64) -> bool {
        let cause = cause_of(hw);
        let moved = group.move_past(c, seq_of(hw), cause, || self.clock.now_nanos());
        if moved && cause != Cause::Consumed {
            // The change a notice waiter re-checks is the count's SeqCst
            // `fetch_add` (see `wait.rs`). Notified after `move_past`
            // withdrew the move from `moving`, which `missed()` waits on: a
            // waker (an async receiver's executor) never runs where others
            // wait.
            self.noticed.notify();
        }
        moved
    }

    // ----- groups ------------------------------------------------------------

    /// Registers a new group and gives it its start position.
    pub(crate) fn register(&self, start: Start) -> Arc<Group<T>> {
        // A time becomes a sequence number first; `join` raises it to `head`
        // as read after the registration, as it does any `Seq`.
        let start = match start {
            Start::Since(t) => Start::Seq(self.first_since(crate::clock::from_system_time(t))),
            other => other,
        };
        let group = Arc::new(Group::new(start));
        let guard = epoch::pin();
        self.registry.add(group.clone(), &guard);
        self.join(&group);
        // A joining group holds trimming back; a joined one may not (a
        // `Start::Latest` cursor is past everything published): wake
        // producers waiting for room. The change is `join`'s SeqCst CAS.
        self.room.notify();
        group
    }

    /// The first retained sequence number whose item was enqueued at or
    /// after `t` (ns), or reserved but not yet published (never skipped);
    /// `tail` if none. Whole chunks whose newest enqueue is older than `t`
    /// are skipped without opening their items.
    fn first_since(&self, t: u64) -> u64 {
        let guard = epoch::pin();
        let h = self.head_seq();
        let (tail, _) = self.tail_seq();
        let mut cur = self.chunk_from_head(h / Self::CAP, &guard);
        // SAFETY: loaded under `guard` (see `chunk_from_head`), as are
        // their successors.
        while let Some(c) = unsafe { cur.as_ref() } {
            let from = h.max(c.start());
            let to = tail.min(c.end());
            if from >= tail {
                break;
            }
            if from < to {
                let published = c.published_until(from, to);
                // Relaxed: every `fetch_max` of `newest` happened before a
                // publication `published_until` loaded with Acquire.
                let all_older = published == to && c.newest.load(Ordering::Relaxed) < t;
                if !all_older {
                    for seq in from..to {
                        // A push in flight (or an item removed meanwhile,
                        // which `join` raises to `head`), or an item new
                        // enough.
                        // SAFETY: `c` was loaded under `guard`.
                        if unsafe { c.peek(seq, |item| item.enqueued_nanos()) }
                            .is_none_or(|e| e >= t)
                        {
                            return seq;
                        }
                    }
                }
            }
            // Acquire: pairs with the install CAS in `next_chunk`.
            cur = c.next.load(Ordering::Acquire, &guard);
        }
        tail
    }

    /// Replaces a `JOINING` cursor by its start position, read now, i.e.
    /// after the group was published in the registry (the proof in the
    /// module docs needs exactly this order). Any thread may do it; the CAS
    /// lets one win.
    fn join(&self, group: &Group<T>) {
        group.join(|start| {
            let h = self.head_seq();
            match start {
                // `Since` is resolved to a `Seq` by `register`.
                Start::Oldest | Start::Since(_) => h,
                // Loaded after `head`, so not below it.
                Start::Latest => self.tail_seq().0.max(h),
                // Never below `head` (what is gone is not owed), and below
                // the cursor flag bits.
                Start::Seq(n) => n.min(SEQ_MASK).max(h),
            }
        });
    }

    /// Where `group`'s cursor started (see `Consumer::start_seq`). The join
    /// is done when `register` returns, but the thread whose CAS won may
    /// not have recorded the position yet: wait for it (a few instructions
    /// away, no user code).
    pub(crate) fn start_seq(&self, group: &Group<T>) -> u64 {
        let mut spin = Spin::new();
        loop {
            if let Some(first) = group.first_position() {
                return first;
            }
            spin.wait();
        }
    }

    /// Moves `group`'s cursor up to `head` if it lies below, counting what
    /// it passes (see "Removal" in the module docs: cursors below `head` are
    /// caught up lazily). Touches only atomics: no guard needed.
    pub(crate) fn catch_up(&self, group: &Group<T>) {
        loop {
            // SeqCst: the cursor, then `head` (see the proof in the module
            // docs).
            let c = group.cursor();
            let hw = self.head.load(Ordering::SeqCst);
            if c & JOINING != 0 || c >= seq_of(hw) || self.move_cursor(group, c, hw) {
                return;
            }
        }
    }

    /// Deregisters a group whose last handle dropped.
    pub(crate) fn deregister(&self, group: &Arc<Group<T>>) {
        let guard = epoch::pin();
        self.registry.remove(group, &guard);
        group.clear_hint(&guard);
    }

    /// Brings every registered cursor up to at least `hw`'s sequence number
    /// (step 1 of a removal; also its step 3 with the new word).
    fn help(&self, hw: u64, guard: &Guard) {
        let h = seq_of(hw);
        for group in self.registry.load(guard) {
            loop {
                let c = group.cursor();
                if c & JOINING != 0 {
                    self.join(group);
                    continue;
                }
                if c >= h || self.move_cursor(group, c, hw) {
                    break;
                }
            }
        }
    }
}

/// White-box loom models of the chunk-list mechanics, run from
/// `loom-tests/` through `chunkq::__loom` (they need states the public API
/// reaches only with many items and threads).
#[cfg(loom)]
impl Log<u64> {
    /// Two threads retire chunks while the producers' hint lags at the
    /// oldest chunk (as after a producer's hint CAS lost to a remover):
    /// afterwards the hint must point at a linked chunk. Moving the hint
    /// after the unlink let a stale remover put it on a chunk the other
    /// remover had unlinked and freed (issue: `tail_chunk` moved by CAS from
    /// a stale value).
    pub(crate) fn model_hint_vs_two_retirers() {
        let log = Arc::new(Log::<u64>::new(
            crate::item::name("loom"),
            Clock::manual(),
            1 << 20,
        ));
        {
            let guard = epoch::pin();
            // Chunks 0..=3 linked; the hint stays at chunk 0.
            let mut c = log.head_chunk.load(Ordering::Acquire, &guard);
            for _ in 0..3 {
                // SAFETY: linked chunks, loaded under `guard`.
                c = log.next_chunk(unsafe { c.deref() }, &guard);
            }
        }
        // Chunks 0 and 1 wholly removed: `head` at chunk 2's start.
        let h = 2 * Self::CAP;
        log.tail.store(h, Ordering::SeqCst);
        log.head
            .store(head_word(h, Cause::Expired), Ordering::SeqCst);
        let other = {
            let log = log.clone();
            loom::thread::spawn(move || log.retire_chunks(&epoch::pin()))
        };
        log.retire_chunks(&epoch::pin());
        other.join().unwrap();
        let guard = epoch::pin();
        let hint = log.tail_chunk.load(Ordering::Acquire, &guard);
        // Compare pointers, never dereferencing the hint: it may be freed.
        let mut cur = log.head_chunk.load(Ordering::Acquire, &guard);
        let mut linked = false;
        while !cur.is_null() {
            linked |= cur == hint;
            // SAFETY: linked chunks, loaded under `guard`.
            cur = unsafe { cur.deref() }.next.load(Ordering::Acquire, &guard);
        }
        assert!(linked, "the producers' hint points at an unlinked chunk");
        // SAFETY: linked chunks, loaded under `guard`.
        let first = unsafe { log.head_chunk.load(Ordering::Acquire, &guard).deref() };
        assert_eq!(first.index, 2, "both wholly removed chunks are unlinked");
        drop(guard);
        drop(log);
        epoch::quiesce();
    }

    /// Two removers move one group's cursor from 0 past one expired item:
    /// one wins, the other (stale) fails. Whoever sees the moved cursor and
    /// then calls `missed()` must get the winner's count. Counting begun
    /// and finished moves let the stale failure stand in for the winner's
    /// unfinished count (issue: `missed()` counted finished moves, not
    /// which ones).
    pub(crate) fn model_missed_vs_stale_move() {
        let log = Arc::new(Log::<u64>::new(
            crate::item::name("loom"),
            Clock::manual(),
            1 << 20,
        ));
        let group = log.register(Start::Oldest);
        let hw = head_word(1, Cause::Expired);
        let movers: Vec<_> = (0..2)
            .map(|_| {
                let (log, group) = (log.clone(), group.clone());
                loom::thread::spawn(move || log.move_cursor(&group, 0, hw))
            })
            .collect();
        if group.cursor() == 1 {
            assert_eq!(group.missed(), (1, 0), "a count behind its cursor move");
        }
        let wins: usize = movers
            .into_iter()
            .map(|m| usize::from(m.join().unwrap()))
            .sum();
        assert_eq!(wins, 1);
        assert_eq!(group.missed(), (1, 0));
        log.deregister(&group);
        drop((group, log));
        epoch::quiesce();
    }
}

/// The counts a claim took of items `[next, end)` of `chunk`, one each
/// (see [`Log::claim`]): handed out as [`Held`]s, or lent and given back;
/// what is left when it drops is given back, contained (a lost claim, or a
/// borrowed read whose callback panicked).
pub(crate) struct Counted<'a, T> {
    /// The chunk of the items (alive under the claim's guard).
    chunk: &'a Chunk<T>,
    /// The first item whose count is still ours.
    next: u64,
    /// One past the last.
    end: u64,
}

impl<'a, T> Counted<'a, T> {
    /// The chunk.
    pub(crate) fn chunk(&self) -> &'a Chunk<T> {
        self.chunk
    }

    /// How many counts are left.
    pub(crate) fn len(&self) -> usize {
        (self.end - self.next) as usize
    }

    /// The next item, lent under its count (still ours).
    pub(crate) fn current(&self) -> Option<&Item<T>> {
        // SAFETY: we own a count of the item (see the type's docs).
        (self.next < self.end).then(|| unsafe { self.chunk.slot(self.next).item() })
    }

    /// Gives back the count of [`Counted::current`]'s item.
    pub(crate) fn release_current(&mut self) {
        if let Some(held) = self.next() {
            held.release_contained();
        }
    }
}

impl<T> Iterator for Counted<'_, T> {
    type Item = Held<T>;

    /// The next item's count, as a `Held`.
    #[inline]
    fn next(&mut self) -> Option<Held<T>> {
        if self.next == self.end {
            return None;
        }
        let seq = self.next;
        self.next += 1;
        // SAFETY: we own one count of item `seq`, taken by `try_own` in
        // `claim`, and hand it over; the slot lies in `chunk`.
        Some(unsafe { Held::adopt(self.chunk, self.chunk.slot(seq)) })
    }
}

impl<T> Drop for Counted<'_, T> {
    fn drop(&mut self) {
        for held in self.by_ref() {
            held.release_contained();
        }
    }
}

impl<T> Drop for Log<T> {
    fn drop(&mut self) {
        let head = seq_of(self.head.load(Ordering::Relaxed));
        // SAFETY: we are the unique owner: no handle, consumer or sweeper is
        // left, so nothing else reads the list (deliveries may still hold
        // items: `Chunk::clear` leaves those to them). With the unprotected
        // guard a deferred destruction runs at once.
        unsafe {
            let guard = epoch::unprotected();
            let mut cur = self.head_chunk.load(Ordering::Relaxed, guard);
            while !cur.is_null() {
                let chunk = cur.deref();
                let next = chunk.next.load(Ordering::Relaxed, guard);
                // The retained items go now (the queue dropped with items
                // inside): we own the log's count of every published slot at
                // or above `head`. Slots below it belong to a removal whose
                // clearing holds its own reference to the chunk. Panics are
                // caught and counted (invariant 7).
                let from = head.clamp(chunk.start(), chunk.end());
                chunk.clear(from, chunk.end());
                // The list link's reference; the chunk is freed now unless a
                // pending clearing or a delivery still holds it.
                Chunk::release(cur, guard);
                cur = next;
            }
        }
        // The pooled chunks hold the tether: free them, and every chunk
        // retired from now on (those deliveries still hold).
        self.tether.pool.close();
        // Under loom, run what the stand-in collector still holds, so that no
        // deferred function outlives the model execution.
        #[cfg(loom)]
        epoch::quiesce();
    }
}
