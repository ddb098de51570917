//! (j) Memory that is really bounded (issue 16): the protocols that let a
//! remover drop payloads at once and idle handles hold no chunk.
//! - A remover drops an item the moment it gives up the log's count, so a
//!   reader takes its count *before* its claim and only if the count is not
//!   0; a reader that then loses the claim gives the count back, and if
//!   that was the last one, the drop is chunkq's: contained and counted,
//!   never a panic out of `try_recv`.
//! - A handle's lease is revoked when its chunk is unlinked, while the
//!   handle pushes on: exactly one of the revoker and the handle's own
//!   `put` takes the reference out, and every item is dropped once.
#![cfg(loom)]

mod common;

use chunkq::{EstimateSize, Overflow, Queue};
use common::{drain, ids, model, queue};
use loom::thread;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Set while the main thread is inside the `try_recv` under test.
static IN_MAIN_RECV: AtomicBool = AtomicBool::new(false);
/// The main thread of the current execution.
static MAIN: std::sync::Mutex<Option<loom::thread::ThreadId>> = std::sync::Mutex::new(None);
/// Drops of payload 1 that ran (and panicked) inside the main thread's
/// `try_recv` and escaped it.
static ESCAPED: AtomicUsize = AtomicUsize::new(0);

/// A payload whose drop panics when it runs inside the main thread's
/// `try_recv`: a drop there is chunkq's (a lost claim gave back the last
/// count), and must be contained.
struct Hostile(u64);

impl Drop for Hostile {
    fn drop(&mut self) {
        let main = *MAIN.lock().unwrap();
        if self.0 == 1
            && IN_MAIN_RECV.load(Ordering::Relaxed)
            && Some(thread::current().id()) == main
        {
            panic!("payload 1 dropped (and panicking) inside the main thread's try_recv");
        }
    }
}

impl EstimateSize for Hostile {}

/// The review finding of issue 16: a leased read whose claim is lost to a
/// clone that trims the slot gives its count back; if that count was the
/// last (the other group dropped its delivery meanwhile), the payload is
/// dropped there, and a panicking `Drop` must not escape `try_recv` (nor
/// leak the lease's chunk reference).
#[test]
fn leased_lost_claim_drop_is_contained() {
    ESCAPED.store(0, Ordering::Relaxed);
    std::panic::set_hook(Box::new(|_| {}));
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none_or(|p| p > 3) {
        b.preemption_bound = Some(3);
    }
    b.check(|| {
        *MAIN.lock().unwrap() = Some(thread::current().id());
        let q: Queue<Hostile> = Queue::builder("loom")
            .sweep_interval(None)
            .clock(chunkq::Clock::manual())
            .ttl(Duration::from_secs(1))
            .memory_limit(1 << 20)
            .build()
            .unwrap();
        let (g1, h) = (q.subscribe(), q.subscribe());
        q.push(Hostile(0)).unwrap();
        q.push(Hostile(1)).unwrap();
        drop(g1.try_recv().unwrap()); // g1 leases chunk 0, cursor 1
        drop(h.try_recv().unwrap());
        let dh1 = h.try_recv().unwrap(); // group h holds item 1
        let (g2, q2) = (g1.clone(), q.clone());
        let other = thread::spawn(move || {
            drop(g2.try_recv()); // claims 1 for the group, trims chunk 0
            let _ = q2.expire_now();
            drop(dh1);
            drop(g2);
        });
        IN_MAIN_RECV.store(true, Ordering::Relaxed);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g1.try_recv()));
        IN_MAIN_RECV.store(false, Ordering::Relaxed);
        if r.is_err() {
            ESCAPED.fetch_add(1, Ordering::Relaxed);
        }
        drop(r);
        other.join().unwrap();
        drop((g1, h, q));
        chunkq::__loom::quiesce();
    });
    let _ = std::panic::take_hook();
    assert_eq!(
        ESCAPED.load(Ordering::Relaxed),
        0,
        "a payload Drop panic escaped try_recv"
    );
}

/// A producer clone pushes into the chunk its lease holds while the main
/// thread fills the next chunk and a consumer reads everything, which
/// trims chunk 0 and retires it: the retirer revokes the clone's lease
/// unless the clone has it taken out, and then the clone's `put` sees the
/// chunk unlinked and lets go itself. Each item is read or counted, and
/// dropped exactly once (the harness checks), with no use of a recycled
/// chunk.
#[test]
fn idle_lease_revoked_while_its_handle_pushes() {
    model(|counter| {
        let (q, _clock) = queue(1 << 20, Overflow::Reject);
        let c = q.subscribe();
        let p = q.clone();
        p.push(counter.make(0)).unwrap(); // p leases chunk 0
        let pusher = {
            let item = counter.make(1);
            thread::spawn(move || {
                let _ = p.push(item);
                p
            })
        };
        q.push(counter.make(2)).unwrap();
        q.push(counter.make(3)).unwrap();
        let got = drain(&c);
        let p = pusher.join().unwrap();
        let mut got = got;
        got.extend(drain(&c));
        let mut seen = ids(&got);
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2, 3], "every item read once");
        drop(got);
        drop((p, c, q));
    });
}

/// Batch reads on the leased path (issue 16: a reader that keeps up pins
/// nothing) against a clone of the same group and an evicting producer:
/// two members of one group `try_recv_many` while the main thread pushes
/// into a two-item `DropOldest` budget, so evictions (with their slack)
/// move `head` past slots the readers hold counts on or are about to
/// claim. Every item is delivered once or counted as evicted, each member
/// sees increasing sequence numbers, and every payload is dropped once
/// (the harness checks).
#[test]
fn leased_batch_reads_vs_clone_and_eviction() {
    common::model_capped(2, |counter| {
        let bytes = common::item_bytes(counter);
        let (q, _clock) = queue(2 * bytes, Overflow::DropOldest);
        let a = q.subscribe();
        q.push(counter.make(0)).unwrap();
        drop(a.try_recv().unwrap()); // a leases chunk 0
        let b = a.clone();
        q.push(counter.make(1)).unwrap();
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            let _ = b.try_recv_many(&mut got, 2);
            let _ = b.try_recv_many(&mut got, 2);
            (b, got)
        });
        q.push(counter.make(2)).unwrap();
        q.push(counter.make(3)).unwrap();
        let mut mine = Vec::new();
        let _ = a.try_recv_many(&mut mine, 2);
        let (b, theirs) = reader.join().unwrap();
        common::assert_in_order(&mine);
        common::assert_in_order(&theirs);
        mine.extend(drain(&a));
        let mut seen = ids(&mine);
        seen.extend(ids(&theirs));
        seen.sort_unstable();
        let delivered = seen.len();
        seen.dedup();
        assert_eq!(seen.len(), delivered, "an item delivered twice: {seen:?}");
        let evicted = a.missed().evicted as usize;
        assert_eq!(
            1 + mine.len() + theirs.len() + evicted,
            4,
            "each item delivered or counted once: {seen:?}, {evicted} evicted"
        );
        drop((mine, theirs));
        drop((a, b, q));
    });
}
