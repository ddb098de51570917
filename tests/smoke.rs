//! The basics, single-threaded: push, receive, lengths, identities.

use chunkq::{Queue, RecvTimeoutError, TryRecvError, Uuid};
use std::time::Duration;

fn queue<T: chunkq::EstimateSize + Send + Sync + 'static>(name: &str) -> Queue<T> {
    Queue::builder(name).sweep_interval(None).build().unwrap()
}

#[test]
fn push_then_receive() {
    let q: Queue<String> = queue("smoke");
    let c = q.subscribe();
    assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Empty);
    let id = q.push("hello".to_string()).unwrap();
    let d = c.try_recv().unwrap();
    assert_eq!(d.payload(), "hello");
    assert_eq!(d.id(), id);
    assert_eq!(d.seq(), 0);
    assert_eq!(d.queue(), "smoke");
    assert_eq!(d.consumer_id(), c.id());
    assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Empty);
}

#[test]
fn sequence_numbers_count_pushes() {
    let q: Queue<u32> = queue("seq");
    let c = q.subscribe();
    for i in 0..50 {
        q.push(i).unwrap();
    }
    for i in 0..50u32 {
        let d = c.try_recv().unwrap();
        assert_eq!((*d.payload(), d.seq()), (i, u64::from(i)));
    }
}

#[test]
fn len_is_empty_and_lag() {
    let q: Queue<u8> = queue("len");
    assert!(q.is_empty());
    assert_eq!(q.len(), 0);
    let c = q.subscribe();
    for i in 0..10 {
        q.push(i).unwrap();
    }
    assert_eq!(q.len(), 10);
    assert!(!q.is_empty());
    assert_eq!(c.lag(), 10);
    for _ in 0..4 {
        c.try_recv().unwrap();
    }
    assert_eq!(c.lag(), 6);
    // `len` counts what the group has not read; read items stay retained
    // until a whole chunk is read or a sweep releases them.
    assert_eq!(q.len(), 6);
    assert_eq!(q.retained(), 10);
    for _ in 0..6 {
        c.try_recv().unwrap();
    }
    assert_eq!(c.lag(), 0);
    assert_eq!(q.expire_now(), 0, "nothing is old: nothing expires");
    assert_eq!(
        q.retained(),
        0,
        "the sweep released what every consumer read"
    );
    assert_eq!(q.memory_used(), 0);
}

#[test]
fn without_consumers_items_wait_for_a_subscriber() {
    let q: Queue<u8> = queue("late");
    for i in 0..5 {
        q.push(i).unwrap();
    }
    assert_eq!(q.expire_now(), 0);
    assert_eq!(q.len(), 5, "nothing is released while no consumer exists");
    let c = q.subscribe();
    let got: Vec<u8> = c.try_iter().map(|d| *d.payload()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

#[test]
fn identities() {
    let a: Queue<u8> = queue("same-name");
    let b: Queue<u8> = queue("same-name");
    assert_eq!(a.name(), "same-name");
    assert_ne!(a.id(), b.id());
    assert_eq!(a.id(), a.clone().id());
    assert_eq!(a.id().get_version_num(), 7);

    let c1 = a.subscribe();
    let c2 = a.subscribe();
    assert_ne!(c1.id(), c2.id());
    assert_eq!(c1.id(), c1.clone().id());

    let ids: Vec<Uuid> = (0..100).map(|i| a.push(i).unwrap()).collect();
    let mut dedup = ids.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), ids.len(), "item UUIDs are distinct");
    assert!(ids.iter().all(|id| id.get_version_num() == 7));
}

#[test]
fn consumer_count_counts_groups() {
    let q: Queue<u8> = queue("count");
    assert_eq!(q.consumer_count(), 0);
    let a = q.subscribe();
    let a2 = a.clone();
    let b = q.subscribe();
    assert_eq!(q.consumer_count(), 2);
    drop(a);
    assert_eq!(q.consumer_count(), 2, "a2 still holds the group");
    drop(a2);
    assert_eq!(q.consumer_count(), 1);
    drop(b);
    assert_eq!(q.consumer_count(), 0);
}

#[test]
fn clones_of_the_queue_push_into_the_same_queue() {
    let q: Queue<u8> = queue("clones");
    let q2 = q.clone();
    let c = q.subscribe();
    q.push(1).unwrap();
    q2.push(2).unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(q2.len(), 2);
    let got: Vec<u8> = c.try_iter().map(|d| *d.payload()).collect();
    assert_eq!(got, [1, 2]);
}

#[test]
fn blocking_receives_return_available_items() {
    let q: Queue<u8> = queue("blocking");
    let c = q.subscribe();
    q.push(7).unwrap();
    assert_eq!(*c.recv().unwrap().payload(), 7);
    assert_eq!(
        c.recv_timeout(Duration::from_millis(1)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    q.push(8).unwrap();
    assert_eq!(
        *c.recv_timeout(Duration::from_secs(5)).unwrap().payload(),
        8
    );
}

#[test]
fn debug_output_names_the_queue() {
    let q: Queue<u8> = queue("dbg");
    let c = q.subscribe();
    q.push(1).unwrap();
    assert!(format!("{q:?}").contains("dbg"));
    assert!(format!("{c:?}").contains("Consumer"));
    let d = c.try_recv().unwrap();
    assert!(format!("{d:?}").contains("payload: 1"));
}
