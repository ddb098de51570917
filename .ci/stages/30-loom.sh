#!/usr/bin/env bash
# loom model checks (loom-tests/): every model, one process each, LOOM_JOBS
# at a time, at the bound below; prints each model's time and iteration
# count. Fails if a model fails (or does not finish within its time limit).
# Bound: LOOM_MAX_PREEMPTIONS=3 (three-thread models cap themselves at 2, see
# loom-tests/README.md); ~5 min on 2 idle cores including the build.
set -uo pipefail
cd "$(dirname "$0")/../../loom-tests"

export RUSTFLAGS="--cfg loom --cfg crossbeam_loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export LOOM_MAX_BRANCHES="${LOOM_MAX_BRANCHES:-100000}"
export RUST_BACKTRACE=0
# A separate target dir: other stages build chunkq without these RUSTFLAGS.
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/loom"
fi
jobs="${LOOM_JOBS:-2}"
# 40 minutes a model: the models of chunk retirement under a leased reader
# (f_reclamation) explore the most (the lease table and the drop at
# removal of issue 16 added atomics to those paths); a model over the limit
# fails the stage.
per_model_limit="${LOOM_MODEL_TIMEOUT:-2400}"

echo "loom bound: LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS LOOM_MAX_BRANCHES=$LOOM_MAX_BRANCHES" \
    "(RUSTFLAGS=\"$RUSTFLAGS\", debug assertions on), $jobs models at a time"

rustup component add rustfmt >/dev/null 2>&1 || true
if ! cargo fmt --check; then
    echo "loom-tests: cargo fmt --check failed"
    exit 1
fi

if ! cargo build --release --tests; then
    echo "loom-tests: build failed"
    exit 1
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# "binary test" pairs, from the test binaries themselves.
for bin in tests/*.rs; do
    bin=$(basename "$bin" .rs)
    cargo test -q --release --test "$bin" -- --list 2>/dev/null |
        sed -n 's/^\(.*\): test$/\1/p' | sed "s/^/$bin /"
done >"$logs/models"
count=$(wc -l <"$logs/models")
if [ "$count" -eq 0 ]; then
    echo "loom-tests: no models found"
    exit 1
fi
echo "$count models"

run_one() {
    local bin=$1 name=$2
    local log="$LOOM_LOGS/$bin.$name.log" t0 ms rc iters
    t0=$(date +%s%N)
    timeout "$LOOM_MODEL_LIMIT" cargo test -q --release --test "$bin" -- --exact "$name" --nocapture \
        >"$log" 2>&1
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    # tests/common's `model` prints "loom: N executions explored ...".
    iters=$(sed -n 's/^loom: \([0-9]*\) executions explored.*/\1/p' "$log" | tail -n 1)
    printf '%-46s %-8s %5d.%ds %9s executions\n' "$bin::$name" \
        "$([ "$rc" -eq 0 ] && echo ok || echo "FAIL($rc)")" $((ms / 1000)) $((ms % 1000 / 100)) "${iters:-?}"
    [ "$rc" -eq 0 ] || touch "$LOOM_LOGS/$bin.$name.failed"
}
export -f run_one
export LOOM_LOGS="$logs" LOOM_MODEL_LIMIT="$per_model_limit"

t0=$(date +%s)
xargs -P "$jobs" -L 1 bash -c 'run_one "$0" "$1"' <"$logs/models"
echo "all models: $(($(date +%s) - t0))s wall"

failed=0
for f in "$logs"/*.failed; do
    [ -e "$f" ] || continue
    failed=1
    log="${f%.failed}.log"
    echo "=== FAILED: $(basename "$log" .log) (first lines of its output) ==="
    grep -v -e '^ *[0-9]*: ' -e '^ *at ' "$log" | head -n 40
done
if [ "$failed" -ne 0 ]; then
    echo "loom: a model failed (replay it with LOOM_CHECKPOINT_FILE=fail.json; see loom-tests/README.md)"
    exit 1
fi
echo "loom: all $count models passed"
