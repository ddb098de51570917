//! An eventcount: blocking (and, with the `async` feature, async) waits that
//! cost the notifier one load when nobody waits.
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
//!
//! Both sides put a SeqCst fence between their two accesses (the notifier
//! in `notify`, the waiter after its increment), so the argument also holds
//! for a change made with a weaker ordering: by the fence rule, if the
//! notifier's fence comes first in the total order, the waiter's re-check
//! (after its own fence) sees the change; otherwise the notifier's load
//! (after its fence) sees the increment. The `room` signal relies on this:
//! the bytes a removal gives back are a `Relaxed` `fetch_sub`.
//!
//! # Waiting with side effects: `wait_for`
//! [`Signal::wait_until`] re-checks under the lock, so its condition must be
//! a pure read. A producer that waits for room (`Queue::push_timeout`) must
//! re-check by *trying to push*, which may trim and pins the epoch (and may
//! so run payload drops: user code, which must never run where others wait,
//! invariant 7, and notifiers wait for this lock). [`Signal::wait_for`]
//! re-checks outside the lock instead, with a generation counter kept under
//! the lock: the waiter, under the lock, reads the generation and increments
//! `waiters`; then it fences, tries without the lock, and sleeps only while
//! the generation still holds what it read. `notify_slow` bumps the
//! generation under the lock.
//!
//! No lost wake-up: take a notifier whose change the waiter's try missed.
//! By the fence rule (above) the notifier's load of `waiters` saw the
//! increment, so it takes the lock and bumps the generation. Had it taken
//! the lock before the waiter's registration, its change (made before its
//! unlock) would be visible to the try (made after the waiter's lock): so it
//! takes the lock after the waiter read the generation, and the waiter
//! either sees the bump before it sleeps, or is asleep on the condvar
//! (which releases the lock atomically) when `notify_all` comes.
//!
//! # Async waiters (the `async` feature)
//! Beside the condvar sits an `event_listener::Event`; futures wait on its
//! listeners. An async waiter counts itself in the same `waiters` counter,
//! so the notifier's fast path is unchanged: the same fence, load and
//! branch, with no extra instruction when nobody waits, blocking or async,
//! and the push path is unchanged with or without the feature (measured
//! with `benches/icount.sh`). The slow path bumps the generation and
//! notifies the condvar under the lock, releases it, then notifies every
//! listener of the `Event` (never under the lock: a listener's waker is the
//! executor's code). The blocking eventcount is kept rather than replaced
//! by event-listener's own blocking waits: those would cost a push no less,
//! and the condvar handshake is the one the loom models check.
//!
//! An async wait ([`AsyncWait::poll`]) is event-listener's listen-then-check
//! pattern with the eventcount's increment folded in: try; if that fails,
//! `listen()` (insert a listener into the `Event`'s list), increment
//! `waiters` (once per wait: the count is kept across re-registrations and
//! given back when the wait ends or its future is dropped), fence, try
//! again, and only then await the listener. Every try runs inside a `poll`,
//! outside any lock, so it may be the real operation (`try_recv`, a push
//! attempt), and a future dropped between two polls has taken nothing: an
//! item is claimed only in the poll that returns it (cancel safety).
//!
//! No lost wake-up: take a notifier whose change the try after the last
//! `listen()` missed. (a) The notifier calls `Event::notify`: the wait's
//! count was in place before the waiter's fence (incremented in this poll
//! or an earlier one, given back only when the wait ends), so by the fence
//! rule the notifier's load of `waiters` sees it, or else the try would have
//! seen the change. (b) `Event::notify` wakes that listener: event-listener
//! inserts and notifies under the `Event`'s own mutex; had the notify taken
//! it first, the notifier's change (made before it) would be visible to the
//! try (made after the insertion), so the insertion came first and the
//! notify finds the listener. This is the blocking argument with the condvar
//! replaced by event-listener's list (whose listen-then-check guarantee is
//! its documented contract): the counter and fence handshake is the one loom
//! g checks, so no new loom model is needed.

use crate::sync::{AtomicUsize, Condvar, Mutex, Ordering, Spin};
use crossbeam_utils::CachePadded;
use std::time::Instant;

/// What a try of a waiting operation that did not succeed asks for (see
/// [`Signal::wait_for`] and [`AsyncWait::poll`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Wait for a notification.
    Wait,
    /// Try again soon, without sleeping: another thread is a few
    /// instructions from progress that no notification will announce (a
    /// push in flight that holds up a trim), or room appeared meanwhile.
    Again,
}

/// See the module docs.
pub(crate) struct Signal {
    /// Threads (and futures) between their increment and their decrement in
    /// `wait_until`, `wait_for` or an [`AsyncWait`]. On its own cache line:
    /// every push loads it.
    waiters: CachePadded<AtomicUsize>,
    /// Serialises sleepers with notifiers (see the protocol); holds the
    /// generation, bumped by every notification that takes the lock.
    lock: Mutex<u64>,
    /// Where waiters sleep.
    cond: Condvar,
    /// Where async waiters listen (see "Async waiters").
    #[cfg(feature = "async")]
    event: event_listener::Event,
}

impl Signal {
    /// No waiters.
    pub(crate) fn new() -> Self {
        Self {
            waiters: CachePadded::new(AtomicUsize::new(0)),
            lock: Mutex::new(0),
            cond: Condvar::new(),
            #[cfg(feature = "async")]
            event: event_listener::Event::new(),
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
        {
            let mut generation = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            *generation = generation.wrapping_add(1);
            self.cond.notify_all();
        }
        // Outside the lock: wakers are the executor's code.
        #[cfg(feature = "async")]
        self.event.notify(usize::MAX);
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
            crate::sync::count!(Park);
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

    /// Blocks until `attempt` succeeds or `deadline` passes; then gives the
    /// state back (after one last attempt). `attempt` takes the state (a
    /// payload) and returns it with what to do when it fails. It runs
    /// outside the lock, so it may change state and run user code (see
    /// "Waiting with side effects" in the module docs).
    pub(crate) fn wait_for<S, R>(
        &self,
        mut state: S,
        mut attempt: impl FnMut(S) -> Result<R, (S, Next)>,
        deadline: Option<Instant>,
    ) -> Result<R, S> {
        let mut spin = Spin::new();
        let past = |d: Option<Instant>| d.is_some_and(|d| Instant::now() >= d);
        loop {
            match attempt(state) {
                Ok(r) => return Ok(r),
                Err((s, _)) if past(deadline) => return Err(s),
                Err((s, Next::Again)) => {
                    state = s;
                    spin.wait();
                    continue;
                }
                Err((s, Next::Wait)) => state = s,
            }
            let seen = {
                let generation = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                // SeqCst: pairs with the SeqCst load in `notify`.
                self.waiters.fetch_add(1, Ordering::SeqCst);
                *generation
            };
            crate::sync::seqcst_fence();
            match attempt(state) {
                Ok(r) => {
                    self.waiters.fetch_sub(1, Ordering::SeqCst);
                    return Ok(r);
                }
                Err((s, Next::Again)) => {
                    self.waiters.fetch_sub(1, Ordering::SeqCst);
                    state = s;
                    spin.wait();
                    continue;
                }
                Err((s, Next::Wait)) => state = s,
            }
            let timed_out = {
                let mut generation = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if *generation != seen {
                        break false;
                    }
                    match deadline {
                        None => {
                            generation = self
                                .cond
                                .wait(generation)
                                .unwrap_or_else(|e| e.into_inner());
                        }
                        Some(d) => {
                            let now = Instant::now();
                            if now >= d {
                                break true;
                            }
                            generation = self
                                .cond
                                .wait_timeout(generation, d - now)
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                        }
                    }
                }
            };
            self.waiters.fetch_sub(1, Ordering::SeqCst);
            if timed_out {
                return attempt(state).map_err(|(s, _)| s);
            }
            spin = Spin::new();
        }
    }
}

/// The state of one async wait on a [`Signal`] (see "Async waiters" in the
/// module docs). Holds no reference to the signal, so that an owning
/// stream can hold both; its owner must call [`AsyncWait::finish`] with
/// the same signal when it is dropped, or the count stays raised (which
/// costs every later notifier the slow path, never a lost wake-up).
#[cfg(feature = "async")]
#[derive(Debug, Default)]
pub(crate) struct AsyncWait {
    /// The listener registered since the last failed try, if any.
    listener: Option<event_listener::EventListener>,
    /// Whether this wait holds one count of the signal's `waiters`.
    counted: bool,
}

#[cfg(feature = "async")]
impl AsyncWait {
    /// A wait that has not registered anything.
    pub(crate) const fn new() -> Self {
        Self {
            listener: None,
            counted: false,
        }
    }

    /// Tries `attempt` until it is ready or must wait; registers with
    /// `signal` as the protocol says before it returns `Pending`. `attempt`
    /// runs inside this poll, outside any lock.
    pub(crate) fn poll<R>(
        &mut self,
        signal: &Signal,
        cx: &mut std::task::Context<'_>,
        mut attempt: impl FnMut() -> Result<R, Next>,
    ) -> std::task::Poll<R> {
        use std::future::Future;
        use std::task::Poll;
        loop {
            match attempt() {
                Ok(r) => {
                    self.finish(signal);
                    return Poll::Ready(r);
                }
                Err(Next::Again) => {
                    // Progress is a few instructions away in another thread,
                    // and nothing will notify it: let the executor poll us
                    // again soon.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Err(Next::Wait) => {}
            }
            match self.listener.as_mut() {
                None => {
                    self.listener = Some(signal.event.listen());
                    if !self.counted {
                        // SeqCst: pairs with the SeqCst load in `notify`
                        // (after the listener is in the list: see the
                        // module docs, case (1)).
                        signal.waiters.fetch_add(1, Ordering::SeqCst);
                        self.counted = true;
                    }
                    crate::sync::seqcst_fence();
                    // Try again before awaiting the listener.
                }
                Some(listener) => match std::pin::Pin::new(listener).poll(cx) {
                    Poll::Ready(()) => self.listener = None,
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }

    /// Ends the wait: drops the listener and gives the count back.
    pub(crate) fn finish(&mut self, signal: &Signal) {
        self.listener = None;
        if self.counted {
            // SeqCst: as every access to `waiters`.
            signal.waiters.fetch_sub(1, Ordering::SeqCst);
            self.counted = false;
        }
    }
}
