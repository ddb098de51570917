//! `Overflow::DropOldest`: a push into a full budget evicts the oldest items,
//! and every consumer that had not read them counts them as `evicted`.

mod common;

use chunkq::{Overflow, Queue};
use common::item_bytes;

/// A DropOldest queue of `u64`s with room for exactly `items` items.
fn queue(name: &str, items: usize) -> Queue<u64> {
    Queue::builder(name)
        .memory_limit(item_bytes(0u64) * items)
        .overflow(Overflow::DropOldest)
        .sweep_interval(None)
        .build()
        .unwrap()
}

#[test]
fn evicts_the_oldest_and_counts_them() {
    let q = queue("evict", 10);
    let c = q.subscribe();
    for i in 0..25 {
        q.push(i).unwrap();
        assert!(q.len() <= 10);
    }
    assert_eq!(q.len(), 10);
    assert_eq!(c.missed().evicted, 15);
    assert_eq!(c.missed().expired, 0);
    let got: Vec<u64> = c.try_iter().map(|d| *d.payload()).collect();
    assert_eq!(
        got,
        (15..25).collect::<Vec<_>>(),
        "the newest survive, in order"
    );
    assert_eq!(got.len() as u64 + c.missed().total(), 25);
}

#[test]
fn only_unread_items_count_as_missed() {
    let q = queue("evict-partial", 10);
    let ahead = q.subscribe();
    let behind = q.subscribe();
    for i in 0..10 {
        q.push(i).unwrap();
    }
    for _ in 0..6 {
        ahead.try_recv().unwrap();
    }
    for i in 10..20 {
        q.push(i).unwrap();
    }
    // Items 0..10 were evicted; `ahead` had read 6 of them.
    assert_eq!(ahead.missed().evicted, 4);
    assert_eq!(behind.missed().evicted, 10);
    assert_eq!(ahead.try_iter().count(), 10);
    assert_eq!(behind.try_iter().count(), 10);
}

#[test]
fn items_every_consumer_read_are_released_before_anything_is_evicted() {
    let q = queue("evict-trim-first", 10);
    let c = q.subscribe();
    for i in 0..10 {
        q.push(i).unwrap();
    }
    for _ in 0..4 {
        c.try_recv().unwrap();
    }
    for i in 10..14 {
        q.push(i).unwrap();
    }
    assert_eq!(c.missed().total(), 0, "the read items made room");
    let got: Vec<u64> = c.try_iter().map(|d| *d.payload()).collect();
    assert_eq!(got, (4..14).collect::<Vec<_>>());
}

#[test]
fn without_consumers_drop_oldest_keeps_the_newest() {
    let q = queue("evict-noone", 5);
    for i in 0..1000 {
        q.push(i).unwrap();
    }
    assert_eq!(q.len(), 5);
    let c = q.subscribe();
    let got: Vec<u64> = c.try_iter().map(|d| *d.payload()).collect();
    assert_eq!(got, [995, 996, 997, 998, 999]);
    assert_eq!(c.missed().total(), 0, "evicted before it subscribed");
}

#[test]
fn a_big_item_evicts_several_small_ones() {
    let q: Queue<Vec<u8>> = Queue::builder("evict-big")
        .memory_limit(item_bytes(Vec::<u8>::new()) * 20 + 2_000)
        .overflow(Overflow::DropOldest)
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    for _ in 0..20 {
        q.push(vec![0; 100]).unwrap();
    }
    assert_eq!(c.missed().evicted, 0);
    q.push(vec![1; 1_500]).unwrap();
    let evicted = c.missed().evicted;
    assert!(
        evicted >= 2,
        "1500 bytes need room of several 100-byte items"
    );
    assert!(q.memory_used() <= q.memory_limit());
    assert_eq!(c.try_iter().count() as u64 + evicted, 21);
}

#[test]
fn reject_never_evicts() {
    let q: Queue<u64> = Queue::builder("reject")
        .memory_limit(item_bytes(0u64) * 10)
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    let refused = (0..25).filter(|&i| q.push(i).is_err()).count();
    assert_eq!(refused, 15);
    assert_eq!(c.missed().total(), 0);
    let got: Vec<u64> = c.try_iter().map(|d| *d.payload()).collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>(), "the oldest survive");
}

#[test]
fn eviction_across_chunks() {
    let q = queue("evict-chunks", 1500);
    let c = q.subscribe();
    for i in 0..5000 {
        q.push(i).unwrap();
    }
    // An eviction frees what the push needs, then whole items within a
    // 64th of the budget more (1500 / 64: 23 items), so the queue keeps
    // between 1477 and 1500 items, the newest, in order.
    let evicted = c.missed().evicted;
    assert!((3500..=3523).contains(&evicted), "evicted {evicted}");
    let got: Vec<u64> = c.try_iter().map(|d| *d.payload()).collect();
    assert_eq!(got, (evicted..5000).collect::<Vec<_>>());
}

#[test]
fn eviction_frees_a_slack_so_the_next_pushes_fit_at_once() {
    // 6400 items' budget: the slack is 100 items. Filled, then one more
    // push evicts 1 + 100 items, and the next 100 pushes evict nothing.
    let q = queue("evict-slack", 6400);
    let c = q.subscribe();
    for i in 0..6400 {
        q.push(i).unwrap();
    }
    assert_eq!(c.missed().evicted, 0);
    q.push(6400).unwrap();
    assert_eq!(c.missed().evicted, 101);
    for i in 6401..6501 {
        q.push(i).unwrap();
    }
    assert_eq!(c.missed().evicted, 101);
    assert!(q.memory_used() <= q.memory_limit());
    q.push(6501).unwrap();
    assert_eq!(c.missed().evicted, 202);
}
