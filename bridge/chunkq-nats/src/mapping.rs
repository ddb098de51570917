//! chunkq settings → JetStream stream and consumer settings.

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};
use async_nats::jetstream::{Context, context, stream::ConsumerError};
use chunkq::{Overflow, Queue, Start};
use std::time::Duration;

/// The duplicate window JetStream keeps `Nats-Msg-Id`s for, unless the
/// TTL is shorter (the server requires it to be at most `max_age`).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long a pulled message may stay unacked before JetStream
/// redelivers it ([`consumer_config`]'s `ack_wait`).
pub const ACK_WAIT: Duration = Duration::from_secs(30);

/// A stream configuration with the same retention as `queue`:
///
/// | chunkq | JetStream |
/// |---|---|
/// | `memory_limit` (estimated bytes) | `max_bytes` (stored message bytes) |
/// | `ttl` | `max_age` (a TTL beyond `i64::MAX` ns: none) |
/// | `Overflow::DropOldest` | `discard: old` |
/// | `Overflow::Reject` | `discard: new` (a publish to a full stream fails; the exporter retries it: backpressure) |
/// | the item's UUID | `Nats-Msg-Id`, `duplicate_window` = min(2 min, TTL) |
///
/// Named `name`, capturing `subject`, stored in files (so the stream
/// survives a server restart). The overflow policy is an argument since a
/// queue does not report it. The result is a plain [`stream::Config`]:
/// adjust any field before [`ensure_stream`].
///
/// # Examples
///
/// ```
/// use async_nats::jetstream::stream::DiscardPolicy;
/// use chunkq::{Overflow, Queue};
/// use std::time::Duration;
/// let q: Queue<String> = Queue::builder("orders")
///     .memory_limit(1 << 20)
///     .ttl(Duration::from_secs(60))
///     .build()
///     .unwrap();
/// let c = chunkq_nats::stream_config("ORDERS", "orders.>", &q, Overflow::DropOldest);
/// assert_eq!((c.max_bytes, c.max_age), (1 << 20, Duration::from_secs(60)));
/// assert_eq!(c.discard, DiscardPolicy::Old);
/// assert_eq!(c.duplicate_window, Duration::from_secs(60));
/// ```
pub fn stream_config<T: Send + Sync + 'static>(
    name: &str,
    subject: &str,
    queue: &Queue<T>,
    overflow: Overflow,
) -> stream::Config {
    let ttl = queue.ttl();
    let max_age = if ttl.as_nanos() > i64::MAX as u128 {
        Duration::ZERO
    } else {
        ttl
    };
    let duplicate_window = if max_age.is_zero() {
        DUPLICATE_WINDOW
    } else {
        DUPLICATE_WINDOW.min(max_age)
    };
    stream::Config {
        name: name.to_string(),
        subjects: vec![subject.to_string()],
        max_bytes: i64::try_from(queue.memory_limit()).unwrap_or(i64::MAX),
        max_age,
        discard: match overflow {
            Overflow::DropOldest => DiscardPolicy::Old,
            _ => DiscardPolicy::New,
        },
        duplicate_window,
        storage: StorageType::File,
        ..Default::default()
    }
}

/// A valid JetStream stream (or consumer) name made from a chunkq queue
/// name: every character JetStream refuses (`.`, `*`, `>`, `/`, `\`,
/// whitespace, control characters) becomes `_`; an empty name becomes `_`.
///
/// # Examples
///
/// ```
/// assert_eq!(chunkq_nats::stream_name("orders.eu west/2"), "orders_eu_west_2");
/// assert_eq!(chunkq_nats::stream_name(""), "_");
/// ```
pub fn stream_name(queue_name: &str) -> String {
    let s: String = queue_name
        .chars()
        .map(|c| match c {
            '.' | '*' | '>' | '/' | '\\' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect();
    if s.is_empty() { "_".into() } else { s }
}

/// Creates the stream, or returns the existing one of that name (its
/// configuration is left as it is).
///
/// # Errors
/// As [`Context::get_or_create_stream`].
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use chunkq::{Overflow, Queue};
/// let q: Queue<String> = Queue::new("orders");
/// let js = async_nats::jetstream::new(async_nats::connect("127.0.0.1:4222").await?);
/// let cfg = chunkq_nats::stream_config("ORDERS", "orders", &q, Overflow::Reject);
/// let stream = chunkq_nats::ensure_stream(&js, cfg).await?;
/// # Ok(())
/// # }
/// ```
pub async fn ensure_stream(
    js: &Context,
    config: stream::Config,
) -> Result<stream::Stream, context::CreateStreamError> {
    js.get_or_create_stream(config).await
}

/// A durable pull consumer for a chunkq consumer group: clones of one
/// chunkq consumer share a cursor and split the items, as the importers
/// pulling from one durable JetStream consumer do; independent chunkq
/// consumers are distinct durables.
///
/// | chunkq | JetStream |
/// |---|---|
/// | a consumer group | a durable pull consumer named `durable` |
/// | `Start::Oldest` | `deliver_policy: all` |
/// | `Start::Latest` | `deliver_policy: new` |
/// | `Start::Seq(n)` | `deliver_policy: by_start_sequence`, `opt_start_seq: n` (the stream's own sequence numbers, from 1; 0 is taken as 1) |
/// | `Start::Since(t)` | `deliver_policy: by_start_time`, `opt_start_time: t` (`all` if `t` is out of the server's range) |
/// | delivered once per group | `ack_policy: explicit`, `ack_wait` 30 s, then redelivered |
///
/// # Examples
///
/// ```
/// use async_nats::jetstream::consumer::DeliverPolicy;
/// use chunkq::Start;
/// let c = chunkq_nats::consumer_config("billing", Start::Latest);
/// assert_eq!(c.durable_name.as_deref(), Some("billing"));
/// assert_eq!(c.deliver_policy, DeliverPolicy::New);
/// let c = chunkq_nats::consumer_config("billing", Start::Seq(42));
/// assert_eq!(c.deliver_policy, DeliverPolicy::ByStartSequence { start_sequence: 42 });
/// let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
/// let c = chunkq_nats::consumer_config("billing", Start::Since(t));
/// assert!(matches!(c.deliver_policy, DeliverPolicy::ByStartTime { .. }));
/// ```
pub fn consumer_config(durable: &str, start: Start) -> pull::Config {
    pull::Config {
        durable_name: Some(durable.to_string()),
        deliver_policy: match start {
            Start::Oldest => DeliverPolicy::All,
            Start::Latest => DeliverPolicy::New,
            Start::Seq(n) => DeliverPolicy::ByStartSequence {
                start_sequence: n.max(1),
            },
            Start::Since(t) => {
                let nanos = match t.duration_since(std::time::UNIX_EPOCH) {
                    Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
                    Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
                };
                async_nats::datetime::from_nanos(nanos).map_or(DeliverPolicy::All, |start_time| {
                    DeliverPolicy::ByStartTime { start_time }
                })
            }
        },
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        ..Default::default()
    }
}

/// Creates the durable consumer on `stream`, or returns the existing one
/// of that name.
///
/// # Errors
/// As [`stream::Stream::get_or_create_consumer`] (a configuration without
/// a durable name is refused by the server).
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use chunkq::Start;
/// let js = async_nats::jetstream::new(async_nats::connect("127.0.0.1:4222").await?);
/// let stream = js.get_stream("ORDERS").await?;
/// let c = chunkq_nats::ensure_consumer(&stream, chunkq_nats::consumer_config("billing", Start::Oldest)).await?;
/// # Ok(())
/// # }
/// ```
pub async fn ensure_consumer(
    stream: &stream::Stream,
    config: pull::Config,
) -> Result<PullConsumer, ConsumerError> {
    let name = config
        .durable_name
        .clone()
        .or_else(|| config.name.clone())
        .unwrap_or_default();
    stream.get_or_create_consumer(&name, config).await
}
