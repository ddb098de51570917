//! push + try_recv on one thread (one producer, one consumer, no
//! contention): the cost of the whole item path, chunkq beside its peers.
//!
//! - `spsc/ping`: push one item, receive it, check it.
//! - `spsc/burst-1000`: push 1000, receive 1000, check them in order.
//!   Batch rows beside them: `chunkq-batch` (`push_batch` of 64,
//!   `try_recv_many(.., 64)`), `kanal-batch` (sends one by one,
//!   `drain_into`), `crossbeam-channel-batch` (sends one by one, `try_iter`).
//!
//! chunkq runs with every feature on (UUID, timestamps, history,
//! accounting, TTL); its consumer trims what it has read, so the queue stays
//! small. Every received value is compared with the one pushed.

#[allow(dead_code)]
mod harness;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

/// A push/try_recv pair under test.
trait Pipe {
    fn push(&self, v: u64);
    fn pop(&self) -> Option<u64>;
}

struct Chunkq(chunkq::Queue<u64>, chunkq::Consumer<u64>);
impl Pipe for Chunkq {
    fn push(&self, v: u64) {
        if let Err(e) = self.0.push(v) {
            panic!("chunkq push failed: {e:?}");
        }
    }
    fn pop(&self) -> Option<u64> {
        self.1.try_recv().ok().map(|d| *d.payload())
    }
}

impl Pipe for crossbeam_queue::SegQueue<u64> {
    fn push(&self, v: u64) {
        crossbeam_queue::SegQueue::push(self, v)
    }
    fn pop(&self) -> Option<u64> {
        crossbeam_queue::SegQueue::pop(self)
    }
}

impl Pipe for concurrent_queue::ConcurrentQueue<u64> {
    fn push(&self, v: u64) {
        concurrent_queue::ConcurrentQueue::push(self, v).unwrap()
    }
    fn pop(&self) -> Option<u64> {
        concurrent_queue::ConcurrentQueue::pop(self).ok()
    }
}

impl Pipe
    for (
        crossbeam_channel::Sender<u64>,
        crossbeam_channel::Receiver<u64>,
    )
{
    fn push(&self, v: u64) {
        self.0.send(v).unwrap()
    }
    fn pop(&self) -> Option<u64> {
        self.1.try_recv().ok()
    }
}

impl Pipe for (kanal::Sender<u64>, kanal::Receiver<u64>) {
    fn push(&self, v: u64) {
        self.0.send(v).unwrap()
    }
    fn pop(&self) -> Option<u64> {
        self.1.try_recv().unwrap()
    }
}

impl Pipe for (flume::Sender<u64>, flume::Receiver<u64>) {
    fn push(&self, v: u64) {
        self.0.send(v).unwrap()
    }
    fn pop(&self) -> Option<u64> {
        self.1.try_recv().ok()
    }
}

/// tokio's receiver needs `&mut` to receive.
struct Tokio(
    tokio::sync::broadcast::Sender<u64>,
    std::cell::RefCell<tokio::sync::broadcast::Receiver<u64>>,
);
impl Pipe for Tokio {
    fn push(&self, v: u64) {
        self.0.send(v).unwrap();
    }
    fn pop(&self) -> Option<u64> {
        self.1.borrow_mut().try_recv().ok()
    }
}

/// Builds a fresh pipe.
type Make = Box<dyn Fn() -> Box<dyn Pipe>>;

fn peers() -> Vec<(&'static str, Make)> {
    vec![
        (
            "chunkq",
            Box::new(|| {
                let q = harness::chunkq_queue(1 << 20);
                let c = q.subscribe();
                Box::new(Chunkq(q, c)) as Box<dyn Pipe>
            }),
        ),
        (
            "crossbeam-segqueue",
            Box::new(|| Box::new(crossbeam_queue::SegQueue::new())),
        ),
        (
            "concurrent-queue",
            Box::new(|| Box::new(concurrent_queue::ConcurrentQueue::unbounded())),
        ),
        (
            "crossbeam-channel",
            Box::new(|| Box::new(crossbeam_channel::unbounded())),
        ),
        ("kanal", Box::new(|| Box::new(kanal::unbounded()))),
        ("flume", Box::new(|| Box::new(flume::unbounded()))),
        (
            "tokio-broadcast",
            Box::new(|| {
                let (tx, rx) = tokio::sync::broadcast::channel(2048);
                Box::new(Tokio(tx, std::cell::RefCell::new(rx)))
            }),
        ),
    ]
}

fn spsc(c: &mut Criterion) {
    // Dynamic dispatch costs every peer the same two indirect calls per item.
    let mut g = c.benchmark_group("spsc/ping");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    for (name, make) in peers() {
        let q = make();
        let mut i = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                q.push(black_box(i));
                assert_eq!(q.pop(), Some(i));
                i += 1;
            })
        });
    }
    g.finish();

    const BURST: u64 = 1000;
    let mut g = c.benchmark_group("spsc/burst-1000");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(BURST));
    for (name, make) in peers() {
        let q = make();
        g.bench_function(name, |b| {
            b.iter(|| {
                for i in 0..BURST {
                    q.push(black_box(i));
                }
                for i in 0..BURST {
                    assert_eq!(q.pop(), Some(i));
                }
            })
        });
    }
    let b64 = harness::BATCH as u64;
    {
        let q = harness::chunkq_queue(1 << 20);
        let c = q.subscribe();
        let mut buf = Vec::with_capacity(harness::BATCH);
        g.bench_function("chunkq-batch", |b| {
            b.iter(|| {
                let mut i = 0;
                while i < BURST {
                    let end = BURST.min(i + b64);
                    if let Err(e) = q.push_batch(black_box(i..end)) {
                        panic!("chunkq push_batch failed: {e:?}");
                    }
                    i = end;
                }
                let mut want = 0;
                while want < BURST {
                    c.try_recv_many(&mut buf, harness::BATCH)
                        .expect("chunkq try_recv_many");
                    for d in buf.drain(..) {
                        assert_eq!(*d.payload(), want);
                        want += 1;
                    }
                }
            })
        });
    }
    {
        let (tx, rx) = kanal::unbounded::<u64>();
        let mut buf = Vec::with_capacity(BURST as usize);
        g.bench_function("kanal-batch", |b| {
            b.iter(|| {
                for i in 0..BURST {
                    tx.send(black_box(i)).unwrap();
                }
                rx.drain_into(&mut buf).unwrap();
                assert_eq!(buf.len() as u64, BURST);
                for (i, v) in buf.drain(..).enumerate() {
                    assert_eq!(v, i as u64);
                }
            })
        });
    }
    {
        let (tx, rx) = crossbeam_channel::unbounded::<u64>();
        g.bench_function("crossbeam-channel-batch", |b| {
            b.iter(|| {
                for i in 0..BURST {
                    tx.send(black_box(i)).unwrap();
                }
                let mut want = 0;
                for v in rx.try_iter() {
                    assert_eq!(v, want);
                    want += 1;
                }
                assert_eq!(want, BURST);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, spsc);
criterion_main!(benches);
