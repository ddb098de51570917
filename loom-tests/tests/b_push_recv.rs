//! (b) push vs try_recv: a consumer reads while a producer pushes. No item
//! is lost or duplicated, none is read before its publication (the
//! envelope's loom witness: a read not ordered after the write that built it
//! is a loom causality error), none is freed while still readable, and the
//! consumer's sequence numbers only grow.
#![cfg(loom)]

mod common;

use common::{assert_in_order, drain, ids, model, roomy, seqs};
use loom::thread;

/// `pre` items pushed before the race, then the main thread pushes `n` more
/// while a spawned consumer makes `pre + n` `try_recv` attempts; whatever it
/// did not get is drained after the join.
fn push_recv(pre: usize, n: usize) {
    model(move |counter| {
        let (q, _clock) = roomy();
        let c = q.subscribe();
        for i in 0..pre {
            q.push(counter.make(i)).unwrap();
        }
        let reader = {
            let c = c.clone();
            thread::spawn(move || {
                let got: Vec<_> = (0..pre + n).filter_map(|_| c.try_recv().ok()).collect();
                assert_in_order(&got);
                let _ = ids(&got); // every payload read is alive
                got
            })
        };
        for i in pre..pre + n {
            q.push(counter.make(i)).unwrap();
        }
        let mut all = reader.join().unwrap();
        all.extend(drain(&c));
        let total = (pre + n) as u64;
        assert_eq!(
            seqs(&all),
            (0..total).collect::<Vec<_>>(),
            "lost or duplicated"
        );
        assert_eq!(ids(&all), (0..pre + n).collect::<Vec<_>>());
    });
}

/// One push, one read.
#[test]
fn one() {
    push_recv(0, 1);
}

/// Two pushes fill chunk 0; the reader leaving it trims while the producer
/// installs chunk 2 ahead of need.
#[test]
fn two() {
    push_recv(0, 2);
}

/// Seqs 1 and 2 race the reader across the boundary of chunks 0 and 1.
#[test]
fn two_after_one() {
    push_recv(1, 2);
}
