#!/usr/bin/env bash
# The README's test command: unit, integration and doc tests; then, with the
# serde and metrics features, their integration tests and the doc tests
# they enable.
set -euo pipefail
cargo test --release
cargo test --release --features serde --test serde
cargo test --release --features serde --doc
cargo test --release --features metrics --test metrics
cargo test --release --features metrics --doc
