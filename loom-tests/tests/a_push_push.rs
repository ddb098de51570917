//! (a) push/push across a chunk boundary: two producers race to reserve
//! sequence numbers, install the next chunk (the CAS on `next`) and move the
//! producers' chunk hint. Every item must be delivered exactly once, each
//! producer's items in its push order, and nothing may leak.
#![cfg(loom)]

mod common;

use common::{drain, ids, model, roomy, seqs};
use loom::thread;

/// `pre` items pushed before the race; then two producers push `each`
/// items each. With CHUNK_CAP = 2 the racing pushes straddle a boundary.
fn push_push(pre: usize, each: usize) {
    model(move |counter| {
        let (q, _clock) = roomy();
        let c = q.subscribe();
        for i in 0..pre {
            q.push(counter.make(i)).unwrap();
        }
        // Producer 2 is a spawned thread, producer 1 the model's main thread
        // (which is registered with the epoch collector already: a second
        // spawned thread would only add that registration's branches).
        let other = {
            let q = q.clone();
            let counter = counter.clone();
            thread::spawn(move || {
                for i in 0..each {
                    q.push(counter.make(2000 + i)).unwrap();
                }
            })
        };
        for i in 0..each {
            q.push(counter.make(1000 + i)).unwrap();
        }
        other.join().unwrap();
        let all = drain(&c);
        let n = (pre + 2 * each) as u64;
        assert_eq!(
            seqs(&all),
            (0..n).collect::<Vec<_>>(),
            "lost, duplicated or out of order"
        );
        let got = ids(&all);
        assert_eq!(&got[..pre], (0..pre).collect::<Vec<_>>().as_slice());
        for p in 1..=2 {
            let mine: Vec<usize> = got.iter().copied().filter(|&id| id / 1000 == p).collect();
            assert_eq!(mine, (0..each).map(|i| 1000 * p + i).collect::<Vec<_>>());
        }
    });
}

/// Seqs 1 and 2: one in chunk 0, one in chunk 1 (installed ahead by seq 0).
#[test]
fn one_each_after_one() {
    push_push(1, 1);
}

/// Seqs 0..4: both producers cross into chunk 1 and race to install chunk 2.
#[test]
fn two_each() {
    push_push(0, 2);
}

/// Seqs 3 and 4: the push of seq 4 may find chunk 2 not yet installed by the
/// producer of seq 2 (which ran before) and install it itself.
#[test]
fn one_each_after_three() {
    push_push(3, 1);
}
