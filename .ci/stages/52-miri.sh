#!/usr/bin/env bash
# Miri (nightly): undefined behaviour in chunkq's unsafe code — aliasing
# violations, use-after-free, data races on non-atomic memory, invalid
# values — along the concurrent paths of tests/sanitize.rs (sizes cut under
# cfg(miri); about 5 minutes on one core).
#
# Flags:
# -Zmiri-tree-borrows         crossbeam-epoch trips the default Stacked
#                             Borrows model; Tree Borrows accepts it.
# -Zmiri-ignore-leaks         crossbeam-epoch's global collector (a static)
#                             still holds garbage bags at exit.
# -Zmiri-disable-isolation    chunkq's clock anchors to the wall clock
#                             (SystemTime::now), which an isolated Miri
#                             refuses, even for Clock::manual.
# -Zmiri-permissive-provenance crossbeam-epoch's tagged pointers round-trip
#                             through integers; this silences the warning
#                             about those casts (it does not hide errors).
#
# The tests are built in the harness crate of .ci/sanitize/harness.sh: a
# plain `cargo miri test` would first build all of chunkq's dev-dependencies
# (the benches' peers: ~100 crates) for Miri. For the same reason the lib's
# unit tests (src/id.rs, src/size.rs: single-threaded, no unsafe) are not run
# here.
#
# Exit 77 (skipped) when nightly or the miri/rust-src components are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/sanitize/harness.sh
ci_nightly_or_skip
ci_component_or_skip miri rust-src
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/miri"
harness="$CARGO_TARGET_DIR/harness"
ci_harness "$harness" sanitize
if ! cargo +nightly miri setup >/dev/null 2>&1; then
    echo "SKIP: 'cargo +nightly miri setup' failed (cannot build Miri's sysroot here)"
    exit 77
fi
export MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-ignore-leaks -Zmiri-disable-isolation -Zmiri-permissive-provenance"
# A safety net for the CI budget: Miri normally needs about 5 minutes here.
timeout 900 cargo +nightly miri test --manifest-path "$harness/Cargo.toml" --test sanitize \
    -- -Zunstable-options --report-time
