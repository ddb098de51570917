//! The bridge against a real nats-server (tests/support): a round trip
//! through another process, server restarts in the middle of an export and
//! an import, backpressure from a small chunkq budget, and malformed
//! messages. Each test starts its own server on its own port.

mod support;

use async_nats::jetstream::{self, Context, consumer::PullConsumer, stream::Stream};
use chunkq::{Delivery, EventKind, Overflow, Queue, Start, Uuid};
use chunkq_nats::{
    ExportStats, Exporter, Importer, consumer_config, ensure_consumer, ensure_stream, stream_config,
};
use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;
use support::{Server, wait_for};

const LIMIT: Duration = Duration::from_secs(120);

async fn connect(server: &Server) -> Context {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(server.url())
        .await
        .expect("connect");
    // A short ack timeout, so that publishes lost in a restart are retried soon.
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(client)
}

async fn setup<T: Send + Sync + 'static>(
    js: &Context,
    stream: &str,
    queue: &Queue<T>,
    overflow: Overflow,
) -> Stream {
    ensure_stream(js, stream_config(stream, stream, queue, overflow))
        .await
        .expect("stream")
}

async fn pull(stream: &Stream, durable: &str, ack_wait: Duration) -> PullConsumer {
    let mut cfg = consumer_config(durable, Start::Oldest).unwrap();
    cfg.ack_wait = ack_wait;
    ensure_consumer(stream, cfg).await.expect("consumer")
}

/// Exports everything `q` holds (the queue is closed first) and returns the stats.
async fn export_all(
    js: &Context,
    subject: &str,
    q: &Queue<String>,
    c: chunkq::Consumer<String>,
) -> ExportStats {
    q.close();
    Exporter::new(js.clone(), subject, c)
        .run()
        .await
        .expect("export")
}

fn nanos(t: std::time::SystemTime) -> i128 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i128
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_another_process_keeps_envelopes_exactly_once_in_order() {
    let Some(server) = Server::start_or_skip("round_trip") else {
        return;
    };
    let js = connect(&server).await;
    // A queue name with JSON and header specials, and non-ASCII.
    let name = "orders, \"EU\"/ünï\tcode";
    let src: Queue<String> = Queue::builder(name).memory_limit(16 << 20).build().unwrap();
    let audit = src.subscribe();
    let exporting = src.subscribe();
    let stream = setup(&js, "RT", &src, Overflow::Reject).await;
    pull(&stream, "imp", Duration::from_secs(30)).await;

    const N: usize = 500;
    for i in 0..N {
        src.push(format!("item {i}: \"quoted\", comma, ü")).unwrap();
    }
    let sent: Vec<Delivery<String>> = audit.try_iter().collect();
    assert_eq!(sent.len(), N);
    let stats = export_all(&js, "RT", &src, exporting).await;
    assert_eq!(stats.exported, N as u64);
    assert_eq!((stats.missed_expired, stats.missed_evicted), (0, 0));

    // The import runs in another process: examples/import_stage.rs.
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("import_stage");
    assert!(
        bin.exists(),
        "{} not built (cargo test builds the examples)",
        bin.display()
    );
    let url = server.url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args([url.as_str(), "RT", "imp", &N.to_string(), "imported"])
            .output()
            .expect("run import_stage")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "import_stage failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), N + 1, "{stdout}");
    let tail = &lines[N];
    assert_eq!(tail["extra"], 0, "items arrived twice: {tail}");
    assert_eq!(tail["stats"]["imported"], N as u64);
    assert_eq!(tail["stats"]["malformed"], 0);

    for (d, got) in sent.iter().zip(&lines) {
        assert_eq!(got["id"], d.id().to_string());
        assert_eq!(got["created"], serde_json::json!(nanos(d.created())));
        assert_eq!(got["payload"], d.payload().as_str());
        let h = got["history"].as_array().unwrap();
        assert_eq!(h.len(), 3, "{got}");
        // The original enqueue, exactly.
        let e0 = &d.events()[0];
        assert_eq!(h[0], serde_json::json!(["enq", name, nanos(e0.at())]));
        // The exporter's dequeue from the same queue, after it.
        assert_eq!(
            (h[1][0].as_str(), h[1][1].as_str()),
            (Some("deq"), Some(name))
        );
        assert!(h[1][2].as_i64().unwrap() as i128 >= nanos(e0.at()));
        // The import's enqueue, after that.
        assert_eq!(
            (h[2][0].as_str(), h[2][1].as_str()),
            (Some("enq"), Some("imported"))
        );
        assert!(h[2][2].as_i64() >= h[1][2].as_i64());
    }
    assert_eq!(d_kinds(&sent[0]), [EventKind::Enqueued]);

    // JetStream agrees: N messages stored, all acked.
    let info = stream.get_info().await.unwrap();
    assert_eq!(info.state.messages, N as u64);
    let c = stream
        .get_consumer::<jetstream::consumer::pull::Config>("imp")
        .await
        .unwrap();
    let ci = c.get_info().await.unwrap();
    assert_eq!((ci.num_pending, ci.num_ack_pending), (0, 0));
}

fn d_kinds(d: &Delivery<String>) -> Vec<EventKind> {
    d.events().iter().map(|e| e.kind()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restarts_during_export_and_import_lose_and_duplicate_nothing() {
    let Some(mut server) = Server::start_or_skip("restart") else {
        return;
    };
    let js = connect(&server).await;
    let src: Queue<String> = Queue::builder("src")
        .memory_limit(64 << 20)
        .build()
        .unwrap();
    let stream = setup(&js, "RS", &src, Overflow::Reject).await;
    // A short ack_wait: messages whose acks died with the server come back soon.
    let consumer = pull(&stream, "rs", Duration::from_secs(3)).await;
    let dst: Queue<String> = Queue::builder("dst")
        .memory_limit(64 << 20)
        .build()
        .unwrap();
    let reader = dst.subscribe();

    let mut exporter = Exporter::new(js.clone(), "RS", src.subscribe());
    let exp = exporter.monitor();
    let export = tokio::spawn(async move { exporter.run().await });
    let mut importer = Importer::new(consumer, dst.clone()).wait(Duration::from_millis(100));
    let imp = importer.monitor();
    let import = tokio::spawn(async move { importer.run().await });

    // A producer that keeps pushing while the server goes away and comes back.
    const N: usize = 3000;
    let producer = {
        let src = src.clone();
        tokio::spawn(async move {
            let mut ids = Vec::with_capacity(N);
            for i in 0..N {
                ids.push(src.push(format!("payload {i}")).unwrap());
                if i % 20 == 19 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            src.close();
            ids
        })
    };

    // Kill 1: in the middle of the export.
    wait_for("a third exported", LIMIT, || {
        exp.stats().exported >= (N / 3) as u64
    })
    .await;
    let before1 = (exp.stats().exported, imp.stats().imported);
    server.kill();
    // Down for longer than the publish ack timeout: publishes in flight fail
    // and are retried.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.start_again();
    // Kill 2: in the middle of the import.
    wait_for("two thirds imported", LIMIT, || {
        imp.stats().imported >= (2 * N / 3) as u64
    })
    .await;
    let before2 = (exp.stats().exported, imp.stats().imported);
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.start_again();

    let ids = producer.await.unwrap();
    let export_stats = export.await.unwrap().expect("export");
    assert_eq!(export_stats.exported, N as u64);

    // Read until all N distinct ids arrived; a duplicate would show up as
    // a count above N once everything is acked.
    let expected: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(expected.len(), N);
    let mut seen: Vec<Uuid> = Vec::with_capacity(N);
    let deadline = tokio::time::Instant::now() + LIMIT;
    while seen.len() < N {
        match reader.try_recv() {
            Ok(d) => seen.push(d.id()),
            Err(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "only {} of {N} arrived",
                    seen.len()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    // Wait until JetStream has every message acked, so no redelivery is
    // pending, then stop the importer and count what else arrived.
    let c = stream
        .get_consumer::<jetstream::consumer::pull::Config>("rs")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Ok(ci) = c.get_info().await
            && ci.num_pending == 0
            && ci.num_ack_pending == 0
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "acks never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dst.close();
    let import_stats = import.await.unwrap().expect("import");
    seen.extend(reader.try_iter().map(|d| d.id()));

    let distinct: HashSet<Uuid> = seen.iter().copied().collect();
    let stored = stream.get_info().await.unwrap().state.messages;
    println!(
        "restart test: pushed {N}, exported {} (duplicates {}, retries {}), stored {stored}, \
         imported {} (redeliveries skipped {}, fetch errors {}), delivered downstream {} \
         ({} distinct); kill 1 at exported/imported {before1:?}, kill 2 at {before2:?}",
        export_stats.exported,
        export_stats.duplicates,
        export_stats.retries,
        import_stats.imported,
        import_stats.duplicates,
        import_stats.fetch_errors,
        seen.len(),
        distinct.len(),
    );
    assert_eq!(
        stored, N as u64,
        "JetStream stored a duplicate or lost a message"
    );
    assert_eq!(seen.len(), N, "an item arrived twice downstream");
    assert_eq!(distinct, expected, "an item was lost");
    assert_eq!(import_stats.imported, N as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_under_reject_holds_the_acks_and_loses_nothing() {
    let Some(server) = Server::start_or_skip("backpressure") else {
        return;
    };
    let js = connect(&server).await;
    let src: Queue<String> = Queue::builder("big")
        .memory_limit(16 << 20)
        .build()
        .unwrap();
    let exporting = src.subscribe();
    let stream = setup(&js, "BP", &src, Overflow::Reject).await;
    let consumer = pull(&stream, "bp", Duration::from_secs(30)).await;
    const N: usize = 300;
    let mut ids = Vec::new();
    for i in 0..N {
        ids.push(src.push(format!("{i:0>200}")).unwrap());
    }
    assert_eq!(
        export_all(&js, "BP", &src, exporting).await.exported,
        N as u64
    );

    // Room for a few dozen items at most.
    let small: Queue<String> = Queue::builder("small")
        .memory_limit(8 * 1024)
        .overflow(Overflow::Reject)
        .build()
        .unwrap();
    let reader = small.subscribe();
    let mut importer = Importer::new(consumer, small.clone()).full_wait(Duration::from_millis(5));
    let imp = importer.monitor();
    let import = tokio::spawn(async move { importer.run().await });

    // Nobody reads yet: the importer must stall on a full queue.
    wait_for("a push refused as full", LIMIT, || {
        imp.stats().full_waits > 0
    })
    .await;
    let held = small.len() as u64;
    assert!(held > 0 && held < N as u64);
    let c = stream
        .get_consumer::<jetstream::consumer::pull::Config>("bp")
        .await
        .unwrap();
    let ci = c.get_info().await.unwrap();
    // Acked only what the queue accepted; the rest still pending in JetStream.
    assert!(
        ci.ack_floor.stream_sequence <= held,
        "acked {} with {held} pushed",
        ci.ack_floor.stream_sequence
    );
    assert!(ci.num_pending + ci.num_ack_pending as u64 >= N as u64 - held);
    assert_eq!(imp.stats().imported, held);

    // Now read everything: every item exactly once, in order.
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while got.len() < N {
        match reader.try_recv() {
            Ok(d) => got.push(d.id()),
            Err(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "only {} of {N}",
                    got.len()
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    assert_eq!(got, ids);
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let ci = c.get_info().await.unwrap();
        if ci.num_pending == 0 && ci.num_ack_pending == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "acks never settled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    small.close();
    let stats = import.await.unwrap().expect("import");
    assert_eq!(reader.try_iter().count(), 0);
    assert_eq!(
        (stats.imported, stats.duplicates, stats.malformed),
        (N as u64, 0, 0)
    );
    println!(
        "backpressure test: {N} items through a queue holding {held}; {} pushes refused as full",
        stats.full_waits
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_counted_and_terminated_not_pushed() {
    let Some(server) = Server::start_or_skip("malformed") else {
        return;
    };
    let js = connect(&server).await;
    let src: Queue<String> = Queue::new("m");
    let exporting = src.subscribe();
    let stream = setup(&js, "MF", &src, Overflow::Reject).await;
    let consumer = pull(&stream, "mf", Duration::from_secs(30)).await;

    // A plain message without headers, one with a broken history, one
    // whose body is not JSON, then a good one.
    js.publish("MF", "no headers".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Msg-Id", Uuid::from_u128(1).to_string().as_str());
    h.insert("Chunkq-Created", "0");
    h.insert("Chunkq-Seq", "0");
    h.insert("Chunkq-History", "[[\"enq\",");
    js.publish_with_headers("MF", h.clone(), "\"x\"".into())
        .await
        .unwrap()
        .await
        .unwrap();
    h.insert("Nats-Msg-Id", Uuid::from_u128(2).to_string().as_str());
    h.insert("Chunkq-History", "[]");
    js.publish_with_headers("MF", h, "not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let good = src.push("fine".into()).unwrap();
    assert_eq!(export_all(&js, "MF", &src, exporting).await.exported, 1);

    let dst: Queue<String> = Queue::new("dst");
    let reader = dst.subscribe();
    let mut importer = Importer::new(consumer, dst.clone()).wait(Duration::from_millis(50));
    let imp = importer.monitor();
    let import = tokio::spawn(async move { importer.run().await });
    wait_for("all four handled", LIMIT, || {
        let s = imp.stats();
        s.imported + s.malformed == 4
    })
    .await;
    dst.close();
    let stats = import.await.unwrap().expect("import");
    assert_eq!((stats.imported, stats.malformed), (1, 3));
    let ids: Vec<Uuid> = reader.try_iter().map(|d| d.id()).collect();
    assert_eq!(ids, [good]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_larger_than_the_whole_budget_is_handed_back_not_acked() {
    let Some(server) = Server::start_or_skip("too_large") else {
        return;
    };
    let js = connect(&server).await;
    let src: Queue<String> = Queue::new("wide");
    let exporting = src.subscribe();
    let stream = setup(&js, "TL", &src, Overflow::Reject).await;
    let consumer = pull(&stream, "tl", Duration::from_secs(30)).await;
    let id = src.push("y".repeat(8 * 1024)).unwrap();
    assert_eq!(export_all(&js, "TL", &src, exporting).await.exported, 1);

    let tiny: Queue<String> = Queue::builder("tiny")
        .memory_limit(4 * 1024)
        .build()
        .unwrap();
    let err = Importer::new(consumer, tiny.clone())
        .full_wait(Duration::from_millis(1))
        .run()
        .await
        .unwrap_err();
    let env = err.into_envelope().expect("TooLarge");
    assert_eq!((env.id, env.payload.len()), (id, 8 * 1024));
    assert!(tiny.is_empty());
    // Not acked: JetStream still owes it to the consumer.
    let c = stream
        .get_consumer::<jetstream::consumer::pull::Config>("tl")
        .await
        .unwrap();
    let ci = c.get_info().await.unwrap();
    assert_eq!(ci.ack_floor.stream_sequence, 0);
    assert_eq!(ci.num_pending + ci.num_ack_pending as u64, 1);
}
