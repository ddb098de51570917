//! (e) try_recv vs a `DropOldest` eviction by a producer: the budget holds
//! `cap` items, so each further push evicts the oldest unread one (after
//! releasing what was read). Each item is delivered or counted as evicted,
//! exactly once, and the accounted bytes never exceed the limit.
#![cfg(loom)]

mod common;

use chunkq::Overflow;
use common::{assert_in_order, drain, ids, item_bytes, model, queue, seqs};
use loom::thread;

/// `cap` items fill the budget; a spawned consumer drains while the main
/// thread pushes `extra` more.
fn recv_vs_eviction(cap: usize, extra: usize) {
    model(move |counter| {
        let limit = cap * item_bytes(counter);
        let (q, _clock) = queue(limit, Overflow::DropOldest);
        let c = q.subscribe();
        let notices = c.notifications();
        for i in 0..cap {
            q.push(counter.make(i)).unwrap();
        }
        assert_eq!(q.memory_used(), limit);
        let reader = {
            let c = c.clone();
            thread::spawn(move || drain(&c))
        };
        for i in cap..cap + extra {
            q.push(counter.make(i)).unwrap();
            assert!(q.memory_used() <= limit);
        }
        let mut got = reader.join().unwrap();
        got.extend(drain(&c));
        assert_in_order(&got);
        let _ = ids(&got);
        let missed = c.missed();
        assert_eq!(missed.expired, 0);
        assert_eq!(
            got.len() as u64 + missed.evicted,
            (cap + extra) as u64,
            "delivered {:?}, evicted-missed {}",
            seqs(&got),
            missed.evicted
        );
        let noticed: u64 = notices.try_iter().map(|x| x.evicted).sum();
        assert_eq!(noticed, missed.evicted);
        assert!(q.memory_used() <= limit);
    });
}

/// Room for one: the second push evicts the first unless it was read.
#[test]
fn cap_one_push_one() {
    recv_vs_eviction(1, 1);
}

/// Room for two (one chunk): the third push evicts seq 0 in chunk 0 while
/// the reader may stand on it.
#[test]
fn cap_two_push_one() {
    recv_vs_eviction(2, 1);
}

/// Room for one, two more pushes: evictions walk across the chunk boundary.
#[test]
fn cap_one_push_two() {
    recv_vs_eviction(1, 2);
}
