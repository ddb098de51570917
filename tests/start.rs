//! Where a new consumer starts: `Start::Oldest` (the default, at the oldest
//! retained item), `Start::Latest` (only items pushed after it subscribed),
//! `Start::Seq(n)` and `Start::Since(time)`, with `Consumer::start_seq`
//! telling where it actually started.

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
    assert!(new.notifications().try_recv().is_err());
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

#[test]
fn seq_starts_at_that_sequence_number() {
    let q: Queue<u64> = Queue::builder("start-seq")
        .sweep_interval(None)
        .build()
        .unwrap();
    q.push_batch(0..10).unwrap();
    let c = q.subscribe_from(Start::Seq(4));
    assert_eq!(c.start_seq(), 4);
    let got: Vec<u64> = c.try_iter().map(|d| d.seq()).collect();
    assert_eq!(got, (4..10).collect::<Vec<_>>());
    assert_eq!(c.missed().total(), 0);
}

#[test]
fn seq_already_gone_starts_at_the_oldest_and_counts_no_miss() {
    let clock = Clock::manual();
    let q: Queue<u64> = Queue::builder("start-seq-gone")
        .clock(clock.clone())
        .ttl(Duration::from_secs(10))
        .sweep_interval(None)
        .build()
        .unwrap();
    q.push_batch(0..5).unwrap();
    clock.advance(Duration::from_secs(11));
    q.push_batch(5..8).unwrap();
    assert_eq!(q.expire_now(), 5);
    let c = q.subscribe_from(Start::Seq(2));
    // Items 2..5 were gone before it subscribed: not owed, so not missed,
    // and the gap is exact.
    assert_eq!(c.start_seq(), 5);
    assert_eq!(c.start_seq() - 2, 3);
    assert_eq!(
        c.try_iter().map(|d| *d.payload()).collect::<Vec<_>>(),
        [5, 6, 7]
    );
    assert_eq!(c.missed().total(), 0);
}

#[test]
fn seq_in_the_future_skips_what_comes_before_it() {
    let q: Queue<u64> = Queue::builder("start-seq-future")
        .sweep_interval(None)
        .build()
        .unwrap();
    q.push_batch(0..3).unwrap();
    let c = q.subscribe_from(Start::Seq(6));
    assert_eq!(c.start_seq(), 6);
    assert_eq!(c.lag(), 0);
    q.push_batch(3..8).unwrap();
    let got: Vec<u64> = c.try_iter().map(|d| d.seq()).collect();
    assert_eq!(got, [6, 7]);
    assert_eq!(c.missed().total(), 0);
}

#[test]
fn an_absurd_seq_is_clamped_not_a_panic() {
    let q: Queue<u64> = Queue::builder("start-seq-max")
        .sweep_interval(None)
        .build()
        .unwrap();
    let far = q.subscribe_from(Start::Seq(u64::MAX));
    let near = q.subscribe();
    assert!(far.start_seq() < u64::MAX >> 1);
    let chunk = q.chunk_capacity() as u64;
    q.push_batch(0..2 * chunk).unwrap();
    assert_eq!(far.try_recv().unwrap_err(), TryRecvError::Empty);
    assert_eq!(far.lag(), 0);
    // The far cursor holds nothing back: what `near` read is released.
    assert_eq!(near.try_iter().count() as u64, 2 * chunk);
    assert_eq!(q.len(), 0);
}

#[test]
fn since_starts_at_the_first_item_enqueued_at_or_after_the_time() {
    let clock = Clock::manual();
    let q: Queue<u64> = Queue::builder("start-since")
        .clock(clock.clone())
        .sweep_interval(None)
        .build()
        .unwrap();
    // More than two chunks of old items, so whole chunks are skipped by
    // their newest time, then a partly old chunk.
    let chunk = q.chunk_capacity() as u64;
    let old = 2 * chunk + chunk / 2;
    q.push_batch(0..old).unwrap();
    clock.advance(Duration::from_secs(3));
    let t = clock.now();
    q.push_batch(old..old + 5).unwrap();
    let c = q.subscribe_from(Start::Since(t));
    assert_eq!(c.start_seq(), old);
    let got: Vec<u64> = c.try_iter().map(|d| *d.payload()).collect();
    assert_eq!(got, (old..old + 5).collect::<Vec<_>>());
    assert!(
        q.subscribe_from(Start::Since(t))
            .try_iter()
            .all(|d| d.enqueued() >= t)
    );
    // A time before everything: the oldest item; after everything: none yet.
    assert_eq!(
        q.subscribe_from(Start::Since(std::time::UNIX_EPOCH))
            .start_seq(),
        0
    );
    clock.advance(Duration::from_secs(1));
    let late = q.subscribe_from(Start::Since(clock.now()));
    assert_eq!(late.start_seq(), old + 5);
    assert_eq!(late.try_recv().unwrap_err(), TryRecvError::Empty);
    q.push(99).unwrap();
    assert_eq!(*late.try_recv().unwrap().payload(), 99);
}

#[test]
fn since_races_pushes_without_losing_an_item() {
    let q: Queue<u64> = Queue::builder("start-since-race")
        .memory_limit(64 << 20)
        .sweep_interval(None)
        .build()
        .unwrap();
    let producer = {
        let q = q.clone();
        thread::spawn(move || {
            for i in 0..20_000 {
                q.push(i).unwrap();
            }
        })
    };
    let t = std::time::SystemTime::now() - Duration::from_secs(3600);
    let c = q.subscribe_from(Start::Since(t));
    producer.join().unwrap();
    // Everything is newer than an hour ago: it starts at the oldest retained
    // item and then sees every later one, in order, without a gap.
    let start = c.start_seq();
    let seqs: Vec<u64> = c.try_iter().map(|d| d.seq()).collect();
    assert_eq!(seqs, (start..20_000).collect::<Vec<_>>());
    assert_eq!(start, 0);
}
