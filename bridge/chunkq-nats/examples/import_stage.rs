//! The importing half of the round-trip test (tests/jetstream.rs), as its
//! own process: reads COUNT items from a durable JetStream consumer into a
//! chunkq queue and prints each one's envelope as a JSON line, then closes
//! the queue, prints how many more items arrived (there must be none) and
//! the importer's statistics.
//!
//! ```sh
//! cargo run -p chunkq-nats --example import_stage -- nats://127.0.0.1:4222 STREAM DURABLE COUNT [QUEUE]
//! ```
//!
//! Output, one JSON object per line:
//! `{"id":"…","created":NANOS,"seq":N,"history":[["enq","q",NANOS],…],"payload":"…"}`
//! for each item, then `{"extra":0,"stats":{…}}`. Exit status 2 when the
//! items did not all arrive within 60 seconds.

use chunkq::{EventKind, Queue, Start};
use chunkq_nats::{Importer, consumer_config, ensure_consumer};
use serde_json::json;
use std::time::{Duration, UNIX_EPOCH};
use tokio::time::{Instant, timeout_at};

fn nanos(t: std::time::SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, stream, durable, count, rest @ ..] = &args[..] else {
        eprintln!("usage: import_stage URL STREAM DURABLE COUNT [QUEUE]");
        std::process::exit(64);
    };
    let count: usize = count.parse()?;
    let queue_name = rest.first().map_or("imported", String::as_str);

    let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await?);
    let stream = js.get_stream(stream.as_str()).await?;
    let pull = ensure_consumer(&stream, consumer_config(durable, Start::Oldest)?).await?;
    let queue: Queue<String> = Queue::builder(queue_name).memory_limit(64 << 20).build()?;
    let reader = queue.subscribe();
    let mut importer = Importer::new(pull, queue.clone()).wait(Duration::from_millis(100));
    let monitor = importer.monitor();
    let task = tokio::spawn(async move { importer.run().await });

    // Await the items on the importer's runtime; print as they arrive.
    let deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..count {
        let Ok(Ok(d)) = timeout_at(deadline, reader.recv_async()).await else {
            eprintln!("import_stage: not all {count} items arrived in time");
            std::process::exit(2);
        };
        let history: Vec<_> = d
            .events()
            .iter()
            .map(|e| {
                let kind = if e.kind() == EventKind::Enqueued {
                    "enq"
                } else {
                    "deq"
                };
                json!([kind, e.queue(), nanos(e.at())])
            })
            .collect();
        let line = json!({
            "id": d.id().to_string(),
            "created": nanos(d.created()),
            "seq": d.seq(),
            "history": history,
            "payload": d.payload(),
        });
        println!("{line}");
    }
    // Stop the importer, then count whatever else had arrived.
    queue.close();
    task.await??;
    let extra = reader.try_iter().count();
    let s = monitor.stats();
    println!(
        "{}",
        json!({"extra": extra, "stats": {
            "imported": s.imported, "duplicates": s.duplicates, "full_waits": s.full_waits,
            "malformed": s.malformed, "fetch_errors": s.fetch_errors, "ack_errors": s.ack_errors,
        }})
    );
    Ok(())
}
