//! A loom model written as a user of chunkq would write one: its own
//! payload type, two threads, `loom::model`, only the public API and the
//! documented cfgs (`--cfg loom --cfg crossbeam_loom`), and none of this
//! crate's harness (`tests/common`) nor `chunkq::__loom`. The README's
//! "Testing code that uses chunkq" section points here.
#![cfg(loom)]

use chunkq::{Clock, Queue, TryRecvError};
use loom::thread;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The user's payload: an order with an id, counted when dropped (a std
/// atomic: the count is read only after the model's threads are joined).
#[derive(Debug)]
struct Order {
    id: u32,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Order {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

impl chunkq::EstimateSize for Order {}

/// A producer thread and a consumer on the main thread: every order is
/// received once, in order, whatever the interleaving; after the queue and
/// its consumer are dropped, every order has been dropped exactly once.
#[test]
fn producer_and_consumer() {
    loom::model(|| {
        let dropped = Arc::new(AtomicUsize::new(0));
        {
            let q: Queue<Order> = Queue::builder("orders")
                .clock(Clock::manual())
                .sweep_interval(None)
                .ttl(Duration::from_secs(60))
                .build()
                .unwrap();
            let c = q.subscribe();
            let producer = {
                let q = q.clone();
                let dropped = dropped.clone();
                thread::spawn(move || {
                    for id in 0..2 {
                        let order = Order {
                            id,
                            dropped: dropped.clone(),
                        };
                        assert!(q.push(order).is_ok());
                    }
                })
            };
            let mut got = Vec::new();
            while got.len() < 2 {
                match c.try_recv() {
                    Ok(d) => got.push(d.payload().id),
                    Err(TryRecvError::Empty) => thread::yield_now(),
                    Err(TryRecvError::Closed) => unreachable!("a handle is alive"),
                }
            }
            producer.join().unwrap();
            assert_eq!(got, [0, 1]);
            drop(q);
            assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Closed);
        }
        assert_eq!(
            dropped.load(Ordering::Relaxed),
            2,
            "every order dropped once"
        );
    });
}

/// The other way round: the spawned thread consumes and hands its
/// deliveries back through `join`; the main thread pushes, then drops the
/// queue first and the deliveries last, after the consumer, so the last
/// references to the queue's memory go with a `Delivery`.
#[test]
fn deliveries_outlive_the_queue() {
    loom::model(|| {
        let dropped = Arc::new(AtomicUsize::new(0));
        {
            let q: Queue<Order> = Queue::builder("orders")
                .clock(Clock::manual())
                .sweep_interval(None)
                .build()
                .unwrap();
            let c = q.subscribe();
            let consumer = thread::spawn(move || {
                let mut got = Vec::new();
                while got.len() < 2 {
                    match c.try_recv() {
                        Ok(d) => got.push(d),
                        Err(TryRecvError::Empty) => thread::yield_now(),
                        Err(TryRecvError::Closed) => unreachable!("a handle is alive"),
                    }
                }
                got
            });
            for id in 0..2 {
                let order = Order {
                    id,
                    dropped: dropped.clone(),
                };
                assert!(q.push(order).is_ok());
            }
            drop(q);
            let got = consumer.join().unwrap();
            let ids: Vec<u32> = got.iter().map(|d| d.payload().id).collect();
            assert_eq!(ids, [0, 1]);
            assert_eq!(dropped.load(Ordering::Relaxed), 0, "still held");
        }
        assert_eq!(
            dropped.load(Ordering::Relaxed),
            2,
            "every order dropped once"
        );
    });
}
