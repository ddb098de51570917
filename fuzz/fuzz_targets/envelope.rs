//! Forward chains across three queues: UUID and creation time kept, history
//! = previous events + Dequeued(old) + Enqueued(new), timestamps
//! non-decreasing, payload equal, exact accounting (see
//! `tests/support/ops.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/ops.rs"]
mod ops;

fuzz_target!(|data: &[u8]| {
    ops::run_envelope(data);
});
