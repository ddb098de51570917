//! Crossing chunk boundaries (`Queue::chunk_capacity` items per chunk): many producers racing
//! to install the next chunk, consumers lagging several chunks behind, and
//! the release of whole chunks once every consumer has read them.

mod common;

use chunkq::{Queue, TryRecvError};
use common::size;
use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::thread;

fn queue(name: &str) -> Queue<(u32, u64)> {
    Queue::builder(name)
        .memory_limit(256 << 20)
        .sweep_interval(None)
        .build()
        .unwrap()
}

#[test]
fn sequence_numbers_run_across_boundaries() {
    let q: Queue<u64> = Queue::builder("cb-seq")
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    let chunk = q.chunk_capacity() as u64;
    for i in 0..(3 * chunk + 1) {
        q.push(i).unwrap();
    }
    for i in 0..(3 * chunk + 1) {
        let d = c.try_recv().unwrap();
        assert_eq!((d.seq(), *d.payload()), (i, i));
    }
    assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Empty);
}

#[test]
fn many_producers_race_across_boundaries() {
    // Producers start together so that they fight over every chunk install.
    let producers = 4u32;
    let per = size(6_000) as u64; // 24 chunks in all
    for round in 0..3 {
        let q = queue("cb-race");
        let consumers: Vec<_> = (0..2).map(|_| q.subscribe()).collect();
        let group = q.subscribe();
        let members = [group.clone(), group];
        let go = Arc::new(Barrier::new(producers as usize));
        let writers: Vec<_> = (0..producers)
            .map(|p| {
                let (q, go) = (q.clone(), go.clone());
                thread::spawn(move || {
                    go.wait();
                    for n in 0..per {
                        q.push((p, n)).unwrap();
                    }
                })
            })
            .collect();
        let readers: Vec<_> = consumers
            .into_iter()
            .chain(members)
            .map(|c| {
                thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Ok(d) = c.recv() {
                        got.push((d.seq(), *d.payload()));
                    }
                    got
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        q.close();
        let logs: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        let total = u64::from(producers) * per;
        // The two independent consumers: everything, in sequence order, with
        // each producer's items in push order.
        for log in &logs[..2] {
            check_complete(log, total, round);
        }
        // The group's two members together: everything once.
        let mut merged: Vec<_> = logs[2].iter().chain(&logs[3]).copied().collect();
        merged.sort_unstable();
        check_complete(&merged, total, round);
        for member in &logs[2..] {
            assert!(member.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }
}

/// `log` holds sequence numbers `0..total` in order, each with one payload,
/// every producer's payloads in push order.
fn check_complete(log: &[(u64, (u32, u64))], total: u64, round: u32) {
    assert_eq!(log.len() as u64, total, "round {round}");
    let mut next: HashMap<u32, u64> = HashMap::new();
    for (i, &(seq, (p, n))) in log.iter().enumerate() {
        assert_eq!(
            seq, i as u64,
            "round {round}: a sequence number is missing or repeated"
        );
        let want = next.entry(p).or_insert(0);
        assert_eq!(
            n, *want,
            "round {round}: producer {p} out of order at seq {seq}"
        );
        *want += 1;
    }
}

#[test]
fn a_consumer_can_lag_many_chunks() {
    let q = queue("cb-lag");
    let fast = q.subscribe();
    let slow = q.subscribe();
    let writers: Vec<_> = (0..2u32)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                for n in 0..size(5_500) as u64 {
                    q.push((p, n)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let total = 2 * size(5_500) as u64;
    assert_eq!(fast.try_iter().count() as u64, total);
    // Nothing is released while `slow` has not read it.
    assert_eq!(q.retained() as u64, total);
    assert_eq!(slow.lag() as u64, total);
    let seqs: Vec<u64> = slow.try_iter().map(|d| d.seq()).collect();
    assert!(seqs.iter().copied().eq(0..total));
}

#[test]
fn whole_chunks_are_released_once_everyone_read_them() {
    let q: Queue<u64> = Queue::builder("cb-release")
        .sweep_interval(None)
        .build()
        .unwrap();
    let a = q.subscribe();
    let b = q.subscribe();
    let k = q.chunk_capacity();
    // Two and a half chunks.
    let all = 2 * k + k / 2;
    for i in 0..all as u64 {
        q.push(i).unwrap();
    }
    let full = q.memory_used();
    for _ in 0..k + k / 2 {
        a.try_recv().unwrap();
    }
    assert_eq!(q.retained(), all, "b has read nothing: nothing is released");
    for _ in 0..k - 1 {
        b.try_recv().unwrap();
    }
    assert_eq!(q.retained(), all);
    b.try_recv().unwrap(); // b finishes chunk 0
    assert_eq!(q.retained(), all - k, "chunk 0 is released as b leaves it");
    assert!(q.memory_used() < full);
    for _ in 0..k / 2 {
        b.try_recv().unwrap();
    }
    assert_eq!(q.retained(), all - k, "released only when a chunk is left");
    assert_eq!(q.expire_now(), 0);
    assert_eq!(q.retained(), k, "a sweep releases up to the slowest reader");
}
