#!/usr/bin/env bash
# Formatting and lints (warnings are errors).
set -euo pipefail
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all --check
cargo clippy --all-targets -- -D warnings
# The optional features (get-size2, serde, async) compile code the default build
# leaves out.
cargo clippy --all-targets --all-features -- -D warnings
