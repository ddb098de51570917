//! Notices: each time a consumer's cursor is moved past unread items it gets
//! a notice with the counts by cause; notices nobody receives coalesce; their
//! sums equal the growth of `missed()`.

mod common;

use chunkq::{Clock, Overflow, Queue};
use common::item_bytes;
use std::time::Duration;

fn drop_oldest(name: &str, items: usize, clock: &Clock) -> Queue<u64> {
    Queue::builder(name)
        .memory_limit(item_bytes(0u64) * items)
        .overflow(Overflow::DropOldest)
        .ttl(Duration::from_secs(60))
        .clock(clock.clone())
        .sweep_interval(None)
        .build()
        .unwrap()
}

#[test]
fn one_notice_per_removal_when_received_promptly() {
    let clock = Clock::manual();
    let q = drop_oldest("notice-prompt", 4, &clock);
    let c = q.subscribe();
    let notices = c.notifications();
    for i in 0..4 {
        q.push(i).unwrap();
    }
    assert!(notices.try_recv().is_err(), "nothing missed yet");
    q.push(4).unwrap();
    let n = notices.try_recv().unwrap();
    assert_eq!((n.expired, n.evicted, n.total()), (0, 1, 1));
    assert_eq!(n.at, clock.now());
    assert!(notices.try_recv().is_err());
    clock.advance(Duration::from_secs(61));
    assert_eq!(q.expire_now(), 4);
    let n = notices.try_recv().unwrap();
    assert_eq!((n.expired, n.evicted), (4, 0));
    assert_eq!(n.at, clock.now());
}

#[test]
fn unreceived_notices_coalesce() {
    let clock = Clock::manual();
    let q = drop_oldest("notice-coalesce", 4, &clock);
    let c = q.subscribe();
    let notices = c.notifications();
    for i in 0..100_000 {
        q.push(i).unwrap();
    }
    clock.advance(Duration::from_secs(61));
    q.expire_now();
    // 100_000 removals, nobody listening: one pending notice with the sums.
    let pending: Vec<_> = notices.try_iter().collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].evicted, 99_996);
    assert_eq!(pending[0].expired, 4);
    assert_eq!(c.missed().evicted, 99_996);
    assert_eq!(c.missed().expired, 4);
}

#[test]
fn notice_sums_equal_the_growth_of_missed() {
    let clock = Clock::manual();
    let q = drop_oldest("notice-sum", 50, &clock);
    let c = q.subscribe();
    let notices = c.notifications();
    let (mut expired, mut evicted) = (0, 0);
    for round in 0..200u64 {
        for i in 0..(round % 13 * 7) {
            q.push(i).unwrap();
        }
        if round % 3 == 0 {
            c.try_iter().take(5).count();
        }
        if round % 5 == 0 {
            clock.advance(Duration::from_secs(61));
            q.expire_now();
        }
        if round % 4 == 0 {
            for n in notices.try_iter() {
                expired += n.expired;
                evicted += n.evicted;
            }
            assert_eq!(c.missed().expired, expired);
            assert_eq!(c.missed().evicted, evicted);
        }
    }
    assert!(expired > 0 && evicted > 0);
}

#[test]
fn clones_share_one_notice_channel() {
    let clock = Clock::manual();
    let q = drop_oldest("notice-clones", 2, &clock);
    let a = q.subscribe();
    let b = a.clone();
    let (na, nb) = (a.notifications(), b.notifications());
    for i in 0..5 {
        q.push(i).unwrap();
    }
    // Receivers compete, like clones: the notice goes to one of them.
    let first = na.try_recv().unwrap();
    assert_eq!(first.evicted, 3);
    assert!(nb.try_recv().is_err());
    q.push(5).unwrap();
    assert_eq!(nb.try_recv().unwrap().evicted, 1);
    assert!(na.try_recv().is_err());
}

#[test]
fn independent_consumers_get_their_own_notices() {
    let clock = Clock::manual();
    let q = drop_oldest("notice-indep", 4, &clock);
    let reader = q.subscribe();
    let idle = q.subscribe();
    for i in 0..4 {
        q.push(i).unwrap();
    }
    assert_eq!(reader.try_iter().count(), 4);
    for i in 4..8 {
        q.push(i).unwrap();
    }
    assert!(
        reader.notifications().try_recv().is_err(),
        "reader missed nothing"
    );
    assert_eq!(idle.notifications().try_recv().unwrap().evicted, 4);
}

#[test]
fn no_notice_for_items_everyone_read() {
    let clock = Clock::manual();
    let q = drop_oldest("notice-consumed", 100, &clock);
    let c = q.subscribe();
    for i in 0..10 {
        q.push(i).unwrap();
    }
    assert_eq!(c.try_iter().count(), 10);
    clock.advance(Duration::from_secs(61));
    assert_eq!(q.expire_now(), 0, "read items are released, not expired");
    assert!(c.notifications().try_recv().is_err());
    assert_eq!(c.missed().total(), 0);
}

#[test]
fn recv_timeout_returns_a_pending_notice_or_times_out() {
    let clock = Clock::manual();
    let q = drop_oldest("notice-timeout", 1, &clock);
    let c = q.subscribe();
    let notices = c.notifications();
    assert!(notices.recv_timeout(Duration::from_millis(5)).is_err());
    q.push(0).unwrap();
    q.push(1).unwrap();
    let n = notices.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(n.evicted, 1);
    assert!(format!("{notices:?}").contains("Notifications"));
}
