//! Backpressure for producer threads: `Queue::push_timeout` waits for room
//! under `Overflow::Reject` (no feature needed; the async form,
//! `push_async`, is tested in `async.rs`). Each place where room appears
//! wakes a waiting producer: reads that let a trim release items, a
//! lagging consumer leaving, a `Start::Latest` consumer joining, expiry,
//! and `close` (which ends the wait). A lost wake-up hangs a producer, and
//! the watchdog turns that into a failure; nothing asserts on time.

mod common;

use chunkq::{Clock, PushTimeoutError, Queue, Start};
use common::{item_bytes, size, within_patience};
use std::thread;
use std::time::Duration;

/// A `Reject` queue whose budget holds `items` u64 items (tiny: far fewer
/// than a chunk, so reads release nothing until a push trims).
fn tiny(name: &str, items: usize) -> Queue<u64> {
    Queue::builder(name)
        .memory_limit(items * item_bytes(0u64))
        .sweep_interval(None)
        .build()
        .unwrap()
}

#[test]
fn push_timeout_hands_the_payload_back_on_timeout_and_on_close() {
    within_patience("push_timeout", || {
        let q = tiny("timeout", 2);
        let _c = q.subscribe(); // reads nothing
        while q.push(0).is_ok() {}
        // Nobody makes room: the time runs out.
        match q.push_timeout(7, Duration::from_millis(5)) {
            Err(PushTimeoutError::Timeout(v)) => assert_eq!(v, 7),
            other => panic!("{other:?}"),
        }
        match q.push_timeout(8, Duration::ZERO) {
            Err(e) => {
                assert!(e.is_timeout());
                assert_eq!(e.into_inner(), 8);
            }
            other => panic!("{other:?}"),
        }
        // A close ends the wait at once, whatever the timeout.
        let closer = thread::spawn({
            let q = q.clone();
            move || {
                thread::sleep(Duration::from_millis(5));
                q.close();
            }
        });
        match q.push_timeout(9, Duration::from_secs(3600)) {
            Err(PushTimeoutError::Closed(v)) => assert_eq!(v, 9),
            other => panic!("{other:?}"),
        }
        closer.join().unwrap();
        // Closed already.
        assert!(matches!(
            q.push_timeout(10, Duration::from_secs(1)),
            Err(PushTimeoutError::Closed(10))
        ));
        // Larger than the whole budget: refused at once.
        let big: Queue<Vec<u8>> = Queue::builder("big-t").memory_limit(1000).build().unwrap();
        match big.push_timeout(vec![0; 4000], Duration::from_secs(3600)) {
            Err(PushTimeoutError::TooLarge(v)) => assert_eq!(v.len(), 4000),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn push_timeout_waits_for_readers_threads() {
    // Blocking backpressure: four producer threads through a 3-item budget,
    // two consumer groups reading at their own pace. Nothing refused,
    // nothing lost, each group sees every item.
    let per = size(2_000) as u64;
    within_patience("push_timeout backpressure", move || {
        let q = tiny("threads", 3);
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let c = q.subscribe();
                thread::spawn(move || {
                    let mut got: Vec<u64> = c.iter().map(|d| *d.payload()).collect();
                    got.sort_unstable();
                    got
                })
            })
            .collect();
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    for i in 0..per {
                        q.push_timeout(p * per + i, Duration::from_secs(3600))
                            .unwrap();
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        q.close();
        for r in readers {
            assert_eq!(r.join().unwrap(), (0..4 * per).collect::<Vec<_>>());
        }
    });
}

#[test]
fn room_appears_when_a_lagging_consumer_leaves() {
    // One group read everything, the other nothing: trimming waits for the
    // laggard. Dropping it makes room, and the waiting push goes through.
    within_patience("room on deregistration", || {
        let q = tiny("leave", 3);
        let fast = q.subscribe();
        let slow = q.subscribe();
        while q.push(0).is_ok() {}
        while fast.try_recv().is_ok() {}
        let waiter = thread::spawn({
            let q = q.clone();
            move || q.push_timeout(1, Duration::from_secs(3600))
        });
        thread::sleep(Duration::from_millis(5)); // let it wait (or not)
        drop(slow);
        assert!(waiter.join().unwrap().is_ok());
    });
}

#[test]
fn room_appears_when_a_latest_consumer_joins() {
    // No consumer: nothing is trimmed. A `Start::Latest` consumer has read
    // nothing and is owed nothing retained, so once it joins, trimming may
    // release everything; the waiting push goes through.
    within_patience("room on join", || {
        let q = tiny("join", 3);
        while q.push(0).is_ok() {}
        let waiter = thread::spawn({
            let q = q.clone();
            move || q.push_timeout(1, Duration::from_secs(3600))
        });
        thread::sleep(Duration::from_millis(5));
        let c = q.subscribe_from(Start::Latest);
        assert!(waiter.join().unwrap().is_ok());
        assert_eq!(*c.try_recv().unwrap().payload(), 1);
    });
}

#[test]
fn room_appears_when_items_expire() {
    within_patience("room on expiry", || {
        let clock = Clock::manual();
        let q: Queue<u64> = Queue::builder("expire")
            .memory_limit(3 * item_bytes(0u64))
            .ttl(Duration::from_secs(1))
            .clock(clock.clone())
            .sweep_interval(None)
            .build()
            .unwrap();
        while q.push(0).is_ok() {}
        let waiter = thread::spawn({
            let q = q.clone();
            move || q.push_timeout(1, Duration::from_secs(3600))
        });
        thread::sleep(Duration::from_millis(5));
        clock.advance(Duration::from_secs(2));
        q.expire_now();
        assert!(waiter.join().unwrap().is_ok());
    });
}

#[test]
fn a_slow_reader_paces_a_producer_through_a_one_item_budget() {
    // The tightest budget: one item. Every push waits for the reader's
    // previous read (and trims it); every item arrives, in order.
    let n = size(3_000) as u64;
    within_patience("one-item budget", move || {
        let q = tiny("one", 1);
        let c = q.subscribe();
        let reader = thread::spawn(move || {
            for i in 0..n {
                assert_eq!(*c.recv().unwrap().payload(), i);
            }
            assert_eq!(c.missed().total(), 0);
        });
        for i in 0..n {
            q.push_timeout(i, Duration::from_secs(3600)).unwrap();
        }
        reader.join().unwrap();
    });
}
