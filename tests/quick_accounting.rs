use chunkq::{Overflow, Queue};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

#[test]
fn accounting_under_eviction_and_expiry() {
    for round in 0..3 {
        let q: Queue<(u32, u64)> = Queue::builder("acct")
            .memory_limit(20_000)
            .overflow(Overflow::DropOldest)
            .ttl(Duration::from_millis(2))
            .sweep_interval(Some(Duration::from_millis(1)))
            .build()
            .unwrap();
        let fast = q.subscribe();
        let slow = q.subscribe();
        let group = q.subscribe();
        let group2 = group.clone();
        let producers = 2u32;
        let per = 50_000u64;
        let done = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for (i, c) in [fast, slow, group, group2].into_iter().enumerate() {
            let done = done.clone();
            readers.push(thread::spawn(move || {
                let mut got: Vec<u64> = Vec::new();
                let mut last: HashMap<u32, u64> = HashMap::new();
                loop {
                    match c.try_recv() {
                        Ok(d) => {
                            let (p, n) = *d.payload();
                            if let Some(prev) = last.insert(p, n) {
                                assert!(n > prev, "order");
                            }
                            got.push(d.seq());
                            if i == 1 && got.len() % 64 == 0 {
                                thread::sleep(Duration::from_micros(50));
                            }
                        }
                        Err(chunkq::TryRecvError::Closed) => break,
                        Err(_) => {
                            if done.load(Ordering::SeqCst) {
                                // closed soon
                            }
                            thread::yield_now();
                        }
                    }
                }
                (c.id(), got, c.missed())
            }));
        }
        let mut ps = Vec::new();
        for p in 0..producers {
            let q = q.clone();
            ps.push(thread::spawn(move || {
                for n in 0..per {
                    q.push((p, n)).unwrap();
                    assert!(q.memory_used() <= q.memory_limit());
                }
            }));
        }
        for p in ps {
            p.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        q.close();
        let total = producers as u64 * per;
        let mut by_group: HashMap<_, (Vec<u64>, chunkq::Missed)> = HashMap::new();
        for r in readers {
            let (id, got, missed) = r.join().unwrap();
            let e = by_group.entry(id).or_insert((Vec::new(), missed));
            e.0.extend(got);
            e.1 = missed;
        }
        assert_eq!(by_group.len(), 3);
        for (_, (mut got, missed)) in by_group {
            let n = got.len() as u64;
            got.sort();
            got.dedup();
            assert_eq!(got.len() as u64, n, "duplicate delivery");
            eprintln!("round {round}: delivered {n} missed {missed:?}");
            assert_eq!(n + missed.total(), total, "round {round}: delivered {n} missed {missed:?}");
        }
    }
}
