//! A small single-threaded push + try_recv loop for instruction-level
//! profiles (valgrind's callgrind counts instructions repeatably):
//!
//! ```text
//! cargo build --profile bench --example profile_push   # release + debug info
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     target/release/examples/profile_push 200000
//! callgrind_annotate --inclusive=yes cg.out | head -60
//! ```
//!
//! The queue has every feature on (UUID, timestamps, history, accounting,
//! TTL). Each pushed value is checked on receipt.
//!
//! `profile_push batch N` profiles the batch path instead: `push_batch` of
//! 64 items, then `try_recv_many(.., 64)`, N items in all (N a multiple of
//! 64), so the per-item cost can be set beside the single path's:
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=cg-batch.out \
//!     target/release/examples/profile_push batch 200000
//! ```
//!
//! `profile_push costs` instead times (wall clock, not under valgrind) the
//! primitives the item path is made of, beside one push + try_recv, so
//! instruction counts can be weighed against what they cost on this machine
//! (a clock read is few instructions but a `rdtsc`-class latency).

mod cli;

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

fn queue() -> (chunkq::Queue<u64>, chunkq::Consumer<u64>) {
    let q: chunkq::Queue<u64> = chunkq::Queue::builder("profile")
        .memory_limit(1 << 30)
        .ttl(Duration::from_secs(3600))
        .sweep_interval(None)
        .overflow(chunkq::Overflow::Reject)
        .build()
        .expect("builder");
    let c = q.subscribe();
    (q, c)
}

/// Nanoseconds per call of `f`, best of 5 rounds of `n` calls.
fn per_call(n: u64, mut f: impl FnMut(u64)) -> f64 {
    (0..5)
        .map(|_| {
            let t0 = Instant::now();
            for i in 0..n {
                f(i);
            }
            t0.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn costs() {
    let n = 1_000_000;
    let base = Instant::now();
    let rows: Vec<(&str, f64)> = vec![
        (
            "Instant::now",
            per_call(n, |_| {
                black_box(Instant::now());
            }),
        ),
        (
            "Instant::elapsed",
            per_call(n, |_| {
                black_box(base.elapsed());
            }),
        ),
        (
            "SystemTime::now",
            per_call(n, |_| {
                black_box(SystemTime::now());
            }),
        ),
        (
            "Box<[u64; 12]> alloc + free",
            per_call(n, |i| {
                black_box(Box::new([i; 12]));
            }),
        ),
        (
            "Arc<[u64; 12]> alloc + clone + 2 drops",
            per_call(n, |i| {
                let a = std::sync::Arc::new([i; 12]);
                black_box(a.clone());
            }),
        ),
        (
            "crossbeam_epoch::pin (+ drop guard)",
            per_call(n, |_| {
                black_box(crossbeam_epoch::pin());
            }),
        ),
        ("chunkq push + try_recv (one thread)", {
            let (q, c) = queue();
            per_call(n, |i| {
                q.push(i).expect("push");
                assert_eq!(*c.try_recv().expect("item").payload(), i);
            })
        }),
        ("crossbeam SegQueue push + pop (one thread)", {
            let q = crossbeam_queue::SegQueue::new();
            per_call(n, |i| {
                q.push(i);
                assert_eq!(q.pop(), Some(i));
            })
        }),
    ];
    println!("operation,ns_per_call (best of 5 x {n})");
    for (name, ns) in rows {
        println!("{name},{ns:.1}");
    }
}

fn main() {
    let mut args = cli::Args::new(
        "profile_push",
        "usage: profile_push [N] | profile_push batch [N] | profile_push evict [N] | profile_push costs\n\
         N items (default 200000) pushed and received one by one, or in batches of 64, \
         or pushed into a full 1 MiB `DropOldest` queue whose consumer never reads (64-byte `Vec`s); \
         `costs`: the wall-clock cost of the primitives",
    );
    let arg = args.next();
    let n = match arg.as_deref() {
        Some("costs") => None,
        Some("batch") | Some("evict") => Some(args.next()),
        _ => Some(arg.clone()),
    };
    if let Some(extra) = args.next() {
        args.fail(format!("unexpected argument {extra:?}"));
    }
    let Some(n) = n else {
        return costs();
    };
    let n: u64 = n.map_or(200_000, |s| args.parse("item count", &s));
    if arg.as_deref() == Some("batch") {
        return batch(n);
    }
    if arg.as_deref() == Some("evict") {
        return evict(n);
    }
    let (q, c) = queue();
    let mut sum = 0u64;
    for i in 0..n {
        q.push(i).expect("push");
        let d = c.try_recv().expect("an item");
        assert_eq!(*d.payload(), i);
        sum = sum.wrapping_add(*d.payload());
    }
    println!("{n} items, sum {sum}");
}

/// `push_batch` of 64, then `try_recv_many(.., 64)`, checked in order.
fn batch(n: u64) {
    const B: u64 = 64;
    let (q, c) = queue();
    let mut buf = Vec::with_capacity(B as usize);
    let (mut i, mut sum) = (0u64, 0u64);
    while i < n {
        let end = n.min(i + B);
        assert_eq!(q.push_batch(i..end).expect("push_batch") as u64, end - i);
        let mut want = i;
        while want < end {
            c.try_recv_many(&mut buf, B as usize).expect("items");
            for d in buf.drain(..) {
                assert_eq!(*d.payload(), want);
                sum = sum.wrapping_add(want);
                want += 1;
            }
        }
        i = end;
    }
    println!("{n} items in batches of {B}, sum {sum}");
}

/// The flood's push path on one thread: a 1 MiB `DropOldest` budget, full
/// before the loop, one consumer that never reads, 64-byte payloads; every
/// push evicts. Checked: the consumer missed exactly what left.
fn evict(n: u64) {
    let q: chunkq::Queue<Vec<u8>> = chunkq::Queue::builder("evict")
        .memory_limit(1 << 20)
        .sweep_interval(None)
        .overflow(chunkq::Overflow::DropOldest)
        .build()
        .expect("builder");
    let c = q.subscribe();
    let mut i = 0u64;
    while q.memory_used() + 256 < q.memory_limit() {
        q.push(vec![i as u8; 64]).expect("push");
        i += 1;
    }
    for _ in 0..n {
        q.push(vec![i as u8; 64]).expect("push");
        i += 1;
    }
    let retained = q.retained() as u64;
    assert_eq!(c.lag() as u64, retained);
    println!("{i} pushed, {retained} retained, {} evicted", i - retained);
}
