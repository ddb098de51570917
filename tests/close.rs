//! Closing: pushes after `close` hand the payload back; consumers drain what
//! is retained, then get `Closed`; blocked receivers wake up.

mod common;

use chunkq::{PushError, Queue, RecvError, RecvTimeoutError, TryRecvError};
use common::within_patience;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

fn queue(name: &str) -> Queue<String> {
    Queue::builder(name).sweep_interval(None).build().unwrap()
}

#[test]
fn push_after_close_hands_the_payload_back() {
    let q = queue("close-push");
    q.close();
    assert!(q.is_closed());
    let payload = "precious".to_string();
    let addr = payload.as_ptr();
    match q.push(payload) {
        Err(PushError::Closed(back)) => {
            assert_eq!(back, "precious");
            assert_eq!(back.as_ptr(), addr, "the very same allocation comes back");
        }
        other => panic!("expected Closed, got {other:?}"),
    }
    let err = q.push("x".into()).unwrap_err();
    assert!(err.is_closed() && !err.is_full());
    assert_eq!(err.to_string(), "pushing into a closed queue");
    assert_eq!(err.into_inner(), "x");
    assert!(q.is_empty(), "a refused push leaves nothing behind");
}

#[test]
fn consumers_drain_then_see_closed() {
    let q = queue("close-drain");
    let a = q.subscribe();
    let b = q.subscribe();
    for i in 0..3 {
        q.push(i.to_string()).unwrap();
    }
    q.close();
    q.close(); // idempotent
    for c in [&a, &b] {
        let got: Vec<String> = c.try_iter().map(|d| d.payload().clone()).collect();
        assert_eq!(got, ["0", "1", "2"]);
        assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Closed);
        assert_eq!(c.recv().unwrap_err(), RecvError);
        assert_eq!(
            c.recv_timeout(Duration::from_secs(1)).unwrap_err(),
            RecvTimeoutError::Closed
        );
    }
}

#[test]
fn a_consumer_subscribed_after_close_drains_too() {
    let q = queue("close-late");
    q.push("kept".into()).unwrap();
    q.close();
    let c = q.subscribe();
    assert_eq!(c.recv().unwrap().payload(), "kept");
    assert_eq!(c.recv().unwrap_err(), RecvError);
}

#[test]
fn dropping_the_last_handle_closes() {
    let q = queue("close-drop");
    let c = q.subscribe();
    let q2 = q.clone();
    q.push("a".into()).unwrap();
    drop(q);
    q2.push("b".into()).unwrap();
    assert_eq!(c.try_iter().count(), 2);
    assert_eq!(
        c.try_recv().unwrap_err(),
        TryRecvError::Empty,
        "q2 still open"
    );
    drop(q2);
    assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Closed);
}

#[test]
fn blocked_receivers_wake_on_close() {
    for round in 0..common::size(200) {
        let q = queue("close-wake");
        let members: Vec<_> = {
            let c = q.subscribe();
            (0..3).map(|_| c.clone()).collect()
        };
        let other = q.subscribe();
        let start = Arc::new(Barrier::new(5));
        let waiters: Vec<_> = members
            .into_iter()
            .chain([other])
            .map(|c| {
                let start = start.clone();
                thread::spawn(move || {
                    start.wait();
                    c.recv().map(|d| d.payload().clone())
                })
            })
            .collect();
        start.wait();
        if round % 2 == 0 {
            thread::yield_now();
        }
        q.close();
        within_patience("recv after close", move || {
            for w in waiters {
                assert_eq!(w.join().unwrap(), Err(RecvError));
            }
        });
    }
}

#[test]
fn recv_timeout_wakes_on_close() {
    let q = queue("close-wake-timeout");
    let c = q.subscribe();
    let waiter = thread::spawn(move || c.recv_timeout(Duration::from_secs(3600)));
    thread::sleep(Duration::from_millis(10));
    q.close();
    let r = within_patience("recv_timeout after close", move || waiter.join().unwrap());
    assert_eq!(r.unwrap_err(), RecvTimeoutError::Closed);
}

#[test]
fn racing_close_loses_no_accepted_item() {
    // Every push that returned Ok is delivered; every refused one came back.
    for _ in 0..common::size(50) {
        let q: Queue<u64> = Queue::builder("close-race")
            .memory_limit(64 << 20)
            .sweep_interval(None)
            .build()
            .unwrap();
        let c = q.subscribe();
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    let mut accepted = Vec::new();
                    for n in 0..5_000u64 {
                        let v = p * 1_000_000 + n;
                        match q.push(v) {
                            Ok(_) => accepted.push(v),
                            Err(PushError::Closed(back)) => {
                                assert_eq!(back, v);
                                break;
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                    accepted
                })
            })
            .collect();
        thread::yield_now();
        q.close();
        let mut accepted: Vec<u64> = producers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect();
        let mut got: Vec<u64> = c.iter().map(|d| *d.payload()).collect();
        assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Closed);
        accepted.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, accepted);
    }
}
