//! An eventcount: blocking waits that cost the notifier one load when nobody
//! waits.
//!
//! # Protocol
//! A waiter takes the lock, increments `waiters` (SeqCst), re-checks its
//! condition, and only then sleeps on the condvar (which releases the lock
//! atomically). A notifier first makes its change visible with a SeqCst
//! operation (the producer's `tail.fetch_add`, `close`'s `fetch_or`, a miss
//! counter's `fetch_add`), then loads `waiters` (SeqCst); only if it is
//! non-zero does it take the lock and notify.
//!
//! No lost wake-up: in the SeqCst total order either the waiter's re-check
//! comes after the notifier's change (it sees it and does not sleep), or the
//! waiter's increment comes before the notifier's load of `waiters` (the
//! notifier sees a waiter, and takes the lock, which it can only get once the
//! waiter is asleep on the condvar or has left, so the notification is not
//! missed).

use crate::sync::{AtomicUsize, Condvar, Mutex, Ordering};
use crossbeam_utils::CachePadded;
use std::time::Instant;

/// See the module docs.
pub(crate) struct Signal {
    /// Threads between their increment and their decrement in `wait_until`.
    /// On its own cache line: every push loads it.
    waiters: CachePadded<AtomicUsize>,
    /// Serialises sleepers with notifiers (see the protocol).
    lock: Mutex<()>,
    /// Where waiters sleep.
    cond: Condvar,
}

impl Signal {
    /// No waiters.
    pub(crate) fn new() -> Self {
        Self {
            waiters: CachePadded::new(AtomicUsize::new(0)),
            lock: Mutex::new(()),
            cond: Condvar::new(),
        }
    }

    /// Wakes every waiter, if there is one. The caller's change must already
    /// be visible through a SeqCst operation (see the protocol).
    #[inline]
    pub(crate) fn notify(&self) {
        crate::sync::seqcst_fence();
        // SeqCst: pairs with the SeqCst increment in `wait_until` (Dekker).
        if self.waiters.load(Ordering::SeqCst) != 0 {
            self.notify_slow();
        }
    }

    /// The part of `notify` that takes the lock.
    #[cold]
    fn notify_slow(&self) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.cond.notify_all();
    }

    /// Blocks until `ready()` holds or `deadline` passes. Returns whether
    /// `ready()` held. `ready` must read the state with SeqCst loads.
    pub(crate) fn wait_until(
        &self,
        mut ready: impl FnMut() -> bool,
        deadline: Option<Instant>,
    ) -> bool {
        loop {
            if ready() {
                return true;
            }
            let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            // SeqCst: pairs with the SeqCst load in `notify`.
            self.waiters.fetch_add(1, Ordering::SeqCst);
            crate::sync::seqcst_fence();
            if ready() {
                self.waiters.fetch_sub(1, Ordering::SeqCst);
                return true;
            }
            let timed_out = match deadline {
                None => {
                    drop(self.cond.wait(guard).unwrap_or_else(|e| e.into_inner()));
                    false
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        true
                    } else {
                        let (g, r) = self
                            .cond
                            .wait_timeout(guard, d - now)
                            .unwrap_or_else(|e| e.into_inner());
                        drop(g);
                        r.timed_out()
                    }
                }
            };
            self.waiters.fetch_sub(1, Ordering::SeqCst);
            if timed_out {
                return ready();
            }
        }
    }
}
