//! Flood benchmark (issue 16): the real memory a queue of a given nominal
//! capacity takes while two producers flood it, chunkq beside tokio
//! broadcast and crossbeam-channel at the same nominal capacity.
//!
//! ```text
//! cargo run --release --example flood -- [--secs 3] [--budget 1048576]
//!     [--payload 64,1024] [--runs 1] [--cases LIST] [--check BOUND_MIB]
//!     [--no-alloc-count] [--out benches/results/flood-latest.csv]
//! ```
//!
//! For each payload size, run and case, a fresh child process (this binary
//! re-executed with `--case NAME --payload N`, so the RSS figures of one
//! case do not mix with another's) builds the queue, starts two producers
//! that push `Vec<u8>` payloads of the given size (a fresh allocation per
//! push, as a user's program would) for `--secs`, one reader that keeps up
//! (reads in batches of 64, snoozes when empty) and one slow reader (one
//! item per millisecond). Cases:
//!
//! - `chunkq-drop-oldest`: `memory_limit(budget)`, `Overflow::DropOldest`,
//!   the other settings at their defaults; readers `try_recv_many(64)` and
//!   `try_recv`.
//! - `chunkq-reject-ttl`: `memory_limit(budget)`, `Overflow::Reject`, TTL
//!   50 ms, sweeper every 10 ms (expiry runs only in a sweep); a producer
//!   that gets `Full` counts a refusal, yields and retries the same payload.
//! - `tokio-broadcast`: `tokio::sync::broadcast` with capacity
//!   `budget / payload` (tokio rounds it up to a power of two); a full ring
//!   overwrites its oldest slot; readers `try_recv` (up to 64 per batch for
//!   the fast one), `Lagged(n)` counts `n` missed.
//! - `crossbeam-channel`: one `bounded(budget / payload)` channel per
//!   reader (the broadcast fan-out; the payload is cloned for the first
//!   channel), drop-oldest by hand: on `Full` the producer pops one from
//!   that channel (counted as missed by its reader) and retries; the fast
//!   reader drains up to 64 per batch with `try_iter`.
//!
//! The child takes a baseline RSS (`/proc/self/statm`) once every thread is
//! started and waiting, samples RSS every 5 ms from a sampler thread during
//! the flood, and reports the peak growth over the baseline; a counting
//! global allocator reports the peak live bytes of chunk-sized blocks
//! (>= 16 KiB) and of small blocks, over their live bytes at the baseline.
//! It also reports items pushed, pushes per second, refusals, items read by
//! each reader, items the slow reader missed, and (chunkq) the peak of
//! `memory_used()` seen by the sampler. The allocator's counters are shared
//! atomics that every allocation touches; `--no-alloc-count` turns them off
//! (the chunk/small columns read 0) for throughput figures without them.
//!
//! The parent prints a table with chunkq's figures over each peer's (RSS
//! growth and push throughput, per payload and run) and writes a CSV
//! (`--out`). `--check BOUND_MIB` exits 1 if any chunkq case's peak RSS
//! growth exceeds `BOUND_MIB`. A bad argument prints a one-line error and
//! exits 2; `--help` prints this usage and exits 0.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::os::unix::fs::FileExt;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: flood [--secs S] [--budget BYTES] [--payload LIST] [--runs N]
             [--cases LIST] [--check BOUND_MIB] [--no-alloc-count] [--out FILE]
  --secs S          seconds each case floods (default 3)
  --budget BYTES    nominal capacity in bytes; K/KiB/M/MiB suffixes allowed (default 1MiB)
  --payload LIST    payload sizes in bytes, comma-separated (default 64,1024)
  --runs N          rounds; each round runs every case once (default 1)
  --cases LIST      chunkq-drop-oldest,chunkq-reject-ttl,tokio-broadcast,crossbeam-channel (default all)
  --check BOUND_MIB exit 1 if a chunkq case's peak RSS growth exceeds BOUND_MIB
  --no-alloc-count  no counting allocator (chunk/small columns 0): throughput without its cost
  --out FILE        CSV output (default benches/results/flood-latest.csv)
  --help            print this and exit";

const CASES: [&str; 4] = [
    "chunkq-drop-oldest",
    "chunkq-reject-ttl",
    "tokio-broadcast",
    "crossbeam-channel",
];

/// Blocks at least this large count as chunk-sized.
const CHUNK_SIZED: usize = 16 << 10;
/// Fast reader's batch.
const BATCH: usize = 64;
/// RSS sampling period.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);
/// `chunkq-reject-ttl`: time to live and sweep period.
const REJECT_TTL: Duration = Duration::from_millis(50);
const REJECT_SWEEP: Duration = Duration::from_millis(10);

// ---------------------------------------------------------------------------
// Counting allocator: live and peak bytes, chunk-sized and small apart.

struct Counting;

static LIVE_BIG: AtomicIsize = AtomicIsize::new(0);
static PEAK_BIG: AtomicIsize = AtomicIsize::new(0);
static LIVE_SMALL: AtomicIsize = AtomicIsize::new(0);
static PEAK_SMALL: AtomicIsize = AtomicIsize::new(0);
/// Off with `--no-alloc-count` (throughput without the counters' cost).
static COUNT: AtomicBool = AtomicBool::new(true);

fn add(size: usize) {
    if !COUNT.load(Ordering::Relaxed) {
        return;
    }
    let (live, peak) = if size >= CHUNK_SIZED {
        (&LIVE_BIG, &PEAK_BIG)
    } else {
        (&LIVE_SMALL, &PEAK_SMALL)
    };
    let now = live.fetch_add(size as isize, Ordering::Relaxed) + size as isize;
    peak.fetch_max(now, Ordering::Relaxed);
}

fn sub(size: usize) {
    if !COUNT.load(Ordering::Relaxed) {
        return;
    }
    let live = if size >= CHUNK_SIZED {
        &LIVE_BIG
    } else {
        &LIVE_SMALL
    };
    live.fetch_sub(size as isize, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments and
// only adds bookkeeping on atomic counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator.
        unsafe { System.dealloc(ptr, layout) };
        sub(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            sub(layout.size());
            add(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Restarts both peaks from the current live bytes; returns (big, small).
fn reset_peaks() -> (isize, isize) {
    let big = LIVE_BIG.load(Ordering::SeqCst);
    let small = LIVE_SMALL.load(Ordering::SeqCst);
    PEAK_BIG.store(big, Ordering::SeqCst);
    PEAK_SMALL.store(small, Ordering::SeqCst);
    (big, small)
}

// ---------------------------------------------------------------------------
// RSS.

/// `/proc/self/statm`, kept open; read without allocating.
struct Statm {
    file: std::fs::File,
    page: u64,
}

impl Statm {
    fn open() -> std::io::Result<Self> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Ok(Self {
            file: std::fs::File::open("/proc/self/statm")?,
            page: if page > 0 { page as u64 } else { 4096 },
        })
    }

    /// Resident set size in bytes (0 if unreadable).
    fn rss(&self) -> u64 {
        let mut buf = [0u8; 128];
        let n = self.file.read_at(&mut buf, 0).unwrap_or(0);
        // Second field: resident pages.
        let pages = buf[..n]
            .split(|&b| b == b' ')
            .nth(1)
            .and_then(|f| std::str::from_utf8(f).ok())
            .and_then(|f| f.trim().parse::<u64>().ok())
            .unwrap_or(0);
        pages * self.page
    }
}

// ---------------------------------------------------------------------------
// The cases: producers and readers as closures.

/// A producer's push: `Ok(())`, or the payload back when refused.
type PushFn = Box<dyn FnMut(Vec<u8>) -> Result<(), Vec<u8>> + Send>;
/// A reader's read: items read by this call (0 when none was available).
type ReadFn = Box<dyn FnMut() -> usize + Send>;

struct Parts {
    producers: Vec<PushFn>,
    fast: ReadFn,
    slow: ReadFn,
    /// Items the slow reader missed (evicted, expired, overwritten) so far.
    slow_missed: Arc<AtomicU64>,
    /// Accounted bytes (chunkq's `memory_used`), 0 for the peers.
    accounted: Box<dyn Fn() -> usize + Send>,
}

fn chunkq_parts(budget: usize, reject: bool) -> Parts {
    let b = chunkq::Queue::<Vec<u8>>::builder("flood").memory_limit(budget);
    let q = if reject {
        b.overflow(chunkq::Overflow::Reject)
            .ttl(REJECT_TTL)
            .sweep_interval(Some(REJECT_SWEEP))
    } else {
        b.overflow(chunkq::Overflow::DropOldest)
    }
    .build()
    .expect("a valid configuration");
    let (fast_c, slow_c) = (q.subscribe(), q.subscribe());
    let producers = (0..2)
        .map(|_| {
            let q = q.clone();
            Box::new(move |v: Vec<u8>| q.push(v).map(drop).map_err(|e| e.into_inner())) as PushFn
        })
        .collect();
    let mut buf = Vec::with_capacity(BATCH);
    let fast = Box::new(move || {
        let n = fast_c.try_recv_many(&mut buf, BATCH).unwrap_or(0);
        buf.clear();
        n
    });
    let slow_missed = Arc::new(AtomicU64::new(0));
    let missed = slow_missed.clone();
    let slow = Box::new(move || {
        let n = usize::from(slow_c.try_recv().is_ok());
        missed.store(slow_c.missed().total(), Ordering::Relaxed);
        n
    });
    Parts {
        producers,
        fast,
        slow,
        slow_missed,
        accounted: Box::new(move || q.memory_used()),
    }
}

fn tokio_parts(slots: usize) -> Parts {
    use tokio::sync::broadcast::error::TryRecvError;
    let (tx, mut fast_rx) = tokio::sync::broadcast::channel::<Vec<u8>>(slots);
    let mut slow_rx = tx.subscribe();
    let producers = (0..2)
        .map(|_| {
            let tx = tx.clone();
            // With two receivers alive a send never fails; a full ring
            // overwrites its oldest slot.
            Box::new(move |v: Vec<u8>| tx.send(v).map(drop).map_err(|e| e.0)) as PushFn
        })
        .collect();
    drop(tx);
    let fast = Box::new(move || {
        let mut n = 0;
        while n < BATCH {
            match fast_rx.try_recv() {
                Ok(v) => {
                    drop(v);
                    n += 1;
                }
                Err(TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        n
    });
    let slow_missed = Arc::new(AtomicU64::new(0));
    let missed = slow_missed.clone();
    let slow = Box::new(move || {
        loop {
            match slow_rx.try_recv() {
                Ok(_) => return 1,
                Err(TryRecvError::Lagged(k)) => {
                    missed.fetch_add(k, Ordering::Relaxed);
                }
                Err(_) => return 0,
            }
        }
    });
    Parts {
        producers,
        fast,
        slow,
        slow_missed,
        accounted: Box::new(|| 0),
    }
}

fn crossbeam_parts(slots: usize) -> Parts {
    use crossbeam_channel::TrySendError;
    let chans: Vec<_> = (0..2)
        .map(|_| crossbeam_channel::bounded::<Vec<u8>>(slots))
        .collect();
    let slow_missed = Arc::new(AtomicU64::new(0));
    let producers = (0..2)
        .map(|_| {
            let chans = chans.clone();
            let missed = slow_missed.clone();
            Box::new(move |v: Vec<u8>| {
                let last = chans.len() - 1;
                let mut v = Some(v);
                for (i, (tx, rx)) in chans.iter().enumerate() {
                    let mut item = if i == last {
                        v.take().expect("moved only into the last channel")
                    } else {
                        v.as_ref().expect("still here").clone()
                    };
                    loop {
                        match tx.try_send(item) {
                            Ok(()) => break,
                            Err(TrySendError::Full(back)) => {
                                // Drop-oldest by hand: pop one, retry.
                                if rx.try_recv().is_ok() && i == 1 {
                                    missed.fetch_add(1, Ordering::Relaxed);
                                }
                                item = back;
                            }
                            Err(TrySendError::Disconnected(back)) => return Err(back),
                        }
                    }
                }
                Ok(())
            }) as PushFn
        })
        .collect();
    let fast_rx = chans[0].1.clone();
    let slow_rx = chans[1].1.clone();
    drop(chans);
    let fast = Box::new(move || fast_rx.try_iter().take(BATCH).count());
    let slow = Box::new(move || usize::from(slow_rx.try_recv().is_ok()));
    Parts {
        producers,
        fast,
        slow,
        slow_missed,
        accounted: Box::new(|| 0),
    }
}

// ---------------------------------------------------------------------------
// Child: one case, one payload size.

#[derive(Clone, Debug, Default)]
struct Outcome {
    case: String,
    payload: usize,
    run: usize,
    secs: f64,
    rss_base_mib: f64,
    rss_growth_mib: f64,
    pushed: u64,
    pushes_per_s: f64,
    refused: u64,
    fast_read: u64,
    slow_read: u64,
    slow_missed: u64,
    chunk_peak_mib: f64,
    small_peak_mib: f64,
    accounted_peak: u64,
}

const MIB: f64 = (1u64 << 20) as f64;

fn child(case: &str, payload: usize, secs: f64, budget: usize) -> Outcome {
    let slots = (budget / payload).max(1);
    let parts = match case {
        "chunkq-drop-oldest" => chunkq_parts(budget, false),
        "chunkq-reject-ttl" => chunkq_parts(budget, true),
        "tokio-broadcast" => tokio_parts(slots),
        "crossbeam-channel" => crossbeam_parts(slots),
        _ => unreachable!("checked by the parent"),
    };
    let Parts {
        producers,
        mut fast,
        mut slow,
        slow_missed,
        accounted,
    } = parts;
    let statm = Statm::open().expect("/proc/self/statm");
    let stop = Arc::new(AtomicBool::new(false));
    let done_sampling = Arc::new(AtomicBool::new(false));
    // Producers, readers, the sampler and this thread.
    let start = Arc::new(Barrier::new(producers.len() + 4));
    let pushed = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let peak_accounted = Arc::new(AtomicUsize::new(0));

    let mut threads = Vec::new();
    for (p, mut push) in producers.into_iter().enumerate() {
        let (stop, start, pushed, refused) =
            (stop.clone(), start.clone(), pushed.clone(), refused.clone());
        threads.push(thread::spawn(move || {
            start.wait();
            let (mut ok, mut no) = (0u64, 0u64);
            'run: while !stop.load(Ordering::Relaxed) {
                let mut v = vec![p as u8; payload];
                loop {
                    match push(v) {
                        Ok(()) => {
                            ok += 1;
                            break;
                        }
                        Err(back) => {
                            no += 1;
                            if stop.load(Ordering::Relaxed) {
                                break 'run;
                            }
                            thread::yield_now();
                            v = back;
                        }
                    }
                }
            }
            pushed.fetch_add(ok, Ordering::Relaxed);
            refused.fetch_add(no, Ordering::Relaxed);
            0u64
        }));
    }
    {
        let (stop, start) = (stop.clone(), start.clone());
        threads.push(thread::spawn(move || {
            start.wait();
            let backoff = crossbeam_utils::Backoff::new();
            let mut read = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match fast() {
                    0 => backoff.snooze(),
                    n => {
                        read += n as u64;
                        backoff.reset();
                    }
                }
            }
            read
        }));
    }
    {
        let (stop, start) = (stop.clone(), start.clone());
        threads.push(thread::spawn(move || {
            start.wait();
            let mut read = 0u64;
            while !stop.load(Ordering::Relaxed) {
                read += slow() as u64;
                thread::sleep(Duration::from_millis(1));
            }
            read
        }));
    }
    let sampler = {
        let (done, start, peak_rss, peak_accounted) = (
            done_sampling.clone(),
            start.clone(),
            peak_rss.clone(),
            peak_accounted.clone(),
        );
        thread::spawn(move || {
            start.wait();
            while !done.load(Ordering::Relaxed) {
                peak_rss.fetch_max(statm.rss(), Ordering::Relaxed);
                peak_accounted.fetch_max(accounted(), Ordering::Relaxed);
                thread::sleep(SAMPLE_EVERY);
            }
            peak_rss.fetch_max(statm.rss(), Ordering::Relaxed);
        })
    };

    // Every thread is started (stacks mapped) and waiting: the baseline.
    thread::sleep(Duration::from_millis(50));
    let base_rss = Statm::open().expect("/proc/self/statm").rss();
    peak_rss.store(base_rss, Ordering::SeqCst);
    let (base_big, base_small) = reset_peaks();
    start.wait();
    let t0 = Instant::now();
    thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::SeqCst);
    let results: Vec<u64> = threads
        .into_iter()
        .map(|t| t.join().expect("a flood thread panicked"))
        .collect();
    let elapsed = t0.elapsed().as_secs_f64();
    done_sampling.store(true, Ordering::SeqCst);
    sampler.join().expect("the sampler panicked");
    let n = results.len();
    let pushed = pushed.load(Ordering::SeqCst);
    Outcome {
        case: case.to_string(),
        payload,
        run: 0,
        secs: elapsed,
        rss_base_mib: base_rss as f64 / MIB,
        rss_growth_mib: peak_rss.load(Ordering::SeqCst).saturating_sub(base_rss) as f64 / MIB,
        pushed,
        pushes_per_s: pushed as f64 / elapsed,
        refused: refused.load(Ordering::SeqCst),
        fast_read: results[n - 2],
        slow_read: results[n - 1],
        slow_missed: slow_missed.load(Ordering::SeqCst),
        chunk_peak_mib: (PEAK_BIG.load(Ordering::SeqCst) - base_big).max(0) as f64 / MIB,
        small_peak_mib: (PEAK_SMALL.load(Ordering::SeqCst) - base_small).max(0) as f64 / MIB,
        accounted_peak: peak_accounted.load(Ordering::SeqCst) as u64,
    }
}

// The child's report: one line of `key=value` pairs.

const FIELDS: &str = "case,payload,run,secs,rss_base_mib,rss_growth_mib,pushed,pushes_per_s,\
refused,fast_read,slow_read,slow_missed,chunk_peak_mib,small_peak_mib,accounted_peak";

impl Outcome {
    fn values(&self) -> String {
        format!(
            "{},{},{},{:.3},{:.2},{:.2},{},{:.0},{},{},{},{},{:.2},{:.2},{}",
            self.case,
            self.payload,
            self.run,
            self.secs,
            self.rss_base_mib,
            self.rss_growth_mib,
            self.pushed,
            self.pushes_per_s,
            self.refused,
            self.fast_read,
            self.slow_read,
            self.slow_missed,
            self.chunk_peak_mib,
            self.small_peak_mib,
            self.accounted_peak
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let v: Vec<&str> = line.strip_prefix("FLOOD ")?.split(',').collect();
        if v.len() != FIELDS.split(',').count() {
            return None;
        }
        Some(Self {
            case: v[0].to_string(),
            payload: v[1].parse().ok()?,
            run: v[2].parse().ok()?,
            secs: v[3].parse().ok()?,
            rss_base_mib: v[4].parse().ok()?,
            rss_growth_mib: v[5].parse().ok()?,
            pushed: v[6].parse().ok()?,
            pushes_per_s: v[7].parse().ok()?,
            refused: v[8].parse().ok()?,
            fast_read: v[9].parse().ok()?,
            slow_read: v[10].parse().ok()?,
            slow_missed: v[11].parse().ok()?,
            chunk_peak_mib: v[12].parse().ok()?,
            small_peak_mib: v[13].parse().ok()?,
            accounted_peak: v[14].parse().ok()?,
        })
    }
}

// ---------------------------------------------------------------------------
// Arguments.

struct Args {
    secs: f64,
    budget: usize,
    payloads: Vec<usize>,
    runs: usize,
    cases: Vec<String>,
    check: Option<f64>,
    out: String,
    /// Count allocations in the children.
    count_allocs: bool,
    /// Set in a child: the one case to run.
    case: Option<String>,
}

fn parse_budget(s: &str) -> Option<usize> {
    let t = s.trim();
    let (num, mul) = [
        ("KiB", 1usize << 10),
        ("MiB", 1 << 20),
        ("K", 1 << 10),
        ("M", 1 << 20),
        ("k", 1 << 10),
        ("m", 1 << 20),
    ]
    .iter()
    .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n, *m)))
    .unwrap_or((t, 1));
    num.trim()
        .parse::<usize>()
        .ok()?
        .checked_mul(mul)
        .filter(|&b| b > 0)
}

fn parse_args(argv: &[String]) -> Result<Option<Args>, String> {
    let mut a = Args {
        secs: 3.0,
        budget: 1 << 20,
        payloads: vec![64, 1024],
        runs: 1,
        cases: CASES.iter().map(|c| c.to_string()).collect(),
        check: None,
        out: "benches/results/flood-latest.csv".into(),
        count_allocs: true,
        case: None,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--secs" => {
                let v = value()?;
                a.secs = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
                    .ok_or_else(|| format!("--secs: bad value {v:?}"))?;
            }
            "--budget" => {
                let v = value()?;
                a.budget = parse_budget(&v).ok_or_else(|| format!("--budget: bad value {v:?}"))?;
            }
            "--payload" => {
                let v = value()?;
                a.payloads = v
                    .split(',')
                    .map(|p| p.trim().parse::<usize>().ok().filter(|&n| n > 0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| format!("--payload: bad list {v:?}"))?;
            }
            "--runs" => {
                let v = value()?;
                a.runs = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--runs: bad value {v:?}"))?;
            }
            "--cases" => {
                let v = value()?;
                let cs: Vec<String> = v.split(',').map(|c| c.trim().to_string()).collect();
                if let Some(bad) = cs.iter().find(|c| !CASES.contains(&c.as_str())) {
                    return Err(format!("--cases: unknown case {bad:?}"));
                }
                a.cases = cs;
            }
            "--case" => {
                let v = value()?;
                if !CASES.contains(&v.as_str()) {
                    return Err(format!("--case: unknown case {v:?}"));
                }
                a.case = Some(v);
            }
            "--check" => {
                let v = value()?;
                a.check = Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|b| b.is_finite() && *b >= 0.0)
                        .ok_or_else(|| format!("--check: bad value {v:?}"))?,
                );
            }
            "--out" => a.out = value()?,
            "--no-alloc-count" => a.count_allocs = false,
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if a.case.is_some() && a.payloads.len() != 1 {
        return Err("--case needs exactly one --payload".into());
    }
    if let Some(&p) = a.payloads.iter().find(|&&p| p > a.budget) {
        return Err(format!(
            "--payload {p} is larger than --budget {}",
            a.budget
        ));
    }
    Ok(Some(a))
}

// ---------------------------------------------------------------------------
// Parent.

fn run_child(a: &Args, case: &str, payload: usize) -> Result<Outcome, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    if !a.count_allocs {
        cmd.arg("--no-alloc-count");
    }
    let out = cmd
        .args([
            "--case",
            case,
            "--payload",
            &payload.to_string(),
            "--secs",
            &a.secs.to_string(),
            "--budget",
            &a.budget.to_string(),
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("starting the {case} child: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "the {case} child (payload {payload}) failed: {}",
            out.status
        ));
    }
    stdout
        .lines()
        .find_map(Outcome::parse)
        .ok_or_else(|| format!("the {case} child (payload {payload}) reported nothing"))
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        String::new()
    }
}

fn parent(a: &Args) -> Result<bool, String> {
    println!(
        "flood: {} s per case, budget {} B, payloads {:?}, {} run(s), 2 producers, a fast (batch {BATCH}) and a slow (1/ms) reader",
        a.secs, a.budget, a.payloads, a.runs
    );
    let mut rows: Vec<Outcome> = Vec::new();
    for run in 0..a.runs {
        for &payload in &a.payloads {
            for case in &a.cases {
                let mut o = run_child(a, case, payload)?;
                o.run = run;
                eprintln!(
                    "  run {run} {case:<20} {payload:>5} B: RSS +{:.2} MiB, {:.2} M pushes/s",
                    o.rss_growth_mib,
                    o.pushes_per_s / 1e6
                );
                rows.push(o);
            }
        }
    }

    let find = |run: usize, payload: usize, case: &str| {
        rows.iter()
            .find(|r| r.run == run && r.payload == payload && r.case == case)
    };
    let mut csv = format!(
        "{FIELDS},budget,rss_ratio_tokio,rss_ratio_crossbeam,tput_ratio_tokio,tput_ratio_crossbeam\n"
    );
    let mut table = String::new();
    let _ = writeln!(
        table,
        "\n{:<4} {:>7} {:<20} {:>9} {:>11} {:>9} {:>10} {:>9} {:>9} {:>10} | {:>9} {:>9} {:>9} {:>9}",
        "run",
        "payload",
        "case",
        "RSS+ MiB",
        "Mpushes/s",
        "chunk MiB",
        "small MiB",
        "acct KiB",
        "refused",
        "slow miss",
        "RSS/tok",
        "RSS/cb",
        "tput/tok",
        "tput/cb"
    );
    for r in &rows {
        let (mut rt, mut rc, mut tt, mut tc) = Default::default();
        if r.case.starts_with("chunkq") {
            if let Some(t) = find(r.run, r.payload, "tokio-broadcast") {
                rt = ratio(r.rss_growth_mib, t.rss_growth_mib);
                tt = ratio(r.pushes_per_s, t.pushes_per_s);
            }
            if let Some(c) = find(r.run, r.payload, "crossbeam-channel") {
                rc = ratio(r.rss_growth_mib, c.rss_growth_mib);
                tc = ratio(r.pushes_per_s, c.pushes_per_s);
            }
        }
        let _ = writeln!(csv, "{},{},{rt},{rc},{tt},{tc}", r.values(), a.budget);
        let _ = writeln!(
            table,
            "{:<4} {:>7} {:<20} {:>9.2} {:>11.3} {:>9.2} {:>10.2} {:>9.0} {:>9} {:>10} | {:>9} {:>9} {:>9} {:>9}",
            r.run,
            r.payload,
            r.case,
            r.rss_growth_mib,
            r.pushes_per_s / 1e6,
            r.chunk_peak_mib,
            r.small_peak_mib,
            r.accounted_peak as f64 / 1024.0,
            r.refused,
            r.slow_missed,
            rt,
            rc,
            tt,
            tc
        );
    }
    println!("{table}");
    if let Some(dir) = std::path::Path::new(&a.out).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
    }
    std::fs::write(&a.out, csv).map_err(|e| format!("writing {}: {e}", a.out))?;
    println!("wrote {}", a.out);

    let mut ok = true;
    if let Some(bound) = a.check {
        for r in rows.iter().filter(|r| r.case.starts_with("chunkq")) {
            if r.rss_growth_mib > bound {
                ok = false;
                println!(
                    "check FAILED: {} payload {} run {}: peak RSS growth {:.2} MiB > {bound} MiB",
                    r.case, r.payload, r.run, r.rss_growth_mib
                );
            }
        }
        if ok {
            println!("check passed: every chunkq case's peak RSS growth <= {bound} MiB");
        }
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("flood: {e}");
            return ExitCode::from(2);
        }
    };
    COUNT.store(args.count_allocs, Ordering::SeqCst);
    if let Some(case) = &args.case {
        let o = child(case, args.payloads[0], args.secs, args.budget);
        println!("FLOOD {}", o.values());
        return ExitCode::SUCCESS;
    }
    match parent(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("flood: {e}");
            ExitCode::from(1)
        }
    }
}
