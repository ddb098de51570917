//! Arbitrary operation sequences on a `Reject` and a `DropOldest` queue,
//! each compared with the reference model after every step (see
//! `tests/support/ops.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/ops.rs"]
mod ops;

fuzz_target!(|data: &[u8]| {
    ops::run_ops(data);
});
