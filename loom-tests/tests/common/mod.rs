//! Shared pieces of the loom models: a drop-counted payload, queue builders
//! and the end-of-model checks.
//!
//! Every model builds its queue with `.sweep_interval(None)` (no sweeper
//! thread under loom) and a manual clock, so the only threads are the ones
//! the model spawns.

#![allow(dead_code)] // each test binary uses a different subset

use chunkq::{Clock, Consumer, Delivery, EstimateSize, Overflow, Queue};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Live payload marker.
const ALIVE: u64 = 0xA11C_E0F0_A11C_E0F0;
/// Dropped payload marker.
const DEAD: u64 = 0xDEAD_DEAD_DEAD_DEAD;

/// Counts the payloads of one model run. Plain std atomics on purpose: they
/// are not scheduling points (they would only multiply loom's branches), and
/// the model reads them only after joining every thread.
#[derive(Debug, Default)]
pub struct Counter {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

impl Counter {
    /// A fresh counter.
    pub fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self::default())
    }

    /// A new payload with identity `id`.
    pub fn make(self: &std::sync::Arc<Self>, id: usize) -> Tracked {
        self.made.fetch_add(1, Ordering::Relaxed);
        Tracked {
            id,
            state: ALIVE,
            counter: self.clone(),
        }
    }

    /// Payloads made so far.
    pub fn made(&self) -> usize {
        self.made.load(Ordering::Relaxed)
    }

    /// Payloads dropped so far.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A payload that knows whether it is alive: dropping it twice, or reading
/// it after its drop (while its memory still holds the marker), panics.
#[derive(Debug)]
pub struct Tracked {
    id: usize,
    state: u64,
    counter: std::sync::Arc<Counter>,
}

impl Tracked {
    /// The payload's identity; panics if it was dropped already.
    pub fn id(&self) -> usize {
        assert_eq!(
            self.state, ALIVE,
            "read of a dropped payload (id {})",
            self.id
        );
        self.id
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        assert_eq!(self.state, ALIVE, "payload {} dropped twice", self.id);
        self.state = DEAD;
        self.counter.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

impl EstimateSize for Tracked {}

/// The queue's time to live in every model.
pub const TTL: Duration = Duration::from_secs(1);

/// A queue for a model: no sweeper thread, a manual clock, `limit` bytes.
pub fn queue(limit: usize, overflow: Overflow) -> (Queue<Tracked>, Clock) {
    let clock = Clock::manual();
    let q = Queue::builder("loom")
        .sweep_interval(None)
        .clock(clock.clone())
        .ttl(TTL)
        .memory_limit(limit)
        .overflow(overflow)
        .build()
        .expect("valid settings");
    (q, clock)
}

/// A queue with a budget no model reaches.
pub fn roomy() -> (Queue<Tracked>, Clock) {
    queue(1 << 20, Overflow::Reject)
}

/// The accounted bytes of one fresh item (measured, so the models do not
/// depend on the envelope's layout).
pub fn item_bytes(counter: &std::sync::Arc<Counter>) -> usize {
    let (q, _) = roomy();
    q.push(counter.make(usize::MAX)).expect("room");
    q.memory_used()
}

/// The payload ids of `deliveries`, checking each payload is alive.
pub fn ids(deliveries: &[Delivery<Tracked>]) -> Vec<usize> {
    deliveries.iter().map(|d| d.payload().id()).collect()
}

/// Reads until `Empty` or `Closed`.
pub fn drain(c: &Consumer<Tracked>) -> Vec<Delivery<Tracked>> {
    c.try_iter().collect()
}

/// The sequence numbers of `deliveries`.
pub fn seqs(deliveries: &[Delivery<Tracked>]) -> Vec<u64> {
    deliveries.iter().map(|d| d.seq()).collect()
}

/// Asserts that one consumer (group member) saw strictly increasing
/// sequence numbers (ARCHITECTURE.md invariant 1).
pub fn assert_in_order(deliveries: &[Delivery<Tracked>]) {
    let s = seqs(deliveries);
    assert!(
        s.windows(2).all(|w| w[0] < w[1]),
        "out of order or duplicated: {s:?}"
    );
}

/// Runs `f` as a loom model with a fresh [`Counter`] per execution, and
/// checks, once each execution has ended, that every payload it made was
/// dropped exactly once. The bound comes from the environment
/// (`LOOM_MAX_PREEMPTIONS`, `LOOM_MAX_BRANCHES`, ...). Prints the number of
/// executions explored.
///
/// Removed items are dropped through chunkq's reclamation stand-in, which
/// runs deferred functions at quiescent pins; at the end of each execution
/// (every model thread joined) the harness runs what is left
/// (`chunkq::__loom::quiesce`). Each execution's counter is checked at the
/// start of the next one, and the last one after the model; a double drop
/// panics at once in `Tracked::drop`.
pub fn model<F>(f: F)
where
    F: Fn(&std::sync::Arc<Counter>) + Send + Sync + 'static,
{
    model_capped(usize::MAX, f);
}

/// [`model`], with the preemption bound lowered to `max_preemptions` if the
/// environment asks for more (for models with three threads, whose
/// exploration grows much faster with the bound).
pub fn model_capped<F>(max_preemptions: usize, f: F)
where
    F: Fn(&std::sync::Arc<Counter>) + Send + Sync + 'static,
{
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none_or(|p| p > max_preemptions) {
        builder.preemption_bound = Some(max_preemptions);
    }
    let last: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<Counter>>>> =
        Default::default();
    let executions = std::sync::Arc::new(AtomicUsize::new(0));
    let (slot, runs) = (last.clone(), executions.clone());
    // As `loom::model` does: `LOOM_LOG=trace` traces the executions.
    let subscriber = tracing_subscriber::fmt::Subscriber::builder()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("LOOM_LOG"))
        .with_test_writer()
        .without_time()
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        builder.check(move || {
            runs.fetch_add(1, Ordering::Relaxed);
            let counter = Counter::new();
            if let Some(prev) = slot.lock().unwrap().replace(counter.clone()) {
                assert_balanced(&prev);
            }
            f(&counter);
            // Every model thread is joined and every handle dropped: run
            // what the reclamation stand-in still holds, in this execution.
            chunkq::__loom::quiesce();
        });
    });
    if let Some(prev) = last.lock().unwrap().take() {
        assert_balanced(&prev);
    }
    println!(
        "loom: {} executions explored (preemption bound {:?})",
        executions.load(Ordering::Relaxed),
        builder.preemption_bound
    );
}

/// Every payload made was dropped exactly once.
fn assert_balanced(counter: &Counter) {
    assert_eq!(
        counter.dropped(),
        counter.made(),
        "payloads leaked (made {}, dropped {})",
        counter.made(),
        counter.dropped()
    );
}
