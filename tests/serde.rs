//! The `serde` feature: events, missed counts, notices and envelopes
//! round-trip through JSON, an envelope crosses from one queue to another
//! through a JSON string keeping its identity and history, bad input is an
//! error rather than a panic, and the JSON shape is the documented one.

#![cfg(feature = "serde")]

use chunkq::{Envelope, Event, EventKind, Missed, Notice, Queue, Uuid};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Serializes `value` to JSON and back, and checks it comes back equal.
fn round_trip<V: Serialize + DeserializeOwned + PartialEq + Debug>(value: &V) -> String {
    let json = serde_json::to_string(value).expect("serialize");
    let back: V = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(&back, value, "through {json}");
    json
}

fn t(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

#[test]
fn events_round_trip() {
    for kind in [EventKind::Enqueued, EventKind::Dequeued] {
        let e = Event::new(kind, "orders", t(1_700_000_000, 123_456_789));
        round_trip(&e);
        let back: Event = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(
            (back.kind(), back.queue(), back.at()),
            (kind, "orders", t(1_700_000_000, 123_456_789))
        );
    }
    // Names that JSON must escape, and the empty name.
    for name in ["", "a \"quoted\" name\n", "ünï/cødé\\"] {
        let e = Event::new(EventKind::Enqueued, name, t(1, 2));
        round_trip(&e);
    }
    assert_eq!(round_trip(&EventKind::Enqueued), r#""Enqueued""#);
    assert_eq!(round_trip(&EventKind::Dequeued), r#""Dequeued""#);
}

#[test]
fn an_event_serializes_in_the_documented_shape() {
    let e = Event::new(EventKind::Dequeued, "q", t(1_700_000_000, 7));
    assert_eq!(
        serde_json::to_string(&e).unwrap(),
        r#"{"kind":"Dequeued","queue":"q","at":{"secs_since_epoch":1700000000,"nanos_since_epoch":7}}"#
    );
}

#[test]
fn an_event_from_a_live_queue_round_trips() {
    // Events inside a stored item borrow their name from the chunk: they
    // serialize like any other, and come back owned.
    let q: Queue<u8> = Queue::new("live");
    let c = q.subscribe();
    q.push(1).unwrap();
    let d = c.try_recv().unwrap();
    let json = serde_json::to_string(&d.events()[0]).unwrap();
    drop(d);
    drop(c);
    drop(q);
    let back: Event = serde_json::from_str(&json).unwrap();
    assert_eq!((back.kind(), back.queue()), (EventKind::Enqueued, "live"));
    assert!(back.at() > UNIX_EPOCH);
}

/// A `Missed` with these counts (the struct is `#[non_exhaustive]`).
fn missed(expired: u64, evicted: u64, abandoned: u64) -> Missed {
    let mut m = Missed::default();
    (m.expired, m.evicted, m.abandoned) = (expired, evicted, abandoned);
    m
}

/// A `Notice` with these counts and time.
fn notice(expired: u64, evicted: u64, abandoned: u64, at: SystemTime) -> Notice {
    let mut n = Notice::default();
    (n.expired, n.evicted, n.abandoned, n.at) = (expired, evicted, abandoned, at);
    n
}

#[test]
fn missed_and_notices_round_trip() {
    for m in [
        Missed::default(),
        missed(3, u64::MAX, 0),
        missed(0, 1, u64::MAX),
    ] {
        round_trip(&m);
    }
    // `abandoned` is written only when not 0: the form of the older causes
    // stays as it was, and a form without it reads as 0.
    assert_eq!(round_trip(&missed(1, 2, 0)), r#"{"expired":1,"evicted":2}"#);
    assert_eq!(
        round_trip(&missed(1, 2, 3)),
        r#"{"expired":1,"evicted":2,"abandoned":3}"#
    );
    let old: Missed = serde_json::from_str(r#"{"expired":1,"evicted":2}"#).unwrap();
    assert_eq!(old, missed(1, 2, 0));
    for at in [UNIX_EPOCH, t(1_700_000_000, 999_999_999)] {
        round_trip(&notice(4, 5, 0, at));
        round_trip(&notice(4, 5, 6, at));
    }
    // A real notice from a queue.
    let q: Queue<u64> = Queue::builder("n")
        .memory_limit(600)
        .overflow(chunkq::Overflow::DropOldest)
        .build()
        .unwrap();
    let c = q.subscribe();
    let notices = c.notifications();
    for i in 0..50 {
        q.push(i).unwrap();
    }
    let n = notices.try_recv().expect("evictions were noticed");
    assert!(n.evicted > 0);
    round_trip(&n);
}

fn envelope<T>(payload: T) -> Envelope<T> {
    let created = t(1_700_000_000, 250_000_000);
    Envelope {
        id: Uuid::from_u128(0x018b_cfe5_6800_7000_8000_0000_0000_002a),
        created,
        seq: 41,
        history: vec![
            Event::new(EventKind::Enqueued, "a", created),
            Event::new(EventKind::Dequeued, "a", created + Duration::from_millis(3)),
            Event::new(EventKind::Enqueued, "b", created + Duration::from_millis(4)),
        ],
        payload,
    }
}

#[test]
fn envelopes_round_trip() {
    round_trip(&envelope("build #7".to_string()));
    round_trip(&envelope(String::new()));
    round_trip(&envelope(vec![0u8, 1, 2, 255]));
    round_trip(&envelope(Vec::<u8>::new()));
    // An envelope with no history at all (hand-built) is still valid data.
    let mut bare = envelope(vec![9u8; 3]);
    bare.history.clear();
    round_trip(&bare);
}

#[test]
fn an_envelope_serializes_in_the_documented_shape() {
    let mut env = envelope("x".to_string());
    env.history.truncate(1);
    assert_eq!(
        serde_json::to_string(&env).unwrap(),
        concat!(
            r#"{"id":"018bcfe5-6800-7000-8000-00000000002a","#,
            r#""created":{"secs_since_epoch":1700000000,"nanos_since_epoch":250000000},"#,
            r#""seq":41,"#,
            r#""history":[{"kind":"Enqueued","queue":"a","at":{"secs_since_epoch":1700000000,"nanos_since_epoch":250000000}}],"#,
            r#""payload":"x"}"#,
        )
    );
}

#[test]
fn an_envelope_crosses_from_queue_a_to_queue_b_through_json() {
    let a: Queue<String> = Queue::new("A");
    let ca = a.subscribe();
    let id = a.push("payload across".to_string()).unwrap();
    let delivery = ca.try_recv().unwrap();
    let (created, enqueued_a, dequeued_a) = (
        delivery.created(),
        delivery.enqueued(),
        delivery.dequeued_at(),
    );
    let wire: String = serde_json::to_string(&delivery.to_envelope()).unwrap();
    drop(delivery);
    drop(ca);
    drop(a);

    // The other process.
    let env: Envelope<String> = serde_json::from_str(&wire).unwrap();
    assert_eq!((env.id, env.created, env.seq), (id, created, 0));
    let b: Queue<String> = Queue::new("B");
    let cb = b.subscribe();
    b.push("first".to_string()).unwrap(); // B numbers the item itself
    assert_eq!(b.push_envelope(env).unwrap(), id);
    assert_eq!(cb.try_recv().unwrap().payload(), "first");
    let d = cb.try_recv().unwrap();

    assert_eq!(d.id(), id);
    assert_eq!(d.created(), created);
    assert_eq!(d.seq(), 1);
    assert_eq!(d.payload(), "payload across");
    let events = d.events();
    let trail: Vec<_> = events
        .iter()
        .map(|e| (e.kind(), e.queue(), e.at()))
        .collect();
    assert_eq!(trail.len(), 3, "{trail:?}");
    assert_eq!(trail[0], (EventKind::Enqueued, "A", enqueued_a));
    assert_eq!(trail[1], (EventKind::Dequeued, "A", dequeued_a));
    assert_eq!((trail[2].0, trail[2].1), (EventKind::Enqueued, "B"));
    assert_eq!(trail[2].2, d.enqueued());
    assert!(trail[2].2 >= dequeued_a);
}

#[test]
fn malformed_json_is_an_error_not_a_panic() {
    let good = serde_json::to_string(&envelope("p".to_string())).unwrap();
    let bad = [
        String::new(),
        "{".to_string(),
        "null".to_string(),
        good[..good.len() / 2].to_string(),
        good.replace("\"Enqueued\"", "\"Lost\""),
        good.replace("018bcfe5-6800", "not-a-uuid"),
        good.replace("\"seq\":41", "\"seq\":-1"),
        good.replace("\"payload\":\"p\"", "\"payload\":7"),
        good.replace("\"queue\":\"a\"", "\"queue\":1"),
        good.replace(",\"payload\":\"p\"", ""),
        // A time past what SystemTime can hold.
        good.replace(
            "\"secs_since_epoch\":1700000000,\"nanos_since_epoch\":250000000",
            "\"secs_since_epoch\":18446744073709551615,\"nanos_since_epoch\":999999999",
        ),
    ];
    for input in &bad {
        assert_ne!(input, &good);
        let r = serde_json::from_str::<Envelope<String>>(input);
        assert!(r.is_err(), "accepted {input:?}: {r:?}");
    }
    for input in ["", "{}", r#"{"kind":"Enqueued","queue":"q"}"#, "[1,2]"] {
        assert!(serde_json::from_str::<Event>(input).is_err(), "{input:?}");
    }
    assert!(serde_json::from_str::<Missed>(r#"{"expired":"x"}"#).is_err());
    assert!(serde_json::from_str::<Notice>(r#"{"expired":1,"evicted":1}"#).is_err());
    assert!(serde_json::from_str::<EventKind>(r#""enqueued""#).is_err());
}

#[test]
fn an_event_before_the_epoch_round_trips_as_the_epoch() {
    let e = Event::new(
        EventKind::Enqueued,
        "old",
        UNIX_EPOCH - Duration::from_secs(86_400),
    );
    assert_eq!(e.at(), UNIX_EPOCH);
    let json = serde_json::to_string(&e).unwrap();
    assert!(json.contains(r#""at":{"secs_since_epoch":0,"nanos_since_epoch":0}"#));
    let back: Event = serde_json::from_str(&json).unwrap();
    assert_eq!(back.at(), UNIX_EPOCH);
    assert_eq!(back, e);
}

#[test]
fn a_hand_built_time_before_the_epoch_fails_to_serialize() {
    // serde's SystemTime cannot spell it: an error, not a panic.
    let mut env = envelope(1u8);
    env.created = UNIX_EPOCH - Duration::from_secs(1);
    assert!(serde_json::to_string(&env).is_err());
    let n = notice(1, 0, 0, UNIX_EPOCH - Duration::from_nanos(1));
    assert!(serde_json::to_string(&n).is_err());
}
