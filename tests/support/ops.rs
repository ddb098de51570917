//! The operation interpreter shared by the fuzz targets (`fuzz/`) and the
//! stable test `tests/ops_proptest.rs`.
//!
//! Every operation is applied twice: to a real [`Queue`] (manual clock, no
//! sweeper thread) and to [`Model`], a plain reference model of what chunkq
//! promises — a `VecDeque` of retained items with their sequence numbers,
//! enqueue times and accounted bytes, one cursor per consumer group, and the
//! budget, TTL and trimming rules written out the simple way. After every
//! operation the two are compared (results, `len`, `memory_used`, every
//! group's `missed`, `lag` and notices), and at the end every invariant is
//! checked: per group `delivered + missed == pushed since its start`, strictly
//! increasing sequence numbers (so no duplicates), and every payload dropped
//! exactly once once the queue, its consumers and all deliveries are gone.
//!
//! The rules the model follows (read from `src/log/mod.rs` and `src/queue.rs`):
//! - An item is accounted `overhead + sizer(payload)` bytes, plus
//!   `events * size_of::<Event>()` when its history has more than one event
//!   (a forwarded item). `overhead` and the per-event size are measured once
//!   from `memory_used()` differences ([`sizes`]).
//! - Push: an item larger than the whole budget is `Full`; otherwise, until
//!   it fits: `Closed` if closed; else trim once (if that released anything,
//!   try again); else `Reject` → `Full`, `DropOldest` → evict one step (the
//!   oldest items of the head's chunk, at least one, until the new item
//!   would fit, then those that fit wholly in a 64th of the budget more).
//! - Trimming (a step): with at least one group registered, release the
//!   items below every group's cursor, up to the end of the head's
//!   chunk (`Queue::chunk_capacity` items). It runs when a read leaves a chunk (until nothing more
//!   goes), when a push finds the budget full, and at the start of
//!   `expire_now` (until nothing more goes).
//! - `expire_now`: after trimming, remove the longest prefix of items with
//!   `enqueue_time <= now - ttl` (chunk by chunk); returns how many.
//! - A group's cursor passed by a removal counts the passed items as missed
//!   with the removal's cause (trimming never passes an unread item).

#![allow(dead_code)]

use arbitrary::{Arbitrary, Unstructured};
use chunkq::{
    Clock, Consumer, Delivery, EventKind, Overflow, PushBatchError, PushError, Queue, Start,
    TryRecvError, Uuid,
};
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most items one `try_recv_many` claims at once (`MAX_CLAIM` in log/mod.rs).
pub const MAX_CLAIM: usize = 64;
/// Deliveries an interpreter keeps alive at most (older ones are dropped).
const MAX_HELD: usize = 48;

// ----- payloads that count their drops ---------------------------------------

/// Drop counts of every payload made in one run, indexed by token.
#[derive(Default)]
pub struct DropLog {
    /// `counts[token]`: how often that payload was dropped.
    counts: Mutex<Vec<u32>>,
    /// Drops so far (all tokens together).
    drops: AtomicUsize,
}

impl DropLog {
    /// The counts (never poisoned: nothing panics while holding them).
    fn lock(&self) -> MutexGuard<'_, Vec<u32>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh token (drop count 0).
    fn token(self: &Arc<Self>) -> Token {
        let mut c = self.lock();
        c.push(0);
        Token {
            id: c.len() - 1,
            log: self.clone(),
        }
    }

    /// The id the next token will get.
    fn next_id(&self) -> usize {
        self.lock().len()
    }

    /// Drop count of one token.
    fn count(&self, id: usize) -> u32 {
        self.lock()[id]
    }

    /// Panics if some payload was dropped more than once.
    fn assert_no_double_drop(&self) {
        let c = self.lock().clone();
        if let Some(i) = c.iter().position(|&n| n > 1) {
            panic!("payload {i} dropped {} times", c[i]);
        }
    }

    /// Flushes the epoch collector until every payload is dropped, then
    /// asserts each was dropped exactly once. The wait is bounded by time,
    /// not by a count: on a loaded machine another thread can sit pinned
    /// (descheduled) for a long while and hold the epoch back.
    fn assert_all_dropped_once(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut i = 0u32;
        while self.drops.load(Ordering::SeqCst) < self.next_id() && Instant::now() < deadline {
            crossbeam_epoch::pin().flush();
            i += 1;
            if i % 256 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        let c = self.lock().clone();
        for (i, &n) in c.iter().enumerate() {
            assert_eq!(n, 1, "payload {i} dropped {n} times (of {})", c.len());
        }
    }
}

/// A payload's identity in its run's [`DropLog`].
struct Token {
    /// Index into the log.
    id: usize,
    /// The log.
    log: Arc<DropLog>,
}

impl Drop for Token {
    fn drop(&mut self) {
        self.log.lock()[self.id] += 1;
        self.log.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// The payload: a tag (kept by clones, so a forwarded copy compares equal),
/// the heap size the queue's sizer reports for it, and a drop-counting token
/// (a clone gets a new one).
pub struct Payload {
    /// Unique per push; kept by clones.
    pub tag: u64,
    /// What the sizer returns.
    pub size: usize,
    /// Drop counter.
    token: Token,
}

impl Payload {
    /// A new payload registered in `log`.
    pub fn new(log: &Arc<DropLog>, tag: u64, size: usize) -> Self {
        Self {
            tag,
            size,
            token: log.token(),
        }
    }

    /// Whether this payload has not been dropped (a reader can still reach
    /// it, so it must not have been).
    fn alive(&self) -> bool {
        self.token.log.count(self.token.id) == 0
    }
}

impl Clone for Payload {
    fn clone(&self) -> Self {
        Self::new(&self.token.log, self.tag, self.size)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Payload(tag {}, size {}, token {})",
            self.tag, self.size, self.token.id
        )
    }
}

/// Nanoseconds since the Unix epoch.
fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// A queue of payloads sized by their `size` field, no sweeper thread.
fn build(
    name: &str,
    limit: usize,
    overflow: Overflow,
    ttl: Duration,
    clock: &Clock,
) -> Queue<Payload> {
    Queue::builder(name)
        .memory_limit(limit)
        .overflow(overflow)
        .ttl(ttl)
        .sweep_interval(None)
        .clock(clock.clone())
        .sizer(|p: &Payload| p.size)
        .build()
        .unwrap()
}

/// `(overhead, event)`: the fixed accounted bytes of an item beyond its
/// sizer result, and the bytes per history event of a forwarded item, both
/// measured from `memory_used()` differences on a probe queue.
pub fn sizes() -> (usize, usize) {
    static SIZES: OnceLock<(usize, usize)> = OnceLock::new();
    *SIZES.get_or_init(|| {
        let log = Arc::new(DropLog::default());
        let clock = Clock::manual();
        let a = build(
            "probe-a",
            1 << 30,
            Overflow::Reject,
            Duration::from_secs(60),
            &clock,
        );
        let b = build(
            "probe-b",
            1 << 30,
            Overflow::Reject,
            Duration::from_secs(60),
            &clock,
        );
        let ca = a.subscribe();
        assert_eq!(a.memory_used(), 0);
        a.push(Payload::new(&log, 0, 0)).unwrap();
        let overhead = a.memory_used();
        a.push(Payload::new(&log, 1, 1000)).unwrap();
        assert_eq!(
            a.memory_used(),
            2 * overhead + 1000,
            "the sizer result is added as is"
        );
        let d = ca.try_recv().unwrap();
        b.forward(&d).unwrap(); // history: Enqueued a, Dequeued a, Enqueued b
        let extra = b.memory_used() - overhead;
        assert_eq!(extra % 3, 0, "a forwarded item accounts per event");
        (overhead, extra / 3)
    })
}

/// Accounted bytes of an item with payload size `size` and `events` events.
pub fn accounted(size: usize, events: usize) -> usize {
    let (overhead, event) = sizes();
    let history = if events > 1 { events * event } else { 0 };
    overhead.saturating_add(size).saturating_add(history)
}

/// What a run did (summed over its queues), so tests can check that random
/// inputs reach every path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Operations decoded and applied.
    pub ops: u64,
    /// Pushes and forwards accepted.
    pub pushed: u64,
    /// Pushes refused as `Full`.
    pub full: u64,
    /// Pushes refused as `Closed`.
    pub closed: u64,
    /// Forwards accepted.
    pub forwarded: u64,
    /// Items delivered (to any group).
    pub delivered: u64,
    /// Items released after every group read them.
    pub trimmed: u64,
    /// Items expired.
    pub expired: u64,
    /// Items evicted.
    pub evicted: u64,
    /// The highest tail reached by one queue.
    pub max_tail: u64,
}

impl Stats {
    /// Adds `o` into `self` (`max_tail`: the larger).
    pub fn add(&mut self, o: &Stats) {
        self.ops += o.ops;
        self.pushed += o.pushed;
        self.full += o.full;
        self.closed += o.closed;
        self.forwarded += o.forwarded;
        self.delivered += o.delivered;
        self.trimmed += o.trimmed;
        self.expired += o.expired;
        self.evicted += o.evicted;
        self.max_tail = self.max_tail.max(o.max_tail);
    }
}

// ----- the reference model ----------------------------------------------------

/// An event as the model expects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MEvent {
    /// Enqueued or dequeued.
    pub kind: EventKind,
    /// The queue's name.
    pub queue: &'static str,
    /// When (ns since the Unix epoch).
    pub at: u64,
}

/// An item as the model expects it.
#[derive(Clone, Debug)]
pub struct MItem {
    /// Sequence number in its queue.
    pub seq: u64,
    /// Accounted bytes.
    pub bytes: usize,
    /// Enqueue time into this queue (ns).
    pub enq: u64,
    /// Creation time (ns), kept across forwards.
    pub created: u64,
    /// The payload's tag.
    pub tag: u64,
    /// The payload's sizer result.
    pub size: usize,
    /// The payload's drop token.
    pub token: usize,
    /// The item's UUID (known once the real push returned it).
    pub id: Uuid,
    /// The history, oldest first; the last is the enqueue here.
    pub events: Vec<MEvent>,
}

/// Why the model refused a push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail {
    /// Budget full now.
    Full,
    /// The item alone is larger than the whole budget.
    TooLarge,
    /// Queue closed.
    Closed,
}

/// Why the model delivered nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nothing {
    /// Nothing to read.
    Empty,
    /// Closed and drained.
    Closed,
}

/// Why items left the retained range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// Read by every group.
    Consumed,
    /// TTL.
    Expired,
    /// Budget, `DropOldest`.
    Evicted,
}

/// A consumer group in the model.
#[derive(Clone, Debug)]
pub struct MGroup {
    /// Its first sequence number.
    pub start: u64,
    /// Next sequence number it reads.
    pub cursor: u64,
    /// Items delivered.
    pub delivered: u64,
    /// Missed by expiry.
    pub expired: u64,
    /// Missed by eviction.
    pub evicted: u64,
    /// Live handles; 0 = deregistered.
    pub handles: usize,
    /// Sum of the notices received (expired, evicted).
    pub noticed: (u64, u64),
}

/// The reference model of one queue.
#[derive(Debug)]
pub struct Model {
    /// Budget in accounted bytes.
    pub limit: usize,
    /// Overflow policy.
    pub overflow: Overflow,
    /// TTL in ns.
    pub ttl: u64,
    /// Retained items, oldest first; `items[i].seq == head + i`.
    pub items: VecDeque<MItem>,
    /// Oldest retained sequence number.
    pub head: u64,
    /// Next sequence number.
    pub tail: u64,
    /// Whether closed.
    pub closed: bool,
    /// Accounted bytes of the retained items.
    pub used: usize,
    /// Every group ever registered (index = group number).
    pub groups: Vec<MGroup>,
    /// Items removed so far: trimmed, expired, evicted.
    pub removed: [u64; 3],
    /// Items per chunk (`Queue::chunk_capacity` of the queue it models).
    pub chunk: u64,
}

impl Model {
    /// An empty model.
    pub fn new(limit: usize, overflow: Overflow, ttl: Duration, chunk: usize) -> Self {
        Self {
            chunk: chunk as u64,
            limit,
            overflow,
            ttl: ttl.as_nanos() as u64,
            items: VecDeque::new(),
            head: 0,
            tail: 0,
            closed: false,
            used: 0,
            groups: Vec::new(),
            removed: [0; 3],
        }
    }

    /// Registered groups (`handles > 0`).
    fn registered(&self) -> impl Iterator<Item = &MGroup> {
        self.groups.iter().filter(|g| g.handles > 0)
    }

    /// Removes `[head, h1)` with `cause`, moving and charging every cursor it
    /// passes. Returns how many.
    fn remove_to(&mut self, h1: u64, cause: Cause) -> u64 {
        let n = h1 - self.head;
        for _ in 0..n {
            let it = self
                .items
                .pop_front()
                .expect("model: removed past the tail");
            self.used -= it.bytes;
        }
        for g in self.groups.iter_mut().filter(|g| g.handles > 0) {
            if g.cursor < h1 {
                let k = h1 - g.cursor;
                match cause {
                    Cause::Consumed => panic!("model: trimming passed an unread item"),
                    Cause::Expired => g.expired += k,
                    Cause::Evicted => g.evicted += k,
                }
                g.cursor = h1;
            }
        }
        self.head = h1;
        self.removed[cause as usize] += n;
        n
    }

    /// One past the last sequence number of the head's chunk.
    fn chunk_end(&self) -> u64 {
        (self.head / self.chunk + 1) * self.chunk
    }

    /// One trimming step.
    fn trim_step(&mut self) -> u64 {
        let Some(min) = self.registered().map(|g| g.cursor).min() else {
            return 0;
        };
        // Not past `tail`: a `Start::Seq` cursor may lie ahead of it.
        let min = min.min(self.chunk_end()).min(self.tail);
        if min > self.head {
            self.remove_to(min, Cause::Consumed)
        } else {
            0
        }
    }

    /// Trims until nothing more goes.
    fn trim_all(&mut self) {
        while self.trim_step() > 0 {}
    }

    /// One expiry step with `cutoff`.
    fn expire_step(&mut self, cutoff: u64) -> u64 {
        let end = self.chunk_end().min(self.tail);
        let mut s = self.head;
        while s < end && self.items[(s - self.head) as usize].enq <= cutoff {
            s += 1;
        }
        if s > self.head {
            self.remove_to(s, Cause::Expired)
        } else {
            0
        }
    }

    /// One eviction step making room for `need` bytes.
    fn evict_step(&mut self, need: usize) -> u64 {
        let end = self.chunk_end().min(self.tail);
        if self.head >= end {
            return 0;
        }
        let over = self.used.saturating_add(need).saturating_sub(self.limit);
        // The slack: a 64th of the budget more, item by item while each
        // fits wholly in it (see `Overflow::DropOldest`).
        let most = over.saturating_add(self.limit / 64);
        let (mut s, mut freed) = (self.head, 0usize);
        while s < end {
            let bytes = self.items[(s - self.head) as usize].bytes;
            if s > self.head && freed >= over && freed + bytes > most {
                break;
            }
            freed += bytes;
            s += 1;
        }
        self.remove_to(s, Cause::Evicted)
    }

    /// Pushes `item` (its `seq` is set here). Returns the sequence number.
    pub fn push(&mut self, mut item: MItem) -> Result<u64, Fail> {
        if item.bytes > self.limit {
            return Err(Fail::TooLarge);
        }
        loop {
            if self.closed {
                return Err(Fail::Closed);
            }
            if self.used + item.bytes <= self.limit {
                break;
            }
            if self.trim_step() > 0 {
                continue;
            }
            match self.overflow {
                Overflow::Reject => return Err(Fail::Full),
                Overflow::DropOldest => {
                    let n = self.evict_step(item.bytes);
                    assert!(n > 0, "model: a full budget with nothing to evict");
                }
                other => panic!("model: no overflow policy {other:?}"),
            }
        }
        item.seq = self.tail;
        self.tail += 1;
        self.used += item.bytes;
        self.items.push_back(item);
        Ok(self.tail - 1)
    }

    /// `try_recv_many(max)` for group `g`: claims up to `max` (at most
    /// [`MAX_CLAIM`], within the cursor's chunk) items; trims when the claim
    /// ends at a chunk's end. `max == 0` claims nothing and succeeds.
    pub fn recv_many(&mut self, g: usize, max: usize) -> Result<Vec<MItem>, Nothing> {
        if max == 0 {
            // Room for nothing: `Ok(0)`, or the end once closed and drained.
            let drained = self.groups[g].cursor.max(self.head) >= self.tail;
            return if self.closed && drained {
                Err(Nothing::Closed)
            } else {
                Ok(Vec::new())
            };
        }
        let c = self.groups[g].cursor;
        assert!(c >= self.head, "model: a cursor below head");
        if c >= self.tail {
            return Err(if self.closed {
                Nothing::Closed
            } else {
                Nothing::Empty
            });
        }
        let n = (max.min(MAX_CLAIM) as u64)
            .min((c / self.chunk + 1) * self.chunk - c)
            .min(self.tail - c);
        let from = (c - self.head) as usize;
        let items: Vec<MItem> = self.items.range(from..from + n as usize).cloned().collect();
        self.groups[g].cursor = c + n;
        self.groups[g].delivered += n;
        if (c + n) % self.chunk == 0 {
            self.trim_all();
        }
        Ok(items)
    }

    /// `drain_into` for group `g`: claims until nothing is left.
    pub fn drain(&mut self, g: usize) -> Result<Vec<MItem>, Nothing> {
        let mut all = Vec::new();
        loop {
            match self.recv_many(g, usize::MAX) {
                Ok(items) => all.extend(items),
                Err(Nothing::Closed) if all.is_empty() => return Err(Nothing::Closed),
                Err(_) => return Ok(all),
            }
        }
    }

    /// `push_batch`: one reservation for the whole batch when it fits at once
    /// (no trimming, no overflow policy), item by item otherwise. `Err` holds
    /// why and how many were pushed before the refusal.
    pub fn push_batch(&mut self, items: Vec<MItem>) -> Result<usize, (Fail, usize)> {
        let n = items.len();
        if n == 0 {
            return Ok(0);
        }
        let total = items.iter().fold(0usize, |a, i| a.saturating_add(i.bytes));
        if total <= self.limit && self.used + total <= self.limit {
            if self.closed {
                return Err((Fail::Closed, 0));
            }
            for mut item in items {
                item.seq = self.tail;
                self.tail += 1;
                self.used += item.bytes;
                self.items.push_back(item);
            }
            return Ok(n);
        }
        for (k, item) in items.into_iter().enumerate() {
            if let Err(f) = self.push(item) {
                return Err((f, k));
            }
        }
        Ok(n)
    }

    /// `expire_now` at time `now`: trims, then expires. Returns how many
    /// expired.
    pub fn sweep(&mut self, now: u64) -> u64 {
        self.trim_all();
        let cutoff = now.saturating_sub(self.ttl);
        let mut expired = 0;
        loop {
            match self.expire_step(cutoff) {
                0 => return expired,
                n => expired += n,
            }
        }
    }

    /// Registers a group; returns its number.
    pub fn subscribe(&mut self, start: Start) -> usize {
        let pos = match start {
            Start::Oldest => self.head,
            Start::Latest => self.tail.max(self.head),
            Start::Seq(n) => n.min((1 << 62) - 1).max(self.head),
            Start::Since(t) => {
                let t = nanos(t);
                self.items
                    .iter()
                    .find(|i| i.enq >= t)
                    .map_or(self.tail, |i| i.seq)
                    .max(self.head)
            }
            other => panic!("model: no start position {other:?}"),
        };
        self.groups.push(MGroup {
            start: pos,
            cursor: pos,
            delivered: 0,
            expired: 0,
            evicted: 0,
            handles: 1,
            noticed: (0, 0),
        });
        self.groups.len() - 1
    }

    /// `Consumer::lag` of group `g`.
    pub fn lag(&self, g: usize) -> u64 {
        // A `Start::Seq` cursor may lie ahead of `tail`: no lag.
        self.tail
            .saturating_sub(self.groups[g].cursor.max(self.head))
    }
}

// ----- one real queue beside its model ----------------------------------------

/// What a run shares between its lanes: the payload drop log and the clock.
pub struct Env {
    /// Drop counts of every payload of the run.
    pub drops: Arc<DropLog>,
    /// The queues' manual clock.
    pub clock: Clock,
    /// The model's reading of the clock (ns).
    pub now: u64,
    /// Next payload tag.
    next_tag: u64,
}

impl Env {
    /// A fresh environment with a manual clock.
    pub fn new() -> Self {
        let clock = Clock::manual();
        let now = nanos(clock.now());
        Self {
            drops: Arc::new(DropLog::default()),
            clock,
            now,
            next_tag: 0,
        }
    }

    /// Moves the clock (and the model's reading) forward.
    pub fn advance(&mut self, by: Duration) {
        self.clock.advance(by);
        self.now += by.as_nanos() as u64;
        assert_eq!(nanos(self.clock.now()), self.now, "manual clock reading");
    }
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks that `id` is a v7 UUID stamped with the millisecond of `at` (ns).
fn check_fresh_id(id: Uuid, at: u64) {
    assert_eq!(id.get_version_num(), 7, "fresh items get UUID v7");
    let (secs, ns) = id.get_timestamp().expect("v7 has a timestamp").to_unix();
    assert_eq!(
        secs * 1000 + u64::from(ns) / 1_000_000,
        at / 1_000_000,
        "UUID time"
    );
}

/// How [`Lane::read`] reads.
#[derive(Clone, Copy, Debug)]
pub enum Read {
    /// `try_recv`.
    One,
    /// `try_recv_many(max)`.
    Many(usize),
    /// `drain_into`.
    Drain,
}

/// A delivery kept alive, with what the model says about it.
pub struct Held {
    /// The real delivery.
    pub d: Delivery<Payload>,
    /// The model's item.
    pub item: MItem,
    /// Dequeue time (ns).
    pub at: u64,
    /// The queue it came from.
    pub queue: &'static str,
}

/// A real queue, its consumers, and its model.
pub struct Lane {
    /// The queue's name.
    pub name: &'static str,
    /// The queue (taken at the end of the run).
    q: Option<Queue<Payload>>,
    /// The model.
    pub m: Model,
    /// Consumer handles, each with its group number.
    handles: Vec<(usize, Consumer<Payload>)>,
    /// `Consumer::id` of each group.
    group_ids: Vec<Uuid>,
    /// Last sequence number each group received.
    last_seq: Vec<Option<u64>>,
    /// UUIDs of the items pushed fresh here.
    fresh_ids: HashSet<Uuid>,
    /// Pushes, refusals, forwards and deliveries so far.
    stats: Stats,
}

impl Lane {
    /// A lane with a fresh queue.
    pub fn new(
        name: &'static str,
        limit: usize,
        overflow: Overflow,
        ttl: Duration,
        env: &Env,
    ) -> Self {
        let q = build(name, limit, overflow, ttl, &env.clock);
        let chunk = q.chunk_capacity();
        Self {
            name,
            q: Some(q),
            m: Model::new(limit, overflow, ttl, chunk),
            handles: Vec::new(),
            group_ids: Vec::new(),
            last_seq: Vec::new(),
            fresh_ids: HashSet::new(),
            stats: Stats::default(),
        }
    }

    /// The real queue.
    pub fn queue(&self) -> &Queue<Payload> {
        self.q.as_ref().expect("lane finished")
    }

    /// Consumer handles alive.
    pub fn handle_count(&self) -> usize {
        self.handles.len()
    }

    /// Pushes a fresh payload of sizer result `size`.
    pub fn push(&mut self, env: &mut Env, size: usize) {
        let tag = env.next_tag;
        env.next_tag += 1;
        let payload = Payload::new(&env.drops, tag, size);
        let item = self.fresh_item(env, &payload);
        let real = self.queue().push(payload);
        let model = self.m.push(item);
        match (real, model) {
            (Ok(id), Ok(seq)) => {
                check_fresh_id(id, env.now);
                assert!(self.fresh_ids.insert(id), "duplicate UUID {id}");
                self.set_id(seq, id);
                self.stats.pushed += 1;
            }
            (real, model) => self.compare_failed_push(real, model, tag),
        }
    }

    /// `push_batch` of `n` fresh payloads of sizer result `size`.
    pub fn push_batch(&mut self, env: &mut Env, n: usize, size: usize) {
        let mut payloads = Vec::with_capacity(n);
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            let tag = env.next_tag;
            env.next_tag += 1;
            let p = Payload::new(&env.drops, tag, size);
            items.push(self.fresh_item(env, &p));
            payloads.push(p);
        }
        let tags: Vec<u64> = items.iter().map(|i| i.tag).collect();
        let real = self.queue().push_batch(payloads);
        let model = self.m.push_batch(items);
        let (fail, pushed, back) = match (real, model) {
            (Ok(k), Ok(m)) => {
                assert_eq!((k, m), (n, n), "{}: push_batch count", self.name);
                self.stats.pushed += n as u64;
                return;
            }
            (Err(PushBatchError::Full(v)), Err((Fail::Full, k))) => (Fail::Full, k, v),
            (Err(PushBatchError::TooLarge(v)), Err((Fail::TooLarge, k))) => (Fail::TooLarge, k, v),
            (Err(PushBatchError::Closed(v)), Err((Fail::Closed, k))) => (Fail::Closed, k, v),
            (real, model) => panic!("{}: push_batch: real {real:?}, model {model:?}", self.name),
        };
        assert_eq!(
            back.len(),
            n - pushed,
            "{}: push_batch gives back the rest",
            self.name
        );
        for (p, tag) in back.iter().zip(&tags[pushed..]) {
            assert_eq!(p.tag, *tag, "the refused payloads come back in order");
            assert!(p.alive());
        }
        self.stats.pushed += pushed as u64;
        match fail {
            // (Both count in `Stats::refused`.)
            Fail::Full | Fail::TooLarge => self.stats.full += 1,
            Fail::Closed => self.stats.closed += 1,
        }
    }

    /// The model item of a fresh push of `p` now (UUID unknown yet).
    fn fresh_item(&self, env: &Env, p: &Payload) -> MItem {
        MItem {
            seq: 0,
            bytes: accounted(p.size, 1),
            enq: env.now,
            created: env.now,
            tag: p.tag,
            size: p.size,
            token: p.token.id,
            id: Uuid::nil(),
            events: vec![MEvent {
                kind: EventKind::Enqueued,
                queue: self.name,
                at: env.now,
            }],
        }
    }

    /// Forwards a held delivery (from this or another queue) into this queue.
    pub fn forward(&mut self, env: &mut Env, held: &Held) {
        let mut events = held.item.events.clone();
        events.push(MEvent {
            kind: EventKind::Dequeued,
            queue: held.queue,
            at: held.at,
        });
        events.push(MEvent {
            kind: EventKind::Enqueued,
            queue: self.name,
            at: env.now,
        });
        let item = MItem {
            seq: 0,
            bytes: accounted(held.item.size, events.len()),
            enq: env.now,
            created: held.item.created,
            tag: held.item.tag,
            size: held.item.size,
            token: env.drops.next_id(), // the clone `forward` makes
            id: held.item.id,
            events,
        };
        let real = self.queue().forward(&held.d);
        let model = self.m.push(item);
        match (real, model) {
            (Ok(id), Ok(seq)) => {
                assert_eq!(id, held.item.id, "forward keeps the UUID");
                self.set_id(seq, id);
                self.stats.pushed += 1;
                self.stats.forwarded += 1;
            }
            (real, model) => self.compare_failed_push(real, model, held.item.tag),
        }
    }

    /// Records the UUID of the item the model just pushed as `seq`.
    fn set_id(&mut self, seq: u64, id: Uuid) {
        let last = self.m.items.back_mut().unwrap();
        assert_eq!(last.seq, seq);
        last.id = id;
    }

    /// Compares a refused (or mismatched) push.
    fn compare_failed_push(
        &mut self,
        real: Result<Uuid, PushError<Payload>>,
        model: Result<u64, Fail>,
        tag: u64,
    ) {
        let (kind, p) = match real {
            Ok(id) => panic!(
                "{}: push succeeded ({id}) but the model says {model:?}",
                self.name
            ),
            Err(PushError::Full(p)) => (Fail::Full, p),
            Err(PushError::TooLarge(p)) => (Fail::TooLarge, p),
            Err(PushError::Closed(p)) => (Fail::Closed, p),
            Err(e) => panic!("{}: push: an unknown refusal {e:?}", self.name),
        };
        assert_eq!(
            Err(kind),
            model.map(|_| ()),
            "{}: push result (model {model:?})",
            self.name
        );
        assert_eq!(p.tag, tag, "the error hands the payload back");
        assert!(p.alive());
        match kind {
            Fail::Full | Fail::TooLarge => self.stats.full += 1,
            Fail::Closed => self.stats.closed += 1,
        }
    }

    /// Subscribes a new group.
    pub fn subscribe(&mut self, latest: bool) {
        let start = if latest { Start::Latest } else { Start::Oldest };
        self.subscribe_from(start);
    }

    /// Subscribes a new group at `start`, checking where it started.
    pub fn subscribe_from(&mut self, start: Start) {
        let c = self.queue().subscribe_from(start);
        let g = self.m.subscribe(start);
        assert_eq!(
            c.start_seq(),
            self.m.groups[g].start,
            "{}: start_seq",
            self.name
        );
        assert!(
            !self.group_ids.contains(&c.id()),
            "consumer ids are distinct"
        );
        self.group_ids.push(c.id());
        self.last_seq.push(None);
        self.handles.push((g, c));
    }

    /// Clones handle `h` (a new member of its group).
    pub fn clone_handle(&mut self, h: usize) {
        if self.handles.is_empty() {
            return;
        }
        let (g, c) = &self.handles[h % self.handles.len()];
        let (g, c) = (*g, c.clone());
        assert_eq!(c.id(), self.group_ids[g], "clones share the id");
        self.m.groups[g].handles += 1;
        self.handles.push((g, c));
    }

    /// Drops handle `h` (the group deregisters with its last handle).
    pub fn drop_handle(&mut self, h: usize) {
        if self.handles.is_empty() {
            return;
        }
        let (g, c) = self.handles.remove(h % self.handles.len());
        drop(c);
        self.m.groups[g].handles -= 1;
    }

    /// `try_recv` on handle `h`, compared with the model; the delivery if any.
    pub fn recv(&mut self, env: &Env, h: usize) -> Option<Held> {
        self.read(env, h, Read::One).pop()
    }

    /// A read on handle `h` (`try_recv`, `try_recv_many` or `drain_into`),
    /// compared with the model; the deliveries.
    pub fn read(&mut self, env: &Env, h: usize, how: Read) -> Vec<Held> {
        if self.handles.is_empty() {
            return Vec::new();
        }
        let (g, c) = &self.handles[h % self.handles.len()];
        let g = *g;
        let mut out = Vec::new();
        let (real, model) = match how {
            Read::One => (
                c.try_recv().map(|d| out.push(d)).map(|()| 1),
                self.m.recv_many(g, 1),
            ),
            Read::Many(max) => (c.try_recv_many(&mut out, max), self.m.recv_many(g, max)),
            Read::Drain => (c.drain_into(&mut out), self.m.drain(g)),
        };
        match (real, model) {
            (Ok(n), Ok(items)) => {
                assert_eq!(n, out.len(), "{}: count returned", self.name);
                assert_eq!(
                    n,
                    items.len(),
                    "{}: group {g} {how:?} got {n} items, model {}",
                    self.name,
                    items.len()
                );
                let mut held = Vec::with_capacity(n);
                for (d, mut item) in out.into_iter().zip(items) {
                    self.check_delivery(env, g, &d, &item);
                    self.stats.delivered += 1;
                    if item.id.is_nil() {
                        // A batch push: the UUID is first seen here.
                        self.learn_id(env, &d, &mut item);
                    }
                    held.push(Held {
                        d,
                        item,
                        at: env.now,
                        queue: self.name,
                    });
                }
                held
            }
            (Err(TryRecvError::Empty), Err(Nothing::Empty))
            | (Err(TryRecvError::Closed), Err(Nothing::Closed)) => Vec::new(),
            (real, model) => panic!(
                "{}: group {g} {how:?}: real {real:?}, model {:?}",
                self.name,
                model.map(|i| i.iter().map(|i| i.seq).collect::<Vec<_>>())
            ),
        }
    }

    /// Records the UUID of a batch-pushed item at its first delivery.
    fn learn_id(&mut self, env: &Env, d: &Delivery<Payload>, item: &mut MItem) {
        check_fresh_id(d.id(), item.enq);
        assert!(self.fresh_ids.insert(d.id()), "duplicate UUID {}", d.id());
        let _ = env;
        item.id = d.id();
        if item.seq >= self.m.head {
            self.m.items[(item.seq - self.m.head) as usize].id = d.id();
        }
    }

    /// Checks a delivery against the model's item.
    fn check_delivery(&mut self, env: &Env, g: usize, d: &Delivery<Payload>, item: &MItem) {
        let name = self.name;
        assert_eq!(d.seq(), item.seq, "{name}: group {g} delivered seq");
        if let Some(last) = self.last_seq[g] {
            assert!(
                d.seq() > last,
                "{name}: group {g} got seq {} after {last}",
                d.seq()
            );
        }
        self.last_seq[g] = Some(d.seq());
        if !item.id.is_nil() {
            assert_eq!(d.id(), item.id, "{name}: UUID of seq {}", item.seq);
        }
        assert_eq!(
            d.payload().tag,
            item.tag,
            "{name}: payload of seq {}",
            item.seq
        );
        assert_eq!(d.payload().size, item.size);
        assert_eq!(
            d.payload().token.id,
            item.token,
            "{name}: the payload instance pushed"
        );
        assert!(d.payload().alive(), "{name}: delivered a dropped payload");
        assert_eq!(nanos(d.created()), item.created, "{name}: created");
        assert_eq!(nanos(d.enqueued()), item.enq, "{name}: enqueued");
        assert_eq!(nanos(d.dequeued_at()), env.now, "{name}: dequeued_at");
        assert_eq!(d.consumer_id(), self.group_ids[g]);
        assert_eq!(d.queue(), name);
        let events = d.events();
        assert_eq!(
            events.len(),
            item.events.len(),
            "{name}: history length of seq {}",
            item.seq
        );
        let mut prev = 0;
        for (i, (e, m)) in events.iter().zip(&item.events).enumerate() {
            let at = nanos(e.at());
            assert_eq!(
                (e.kind(), e.queue(), at),
                (m.kind, m.queue, m.at),
                "{name}: event {i}"
            );
            assert!(at >= prev, "{name}: history timestamps go back");
            prev = at;
            // The history alternates enqueue / dequeue, each dequeue from the
            // queue of the enqueue before it.
            let expect = if i % 2 == 0 {
                EventKind::Enqueued
            } else {
                EventKind::Dequeued
            };
            assert_eq!(e.kind(), expect, "{name}: event {i} kind");
            if i % 2 == 1 {
                assert_eq!(e.queue(), events[i - 1].queue());
            }
        }
        let last = events.last().unwrap();
        assert_eq!((last.kind(), last.queue()), (EventKind::Enqueued, name));
        assert!(nanos(d.dequeued_at()) >= prev);
        assert_eq!(d.dequeue_event().kind(), EventKind::Dequeued);
        assert_eq!(d.dequeue_event().queue(), name);
    }

    /// `expire_now`, compared with the model.
    pub fn expire_now(&mut self, env: &Env) {
        let real = self.queue().expire_now() as u64;
        let model = self.m.sweep(env.now);
        assert_eq!(real, model, "{}: expire_now count", self.name);
    }

    /// Closes the queue.
    pub fn close(&mut self) {
        self.queue().close();
        self.m.closed = true;
    }

    /// What this lane did so far.
    pub fn stats(&self) -> Stats {
        let [trimmed, expired, evicted] = self.m.removed;
        Stats {
            trimmed,
            expired,
            evicted,
            max_tail: self.m.tail,
            ..self.stats
        }
    }

    /// Compares the whole observable state with the model.
    pub fn check(&mut self) {
        let name = self.name;
        let q = self.q.as_ref().unwrap();
        let m = &mut self.m;
        assert_eq!(q.retained() as u64, m.tail - m.head, "{name}: retained");
        // `len`: what the slowest registered group has not read (a cursor
        // left below `head` counts from `head`); everything retained when
        // no group is registered.
        let from = m
            .registered()
            .map(|g| g.cursor.max(m.head))
            .min()
            .unwrap_or(m.head);
        // (A `Start::Seq` past `tail` puts a cursor ahead of it.)
        assert_eq!(q.len() as u64, m.tail.saturating_sub(from), "{name}: len");
        assert_eq!(q.is_empty(), m.tail <= from, "{name}: is_empty");
        assert_eq!(q.memory_used(), m.used, "{name}: memory_used");
        assert!(
            q.memory_used() <= q.memory_limit(),
            "{name}: over the limit"
        );
        assert_eq!(
            q.consumer_count(),
            m.registered().count(),
            "{name}: consumer_count"
        );
        assert_eq!(q.is_closed(), m.closed);
        let mut seen = vec![false; m.groups.len()];
        for (g, c) in &self.handles {
            let g = *g;
            if std::mem::replace(&mut seen[g], true) {
                continue;
            }
            let lag = m.lag(g);
            let mg = &mut m.groups[g];
            let missed = c.missed();
            assert_eq!(
                (missed.expired, missed.evicted),
                (mg.expired, mg.evicted),
                "{name}: group {g} missed"
            );
            assert_eq!(c.lag() as u64, lag, "{name}: group {g} lag");
            for n in c.notifications().try_iter() {
                assert!(n.total() > 0, "empty notice");
                mg.noticed.0 += n.expired;
                mg.noticed.1 += n.evicted;
            }
            assert_eq!(
                mg.noticed,
                (mg.expired, mg.evicted),
                "{name}: group {g} notices"
            );
            assert_eq!(
                mg.delivered + mg.expired + mg.evicted + lag,
                // A `Start::Seq` group may start ahead of `tail`.
                m.tail.saturating_sub(mg.start),
                "{name}: group {g} accounting"
            );
        }
        // Every group with a handle is registered, and no other.
        assert_eq!(seen.iter().filter(|&&s| s).count(), m.registered().count());
    }

    /// Closes, drains every group (checking each delivery), checks the final
    /// accounting, that every reachable payload is alive, then drops the
    /// consumers and the queue.
    pub fn finish(&mut self, env: &mut Env) {
        self.close();
        for h in 0..self.handles.len() {
            while self.recv(env, h).is_some() {}
            let (g, c) = &self.handles[h];
            assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Closed);
            assert_eq!(c.lag(), 0);
            let mg = &self.m.groups[*g];
            assert_eq!(
                mg.delivered + mg.expired + mg.evicted,
                self.m.tail.saturating_sub(mg.start),
                "{}: group {g}: delivered + missed == pushed since its start",
                self.name
            );
        }
        self.check();
        self.push(env, 0); // refused: closed (or too big)
        assert_eq!(self.m.tail, self.queue().retained() as u64 + self.m.head);
        for item in &self.m.items {
            assert_eq!(
                env.drops.count(item.token),
                0,
                "{}: retained seq {} dropped",
                self.name,
                item.seq
            );
        }
        self.handles.clear();
        self.q = None;
    }
}

/// Drops everything still held, then checks that every payload of the run
/// was dropped exactly once.
pub fn finish_drops(env: &Env, held: Vec<Held>) {
    for h in &held {
        assert!(
            h.d.payload().alive(),
            "a held delivery's payload was dropped"
        );
    }
    drop(held);
    env.drops.assert_no_double_drop();
    env.drops.assert_all_dropped_once();
}

/// Keeps `h` alive, dropping the oldest held delivery if there are too many.
fn keep(held: &mut Vec<Held>, h: Held) {
    if held.len() >= MAX_HELD {
        held.remove(0);
    }
    held.push(h);
}

// ----- the operations target ---------------------------------------------------

/// A payload size as the fuzzer picks it: mostly small, sometimes larger than
/// any budget.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Size(pub u16);

impl Size {
    /// The sizer result.
    pub fn bytes(self) -> usize {
        if self.0 >= 0xfe00 {
            (self.0 as usize) << 4
        } else {
            self.0 as usize % 384
        }
    }
}

/// One operation, applied to both queues of a run.
#[derive(Arbitrary, Clone, Debug)]
pub enum Op {
    /// Push one payload.
    Push(Size),
    /// Push `n % 32 + 1` payloads of one size (small counts keep fuzz
    /// executions fast; many of them still cross chunk boundaries).
    PushMany(u8, Size),
    /// A new independent consumer (`true`: `Start::Latest`).
    Subscribe(bool),
    /// Clone a consumer handle.
    CloneConsumer(u8),
    /// Drop a consumer handle.
    DropConsumer(u8),
    /// `try_recv` on a handle, keeping the delivery alive if `true`.
    Recv(u8, bool),
    /// `try_recv` up to `n % 32 + 1` times on a handle.
    RecvMany(u8, u8),
    /// `push_batch` of `n % 128` payloads of one size.
    PushBatch(u8, Size),
    /// `try_recv_many(max)` on a handle.
    RecvBatch(u8, u8),
    /// `drain_into` on a handle.
    Drain(u8),
    /// Advance the manual clock by this many milliseconds.
    Advance(u8),
    /// `expire_now`.
    ExpireNow,
    /// Close the queue (only when the byte is 0, so random inputs close
    /// rarely).
    Close(u8),
    /// Drop a kept delivery.
    DropHeld(u8),
    /// Forward a kept delivery into its own queue.
    Forward(u8),
    /// A new independent consumer at `Start::Seq(x % (tail + 8))` (`false`:
    /// positions gone, retained and not pushed yet) or at
    /// `Start::Since(now - x ms)` (`true`).
    SubscribeAt(u16, bool),
}

/// The settings of a run.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct OpsConfig {
    /// Picks the budget (mostly a few items, sometimes over a chunk's worth).
    pub limit: u16,
    /// TTL in milliseconds, minus one.
    pub ttl_ms: u8,
}

impl OpsConfig {
    /// The memory budget.
    pub fn limit(self) -> usize {
        if self.limit % 4 == 0 {
            200_000 + self.limit as usize * 4
        } else {
            1 + (self.limit as usize % 2500) * 2
        }
    }

    /// The TTL.
    pub fn ttl(self) -> Duration {
        Duration::from_millis(u64::from(self.ttl_ms) + 1)
    }
}

/// A whole input of the `ops` target.
#[derive(Arbitrary, Clone, Debug)]
pub struct OpsInput {
    /// Settings.
    pub config: OpsConfig,
    /// Operations, in order.
    pub ops: Vec<Op>,
}

/// Decodes `data` and runs it (the `ops` fuzz target).
pub fn run_ops(data: &[u8]) -> Stats {
    let mut u = Unstructured::new(data);
    match OpsConfig::arbitrary(&mut u) {
        Ok(config) => run_ops_input(&OpsInput {
            config,
            ops: decode(u),
        }),
        Err(_) => Stats::default(),
    }
}

/// Decodes operations until the bytes run out (one after another, rather
/// than `Vec::arbitrary`'s length prefix or continuation bits, so every byte
/// of a fuzz input counts and random bytes give long sequences).
pub fn decode<'a, T: Arbitrary<'a>>(mut u: Unstructured<'a>) -> Vec<T> {
    let mut ops = Vec::new();
    while !u.is_empty() {
        match T::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}

/// Runs `input` on a `Reject` queue and a `DropOldest` queue, each beside
/// its model, comparing after every operation; then the final checks.
pub fn run_ops_input(input: &OpsInput) -> Stats {
    let mut env = Env::new();
    let (limit, ttl) = (input.config.limit(), input.config.ttl());
    let mut lanes = [
        (
            Lane::new("ops-reject", limit, Overflow::Reject, ttl, &env),
            Vec::new(),
        ),
        (
            Lane::new("ops-drop-oldest", limit, Overflow::DropOldest, ttl, &env),
            Vec::new(),
        ),
    ];
    for op in &input.ops {
        if let Op::Advance(ms) = op {
            env.advance(Duration::from_millis(u64::from(*ms)));
        }
        for (lane, held) in lanes.iter_mut() {
            apply(&mut env, lane, held, op);
            lane.check();
        }
    }
    let mut all_held = Vec::new();
    let mut stats = Stats {
        ops: input.ops.len() as u64,
        ..Stats::default()
    };
    for (lane, held) in lanes.iter_mut() {
        lane.finish(&mut env);
        stats.add(&lane.stats());
        all_held.append(held);
    }
    drop(lanes);
    finish_drops(&env, all_held);
    stats
}

/// Applies one operation to one lane.
fn apply(env: &mut Env, lane: &mut Lane, held: &mut Vec<Held>, op: &Op) {
    match *op {
        Op::Push(size) => lane.push(env, size.bytes()),
        Op::PushMany(n, size) => {
            for _ in 0..=n % 32 {
                lane.push(env, size.bytes());
            }
        }
        Op::PushBatch(n, size) => lane.push_batch(env, usize::from(n % 128), size.bytes()),
        Op::RecvBatch(h, max) => {
            lane.read(env, h.into(), Read::Many(max.into()));
        }
        Op::Drain(h) => {
            lane.read(env, h.into(), Read::Drain);
        }
        Op::Subscribe(latest) => lane.subscribe(latest),
        Op::SubscribeAt(x, since) => {
            let start = if since {
                Start::Since(env.clock.now() - Duration::from_millis(u64::from(x)))
            } else {
                Start::Seq(u64::from(x) % (lane.m.tail + 8))
            };
            lane.subscribe_from(start);
        }
        Op::CloneConsumer(h) => lane.clone_handle(h.into()),
        Op::DropConsumer(h) => lane.drop_handle(h.into()),
        Op::Recv(h, k) => match lane.recv(env, h.into()) {
            Some(d) if k => keep(held, d),
            _ => {}
        },
        Op::RecvMany(h, n) => {
            for _ in 0..=n % 32 {
                if lane.recv(env, h.into()).is_none() {
                    break;
                }
            }
        }
        Op::Advance(_) => {} // the clock is shared; moved once by the caller
        Op::ExpireNow => lane.expire_now(env),
        Op::Close(0) => lane.close(),
        Op::Close(_) => {}
        Op::DropHeld(i) => {
            if !held.is_empty() {
                held.remove(usize::from(i) % held.len());
            }
        }
        Op::Forward(i) => {
            if !held.is_empty() {
                let h = held.swap_remove(usize::from(i) % held.len());
                lane.forward(env, &h);
                held.push(h);
            }
        }
    }
}

// ----- the envelope target ------------------------------------------------------

/// Queues in an envelope run.
const ENV_QUEUES: [&str; 3] = ["env-a", "env-b", "env-c"];

/// One operation of the envelope target.
#[derive(Arbitrary, Clone, Debug)]
pub enum EnvOp {
    /// Push a fresh payload into a queue.
    Push(u8, u8),
    /// Receive from one queue and forward the delivery into another.
    Forward(u8, u8),
    /// Forward a kept delivery (again) into a queue.
    ForwardHeld(u8, u8),
    /// Receive from a queue (and drop the delivery).
    Recv(u8),
    /// Advance the clock by this many milliseconds.
    Advance(u8),
    /// `expire_now` on a queue.
    ExpireNow(u8),
    /// Drop a kept delivery.
    DropHeld(u8),
}

/// A whole input of the `envelope` target.
#[derive(Arbitrary, Clone, Debug)]
pub struct EnvInput {
    /// Budget selector, per queue: low bit picks `DropOldest`.
    pub limits: [u16; 3],
    /// TTL in milliseconds, minus one.
    pub ttl_ms: u8,
    /// Operations.
    pub ops: Vec<EnvOp>,
}

/// Decodes `data` and runs it (the `envelope` fuzz target).
pub fn run_envelope(data: &[u8]) -> Stats {
    let mut u = Unstructured::new(data);
    match (<[u16; 3]>::arbitrary(&mut u), u8::arbitrary(&mut u)) {
        (Ok(limits), Ok(ttl_ms)) => run_envelope_input(&EnvInput {
            limits,
            ttl_ms,
            ops: decode(u),
        }),
        _ => Stats::default(),
    }
}

/// Runs forward chains across three queues (one consumer each), each beside
/// its model: UUID and creation time kept, history = previous events +
/// Dequeued(old) + Enqueued(new), timestamps non-decreasing, payload equal,
/// exact accounting of the growing histories.
pub fn run_envelope_input(input: &EnvInput) -> Stats {
    let mut env = Env::new();
    let ttl = Duration::from_millis(u64::from(input.ttl_ms) + 1);
    let mut lanes: Vec<Lane> = ENV_QUEUES
        .iter()
        .zip(input.limits)
        .map(|(name, l)| {
            let overflow = if l & 1 == 1 {
                Overflow::DropOldest
            } else {
                Overflow::Reject
            };
            let mut lane = Lane::new(name, 400 + usize::from(l >> 1) * 2, overflow, ttl, &env);
            lane.subscribe(false);
            lane
        })
        .collect();
    let n = lanes.len();
    let mut held: Vec<Held> = Vec::new();
    for op in &input.ops {
        match *op {
            EnvOp::Push(q, size) => {
                let q = usize::from(q) % n;
                lanes[q].push(&mut env, usize::from(size));
            }
            EnvOp::Forward(from, to) => {
                if let Some(h) = lanes[usize::from(from) % n].recv(&env, 0) {
                    lanes[usize::from(to) % n].forward(&mut env, &h);
                    keep(&mut held, h);
                }
            }
            EnvOp::ForwardHeld(i, to) => {
                if !held.is_empty() {
                    let h = &held[usize::from(i) % held.len()];
                    lanes[usize::from(to) % n].forward(&mut env, h);
                }
            }
            EnvOp::Recv(q) => {
                lanes[usize::from(q) % n].recv(&env, 0);
            }
            EnvOp::Advance(ms) => env.advance(Duration::from_millis(u64::from(ms))),
            EnvOp::ExpireNow(q) => lanes[usize::from(q) % n].expire_now(&env),
            EnvOp::DropHeld(i) => {
                if !held.is_empty() {
                    held.remove(usize::from(i) % held.len());
                }
            }
        }
        for lane in lanes.iter_mut() {
            lane.check();
        }
    }
    let mut stats = Stats {
        ops: input.ops.len() as u64,
        ..Stats::default()
    };
    for lane in lanes.iter_mut() {
        lane.finish(&mut env);
        stats.add(&lane.stats());
    }
    drop(lanes);
    finish_drops(&env, held);
    stats
}
