//! Helpers shared by the integration tests: a payload that counts its drops,
//! an epoch flush, and a watchdog that turns a hang into a failure.
//!
//! Each test binary uses only some of them.
#![allow(dead_code)]

use chunkq::EstimateSize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// How long a test may wait for something that must happen (a wake-up, a
/// sweep, a thread to finish) before it fails. Generous: a loaded 2-core CI
/// machine is slow, and this is a hang detector, not a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Scales a test size down under Miri.
pub const fn size(n: usize) -> usize {
    if cfg!(miri) { n / 50 + 2 } else { n }
}

/// A drop counter per payload id.
pub struct DropLog {
    /// `counts[id]`: how many times payload `id` was dropped.
    counts: Vec<AtomicUsize>,
}

impl DropLog {
    /// Counters for payload ids `0..n`.
    pub fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            counts: (0..n).map(|_| AtomicUsize::new(0)).collect(),
        })
    }

    /// A payload with id `id`.
    pub fn item(self: &Arc<Self>, id: usize) -> Tracked {
        assert!(id < self.counts.len());
        Tracked {
            id,
            log: self.clone(),
        }
    }

    /// How many times payload `id` was dropped.
    pub fn count(&self, id: usize) -> usize {
        self.counts[id].load(Ordering::SeqCst)
    }

    /// How many payloads were dropped at least once.
    pub fn dropped(&self) -> usize {
        (0..self.counts.len())
            .filter(|&i| self.count(i) > 0)
            .count()
    }

    /// Panics if some payload was dropped more than once.
    pub fn assert_no_double_drop(&self) {
        for i in 0..self.counts.len() {
            assert!(
                self.count(i) <= 1,
                "payload {i} dropped {} times",
                self.count(i)
            );
        }
    }

    /// Panics unless every payload was dropped exactly once.
    pub fn assert_all_dropped_once(&self) {
        for i in 0..self.counts.len() {
            assert_eq!(
                self.count(i),
                1,
                "payload {i} dropped {} times",
                self.count(i)
            );
        }
    }

    /// Panics unless exactly the payloads in `ids` were dropped (once each)
    /// and no other.
    pub fn assert_dropped_exactly(&self, ids: impl Fn(usize) -> bool) {
        for i in 0..self.counts.len() {
            let want = usize::from(ids(i));
            assert_eq!(
                self.count(i),
                want,
                "payload {i}: dropped {} times, want {want}",
                self.count(i)
            );
        }
    }
}

/// A payload that records its drop in a [`DropLog`].
pub struct Tracked {
    /// The payload's id in its log.
    pub id: usize,
    /// Where the drop is recorded.
    log: Arc<DropLog>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log.counts[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tracked({})", self.id)
    }
}

impl EstimateSize for Tracked {}

/// Flushes this thread's crossbeam-epoch garbage and collects, until `done()`
/// holds or [`PATIENCE`] runs out. Returns `done()`.
///
/// Removed items are freed through the epoch collector, which may run a
/// little later than the removal; threads that deferred garbage must have
/// exited (their garbage goes to the global queue) or be this thread. The
/// collector cannot advance while some other thread of the process (another
/// test) is pinned, and that thread may be descheduled for a while on a
/// loaded machine: hence a wait bounded in time, not in rounds.
pub fn flush_until(mut done: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    let mut round = 0u64;
    while !done() {
        if start.elapsed() > PATIENCE {
            return false;
        }
        crossbeam_epoch::pin().flush();
        round += 1;
        if round % 64 == 0 {
            thread::yield_now();
        }
        if round % 4096 == 0 {
            thread::sleep(Duration::from_millis(1));
        }
    }
    if start.elapsed() > Duration::from_millis(100) {
        eprintln!("flush_until: the collector needed {:?}", start.elapsed());
    }
    true
}

/// Runs `f` on its own thread and returns its result, or fails the test if
/// it has not finished within [`PATIENCE`] (a lost wake-up or a livelock
/// would otherwise hang the test run forever).
pub fn within_patience<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: still not finished after {PATIENCE:?} (lost wake-up or livelock?)")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the worker thread panicked"),
    }
}

/// Polls `cond` until it holds, failing the test after [`PATIENCE`]. For
/// conditions that a background thread (the sweeper) makes true eventually.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < PATIENCE,
            "{what}: not reached after {PATIENCE:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// The accounted bytes of one item holding `payload` (measured in a probe
/// queue), so tests can size a budget in items.
pub fn item_bytes<T: EstimateSize + Send + Sync + 'static>(payload: T) -> usize {
    let probe: chunkq::Queue<T> = chunkq::Queue::builder("probe")
        .sweep_interval(None)
        .build()
        .unwrap();
    assert_eq!(probe.memory_used(), 0);
    probe.push(payload).unwrap();
    probe.memory_used()
}
