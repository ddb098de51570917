#!/usr/bin/env bash
# The README's test command: unit, integration and doc tests; then, with the
# serde, metrics and async features each, their integration tests and the
# doc tests they enable (tests/async.rs runs on tokio's current-thread and
# multi-thread runtimes and on futures-executor).
set -euo pipefail
cargo test --release
cargo test --release --features serde --test serde
cargo test --release --features serde --doc
cargo test --release --features metrics --test metrics
# The unit tests and the names test again with metrics on: the label records must
# not outlive their queues (issue 18).
cargo test --release --features metrics --lib --test names
cargo test --release --features metrics --doc
cargo test --release --features async --test async
cargo test --release --features async --doc
