//! The bridge against a real nats-server (tests/support): a round trip
//! through another process, server restarts in the middle of an export and
//! an import and while the exporter awaits its consumer, fan-out copies of
//! one item exported into one stream, `Start::Seq` mapped through the
//! headers, backpressure from a small chunkq budget, malformed messages,
//! and the examples. Each test starts its own server on its own port.

mod support;

use async_nats::jetstream::{self, Context, consumer::PullConsumer, stream::Stream};
use chunkq::{Delivery, EventKind, Overflow, Queue, Start, Uuid};
use chunkq_nats::{
    Codec, ExportStats, Exporter, Importer, Json, consumer_config, consumer_config_in,
    ensure_consumer, ensure_stream, headers, stream_config,
};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
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

/// An example's binary (`cargo test` builds the examples).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        bin.exists(),
        "{} not built (cargo test builds the examples)",
        bin.display()
    );
    bin
}

/// Waits until the durable consumer has nothing pending or unacked.
async fn settled(stream: &Stream, durable: &str) {
    let c = stream
        .get_consumer::<jetstream::consumer::pull::Config>(durable)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Ok(ci) = c.get_info().await
            && ci.num_pending == 0
            && ci.num_ack_pending == 0
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "acks never settled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next delivery, awaited; panics (instead of hanging) after LIMIT.
async fn next<T: Send + Sync + 'static>(c: &chunkq::Consumer<T>) -> Delivery<T> {
    tokio::time::timeout(LIMIT, c.recv_async())
        .await
        .expect("timed out waiting for a delivery")
        .expect("queue closed")
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
    let bin = example("import_stage");
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
    let mut importer = Importer::new(consumer, small.clone());
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
        "backpressure test: {N} items through a queue holding {held}; {} messages waited for room",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_copies_forwarded_into_two_queues_are_all_stored_and_imported() {
    let Some(server) = Server::start_or_skip("fan_out") else {
        return;
    };
    let js = connect(&server).await;
    // 200 items, each forwarded into `left` and `right`: the same UUID
    // twice, the same sequence numbers 0..200 in both queues.
    const N: usize = 200;
    let src: Queue<String> = Queue::new("src");
    let fan = src.subscribe();
    let ids: Vec<Uuid> = (0..N)
        .map(|i| src.push(format!("item {i}")).unwrap())
        .collect();
    let left: Queue<String> = Queue::new("left");
    let right: Queue<String> = Queue::new("right");
    let (to_nats_l, to_nats_r, audit) = (left.subscribe(), right.subscribe(), left.subscribe());
    for d in fan.try_iter() {
        left.forward(&d).unwrap();
        right.forward(&d).unwrap();
    }
    let stream = setup(&js, "FO", &left, Overflow::Reject).await;
    pull(&stream, "fo", Duration::from_secs(30)).await;

    // Both exported into one stream, on one subject, at the same time.
    left.close();
    right.close();
    let mut l = Exporter::new(js.clone(), "FO", to_nats_l);
    let mut r = Exporter::new(js.clone(), "FO", to_nats_r);
    let (l, r) = tokio::join!(l.run(), r.run());
    let (l, r) = (l.expect("export left"), r.expect("export right"));
    assert_eq!((l.exported, l.duplicates), (N as u64, 0));
    assert_eq!((r.exported, r.duplicates), (N as u64, 0));
    let stored = stream.get_info().await.unwrap().state.messages;
    assert_eq!(stored, 2 * N as u64, "JetStream dropped fanned-out copies");

    // A retry of one of those publishes (the same headers) is still a
    // duplicate: the id names the publish.
    let d = audit.try_recv().unwrap();
    let ack = js
        .publish_with_headers("FO", headers::encode(&d), Json.encode(d.payload()).unwrap())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(ack.duplicate, "a retried publish was stored twice");
    assert_eq!(
        stream.get_info().await.unwrap().state.messages,
        2 * N as u64
    );

    // All 2N imported: the importer tells the copies apart the same way.
    let consumer = pull(&stream, "fo", Duration::from_secs(30)).await;
    let dst: Queue<String> = Queue::new("dst");
    let reader = dst.subscribe();
    let mut importer = Importer::new(consumer, dst.clone()).wait(Duration::from_millis(100));
    let import = tokio::spawn(async move { importer.run().await });
    let mut via: HashMap<Uuid, Vec<String>> = HashMap::new();
    for _ in 0..2 * N {
        let d = next(&reader).await;
        let events = d.events();
        assert_eq!(events.len(), 5, "{events:?}");
        via.entry(d.id())
            .or_default()
            .push(events[2].queue().to_string());
    }
    settled(&stream, "fo").await;
    dst.close();
    let stats = import.await.unwrap().expect("import");
    assert_eq!((stats.imported, stats.duplicates), (2 * N as u64, 0));
    assert_eq!(reader.try_iter().count(), 0, "an item arrived twice");
    assert_eq!(via.len(), N);
    for id in &ids {
        let mut queues = via[id].clone();
        queues.sort();
        assert_eq!(queues, ["left", "right"], "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_while_the_exporter_awaits_its_consumer_loses_nothing() {
    let Some(mut server) = Server::start_or_skip("restart_idle") else {
        return;
    };
    let js = connect(&server).await;
    let q: Queue<String> = Queue::new("idle");
    let stream = setup(&js, "IW", &q, Overflow::Reject).await;
    let mut exporter = Exporter::new(js.clone(), "IW", q.subscribe());
    let exp = exporter.monitor();
    let export = tokio::spawn(async move { exporter.run().await });

    let mut ids = Vec::new();
    let push = |q: &Queue<String>, ids: &mut Vec<Uuid>, from: usize| {
        for i in from..from + 10 {
            ids.push(q.push(format!("item {i}")).unwrap());
        }
    };
    push(&q, &mut ids, 0);
    wait_for("the first ten exported", LIMIT, || {
        exp.stats().exported == 10
    })
    .await;
    // Nothing in flight, nothing to read: the exporter awaits its consumer.
    server.kill();
    // Pushed while the server is away: the awaiting exporter wakes up and
    // its publishes fail or time out (the server is down for longer than
    // the 2 s ack timeout), then are retried.
    push(&q, &mut ids, 10);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.start_again();
    wait_for("twenty exported", LIMIT, || exp.stats().exported == 20).await;
    // Idle again, on the new connection: woken by the next pushes.
    push(&q, &mut ids, 20);
    q.close();
    let stats = tokio::time::timeout(LIMIT, export)
        .await
        .expect("the exporter never finished")
        .unwrap()
        .expect("export");
    println!(
        "idle restart test: exported {} (retries {}, duplicates {})",
        stats.exported, stats.retries, stats.duplicates
    );
    assert_eq!(stats.exported, 30);
    let stored = stream.get_info().await.unwrap().state.messages;
    assert_eq!(stored, 30, "an item was lost or stored twice");
    // Stored in the stream: the pushed UUIDs, each once.
    let mut got = HashSet::new();
    for seq in 1..=stored {
        let m = stream.get_raw_message(seq).await.unwrap();
        let meta = headers::decode(Some(&m.headers)).unwrap();
        assert!(got.insert(meta.id));
    }
    assert_eq!(got, ids.iter().copied().collect::<HashSet<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_seq_round_trips_through_the_chunkq_seq_headers() {
    let Some(server) = Server::start_or_skip("start_seq") else {
        return;
    };
    let js = connect(&server).await;
    // Payload = sequence number in `seq`. The exporter's consumer starts
    // at 10: items 0..10 are never exported.
    let q: Queue<u64> = Queue::new("seq");
    q.push_batch(0..10).unwrap();
    let to_nats = q.subscribe_from(Start::Latest);
    assert_eq!(to_nats.start_seq(), 10);
    let stream = ensure_stream(&js, stream_config("SQ", "sq.>", &q, Overflow::Reject))
        .await
        .unwrap();
    // Another subject in the same stream, before and between the items:
    // the stream's sequence numbers are not the queue's.
    let noise = |i: u64| {
        let js = js.clone();
        async move {
            js.publish("sq.noise", i.to_string().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    for i in 0..7 {
        noise(i).await;
    }
    let mut exporter = Exporter::new(js.clone(), "sq.q", to_nats).max_in_flight(1);
    let exp = exporter.monitor();
    let export = tokio::spawn(async move { exporter.run().await });
    let mut ids: HashMap<u64, Uuid> = HashMap::new();
    for i in 10..60 {
        ids.insert(i, q.push(i).unwrap());
        if i % 5 == 0 {
            wait_for("the export", LIMIT, || exp.stats().exported == i - 9).await;
            noise(i).await;
        }
    }
    wait_for("all fifty exported", LIMIT, || exp.stats().exported == 50).await;

    // Where each start lands, then what a consumer there imports.
    let mut waiting = Vec::new();
    for n in [0u64, 10, 11, 37, 59, 60, 1000] {
        let durable = format!("from-{n}");
        let cfg = consumer_config_in(&stream, "sq.q", &durable, Start::Seq(n))
            .await
            .expect("Start::Seq mapped");
        assert_eq!(cfg.filter_subject, "sq.q");
        let consumer = ensure_consumer(&stream, cfg).await.unwrap();
        let dst: Queue<u64> = Queue::new(&durable);
        let reader = dst.subscribe();
        let mut importer = Importer::new(consumer, dst.clone()).wait(Duration::from_millis(50));
        let import = tokio::spawn(async move { importer.run().await });
        let first = n.max(10);
        for want in first..60 {
            let d = next(&reader).await;
            assert_eq!((n, *d.payload()), (n, want));
            assert_eq!(d.id(), ids[&want]);
        }
        waiting.push((n, dst, reader, import));
    }
    // Item 60, exported after the consumers were made, reaches every one
    // of them, the ones that started past the end included.
    let id60 = q.push(60).unwrap();
    q.close();
    assert_eq!(export.await.unwrap().expect("export").exported, 51);
    for (n, dst, reader, import) in waiting {
        let d = next(&reader).await;
        assert_eq!((n, *d.payload(), d.id()), (n, 60, id60));
        settled(&stream, &format!("from-{n}")).await;
        dst.close();
        let stats = import.await.unwrap().expect("import");
        assert_eq!(reader.try_iter().count(), 0, "from {n}: more than asked");
        assert_eq!(stats.imported, 61 - n.clamp(10, 60), "from {n}");
    }
}

/// Every example in examples/ runs against a server: the two stages of a
/// pipeline one after the other, and the throughput loops on a few
/// hundred items.
#[test]
fn the_examples_run_against_a_server() {
    let Some(server) = Server::start_or_skip("examples") else {
        return;
    };
    let url = server.url();
    let run = |name: &str, args: &[&str]| {
        let out = Command::new(example(name))
            .arg(&url)
            .args(args)
            .output()
            .expect("run the example");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "{name} failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let produced = run("producer_stage", &["10"]);
    assert_eq!(produced.matches("pushed order").count(), 10, "{produced}");
    assert!(produced.contains("exported 10 "), "{produced}");
    let consumed = run("consumer_stage", &["10"]);
    let trail = "[Enqueued@orders → Dequeued@orders → Enqueued@billing]";
    assert_eq!(consumed.matches(trail).count(), 10, "{consumed}");
    assert!(consumed.contains("read 10;"), "{consumed}");
    let rates = run("throughput", &["300"]);
    for what in [
        "plain publish",
        "plain + msg-id",
        "plain pull",
        "chunkq export",
        "chunkq import",
    ] {
        assert!(
            rates.contains(&format!("{what:<14}      300 items")),
            "{rates}"
        );
    }
}
