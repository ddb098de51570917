//! Issue 16: a CI-sized flood must keep the process's real memory near the
//! budget. Two producers flood `Vec<u8>` payloads of 1 KiB for about a
//! second into a 1 MiB `Overflow::DropOldest` queue, with one reader that
//! keeps up (batches of 64) and one that reads one item per millisecond; a
//! sampler thread reads the resident set size from `/proc/self/statm`
//! every 5 ms. The peak growth over a baseline taken once every thread is
//! started must stay within 5 MiB. Measured on 2 cores under a load
//! average of 7: 2.75-2.99 MiB (the peers stay near 1.5 MiB,
//! `examples/flood.rs`). Without the producers' pacing on chunks awaiting
//! their grace period (`Tether::pace`) it reads 7.8-12.5 MiB, and before
//! the drop at removal 50 MiB: either fails here.
//!
//! RSS is process-wide, so this binary holds this one test only.
#![cfg(target_os = "linux")]

use chunkq::{Overflow, Queue};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

const BUDGET: usize = 1 << 20;
const PAYLOAD: usize = 1024;
const BOUND: u64 = 5 << 20;
const FLOOD: Duration = Duration::from_secs(1);

/// Resident set size in bytes, from `/proc/self/statm` (kept open).
fn rss(statm: &std::fs::File) -> u64 {
    let mut buf = [0u8; 128];
    let n = statm
        .read_at(&mut buf, 0)
        .expect("reading /proc/self/statm");
    let pages: u64 = std::str::from_utf8(&buf[..n])
        .expect("statm is ASCII")
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("statm's second field: resident pages");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

#[test]
fn flood_keeps_rss_near_the_budget() {
    let statm = std::fs::File::open("/proc/self/statm").expect("/proc/self/statm");
    let q: Queue<Vec<u8>> = Queue::builder("flood")
        .memory_limit(BUDGET)
        .overflow(Overflow::DropOldest)
        .build()
        .unwrap();
    let (fast, slow) = (q.subscribe(), q.subscribe());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(6));
    let peak = Arc::new(AtomicU64::new(0));
    let pushed = Arc::new(AtomicU64::new(0));

    let mut workers = Vec::new();
    for p in 0..2u8 {
        let (q, stop, start, pushed) = (q.clone(), stop.clone(), start.clone(), pushed.clone());
        workers.push(thread::spawn(move || {
            start.wait();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                q.push(vec![p; PAYLOAD]).expect("DropOldest never refuses");
                n += 1;
            }
            pushed.fetch_add(n, Ordering::Relaxed);
        }));
    }
    {
        let (stop, start) = (stop.clone(), start.clone());
        workers.push(thread::spawn(move || {
            start.wait();
            let mut buf = Vec::with_capacity(64);
            while !stop.load(Ordering::Relaxed) {
                if fast.try_recv_many(&mut buf, 64).is_err() {
                    thread::yield_now();
                }
                buf.clear();
            }
        }));
    }
    {
        let (stop, start) = (stop.clone(), start.clone());
        workers.push(thread::spawn(move || {
            start.wait();
            while !stop.load(Ordering::Relaxed) {
                drop(slow.try_recv());
                thread::sleep(Duration::from_millis(1));
            }
        }));
    }
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, start, peak) = (done.clone(), start.clone(), peak.clone());
        let statm = statm.try_clone().expect("a second statm handle");
        thread::spawn(move || {
            start.wait();
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(&statm), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(5));
            }
            peak.fetch_max(rss(&statm), Ordering::Relaxed);
        })
    };

    // Every thread is started and waiting: the baseline.
    thread::sleep(Duration::from_millis(50));
    let base = rss(&statm);
    start.wait();
    thread::sleep(FLOOD);
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();

    let pushed = pushed.load(Ordering::SeqCst);
    assert!(pushed > 0, "the producers pushed nothing");
    assert!(
        q.memory_used() <= BUDGET,
        "the accounted bytes stay within the budget"
    );
    let growth = peak.load(Ordering::SeqCst).saturating_sub(base);
    eprintln!(
        "flood: peak RSS growth {:.2} MiB, {pushed} pushed",
        growth as f64 / f64::from(1 << 20)
    );
    assert!(
        growth <= BOUND,
        "peak RSS growth {:.2} MiB > {} MiB for a {} MiB budget ({pushed} pushed)",
        growth as f64 / f64::from(1 << 20),
        BOUND >> 20,
        BUDGET >> 20
    );
}
