#!/usr/bin/env bash
# Formatting and lints (warnings are errors), of the core and of the
# workspace's bridge crates (bridge/); the core's own checks are unchanged.
set -euo pipefail
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# The optional features (get-size2, serde, metrics, async) compile code the
# default build leaves out.
cargo clippy -p chunkq --all-targets --all-features -- -D warnings
