//! No removal passes a slot whose producer is still mid-push
//! (ARCHITECTURE.md invariant 6), trimming included: a `Start::Latest`
//! consumer starts at `tail`, which counts reservations still being
//! published, and trimming up to such a cursor must stop at the first
//! unpublished slot.

mod common;

use chunkq::{Queue, Start, TryRecvError};
use common::{item_bytes, within_patience};
use std::thread;

/// Items in the batch: 200 chunks, so the publication takes a while.
const BATCH: u64 = 200_000;

/// One run: a producer publishes a big batch (one reservation, then the
/// slots one by one); meanwhile another thread subscribes from `Latest`
/// (its cursor lands at the batch's end) and trims. Then an `Oldest`
/// consumer drains, and the accounting must add up.
fn latest_subscriber_trims_during_a_batch(extra_push_first: bool) {
    within_patience("batch vs Latest subscriber + trim", move || {
        let q: Queue<u64> = Queue::builder("in-flight")
            .memory_limit(1 << 30)
            .sweep_interval(None)
            .build()
            .unwrap();
        let per_item = item_bytes(0u64);
        if extra_push_first {
            q.push(u64::MAX).unwrap();
        }
        let producer = {
            let q = q.clone();
            thread::spawn(move || q.push_batch(0..BATCH).unwrap())
        };
        // Wait for the reservation (len counts reserved items), then
        // subscribe at `tail` and trim while the slots are published.
        let floor = u64::from(extra_push_first) as usize;
        while q.retained() <= floor {
            thread::yield_now();
        }
        let latest = q.subscribe_from(Start::Latest);
        q.expire_now();
        assert_eq!(producer.join().unwrap(), BATCH as usize);
        q.expire_now();
        // What is retained is accounted exactly: no item dropped out of
        // `len` while its bytes stayed in `memory_used`.
        assert_eq!(q.memory_used(), q.retained() * per_item);
        // An `Oldest` consumer reads what is retained, in order.
        let oldest = q.subscribe();
        let mut last = None;
        while let Ok(d) = oldest.try_recv() {
            let p = *d.payload();
            if p != u64::MAX {
                assert!(last.is_none_or(|l| p == l + 1), "{last:?} then {p}");
                last = Some(p);
            }
        }
        assert!(matches!(oldest.try_recv(), Err(TryRecvError::Empty)));
        assert_eq!(latest.lag(), 0);
        // Both consumers have read everything: a sweep releases it all.
        q.expire_now();
        assert_eq!((q.retained(), q.memory_used()), (0, 0));
        // And the whole budget is there again.
        assert_eq!(q.push_batch(0..BATCH).unwrap(), BATCH as usize);
        assert_eq!(q.memory_used(), BATCH as usize * per_item);
    });
}

#[test]
fn trimming_to_a_latest_cursor_waits_for_pushes_in_flight() {
    for _ in 0..3 {
        latest_subscriber_trims_during_a_batch(false);
    }
}

/// With one item before the batch, the trim used to unlink a chunk the
/// producer had not reached yet, and the producer then walked the list
/// forward for ever, installing a chunk at every step.
#[test]
fn a_producer_never_loses_its_chunk_to_a_trim() {
    for _ in 0..3 {
        latest_subscriber_trims_during_a_batch(true);
    }
}
