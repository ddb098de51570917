//! (i) The borrowed read path (`Consumer::read`) against a producer and
//! against expiry: an item lent to the closure is alive while lent (its
//! payload's liveness marker is read inside the closure), published before
//! it is lent (the envelope's witness), and every item is lent once or
//! counted as missed once.
#![cfg(loom)]

mod common;

use chunkq::TryRecvError;
use common::{TTL, model, roomy};
use loom::thread;

/// Lends until `Empty` or `Closed`; returns the sequence numbers lent.
fn read_all(c: &chunkq::Consumer<common::Tracked>) -> Vec<u64> {
    let mut seqs = Vec::new();
    loop {
        match c.read(64, |item| {
            let _ = item.payload().id(); // alive while lent
            seqs.push(item.seq());
        }) {
            Ok(_) => {}
            Err(TryRecvError::Empty | TryRecvError::Closed) => return seqs,
        }
    }
}

/// A producer pushes two items (across the loom chunk of 2) while a reader
/// lends them.
#[test]
fn read_vs_push() {
    model(|counter| {
        let (q, _clock) = roomy();
        let c = q.subscribe();
        let reader = {
            let c = c.clone();
            thread::spawn(move || read_all(&c))
        };
        for i in 0..2 {
            q.push(counter.make(i)).unwrap();
        }
        let mut seqs = reader.join().unwrap();
        seqs.extend(read_all(&c));
        assert_eq!(seqs, [0, 1], "each item lent once, in order");
    });
}

/// Two expired items: a reader lends while the main thread sweeps them
/// away (and the collector may free them): each is lent or missed, once.
#[test]
fn read_vs_expiry() {
    model(|counter| {
        let (q, clock) = roomy();
        let c = q.subscribe();
        for i in 0..2 {
            q.push(counter.make(i)).unwrap();
        }
        clock.advance(TTL * 2);
        let reader = {
            let c = c.clone();
            thread::spawn(move || read_all(&c))
        };
        q.expire_now();
        let mut seqs = reader.join().unwrap();
        seqs.extend(read_all(&c));
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        assert_eq!(seqs.len() as u64 + c.missed().expired, 2);
        q.expire_now();
        assert_eq!((q.retained(), q.memory_used()), (0, 0));
    });
}
