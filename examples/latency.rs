//! Push → blocking receive latency at a fixed, modest rate, chunkq beside
//! crossbeam-channel (`recv`) and tokio broadcast (`blocking_recv` in a std
//! thread); chunkq three ways: its receiver parked (`Wait::Park`, the
//! default), busy-spinning (`chunkq-spin`, `Wait::Spin`: for a thread pinned
//! to its own core) and yielding (`chunkq-yield`, `Wait::Yield`).
//!
//! ```text
//! cargo run --release --example latency -- [--rate 50000] [--secs 3] [--rounds 3] [--out FILE]
//! ```
//!
//! One producer thread paces itself by spinning on the clock (item `k` is
//! due at `start + k / rate`) and sends its index and send time; one consumer
//! thread blocks in its receive and records `receive time - send time` in an
//! HDR histogram (`hdrhistogram`, 3 significant digits). Each implementation
//! runs `--secs` in total, split into `--rounds` interleaved rounds (chunkq,
//! crossbeam, tokio, chunkq, ...) whose histograms are merged; the first 5 %
//! of each round is a warm-up and is not recorded. Every run checks that the items
//! arrive complete and in order. Prints and writes a CSV of p50 / p90 / p99
//! / p99.9 / max in nanoseconds, with chunkq's figure over each peer's.
//! Two threads: not oversubscribed on a 2-core machine (the producer spins,
//! the consumer sleeps in its receive, or spins in `chunkq-spin`: then both
//! cores are busy, which is what that strategy is for).

#[path = "../benches/harness/mod.rs"]
#[allow(dead_code)]
mod harness;

mod cli;

use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// A payload: the item's index and its send time (ns since the run's base).
type Msg = (u64, u64);

/// One producer paced at `rate` sends `total` items through `send` (dropped
/// afterwards, which closes the channel); the consumer receives with the
/// blocking `recv` (`None` once closed and drained), checks and records.
fn measure(
    rate: u64,
    total: u64,
    mut send: impl FnMut(Msg) + Send,
    mut recv: impl FnMut() -> Option<Msg> + Send,
) -> Histogram<u64> {
    let base = Instant::now();
    let since = move || base.elapsed().as_nanos() as u64;
    let warmup = total / 20;
    std::thread::scope(|s| {
        let consumer = s.spawn(move || {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
            let mut next = 0u64;
            while let Some((k, sent)) = recv() {
                let now = since();
                assert_eq!(k, next, "latency: item {k} arrived where {next} was due");
                next += 1;
                if k >= warmup {
                    h.record(now.saturating_sub(sent).max(1)).unwrap();
                }
            }
            assert_eq!(next, total, "latency: consumer got {next} of {total} items");
            h
        });
        s.spawn(move || {
            // Let the consumer reach its blocking receive first.
            std::thread::sleep(Duration::from_millis(50));
            let period = 1e9 / rate as f64;
            let t0 = since();
            for k in 0..total {
                let due = t0 + (k as f64 * period) as u64;
                while since() < due {
                    std::hint::spin_loop();
                }
                send((k, since()));
            }
            drop(send);
        });
        consumer.join().expect("consumer panicked")
    })
}

fn chunkq_run(rate: u64, total: u64) -> Histogram<u64> {
    chunkq_waiting(rate, total, chunkq::Wait::Park)
}

fn chunkq_spin_run(rate: u64, total: u64) -> Histogram<u64> {
    chunkq_waiting(rate, total, chunkq::Wait::Spin)
}

fn chunkq_yield_run(rate: u64, total: u64) -> Histogram<u64> {
    chunkq_waiting(rate, total, chunkq::Wait::Yield)
}

/// chunkq with its consumer waiting the given way (`Consumer::with_wait`).
fn chunkq_waiting(rate: u64, total: u64, wait: chunkq::Wait) -> Histogram<u64> {
    let q: chunkq::Queue<Msg> = chunkq::Queue::builder("latency")
        .memory_limit(1 << 30)
        .ttl(Duration::from_secs(3600))
        .sweep_interval(None)
        .overflow(chunkq::Overflow::Reject)
        .build()
        .expect("builder");
    let c = q.subscribe().with_wait(wait);
    measure(
        rate,
        total,
        // The closure owns the last handle: dropping it closes the queue.
        move |m| {
            if let Err(e) = q.push(m) {
                panic!("chunkq push failed: {e:?}");
            }
        },
        move || c.recv().ok().map(|d| *d.payload()),
    )
}

fn crossbeam_run(rate: u64, total: u64) -> Histogram<u64> {
    let (tx, rx) = crossbeam_channel::unbounded::<Msg>();
    measure(
        rate,
        total,
        move |m| tx.send(m).expect("send"),
        move || rx.recv().ok(),
    )
}

fn tokio_run(rate: u64, total: u64) -> Histogram<u64> {
    use tokio::sync::broadcast::error::RecvError;
    let (tx, mut rx) = tokio::sync::broadcast::channel::<Msg>(1 << 16);
    measure(
        rate,
        total,
        move |m| {
            tx.send(m).expect("send");
        },
        move || match rx.blocking_recv() {
            Ok(m) => Some(m),
            Err(RecvError::Closed) => None,
            Err(RecvError::Lagged(k)) => panic!("tokio broadcast lagged by {k}"),
        },
    )
}

/// One implementation's measurement: (rate, items) -> histogram.
type Run = fn(u64, u64) -> Histogram<u64>;

fn main() {
    let mut rate = 50_000u64;
    let mut secs = 3.0f64;
    let mut rounds = 3u64;
    let mut out: Option<String> = None;
    let mut args = cli::Args::new(
        "latency",
        "usage: latency [--rate N] [--secs S] [--rounds R] [--out FILE]\n\
         push -> blocking receive latency at N items/s (default 50000), S seconds \
         (default 3) per implementation in R interleaved rounds (default 3); \
         p50/p90/p99/p99.9/max printed and written as CSV to FILE",
    );
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rate" => rate = args.parsed(&a),
            "--secs" => secs = args.parsed(&a),
            "--rounds" => rounds = args.parsed(&a),
            "--out" => out = Some(args.value(&a)),
            _ => args.fail(format!("unknown argument {a:?}")),
        }
    }
    if !secs.is_finite() || rounds == 0 {
        args.fail("--secs must be finite and --rounds at least 1");
    }
    let total = (rate as f64 * secs) as u64;
    if total < 100 {
        args.fail("too few items: raise --rate or --secs");
    }
    let runs: [(&str, Run); 5] = [
        ("chunkq", chunkq_run),
        ("chunkq-spin", chunkq_spin_run),
        ("chunkq-yield", chunkq_yield_run),
        ("crossbeam-channel", crossbeam_run),
        ("tokio-broadcast", tokio_run),
    ];
    // Interleaved rounds (each implementation once per round) so a change in
    // the machine's load hits all of them alike; histograms are merged.
    let per_round = (total / rounds).max(100);
    let mut results: Vec<(&str, Histogram<u64>)> = runs
        .iter()
        .map(|(name, _)| {
            (
                *name,
                Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
            )
        })
        .collect();
    for _ in 0..rounds {
        for ((_, f), (_, h)) in runs.iter().zip(results.iter_mut()) {
            h.add(f(rate, per_round)).unwrap();
        }
    }
    let quantiles = [0.5, 0.9, 0.99, 0.999];
    let mut csv = harness::csv_header(&harness::command_line());
    writeln!(
        csv,
        "# one producer (paced, spinning) + one blocking consumer = 2 threads, not oversubscribed on 2 cores; \
         rate {rate}/s, {secs} s per implementation in {rounds} interleaved rounds, first 5% of each round not recorded; unit: nanoseconds"
    )
    .unwrap();
    csv.push_str("implementation,rate_per_s,recorded,p50_ns,p90_ns,p99_ns,p99_9_ns,max_ns,mean_ns,chunkq_p50_over_this,chunkq_p99_over_this,chunkq_p99_9_over_this\n");
    let q = &results[0].1;
    for (name, h) in &results {
        let ratio = |x: f64| {
            if *name == "chunkq" {
                String::new()
            } else {
                format!(
                    "{:.2}",
                    q.value_at_quantile(x) as f64 / h.value_at_quantile(x) as f64
                )
            }
        };
        write!(csv, "{name},{rate},{}", h.len()).unwrap();
        for x in quantiles {
            write!(csv, ",{}", h.value_at_quantile(x)).unwrap();
        }
        writeln!(
            csv,
            ",{},{:.0},{},{},{}",
            h.max(),
            h.mean(),
            ratio(0.5),
            ratio(0.99),
            ratio(0.999)
        )
        .unwrap();
    }
    print!("{csv}");
    if let Some(path) = out {
        if let Some(dir) = std::path::Path::new(&path).parent() {
            std::fs::create_dir_all(dir).expect("create output folder");
        }
        std::fs::write(&path, csv).expect("write CSV");
        eprintln!("wrote {path}");
    }
}
