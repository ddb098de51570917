//! Every payload is dropped exactly once, and never while a reader can still
//! reach it (ARCHITECTURE.md invariant 5). Payloads count their drops; removed
//! items are freed through crossbeam-epoch, so the tests flush it.

mod common;

use chunkq::{Clock, Overflow, PushError, Queue};
use common::{DropLog, Tracked, flush_until};
use std::thread;
use std::time::Duration;

/// The accounted bytes of one `Tracked` item.
fn tracked_bytes() -> usize {
    common::item_bytes(DropLog::new(1).item(0))
}

fn queue(name: &str) -> Queue<Tracked> {
    Queue::builder(name).sweep_interval(None).build().unwrap()
}

#[test]
fn read_items_are_dropped_once_released_and_no_delivery_holds_them() {
    let log = DropLog::new(10);
    let q = queue("drops-read");
    let c = q.subscribe();
    for i in 0..10 {
        q.push(log.item(i)).unwrap();
    }
    let deliveries: Vec<_> = c.try_iter().collect();
    assert_eq!(deliveries.len(), 10);
    drop(deliveries);
    assert_eq!(log.dropped(), 0, "still retained by the queue");
    assert_eq!(q.expire_now(), 0); // releases what every consumer read
    assert_eq!(q.len(), 0);
    assert!(flush_until(|| log.dropped() == 10));
    log.assert_all_dropped_once();
    drop((q, c));
    log.assert_all_dropped_once();
}

#[test]
fn a_delivery_keeps_its_payload_alive_after_release() {
    let log = DropLog::new(3);
    let q = queue("drops-held");
    let c = q.subscribe();
    for i in 0..3 {
        q.push(log.item(i)).unwrap();
    }
    let held = c.try_recv().unwrap();
    c.try_recv().unwrap();
    c.try_recv().unwrap();
    q.expire_now();
    assert!(flush_until(|| log.dropped() == 2));
    // Flush more: the held payload must survive any amount of collection.
    for _ in 0..1000 {
        crossbeam_epoch::pin().flush();
    }
    log.assert_dropped_exactly(|i| i != 0);
    assert_eq!(held.payload().id, 0);
    drop(held);
    log.assert_all_dropped_once();
}

#[test]
fn finishing_a_chunk_releases_it() {
    let q = queue("drops-chunk");
    let k = q.chunk_capacity();
    // Two and a half chunks.
    let n = 2 * k + k / 2;
    let log = DropLog::new(n);
    let c = q.subscribe();
    for i in 0..n {
        q.push(log.item(i)).unwrap();
    }
    for i in 0..n {
        assert_eq!(c.try_recv().unwrap().payload().id, i);
    }
    // Two whole chunks were read and released; the third is still retained.
    assert_eq!(q.retained(), n - 2 * k);
    assert!(flush_until(|| log.dropped() == 2 * k));
    log.assert_dropped_exactly(|i| i < 2 * k);
    drop(q);
    drop(c);
    // The rest was still inside: dropped at once with the last handle.
    log.assert_all_dropped_once();
}

#[test]
fn dropping_the_queue_drops_what_is_inside() {
    let n = 3500; // several chunks
    let log = DropLog::new(n);
    let q = queue("drops-inside");
    for i in 0..n {
        q.push(log.item(i)).unwrap();
    }
    assert_eq!(log.dropped(), 0);
    drop(q);
    log.assert_all_dropped_once();
}

#[test]
fn consumers_part_way_through_a_chunk() {
    let n = 1500;
    let log = DropLog::new(n);
    let q = queue("drops-partway");
    let a = q.subscribe();
    let b = q.subscribe();
    let b2 = b.clone();
    for i in 0..n {
        q.push(log.item(i)).unwrap();
    }
    let mut held = None;
    for i in 0..700 {
        let d = a.try_recv().unwrap();
        if i == 650 {
            held = Some(d);
        }
    }
    for i in 0..1200 {
        let member = if i % 3 == 0 { &b } else { &b2 };
        assert_eq!(member.try_recv().unwrap().payload().id, i);
    }
    drop(q);
    // Consumers still reach the items: nothing may be dropped that a reader
    // has not released.
    assert_eq!(a.try_recv().unwrap().payload().id, 700);
    assert_eq!(b2.try_recv().unwrap().payload().id, 1200);
    drop((a, b, b2));
    // What was still retained is dropped at once with the last handle; what
    // was released earlier (read by both groups) goes through the collector.
    for i in 701..n {
        assert_eq!(log.count(i), 1, "payload {i}");
    }
    assert!(flush_until(|| log.dropped() == n - 1));
    log.assert_dropped_exactly(|i| i != 650);
    assert_eq!(held.as_ref().unwrap().payload().id, 650);
    drop(held);
    log.assert_all_dropped_once();
}

#[test]
fn refused_payloads_come_back_undropped() {
    let log = DropLog::new(2);
    let per = tracked_bytes();
    let q: Queue<Tracked> = Queue::builder("drops-refused")
        .memory_limit(per * 64)
        .sweep_interval(None)
        .build()
        .unwrap();
    let mut n = 0;
    let fill = DropLog::new(1000);
    while q.push(fill.item(n)).is_ok() {
        n += 1;
    }
    assert_eq!(
        fill.dropped(),
        1,
        "only the refused filler, which we dropped"
    );
    match q.push(log.item(0)) {
        Err(PushError::Full(back)) => {
            assert_eq!(log.dropped(), 0);
            assert_eq!(back.id, 0);
        }
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(log.count(0), 1, "dropped once, by us");
    q.close();
    let back = q.push(log.item(1)).unwrap_err().into_inner();
    assert_eq!(log.count(1), 0);
    drop(back);
    log.assert_all_dropped_once();
    drop(q);
    assert_eq!(fill.dropped(), n + 1);
    fill.assert_no_double_drop();
}

#[test]
fn evicted_payloads_are_dropped_once() {
    let n = 100;
    let log = DropLog::new(n);
    let per = tracked_bytes();
    let q: Queue<Tracked> = Queue::builder("drops-evict")
        .memory_limit(per * 10)
        .overflow(Overflow::DropOldest)
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    for i in 0..n {
        q.push(log.item(i)).unwrap();
    }
    assert_eq!(c.missed().evicted, 90);
    assert!(flush_until(|| log.dropped() == 90));
    log.assert_dropped_exactly(|i| i < 90);
    let ids: Vec<usize> = c.try_iter().map(|d| d.payload().id).collect();
    assert_eq!(ids, (90..100).collect::<Vec<_>>());
    drop((q, c));
    assert!(flush_until(|| log.dropped() == n));
    log.assert_all_dropped_once();
}

#[test]
fn removed_payloads_still_awaiting_the_collector_when_the_queue_drops() {
    // Items evicted or expired just before the last handle drops: their
    // release is still queued in the epoch collector when the queue's memory
    // goes. Each must still be dropped exactly once, and nothing may touch
    // the freed queue afterwards.
    for round in 0..50 {
        let n = 40;
        let log = DropLog::new(n);
        let clock = Clock::manual();
        let q: Queue<Tracked> = Queue::builder("drops-pending")
            .memory_limit(tracked_bytes() * 8)
            .overflow(Overflow::DropOldest)
            .ttl(Duration::from_secs(1))
            .clock(clock.clone())
            .sweep_interval(None)
            .build()
            .unwrap();
        let c = q.subscribe();
        for i in 0..30 {
            q.push(log.item(i)).unwrap(); // evicts 22
        }
        clock.advance(Duration::from_secs(2));
        for i in 30..n {
            q.push(log.item(i)).unwrap(); // evicts the 8 older ones
        }
        assert_eq!(q.expire_now(), 0, "the old ones were all evicted");
        clock.advance(Duration::from_secs(2));
        assert_eq!(q.expire_now(), 8);
        if round % 2 == 0 {
            assert!(c.try_recv().is_err());
        }
        drop((q, c));
        assert!(flush_until(|| log.dropped() == n), "round {round}");
        log.assert_all_dropped_once();
        // More collection must not touch anything again.
        for _ in 0..1000 {
            crossbeam_epoch::pin().flush();
        }
        log.assert_all_dropped_once();
    }
}

#[test]
fn expired_payloads_are_dropped_once() {
    let n = 1200; // crosses a chunk boundary
    let log = DropLog::new(n);
    let clock = Clock::manual();
    let q: Queue<Tracked> = Queue::builder("drops-expire")
        .ttl(Duration::from_secs(600))
        .clock(clock.clone())
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    for i in 0..1100 {
        q.push(log.item(i)).unwrap();
    }
    clock.advance(Duration::from_secs(601));
    for i in 1100..n {
        q.push(log.item(i)).unwrap();
    }
    assert_eq!(q.expire_now(), 1100);
    assert_eq!(c.missed().expired, 1100);
    assert!(flush_until(|| log.dropped() == 1100));
    log.assert_dropped_exactly(|i| i < 1100);
    drop(q);
    assert_eq!(c.try_iter().count(), 100);
    drop(c);
    assert!(flush_until(|| log.dropped() == n));
    log.assert_all_dropped_once();
}

#[test]
fn concurrent_removal_drops_every_payload_once() {
    let producers = 3;
    let per = common::size(20_000);
    let log = DropLog::new(producers * per);
    let clock = Clock::manual();
    let bytes = tracked_bytes();
    let q: Queue<Tracked> = Queue::builder("drops-mt")
        .memory_limit(bytes * 300)
        .overflow(Overflow::DropOldest)
        .ttl(Duration::from_secs(1))
        .clock(clock.clone())
        .sweep_interval(None)
        .build()
        .unwrap();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let c = q.subscribe();
            let c2 = c.clone();
            [c, c2]
        })
        .flat_map(|cs| {
            cs.into_iter().map(|c| {
                thread::spawn(move || {
                    let mut n = 0usize;
                    while let Ok(d) = c.recv() {
                        assert!(d.payload().id < producers * per);
                        n += 1;
                    }
                    n
                })
            })
        })
        .collect();
    let writers: Vec<_> = (0..producers)
        .map(|p| {
            let (q, log) = (q.clone(), log.clone());
            thread::spawn(move || {
                for n in 0..per {
                    q.push(log.item(p * per + n)).unwrap();
                }
            })
        })
        .collect();
    let sweeper = {
        let q = q.clone();
        let clock = clock.clone();
        thread::spawn(move || {
            while !q.is_closed() {
                clock.advance(Duration::from_millis(500));
                q.expire_now();
                thread::yield_now();
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    q.close();
    sweeper.join().unwrap();
    let delivered: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(delivered > 0);
    log.assert_no_double_drop();
    drop(q);
    assert!(flush_until(|| log.dropped() == producers * per));
    log.assert_all_dropped_once();
}
