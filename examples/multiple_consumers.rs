//! Independent consumers (each sees every item) next to a consumer group
//! (clones that share the work: each item goes to exactly one of them).
//!
//! Run with `cargo run --release --example multiple_consumers`.

mod cli;

use chunkq::{PushError, Queue};
use std::collections::BTreeMap;
use std::thread;

fn main() {
    cli::Args::none(
        "multiple_consumers",
        "usage: multiple_consumers\nindependent consumers and a consumer group on one queue; takes no arguments",
    );
    let q: Queue<u64> = Queue::new("jobs");

    // Two independent subscribers: each reads every job.
    let audit = q.subscribe();
    let metrics = q.subscribe();
    // One group of three workers: they compete for the jobs.
    let workers = q.subscribe();

    let mut threads = Vec::new();
    for name in ["audit", "metrics"] {
        let c = if name == "audit" {
            audit.clone()
        } else {
            metrics.clone()
        };
        threads.push(thread::spawn(move || {
            let n = c.iter().count();
            (name.to_string(), n)
        }));
    }
    drop((audit, metrics));
    for w in 0..3 {
        let c = workers.clone();
        threads.push(thread::spawn(move || {
            let mut n = 0;
            for job in c.iter() {
                // ... process the job ...
                std::hint::black_box(job.payload());
                n += 1;
            }
            (format!("worker-{w}"), n)
        }));
    }
    drop(workers);

    // Two producers.
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                for i in 0..5_000 {
                    let mut job = p * 1_000_000 + i;
                    // The default policy is Reject: when the 1 MiB budget is
                    // full the payload comes back; wait for the readers.
                    while let Err(PushError::Full(back)) = q.push(job) {
                        job = back;
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    q.close(); // consumers drain, then their iterators end

    let counts: BTreeMap<String, usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let group: usize = counts
        .iter()
        .filter(|(k, _)| k.starts_with("worker"))
        .map(|(_, n)| n)
        .sum();
    for (who, n) in &counts {
        println!("{who:>9}: {n} jobs");
    }
    println!("  workers together: {group} jobs (each job once)");
    assert_eq!(counts["audit"], 10_000);
    assert_eq!(counts["metrics"], 10_000);
    assert_eq!(group, 10_000);
}
