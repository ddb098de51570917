//! Exact accounting under everything at once (ARCHITECTURE.md invariant 2): for
//! every consumer group, every item pushed after the group's start is either
//! delivered to exactly one member exactly once, or counted exactly once as
//! missed (expired or evicted).
//!
//! Several producers push in bursts into a queue with a tiny `DropOldest`
//! budget (so pushes evict all the time) and a short TTL on the real clock
//! with the sweeper running every millisecond. All producers pause together
//! between bursts, long enough for the sweeper to expire what slow readers
//! left behind, so both causes happen in every run. Independent consumers and
//! a clone group read at different speeds; a group joins half-way with
//! `Start::Latest` (while producers are paused, so its start is known
//! exactly); another thread subscribes and drops short-lived consumers all
//! along; a monitor checks the memory budget the whole time.
//!
//! At the end, for every group: delivered + missed == pushed since its start,
//! no sequence number delivered twice, each member's sequence numbers
//! increasing, each producer's items in push order, every group sees the same
//! payload at a given sequence number, and the notices add up to `missed()`.

mod common;

use chunkq::{
    Clock, Consumer, Missed, Overflow, PushError, Queue, RecvTimeoutError, Start, TryRecvError,
    Uuid,
};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Producer id and that producer's running count.
type Payload = (u32, u64);

/// How a reader thread reads.
#[derive(Clone, Copy, Debug)]
enum Speed {
    /// `try_recv` in a tight loop.
    Spin,
    /// `recv_timeout`, parking when there is nothing.
    Block,
    /// `recv_timeout`, and a nap every few items: falls behind.
    Slow,
}

/// What one reader thread saw.
struct Member {
    /// Its group's UUID.
    group: Uuid,
    /// (sequence number, payload) in the order it received them.
    got: Vec<(u64, Payload)>,
    /// The consumer handle, kept alive so the group stays registered until
    /// the totals are read.
    consumer: Consumer<Payload>,
}

fn spawn_reader(c: Consumer<Payload>, speed: Speed) -> JoinHandle<Member> {
    thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            let r = match speed {
                Speed::Spin => c.try_recv().map_err(|e| e == TryRecvError::Closed),
                Speed::Block | Speed::Slow => c
                    .recv_timeout(Duration::from_millis(2))
                    .map_err(|e| e == RecvTimeoutError::Closed),
            };
            match r {
                Ok(d) => {
                    got.push((d.seq(), *d.payload()));
                    if matches!(speed, Speed::Slow) && got.len() % 4 == 0 {
                        thread::sleep(Duration::from_micros(200));
                    }
                }
                Err(true) => break,
                Err(false) => {
                    if matches!(speed, Speed::Spin) {
                        thread::yield_now();
                    }
                }
            }
        }
        Member {
            group: c.id(),
            got,
            consumer: c,
        }
    })
}

/// Settings of one run.
#[derive(Clone, Copy, Debug)]
struct Setup {
    producers: u32,
    bursts: u64,
    burst: u64,
    /// Pause between bursts (all producers at once).
    pause: Duration,
    /// Budget, in items.
    budget_items: usize,
    overflow: Overflow,
    ttl: Duration,
    /// `Some`: the sweeper thread at this interval on the real clock.
    /// `None`: a manual clock, advanced by a thread that calls `expire_now`.
    sweep: Option<Duration>,
}

/// Totals of one run, for the caller's extra checks.
#[derive(Debug, Default)]
struct Totals {
    pushed: u64,
    refused: u64,
    expired: u64,
    evicted: u64,
    delivered: u64,
}

fn run(s: Setup) -> Totals {
    let item = common::item_bytes((0u32, 0u64));
    let clock = if s.sweep.is_some() {
        Clock::system()
    } else {
        Clock::manual()
    };
    let q: Queue<Payload> = Queue::builder("acct")
        .memory_limit(item * s.budget_items)
        .overflow(s.overflow)
        .ttl(s.ttl)
        .sweep_interval(s.sweep)
        .clock(clock.clone())
        .build()
        .unwrap();

    // Groups that start at sequence number 0.
    let fast = q.subscribe();
    let slow = q.subscribe();
    let blocking = q.subscribe();
    let group = q.subscribe();
    let mut starts: HashMap<Uuid, u64> = [&fast, &slow, &blocking, &group]
        .iter()
        .map(|c| (c.id(), 0))
        .collect();
    let slow_id = slow.id();
    let slow_notices = slow.notifications();
    let mut readers = vec![
        spawn_reader(fast, Speed::Spin),
        spawn_reader(slow, Speed::Slow),
        spawn_reader(blocking, Speed::Block),
        spawn_reader(group.clone(), Speed::Spin),
        spawn_reader(group.clone(), Speed::Block),
        spawn_reader(group, Speed::Slow),
    ];

    let stop = Arc::new(AtomicBool::new(false));
    // Notices of the slow group, received while everything runs.
    let listener = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut sum = Missed::default();
            let mut add = |n: chunkq::Notice| {
                sum.expired += n.expired;
                sum.evicted += n.evicted;
            };
            while !stop.load(Ordering::SeqCst) {
                if let Ok(n) = slow_notices.recv_timeout(Duration::from_millis(1)) {
                    add(n);
                }
            }
            slow_notices.try_iter().for_each(&mut add);
            sum
        })
    };
    // The budget, checked continuously from before the first push to the
    // end.
    let monitoring = Arc::new(Barrier::new(2));
    let monitor = {
        let (q, stop, monitoring) = (q.clone(), stop.clone(), monitoring.clone());
        thread::spawn(move || {
            let mut checks = 0u64;
            loop {
                let used = q.memory_used();
                assert!(used <= q.memory_limit(), "budget exceeded: {used}");
                checks += 1;
                if checks == 1 {
                    monitoring.wait();
                }
                if stop.load(Ordering::SeqCst) {
                    return checks;
                }
                thread::yield_now();
            }
        })
    };
    monitoring.wait();
    // Short-lived consumers, registering and leaving while items are
    // removed: each must still see increasing sequence numbers.
    let churn_stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (q, churn_stop) = (q.clone(), churn_stop.clone());
        thread::spawn(move || {
            let mut rounds = 0u64;
            while !churn_stop.load(Ordering::SeqCst) {
                let start = if rounds % 2 == 0 {
                    Start::Oldest
                } else {
                    Start::Latest
                };
                let c = q.subscribe_from(start);
                let mut last = None;
                for _ in 0..50 {
                    match c.try_recv() {
                        Ok(d) => {
                            assert!(last < Some(d.seq()), "churn consumer went backwards");
                            last = Some(d.seq());
                        }
                        Err(_) => thread::yield_now(),
                    }
                }
                rounds += 1;
            }
            rounds
        })
    };
    // The manual-clock variant's sweeper: time advances 1 ms per step.
    let manual_sweeper = s.sweep.is_none().then(|| {
        let (q, clock, stop) = (q.clone(), clock.clone(), churn_stop.clone());
        thread::spawn(move || {
            let mut expired = 0;
            while !stop.load(Ordering::SeqCst) {
                clock.advance(Duration::from_millis(1));
                expired += q.expire_now();
                thread::sleep(Duration::from_micros(100));
            }
            expired
        })
    });

    // Producers push bursts; everyone (main included) meets at two barriers
    // around each pause.
    let pause_start = Arc::new(Barrier::new(s.producers as usize + 1));
    let pause_end = Arc::new(Barrier::new(s.producers as usize + 1));
    // Accepted pushes, updated by each producer before it parks.
    let accepted = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..s.producers)
        .map(|p| {
            let (q, b1, b2) = (q.clone(), pause_start.clone(), pause_end.clone());
            let accepted = accepted.clone();
            thread::spawn(move || {
                let (mut ok, mut refused) = (0u64, 0u64);
                for _ in 0..s.bursts {
                    let before = ok;
                    for _ in 0..s.burst {
                        match q.push((p, ok)) {
                            Ok(_) => ok += 1,
                            Err(PushError::Full(back)) => {
                                assert_eq!(back, (p, ok));
                                assert_eq!(s.overflow, Overflow::Reject);
                                refused += 1;
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                    accepted.fetch_add(ok - before, Ordering::SeqCst);
                    b1.wait();
                    b2.wait();
                }
                (ok, refused)
            })
        })
        .collect();
    let mid = s.bursts / 2;
    for k in 0..s.bursts {
        pause_start.wait();
        if k == mid {
            // Producers are parked: the tail is exactly the number of
            // accepted pushes so far (a refused push takes no sequence
            // number), and a Latest group starts there.
            let late = q.subscribe_from(Start::Latest);
            starts.insert(late.id(), accepted.load(Ordering::SeqCst));
            readers.push(spawn_reader(late.clone(), Speed::Spin));
            readers.push(spawn_reader(late, Speed::Slow));
        }
        thread::sleep(s.pause);
        pause_end.wait();
    }
    let (mut pushed, mut refused) = (0, 0);
    for p in producers {
        let (o, r) = p.join().unwrap();
        pushed += o;
        refused += r;
    }
    churn_stop.store(true, Ordering::SeqCst);
    let churn_rounds = churn.join().unwrap();
    let manual_expired = manual_sweeper.map(|t| t.join().unwrap());
    q.close();

    let members: Vec<Member> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    // No more removals after this: producers, readers and churn are done,
    // and the last handle's drop stops and joins the sweeper.
    drop(q);
    stop.store(true, Ordering::SeqCst);
    let slow_seen = listener.join().unwrap();
    let checks = monitor.join().unwrap();

    // Check every group.
    let mut by_group: HashMap<Uuid, Vec<&Member>> = HashMap::new();
    for m in &members {
        by_group.entry(m.group).or_default().push(m);
    }
    assert_eq!(by_group.len(), 5);
    let mut payload_at: HashMap<u64, Payload> = HashMap::new();
    let mut totals = Totals {
        pushed,
        refused,
        ..Totals::default()
    };
    for (id, ms) in &by_group {
        let start = starts[id];
        let mut seen = HashSet::new();
        for m in ms {
            assert!(
                m.got.windows(2).all(|w| w[0].0 < w[1].0),
                "a member went backwards"
            );
            let mut last: HashMap<u32, u64> = HashMap::new();
            for &(seq, (p, n)) in &m.got {
                assert!(seen.insert(seq), "sequence number {seq} delivered twice");
                assert!(
                    seq >= start && seq < pushed,
                    "seq {seq} outside [{start}, {pushed})"
                );
                if let Some(prev) = last.insert(p, n) {
                    assert!(n > prev, "producer {p}: {n} after {prev}");
                }
                let first = *payload_at.entry(seq).or_insert((p, n));
                assert_eq!(first, (p, n), "groups disagree on the item at {seq}");
            }
        }
        let missed = ms[0].consumer.missed();
        for m in ms {
            assert_eq!(m.consumer.missed(), missed, "clones disagree on missed()");
        }
        let delivered = seen.len() as u64;
        assert_eq!(
            delivered + missed.total(),
            pushed - start,
            "group starting at {start}: delivered {delivered} + missed {missed:?} != pushed {}",
            pushed - start
        );
        // The notices add up to the totals (the slow group's went to the
        // listener thread as they came).
        let mut noticed = if *id == slow_id {
            slow_seen
        } else {
            Missed::default()
        };
        for n in ms[0].consumer.notifications().try_iter() {
            noticed.expired += n.expired;
            noticed.evicted += n.evicted;
        }
        assert_eq!(noticed, missed, "notices do not add up to missed()");
        totals.expired += missed.expired;
        totals.evicted += missed.evicted;
        totals.delivered += delivered;
    }
    eprintln!(
        "{s:?}\n  => {totals:?}, churn rounds {churn_rounds}, budget checks {checks}, \
         expire_now total {manual_expired:?}"
    );
    totals
}

#[test]
fn drop_oldest_with_the_sweeper_on_a_real_clock() {
    let t = run(Setup {
        producers: 3,
        bursts: 40,
        burst: 1_000,
        pause: Duration::from_millis(6),
        budget_items: 40,
        overflow: Overflow::DropOldest,
        ttl: Duration::from_millis(2),
        sweep: Some(Duration::from_millis(1)),
    });
    assert_eq!(t.pushed, 3 * 40 * 1_000);
    assert_eq!(t.refused, 0, "DropOldest never refuses a payload that fits");
    assert!(t.evicted > 0, "no eviction happened: {t:?}");
    assert!(t.expired > 0, "no expiry happened: {t:?}");
}

#[test]
fn drop_oldest_with_expire_now_racing_on_a_manual_clock() {
    let t = run(Setup {
        producers: 2,
        bursts: 40,
        burst: 1_500,
        pause: Duration::from_millis(3),
        budget_items: 100,
        overflow: Overflow::DropOldest,
        ttl: Duration::from_millis(3),
        sweep: None,
    });
    assert_eq!(t.refused, 0);
    assert!(t.evicted > 0, "no eviction happened: {t:?}");
    assert!(t.expired > 0, "no expiry happened: {t:?}");
}

#[test]
fn reject_with_the_sweeper_on_a_real_clock() {
    let t = run(Setup {
        producers: 3,
        bursts: 30,
        burst: 1_000,
        pause: Duration::from_millis(6),
        budget_items: 300,
        overflow: Overflow::Reject,
        ttl: Duration::from_millis(2),
        sweep: Some(Duration::from_millis(1)),
    });
    assert_eq!(t.evicted, 0, "Reject never evicts");
    assert!(t.expired > 0, "no expiry happened: {t:?}");
    assert_eq!(t.pushed + t.refused, 3 * 30 * 1_000);
}
