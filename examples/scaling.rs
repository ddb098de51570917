//! Scaling runner: chunkq beside its peers over (producers, consumers)
//! pairs, one CSV row per (scenario, implementation, P, C).
//!
//! ```text
//! cargo run --release --example scaling -- [--items N] [--runs R]
//!     [--pairs 1x1,1x4,4x4,8x8,1x15] [--scenarios broadcast,group]
//!     [--only chunkq,kanal,...] [--out FILE]
//! ```
//!
//! `--items` is the number of items pushed per run in total (split evenly
//! over the producers; default 1,000,000). Each row gives the median, min
//! and max of `--runs` runs (default 5) in million deliveries per second (a
//! broadcast delivers every item to every consumer), the ratio of the row's
//! median to the best peer's median in its (scenario, P, C) cell, and for a
//! peer row chunkq's median divided by this peer's (`chunkq_over_this`) and
//! chunkq-batch's (`chunkq_batch_over_this`). The batch variants
//! (`chunkq-batch`, `kanal-batch`, `crossbeam-channel-batch`,
//! `disruptor-batch`, `crossbeam-channel-fanout-batch`; see the harness
//! docs) are rows of the same cell, and `best_peer` is the best of all peer
//! rows, single or batch. The group cells also hold `chunkq-prefetch`
//! (members read one by one through `Consumer::prefetch(64)`; a chunkq row,
//! never the best peer; `--only chunkq-prefetch` selects it). Every run verifies its
//! deliveries (see `benches/harness/mod.rs`) and panics on a wrong answer.
//! Runs are interleaved (run r of every implementation, then run r + 1),
//! so a change in the machine's load hits all of them alike. Rows whose
//! thread count exceeds the machine's cores say
//! `oversubscribed=yes`.

#[path = "../benches/harness/mod.rs"]
#[allow(dead_code)]
mod harness;

mod cli;

use harness::{Scenario, oversubscribed};
use std::fmt::Write as _;
use std::io::Write as _;

struct Opts {
    items: u64,
    runs: usize,
    pairs: Vec<(usize, usize)>,
    scenarios: Vec<Scenario>,
    only: Option<Vec<String>>,
    out: Option<String>,
}

fn parse() -> Opts {
    let mut o = Opts {
        items: 1_000_000,
        runs: 5,
        pairs: harness::parse_pairs("1x1,1x4,4x4,8x8,1x15"),
        scenarios: vec![Scenario::Broadcast, Scenario::Group],
        only: None,
        out: None,
    };
    let mut args = cli::Args::new(
        "scaling",
        "usage: scaling [--items N] [--runs R] [--pairs 1x1,4x4] \
         [--scenarios broadcast,group] [--only chunkq,kanal] [--out FILE]\n\
         throughput per (scenario, implementation, P producers, C consumers): \
         median/min/max of R runs (default 5) of N items (default 1000000), \
         pairs PxC (default 1x1,1x4,4x4,8x8,1x15), written as CSV to FILE",
    );
    while let Some(a) = args.next() {
        match a.as_str() {
            "--items" => o.items = args.parsed(&a),
            "--runs" => o.runs = args.parsed(&a),
            "--pairs" => {
                let v = args.value(&a);
                o.pairs = pairs(&args, &v);
            }
            "--scenarios" => {
                o.scenarios = args
                    .value(&a)
                    .split(',')
                    .map(|s| match s {
                        "broadcast" => Scenario::Broadcast,
                        "group" => Scenario::Group,
                        _ => args.fail(format!("unknown scenario {s:?}")),
                    })
                    .collect()
            }
            "--only" => o.only = Some(args.value(&a).split(',').map(str::to_string).collect()),
            "--out" => o.out = Some(args.value(&a)),
            _ => args.fail(format!("unknown argument {a:?}")),
        }
    }
    if o.runs == 0 || o.pairs.is_empty() {
        args.fail("--runs and --pairs need at least one");
    }
    o
}

/// `--pairs`: `PxC,PxC,...`, each count at least 1.
fn pairs(args: &cli::Args, v: &str) -> Vec<(usize, usize)> {
    v.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let Some((p, c)) = t.trim().split_once(['x', ':']) else {
                args.fail(format!("--pairs: {t:?} is not PxC (e.g. 4x4)"));
            };
            let (p, c): (usize, usize) = (args.parse("--pairs", p), args.parse("--pairs", c));
            if p == 0 || c == 0 {
                args.fail(format!("--pairs: {t:?} needs at least one of each"));
            }
            (p, c)
        })
        .collect()
}

struct Row {
    imp: harness::Imp,
    median: f64,
    min: f64,
    max: f64,
}

fn main() {
    let o = parse();
    let mut csv = harness::csv_header(&harness::command_line());
    writeln!(
        csv,
        "# unit: million deliveries per second (Mdps); runs per row: {}; items pushed per run: {}",
        o.runs, o.items
    )
    .unwrap();
    csv.push_str(
        "scenario,implementation,producers,consumers,oversubscribed,items_per_run,\
         deliveries_per_run,median_mdps,min_mdps,max_mdps,ratio_to_best_peer,best_peer,\
         chunkq_over_this,chunkq_batch_over_this\n",
    );
    print!("{csv}");
    std::io::stdout().flush().unwrap();
    for &scenario in &o.scenarios {
        for &(p, c) in &o.pairs {
            let n = (o.items / p as u64).max(1);
            let deliveries = scenario.deliveries(p, c, n);
            let imps: Vec<harness::Imp> = scenario
                .imps()
                .iter()
                .copied()
                .filter(|imp| imp.supports(p, c))
                .filter(|imp| {
                    o.only
                        .as_ref()
                        .is_none_or(|only| only.iter().any(|s| s == imp.name()))
                })
                .collect();
            // Round-robin: run r of every implementation before run r + 1 of
            // any, so a change in the machine's load hits all of them alike.
            let mut rates = vec![Vec::with_capacity(o.runs); imps.len()];
            for _ in 0..o.runs {
                for (k, imp) in imps.iter().enumerate() {
                    let t = imp.run(p, c, n);
                    rates[k].push(deliveries as f64 / t.as_secs_f64() / 1e6);
                }
            }
            let mut rows = Vec::new();
            for (imp, mut r) in imps.into_iter().zip(rates) {
                r.sort_by(f64::total_cmp);
                rows.push(Row {
                    imp,
                    median: r[r.len() / 2],
                    min: r[0],
                    max: r[r.len() - 1],
                });
                eprintln!(
                    "  {:9} {:25} P={p:2} C={c:2}: median {:8.3} Mdps",
                    scenario.name(),
                    imp.name(),
                    r[r.len() / 2]
                );
            }
            let best = rows
                .iter()
                .filter(|r| !r.imp.is_chunkq())
                .max_by(|a, b| a.median.total_cmp(&b.median));
            let chunkq = rows
                .iter()
                .find(|r| r.imp.is_chunkq() && !r.imp.is_batch())
                .map(|r| r.median);
            let chunkq_batch = rows
                .iter()
                .find(|r| r.imp.is_chunkq() && r.imp.is_batch())
                .map(|r| r.median);
            let mut cell = String::new();
            for r in &rows {
                let (ratio, best_name) = match best {
                    Some(b) => (format!("{:.3}", r.median / b.median), b.imp.name()),
                    None => (String::new(), ""),
                };
                let over = |q: Option<f64>| match q {
                    Some(q) if !r.imp.is_chunkq() => format!("{:.3}", q / r.median),
                    _ => String::new(),
                };
                let (chunkq_over, batch_over) = (over(chunkq), over(chunkq_batch));
                writeln!(
                    cell,
                    "{},{},{p},{c},{},{},{deliveries},{:.3},{:.3},{:.3},{ratio},{best_name},\
                     {chunkq_over},{batch_over}",
                    scenario.name(),
                    r.imp.name(),
                    if oversubscribed(p, c) { "yes" } else { "no" },
                    n * p as u64,
                    r.median,
                    r.min,
                    r.max,
                )
                .unwrap();
            }
            print!("{cell}");
            std::io::stdout().flush().unwrap();
            csv.push_str(&cell);
        }
    }
    if let Some(path) = o.out {
        if let Some(dir) = std::path::Path::new(&path).parent() {
            std::fs::create_dir_all(dir).expect("create output folder");
        }
        std::fs::write(&path, csv).expect("write CSV");
        eprintln!("wrote {path}");
    }
}
