//! Fast UUID v7 generation for item and handle identities.
//!
//! `Uuid::now_v7()` goes through uuid's shared context and reads the clock
//! itself. Every push needs a UUID and already has a timestamp, so chunkq
//! builds the v7 UUID from that timestamp and 74 random bits drawn from a
//! per-thread wyrand generator seeded from std's randomly keyed hasher. No
//! lock, no shared cache line, about a nanosecond.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use uuid::{Builder, Uuid};

thread_local! {
    /// This thread's wyrand state, seeded once from `RandomState`.
    static RNG: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()) | 1);
}

/// One step of wyrand (public-domain generator by Wang Yi).
fn next_u64() -> u64 {
    RNG.with(|s| {
        let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// A version-7 UUID for the instant `nanos` (ns since the Unix epoch).
pub(crate) fn uuid_v7_at(nanos: u64) -> Uuid {
    let a = next_u64().to_le_bytes();
    let b = next_u64().to_le_bytes();
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&a);
    random[8..].copy_from_slice(&b[..2]);
    Builder::from_unix_timestamp_millis(nanos / 1_000_000, &random).into_uuid()
}

/// A version-7 UUID for now.
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
        let (secs, _) = a.get_timestamp().unwrap().to_unix();
        let now = crate::clock::system_nanos() / 1_000_000_000;
        assert!(secs <= now && secs + 5 >= now);
    }
}
