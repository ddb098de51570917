//! chunkq settings → JetStream stream and consumer settings.

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};
use async_nats::jetstream::{Context, context, stream::ConsumerError};
use chunkq::{Overflow, Queue, Start};
use futures_util::StreamExt;
use std::error::Error;
use std::fmt;
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
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let Some(server) = chunkq_nats::__testing::Server::start_or_skip("ensure_stream") else { return Ok(()) };
/// # let url = server.url();
/// use chunkq::{Overflow, Queue};
/// let q: Queue<String> = Queue::new("orders");
/// let js = async_nats::jetstream::new(async_nats::connect(&url).await?);
/// let cfg = chunkq_nats::stream_config("ORDERS", "orders", &q, Overflow::Reject);
/// let mut stream = chunkq_nats::ensure_stream(&js, cfg.clone()).await?;
/// assert_eq!(stream.info().await?.config.max_bytes, cfg.max_bytes);
/// // A second call finds the same stream.
/// chunkq_nats::ensure_stream(&js, cfg).await?;
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
/// | `Start::Seq(n)` | refused ([`StartError::SeqNeedsStream`]): `n` numbers the items of a chunkq queue, from 0, while the stream numbers all its messages, of every subject, from 1; [`consumer_config_in`] maps it through the `Chunkq-Seq` headers |
/// | `Start::Since(t)` | `deliver_policy: by_start_time`, `opt_start_time: t` (`all` if `t` is out of the server's range) |
/// | delivered once per group | `ack_policy: explicit`, `ack_wait` 30 s, then redelivered |
///
/// # Errors
/// [`StartError::SeqNeedsStream`] for `Start::Seq(n)`, which only the
/// stream's contents can map.
///
/// # Examples
///
/// ```
/// use async_nats::jetstream::consumer::DeliverPolicy;
/// use chunkq::Start;
/// use chunkq_nats::StartError;
/// let c = chunkq_nats::consumer_config("billing", Start::Latest).unwrap();
/// assert_eq!(c.durable_name.as_deref(), Some("billing"));
/// assert_eq!(c.deliver_policy, DeliverPolicy::New);
/// let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
/// let c = chunkq_nats::consumer_config("billing", Start::Since(t)).unwrap();
/// assert!(matches!(c.deliver_policy, DeliverPolicy::ByStartTime { .. }));
/// let e = chunkq_nats::consumer_config("billing", Start::Seq(42)).unwrap_err();
/// assert!(matches!(e, StartError::SeqNeedsStream(42)));
/// assert!(e.to_string().contains("consumer_config_in"));
/// ```
pub fn consumer_config(durable: &str, start: Start) -> Result<pull::Config, StartError> {
    let deliver_policy = match start {
        Start::Oldest => DeliverPolicy::All,
        Start::Latest => DeliverPolicy::New,
        Start::Seq(n) => return Err(StartError::SeqNeedsStream(n)),
        Start::Since(t) => {
            let nanos = match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
                Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
            };
            async_nats::datetime::from_nanos(nanos).map_or(DeliverPolicy::All, |start_time| {
                DeliverPolicy::ByStartTime { start_time }
            })
        }
        // A start position a later chunkq adds (`Start` is
        // `#[non_exhaustive]`) has no mapping here yet.
        other => return Err(StartError::Unsupported(other)),
    };
    Ok(pull::Config {
        durable_name: Some(durable.to_string()),
        deliver_policy,
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        ..Default::default()
    })
}

/// [`consumer_config`] for the messages of `subject` in `stream`, with
/// every [`Start`] mapped, `Start::Seq(n)` included: the consumer starts
/// at the first message of `subject` whose `Chunkq-Seq` header (the
/// item's sequence number in the queue it was exported from) is `n` or
/// more (`deliver_policy: by_start_sequence` at that message's stream
/// sequence), or, when there is none yet, at the next message stored.
/// Every message of `subject` whose `Chunkq-Seq` is at least `n` is then
/// delivered (a retried publish can land after later ones, so a few below
/// `n` may come along); messages without the header are skipped over.
///
/// `subject` must be one queue's export (its sequence numbers are the ones
/// `n` counts in); it becomes the consumer's `filter_subject`. The search
/// reads the headers of the subject's messages up to that one (a
/// temporary consumer, headers only), once per call; an existing durable
/// keeps its own position whatever this returns.
///
/// # Errors
/// [`StartError::Scan`] when reading the stream failed.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let Some(server) = chunkq_nats::__testing::Server::start_or_skip("consumer_config_in") else { return Ok(()) };
/// # let url = server.url();
/// use async_nats::jetstream::consumer::DeliverPolicy;
/// use chunkq::{Overflow, Queue, Start};
/// use chunkq_nats::*;
///
/// let js = async_nats::jetstream::new(async_nats::connect(&url).await?);
/// let q: Queue<u32> = Queue::new("ticks");
/// let stream = ensure_stream(&js, stream_config("TICKS", "ticks.>", &q, Overflow::Reject)).await?;
/// // Something else on the stream first: stream sequences 1 and 2.
/// js.publish("ticks.other", "x".into()).await?.await?;
/// js.publish("ticks.other", "y".into()).await?.await?;
/// let c = q.subscribe();
/// q.push_batch(0..10).unwrap(); // sequence numbers 0..=9 in `ticks`
/// q.close();
/// Exporter::new(js.clone(), "ticks.q", c).run().await?;
///
/// let cfg = consumer_config_in(&stream, "ticks.q", "from-7", Start::Seq(7)).await?;
/// // Item 7 of the queue is the stream's message 10.
/// assert_eq!(cfg.deliver_policy, DeliverPolicy::ByStartSequence { start_sequence: 10 });
/// assert_eq!(cfg.filter_subject, "ticks.q");
/// # Ok(())
/// # }
/// ```
pub async fn consumer_config_in(
    stream: &stream::Stream,
    subject: &str,
    durable: &str,
    start: Start,
) -> Result<pull::Config, StartError> {
    let mut config = match start {
        Start::Seq(n) => {
            let start_sequence = start_sequence(stream, subject, n).await?;
            let mut c = consumer_config(durable, Start::Oldest)?;
            c.deliver_policy = DeliverPolicy::ByStartSequence { start_sequence };
            c
        }
        other => consumer_config(durable, other)?,
    };
    config.filter_subject = subject.to_string();
    Ok(config)
}

/// The stream sequence of the first message of `subject` whose
/// `Chunkq-Seq` is at least `n`, or the one after the last stored.
async fn start_sequence(stream: &stream::Stream, subject: &str, n: u64) -> Result<u64, StartError> {
    let last_before = stream
        .get_info()
        .await
        .map_err(|e| StartError::Scan(e.into()))?
        .state
        .last_sequence;
    let scanner = stream
        .create_consumer(pull::Config {
            filter_subject: subject.to_string(),
            headers_only: true,
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(60),
            memory_storage: true,
            ..Default::default()
        })
        .await
        .map_err(|e| StartError::Scan(e.into()))?;
    let found = first_at_or_after(&scanner, n).await;
    // Gone after `inactive_threshold` anyway; deleting it is tidier.
    let _ = stream.delete_consumer(&scanner.cached_info().name).await;
    let (found, last_seen) = found.map_err(StartError::Scan)?;
    Ok(found.unwrap_or(last_before.max(last_seen) + 1))
}

/// Reads `scanner` (headers only, no acks) until a message whose
/// `Chunkq-Seq` is at least `n`: its stream sequence (if any), and the
/// stream sequence of the last message read.
async fn first_at_or_after(
    scanner: &PullConsumer,
    n: u64,
) -> Result<(Option<u64>, u64), async_nats::Error> {
    let mut last_seen = 0;
    loop {
        // No wait: what is stored now, then the end of the batch.
        let mut batch = scanner.fetch().max_messages(1024).messages().await?;
        let mut got = 0;
        while let Some(m) = batch.next().await {
            let m = match m {
                Ok(m) => m,
                Err(e) if got == 0 => return Err(e),
                Err(_) => break,
            };
            got += 1;
            last_seen = m.info()?.stream_sequence;
            let seq = m
                .headers
                .as_ref()
                .and_then(|h| h.get(crate::headers::SEQ))
                .and_then(|v| v.as_str().trim().parse::<u64>().ok());
            if seq.is_some_and(|s| s >= n) {
                return Ok((Some(last_seen), last_seen));
            }
        }
        if got == 0 {
            return Ok((None, last_seen));
        }
    }
}

/// A [`Start`] that cannot be turned into a consumer configuration.
///
/// # Examples
///
/// ```
/// let e = chunkq_nats::StartError::SeqNeedsStream(5);
/// assert!(e.to_string().starts_with("Start::Seq(5)"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// `Start::Seq(n)` given to [`consumer_config`]: `n` is a sequence
    /// number in a chunkq queue, which the stream does not number (use
    /// [`consumer_config_in`]).
    SeqNeedsStream(u64),
    /// Reading the stream's messages to map `Start::Seq` failed.
    Scan(async_nats::Error),
    /// A start position this bridge has no mapping for (one a later
    /// chunkq adds: `Start` is `#[non_exhaustive]`).
    Unsupported(Start),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::SeqNeedsStream(n) => write!(
                f,
                "Start::Seq({n}) is a sequence number in a chunkq queue (from 0), not a stream \
                 sequence (from 1, over every subject): map it through the stream's Chunkq-Seq \
                 headers with consumer_config_in"
            ),
            StartError::Scan(e) => write!(f, "reading the stream to map Start::Seq failed: {e}"),
            StartError::Unsupported(start) => {
                write!(f, "no JetStream mapping for the start position {start:?}")
            }
        }
    }
}

impl Error for StartError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StartError::SeqNeedsStream(_) | StartError::Unsupported(_) => None,
            StartError::Scan(e) => Some(&**e),
        }
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
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let Some(server) = chunkq_nats::__testing::Server::start_or_skip("ensure_consumer") else { return Ok(()) };
/// # let url = server.url();
/// use chunkq::{Overflow, Queue, Start};
/// use chunkq_nats::{consumer_config, ensure_consumer, ensure_stream, stream_config};
/// let js = async_nats::jetstream::new(async_nats::connect(&url).await?);
/// let q: Queue<String> = Queue::new("orders");
/// let stream = ensure_stream(&js, stream_config("ORDERS", "orders", &q, Overflow::Reject)).await?;
/// let mut c = ensure_consumer(&stream, consumer_config("billing", Start::Oldest)?).await?;
/// assert_eq!(c.info().await?.name, "billing");
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
