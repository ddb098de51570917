//! TTL expiry: a manual clock tests a 10-minute TTL in milliseconds; a real
//! small TTL tests the background sweeps (the housekeeping thread itself is
//! tested in `housekeeping.rs`).

mod common;

use chunkq::{Clock, Queue, Start};
use common::wait_for;
use std::time::Duration;

const TEN_MINUTES: Duration = Duration::from_secs(600);

fn manual(name: &str) -> (Queue<u64>, Clock) {
    let clock = Clock::manual();
    let q = Queue::builder(name)
        .ttl(TEN_MINUTES)
        .clock(clock.clone())
        .sweep_interval(None)
        .build()
        .unwrap();
    (q, clock)
}

#[test]
fn ten_minute_ttl_on_a_manual_clock() {
    let (q, clock) = manual("ttl-10min");
    assert_eq!(q.ttl(), TEN_MINUTES);
    let c = q.subscribe();
    let notices = c.notifications();
    for i in 0..5 {
        q.push(i).unwrap();
    }
    clock.advance(TEN_MINUTES - Duration::from_millis(1));
    assert_eq!(q.expire_now(), 0, "one millisecond short of the TTL");
    assert_eq!(q.len(), 5);
    clock.advance(Duration::from_millis(1));
    assert_eq!(q.expire_now(), 5, "expired at exactly the TTL");
    assert_eq!(q.len(), 0);
    assert_eq!(q.memory_used(), 0);
    assert_eq!(c.missed().expired, 5);
    assert_eq!(c.missed().evicted, 0);
    let n = notices.try_recv().unwrap();
    assert_eq!((n.expired, n.evicted), (5, 0));
    assert_eq!(n.at, clock.now(), "stamped with the queue's clock");
    assert!(notices.try_recv().is_err());
    assert_eq!(q.expire_now(), 0, "nothing left");
}

#[test]
fn items_expire_in_enqueue_order() {
    let (q, clock) = manual("ttl-order");
    let c = q.subscribe();
    for i in 0..3 {
        q.push(i).unwrap();
    }
    clock.advance(Duration::from_secs(300));
    for i in 3..5 {
        q.push(i).unwrap();
    }
    clock.advance(Duration::from_secs(300));
    assert_eq!(q.expire_now(), 3);
    assert_eq!(c.missed().expired, 3);
    assert_eq!(*c.try_recv().unwrap().payload(), 3);
    clock.advance(Duration::from_secs(300));
    assert_eq!(
        q.expire_now(),
        1,
        "item 3 was read (released), item 4 expires"
    );
    assert_eq!(c.missed().expired, 4);
    assert!(c.try_recv().is_err());
}

#[test]
fn only_unread_items_count_as_expired() {
    let (q, clock) = manual("ttl-partial");
    let fast = q.subscribe();
    let slow = q.subscribe();
    for i in 0..10 {
        q.push(i).unwrap();
    }
    for _ in 0..7 {
        fast.try_recv().unwrap();
    }
    clock.advance(TEN_MINUTES);
    assert_eq!(q.expire_now(), 10);
    assert_eq!(fast.missed().expired, 3);
    assert_eq!(slow.missed().expired, 10);
}

#[test]
fn an_old_item_is_delivered_until_a_sweep_expires_it() {
    // Between sweeps an item past its TTL is still retained and may be
    // read; then it is delivered, not missed (as the docs say).
    let (q, clock) = manual("ttl-between");
    let c = q.subscribe();
    q.push(1).unwrap();
    q.push(2).unwrap();
    clock.advance(TEN_MINUTES * 2);
    assert_eq!(*c.try_recv().unwrap().payload(), 1);
    assert_eq!(q.expire_now(), 1, "only the unread item expires");
    assert_eq!(c.missed().expired, 1);
    assert!(c.try_recv().is_err());
}

#[test]
fn whole_chunks_expire_and_every_consumer_counts_them() {
    let (q, clock) = manual("ttl-chunks");
    let a = q.subscribe();
    let b = q.subscribe();
    let b2 = b.clone();
    for i in 0..2500 {
        q.push(i).unwrap();
    }
    let late = q.subscribe_from(Start::Latest);
    clock.advance(TEN_MINUTES);
    assert_eq!(q.expire_now(), 2500);
    assert_eq!(a.missed().expired, 2500);
    assert_eq!(b.missed().expired, 2500);
    assert_eq!(b2.missed(), b.missed());
    assert_eq!(late.missed().expired, 0);
    q.push(2500).unwrap();
    assert_eq!(a.try_recv().unwrap().seq(), 2500);
}

#[test]
fn expiry_without_consumers() {
    let (q, clock) = manual("ttl-nobody");
    for i in 0..1500 {
        q.push(i).unwrap();
    }
    clock.advance(TEN_MINUTES);
    assert_eq!(q.expire_now(), 1500);
    assert!(q.is_empty());
    assert_eq!(q.memory_used(), 0);
}

#[test]
fn the_sweeper_thread_expires_items_on_a_real_clock() {
    let q: Queue<u64> = Queue::builder("ttl-real")
        .ttl(Duration::from_millis(20))
        .sweep_interval(Some(Duration::from_millis(5)))
        .build()
        .unwrap();
    let c = q.subscribe();
    let notices = c.notifications();
    for i in 0..100 {
        q.push(i).unwrap();
    }
    // `missed()` counts a removal as soon as `head` has moved (it catches
    // the cursor up itself); the remover gives the bytes back just after
    // its `head` CAS, so wait for both.
    wait_for(
        "the sweeper expires 100 items and releases their bytes",
        || c.missed().expired == 100 && q.memory_used() == 0,
    );
    assert!(q.is_empty());
    assert_eq!(q.memory_used(), 0);
    let total: u64 = notices.try_iter().map(|n| n.expired).sum();
    assert_eq!(total, 100);
    assert!(c.try_recv().is_err());
}
