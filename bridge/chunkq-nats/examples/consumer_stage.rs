//! The consuming stage of a two-process pipeline: imports the `ORDERS`
//! stream (written by `producer_stage`) through the durable consumer
//! `billing` into a chunkq queue, and prints each order with its history:
//! enqueued and dequeued in the producer's `orders` queue, enqueued here
//! in `billing`. Stops after COUNT orders (default 10). Run it again: the
//! durable consumer remembers what was acked, so it continues from there.
//!
//! ```sh
//! cargo run -p chunkq-nats --example consumer_stage -- nats://127.0.0.1:4222 10
//! ```

use chunkq::{Queue, Start};
use chunkq_nats::{Importer, consumer_config, ensure_consumer};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    number: u64,
    item: String,
    quantity: u32,
}

/// chunkq's budget counts the heap bytes a payload owns.
impl chunkq::EstimateSize for Order {
    fn heap_size(&self) -> usize {
        self.item.capacity()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let count: usize = args.next().map_or(Ok(10), |n| n.parse())?;

    let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await?);
    let stream = js.get_stream("ORDERS").await?;
    let pull = ensure_consumer(&stream, consumer_config("billing", Start::Oldest)?).await?;

    // A small budget under Reject: a slow reader holds the importer back
    // (nothing is acked before it is in the queue).
    let billing: Queue<Order> = Queue::builder("billing").memory_limit(256 * 1024).build()?;
    let reader = billing.subscribe();
    let mut importer = Importer::new(pull, billing.clone());
    let import = tokio::spawn(async move { importer.run().await });

    // Await the reader on the same runtime as the importer (a blocking
    // recv would stop this single-threaded runtime, importer included).
    let mut read = 0;
    while read < count {
        match tokio::time::timeout(Duration::from_secs(10), reader.recv_async()).await {
            Ok(Ok(d)) => {
                print(&d);
                read += 1;
            }
            Ok(Err(_closed)) => break,
            Err(_timeout) => {
                eprintln!("nothing for 10 s; is producer_stage running?");
                break;
            }
        }
    }
    // Stop importing. What was imported (and so acked) but not read yet is
    // in the queue: read it too, or it would be lost with this process.
    billing.close();
    let stats = import.await??;
    let rest = reader.try_iter().inspect(print).count();
    println!("read {}; importer: {stats:?}", read + rest);
    Ok(())
}

fn print(d: &chunkq::Delivery<Order>) {
    let trail: Vec<String> = d
        .events()
        .iter()
        .map(|e| format!("{:?}@{}", e.kind(), e.queue()))
        .collect();
    println!("{} {:?} [{}]", d.id(), d.payload(), trail.join(" → "));
}
