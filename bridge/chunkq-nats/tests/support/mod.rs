//! A real `nats-server` for the tests (the crate's hidden `__testing`
//! module, which the doc tests use too), and a guard against hangs.
#![allow(dead_code)]

pub use chunkq_nats::__testing::Server;
use std::time::{Duration, Instant};

/// Polls `cond` every 5 ms until it holds; panics (naming `what`) after
/// `limit`. A guard against hangs, not a timing assertion.
pub async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
