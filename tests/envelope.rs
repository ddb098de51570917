//! The envelope: UUID, creation time, sequence number and history; and
//! `forward`, which keeps an item's identity across queues.

use chunkq::{Clock, EventKind, PushError, Queue};
use std::time::{Duration, SystemTime};

fn queue(name: &str, clock: &Clock) -> Queue<String> {
    Queue::builder(name)
        .clock(clock.clone())
        .sweep_interval(None)
        .build()
        .unwrap()
}

#[test]
fn a_fresh_item_has_one_enqueue_event() {
    let clock = Clock::manual();
    let q = queue("env-fresh", &clock);
    let c = q.subscribe();
    let t0 = clock.now();
    let id = q.push("x".into()).unwrap();
    clock.advance(Duration::from_secs(3));
    let d = c.try_recv().unwrap();
    assert_eq!(d.id(), id);
    assert_eq!(id.get_version_num(), 7);
    // UUID v7 carries the creation time in milliseconds.
    let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
    let created_ms = t0
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert_eq!(
        u128::from(secs) * 1000 + u128::from(nanos) / 1_000_000,
        created_ms
    );
    assert_eq!(d.created(), t0);
    assert_eq!(d.enqueued(), t0);
    assert_eq!(d.events().len(), 1);
    let e = &d.events()[0];
    assert_eq!(
        (e.kind(), e.queue(), e.at()),
        (EventKind::Enqueued, "env-fresh", t0)
    );
    assert_eq!(d.dequeued_at(), t0 + Duration::from_secs(3));
    let deq = d.dequeue_event();
    assert_eq!(
        (deq.kind(), deq.queue(), deq.at()),
        (EventKind::Dequeued, "env-fresh", d.dequeued_at())
    );
}

#[test]
fn forward_keeps_identity_and_grows_history() {
    let clock = Clock::manual();
    let a = queue("a", &clock);
    let b = queue("b", &clock);
    let (ca, cb) = (a.subscribe(), b.subscribe());
    let t0 = clock.now();
    b.push("occupies b's seq 0".into()).unwrap();
    let id = a.push("payload".into()).unwrap();
    clock.advance(Duration::from_secs(1));
    let from_a = ca.try_recv().unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        b.forward(&from_a).unwrap(),
        id,
        "forward returns the same UUID"
    );
    cb.try_recv().unwrap();
    let in_b = cb.try_recv().unwrap();

    assert_eq!(in_b.id(), id);
    assert_eq!(in_b.payload(), "payload");
    assert_eq!(in_b.created(), t0, "creation time is kept");
    assert_eq!(in_b.seq(), 1, "the sequence number is b's own");
    assert_eq!(from_a.seq(), 0);
    let trail: Vec<_> = in_b
        .events()
        .iter()
        .map(|e| (e.kind(), e.queue().to_string(), e.at()))
        .collect();
    assert_eq!(
        trail,
        [
            (EventKind::Enqueued, "a".to_string(), t0),
            (
                EventKind::Dequeued,
                "a".to_string(),
                t0 + Duration::from_secs(1)
            ),
            (
                EventKind::Enqueued,
                "b".to_string(),
                t0 + Duration::from_secs(2)
            ),
        ]
    );
    assert_eq!(in_b.enqueued(), t0 + Duration::from_secs(2));
    // The original delivery is untouched.
    assert_eq!(from_a.events().len(), 1);
}

#[test]
fn forwarding_twice_keeps_the_whole_trail() {
    let clock = Clock::system();
    let queues: Vec<Queue<String>> = ["s1", "s2", "s3"]
        .iter()
        .map(|n| queue(n, &clock))
        .collect();
    let consumers: Vec<_> = queues.iter().map(|q| q.subscribe()).collect();
    let id = queues[0].push("hop".into()).unwrap();
    let d1 = consumers[0].try_recv().unwrap();
    queues[1].forward(&d1).unwrap();
    let d2 = consumers[1].try_recv().unwrap();
    queues[2].forward(&d2).unwrap();
    let d3 = consumers[2].try_recv().unwrap();
    assert_eq!(d3.id(), id);
    let events = d3.events();
    let kinds: Vec<_> = events.iter().map(|e| (e.kind(), e.queue())).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Enqueued, "s1"),
            (EventKind::Dequeued, "s1"),
            (EventKind::Enqueued, "s2"),
            (EventKind::Dequeued, "s2"),
            (EventKind::Enqueued, "s3"),
        ]
    );
    // On the real clock, timestamps never go backwards along the trail.
    let times: Vec<SystemTime> = d3.events().iter().map(|e| e.at()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(d3.created(), times[0]);
    assert!(d3.dequeued_at() >= d3.enqueued());
}

#[test]
fn ttl_counts_from_the_enqueue_into_each_queue() {
    let clock = Clock::manual();
    let build = |name: &str| -> Queue<String> {
        Queue::builder(name)
            .ttl(Duration::from_secs(600))
            .clock(clock.clone())
            .sweep_interval(None)
            .build()
            .unwrap()
    };
    let a = build("ttl-a");
    let b = build("ttl-b");
    let (ca, cb) = (a.subscribe(), b.subscribe());
    a.push("old".into()).unwrap();
    clock.advance(Duration::from_secs(540));
    b.forward(&ca.try_recv().unwrap()).unwrap();
    clock.advance(Duration::from_secs(120)); // 11 minutes since creation
    assert_eq!(b.expire_now(), 0, "2 minutes in b: still young there");
    assert_eq!(cb.try_recv().unwrap().payload(), "old");
}

#[test]
fn forward_into_a_closed_queue_hands_a_copy_back() {
    let clock = Clock::system();
    let a = queue("fw-a", &clock);
    let b = queue("fw-b", &clock);
    let ca = a.subscribe();
    a.push("p".into()).unwrap();
    let d = ca.try_recv().unwrap();
    b.close();
    match b.forward(&d) {
        Err(PushError::Closed(copy)) => assert_eq!(copy, "p"),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert_eq!(d.payload(), "p", "the delivery still holds the original");
}

#[test]
fn forwarded_history_counts_against_the_budget() {
    let clock = Clock::system();
    let a = queue("fw-bytes-a", &clock);
    let b = queue("fw-bytes-b", &clock);
    let ca = a.subscribe();
    a.push("z".into()).unwrap();
    let fresh = a.memory_used();
    b.forward(&ca.try_recv().unwrap()).unwrap();
    assert!(b.memory_used() > fresh, "three events cost more than one");
}

/// `Item::events` is a view (`Events`) that behaves as a slice of events
/// for a fresh item (whose one event is made in the view) and a forwarded
/// one (whose events are stored) alike, and gives owned events by value
/// that outlive the delivery, the item and the queues.
#[test]
fn the_events_view_reads_as_a_slice_and_gives_owned_events() {
    let clock = Clock::manual();
    let (a, b) = (queue("view-a", &clock), queue("view-b", &clock));
    let (ca, cb) = (a.subscribe(), b.subscribe());
    let t0 = clock.now();
    a.push("x".into()).unwrap();
    let fresh = ca.try_recv().unwrap();
    clock.advance(Duration::from_secs(1));
    b.forward(&fresh).unwrap();
    let forwarded = cb.try_recv().unwrap();

    let events = fresh.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events.last().map(|e| e.queue()), Some("view-a"));
    assert_eq!(events.first().map(|e| e.at()), Some(t0));
    assert_eq!(format!("{events:?}"), format!("{:?}", &events[..]));
    let by_ref: Vec<EventKind> = (&events).into_iter().map(|e| e.kind()).collect();
    assert_eq!(by_ref, [EventKind::Enqueued]);

    let trail = forwarded.events();
    assert_eq!(trail.len(), 3);
    let names: Vec<&str> = trail.iter().map(|e| e.queue()).collect();
    assert_eq!(names, ["view-a", "view-a", "view-b"]);
    assert_eq!(trail[2].at(), t0 + Duration::from_secs(1));
    assert_eq!(forwarded.queue(), "view-b");
    assert_eq!(forwarded.enqueued(), trail[2].at());
    drop((events, trail));

    // By value: owned events, which outlive everything they came from.
    let owned: Vec<chunkq::Event> = fresh
        .events()
        .into_iter()
        .chain(forwarded.events())
        .collect();
    let copy = owned.clone();
    drop((fresh, forwarded, ca, cb, a, b));
    assert_eq!(owned, copy);
    let kinds: Vec<(EventKind, &str)> = owned.iter().map(|e| (e.kind(), e.queue())).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Enqueued, "view-a"),
            (EventKind::Enqueued, "view-a"),
            (EventKind::Dequeued, "view-a"),
            (EventKind::Enqueued, "view-b"),
        ]
    );
}
