//! (f) Reclamation: a chunk is retired (unlinked and handed to the
//! collector once its last owner lets go) while a lagging consumer still
//! stands in it: its cursor, its chunk hint (a counted reference) or a chunk
//! pointer it is using. No payload is freed while readable (a freed payload
//! reads as dead), none is dropped twice (`Tracked::drop`), none leaks (the
//! drop count after each execution, and loom's leak check on every
//! envelope's `Arc`).
#![cfg(loom)]

mod common;

use chunkq::Overflow;
use common::{assert_in_order, drain, ids, item_bytes, model, queue, roomy, seqs};
use loom::thread;

/// Two independent consumers drain `n` items concurrently; the second to
/// leave chunk 0 trims it and retires it while the other's hint may still
/// point there.
fn trim_under_reader(n: usize) {
    model(move |counter| {
        let (q, _clock) = roomy();
        let fast = q.subscribe();
        let slow = q.subscribe();
        for i in 0..n {
            q.push(counter.make(i)).unwrap();
        }
        let lagging = thread::spawn(move || {
            let got = drain(&slow);
            assert_in_order(&got);
            let _ = ids(&got);
            (got, slow)
        });
        let mine = drain(&fast);
        let (theirs, slow) = lagging.join().unwrap();
        let all: Vec<u64> = (0..n as u64).collect();
        assert_eq!(seqs(&mine), all);
        assert_eq!(seqs(&theirs), all);
        let _ = ids(&mine);
        assert_eq!(fast.missed().total() + slow.missed().total(), 0);
        // Both left chunk 0: it was trimmed and unlinked.
        assert!(q.retained() < n);
    });
}

/// Chunk 0 full, chunk 1 with one item.
#[test]
fn trim_three() {
    trim_under_reader(3);
}

/// Both chunks full: the trims of chunks 0 and 1 race each other too.
#[test]
fn trim_four() {
    trim_under_reader(4);
}

/// A lagging consumer stands in chunk 0 (it read seq 0 there, so its hint
/// holds the chunk) while the main thread's `DropOldest` pushes evict the
/// rest of chunk 0 and retire it. A fast consumer read everything first.
#[test]
fn evict_under_lagging_reader() {
    model(|counter| {
        let limit = 2 * item_bytes(counter);
        let (q, _clock) = queue(limit, Overflow::DropOldest);
        let fast = q.subscribe();
        let slow = q.subscribe();
        q.push(counter.make(0)).unwrap();
        q.push(counter.make(1)).unwrap();
        let early = drain(&fast);
        let first = slow.try_recv().unwrap();
        assert_eq!(first.payload().id(), 0);
        drop(first);
        let lagging = thread::spawn(move || {
            let got: Vec<_> = (0..3).filter_map(|_| slow.try_recv().ok()).collect();
            assert_in_order(&got);
            let _ = ids(&got);
            (got, slow)
        });
        q.push(counter.make(2)).unwrap();
        assert!(q.memory_used() <= limit);
        q.push(counter.make(3)).unwrap();
        assert!(q.memory_used() <= limit);
        let (mut got, slow) = lagging.join().unwrap();
        got.extend(drain(&slow));
        assert_in_order(&got);
        assert_eq!(got.len() as u64 + slow.missed().evicted, 3);
        assert!(got.iter().all(|d| d.seq() >= 1));
        // The fast consumer read 0 and 1 early; 2 may have been evicted
        // since (if the lagging reader had read it, the push of 3 finds
        // nothing to trim).
        assert_eq!(seqs(&early), [0, 1]);
        let late = drain(&fast);
        assert_in_order(&late);
        assert_eq!(late.len() as u64 + fast.missed().evicted, 2);
        assert_eq!(late.last().map(|d| d.seq()), Some(3));
    });
}

/// Like `evict_under_lagging_reader`, but the lagging reader holds the
/// delivery it gets (seq 1, or a later one if 1 was evicted first: a counted
/// reference to the envelope) across the eviction and the retirement of
/// chunk 0, and reads it afterwards.
#[test]
fn delivery_outlives_its_chunk() {
    model(|counter| {
        let limit = 2 * item_bytes(counter);
        let (q, _clock) = queue(limit, Overflow::DropOldest);
        let slow = q.subscribe();
        q.push(counter.make(0)).unwrap();
        q.push(counter.make(1)).unwrap();
        assert_eq!(slow.try_recv().unwrap().payload().id(), 0);
        let lagging = thread::spawn(move || {
            let held = slow.try_recv().ok();
            thread::yield_now();
            // Read the envelope and payload after the main thread's pushes
            // may have evicted it and retired its chunk.
            held.map(|d| (d.seq(), d.payload().id()))
        });
        q.push(counter.make(2)).unwrap();
        q.push(counter.make(3)).unwrap();
        if let Some((seq, id)) = lagging.join().unwrap() {
            assert_eq!(seq as usize, id);
            assert!((1..=3).contains(&id));
        }
    });
}

/// The lease (`lease.rs`): a reader whose previous read left it a counted
/// reference to chunk 0 reads on without pinning, while the main thread's
/// `DropOldest` pushes evict what it has not read, retire chunk 0 and, in
/// the pin of a later push, clear its slots. The leased read takes its
/// owner count only if the slot's count is not 0 and before it claims the
/// slot, so it never revives a cleared item and never reads a dropped
/// payload; each item is delivered or counted as evicted, exactly once.
#[test]
fn leased_read_vs_eviction_and_clearing() {
    model(|counter| {
        let limit = 2 * item_bytes(counter);
        let (q, _clock) = queue(limit, Overflow::DropOldest);
        let slow = q.subscribe();
        q.push(counter.make(0)).unwrap();
        q.push(counter.make(1)).unwrap();
        // Leaves the reader a lease on chunk 0.
        assert_eq!(slow.try_recv().unwrap().payload().id(), 0);
        let lagging = thread::spawn(move || {
            let got: Vec<_> = (0..2).filter_map(|_| slow.try_recv().ok()).collect();
            assert_in_order(&got);
            let _ = ids(&got);
            (got, slow)
        });
        for i in 2..5 {
            q.push(counter.make(i)).unwrap();
            assert!(q.memory_used() <= limit);
        }
        let (mut got, slow) = lagging.join().unwrap();
        got.extend(drain(&slow));
        assert_in_order(&got);
        let _ = ids(&got);
        assert!(
            got.iter()
                .all(|d| d.seq() >= 1 && d.seq() as usize == d.payload().id())
        );
        assert_eq!(got.len() as u64 + slow.missed().evicted, 4);
        assert_eq!(got.last().map(|d| d.seq()), Some(4));
    });
}

/// Recycling (`chunk.rs`, "recycled, not freed"): a reader drains while the
/// main thread pushes on across three chunks, so that chunk 0, once both
/// have left it, is retired and handed (one grace period later) to the
/// queue's pool, from which a later push takes it as chunk 3. No reader
/// that loaded chunk 0 under an older guard, or through its hint or lease,
/// ever sees it as chunk 3: every item arrives once, in order, alive, with
/// its own payload.
#[test]
fn retired_chunk_recycled_under_readers() {
    model(|counter| {
        let (q, _clock) = roomy();
        let c = q.subscribe();
        for i in 0..2 {
            q.push(counter.make(i)).unwrap();
        }
        let reader = {
            let c = c.clone();
            thread::spawn(move || {
                let mut got = drain(&c);
                got.extend(drain(&c));
                assert_in_order(&got);
                assert!(got.iter().all(|d| d.seq() as usize == d.payload().id()));
                seqs(&got)
            })
        };
        for i in 2..7 {
            q.push(counter.make(i)).unwrap();
        }
        let mut all = reader.join().unwrap();
        let rest = drain(&c);
        assert!(rest.iter().all(|d| d.seq() as usize == d.payload().id()));
        all.extend(seqs(&rest));
        all.sort_unstable();
        assert_eq!(all, (0..7).collect::<Vec<u64>>());
        assert_eq!(c.missed().total(), 0);
    });
}
