#!/usr/bin/env bash
# Line coverage of src/ by the unit and integration tests (cargo-llvm-cov,
# source-based coverage; it adds the llvm-tools component itself). Fails
# below 90 % of src/'s lines. Prints the per-file summary and the uncovered
# lines. Doctests are not counted (that needs nightly and one instrumented
# build per example); tests/, examples/ and benches/ are left out of the
# report.
#
# Exit 77 (skipped) when cargo-llvm-cov or llvm-tools cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
min=90
if ! cargo llvm-cov --version >/dev/null 2>&1; then
    if ! cargo install cargo-llvm-cov --locked; then
        echo "SKIP: 'cargo install cargo-llvm-cov --locked' failed"
        exit 77
    fi
fi
if ! rustup component add llvm-tools-preview >/dev/null 2>&1; then
    echo "SKIP: 'rustup component add llvm-tools-preview' failed"
    exit 77
fi
ignore='(^|/)(tests|examples|benches|fuzz|loom-tests)/'
cargo llvm-cov --release --tests --summary-only --show-missing-lines \
    --ignore-filename-regex "$ignore" --fail-under-lines "$min"
