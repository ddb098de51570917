//! The borrowed read path, `Consumer::read`: the same items, order and
//! accounting as `try_recv`, with no `Delivery` built.

mod common;

use chunkq::{Clock, Overflow, Queue, TryRecvError};
use common::{DropLog, flush_until, size};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

fn queue() -> Queue<u64> {
    Queue::builder("borrowed")
        .memory_limit(64 << 20)
        .sweep_interval(None)
        .build()
        .unwrap()
}

#[test]
fn read_lends_the_items_in_order_with_their_envelopes() {
    let q = queue();
    let by_read = q.subscribe();
    let by_recv = q.subscribe();
    let n = 2_500u64; // across chunk boundaries
    for i in 0..n {
        q.push(i).unwrap();
    }
    let mut read = Vec::new();
    loop {
        match by_read.read(64, |item| {
            read.push((item.seq(), *item.payload(), item.id()))
        }) {
            Ok(k) => assert!((1..=64).contains(&k)),
            Err(TryRecvError::Empty) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    let recv: Vec<_> = by_recv
        .try_iter()
        .map(|d| (d.seq(), *d.payload(), d.id()))
        .collect();
    assert_eq!(read.len() as u64, n);
    assert_eq!(
        read, recv,
        "read and try_recv see the same items, in the same order"
    );
    q.close();
    assert_eq!(by_read.read(64, |_| {}), Err(TryRecvError::Closed));
    assert_eq!(by_read.read(0, |_| {}), Err(TryRecvError::Closed));
}

#[test]
fn read_respects_max_and_zero() {
    let q = queue();
    let c = q.subscribe();
    q.push_batch(0..10).unwrap();
    assert_eq!(c.read(0, |_| panic!("max 0 lends nothing")), Ok(0));
    let mut got = Vec::new();
    assert_eq!(c.read(3, |i| got.push(*i.payload())), Ok(3));
    assert_eq!(c.read(100, |i| got.push(*i.payload())), Ok(7));
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    assert_eq!(c.read(1, |_| {}), Err(TryRecvError::Empty));
}

#[test]
fn clones_split_the_items_between_read_and_try_recv() {
    let q = queue();
    let a = q.subscribe();
    let b = a.clone();
    let n = size(50_000) as u64;
    let producer = {
        let q = q.clone();
        thread::spawn(move || {
            for i in 0..n {
                q.push(i).unwrap();
            }
            q.close();
        })
    };
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            match a.read(64, |i| got.push(*i.payload())) {
                Ok(_) | Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Closed) => return got,
            }
        }
    });
    let mut mine = Vec::new();
    loop {
        match b.try_recv() {
            Ok(d) => mine.push(*d.payload()),
            Err(TryRecvError::Empty) => thread::yield_now(),
            Err(TryRecvError::Closed) => break,
        }
    }
    producer.join().unwrap();
    let theirs = reader.join().unwrap();
    for part in [&mine, &theirs] {
        assert!(part.windows(2).all(|w| w[0] < w[1]), "each member in order");
    }
    let all: HashSet<u64> = mine.iter().chain(&theirs).copied().collect();
    assert_eq!(all.len() as u64, n, "every item to exactly one member");
    assert_eq!(mine.len() + theirs.len(), n as usize);
}

#[test]
fn read_and_expiry_account_exactly() {
    let clock = Clock::manual();
    let q: Queue<u64> = Queue::builder("borrowed-ttl")
        .clock(clock.clone())
        .ttl(Duration::from_secs(1))
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    q.push_batch(0..1500).unwrap();
    let mut read = 0;
    c.read(10, |_| read += 1).unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(q.expire_now(), 1490);
    assert_eq!(c.read(64, |_| read += 1), Err(TryRecvError::Empty));
    assert_eq!(read + c.missed().expired, 1500);
}

/// A panic in the lender: the claimed items it never saw are counted as
/// missed, `abandoned` (in `missed`, the notices and the stats), never
/// served again, and the panic reaches the caller.
#[test]
fn a_panic_in_the_lender_counts_the_unseen_claimed_items_as_abandoned() {
    let q: Queue<u64> = Queue::builder("borrowed-panic")
        .overflow(Overflow::DropOldest)
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    let other = q.subscribe();
    let notices = c.notifications();
    q.push_batch(0..10).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        c.read(5, |i| {
            seen.lock().unwrap().push(*i.payload());
            if *i.payload() == 2 {
                panic!("the lender panics (on purpose)");
            }
        })
    }));
    let payload = caught.unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the lender panics (on purpose)")
    );
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2]);
    // Items 3 and 4 were claimed with 0..5 and never lent: abandoned.
    let m = c.missed();
    assert_eq!((m.abandoned, m.expired, m.evicted, m.total()), (2, 0, 0, 2));
    let n = notices.try_recv().unwrap();
    assert_eq!((n.abandoned, n.total()), (2, 2));
    let g = q
        .stats()
        .groups
        .into_iter()
        .find(|g| g.id == c.id())
        .unwrap();
    assert_eq!(g.missed.abandoned, 2);
    // Not served again; the rest follows; the other group lost nothing.
    let rest: Vec<u64> = c.try_iter().map(|d| *d.payload()).collect();
    assert_eq!(rest, (5..10).collect::<Vec<_>>());
    assert_eq!(other.try_iter().count(), 10);
    assert_eq!(other.missed().total(), 0);
    // Every item pushed after the subscription: delivered (to `f` or a
    // receive) or counted, exactly once.
    assert_eq!(3 + rest.len() as u64 + c.missed().total(), 10);
}

/// A panic on the last item lent leaves nothing unseen: nothing is counted.
#[test]
fn a_panic_on_the_last_claimed_item_abandons_nothing() {
    let q = queue();
    let c = q.subscribe();
    q.push_batch(0..3).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        c.read(3, |i| assert_ne!(*i.payload(), 2, "on purpose"))
    }));
    assert!(caught.is_err());
    assert_eq!(c.missed().total(), 0);
    assert!(c.notifications().try_recv().is_err());
    assert!(c.try_recv().is_err());
}

/// A notice receiver blocked in `recv_timeout` is woken by an abandon.
#[test]
fn an_abandon_wakes_a_blocked_notice_receiver() {
    let q = queue();
    let c = q.subscribe();
    let notices = c.notifications();
    let waiter = thread::spawn(move || notices.recv_timeout(Duration::from_secs(600)));
    q.push_batch(0..4).unwrap();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        c.read(4, |_| panic!("on purpose"))
    }));
    let n = waiter.join().unwrap().unwrap();
    assert_eq!(n.abandoned, 3);
}

#[test]
fn borrowed_items_are_dropped_once_after_removal() {
    let log = DropLog::new(3000);
    let q = Queue::builder("borrowed-drops")
        .sweep_interval(None)
        .memory_limit(64 << 20)
        .build()
        .unwrap();
    let c = q.subscribe();
    for i in 0..3000 {
        q.push(log.item(i)).unwrap();
    }
    let mut ids = Vec::new();
    while c.read(64, |t| ids.push(t.payload().id)).is_ok() {}
    assert_eq!(ids, (0..3000).collect::<Vec<_>>());
    // Every chunk was read by the only consumer: trimmed, dropped once.
    q.expire_now();
    assert!(flush_until(|| log.dropped() >= 3000));
    log.assert_all_dropped_once();
}
