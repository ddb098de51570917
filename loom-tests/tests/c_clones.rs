//! (c) Two clones of one consumer (one group, one shared cursor) claim items
//! concurrently: each item goes to exactly one of them, each clone sees
//! increasing sequence numbers, and nothing is lost.
#![cfg(loom)]

mod common;

use common::{assert_in_order, drain, ids, model, roomy, seqs};
use loom::thread;

/// `n` items pushed, then both clones drain until `Empty`.
fn clones(n: usize) {
    model(move |counter| {
        let (q, _clock) = roomy();
        let c = q.subscribe();
        for i in 0..n {
            q.push(counter.make(i)).unwrap();
        }
        let other = {
            let c = c.clone();
            thread::spawn(move || drain(&c))
        };
        let mine = drain(&c);
        let theirs = other.join().unwrap();
        assert_in_order(&mine);
        assert_in_order(&theirs);
        let mut all: Vec<u64> = seqs(&mine).into_iter().chain(seqs(&theirs)).collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..n as u64).collect::<Vec<_>>(),
            "an item went to both or to neither"
        );
        let _ = (ids(&mine), ids(&theirs)); // every payload read is alive
        assert_eq!(c.missed().total(), 0);
    });
}

/// Both clones want the same two items (one chunk; the one who leaves it trims).
#[test]
fn two_items() {
    clones(2);
}

/// Three items: the claims cross from chunk 0 into chunk 1 while chunk 0 is
/// trimmed and retired.
#[test]
fn three_items() {
    clones(3);
}
