//! Envelopes across a process boundary: `Delivery::to_envelope` and
//! `Queue::push_envelope` keep the identity, creation time and history,
//! append the new enqueue, count the history against the budget, and hand
//! the payload back on refusal.

use chunkq::{Envelope, Event, EventKind, Overflow, PushError, Queue};
use std::time::{Duration, UNIX_EPOCH};

#[test]
fn an_envelope_round_trip_keeps_identity_and_history() {
    let a: Queue<String> = Queue::new("a");
    let b: Queue<String> = Queue::new("b");
    let (ca, cb) = (a.subscribe(), b.subscribe());
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(a.push(format!("p{i}")).unwrap());
    }
    let envs: Vec<Envelope<String>> = (0..5)
        .map(|_| ca.try_recv().unwrap().to_envelope())
        .collect();
    for (i, env) in envs.iter().enumerate() {
        assert_eq!(env.seq, i as u64);
        assert_eq!(env.history.len(), 2);
        assert_eq!(env.history[1].kind(), EventKind::Dequeued);
    }
    // Another process would deserialize these; push them into `b`.
    for env in envs.clone() {
        b.push_envelope(env).unwrap();
    }
    for (i, env) in envs.iter().enumerate() {
        let d = cb.try_recv().unwrap();
        assert_eq!(d.id(), ids[i]);
        assert_eq!(d.created(), env.created);
        assert_eq!(d.payload(), &format!("p{i}"));
        assert_eq!(d.seq(), i as u64);
        assert_eq!(&d.events()[..2], &env.history[..]);
        let last = &d.events()[2];
        assert_eq!((last.kind(), last.queue()), (EventKind::Enqueued, "b"));
        assert!(last.at() >= env.history[1].at());
    }
}

#[test]
fn a_refused_envelope_hands_the_payload_back() {
    let q: Queue<Vec<u8>> = Queue::builder("small")
        .memory_limit(512)
        .overflow(Overflow::Reject)
        .build()
        .unwrap();
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let env = Envelope {
        id: chunkq::Uuid::from_u128(7),
        created: at,
        seq: 0,
        history: vec![Event::new(EventKind::Enqueued, "x", at)],
        payload: vec![1u8; 4096],
    };
    match q.push_envelope(env) {
        Err(PushError::TooLarge(p)) => assert_eq!(p, vec![1u8; 4096]),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    q.close();
    let env = Envelope {
        id: chunkq::Uuid::from_u128(8),
        created: at,
        seq: 0,
        history: Vec::new(),
        payload: vec![2u8],
    };
    assert!(matches!(q.push_envelope(env), Err(PushError::Closed(p)) if p == vec![2u8]));
}

#[test]
fn an_envelope_history_counts_against_the_budget() {
    let q: Queue<u8> = Queue::new("budget");
    let at = UNIX_EPOCH + Duration::from_secs(1);
    q.push(1).unwrap();
    let plain = q.memory_used();
    let env = Envelope {
        id: chunkq::Uuid::from_u128(9),
        created: at,
        seq: 0,
        history: (0..10)
            .map(|i| Event::new(EventKind::Enqueued, &format!("q{i}"), at))
            .collect(),
        payload: 2,
    };
    q.push_envelope(env).unwrap();
    assert!(
        q.memory_used() - plain > plain,
        "11 events cost more than none"
    );
}

#[test]
fn events_before_the_epoch_are_clamped() {
    let before = UNIX_EPOCH - Duration::from_secs(5);
    let e = Event::new(EventKind::Enqueued, "q", before);
    assert_eq!(e.at(), UNIX_EPOCH);
    assert_eq!(e.clone(), e);
}
