//! Items per second through the bridge on one server, beside plain
//! async-nats loops doing the same JetStream work without chunkq:
//!
//! - `plain publish`: `publish` of the same bodies, 256 acks in flight;
//! - `plain + msg-id`: the same with a `Nats-Msg-Id` header (JetStream's
//!   de-duplication, without chunkq's other headers);
//! - `chunkq export`: an [`Exporter`] draining a queue holding N items
//!   (envelope headers, `Nats-Msg-Id`, 256 acks in flight);
//! - `plain pull`: pull requests of 64, one ack per message;
//! - `chunkq import`: an [`Importer`] pushing into a queue that a task
//!   drains with `recv_async` (envelope decoded, `push_envelope_async`, ack
//!   after push).
//!
//! ```sh
//! nats-server -js -sd /tmp/js &
//! cargo run --release -p chunkq-nats --example throughput -- nats://127.0.0.1:4222 100000
//! ```
//!
//! It deletes and recreates the streams (file storage) `TP_PLAIN` and `TP_CHUNKQ`.

use async_nats::jetstream::{self, consumer::pull, stream};
use chunkq::{Overflow, Queue, Start};
use chunkq_nats::{
    Exporter, Importer, consumer_config, ensure_consumer, ensure_stream, stream_config,
};
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn rate(what: &str, n: usize, t: Duration) {
    println!(
        "{what:<14} {n:>8} items in {:>7.3} s: {:>9.0} items/s",
        t.as_secs_f64(),
        n as f64 / t.as_secs_f64()
    );
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let n: usize = args.next().map_or(Ok(100_000), |s| s.parse())?;
    let js = jetstream::new(async_nats::connect(url.as_str()).await?);
    let body = "x".repeat(64);

    // The plain loops.
    let _ = js.delete_stream("TP_PLAIN").await;
    js.create_stream(stream::Config {
        name: "TP_PLAIN".into(),
        subjects: vec!["tp.plain".into()],
        ..Default::default()
    })
    .await?;
    let json_body = bytes::Bytes::from(serde_json::to_vec(&body)?);
    let t = Instant::now();
    let mut acks = VecDeque::new();
    for _ in 0..n {
        acks.push_back(js.publish("tp.plain", json_body.clone()).await?);
        if acks.len() >= 256
            && let Some(a) = acks.pop_front()
        {
            a.await?;
        }
    }
    for a in acks {
        a.await?;
    }
    rate("plain publish", n, t.elapsed());

    // The same with a Nats-Msg-Id header: the server's de-duplication cost.
    let _ = js.delete_stream("TP_PLAIN").await;
    let plain = js
        .create_stream(stream::Config {
            name: "TP_PLAIN".into(),
            subjects: vec!["tp.plain".into()],
            ..Default::default()
        })
        .await?;
    let t = Instant::now();
    let mut acks = VecDeque::new();
    for i in 0..n {
        let mut h = async_nats::HeaderMap::new();
        h.insert(
            "Nats-Msg-Id",
            chunkq::Uuid::from_u128(i as u128 + 1).to_string().as_str(),
        );
        acks.push_back(
            js.publish_with_headers("tp.plain", h, json_body.clone())
                .await?,
        );
        if acks.len() >= 256
            && let Some(a) = acks.pop_front()
        {
            a.await?;
        }
    }
    for a in acks {
        a.await?;
    }
    rate("plain + msg-id", n, t.elapsed());

    let c = plain
        .create_consumer(pull::Config {
            durable_name: Some("tp".into()),
            ..Default::default()
        })
        .await?;
    let t = Instant::now();
    let mut got = 0;
    while got < n {
        let mut batch = c.fetch().max_messages(64).messages().await?;
        while let Some(m) = batch.next().await {
            m?.ack().await?;
            got += 1;
        }
    }
    rate("plain pull", n, t.elapsed());

    // Through chunkq.
    let q: Queue<String> = Queue::builder("tp")
        .memory_limit(1 << 30)
        .ttl(Duration::from_secs(3600))
        .sweep_interval(None)
        .build()?;
    let _ = js.delete_stream("TP_CHUNKQ").await;
    let s = ensure_stream(
        &js,
        stream_config("TP_CHUNKQ", "tp.chunkq", &q, Overflow::Reject),
    )
    .await?;
    let consumer = q.subscribe();
    for _ in 0..n {
        q.push(body.clone()).map_err(|e| e.to_string())?;
    }
    q.close();
    let t = Instant::now();
    let stats = Exporter::new(js.clone(), "tp.chunkq", consumer)
        .run()
        .await?;
    rate("chunkq export", stats.exported as usize, t.elapsed());

    let pull = ensure_consumer(&s, consumer_config("tp", Start::Oldest)?).await?;
    let dst: Queue<String> = Queue::builder("tp-in")
        .memory_limit(64 << 20)
        .sweep_interval(None)
        .build()?;
    let reader = dst.subscribe();
    let t = Instant::now();
    let mut importer = Importer::new(pull, dst.clone()).batch(256);
    let import = tokio::spawn(async move { importer.run().await });
    let read = tokio::spawn(async move {
        let mut k = 0;
        while k < n
            && let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_secs(30), reader.recv_async()).await
        {
            k += 1;
        }
        k
    })
    .await?;
    rate("chunkq import", read, t.elapsed());
    dst.close();
    import.await??;
    Ok(())
}
