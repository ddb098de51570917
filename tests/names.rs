//! Queue names are not kept for the life of the process: the memory of a
//! name goes when its queue and the last event naming it go. A test binary
//! of its own, with a global allocator that counts live bytes.

use chunkq::Queue;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts the bytes allocated and not yet freed.
struct Counting;

/// Live bytes.
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn distinct_queue_names_leave_nothing_behind() {
    let round = |n: usize| {
        for i in 0..n {
            let name = format!("queue-with-a-fairly-long-name-{i:08}-{}", "x".repeat(64));
            let q: Queue<u64> = Queue::builder(&name).sweep_interval(None).build().unwrap();
            let c = q.subscribe();
            q.push(1).unwrap();
            // A delivery outlives its queue and still names it.
            let d = c.try_recv().unwrap();
            drop((q, c));
            assert_eq!(d.queue(), name);
            assert_eq!(d.events()[0].queue(), name);
        }
    };
    // Warm up (thread-locals, the epoch collector's own structures).
    round(1_000);
    // Freed chunks and items go through the epoch collector: flush it.
    let flush = || {
        for _ in 0..1024 {
            crossbeam_epoch::pin().flush();
        }
    };
    flush();
    let before = LIVE.load(Ordering::Relaxed);
    round(10_000);
    flush();
    let grown = LIVE.load(Ordering::Relaxed) - before;
    // 10,000 names of ~100 bytes kept for ever would be over 1 MB; allow
    // the collector a few bags of garbage not yet freed.
    assert!(
        grown < 256 * 1024,
        "{grown} bytes still live after 10,000 named queues came and went"
    );
}
