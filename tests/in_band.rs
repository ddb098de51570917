//! Loss in band (issue 18, item 4): gap-reporting receives tell a reader of
//! a gap where it happens, before the next item, with exact counts; and the
//! notice receiver's `Result`s tell "nothing yet" from "no more".

mod common;

use chunkq::{
    Clock, Missed, Notifications, Overflow, Queue, Received, RecvTimeoutError, TryRecvError,
};
use common::item_bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

/// A queue that holds `items` u64 items and evicts the oldest beyond them.
fn tiny(name: &str, items: usize) -> Queue<u64> {
    Queue::builder(name)
        .memory_limit(items * item_bytes(0u64))
        .overflow(Overflow::DropOldest)
        .sweep_interval(None)
        .build()
        .unwrap()
}

/// One reader, evictions between its reads: each gap comes exactly where
/// it happened (the sequence numbers jump by its size right after it), and
/// the in-band gaps add up to `missed()`.
#[test]
fn a_gap_is_reported_where_it_happens() {
    let q = tiny("inband-where", 4);
    let c = q.subscribe();
    let mut log = Vec::new(); // (seq of an item) or (gap size)
    let mut pushed = 0u64;
    for round in 0..20u64 {
        // Between reads, push 1 to 7 items: beyond 4, the oldest unread go.
        for _ in 0..1 + round % 7 {
            q.push(pushed).unwrap();
            pushed += 1;
        }
        for _ in 0..1 + round % 3 {
            match c.try_recv_or_missed() {
                Ok(Received::Item(d)) => log.push(Ok(d.seq())),
                Ok(Received::Missed(m)) => {
                    assert_eq!((m.expired, m.abandoned), (0, 0));
                    assert!(m.evicted > 0, "an empty gap is never reported");
                    log.push(Err(m.evicted));
                }
                Ok(_) => unreachable!(),
                Err(e) => assert_eq!(e, TryRecvError::Empty),
            }
        }
    }
    q.close();
    loop {
        match c.try_recv_or_missed() {
            Ok(Received::Item(d)) => log.push(Ok(d.seq())),
            Ok(Received::Missed(m)) => log.push(Err(m.evicted)),
            Ok(_) => unreachable!(),
            Err(e) => {
                assert_eq!(e, TryRecvError::Closed);
                break;
            }
        }
    }
    // Replay: the next expected sequence number moves by 1 per item and by
    // the gap's size per gap; every item is the one expected.
    let mut next = 0;
    let mut gaps = 0;
    for entry in &log {
        match *entry {
            Ok(seq) => {
                assert_eq!(seq, next, "item {seq} where {next} was due: {log:?}");
                next += 1;
            }
            Err(n) => {
                gaps += n;
                next += n;
            }
        }
    }
    assert_eq!(next, pushed);
    assert!(gaps > 0, "the test evicted nothing");
    assert_eq!(gaps, c.missed().evicted);
    assert_eq!(gaps, c.missed().total());
}

/// Expiry and abandoned reads are reported in band too, and a gap counted
/// before the close is reported before `Closed`.
#[test]
fn expired_and_abandoned_gaps_and_the_end() {
    let clock = Clock::manual();
    let q: Queue<u64> = Queue::builder("inband-causes")
        .ttl(Duration::from_secs(1))
        .clock(clock.clone())
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    q.push_batch(0..3).unwrap();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        c.read(3, |_| panic!("on purpose"))
    }));
    q.push_batch(3..5).unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(q.expire_now(), 2);
    q.close();
    let gap = c.try_recv_or_missed().unwrap().missed().unwrap();
    let mut want = Missed::default();
    (want.expired, want.abandoned) = (2, 2);
    assert_eq!(gap, want);
    assert_eq!(c.try_recv_or_missed().unwrap_err(), TryRecvError::Closed);
    assert_eq!(c.recv_or_missed().unwrap_err(), chunkq::RecvError);
    assert_eq!(
        c.recv_timeout_or_missed(Duration::from_secs(600))
            .unwrap_err(),
        RecvTimeoutError::Closed
    );
}

/// Competing clones: every item is delivered once and every miss reported
/// in band once, to one of them, however they race with the evictions.
#[test]
fn clones_share_the_reports_exactly_once() {
    const N: u64 = 20_000;
    let q = tiny("inband-clones", 64);
    let c = q.subscribe();
    let items = Arc::new(AtomicU64::new(0));
    let gaps = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (c, items, gaps) = (c.clone(), items.clone(), gaps.clone());
            thread::spawn(move || {
                while let Ok(r) = c.recv_or_missed() {
                    match r {
                        Received::Item(_) => items.fetch_add(1, Ordering::Relaxed),
                        Received::Missed(m) => gaps.fetch_add(m.total(), Ordering::Relaxed),
                        _ => unreachable!(),
                    };
                }
            })
        })
        .collect();
    for i in 0..N {
        q.push(i).unwrap();
    }
    q.close();
    for r in readers {
        r.join().unwrap();
    }
    let (items, gaps) = (items.load(Ordering::Relaxed), gaps.load(Ordering::Relaxed));
    assert_eq!(items + gaps, N);
    assert_eq!(gaps, c.missed().total());
}

/// The plain receives and the notices are not disturbed by in-band reports:
/// each channel counts the same misses independently.
#[test]
fn in_band_reports_and_notices_count_independently() {
    let q = tiny("inband-notices", 4);
    let c = q.subscribe();
    let notices = c.notifications();
    q.push_batch(0..10).unwrap();
    let gap = c.try_recv_or_missed().unwrap().missed().unwrap();
    assert_eq!(gap.evicted, c.missed().evicted);
    assert_eq!(notices.try_recv().unwrap().evicted, gap.evicted);
    // A plain receive after a gap that nobody took in band: the next
    // gap-reporting receive still reports it.
    q.push_batch(10..20).unwrap();
    assert!(c.try_recv().is_ok());
    let later = c.try_recv_or_missed().unwrap().missed().unwrap();
    assert_eq!(gap.evicted + later.evicted, c.missed().evicted);
}

/// The notice receiver: `Empty` / `Timeout` for "nothing yet", `Closed` /
/// `RecvError` for "no more"; a blocking `recv` wakes at the end.
#[test]
fn notice_receives_tell_nothing_yet_from_no_more() {
    let q = tiny("inband-notice-results", 4);
    let c = q.subscribe();
    let notices = c.notifications();
    assert_eq!(notices.try_recv().unwrap_err(), TryRecvError::Empty);
    assert_eq!(
        notices.recv_timeout(Duration::from_millis(1)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    q.push_batch(0..6).unwrap();
    assert_eq!(notices.recv().unwrap().evicted, 2);
    let waiter = thread::spawn({
        let notices = c.notifications();
        move || {
            let mut got = 0;
            while let Ok(n) = notices.recv() {
                got += n.evicted;
            }
            got
        }
    });
    q.push_batch(6..9).unwrap(); // evicts 3 more
    drop(c); // the group's last handle: no more notices
    assert_eq!(waiter.join().unwrap(), 3);
    assert_eq!(notices.try_recv().unwrap_err(), TryRecvError::Closed);
    assert_eq!(notices.recv().unwrap_err(), chunkq::RecvError);
    assert_eq!(
        notices.recv_timeout(Duration::from_secs(600)).unwrap_err(),
        RecvTimeoutError::Closed
    );
}

/// `Notifications` has no type parameter: receivers of queues of different
/// payload types go in one collection.
#[test]
fn notifications_of_any_payload_type_are_one_type() {
    let a: Queue<u64> = tiny("inband-any-a", 2);
    let b: Queue<String> = Queue::builder("inband-any-b")
        .overflow(Overflow::DropOldest)
        .memory_limit(2 * item_bytes(String::new()))
        .sweep_interval(None)
        .build()
        .unwrap();
    let (ca, cb) = (a.subscribe(), b.subscribe());
    let all: Vec<Notifications> = vec![ca.notifications(), cb.notifications()];
    a.push_batch(0..3).unwrap();
    b.push_batch((0..4).map(|_| String::new())).unwrap();
    let evicted: Vec<u64> = all.iter().map(|n| n.try_recv().unwrap().evicted).collect();
    assert_eq!(evicted, [1, 2]);
}
