//! `push` alone on one thread, chunkq beside the unbounded peers.
//!
//! Nothing reads, so everything pushed is retained: every implementation
//! gets a fresh container per batch of `BATCH` pushes, built and dropped
//! outside the timed span, so memory stays bounded whatever iteration count
//! criterion picks. chunkq runs with every feature on (UUID, timestamps,
//! history, accounting, TTL) and a budget far above a batch; a failed push
//! panics.

#[allow(dead_code)]
mod harness;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Pushes per fresh container.
const BATCH: u64 = 100_000;

/// Times `iters` pushes, `BATCH` at a time into a fresh container from
/// `make`; `check` runs untimed on each full container.
fn batched<Q>(
    iters: u64,
    mut make: impl FnMut() -> Q,
    push: impl Fn(&Q, u64),
    check: impl Fn(&Q, u64),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let k = left.min(BATCH);
        let q = make();
        let t0 = Instant::now();
        for i in 0..k {
            push(&q, black_box(i));
        }
        total += t0.elapsed();
        check(&q, k);
        drop(q);
        left -= k;
    }
    total
}

fn push(c: &mut Criterion) {
    let mut g = c.benchmark_group("push/one-thread");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    g.bench_function("chunkq", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                || harness::chunkq_queue(BATCH),
                |q, v| {
                    if let Err(e) = q.push(v) {
                        panic!("chunkq push failed: {e:?}");
                    }
                },
                |q, k| assert_eq!(q.len() as u64, k),
            )
        })
    });
    // `push_batch` of `harness::BATCH` (64) items per call: one budget
    // reservation, one sequence reservation and one wake-up per batch.
    g.bench_function("chunkq-batch", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let k = left.min(BATCH);
                let q = harness::chunkq_queue(BATCH);
                let t0 = Instant::now();
                let mut i = 0;
                while i < k {
                    let end = k.min(i + harness::BATCH as u64);
                    if let Err(e) = q.push_batch(black_box(i..end)) {
                        panic!("chunkq push_batch failed: {e:?}");
                    }
                    i = end;
                }
                total += t0.elapsed();
                assert_eq!(q.len() as u64, k);
                drop(q);
                left -= k;
            }
            total
        })
    });
    g.bench_function("crossbeam-segqueue", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                crossbeam_queue::SegQueue::new,
                |q, v| q.push(v),
                |q, k| assert_eq!(q.len() as u64, k),
            )
        })
    });
    g.bench_function("crossbeam-channel", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                crossbeam_channel::unbounded,
                |(tx, _rx), v| tx.send(v).unwrap(),
                |(_, rx), k| assert_eq!(rx.len() as u64, k),
            )
        })
    });
    g.bench_function("kanal", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                kanal::unbounded,
                |(tx, _rx), v| tx.send(v).unwrap(),
                |(_, rx), k| assert_eq!(rx.len() as u64, k),
            )
        })
    });
    g.bench_function("flume", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                flume::unbounded,
                |(tx, _rx), v| tx.send(v).unwrap(),
                |(_, rx), k| assert_eq!(rx.len() as u64, k),
            )
        })
    });
    g.bench_function("concurrent-queue", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                concurrent_queue::ConcurrentQueue::unbounded,
                |q, v| q.push(v).unwrap(),
                |q, k| assert_eq!(q.len() as u64, k),
            )
        })
    });
    g.bench_function("tokio-broadcast", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                || tokio::sync::broadcast::channel::<u64>(BATCH.next_power_of_two() as usize),
                |(tx, _rx), v| {
                    tx.send(v).unwrap();
                },
                |(_, rx), k| assert_eq!(rx.len() as u64, k),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, push);
criterion_main!(benches);
