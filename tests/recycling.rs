//! Chunk recycling: in the steady state a queue allocates no chunk memory.
//! A retired chunk goes, one grace period later, to its queue's pool, and
//! the next chunk comes from there (`chunk.rs`). A counting allocator
//! (this test binary's global allocator) counts the large allocations, the
//! chunks' slot arrays, made by this thread while items stream through.

use chunkq::Queue;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Allocations at least this large are counted: a chunk's slots (about
/// 64 KiB; 32 slots at the least), never a payload or a bookkeeping node.
const LARGE: usize = 16 << 10;

struct Counting;

static LARGE_ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread's allocations are counted.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to `System`, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE && COUNTED.try_with(Cell::get).unwrap_or(false) {
            LARGE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Pushes and drains `chunks` chunks' worth of items, one chunk at a time.
fn stream(q: &Queue<u64>, c: &chunkq::Consumer<u64>, chunks: u64) {
    let cap = q.chunk_capacity() as u64;
    for burst in 0..chunks {
        for i in 0..cap {
            q.push(burst * cap + i).unwrap();
        }
        for i in 0..cap {
            assert_eq!(*c.try_recv().unwrap().payload(), burst * cap + i);
        }
    }
}

/// One test function for both checks, run in order: the epoch collector
/// advances only when every pinned thread has moved on, so a second test
/// thread streaming at the same time would hold this one's retired chunks
/// back (and the pool would run dry for a while).
#[test]
fn recycling() {
    steady_state_allocates_no_chunk();
    held_deliveries_keep_their_chunk_out_of_the_pool();
}

fn steady_state_allocates_no_chunk() {
    let q: Queue<u64> = Queue::builder("recycled")
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    // Warm-up: the pool fills as the first chunks retire.
    stream(&q, &c, 32);
    COUNTED.with(|f| f.set(true));
    stream(&q, &c, 200);
    COUNTED.with(|f| f.set(false));
    // Without recycling every chunk is a new allocation (200). A handful
    // may still be new if the collector was held back (another thread of
    // this process pinned while chunks retired): allow 5 %.
    let large = LARGE_ALLOCS.load(Ordering::Relaxed);
    assert!(
        large <= 10,
        "{large} chunk allocations while 200 chunks streamed through (recycling broken?)"
    );
}

/// The same with a broadcast (two groups) and deliveries held across chunk
/// retirements: a chunk that a delivery still holds is recycled only after
/// that delivery lets go, and the payloads stay intact.
fn held_deliveries_keep_their_chunk_out_of_the_pool() {
    let q: Queue<u64> = Queue::builder("recycled-held")
        .sweep_interval(None)
        .build()
        .unwrap();
    let (a, b) = (q.subscribe(), q.subscribe());
    let cap = q.chunk_capacity() as u64;
    let mut held = Vec::new();
    for burst in 0..50 {
        for i in 0..cap {
            q.push(burst * cap + i).unwrap();
        }
        for i in 0..cap {
            let d = a.try_recv().unwrap();
            assert_eq!(*d.payload(), burst * cap + i);
            if i == 0 {
                held.push(d);
            }
            assert_eq!(*b.try_recv().unwrap().payload(), burst * cap + i);
        }
    }
    // Every held delivery still reads its own item, though its chunk was
    // retired long ago (and others recycled many times over).
    for (burst, d) in (0..).zip(&held) {
        assert_eq!(*d.payload(), burst * cap);
        assert_eq!(d.seq(), burst * cap);
    }
}
