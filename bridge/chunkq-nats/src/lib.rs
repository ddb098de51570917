//! A NATS JetStream bridge for [chunkq]: an [`Exporter`] drains a chunkq
//! consumer into a JetStream subject, an [`Importer`] reads a durable
//! JetStream pull consumer into a chunkq queue, and every item keeps its
//! envelope (UUID v7, creation time, history) on the way.
//!
//! # The mapping
//!
//! | chunkq | JetStream |
//! |---|---|
//! | a queue's `memory_limit` | the stream's `max_bytes` |
//! | its `ttl` | `max_age` |
//! | `Overflow::DropOldest` / `Overflow::Reject` | `discard: old` / `discard: new` |
//! | a consumer group (clones sharing a cursor) | a durable pull consumer |
//! | `Start::Oldest` / `Start::Latest` | `deliver_policy: all` / `new` |
//! | `Start::Seq(n)` (a sequence number in the exporting queue, from 0) | [`consumer_config_in`]: `by_start_sequence` at the first message whose `Chunkq-Seq` is `n` or more, found in the stream; [`consumer_config`] refuses it ([`StartError`]) |
//! | `Start::Since(t)` | `by_start_time` t |
//! | one export of an item (its UUID, history length, sequence number, source queue) | the `Nats-Msg-Id` header ([`headers::publish_id`]) |
//! | an item's UUID, creation time, sequence number, history | the `Chunkq-Id`, `Chunkq-Created`, `Chunkq-Seq`, `Chunkq-History` headers ([`headers`]) |
//! | its payload | the message body, through a [`Codec`] ([`Json`] or [`Raw`]) |
//!
//! [`stream_config`] and [`consumer_config`] build the JetStream settings
//! from chunkq's; [`ensure_stream`] and [`ensure_consumer`] create them.
//!
//! # The ack protocol
//!
//! **Export.** The exporter awaits a delivery from its chunkq consumer
//! ([`chunkq::Consumer::recv_async`]), publishes it with `Nats-Msg-Id` =
//! the publish's id (the item's UUID, the length of its history, its
//! sequence number and the queue it is exported from: a copy of the item
//! forwarded into another queue and exported from there is another
//! publish, stored too), and counts it as
//! exported only when JetStream acknowledged the publish (the message is
//! then stored). A publish that fails or times out (the server restarted,
//! the stream is full under `discard: new`, the network blipped) is sent
//! again, with the same headers, after a bounded backoff, until it is
//! acknowledged (or, with [`Backoff::max_attempts`], until `run` gives up
//! and hands the unacknowledged deliveries back in [`ExportError`]).
//! Nothing is dropped silently: items the exporter's chunkq consumer never
//! saw, because they expired or were evicted in chunkq first, are counted
//! in [`ExportStats::missed_expired`] and [`ExportStats::missed_evicted`].
//!
//! **Import.** The importer pulls messages from a durable consumer with
//! explicit acks, rebuilds each envelope from the headers, and pushes it
//! with [`chunkq::Queue::push_envelope_async`] (same UUID, creation time
//! and history; chunkq appends its own enqueue). It acks the message only
//! after the push succeeded. When the queue is full under
//! `Overflow::Reject`, the push awaits room (woken by the queue's readers,
//! no timer), leaving the message unacked (and telling JetStream it is in
//! progress), so a slow chunkq side slows the pulls down instead of losing
//! items. Malformed messages are counted
//! ([`ImportStats::malformed`]) and terminated, never pushed, never a
//! panic.
//!
//! # Why nothing is lost or duplicated
//!
//! *Lost*: an exported item is forgotten by the exporter only after
//! JetStream acknowledged storing it; a stored message leaves the durable
//! consumer only when the importer acks it, which it does only after chunkq
//! accepted the push. Any crash or restart in between leaves the item
//! where it was: unacknowledged publishes are retried, unacked messages
//! are redelivered after `ack_wait`.
//!
//! *Duplicated*: the retries are what could duplicate, and both sides
//! de-duplicate by the publish's id, not the item's UUID (copies of one
//! item exported from several queues are all kept). A publish retried
//! after its first attempt was in fact stored carries the same
//! `Nats-Msg-Id`, and
//! JetStream drops it within the stream's duplicate window (2 minutes, or
//! the TTL if shorter; [`ExportStats::duplicates`] counts them). A message
//! redelivered because its ack was lost after the push is recognised by
//! its publish id among the last pushed ones and acked without a second push
//! ([`ImportStats::duplicates`]). Outside those windows (a retry more than
//! the duplicate window after the first attempt, an importer process that
//! died between push and ack) delivery is at least once: an item may
//! appear twice, never zero times.
//!
//! *Order*: the exporter publishes in the consumer's order and the
//! importer pushes in the stream's order; only retries can reorder (a
//! retried publish lands after the ones that were in flight behind it:
//! [`Exporter::max_in_flight`] of 1 keeps the order across failures; a
//! redelivered message arrives after newer ones).
//!
//! # Example
//!
//! Two queues joined through a stream (in one process here; usually the
//! two sides are two processes). The doc tests run every example against
//! a nats-server of their own (hidden lines set `url`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let Some(server) = chunkq_nats::__testing::Server::start_or_skip("lib") else { return Ok(()) };
//! # let url = server.url();
//! use chunkq::{Overflow, Queue, Start};
//! use chunkq_nats::*;
//!
//! let js = async_nats::jetstream::new(async_nats::connect(&url).await?);
//!
//! // Producer side: a chunkq queue, a stream with the same retention.
//! let out: Queue<String> = Queue::new("orders");
//! let stream = ensure_stream(&js, stream_config("ORDERS", "orders", &out, Overflow::Reject)).await?;
//! let mut exporter = Exporter::new(js.clone(), "orders", out.subscribe());
//!
//! // Consumer side: a durable consumer into a queue.
//! let pull = ensure_consumer(&stream, consumer_config("billing", Start::Oldest)?).await?;
//! let inbox: Queue<String> = Queue::new("billing");
//! let reader = inbox.subscribe();
//! let mut importer = Importer::new(pull, inbox.clone());
//!
//! let export = tokio::spawn(async move { exporter.run().await });
//! let import = tokio::spawn(async move { importer.run().await });
//! let id = out.push("order 1".into()).unwrap();
//! let d = reader.recv_async().await?; // awaits: the runtime keeps running the bridge
//! assert_eq!(d.id(), id); // the same item: enqueued, dequeued, enqueued again
//! assert_eq!(d.events().len(), 3);
//!
//! out.close(); // the exporter returns once everything is acked
//! assert_eq!(export.await??.exported, 1);
//! inbox.close(); // the importer returns at its next look (within its `wait`)
//! assert_eq!(import.await??.imported, 1);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

#[doc(hidden)]
#[path = "testing.rs"]
pub mod __testing;
mod backoff;
mod codec;
mod export;
pub mod headers;
mod import;
mod mapping;

pub use backoff::Backoff;
pub use codec::{Codec, CodecError, Json, Raw};
pub use export::{ExportError, ExportMonitor, ExportStats, Exporter};
pub use import::{ImportError, ImportMonitor, ImportStats, Importer};
pub use mapping::{
    ACK_WAIT, DUPLICATE_WINDOW, StartError, consumer_config, consumer_config_in, ensure_consumer,
    ensure_stream, stream_config, stream_name,
};
