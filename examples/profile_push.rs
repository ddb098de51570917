//! A small single-threaded push + try_recv loop for instruction-level
//! profiles (valgrind's callgrind counts instructions repeatably):
//!
//! ```text
//! cargo build --profile bench --example profile_push   # release + debug info
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     target/release/examples/profile_push 200000
//! callgrind_annotate --inclusive=yes cg.out | head -60
//! ```
//!
//! The queue has every feature on (UUID, timestamps, history, accounting,
//! TTL). Each pushed value is checked on receipt.

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(200_000, |s| s.parse().expect("item count"));
    let q: chunkq::Queue<u64> = chunkq::Queue::builder("profile")
        .memory_limit(1 << 30)
        .ttl(std::time::Duration::from_secs(3600))
        .sweep_interval(None)
        .overflow(chunkq::Overflow::Reject)
        .build()
        .expect("builder");
    let c = q.subscribe();
    let mut sum = 0u64;
    for i in 0..n {
        q.push(i).expect("push");
        let d = c.try_recv().expect("an item");
        assert_eq!(*d.payload(), i);
        sum = sum.wrapping_add(*d.payload());
    }
    println!("{n} items, sum {sum}");
}
