//! The housekeeping thread: one per process for every queue with a
//! `sweep_interval`, each queue swept at its own interval; it starts with
//! the first such queue and exits with the last; dropping a queue never
//! waits for it; `sweep_interval(None)` starts nothing.
//!
//! The tests count the process's threads by name, so they take turns (one
//! lock), and this binary holds no other test.

mod common;

use chunkq::{Clock, Consumer, Queue};
use common::{DropLog, PATIENCE, Tracked, wait_for};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::Duration;

/// The thread's name as Linux keeps it (15 bytes). The prefix also matches
/// the per-queue sweeper threads of earlier versions ("chunkq-sweep-<queue>").
const PREFIX: &str = "chunkq-sweep";

/// Serializes the tests of this binary: each counts threads process-wide.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Threads of this process whose name starts with [`PREFIX`].
#[cfg(target_os = "linux")]
fn sweeper_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with(PREFIX))
        .count()
}

/// Elsewhere the thread count is not checked.
#[cfg(not(target_os = "linux"))]
fn sweeper_threads() -> usize {
    0
}

/// Waits until no housekeeping thread is left (an earlier test's queues are
/// all dropped, so the thread exits; the kernel may list it a moment longer).
fn no_thread_left() {
    if cfg!(target_os = "linux") {
        wait_for("no housekeeping thread is left", || sweeper_threads() == 0);
    }
}

/// A queue of `u64` on `clock`, TTL 1 s, swept every `every`.
fn swept(name: &str, clock: &Clock, every: Duration) -> (Queue<u64>, Consumer<u64>) {
    let q = Queue::builder(name)
        .clock(clock.clone())
        .ttl(Duration::from_secs(1))
        .sweep_interval(Some(every))
        .build()
        .unwrap();
    let c = q.subscribe();
    (q, c)
}

#[test]
fn fifty_queues_share_one_thread_that_sweeps_them_all_and_then_exits() {
    let _turn = one_at_a_time();
    no_thread_left();
    let clock = Clock::manual();
    let queues: Vec<_> = (0..50)
        .map(|i| {
            let (q, c) = swept(&format!("q{i}"), &clock, Duration::from_millis(1 + i % 7));
            q.push(i).unwrap();
            (q, c)
        })
        .collect();
    // 50 queues with background sweeps: one thread serves them all (not
    // one per queue).
    if cfg!(target_os = "linux") {
        wait_for("exactly one housekeeping thread", || sweeper_threads() == 1);
    }
    // Every queue is swept by it: each expires its item.
    clock.advance(Duration::from_secs(2));
    wait_for("every queue's item expires in the background", || {
        queues.iter().all(|(_, c)| c.missed().expired == 1)
    });
    if cfg!(target_os = "linux") {
        assert_eq!(sweeper_threads(), 1, "still one thread");
    }
    // No queue needs it any more: it exits.
    drop(queues);
    no_thread_left();
}

#[test]
fn each_queue_is_swept_at_its_own_interval() {
    let _turn = one_at_a_time();
    let clock = Clock::manual();
    let (often, often_c) = swept("often", &clock, Duration::from_millis(1));
    let (hourly, hourly_c) = swept("hourly", &clock, Duration::from_secs(3600));
    often.push(1).unwrap();
    hourly.push(2).unwrap();
    clock.advance(Duration::from_secs(2));
    wait_for("the often-swept queue expires its item", || {
        often_c.missed().expired == 1
    });
    // The other queue's first sweep is an hour away: its item, although
    // past its TTL, is still there (and expires on demand).
    assert_eq!(hourly_c.missed().expired, 0);
    assert_eq!(hourly.len(), 1);
    assert_eq!(hourly.expire_now(), 1);
    assert_eq!(hourly_c.missed().expired, 1);
}

#[test]
fn sweep_interval_none_starts_no_thread() {
    let _turn = one_at_a_time();
    no_thread_left();
    let clock = Clock::manual();
    let q: Queue<u64> = Queue::builder("manual")
        .clock(clock.clone())
        .ttl(Duration::from_secs(1))
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    q.push(1).unwrap();
    clock.advance(Duration::from_secs(2));
    // A thread, had one been started, is listed as soon as `build` returns.
    assert_eq!(sweeper_threads(), 0);
    // Nothing expires by itself; on demand it does.
    assert_eq!(c.missed().expired, 0);
    assert_eq!(q.expire_now(), 1);
    assert_eq!(c.missed().expired, 1);
}

#[test]
fn the_last_handle_releases_the_queue_the_thread_only_borrows_it() {
    let _turn = one_at_a_time();
    let log = DropLog::new(50);
    let q: Queue<Tracked> = Queue::builder("borrowed")
        .sweep_interval(Some(Duration::from_millis(1)))
        .build()
        .unwrap();
    for i in 0..50 {
        q.push(log.item(i)).unwrap();
    }
    let q2 = q.clone();
    drop(q);
    assert_eq!(log.dropped(), 0, "a handle is left: the queue lives");
    drop(q2);
    // Had the registry kept the queue's state, the items would stay inside
    // for ever. (A sweep in progress holds it until the sweep ends.)
    wait_for("the items are dropped with the queue", || {
        log.dropped() == 50
    });
    log.assert_all_dropped_once();
    no_thread_left();
}

/// Shared by the [`Gated`] payloads of one test.
struct Gate {
    /// Whether the next drop on the housekeeping thread blocks.
    armed: AtomicBool,
    /// Told when a drop blocks on the housekeeping thread.
    entered: Mutex<mpsc::Sender<()>>,
    /// What the blocked drop waits for.
    release: Mutex<mpsc::Receiver<()>>,
    /// Set if the blocked drop gave up waiting.
    gave_up: AtomicBool,
}

/// A payload whose first drop on the housekeeping thread blocks there until
/// the test releases it (or gives up after [`PATIENCE`]).
struct Gated(Arc<Gate>);

impl Drop for Gated {
    fn drop(&mut self) {
        let on_sweeper = thread::current()
            .name()
            .is_some_and(|n| n.starts_with(PREFIX));
        if on_sweeper && self.0.armed.swap(false, Ordering::SeqCst) {
            let _ = self.0.entered.lock().unwrap().send(());
            let released = self.0.release.lock().unwrap().recv_timeout(PATIENCE);
            if released.is_err() {
                self.0.gave_up.store(true, Ordering::SeqCst);
            }
        }
    }
}

impl chunkq::EstimateSize for Gated {}

#[test]
fn dropping_the_last_handle_never_waits_for_the_thread() {
    let _turn = one_at_a_time();
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let gate = Arc::new(Gate {
        armed: AtomicBool::new(true),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
        gave_up: AtomicBool::new(false),
    });
    let clock = Clock::manual();
    let q: Queue<Gated> = Queue::builder("gated")
        .clock(clock.clone())
        .ttl(Duration::from_secs(1))
        .sweep_interval(Some(Duration::from_millis(1)))
        .build()
        .unwrap();
    // Expired items are freed through the epoch collector, which the
    // housekeeping thread runs after each sweep: sooner or later one of the
    // payloads is dropped there, and blocks it.
    let start = std::time::Instant::now();
    loop {
        for _ in 0..64 {
            q.push(Gated(gate.clone())).unwrap();
        }
        clock.advance(Duration::from_secs(2));
        match entered.recv_timeout(Duration::from_millis(10)) {
            Ok(()) => break,
            Err(_) => assert!(
                start.elapsed() < PATIENCE,
                "no payload was dropped on the housekeeping thread"
            ),
        }
    }
    // The housekeeping thread is stuck in this queue's sweep. Dropping the
    // last handle must return anyway (a join would wait for the payload,
    // which waits for the drop).
    let (done_tx, done) = mpsc::channel();
    thread::spawn(move || {
        drop(q);
        let _ = done_tx.send(());
    });
    let returned = done.recv_timeout(PATIENCE / 2).is_ok();
    let _ = release.send(());
    assert!(
        returned,
        "dropping the queue waited for the housekeeping thread"
    );
    assert!(!gate.gave_up.load(Ordering::SeqCst));
    no_thread_left();
}
