//! (g) Blocking `recv` vs `push` vs `close`: no lost wake-up. loom reports a
//! deadlock if, in some interleaving, the receiver sleeps while nothing will
//! ever wake it; the receiver must also get every item pushed before the
//! close, then `RecvError`.
#![cfg(loom)]

mod common;

use common::{ids, model, model_capped, roomy};
use loom::thread;

/// A spawned receiver loops on `recv` until it fails; the main thread pushes
/// `n` items, then closes.
fn recv_push_close(n: usize) {
    model(move |counter| {
        let (q, _clock) = roomy();
        let c = q.subscribe();
        let receiver = thread::spawn(move || {
            let mut got = Vec::new();
            while let Ok(d) = c.recv() {
                got.push(d);
            }
            ids(&got)
        });
        for i in 0..n {
            q.push(counter.make(i)).unwrap();
        }
        q.close();
        assert_eq!(receiver.join().unwrap(), (0..n).collect::<Vec<_>>());
    });
}

/// The wake-up by a push, then the one by close.
#[test]
fn push_one_then_close() {
    recv_push_close(1);
}

/// Only the close: the receiver must not sleep through it.
#[test]
fn close_only() {
    recv_push_close(0);
}

/// Three threads: a receiver, a producer, and the main thread closing
/// concurrently. The receiver gets the item iff the push succeeded.
/// Explored with at most 2 preemptions (24 768 executions; 3 preemptions
/// take 649 252).
#[test]
fn push_races_close() {
    model_capped(2, |counter| {
        let (q, _clock) = roomy();
        let c = q.subscribe();
        let receiver = thread::spawn(move || {
            let mut got = Vec::new();
            while let Ok(d) = c.recv() {
                got.push(d);
            }
            ids(&got)
        });
        let producer = {
            let q = q.clone();
            let item = counter.make(7);
            thread::spawn(move || q.push(item).is_ok())
        };
        q.close();
        let pushed = producer.join().unwrap();
        let got = receiver.join().unwrap();
        assert_eq!(got, if pushed { vec![7] } else { vec![] });
    });
}

/// No close: a receiver blocked on an empty queue is woken by one push
/// (`recv` returns the item).
#[test]
fn push_wakes_receiver() {
    model(|counter| {
        let (q, _clock) = roomy();
        let c = q.subscribe();
        let receiver = thread::spawn(move || c.recv().map(|d| d.payload().id()));
        q.push(counter.make(5)).unwrap();
        assert_eq!(receiver.join().unwrap(), Ok(5));
    });
}
