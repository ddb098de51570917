//! The smallest useful program: one producer, one consumer.
//!
//! Run with `cargo run --release --example basic_usage`.

mod cli;

use chunkq::{Overflow, PushError, Queue, TryRecvError};
use std::thread;
use std::time::Duration;

fn main() {
    cli::Args::none(
        "basic_usage",
        "usage: basic_usage\nthe basic calls of chunkq, one after the other; takes no arguments",
    );
    // A queue with the defaults: 1 MiB budget, Reject on overflow, 10-minute
    // TTL, a sweep every 30 s.
    let q: Queue<String> = Queue::new("greetings");
    let consumer = q.subscribe();

    // Push from another thread; each push returns the item's UUID.
    let producer = {
        let q = q.clone();
        thread::spawn(move || {
            for who in ["world", "chunkq", "reader"] {
                let id = q.push(format!("hello, {who}")).expect("the queue is open");
                println!("pushed   {id}");
            }
        })
    };
    producer.join().unwrap();

    // Every delivery carries the payload and its envelope.
    while let Ok(d) = consumer.try_recv() {
        println!(
            "received {} seq {} from {:?}: {:?} (history: {} event)",
            d.id(),
            d.seq(),
            d.queue(),
            d.payload(),
            d.events().len()
        );
    }
    assert_eq!(consumer.try_recv().unwrap_err(), TryRecvError::Empty);

    // A bounded queue refuses what does not fit, and hands the payload back.
    let small: Queue<Vec<u8>> = Queue::builder("small")
        .memory_limit(4 * 1024)
        .overflow(Overflow::Reject)
        .ttl(Duration::from_secs(60))
        .build()
        .expect("valid settings");
    match small.push(vec![0; 10_000]) {
        Err(PushError::TooLarge(payload)) => {
            println!(
                "refused a {}-byte payload: it is back in our hands",
                payload.len()
            )
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }

    // Closing: pushes fail, consumers drain what is left, then see Closed.
    q.push("last one".into()).unwrap();
    q.close();
    assert!(q.push("too late".into()).is_err());
    let rest: Vec<String> = consumer.iter().map(|d| d.payload().clone()).collect();
    println!("after close, drained {rest:?}");
    assert_eq!(rest, ["last one"]);
    assert_eq!(consumer.try_recv().unwrap_err(), TryRecvError::Closed);
}
