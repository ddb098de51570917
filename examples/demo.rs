//! A guided tour of chunkq: producers, independent consumers, a consumer
//! group, a small memory budget with `DropOldest`, a short TTL with the
//! background sweeper, notices, forwarding, and the exact per-consumer
//! totals at the end (which the demo checks).
//!
//! Run with `cargo run --release --example demo` (a second or two).

mod cli;

use chunkq::{Consumer, Overflow, PushError, Queue, Start};
use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

const BUDGET: usize = 8 * 1024;
const TTL: Duration = Duration::from_millis(300);
const SWEEP: Duration = Duration::from_millis(25);

fn main() {
    cli::Args::none(
        "demo",
        "usage: demo\na guided tour of chunkq (producers, consumers, a group, eviction, expiry, notices); takes no arguments",
    );
    let orders: Queue<String> = Queue::builder("orders")
        .memory_limit(BUDGET)
        .overflow(Overflow::DropOldest)
        .ttl(TTL)
        .sweep_interval(Some(SWEEP))
        .build()
        .expect("valid settings");
    println!("chunkq demo");
    println!("===========");
    println!(
        "queue {:?}: budget {BUDGET} bytes (DropOldest), TTL {TTL:?}, sweeper every {SWEEP:?}",
        orders.name()
    );

    // Consumers registered before the first push start at sequence 0.
    let audit = orders.subscribe(); // independent: sees every order
    let workers = orders.subscribe(); // a consumer group ...
    let worker_b = workers.clone(); // ... of two competing members
    let archive = orders.subscribe(); // independent, and lazy
    println!("consumers: audit, workers (a group of 2 clones), archive (reads late)\n");

    // What each consumer (group) received, and accepted pushes.
    let mut got: BTreeMap<&str, u64> = BTreeMap::new();
    let mut pushed = 0u64;

    // ---------------------------------------------------------------------
    println!("1. Three producers push 8 orders each, concurrently");
    let producers: Vec<_> = ["alice", "bob", "carol"]
        .into_iter()
        .map(|who| {
            let q = orders.clone();
            thread::spawn(move || {
                for n in 0..8 {
                    q.push(format!("{who}#{n}")).expect("fits the budget");
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    pushed += 24;
    let seen = payloads(&audit);
    *got.entry("audit").or_default() += seen.len() as u64;
    println!(
        "   audit    got {:>2}, in one total order: {}",
        seen.len(),
        seen.join(" ")
    );
    // The group's members work on two threads; each order goes to one.
    let (a, b) = thread::scope(|s| {
        let a = s.spawn(|| work(&workers));
        let b = s.spawn(|| work(&worker_b));
        (a.join().unwrap(), b.join().unwrap())
    });
    *got.entry("workers").or_default() += (a.len() + b.len()) as u64;
    println!("   worker a got {:>2}: {}", a.len(), a.join(" "));
    println!("   worker b got {:>2}: {}", b.len(), b.join(" "));
    println!(
        "   the group got {} orders together, none twice; archive has read nothing yet (lag {})",
        a.len() + b.len(),
        archive.lag()
    );
    memory(&orders);

    // ---------------------------------------------------------------------
    println!("\n2. A burst of 100 orders into the {BUDGET}-byte budget (DropOldest)");
    for n in 0..100 {
        orders
            .push(format!("burst#{n}"))
            .expect("DropOldest makes room");
        pushed += 1;
        // audit and the workers keep up; archive does not.
        *got.entry("audit").or_default() += audit.try_iter().count() as u64;
        *got.entry("workers").or_default() += worker_b.try_iter().count() as u64;
    }
    notices("audit", &audit);
    notices("workers", &workers);
    notices("archive", &archive);
    if let Ok(next) = archive.try_recv() {
        *got.entry("archive").or_default() += 1;
        println!(
            "   archive now reads {:?}: everything older was evicted to make room",
            next.payload()
        );
    }
    memory(&orders);
    match orders.push("x".repeat(2 * BUDGET)) {
        Err(PushError::TooLarge(back)) => println!(
            "   a {}-byte order can never fit: refused and handed back, nothing evicted",
            back.len()
        ),
        other => panic!("expected TooLarge, got {other:?}"),
    }

    // ---------------------------------------------------------------------
    println!("\n3. A dashboard subscribes with Start::Latest; 5 more orders arrive");
    let dashboard = orders.subscribe_from(Start::Latest);
    let dashboard_start = pushed;
    for n in 0..5 {
        orders.push(format!("late#{n}")).unwrap();
        pushed += 1;
    }
    let seen = payloads(&dashboard);
    *got.entry("dashboard").or_default() += seen.len() as u64;
    println!("   dashboard got only the new ones: {}", seen.join(" "));
    *got.entry("audit").or_default() += audit.try_iter().count() as u64;

    // ---------------------------------------------------------------------
    println!("\n4. 10 quiet orders: audit reads them, nobody else does; the TTL runs out");
    for n in 0..10 {
        orders.push(format!("quiet#{n}")).unwrap();
        pushed += 1;
    }
    let read = audit.try_iter().count() as u64;
    *got.entry("audit").or_default() += read;
    println!("   audit read {read}; waiting for the sweeper ...");
    let start = Instant::now();
    while !orders.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the sweeper never ran"
        );
        thread::sleep(SWEEP);
    }
    println!(
        "   after {} ms the queue is empty: every unread order expired",
        start.elapsed().as_millis()
    );
    notices("audit", &audit);
    notices("workers", &workers);
    notices("archive", &archive);
    notices("dashboard", &dashboard);
    memory(&orders);

    // ---------------------------------------------------------------------
    println!("\n5. Forwarding keeps an order's identity and grows its history");
    let shipped: Queue<String> = Queue::new("shipped");
    let courier = shipped.subscribe();
    orders.push("alice#vip".into()).unwrap();
    pushed += 1;
    thread::sleep(Duration::from_millis(10)); // so the trail shows time passing
    let d = audit.try_recv().unwrap();
    *got.entry("audit").or_default() += 1;
    thread::sleep(Duration::from_millis(10));
    shipped.forward(&d).unwrap();
    let f = courier.try_recv().unwrap();
    println!(
        "   {:?} in {:?} keeps its UUID {} (same as in {:?}: {})",
        f.payload(),
        f.queue(),
        f.id(),
        d.queue(),
        f.id() == d.id()
    );
    for e in f.events() {
        let after = e.at().duration_since(f.created()).unwrap_or_default();
        println!(
            "     {:<8?} {:<9?} +{} ms",
            e.kind(),
            e.queue(),
            after.as_millis()
        );
    }

    // ---------------------------------------------------------------------
    println!("\n6. Close the queue; everyone drains what is left");
    orders.close();
    let consumers = [
        ("audit", &audit, 0),
        ("workers", &workers, 0),
        ("archive", &archive, 0),
        ("dashboard", &dashboard, dashboard_start),
    ];
    for (name, c, _) in &consumers {
        *got.entry(name).or_default() += c.iter().count() as u64;
    }
    drop(orders); // the last handle: stops and joins the sweeper
    println!(
        "   {:<10} {:>5} {:>9} {:>7} {:>7} {:>14}",
        "consumer", "start", "delivered", "expired", "evicted", "sum (=pushed)"
    );
    for (name, c, start) in &consumers {
        let m = c.missed();
        let delivered = got[name];
        println!(
            "   {:<10} {:>5} {:>9} {:>7} {:>7} {:>6} (={:>3})",
            name,
            start,
            delivered,
            m.expired,
            m.evicted,
            delivered + m.total(),
            pushed - start
        );
        assert_eq!(
            delivered + m.total(),
            pushed - start,
            "{name}: delivered + missed must equal what was pushed since it started"
        );
    }
    println!(
        "   {pushed} orders pushed: every consumer received or was told about each one it was owed"
    );
}

/// Takes everything available now from `c`, as payload strings.
fn payloads(c: &Consumer<String>) -> Vec<String> {
    c.try_iter().map(|d| d.payload().clone()).collect()
}

/// A worker: takes orders until none is left, spending a millisecond on
/// each, so the members of a group take turns.
fn work(c: &Consumer<String>) -> Vec<String> {
    let mut done = Vec::new();
    while let Ok(d) = c.try_recv() {
        thread::sleep(Duration::from_millis(1));
        done.push(d.payload().clone());
    }
    done
}

/// Prints (and takes) the pending notices of a consumer; pending notices
/// coalesce, so this is one notice with the sums.
fn notices(name: &str, c: &Consumer<String>) {
    let (mut expired, mut evicted) = (0, 0);
    for n in c.notifications().try_iter() {
        expired += n.expired;
        evicted += n.evicted;
    }
    if expired + evicted == 0 {
        println!("   notice for {name:<9}: none, it missed nothing");
    } else {
        println!("   notice for {name:<9}: {expired} expired, {evicted} evicted unread");
    }
}

/// Prints the queue's accounted memory against its budget.
fn memory(q: &Queue<String>) {
    println!(
        "   memory: {} of {} bytes accounted, {} orders retained",
        q.memory_used(),
        q.memory_limit(),
        q.len()
    );
}
