//! A consumer group's shared state (the cursor every clone of a
//! [`crate::Consumer`] shares), its miss counters and notices, and the
//! registry of groups that retention walks.
//!
//! # The cursor
//! `cursor` holds the next sequence number the group will read. It only ever
//! grows, and it moves only by compare-and-swap:
//! - a read of item `c` moves it `c → c + 1` and delivers `c`;
//! - whoever finds it below `head` (a clone in `try_recv`, the thread that
//!   moved `head`, any later remover) moves it `c → h` and counts the `h - c`
//!   items as missed, with the cause that `head`'s word carries.
//!
//! Because each move is one CAS from the value it accounts for, every
//! sequence number at or after the group's start is passed exactly once:
//! delivered or counted, never both, never neither (ARCHITECTURE.md invariant 2).
//! Why the counted cause is the right one is proved in `log/mod.rs`.
//!
//! While a group is being registered its cursor carries [`JOINING`]: no
//! remover counts anything for it, and the first thread to see it replaces it
//! by a start position read *after* the group became visible (see
//! `Log::join`).

use crate::chunk::Chunk;
use crate::sync::epoch::{Atomic, Guard, Shared};
use crate::sync::{Arc, AtomicU64, AtomicUsize, Mutex, Ordering};
use crossbeam_utils::CachePadded;
use uuid::Uuid;

/// Cursor flag: the group is registering and has no start position yet.
pub(crate) const JOINING: u64 = 1 << 63;

/// Where a new consumer starts reading.
///
/// A consumer is owed the items from its start position on: items that
/// left the queue before it subscribed are not counted as missed. When the
/// position asked for is already gone (below the oldest retained item), the
/// consumer starts at the oldest retained item instead, and
/// [`crate::Consumer::start_seq`] tells where it actually started, so the
/// gap is exact: `start_seq() - n` items of a `Seq(n)` were gone.
///
/// # Examples
///
/// ```
/// use chunkq::{Queue, Start};
/// let q: Queue<u8> = Queue::new("a");
/// q.push(1).unwrap();
/// let old = q.subscribe_from(Start::Oldest);
/// let new = q.subscribe_from(Start::Latest);
/// q.push(2).unwrap();
/// assert_eq!(*old.try_recv().unwrap().payload(), 1);
/// assert_eq!(*new.try_recv().unwrap().payload(), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Start {
    /// At the oldest item still retained (the default).
    #[default]
    Oldest,
    /// After the newest item: only items pushed from now on.
    Latest,
    /// At sequence number `n` (Kafka's seek to an offset): the oldest
    /// retained item if `n` is already gone, and a later one than the
    /// newest if `n` is not pushed yet (the items before `n` are skipped).
    ///
    /// ```
    /// use chunkq::{Queue, Start};
    /// let q: Queue<u8> = Queue::new("a");
    /// q.push_batch([10, 11, 12]).unwrap();
    /// let c = q.subscribe_from(Start::Seq(1));
    /// assert_eq!((c.start_seq(), *c.try_recv().unwrap().payload()), (1, 11));
    /// ```
    Seq(u64),
    /// At the first retained item, in sequence order, enqueued into this
    /// queue at or after the given time (Kafka's seek by timestamp); after
    /// the newest item if there is none. A push still in flight at that
    /// point is taken as new enough (it is never skipped).
    ///
    /// ```
    /// use chunkq::{Clock, Queue, Start};
    /// use std::time::Duration;
    /// let clock = Clock::manual();
    /// let q: Queue<u8> = Queue::builder("a").clock(clock.clone()).build().unwrap();
    /// q.push(1).unwrap();
    /// clock.advance(Duration::from_secs(5));
    /// let since = clock.now();
    /// q.push(2).unwrap();
    /// let c = q.subscribe_from(Start::Since(since));
    /// assert_eq!(*c.try_recv().unwrap().payload(), 2);
    /// ```
    Since(std::time::SystemTime),
}

/// Why a consumer never read some items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// Released because every consumer had read them: counts as no miss.
    Consumed = 0,
    /// Their TTL ran out.
    Expired = 1,
    /// The memory budget was full under `Overflow::DropOldest`.
    Evicted = 2,
}

/// How a group is named in `stats` and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Label {
    /// A named group (`Queue::subscribe_group`).
    Named(std::sync::Arc<str>),
    /// An anonymous group: the smallest number free among the queue's
    /// anonymous groups when it registered (stable while it lives, and
    /// bounded by how many live at once).
    Anonymous(u32),
}

/// One consumer group: the state all clones of a `Consumer` share.
pub(crate) struct Group<T> {
    /// The group's UUID ([`crate::Consumer::id`]).
    id: Uuid,
    /// Next sequence number to read, or `JOINING | 0` while registering. On
    /// its own cache line: clones CAS it on every read.
    cursor: CachePadded<AtomicU64>,
    /// Where the group asked to start (`Since` already resolved to a
    /// `Seq` by `Log::register`).
    start: Start,
    /// The position `Log::join` gave the cursor, `JOINING` until then
    /// (written by the thread whose join CAS won).
    first: AtomicU64,
    /// Running total of items this group missed by expiry.
    expired: AtomicU64,
    /// Running total of items this group missed by eviction.
    evicted: AtomicU64,
    /// Expired count not yet taken by a `Notifications` receiver.
    pending_expired: AtomicU64,
    /// Evicted count not yet taken by a `Notifications` receiver.
    pending_evicted: AtomicU64,
    /// Time (ns since the Unix epoch) of the latest miss counted.
    last_miss_at: AtomicU64,
    /// Running total of items this group claimed but never saw, because
    /// the closure of a borrowed read (`Consumer::read`) panicked first.
    abandoned: AtomicU64,
    /// Abandoned count not yet taken by a `Notifications` receiver.
    pending_abandoned: AtomicU64,
    /// How `stats` and metrics name the group, set once by the queue handle
    /// that registered it, right after `Log::register` (unset for that
    /// moment; set or not, nothing in the protocol reads it).
    label: std::sync::OnceLock<Label>,
    /// Cursor moves past unread items in flight: incremented before the
    /// move's CAS, decremented after its counting (or after its CAS failed).
    /// `missed()` waits until it reads zero, so a count is never seen behind
    /// the cursor move it belongs to. (Counting begun and finished moves
    /// separately is not enough: a later move that fails and finishes could
    /// stand in for an earlier one still counting.)
    moving: AtomicU64,
    /// The chunk this group read from last: a counted reference (see
    /// `chunk.rs`), so a lagging group finds its chunk in O(1). Null at first.
    hint: Atomic<Chunk<T>>,
    /// Live `Consumer` handles (clones) of this group; the last one to drop
    /// deregisters the group.
    handles: AtomicUsize,
}

impl<T> Group<T> {
    // ----- the cursor protocol -----------------------------------------------
    // The log decides *where* a cursor goes (it knows `head`, `tail` and the
    // chunks); these methods are the only writers of the cursor and of the
    // miss counters, so each of the moves below is the one CAS the module
    // docs account for.

    /// The group's UUID ([`crate::Consumer::id`]).
    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    /// The cursor: the next sequence number to read, or `JOINING` (flag)
    /// while registering.
    pub(crate) fn cursor(&self) -> u64 {
        // SeqCst: cursor, `head`, `tail` and registry loads take part in the
        // total order the accounting proof (`log/mod.rs`) relies on.
        self.cursor.load(Ordering::SeqCst)
    }

    /// A read: claims `[from, to)` for this group if the cursor still holds
    /// `from`. Exactly one of {this read, a clone's read, a remover's move}
    /// takes each sequence number.
    #[inline]
    pub(crate) fn claim(&self, from: u64, to: u64) -> bool {
        // SeqCst: see `cursor`.
        self.cursor
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
            .inspect_err(|_| {
                crate::sync::count!(CursorCasFail);
            })
            .is_ok()
    }

    /// A remover's (or a lagging reader's) move past items that left: moves
    /// the cursor from `c` to `h` if it still holds `c`, and counts the
    /// `h - c` items as missed with `cause` (nothing for `Consumed`), at
    /// time `now()`. Returns whether this call moved it. The move is
    /// announced in `moving` before its CAS and withdrawn after its count,
    /// so `missed()` never sees a count behind its cursor move.
    pub(crate) fn move_past(
        &self,
        c: u64,
        h: u64,
        cause: Cause,
        now: impl FnOnce() -> u64,
    ) -> bool {
        debug_assert!(c < h);
        // SeqCst: announced before the move, so that a reader who sees the
        // moved cursor also sees the move in progress (see `missed`).
        self.moving.fetch_add(1, Ordering::SeqCst);
        let moved = self.claim(c, h);
        if moved {
            self.count_missed(h - c, cause, now());
        }
        // SeqCst: publishes the counts to `missed` (pairs with its SeqCst
        // load); a failed move withdraws its announcement the same way.
        self.moving.fetch_sub(1, Ordering::SeqCst);
        moved
    }

    /// Replaces a `JOINING` cursor by the start position `position` gives
    /// for the group's [`Start`] (the log reads `head` and `tail` in it,
    /// after the group was published in the registry: the proof in
    /// `log/mod.rs` needs exactly this order). Any thread may do it; the
    /// CAS lets one win, which records the position for `first_position`.
    pub(crate) fn join(&self, position: impl FnOnce(Start) -> u64) {
        let c = self.cursor();
        if c & JOINING == 0 {
            return;
        }
        let pos = position(self.start);
        debug_assert_eq!(pos & JOINING, 0);
        if self.claim(c, pos) {
            // Release: pairs with the Acquire load in `first_position`.
            self.first.store(pos, Ordering::Release);
        }
    }

    /// Where the cursor started, once the winner of `join` recorded it.
    pub(crate) fn first_position(&self) -> Option<u64> {
        // Acquire: pairs with the Release store in `join`.
        let first = self.first.load(Ordering::Acquire);
        (first & JOINING == 0).then_some(first)
    }

    // ----- handles and notices -----------------------------------------------

    /// Counts one more `Consumer` handle (a clone); returns the count before.
    pub(crate) fn add_handle(&self) -> usize {
        // Relaxed: creating a clone from a live handle cannot race with the
        // last drop (like `Arc::clone`).
        self.handles.fetch_add(1, Ordering::Relaxed)
    }

    /// Drops one handle; returns whether it was the last (the caller then
    /// deregisters the group).
    pub(crate) fn release_handle(&self) -> bool {
        // AcqRel: the last dropper sees every other clone's work (like `Arc`).
        self.handles.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Live handles; 0 once the group is deregistered.
    pub(crate) fn handles(&self) -> usize {
        // SeqCst: a notice waiter's re-check (`wait.rs`) reads it.
        self.handles.load(Ordering::SeqCst)
    }

    /// Whether counted misses wait for a `Notifications` receiver.
    pub(crate) fn has_pending(&self) -> bool {
        // SeqCst: the re-check of a notice waiter (pairs with
        // `count_missed`'s SeqCst add).
        self.pending_expired.load(Ordering::SeqCst) != 0
            || self.pending_evicted.load(Ordering::SeqCst) != 0
    }

    /// Takes the misses counted since the last take: `(expired, evicted,
    /// time of the latest)`.
    pub(crate) fn take_pending(&self) -> (u64, u64, u64) {
        // SeqCst: as `has_pending`.
        let expired = self.pending_expired.swap(0, Ordering::SeqCst);
        let evicted = self.pending_evicted.swap(0, Ordering::SeqCst);
        // Relaxed: a timestamp for display, ordered enough by the swaps.
        (expired, evicted, self.last_miss_at.load(Ordering::Relaxed))
    }

    /// The chunk hint, for `Log::locate` (a counted reference; see
    /// `set_hint`).
    pub(crate) fn hint<'g>(&self, guard: &'g Guard) -> Shared<'g, Chunk<T>> {
        // Acquire: pairs with the AcqRel swap in `set_hint`.
        self.hint.load(Ordering::Acquire, guard)
    }

    /// A group about to register: cursor `JOINING`, one handle.
    pub(crate) fn new(start: Start) -> Self {
        Self {
            id: crate::id::uuid_v7(),
            cursor: CachePadded::new(AtomicU64::new(JOINING)),
            start,
            first: AtomicU64::new(JOINING),
            expired: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            pending_expired: AtomicU64::new(0),
            pending_evicted: AtomicU64::new(0),
            last_miss_at: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            pending_abandoned: AtomicU64::new(0),
            label: std::sync::OnceLock::new(),
            moving: AtomicU64::new(0),
            hint: Atomic::null(),
            handles: AtomicUsize::new(1),
        }
    }

    /// The running miss totals `(expired, evicted)`, including every cursor
    /// move whose CAS came before this call: waits until no move is in
    /// flight. A move is a handful of instructions with no user code, so
    /// the wait is short; it degrades from spinning to yielding to sleeping
    /// (`Spin`) if the moving thread is descheduled.
    pub(crate) fn missed(&self) -> (u64, u64) {
        let mut spin = crate::sync::Spin::new();
        // SeqCst: pairs with the SeqCst increment and decrement in
        // `move_past`: a move whose CAS precedes this load is either
        // still counted here (we wait) or has finished counting.
        while self.moving.load(Ordering::SeqCst) != 0 {
            spin.wait();
        }
        self.missed_now()
    }

    /// The running miss totals as they stand, without waiting for moves in
    /// flight (for `Debug`, which must not wait).
    pub(crate) fn missed_now(&self) -> (u64, u64) {
        (
            self.expired.load(Ordering::SeqCst),
            self.evicted.load(Ordering::SeqCst),
        )
    }

    /// Counts `n` items this group will never read (the caller notifies
    /// the log's notice waiters).
    fn count_missed(&self, n: u64, cause: Cause, now: u64) {
        // Relaxed on the counters: they are statistics; the CAS on `cursor`
        // that preceded this call is what makes the count exactly-once.
        let (total, pending) = match cause {
            Cause::Consumed => return,
            Cause::Expired => (&self.expired, &self.pending_expired),
            Cause::Evicted => (&self.evicted, &self.pending_evicted),
        };
        total.fetch_add(n, Ordering::Relaxed);
        self.last_miss_at.fetch_max(now, Ordering::Relaxed);
        // SeqCst: the change a `Notifications` waiter re-checks; pairs with
        // the SeqCst `waiters` load in the caller's `Signal::notify` (see
        // `wait.rs`).
        pending.fetch_add(n, Ordering::SeqCst);
    }

    // ----- label ---------------------------------------------------------------

    /// Sets the group's label (once; later calls change nothing).
    pub(crate) fn set_label(&self, label: Label) {
        let _ = self.label.set(label);
    }

    /// The group's label, once set.
    pub(crate) fn label(&self) -> Option<&Label> {
        self.label.get()
    }

    // ----- abandoned items --------------------------------------------------
    // Counted by the reader that claimed them (`Consumer::read`), after its
    // claim: no cursor move, so outside the `moving` protocol above.

    /// Counts `n` items this group claimed and never saw (a borrowed read's
    /// closure panicked), at `now` (the caller notifies notice waiters).
    pub(crate) fn count_abandoned(&self, n: u64, now: u64) {
        // Relaxed: a statistic (the claim's CAS made the items this
        // reader's, so no one else counts them).
        self.abandoned.fetch_add(n, Ordering::Relaxed);
        self.last_miss_at.fetch_max(now, Ordering::Relaxed);
        // SeqCst: as the pending counts in `count_missed`.
        self.pending_abandoned.fetch_add(n, Ordering::SeqCst);
    }

    /// The running total of abandoned items.
    pub(crate) fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Whether abandoned items wait for a `Notifications` receiver.
    pub(crate) fn has_pending_abandoned(&self) -> bool {
        // SeqCst: as `has_pending`.
        self.pending_abandoned.load(Ordering::SeqCst) != 0
    }

    /// Takes the abandoned items counted since the last take.
    pub(crate) fn take_pending_abandoned(&self) -> u64 {
        // SeqCst: as `take_pending`.
        self.pending_abandoned.swap(0, Ordering::SeqCst)
    }

    /// Points the hint at `chunk` (loaded under `guard`), taking a counted
    /// reference, and releases the previous one. Does nothing if the chunk is
    /// already on its way to the collector.
    pub(crate) fn set_hint(&self, chunk: Shared<'_, Chunk<T>>, guard: &Guard) {
        // SAFETY: `chunk` was loaded under `guard` from the list or a hint, so
        // it is not freed before `guard` is dropped.
        if !unsafe { chunk.deref() }.try_acquire() {
            return;
        }
        // AcqRel: Release publishes the reference we took; Acquire pairs
        // with the swap of a clone that stored the previous hint.
        // SeqCst (also the Release that publishes the reference): the put
        // half of the pair with `Log::retire_chunks` (the chunk's
        // `unlinked` mark; the pattern of `lease.rs`).
        let old = self.hint.swap(chunk, Ordering::SeqCst, guard);
        if !old.is_null() {
            // SAFETY: the hint owned one counted reference to `old`, which the
            // swap handed to us.
            unsafe { Chunk::release(old, guard) };
        }
        // SAFETY: as above.
        if unsafe { chunk.deref() }.is_unlinked() {
            // Unlinked meanwhile, perhaps after its retirer looked at our
            // hint: let go ourselves (an idle group keeps no chunk).
            self.revoke_hint(chunk, guard);
        }
    }

    /// Drops the hint's reference if the hint points at `chunk` (which
    /// `Log::retire_chunks` unlinked): an idle group keeps no chunk the log
    /// let go of. The CAS takes the reference exactly once, against
    /// `set_hint` and `clear_hint`.
    pub(crate) fn revoke_hint(&self, chunk: Shared<'_, Chunk<T>>, guard: &Guard) {
        // SeqCst: the revoker's half of the pair (see `set_hint`).
        if self
            .hint
            .compare_exchange(
                chunk,
                Shared::null(),
                Ordering::SeqCst,
                Ordering::Relaxed,
                guard,
            )
            .is_ok()
        {
            // SAFETY: the hint owned one counted reference to `chunk`, which
            // our CAS took; `chunk` is alive under `guard`.
            unsafe { Chunk::release(chunk, guard) };
        }
    }

    /// Drops the hint's reference (deregistration).
    pub(crate) fn clear_hint(&self, guard: &Guard) {
        let old = self.hint.swap(Shared::null(), Ordering::AcqRel, guard);
        if !old.is_null() {
            // SAFETY: as in `set_hint`.
            unsafe { Chunk::release(old, guard) };
        }
    }
}

/// The registered groups: an immutable snapshot (a `Vec`) replaced
/// copy-on-write under a mutex, read without a lock under an epoch guard.
/// Registering and deregistering take the mutex; removal and trimming only
/// load the snapshot.
pub(crate) struct Registry<T> {
    /// The current snapshot; never null.
    snapshot: Atomic<Vec<Arc<Group<T>>>>,
    /// Serialises writers of `snapshot`.
    writers: Mutex<()>,
}

impl<T> Registry<T> {
    /// An empty registry.
    pub(crate) fn new() -> Self {
        Self {
            snapshot: Atomic::new(Vec::new()),
            writers: Mutex::new(()),
        }
    }

    /// The current groups.
    pub(crate) fn load<'g>(&self, guard: &'g Guard) -> &'g [Arc<Group<T>>] {
        // SeqCst: pairs with the SeqCst store in `replace`; the proof in
        // `log/mod.rs` orders this load against `head` loads.
        let s = self.snapshot.load(Ordering::SeqCst, guard);
        // SAFETY: never null; a replaced snapshot is destroyed only through
        // the epoch collector, after `guard` is dropped.
        unsafe { s.deref() }
    }

    /// Replaces the snapshot with `f(current)`.
    fn replace(&self, guard: &Guard, f: impl FnOnce(&[Arc<Group<T>>]) -> Vec<Arc<Group<T>>>) {
        let _w = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        let next = f(self.load(guard));
        // SeqCst: pairs with the SeqCst load in `load`.
        let old = self.snapshot.swap(
            crate::sync::epoch::Owned::new(next),
            Ordering::SeqCst,
            guard,
        );
        // SAFETY: `old` is unreachable from now on; readers that loaded it
        // are pinned, and the collector waits for them.
        unsafe { guard.defer_destroy(old) };
    }

    /// Adds a group.
    pub(crate) fn add(&self, group: Arc<Group<T>>, guard: &Guard) {
        self.replace(guard, |cur| {
            let mut v = cur.to_vec();
            v.push(group);
            v
        });
    }

    /// Removes a group.
    pub(crate) fn remove(&self, group: &Arc<Group<T>>, guard: &Guard) {
        self.replace(guard, |cur| {
            cur.iter()
                .filter(|g| !Arc::ptr_eq(g, group))
                .cloned()
                .collect()
        });
    }
}

impl<T> Drop for Registry<T> {
    fn drop(&mut self) {
        // SAFETY: we are the unique owner; the snapshot is not shared.
        unsafe {
            let guard = crate::sync::epoch::unprotected();
            let s = self.snapshot.load(Ordering::Relaxed, guard);
            drop(s.into_owned());
        }
    }
}
