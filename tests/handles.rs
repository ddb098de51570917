//! Handles: `WeakQueue` keeps nothing alive, `wait_unsubscribed` learns that
//! the last consumer went away, `Consumer::is_closed` that the last producer
//! did.

use chunkq::{Queue, TryRecvError};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

#[test]
fn a_weak_handle_keeps_neither_the_queue_nor_its_sweeper_open() {
    let q: Queue<u64> = Queue::builder("weak")
        .sweep_interval(Some(Duration::from_millis(1)))
        .build()
        .unwrap();
    let c = q.subscribe();
    let weak = q.downgrade();
    assert!(format!("{weak:?}").contains("alive: true"));
    for i in 0..10 {
        weak.upgrade().unwrap().push(i).unwrap();
    }
    drop(q);
    assert!(weak.upgrade().is_none());
    assert!(format!("{weak:?}").contains("alive: false"));
    assert!(c.is_closed());
    assert_eq!(c.try_iter().count(), 10);
    assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Closed);
}

#[test]
fn upgrades_race_the_last_drop_without_reviving_the_queue() {
    for _ in 0..200 {
        let q: Queue<u64> = Queue::builder("weak-race")
            .sweep_interval(None)
            .build()
            .unwrap();
        let c = q.subscribe();
        let weak = q.downgrade();
        let start = Arc::new(Barrier::new(2));
        let upgrader = {
            let (weak, start) = (weak.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                // Either the queue is alive and the push lands, or the
                // upgrade fails: never a push into a closed queue through a
                // revived handle.
                weak.upgrade().map(|q| q.push(1).is_ok())
            })
        };
        start.wait();
        drop(q);
        let pushed = upgrader.join().unwrap();
        assert!(weak.upgrade().is_none());
        let got = c.try_iter().count();
        assert_eq!(got, usize::from(pushed == Some(true)));
    }
}

#[test]
fn a_producer_learns_that_the_last_consumer_left() {
    let q: Queue<u64> = Queue::new("unsubscribed");
    assert!(q.wait_unsubscribed(Duration::ZERO), "none subscribed yet");
    let a = q.subscribe();
    let a2 = a.clone();
    let b = q.subscribe();
    assert!(!q.wait_unsubscribed(Duration::from_millis(1)));
    let leavers = thread::spawn(move || {
        drop(a);
        drop(b);
        drop(a2); // the last handle of the last group
    });
    assert!(q.wait_unsubscribed(Duration::from_secs(600)));
    assert_eq!(q.consumer_count(), 0);
    leavers.join().unwrap();
}

#[test]
fn waiting_for_unsubscription_wakes_even_across_a_close() {
    let q: Queue<u64> = Queue::new("unsubscribed-close");
    let c = q.subscribe();
    let waiter = {
        let q = q.clone();
        thread::spawn(move || q.wait_unsubscribed(Duration::from_secs(600)))
    };
    q.close(); // wakes the waiter, which finds a consumer still there
    drop(c);
    assert!(waiter.join().unwrap());
}
