//! Contention counters of chunkq's group (work-sharing) path, per pair
//! (issue 17's profile; see benches/README.md, "Contention profile").
//!
//! ```text
//! RUSTFLAGS="--cfg chunkq_counters" cargo run --release --example contention -- \
//!     [--items N] [--runs R] [--pairs 1x1,2x2,1x4,4x4] [--batch] [--out FILE]
//! ```
//!
//! Each run is the scaling runner's chunkq group run (`benches/harness`,
//! `try_recv` or, with `--batch`, `push_batch` + `try_recv_many`); one CSV
//! row per run: its throughput, then each counter as a total and per 1,000
//! items. Built without `--cfg chunkq_counters` the library counts nothing
//! and this program says so and exits 2.

#[path = "../benches/harness/mod.rs"]
#[allow(dead_code)]
mod harness;

mod cli;

#[cfg(chunkq_counters)]
fn main() {
    use std::fmt::Write as _;
    let mut items = 1_000_000u64;
    let mut runs = 3usize;
    let mut pairs = harness::parse_pairs("1x1,2x2,1x4,4x4");
    let mut batch = false;
    let mut out = None::<String>;
    let mut args = cli::Args::new(
        "contention",
        "usage: contention [--items N] [--runs R] [--pairs 1x1,2x2] [--batch] [--out FILE]\n\
         chunkq group runs with the contention counters (build with \
         RUSTFLAGS=\"--cfg chunkq_counters\"), one CSV row per run",
    );
    while let Some(a) = args.next() {
        match a.as_str() {
            "--items" => items = args.parsed(&a),
            "--runs" => runs = args.parsed(&a),
            "--pairs" => pairs = harness::parse_pairs(&args.value(&a)),
            "--batch" => batch = true,
            "--out" => out = Some(args.value(&a)),
            _ => args.fail(format!("unknown argument {a:?}")),
        }
    }
    let names = chunkq::__counters::NAMES;
    let mut csv = harness::csv_header(&harness::command_line());
    write!(csv, "implementation,producers,consumers,run,items,mdps").unwrap();
    for n in names {
        write!(csv, ",{n}").unwrap();
    }
    for n in names {
        write!(csv, ",{n}_per_1k").unwrap();
    }
    csv.push('\n');
    print!("{csv}");
    let imp = if batch {
        harness::Imp::ChunkqGroupBatch
    } else {
        harness::Imp::ChunkqGroup
    };
    for &(p, c) in &pairs {
        let n = (items / p as u64).max(1);
        let total = n * p as u64;
        for r in 0..runs {
            let _ = chunkq::__counters::take();
            let t = imp.run(p, c, n);
            let counts = chunkq::__counters::take();
            let mut row = format!(
                "{},{p},{c},{r},{total},{:.3}",
                if batch { "chunkq-batch" } else { "chunkq" },
                total as f64 / t.as_secs_f64() / 1e6
            );
            for k in counts {
                write!(row, ",{k}").unwrap();
            }
            for k in counts {
                write!(row, ",{:.2}", k as f64 * 1000.0 / total as f64).unwrap();
            }
            println!("{row}");
            csv.push_str(&row);
            csv.push('\n');
        }
    }
    if let Some(path) = out {
        std::fs::write(&path, csv).expect("write CSV");
        eprintln!("wrote {path}");
    }
}

#[cfg(not(chunkq_counters))]
fn main() {
    cli::Args::none(
        "contention",
        "usage: contention [--items N] [--runs R] [--pairs 1x1,2x2] [--batch] [--out FILE]\n\
         needs RUSTFLAGS=\"--cfg chunkq_counters\"",
    );
    eprintln!(
        "contention: built without --cfg chunkq_counters; rebuild with RUSTFLAGS=\"--cfg chunkq_counters\""
    );
    std::process::exit(2);
}
