//! [`Stats`]: a snapshot of a queue and its consumer groups, for dashboards
//! and alerts, read from the counters the engine keeps anyway (sequence
//! numbers, the byte counter, removals by cause, refusals) plus one pinned
//! look at the oldest item. Taking it costs the hot paths nothing.

use crate::consumer::Missed;
use crate::engine::Engine;
use crate::group::{Cause, JOINING, Label};
use crate::log::Log;
use crate::sync::epoch;
use std::time::Duration;
use uuid::Uuid;

/// A snapshot of a queue: what it holds, what went through it, and where
/// each consumer group stands ([`crate::Queue::stats`]).
///
/// The counters run from the queue's creation: every pushed item is, at any
/// moment, still retained (`retained`) or removed once, as `released`
/// (every group had read it), `expired` or `evicted`; so
/// `pushed == retained + released + expired + evicted` when no push or
/// removal is in flight.
///
/// # Examples
///
/// ```
/// use chunkq::{Clock, Queue};
/// use std::time::Duration;
/// let clock = Clock::manual();
/// let q: Queue<u8> = Queue::builder("s").clock(clock.clone()).ttl(Duration::from_secs(1)).build().unwrap();
/// let c = q.subscribe();
/// q.push_batch([1, 2, 3]).unwrap();
/// clock.advance(Duration::from_secs(2));
/// q.push(4).unwrap();
/// q.expire_now();
/// let s = q.stats();
/// assert_eq!((s.pushed, s.retained, s.len, s.expired), (4, 1, 1, 3));
/// assert_eq!(s.pushed, s.retained as u64 + s.released + s.expired + s.evicted);
/// assert_eq!(s.groups[0].missed.expired, 3);
/// assert_eq!(s.oldest_age, Some(Duration::ZERO)); // the manual clock stands still
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Stats {
    /// The queue's name.
    pub name: String,
    /// The queue's UUID ([`crate::Queue::id`]).
    pub id: Uuid,
    /// Items some group has not read yet ([`crate::Queue::len`]).
    pub len: usize,
    /// Retained items, read or not ([`crate::Queue::retained`]).
    pub retained: usize,
    /// Accounted bytes of the retained items
    /// ([`crate::Queue::memory_used`]); never above `memory_limit`.
    pub memory_used: usize,
    /// Bytes of whole chunks kept alive by deliveries after every item in
    /// them left the queue: a held [`crate::Delivery`] keeps the chunk it
    /// points into (about 56 KiB for a small payload) until the chunk's
    /// last delivery is dropped. Reported here, beside the budget, not
    /// taken from it: a push never evicts or waits for memory that a
    /// reader holds. Real memory is about `memory_used + memory_pinned`
    /// plus two chunks and the queue's small pool of recycled chunks.
    pub memory_pinned: usize,
    /// The budget ([`crate::Queue::memory_limit`]).
    pub memory_limit: usize,
    /// Age of the oldest retained item (by the queue's clock, since its
    /// enqueue here); `None` when empty.
    pub oldest_age: Option<Duration>,
    /// Items pushed since creation (forwarded and enveloped ones included).
    pub pushed: u64,
    /// Pushes refused with [`crate::PushError::Full`] (`Reject`) or
    /// [`crate::PushError::TooLarge`] (an item larger than the budget);
    /// refusals of a closed queue are not counted.
    pub refused: u64,
    /// Items removed because every registered group had read them:
    /// nobody's loss.
    pub released: u64,
    /// Items removed by expiry.
    pub expired: u64,
    /// Items removed by eviction (`DropOldest`).
    pub evicted: u64,
    /// Every registered consumer group.
    pub groups: Vec<GroupStats>,
}

/// One consumer group in a [`Stats`] snapshot.
///
/// # Examples
///
/// ```
/// let q: chunkq::Queue<u8> = chunkq::Queue::new("g");
/// let c = q.subscribe();
/// let _member = c.clone();
/// q.push(1).unwrap();
/// let g = &q.stats().groups[0];
/// assert_eq!((g.id, g.members, g.lag, g.missed.total()), (c.id(), 2, 1, 0));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct GroupStats {
    /// The group's id ([`crate::Consumer::id`]).
    pub id: Uuid,
    /// The group's name, for a named group ([`crate::Queue::subscribe_group`]).
    pub name: Option<String>,
    /// Live `Consumer` handles (clones) of the group.
    pub members: usize,
    /// Items retained that the group has not read ([`crate::Consumer::lag`]).
    pub lag: usize,
    /// What the group missed so far ([`crate::Consumer::missed`]).
    pub missed: Missed,
    /// The group's label for metrics (unset while it registers).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) label: Option<Label>,
}

/// Items some group has not read yet ([`crate::Queue::len`]); every
/// retained item when no group is registered.
pub(crate) fn unread<T: Send + Sync + 'static>(log: &Log<T>) -> usize {
    let guard = epoch::pin();
    // SeqCst (each load): the registry and the cursors first, then `head`,
    // then `tail`; all only grow, so the result held at some instant between
    // the loads, or is smaller.
    let slowest = log
        .registry
        .load(&guard)
        .iter()
        .map(|g| g.cursor())
        // A group still joining starts at `head` or later: `head` (below)
        // bounds it.
        .map(|c| if c & JOINING != 0 { 0 } else { c })
        .min();
    let h = log.head_seq();
    let (t, _) = log.tail_seq();
    let from = slowest.map_or(h, |c| c.max(h));
    // Saturates where `usize` is narrower than the sequence numbers.
    usize::try_from(t.saturating_sub(from)).unwrap_or(usize::MAX)
}

/// Takes the snapshot (see [`crate::Queue::stats`]).
pub(crate) fn snapshot<T: Send + Sync + 'static>(engine: &Engine<T>) -> Stats {
    let log = &engine.log;
    let now = log.clock.now_nanos();
    let groups = {
        let guard = epoch::pin();
        log.registry
            .load(&guard)
            .iter()
            .map(|g| {
                log.catch_up(g);
                GroupStats {
                    id: g.id(),
                    name: match g.label() {
                        Some(Label::Named(name)) => Some(name.to_string()),
                        _ => None,
                    },
                    label: g.label().cloned(),
                    members: g.handles(),
                    lag: log.lag(g),
                    missed: crate::consumer::missed_of(g),
                }
            })
            .collect()
    };
    Stats {
        name: log.name.to_string(),
        id: engine.id,
        len: unread(log),
        retained: usize::try_from(log.len()).unwrap_or(usize::MAX),
        memory_used: log.used(),
        memory_pinned: log.pinned(),
        memory_limit: log.limit,
        oldest_age: log
            .oldest_enqueued(now)
            .map(|at| Duration::from_nanos(now.saturating_sub(at))),
        pushed: log.tail_seq().0,
        // Relaxed: a statistic.
        refused: engine.refused.load(std::sync::atomic::Ordering::Relaxed),
        released: log.removed(Cause::Consumed),
        expired: log.removed(Cause::Expired),
        evicted: log.removed(Cause::Evicted),
        groups,
    }
}
