//! Issue 16: idle handles and held deliveries must not keep chunk memory
//! beyond the budget. A counting global allocator sees the chunk-sized
//! blocks (>= 16 KiB) still live after 200 handles (or deliveries) each
//! touched a different chunk and every chunk was trimmed.
//!
//! The three tests share the allocator's counter, so a lock runs them one
//! at a time (the test harness's own allocations are small blocks, which
//! the counter ignores).

use chunkq::{Delivery, Queue};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

/// Blocks at least this large are counted: chunk arrays.
const CHUNK_SIZED: usize = 16 << 10;
/// Live bytes in chunk-sized blocks.
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
/// The most `LIVE_BYTES` reached since `reset_peak`.
static PEAK_BYTES: AtomicIsize = AtomicIsize::new(0);

fn count_alloc(size: usize) {
    if size >= CHUNK_SIZED {
        let now = LIVE_BYTES.fetch_add(size as isize, Relaxed) + size as isize;
        PEAK_BYTES.fetch_max(now, Relaxed);
    }
}

struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments and
// only adds bookkeeping on an atomic counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            count_alloc(l.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            count_alloc(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if l.size() >= CHUNK_SIZED {
            LIVE_BYTES.fetch_sub(l.size() as isize, Relaxed);
        }
        // SAFETY: forwarded unchanged; `p` came from this allocator.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `p` came from this allocator.
        let q = unsafe { System.realloc(p, l, new_size) };
        if !q.is_null() {
            if l.size() >= CHUNK_SIZED {
                LIVE_BYTES.fetch_sub(l.size() as isize, Relaxed);
            }
            count_alloc(new_size);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One test at a time: they share `LIVE_BYTES`.
static SERIAL: Mutex<()> = Mutex::new(());

/// Handles (or deliveries) kept, each from a different chunk.
const HANDLES: usize = 200;
/// The budget of every queue here.
const LIMIT: usize = 256 << 10;

/// Pins and unpins so that crossbeam's collector runs what is deferred.
fn settle() {
    let q: Queue<u8> = Queue::builder("settle")
        .sweep_interval(None)
        .build()
        .unwrap();
    for _ in 0..2000 {
        let _ = q.push(0);
        drop(q.stats());
    }
    for _ in 0..256 {
        crossbeam_epoch::pin().flush();
    }
}

fn queue() -> Queue<u64> {
    Queue::builder("m")
        .memory_limit(LIMIT)
        .sweep_interval(None)
        .build()
        .unwrap()
}

/// Restarts the peak from the live bytes now; returns them.
fn reset_peak() -> isize {
    let now = LIVE_BYTES.load(Relaxed);
    PEAK_BYTES.store(now, Relaxed);
    now
}

/// Guards against a vacuous pass: building and filling the queue must have
/// allocated chunk-sized blocks since `start` (if chunks ever shrink below
/// `CHUNK_SIZED`, the counter would see nothing and the bound would hold
/// trivially).
fn assert_chunks_counted(start: isize) {
    assert!(
        PEAK_BYTES.load(Relaxed) > start,
        "no chunk-sized block (>= {CHUNK_SIZED} B) was allocated: lower CHUNK_SIZED to the chunk size"
    );
}

/// Chunk-sized bytes live now, over `before`, in KiB for the messages.
fn live_since(before: isize) -> isize {
    LIVE_BYTES.load(Relaxed) - before
}

#[test]
fn idle_producer_handles_keep_no_chunks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let start = reset_peak();
    let q = queue();
    let c = q.subscribe();
    let cap = q.chunk_capacity();
    settle();
    let before = LIVE_BYTES.load(Relaxed);
    let handles: Vec<Queue<u64>> = (0..HANDLES).map(|_| q.clone()).collect();
    for h in &handles {
        h.push(1).unwrap(); // h leases the tail chunk
        for _ in 0..cap {
            q.push(0).unwrap(); // the tail moves on
        }
        while c.try_recv().is_ok() {} // all read: trimmed
    }
    settle();
    assert_chunks_counted(start);
    let live = live_since(before);
    let used = q.memory_used();
    assert!(
        live as usize <= 2 * LIMIT,
        "{} KiB of chunks live for a {} KiB budget with {HANDLES} idle producer handles ({used} B in memory_used())",
        live >> 10,
        LIMIT >> 10
    );
    drop(handles);
}

#[test]
fn idle_consumer_clones_keep_no_chunks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let start = reset_peak();
    let q = queue();
    let c = q.subscribe();
    let cap = q.chunk_capacity();
    settle();
    let before = LIVE_BYTES.load(Relaxed);
    let mut members = Vec::with_capacity(HANDLES);
    for _ in 0..HANDLES {
        let m = c.clone(); // a member of c's group
        q.push(1).unwrap();
        drop(m.try_recv().unwrap()); // m leases this chunk, then goes idle
        for _ in 0..cap {
            q.push(0).unwrap(); // the tail moves on
        }
        while c.try_recv().is_ok() {} // the group read everything: trimmed
        members.push(m);
    }
    settle();
    assert_chunks_counted(start);
    let live = live_since(before);
    let used = q.memory_used();
    assert!(
        live as usize <= 2 * LIMIT,
        "{} KiB of chunks live for a {} KiB budget with {HANDLES} idle consumer clones ({used} B in memory_used())",
        live >> 10,
        LIMIT >> 10
    );
    drop(members);
}

#[test]
fn held_deliveries_pin_only_charged_chunks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let start = reset_peak();
    let q = queue();
    let c = q.subscribe();
    let cap = q.chunk_capacity();
    settle();
    let before = LIVE_BYTES.load(Relaxed);
    let mut held: Vec<Delivery<u64>> = Vec::with_capacity(HANDLES);
    for i in 0..HANDLES {
        for k in 0..cap {
            q.push((i * cap + k) as u64).unwrap();
        }
        // Keep the first delivery of this chunk's worth, drop the rest.
        held.push(c.try_recv().unwrap());
        while c.try_recv().is_ok() {}
    }
    settle();
    assert_chunks_counted(start);
    let live = live_since(before);
    let stats = q.stats();
    let (used, pinned) = (stats.memory_used, stats.memory_pinned);
    // Every held delivery is still readable.
    for (i, d) in held.iter().enumerate() {
        assert_eq!(*d.payload(), (i * cap) as u64);
    }
    // The chunks the deliveries keep are accounted (`memory_pinned`), and
    // nothing beyond them and the budget is live.
    assert!(pinned > 0, "held deliveries keep chunks, and stats say so");
    assert!(
        live as usize <= 2 * LIMIT + used + pinned,
        "{} KiB of chunks live with {HANDLES} held deliveries, for a {} KiB budget, {} KiB in memory_used() and {} KiB pinned",
        live >> 10,
        LIMIT >> 10,
        used >> 10,
        pinned >> 10
    );
    drop(held);
    settle();
    let after = q.stats();
    assert_eq!(
        after.memory_pinned, 0,
        "the last delivery gives the charge back"
    );
    assert!(
        (live_since(before) as usize) <= 2 * LIMIT,
        "dropping the deliveries frees their chunks: {} KiB live",
        live_since(before) >> 10
    );
}
