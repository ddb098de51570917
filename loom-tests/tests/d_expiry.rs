//! (d) try_recv vs expiry (`expire_now`) on the same consumer, every item
//! already past its TTL: each item is delivered or counted as expired,
//! exactly once (delivered + missed == pushed, never both), the notices add
//! up to the missed count, and the accounted memory returns to zero.
#![cfg(loom)]

mod common;

use common::{TTL, assert_in_order, drain, ids, model, roomy, seqs};
use loom::thread;

/// `n` items pushed, the clock moved past their TTL, then a spawned
/// consumer drains while the main thread sweeps.
fn recv_vs_expiry(n: usize) {
    model(move |counter| {
        let (q, clock) = roomy();
        let c = q.subscribe();
        let notices = c.notifications();
        for i in 0..n {
            q.push(counter.make(i)).unwrap();
        }
        clock.advance(TTL * 2);
        let reader = {
            let c = c.clone();
            thread::spawn(move || drain(&c))
        };
        let expired = q.expire_now();
        let mut got = reader.join().unwrap();
        got.extend(drain(&c)); // counts what the sweep passed but nobody moved past yet
        assert_in_order(&got);
        let _ = ids(&got);
        let missed = c.missed();
        assert_eq!(missed.evicted, 0);
        assert_eq!(
            got.len() as u64 + missed.expired,
            n as u64,
            "delivered {:?}, expired-missed {}",
            seqs(&got),
            missed.expired
        );
        assert!(missed.expired as usize <= expired && expired <= n);
        let noticed: u64 = notices.try_iter().map(|x| x.expired).sum();
        assert_eq!(noticed, missed.expired);
        // Whatever is left (read but not yet trimmed) goes now.
        q.expire_now();
        assert_eq!((q.retained(), q.memory_used()), (0, 0));
    });
}

#[test]
fn one_item() {
    recv_vs_expiry(1);
}

/// A full chunk: the sweep may retire it whole (from the chunk's newest time).
#[test]
fn two_items() {
    recv_vs_expiry(2);
}

/// Across a chunk boundary.
#[test]
fn three_items() {
    recv_vs_expiry(3);
}
