#!/usr/bin/env bash
# ThreadSanitizer (nightly): data races between threads in the small
# concurrent tests (tests/sanitize.rs) and the accounting stress test
# (tests/accounting_stress.rs), built in the harness crate of
# .ci/sanitize/harness.sh so that the benches' peers are not rebuilt.
#
# TSan needs the standard library instrumented too (otherwise it refuses to
# link mixed code, or reports races inside std's own synchronisation), hence
# -Zbuild-std and the rust-src component.
#
# crossbeam-epoch: its build script sees CARGO_CFG_SANITIZE=thread and turns
# on `crossbeam_sanitize_thread`, which replaces the SeqCst fences TSan does
# not model by equivalent read-modify-writes, so epoch pinning and
# collection are understood by TSan without suppressions. We add
# `--cfg crossbeam_sanitize` (crossbeam's own switch for sanitizer runs: it
# seals a garbage bag every 4 objects instead of 64 and collects more often),
# so retired memory is really freed during the tests. No suppressions file
# is used: any report fails this stage, and one inside chunkq is a bug.
#
# Exit 77 (skipped) when nightly or rust-src is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/sanitize/harness.sh
ci_nightly_or_skip
ci_component_or_skip rust-src
target=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/tsan"
harness="$CARGO_TARGET_DIR/harness"
ci_harness "$harness" sanitize accounting_stress
export RUSTFLAGS="-Zsanitizer=thread --cfg crossbeam_sanitize"
export RUSTDOCFLAGS="$RUSTFLAGS"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
cargo +nightly test -Zbuild-std --manifest-path "$harness/Cargo.toml" --target "$target" \
    --test sanitize --test accounting_stress
