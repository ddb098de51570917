//! Soak runner: producers, independent consumers and a clone group on one
//! queue, with the sweeper every 1 ms, in alternating `DropOldest` and
//! `Reject` phases, for a duration given on the command line. It checks
//! ARCHITECTURE.md's invariants 2–5 as it goes and exits non-zero on any violation.
//!
//! ```text
//! cargo run --release --example soak -- 30s      # or 2m, 500ms, --secs 30
//! ```
//!
//! Each phase builds a fresh queue (1 MiB budget, 20 ms TTL, sweeper every
//! 1 ms) and runs:
//! - 2 producers pushing `(producer, n)` payloads with `n` counting up and a
//!   pseudo-random size (0–511 bytes by the sizer);
//! - group `fast` (one reader), group `slow` (one reader that naps, so it
//!   loses items to expiry and eviction), group `pair` (two clones sharing a
//!   cursor, one reading one at a time, the other in batches);
//! - a monitor thread sampling `memory_used()` against the limit.
//!
//! Checked: (1) every reader sees each producer's items in push order and
//! strictly increasing sequence numbers; (2) at the end of the phase, for
//! every group, delivered + missed == pushed (exact), no sequence number
//! delivered twice within a group (a bitset), and the notices add up to
//! `missed()`; (3) a refused push hands back the payload it was given; (4)
//! `memory_used() <= memory_limit()` at every sample; (5) every payload
//! made is dropped exactly once (counted) after the queue, its consumers and
//! the epoch collector are done.

use chunkq::{Consumer, Overflow, PushError, Queue, RecvTimeoutError};
use std::process::ExitCode;

mod cli;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Memory budget per phase.
const LIMIT: usize = 1 << 20;
/// Item TTL.
const TTL: Duration = Duration::from_millis(20);
/// Producers per phase.
const PRODUCERS: usize = 2;
/// Most pushes per phase (the duplicate bitset's size).
const MAX_SEQ: u64 = 1 << 27;

/// Payloads made, and dropped.
static MADE: AtomicU64 = AtomicU64::new(0);
/// See [`MADE`].
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Violations found (each also printed).
static VIOLATIONS: AtomicUsize = AtomicUsize::new(0);

/// Records a violation.
fn violation(msg: String) {
    eprintln!("VIOLATION: {msg}");
    VIOLATIONS.fetch_add(1, Ordering::SeqCst);
}

/// The soak payload: who pushed it, its number in that producer's sequence,
/// and its size for the sizer. Counts its drops.
struct Payload {
    /// Producer index.
    producer: usize,
    /// Per-producer counter.
    n: u64,
    /// Sizer result.
    size: usize,
}

impl Payload {
    fn new(producer: usize, n: u64, size: usize) -> Self {
        MADE.fetch_add(1, Ordering::Relaxed);
        Self { producer, n, size }
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// A concurrent bitset of delivered sequence numbers (duplicate detector).
struct Seen(Vec<AtomicU64>);

impl Seen {
    fn new() -> Self {
        Self((0..MAX_SEQ / 64).map(|_| AtomicU64::new(0)).collect())
    }

    /// Marks `seq`; false if it was marked already.
    fn mark(&self, seq: u64) -> bool {
        let bit = 1u64 << (seq % 64);
        self.0[(seq / 64) as usize].fetch_or(bit, Ordering::Relaxed) & bit == 0
    }
}

/// What one consumer group did in a phase.
struct GroupTally {
    name: &'static str,
    delivered: AtomicU64,
    noticed: AtomicU64,
    seen: Seen,
}

/// One reader thread: receives until the queue is closed and drained,
/// checking order; `batch` reads with `try_recv_many`, `nap` sleeps now and
/// then (a slow reader).
fn reader(c: Consumer<Payload>, tally: Arc<GroupTally>, batch: bool, nap: bool) {
    let mut last_seq: Option<u64> = None;
    let mut last_n = [None::<u64>; PRODUCERS];
    let notices = c.notifications();
    let mut buf = Vec::new();
    let mut count = 0u64;
    loop {
        buf.clear();
        if batch {
            match c.try_recv_many(&mut buf, 64) {
                Ok(_) => {}
                Err(chunkq::TryRecvError::Closed) => break,
                Err(chunkq::TryRecvError::Empty) => {
                    match c.recv_timeout(Duration::from_millis(5)) {
                        Ok(d) => buf.push(d),
                        Err(RecvTimeoutError::Closed) => break,
                        Err(RecvTimeoutError::Timeout) => {}
                    }
                }
            }
        } else {
            match c.recv_timeout(Duration::from_millis(5)) {
                Ok(d) => buf.push(d),
                Err(RecvTimeoutError::Closed) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        for d in &buf {
            let seq = d.seq();
            if last_seq.is_some_and(|l| seq <= l) {
                violation(format!("{}: seq {seq} after {last_seq:?}", tally.name));
            }
            last_seq = Some(seq);
            let p = d.payload();
            if last_n[p.producer].is_some_and(|l| p.n <= l) {
                violation(format!(
                    "{}: producer {} item {} after {:?}",
                    tally.name, p.producer, p.n, last_n[p.producer]
                ));
            }
            last_n[p.producer] = Some(p.n);
            if seq < MAX_SEQ && !tally.seen.mark(seq) {
                violation(format!("{}: seq {seq} delivered twice", tally.name));
            }
            count += 1;
            if nap && count % 256 == 0 {
                thread::sleep(Duration::from_micros(300));
            }
        }
        tally
            .delivered
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        for n in notices.try_iter() {
            tally.noticed.fetch_add(n.total(), Ordering::Relaxed);
        }
    }
    for n in notices.try_iter() {
        tally.noticed.fetch_add(n.total(), Ordering::Relaxed);
    }
}

/// Totals over the whole soak.
#[derive(Default)]
struct Summary {
    phases: u32,
    pushed: u64,
    rejected: u64,
    delivered: u64,
    expired: u64,
    evicted: u64,
    max_used: usize,
}

/// Runs one phase for `len` with `overflow`.
fn phase(overflow: Overflow, len: Duration, sum: &mut Summary) {
    let made0 = MADE.load(Ordering::SeqCst);
    let dropped0 = DROPPED.load(Ordering::SeqCst);
    let q: Queue<Payload> = Queue::builder("soak")
        .memory_limit(LIMIT)
        .ttl(TTL)
        .overflow(overflow)
        .sweep_interval(Some(Duration::from_millis(1)))
        .sizer(|p: &Payload| p.size)
        .build()
        .expect("valid settings");
    let tallies: Vec<Arc<GroupTally>> = ["fast", "slow", "pair"]
        .into_iter()
        .map(|name| {
            Arc::new(GroupTally {
                name,
                delivered: AtomicU64::new(0),
                noticed: AtomicU64::new(0),
                seen: Seen::new(),
            })
        })
        .collect();
    // Subscribed before any push: every group starts at sequence 0.
    let groups: Vec<Consumer<Payload>> = (0..3).map(|_| q.subscribe()).collect();
    let mut readers = Vec::new();
    for (i, (c, t)) in groups.iter().zip(&tallies).enumerate() {
        let (c, t) = (c.clone(), t.clone());
        readers.push(thread::spawn(move || reader(c, t, false, i == 1)));
    }
    {
        let (c, t) = (groups[2].clone(), tallies[2].clone());
        readers.push(thread::spawn(move || reader(c, t, true, false)));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (q, stop) = (q.clone(), stop.clone());
        thread::spawn(move || {
            let mut max = 0;
            while !stop.load(Ordering::Relaxed) {
                let used = q.memory_used();
                if used > q.memory_limit() {
                    violation(format!("memory_used {used} > limit {}", q.memory_limit()));
                }
                max = max.max(used);
                thread::sleep(Duration::from_micros(100));
            }
            max
        })
    };
    let pushed = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (q, stop, pushed, rejected) =
                (q.clone(), stop.clone(), pushed.clone(), rejected.clone());
            thread::spawn(move || {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ p as u64;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed)
                    && pushed.load(Ordering::Relaxed) < MAX_SEQ - 1024
                {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match q.push(Payload::new(p, n, (x % 512) as usize)) {
                        Ok(_) => {
                            pushed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(PushError::Full(back)) => {
                            if (back.producer, back.n) != (p, n) {
                                violation(format!("Full handed back another payload ({p}, {n})"));
                            }
                            rejected.fetch_add(1, Ordering::Relaxed);
                            thread::yield_now();
                        }
                        Err(PushError::Closed(_)) => violation("push: closed early".into()),
                        Err(e) => violation(format!("push: refused as {e:?}")),
                    }
                    n += 1;
                }
            })
        })
        .collect();
    thread::sleep(len);
    stop.store(true, Ordering::SeqCst);
    for p in producers {
        if p.join().is_err() {
            violation("a producer panicked".into());
        }
    }
    q.close();
    for r in readers {
        if r.join().is_err() {
            violation("a reader panicked".into());
        }
    }
    let max_used = monitor.join().unwrap_or(usize::MAX);
    let pushed = pushed.load(Ordering::SeqCst);
    if pushed >= MAX_SEQ {
        violation("phase too long for the duplicate bitset".into());
    }
    let mut line = format!(
        "{overflow:?}: pushed {pushed}, rejected {}",
        rejected.load(Ordering::SeqCst)
    );
    for (c, t) in groups.iter().zip(&tallies) {
        let m = c.missed();
        let delivered = t.delivered.load(Ordering::SeqCst);
        if delivered + m.total() != pushed {
            violation(format!(
                "{}: delivered {delivered} + missed {} != pushed {pushed}",
                t.name,
                m.total()
            ));
        }
        if overflow == Overflow::Reject && m.evicted != 0 {
            violation(format!("{}: {} evicted under Reject", t.name, m.evicted));
        }
        let noticed = t.noticed.load(Ordering::SeqCst)
            + c.notifications().try_iter().map(|n| n.total()).sum::<u64>();
        if noticed != m.total() {
            violation(format!(
                "{}: notices {noticed} != missed {}",
                t.name,
                m.total()
            ));
        }
        line += &format!(
            "; {}: delivered {delivered}, expired {}, evicted {}",
            t.name, m.expired, m.evicted
        );
        sum.delivered += delivered;
        sum.expired += m.expired;
        sum.evicted += m.evicted;
    }
    line += &format!("; max accounted {max_used} / {LIMIT}");
    println!("{line}");
    drop(groups);
    drop(q);
    // Every payload of the phase (pushed or refused) must be dropped once.
    let made = MADE.load(Ordering::SeqCst) - made0;
    let mut dropped = 0;
    for i in 0..100_000 {
        dropped = DROPPED.load(Ordering::SeqCst) - dropped0;
        if dropped >= made {
            break;
        }
        crossbeam_epoch::pin().flush();
        if i % 64 == 63 {
            thread::sleep(Duration::from_millis(1));
        }
    }
    if dropped != made {
        violation(format!("{made} payloads made, {dropped} dropped"));
    }
    sum.phases += 1;
    sum.pushed += pushed;
    sum.rejected += rejected.load(Ordering::SeqCst);
    sum.max_used = sum.max_used.max(max_used);
}

/// Parses `30s`, `2m`, `500ms`, `30` (seconds) or `--secs 30`.
fn duration_arg() -> Result<Duration, String> {
    let mut args = cli::Args::new(
        "soak",
        "usage: soak [DURATION | --secs N]\n\
         DURATION: 30s, 2m, 500ms or 30 (seconds; default 10s); checks the \
         invariants as it runs and exits 1 on a violation",
    );
    let args: Vec<String> = std::iter::from_fn(|| args.next()).collect();
    let s = match args.as_slice() {
        [] => return Ok(Duration::from_secs(10)),
        [flag, v] if flag == "--secs" => {
            return v
                .parse()
                .map(Duration::from_secs)
                .map_err(|e| e.to_string());
        }
        [v] => v.as_str(),
        _ => return Err(format!("unexpected arguments {args:?}")),
    };
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(60 * n)),
        _ => Err(format!("bad duration unit in {s:?}")),
    }
}

fn main() -> ExitCode {
    let total = match duration_arg() {
        Ok(d) => d,
        Err(e) => cli::fail("soak", e),
    };
    let phase_len = (total / 6).clamp(Duration::from_millis(200), Duration::from_secs(10));
    println!(
        "soak: {total:?} in phases of {phase_len:?}, budget {LIMIT} bytes, TTL {TTL:?}, sweeper 1 ms"
    );
    let start = Instant::now();
    let mut sum = Summary::default();
    let mut policy = Overflow::DropOldest;
    while start.elapsed() + phase_len / 2 < total || sum.phases < 2 {
        phase(policy, phase_len, &mut sum);
        policy = match policy {
            Overflow::DropOldest => Overflow::Reject,
            // `Reject`, and any policy a later chunkq adds (`Overflow` is
            // `#[non_exhaustive]`): back to the first.
            _ => Overflow::DropOldest,
        };
    }
    let v = VIOLATIONS.load(Ordering::SeqCst);
    println!(
        "summary: {} phases in {:.1?}: pushed {}, rejected {}, delivered {} (all groups), missed: expired {}, evicted {}; max accounted bytes {} / limit {}; payloads made {}, dropped {}; violations {v}",
        sum.phases,
        start.elapsed(),
        sum.pushed,
        sum.rejected,
        sum.delivered,
        sum.expired,
        sum.evicted,
        sum.max_used,
        LIMIT,
        MADE.load(Ordering::SeqCst),
        DROPPED.load(Ordering::SeqCst),
    );
    if v == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
