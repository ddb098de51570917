//! Background sweeps: one housekeeping thread per process serves every queue
//! built with a `sweep_interval`, each at its own interval, from a timer heap.
//!
//! - The thread starts with the first queue that needs it and exits when the
//!   last such queue is gone (a later queue starts a fresh one).
//! - The registry holds each queue's `Engine` only weakly: it never keeps a
//!   queue's state alive; a sweep holds the engine for its own duration.
//! - Dropping a queue ([`Sweeper`]'s drop) takes the registry lock for a
//!   map removal and returns: it never waits for a sweep in progress (not
//!   even its own queue's), so the last handle may be dropped inside an
//!   async task, or inside a payload's `Drop` running on the thread itself.
//! - Sweeps run without the lock held: a sweep runs user code (payload
//!   drops through the epoch collector), which may build or drop queues.
//! - Under `--cfg loom` there is no thread (loom cannot model a thread it
//!   did not spawn): a queue is swept only by `Queue::expire_now` and by
//!   the trims pushes and reads do themselves.
#![cfg_attr(loom, allow(dead_code))]

use crate::engine::Engine;
use crate::sync::Arc;
use std::time::Duration;

/// The name of the housekeeping thread (at most 15 bytes: Linux keeps that
/// many of a thread's name).
pub(crate) const THREAD_NAME: &str = "chunkq-sweeper";

/// What the housekeeping thread does for one queue every interval.
trait Job: Send + Sync {
    /// One sweep: release what every consumer read, expire what outlived
    /// the TTL (and, with the `metrics` feature, report).
    fn run(&self);
}

impl<T: Send + Sync + 'static> Job for Engine<T> {
    fn run(&self) {
        self.sweep();
        // The `metrics` feature: a report per sweep.
        #[cfg(feature = "metrics")]
        crate::metrics::report(&crate::stats::snapshot(self));
    }
}

/// A queue's registration with the housekeeping thread; dropping it
/// deregisters the queue without waiting for anything.
#[derive(Debug)]
pub(crate) struct Sweeper {
    /// The queue's key in the registry.
    #[cfg(not(loom))]
    id: u64,
}

impl Sweeper {
    /// Registers `shared` to be swept every `every`, starting the
    /// housekeeping thread if none runs. Fails only if the operating system
    /// refuses to start the thread.
    pub(crate) fn start<T: Send + Sync + 'static>(
        shared: &Arc<Engine<T>>,
        every: Duration,
    ) -> std::io::Result<Self> {
        #[cfg(not(loom))]
        {
            let weak: std::sync::Weak<Engine<T>> = Arc::downgrade(shared);
            let job: std::sync::Weak<dyn Job> = weak;
            registry::register(job, every).map(|id| Self { id })
        }
        #[cfg(loom)]
        {
            let _ = (shared, every);
            Ok(Self {})
        }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        registry::deregister(self.id);
    }
}

/// Whether the housekeeping thread currently serves at least one queue (for
/// the unit tests).
#[cfg(all(test, not(loom)))]
fn serving() -> bool {
    registry::serving()
}

#[cfg(not(loom))]
mod registry {
    //! The process-wide registry and the thread that serves it.

    use super::{Job, THREAD_NAME};
    use std::cmp::Reverse;
    use std::collections::{BTreeMap, BinaryHeap};
    use std::sync::{Condvar, Mutex, MutexGuard, Weak};
    use std::time::{Duration, Instant};

    /// A registered queue.
    struct Entry {
        /// Its engine, held weakly: the registry keeps no queue alive.
        job: Weak<dyn Job>,
        /// Its sweep interval.
        every: Duration,
    }

    /// The queues to sweep and when.
    struct Registry {
        /// Registered queues by key.
        entries: BTreeMap<u64, Entry>,
        /// When each queue is due next, earliest first. A key no longer in
        /// `entries` is stale and skipped when it comes up.
        due: BinaryHeap<Reverse<(Instant, u64)>>,
        /// The next key.
        next_id: u64,
        /// Whether a thread serves the registry. Cleared, under the lock,
        /// by the thread as it decides to exit.
        running: bool,
    }

    /// The registry and the condvar its thread sleeps on.
    static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
        entries: BTreeMap::new(),
        due: BinaryHeap::new(),
        next_id: 0,
        running: false,
    });
    static WAKE: Condvar = Condvar::new();

    /// Locks the registry. Nothing panics while it is held (no user code
    /// runs under it), but a poisoned lock is still usable: its state is
    /// consistent between any two statements that change it.
    fn lock() -> MutexGuard<'static, Registry> {
        REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `job`, first due `every` from now, and starts the thread if
    /// none serves the registry. Returns the job's key.
    pub(super) fn register(job: Weak<dyn Job>, every: Duration) -> std::io::Result<u64> {
        let mut reg = lock();
        let id = reg.next_id;
        reg.next_id += 1;
        reg.entries.insert(id, Entry { job, every });
        // `None`: the interval reaches past what `Instant` can hold (e.g.
        // `Duration::MAX`): never due, only registered.
        if let Some(at) = Instant::now().checked_add(every) {
            reg.due.push(Reverse((at, id)));
        }
        if reg.running {
            // The new job may be due before the one the thread sleeps for.
            WAKE.notify_all();
            return Ok(id);
        }
        match std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(serve)
        {
            Ok(_) => {
                reg.running = true;
                Ok(id)
            }
            Err(e) => {
                reg.entries.remove(&id);
                reg.due.retain(|&Reverse((_, k))| k != id);
                Err(e)
            }
        }
    }

    /// Removes job `id`. Never waits for a sweep in progress: the lock is
    /// held only for the removal (the thread never holds it while it
    /// sweeps).
    pub(super) fn deregister(id: u64) {
        let mut reg = lock();
        let gone = reg.entries.remove(&id);
        if reg.entries.is_empty() {
            // The thread exits at once instead of sleeping until a stale
            // due time.
            reg.due.clear();
            WAKE.notify_all();
        } else if reg.due.len() > 2 * reg.entries.len() + 64 {
            // Queues dropped before their first sweep leave stale keys;
            // keep the heap bounded by the live ones.
            let Registry { entries, due, .. } = &mut *reg;
            due.retain(|&Reverse((_, k))| entries.contains_key(&k));
        }
        drop(reg);
        drop(gone);
    }

    /// Whether some queue is registered.
    #[cfg(test)]
    pub(super) fn serving() -> bool {
        !lock().entries.is_empty()
    }

    /// The housekeeping thread: sweeps each job when it is due, sleeps
    /// until the earliest due time, exits when no job is left.
    fn serve() {
        let mut reg = lock();
        loop {
            if reg.entries.is_empty() {
                reg.running = false;
                return;
            }
            let now = Instant::now();
            let Some(&Reverse((at, id))) = reg.due.peek() else {
                // Only jobs that are never due: wait for a change.
                reg = WAKE.wait(reg).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            if at > now {
                reg = WAKE
                    .wait_timeout(reg, at - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            }
            reg.due.pop();
            let Some(job) = reg.entries.get(&id).map(|e| e.job.clone()) else {
                continue; // stale: the queue was dropped
            };
            drop(reg);
            if let Some(job) = job.upgrade() {
                // The sweep contains payload panics itself (invariant 7);
                // this catch is the last line that keeps background expiry
                // alive for every queue whatever happens.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run()));
                // Hand what this sweep deferred to the global collector
                // now: this thread lives on, and garbage left in its local
                // bag would wait for its next sweeps.
                let _ = std::panic::catch_unwind(|| crate::sync::epoch::pin().flush());
                // The last reference to the queue's state may be this one
                // (every handle dropped during the sweep): its drop runs
                // user code, so it happens here, without the lock.
                drop(job);
            }
            reg = lock();
            let next = reg
                .entries
                .get(&id)
                .and_then(|e| Instant::now().checked_add(e.every));
            if let Some(at) = next {
                reg.due.push(Reverse((at, id)));
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A job that signals when it runs and then blocks until released.
    struct Blocker {
        /// Told once the job runs.
        entered: std::sync::Mutex<Option<mpsc::Sender<()>>>,
        /// Waited on inside the job.
        release: std::sync::Mutex<mpsc::Receiver<()>>,
    }

    impl Job for Blocker {
        fn run(&self) {
            if let Some(tx) = self.entered.lock().unwrap().take() {
                let _ = tx.send(());
                // Released by the test, or by the deadline if deregistering
                // waited for us (then the test fails on its own deadline).
                let _ = self
                    .release
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(60));
            }
        }
    }

    #[test]
    fn deregistering_does_not_wait_for_a_running_sweep() {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let job: std::sync::Arc<dyn Job> = std::sync::Arc::new(Blocker {
            entered: std::sync::Mutex::new(Some(entered_tx)),
            release: std::sync::Mutex::new(release_rx),
        });
        let id =
            registry::register(std::sync::Arc::downgrade(&job), Duration::from_millis(1)).unwrap();
        entered
            .recv_timeout(Duration::from_secs(60))
            .expect("the housekeeping thread runs the job");
        assert!(serving());
        // The job is blocked inside its sweep: deregistering must return
        // anyway, on another thread, well before the job's own deadline.
        let (done_tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            registry::deregister(id);
            let _ = done_tx.send(());
        });
        let returned = done.recv_timeout(Duration::from_secs(30)).is_ok();
        let _ = release.send(());
        assert!(returned, "deregistering waited for the running sweep");
    }
}
