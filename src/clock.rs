//! Time as chunkq sees it: nanoseconds since the Unix epoch in a `u64`.
//!
//! The system clocks are read as a fixed wall-clock anchor plus a monotonic
//! offset, so TTLs never run backwards when the wall clock is stepped, while
//! the timestamps on items and events still convert to [`SystemTime`].
//!
//! Every push reads the clock once (UUID v7, enqueue time, TTL) and every
//! receive once (dequeue time), so the clock is on the hot path. The default,
//! [`Clock::system`], reads the kernel's coarse monotonic clock
//! (`CLOCK_MONOTONIC_COARSE` on Linux: a few nanoseconds, updated every tick,
//! i.e. 1 to 4 ms); [`Clock::precise`] reads [`Instant`] (nanosecond
//! resolution, 20 to 80 ns a read on virtual machines). A [`Clock::manual`]
//! clock moves only when told to, which is how a ten-minute TTL is tested in
//! milliseconds.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The source of time for a queue: the system clock (the default) or a manual
/// clock that tests advance by hand.
///
/// # Examples
///
/// ```
/// use chunkq::{Clock, Queue};
/// use std::time::Duration;
///
/// let clock = Clock::manual();
/// let q: Queue<u32> = Queue::builder("orders")
///     .ttl(Duration::from_secs(600))
///     .sweep_interval(None)
///     .clock(clock.clone())
///     .build()
///     .unwrap();
/// q.push(1).unwrap();
/// clock.advance(Duration::from_secs(601));
/// assert_eq!(q.expire_now(), 1);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Which clock.
    source: Source,
}

/// The kinds of clock.
#[derive(Clone, Debug)]
enum Source {
    /// The coarse monotonic system clock, read as `base` plus the coarse
    /// reading; `base` is the process's ([`coarse_base`]), copied here so
    /// that a read checks no global (this runs twice per item).
    Coarse {
        /// [`coarse_base`].
        base: u64,
    },
    /// `Instant`, nanosecond resolution.
    Precise,
    /// A manual clock: its reading in nanoseconds since the Unix epoch,
    /// shared by all clones.
    Manual(Arc<AtomicU64>),
}

impl Default for Source {
    fn default() -> Self {
        Source::Coarse {
            base: coarse_base(),
        }
    }
}

/// The wall-clock reading (ns since the Unix epoch) and the `Instant` taken
/// at the same moment, once per process.
fn anchor() -> &'static (u64, Instant) {
    static ANCHOR: OnceLock<(u64, Instant)> = OnceLock::new();
    ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        (wall, Instant::now())
    })
}

impl Clock {
    /// The system clock at the kernel's tick resolution (1 to 4 ms on
    /// Linux), the cheapest to read: the default. Monotonic: it never runs
    /// backwards. Elsewhere than Linux it is [`Clock::precise`].
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = chunkq::Clock::system();
    /// assert!(clock.now() > std::time::UNIX_EPOCH);
    /// ```
    pub fn system() -> Self {
        Self {
            source: Source::default(),
        }
    }

    /// The system clock at nanosecond resolution ([`Instant`]), for event
    /// timestamps that must tell apart what happens within a millisecond.
    /// Each read costs more (20 to 80 ns on virtual machines). Monotonic.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = chunkq::Clock::precise();
    /// let a = clock.now();
    /// std::thread::sleep(std::time::Duration::from_micros(50));
    /// assert!(clock.now() > a);
    /// ```
    pub fn precise() -> Self {
        Self {
            source: Source::Precise,
        }
    }

    /// A manual clock, starting at the current system time and moving only
    /// through [`Clock::advance`]. Clones share the reading.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = chunkq::Clock::manual();
    /// let t0 = clock.now();
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(clock.now().duration_since(t0).unwrap(), Duration::from_secs(5));
    /// ```
    pub fn manual() -> Self {
        Self {
            source: Source::Manual(Arc::new(AtomicU64::new(system_nanos()))),
        }
    }

    /// Moves a manual clock forward by `by`. On the system clock it does
    /// nothing (time moves by itself).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = chunkq::Clock::manual();
    /// let before = clock.now();
    /// clock.advance(Duration::from_millis(1));
    /// assert!(clock.now() > before);
    /// ```
    pub fn advance(&self, by: Duration) {
        if let Source::Manual(m) = &self.source {
            let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            // Relaxed: the reading is a plain value; what it orders (expiry)
            // is ordered by the queue's own atomics.
            let _ = m.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(by))
            });
        }
    }

    /// Whether this is a manual clock.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(chunkq::Clock::manual().is_manual());
    /// assert!(!chunkq::Clock::system().is_manual());
    /// ```
    pub fn is_manual(&self) -> bool {
        matches!(self.source, Source::Manual(_))
    }

    /// The current reading.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = chunkq::Clock::system();
    /// let a = clock.now();
    /// let b = clock.now();
    /// assert!(b >= a);
    /// ```
    pub fn now(&self) -> SystemTime {
        to_system_time(self.now_nanos())
    }

    /// The current reading in nanoseconds since the Unix epoch.
    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        match &self.source {
            Source::Coarse { base } => coarse_nanos(*base),
            Source::Precise => system_nanos(),
            // Relaxed: see `advance`.
            Source::Manual(m) => m.load(Ordering::Relaxed),
        }
    }
}

/// Nanoseconds of the coarse monotonic clock.
#[cfg(all(target_os = "linux", not(miri)))]
#[inline]
fn coarse_monotonic() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE
    // exists on every Linux since 2.6.32. On the impossible failure `ts`
    // stays zero, which only makes the reading older.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    // Plain arithmetic: a monotonic reading is the time since boot, which
    // fits in u64 nanoseconds for 584 years (this runs twice per item).
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// What to add to the coarse monotonic clock's reading to get nanoseconds
/// since the Unix epoch: the wall-clock anchor minus the coarse reading
/// taken at the same moment, once per process (so every `Clock` of the
/// process agrees).
#[cfg(all(target_os = "linux", not(miri)))]
fn coarse_base() -> u64 {
    static BASE: OnceLock<u64> = OnceLock::new();
    *BASE.get_or_init(|| system_nanos().wrapping_sub(coarse_monotonic()))
}

/// Coarse time in nanoseconds since the Unix epoch: `base` ([`coarse_base`])
/// plus the coarse monotonic reading, i.e. the wall-clock anchor plus the
/// coarse clock's progress since. Plain arithmetic: the sum passes
/// `u64::MAX` only in the year 2554.
#[cfg(all(target_os = "linux", not(miri)))]
#[inline]
fn coarse_nanos(base: u64) -> u64 {
    base.wrapping_add(coarse_monotonic())
}

/// Where there is no coarse clock, the precise one (no base).
#[cfg(not(all(target_os = "linux", not(miri))))]
fn coarse_base() -> u64 {
    0
}

/// Where there is no coarse clock, the precise one.
#[cfg(not(all(target_os = "linux", not(miri))))]
#[inline]
fn coarse_nanos(_base: u64) -> u64 {
    system_nanos()
}

/// Monotonic system time in nanoseconds since the Unix epoch.
pub(crate) fn system_nanos() -> u64 {
    let (wall, at) = *anchor();
    wall.saturating_add(at.elapsed().as_nanos() as u64)
}

/// Converts a chunkq timestamp back to a `SystemTime`.
pub(crate) fn to_system_time(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

/// The inverse of [`to_system_time`]: nanoseconds since the Unix epoch,
/// 0 for a time before it and `u64::MAX` past what fits (year 2554).
pub(crate) fn from_system_time(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default clock reads the wall clock (its anchor plus the coarse
    /// clock's progress) and moves forward with time: a broken base or
    /// sum would read 1970, or stand still.
    #[test]
    fn the_system_clock_follows_the_wall_clock() {
        let clock = Clock::system();
        let wall = from_system_time(SystemTime::now());
        let a = clock.now_nanos();
        // Within a second of the wall clock (the coarse clock lags by its
        // tick, a few milliseconds).
        assert!(a.abs_diff(wall) < 1_000_000_000, "{a} vs {wall}");
        std::thread::sleep(Duration::from_millis(60));
        let b = clock.now_nanos();
        // At least 60 ms later, less one coarse tick either side.
        assert!(b >= a + 30_000_000, "{a} then {b}");
        // Two clocks of the process agree (one base).
        let c = Clock::default().now_nanos();
        assert!(c >= b && c - b < 1_000_000_000, "{b} then {c}");
    }
}
