#!/usr/bin/env bash
# The soak runner (examples/soak.rs): producers, independent consumers and a
# clone group, sweeper every 1 ms, alternating DropOldest and Reject phases,
# checking ARCHITECTURE.md invariants 2-5 as it runs; exits non-zero on any
# violation. SOAK_SECS (default 60) sets the duration.
# Then the seed's stress test (examples/stress_test.rs): 4 producers, 200
# consumers and a 4-clone group on a 1 MiB budget with a 50 ms TTL, checking
# delivered + missed == pushed for every consumer; it also exercises threads
# that exit with much garbage in the epoch collector (it once overflowed the
# stack there). STRESS_SECS (default 5) sets its duration.
set -euo pipefail
cargo run --release --example soak -- "${SOAK_SECS:-60}s"
cargo run --release --example stress_test -- --secs "${STRESS_SECS:-5}"
