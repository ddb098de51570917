//! The contention counters (`--cfg chunkq_counters`, issue 17's profile):
//! each hook counts the event it names. Without the cfg this file is empty.
//!
//! ```text
//! RUSTFLAGS="--cfg chunkq_counters" cargo test --release --test counters
//! ```
#![cfg(chunkq_counters)]

use chunkq::__counters::{NAMES, take};
use chunkq::{Queue, RecvTimeoutError, TryRecvError};
use std::time::Duration;

/// The count of `name` in `counts`.
fn get(counts: &[u64], name: &str) -> u64 {
    counts[NAMES.iter().position(|n| *n == name).expect("a counter")]
}

// One test function: the totals are per process, so the events are caused
// and read in one thread, one after the other (other tests' threads could
// only add to them).
#[test]
fn each_hook_counts_its_event() {
    let q: Queue<u64> = Queue::new("counters");
    let c = q.subscribe();

    // A fresh handle holds no lease: its first read goes the pinned way,
    // and an empty queue says Empty.
    let _ = take();
    assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Empty);
    let counts = take();
    assert!(get(&counts, "empty") >= 1, "{counts:?}");
    assert!(get(&counts, "pinned_read") >= 1, "{counts:?}");

    // A parked receive that times out registered and slept once at least.
    assert_eq!(
        c.recv_timeout(Duration::from_millis(5)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    assert!(get(&take(), "park") >= 1);

    // A read that finds its item published waits for nothing.
    q.push(1).unwrap();
    let _ = take();
    assert_eq!(*c.try_recv().unwrap().payload(), 1);
    let counts = take();
    assert_eq!(get(&counts, "unpublished_wait"), 0, "{counts:?}");

    // Taking the totals resets them (this binary runs no other test, so
    // no other thread adds to them meanwhile).
    let _ = take();
    assert_eq!(take(), [0; NAMES.len()]);
}
