//! (h) Defects found by hostile use (issue 8), each an interleaving:
//! - a trim up to a `Start::Latest` cursor must not pass a push in flight
//!   (ARCHITECTURE.md invariant 6): `tail` counts reservations whose slots
//!   are not published yet;
//! - `missed()` after `try_recv` said `Closed` is final, even while a stale
//!   remover's cursor move fails concurrently (counting finished moves let
//!   that failed move stand in for the one still counting);
//!   (and white-box: `chunkq::__loom::missed_vs_stale_move`);
//! - the producers' chunk hint never points at an unlinked chunk, with two
//!   removers retiring chunks at once (white-box, `chunkq::__loom`).
#![cfg(loom)]

mod common;

use chunkq::{Start, TryRecvError};
use common::{TTL, model, model_capped, roomy};
use loom::thread;

/// A push in flight, a `Latest` subscriber (its cursor lands after the
/// reservation) and a sweep (which trims up to that cursor) race. The
/// trim used to pass the unpublished slot: `head` moved past it with 0
/// bytes given back, so the item's bytes stayed accounted with nothing
/// retained.
#[test]
fn trim_to_a_latest_cursor_waits_for_the_push_in_flight() {
    model(|counter| {
        let (q, _clock) = roomy();
        let producer = {
            let (q, item) = (q.clone(), counter.make(0));
            thread::spawn(move || q.push(item).unwrap())
        };
        let latest = q.subscribe_from(Start::Latest);
        q.expire_now();
        producer.join().unwrap();
        // Retained items and accounted bytes agree.
        assert_eq!(
            q.retained() == 0,
            q.memory_used() == 0,
            "len {}, bytes {}",
            q.retained(),
            q.memory_used()
        );
        // Everyone reads what is retained; then a sweep releases it all.
        let oldest = q.subscribe();
        let _ = oldest.try_iter().count();
        let _ = latest.try_iter().count();
        q.expire_now();
        assert_eq!((q.retained(), q.memory_used()), (0, 0));
    });
}

/// Two removers expire the one item while its consumer reads until
/// `Closed`; then `missed()` must already hold the item it did not read.
#[test]
fn missed_is_final_once_closed() {
    // Three threads: capped at 2 preemptions (see loom-tests/README.md).
    model_capped(2, |counter| {
        let (q, clock) = roomy();
        let c = q.subscribe();
        q.push(counter.make(0)).unwrap();
        clock.advance(TTL * 2);
        q.close();
        let removers: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || {
                    q.expire_now();
                })
            })
            .collect();
        let mut delivered = 0u64;
        loop {
            match c.try_recv() {
                Ok(_) => delivered += 1,
                Err(TryRecvError::Closed) => break,
                Err(TryRecvError::Empty) => unreachable!("closed: never empty"),
            }
        }
        let missed = c.missed();
        assert_eq!(
            delivered + missed.expired,
            1,
            "after Closed: delivered {delivered}, missed {missed:?}"
        );
        for r in removers {
            r.join().unwrap();
        }
    });
}

/// See `chunkq::__loom::hint_vs_two_retirers`.
#[test]
fn the_producers_hint_never_points_at_an_unlinked_chunk() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(3));
    builder.check(chunkq::__loom::hint_vs_two_retirers);
    println!("loom: hint model done");
}

/// See `chunkq::__loom::missed_vs_stale_move`.
#[test]
fn missed_never_lags_its_cursor_move() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(3));
    builder.check(chunkq::__loom::missed_vs_stale_move);
    println!("loom: missed model done");
}
