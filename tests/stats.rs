//! `Queue::stats`: the counters add up (every pushed item is retained or
//! removed once, by one cause), refusals are counted, the oldest item's age
//! follows the clock, and each group's figures match its own handle's.

use chunkq::{Clock, Overflow, Queue};
use std::thread;
use std::time::Duration;

#[test]
fn an_empty_queue() {
    let q: Queue<u8> = Queue::new("stats-empty");
    let s = q.stats();
    assert_eq!(s.name, "stats-empty");
    assert_eq!((s.len, s.memory_used, s.pushed, s.refused), (0, 0, 0, 0));
    assert_eq!((s.released, s.expired, s.evicted), (0, 0, 0));
    assert_eq!(s.memory_limit, q.memory_limit());
    assert_eq!(s.oldest_age, None);
    assert!(s.groups.is_empty());
}

#[test]
fn every_pushed_item_is_retained_or_removed_once_by_one_cause() {
    let clock = Clock::manual();
    let q: Queue<u64> = Queue::builder("stats-causes")
        .clock(clock.clone())
        .ttl(Duration::from_secs(10))
        .memory_limit(64 << 10)
        .overflow(Overflow::DropOldest)
        .sweep_interval(None)
        .build()
        .unwrap();
    let reader = q.subscribe();
    let idle = q.subscribe();
    let chunk = q.chunk_capacity() as u64;
    // Released: both groups read a whole chunk.
    q.push_batch(0..chunk).unwrap();
    assert_eq!(reader.try_iter().count() as u64, chunk);
    assert_eq!(idle.try_iter().count() as u64, chunk);
    // Expired: 100 items age out.
    q.push_batch(0..100).unwrap();
    clock.advance(Duration::from_secs(11));
    assert_eq!(q.expire_now(), 100);
    // Evicted: pushing past the budget under DropOldest.
    let mut pushed = chunk + 100;
    for i in 0..3000 {
        q.push(i).unwrap();
        pushed += 1;
    }
    let s = q.stats();
    assert_eq!(s.pushed, pushed);
    assert!(s.released >= chunk, "{s:?}");
    assert_eq!(s.expired, 100);
    assert!(s.evicted > 0, "{s:?}");
    assert_eq!(s.pushed, s.len as u64 + s.released + s.expired + s.evicted);
    assert_eq!(s.len, q.len());
    assert_eq!(s.memory_used, q.memory_used());
    for (g, c) in s.groups.iter().zip([&reader, &idle]) {
        assert_eq!(g.id, c.id());
        assert_eq!(g.missed, c.missed());
        assert_eq!(g.lag, c.lag());
        assert_eq!(g.missed.expired, 100);
        assert_eq!(g.missed.evicted, s.evicted);
    }
}

#[test]
fn refusals_are_counted_and_closed_ones_are_not() {
    let q: Queue<Vec<u8>> = Queue::builder("stats-refused")
        .memory_limit(4096)
        .overflow(Overflow::Reject)
        .build()
        .unwrap();
    let _c = q.subscribe();
    let mut refused = 0;
    for _ in 0..100 {
        if q.push(vec![0; 200]).is_err() {
            refused += 1;
        }
    }
    assert!(q.push(vec![0; 1 << 20]).is_err()); // larger than the budget
    refused += 1;
    let s = q.stats();
    assert_eq!(s.refused, refused);
    assert_eq!(s.pushed + refused, 101);
    q.close();
    assert!(q.push(vec![1]).is_err());
    assert_eq!(
        q.stats().refused,
        refused,
        "a closed queue's refusal is not `Full`"
    );
}

#[test]
fn the_oldest_age_follows_the_clock() {
    let clock = Clock::manual();
    let q: Queue<u8> = Queue::builder("stats-age")
        .clock(clock.clone())
        .build()
        .unwrap();
    let c = q.subscribe();
    q.push(1).unwrap();
    clock.advance(Duration::from_secs(3));
    q.push(2).unwrap();
    assert_eq!(q.stats().oldest_age, Some(Duration::from_secs(3)));
    // Reading does not remove (the chunk is not finished): still 3 s.
    c.try_recv().unwrap();
    assert_eq!(q.stats().oldest_age, Some(Duration::from_secs(3)));
    clock.advance(Duration::from_secs(1));
    assert_eq!(q.stats().oldest_age, Some(Duration::from_secs(4)));
}

#[test]
fn the_counters_add_up_after_a_concurrent_run() {
    let q: Queue<u64> = Queue::builder("stats-concurrent")
        .memory_limit(32 << 10)
        .overflow(Overflow::DropOldest)
        .ttl(Duration::from_millis(2))
        .sweep_interval(Some(Duration::from_millis(1)))
        .build()
        .unwrap();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let c = q.subscribe();
            thread::spawn(move || {
                let mut n = 0u64;
                while c.recv().is_ok() {
                    n += 1;
                }
                (n, c.missed())
            })
        })
        .collect();
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                for i in 0..20_000u64 {
                    q.push(p * 1_000_000 + i).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    // A stats call while consumers still run must not disturb them.
    let mid = q.stats();
    assert!(mid.pushed <= 40_000);
    q.close();
    let results: Vec<_> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
    let s = q.stats();
    assert_eq!(s.pushed, 40_000);
    assert_eq!(s.pushed, s.len as u64 + s.released + s.expired + s.evicted);
    for (n, missed) in results {
        // Each group read or missed every item.
        assert_eq!(n + missed.total(), 40_000);
    }
}
