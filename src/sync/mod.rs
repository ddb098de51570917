//! The one door through which chunkq reaches atomics, locks, `Arc`, threads
//! and epoch-based reclamation.
//!
//! Under `--cfg loom` every primitive comes from [`loom`], so the model
//! checker sees (and permutes) each access; otherwise they are the standard
//! library's. crossbeam-epoch follows the same switch only when it is built
//! with `--cfg crossbeam_loom` and its `loom` feature: `--cfg loom` alone
//! would leave the epoch collector's atomics real and invisible to loom, and a
//! model run that way would check nothing, so that combination refuses to
//! compile.
//!
//! Spinning also goes through here ([`Spin`]): under loom a spin must yield to
//! the scheduler or the model never terminates.

#[cfg(all(loom, not(crossbeam_loom)))]
compile_error!(
    "chunkq: `--cfg loom` needs `--cfg crossbeam_loom` too (RUSTFLAGS=\"--cfg loom --cfg crossbeam_loom\"), \
     or crossbeam-epoch's atomics stay invisible to loom and the models check nothing"
);

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex};

pub(crate) use std::sync::atomic::Ordering;

/// Epoch-based reclamation: crossbeam-epoch, or under loom the stand-in in
/// `loom_epoch` (see there why).
#[cfg(not(loom))]
pub(crate) use crossbeam_epoch as epoch;
#[cfg(loom)]
pub(crate) use loom_epoch as epoch;

/// Reclamation under loom: a stand-in for crossbeam-epoch (see the
/// module's own docs for why and how).
#[cfg(loom)]
pub(crate) mod loom_epoch;

/// Contention counters (`--cfg chunkq_counters` only; see the module).
#[cfg(chunkq_counters)]
pub mod counters;

/// Bumps a contention counter (`count!(CursorCasFail)`) in a
/// `--cfg chunkq_counters` build; nothing otherwise.
macro_rules! count {
    ($c:ident) => {
        #[cfg(chunkq_counters)]
        $crate::sync::counters::bump($crate::sync::counters::Counter::$c);
    };
    ($c:ident if $cond:expr) => {
        #[cfg(chunkq_counters)]
        if $cond {
            $crate::sync::counters::bump($crate::sync::counters::Counter::$c);
        }
    };
}
pub(crate) use count;

/// A cell whose accesses loom tracks; under std it is a plain `UnsafeCell`
/// with loom's `with`/`with_mut` API. chunkq uses it as a *witness*: the item
/// envelope writes it when it is built and every delivery reads it, so loom
/// reports a read that is not ordered after the write (a torn or unpublished
/// read).
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// std stand-in for loom's `UnsafeCell` (see the loom variant).
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
#[allow(dead_code)]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }
    /// Runs `f` with a shared pointer to the contents.
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }
    /// Runs `f` with a unique pointer to the contents.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Waiting for another thread's progress (a producer between reserving a
/// sequence number and publishing its slot, a cursor move being counted, a
/// `close` between its two stores). The waits the protocol allows are short,
/// but the awaited thread may be descheduled, so a waiter degrades: it spins
/// first (crossbeam's exponential backoff), then yields its time slice, then
/// sleeps, from 1 µs doubling up to 1 ms, so a long wait costs no core.
/// Under loom every step yields, because loom's scheduler is not fair and a
/// bare spin would never let the awaited thread run.
pub(crate) struct Spin {
    #[cfg(not(loom))]
    /// crossbeam's exponential backoff: the spinning phase.
    backoff: crossbeam_utils::Backoff,
    #[cfg(not(loom))]
    /// Steps taken after the spinning phase ended.
    idle: u32,
}

impl Spin {
    /// Yields taken after spinning, before the waiter starts to sleep.
    #[cfg(not(loom))]
    const YIELDS: u32 = 64;

    /// A fresh waiter.
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(not(loom))]
            backoff: crossbeam_utils::Backoff::new(),
            #[cfg(not(loom))]
            idle: 0,
        }
    }

    /// Waits a little before the caller looks again.
    pub(crate) fn wait(&mut self) {
        #[cfg(loom)]
        loom::thread::yield_now();
        #[cfg(not(loom))]
        {
            if !self.backoff.is_completed() {
                count!(SpinSnooze);
                self.backoff.snooze();
            } else if self.idle < Self::YIELDS {
                count!(SpinYield);
                self.idle += 1;
                std::thread::yield_now();
            } else {
                count!(SpinSleep);
                let exp = (self.idle - Self::YIELDS).min(10);
                self.idle += 1;
                std::thread::sleep(std::time::Duration::from_micros(1 << exp));
            }
        }
    }
}

/// A `SeqCst` fence, the same in the shipped build and under loom (where the
/// model checker sees it). The eventcount (`wait.rs`) puts one between the
/// two accesses of each side of its store-buffering (Dekker) handshake: the
/// notifier's change and its `waiters` load, the waiter's `waiters`
/// increment and its re-check. `SeqCst` accesses alone would do in the C++
/// model, but loom models them as `AcqRel`, and a fence is what crossbeam
/// and concurrent-queue rely on too; shipping the fence keeps the program
/// loom verified and the program users run the same.
#[inline(always)]
pub(crate) fn seqcst_fence() {
    #[cfg(loom)]
    loom::sync::atomic::fence(Ordering::SeqCst);
    #[cfg(not(loom))]
    std::sync::atomic::fence(Ordering::SeqCst);
}
