//! Throughput against the number of items retained ahead of the consumer,
//! and the heap bytes each retained item costs beyond its payload, chunkq
//! beside crossbeam SegQueue, crossbeam-channel and kanal.
//!
//! ```text
//! cargo run --release --example growth -- [--retained 1000,100000,10000000]
//!     [--consumers 0,1,10,100,1000] [--evict-items 10000] [--part-ms 200]
//!     [--out FILE]
//! ```
//!
//! For each retained count `K` and implementation, on one thread:
//! 1. *Overhead*: a counting global allocator (wrapping `System`, tracking
//!    live bytes) reads the live heap bytes with the empty container (its
//!    consumer(s) already registered), pushes `K` items (`u64` payloads),
//!    reads again: `(live_K - live_0) / K - size_of::<u64>()` bytes per item.
//!    Measured, not estimated: it includes slots, chunks, envelopes and
//!    whatever was allocated ahead.
//! 2. *Throughput*: with those `K` items retained ahead of the consumer, push
//!    one and receive one, for 5 timed parts of `--part-ms` each; the median part
//!    is reported in million push+receive pairs per second. Each received
//!    value is checked (FIFO: the value pushed `K` pushes earlier). All
//!    containers of a mode are alive at once and the parts rotate over them
//!    (every implementation and `K`, then again), so a change in the
//!    machine's load hits every figure alike.
//! 3. *Broadcast 1,2*: the same with two consumers each `K` behind (chunkq:
//!    two subscribers; peer: one crossbeam channel per consumer); unit:
//!    million deliveries per second (two per push).
//! 4. *Push cost against the number of consumers* (`--consumers`, column
//!    `consumers`): one thread pushes, for 5 timed parts of `--part-ms`
//!    each, into a queue with `C` registered consumers that never read;
//!    unit: million pushes per second, and `ns_per_op` nanoseconds per push.
//!    - `push-idle`: a budget far above what is pushed, so nothing leaves
//!      the queue (each part pushes into a fresh queue, its `C` consumers
//!      subscribed before the clock starts; overhead column as in 1., from
//!      the first part). Checked: every item retained, and the first and
//!      the last consumer's `lag()` equal the pushes.
//!    - `push-evict`: `Overflow::DropOldest` with a budget of
//!      `--evict-items` items, filled before the first part, so every push
//!      evicts the oldest item and every consumer misses it (the eviction
//!      moves each lagging cursor and counts the miss). Checked at the end:
//!      `missed().evicted + lag()` equals the pushes, for the first and the
//!      last consumer. Peer: tokio::sync::broadcast with capacity
//!      `--evict-items` (tokio rounds it up to a power of two) and `C`
//!      receivers that never receive (a full ring overwrites its oldest
//!      slot); no peer row at `C = 0`, where tokio refuses the send.
//!
//!    The ratio column compares with the implementation's own figure at
//!    the fewest consumers: a push cost independent of `C` shows as 1.0.
//!
//! chunkq runs with every feature on (UUID, timestamps, history,
//! accounting, TTL), a budget far above `K` and a 1-hour TTL. Prints and
//! writes a CSV (`--out`), with chunkq's figure over each peer's and the
//! ratio of each implementation's throughput at `K` (or `C`) to its own at
//! the smallest `K` (or `C`). Every row has `consumers` (registered
//! consumers or readers) and `ns_per_op` (1,000 / `mops`).

#[path = "../benches/harness/mod.rs"]
#[allow(dead_code)]
mod harness;

mod cli;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

/// `System`, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments and
// only adds bookkeeping on an atomic counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// A FIFO with `readers` independent readers (1 for the single-consumer
/// peers).
trait Fifo {
    fn push(&self, v: u64);
    fn pop(&self, reader: usize) -> Option<u64>;
}

struct Chunkq(chunkq::Queue<u64>, Vec<chunkq::Consumer<u64>>);
impl Fifo for Chunkq {
    fn push(&self, v: u64) {
        if let Err(e) = self.0.push(v) {
            panic!("chunkq push failed: {e:?}");
        }
    }
    fn pop(&self, reader: usize) -> Option<u64> {
        self.1[reader].try_recv().ok().map(|d| *d.payload())
    }
}

struct Seg(crossbeam_queue::SegQueue<u64>);
impl Fifo for Seg {
    fn push(&self, v: u64) {
        self.0.push(v)
    }
    fn pop(&self, _: usize) -> Option<u64> {
        self.0.pop()
    }
}

/// One crossbeam channel per reader (fan-out).
struct Channels(
    Vec<(
        crossbeam_channel::Sender<u64>,
        crossbeam_channel::Receiver<u64>,
    )>,
);
impl Fifo for Channels {
    fn push(&self, v: u64) {
        for (tx, _) in &self.0 {
            tx.send(v).unwrap();
        }
    }
    fn pop(&self, reader: usize) -> Option<u64> {
        self.0[reader].1.try_recv().ok()
    }
}

struct Kanal(kanal::Sender<u64>, kanal::Receiver<u64>);
impl Fifo for Kanal {
    fn push(&self, v: u64) {
        self.0.send(v).unwrap()
    }
    fn pop(&self, _: usize) -> Option<u64> {
        self.1.try_recv().unwrap()
    }
}

fn make(name: &'static str, retained: u64, readers: usize) -> Box<dyn Fifo> {
    match name {
        "chunkq" => {
            let q = harness::chunkq_queue(retained + 10_000);
            let cs = (0..readers).map(|_| q.subscribe()).collect();
            Box::new(Chunkq(q, cs))
        }
        "crossbeam-segqueue" => Box::new(Seg(crossbeam_queue::SegQueue::new())),
        "crossbeam-channel" => Box::new(Channels(
            (0..readers)
                .map(|_| crossbeam_channel::unbounded())
                .collect(),
        )),
        "kanal" => {
            let (tx, rx) = kanal::unbounded();
            Box::new(Kanal(tx, rx))
        }
        _ => unreachable!(),
    }
}

/// Flushes crossbeam-epoch's deferred frees so the live count settles.
fn settle() {
    for _ in 0..256 {
        crossbeam_epoch::pin().flush();
    }
}

/// One container with `k` items retained ahead of its reader(s).
struct State {
    name: &'static str,
    k: u64,
    readers: usize,
    q: Box<dyn Fifo>,
    /// Next value to push.
    next: u64,
    /// Next value every reader must receive.
    expect: u64,
    overhead: f64,
    rates: Vec<f64>,
}

/// Builds a container and measures the live heap bytes its `k` retained
/// items cost.
fn prefill(name: &'static str, k: u64, readers: usize) -> State {
    settle();
    let q = make(name, k, readers);
    let before = live();
    for i in 0..k {
        q.push(i);
    }
    let after = live();
    State {
        name,
        k,
        readers,
        q,
        next: k,
        expect: 0,
        overhead: (after - before) as f64 / k as f64 - std::mem::size_of::<u64>() as f64,
        rates: Vec::new(),
    }
}

impl State {
    /// For `span`, in rounds of 1000: push one, each reader receives one
    /// (checked); records million deliveries per second.
    fn part(&mut self, span: Duration) {
        let t0 = Instant::now();
        let mut ops = 0u64;
        while t0.elapsed() < span {
            for _ in 0..1000 {
                self.q.push(self.next);
                self.next += 1;
                for r in 0..self.readers {
                    let got = self.q.pop(r);
                    assert_eq!(
                        got,
                        Some(self.expect),
                        "{}: reader {r} out of order",
                        self.name
                    );
                }
                self.expect += 1;
            }
            ops += 1000;
        }
        let dt = t0.elapsed().as_secs_f64();
        self.rates
            .push((ops * self.readers as u64) as f64 / dt / 1e6);
    }

    fn median(&self) -> f64 {
        let mut r = self.rates.clone();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    }
}

/// The two push-cost modes (4. in the header).
#[derive(Clone, Copy, PartialEq, Eq)]
enum PushMode {
    Idle,
    Evict,
}

impl PushMode {
    fn name(self) -> &'static str {
        match self {
            PushMode::Idle => "push-idle",
            PushMode::Evict => "push-evict",
        }
    }
}

/// Most pushes one `push-idle` part makes (its budget is sized for them).
const IDLE_CAP: u64 = 5_000_000;

/// What a push-cost container pushes into.
enum Pusher {
    /// `push-idle`: a fresh queue for every part.
    Fresh,
    /// `push-evict`, chunkq: a full `DropOldest` queue and its idle
    /// consumers.
    ChunkqEvict(chunkq::Queue<u64>, Vec<chunkq::Consumer<u64>>),
    /// `push-evict`, tokio broadcast: a full ring and its idle receivers
    /// (kept alive, never read).
    Tokio {
        tx: tokio::sync::broadcast::Sender<u64>,
        _receivers: Vec<tokio::sync::broadcast::Receiver<u64>>,
    },
}

/// One push-cost container: `consumers` registered consumers that never
/// read.
struct PushState {
    name: &'static str,
    consumers: usize,
    /// `push-evict`: the budget (capacity) in items.
    evict_items: u64,
    pusher: Pusher,
    /// Pushes so far (`push-evict`: including the fill).
    next: u64,
    /// `push-idle`: live heap bytes per retained item beyond the payload,
    /// from the first part.
    overhead: Option<f64>,
    rates: Vec<f64>,
}

/// A `DropOldest` chunkq queue holding `items` `u64` items, every other
/// feature as in `harness::chunkq_queue`.
fn chunkq_evicting(items: u64) -> chunkq::Queue<u64> {
    let probe = harness::chunkq_queue(1);
    probe.push(0).expect("probe push");
    let per_item = probe.memory_used();
    chunkq::Queue::builder("bench")
        .memory_limit(per_item * items as usize)
        .ttl(Duration::from_secs(3600))
        .sweep_interval(None)
        .overflow(chunkq::Overflow::DropOldest)
        .build()
        .expect("chunkq builder")
}

impl PushState {
    fn new(mode: PushMode, name: &'static str, consumers: usize, evict_items: u64) -> Self {
        let fill = 2 * evict_items;
        let (pusher, next) = match (mode, name) {
            (PushMode::Idle, _) => (Pusher::Fresh, 0),
            (PushMode::Evict, "chunkq") => {
                let q = chunkq_evicting(evict_items);
                let cs = (0..consumers).map(|_| q.subscribe()).collect();
                for i in 0..fill {
                    q.push(i).expect("DropOldest push");
                }
                (Pusher::ChunkqEvict(q, cs), fill)
            }
            (PushMode::Evict, "tokio-broadcast") => {
                let (tx, rx) = tokio::sync::broadcast::channel(evict_items as usize);
                let mut rxs: Vec<_> = (1..consumers).map(|_| tx.subscribe()).collect();
                rxs.push(rx);
                for i in 0..fill {
                    tx.send(i).expect("a receiver exists");
                }
                (
                    Pusher::Tokio {
                        tx,
                        _receivers: rxs,
                    },
                    fill,
                )
            }
            _ => unreachable!(),
        };
        Self {
            name,
            consumers,
            evict_items,
            pusher,
            next,
            overhead: None,
            rates: Vec::new(),
        }
    }

    /// For `span`, in rounds of 1000 pushes; records million pushes per
    /// second.
    fn part(&mut self, span: Duration) {
        let mut ops = 0u64;
        let dt = match &self.pusher {
            Pusher::Fresh => {
                let q = harness::chunkq_queue(IDLE_CAP);
                let cs: Vec<_> = (0..self.consumers).map(|_| q.subscribe()).collect();
                settle();
                let before = live();
                let t0 = Instant::now();
                while t0.elapsed() < span && ops < IDLE_CAP {
                    for i in ops..ops + 1000 {
                        if let Err(e) = q.push(i) {
                            panic!("chunkq push failed: {e:?}");
                        }
                    }
                    ops += 1000;
                }
                let dt = t0.elapsed();
                let after = live();
                self.overhead.get_or_insert(
                    (after - before) as f64 / ops as f64 - std::mem::size_of::<u64>() as f64,
                );
                assert_eq!(q.len() as u64, ops, "push-idle: an item left the queue");
                for c in cs.first().into_iter().chain(cs.last()) {
                    assert_eq!(c.lag() as u64, ops, "push-idle: a consumer's lag");
                }
                dt
            }
            Pusher::ChunkqEvict(q, _) => {
                let t0 = Instant::now();
                while t0.elapsed() < span {
                    for _ in 0..1000 {
                        if let Err(e) = q.push(self.next) {
                            panic!("chunkq push failed: {e:?}");
                        }
                        self.next += 1;
                    }
                    ops += 1000;
                }
                t0.elapsed()
            }
            Pusher::Tokio { tx, .. } => {
                let t0 = Instant::now();
                while t0.elapsed() < span {
                    for _ in 0..1000 {
                        tx.send(self.next).expect("a receiver exists");
                        self.next += 1;
                    }
                    ops += 1000;
                }
                t0.elapsed()
            }
        };
        self.rates.push(ops as f64 / dt.as_secs_f64() / 1e6);
    }

    /// `push-evict`: every push evicted one item, which each idle consumer
    /// missed.
    fn check(&self) {
        if let Pusher::ChunkqEvict(q, cs) = &self.pusher {
            assert!(
                q.len() as u64 <= self.evict_items,
                "push-evict: over budget"
            );
            for c in cs.first().into_iter().chain(cs.last()) {
                assert_eq!(
                    c.missed().evicted + c.lag() as u64,
                    self.next,
                    "push-evict: evicted + lag != pushed"
                );
            }
        }
    }

    fn median(&self) -> f64 {
        let mut r = self.rates.clone();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    }
}

const USAGE: &str = "usage: growth [--retained 1000,100000,10000000] \
     [--consumers 0,1,10,100,1000] [--evict-items 10000] [--part-ms 200] \
     [--modes group-1x1,broadcast-1x2,push-idle,push-evict] [--out FILE]";

fn main() {
    let mut retained = vec![1_000u64, 100_000, 10_000_000];
    let mut consumers = vec![0usize, 1, 10, 100, 1000];
    let mut evict_items = 10_000u64;
    let mut part_ms = 200u64;
    let mut modes_on: Vec<String> = ["group-1x1", "broadcast-1x2", "push-idle", "push-evict"]
        .map(String::from)
        .to_vec();
    let mut out: Option<String> = None;
    let mut args = cli::Args::new("growth", USAGE);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--retained" => retained = args.listed(&a),
            "--consumers" => consumers = args.listed(&a),
            "--evict-items" => evict_items = args.parsed(&a),
            "--part-ms" => part_ms = args.parsed(&a),
            "--modes" => modes_on = args.value(&a).split(',').map(String::from).collect(),
            "--out" => out = Some(args.value(&a)),
            _ => args.fail(format!("unknown argument {a:?}")),
        }
    }
    for m in &modes_on {
        if !["group-1x1", "broadcast-1x2", "push-idle", "push-evict"].contains(&m.as_str()) {
            args.fail(format!("unknown mode {m:?}"));
        }
    }
    let on = |m: &str| modes_on.iter().any(|x| x == m);
    let mut csv = harness::csv_header(&harness::command_line());
    writeln!(
        csv,
        "# one thread (not oversubscribed); mode group-1x1 = push + try_recv with K items retained \
         ahead, unit million pairs per second; mode broadcast-1x2 = push + 2 try_recv (two \
         independent readers each K behind), unit million deliveries per second; median of 5 \
         interleaved timed parts of {part_ms} ms; overhead = (live heap bytes with K retained - live heap bytes empty) \
         / K - 8 (the u64 payload), from a counting global allocator"
    )
    .unwrap();
    writeln!(
        csv,
        "# push cost against the number of registered consumers (column consumers, idle: they \
         never read), unit million pushes per second, ns_per_op = ns per push: mode push-idle = a \
         fresh queue per part with a budget far above the pushes (nothing leaves; overhead from \
         the first part); mode push-evict = Overflow::DropOldest with a budget of K = \
         {evict_items} items, full, so every push evicts one item that every consumer misses \
         (peer: tokio::sync::broadcast, capacity K, idle receivers); mops_over_own_smallest_k = \
         over its own figure at the fewest consumers"
    )
    .unwrap();
    csv.push_str(
        "mode,implementation,retained,overhead_bytes_per_item,mops,\
         mops_over_own_smallest_k,chunkq_mops_over_this,chunkq_overhead_minus_this,\
         consumers,ns_per_op\n",
    );
    let modes: [(&str, usize, &[&'static str]); 2] = [
        (
            "group-1x1",
            1,
            &["chunkq", "crossbeam-segqueue", "crossbeam-channel", "kanal"],
        ),
        ("broadcast-1x2", 2, &["chunkq", "crossbeam-channel"]),
    ];
    const PARTS: u64 = 5;
    let span = Duration::from_millis(part_ms);
    for (mode, readers, names) in modes {
        if !on(mode) {
            continue;
        }
        // Every (implementation, K) container is alive at once and the timed
        // parts rotate over all of them, so a change in the machine's load
        // hits every figure alike.
        let mut states: Vec<State> = names
            .iter()
            .flat_map(|&n| retained.iter().map(move |&k| (n, k)))
            .map(|(n, k)| prefill(n, k, readers))
            .collect();
        for _ in 0..PARTS {
            for st in &mut states {
                st.part(span);
            }
        }
        for &k in &retained {
            let at_k: Vec<&State> = states.iter().filter(|s| s.k == k).collect();
            let chunkq = at_k[0];
            for st in &at_k {
                let smallest = states
                    .iter()
                    .find(|s| s.name == st.name)
                    .expect("own smallest K")
                    .median();
                let (vs, ovs) = if st.name == "chunkq" {
                    (String::new(), String::new())
                } else {
                    (
                        format!("{:.3}", chunkq.median() / st.median()),
                        format!("{:.1}", chunkq.overhead - st.overhead),
                    )
                };
                let row = format!(
                    "{mode},{},{k},{:.1},{:.3},{:.3},{vs},{ovs},{readers},{:.1}\n",
                    st.name,
                    st.overhead,
                    st.median(),
                    st.median() / smallest,
                    1e3 / st.median()
                );
                print!("{row}");
                csv.push_str(&row);
            }
        }
        drop(states);
        settle();
    }
    for mode in [PushMode::Idle, PushMode::Evict] {
        if !on(mode.name()) {
            continue;
        }
        let names: &[&'static str] = match mode {
            PushMode::Idle => &["chunkq"],
            PushMode::Evict => &["chunkq", "tokio-broadcast"],
        };
        // As above: all containers alive at once, parts rotating over them.
        let mut states: Vec<PushState> = names
            .iter()
            .flat_map(|&n| consumers.iter().map(move |&c| (n, c)))
            // tokio refuses a send with no receiver.
            .filter(|&(n, c)| !(n == "tokio-broadcast" && c == 0))
            .map(|(n, c)| PushState::new(mode, n, c, evict_items))
            .collect();
        for _ in 0..PARTS {
            for st in &mut states {
                st.part(span);
            }
        }
        for st in &states {
            st.check();
        }
        for &c in &consumers {
            let at_c: Vec<&PushState> = states.iter().filter(|s| s.consumers == c).collect();
            let chunkq = at_c.iter().find(|s| s.name == "chunkq");
            for st in &at_c {
                let fewest = states
                    .iter()
                    .find(|s| s.name == st.name)
                    .expect("own fewest consumers")
                    .median();
                let vs = match chunkq {
                    Some(q) if st.name != "chunkq" => format!("{:.3}", q.median() / st.median()),
                    _ => String::new(),
                };
                let k = match mode {
                    PushMode::Idle => String::new(),
                    PushMode::Evict => evict_items.to_string(),
                };
                let overhead = st.overhead.map_or(String::new(), |o| format!("{o:.1}"));
                let row = format!(
                    "{},{},{k},{overhead},{:.3},{:.3},{vs},,{c},{:.1}\n",
                    mode.name(),
                    st.name,
                    st.median(),
                    st.median() / fewest,
                    1e3 / st.median()
                );
                print!("{row}");
                csv.push_str(&row);
            }
        }
        drop(states);
        settle();
    }
    if let Some(path) = out {
        if let Some(dir) = std::path::Path::new(&path).parent() {
            std::fs::create_dir_all(dir).expect("create output folder");
        }
        std::fs::write(&path, csv).expect("write CSV");
        eprintln!("wrote {path}");
    }
}
