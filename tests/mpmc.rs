//! A multi-threaded stress test without retention: several producers,
//! independent consumers and a consumer group, all running at once; the
//! delivered sets are checked exactly.

mod common;

use chunkq::{PushError, Queue, TryRecvError};
use common::size;
use std::collections::HashMap;
use std::thread;

#[test]
fn delivered_sets_are_exact() {
    let producers = 4u64;
    let per = size(25_000) as u64;
    let total = producers * per;
    let q: Queue<u64> = Queue::builder("mpmc")
        // Small enough that producers sometimes find the budget full and
        // must retry (the push path's trimming gets exercised too).
        .memory_limit(256 << 10)
        .sweep_interval(None)
        .build()
        .unwrap();
    let independent: Vec<_> = (0..2).map(|_| q.subscribe()).collect();
    let group = q.subscribe();
    let members: Vec<_> = (0..3).map(|_| group.clone()).collect();
    drop(group);

    let mut readers = Vec::new();
    for (i, c) in independent.into_iter().chain(members).enumerate() {
        readers.push(thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                // Mix the receive flavours.
                let r = if i % 2 == 0 {
                    c.recv().map_err(|_| TryRecvError::Closed)
                } else {
                    c.try_recv()
                };
                match r {
                    Ok(d) => got.push((d.seq(), *d.payload())),
                    Err(TryRecvError::Empty) => thread::yield_now(),
                    Err(TryRecvError::Closed) => break,
                }
            }
            (c.id(), got)
        }));
    }
    let writers: Vec<_> = (0..producers)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                let mut retries = 0u64;
                for n in 0..per {
                    let mut v = p * per + n;
                    loop {
                        match q.push(v) {
                            Ok(_) => break,
                            Err(PushError::Full(back)) => {
                                assert_eq!(back, p * per + n);
                                v = back;
                                retries += 1;
                                thread::yield_now();
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                    assert!(q.memory_used() <= q.memory_limit());
                }
                retries
            })
        })
        .collect();
    let retries: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    q.close();

    let mut groups: HashMap<_, Vec<(u64, u64)>> = HashMap::new();
    for r in readers {
        let (id, got) = r.join().unwrap();
        // Within one reader: strictly increasing sequence numbers, and each
        // producer's values in push order.
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        let mut last: HashMap<u64, u64> = HashMap::new();
        for &(_, v) in &got {
            if let Some(prev) = last.insert(v / per, v) {
                assert!(v > prev);
            }
        }
        groups.entry(id).or_default().extend(got);
    }
    assert_eq!(groups.len(), 3);
    let mut by_seq: Option<Vec<(u64, u64)>> = None;
    for (_, mut got) in groups {
        got.sort_unstable();
        assert_eq!(got.len() as u64, total, "each group gets every item once");
        assert!(got.iter().enumerate().all(|(i, &(s, _))| s == i as u64));
        let mut values: Vec<u64> = got.iter().map(|&(_, v)| v).collect();
        values.sort_unstable();
        assert!(values.iter().copied().eq(0..total));
        // All groups agree on which item has which sequence number.
        match &by_seq {
            None => by_seq = Some(got),
            Some(first) => assert!(first == &got),
        }
    }
    eprintln!("mpmc: {total} items to 3 groups, {retries} pushes retried on Full");
}
