//! Consumer groups: clones of a consumer share its cursor and compete, so
//! each item goes to exactly one of them — no duplicate, no loss.

mod common;

use chunkq::{Overflow, Queue, TryRecvError};
use common::size;
use std::thread;

#[test]
fn clones_take_turns_single_threaded() {
    let q: Queue<u32> = Queue::builder("grp").sweep_interval(None).build().unwrap();
    let a = q.subscribe();
    let b = a.clone();
    for i in 0..4 {
        q.push(i).unwrap();
    }
    assert_eq!(*a.try_recv().unwrap().payload(), 0);
    assert_eq!(*b.try_recv().unwrap().payload(), 1);
    assert_eq!(*b.try_recv().unwrap().payload(), 2);
    assert_eq!(*a.try_recv().unwrap().payload(), 3);
    assert_eq!(a.try_recv().unwrap_err(), TryRecvError::Empty);
    assert_eq!(b.try_recv().unwrap_err(), TryRecvError::Empty);
    assert_eq!(a.lag(), b.lag());
}

#[test]
fn clones_split_the_items_with_no_duplicate_and_no_loss() {
    let producers = 2u64;
    let per = size(30_000) as u64;
    let members = 4;
    let q: Queue<u64> = Queue::builder("grp-mt")
        .memory_limit(64 << 20)
        .sweep_interval(None)
        .build()
        .unwrap();
    let group = q.subscribe();
    let audit = q.subscribe(); // an independent consumer beside the group
    let workers: Vec<_> = (0..members)
        .map(|_| {
            let c = group.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                let mut last = None;
                while let Ok(d) = c.recv() {
                    // The shared cursor only moves forward: each member sees
                    // increasing sequence numbers.
                    assert!(last < Some(d.seq()));
                    last = Some(d.seq());
                    got.push(*d.payload());
                }
                got
            })
        })
        .collect();
    drop(group);
    let auditor = thread::spawn(move || {
        let mut n = 0u64;
        while audit.recv().is_ok() {
            n += 1;
        }
        n
    });
    let writers: Vec<_> = (0..producers)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                for n in 0..per {
                    q.push(p * per + n).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    q.close();
    let mut all: Vec<u64> = Vec::new();
    for w in workers {
        all.extend(w.join().unwrap());
    }
    let total = producers * per;
    assert_eq!(
        all.len() as u64,
        total,
        "the group received every item once"
    );
    all.sort_unstable();
    assert!(all.iter().copied().eq(0..total), "no duplicate, no loss");
    assert_eq!(
        auditor.join().unwrap(),
        total,
        "the independent consumer saw everything"
    );
}

#[test]
fn clones_share_missed_counts_and_identity() {
    let per = common::item_bytes(0u64);
    let q: Queue<u64> = Queue::builder("grp-missed")
        .memory_limit(per * 4)
        .overflow(Overflow::DropOldest)
        .sweep_interval(None)
        .build()
        .unwrap();
    let a = q.subscribe();
    let b = a.clone();
    for i in 0..10 {
        q.push(i).unwrap();
    }
    assert_eq!(a.missed().evicted, 6);
    assert_eq!(a.missed(), b.missed());
    assert_eq!(a.id(), b.id());
    assert_eq!(*b.try_recv().unwrap().payload(), 6);
    assert_eq!(*a.try_recv().unwrap().payload(), 7);
}

#[test]
fn a_clone_of_a_lagging_consumer_starts_where_the_group_is() {
    let q: Queue<u32> = Queue::builder("grp-clone-pos")
        .sweep_interval(None)
        .build()
        .unwrap();
    let a = q.subscribe();
    for i in 0..5 {
        q.push(i).unwrap();
    }
    a.try_recv().unwrap();
    a.try_recv().unwrap();
    let b = a.clone();
    assert_eq!(
        *b.try_recv().unwrap().payload(),
        2,
        "a clone is not a new subscriber"
    );
}

#[test]
fn dropping_one_clone_keeps_the_group() {
    let q: Queue<u32> = Queue::builder("grp-drop")
        .sweep_interval(None)
        .build()
        .unwrap();
    let a = q.subscribe();
    let b = a.clone();
    q.push(1).unwrap();
    drop(a);
    assert_eq!(q.consumer_count(), 1);
    assert_eq!(*b.try_recv().unwrap().payload(), 1);
}
