//! Named consumer groups (issue 18, item 3): `Queue::subscribe_group` joins
//! the live group of that name (its cursor, missed counts, notices) or makes
//! it at `start`; `stats` labels groups by name.

use chunkq::{Overflow, Queue, Start};
use std::thread;

fn queue(name: &str) -> Queue<u64> {
    Queue::builder(name)
        .memory_limit(64 << 20)
        .sweep_interval(None)
        .build()
        .unwrap()
}

#[test]
fn joining_by_name_shares_the_cursor() {
    let q = queue("named-join");
    q.push_batch(0..10).unwrap();
    let a = q.subscribe_group("billing", Start::Seq(2));
    assert_eq!(*a.try_recv().unwrap().payload(), 2);
    // The second call joins: its start is ignored, the cursor is shared.
    let b = q.subscribe_group("billing", Start::Oldest);
    assert_eq!(a.id(), b.id());
    assert_eq!(*b.try_recv().unwrap().payload(), 3);
    assert_eq!(*a.try_recv().unwrap().payload(), 4);
    assert_eq!((a.lag(), b.lag()), (5, 5));
    // Another name, and an anonymous group: their own cursors.
    let other = q.subscribe_group("audit", Start::Oldest);
    let anon = q.subscribe();
    assert_ne!(other.id(), a.id());
    assert_eq!(*other.try_recv().unwrap().payload(), 0);
    assert_eq!(*anon.try_recv().unwrap().payload(), 0);
    assert_eq!(q.consumer_count(), 3);
    let s = q.stats();
    let mut names: Vec<_> = s.groups.iter().map(|g| g.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        [None, Some("audit".to_string()), Some("billing".to_string())]
    );
    let billing = s.groups.iter().find(|g| g.id == a.id()).unwrap();
    assert_eq!((billing.members, billing.lag), (2, 5));
}

/// Each item goes to exactly one member, whichever call made the handle.
#[test]
fn members_from_separate_calls_compete() {
    const N: u64 = 10_000;
    let q = queue("named-compete");
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let w = q.subscribe_group("workers", Start::Oldest);
            thread::spawn(move || w.iter().map(|d| *d.payload()).collect::<Vec<_>>())
        })
        .collect();
    q.push_batch(0..N).unwrap();
    q.close();
    let mut all: Vec<u64> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..N).collect::<Vec<_>>());
}

/// Missed counts and notices belong to the group, so a member that joins
/// later sees them; when the last member leaves, the name starts afresh.
#[test]
fn the_group_outlives_members_but_not_all_of_them() {
    let q: Queue<u64> = Queue::builder("named-life")
        .memory_limit(600)
        .overflow(Overflow::DropOldest)
        .sweep_interval(None)
        .build()
        .unwrap();
    let first = q.subscribe_group("g", Start::Oldest);
    for i in 0..30 {
        q.push(i).unwrap();
    }
    let missed = first.missed().evicted;
    assert!(missed > 0);
    let second = q.subscribe_group("g", Start::Oldest);
    assert_eq!(second.missed().evicted, missed);
    assert_eq!(second.notifications().try_recv().unwrap().evicted, missed);
    drop(first);
    assert_eq!(q.consumer_count(), 1, "the group lives while a member does");
    let id = second.id();
    drop(second);
    assert_eq!(q.consumer_count(), 0);
    let fresh = q.subscribe_group("g", Start::Latest);
    assert_ne!(fresh.id(), id);
    assert_eq!(fresh.missed().total(), 0);
    assert_eq!(fresh.lag(), 0);
}

/// Joins and last-member drops racing on one name never join a group
/// that is gone: every handle reads from a registered group.
#[test]
fn joins_race_with_the_last_member_leaving() {
    let q = queue("named-race");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            thread::spawn(move || {
                for i in 0..500u64 {
                    let c = q.subscribe_group("churn", Start::Latest);
                    q.push(i).unwrap();
                    assert!(q.consumer_count() >= 1);
                    let _ = c.try_recv();
                    let s = q.stats();
                    assert!(
                        s.groups.iter().any(|g| g.id == c.id()),
                        "joined a gone group"
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(q.consumer_count(), 0);
}
