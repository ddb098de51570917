//! The fuzz targets' operation interpreter (`tests/support/ops.rs`) on
//! random inputs, so stable CI runs it too: random bytes are decoded into
//! operation sequences exactly as `cargo fuzz` inputs are, and each sequence
//! runs against a real queue and the reference model, compared after every
//! step, with every invariant checked at the end. A few hand-written
//! sequences pin the paths random bytes reach rarely (chunk boundaries).

#[path = "support/ops.rs"]
mod ops;

use ops::{EnvInput, EnvOp, Op, OpsConfig, OpsInput, Size, Stats};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::sync::Mutex;

/// Runs `f` on `cases` random byte strings (proptest shrinks a failing one
/// and the panic shows it), and returns the summed statistics.
fn random_runs(cases: u32, f: fn(&[u8]) -> Stats) -> Stats {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let total = Mutex::new(Stats::default());
    let result = runner.run(&vec(any::<u8>(), 0..3000), |data| {
        let s = f(&data);
        total.lock().unwrap().add(&s);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    total.into_inner().unwrap()
}

/// Random operation sequences: the queue matches the model, and the random
/// inputs reach every outcome (so a model that never overflows or never
/// expires would fail here).
#[test]
fn ops_match_the_model() {
    let s = random_runs(10_000, ops::run_ops);
    println!("{s:?}");
    assert!(s.ops > 100_000, "{s:?}");
    assert!(s.delivered > 0 && s.full > 0 && s.closed > 0, "{s:?}");
    assert!(s.expired > 0 && s.evicted > 0 && s.forwarded > 0, "{s:?}");
}

/// Random forward chains across three queues: envelopes and histories
/// match the model.
#[test]
fn envelopes_match_the_model() {
    let s = random_runs(8000, ops::run_envelope);
    println!("{s:?}");
    assert!(s.forwarded > 1000 && s.full > 0, "{s:?}");
    assert!(s.expired > 0 && s.evicted > 0, "{s:?}");
}

/// A budget large enough for more than a chunk of items (limit selector
/// divisible by 4: 200 000 + 4 * 60 000 bytes).
const BIG: OpsConfig = OpsConfig {
    limit: 60_000,
    ttl_ms: 9,
};

/// Reads across chunk boundaries with two groups, one lagging: trimming
/// releases whole chunks only when both have left them, at a read, a full
/// push and a sweep.
#[test]
fn chunk_boundaries_and_trimming() {
    let mut ops = vec![
        Op::Subscribe(false),
        Op::Subscribe(false),
        Op::CloneConsumer(0),
    ];
    ops.extend(vec![Op::PushBatch(127, Size(40)); 18]); // 2286 items
    ops.extend(vec![Op::RecvMany(0, 31); 40]); // group 0 through chunk 0 and into 1
    ops.push(Op::ExpireNow); // trims nothing: group 1 has read nothing
    ops.extend(vec![Op::RecvBatch(1, 255); 16]); // group 1 leaves chunk 0: trimmed
    ops.extend([Op::Advance(5), Op::Push(Size(0)), Op::DropConsumer(0)]);
    for _ in 0..10 {
        ops.push(Op::Drain(1));
        ops.extend(vec![Op::PushMany(31, Size(100)); 8]);
    }
    ops.extend([Op::Advance(20), Op::ExpireNow, Op::Close(0)]);
    let s = ops::run_ops_input(&OpsInput { config: BIG, ops });
    println!("{s:?}");
    assert!(
        s.max_tail > 4000 && s.trimmed >= 2000 && s.expired > 0,
        "{s:?}"
    );
}

/// A small budget: every push overflows; both policies, with a group that
/// reads, one that never does, a clone group and kept deliveries forwarded
/// back into their queue.
#[test]
fn overflow_under_both_policies() {
    let mut ops = vec![
        Op::Subscribe(false),
        Op::Subscribe(true),
        Op::CloneConsumer(1),
    ];
    for i in 0..400u16 {
        ops.push(Op::Push(Size(i % 300)));
        ops.push(Op::Recv((i % 3) as u8, i % 5 == 0));
        if i % 7 == 0 {
            ops.push(Op::Forward(i as u8));
        }
        if i % 50 == 0 {
            ops.extend([Op::Advance(7), Op::ExpireNow, Op::DropHeld(0)]);
        }
    }
    let s = ops::run_ops_input(&OpsInput {
        config: OpsConfig {
            limit: 601,
            ttl_ms: 30,
        },
        ops,
    });
    println!("{s:?}");
    assert!(s.full > 0 && s.evicted > 0 && s.forwarded > 0, "{s:?}");
}

/// A forward chain a -> b -> c -> a with time passing between hops.
#[test]
fn forward_chain_keeps_identity_and_history() {
    let mut ops = Vec::new();
    for i in 0..30u8 {
        ops.push(EnvOp::Push(i, i));
        ops.push(EnvOp::Advance(1));
        ops.push(EnvOp::Forward(i, i + 1));
        ops.push(EnvOp::Forward(i + 1, i + 2));
        ops.push(EnvOp::ForwardHeld(i, i + 2));
        if i % 10 == 9 {
            ops.push(EnvOp::ExpireNow(i));
        }
    }
    let s = ops::run_envelope_input(&EnvInput {
        limits: [60_000, 60_001, 20_000],
        ttl_ms: 200,
        ops,
    });
    println!("{s:?}");
    assert!(s.forwarded >= 60, "{s:?}");
}
