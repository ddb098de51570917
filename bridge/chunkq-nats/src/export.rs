//! chunkq → JetStream.

use crate::backoff::Backoff;
use crate::codec::{Codec, CodecError, Json};
use crate::headers;
use async_nats::Subject;
use async_nats::jetstream::Context;
use async_nats::jetstream::context::{PublishAckFuture, PublishError};
use bytes::Bytes;
use chunkq::{Consumer, Delivery, TryRecvError};
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What an [`Exporter`] has done so far.
///
/// # Examples
///
/// ```
/// let s = chunkq_nats::ExportStats::default();
/// assert_eq!((s.exported, s.retries, s.missed_expired, s.missed_evicted), (0, 0, 0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Deliveries whose publish JetStream acknowledged (stored, or already
    /// stored: see `duplicates`).
    pub exported: u64,
    /// Of `exported`, those JetStream reported as duplicates of an earlier
    /// publish with the same `Nats-Msg-Id` (a retry whose first attempt
    /// had in fact been stored).
    pub duplicates: u64,
    /// Publishes sent again after an error or a timeout.
    pub retries: u64,
    /// Items the exporter's consumer never read because they expired in
    /// chunkq ([`chunkq::Missed::expired`]).
    pub missed_expired: u64,
    /// Items the exporter's consumer never read because they were evicted
    /// in chunkq ([`chunkq::Missed::evicted`]).
    pub missed_evicted: u64,
}

#[derive(Default)]
struct Counters {
    exported: AtomicU64,
    duplicates: AtomicU64,
    retries: AtomicU64,
    missed_expired: AtomicU64,
    missed_evicted: AtomicU64,
}

/// A handle to read an [`Exporter`]'s statistics while it runs.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let Some(server) = chunkq_nats::__testing::Server::start_or_skip("export_monitor") else { return Ok(()) };
/// # let url = server.url();
/// use chunkq::{Overflow, Queue};
/// use chunkq_nats::{Exporter, ensure_stream, stream_config};
/// let js = async_nats::jetstream::new(async_nats::connect(&url).await?);
/// let q: Queue<String> = Queue::new("orders");
/// ensure_stream(&js, stream_config("ORDERS", "orders", &q, Overflow::Reject)).await?;
/// let mut exporter = Exporter::new(js, "orders", q.subscribe());
/// let monitor = exporter.monitor();
/// let task = tokio::spawn(async move { exporter.run().await });
/// q.push_batch(["a".to_string(), "b".into(), "c".into()]).unwrap();
/// println!("{monitor:?}"); // while it runs
/// q.close();
/// task.await??;
/// assert_eq!(monitor.stats().exported, 3);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ExportMonitor(Arc<Counters>);

impl ExportMonitor {
    /// The statistics now.
    pub fn stats(&self) -> ExportStats {
        let c = &self.0;
        ExportStats {
            exported: c.exported.load(Relaxed),
            duplicates: c.duplicates.load(Relaxed),
            retries: c.retries.load(Relaxed),
            missed_expired: c.missed_expired.load(Relaxed),
            missed_evicted: c.missed_evicted.load(Relaxed),
        }
    }
}

impl fmt::Debug for ExportMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.stats().fmt(f)
    }
}

/// One publish whose ack is awaited.
struct InFlight<T> {
    delivery: Delivery<T>,
    body: Bytes,
    ack: Result<PublishAckFuture, PublishError>,
}

/// Drains a chunkq consumer (or one member of a group) into a JetStream
/// subject: one message per delivery, the envelope in headers
/// ([`crate::headers`]), the payload in the body through a [`Codec`].
///
/// A delivery counts as exported when JetStream acknowledged its publish.
/// A failed or timed-out publish is sent again, with the same
/// `Nats-Msg-Id`, after a [`Backoff`]; JetStream stores it once. Up to
/// [`Exporter::max_in_flight`] publishes await their acks at a time; they
/// are stored in order unless one fails while later ones succeed (set it
/// to 1 for strict order across failures).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let Some(server) = chunkq_nats::__testing::Server::start_or_skip("exporter") else { return Ok(()) };
/// # let url = server.url();
/// use chunkq::{Overflow, Queue};
/// use chunkq_nats::{Exporter, ensure_stream, stream_config};
/// let q: Queue<String> = Queue::new("orders");
/// let consumer = q.subscribe();
/// let js = async_nats::jetstream::new(async_nats::connect(&url).await?);
/// ensure_stream(&js, stream_config("ORDERS", "orders.>", &q, Overflow::Reject)).await?;
/// q.push("first".into()).unwrap();
/// q.close(); // run() returns once the closed queue is drained and acked
/// let stats = Exporter::new(js, "orders.in", consumer).run().await?;
/// assert_eq!(stats.exported, 1);
/// # Ok(())
/// # }
/// ```
pub struct Exporter<T: Send + Sync + 'static, C = Json> {
    js: Context,
    subject: Subject,
    consumer: Consumer<T>,
    codec: C,
    max_in_flight: usize,
    backoff: Backoff,
    counters: Arc<Counters>,
}

impl<T: Send + Sync + 'static> Exporter<T, Json> {
    /// An exporter of `consumer`'s deliveries to `subject` (which a stream
    /// must capture: see [`crate::stream_config`]), with the [`Json`]
    /// codec, 256 publishes in flight and the default [`Backoff`].
    pub fn new(js: Context, subject: impl Into<String>, consumer: Consumer<T>) -> Self {
        Exporter {
            js,
            subject: Subject::from(subject.into()),
            consumer,
            codec: Json,
            max_in_flight: 256,
            backoff: Backoff::default(),
            counters: Arc::default(),
        }
    }
}

impl<T: Send + Sync + 'static, C: Codec<T>> Exporter<T, C> {
    /// Uses `codec` for the payloads (e.g. [`crate::Raw`] for bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let Some(server) = chunkq_nats::__testing::Server::start_or_skip("export_codec") else { return Ok(()) };
    /// # let url = server.url();
    /// use chunkq::{Overflow, Queue};
    /// use chunkq_nats::{Exporter, Raw, ensure_stream, stream_config};
    /// let js = async_nats::jetstream::new(async_nats::connect(&url).await?);
    /// let q: Queue<Vec<u8>> = Queue::new("blobs");
    /// let stream = ensure_stream(&js, stream_config("BLOBS", "blobs", &q, Overflow::Reject)).await?;
    /// let c = q.subscribe();
    /// q.push(vec![0, 255]).unwrap();
    /// q.close();
    /// Exporter::new(js, "blobs", c).codec(Raw).run().await?;
    /// assert_eq!(&stream.get_raw_message(1).await?.payload[..], &[0, 255]); // the bytes as they are
    /// # Ok(())
    /// # }
    /// ```
    pub fn codec<D: Codec<T>>(self, codec: D) -> Exporter<T, D> {
        Exporter {
            js: self.js,
            subject: self.subject,
            consumer: self.consumer,
            codec,
            max_in_flight: self.max_in_flight,
            backoff: self.backoff,
            counters: self.counters,
        }
    }

    /// How many publishes may await their acks at once (at least 1;
    /// default 256; keep it below the context's `max_ack_inflight`, 5,000
    /// by default).
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn f(js: async_nats::jetstream::Context, c: chunkq::Consumer<u64>) {
    /// // Strict order even when a publish fails and is retried.
    /// let exporter = chunkq_nats::Exporter::new(js, "ticks", c).max_in_flight(1);
    /// # }
    /// ```
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// The waits between retries of a failed publish, and how many
    /// retries at most (default: no limit; past it, [`Exporter::run`]
    /// returns [`ExportError::GaveUp`] with the deliveries not yet acked).
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn f(js: async_nats::jetstream::Context, c: chunkq::Consumer<u64>) {
    /// let b = chunkq_nats::Backoff { max_attempts: Some(20), ..Default::default() };
    /// let exporter = chunkq_nats::Exporter::new(js, "ticks", c).backoff(b);
    /// # }
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// A handle that reads the statistics while [`Exporter::run`] runs.
    pub fn monitor(&self) -> ExportMonitor {
        ExportMonitor(self.counters.clone())
    }

    /// The statistics so far.
    pub fn stats(&self) -> ExportStats {
        self.monitor().stats()
    }

    /// Exports until the chunkq queue is closed and drained and every
    /// publish is acknowledged, then returns the statistics.
    ///
    /// With nothing in flight it awaits the consumer
    /// ([`Consumer::recv_async`]: woken by the next push or the close, no
    /// polling); otherwise it takes what the consumer holds, up to
    /// [`Exporter::max_in_flight`], and awaits the oldest ack. Stop an
    /// exporter by closing its queue: a `run` future dropped while
    /// publishes await their acks loses track of those deliveries (they
    /// may or may not have been stored); one dropped while it awaits the
    /// consumer loses nothing (the receive is cancel-safe).
    ///
    /// # Errors
    /// [`ExportError::Encode`] when the codec refuses a payload (the
    /// delivery is handed back, after the publishes before it were
    /// settled); [`ExportError::GaveUp`] when a publish still failed after
    /// [`Backoff::max_attempts`] retries (every delivery not yet acked is
    /// handed back).
    pub async fn run(&mut self) -> Result<ExportStats, ExportError<T>> {
        let mut window: VecDeque<InFlight<T>> = VecDeque::new();
        let mut closed = false;
        loop {
            // Whatever the consumer holds now, up to the window.
            while !closed && window.len() < self.max_in_flight {
                match self.consumer.try_recv() {
                    Ok(delivery) => self.send(delivery, &mut window).await?,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => closed = true,
                }
            }
            self.note_missed();
            match window.pop_front() {
                Some(f) => self.settle(f, &mut window).await?,
                None if closed => return Ok(self.stats()),
                // Nothing in flight, nothing to read: wait for the next
                // push (or the close).
                None => match self.consumer.recv_async().await {
                    Ok(delivery) => self.send(delivery, &mut window).await?,
                    Err(_) => closed = true,
                },
            }
        }
    }

    /// Encodes and publishes `delivery`, adding it to the window; on a
    /// codec error, settles the window and hands the delivery back.
    async fn send(
        &self,
        delivery: Delivery<T>,
        window: &mut VecDeque<InFlight<T>>,
    ) -> Result<(), ExportError<T>> {
        match self.codec.encode(delivery.payload()) {
            Ok(body) => {
                let ack = self.publish(&delivery, body.clone()).await;
                window.push_back(InFlight {
                    delivery,
                    body,
                    ack,
                });
                Ok(())
            }
            Err(source) => {
                while let Some(f) = window.pop_front() {
                    self.settle(f, window).await?;
                }
                self.note_missed();
                Err(ExportError::Encode { delivery, source })
            }
        }
    }

    async fn publish(
        &self,
        delivery: &Delivery<T>,
        body: Bytes,
    ) -> Result<PublishAckFuture, PublishError> {
        self.js
            .publish_with_headers(self.subject.clone(), headers::encode(delivery), body)
            .await
    }

    /// Awaits `f`'s ack, publishing it again (same headers, same
    /// `Nats-Msg-Id`) after each failure, after the backoff's wait (the
    /// one timer in the exporter: a failed publish, not an empty queue).
    async fn settle(
        &self,
        f: InFlight<T>,
        rest: &mut VecDeque<InFlight<T>>,
    ) -> Result<(), ExportError<T>> {
        let InFlight {
            delivery,
            body,
            mut ack,
        } = f;
        let mut attempt = 0;
        loop {
            let result = match ack {
                Ok(fut) => fut.await,
                Err(e) => Err(e),
            };
            match result {
                Ok(a) => {
                    self.counters.exported.fetch_add(1, Relaxed);
                    if a.duplicate {
                        self.counters.duplicates.fetch_add(1, Relaxed);
                    }
                    return Ok(());
                }
                Err(source) => {
                    attempt += 1;
                    if self.backoff.exhausted(attempt) {
                        let mut pending = vec![delivery];
                        pending.extend(rest.drain(..).map(|f| f.delivery));
                        return Err(ExportError::GaveUp { pending, source });
                    }
                    self.counters.retries.fetch_add(1, Relaxed);
                    tokio::time::sleep(self.backoff.delay(attempt)).await;
                    ack = self.publish(&delivery, body.clone()).await;
                }
            }
        }
    }

    fn note_missed(&self) {
        let m = self.consumer.missed();
        self.counters.missed_expired.store(m.expired, Relaxed);
        self.counters.missed_evicted.store(m.evicted, Relaxed);
    }
}

/// Why [`Exporter::run`] stopped before the queue was drained; the
/// deliveries not exported are handed back.
///
/// # Examples
///
/// ```
/// use chunkq::Queue;
/// use chunkq_nats::{CodecError, ExportError};
/// let q: Queue<u8> = Queue::new("a");
/// let c = q.subscribe();
/// q.push(1).unwrap();
/// let e: ExportError<u8> = ExportError::Encode {
///     delivery: c.try_recv().unwrap(),
///     source: CodecError::new("unsupported"),
/// };
/// assert_eq!(*e.into_deliveries()[0].payload(), 1);
/// ```
pub enum ExportError<T> {
    /// The codec could not encode this delivery's payload.
    Encode {
        /// The delivery, not exported.
        delivery: Delivery<T>,
        /// The codec's error.
        source: CodecError,
    },
    /// A publish still failed after the last retry.
    GaveUp {
        /// The deliveries not acknowledged, oldest first: the one that
        /// failed, then those in flight behind it (some of which may have
        /// been stored; publishing them again within the duplicate window
        /// stores nothing twice, as they keep their `Nats-Msg-Id`).
        pending: Vec<Delivery<T>>,
        /// The last error.
        source: PublishError,
    },
}

impl<T> ExportError<T> {
    /// The deliveries that were not exported.
    pub fn into_deliveries(self) -> Vec<Delivery<T>> {
        match self {
            ExportError::Encode { delivery, .. } => vec![delivery],
            ExportError::GaveUp { pending, .. } => pending,
        }
    }
}

impl<T> fmt::Debug for ExportError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Encode { delivery, source } => f
                .debug_struct("Encode")
                .field("id", &delivery.id())
                .field("source", source)
                .finish(),
            ExportError::GaveUp { pending, source } => f
                .debug_struct("GaveUp")
                .field("pending", &pending.len())
                .field("source", source)
                .finish(),
        }
    }
}

impl<T> fmt::Display for ExportError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Encode { delivery, source } => {
                write!(f, "cannot encode item {}: {source}", delivery.id())
            }
            ExportError::GaveUp { pending, source } => write!(
                f,
                "publish failed after the last retry ({} deliveries not exported): {source}",
                pending.len()
            ),
        }
    }
}

impl<T> Error for ExportError<T> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ExportError::Encode { source, .. } => Some(source),
            ExportError::GaveUp { source, .. } => Some(source),
        }
    }
}
