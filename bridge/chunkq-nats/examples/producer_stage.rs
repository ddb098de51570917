//! The producing stage of a two-process pipeline: pushes orders into a
//! chunkq queue and exports them into the JetStream stream `ORDERS`
//! (created with the queue's retention when missing). Run
//! `consumer_stage` in another terminal to import them.
//!
//! ```sh
//! nats-server -js &                       # any server with JetStream
//! cargo run -p chunkq-nats --example producer_stage -- nats://127.0.0.1:4222 10
//! cargo run -p chunkq-nats --example consumer_stage -- nats://127.0.0.1:4222 10
//! ```

use chunkq::{Overflow, Queue};
use chunkq_nats::{Exporter, ensure_stream, stream_config};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What travels: any `Serialize + Deserialize` type (the JSON codec).
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
    let count: u64 = args.next().map_or(Ok(10), |n| n.parse())?;

    let orders: Queue<Order> = Queue::builder("orders")
        .memory_limit(4 << 20)
        .ttl(Duration::from_secs(3600))
        .overflow(Overflow::Reject)
        .build()?;
    // The exporter is one consumer of the queue; others may read it too.
    let to_nats = orders.subscribe();

    let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await?);
    ensure_stream(
        &js,
        stream_config("ORDERS", "orders", &orders, Overflow::Reject),
    )
    .await?;
    let mut exporter = Exporter::new(js, "orders", to_nats);
    let monitor = exporter.monitor();
    let export = tokio::spawn(async move { exporter.run().await });

    for number in 0..count {
        let order = Order {
            number,
            item: format!("widget-{}", number % 7),
            quantity: (number % 5 + 1) as u32,
        };
        let id = orders.push(order).map_err(|e| e.to_string())?;
        println!("pushed order {number} as {id}");
    }
    // Closing ends the export once everything is acknowledged by JetStream.
    orders.close();
    let stats = export.await??;
    println!(
        "exported {} (retries {}, duplicates {}), missed: {} expired, {} evicted",
        stats.exported, stats.retries, stats.duplicates, stats.missed_expired, stats.missed_evicted
    );
    println!("monitor agrees: {:?}", monitor.stats());
    Ok(())
}
