#!/usr/bin/env bash
# AddressSanitizer (nightly): use-after-free, double free, out-of-bounds and
# leaks (LeakSanitizer is on by default with ASan on x86_64 Linux) in the
# small concurrent tests (tests/sanitize.rs) and the accounting stress test
# (tests/accounting_stress.rs), built in the harness crate of
# .ci/sanitize/harness.sh so that the benches' peers are not rebuilt
# instrumented.
#
# `--cfg crossbeam_sanitize` is crossbeam's own switch for sanitizer runs:
# crossbeam-epoch then seals a garbage bag every 4 objects instead of 64 and
# collects more often, so memory the queue retires is really freed (and a
# late access really faults) within the test's lifetime.
#
# `--target` keeps the sanitizer flags off build scripts and proc macros.
# Exit 77 (skipped) when nightly is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/sanitize/harness.sh
ci_nightly_or_skip
target=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/asan"
harness="$CARGO_TARGET_DIR/harness"
ci_harness "$harness" sanitize accounting_stress
export RUSTFLAGS="-Zsanitizer=address --cfg crossbeam_sanitize"
export RUSTDOCFLAGS="$RUSTFLAGS"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1"
cargo +nightly test --manifest-path "$harness/Cargo.toml" --target "$target" \
    --test sanitize --test accounting_stress
