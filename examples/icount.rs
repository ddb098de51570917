//! Instruction counts per item under callgrind, chunkq beside its peers in
//! one shape, and heap allocations per item from a counting allocator.
//! Driven by `benches/icount.sh` (which runs every case under callgrind and
//! writes `benches/results/icount.csv`); one process runs one case:
//!
//! ```text
//! cargo build --release --example icount
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*icount_measured*' \
//!     --callgrind-out-file=cg.out target/release/examples/icount chunkq-c1
//! target/release/examples/icount list        # the cases: id,case,peer,readers
//! target/release/examples/icount chunkq-c1 [MIN_MEASURED [MIN_WARMUP]]   # natively
//! ```
//!
//! The shape (issue 9): one thread pushes a burst of [`BURST`] = 1000 `u64`,
//! then each of the `C` readers drains it, in turn, on the same thread,
//! checking every value. Warm-up bursts run first (chunks, blocks and rings
//! allocated, the epoch collector warm), then the measured bursts run inside
//! [`icount_measured`], the one function callgrind collects
//! (`--collect-atstart=no --toggle-collect=*icount_measured*`): its
//! inclusive instruction count (Ir) ÷ items pushed is the figure.
//!
//! **Steady state, frees included.** chunkq frees its items late and in
//! lumps (the epoch collector runs the deferred frees of ~60 chunks at once,
//! every 63 bursts at the time of writing: `ICOUNT_TRACE=1 icount chunkq-c1
//! 400` prints the live heap blocks after each burst), so a fixed window of
//! 20 bursts can hold every allocation and none of the frees, and read
//! ~25 % low. The window is therefore aligned on the heap's own rhythm, as
//! the counting allocator below sees it. A burst is *settled* when it ends
//! with no more live heap blocks than it began with (within [`SLACK`]): a
//! lump of frees came in it, or frees are immediate (every burst of the
//! peers). The warm-up runs at least [`MIN_WARMUP`] bursts, then until a
//! settled burst; the measured window at least [`MIN_MEASURED`] bursts (four
//! of chunkq's reclamation periods), then until a settled burst. So the
//! window runs from just after one lump of frees to just after another and
//! frees about what it allocates (`frees_per_item` ≈ `allocs_per_item`
//! shows it). Either phase stops at [`MAX_BURSTS`] (then `settled=no`). The
//! checks are a few loads per burst; the window's length is printed.
//!
//! The same process counts the heap allocation calls (`alloc`,
//! `alloc_zeroed`, `realloc`) and the frees (`dealloc`) of the measured
//! window with the counting `#[global_allocator]` and prints them ÷ items
//! pushed (callgrind does not replace `malloc`, so the count is the same as
//! in a native run). Each counter is one relaxed atomic add per call, inside
//! the measured Ir (≈ 1 Ir per allocation or free; nothing for the peers
//! that allocate nothing).
//!
//! Cases (`id`: what runs):
//! - `chunkq-c1`: `Queue::push`, then `Consumer::try_recv` (one consumer:
//!   a group of one); every feature on (UUID, timestamps, history, byte
//!   accounting with a 64 MiB budget, 1-hour TTL, no sweeper thread).
//! - `chunkq-batch-c1`: `Queue::push_batch` of 64, then
//!   `Consumer::try_recv_many(.., 64)` into a reused `Vec`.
//! - `chunkq-c2`: as `chunkq-c1` with two independent consumers
//!   (`subscribe()` twice), each draining the burst.
//! - `chunkq-read-c1`, `chunkq-read-c2`: `Queue::push`, then the borrowed
//!   read path, `Consumer::read(64, |item| ..)`, by one or two consumers.
//! - `kanal-c1`, `crossbeam-channel-c1`, `flume-c1`: unbounded channel,
//!   `send` + `try_recv`.
//! - `segqueue-c1` (crossbeam-queue `SegQueue`), `concurrent-queue-c1`
//!   (unbounded): `push` + `pop`.
//! - `tokio-broadcast-c1`, `tokio-broadcast-c2`: `tokio::sync::broadcast`
//!   with capacity 1024 (≥ a burst: never lags), `send` + `try_recv` by one
//!   or two receivers.
//!
//! Output, one line: `icount id=.. case=.. peer=.. readers=.. items=..
//! warmup_bursts=.. bursts=.. settled=yes|no allocs=.. frees=..
//! allocs_per_item=.. frees_per_item=..` (`items` = items pushed in the
//! measured window).

mod cli;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Items per burst.
const BURST: u64 = 1000;
/// Fewest warm-up bursts (a third argument overrides it).
const MIN_WARMUP: u64 = 5;
/// Fewest measured bursts (a second argument overrides it).
const MIN_MEASURED: u64 = 256;
/// Most bursts of the warm-up, and of the measured window.
const MAX_BURSTS: u64 = 1024;
/// Live heap blocks a burst may add and still count as settled.
const SLACK: i64 = (BURST / 10) as i64;
/// Batch size of `chunkq-batch-c1`.
const BATCH: u64 = 64;

/// `System`, counting allocation calls and frees.
struct Counting;

/// `alloc` and `alloc_zeroed` calls.
static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// `realloc` calls (an allocation call, but no new block).
static REALLOCS: AtomicU64 = AtomicU64::new(0);
/// `dealloc` calls.
static FREES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments and
// only adds one relaxed increment of an atomic counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREES.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; `ptr` came from this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; `ptr` came from this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (id, case, peer, readers) of every case; `case` and `peer` are the CSV's
/// columns.
const CASES: &[(&str, &str, &str, usize)] = &[
    ("chunkq-c1", "push-recv", "chunkq", 1),
    ("chunkq-batch-c1", "push-recv-batch64", "chunkq", 1),
    ("chunkq-c2", "broadcast-2", "chunkq", 2),
    ("chunkq-read-c1", "push-recv", "chunkq-read", 1),
    ("chunkq-read-c2", "broadcast-2", "chunkq-read", 2),
    ("kanal-c1", "push-recv", "kanal", 1),
    ("segqueue-c1", "push-recv", "segqueue", 1),
    ("crossbeam-channel-c1", "push-recv", "crossbeam-channel", 1),
    ("flume-c1", "push-recv", "flume", 1),
    ("concurrent-queue-c1", "push-recv", "concurrent-queue", 1),
    ("tokio-broadcast-c1", "push-recv", "tokio-broadcast", 1),
    ("tokio-broadcast-c2", "broadcast-2", "tokio-broadcast", 2),
];

/// The function callgrind collects (`--toggle-collect=*icount_measured*`):
/// everything `f` runs, inclusive.
#[inline(never)]
fn icount_measured(f: &mut dyn FnMut()) {
    f();
    black_box(());
}

/// chunkq with every feature on, a budget far above a burst, no sweeper.
fn chunkq_queue() -> chunkq::Queue<u64> {
    chunkq::Queue::builder("icount")
        .memory_limit(64 << 20)
        .ttl(Duration::from_secs(3600))
        .sweep_interval(None)
        .overflow(chunkq::Overflow::Reject)
        .build()
        .expect("builder")
}

/// Checks that a reader got the value pushed as `want`.
#[inline(always)]
fn check(got: u64, want: u64) {
    if got != want {
        mismatch(got, want);
    }
}

#[cold]
#[inline(never)]
fn mismatch(got: u64, want: u64) -> ! {
    panic!("read {got}, expected {want}");
}

/// One burst of [`BURST`] items starting at value `base`: pushed, then
/// drained by every reader in turn.
fn burst_fn(id: &str) -> Box<dyn FnMut(u64)> {
    match id {
        "chunkq-c1" | "chunkq-c2" | "chunkq-read-c1" | "chunkq-read-c2" => {
            // The same bursts; the readers take owned deliveries (`try_recv`)
            // or borrow (`read`, the borrowed path).
            let borrowed = id.starts_with("chunkq-read");
            let readers = if id.ends_with("c2") { 2 } else { 1 };
            let q = chunkq_queue();
            let cs: Vec<_> = (0..readers).map(|_| q.subscribe()).collect();
            Box::new(move |base| {
                for v in base..base + BURST {
                    q.push(v).expect("chunkq push");
                }
                for c in &cs {
                    if borrowed {
                        let mut want = base;
                        while want < base + BURST {
                            c.read(BATCH as usize, |item| {
                                check(*item.payload(), want);
                                want += 1;
                            })
                            .expect("chunkq read");
                        }
                    } else {
                        for want in base..base + BURST {
                            let d = c.try_recv().expect("chunkq try_recv");
                            check(*d.payload(), want);
                        }
                    }
                }
            })
        }
        "chunkq-batch-c1" => {
            let q = chunkq_queue();
            let c = q.subscribe();
            let mut buf = Vec::with_capacity(BATCH as usize);
            Box::new(move |base| {
                let end = base + BURST;
                let mut v = base;
                while v < end {
                    let to = end.min(v + BATCH);
                    let n = q.push_batch(v..to).expect("chunkq push_batch");
                    assert_eq!(n as u64, to - v);
                    v = to;
                }
                let mut want = base;
                while want < end {
                    c.try_recv_many(&mut buf, BATCH as usize)
                        .expect("chunkq try_recv_many");
                    for d in buf.drain(..) {
                        check(*d.payload(), want);
                        want += 1;
                    }
                }
            })
        }
        "kanal-c1" => {
            let (tx, rx) = kanal::unbounded::<u64>();
            Box::new(move |base| {
                for v in base..base + BURST {
                    tx.send(v).expect("kanal send");
                }
                for want in base..base + BURST {
                    let v = rx.try_recv().expect("kanal try_recv");
                    check(v.expect("kanal item"), want);
                }
            })
        }
        "segqueue-c1" => {
            let q = crossbeam_queue::SegQueue::<u64>::new();
            Box::new(move |base| {
                for v in base..base + BURST {
                    q.push(v);
                }
                for want in base..base + BURST {
                    check(q.pop().expect("SegQueue pop"), want);
                }
            })
        }
        "crossbeam-channel-c1" => {
            let (tx, rx) = crossbeam_channel::unbounded::<u64>();
            Box::new(move |base| {
                for v in base..base + BURST {
                    tx.send(v).expect("crossbeam-channel send");
                }
                for want in base..base + BURST {
                    check(rx.try_recv().expect("crossbeam-channel try_recv"), want);
                }
            })
        }
        "flume-c1" => {
            let (tx, rx) = flume::unbounded::<u64>();
            Box::new(move |base| {
                for v in base..base + BURST {
                    tx.send(v).expect("flume send");
                }
                for want in base..base + BURST {
                    check(rx.try_recv().expect("flume try_recv"), want);
                }
            })
        }
        "concurrent-queue-c1" => {
            let q = concurrent_queue::ConcurrentQueue::<u64>::unbounded();
            Box::new(move |base| {
                for v in base..base + BURST {
                    q.push(v).expect("concurrent-queue push");
                }
                for want in base..base + BURST {
                    check(q.pop().expect("concurrent-queue pop"), want);
                }
            })
        }
        "tokio-broadcast-c1" | "tokio-broadcast-c2" => {
            let readers = if id == "tokio-broadcast-c2" { 2 } else { 1 };
            let (tx, rx) = tokio::sync::broadcast::channel::<u64>(1024);
            let mut rxs = vec![rx];
            rxs.extend((1..readers).map(|_| tx.subscribe()));
            Box::new(move |base| {
                for v in base..base + BURST {
                    tx.send(v).expect("tokio broadcast send");
                }
                for rx in &mut rxs {
                    for want in base..base + BURST {
                        check(rx.try_recv().expect("tokio broadcast try_recv"), want);
                    }
                }
            })
        }
        other => unreachable!("case {other} is in CASES but has no burst"),
    }
}

/// The usage line.
fn usage() -> String {
    format!(
        "usage: icount <case> [min measured bursts, default {MIN_MEASURED} [min warm-up bursts, default {MIN_WARMUP}]] | icount list\n\
         one case per process, under callgrind (benches/icount.sh runs them all); `icount list` prints the cases"
    )
}

/// Live heap blocks: blocks allocated minus blocks freed so far.
fn live_blocks() -> i64 {
    ALLOCS.load(Ordering::Relaxed) as i64 - FREES.load(Ordering::Relaxed) as i64
}

/// (allocation calls, frees) so far.
fn heap_calls() -> (u64, u64) {
    (
        ALLOCS.load(Ordering::Relaxed) + REALLOCS.load(Ordering::Relaxed),
        FREES.load(Ordering::Relaxed),
    )
}

fn main() {
    let mut args = cli::Args::new("icount", &usage());
    let arg1 = args
        .next()
        .unwrap_or_else(|| args.fail("a case is needed (`icount list` prints them)"));
    if arg1 == "list" {
        for (id, case, peer, readers) in CASES {
            println!("{id},{case},{peer},{readers}");
        }
        return;
    }
    let Some(&(id, case, peer, readers)) = CASES.iter().find(|c| c.0 == arg1) else {
        args.fail(format!("unknown case {arg1:?}"));
    };
    let min_measured = args
        .next()
        .map_or(MIN_MEASURED, |s| args.parse("measured bursts", &s))
        .max(1);
    let min_warmup = args
        .next()
        .map_or(MIN_WARMUP, |s| args.parse("warm-up bursts", &s));
    if let Some(extra) = args.next() {
        args.fail(format!("unexpected argument {extra:?}"));
    }
    let mut burst = burst_fn(id);
    if std::env::var_os("ICOUNT_TRACE").is_some() {
        // Live heap blocks after each burst (natively; to see the rhythm).
        for b in 0..min_measured {
            burst(b * BURST);
            let (allocs, frees) = heap_calls();
            println!("{b},{},{allocs},{frees}", live_blocks());
        }
        return;
    }

    // Warm-up: at least `min_warmup` bursts, then until a settled burst (one
    // that leaves no more live heap blocks than it found).
    let mut b = 0u64;
    let mut warm_settled = min_warmup == 0;
    while b < min_warmup || (!warm_settled && b < MAX_BURSTS) {
        let before = live_blocks();
        burst(b * BURST);
        b += 1;
        warm_settled = live_blocks() <= before + SLACK;
    }
    let warmup = b;

    // The measured window: at least `min_measured` bursts, then until a
    // settled burst.
    let (allocs0, frees0) = heap_calls();
    let mut settled = false;
    icount_measured(&mut || {
        loop {
            let before = live_blocks();
            burst(b * BURST);
            b += 1;
            settled = live_blocks() <= before + SLACK;
            let n = b - warmup;
            if n >= min_measured && (settled || n >= MAX_BURSTS) {
                break;
            }
        }
    });
    let (allocs1, frees1) = heap_calls();
    let (allocs, frees) = (allocs1 - allocs0, frees1 - frees0);
    let bursts = b - warmup;
    let items = bursts * BURST;
    println!(
        "icount id={id} case={case} peer={peer} readers={readers} items={items} \
         warmup_bursts={warmup} bursts={bursts} settled={} allocs={allocs} frees={frees} \
         allocs_per_item={:.4} frees_per_item={:.4}",
        if settled && warm_settled { "yes" } else { "no" },
        allocs as f64 / items as f64,
        frees as f64 / items as f64
    );
}
