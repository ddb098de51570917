//! What users read from the names (issue 18, item 5): `len` / `is_empty`
//! count what some group has not read yet (tokio's meaning), `retained`
//! what the queue still holds; `Delivery: Clone`; `Queue::overflow`; the
//! `EstimateSize` impls of the common collections.

mod common;

use chunkq::{Clock, EstimateSize, Overflow, Queue};
use common::{DropLog, item_bytes};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

fn queue<T: EstimateSize + Send + Sync + 'static>(name: &str) -> Queue<T> {
    Queue::builder(name)
        .memory_limit(64 << 20)
        .sweep_interval(None)
        .build()
        .unwrap()
}

/// The reviewer's probe: the only consumer reads all 11 items; `len` is 0
/// (it stayed 11 before), while the items are still retained until their
/// chunk is released.
#[test]
fn len_counts_what_no_group_has_read_not_what_is_retained() {
    let q: Queue<u32> = queue("sem-len");
    let c = q.subscribe();
    q.push_batch(0..11).unwrap();
    assert_eq!((q.len(), q.retained()), (11, 11));
    assert!(!q.is_empty());
    assert_eq!(c.try_iter().count(), 11);
    assert_eq!(q.len(), 0);
    assert!(q.is_empty());
    assert_eq!(q.retained(), 11, "not released: the chunk is not left yet");
    let s = q.stats();
    assert_eq!((s.len, s.retained), (0, 11));
    q.expire_now(); // releases what every group read
    assert_eq!((q.len(), q.retained()), (0, 0));
}

/// With several groups `len` follows the slowest; with none, everything
/// retained counts (it waits for a subscriber); an item that expired unread
/// is missed, not queued.
#[test]
fn len_follows_the_slowest_group_and_retention() {
    let clock = Clock::manual();
    let q: Queue<u32> = Queue::builder("sem-slowest")
        .clock(clock.clone())
        .ttl(Duration::from_secs(1))
        .sweep_interval(None)
        .build()
        .unwrap();
    q.push_batch(0..5).unwrap();
    assert_eq!(q.len(), 5, "no group: kept for a subscriber");
    let (fast, slow) = (q.subscribe(), q.subscribe());
    let slow_member = slow.clone();
    for _ in 0..5 {
        fast.try_recv().unwrap();
    }
    slow.try_recv().unwrap();
    slow_member.try_recv().unwrap();
    assert_eq!(q.len(), 3, "the slow group has 3 left");
    drop((slow, slow_member));
    assert_eq!(q.len(), 0, "the slow group left");
    let late = q.subscribe_from(chunkq::Start::Latest);
    q.push_batch(5..8).unwrap();
    assert_eq!(q.len(), 3);
    clock.advance(Duration::from_secs(2));
    assert_eq!(q.expire_now(), 3);
    assert_eq!(q.len(), 0, "expired unread: missed, not queued");
    assert_eq!(late.missed().expired, 3);
    assert!(q.is_empty());
}

/// A clone of a delivery is the same item (no copy): it outlives the
/// original, the queue and the consumer, and the payload is dropped once,
/// after the last clone.
#[test]
fn a_delivery_clone_shares_the_item() {
    let log = DropLog::new(1);
    let q = queue("sem-clone");
    let c = q.subscribe();
    q.push(log.item(0)).unwrap();
    let d = c.try_recv().unwrap();
    let e = d.clone();
    assert!(std::ptr::eq(d.payload(), e.payload()));
    assert_eq!(
        (e.id(), e.seq(), e.consumer_id(), e.dequeued_at()),
        (d.id(), d.seq(), d.consumer_id(), d.dequeued_at())
    );
    // Released by the queue, still shared by two deliveries.
    q.expire_now();
    drop((q, c));
    let d = d.try_into_payload().unwrap_err();
    drop(d);
    for _ in 0..16 {
        crossbeam_epoch::pin().flush();
    }
    assert_eq!(log.dropped(), 0, "a clone holds it");
    // The last owner may take the payload out.
    let tracked = e.try_into_payload().expect("the last owner");
    assert_eq!(tracked.id, 0);
    drop(tracked);
    log.assert_all_dropped_once();
}

/// Clones sent to other threads keep the item alive there.
#[test]
fn delivery_clones_cross_threads() {
    let q: Queue<String> = queue("sem-clone-threads");
    let c = q.subscribe();
    q.push("shared".into()).unwrap();
    let d = c.try_recv().unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let d = d.clone();
            std::thread::spawn(move || d.payload().len())
        })
        .collect();
    drop(d);
    for h in handles {
        assert_eq!(h.join().unwrap(), 6);
    }
}

#[test]
fn overflow_reports_the_policy() {
    for policy in [Overflow::Reject, Overflow::DropOldest] {
        let q: Queue<u8> = Queue::builder("sem-overflow")
            .overflow(policy)
            .build()
            .unwrap();
        assert_eq!(q.overflow(), policy);
        assert_eq!(q.clone().overflow(), policy);
    }
}

/// The new `EstimateSize` impls count at least what their contents own, so
/// the budget never under-counts them; the queue accounts them.
#[test]
fn collections_estimate_at_least_their_contents() {
    let text = "x".repeat(100);
    let word = std::mem::size_of::<usize>();
    let arc: Arc<str> = Arc::from(text.as_str());
    assert!(arc.heap_size() >= 100 + 2 * word);
    let boxed: Box<str> = text.clone().into_boxed_str();
    assert!(boxed.heap_size() >= 100);
    let slice: Arc<[String]> = Arc::from(vec![text.clone(), text.clone()]);
    assert!(slice.heap_size() >= 2 * (100 + std::mem::size_of::<String>()));

    let deque: VecDeque<String> = (0..10).map(|_| text.clone()).collect();
    assert!(deque.heap_size() >= 10 * (100 + std::mem::size_of::<String>()));
    assert_eq!(VecDeque::<u64>::new().heap_size(), 0);

    let map: HashMap<u64, String> = (0..50).map(|i| (i, text.clone())).collect();
    let entry = std::mem::size_of::<(u64, String)>();
    assert!(map.heap_size() >= map.capacity() * entry + 50 * 100);
    assert_eq!(HashMap::<u64, u64>::new().heap_size(), 0);
    let set: HashSet<String> = (0..50).map(|i| format!("{i:0>100}")).collect();
    assert!(set.heap_size() >= set.capacity() * std::mem::size_of::<String>() + 50 * 100);

    let tree: BTreeMap<u64, String> = (0..1000).map(|i| (i, text.clone())).collect();
    assert!(tree.heap_size() >= 1000 * (entry + 100));
    assert_eq!(BTreeMap::<u64, u64>::new().heap_size(), 0);
    let one: BTreeMap<u64, u64> = [(1, 2)].into();
    assert!(one.heap_size() >= 16, "one node, however small");
    let tree_set: BTreeSet<u64> = (0..1000).collect();
    assert!(tree_set.heap_size() >= 1000 * 8);

    // The budget counts them: a map of 50 × 100 bytes costs at least that.
    let empty = item_bytes(HashMap::<u64, String>::new());
    let full = item_bytes(map.clone());
    assert!(full >= empty + 50 * 100, "{full} vs {empty}");
}
