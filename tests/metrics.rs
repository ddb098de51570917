//! The `metrics` feature: `Queue::report_metrics` records the figures of
//! `Queue::stats` as gauges and counters, labelled by queue (and group).
#![cfg(feature = "metrics")]

use chunkq::{Clock, Queue};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use std::collections::HashMap;
use std::time::Duration;

/// What `report_metrics` recorded: (name, sorted labels) -> value.
fn recorded(q: &Queue<u64>) -> HashMap<(String, Vec<(String, String)>), DebugValue> {
    recorded_over(|| q.report_metrics())
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

fn gauge(v: &DebugValue) -> f64 {
    match v {
        DebugValue::Gauge(g) => g.into_inner(),
        other => panic!("not a gauge: {other:?}"),
    }
}

fn counter(v: &DebugValue) -> u64 {
    match v {
        DebugValue::Counter(c) => *c,
        other => panic!("not a counter: {other:?}"),
    }
}

#[test]
fn the_report_matches_the_stats() {
    let clock = Clock::manual();
    let q: Queue<u64> = Queue::builder("metered")
        .clock(clock.clone())
        .ttl(Duration::from_secs(1))
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    q.push_batch(0..10).unwrap();
    clock.advance(Duration::from_secs(2));
    q.push_batch(10..13).unwrap();
    assert_eq!(q.expire_now(), 10);
    c.try_recv().unwrap();
    let m = recorded(&q);
    let queue = labels(&[("queue", "metered")]);
    let get = |name: &str| &m[&(name.to_string(), queue.clone())];
    // Three retained, two of them unread by the only group.
    assert_eq!(gauge(get("chunkq_len")), 2.0);
    assert_eq!(gauge(get("chunkq_retained")), 3.0);
    assert_eq!(
        gauge(get("chunkq_memory_used_bytes")),
        q.memory_used() as f64
    );
    assert_eq!(
        gauge(get("chunkq_memory_limit_bytes")),
        q.memory_limit() as f64
    );
    assert_eq!(gauge(get("chunkq_oldest_age_seconds")), 0.0);
    assert_eq!(gauge(get("chunkq_groups")), 1.0);
    assert_eq!(counter(get("chunkq_pushed_total")), 13);
    assert_eq!(counter(get("chunkq_expired_total")), 10);
    assert_eq!(counter(get("chunkq_evicted_total")), 0);
    assert_eq!(counter(get("chunkq_refused_total")), 0);
    assert_eq!(counter(get("chunkq_released_total")), 0);
    // The only (anonymous) group: `#0`, not its UUID.
    let id = "#0".to_string();
    let group = labels(&[("queue", "metered"), ("group", &id)]);
    assert_eq!(gauge(&m[&("chunkq_group_lag".into(), group.clone())]), 2.0);
    assert_eq!(
        gauge(&m[&("chunkq_group_members".into(), group.clone())]),
        1.0
    );
    let missed = |cause: &str| {
        let l = labels(&[("queue", "metered"), ("group", &id), ("cause", cause)]);
        counter(&m[&("chunkq_group_missed_total".into(), l)])
    };
    assert_eq!((missed("expired"), missed("evicted")), (10, 0));
}

#[test]
fn two_queues_report_under_their_own_names() {
    let a: Queue<u64> = Queue::new("metered-a");
    let b: Queue<u64> = Queue::new("metered-b");
    a.push(1).unwrap();
    b.push_batch([1, 2]).unwrap();
    let ma = recorded(&a);
    let mb = recorded(&b);
    let len = |m: &HashMap<_, _>, q: &str| {
        gauge(&m[&("chunkq_len".to_string(), labels(&[("queue", q)]))])
    };
    assert_eq!((len(&ma, "metered-a"), len(&mb, "metered-b")), (1.0, 2.0));
}

/// Named groups are labelled by name, anonymous ones by a small number
/// reused after they leave (bounded series, not a UUID per subscription);
/// two live queues of the same name write into different counters.
#[test]
fn groups_and_same_named_queues_have_bounded_distinct_labels() {
    let a: Queue<u64> = Queue::new("metered-twin");
    let b: Queue<u64> = Queue::new("metered-twin");
    let billing = a.subscribe_group("billing", chunkq::Start::Oldest);
    a.push_batch([1, 2, 3]).unwrap();
    b.push(1).unwrap();
    billing.try_recv().unwrap();
    for _ in 0..10 {
        // A fresh anonymous subscription each time: always `#0`.
        let c = a.subscribe();
        let m = recorded(&a);
        let lag = labels(&[("queue", "metered-twin"), ("group", "#0")]);
        assert_eq!(gauge(&m[&("chunkq_group_lag".into(), lag)]), 3.0);
        drop(c);
    }
    let m = recorded(&a);
    let named = labels(&[("queue", "metered-twin"), ("group", "billing")]);
    assert_eq!(gauge(&m[&("chunkq_group_lag".into(), named)]), 2.0);
    let groups: Vec<_> = m
        .keys()
        .filter(|(name, _)| name == "chunkq_group_lag")
        .collect();
    assert_eq!(groups.len(), 1, "{groups:?}");
    // The twin reports under its own label.
    let mb = recorded(&b);
    let len = |m: &HashMap<_, _>, q: &str| {
        gauge(&m[&("chunkq_len".to_string(), labels(&[("queue", q)]))])
    };
    assert_eq!(len(&m, "metered-twin"), 2.0); // billing read 1 of 3
    assert_eq!(len(&mb, "metered-twin#2"), 1.0);
    // Once `a` is gone, its label is free for the next queue of the name.
    drop((billing, a));
    let c: Queue<u64> = Queue::new("metered-twin");
    c.push_batch([1, 2, 3, 4]).unwrap();
    assert_eq!(len(&recorded(&c), "metered-twin"), 4.0);
    assert_eq!(len(&recorded(&b), "metered-twin#2"), 1.0);
}

/// Runs `f` with one recorder that keeps every value (counters are
/// increments: the recorder sums what each report adds), and returns what
/// it holds at the end: (name, sorted labels) -> value.
fn recorded_over(f: impl FnOnce()) -> HashMap<(String, Vec<(String, String)>), DebugValue> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, f);
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            labels.sort();
            ((key.name().to_string(), labels), value)
        })
        .collect()
}

/// A group's label is freed when its last handle drops, and the next group
/// may take it: the departing group's final counts are reported first, and
/// the next group's counts continue from them, so the series never goes
/// backwards and never hides the second group's misses behind the first's.
#[test]
fn a_reused_group_label_continues_its_counters() {
    let clock = Clock::manual();
    let q: Queue<u64> = Queue::builder("metered-reuse")
        .clock(clock.clone())
        .ttl(Duration::from_secs(1))
        .sweep_interval(None)
        .build()
        .unwrap();
    let m = recorded_over(|| {
        let first = q.subscribe(); // `#0`
        q.push_batch(0..10).unwrap();
        q.report_metrics(); // nothing missed yet
        clock.advance(Duration::from_secs(2));
        assert_eq!(q.expire_now(), 10);
        assert_eq!(first.missed().expired, 10);
        // No report between the misses and the drop: the drop reports them.
        drop(first);
        let second = q.subscribe(); // `#0` again
        q.push_batch(10..13).unwrap();
        clock.advance(Duration::from_secs(2));
        assert_eq!(q.expire_now(), 3);
        assert_eq!(second.missed().expired, 3);
        q.report_metrics();
    });
    let missed = labels(&[
        ("queue", "metered-reuse"),
        ("group", "#0"),
        ("cause", "expired"),
    ]);
    // 10 missed by the first `#0`, then 3 by the second.
    assert_eq!(
        counter(&m[&("chunkq_group_missed_total".into(), missed)]),
        13
    );
}

/// The same for a queue's label: a queue whose last handle drops reports
/// its final counts, and the next queue of that name continues them.
#[test]
fn a_reused_queue_label_continues_its_counters() {
    let m = recorded_over(|| {
        let a: Queue<u64> = Queue::builder("metered-requeue")
            .sweep_interval(None)
            .build()
            .unwrap();
        a.push_batch(0..5).unwrap();
        a.report_metrics();
        a.push_batch(5..7).unwrap(); // not reported before the drop
        drop(a);
        let b: Queue<u64> = Queue::builder("metered-requeue")
            .sweep_interval(None)
            .build()
            .unwrap();
        b.push_batch(0..3).unwrap();
        b.report_metrics();
    });
    let queue = labels(&[("queue", "metered-requeue")]);
    assert_eq!(
        counter(&m[&("chunkq_pushed_total".into(), queue.clone())]),
        7 + 3
    );
    // Gauges are the live queue's own.
    assert_eq!(gauge(&m[&("chunkq_len".into(), queue)]), 3.0);
}

/// A group named like an anonymous label (`#0`) gets a label of its own
/// (`##0`): the two never write into one series.
#[test]
fn a_group_named_like_an_anonymous_label_has_its_own_series() {
    let clock = Clock::manual();
    let q: Queue<u64> = Queue::builder("metered-hash")
        .clock(clock.clone())
        .ttl(Duration::from_secs(1))
        .sweep_interval(None)
        .build()
        .unwrap();
    let anonymous = q.subscribe(); // `#0`
    q.push_batch(0..4).unwrap();
    anonymous.try_recv().unwrap();
    let named = q.subscribe_group("#0", chunkq::Start::Latest);
    q.push(4).unwrap();
    let m = recorded(&q);
    let lag = |group: &str| {
        let l = labels(&[("queue", "metered-hash"), ("group", group)]);
        gauge(&m[&("chunkq_group_lag".into(), l)])
    };
    assert_eq!((lag("#0"), lag("##0")), (4.0, 1.0));
    drop((anonymous, named));
}
