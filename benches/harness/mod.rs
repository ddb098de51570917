//! Shared throughput harness for the criterion benches (`benches/*.rs`) and
//! the scaling runner (`examples/scaling.rs`).
//!
//! One *run* = `P` producer threads each push `n` items (`u64`: producer
//! index in the high bits, the producer's counter in the low 40 bits) while
//! `C` consumer threads read. Every run checks what it delivered and panics
//! on a wrong answer, so a fast wrong implementation cannot pass:
//! - broadcast: every consumer sees every producer's items exactly once, in
//!   push order, with no gap (`BroadcastCheck`);
//! - group: every consumer sees each producer's items in increasing order;
//!   over all consumers the count and a sum of mixed values equal those of
//!   the pushed set (so a loss, a duplicate or a corrupted value fails;
//!   `GroupCheck`).
//!
//! Batch variants sit in the same scenario beside the single-item ones
//! (`Imp::is_batch`): `chunkq-batch` pushes with `Queue::push_batch` of
//! [`BATCH`] items and reads with `Consumer::try_recv_many(.., BATCH)`; a
//! peer gets a batch row only where it has a batch API of its own: kanal
//! (`Receiver::drain_into`, sends one by one), crossbeam-channel (`try_iter`
//! drain, sends one by one; per consumer in the broadcast fan-out) and the
//! disruptor (`try_batch_publish` of [`BATCH`]; its pollers always read
//! every available event as one batch, in the single row too). SegQueue,
//! concurrent-queue, flume's single rows, tokio broadcast and bus have no
//! batch row (SegQueue, tokio broadcast and bus have no batch API).
//! Batch runs are verified exactly like the single ones.
//!
//! `chunkq-prefetch` (group only, not a batch row: producers push one by
//! one and consumers receive one by one) reads through
//! `Consumer::prefetch(PREFETCH)`: each member claims up to [`PREFETCH`]
//! items at once and serves them from its handle (issue 17's prefetch
//! lever). It is a chunkq row, so it is never the best peer.
//!
//! All implementations share the same consumer policy on "empty"
//! (`crossbeam_utils::Backoff::snooze`: a few spins, then `yield_now`) and the
//! same producer policy on "full" for the bounded peers, so no one is favoured
//! on an oversubscribed machine. The clock starts when every thread has
//! passed a start barrier and stops when the last consumer has finished.

use crossbeam_utils::Backoff;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Bits of a value that hold the producer's counter.
pub const INDEX_BITS: u32 = 40;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;

/// The value producer `p` pushes as its `i`-th item.
pub fn encode(p: usize, i: u64) -> u64 {
    ((p as u64) << INDEX_BITS) | i
}

/// (producer, index) of a value.
pub fn decode(v: u64) -> (usize, u64) {
    ((v >> INDEX_BITS) as usize, v & INDEX_MASK)
}

/// splitmix64 finaliser: a value's contribution to `GroupCheck`'s sum.
pub fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What one broadcast consumer must see: all of every producer's items, in
/// order, without gaps.
pub struct BroadcastCheck {
    next: Vec<u64>,
}

impl BroadcastCheck {
    pub fn new(producers: usize) -> Self {
        Self {
            next: vec![0; producers],
        }
    }

    #[inline]
    pub fn see(&mut self, v: u64) {
        let (p, i) = decode(v);
        assert!(
            p < self.next.len(),
            "value {v:#x} from unknown producer {p}"
        );
        assert_eq!(
            i, self.next[p],
            "broadcast: producer {p}'s item {i} arrived where {} was due",
            self.next[p]
        );
        self.next[p] += 1;
    }

    /// Panics unless every producer's `n` items were seen.
    pub fn finish(&self, n: u64) {
        for (p, &got) in self.next.iter().enumerate() {
            assert_eq!(
                got, n,
                "broadcast: consumer got {got} of producer {p}'s {n} items"
            );
        }
    }
}

/// What one member of a competing group saw.
pub struct GroupCheck {
    next_min: Vec<u64>,
    count: u64,
    sum: u64,
}

impl GroupCheck {
    pub fn new(producers: usize) -> Self {
        Self {
            next_min: vec![0; producers],
            count: 0,
            sum: 0,
        }
    }

    #[inline]
    pub fn see(&mut self, v: u64) {
        let (p, i) = decode(v);
        assert!(
            p < self.next_min.len(),
            "value {v:#x} from unknown producer {p}"
        );
        assert!(
            i >= self.next_min[p],
            "group: producer {p}'s item {i} after its item {}",
            self.next_min[p] - 1
        );
        self.next_min[p] = i + 1;
        self.count += 1;
        self.sum = self.sum.wrapping_add(mix(v));
    }

    /// Panics unless the members together saw each of the `p * n` items
    /// exactly once.
    pub fn finish_all(members: &[GroupCheck], producers: usize, n: u64) {
        let count: u64 = members.iter().map(|m| m.count).sum();
        let sum = members.iter().fold(0u64, |s, m| s.wrapping_add(m.sum));
        let mut want = 0u64;
        for p in 0..producers {
            for i in 0..n {
                want = want.wrapping_add(mix(encode(p, i)));
            }
        }
        assert_eq!(count, producers as u64 * n, "group: delivery count");
        assert_eq!(
            sum, want,
            "group: delivered set differs from the pushed set"
        );
    }
}

/// Broadcast (every consumer gets every item) or group (consumers compete).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Broadcast,
    Group,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Broadcast => "broadcast",
            Scenario::Group => "group",
        }
    }

    /// Every implementation of this scenario, chunkq first.
    pub fn imps(self) -> &'static [Imp] {
        match self {
            Scenario::Broadcast => &[
                Imp::ChunkqBroadcast,
                Imp::ChunkqBroadcastBatch,
                Imp::Disruptor,
                Imp::DisruptorBatch,
                Imp::TokioBroadcast,
                Imp::Bus,
                Imp::CrossbeamFanout,
                Imp::CrossbeamFanoutBatch,
            ],
            Scenario::Group => &[
                Imp::ChunkqGroup,
                Imp::ChunkqGroupBatch,
                Imp::ChunkqGroupPrefetch,
                Imp::Kanal,
                Imp::KanalBatch,
                Imp::SegQueue,
                Imp::CrossbeamChannel,
                Imp::CrossbeamChannelBatch,
                Imp::ConcurrentQueue,
                Imp::Flume,
            ],
        }
    }

    /// Deliveries in a run: broadcast counts one per item per consumer.
    pub fn deliveries(self, producers: usize, consumers: usize, n: u64) -> u64 {
        let items = producers as u64 * n;
        match self {
            Scenario::Broadcast => items * consumers as u64,
            Scenario::Group => items,
        }
    }
}

/// One implementation of one scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imp {
    /// chunkq, `C` independent consumers (`subscribe()` each).
    ChunkqBroadcast,
    /// disruptor 4 (multi-producer builder, one event poller per consumer).
    Disruptor,
    /// tokio::sync::broadcast, capacity >= items per run (never lags).
    TokioBroadcast,
    /// bus (single producer only).
    Bus,
    /// One crossbeam-channel (unbounded) per consumer; producers send to each.
    CrossbeamFanout,
    /// chunkq, `C` clones of one consumer.
    ChunkqGroup,
    /// kanal unbounded.
    Kanal,
    /// crossbeam-queue SegQueue.
    SegQueue,
    /// crossbeam-channel unbounded.
    CrossbeamChannel,
    /// concurrent-queue unbounded.
    ConcurrentQueue,
    /// flume unbounded.
    Flume,
    /// chunkq broadcast, `push_batch` of `BATCH`, `try_recv_many(.., BATCH)`.
    ChunkqBroadcastBatch,
    /// chunkq group, `push_batch` of `BATCH`, `try_recv_many(.., BATCH)`.
    ChunkqGroupBatch,
    /// chunkq group, `push` one by one, members read through
    /// `Consumer::prefetch(PREFETCH)` one by one.
    ChunkqGroupPrefetch,
    /// disruptor, `try_batch_publish` of `BATCH` (pollers batch natively).
    DisruptorBatch,
    /// crossbeam-channel fan-out, consumers drain with `try_iter`.
    CrossbeamFanoutBatch,
    /// kanal unbounded, consumers `drain_into` a Vec; sends one by one.
    KanalBatch,
    /// crossbeam-channel unbounded, consumers drain with `try_iter`.
    CrossbeamChannelBatch,
}

/// Items per batch for the batch variants (chunkq's `MAX_CLAIM`).
pub const BATCH: usize = 64;

/// Prefetch depth of `chunkq-prefetch` (one claim of up to 64 within a chunk).
pub const PREFETCH: usize = 64;

impl Imp {
    pub fn name(self) -> &'static str {
        match self {
            Imp::ChunkqBroadcast | Imp::ChunkqGroup => "chunkq",
            Imp::Disruptor => "disruptor",
            Imp::TokioBroadcast => "tokio-broadcast",
            Imp::Bus => "bus",
            Imp::CrossbeamFanout => "crossbeam-channel-fanout",
            Imp::Kanal => "kanal",
            Imp::SegQueue => "crossbeam-segqueue",
            Imp::CrossbeamChannel => "crossbeam-channel",
            Imp::ConcurrentQueue => "concurrent-queue",
            Imp::Flume => "flume",
            Imp::ChunkqBroadcastBatch | Imp::ChunkqGroupBatch => "chunkq-batch",
            Imp::ChunkqGroupPrefetch => "chunkq-prefetch",
            Imp::DisruptorBatch => "disruptor-batch",
            Imp::CrossbeamFanoutBatch => "crossbeam-channel-fanout-batch",
            Imp::KanalBatch => "kanal-batch",
            Imp::CrossbeamChannelBatch => "crossbeam-channel-batch",
        }
    }

    pub fn is_chunkq(self) -> bool {
        matches!(
            self,
            Imp::ChunkqBroadcast
                | Imp::ChunkqGroup
                | Imp::ChunkqBroadcastBatch
                | Imp::ChunkqGroupBatch
                | Imp::ChunkqGroupPrefetch
        )
    }

    /// Whether this is a batch variant (see the module docs).
    pub fn is_batch(self) -> bool {
        matches!(
            self,
            Imp::ChunkqBroadcastBatch
                | Imp::ChunkqGroupBatch
                | Imp::DisruptorBatch
                | Imp::CrossbeamFanoutBatch
                | Imp::KanalBatch
                | Imp::CrossbeamChannelBatch
        )
    }

    /// Whether this implementation can run `producers` producers.
    pub fn supports(self, producers: usize, _consumers: usize) -> bool {
        !(self == Imp::Bus && producers != 1)
    }

    /// One run: `producers` threads push `n` items each, `consumers` read;
    /// returns the time from the start barrier to the last consumer's end.
    /// Panics if the deliveries are wrong.
    pub fn run(self, producers: usize, consumers: usize, n: u64) -> Duration {
        assert!(producers >= 1 && consumers >= 1 && n >= 1);
        assert!(n <= INDEX_MASK);
        match self {
            Imp::ChunkqBroadcast => chunkq_run(producers, consumers, n, false),
            Imp::ChunkqGroup => chunkq_run(producers, consumers, n, true),
            Imp::ChunkqBroadcastBatch => chunkq_batch_run(producers, consumers, n, false),
            Imp::ChunkqGroupBatch => chunkq_batch_run(producers, consumers, n, true),
            Imp::ChunkqGroupPrefetch => chunkq_prefetch_run(producers, consumers, n),
            Imp::Disruptor => disruptor_run(producers, consumers, n, false),
            Imp::DisruptorBatch => disruptor_run(producers, consumers, n, true),
            Imp::CrossbeamFanoutBatch => fanout_batch_run(producers, consumers, n),
            Imp::KanalBatch => {
                let (tx, rx) = kanal::unbounded::<u64>();
                channel_group_batch(
                    producers,
                    consumers,
                    n,
                    tx,
                    rx,
                    |tx, v| tx.send(v).expect("kanal send"),
                    |rx, buf| {
                        // `drain_into` reports `Closed` only once every
                        // receiver is gone; the end of input is "nothing
                        // drained after the senders had disconnected".
                        let disconnected = rx.is_disconnected();
                        rx.drain_into(buf).expect("kanal drain_into");
                        match (buf.is_empty(), disconnected) {
                            (false, _) => Batch::Got,
                            (true, false) => Batch::Empty,
                            (true, true) => Batch::Done,
                        }
                    },
                )
            }
            Imp::CrossbeamChannelBatch => {
                let (tx, rx) = crossbeam_channel::unbounded::<u64>();
                channel_group_batch(
                    producers,
                    consumers,
                    n,
                    tx,
                    rx,
                    |tx, v| tx.send(v).expect("crossbeam send"),
                    crossbeam_try_iter,
                )
            }
            Imp::TokioBroadcast => tokio_run(producers, consumers, n),
            Imp::Bus => bus_run(producers, consumers, n),
            Imp::CrossbeamFanout => fanout_run(producers, consumers, n),
            Imp::Kanal => {
                let (tx, rx) = kanal::unbounded::<u64>();
                channel_group(
                    producers,
                    consumers,
                    n,
                    tx,
                    rx,
                    |tx, v| tx.send(v).expect("kanal send"),
                    |rx| match rx.try_recv() {
                        Ok(Some(v)) => Step::Item(v),
                        Ok(None) => Step::Empty,
                        Err(_) => Step::Done,
                    },
                )
            }
            Imp::CrossbeamChannel => {
                let (tx, rx) = crossbeam_channel::unbounded::<u64>();
                channel_group(
                    producers,
                    consumers,
                    n,
                    tx,
                    rx,
                    |tx, v| tx.send(v).expect("crossbeam send"),
                    |rx| match rx.try_recv() {
                        Ok(v) => Step::Item(v),
                        Err(crossbeam_channel::TryRecvError::Empty) => Step::Empty,
                        Err(crossbeam_channel::TryRecvError::Disconnected) => Step::Done,
                    },
                )
            }
            Imp::Flume => {
                let (tx, rx) = flume::unbounded::<u64>();
                channel_group(
                    producers,
                    consumers,
                    n,
                    tx,
                    rx,
                    |tx, v| tx.send(v).expect("flume send"),
                    |rx| match rx.try_recv() {
                        Ok(v) => Step::Item(v),
                        Err(flume::TryRecvError::Empty) => Step::Empty,
                        Err(flume::TryRecvError::Disconnected) => Step::Done,
                    },
                )
            }
            Imp::SegQueue => segqueue_run(producers, consumers, n),
            Imp::ConcurrentQueue => concurrent_queue_run(producers, consumers, n),
        }
    }
}

/// One attempt to read.
pub enum Step {
    Item(u64),
    Empty,
    Done,
}

/// Reads until `Done`, snoozing on `Empty`.
#[inline]
fn drain(mut next: impl FnMut() -> Step, mut see: impl FnMut(u64)) {
    let backoff = Backoff::new();
    loop {
        match next() {
            Step::Item(v) => {
                see(v);
                backoff.reset();
            }
            Step::Empty => backoff.snooze(),
            Step::Done => return,
        }
    }
}

/// One attempt to read a batch into a buffer.
pub enum Batch {
    /// At least one value was appended to the buffer.
    Got,
    Empty,
    Done,
}

/// Reads batches until `Done`, handing every value of a batch to `see` in
/// order and snoozing on `Empty`.
#[inline]
fn drain_batch<B>(
    buf: &mut Vec<B>,
    mut next: impl FnMut(&mut Vec<B>) -> Batch,
    mut see: impl FnMut(&B),
) {
    let backoff = Backoff::new();
    loop {
        match next(buf) {
            Batch::Got => {
                buf.iter().for_each(&mut see);
                buf.clear();
                backoff.reset();
            }
            Batch::Empty => backoff.snooze(),
            Batch::Done => return,
        }
    }
}

/// Spawns producers and consumers in a scope. The span measured runs from
/// the earliest moment a thread left the start barrier to the latest moment
/// a consumer finished, both read *inside* the worker threads (on an
/// oversubscribed machine the timing thread may be scheduled long after the
/// workers started). `after_producers` runs once every producer has
/// returned: it closes the queue for the implementations that need it.
fn timed<C: Send>(
    producers: Vec<Box<dyn FnOnce() + Send + '_>>,
    consumers: Vec<Box<dyn FnOnce() -> C + Send + '_>>,
    after_producers: impl FnOnce(),
) -> (Duration, Vec<C>) {
    let start = Barrier::new(producers.len() + consumers.len());
    thread::scope(|s| {
        let start = &start;
        let ps: Vec<_> = producers
            .into_iter()
            .map(|f| {
                s.spawn(move || {
                    start.wait();
                    let t0 = Instant::now();
                    f();
                    t0
                })
            })
            .collect();
        let cs: Vec<_> = consumers
            .into_iter()
            .map(|f| {
                s.spawn(move || {
                    start.wait();
                    let t0 = Instant::now();
                    let out = f();
                    (t0, Instant::now(), out)
                })
            })
            .collect();
        let mut first = None::<Instant>;
        let mut earliest = |t: Instant| first = Some(first.map_or(t, |f| f.min(t)));
        for p in ps {
            earliest(p.join().expect("producer panicked"));
        }
        after_producers();
        let mut last = None::<Instant>;
        let mut out = Vec::with_capacity(cs.len());
        for c in cs {
            let (t0, t1, o) = c.join().expect("consumer panicked");
            earliest(t0);
            last = Some(last.map_or(t1, |l: Instant| l.max(t1)));
            out.push(o);
        }
        let (first, last) = (first.expect("a thread"), last.expect("a consumer"));
        (last.duration_since(first), out)
    })
}

/// Memory budget for chunkq: at least 1 GiB, and 1 KiB per item of the run,
/// so a push never meets a full budget however far the consumers lag.
pub fn chunkq_budget(items: u64) -> usize {
    (1usize << 30).max(items as usize * 1024)
}

/// A chunkq queue with every feature on (UUID, timestamps, history,
/// accounting, TTL) and a budget that never fills during a run.
pub fn chunkq_queue(items: u64) -> chunkq::Queue<u64> {
    chunkq::Queue::builder("bench")
        .memory_limit(chunkq_budget(items))
        .ttl(Duration::from_secs(3600))
        .sweep_interval(None)
        .overflow(chunkq::Overflow::Reject)
        .build()
        .expect("chunkq builder")
}

/// `producers` threads' work for a chunkq run: each pushes its `n` items
/// one by one.
fn chunkq_producers(
    q: &chunkq::Queue<u64>,
    producers: usize,
    n: u64,
) -> Vec<Box<dyn FnOnce() + Send>> {
    (0..producers)
        .map(|p| {
            let q = q.clone();
            Box::new(move || {
                for i in 0..n {
                    if let Err(e) = q.push(encode(p, i)) {
                        panic!("chunkq push failed in a bench (budget too small?): {e:?}");
                    }
                }
            }) as Box<dyn FnOnce() + Send>
        })
        .collect()
}

/// `consumers` handles for a chunkq run: clones of one group (`group`), or
/// a group each (broadcast).
fn chunkq_consumers(
    q: &chunkq::Queue<u64>,
    consumers: usize,
    group: bool,
) -> Vec<chunkq::Consumer<u64>> {
    if group {
        let c = q.subscribe();
        (0..consumers).map(|_| c.clone()).collect()
    } else {
        (0..consumers).map(|_| q.subscribe()).collect()
    }
}

fn chunkq_run(producers: usize, consumers: usize, n: u64, group: bool) -> Duration {
    let q = chunkq_queue(producers as u64 * n);
    let cons = chunkq_consumers(&q, consumers, group);
    let ps = chunkq_producers(&q, producers, n);
    let recv = |c: &chunkq::Consumer<u64>| match c.try_recv() {
        Ok(d) => Step::Item(*d.payload()),
        Err(chunkq::TryRecvError::Empty) => Step::Empty,
        Err(chunkq::TryRecvError::Closed) => Step::Done,
    };
    if group {
        let cs: Vec<Box<dyn FnOnce() -> GroupCheck + Send>> = cons
            .into_iter()
            .map(|c| {
                Box::new(move || {
                    let mut chk = GroupCheck::new(producers);
                    drain(|| recv(&c), |v| chk.see(v));
                    chk
                }) as Box<dyn FnOnce() -> GroupCheck + Send>
            })
            .collect();
        let (t, checks) = timed(ps, cs, || q.close());
        GroupCheck::finish_all(&checks, producers, n);
        t
    } else {
        let cs: Vec<Box<dyn FnOnce() -> BroadcastCheck + Send>> = cons
            .into_iter()
            .map(|c| {
                Box::new(move || {
                    let mut chk = BroadcastCheck::new(producers);
                    drain(|| recv(&c), |v| chk.see(v));
                    chk
                }) as Box<dyn FnOnce() -> BroadcastCheck + Send>
            })
            .collect();
        let (t, checks) = timed(ps, cs, || q.close());
        checks.iter().for_each(|c| c.finish(n));
        t
    }
}

/// chunkq group through prefetching members: producers push one by one;
/// each member is `Consumer::prefetch(PREFETCH)` and receives one by one.
fn chunkq_prefetch_run(producers: usize, consumers: usize, n: u64) -> Duration {
    let q = chunkq_queue(producers as u64 * n);
    let c = q.subscribe();
    let cons: Vec<chunkq::Prefetch<u64>> = (0..consumers)
        .map(|_| c.clone().prefetch(PREFETCH))
        .collect();
    drop(c);
    let ps = chunkq_producers(&q, producers, n);
    let cs: Vec<Box<dyn FnOnce() -> GroupCheck + Send>> = cons
        .into_iter()
        .map(|mut c| {
            Box::new(move || {
                let mut chk = GroupCheck::new(producers);
                drain(
                    || match c.try_recv() {
                        Ok(d) => Step::Item(*d.payload()),
                        Err(chunkq::TryRecvError::Empty) => Step::Empty,
                        Err(chunkq::TryRecvError::Closed) => Step::Done,
                    },
                    |v| chk.see(v),
                );
                assert_eq!(c.buffered(), 0, "a drained member holds nothing");
                chk
            }) as Box<dyn FnOnce() -> GroupCheck + Send>
        })
        .collect();
    let (t, checks) = timed(ps, cs, || q.close());
    GroupCheck::finish_all(&checks, producers, n);
    t
}

/// chunkq with batches: each producer pushes `push_batch` of `BATCH` items,
/// each consumer reads with `try_recv_many(.., BATCH)`.
fn chunkq_batch_run(producers: usize, consumers: usize, n: u64, group: bool) -> Duration {
    let q = chunkq_queue(producers as u64 * n);
    let cons = chunkq_consumers(&q, consumers, group);
    let ps: Vec<Box<dyn FnOnce() + Send>> = (0..producers)
        .map(|p| {
            let q = q.clone();
            Box::new(move || {
                let mut i = 0;
                while i < n {
                    let end = n.min(i + BATCH as u64);
                    match q.push_batch((i..end).map(|k| encode(p, k))) {
                        Ok(k) => assert_eq!(k as u64, end - i, "push_batch count"),
                        Err(e) => {
                            panic!("chunkq push_batch failed in a bench (budget too small?): {e:?}")
                        }
                    }
                    i = end;
                }
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    let next = |c: &chunkq::Consumer<u64>, buf: &mut Vec<chunkq::Delivery<u64>>| match c
        .try_recv_many(buf, BATCH)
    {
        Ok(_) => Batch::Got,
        Err(chunkq::TryRecvError::Empty) => Batch::Empty,
        Err(chunkq::TryRecvError::Closed) => Batch::Done,
    };
    if group {
        let cs: Vec<Box<dyn FnOnce() -> GroupCheck + Send>> = cons
            .into_iter()
            .map(|c| {
                Box::new(move || {
                    let mut chk = GroupCheck::new(producers);
                    let mut buf = Vec::with_capacity(BATCH);
                    drain_batch(&mut buf, |b| next(&c, b), |d| chk.see(*d.payload()));
                    chk
                }) as Box<dyn FnOnce() -> GroupCheck + Send>
            })
            .collect();
        let (t, checks) = timed(ps, cs, || q.close());
        GroupCheck::finish_all(&checks, producers, n);
        t
    } else {
        let cs: Vec<Box<dyn FnOnce() -> BroadcastCheck + Send>> = cons
            .into_iter()
            .map(|c| {
                Box::new(move || {
                    let mut chk = BroadcastCheck::new(producers);
                    let mut buf = Vec::with_capacity(BATCH);
                    drain_batch(&mut buf, |b| next(&c, b), |d| chk.see(*d.payload()));
                    chk
                }) as Box<dyn FnOnce() -> BroadcastCheck + Send>
            })
            .collect();
        let (t, checks) = timed(ps, cs, || q.close());
        checks.iter().for_each(|c| c.finish(n));
        t
    }
}

/// Ring size of the bounded broadcast peers (disruptor, bus).
pub const RING: usize = 1 << 16;

/// `batch`: producers publish `BATCH` events per `try_batch_publish`
/// (the pollers read every available event as one batch either way).
fn disruptor_run(producers: usize, consumers: usize, n: u64, batch: bool) -> Duration {
    use disruptor::{BusySpin, Polling, Producer};
    #[derive(Default)]
    struct Event {
        v: u64,
    }
    let mut builder =
        disruptor::build_multi_producer(RING, Event::default, BusySpin).with_multi_consumer();
    let mut pollers = Vec::with_capacity(consumers);
    for _ in 0..consumers {
        let (poller, next) = builder.new_event_poller();
        pollers.push(poller);
        builder = next;
    }
    let first = builder.build();
    let mut handles: Vec<_> = (1..producers).map(|_| first.clone()).collect();
    handles.push(first);
    let ps: Vec<Box<dyn FnOnce() + Send>> = handles
        .into_iter()
        .enumerate()
        .map(|(p, mut h)| {
            Box::new(move || {
                let backoff = Backoff::new();
                if batch {
                    let mut i = 0;
                    while i < n {
                        let k = (n - i).min(BATCH as u64);
                        while h
                            .try_batch_publish(k as usize, |events| {
                                for (j, e) in events.enumerate() {
                                    e.v = encode(p, i + j as u64);
                                }
                            })
                            .is_err()
                        {
                            backoff.snooze();
                        }
                        backoff.reset();
                        i += k;
                    }
                } else {
                    for i in 0..n {
                        let v = encode(p, i);
                        while h.try_publish(|e| e.v = v).is_err() {
                            backoff.snooze();
                        }
                        backoff.reset();
                    }
                }
                // Dropping the last producer shuts the pollers down once they
                // have read everything.
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    let cs: Vec<Box<dyn FnOnce() -> BroadcastCheck + Send>> = pollers
        .into_iter()
        .map(|mut poller| {
            Box::new(move || {
                let mut chk = BroadcastCheck::new(producers);
                let backoff = Backoff::new();
                loop {
                    match poller.poll() {
                        Ok(mut events) => {
                            for e in &mut events {
                                chk.see(e.v);
                            }
                            backoff.reset();
                        }
                        Err(Polling::NoEvents) => backoff.snooze(),
                        Err(Polling::Shutdown) => break,
                    }
                }
                chk
            }) as Box<dyn FnOnce() -> BroadcastCheck + Send>
        })
        .collect();
    let (t, checks) = timed(ps, cs, || {});
    checks.iter().for_each(|c| c.finish(n));
    t
}

fn tokio_run(producers: usize, consumers: usize, n: u64) -> Duration {
    use tokio::sync::broadcast::error::TryRecvError;
    let cap = (producers as u64 * n).next_power_of_two() as usize;
    let (tx, rx0) = tokio::sync::broadcast::channel::<u64>(cap);
    let rxs: Vec<_> = (0..consumers).map(|_| tx.subscribe()).collect();
    drop(rx0);
    let ps: Vec<Box<dyn FnOnce() + Send>> = (0..producers)
        .map(|p| {
            let tx = tx.clone();
            Box::new(move || {
                for i in 0..n {
                    tx.send(encode(p, i)).expect("tokio send");
                }
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    drop(tx);
    let cs: Vec<Box<dyn FnOnce() -> BroadcastCheck + Send>> = rxs
        .into_iter()
        .map(|mut rx| {
            Box::new(move || {
                let mut chk = BroadcastCheck::new(producers);
                drain(
                    || match rx.try_recv() {
                        Ok(v) => Step::Item(v),
                        Err(TryRecvError::Empty) => Step::Empty,
                        Err(TryRecvError::Closed) => Step::Done,
                        Err(TryRecvError::Lagged(k)) => {
                            panic!("tokio broadcast lagged by {k}: capacity too small")
                        }
                    },
                    |v| chk.see(v),
                );
                chk
            }) as Box<dyn FnOnce() -> BroadcastCheck + Send>
        })
        .collect();
    let (t, checks) = timed(ps, cs, || {});
    checks.iter().for_each(|c| c.finish(n));
    t
}

fn bus_run(producers: usize, consumers: usize, n: u64) -> Duration {
    assert_eq!(producers, 1, "bus has a single producer");
    let mut bus = bus::Bus::<u64>::new(RING);
    let readers: Vec<_> = (0..consumers).map(|_| bus.add_rx()).collect();
    let ps: Vec<Box<dyn FnOnce() + Send>> = vec![Box::new(move || {
        let backoff = Backoff::new();
        for i in 0..n {
            let mut v = encode(0, i);
            while let Err(back) = bus.try_broadcast(v) {
                v = back;
                backoff.snooze();
            }
            backoff.reset();
        }
        drop(bus);
    })];
    let cs: Vec<Box<dyn FnOnce() -> BroadcastCheck + Send>> = readers
        .into_iter()
        .map(|mut rx| {
            Box::new(move || {
                let mut chk = BroadcastCheck::new(1);
                drain(
                    || match rx.try_recv() {
                        Ok(v) => Step::Item(v),
                        Err(std::sync::mpsc::TryRecvError::Empty) => Step::Empty,
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => Step::Done,
                    },
                    |v| chk.see(v),
                );
                chk
            }) as Box<dyn FnOnce() -> BroadcastCheck + Send>
        })
        .collect();
    let (t, checks) = timed(ps, cs, || {});
    checks.iter().for_each(|c| c.finish(n));
    t
}

fn fanout_run(producers: usize, consumers: usize, n: u64) -> Duration {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..consumers)
        .map(|_| crossbeam_channel::unbounded::<u64>())
        .unzip();
    let ps: Vec<Box<dyn FnOnce() + Send>> = (0..producers)
        .map(|p| {
            let txs = txs.clone();
            Box::new(move || {
                for i in 0..n {
                    let v = encode(p, i);
                    for tx in &txs {
                        tx.send(v).expect("crossbeam send");
                    }
                }
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    drop(txs);
    let cs: Vec<Box<dyn FnOnce() -> BroadcastCheck + Send>> = rxs
        .into_iter()
        .map(|rx| {
            Box::new(move || {
                let mut chk = BroadcastCheck::new(producers);
                drain(
                    || match rx.try_recv() {
                        Ok(v) => Step::Item(v),
                        Err(crossbeam_channel::TryRecvError::Empty) => Step::Empty,
                        Err(crossbeam_channel::TryRecvError::Disconnected) => Step::Done,
                    },
                    |v| chk.see(v),
                );
                chk
            }) as Box<dyn FnOnce() -> BroadcastCheck + Send>
        })
        .collect();
    let (t, checks) = timed(ps, cs, || {});
    checks.iter().for_each(|c| c.finish(n));
    t
}

/// Drains a crossbeam-channel with `try_iter` into `buf`; when that finds
/// nothing, one `try_recv` tells empty from disconnected.
fn crossbeam_try_iter(rx: &crossbeam_channel::Receiver<u64>, buf: &mut Vec<u64>) -> Batch {
    buf.extend(rx.try_iter());
    if !buf.is_empty() {
        return Batch::Got;
    }
    match rx.try_recv() {
        Ok(v) => {
            buf.push(v);
            Batch::Got
        }
        Err(crossbeam_channel::TryRecvError::Empty) => Batch::Empty,
        Err(crossbeam_channel::TryRecvError::Disconnected) => Batch::Done,
    }
}

/// The crossbeam-channel fan-out, consumers draining with `try_iter`.
fn fanout_batch_run(producers: usize, consumers: usize, n: u64) -> Duration {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..consumers)
        .map(|_| crossbeam_channel::unbounded::<u64>())
        .unzip();
    let ps: Vec<Box<dyn FnOnce() + Send>> = (0..producers)
        .map(|p| {
            let txs = txs.clone();
            Box::new(move || {
                for i in 0..n {
                    let v = encode(p, i);
                    for tx in &txs {
                        tx.send(v).expect("crossbeam send");
                    }
                }
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    drop(txs);
    let cs: Vec<Box<dyn FnOnce() -> BroadcastCheck + Send>> = rxs
        .into_iter()
        .map(|rx| {
            Box::new(move || {
                let mut chk = BroadcastCheck::new(producers);
                let mut buf = Vec::new();
                drain_batch(&mut buf, |b| crossbeam_try_iter(&rx, b), |&v| chk.see(v));
                chk
            }) as Box<dyn FnOnce() -> BroadcastCheck + Send>
        })
        .collect();
    let (t, checks) = timed(ps, cs, || {});
    checks.iter().for_each(|c| c.finish(n));
    t
}

/// A competing group over an MPMC channel whose consumers read in batches:
/// `next` appends what it took to the buffer (see `Batch`).
#[allow(clippy::too_many_arguments)]
fn channel_group_batch<Tx, Rx>(
    producers: usize,
    consumers: usize,
    n: u64,
    tx: Tx,
    rx: Rx,
    send: fn(&Tx, u64),
    next: fn(&Rx, &mut Vec<u64>) -> Batch,
) -> Duration
where
    Tx: Clone + Send,
    Rx: Clone + Send,
{
    let ps: Vec<Box<dyn FnOnce() + Send>> = (0..producers)
        .map(|p| {
            let tx = tx.clone();
            Box::new(move || {
                for i in 0..n {
                    send(&tx, encode(p, i));
                }
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    drop(tx);
    let cs: Vec<Box<dyn FnOnce() -> GroupCheck + Send>> = (0..consumers)
        .map(|_| {
            let rx = rx.clone();
            Box::new(move || {
                let mut chk = GroupCheck::new(producers);
                let mut buf = Vec::new();
                drain_batch(&mut buf, |b| next(&rx, b), |&v| chk.see(v));
                chk
            }) as Box<dyn FnOnce() -> GroupCheck + Send>
        })
        .collect();
    drop(rx);
    let (t, checks) = timed(ps, cs, || {});
    GroupCheck::finish_all(&checks, producers, n);
    t
}

/// A competing group over an MPMC channel: producers own sender clones (the
/// channel disconnects when the last one returns), consumers receiver clones.
#[allow(clippy::too_many_arguments)]
fn channel_group<Tx, Rx>(
    producers: usize,
    consumers: usize,
    n: u64,
    tx: Tx,
    rx: Rx,
    send: fn(&Tx, u64),
    try_recv: fn(&Rx) -> Step,
) -> Duration
where
    Tx: Clone + Send,
    Rx: Clone + Send,
{
    let ps: Vec<Box<dyn FnOnce() + Send>> = (0..producers)
        .map(|p| {
            let tx = tx.clone();
            Box::new(move || {
                for i in 0..n {
                    send(&tx, encode(p, i));
                }
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    drop(tx);
    let cs: Vec<Box<dyn FnOnce() -> GroupCheck + Send>> = (0..consumers)
        .map(|_| {
            let rx = rx.clone();
            Box::new(move || {
                let mut chk = GroupCheck::new(producers);
                drain(|| try_recv(&rx), |v| chk.see(v));
                chk
            }) as Box<dyn FnOnce() -> GroupCheck + Send>
        })
        .collect();
    drop(rx);
    let (t, checks) = timed(ps, cs, || {});
    GroupCheck::finish_all(&checks, producers, n);
    t
}

fn segqueue_run(producers: usize, consumers: usize, n: u64) -> Duration {
    let q = Arc::new(crossbeam_queue::SegQueue::<u64>::new());
    let done = Arc::new(AtomicBool::new(false));
    let ps: Vec<Box<dyn FnOnce() + Send>> = (0..producers)
        .map(|p| {
            let q = q.clone();
            Box::new(move || {
                for i in 0..n {
                    q.push(encode(p, i));
                }
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    let cs: Vec<Box<dyn FnOnce() -> GroupCheck + Send>> = (0..consumers)
        .map(|_| {
            let (q, done) = (q.clone(), done.clone());
            Box::new(move || {
                let mut chk = GroupCheck::new(producers);
                drain(
                    || match q.pop() {
                        Some(v) => Step::Item(v),
                        // `done` is set after every push returned: a pop
                        // that fails after seeing it means empty for good.
                        None if done.load(Ordering::Acquire) => match q.pop() {
                            Some(v) => Step::Item(v),
                            None => Step::Done,
                        },
                        None => Step::Empty,
                    },
                    |v| chk.see(v),
                );
                chk
            }) as Box<dyn FnOnce() -> GroupCheck + Send>
        })
        .collect();
    let (t, checks) = timed(ps, cs, || done.store(true, Ordering::Release));
    GroupCheck::finish_all(&checks, producers, n);
    t
}

fn concurrent_queue_run(producers: usize, consumers: usize, n: u64) -> Duration {
    use concurrent_queue::{ConcurrentQueue, PopError};
    let q = Arc::new(ConcurrentQueue::<u64>::unbounded());
    let ps: Vec<Box<dyn FnOnce() + Send>> = (0..producers)
        .map(|p| {
            let q = q.clone();
            Box::new(move || {
                for i in 0..n {
                    q.push(encode(p, i)).expect("concurrent-queue push");
                }
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    let cs: Vec<Box<dyn FnOnce() -> GroupCheck + Send>> = (0..consumers)
        .map(|_| {
            let q = q.clone();
            Box::new(move || {
                let mut chk = GroupCheck::new(producers);
                drain(
                    || match q.pop() {
                        Ok(v) => Step::Item(v),
                        Err(PopError::Empty) => Step::Empty,
                        Err(PopError::Closed) => Step::Done,
                    },
                    |v| chk.see(v),
                );
                chk
            }) as Box<dyn FnOnce() -> GroupCheck + Send>
        })
        .collect();
    let (t, checks) = timed(ps, cs, || {
        q.close();
    });
    GroupCheck::finish_all(&checks, producers, n);
    t
}

/// Whether `producers + consumers` threads exceed this machine's cores.
pub fn oversubscribed(producers: usize, consumers: usize) -> bool {
    producers + consumers > cores()
}

/// Cores available to this process.
pub fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// The CPU model from /proc/cpuinfo ("unknown" elsewhere).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Today's UTC date as `YYYY-MM-DD` (civil-from-days, no dependency).
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `1x1,4x4` (or `1,1;4,4`-free forms like `1:1`) into pairs.
pub fn parse_pairs(s: &str) -> Vec<(usize, usize)> {
    s.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let (p, c) = t
                .trim()
                .split_once(['x', ':'])
                .unwrap_or_else(|| panic!("pair {t:?}: want PxC, e.g. 4x4"));
            (p.parse().expect("producers"), c.parse().expect("consumers"))
        })
        .collect()
}

/// The 1/5/15-minute load averages from /proc/loadavg ("unknown" elsewhere).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The source tree measured: `git describe --always --dirty` (run in the
/// crate's folder), or "unknown".
pub fn source_tree() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Header comment lines shared by every CSV the examples write.
pub fn csv_header(command: &str) -> String {
    format!(
        "# machine: nproc={} cpu=\"{}\"\n# date: {} (UTC)\n# command: {}\n\
         # source: chunkq {} (git describe --dirty)\n\
         # load average at start (1/5/15 min): {} - other processes share this machine\n\
         # note: on this machine any run with more than {} threads in total is \
         oversubscribed (column oversubscribed=yes); its numbers measure \
         scheduling as much as the queue\n",
        cores(),
        cpu_model(),
        today(),
        command,
        source_tree(),
        load_average(),
        cores()
    )
}

/// The command line this process was started with.
pub fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}
