#!/usr/bin/env bash
# The README's test command: unit, integration and doc tests; then, with the
# serde feature, its integration tests and the doc tests it enables.
set -euo pipefail
cargo test --release
cargo test --release --features serde --test serde
cargo test --release --features serde --doc
