//! Fast UUID v7 generation for item and handle identities.
//!
//! `Uuid::now_v7()` goes through uuid's shared context and reads the clock
//! itself. Every push needs a UUID and already has a timestamp, so chunkq
//! builds the v7 UUID (RFC 9562) from that timestamp and per-thread state,
//! with no lock and no shared cache line:
//!
//! ```text
//!  48 bits  unix_ts_ms       the item's creation time (the push's clock
//!                            reading)
//!   4 bits  version = 7
//!  12 bits  rand_a   ┐ a 64-bit per-thread counter: a random start each
//!   2 bits  variant  │ new millisecond (its top bit clear, so 2^63 steps
//!  52 bits  rand_b   ┘ fit in a millisecond), +1 for every id in the same one
//!  10 bits  rand_b   random per thread (tells threads apart)
//! ```
//!
//! So one thread's ids strictly increase while its clock readings do not go
//! back (the counter orders ids of one millisecond; a later millisecond
//! sorts later; queues on different clocks, a manual one say, stamp each id
//! with its own queue's time instead), and ids of different
//! threads collide only if their 62 random start bits and 10 thread bits
//! line up. A new millisecond draws from a per-thread wyrand generator
//! seeded from std's randomly keyed hasher; the common case (another id in
//! the same millisecond) is an increment and some shifts.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use uuid::Uuid;

thread_local! {
    /// The millisecond of this thread's previous id (0 before the first).
    static LAST_MS: Cell<u64> = const { Cell::new(0) };
    /// The counter of this thread's previous id, within `LAST_MS`.
    static COUNTER: Cell<u64> = const { Cell::new(0) };
    /// wyrand state; 0 until seeded (at this thread's first id).
    static RNG: Cell<u64> = const { Cell::new(0) };
    /// This thread's 10 random low bits (set with the seed).
    static THREAD_BITS: Cell<u64> = const { Cell::new(0) };
}

/// A fresh random counter start for a new millisecond (top bit clear: room
/// for 2^63 more ids in it). Off the common path.
#[cold]
fn new_millisecond() -> u64 {
    RNG.with(|rng| {
        let mut state = rng.get();
        if state == 0 {
            state = RandomState::new().hash_one(std::thread::current().id()) | 1;
            THREAD_BITS.with(|b| b.set((state >> 7) & 0x3ff));
        }
        state = state.wrapping_add(0xa076_1d64_78bd_642f);
        rng.set(state);
        let t = u128::from(state) * u128::from(state ^ 0xe703_7ed1_a0b4_28db);
        (((t >> 64) as u64) ^ (t as u64)) >> 1
    })
}

/// A UUID v7 for an event at `nanos` (ns since the Unix epoch).
#[inline]
pub(crate) fn uuid_v7_at(nanos: u64) -> Uuid {
    let ms = nanos / 1_000_000;
    let last = LAST_MS.with(Cell::get);
    let counter = if ms == last {
        COUNTER.with(Cell::get) + 1
    } else {
        // A new millisecond (or an earlier one: queues may run on different
        // clocks, and an id carries its item's own creation time).
        LAST_MS.with(|c| c.set(ms));
        new_millisecond()
    };
    COUNTER.with(|c| c.set(counter));
    let ts = u128::from(ms & ((1 << 48) - 1));
    let rand_a = u128::from(counter >> 52); // 12 bits
    let rand_b =
        (u128::from(counter & ((1 << 52) - 1)) << 10) | u128::from(THREAD_BITS.with(Cell::get));
    Uuid::from_u128((ts << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)
}

/// A UUID v7 for now.
pub(crate) fn uuid_v7() -> Uuid {
    uuid_v7_at(crate::clock::system_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_and_distinct() {
        let a = uuid_v7();
        let b = uuid_v7();
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        let (secs, _) = a.get_timestamp().unwrap().to_unix();
        let now = crate::clock::system_nanos() / 1_000_000_000;
        assert!(secs <= now && secs + 5 >= now);
    }

    #[test]
    fn strictly_increasing_per_thread_and_stamped_with_their_time() {
        let t0 = crate::clock::system_nanos();
        let mut prev = uuid_v7_at(t0);
        // The same millisecond many times, then later ones.
        let times = (0..10_000)
            .map(|_| t0)
            .chain((0..10).map(|_| t0 + 5_000_000))
            .chain((0..10).map(|_| t0 + 9_000_000));
        for t in times {
            let id = uuid_v7_at(t);
            assert!(id > prev, "{id} after {prev}");
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            let (secs, ns) = id.get_timestamp().unwrap().to_unix();
            assert_eq!(secs * 1000 + u64::from(ns) / 1_000_000, t / 1_000_000);
            prev = id;
        }
        // An earlier time (another queue's clock): its own timestamp.
        let early = t0 - 5_000_000;
        let (secs, ns) = uuid_v7_at(early).get_timestamp().unwrap().to_unix();
        assert_eq!(secs * 1000 + u64::from(ns) / 1_000_000, early / 1_000_000);
    }

    #[test]
    fn threads_do_not_collide() {
        let ids: Vec<Uuid> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let t = crate::clock::system_nanos();
                    (0..10_000).map(|_| uuid_v7_at(t)).collect::<Vec<_>>()
                })
            })
            .flat_map(|h| h.join().unwrap())
            .collect();
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }
}
