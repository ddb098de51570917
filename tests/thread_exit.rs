//! A thread that exits while the epoch collector holds much garbage
//! (removed items waiting for their clearing): its thread-local destructors
//! may still pin (here: dropping a consumer), and while a thread exits every
//! crossbeam `pin` registers a fresh participant whose first pin collects.
//! The clearing of removed slots used to pin again from inside that
//! collection, recursing once per pending clearing until the thread's stack
//! overflowed (found by `examples/stress_test.rs`). A test binary of its
//! own: it fills the process-wide collector on purpose.

mod common;

use chunkq::{Clock, Consumer, Queue};
use std::cell::RefCell;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

thread_local! {
    /// A consumer dropped by this thread's thread-local destructors. It is
    /// initialised before the thread first touches crossbeam-epoch, so it is
    /// destroyed after crossbeam's own thread-local handle (destructors run
    /// in reverse order of registration).
    static KEEP: RefCell<Option<Consumer<u64>>> = const { RefCell::new(None) };
}

#[test]
fn a_thread_exiting_with_much_garbage_does_not_overflow_its_stack() {
    let removals = common::size(20_000);
    let clock = Clock::manual();
    let q: Queue<u64> = Queue::builder("thread-exit")
        .clock(clock.clone())
        .ttl(Duration::from_secs(1))
        .sweep_interval(None)
        .build()
        .unwrap();
    // A pinned thread holds the epoch back while the garbage piles up.
    let (unpin_tx, unpin_rx) = mpsc::channel::<()>();
    let (pinned_tx, pinned_rx) = mpsc::channel::<()>();
    let holder = thread::spawn(move || {
        let guard = crossbeam_epoch::pin();
        pinned_tx.send(()).unwrap();
        unpin_rx.recv().unwrap();
        drop(guard);
    });
    pinned_rx.recv().unwrap();
    let (garbage_tx, garbage_rx) = mpsc::channel::<()>();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let worker = {
        let q = q.clone();
        thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                // First: the thread-local that outlives crossbeam's handle.
                KEEP.with(|k| *k.borrow_mut() = Some(q.subscribe()));
                // One removal (and one deferred clearing) at a time.
                for i in 0..removals as u64 {
                    q.push(i).unwrap();
                    clock.advance(Duration::from_secs(2));
                    assert_eq!(q.expire_now(), 1);
                }
                garbage_tx.send(()).unwrap();
                exit_rx.recv().unwrap();
                // Let the epoch advance past the garbage (each flush tries
                // once), so that it is all collectable when the thread exits.
                for _ in 0..8 {
                    crossbeam_epoch::pin().flush();
                }
            })
            .unwrap()
    };
    garbage_rx.recv().unwrap();
    unpin_tx.send(()).unwrap();
    holder.join().unwrap();
    exit_tx.send(()).unwrap();
    // Before the fix the worker died here of a stack overflow (the whole
    // test process aborts with SIGSEGV).
    worker.join().unwrap();
    assert!(q.len() <= 1);
}
