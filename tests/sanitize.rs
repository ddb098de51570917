//! Short multi-threaded tests of chunkq's concurrent protocols, small enough
//! to run under AddressSanitizer, ThreadSanitizer and Miri
//! (`.ci/stages/50-asan.sh`, `51-tsan.sh`, `52-miri.sh`), and run by the
//! plain `cargo test` as well.
//!
//! Each test drives one protocol from several threads and then checks the
//! queue's invariants (ARCHITECTURE.md): every group sees each sequence number at
//! most once and in order, delivered + missed == pushed, the accounted bytes
//! stay within the limit, and every payload is dropped exactly once. The
//! sanitizers add what a plain run cannot see: data races, use-after-free,
//! double frees and undefined behaviour in the unsafe code on those paths.
//!
//! Sizes shrink under `cfg(miri)`, where every step is interpreted.

use chunkq::{Clock, Consumer, Delivery, Overflow, Queue, RecvTimeoutError, Start, TryRecvError};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// `normal` items in a plain or sanitizer run, `miri` under Miri.
const fn size(normal: u64, miri: u64) -> u64 {
    if cfg!(miri) { miri } else { normal }
}

/// A payload: (producer, that producer's running number).
type Tagged = (u32, u64);

/// What one reader thread saw: its group's id, the sequence numbers it
/// received, and the group's missed totals when it stopped. It hands the
/// consumer back, so the group stays registered until the test drops it.
struct Seen {
    group: chunkq::Uuid,
    seqs: Vec<u64>,
    missed: chunkq::Missed,
    consumer: Consumer<Tagged>,
}

/// How a reader thread waits for the next item.
#[derive(Clone, Copy)]
enum Wait {
    /// `try_recv` in a loop, yielding on `Empty`: the tightest race with the
    /// producers and removers.
    Spin,
    /// `recv`: parks on the eventcount until a push or the close.
    Park,
}

/// Under Miri every spin round is interpreted, so readers park there (which
/// still runs `try_recv` first on every read); elsewhere they spin.
const READ: Wait = if cfg!(miri) { Wait::Park } else { Wait::Spin };

/// The next item for `c`, or `None` once the queue is closed and drained.
fn next<T: Send + Sync + 'static>(c: &Consumer<T>, wait: Wait) -> Option<Delivery<T>> {
    match wait {
        Wait::Park => c.recv().ok(),
        Wait::Spin => loop {
            match c.try_recv() {
                Ok(d) => return Some(d),
                Err(TryRecvError::Empty) => thread::yield_now(),
                Err(TryRecvError::Closed) => return None,
            }
        },
    }
}

/// Reads `c` until the queue is closed and drained, checking on the way that
/// this thread sees strictly increasing sequence numbers and each producer's
/// items in push order.
fn drain(c: Consumer<Tagged>, wait: Wait) -> Seen {
    let mut seqs = Vec::new();
    let mut last: HashMap<u32, u64> = HashMap::new();
    while let Some(d) = next(&c, wait) {
        let (p, n) = *d.payload();
        if let Some(prev) = last.insert(p, n) {
            assert!(n > prev, "producer {p}: {n} after {prev}");
        }
        if let Some(&s) = seqs.last() {
            assert!(d.seq() > s, "seq {} after {s}", d.seq());
        }
        seqs.push(d.seq());
    }
    Seen {
        group: c.id(),
        seqs,
        missed: c.missed(),
        consumer: c,
    }
}

/// Merges what the reader threads saw per group and checks exact accounting:
/// no sequence number delivered twice within a group, and delivered + missed
/// == `pushed(group)`, the number of items pushed since the group's start.
/// Returns the per-group totals `(group, delivered, missed)`.
fn check_groups(
    seen: &[Seen],
    pushed: impl Fn(chunkq::Uuid) -> u64,
) -> Vec<(chunkq::Uuid, u64, chunkq::Missed)> {
    let mut groups: HashMap<chunkq::Uuid, (Vec<u64>, chunkq::Missed)> = HashMap::new();
    for s in seen {
        assert_eq!(s.consumer.id(), s.group);
        let e = groups.entry(s.group).or_default();
        e.0.extend_from_slice(&s.seqs);
        // Every member reads the group's totals after the close; the
        // largest is the final one.
        if s.missed.total() > e.1.total() {
            e.1 = s.missed;
        }
    }
    let mut out = Vec::new();
    for (g, (mut seqs, missed)) in groups {
        let n = seqs.len() as u64;
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len() as u64, n, "a sequence number delivered twice");
        assert_eq!(
            n + missed.total(),
            pushed(g),
            "delivered {n}, missed {missed:?}"
        );
        out.push((g, n, missed));
    }
    out
}

/// Starts `producers` threads that each push `per` tagged items into `q`,
/// checking the memory bound after every push.
fn spawn_producers(q: &Queue<Tagged>, producers: u32, per: u64) -> Vec<thread::JoinHandle<()>> {
    (0..producers)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                for n in 0..per {
                    q.push((p, n)).unwrap();
                    assert!(q.memory_used() <= q.memory_limit());
                }
            })
        })
        .collect()
}

/// Two producers, two independent consumers and a group of two clones, over
/// several chunks (`chunk_capacity` items each). Nothing is lost: every group gets every
/// item exactly once, in order, and misses nothing.
///
/// Under Miri, where each operation of a multi-threaded run costs
/// milliseconds, this thread first fills most of the first chunk alone, and
/// only one consumer (subscribed before, `Start::Oldest`) reads that part;
/// the others start at `Start::Latest`. The concurrent part is short but
/// still runs across the chunk boundary: the next chunk's install race, and
/// readers leaving the first chunk and trimming it while producers fill the
/// second.
#[test]
fn mpmc_across_chunks() {
    let (prefill, per) = if cfg!(miri) { (990, 10) } else { (0, 2_600) };
    let q: Queue<Tagged> = Queue::builder("mpmc")
        .memory_limit(64 << 20)
        .sweep_interval(None)
        .clock(Clock::manual())
        .build()
        .unwrap();
    let a = q.subscribe();
    for n in 0..prefill {
        q.push((2, n)).unwrap();
    }
    let b = q.subscribe_from(Start::Latest);
    let g1 = q.subscribe_from(Start::Latest);
    let g2 = g1.clone();
    assert_eq!(q.consumer_count(), 3);
    let oldest = a.id();
    let readers: Vec<_> = [a, b, g1, g2]
        .into_iter()
        .map(|c| thread::spawn(move || drain(c, READ)))
        .collect();
    for p in spawn_producers(&q, 2, per) {
        p.join().unwrap();
    }
    q.close();
    let seen: Vec<Seen> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    for s in seen.iter().filter(|s| s.group != oldest) {
        assert!(
            s.seqs.iter().all(|&s| s >= prefill),
            "read before its start"
        );
    }
    let expected = |g| {
        if g == oldest {
            prefill + 2 * per
        } else {
            2 * per
        }
    };
    let groups = check_groups(&seen, expected);
    assert_eq!(groups.len(), 3);
    for (g, delivered, missed) in groups {
        assert_eq!(delivered, expected(g));
        assert_eq!(missed, chunkq::Missed::default());
    }
    // Every group (still registered) read everything, so a sweep releases
    // it all: trimmed, not expired (the manual clock never moved).
    assert_eq!(q.expire_now(), 0);
    assert_eq!(q.len(), 0);
    assert_eq!(q.memory_used(), 0);
    drop(seen);
    assert_eq!(q.consumer_count(), 0);
}

/// `Overflow::DropOldest` with a budget of a few dozen items: two producers
/// evict while an independent consumer and a group of two clones read. Each
/// group accounts for every item exactly once (delivered or evicted), and
/// its notices add up to its evicted total.
#[test]
fn drop_oldest_eviction_races_readers() {
    let per = size(3_000, 60);
    let q: Queue<Tagged> = Queue::builder("evict")
        .memory_limit(4_096)
        .overflow(Overflow::DropOldest)
        .sweep_interval(None)
        .clock(Clock::manual())
        .build()
        .unwrap();
    let solo = q.subscribe();
    let g1 = q.subscribe();
    let g2 = g1.clone();
    let notices = [solo.notifications(), g1.notifications()];
    let readers: Vec<_> = [solo, g1, g2]
        .into_iter()
        .map(|c| thread::spawn(move || drain(c, READ)))
        .collect();
    for p in spawn_producers(&q, 2, per) {
        p.join().unwrap();
    }
    q.close();
    let seen: Vec<Seen> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let groups = check_groups(&seen, |_| 2 * per);
    assert_eq!(groups.len(), 2);
    let evicted: u64 = notices
        .iter()
        .flat_map(|n| n.try_iter())
        .map(|n| {
            assert_eq!(n.expired, 0);
            n.evicted
        })
        .sum();
    let missed: u64 = groups.iter().map(|(_, _, m)| m.evicted).sum();
    assert_eq!(evicted, missed, "notices vs missed totals");
    for (_, _, m) in &groups {
        assert_eq!(m.expired, 0);
    }
    assert!(q.memory_used() <= q.memory_limit());
}

/// Expiry by `expire_now` on a manual clock, racing one producer and three
/// readers (one alone, two clones of a group). The sweeping thread moves the
/// clock past the TTL before each sweep, so items do expire while readers
/// are taking them. Each group accounts for every item exactly once
/// (delivered or expired), nothing is evicted, and no group missed more
/// items than the sweeps expired in all.
#[test]
fn expire_now_races_readers() {
    let per = size(4_000, 100);
    let clock = Clock::manual();
    let q: Queue<Tagged> = Queue::builder("expire")
        .memory_limit(64 << 20)
        .ttl(Duration::from_secs(1))
        .sweep_interval(None)
        .clock(clock.clone())
        .build()
        .unwrap();
    let solo = q.subscribe();
    let g1 = q.subscribe();
    let g2 = g1.clone();
    let notices = [solo.notifications(), g1.notifications()];
    let readers: Vec<_> = [solo, g1, g2]
        .into_iter()
        .map(|c| thread::spawn(move || drain(c, READ)))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let sweeper = {
        let (q, done) = (q.clone(), done.clone());
        thread::spawn(move || {
            let mut expired = 0u64;
            while !done.load(Ordering::SeqCst) {
                clock.advance(Duration::from_millis(600));
                expired += q.expire_now() as u64;
                thread::yield_now();
            }
            // One last sweep after every push: whatever is left goes now.
            clock.advance(Duration::from_secs(2));
            expired + q.expire_now() as u64
        })
    };
    for p in spawn_producers(&q, 1, per) {
        p.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let expired = sweeper.join().unwrap();
    q.close();
    let seen: Vec<Seen> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let groups = check_groups(&seen, |_| per);
    assert_eq!(groups.len(), 2);
    let noticed: u64 = notices
        .iter()
        .flat_map(|n| n.try_iter())
        .map(|n| {
            assert_eq!(n.evicted, 0);
            n.expired
        })
        .sum();
    for (_, _, m) in &groups {
        assert_eq!(m.evicted, 0);
        assert!(m.expired <= expired, "missed {m:?}, swept {expired}");
    }
    assert_eq!(
        noticed,
        groups.iter().map(|(_, _, m)| m.expired).sum::<u64>()
    );
    // The final sweep ran after every push with the clock past every TTL.
    assert_eq!(q.len(), 0);
    assert_eq!(q.memory_used(), 0);
}

/// Blocking receivers (two clones of a group on `recv`, one independent
/// consumer on `recv_timeout`) park while a producer pushes in bursts and
/// then closes. A lost wake-up would leave a receiver parked forever; a
/// lost item would break the counts. After the close every receiver ends
/// with the close, not a timeout.
#[test]
fn blocking_recv_push_close() {
    let bursts = size(200, 8);
    let burst = 7u64;
    let q: Queue<Tagged> = Queue::builder("block")
        .memory_limit(64 << 20)
        .sweep_interval(None)
        .clock(Clock::manual())
        .build()
        .unwrap();
    let g1 = q.subscribe();
    let g2 = g1.clone();
    let solo = q.subscribe();
    let group_readers: Vec<_> = [g1, g2]
        .into_iter()
        .map(|c| {
            thread::spawn(move || {
                let mut sum = 0u64;
                let mut count = 0u64;
                while let Ok(d) = c.recv() {
                    sum += d.payload().1;
                    count += 1;
                }
                (count, sum)
            })
        })
        .collect();
    let solo_reader = thread::spawn(move || {
        let mut next = 0u64;
        loop {
            match solo.recv_timeout(Duration::from_secs(3600)) {
                Ok(d) => {
                    assert_eq!(d.payload().1, next, "in order, none lost");
                    next += 1;
                }
                Err(RecvTimeoutError::Closed) => return next,
                Err(RecvTimeoutError::Timeout) => panic!("parked for an hour"),
            }
        }
    });
    let mut n = 0u64;
    for _ in 0..bursts {
        for _ in 0..burst {
            q.push((0, n)).unwrap();
            n += 1;
        }
        // Let the receivers drain and park again before the next burst.
        thread::yield_now();
    }
    q.close();
    let (count, sum) = group_readers
        .into_iter()
        .map(|r| r.join().unwrap())
        .fold((0, 0), |(c, s), (c1, s1)| (c + c1, s + s1));
    assert_eq!(count, n, "the group received each item once");
    assert_eq!(sum, n * (n - 1) / 2);
    assert_eq!(solo_reader.join().unwrap(), n);
}

/// A receiver parked on an empty queue wakes up when the queue is closed by
/// dropping its last handle on another thread.
#[test]
fn close_by_last_handle_drop_wakes_receiver() {
    let q: Queue<Tagged> = Queue::builder("close")
        .sweep_interval(None)
        .clock(Clock::manual())
        .build()
        .unwrap();
    let c = q.subscribe();
    let reader = thread::spawn(move || c.recv().is_err());
    let closer = thread::spawn(move || {
        thread::yield_now();
        drop(q);
    });
    closer.join().unwrap();
    assert!(
        reader.join().unwrap(),
        "recv after the close returned an item"
    );
}

/// A payload that counts its drops.
struct Tracked {
    /// Incremented once when this payload is dropped.
    drops: Arc<AtomicUsize>,
    /// Producer and running number, so readers check order.
    tag: Tagged,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Lets crossbeam-epoch run the drops it deferred (items removed from the
/// queue are freed by the epoch collector, a little after they leave) until
/// `drops` reaches `expected`. Each `flush` collects only a few sealed bags,
/// and tests running beside this one add garbage of their own, so it flushes
/// until the count is reached, up to a bound that only a leak exhausts.
fn flush_epoch_until(drops: &AtomicUsize, expected: usize) {
    let rounds = if cfg!(miri) { 2_000 } else { 100_000 };
    for _ in 0..rounds {
        if drops.load(Ordering::SeqCst) >= expected {
            return;
        }
        crossbeam_epoch::pin().flush();
        thread::yield_now();
    }
}

/// Every payload is dropped exactly once, whichever way it leaves: delivered
/// (the delivery drops it), evicted by `DropOldest`, expired by the
/// background sweeper thread, released after every group read it, or still
/// retained when the last handle drops. Two producers and two readers (one
/// of them slow) race, with the sweeper running every millisecond; the
/// payloads hold an `Arc` that ASan and Miri watch for leaks and
/// use-after-free.
#[test]
fn drops_counted_with_arc_payloads() {
    let per = size(3_000, 60);
    let drops = Arc::new(AtomicUsize::new(0));
    let q: Queue<Tracked> = Queue::builder("drops")
        .memory_limit(8_192)
        .overflow(Overflow::DropOldest)
        .ttl(Duration::from_millis(1))
        .sweep_interval(Some(Duration::from_millis(1)))
        .sizer(|_: &Tracked| 0)
        .build()
        .unwrap();
    let fast = q.subscribe();
    let slow = q.subscribe();
    let readers: Vec<_> = [(fast, false), (slow, true)]
        .into_iter()
        .map(|(c, slow)| {
            thread::spawn(move || {
                let mut got = 0u64;
                let mut last: HashMap<u32, u64> = HashMap::new();
                while let Some(d) = next(&c, READ) {
                    let (p, n) = d.payload().tag;
                    if let Some(prev) = last.insert(p, n) {
                        assert!(n > prev);
                    }
                    got += 1;
                    // Keep some deliveries alive past their removal from the
                    // queue.
                    if slow && got % 16 == 0 {
                        thread::sleep(Duration::from_micros(200));
                    }
                }
                (got, c)
            })
        })
        .collect();
    let producers: Vec<_> = (0..2u32)
        .map(|p| {
            let (q, drops) = (q.clone(), drops.clone());
            thread::spawn(move || {
                for n in 0..per {
                    let item = Tracked {
                        drops: drops.clone(),
                        tag: (p, n),
                    };
                    // DropOldest and a zero payload estimate: a push fails
                    // only if the queue is closed, and it is not yet.
                    assert!(q.push(item).is_ok(), "push failed");
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    q.close();
    let readers: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    // Dropping the last handle joins the sweeper: every miss it found is
    // counted now (see `missed_is_final_when_recv_reports_closed`).
    drop(q);
    for (got, c) in readers {
        assert_eq!(got + c.missed().total(), 2 * per, "delivered + missed");
    }
    flush_epoch_until(&drops, 2 * per as usize);
    // Exactly: more would be a double drop.
    assert_eq!(drops.load(Ordering::SeqCst), 2 * per as usize);
    assert_eq!(Arc::strong_count(&drops), 1, "a payload leaked");
}

/// Once `try_recv` has said `Closed`, this consumer's `missed()` totals are
/// final: every item of its group was delivered or counted.
///
/// A remover moves a group's cursor with a CAS and only then adds the count
/// (`Log::move_cursor`). A consumer that ran between the two saw its cursor at
/// the tail, got `Closed`, and read `missed()` one item short. Since the fix,
/// `missed()` waits for every cursor move begun before it; without that wait
/// this test failed within a few hundred rounds (release build, 2 cores).
#[test]
fn missed_is_final_when_recv_reports_closed() {
    let rounds = if cfg!(miri) { 5 } else { 2_000 };
    for round in 0..rounds {
        let clock = Clock::manual();
        let q: Queue<u64> = Queue::builder("closed")
            .ttl(Duration::from_secs(1))
            .sweep_interval(None)
            .clock(clock.clone())
            .build()
            .unwrap();
        let c = q.subscribe();
        q.push(1).unwrap();
        clock.advance(Duration::from_secs(2));
        q.close();
        let sweeper = {
            let q = q.clone();
            thread::spawn(move || q.expire_now())
        };
        // Wait until the sweeper has claimed the item (moved `head`); its
        // help then moves our cursor and counts the miss.
        while !q.is_empty() {
            std::hint::spin_loop();
        }
        let mut got = 0;
        loop {
            match c.try_recv() {
                Ok(_) => got += 1,
                Err(TryRecvError::Empty) => panic!("Empty from a closed queue"),
                Err(TryRecvError::Closed) => break,
            }
        }
        let missed = c.missed().total();
        assert_eq!(sweeper.join().unwrap(), 1);
        assert_eq!(
            got + missed,
            1,
            "round {round}: Closed before the miss was counted (a moment later: {:?})",
            c.missed()
        );
    }
}

/// Deliveries held across the removal of their items and the drop of their
/// queue: the inline slot's owner count, the chunk reference a cleared slot
/// leaves to its last delivery (released on another thread here), moving a
/// payload out of a cleared slot (`try_into_payload`), and enqueue events
/// that borrow the queue's name from the chunk (cloned and turned into an
/// envelope after the queue is gone). Every payload is dropped once.
#[test]
fn deliveries_and_events_outlive_their_items_and_queue() {
    // Enough pushes past a budget of ~20 items that evictions clear slots
    // (their clearing runs a few collections later) while deliveries hold
    // them.
    let n = size(400, 120);
    let q: Queue<String> = Queue::builder("outlive")
        .memory_limit(2048)
        .overflow(Overflow::DropOldest)
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    let mut held = Vec::new();
    for i in 0..n {
        q.push(format!("item-{i}")).unwrap();
        // Keep every item this consumer can still get; the pushes evict
        // the older ones under it.
        while let Ok(d) = c.try_recv() {
            held.push(d);
        }
    }
    assert!(held.len() as u64 >= n / 2, "{} of {n}", held.len());
    let events: Vec<_> = held.iter().map(|d| d.events()[0].clone()).collect();
    let envelope = held[0].to_envelope();
    drop(q);
    // Half the deliveries drop on another thread (last owner of a cleared
    // slot: it drops the payload and releases the chunk reference there).
    let second_half = held.split_off(held.len() / 2);
    let dropper = thread::spawn(move || {
        let mut names = 0;
        for d in second_half {
            names += usize::from(d.queue() == "outlive");
        }
        names
    });
    // The other half: the payload moved out of its slot where possible.
    // An evicted slot is cleared one grace period after the eviction, so
    // drive the collector until one is (a bounded number of rounds).
    let mut rest = held;
    let mut moved = 0;
    for _ in 0..100_000 {
        let mut still = Vec::new();
        for d in rest {
            match d.try_into_payload() {
                Ok(p) => {
                    assert!(p.starts_with("item-"));
                    moved += 1;
                }
                Err(d) => {
                    assert!(d.payload().starts_with("item-"));
                    still.push(d);
                }
            }
        }
        rest = still;
        if moved > 0 {
            break;
        }
        crossbeam_epoch::pin().flush();
    }
    drop(rest);
    assert!(dropper.join().unwrap() > 0);
    assert!(moved > 0, "cleared slots hand their payload out");
    drop(c);
    for e in &events {
        assert_eq!(e.queue(), "outlive");
    }
    assert_eq!(envelope.history[0].queue(), "outlive");
    assert_eq!(envelope.history.len(), 2);
}
