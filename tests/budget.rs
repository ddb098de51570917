//! The memory budget: the accounted bytes never exceed the limit (also with
//! producers racing), `Reject` hands the exact payload back, and a payload
//! larger than the whole budget is refused under both policies, without a
//! livelock and without evicting anything.

mod common;

use chunkq::{Overflow, PushBatchError, PushError, Queue};
use common::{size, within_patience};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

#[test]
fn reject_gives_back_the_exact_payload() {
    let q: Queue<Vec<u8>> = Queue::builder("budget-reject")
        .memory_limit(4096)
        .sweep_interval(None)
        .build()
        .unwrap();
    let _c = q.subscribe();
    let mut accepted = 0;
    loop {
        let payload = vec![accepted as u8; 500];
        let addr = payload.as_ptr();
        match q.push(payload) {
            Ok(_) => accepted += 1,
            Err(PushError::Full(back)) => {
                assert_eq!(back.as_ptr(), addr, "the very allocation we pushed");
                assert_eq!(back, vec![accepted as u8; 500]);
                break;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(accepted > 0);
    assert_eq!(q.len(), accepted, "a refused push leaves no trace");
    assert!(q.memory_used() <= q.memory_limit());
    let err = q.push(vec![0; 500]).unwrap_err();
    assert!(err.is_full());
    assert_eq!(err.to_string(), "pushing into a full queue");
}

#[test]
fn a_rejected_push_leaves_no_hole_in_the_sequence() {
    let per = common::item_bytes(0u64);
    let q: Queue<u64> = Queue::builder("budget-nohole")
        .memory_limit(per * 3)
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    for i in 0..3 {
        q.push(i).unwrap();
    }
    assert!(q.push(3).unwrap_err().is_full());
    assert!(q.push(4).unwrap_err().is_full());
    let seqs: Vec<u64> = c.try_iter().map(|d| d.seq()).collect();
    assert_eq!(seqs, [0, 1, 2]);
    // Everything was read: the next push releases it and fits.
    q.push(5).unwrap();
    let d = c.try_recv().unwrap();
    assert_eq!((d.seq(), *d.payload()), (3, 5));
}

#[test]
fn without_consumers_reject_stays_full_until_expiry() {
    let per = common::item_bytes(0u64);
    let q: Queue<u64> = Queue::builder("budget-noconsumer")
        .memory_limit(per * 2)
        .sweep_interval(None)
        .build()
        .unwrap();
    q.push(0).unwrap();
    q.push(1).unwrap();
    assert!(q.push(2).unwrap_err().is_full());
    assert_eq!(q.len(), 2, "kept for a subscriber that may come");
    let c = q.subscribe();
    assert_eq!(c.try_iter().count(), 2);
}

#[test]
fn oversized_payload_is_refused_under_both_policies() {
    for policy in [Overflow::Reject, Overflow::DropOldest] {
        let q: Queue<Vec<u8>> = Queue::builder("budget-oversized")
            .memory_limit(10_000)
            .overflow(policy)
            .sweep_interval(None)
            .build()
            .unwrap();
        let c = q.subscribe();
        for i in 0..5 {
            q.push(vec![i; 100]).unwrap();
        }
        let used = q.memory_used();
        let huge = vec![7u8; 20_000];
        let addr = huge.as_ptr();
        let q2 = q.clone();
        let back = within_patience("oversized push", move || match q2.push(huge) {
            Err(PushError::TooLarge(back)) => back,
            other => panic!("{policy:?}: expected TooLarge, got {other:?}"),
        });
        assert_eq!(back.as_ptr(), addr);
        assert_eq!(back.len(), 20_000);
        // Nothing was evicted to make room for what can never fit.
        assert_eq!(c.missed().total(), 0, "{policy:?}");
        assert_eq!(q.len(), 5);
        assert_eq!(q.memory_used(), used);
        // The queue still works.
        q.push(vec![9; 100]).unwrap();
        assert_eq!(c.try_iter().count(), 6);
    }
}

#[test]
fn payload_just_over_the_budget_with_an_empty_queue() {
    // An empty queue, and a payload whose envelope alone tips it over.
    for policy in [Overflow::Reject, Overflow::DropOldest] {
        let q: Queue<Vec<u8>> = Queue::builder("budget-edge")
            .memory_limit(1000)
            .overflow(policy)
            .sweep_interval(None)
            .build()
            .unwrap();
        let q2 = q.clone();
        let r = within_patience("edge push", move || {
            q2.push(vec![0; 1000]).map_err(|e| e.is_too_large())
        });
        assert_eq!(r, Err(true), "{policy:?}");
        assert!(q.is_empty());
    }
}

/// Producers push as fast as they can while a monitor thread checks the
/// accounted bytes against the limit the whole time.
fn budget_holds_under_racing_producers(policy: Overflow, sizes: &[usize], pushes: usize) {
    let limit = 64 * 1024;
    let q: Queue<Vec<u8>> = Queue::builder("budget-race")
        .memory_limit(limit)
        .overflow(policy)
        .sweep_interval(None)
        .build()
        .unwrap();
    let running = Arc::new(AtomicBool::new(true));
    let checks = Arc::new(AtomicU64::new(0));
    // The monitor is checking before any producer starts.
    let monitoring = Arc::new(Barrier::new(2));
    let monitor = {
        let (q, running, checks) = (q.clone(), running.clone(), checks.clone());
        let monitoring = monitoring.clone();
        thread::spawn(move || {
            let mut max_seen = 0;
            let mut first = true;
            loop {
                let used = q.memory_used();
                assert!(used <= q.memory_limit(), "{used} > {}", q.memory_limit());
                max_seen = max_seen.max(used);
                checks.fetch_add(1, Ordering::Relaxed);
                if std::mem::take(&mut first) {
                    monitoring.wait();
                }
                if !running.load(Ordering::SeqCst) {
                    return max_seen;
                }
                thread::yield_now();
            }
        })
    };
    monitoring.wait();
    // A slow consumer, so that the budget is full most of the time.
    let consumer = {
        let c = q.subscribe();
        thread::spawn(move || {
            let mut n = 0u64;
            while let Ok(d) = c.recv() {
                assert!(!d.payload().is_empty());
                n += 1;
                if n % 16 == 0 {
                    thread::yield_now();
                }
            }
            (n, c.missed())
        })
    };
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let q = q.clone();
            let sizes = sizes.to_vec();
            thread::spawn(move || {
                // Push until `pushes` were accepted; on Full, let the
                // consumer catch up and retry.
                let (mut ok, mut full) = (0u64, 0u64);
                let mut i = p;
                while ok < size(pushes) as u64 {
                    let len = sizes[i % sizes.len()];
                    match q.push(vec![1u8; len]) {
                        Ok(_) => {
                            ok += 1;
                            i += 1;
                        }
                        Err(PushError::Full(v)) => {
                            assert_eq!(v.len(), len);
                            full += 1;
                            thread::yield_now();
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                    let used = q.memory_used();
                    assert!(used <= limit, "{used} > {limit}");
                }
                (ok, full)
            })
        })
        .collect();
    let (mut ok, mut full) = (0, 0);
    for p in producers {
        let (o, f) = p.join().unwrap();
        ok += o;
        full += f;
    }
    q.close();
    let (read, missed) = consumer.join().unwrap();
    running.store(false, Ordering::SeqCst);
    let max_seen = monitor.join().unwrap();
    assert!(max_seen <= limit);
    // Every accepted item was read or evicted, never both.
    assert_eq!(read + missed.total(), ok, "{policy:?}");
    match policy {
        Overflow::Reject => {
            assert_eq!(missed.total(), 0);
            assert_eq!(read, ok, "under Reject the consumer reads everything");
        }
        Overflow::DropOldest => assert_eq!(full, 0, "DropOldest never refuses a payload that fits"),
        other => panic!("no expectation for {other:?}"),
    }
    eprintln!(
        "{policy:?}: {ok} accepted, {full} refused, {read} read, {missed:?}, max used {max_seen}/{limit}"
    );
}

#[test]
fn budget_holds_with_reject() {
    budget_holds_under_racing_producers(Overflow::Reject, &[8, 100, 1000, 5000], 5_000);
}

#[test]
fn budget_holds_with_drop_oldest() {
    budget_holds_under_racing_producers(Overflow::DropOldest, &[8, 100, 1000, 5000], 40_000);
}

#[test]
fn drop_oldest_with_payloads_near_the_whole_budget() {
    // Each payload needs most of the budget: every push must evict the other
    // producers' items, which may still be mid-push. No livelock.
    within_patience("near-budget payloads", || {
        budget_holds_under_racing_producers(Overflow::DropOldest, &[40_000, 50_000, 60_000], 3_000);
    });
}

#[test]
fn bytes_are_released_when_items_leave() {
    let q: Queue<String> = Queue::builder("budget-release")
        .sizer(|s: &String| s.capacity())
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    q.push("x".repeat(10_000)).unwrap();
    assert!(q.memory_used() >= 10_000, "the sizer's estimate is counted");
    let used = q.memory_used();
    q.push(String::new()).unwrap();
    assert!(q.memory_used() > used);
    assert_eq!(c.try_iter().count(), 2);
    q.expire_now(); // releases what every consumer read
    assert_eq!(q.memory_used(), 0);
}

#[test]
fn estimate_size_counts_heap_bytes() {
    let q: Queue<Vec<u64>> = Queue::builder("budget-estimate")
        .sweep_interval(None)
        .build()
        .unwrap();
    q.push(Vec::with_capacity(1000)).unwrap();
    assert!(q.memory_used() >= 8000);
    assert_eq!(q.memory_limit(), chunkq::DEFAULT_MEMORY_LIMIT);
}

/// One item accounts for at most 4 GiB (a slot stores its size in 32 bits):
/// a payload whose estimate is larger is refused as `Full` with the payload
/// back, even when the budget itself is larger, by `push` (also once the
/// handle pushes without a pin, see `lease.rs`), `push_batch` and
/// `push_timeout`, and nothing else is disturbed.
#[test]
fn an_item_over_four_gib_is_refused_even_under_a_larger_budget() {
    const HUGE: u64 = 5 << 30;
    for policy in [Overflow::Reject, Overflow::DropOldest] {
        let q: Queue<u64> = Queue::builder("budget-4gib")
            .memory_limit(usize::MAX / 2)
            .overflow(policy)
            .sizer(|&v: &u64| if v == HUGE { HUGE as usize } else { 0 })
            .sweep_interval(None)
            .build()
            .unwrap();
        let c = q.subscribe();
        for i in 0..3 {
            q.push(i).unwrap();
        }
        let used = q.memory_used();
        assert!(
            matches!(q.push(HUGE), Err(PushError::TooLarge(HUGE))),
            "{policy:?}"
        );
        let batch = q.push_batch([3, HUGE, 4]).unwrap_err();
        assert!(
            matches!(&batch, PushBatchError::TooLarge(v) if v == &[HUGE, 4]),
            "{policy:?}: {batch:?}"
        );
        assert!(
            matches!(
                q.push_timeout(HUGE, std::time::Duration::from_secs(60)),
                Err(chunkq::PushTimeoutError::TooLarge(HUGE))
            ),
            "{policy:?}"
        );
        assert_eq!(c.missed().total(), 0, "{policy:?}");
        // Three items, then one more: nothing of the refused ones is held.
        assert_eq!(q.memory_used(), used / 3 * 4, "{policy:?}");
        let got: Vec<u64> = c.try_iter().map(|d| *d.payload()).collect();
        assert_eq!(got, [0, 1, 2, 3], "{policy:?}");
    }
}

/// `Full` means "full now" and `TooLarge` "never": a retry-on-`Full` loop
/// ends for an oversized payload, and the predicates of every push error
/// agree with their variant.
#[test]
fn full_now_and_too_large_are_told_apart() {
    let q: Queue<Vec<u8>> = Queue::builder("budget-kinds")
        .memory_limit(4000)
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    // Fill the budget with small items nobody has read.
    let mut small = 0;
    let full = loop {
        match q.push(vec![0; 100]) {
            Ok(_) => small += 1,
            Err(e) => break e,
        }
    };
    assert!(small > 0);
    assert!(full.is_full() && !full.is_too_large() && !full.is_closed());
    // A payload that can never fit is TooLarge even while the budget is full,
    // and the usual retry-on-Full loop stops at once.
    let refused = q.stats().refused;
    let mut payload = vec![1u8; 10_000];
    let mut tries = 0;
    let err = loop {
        tries += 1;
        match q.push(payload) {
            Err(PushError::Full(back)) if tries < 1000 => payload = back,
            other => break other.unwrap_err(),
        }
    };
    assert_eq!(tries, 1);
    assert!(err.is_too_large() && !err.is_full() && !err.is_closed());
    assert_eq!(err.into_inner().len(), 10_000);
    // A refusal like `Full`'s, in the stats.
    assert_eq!(q.stats().refused, refused + 1);
    let t = q
        .push_timeout(vec![1; 10_000], std::time::Duration::from_secs(600))
        .unwrap_err();
    assert!(t.is_too_large() && !t.is_full() && !t.is_timeout() && !t.is_closed());
    let t = q
        .push_timeout(vec![1; 100], std::time::Duration::from_millis(1))
        .unwrap_err();
    assert!(t.is_full() && t.is_timeout() && !t.is_too_large());
    let b = q.push_batch([vec![1; 100]]).unwrap_err();
    assert!(b.is_full() && !b.is_too_large());
    // Room now (the consumer read everything): the batch stops at the
    // oversized payload.
    assert_eq!(c.try_iter().count(), small);
    let b = q
        .push_batch([vec![2; 10], vec![3; 10_000], vec![4; 10]])
        .unwrap_err();
    assert!(b.is_too_large() && !b.is_full() && !b.is_closed());
    assert_eq!(b.into_inner().len(), 2);
    q.close();
    let b = q.push_batch([vec![5]]).unwrap_err();
    assert!(b.is_closed() && !b.is_full() && !b.is_too_large());
}
