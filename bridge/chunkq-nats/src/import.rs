//! JetStream → chunkq.

use crate::backoff::Backoff;
use crate::codec::{Codec, Json};
use crate::headers;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::PullConsumer;
use chunkq::{Envelope, PushError, Queue};
use futures_util::{Stream, StreamExt};
use std::collections::{HashSet, VecDeque};
use std::error::Error;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;

/// What an [`Importer`] has done so far.
///
/// # Examples
///
/// ```
/// let s = chunkq_nats::ImportStats::default();
/// assert_eq!((s.imported, s.duplicates, s.malformed), (0, 0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Messages pushed into the queue (and then acked).
    pub imported: u64,
    /// Redelivered messages whose publish id
    /// ([`crate::headers::publish_id`]) this importer had already pushed:
    /// acked, not pushed again.
    pub duplicates: u64,
    /// Messages whose push found the queue full (`Overflow::Reject`) and
    /// waited for room ([`chunkq::Queue::push_envelope_async`]:
    /// backpressure; the message was not acked meanwhile). One per message
    /// however long it waited.
    pub full_waits: u64,
    /// Messages without valid chunkq headers, or whose body the codec
    /// rejected: terminated (`+TERM`, JetStream will not redeliver them;
    /// they stay in the stream), never pushed.
    pub malformed: u64,
    /// Pull requests that failed (retried after a [`Backoff`]).
    pub fetch_errors: u64,
    /// Acks that could not be sent after a successful push (the message
    /// will be redelivered and then counted in `duplicates`).
    pub ack_errors: u64,
}

#[derive(Default)]
struct Counters {
    imported: AtomicU64,
    duplicates: AtomicU64,
    full_waits: AtomicU64,
    malformed: AtomicU64,
    fetch_errors: AtomicU64,
    ack_errors: AtomicU64,
}

/// A handle to read an [`Importer`]'s statistics while it runs.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let Some(server) = chunkq_nats::__testing::Server::start_or_skip("import_monitor") else { return Ok(()) };
/// # let url = server.url();
/// use chunkq::{Overflow, Queue, Start};
/// use chunkq_nats::*;
/// let js = async_nats::jetstream::new(async_nats::connect(&url).await?);
/// let out: Queue<String> = Queue::new("orders");
/// let stream = ensure_stream(&js, stream_config("ORDERS", "orders", &out, Overflow::Reject)).await?;
/// let c = out.subscribe();
/// out.push_batch(["a".to_string(), "b".into()]).unwrap();
/// out.close();
/// Exporter::new(js, "orders", c).run().await?;
///
/// let inbox: Queue<String> = Queue::new("inbox");
/// let reader = inbox.subscribe();
/// let pull = ensure_consumer(&stream, consumer_config("inbox", Start::Oldest)?).await?;
/// let mut importer = Importer::new(pull, inbox.clone());
/// let monitor = importer.monitor();
/// let task = tokio::spawn(async move { importer.run().await });
/// reader.recv_async().await?;
/// reader.recv_async().await?;
/// inbox.close();
/// task.await??;
/// assert_eq!(monitor.stats().imported, 2);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ImportMonitor(Arc<Counters>);

impl ImportMonitor {
    /// The statistics now.
    pub fn stats(&self) -> ImportStats {
        let c = &self.0;
        ImportStats {
            imported: c.imported.load(Relaxed),
            duplicates: c.duplicates.load(Relaxed),
            full_waits: c.full_waits.load(Relaxed),
            malformed: c.malformed.load(Relaxed),
            fetch_errors: c.fetch_errors.load(Relaxed),
            ack_errors: c.ack_errors.load(Relaxed),
        }
    }
}

impl fmt::Debug for ImportMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.stats().fmt(f)
    }
}

/// The publish ids most recently pushed, to recognise redeliveries: the
/// same rule as the exporter's `Nats-Msg-Id`, so two copies of one item
/// exported from two queues are two items here too.
struct Recent {
    set: HashSet<String>,
    order: VecDeque<String>,
    cap: usize,
}

impl Recent {
    fn insert(&mut self, id: String) {
        if self.cap > 0 && self.set.insert(id.clone()) {
            self.order.push_back(id);
            if self.order.len() > self.cap
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

/// Reads a durable JetStream pull consumer into a chunkq queue with
/// [`Queue::push_envelope_async`]: each item keeps its UUID, creation time
/// and history, and the queue appends its own enqueue.
///
/// A message is acked only after its push succeeded. When the queue is
/// full (`Overflow::Reject`) the push awaits room (woken by the queue's
/// readers, its expiry or its close; no timer, no retry loop) while the
/// message stays unacked (its ack deadline is extended with `+WPI` about
/// every second). A redelivered
/// message whose publish id ([`crate::headers::publish_id`]: the item's
/// UUID, history length, sequence number and source queue, what the
/// exporter sent as `Nats-Msg-Id`) this importer pushed already (its ack
/// was lost) is acked and not pushed twice; copies of one item exported
/// from different queues have different publish ids and are all pushed.
/// When the queue is closed, [`Importer::run`] naks the messages it holds
/// (JetStream redelivers them) and returns.
///
/// # Examples
///
/// A blocking `reader.recv()` here would stop the (single-threaded)
/// runtime that runs the importer: await the reader instead
/// (`recv_async`, the `async` feature of chunkq), or read on another
/// thread.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let Some(server) = chunkq_nats::__testing::Server::start_or_skip("importer") else { return Ok(()) };
/// # let url = server.url();
/// use chunkq::{Overflow, Queue, Start};
/// use chunkq_nats::{Exporter, Importer, consumer_config, ensure_consumer, ensure_stream, stream_config};
/// let js = async_nats::jetstream::new(async_nats::connect(&url).await?);
/// # let orders: Queue<String> = Queue::new("orders");
/// # ensure_stream(&js, stream_config("ORDERS", "orders", &orders, Overflow::Reject)).await?;
/// # let c = orders.subscribe();
/// # let sent = orders.push("order 1".into()).unwrap();
/// # orders.close();
/// # Exporter::new(js.clone(), "orders", c).run().await?;
/// // A stream ORDERS that an exporter writes into.
/// let stream = js.get_stream("ORDERS").await?;
/// let pull = ensure_consumer(&stream, consumer_config("billing", Start::Oldest)?).await?;
/// let q: Queue<String> = Queue::new("billing");
/// let reader = q.subscribe();
/// let importer = {
///     let q = q.clone();
///     tokio::spawn(async move { Importer::new(pull, q).run().await })
/// };
/// let d = reader.recv_async().await?; // the item, with its original UUID and history
/// println!("{} {:?}", d.id(), d.events());
/// # assert_eq!(d.id(), sent);
/// q.close(); // stops the importer
/// importer.await??;
/// # Ok(())
/// # }
/// ```
pub struct Importer<T: Send + Sync + 'static, C = Json> {
    consumer: PullConsumer,
    queue: Queue<T>,
    codec: C,
    batch: usize,
    wait: Duration,
    backoff: Backoff,
    recent: Recent,
    counters: Arc<Counters>,
}

/// How often a message waiting for room tells JetStream it is in progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

impl<T: Send + Sync + 'static> Importer<T, Json> {
    /// An importer from `consumer` into `queue`, with the [`Json`] codec,
    /// pulls of up to 64 messages, 500 ms waits on an empty stream, and
    /// the 65,536 most recent publish ids remembered.
    pub fn new(consumer: PullConsumer, queue: Queue<T>) -> Self {
        Importer {
            consumer,
            queue,
            codec: Json,
            batch: 64,
            wait: Duration::from_millis(500),
            backoff: Backoff::default(),
            recent: Recent {
                set: HashSet::new(),
                order: VecDeque::new(),
                cap: 65_536,
            },
            counters: Arc::default(),
        }
    }
}

impl<T: Send + Sync + 'static, C: Codec<T>> Importer<T, C> {
    /// Uses `codec` for the payloads (it must match the exporter's).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(c: async_nats::jetstream::consumer::PullConsumer, q: chunkq::Queue<Vec<u8>>) {
    /// let importer = chunkq_nats::Importer::new(c, q).codec(chunkq_nats::Raw);
    /// # }
    /// ```
    pub fn codec<D: Codec<T>>(self, codec: D) -> Importer<T, D> {
        Importer {
            consumer: self.consumer,
            queue: self.queue,
            codec,
            batch: self.batch,
            wait: self.wait,
            backoff: self.backoff,
            recent: self.recent,
            counters: self.counters,
        }
    }

    /// At most `n` messages per pull request (at least 1; default 64).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(c: async_nats::jetstream::consumer::PullConsumer, q: chunkq::Queue<u8>) {
    /// let importer = chunkq_nats::Importer::new(c, q).batch(8);
    /// # }
    /// ```
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// How long one pull request waits on an empty stream (default
    /// 500 ms); also how soon an idle importer notices a closed queue.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(c: async_nats::jetstream::consumer::PullConsumer, q: chunkq::Queue<u8>) {
    /// let importer = chunkq_nats::Importer::new(c, q).wait(std::time::Duration::from_millis(100));
    /// # }
    /// ```
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait.max(Duration::from_millis(1));
        self
    }

    /// The waits after a failed pull request, and how many retries at most
    /// (default: no limit; past it, [`Importer::run`] returns
    /// [`ImportError`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(c: async_nats::jetstream::consumer::PullConsumer, q: chunkq::Queue<u8>) {
    /// let b = chunkq_nats::Backoff { max_attempts: Some(10), ..Default::default() };
    /// let importer = chunkq_nats::Importer::new(c, q).backoff(b);
    /// # }
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How many recently pushed publish ids to remember to recognise
    /// redeliveries (default 65,536; 0 turns the check off). Keep it above
    /// the number of messages that may be unacked at once.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(c: async_nats::jetstream::consumer::PullConsumer, q: chunkq::Queue<u8>) {
    /// let importer = chunkq_nats::Importer::new(c, q).dedup_capacity(1 << 20);
    /// # }
    /// ```
    pub fn dedup_capacity(mut self, n: usize) -> Self {
        self.recent.cap = n;
        while self.recent.order.len() > n {
            if let Some(old) = self.recent.order.pop_front() {
                self.recent.set.remove(&old);
            }
        }
        self
    }

    /// A handle that reads the statistics while [`Importer::run`] runs.
    pub fn monitor(&self) -> ImportMonitor {
        ImportMonitor(self.counters.clone())
    }

    /// The statistics so far.
    pub fn stats(&self) -> ImportStats {
        self.monitor().stats()
    }

    /// Imports until the queue is closed, then returns the statistics.
    ///
    /// Dropping the future loses nothing: a message in hand is not acked,
    /// so JetStream redelivers it after the consumer's `ack_wait` (it may
    /// already have been pushed; a later importer cannot tell, so an item
    /// can then arrive twice in different queues, never twice in one
    /// importer's queue).
    ///
    /// # Errors
    /// [`ImportError::Fetch`] when pull requests still failed after
    /// [`Backoff::max_attempts`] retries; [`ImportError::TooLarge`] when the
    /// queue refuses an item as `PushError::TooLarge`: it can never fit, so
    /// the importer hands its envelope back and naks the message rather than
    /// wait forever.
    pub async fn run(&mut self) -> Result<ImportStats, ImportError<T>> {
        let mut attempt = 0;
        loop {
            if self.queue.is_closed() {
                return Ok(self.stats());
            }
            let messages = match self.pull().await {
                Ok(m) => {
                    attempt = 0;
                    m
                }
                Err(source) => {
                    self.counters.fetch_errors.fetch_add(1, Relaxed);
                    attempt += 1;
                    if self.backoff.exhausted(attempt) {
                        return Err(ImportError::Fetch(source));
                    }
                    tokio::time::sleep(self.backoff.delay(attempt)).await;
                    continue;
                }
            };
            let mut messages = messages.into_iter();
            while let Some(m) = messages.next() {
                let outcome = self.import(m).await;
                if !matches!(outcome, Ok(true)) {
                    for m in messages {
                        let _ = m.ack_with(AckKind::Nak(None)).await;
                    }
                    return outcome.map(|_| self.stats());
                }
            }
        }
    }

    /// Whatever is available now, or else the first message within `wait`.
    async fn pull(&self) -> Result<Vec<Message>, async_nats::Error> {
        let fetch = self
            .consumer
            .fetch()
            .max_messages(self.batch)
            .messages()
            .await?;
        let out = collect(fetch, self.wait + Duration::from_secs(5)).await?;
        if !out.is_empty() {
            return Ok(out);
        }
        let one = self
            .consumer
            .batch()
            .max_messages(1)
            .expires(self.wait)
            .messages()
            .await?;
        collect(one, self.wait + Duration::from_secs(5)).await
    }

    /// Pushes one message's item and acks it; false when the queue closed.
    async fn import(&mut self, msg: Message) -> Result<bool, ImportError<T>> {
        let meta = match headers::decode(msg.headers.as_ref()) {
            Ok(meta) => meta,
            Err(_) => return Ok(self.malformed(&msg).await),
        };
        let key = meta.publish_id();
        if self.recent.set.contains(&key) {
            self.counters.duplicates.fetch_add(1, Relaxed);
            self.ack(&msg).await;
            return Ok(true);
        }
        let payload = match self.codec.decode(&msg.payload) {
            Ok(p) => p,
            Err(_) => return Ok(self.malformed(&msg).await),
        };
        let envelope = meta.with_payload(payload);
        let mut push = pin!(self.queue.push_envelope_async(envelope));
        // One poll: done unless the queue is full (`Overflow::Reject`).
        let pushed = match poll_fn(|cx| Poll::Ready(push.as_mut().poll(cx))).await {
            Poll::Ready(pushed) => pushed,
            Poll::Pending => {
                self.counters.full_waits.fetch_add(1, Relaxed);
                // Await room (the queue's readers, expiry or close wake the
                // push), telling JetStream about every second that the
                // message is in progress so it is not redelivered meanwhile.
                loop {
                    match tokio::time::timeout(PROGRESS_EVERY, push.as_mut()).await {
                        Ok(pushed) => break pushed,
                        Err(_) => {
                            let _ = msg.ack_with(AckKind::Progress).await;
                        }
                    }
                }
            }
        };
        match pushed {
            Ok(_) => {}
            Err(PushError::TooLarge(payload)) => {
                let _ = msg.ack_with(AckKind::Nak(None)).await;
                // The history went into the refused push; read it again (it
                // decoded a moment ago, so this cannot fail).
                return match headers::decode(msg.headers.as_ref()) {
                    Ok(meta) => Err(ImportError::TooLarge(Box::new(meta.with_payload(payload)))),
                    Err(_) => Ok(self.malformed(&msg).await),
                };
            }
            // `Closed`, and any refusal a later chunkq adds (`Full` never
            // comes from an async push): not imported.
            Err(_) => {
                let _ = msg.ack_with(AckKind::Nak(None)).await;
                return Ok(false);
            }
        }
        self.recent.insert(key);
        self.counters.imported.fetch_add(1, Relaxed);
        self.ack(&msg).await;
        Ok(true)
    }

    async fn ack(&self, msg: &Message) {
        if msg.ack().await.is_err() {
            self.counters.ack_errors.fetch_add(1, Relaxed);
        }
    }

    async fn malformed(&self, msg: &Message) -> bool {
        self.counters.malformed.fetch_add(1, Relaxed);
        let _ = msg.ack_with(AckKind::Term).await;
        true
    }
}

/// The messages of one pull request, until it ends or `limit` passes; an
/// error after some messages ends the batch early without losing them.
async fn collect(
    batch: impl Stream<Item = Result<Message, async_nats::Error>>,
    limit: Duration,
) -> Result<Vec<Message>, async_nats::Error> {
    let deadline = Instant::now() + limit;
    let mut batch = pin!(batch);
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, batch.next()).await {
            Ok(Some(Ok(m))) => out.push(m),
            Ok(Some(Err(e))) if out.is_empty() => return Err(e),
            Ok(Some(Err(_)) | None) | Err(_) => return Ok(out),
        }
    }
}

/// Why [`Importer::run`] stopped before its queue was closed. The
/// message concerned stays in JetStream (unacked or naked), and an item
/// that could not be pushed is handed back.
///
/// # Examples
///
/// ```
/// use chunkq::{Envelope, Uuid};
/// use chunkq_nats::ImportError;
/// let env = Envelope { id: Uuid::nil(), created: std::time::UNIX_EPOCH, seq: 0, history: vec![], payload: 7u8 };
/// let e = ImportError::TooLarge(Box::new(env));
/// assert!(e.to_string().contains("larger than the whole budget"));
/// assert_eq!(e.into_envelope().unwrap().payload, 7);
/// ```
pub enum ImportError<T> {
    /// Pull requests kept failing; the last error.
    Fetch(async_nats::Error),
    /// The queue refused this item as `PushError::TooLarge`: it is larger
    /// than the queue's whole budget, so it could never fit.
    TooLarge(Box<Envelope<T>>),
}

impl<T> ImportError<T> {
    /// The item that could not be pushed, if that is the error.
    pub fn into_envelope(self) -> Option<Envelope<T>> {
        match self {
            ImportError::TooLarge(e) => Some(*e),
            ImportError::Fetch(_) => None,
        }
    }
}

impl<T> fmt::Debug for ImportError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Fetch(e) => f.debug_tuple("Fetch").field(e).finish(),
            ImportError::TooLarge(e) => f.debug_tuple("TooLarge").field(&e.id).finish(),
        }
    }
}

impl<T> fmt::Display for ImportError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Fetch(e) => write!(f, "pulling from JetStream failed: {e}"),
            ImportError::TooLarge(e) => {
                write!(
                    f,
                    "item {} is larger than the whole budget of the queue",
                    e.id
                )
            }
        }
    }
}

impl<T> Error for ImportError<T> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ImportError::Fetch(e) => Some(&**e),
            ImportError::TooLarge(_) => None,
        }
    }
}
