//! `select!` over two consumers and a timer, with the `async` feature.
//!
//! ```sh
//! cargo run --example async_select --features async
//! ```
//!
//! A producer task pushes orders and alerts at its own pace (the alerts
//! with `push_async`, which would wait for room in the small `Reject`
//! budget instead of failing); the main task waits on both consumers and an
//! idle timer at once and prints whatever comes first. `recv_async` is
//! cancel-safe: each time one branch wins, the other branches' futures are
//! dropped, and no item is lost with them. chunkq brings no runtime: tokio
//! here is the example's choice.

mod cli;

use chunkq::Queue;
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    cli::Args::none(
        "async_select",
        "usage: async_select\na task waiting on two consumers and a timer (feature `async`); takes no arguments",
    );
    let orders: Queue<String> = Queue::new("orders");
    let alerts: Queue<String> = Queue::builder("alerts")
        .memory_limit(4096) // a few items: `push_async` waits when full
        .build()
        .expect("valid settings");
    let (order_rx, alert_rx) = (orders.subscribe(), alerts.subscribe());

    let producer = tokio::spawn({
        let (orders, alerts) = (orders.clone(), alerts.clone());
        async move {
            for i in 1..=9 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if i % 3 == 0 {
                    let alert = format!("alert #{}", i / 3);
                    alerts.push_async(alert).await.expect("alerts open");
                } else {
                    orders.push(format!("order #{i}")).expect("orders open");
                }
            }
            // A quiet spell, long enough for the idle timer to fire.
            tokio::time::sleep(Duration::from_millis(150)).await;
            orders.close();
            alerts.close();
        }
    });

    let (mut orders_open, mut alerts_open) = (true, true);
    while orders_open || alerts_open {
        tokio::select! {
            r = order_rx.recv_async(), if orders_open => match r {
                Ok(d) => println!("order:  {:<9} (seq {}, {} events)", d.payload(), d.seq(), d.events().len()),
                Err(_) => {
                    println!("orders: closed and drained");
                    orders_open = false;
                }
            },
            r = alert_rx.recv_async(), if alerts_open => match r {
                Ok(d) => println!("alert:  {:<9} (seq {})", d.payload(), d.seq()),
                Err(_) => {
                    println!("alerts: closed and drained");
                    alerts_open = false;
                }
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                println!("timer:  nothing for 100 ms");
            }
        }
    }
    producer.await.expect("the producer finished");
    println!(
        "done: missed {} orders and {} alerts",
        order_rx.missed().total(),
        alert_rx.missed().total()
    );
}
