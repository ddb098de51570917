//! Throughput against the number of items retained ahead of the consumer,
//! and the heap bytes each retained item costs beyond its payload, chunkq
//! beside crossbeam SegQueue, crossbeam-channel and kanal.
//!
//! ```text
//! cargo run --release --example growth -- [--retained 1000,100000,10000000]
//!     [--part-ms 200] [--out FILE]
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
//!
//! chunkq runs with every feature on (UUID, timestamps, history,
//! accounting, TTL), a budget far above `K` and a 1-hour TTL. Prints and
//! writes a CSV (`--out`), with chunkq's figure over each peer's and the
//! ratio of each implementation's throughput at `K` to its own at the
//! smallest `K`.

#[path = "../benches/harness/mod.rs"]
#[allow(dead_code)]
mod harness;

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

fn main() {
    let mut retained = vec![1_000u64, 100_000, 10_000_000];
    let mut part_ms = 200u64;
    let mut out: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--retained" => {
                retained = val()
                    .split(',')
                    .map(|s| s.replace('_', "").parse().expect("--retained"))
                    .collect()
            }
            "--part-ms" => part_ms = val().parse().expect("--part-ms"),
            "--out" => out = Some(val()),
            _ => panic!(
                "usage: growth [--retained 1000,100000,10000000] [--part-ms 200] [--out FILE]"
            ),
        }
    }
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
    csv.push_str(
        "mode,implementation,retained,overhead_bytes_per_item,mops,\
         mops_over_own_smallest_k,chunkq_mops_over_this,chunkq_overhead_minus_this\n",
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
                    "{mode},{},{k},{:.1},{:.3},{:.3},{vs},{ovs}\n",
                    st.name,
                    st.overhead,
                    st.median(),
                    st.median() / smallest
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
