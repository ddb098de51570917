//! Where a new consumer starts: `Start::Oldest` (the default, at the oldest
//! retained item) or `Start::Latest` (only items pushed after it subscribed).

mod common;

use chunkq::{Clock, Queue, Start, TryRecvError};
use std::thread;
use std::time::Duration;

#[test]
fn latest_skips_what_is_already_there() {
    let q: Queue<u32> = Queue::builder("start")
        .sweep_interval(None)
        .build()
        .unwrap();
    for i in 0..10 {
        q.push(i).unwrap();
    }
    let latest = q.subscribe_from(Start::Latest);
    let oldest = q.subscribe_from(Start::Oldest);
    let default = q.subscribe();
    assert_eq!(latest.try_recv().unwrap_err(), TryRecvError::Empty);
    assert_eq!(latest.lag(), 0);
    q.push(10).unwrap();
    let d = latest.try_recv().unwrap();
    assert_eq!((*d.payload(), d.seq()), (10, 10));
    assert_eq!(oldest.try_iter().count(), 11);
    assert_eq!(default.try_iter().count(), 11);
}

#[test]
fn latest_on_an_empty_queue_sees_everything_new() {
    let q: Queue<u32> = Queue::builder("start-empty")
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe_from(Start::Latest);
    for i in 0..3 {
        q.push(i).unwrap();
    }
    let got: Vec<u32> = c.try_iter().map(|d| *d.payload()).collect();
    assert_eq!(got, [0, 1, 2]);
}

#[test]
fn latest_misses_nothing_it_was_never_owed() {
    // Items older than a Latest consumer expire: they are not its misses.
    let clock = Clock::manual();
    let q: Queue<u32> = Queue::builder("start-missed")
        .ttl(Duration::from_secs(60))
        .clock(clock.clone())
        .sweep_interval(None)
        .build()
        .unwrap();
    let old = q.subscribe();
    for i in 0..5 {
        q.push(i).unwrap();
    }
    let new = q.subscribe_from(Start::Latest);
    clock.advance(Duration::from_secs(61));
    assert_eq!(q.expire_now(), 5);
    assert_eq!(old.missed().expired, 5);
    assert_eq!(new.missed().expired, 0);
    assert!(new.notifications().try_recv().is_none());
}

#[test]
fn oldest_starts_after_expired_items() {
    let clock = Clock::manual();
    let q: Queue<u32> = Queue::builder("start-after-expiry")
        .ttl(Duration::from_secs(60))
        .clock(clock.clone())
        .sweep_interval(None)
        .build()
        .unwrap();
    for i in 0..5 {
        q.push(i).unwrap();
    }
    clock.advance(Duration::from_secs(61));
    q.push(5).unwrap();
    assert_eq!(q.expire_now(), 5);
    let c = q.subscribe();
    let got: Vec<u32> = c.try_iter().map(|d| *d.payload()).collect();
    assert_eq!(got, [5]);
    assert_eq!(
        c.missed().total(),
        0,
        "a consumer is not owed what left before it came"
    );
}

#[test]
fn latest_while_producers_run_sees_a_suffix() {
    // A Latest consumer that joins mid-stream sees a contiguous suffix of
    // the sequence: no gap, nothing from before its start.
    let q: Queue<u64> = Queue::builder("start-mid")
        .memory_limit(64 << 20)
        .sweep_interval(None)
        .build()
        .unwrap();
    let producer = {
        let q = q.clone();
        thread::spawn(move || {
            for i in 0..common::size(50_000) as u64 {
                q.push(i).unwrap();
            }
        })
    };
    thread::yield_now();
    let c = q.subscribe_from(Start::Latest);
    producer.join().unwrap();
    q.close();
    let seqs: Vec<u64> = c.iter().map(|d| d.seq()).collect();
    if let Some(&first) = seqs.first() {
        assert!(seqs.iter().copied().eq(first..first + seqs.len() as u64));
        assert_eq!(first + seqs.len() as u64, common::size(50_000) as u64);
    }
    assert_eq!(c.missed().total(), 0);
}
