//! Errors. Every error that refuses a payload hands it back.

use std::error::Error;
use std::fmt;

/// Why [`crate::Queue::push`] refused an item; the payload comes back.
///
/// Three reasons, each calling for something else: `Full` (retry later, or
/// wait with [`crate::Queue::push_timeout`]), `TooLarge` (never retry: no
/// amount of room makes this payload fit) and `Closed` (stop).
///
/// # Examples
///
/// ```
/// use chunkq::{PushError, Queue};
/// let q: Queue<Vec<u8>> = Queue::builder("a").memory_limit(4096).build().unwrap();
/// match q.push(vec![0; 10_000]) {
///     Err(PushError::TooLarge(v)) => assert_eq!(v.len(), 10_000),
///     other => panic!("{other:?}"),
/// }
/// q.close();
/// match q.push(vec![7]) {
///     Err(e) => assert!(e.is_closed() && e.into_inner() == [7]),
///     Ok(_) => unreachable!(),
/// }
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError<T> {
    /// The memory budget is full now and the policy is `Overflow::Reject`:
    /// room appears when consumers read or items expire.
    Full(T),
    /// The queue is closed.
    Closed(T),
    /// The payload can never fit: alone it is larger than the whole budget,
    /// or than one item may account for (4 GiB; its accounted size is
    /// stored in 32 bits). Retrying cannot help.
    TooLarge(T),
}

impl<T> PushError<T> {
    /// The payload that was not pushed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::{PushError, Queue};
    /// let q: Queue<String> = Queue::new("a");
    /// q.close();
    /// assert_eq!(q.push("x".into()).unwrap_err().into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(v) | PushError::Closed(v) | PushError::TooLarge(v) => v,
        }
    }

    /// Whether the budget was full (a retry may succeed).
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::PushError;
    /// assert!(PushError::Full(1).is_full());
    /// assert!(!PushError::TooLarge(1).is_full());
    /// assert_eq!(format!("{:?}", PushError::Full(1)), "Full(..)");
    /// ```
    #[must_use]
    pub fn is_full(&self) -> bool {
        matches!(self, PushError::Full(_))
    }

    /// Whether the queue was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::PushError;
    /// assert!(PushError::Closed(1).is_closed());
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self, PushError::Closed(_))
    }

    /// Whether the payload can never fit (a retry cannot succeed).
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::PushError;
    /// assert!(PushError::TooLarge(1).is_too_large());
    /// assert_eq!(format!("{:?}", PushError::TooLarge(1)), "TooLarge(..)");
    /// ```
    #[must_use]
    pub fn is_too_large(&self) -> bool {
        matches!(self, PushError::TooLarge(_))
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("Full(..)"),
            PushError::Closed(_) => f.write_str("Closed(..)"),
            PushError::TooLarge(_) => f.write_str("TooLarge(..)"),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => "pushing into a full queue".fmt(f),
            PushError::Closed(_) => "pushing into a closed queue".fmt(f),
            PushError::TooLarge(_) => "pushing a payload larger than the whole budget".fmt(f),
        }
    }
}

impl<T> Error for PushError<T> {}

/// Why [`crate::Queue::push_timeout`] refused an item; the payload comes
/// back.
///
/// # Examples
///
/// ```
/// use chunkq::{PushTimeoutError, Queue};
/// use std::time::Duration;
/// let q: Queue<u64> = Queue::builder("a").memory_limit(1000).build().unwrap();
/// while q.push(0).is_ok() {} // the budget is full and nobody reads
/// match q.push_timeout(7, Duration::from_millis(1)) {
///     Err(PushTimeoutError::Timeout(v)) => assert_eq!(v, 7),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushTimeoutError<T> {
    /// No room appeared in time (the budget stayed full under
    /// `Overflow::Reject`).
    Timeout(T),
    /// The queue is closed (also when it closed while the push waited).
    Closed(T),
    /// The payload can never fit (see [`PushError::TooLarge`]): it is
    /// refused at once, without waiting.
    TooLarge(T),
}

impl<T> PushTimeoutError<T> {
    /// The payload that was not pushed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::Queue;
    /// use std::time::Duration;
    /// let q: Queue<String> = Queue::new("a");
    /// q.close();
    /// let err = q.push_timeout("x".into(), Duration::from_secs(1)).unwrap_err();
    /// assert_eq!(err.into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PushTimeoutError::Timeout(v)
            | PushTimeoutError::Closed(v)
            | PushTimeoutError::TooLarge(v) => v,
        }
    }

    /// Whether the time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::PushTimeoutError;
    /// assert!(PushTimeoutError::Timeout(1).is_timeout());
    /// assert_eq!(format!("{:?}", PushTimeoutError::Timeout(1)), "Timeout(..)");
    /// ```
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, PushTimeoutError::Timeout(_))
    }

    /// Whether the budget was full until the deadline: the same as
    /// [`PushTimeoutError::is_timeout`] (the name the other push errors
    /// use; a later retry may succeed).
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::PushTimeoutError;
    /// assert!(PushTimeoutError::Timeout(1).is_full());
    /// assert!(!PushTimeoutError::TooLarge(1).is_full());
    /// ```
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.is_timeout()
    }

    /// Whether the queue was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::PushTimeoutError;
    /// assert!(PushTimeoutError::Closed(1).is_closed());
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self, PushTimeoutError::Closed(_))
    }

    /// Whether the payload can never fit (a retry cannot succeed).
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::PushTimeoutError;
    /// assert!(PushTimeoutError::TooLarge(1).is_too_large());
    /// ```
    #[must_use]
    pub fn is_too_large(&self) -> bool {
        matches!(self, PushTimeoutError::TooLarge(_))
    }
}

impl<T> fmt::Debug for PushTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            PushTimeoutError::Closed(_) => f.write_str("Closed(..)"),
            PushTimeoutError::TooLarge(_) => f.write_str("TooLarge(..)"),
        }
    }
}

impl<T> fmt::Display for PushTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushTimeoutError::Timeout(_) => "timed out waiting for room in a full queue".fmt(f),
            PushTimeoutError::Closed(_) => "pushing into a closed queue".fmt(f),
            PushTimeoutError::TooLarge(_) => {
                "pushing a payload larger than the whole budget".fmt(f)
            }
        }
    }
}

impl<T> Error for PushTimeoutError<T> {}

/// Why [`crate::Queue::push_batch`] stopped; holds the payloads it did not
/// push (the refused one first, then the rest in order). The variants mean
/// what [`PushError`]'s do, for the refused payload.
///
/// # Examples
///
/// ```
/// use chunkq::{PushBatchError, Queue};
/// let q: Queue<u32> = Queue::new("a");
/// q.close();
/// let err = q.push_batch(vec![1, 2, 3]).unwrap_err();
/// assert!(matches!(&err, PushBatchError::Closed(v) if v == &[1, 2, 3]));
/// assert_eq!(err.into_inner(), vec![1, 2, 3]);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushBatchError<T> {
    /// The budget was full (see [`PushError::Full`]).
    Full(Vec<T>),
    /// The queue was closed.
    Closed(Vec<T>),
    /// The first payload not pushed can never fit (see
    /// [`PushError::TooLarge`]); the ones after it were not tried.
    TooLarge(Vec<T>),
}

impl<T> PushBatchError<T> {
    /// The payloads that were not pushed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::PushBatchError;
    /// assert_eq!(PushBatchError::Full(vec![7]).into_inner(), vec![7]);
    /// ```
    pub fn into_inner(self) -> Vec<T> {
        match self {
            PushBatchError::Full(v) | PushBatchError::Closed(v) | PushBatchError::TooLarge(v) => v,
        }
    }

    /// Whether the budget was full.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::PushBatchError;
    /// assert!(PushBatchError::Full(vec![1]).is_full());
    /// ```
    #[must_use]
    pub fn is_full(&self) -> bool {
        matches!(self, PushBatchError::Full(_))
    }

    /// Whether the queue was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::PushBatchError;
    /// assert!(PushBatchError::Closed(vec![1]).is_closed());
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self, PushBatchError::Closed(_))
    }

    /// Whether the first payload not pushed can never fit.
    ///
    /// # Examples
    ///
    /// ```
    /// # use chunkq::PushBatchError;
    /// assert!(PushBatchError::TooLarge(vec![1]).is_too_large());
    /// ```
    #[must_use]
    pub fn is_too_large(&self) -> bool {
        matches!(self, PushBatchError::TooLarge(_))
    }
}

impl<T> fmt::Debug for PushBatchError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushBatchError::Full(v) => write!(f, "Full({} payloads)", v.len()),
            PushBatchError::Closed(v) => write!(f, "Closed({} payloads)", v.len()),
            PushBatchError::TooLarge(v) => write!(f, "TooLarge({} payloads)", v.len()),
        }
    }
}

impl<T> fmt::Display for PushBatchError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushBatchError::Full(v) => {
                write!(f, "pushing into a full queue ({} not pushed)", v.len())
            }
            PushBatchError::Closed(v) => {
                write!(f, "pushing into a closed queue ({} not pushed)", v.len())
            }
            PushBatchError::TooLarge(v) => write!(
                f,
                "pushing a payload larger than the whole budget ({} not pushed)",
                v.len()
            ),
        }
    }
}

impl<T> Error for PushBatchError<T> {}

/// Why [`crate::Consumer::try_recv`] returned no item.
///
/// # Examples
///
/// ```
/// use chunkq::{Queue, TryRecvError};
/// let q: Queue<u8> = Queue::new("a");
/// let c = q.subscribe();
/// assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Empty);
/// q.close();
/// assert_eq!(c.try_recv().unwrap_err(), TryRecvError::Closed);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TryRecvError {
    /// Nothing to read now.
    Empty,
    /// The queue is closed and this consumer has read everything retained.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => "receiving from an empty queue".fmt(f),
            TryRecvError::Closed => "receiving from a closed and drained queue".fmt(f),
        }
    }
}

impl Error for TryRecvError {}

/// [`crate::Consumer::recv`] found the queue closed and drained.
///
/// # Examples
///
/// ```
/// use chunkq::{Queue, RecvError};
/// let q: Queue<u8> = Queue::new("a");
/// let c = q.subscribe();
/// q.close();
/// assert_eq!(c.recv().unwrap_err(), RecvError);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        "receiving from a closed and drained queue".fmt(f)
    }
}

impl Error for RecvError {}

/// Why [`crate::Consumer::recv_timeout`] returned no item.
///
/// # Examples
///
/// ```
/// use chunkq::{Queue, RecvTimeoutError};
/// use std::time::Duration;
/// let q: Queue<u8> = Queue::new("a");
/// let c = q.subscribe();
/// assert_eq!(c.recv_timeout(Duration::from_millis(1)).unwrap_err(), RecvTimeoutError::Timeout);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecvTimeoutError {
    /// Nothing arrived in time.
    Timeout,
    /// The queue is closed and this consumer has read everything retained.
    Closed,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => "timed out waiting on receive".fmt(f),
            RecvTimeoutError::Closed => "receiving from a closed and drained queue".fmt(f),
        }
    }
}

impl Error for RecvTimeoutError {}

/// An invalid [`crate::Builder`] setting.
///
/// # Examples
///
/// ```
/// use chunkq::{ConfigError, Queue};
/// let r = Queue::<u8>::builder("a").memory_limit(0).build();
/// assert_eq!(r.unwrap_err(), ConfigError::ZeroMemoryLimit);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigError {
    /// `memory_limit(0)`: nothing could ever be pushed.
    ZeroMemoryLimit,
    /// `ttl(Duration::ZERO)`: every item would expire at once.
    ZeroTtl,
    /// `sweep_interval(Some(Duration::ZERO))`: the sweeper would spin.
    ZeroSweepInterval,
    /// The operating system refused to start the sweeper thread.
    SweeperSpawn,
    /// The queue name contains a NUL byte (it names the queue's thread, in
    /// metrics and in logs, where a NUL cannot go).
    NulInName,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroMemoryLimit => "memory_limit must be greater than zero".fmt(f),
            ConfigError::ZeroTtl => "ttl must be greater than zero".fmt(f),
            ConfigError::ZeroSweepInterval => {
                "sweep_interval must be greater than zero (use None for no sweeper)".fmt(f)
            }
            ConfigError::SweeperSpawn => "cannot start the sweeper thread".fmt(f),
            ConfigError::NulInName => "the queue name contains a NUL byte".fmt(f),
        }
    }
}

impl Error for ConfigError {}
