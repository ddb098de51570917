#!/usr/bin/env bash
# The soak runner (examples/soak.rs): producers, independent consumers and a
# clone group, sweeper every 1 ms, alternating DropOldest and Reject phases,
# checking ARCHITECTURE.md invariants 2-5 as it runs; exits non-zero on any
# violation. SOAK_SECS (default 60) sets the duration.
set -euo pipefail
cargo run --release --example soak -- "${SOAK_SECS:-60}s"
