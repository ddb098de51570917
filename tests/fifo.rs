//! Order: a consumer sees sequence numbers strictly increasing, and one
//! producer's items in its push order (ARCHITECTURE.md invariant 1).

mod common;

use chunkq::{Queue, TryRecvError};
use common::size;
use std::collections::HashMap;
use std::thread;

#[test]
fn one_producer_in_push_order() {
    let n = size(5_000) as u64;
    let q: Queue<u64> = Queue::builder("fifo").sweep_interval(None).build().unwrap();
    let c = q.subscribe();
    for i in 0..n {
        q.push(i).unwrap();
    }
    for i in 0..n {
        let d = c.try_recv().unwrap();
        assert_eq!(*d.payload(), i);
        assert_eq!(d.seq(), i);
    }
    assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Empty);
}

#[test]
fn interleaved_push_and_receive_keep_order() {
    let q: Queue<u64> = Queue::builder("fifo-ilv")
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    let mut next_pushed = 0;
    let mut next_read = 0;
    for round in 0..size(300) as u64 {
        for _ in 0..(round % 7 + 1) {
            q.push(next_pushed).unwrap();
            next_pushed += 1;
        }
        for _ in 0..(round % 5 + 1) {
            match c.try_recv() {
                Ok(d) => {
                    assert_eq!(*d.payload(), next_read);
                    next_read += 1;
                }
                Err(e) => {
                    assert_eq!(e, TryRecvError::Empty);
                    assert_eq!(next_read, next_pushed);
                }
            }
        }
    }
    assert!(next_read > 0);
}

#[test]
fn each_producer_keeps_its_order_under_concurrency() {
    let producers = 4u64;
    let per = size(20_000) as u64;
    let q: Queue<(u64, u64)> = Queue::builder("fifo-mp")
        .memory_limit(64 << 20)
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    let reader = thread::spawn(move || {
        let mut next: HashMap<u64, u64> = HashMap::new();
        let mut last_seq = None;
        let mut count = 0;
        while let Ok(d) = c.recv() {
            let (p, n) = *d.payload();
            let want = next.entry(p).or_insert(0);
            assert_eq!(n, *want, "producer {p}: got {n}, expected {want}");
            *want += 1;
            if let Some(prev) = last_seq {
                assert!(d.seq() > prev, "sequence went from {prev} to {}", d.seq());
            }
            last_seq = Some(d.seq());
            count += 1;
        }
        (count, next)
    });
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                for n in 0..per {
                    q.push((p, n)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    q.close();
    let (count, next) = reader.join().unwrap();
    assert_eq!(count, producers * per);
    for p in 0..producers {
        assert_eq!(next[&p], per);
    }
}
