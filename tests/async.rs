//! The `async` feature: `Consumer::recv_async` and `into_stream`,
//! `Notifications::recv_async` and `into_stream`, `Queue::push_async` and
//! `Queue::push_envelope_async`, and the blocking `Queue::push_timeout`
//! beside them.
//!
//! Every test runs on tokio's current-thread and multi-thread runtimes or
//! on `futures-executor` (a second, unrelated executor), under the
//! watchdog: a lost wake-up hangs a future, and the watchdog turns that
//! into a failure. Timers only interleave (`select!` against a short sleep);
//! nothing asserts on time.
#![cfg(feature = "async")]

mod common;

use chunkq::{Clock, Consumer, Overflow, PushError, Queue, Received, RecvError};
use common::{item_bytes, size, within_patience};
use futures_core::Stream;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::thread;
use std::time::Duration;

/// A queue without a sweeper thread.
/// A queue whose budget holds every item a test pushes, so that a producer
/// never depends on how fast a (loaded) receiver keeps up.
fn queue(name: &str) -> Queue<u64> {
    Queue::builder(name)
        .memory_limit(64 << 20)
        .sweep_interval(None)
        .build()
        .unwrap()
}

/// A `Reject` queue whose budget holds `items` u64 items (tiny: far fewer
/// than a chunk, so reads release nothing until a push trims).
fn tiny(name: &str, items: usize) -> Queue<u64> {
    Queue::builder(name)
        .memory_limit(items * item_bytes(0u64))
        .overflow(Overflow::Reject)
        .sweep_interval(None)
        .build()
        .unwrap()
}

/// The next item of a stream (no combinator crate needed).
async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

/// Runs `f`'s future to completion on a tokio current-thread runtime.
fn current_thread<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

/// Runs `f`'s future to completion on a tokio multi-thread runtime.
fn multi_thread<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

/// Pushes `0..n` from a plain thread, then closes the queue; yields now and
/// then so that the receiver keeps catching up and going back to wait.
fn producer(q: &Queue<u64>, n: u64) -> thread::JoinHandle<()> {
    paced_producer(q, n, u64::MAX)
}

/// [`producer`], also pausing for a millisecond every `every` items, so
/// that a receiver's timers fire now and then.
fn paced_producer(q: &Queue<u64>, n: u64, every: u64) -> thread::JoinHandle<()> {
    let q = q.clone();
    thread::spawn(move || {
        for i in 0..n {
            q.push(i).unwrap();
            if i % 7 == 0 {
                thread::yield_now();
            }
            if i % every == every - 1 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        q.close();
    })
}

/// Receives until closed with `recv_async`; returns the payloads.
async fn drain(c: &Consumer<u64>) -> Vec<u64> {
    let mut got = Vec::new();
    while let Ok(d) = c.recv_async().await {
        got.push(*d.payload());
    }
    got
}

#[test]
fn recv_async_on_three_executors() {
    let n = size(20_000) as u64;
    let want: Vec<u64> = (0..n).collect();
    within_patience("recv_async, tokio current-thread", {
        let want = want.clone();
        move || {
            let q = queue("ct");
            let c = q.subscribe();
            let p = producer(&q, n);
            assert_eq!(current_thread(drain(&c)), want);
            p.join().unwrap();
        }
    });
    within_patience("recv_async, tokio multi-thread", {
        let want = want.clone();
        move || {
            let q = queue("mt");
            let c = q.subscribe();
            let p = producer(&q, n);
            let got = multi_thread(async move {
                // On a worker thread, not the runtime's caller.
                tokio::spawn(async move { drain(&c).await }).await.unwrap()
            });
            assert_eq!(got, want);
            p.join().unwrap();
        }
    });
    within_patience("recv_async, futures-executor", move || {
        let q = queue("fx");
        let c = q.subscribe();
        let p = producer(&q, n);
        assert_eq!(futures_executor::block_on(drain(&c)), want);
        p.join().unwrap();
    });
}

#[test]
fn recv_async_ends_with_recv_error_once_closed_and_drained() {
    within_patience("recv_async at the end", || {
        futures_executor::block_on(async {
            let q = queue("end");
            let c = q.subscribe();
            q.push(1).unwrap();
            q.close();
            assert_eq!(*c.recv_async().await.unwrap().payload(), 1);
            assert_eq!(c.recv_async().await.unwrap_err(), RecvError);
            assert_eq!(c.recv_async().await.unwrap_err(), RecvError);
        })
    });
}

#[test]
fn a_close_wakes_a_waiting_recv_async() {
    within_patience("close wakes recv_async", || {
        multi_thread(async {
            let q = queue("close-wakes");
            let c = q.subscribe();
            let waiter = tokio::spawn(async move { c.recv_async().await.map(|d| *d.payload()) });
            tokio::task::yield_now().await;
            q.close();
            assert_eq!(waiter.await.unwrap(), Err(RecvError));
        })
    });
}

/// What races `recv_async` in the cancel-safety tests: alternately a short
/// timer and a yield (which wins whenever the receive is not ready at its
/// first poll, so many receives are dropped after registering).
async fn interruption(k: u64) {
    if k % 2 == 0 {
        tokio::time::sleep(Duration::from_micros(20)).await;
    } else {
        tokio::task::yield_now().await;
    }
}

/// The cancel-safety check: a receiver that races `recv_async` against an
/// [`interruption`] in `select!`, once per item or interruption, while the
/// items arrive; returns what it got and how many receives it dropped.
async fn select_against_a_timer(c: Consumer<u64>) -> (Vec<u64>, u64) {
    let mut got = Vec::new();
    let mut dropped = 0u64;
    loop {
        tokio::select! {
            r = c.recv_async() => match r {
                Ok(d) => got.push(*d.payload()),
                Err(RecvError) => break,
            },
            () = interruption(dropped + got.len() as u64) => dropped += 1,
        }
    }
    (got, dropped)
}

#[test]
fn select_never_loses_an_item_current_thread() {
    let n = size(20_000) as u64;
    within_patience("select!, current-thread", move || {
        let q = queue("select-ct");
        let c = q.subscribe();
        let p = paced_producer(&q, n, 500);
        let (got, dropped) = current_thread(select_against_a_timer(c));
        p.join().unwrap();
        // Every item exactly once, in order, however many receives were
        // dropped half-way.
        eprintln!("{} items, {dropped} receives dropped", got.len());
        assert_eq!(got, (0..n).collect::<Vec<_>>());
    });
}

#[test]
fn select_never_loses_an_item_in_a_group_multi_thread() {
    // Two clones (one group: they split the items), each in its own task
    // racing `recv_async` against a timer: the union is every item exactly
    // once, and each clone's share is in order.
    let n = size(40_000) as u64;
    within_patience("select!, multi-thread group", move || {
        let q = queue("select-mt");
        let c = q.subscribe();
        let c2 = c.clone();
        let p = paced_producer(&q, n, 500);
        let (a, b) = multi_thread(async move {
            let a = tokio::spawn(select_against_a_timer(c));
            let b = tokio::spawn(select_against_a_timer(c2));
            (a.await.unwrap(), b.await.unwrap())
        });
        p.join().unwrap();
        eprintln!("{} + {} receives dropped", a.1, b.1);
        for (share, _) in [&a, &b] {
            assert!(
                share.windows(2).all(|w| w[0] < w[1]),
                "a clone's share is in order"
            );
        }
        let mut all: Vec<u64> = a.0.iter().chain(&b.0).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "every item exactly once");
    });
}

#[test]
fn dropping_a_pending_recv_async_takes_nothing() {
    within_patience("dropped recv_async", || {
        futures_executor::block_on(async {
            let q = queue("dropped");
            let c = q.subscribe();
            for _ in 0..100 {
                // Polled once (registers a listener and counts itself),
                // then dropped.
                let mut f = std::pin::pin!(c.recv_async());
                let pending = poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx))).await;
                assert!(pending.is_pending());
            }
            q.push(5).unwrap();
            assert_eq!(*c.recv_async().await.unwrap().payload(), 5);
        })
    });
}

#[test]
fn stream_ends_when_closed_and_drained() {
    let n = size(10_000) as u64;
    within_patience("stream, multi-thread", move || {
        let q = queue("stream");
        let audit = q.subscribe().into_stream();
        let workers = q.subscribe();
        let w1 = workers.clone().into_stream();
        let w2 = workers.into_stream();
        let p = producer(&q, n);
        let (all, a, b) = multi_thread(async move {
            let collect = |mut s: Box<dyn Stream<Item = chunkq::Delivery<u64>> + Send + Unpin>| async move {
                let mut got = Vec::new();
                while let Some(d) = next(&mut s).await {
                    got.push(*d.payload());
                }
                // Ended for good.
                assert!(next(&mut s).await.is_none());
                got
            };
            let all = tokio::spawn(collect(Box::new(audit)));
            let a = tokio::spawn(collect(Box::new(w1)));
            let b = tokio::spawn(collect(Box::new(w2)));
            (all.await.unwrap(), a.await.unwrap(), b.await.unwrap())
        });
        p.join().unwrap();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
        let mut split: Vec<u64> = a.into_iter().chain(b).collect();
        split.sort_unstable();
        assert_eq!(split, (0..n).collect::<Vec<_>>());
    });
}

#[test]
fn stream_on_futures_executor() {
    within_patience("stream, futures-executor", || {
        let q = queue("stream-fx");
        let mut s = q.subscribe().into_stream();
        let p = producer(&q, 1000);
        let got = futures_executor::block_on(async {
            let mut got = Vec::new();
            while let Some(d) = next(&mut s).await {
                got.push(*d.payload());
            }
            got
        });
        p.join().unwrap();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    });
}

/// A slow consumer: reads `n` items one at a time, sleeping briefly now and
/// then, and checks their order.
fn slow_consumer(c: Consumer<u64>, n: u64) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for i in 0..n {
            assert_eq!(*c.recv().unwrap().payload(), i);
            if i % 64 == 0 {
                thread::sleep(Duration::from_micros(200));
            }
        }
        assert_eq!(c.missed().total(), 0);
    })
}

#[test]
fn push_async_waits_for_a_slow_consumer_on_three_executors() {
    // A budget of 4 items under `Reject`: without waiting, almost every push
    // would be `Full`. With `push_async` nothing is refused and nothing lost.
    let n = size(5_000) as u64;
    let run = |name: &'static str, exec: fn(Pin<Box<dyn Future<Output = ()> + Send>>)| {
        within_patience(name, move || {
            let q = tiny(name, 4);
            let reader = slow_consumer(q.subscribe(), n);
            let producer = q.clone();
            exec(Box::pin(async move {
                for i in 0..n {
                    producer.push_async(i).await.unwrap();
                }
            }));
            reader.join().unwrap();
            assert!(q.memory_used() <= q.memory_limit());
        })
    };
    run("push_async, current-thread", current_thread);
    run("push_async, multi-thread", |f| {
        multi_thread(async { tokio::spawn(f).await.unwrap() })
    });
    run("push_async, futures-executor", |f| {
        futures_executor::block_on(f)
    });
}

#[test]
fn push_async_with_an_async_consumer_on_one_thread() {
    // Producer and consumer are tasks of one current-thread runtime: each
    // waits for the other in turn (room, then items), through the wakers.
    let n = size(5_000) as u64;
    within_patience("push_async + recv_async, one thread", move || {
        let q = tiny("one-thread", 3);
        let c = q.subscribe();
        let got = current_thread(async move {
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async move {
                    let reader = tokio::task::spawn_local(async move { drain(&c).await });
                    for i in 0..n {
                        q.push_async(i).await.unwrap();
                    }
                    q.close();
                    reader.await.unwrap()
                })
                .await
        });
        assert_eq!(got, (0..n).collect::<Vec<_>>());
    });
}

#[test]
fn push_async_in_select_pushes_exactly_what_it_reports() {
    // A producer that races `push_async` against a timer: a push that lost
    // the race did not happen (its payload was dropped with the future), so
    // the consumer sees exactly the pushes reported `Ok`, in order.
    let n = size(3_000) as u64;
    within_patience("push_async in select!", move || {
        let q = tiny("push-select", 4);
        let c = q.subscribe();
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            while let Ok(d) = c.recv() {
                got.push(*d.payload());
                if got.len() % 32 == 0 {
                    thread::sleep(Duration::from_micros(100));
                }
            }
            got
        });
        let pushed = current_thread(async move {
            let mut pushed = Vec::new();
            let mut i = 0;
            while i < n {
                tokio::select! {
                    r = q.push_async(i) => {
                        r.unwrap();
                        pushed.push(i);
                        i += 1;
                    }
                    () = tokio::time::sleep(Duration::from_micros(20)) => {}
                }
            }
            q.close();
            pushed
        });
        assert_eq!(reader.join().unwrap(), pushed);
    });
}

#[test]
fn push_async_hands_the_payload_back() {
    within_patience("push_async errors", || {
        futures_executor::block_on(async {
            // Larger than the whole budget: `TooLarge` at once, not a wait.
            let q: Queue<Vec<u8>> = Queue::builder("big").memory_limit(1000).build().unwrap();
            match q.push_async(vec![7; 4000]).await {
                Err(PushError::TooLarge(v)) => assert_eq!(v.len(), 4000),
                other => panic!("{other:?}"),
            }
            // Closed.
            q.close();
            match q.push_async(vec![1]).await {
                Err(PushError::Closed(v)) => assert_eq!(v, [1]),
                other => panic!("{other:?}"),
            }
        })
    });
}

#[test]
fn a_close_wakes_a_waiting_push_async() {
    within_patience("close wakes push_async", || {
        multi_thread(async {
            let q = tiny("close-push", 2);
            let _c = q.subscribe(); // reads nothing: the budget stays full
            while q.push(0).is_ok() {}
            let waiter = tokio::spawn({
                let q = q.clone();
                async move { q.push_async(42).await }
            });
            tokio::task::yield_now().await;
            q.close();
            match waiter.await.unwrap() {
                Err(PushError::Closed(v)) => assert_eq!(v, 42),
                other => panic!("{other:?}"),
            }
        })
    });
}

#[test]
fn push_async_never_waits_under_drop_oldest() {
    within_patience("push_async, DropOldest", || {
        futures_executor::block_on(async {
            let q: Queue<u64> = Queue::builder("evict")
                .memory_limit(4 * item_bytes(0u64))
                .overflow(Overflow::DropOldest)
                .sweep_interval(None)
                .build()
                .unwrap();
            let c = q.subscribe();
            for i in 0..100 {
                q.push_async(i).await.unwrap();
            }
            let read = c.try_iter().count() as u64;
            assert_eq!(read + c.missed().evicted, 100);
        })
    });
}

#[test]
fn room_appears_when_items_expire() {
    within_patience("room on expiry", || {
        let clock = Clock::manual();
        let q: Queue<u64> = Queue::builder("expire")
            .memory_limit(3 * item_bytes(0u64))
            .ttl(Duration::from_secs(1))
            .clock(clock.clone())
            .sweep_interval(None)
            .build()
            .unwrap();
        while q.push(0).is_ok() {}
        let waiter = thread::spawn({
            let q = q.clone();
            move || futures_executor::block_on(q.push_async(1))
        });
        thread::sleep(Duration::from_millis(5));
        clock.advance(Duration::from_secs(2));
        q.expire_now();
        assert!(waiter.join().unwrap().is_ok());
    });
}

#[test]
fn an_async_reader_paces_push_timeout_threads() {
    // The blocking producer side against an async reader: the reads that
    // wake the producers (through the `room` signal) come from futures.
    let per = size(2_000) as u64;
    within_patience("push_timeout + recv_async", move || {
        let q = tiny("mixed", 2);
        let c = q.subscribe();
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    for i in 0..per {
                        q.push_timeout(p * per + i, Duration::from_secs(3600))
                            .unwrap();
                    }
                })
            })
            .collect();
        let closer = thread::spawn(move || {
            for p in producers {
                p.join().unwrap();
            }
            q.close();
        });
        let mut got =
            multi_thread(
                async move { tokio::spawn(async move { drain(&c).await }).await.unwrap() },
            );
        closer.join().unwrap();
        got.sort_unstable();
        assert_eq!(got, (0..2 * per).collect::<Vec<_>>());
    });
}

#[test]
fn notices_via_recv_async() {
    within_patience("notices, recv_async", || {
        multi_thread(async {
            let q: Queue<u64> = Queue::builder("notices")
                .memory_limit(4 * item_bytes(0u64))
                .overflow(Overflow::DropOldest)
                .sweep_interval(None)
                .build()
                .unwrap();
            let c = q.subscribe();
            let notices = c.notifications();
            // A waiting receiver is woken by an eviction in another thread.
            let waiter = tokio::spawn(async move {
                let mut evicted = 0;
                while let Ok(n) = notices.recv_async().await {
                    evicted += n.evicted;
                }
                evicted
            });
            tokio::task::yield_now().await;
            let p = {
                let q = q.clone();
                thread::spawn(move || {
                    for i in 0..1000 {
                        q.push(i).unwrap();
                    }
                })
            };
            p.join().unwrap();
            let read = c.try_iter().count() as u64;
            let missed = c.missed();
            assert_eq!(read + missed.evicted, 1000);
            q.close(); // ends the waiter's loop once nothing is pending
            assert_eq!(waiter.await.unwrap(), missed.evicted);
        })
    });
}

#[test]
fn notice_stream_ends_when_the_consumer_goes() {
    within_patience("notice stream", || {
        current_thread(async {
            let clock = Clock::manual();
            let q: Queue<u64> = Queue::builder("notice-stream")
                .ttl(Duration::from_secs(1))
                .clock(clock.clone())
                .sweep_interval(None)
                .build()
                .unwrap();
            let c = q.subscribe();
            let mut s = c.notifications().into_stream();
            q.push_batch(0..10).unwrap();
            clock.advance(Duration::from_secs(2));
            assert_eq!(q.expire_now(), 10);
            let n = next(&mut s).await.unwrap();
            assert_eq!((n.expired, n.evicted), (10, 0));
            // The group's last handle dropped: the stream ends (the queue
            // is still open).
            drop(c);
            assert!(next(&mut s).await.is_none());
        })
    });
}

/// The gap-reporting async receive and stream: a gap comes before the
/// first item after it, and items plus gaps account for every push.
#[test]
fn gaps_in_band_async() {
    within_patience("gaps in band, async", || {
        current_thread(async {
            let q: Queue<u64> = Queue::builder("gaps-async")
                .memory_limit(4 * item_bytes(0u64))
                .overflow(Overflow::DropOldest)
                .sweep_interval(None)
                .build()
                .unwrap();
            let c = q.subscribe();
            q.push_batch(0..10).unwrap(); // 6 evicted unread
            let gap = c.recv_async_or_missed().await.unwrap().missed().unwrap();
            assert_eq!(gap.evicted, 6);
            let d = c.recv_async_or_missed().await.unwrap().item().unwrap();
            assert_eq!(d.seq(), 6, "the first item after the gap");
            let mut stream = c.clone().into_stream_or_missed();
            q.push_batch(10..20).unwrap();
            q.close();
            let (mut next_seq, mut lost) = (7, gap.evicted);
            while let Some(r) = next(&mut stream).await {
                match r {
                    Received::Item(d) => {
                        assert_eq!(d.seq(), next_seq);
                        next_seq += 1;
                    }
                    Received::Missed(m) => {
                        next_seq += m.total();
                        lost += m.total();
                    }
                    _ => unreachable!(),
                }
            }
            assert_eq!(next_seq, 20);
            assert_eq!(lost, c.missed().total());
            assert_eq!(c.recv_async_or_missed().await.unwrap_err(), RecvError);
            // The notice receiver's async end is an error too.
            assert_eq!(
                c.notifications().recv_async().await.map(|n| n.evicted),
                Ok(lost)
            );
            assert_eq!(c.notifications().recv_async().await, Err(RecvError));
        })
    });
}

/// An envelope as an importer from another system builds it: a UUID, a
/// creation time and a history from elsewhere.
fn remote_envelope(payload: u64) -> chunkq::Envelope<u64> {
    use chunkq::{Event, EventKind};
    let created = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    chunkq::Envelope {
        id: chunkq::Uuid::from_u128(
            0x0190_0000_0000_7000_8000_0000_0000_0000 | u128::from(payload),
        ),
        created,
        seq: 1234,
        history: vec![
            Event::new(EventKind::Enqueued, "remote", created),
            Event::new(
                EventKind::Dequeued,
                "remote",
                created + Duration::from_millis(3),
            ),
        ],
        payload,
    }
}

/// Polls `f` once with a waker that does nothing.
fn poll_once<F: Future + Unpin>(f: &mut F) -> std::task::Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    Pin::new(f).poll(&mut cx)
}

#[test]
fn push_envelope_async_waits_for_room_and_keeps_the_envelope() {
    within_patience("push_envelope_async waits", || {
        let q = tiny("envelope-wait", 4);
        let c = q.subscribe();
        while q.push(0).is_ok() {} // full under Reject; nobody has read
        let sent = remote_envelope(42);
        let mut push = Box::pin(q.push_envelope_async(sent.clone()));
        // `push_envelope` would be `Full` now: the async one waits instead.
        assert!(matches!(
            q.push_envelope(remote_envelope(1)),
            Err(PushError::Full(1))
        ));
        assert!(poll_once(&mut push).is_pending());
        // A reader on another thread makes room; its reads wake the push.
        let reader = thread::spawn(move || {
            loop {
                let d = c.recv().unwrap();
                if *d.payload() == 42 {
                    return d;
                }
                assert_eq!(*d.payload(), 0);
            }
        });
        assert_eq!(futures_executor::block_on(push).unwrap(), sent.id);
        let d = reader.join().unwrap();
        // The item kept its UUID, creation time and history; the enqueue
        // here was appended, with a sequence number of this queue.
        assert_eq!((d.id(), d.created()), (sent.id, sent.created));
        let events = d.events();
        assert_eq!(events.len(), 3);
        assert_eq!(events[..2], sent.history[..]);
        assert_eq!(
            (events[2].kind(), events[2].queue()),
            (chunkq::EventKind::Enqueued, "envelope-wait")
        );
        assert_ne!(d.seq(), sent.seq);
    });
}

#[test]
fn push_envelope_async_hands_the_payload_back() {
    within_patience("push_envelope_async errors", || {
        multi_thread(async {
            // Larger than the whole budget (its history counts): `TooLarge`
            // at once, not a wait.
            let small: Queue<u64> = Queue::builder("envelope-big")
                .memory_limit(item_bytes(0u64))
                .build()
                .unwrap();
            match small.push_envelope_async(remote_envelope(5)).await {
                Err(PushError::TooLarge(v)) => assert_eq!(v, 5),
                other => panic!("{other:?}"),
            }
            // A close while the push waits for room ends the wait.
            let q = tiny("envelope-close", 4);
            let _c = q.subscribe(); // reads nothing: the budget stays full
            while q.push(0).is_ok() {}
            let waiter = tokio::spawn({
                let q = q.clone();
                async move { q.push_envelope_async(remote_envelope(42)).await }
            });
            tokio::task::yield_now().await;
            q.close();
            match waiter.await.unwrap() {
                Err(PushError::Closed(v)) => assert_eq!(v, 42),
                other => panic!("{other:?}"),
            }
            // Closed before the call.
            match q.push_envelope_async(remote_envelope(7)).await {
                Err(PushError::Closed(v)) => assert_eq!(v, 7),
                other => panic!("{other:?}"),
            }
        })
    });
}
