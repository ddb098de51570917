//! Blocking receives and the eventcount behind them: no lost wake-up.
//!
//! Each test would hang if a wake-up were lost (a consumer parked after the
//! producer decided nobody was waiting), so each runs under a watchdog that
//! fails the test instead of hanging the run.

mod common;

use chunkq::{Overflow, Queue, RecvError, RecvTimeoutError};
use common::{size, within_patience};
use std::thread;
use std::time::Duration;

fn queue(name: &str) -> Queue<u64> {
    Queue::builder(name).sweep_interval(None).build().unwrap()
}

#[test]
fn ping_pong_never_loses_a_wake_up() {
    // Two threads hand a token back and forth through two queues; each side
    // blocks in `recv` every time, so every push races a consumer going to
    // sleep. A single lost wake-up stops the game.
    let rounds = size(20_000) as u64;
    within_patience("ping-pong", move || {
        let ping = queue("ping");
        let pong = queue("pong");
        let (ping_rx, pong_rx) = (ping.subscribe(), pong.subscribe());
        let other = thread::spawn({
            let pong = pong.clone();
            move || {
                for i in 0..rounds {
                    let d = ping_rx.recv().unwrap();
                    assert_eq!(*d.payload(), i);
                    pong.push(i).unwrap();
                }
            }
        });
        for i in 0..rounds {
            ping.push(i).unwrap();
            assert_eq!(*pong_rx.recv().unwrap().payload(), i);
        }
        other.join().unwrap();
    });
}

#[test]
fn ping_pong_with_recv_timeout() {
    // The same with a deadline far away: the wait must end on the push, not
    // on the timeout.
    let rounds = size(10_000) as u64;
    within_patience("ping-pong (recv_timeout)", move || {
        let ping = queue("ping-t");
        let pong = queue("pong-t");
        let (ping_rx, pong_rx) = (ping.subscribe(), pong.subscribe());
        let far = Duration::from_secs(3600);
        let other = thread::spawn({
            let pong = pong.clone();
            move || {
                for i in 0..rounds {
                    assert_eq!(*ping_rx.recv_timeout(far).unwrap().payload(), i);
                    pong.push(i).unwrap();
                }
            }
        });
        for i in 0..rounds {
            ping.push(i).unwrap();
            assert_eq!(*pong_rx.recv_timeout(far).unwrap().payload(), i);
        }
        other.join().unwrap();
    });
}

#[test]
fn push_wakes_a_fresh_waiter_every_time() {
    // A new waiter per round, racing one push.
    within_patience("push vs recv", || {
        for i in 0..size(3_000) as u64 {
            let q = queue("wake-push");
            let c = q.subscribe();
            let waiter = thread::spawn(move || *c.recv().unwrap().payload());
            q.push(i).unwrap();
            assert_eq!(waiter.join().unwrap(), i);
        }
    });
}

#[test]
fn close_wakes_a_fresh_waiter_every_time() {
    within_patience("close vs recv", || {
        for _ in 0..size(3_000) {
            let q = queue("wake-close");
            let c = q.subscribe();
            let waiter = thread::spawn(move || c.recv().map(|d| *d.payload()));
            q.close();
            assert_eq!(waiter.join().unwrap(), Err(RecvError));
        }
    });
}

#[test]
fn every_parked_member_gets_an_item() {
    // Several clones park at once; each push must wake someone who takes it.
    within_patience("parked group", || {
        for _ in 0..size(300) {
            let q = queue("wake-group");
            let c = q.subscribe();
            let members: Vec<_> = (0..4)
                .map(|_| {
                    let c = c.clone();
                    thread::spawn(move || {
                        let mut got = Vec::new();
                        while let Ok(d) = c.recv() {
                            got.push(*d.payload());
                        }
                        got
                    })
                })
                .collect();
            drop(c);
            for i in 0..16 {
                q.push(i).unwrap();
            }
            q.close();
            let mut all: Vec<u64> = members
                .into_iter()
                .flat_map(|m| m.join().unwrap())
                .collect();
            all.sort_unstable();
            assert_eq!(all, (0..16).collect::<Vec<_>>());
        }
    });
}

#[test]
fn producers_and_blocking_consumers_at_full_speed() {
    within_patience("blocking stress", || {
        let per = size(50_000) as u64;
        let q: Queue<u64> = Queue::builder("wake-stress")
            .memory_limit(64 << 20)
            .sweep_interval(None)
            .build()
            .unwrap();
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let c = q.subscribe();
                thread::spawn(move || c.iter().count() as u64)
            })
            .collect();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || {
                    for i in 0..per {
                        q.push(i).unwrap();
                        if i % 64 == 0 {
                            thread::yield_now(); // let readers catch up and park
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        q.close();
        for r in readers {
            assert_eq!(r.join().unwrap(), 2 * per);
        }
    });
}

#[test]
fn recv_timeout_times_out_and_then_still_works() {
    let q = queue("timeout");
    let c = q.subscribe();
    assert_eq!(
        c.recv_timeout(Duration::from_millis(20)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    assert_eq!(
        c.recv_timeout(Duration::ZERO).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    let p = q.clone();
    let producer = thread::spawn(move || p.push(5).unwrap());
    let d = c.recv_timeout(common::PATIENCE).unwrap();
    assert_eq!(*d.payload(), 5);
    producer.join().unwrap();
}

#[test]
fn a_notice_wakes_its_waiter() {
    // Notifications::recv_timeout uses the same eventcount: an eviction on
    // another thread must wake it.
    within_patience("notice wake-up", || {
        for _ in 0..size(500) {
            let per = common::item_bytes(0u64);
            let q: Queue<u64> = Queue::builder("wake-notice")
                .memory_limit(per)
                .overflow(Overflow::DropOldest)
                .sweep_interval(None)
                .build()
                .unwrap();
            let c = q.subscribe();
            let notices = c.notifications();
            q.push(0).unwrap();
            let waiter = thread::spawn(move || notices.recv_timeout(Duration::from_secs(3600)));
            q.push(1).unwrap(); // evicts item 0, which c had not read
            let n = waiter.join().unwrap().expect("a notice, not a timeout");
            assert_eq!((n.expired, n.evicted), (0, 1));
            assert_eq!(c.missed().evicted, 1);
        }
    });
}
