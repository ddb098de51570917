//! Broadcast: every independent consumer (`subscribe`) sees every item, in
//! the same order, without copying the payload.

mod common;

use chunkq::{Queue, TryRecvError};
use common::size;
use std::sync::Arc;
use std::thread;

#[test]
fn every_subscriber_sees_every_item() {
    let q: Queue<u32> = Queue::builder("fan").sweep_interval(None).build().unwrap();
    let consumers: Vec<_> = (0..3).map(|_| q.subscribe()).collect();
    for i in 0..100 {
        q.push(i).unwrap();
    }
    for c in &consumers {
        let got: Vec<u32> = c.try_iter().map(|d| *d.payload()).collect();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Empty);
    }
}

#[test]
fn subscribers_read_independently() {
    let q: Queue<u32> = Queue::builder("fan-indep")
        .sweep_interval(None)
        .build()
        .unwrap();
    let fast = q.subscribe();
    let slow = q.subscribe();
    for i in 0..10 {
        q.push(i).unwrap();
    }
    assert_eq!(fast.try_iter().count(), 10);
    assert_eq!(
        slow.lag(),
        10,
        "one consumer's reads do not move another's cursor"
    );
    assert_eq!(*slow.try_recv().unwrap().payload(), 0);
}

#[test]
fn a_broadcast_shares_one_payload() {
    let q: Queue<Arc<String>> = Queue::builder("fan-share")
        .sweep_interval(None)
        .build()
        .unwrap();
    let (a, b) = (q.subscribe(), q.subscribe());
    q.push(Arc::new("big".into())).unwrap();
    let (da, db) = (a.try_recv().unwrap(), b.try_recv().unwrap());
    assert!(
        std::ptr::eq(da.payload(), db.payload()),
        "both deliveries point at one item"
    );
    assert_eq!(da.id(), db.id());
    assert_ne!(da.consumer_id(), db.consumer_id());
}

#[test]
fn concurrent_subscribers_see_the_same_total_order() {
    let producers = 3u32;
    let per = size(20_000) as u32;
    let q: Queue<(u32, u32)> = Queue::builder("fan-mt")
        .memory_limit(64 << 20)
        .sweep_interval(None)
        .build()
        .unwrap();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let c = q.subscribe();
            thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(d) = c.recv() {
                    got.push((d.seq(), *d.payload()));
                }
                got
            })
        })
        .collect();
    let writers: Vec<_> = (0..producers)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                for n in 0..per {
                    q.push((p, n)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    q.close();
    let logs: Vec<Vec<(u64, (u32, u32))>> =
        readers.into_iter().map(|r| r.join().unwrap()).collect();
    let total = (producers * per) as usize;
    for log in &logs {
        assert_eq!(log.len(), total);
        // Sequence numbers 0..total, each once, in order.
        assert!(log.iter().enumerate().all(|(i, (s, _))| *s == i as u64));
    }
    // The same item at every sequence number for every consumer.
    assert!(logs.windows(2).all(|w| w[0] == w[1]));
    // And every pushed payload is there.
    let mut payloads: Vec<(u32, u32)> = logs[0].iter().map(|(_, p)| *p).collect();
    payloads.sort_unstable();
    let want: Vec<(u32, u32)> = (0..producers)
        .flat_map(|p| (0..per).map(move |n| (p, n)))
        .collect();
    assert_eq!(payloads, want);
}

#[test]
fn a_late_subscriber_catches_up_on_retained_history() {
    let q: Queue<u32> = Queue::builder("fan-late")
        .sweep_interval(None)
        .build()
        .unwrap();
    let early = q.subscribe();
    for i in 0..5 {
        q.push(i).unwrap();
    }
    let late = q.subscribe();
    q.push(5).unwrap();
    let got: Vec<u32> = late.try_iter().map(|d| *d.payload()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
    assert_eq!(early.try_iter().count(), 6);
}
