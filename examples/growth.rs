//! Throughput against the number of items retained ahead of the consumer,
//! and the heap bytes each retained item costs beyond its payload, chunkq
//! beside crossbeam SegQueue, crossbeam-channel and kanal.
//!
//! ```text
//! cargo run --release --example growth -- [--retained 1000,100000,10000000]
//!     [--ops 2000000] [--out FILE]
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
//!    one and receive one, `--ops` times in 5 timed parts; the median part
//!    is reported in million push+receive pairs per second. Each received
//!    value is checked (FIFO: the value pushed `K` pushes earlier).
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
use std::time::Instant;

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

fn make(name: &str, retained: u64, readers: usize) -> Box<dyn Fifo> {
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

struct Measured {
    overhead: f64,
    mops: f64,
}

/// Overhead per item at `k` retained, then steady-state throughput.
fn measure(name: &str, k: u64, readers: usize, ops: u64) -> Measured {
    settle();
    let q = make(name, k, readers);
    let before = live();
    for i in 0..k {
        q.push(i);
    }
    let after = live();
    let overhead = (after - before) as f64 / k as f64 - std::mem::size_of::<u64>() as f64;
    let parts = 5;
    let per = (ops / parts).max(1);
    let mut next = k;
    let mut expect = 0u64;
    let mut rates = Vec::new();
    for _ in 0..parts {
        let t0 = Instant::now();
        for _ in 0..per {
            q.push(next);
            next += 1;
            for r in 0..readers {
                let got = q.pop(r);
                assert_eq!(got, Some(expect), "{name}: reader {r} out of order");
            }
            expect += 1;
        }
        let dt = t0.elapsed().as_secs_f64();
        rates.push((per * readers as u64) as f64 / dt / 1e6);
    }
    rates.sort_by(f64::total_cmp);
    drop(q);
    settle();
    Measured {
        overhead,
        mops: rates[rates.len() / 2],
    }
}

fn main() {
    let mut retained = vec![1_000u64, 100_000, 10_000_000];
    let mut ops = 2_000_000u64;
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
            "--ops" => ops = val().replace('_', "").parse().expect("--ops"),
            "--out" => out = Some(val()),
            _ => panic!("usage: growth [--retained 1000,100000,10000000] [--ops N] [--out FILE]"),
        }
    }
    let mut csv = harness::csv_header(&harness::command_line());
    writeln!(
        csv,
        "# one thread (not oversubscribed); mode group-1x1 = push + try_recv with K items retained \
         ahead, unit million pairs per second; mode broadcast-1x2 = push + 2 try_recv (two \
         independent readers each K behind), unit million deliveries per second; median of 5 \
         parts of {ops} ops; overhead = (live heap bytes with K retained - live heap bytes empty) \
         / K - 8 (the u64 payload), from a counting global allocator"
    )
    .unwrap();
    csv.push_str(
        "mode,implementation,retained,overhead_bytes_per_item,mops,\
         mops_over_own_smallest_k,chunkq_mops_over_this,chunkq_overhead_minus_this\n",
    );
    let modes: [(&str, usize, &[&str]); 2] = [
        (
            "group-1x1",
            1,
            &["chunkq", "crossbeam-segqueue", "crossbeam-channel", "kanal"],
        ),
        ("broadcast-1x2", 2, &["chunkq", "crossbeam-channel"]),
    ];
    for (mode, readers, names) in modes {
        let mut first: Vec<Option<f64>> = vec![None; names.len()];
        for &k in &retained {
            let ms: Vec<Measured> = names.iter().map(|n| measure(n, k, readers, ops)).collect();
            for (i, (name, m)) in names.iter().zip(&ms).enumerate() {
                let base = *first[i].get_or_insert(m.mops);
                let (vs, ovs) = if i == 0 {
                    (String::new(), String::new())
                } else {
                    (
                        format!("{:.3}", ms[0].mops / m.mops),
                        format!("{:.1}", ms[0].overhead - m.overhead),
                    )
                };
                let row = format!(
                    "{mode},{name},{k},{:.1},{:.3},{:.3},{vs},{ovs}\n",
                    m.overhead,
                    m.mops,
                    m.mops / base
                );
                print!("{row}");
                csv.push_str(&row);
            }
        }
    }
    if let Some(path) = out {
        if let Some(dir) = std::path::Path::new(&path).parent() {
            std::fs::create_dir_all(dir).expect("create output folder");
        }
        std::fs::write(&path, csv).expect("write CSV");
        eprintln!("wrote {path}");
    }
}
