//! # chunkq
//!
//! A lock-free, memory-bounded, time-aware multi-producer multi-consumer
//! queue for in-process pipelines.
//!
//! - Many threads [`Queue::push`] into a named queue. The queue is a log:
//!   every [`Consumer`] made by [`Queue::subscribe`] has its own cursor and
//!   reads every retained item, in one total order (sequence numbers; one
//!   producer's items in its push order).
//! - Cloning a consumer shares its cursor: the clones compete and each item
//!   goes to exactly one of them (a consumer group, classic MPMC work
//!   sharing).
//! - Items are retained until every consumer has read them, their TTL runs
//!   out, or the memory budget forces a choice ([`Overflow`]). Each consumer
//!   is told *exactly* how many items it never read, and why
//!   ([`Consumer::missed`], [`Consumer::notifications`]).
//! - Each item travels in an envelope ([`Item`]): UUID v7, creation time,
//!   sequence number and an event history that grows when it is
//!   [forwarded](Queue::forward) to another queue.
//!
//! Payloads are `Send + Sync`: readers share an item rather than move it
//! out (see [`Queue`], "Why `T: Sync`", for a work queue of
//! `Box<dyn FnOnce() + Send>`).
//!
//! `push` and `try_recv` take no lock on their own path (waking a parked
//! receiver does; see "Waiting"): a push is a CAS on the memory counter,
//! a `fetch_add` on the tail and a `Release` store; a read is a CAS on the
//! consumer's cursor. Memory is reclaimed with crossbeam-epoch.
//!
//! ```
//! use chunkq::{Queue, TryRecvError};
//!
//! let q: Queue<String> = Queue::new("events");
//! let audit = q.subscribe();          // sees everything
//! let workers = q.subscribe();        // a group...
//! let worker2 = workers.clone();      // ...of two competing members
//!
//! q.push("a".into()).unwrap();
//! q.push("b".into()).unwrap();
//!
//! assert_eq!(audit.try_recv().unwrap().payload(), "a");
//! assert_eq!(audit.try_recv().unwrap().payload(), "b");
//! assert_eq!(workers.try_recv().unwrap().payload(), "a");
//! assert_eq!(worker2.try_recv().unwrap().payload(), "b");
//! assert_eq!(workers.try_recv().unwrap_err(), TryRecvError::Empty);
//! ```
//!
//! # Choosing a start position
//! [`Queue::subscribe`] starts at the oldest item still retained, so a late
//! consumer catches up on history; [`Queue::subscribe_from`] with
//! [`Start::Latest`] sees only items pushed after it subscribed.
//!
//! # What "missed" means
//! For every consumer group, each item pushed after it subscribed is either
//! delivered to exactly one member exactly once, or counted exactly once in
//! [`Consumer::missed`] as `expired` or `evicted`: never both, never neither,
//! whatever the interleaving. (A third cause, `abandoned`, counts the items a
//! [`Consumer::read`] claimed and never lent to its closure because the
//! closure panicked, and the items a [`Prefetch`] handle still held when it
//! was dropped.) Items released because every consumer had
//! read them are not missed by anyone. A consumer that subscribes while items
//! are being released starts after them.
//!
//! Counts are delivered as [`Notice`]s on [`Consumer::notifications`];
//! notices nobody receives coalesce (they never pile up). A removal does not
//! visit every consumer: a consumer's misses are counted when it next reads,
//! asks [`Consumer::missed`] or receives a notice (a blocked receiver is
//! woken by every expiry and eviction), so a flood of evictions costs a
//! push the same with one consumer or a thousand, and whoever looks sees
//! exact totals.
//!
//! # Expiry
//! An item expires `ttl` after its enqueue into this queue. Expiry happens in
//! sweeps: in the background every `sweep_interval` (default 30 s; one
//! housekeeping thread per process serves every queue, see
//! [`Builder::sweep_interval`]), or [`Queue::expire_now`]. Between two sweeps an item older than its TTL is
//! still retained and may still be delivered (then it is not missed). A sweep
//! retires a whole chunk of items at once from the chunk's newest timestamp,
//! without opening the items.
//!
//! # Memory
//! The budget ([`Builder::memory_limit`], default 1 MiB) counts *estimated*
//! bytes: the payload's size and heap size ([`EstimateSize`], or a closure),
//! the envelope, its history, the slot and a share of the chunk. The count is
//! reserved before an item gets its sequence number and never exceeds the
//! limit. When an item leaves, its bytes are released at once; the memory
//! itself is freed a little later, when crossbeam-epoch's collector runs and
//! the last [`Delivery`] of the item is dropped.
//!
//! Items every consumer has read are released a chunk
//! ([`Queue::chunk_capacity`] items: 32 to 1024, depending on the payload's
//! size) at a time: when a consumer leaves a chunk, when a push finds the budget full,
//! and on every sweep. With no consumer at all, items stay until they expire
//! or are evicted, so a late subscriber can read them.
//!
//! # Closing
//! [`Queue::close`] (or dropping the last `Queue` handle) makes pushes fail
//! with [`PushError::Closed`]; consumers read what is retained, then get
//! [`TryRecvError::Closed`] / [`RecvError`]. Blocked receivers wake up.
//!
//! # Waiting
//! [`Consumer::recv`] parks the thread. Producers wake parked consumers
//! through an eventcount, so a push pays one atomic load when nobody waits.
//! [`Queue::push_timeout`] blocks a producer until there is room under
//! [`Overflow::Reject`] (backpressure), woken when consumers read, items
//! expire or the queue closes. With the `async` feature the same waits
//! exist as futures and streams, on any executor (see "Cargo features").
//! A reader that reaches a slot whose producer reserved it but has not
//! published it yet waits for it (spinning, then yielding, then sleeping in
//! short steps); it never skips it.
//!
//! # Cargo features
//! None is on by default.
//!
//! - `get-size2`: `Builder::get_size2` sizes payloads with the
//!   `get-size2` crate's `GetSize` trait.
//! - `async`: runtime-agnostic async waiting: `Consumer::recv_async` and
//!   `Consumer::into_stream` (a `futures_core::Stream` ending when the
//!   queue is closed and drained), `Notifications::recv_async` and
//!   `Notifications::into_stream`, and `Queue::push_async` (waits for room
//!   under [`Overflow::Reject`]). All are cancel-safe: an item is taken only
//!   in the poll that returns it. Async waiters count themselves in the
//!   blocking receives' eventcount, so a push still pays one load when
//!   nobody waits.
//! - `serde`: `Serialize` and `Deserialize` for [`Envelope`] (when its
//!   payload type has them), [`Event`], [`EventKind`], [`Missed`] and
//!   [`Notice`], so that an envelope can cross a process boundary:
//!   [`Delivery::to_envelope`], serialize, send, deserialize,
//!   [`Queue::push_envelope`].
//! - `metrics`: `Queue::report_metrics` reports [`Queue::stats`] through the
//!   `metrics` facade (gauges `chunkq_len`, `chunkq_retained`,
//!   `chunkq_memory_used_bytes`,
//!   `chunkq_memory_limit_bytes`, `chunkq_oldest_age_seconds`,
//!   `chunkq_groups`, `chunkq_group_lag`, `chunkq_group_members`; counters
//!   `chunkq_pushed_total`, `chunkq_refused_total`, `chunkq_released_total`,
//!   `chunkq_expired_total`, `chunkq_evicted_total` and
//!   `chunkq_group_missed_total` with `cause` = `expired` / `evicted` /
//!   `abandoned`; labels `queue` and, per group, `group`), and the
//!   housekeeping thread reports after every sweep. Counters are reported
//!   as increments (what grew since the previous report): a queue or group
//!   that goes reports its final counts, one that reuses its label
//!   continues the series, and chunkq keeps nothing for a label nobody
//!   holds.
//!
//! With `serde`, an envelope has this shape (shown as JSON; this is part of
//! the crate's stable interface). The UUID is written as uuid's serde
//! support writes it (a hyphenated string in human-readable formats, 16
//! bytes in the others); times are serde's `SystemTime`: seconds and
//! nanoseconds since the Unix epoch. Events are `{kind, queue, at}`, with
//! `kind` either `"Enqueued"` or `"Dequeued"`. Serializing a `SystemTime`
//! before the epoch fails with an error (serde's rule), which only a
//! hand-built `Envelope` or `Notice` can hold; an [`Event`]'s time never
//! is.
//!
//! ```
//! # #[cfg(feature = "serde")] {
//! use chunkq::{Envelope, Event, EventKind, Uuid};
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! let created = UNIX_EPOCH + Duration::new(1_700_000_000, 250_000_000);
//! let env = Envelope {
//!     id: Uuid::from_u128(0x018b_cfe5_6800_7000_8000_0000_0000_002a),
//!     created,
//!     seq: 41,
//!     history: vec![
//!         Event::new(EventKind::Enqueued, "orders", created),
//!         Event::new(EventKind::Dequeued, "orders", created + Duration::from_millis(3)),
//!     ],
//!     payload: "build #7".to_string(),
//! };
//! let json = serde_json::to_string_pretty(&env).unwrap();
//! assert_eq!(json, r#"{
//!   "id": "018bcfe5-6800-7000-8000-00000000002a",
//!   "created": {
//!     "secs_since_epoch": 1700000000,
//!     "nanos_since_epoch": 250000000
//!   },
//!   "seq": 41,
//!   "history": [
//!     {
//!       "kind": "Enqueued",
//!       "queue": "orders",
//!       "at": {
//!         "secs_since_epoch": 1700000000,
//!         "nanos_since_epoch": 250000000
//!       }
//!     },
//!     {
//!       "kind": "Dequeued",
//!       "queue": "orders",
//!       "at": {
//!         "secs_since_epoch": 1700000000,
//!         "nanos_since_epoch": 253000000
//!       }
//!     }
//!   ],
//!   "payload": "build #7"
//! }"#);
//! let back: Envelope<String> = serde_json::from_str(&json).unwrap();
//! assert_eq!(back, env);
//! # }
//! ```
//!
//! The whole trip, from a queue in one process to a queue in another:
//!
//! ```
//! # #[cfg(feature = "serde")] {
//! use chunkq::{Envelope, EventKind, Missed, Notice, Queue};
//!
//! let a: Queue<String> = Queue::new("a");
//! let ca = a.subscribe();
//! let id = a.push("job".to_string()).unwrap();
//! let wire = serde_json::to_string(&ca.try_recv().unwrap().to_envelope()).unwrap();
//!
//! // ... in the other process:
//! let b: Queue<String> = Queue::new("b");
//! let cb = b.subscribe();
//! let env: Envelope<String> = serde_json::from_str(&wire).unwrap();
//! b.push_envelope(env).unwrap();
//! let d = cb.try_recv().unwrap();
//! assert_eq!((d.id(), d.payload().as_str()), (id, "job"));
//! let events = d.events();
//! let trail: Vec<_> = events.iter().map(|e| (e.kind(), e.queue())).collect();
//! assert_eq!(trail, [
//!     (EventKind::Enqueued, "a"),
//!     (EventKind::Dequeued, "a"),
//!     (EventKind::Enqueued, "b"),
//! ]);
//!
//! // Missed counts and notices serialize too (for metrics, say).
//! // (`abandoned` is written only when it is not 0.)
//! let mut m = Missed::default();
//! (m.expired, m.evicted) = (2, 1);
//! assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"expired":2,"evicted":1}"#);
//! m.abandoned = 3;
//! assert_eq!(
//!     serde_json::to_string(&m).unwrap(),
//!     r#"{"expired":2,"evicted":1,"abandoned":3}"#,
//! );
//! let mut n = Notice::default();
//! n.evicted = 1;
//! assert_eq!(
//!     serde_json::to_string(&n).unwrap(),
//!     r#"{"expired":0,"evicted":1,"at":{"secs_since_epoch":0,"nanos_since_epoch":0}}"#,
//! );
//! assert_eq!(serde_json::to_string(&EventKind::Dequeued).unwrap(), r#""Dequeued""#);
//! # }
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod chunk;
mod clock;
mod consumer;
mod directory;
mod engine;
mod envelope;
mod error;
mod group;
mod id;
mod item;
mod lease;
mod log;
#[cfg(feature = "metrics")]
mod metrics;
mod notice;
mod queue;
#[cfg(feature = "serde")]
mod serde_impls;
mod size;
mod stats;
mod sweeper;
mod sync;
mod wait;

pub use clock::Clock;
pub use consumer::{Consumer, Missed, Prefetch, Received, Wait};
pub use engine::Overflow;
pub use envelope::{Delivery, Envelope};
pub use error::{
    ConfigError, PushBatchError, PushError, PushTimeoutError, RecvError, RecvTimeoutError,
    TryRecvError,
};
pub use group::Start;
pub use item::{Event, EventKind, Events, Item};
pub use notice::{Notice, Notifications};
pub use queue::{
    Builder, DEFAULT_MEMORY_LIMIT, DEFAULT_SWEEP_INTERVAL, DEFAULT_TTL, FnSizer, Queue, TraitSizer,
    WeakQueue,
};
pub use size::EstimateSize;
pub use stats::{GroupStats, Stats};
pub use uuid::Uuid;

/// The README's code blocks, compiled and run as doc tests (`cargo test
/// --doc`; the feature-gated ones with their feature).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Contention counters, only under `--cfg chunkq_counters` (issue 17's
/// profile, `examples/contention.rs`); not part of the API.
#[cfg(chunkq_counters)]
#[doc(hidden)]
pub use sync::counters as __counters;

/// Entry points of white-box loom models (`loom-tests/`); only under
/// `--cfg loom`, not part of the API.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    /// See `Log::model_hint_vs_two_retirers`.
    pub fn hint_vs_two_retirers() {
        crate::log::Log::<u64>::model_hint_vs_two_retirers();
    }

    /// Runs every function the loom reclamation stand-in still holds. Call
    /// it at the end of each model execution, once every model thread is
    /// joined and every guard dropped, so that nothing deferred in one
    /// execution runs in the next.
    pub fn quiesce() {
        crate::sync::epoch::quiesce();
    }

    /// See `Log::model_missed_vs_stale_move`.
    pub fn missed_vs_stale_move() {
        crate::log::Log::<u64>::model_missed_vs_stale_move();
    }
}
