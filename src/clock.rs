//! Time as chunkq sees it: nanoseconds since the Unix epoch in a `u64`.
//!
//! The system clock is read as a fixed wall-clock anchor plus a monotonic
//! [`Instant`] offset, so TTLs never run backwards when the wall clock is
//! stepped, while the timestamps on items and events still convert to
//! [`SystemTime`]. A [`Clock::manual`] clock moves only when told to, which is
//! how a ten-minute TTL is tested in milliseconds.

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
    /// `None` for the system clock; for a manual clock, its current reading
    /// in nanoseconds since the Unix epoch, shared by all clones.
    manual: Option<Arc<AtomicU64>>,
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
    /// The system clock.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = chunkq::Clock::system();
    /// assert!(clock.now() > std::time::UNIX_EPOCH);
    /// ```
    pub fn system() -> Self {
        Self { manual: None }
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
            manual: Some(Arc::new(AtomicU64::new(system_nanos()))),
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
        if let Some(m) = &self.manual {
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
        self.manual.is_some()
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
    pub(crate) fn now_nanos(&self) -> u64 {
        match &self.manual {
            // Relaxed: see `advance`.
            Some(m) => m.load(Ordering::Relaxed),
            None => system_nanos(),
        }
    }
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
