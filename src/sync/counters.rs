//! Contention counters (issue 17): compiled only with
//! `RUSTFLAGS="--cfg chunkq_counters"`, for `examples/contention.rs`. Every
//! hook ([`count!`](crate::sync::count)) is an empty statement otherwise, so
//! the shipped build is unchanged.
//!
//! Each thread bumps its own counters (no shared cache line: counting must
//! not add the contention it measures) and adds them to the process totals
//! when it exits, or when it calls [`take`].

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// What is counted; see the hooks for where.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
pub enum Counter {
    /// A failed CAS on a group cursor (`Group::claim`: a clone or a
    /// remover moved it first).
    CursorCasFail,
    /// A failed CAS on the byte budget (`Log::try_reserve`).
    BudgetCasFail,
    /// A failed CAS on `tail` in the leased push (`Log::reserve_leased`).
    TailCasFail,
    /// A read that found its slot reserved but not yet published and
    /// waited (`Log::claim`'s spin): a producer between reserve and publish.
    UnpublishedWait,
    /// A read (single or batch) that left the unpinned leased path for the
    /// pinned one (`Log::try_recv_pinned`).
    PinnedRead,
    /// A read that found the queue empty (`Log::nothing_at` said `Empty`).
    Empty,
    /// `Spin::wait` rounds that spun (crossbeam `Backoff::snooze`).
    SpinSnooze,
    /// `Spin::wait` rounds that yielded the core.
    SpinYield,
    /// `Spin::wait` rounds that slept (1 µs doubling to 1 ms).
    SpinSleep,
    /// Blocking waits that slept on an eventcount's condvar (`wait.rs`).
    Park,
}

/// Number of counters.
pub const N: usize = 10;

/// The counters' names, in `Counter` order.
pub const NAMES: [&str; N] = [
    "cursor_cas_fail",
    "budget_cas_fail",
    "tail_cas_fail",
    "unpublished_wait",
    "pinned_read",
    "empty",
    "spin_snooze",
    "spin_yield",
    "spin_sleep",
    "park",
];

/// The totals of threads that exited (or called `take`).
static TOTALS: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];

/// One thread's counts, added to `TOTALS` when the thread exits.
struct Local([Cell<u64>; N]);

impl Local {
    fn flush(&self) {
        for (t, c) in TOTALS.iter().zip(&self.0) {
            // Relaxed: a statistic; read after the threads were joined.
            t.fetch_add(c.replace(0), Ordering::Relaxed);
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.flush();
    }
}

thread_local! {
    static LOCAL: Local = const { Local([const { Cell::new(0) }; N]) };
}

/// Adds one to `c` in this thread's counts.
#[inline]
pub fn bump(c: Counter) {
    let _ = LOCAL.try_with(|l| {
        let cell = &l.0[c as usize];
        cell.set(cell.get() + 1);
    });
}

/// The totals so far (this thread's included), and resets them. Call it
/// after the measured threads were joined.
pub fn take() -> [u64; N] {
    let _ = LOCAL.try_with(Local::flush);
    // Relaxed: see `flush`.
    std::array::from_fn(|i| TOTALS[i].swap(0, Ordering::Relaxed))
}
