#!/usr/bin/env bash
# The README's test command: unit, integration and doc tests; then, with the
# serde feature, its integration tests and the doc tests it enables; then the
# same for the async feature (tests/async.rs runs on tokio's current-thread
# and multi-thread runtimes and on futures-executor).
set -euo pipefail
cargo test --release
cargo test --release --features serde --test serde
cargo test --release --features serde --doc
cargo test --release --features async --test async
cargo test --release --features async --doc
