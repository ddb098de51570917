//! Payloads whose `Drop` panics (ARCHITECTURE.md invariant 7): chunkq drops
//! removed items on whichever thread runs the epoch collector next, so a
//! panicking `Drop` must not wedge any queue (the one it was in, or an
//! unrelated one whose producer happened to collect), must not leak the
//! other items of its removal, and must not stop the sweeper. The panic is
//! caught and counted in `Queue::drop_panics`.
//!
//! A test binary of its own: crossbeam-epoch's collector is process-wide,
//! and these payloads panic on whatever thread collects.

mod common;

use chunkq::{Clock, EstimateSize, Overflow, Queue, TryRecvError};
use common::{flush_until, wait_for, within_patience};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// A payload whose `Drop` panics when `armed`; the others count their drops.
struct Bomb {
    /// Whether dropping this one panics.
    armed: bool,
    /// Drops of unarmed bombs, and (`+ ARMED` each) of armed ones.
    dropped: Arc<AtomicUsize>,
}

/// What an armed bomb adds to its counter before it panics.
const ARMED: usize = 1 << 20;

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.armed {
            self.dropped.fetch_add(ARMED, Ordering::SeqCst);
            panic!("a payload's Drop panicked (on purpose)");
        }
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl EstimateSize for Bomb {}

/// Silences the default panic hook's report of the bombs' panics (they are
/// expected), keeping every other panic's report.
fn quiet_bombs() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let bomb = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| m.contains("on purpose"));
        if !bomb {
            default(info);
        }
    }));
}

#[test]
fn a_panicking_drop_wedges_no_queue_and_leaks_no_other_item() {
    quiet_bombs();
    let dropped = Arc::new(AtomicUsize::new(0));
    let clock = Clock::manual();
    let a: Queue<Bomb> = Queue::builder("bombs")
        .clock(clock.clone())
        .ttl(Duration::from_secs(1))
        .sweep_interval(None)
        .build()
        .unwrap();
    // One armed bomb and 49 plain items, expired in one removal on a thread
    // that then exits: its deferred clean-up goes to the global collector,
    // which runs it inside some later `pin` of another thread.
    {
        let (a, clock, dropped) = (a.clone(), clock.clone(), dropped.clone());
        thread::spawn(move || {
            a.push(Bomb {
                armed: true,
                dropped: dropped.clone(),
            })
            .unwrap();
            for _ in 0..49 {
                a.push(Bomb {
                    armed: false,
                    dropped: dropped.clone(),
                })
                .unwrap();
            }
            clock.advance(Duration::from_secs(2));
            assert_eq!(a.expire_now(), 50);
        })
        .join()
        .unwrap();
    }
    // An unrelated queue: its producer pins on every push and collects every
    // so many pins. Before invariant 7 the collection ran between the
    // reservation and the publication of a slot: the push panicked and
    // left its slot unpublished for ever, so the drain below hung.
    let b: Queue<u64> = Queue::builder("bystander")
        .sweep_interval(None)
        .build()
        .unwrap();
    let got = within_patience("push and drain an unrelated queue", {
        let b = b.clone();
        move || {
            let c = b.subscribe();
            let mut got = 0u64;
            for i in 0..2000u64 {
                b.push(i).unwrap();
                // Read as we go, so no chunk stays behind a dead slot.
                while let Ok(d) = c.try_recv() {
                    assert_eq!(*d.payload(), got);
                    got += 1;
                }
            }
            b.close();
            loop {
                match c.try_recv() {
                    Ok(d) => {
                        assert_eq!(*d.payload(), got);
                        got += 1;
                    }
                    Err(TryRecvError::Closed) => return got,
                    Err(TryRecvError::Empty) => unreachable!("closed and drained"),
                }
            }
        }
    });
    assert_eq!(got, 2000);
    // Every other item of the removal is dropped, and the panic is counted.
    assert!(
        flush_until(|| dropped.load(Ordering::SeqCst) == ARMED + 49 && a.drop_panics() == 1),
        "dropped {} of 49 plain items, {} panics counted",
        dropped.load(Ordering::SeqCst) % ARMED,
        a.drop_panics()
    );
    // The queue that held the bomb still works.
    let c = a.subscribe();
    a.push(Bomb {
        armed: false,
        dropped: dropped.clone(),
    })
    .unwrap();
    assert!(c.try_recv().is_ok());
}

#[test]
fn the_sweeper_survives_panicking_drops() {
    quiet_bombs();
    let dropped = Arc::new(AtomicUsize::new(0));
    // A real sweeper thread every millisecond and a short TTL: it expires
    // the bombs, and it is the thread that pins most, so the collector
    // often runs the bombs' drops on it.
    let q: Queue<Bomb> = Queue::builder("swept bombs")
        .ttl(Duration::from_millis(1))
        .sweep_interval(Some(Duration::from_millis(1)))
        .overflow(Overflow::DropOldest)
        .build()
        .unwrap();
    let bomb = |armed| Bomb {
        armed,
        dropped: dropped.clone(),
    };
    // Enough removals (one per sweep that finds something) that the
    // sweeper's deferred garbage reaches the global collector many times.
    for i in 0..400 {
        q.push(bomb(i % 2 == 0)).unwrap();
        thread::sleep(Duration::from_micros(500));
    }
    wait_for("the sweeper expires the bombs", || q.is_empty());
    // Background expiry still runs: a sweeper killed by a panic would leave
    // these retained for ever.
    for _ in 0..10 {
        q.push(bomb(false)).unwrap();
    }
    wait_for("the sweeper still expires items", || q.is_empty());
    let counted = q.drop_panics();
    assert!(counted <= 200);
    // Dropping the queue stops the sweeper; its remaining garbage goes to
    // the global collector. Every bomb went off once, every other item was
    // dropped once.
    drop(q);
    assert!(
        flush_until(|| dropped.load(Ordering::SeqCst) == 200 * ARMED + 210),
        "{} bombs went off, {} plain items dropped",
        dropped.load(Ordering::SeqCst) / ARMED,
        dropped.load(Ordering::SeqCst) % ARMED
    );
}
