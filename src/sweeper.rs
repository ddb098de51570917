//! The background sweeper: one thread per queue that, every
//! `sweep_interval`, releases what every consumer has read and expires what
//! outlived its TTL.
//!
//! It holds the queue's `Engine`, never a `Queue` handle, so it cannot
//! keep the queue open: when the last handle drops, `Sweeper::stop` wakes it
//! and joins it.

use crate::engine::Engine;
use crate::sync::Arc;
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The stop flag and the condvar the thread sleeps on between sweeps.
type StopFlag = std::sync::Arc<(Mutex<bool>, Condvar)>;

/// A running sweeper thread.
pub(crate) struct Sweeper {
    /// Set to stop the thread; it sleeps on the condvar between sweeps.
    stop: StopFlag,
    /// The thread, joined by `stop`.
    thread: Option<JoinHandle<()>>,
}

impl Sweeper {
    /// Starts a sweeper that sweeps `shared` every `every`.
    pub(crate) fn start<T: Send + Sync + 'static>(
        shared: Arc<Engine<T>>,
        every: Duration,
    ) -> std::io::Result<Self> {
        let stop: StopFlag = Default::default();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("chunkq-sweep-{}", shared.log.name))
            .spawn(move || {
                let (lock, cond) = &*flag;
                let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                // `None`: the interval reaches past what `Instant` can hold
                // (e.g. `Duration::MAX`): no sweep is ever due, the thread
                // only waits to be stopped.
                let due = || Instant::now().checked_add(every);
                let mut next = due();
                loop {
                    if *stopped {
                        return;
                    }
                    let now = Instant::now();
                    let Some(at) = next else {
                        stopped = cond.wait(stopped).unwrap_or_else(|e| e.into_inner());
                        continue;
                    };
                    if now >= at {
                        drop(stopped);
                        // The sweep contains payload panics itself
                        // (invariant 7); this catch is the last line that
                        // keeps background expiry alive whatever happens.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            shared.sweep();
                            // The `metrics` feature: a report per sweep.
                            #[cfg(feature = "metrics")]
                            crate::metrics::report(&crate::stats::snapshot(&shared));
                        }));
                        next = due();
                        stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                        continue;
                    }
                    stopped = cond
                        .wait_timeout(stopped, at - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(mut self) {
        let (lock, cond) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cond.notify_all();
        if let Some(t) = self.thread.take() {
            // A panic in the sweeper (a bug) must not turn into a second
            // panic in the drop of the last queue handle.
            let _ = t.join();
        }
    }
}
