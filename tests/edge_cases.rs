//! Edge cases a demanding user hits: blocked notice receivers and the end of
//! a queue, zero-room batch reads, and durations at the ends of their range.

mod common;

use chunkq::{Consumer, Queue, RecvError, RecvTimeoutError, TryRecvError};
use common::within_patience;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

fn queue(name: &str) -> Queue<u64> {
    Queue::builder(name).sweep_interval(None).build().unwrap()
}

/// Long enough that only a wake-up ends the wait within the test's patience.
const FOREVER: Duration = Duration::from_secs(3600);

/// Blocks a notice receiver of a fresh queue's only consumer, then runs
/// `wake` on another thread with the queue and the consumer: it must end the
/// wait. What `wake` returns stays alive until the receiver has returned, so
/// that only `wake`'s own action can have woken it. The receiver must return
/// no notice (none was due), within the test's patience.
fn assert_wakes<K: Send + 'static>(
    name: &str,
    what: &str,
    wake: impl FnOnce(Queue<u64>, Consumer<u64>) -> K + Send + 'static,
) {
    let q = queue(name);
    let c = q.subscribe();
    let notices = c.notifications();
    let waiter = thread::spawn(move || notices.recv_timeout(FOREVER));
    // Give the waiter a moment to block (the test passes either way; this
    // only makes it exercise the wake-up rather than the early return).
    thread::sleep(Duration::from_millis(20));
    let got = within_patience(what, move || {
        let keep = wake(q, c);
        let got = waiter.join().unwrap();
        drop(keep);
        got
    });
    assert_eq!(
        got,
        Err(RecvTimeoutError::Closed),
        "no notice was due, and none can come"
    );
}

#[test]
fn close_wakes_a_blocked_notice_receiver() {
    assert_wakes(
        "close-wakes-notices",
        "notice receiver woken by close",
        |q, c| {
            q.close();
            (q, c)
        },
    );
}

#[test]
fn dropping_every_handle_wakes_a_blocked_notice_receiver() {
    // The queue stays open; the group goes with its last consumer.
    assert_wakes(
        "drop-wakes-notices",
        "notice receiver woken by the last consumer handle",
        |q, c| {
            drop(c);
            q
        },
    );
    // And the other way round: the consumer stays, every queue handle goes.
    assert_wakes(
        "drop-queue-wakes-notices",
        "notice receiver woken by the last queue handle",
        |q, c| {
            drop(q);
            c
        },
    );
}

#[test]
fn zero_room_batch_reads_report_the_end() {
    let q = queue("zero-room");
    let c = q.subscribe();
    let mut out = Vec::new();
    // Open: nothing to take, nothing to report.
    assert_eq!(c.try_recv_many(&mut out, 0), Ok(0));
    assert_eq!(c.recv_many(&mut out, 0), Ok(0));
    q.push(1).unwrap();
    q.close();
    // Closed but not drained: still Ok(0), the item stays.
    assert_eq!(c.try_recv_many(&mut out, 0), Ok(0));
    assert_eq!(c.recv_many(&mut out, 0), Ok(0));
    assert!(out.is_empty());
    assert_eq!(c.try_recv_many(&mut out, 8), Ok(1));
    // Closed and drained: the error, so `while ... is_ok()` loops end.
    assert_eq!(c.try_recv_many(&mut out, 0), Err(TryRecvError::Closed));
    assert_eq!(c.recv_many(&mut out, 0), Err(RecvError));
    let mut rounds = 0;
    while c.recv_many(&mut out, 0).is_ok() {
        rounds += 1;
        assert!(rounds < 10, "a zero-room loop never ends");
    }
}

#[test]
fn extreme_durations_panic_no_thread() {
    // Record panics on the sweeper threads (which a test cannot join).
    let sweeper_panics = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let seen = sweeper_panics.clone();
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = thread::current().name().unwrap_or("").to_owned();
            if name.starts_with("chunkq-sweep") {
                seen.lock().unwrap().push(format!("{name}: {info}"));
            }
            default(info);
        }));
    }
    for every in [
        Duration::MAX,
        Duration::from_secs(u64::MAX),
        Duration::from_secs(1 << 40),
    ] {
        for ttl in [
            Duration::MAX,
            Duration::from_nanos(1),
            Duration::from_secs(u64::MAX),
        ] {
            let q: Queue<u64> = Queue::builder("extreme")
                .sweep_interval(Some(every))
                .ttl(ttl)
                .build()
                .expect("extreme durations are valid settings");
            let c = q.subscribe();
            q.push(1).unwrap();
            q.expire_now();
            assert!(q.ttl() <= ttl);
            let _ = c.try_recv();
            // Closed: the longest waits return at once.
            q.close();
            assert!(c.recv_timeout(Duration::MAX).is_err());
            let notices = c.notifications();
            let waited = within_patience("a notice wait on a closed queue", move || {
                notices.recv_timeout(Duration::MAX)
            });
            // The 1 ns TTL may have expired the item before `try_recv`
            // read it: then its notice comes first; then the end.
            match waited {
                Ok(n) => assert_eq!((n.total(), ttl), (1, Duration::from_nanos(1))),
                Err(e) => assert_eq!(e, RecvTimeoutError::Closed),
            }
            // Dropping the last handle stops and joins the sweeper.
            drop(q);
        }
    }
    assert!(
        sweeper_panics.lock().unwrap().is_empty(),
        "sweeper threads panicked: {:?}",
        sweeper_panics.lock().unwrap()
    );
}
