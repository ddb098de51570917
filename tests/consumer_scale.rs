//! Scale in consumers (issue 8, section E): 1, 10, 100 and 1,000
//! independent consumers plus one 4-clone group on one queue, with churn,
//! and exact accounting for every one of them (README guarantee 2).
//!
//! One queue per test: a `DropOldest` budget of a few hundred items and a
//! short TTL on a manual clock, so items really are evicted and expired
//! while consumers lag. The run goes in phases; in each:
//!
//! - two producer threads push a fixed number of items each;
//! - two drainer threads visit their share of the independent consumers
//!   round-robin (not one thread per consumer), each consumer reading a
//!   little per visit (`try_recv`, `try_recv_many` of 8, or everything
//!   available), so most of them lag;
//! - four threads read one consumer group (a consumer and 3 clones) with
//!   `try_recv`, `try_recv_many`, `try_recv` and a yield, and
//!   `recv_timeout`;
//! - a sweeper thread advances the manual clock and calls `expire_now`;
//! - the drainers churn: they drop one of their consumers and subscribe a
//!   `Start::Latest` one in its place while the producers run. Its start is
//!   only known to lie in a window (`tail` between two reads of the accepted
//!   count, plus the pushes in flight), so for these the check is that
//!   `pushed - delivered - missed` lies in that window and below every
//!   sequence number they got.
//!
//! Between phases every thread is parked at a barrier and the main thread
//! works on a quiet queue: it pushes twice the budget (so every consumer
//! misses items by eviction), advances the clock past the TTL and sweeps (so
//! every consumer misses the rest by expiry), pushes a few items, then drops
//! a tenth of the consumers and subscribes as many new ones, alternately
//! `Start::Oldest` (start = accepted pushes - `len()`, exact on a quiet
//! queue) and `Start::Latest` (start = accepted pushes).
//!
//! At the end the queue is closed and every consumer drains to
//! `TryRecvError::Closed` (then `missed()` is final). Each must show: no
//! sequence number twice, increasing sequence numbers, each producer's items
//! in push order, the same payload at a sequence number as every other
//! consumer, delivered + missed == pushed since it subscribed, notices that
//! add up to `missed()`, and (having lived through a quiet phase) some items
//! missed by eviction and some by expiry. For the group, the union of what
//! the 4 clones got must be exact, and no two clones got the same item.

mod common;

use chunkq::{Clock, Consumer, Delivery, Missed, Overflow, Queue, Start, TryRecvError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Producer id and that producer's running count.
type Payload = (u32, u64);

/// Producer threads.
const PRODUCERS: u32 = 2;
/// The producer id of the main thread's pushes between phases.
const MAIN: u32 = PRODUCERS;
/// Threads that read the independent consumers.
const DRAINERS: usize = 2;
/// Members of the consumer group (a consumer and its clones).
const MEMBERS: usize = 4;
/// Phases (each followed by a quiet window).
const PHASES: u64 = 8;
/// Items each producer pushes per phase.
const PER_PHASE: u64 = 2_500;
/// The budget, in items.
const BUDGET_ITEMS: u64 = 150;
/// Pushed by the main thread in each quiet window: twice the budget, then
/// (after the sweep) a few that stay for the next phase.
const FLOOD: u64 = 2 * BUDGET_ITEMS;
const TOP_UP: u64 = BUDGET_ITEMS / 2;
/// Concurrent churn: replacements per drainer per phase.
const CHURN_PER_PHASE: usize = 2;
/// The time to live, on the manual clock.
const TTL: Duration = Duration::from_millis(20);

/// Every item pushed in a run.
const TOTAL: u64 = PHASES * (PRODUCERS as u64 * PER_PHASE + FLOOD + TOP_UP);

/// The payload delivered at each sequence number, recorded by whoever saw
/// it first: every consumer must agree.
struct Book(Vec<AtomicU64>);

impl Book {
    fn new() -> Self {
        Self((0..TOTAL).map(|_| AtomicU64::new(0)).collect())
    }

    fn check(&self, seq: u64, (p, n): Payload) {
        assert!(
            seq < TOTAL,
            "sequence number {seq} beyond the {TOTAL} pushed"
        );
        let code = ((u64::from(p) + 1) << 48) | n;
        if let Err(first) =
            self.0[seq as usize].compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed)
        {
            assert_eq!(
                first, code,
                "consumers disagree on the payload at sequence number {seq}"
            );
        }
    }
}

/// From where a consumer is owed items.
#[derive(Clone, Copy, Debug)]
enum Owed {
    /// Exactly from this sequence number (subscribed on a quiet queue).
    Exact(u64),
    /// From some sequence number in `lo..=hi` (subscribed while producers
    /// ran).
    Window(u64, u64),
}

/// How a drainer reads a consumer on each visit.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// One `try_recv`.
    One,
    /// One `try_recv_many` of up to 8.
    Few,
    /// `try_recv_many` of up to 64 until empty.
    All,
}

/// One independent consumer and what it saw so far.
struct Tracker {
    c: Consumer<Payload>,
    owed: Owed,
    style: Style,
    delivered: u64,
    first: Option<u64>,
    last: Option<u64>,
    /// Last count seen from each producer (the main thread is `MAIN`).
    last_n: [Option<u64>; PRODUCERS as usize + 1],
    /// Lived through a quiet window (its flood and its sweep).
    veteran: bool,
}

impl Tracker {
    fn new(c: Consumer<Payload>, owed: Owed, k: usize) -> Self {
        let style = [Style::One, Style::Few, Style::All][k % 3];
        Self {
            c,
            owed,
            style,
            delivered: 0,
            first: None,
            last: None,
            last_n: [None; PRODUCERS as usize + 1],
            veteran: false,
        }
    }

    fn see(&mut self, d: &Delivery<Payload>, book: &Book) {
        let (seq, (p, n)) = (d.seq(), *d.payload());
        assert!(
            self.last < Some(seq),
            "consumer went backwards or got a duplicate: {seq} after {:?}",
            self.last
        );
        if let Owed::Exact(from) = self.owed {
            assert!(seq >= from, "got {seq}, pushed before its start {from}");
        }
        let prev = self.last_n[p as usize].replace(n);
        assert!(prev < Some(n), "producer {p}: {n} after {prev:?}");
        book.check(seq, (p, n));
        self.first.get_or_insert(seq);
        self.last = Some(seq);
        self.delivered += 1;
    }

    /// One visit; `Err(Closed)` once the consumer is drained and closed.
    fn visit(&mut self, buf: &mut Vec<Delivery<Payload>>, book: &Book) -> Result<(), TryRecvError> {
        match self.style {
            Style::One => {
                let d = self.c.try_recv()?;
                self.see(&d, book);
            }
            Style::Few | Style::All => {
                let max = if matches!(self.style, Style::Few) {
                    8
                } else {
                    64
                };
                loop {
                    buf.clear();
                    self.c.try_recv_many(buf, max)?;
                    for d in buf.drain(..) {
                        self.see(&d, book);
                    }
                    if matches!(self.style, Style::Few) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads until the (closed) queue reports `Closed`.
    fn drain(&mut self, buf: &mut Vec<Delivery<Payload>>, book: &Book) {
        loop {
            match self.visit(buf, book) {
                Ok(()) | Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Closed) => return,
            }
        }
    }

    /// The final checks, after `drain`; returns its totals.
    fn check(&self, pushed: u64) -> Missed {
        let missed = self.c.missed();
        let mut noticed = Missed::default();
        for n in self.c.notifications().try_iter() {
            noticed.expired += n.expired;
            noticed.evicted += n.evicted;
        }
        assert_eq!(noticed, missed, "notices do not add up to missed()");
        let accounted = self.delivered + missed.total();
        match self.owed {
            Owed::Exact(from) => assert_eq!(
                accounted,
                pushed - from,
                "consumer owed from {from}: delivered {} + missed {missed:?} != pushed since \
                 ({})",
                self.delivered,
                pushed - from
            ),
            Owed::Window(lo, hi) => {
                // Exact accounting means its start is pushed - accounted;
                // that must be where it could have started, and before all
                // it got.
                let start = pushed.checked_sub(accounted).unwrap_or_else(|| {
                    panic!(
                        "consumer subscribed in [{lo}, {hi}]: delivered {} + missed {missed:?} \
                         > pushed {pushed}",
                        self.delivered
                    )
                });
                assert!(
                    (lo..=hi).contains(&start),
                    "consumer subscribed at a tail in [{lo}, {hi}]: delivered {} + missed \
                     {missed:?} implies a start at {start}",
                    self.delivered
                );
                assert!(
                    self.first.is_none_or(|f| f >= start),
                    "consumer with implied start {start} got {:?}",
                    self.first
                );
            }
        }
        if self.veteran {
            assert!(
                missed.evicted > 0 && missed.expired > 0,
                "a consumer that lived through a flood and a sweep missed {missed:?}"
            );
        }
        missed
    }
}

/// What the threads share.
struct Shared {
    q: Queue<Payload>,
    clock: Clock,
    book: Book,
    /// Accepted pushes (producers add 1 after each push returns).
    accepted: AtomicU64,
    /// Producers that finished their part of a phase (cumulative).
    done: AtomicU64,
    /// Set, with the queue closed, before the last `start` gate.
    closing: AtomicBool,
    /// Set when a thread of the run panics: the gates open with a panic
    /// and the phase loops end, so a failure shows at once, not as a hang.
    failed: AtomicBool,
    start: Gate,
    end: Gate,
}

impl Shared {
    /// Whether the producers finished phase `phase` (or the run failed).
    fn phase_over(&self, phase: u64) -> bool {
        self.done.load(Ordering::SeqCst) >= (phase + 1) * u64::from(PRODUCERS)
            || self.failed.load(Ordering::SeqCst)
    }

    /// Waits at `start`; false when the run is over.
    fn next_phase(&self) -> bool {
        self.start.wait(&self.failed);
        !self.closing.load(Ordering::SeqCst)
    }

    /// Waits at `end`.
    fn end_phase(&self) {
        self.end.wait(&self.failed);
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
        self.start.open();
        self.end.open();
    }
}

/// A reusable barrier (like `std::sync::Barrier`) that a failing thread can
/// open: waiters then panic instead of waiting for ever.
struct Gate {
    parties: usize,
    /// Threads waiting, and the generation.
    state: Mutex<(usize, u64)>,
    cv: Condvar,
}

impl Gate {
    fn new(parties: usize) -> Self {
        Self {
            parties,
            state: Mutex::new((0, 0)),
            cv: Condvar::new(),
        }
    }

    fn wait(&self, failed: &AtomicBool) {
        let mut g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = g.1;
        g.0 += 1;
        if g.0 == self.parties {
            *g = (0, generation + 1);
            self.cv.notify_all();
            return;
        }
        while g.1 == generation {
            assert!(
                !failed.load(Ordering::SeqCst),
                "another thread of the run failed (see its panic above)"
            );
            g = self.cv.wait(g).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Wakes every waiter (after `failed` was set).
    fn open(&self) {
        let _g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.cv.notify_all();
    }
}

/// Calls [`Shared::fail`] if dropped while its thread panics.
struct FailOnPanic(Arc<Shared>);

impl Drop for FailOnPanic {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.fail();
        }
    }
}

/// Spawns a thread of the run (see [`FailOnPanic`]).
fn spawn<R: Send + 'static>(
    s: Arc<Shared>,
    f: impl FnOnce() -> R + Send + 'static,
) -> JoinHandle<R> {
    let guard = FailOnPanic(s);
    thread::spawn(move || {
        let _guard = guard;
        f()
    })
}

fn producer(s: Arc<Shared>, p: u32) -> JoinHandle<()> {
    spawn(s.clone(), move || {
        let mut n = 0u64;
        while s.next_phase() {
            for _ in 0..PER_PHASE {
                s.q.push((p, n))
                    .expect("DropOldest never refuses a payload that fits");
                n += 1;
                s.accepted.fetch_add(1, Ordering::SeqCst);
                // Let the readers in now and then (2 cores): interleaving,
                // not synchronisation.
                if n % 64 == 0 {
                    thread::yield_now();
                }
            }
            s.done.fetch_add(1, Ordering::SeqCst);
            s.end_phase();
        }
    })
}

/// Reads its share of the independent consumers; returns the number of
/// consumers it replaced while producers ran.
fn drainer(s: Arc<Shared>, mine: Arc<Mutex<Vec<Tracker>>>, d: usize) -> JoinHandle<u64> {
    spawn(s.clone(), move || {
        let mut buf = Vec::new();
        let mut phase = 0;
        let mut replaced = 0u64;
        while s.next_phase() {
            let mut ts = mine.lock().unwrap();
            let mut churned = 0;
            let mut round = 0usize;
            while !s.phase_over(phase) {
                for t in ts.iter_mut() {
                    match t.visit(&mut buf, &s.book) {
                        Ok(()) | Err(TryRecvError::Empty) => {}
                        Err(TryRecvError::Closed) => panic!("closed during a phase"),
                    }
                }
                // Replace a consumer while the producers run (not in the
                // last phase: every consumer at the end has lived through a
                // quiet window).
                if churned < CHURN_PER_PHASE && phase + 1 < PHASES && !ts.is_empty() {
                    let k = (round * 7 + d) % ts.len();
                    drop(ts.swap_remove(k));
                    let lo = s.accepted.load(Ordering::SeqCst);
                    let c = s.q.subscribe_from(Start::Latest);
                    // Each producer has at most one push between its tail
                    // reservation and its `accepted` increment.
                    let hi = s.accepted.load(Ordering::SeqCst) + u64::from(PRODUCERS);
                    ts.push(Tracker::new(c, Owed::Window(lo, hi), round + d));
                    churned += 1;
                    replaced += 1;
                }
                round += 1;
                thread::yield_now();
            }
            drop(ts);
            phase += 1;
            s.end_phase();
        }
        for t in mine.lock().unwrap().iter_mut() {
            t.drain(&mut buf, &s.book);
        }
        replaced
    })
}

/// One member of the group: returns the (sequence number, payload) pairs it
/// got.
fn member(s: Arc<Shared>, c: Consumer<Payload>, m: usize) -> JoinHandle<Vec<(u64, Payload)>> {
    spawn(s.clone(), move || {
        let mut got: Vec<(u64, Payload)> = Vec::new();
        let mut buf = Vec::new();
        let mut read = |got: &mut Vec<(u64, Payload)>| -> Result<(), TryRecvError> {
            match m {
                0 | 2 => {
                    let d = c.try_recv()?;
                    got.push((d.seq(), *d.payload()));
                    if m == 2 {
                        thread::yield_now();
                    }
                }
                1 => {
                    buf.clear();
                    c.try_recv_many(&mut buf, 8)?;
                    got.extend(buf.iter().map(|d| (d.seq(), *d.payload())));
                }
                _ => match c.recv_timeout(Duration::from_millis(1)) {
                    Ok(d) => got.push((d.seq(), *d.payload())),
                    Err(chunkq::RecvTimeoutError::Timeout) => return Err(TryRecvError::Empty),
                    Err(chunkq::RecvTimeoutError::Closed) => return Err(TryRecvError::Closed),
                },
            }
            Ok(())
        };
        let mut phase = 0;
        while s.next_phase() {
            while !s.phase_over(phase) {
                match read(&mut got) {
                    Ok(()) => {}
                    Err(TryRecvError::Empty) => thread::yield_now(),
                    Err(TryRecvError::Closed) => panic!("closed during a phase"),
                }
            }
            phase += 1;
            s.end_phase();
        }
        // Until `Closed`: then `missed()` is final.
        while read(&mut got) != Err(TryRecvError::Closed) {}
        assert!(
            got.windows(2).all(|w| w[0].0 < w[1].0),
            "group member {m} went backwards"
        );
        let mut last_n = [None; PRODUCERS as usize + 1];
        for &(seq, (p, n)) in &got {
            let prev = last_n[p as usize].replace(n);
            assert!(
                prev < Some(n),
                "group member {m}, producer {p}: {n} after {prev:?}"
            );
            s.book.check(seq, (p, n));
        }
        got
    })
}

/// Sweeps on the manual clock while the producers run.
fn sweeper(s: Arc<Shared>) -> JoinHandle<u64> {
    spawn(s.clone(), move || {
        let mut expired = 0u64;
        let mut phase = 0;
        while s.next_phase() {
            while !s.phase_over(phase) {
                s.clock.advance(TTL / 4);
                expired += s.q.expire_now() as u64;
                thread::yield_now();
            }
            phase += 1;
            s.end_phase();
        }
        expired
    })
}

fn run(n: usize) {
    let clock = Clock::manual();
    let item = common::item_bytes((0u32, 0u64));
    let q: Queue<Payload> = Queue::builder("scale")
        .memory_limit(item * BUDGET_ITEMS as usize)
        .overflow(Overflow::DropOldest)
        .ttl(TTL)
        .sweep_interval(None)
        .clock(clock.clone())
        .build()
        .unwrap();
    // Producers, drainers, members, the sweeper, and main.
    let parties = PRODUCERS as usize + DRAINERS + MEMBERS + 2;
    let s = Arc::new(Shared {
        q: q.clone(),
        clock,
        book: Book::new(),
        accepted: AtomicU64::new(0),
        done: AtomicU64::new(0),
        closing: AtomicBool::new(false),
        failed: AtomicBool::new(false),
        start: Gate::new(parties),
        end: Gate::new(parties),
    });
    let _fail = FailOnPanic(s.clone());

    // Everyone subscribes before the first push: owed from 0.
    let group = q.subscribe();
    let group_missed = group.clone();
    let shares: Vec<Arc<Mutex<Vec<Tracker>>>> = (0..DRAINERS)
        .map(|_| Arc::new(Mutex::new(Vec::new())))
        .collect();
    for k in 0..n {
        let t = Tracker::new(q.subscribe(), Owed::Exact(0), k);
        shares[k % DRAINERS].lock().unwrap().push(t);
    }
    assert_eq!(q.consumer_count(), n + 1);

    let producers: Vec<_> = (0..PRODUCERS).map(|p| producer(s.clone(), p)).collect();
    let drainers: Vec<_> = (0..DRAINERS)
        .map(|d| drainer(s.clone(), shares[d].clone(), d))
        .collect();
    let members: Vec<_> = (0..MEMBERS)
        .map(|m| member(s.clone(), group.clone(), m))
        .collect();
    drop(group);
    let sweeper = sweeper(s.clone());

    let mut main_n = 0u64;
    let mut push_main = |count: u64| {
        for _ in 0..count {
            q.push((MAIN, main_n)).unwrap();
            main_n += 1;
            s.accepted.fetch_add(1, Ordering::SeqCst);
        }
    };
    let mut window_churn = 0u64;
    let mut next_k = n;
    for phase in 0..PHASES {
        s.next_phase();
        s.end_phase();
        // A quiet queue: every other thread is parked at `start`.
        assert!(q.memory_used() <= q.memory_limit());
        for share in &shares {
            for t in share.lock().unwrap().iter_mut() {
                t.veteran = true;
            }
        }
        // Twice the budget while nobody reads: every consumer misses items
        // by eviction.
        push_main(FLOOD);
        // Past the TTL: every consumer misses the rest by expiry.
        s.clock.advance(TTL + Duration::from_millis(1));
        assert!(
            q.expire_now() > 0,
            "phase {phase}: the sweep expired nothing"
        );
        assert_eq!(
            q.len(),
            0,
            "phase {phase}: items left after a sweep past the TTL"
        );
        // A few items that stay, then churn (not after the last phase).
        push_main(TOP_UP);
        if phase + 1 < PHASES {
            let pushed = s.accepted.load(Ordering::SeqCst);
            let retained = q.retained() as u64;
            assert!(retained <= TOP_UP);
            let churn = n.div_ceil(10);
            for i in 0..churn {
                // Replace one in a non-empty share (the count stays `n`).
                let d = (0..DRAINERS)
                    .map(|j| (phase as usize + i + j) % DRAINERS)
                    .find(|&d| !shares[d].lock().unwrap().is_empty())
                    .expect("n >= 1");
                let mut share = shares[d].lock().unwrap();
                let k = (i * 13 + phase as usize) % share.len();
                drop(share.swap_remove(k));
                let (start, owed) = if (phase as usize + i) % 2 == 0 {
                    (Start::Oldest, pushed - retained)
                } else {
                    (Start::Latest, pushed)
                };
                share.push(Tracker::new(
                    q.subscribe_from(start),
                    Owed::Exact(owed),
                    next_k,
                ));
                next_k += 1;
                window_churn += 1;
            }
        }
    }
    s.closing.store(true, Ordering::SeqCst);
    q.close();
    s.next_phase();

    for p in producers {
        p.join().unwrap();
    }
    let concurrent_churn: u64 = drainers.into_iter().map(|d| d.join().unwrap()).sum();
    let got: Vec<Vec<(u64, Payload)>> = members.into_iter().map(|m| m.join().unwrap()).collect();
    let swept = sweeper.join().unwrap();
    let pushed = s.accepted.load(Ordering::SeqCst);
    assert_eq!(pushed, TOTAL);
    assert_eq!(
        q.consumer_count(),
        n + 1,
        "churn changed the consumer count"
    );

    // The group: the union of the 4 members, each item once.
    let mut union: Vec<u64> = got.iter().flatten().map(|&(seq, _)| seq).collect();
    union.sort_unstable();
    assert!(
        union.windows(2).all(|w| w[0] < w[1]),
        "two members of the group got the same item"
    );
    let gm = group_missed.missed();
    assert_eq!(
        union.len() as u64 + gm.total(),
        pushed,
        "group: delivered {} + missed {gm:?} != pushed {pushed}",
        union.len()
    );
    assert!(gm.evicted > 0 && gm.expired > 0, "group missed {gm:?}");

    // Every independent consumer.
    let mut totals = Missed::default();
    let (mut delivered, mut consumers) = (0u64, 0usize);
    for share in &shares {
        for t in share.lock().unwrap().iter() {
            let m = t.check(pushed);
            assert!(
                t.veteran,
                "every consumer at the end lived through a window"
            );
            totals.expired += m.expired;
            totals.evicted += m.evicted;
            delivered += t.delivered;
            consumers += 1;
        }
    }
    assert_eq!(consumers, n);
    eprintln!(
        "{n} consumers + a group of {MEMBERS}: pushed {pushed}; independent: delivered \
         {delivered}, missed {totals:?}; group: delivered {} (by member {:?}), missed {gm:?}; \
         churn: {window_churn} between phases, {concurrent_churn} while producing; swept by \
         the sweeper thread: {swept}",
        union.len(),
        got.iter().map(Vec::len).collect::<Vec<_>>()
    );
}

#[test]
fn one_consumer_and_a_group() {
    common::within_patience("1 consumer", || run(1));
}

#[test]
fn ten_consumers_and_a_group() {
    common::within_patience("10 consumers", || run(10));
}

#[test]
fn a_hundred_consumers_and_a_group() {
    common::within_patience("100 consumers", || run(100));
}

#[test]
fn a_thousand_consumers_and_a_group() {
    common::within_patience("1000 consumers", || run(1000));
}
