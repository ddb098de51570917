use std::time::Duration;

/// How long to wait between attempts: `initial`, doubling after each
/// failure up to `max`. `max_attempts` bounds the number of retries
/// (`None`: retry until it works).
///
/// # Examples
///
/// ```
/// use chunkq_nats::Backoff;
/// use std::time::Duration;
/// let b = Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(50), max_attempts: Some(3) };
/// let delays: Vec<_> = (1..=4).map(|a| b.delay(a).as_millis()).collect();
/// assert_eq!(delays, [10, 20, 40, 50]);
/// assert!(b.exhausted(4) && !b.exhausted(3));
/// assert!(!Backoff::default().exhausted(u32::MAX));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// How many retries at most; `None` (the default): no limit.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    /// 10 ms, doubling up to 1 s, without a limit.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_secs(1),
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (1 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// Whether retry number `attempt` is past the limit.
    pub fn exhausted(&self, attempt: u32) -> bool {
        self.max_attempts.is_some_and(|m| attempt > m)
    }
}
