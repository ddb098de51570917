//! Throughput over (producers, consumers) pairs, chunkq beside its peers in
//! one criterion group per (scenario, P, C), so the report shows them side by
//! side. Each iteration is one verified run of `harness::Imp::run` (see
//! `harness/mod.rs`): a wrong delivery panics.
//!
//! `cargo bench --bench throughput` runs pairs 1x1,1x4,4x4 with 20,000 items
//! per run; `CHUNKQ_BENCH_PAIRS=8x8,1x15` and `CHUNKQ_BENCH_ITEMS=100000`
//! change that. On a machine with fewer cores than P + C the pair is
//! oversubscribed and the group name says so.

#[allow(dead_code)]
mod harness;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use harness::Scenario;
use std::time::Duration;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn throughput(c: &mut Criterion) {
    let pairs = harness::parse_pairs(&env_or("CHUNKQ_BENCH_PAIRS", "1x1,1x4,4x4"));
    let items: u64 = env_or("CHUNKQ_BENCH_ITEMS", "20000")
        .parse()
        .expect("CHUNKQ_BENCH_ITEMS");
    for scenario in [Scenario::Broadcast, Scenario::Group] {
        for &(p, cs) in &pairs {
            let n = (items / p as u64).max(1);
            let over = if harness::oversubscribed(p, cs) {
                "-oversubscribed"
            } else {
                ""
            };
            let mut g = c.benchmark_group(format!("{}/P{p}xC{cs}{over}", scenario.name()));
            g.sample_size(10)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2))
                .throughput(Throughput::Elements(scenario.deliveries(p, cs, n)));
            for &imp in scenario.imps() {
                if !imp.supports(p, cs) {
                    continue;
                }
                g.bench_function(imp.name(), |b| {
                    b.iter_custom(|iters| (0..iters).map(|_| imp.run(p, cs, n)).sum())
                });
            }
            g.finish();
        }
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);
