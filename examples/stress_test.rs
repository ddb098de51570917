//! High-load stress run: many producers, hundreds of consumers, a 1 MiB
//! budget and a short TTL, so that most consumers fall behind and lose items
//! to eviction and expiry, and a check that every one of them can still
//! account for every item pushed.
//!
//! ```text
//! cargo run --release --example stress_test
//! cargo run --release --example stress_test -- --secs 10 --producers 8 --consumers 500
//! ```
//!
//! One `Queue<u64>` (1 MiB budget, `Overflow::DropOldest`, 50 ms TTL, the
//! sweeper every 10 ms) gets `--consumers` independent consumers (default
//! 200) and one group of 4 clones sharing a cursor, all subscribed before the
//! first push, so each is owed every item. `--producers` threads (default 4)
//! push for `--secs` seconds (default 6), while a few reader threads
//! (`--readers`, default 4) visit their consumers round-robin, half of them
//! with the borrowed path `Consumer::read(64, ..)` and half with
//! `try_recv_many`. Once a second the main thread prints a progress line
//! (pushed so far, `len()`, `memory_used()`, the slowest consumer's lag).
//!
//! Then the queue is closed, the readers drain every consumer until
//! `TryRecvError::Closed`, and the program checks, for every consumer and
//! for the group as a whole, that delivered + `missed().total()` equals the
//! number of successful pushes, and that each consumer saw strictly
//! increasing sequence numbers. It prints a table of representative rows and
//! exits with status 1 if anything does not add up.

use chunkq::{Consumer, Missed, Overflow, Queue, TryRecvError};

mod cli;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The memory budget.
const BUDGET: usize = 1 << 20;
/// Item TTL.
const TTL: Duration = Duration::from_millis(50);
/// Sweeper period.
const SWEEP: Duration = Duration::from_millis(10);
/// Members of the one consumer group.
const GROUP_CLONES: usize = 4;
/// Most items one read call takes.
const BATCH: usize = 64;

/// Command-line settings.
struct Args {
    secs: u64,
    producers: usize,
    consumers: usize,
    readers: usize,
}

const USAGE: &str = "usage: stress_test [--secs N] [--producers N] [--consumers N] [--readers N]\n\
     defaults: --secs 6 --producers 4 --consumers 200 --readers 4";

fn parse_args() -> Args {
    let mut a = Args {
        secs: 6,
        producers: 4,
        consumers: 200,
        readers: 4,
    };
    let mut it = cli::Args::new("stress_test", USAGE);
    while let Some(flag) = it.next() {
        if !["--secs", "--producers", "--consumers", "--readers"].contains(&flag.as_str()) {
            it.fail(format!("unknown flag {flag:?}"));
        }
        let n: u64 = it.parsed(&flag);
        if n == 0 {
            it.fail(format!("{flag} must be at least 1"));
        }
        match flag.as_str() {
            "--secs" => a.secs = n,
            "--producers" => a.producers = n as usize,
            "--consumers" => a.consumers = n as usize,
            _ => a.readers = n as usize,
        }
    }
    a
}

/// One consumer handle a reader thread drains, and what it saw.
struct Slot {
    /// Index into the shared consumer list (`consumers` = the group).
    index: usize,
    consumer: Consumer<u64>,
    /// Borrowed path (`read`) or owned batches (`try_recv_many`).
    borrowed: bool,
    delivered: u64,
    /// The last sequence number seen (to check the order).
    last_seq: Option<u64>,
    out_of_order: u64,
    done: bool,
}

impl Slot {
    /// Takes one batch; returns how many items it got.
    fn step(&mut self, buf: &mut Vec<chunkq::Delivery<u64>>) -> usize {
        let mut got = 0usize;
        let mut last = self.last_seq;
        let mut bad = 0u64;
        let mut see = |seq: u64| {
            if last.is_some_and(|l| seq <= l) {
                bad += 1;
            }
            last = Some(seq);
            got += 1;
        };
        let r = if self.borrowed {
            self.consumer.read(BATCH, |item| {
                std::hint::black_box(item.payload());
                see(item.seq());
            })
        } else {
            buf.clear();
            let r = self.consumer.try_recv_many(buf, BATCH);
            for d in buf.drain(..) {
                std::hint::black_box(d.payload());
                see(d.seq());
            }
            r
        };
        if let Err(TryRecvError::Closed) = r {
            self.done = true;
        }
        self.last_seq = last;
        self.out_of_order += bad;
        self.delivered += got as u64;
        got
    }
}

/// One row of the final table.
struct Row {
    name: String,
    delivered: u64,
    missed: Missed,
    out_of_order: u64,
}

impl Row {
    fn adds_up(&self, pushed: u64) -> bool {
        self.delivered + self.missed.total() == pushed && self.out_of_order == 0
    }
}

fn main() {
    let args = parse_args();
    let q: Queue<u64> = Queue::builder("stress")
        .memory_limit(BUDGET)
        .overflow(Overflow::DropOldest)
        .ttl(TTL)
        .sweep_interval(Some(SWEEP))
        .build()
        .expect("valid settings");
    println!(
        "stress_test: {} producers, {} independent consumers + a group of {GROUP_CLONES} clones, \
         {} reader threads, {} s",
        args.producers, args.consumers, args.readers, args.secs
    );
    println!("queue: budget {BUDGET} bytes (DropOldest), TTL {TTL:?}, sweeper every {SWEEP:?}\n");

    // Subscribe everyone before the first push: each is owed every item.
    // consumers[args.consumers] is the group (its first member).
    let mut consumers: Vec<Consumer<u64>> = (0..args.consumers).map(|_| q.subscribe()).collect();
    let group = q.subscribe();
    consumers.push(group.clone());
    // A clone of each consumer for the progress line's lag (a clone shares
    // its cursor, so it reads the same lag; it never reads itself).
    let watch: Vec<Consumer<u64>> = consumers.iter().map(Consumer::clone).collect();

    // Deal the consumers out to the readers, and the group's members one
    // per reader (round-robin), alternating the read path.
    let mut per_reader: Vec<Vec<Slot>> = (0..args.readers).map(|_| Vec::new()).collect();
    let mut members: Vec<Consumer<u64>> = (1..GROUP_CLONES).map(|_| group.clone()).collect();
    members.insert(0, group);
    let group_index = args.consumers;
    let all = consumers
        .into_iter()
        .enumerate()
        .take(args.consumers)
        .chain(members.into_iter().map(|m| (group_index, m)));
    for (k, (index, consumer)) in all.enumerate() {
        per_reader[k % args.readers].push(Slot {
            index,
            consumer,
            borrowed: k % 2 == 0,
            delivered: 0,
            last_seq: None,
            out_of_order: 0,
            done: false,
        });
    }

    let readers: Vec<_> = per_reader
        .into_iter()
        .map(|mut slots| {
            thread::spawn(move || {
                let mut buf = Vec::with_capacity(BATCH);
                let mut live = slots.len();
                while live > 0 {
                    let mut got = 0;
                    for s in slots.iter_mut().filter(|s| !s.done) {
                        got += s.step(&mut buf);
                        if s.done {
                            live -= 1;
                        }
                    }
                    if got == 0 {
                        thread::sleep(Duration::from_micros(200));
                    }
                }
                slots
            })
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let pushed = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..args.producers as u64)
        .map(|p| {
            let (q, stop, pushed, refused) =
                (q.clone(), stop.clone(), pushed.clone(), refused.clone());
            thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..256 {
                        match q.push(p << 40 | n) {
                            Ok(_) => {
                                pushed.fetch_add(1, Ordering::Relaxed);
                            }
                            // DropOldest never refuses a u64; count it anyway.
                            Err(_) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        n += 1;
                    }
                }
            })
        })
        .collect();

    // Progress, once a second.
    let start = Instant::now();
    for s in 1..=args.secs {
        let next = start + Duration::from_secs(s);
        thread::sleep(next.saturating_duration_since(Instant::now()));
        let lag = watch.iter().map(Consumer::lag).max().unwrap_or(0);
        println!(
            "[{s:>3} s] pushed {:>11}  len {:>6}  memory {:>8} / {BUDGET}  slowest lag {lag:>6}",
            pushed.load(Ordering::Relaxed),
            q.len(),
            q.memory_used(),
        );
    }
    stop.store(true, Ordering::Relaxed);
    for p in producers {
        p.join().expect("producer panicked");
    }
    q.close();
    let pushed = pushed.load(Ordering::Relaxed);
    let refused = refused.load(Ordering::Relaxed);
    let drain_from = Instant::now();
    let mut slots: Vec<Slot> = readers
        .into_iter()
        .flat_map(|r| r.join().expect("reader panicked"))
        .collect();
    let drained = drain_from.elapsed();
    drop(watch);

    // One row per consumer, the group's members summed into one row.
    slots.sort_by_key(|s| s.index);
    let mut rows: Vec<Row> = Vec::with_capacity(args.consumers + 1);
    for s in &slots {
        if s.index == group_index && rows.len() == group_index + 1 {
            let g = rows.last_mut().expect("group row");
            g.delivered += s.delivered;
            g.out_of_order += s.out_of_order;
            continue;
        }
        let name = if s.index == group_index {
            format!("group ({GROUP_CLONES} clones)")
        } else {
            format!("consumer #{}", s.index)
        };
        rows.push(Row {
            name,
            delivered: s.delivered,
            missed: s.consumer.missed(),
            out_of_order: s.out_of_order,
        });
    }
    let (independent, group_row) = rows.split_at(args.consumers);
    let group_row = &group_row[0];

    println!(
        "\nclosed after {:.2?}; pushed {pushed} (refused {refused}); readers drained in {drained:.2?}\n",
        start.elapsed() - drained
    );
    println!(
        "{:<22} {:<20} {:>11} {:>11} {:>11} {:>11}  adds up",
        "", "consumer", "delivered", "expired", "evicted", "total"
    );
    let pick = |label: &str, key: fn(&Row) -> u64, max: bool| {
        let r = if max {
            independent.iter().max_by_key(|r| key(r))
        } else {
            independent.iter().min_by_key(|r| key(r))
        };
        (label.to_string(), r.expect("at least one consumer"))
    };
    let mut shown = vec![
        pick("min delivered", |r| r.delivered, false),
        pick("max delivered", |r| r.delivered, true),
        pick("min expired", |r| r.missed.expired, false),
        pick("max expired", |r| r.missed.expired, true),
        pick("min evicted", |r| r.missed.evicted, false),
        pick("max evicted", |r| r.missed.evicted, true),
    ];
    shown.push(("the group".to_string(), group_row));
    for (label, r) in shown {
        println!(
            "{label:<22} {:<20} {:>11} {:>11} {:>11} {:>11}  {}",
            r.name,
            r.delivered,
            r.missed.expired,
            r.missed.evicted,
            r.delivered + r.missed.total(),
            if r.adds_up(pushed) { "yes" } else { "NO" }
        );
    }

    let bad: Vec<&Row> = rows.iter().filter(|r| !r.adds_up(pushed)).collect();
    for r in &bad {
        eprintln!(
            "MISMATCH {}: delivered {} + expired {} + evicted {} = {} != pushed {pushed} \
             (out of order: {})",
            r.name,
            r.delivered,
            r.missed.expired,
            r.missed.evicted,
            r.delivered + r.missed.total(),
            r.out_of_order
        );
    }
    println!(
        "\nall {} consumers add up (delivered + missed = pushed {pushed}, in order): {}",
        rows.len(),
        if bad.is_empty() { "yes" } else { "NO" }
    );
    if !bad.is_empty() {
        std::process::exit(1);
    }
}
