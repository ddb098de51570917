#!/usr/bin/env bash
# The many-core scaling run (issue 17, item 4): builds `examples/scaling.rs`
# once (release) and runs it at (1,1), (1,4), (4,4), (8,8) and (1,15) for
# chunkq (group and broadcast, single and batch; group also through
# `Consumer::prefetch(64)`, the `chunkq-prefetch` row) beside every peer,
# writing ONE CSV. Sized for a 16-core machine: the default run takes about
# 1-3 minutes there, and every (scenario, pair) cell is capped so the whole
# run stays under 8 minutes (build excluded) whatever one implementation does.
#
#   benches/many-core.sh [OUT.csv]        # or OUT=path benches/many-core.sh
#   SCALING_BIN=/path/to/scaling benches/many-core.sh out.csv   # no build, no cargo
#
# Options (environment):
#   OUT            the CSV to write when no argument is given (relative
#                  paths: to the current directory; default
#                  benches/results/scaling-<date>-many-core.csv in the repository)
#   SCALING_BIN    a prebuilt `scaling` binary (cargo build --release --example
#                  scaling; it is target/release/examples/scaling): skips the
#                  build, so the run needs neither cargo nor the network
#   ITEMS          items pushed per run, split over the producers (default 1000000)
#   RUNS           runs per row; the row holds their median/min/max (default 5)
#   PAIRS          PxC list (default 1x1,1x4,4x4,8x8,1x15)
#   SCENARIOS      group,broadcast (default both)
#   CELL_TIMEOUT   seconds one (scenario, pair) cell may take (default 40);
#                  a cell that runs past it is recorded as a comment line
#                  `# timed out: ...` and the run goes on
#   CARGO          the cargo to build with (default cargo); the build needs
#                  the dev-dependencies (the peers) in cargo's cache or the
#                  network; CARGO_NET_OFFLINE=true builds from the cache only
#
# Every cell is its own `scaling` process (one per scenario and pair), so a
# slow or stuck implementation costs at most CELL_TIMEOUT; the CSV keeps the
# header lines of the first cell (machine, date, source tree, load) and the
# rows of all, in the column layout of `scaling` (see benches/README.md).
# 10 cells x 40 s = 400 s: the cap that keeps the run under 8 minutes.
# Measured on the 2-core VM (2026-12-05, loaded, 1 M items, ONE run per cell):
# group 0.5-1.1 s a cell, broadcast 0.7-4.2 s (1x15 the longest), 12.7 s for
# all ten; so the default 5 runs take about 65 s there, and a 16-core
# machine (no oversubscription) should take no longer.
set -euo pipefail
# Paths given by the caller (the CSV, SCALING_BIN) are relative to where it
# ran the script; the build runs in the repository root.
caller=$(pwd)
abs() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$caller" "$1" ;; esac; }
cd "$(dirname "$0")/.."

case ${1:-} in
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "many-core.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
if [ $# -gt 1 ]; then
    echo "many-core.sh: one argument at most, the CSV path (see --help)" >&2
    exit 2
fi

items=${ITEMS:-1000000}
runs=${RUNS:-5}
pairs=${PAIRS:-1x1,1x4,4x4,8x8,1x15}
scenarios=${SCENARIOS:-group,broadcast}
cell_timeout=${CELL_TIMEOUT:-40}
if [ -n "${1:-}" ] || [ -n "${OUT:-}" ]; then
    out=$(abs "${1:-$OUT}")
else
    out=benches/results/scaling-$(date -u +%F)-many-core.csv
fi
for v in "$items" "$runs" "$cell_timeout"; do
    case $v in '' | *[!0-9]*) echo "many-core.sh: ITEMS, RUNS and CELL_TIMEOUT must be whole numbers" >&2; exit 2 ;; esac
done

if [ -n "${SCALING_BIN:-}" ]; then
    bin=$(abs "$SCALING_BIN")
    if [ ! -x "$bin" ]; then
        echo "many-core.sh: SCALING_BIN=$bin is not an executable file" >&2
        exit 2
    fi
else
    cargo=${CARGO:-cargo}
    if ! command -v "$cargo" >/dev/null 2>&1; then
        echo "many-core.sh: cargo not found; set SCALING_BIN to a prebuilt scaling binary" >&2
        exit 2
    fi
    echo "many-core.sh: building (release) ..." >&2
    "$cargo" build --release --example scaling >&2
    bin=${CARGO_TARGET_DIR:-target}/release/examples/scaling
fi

have_timeout=1
command -v timeout >/dev/null 2>&1 || have_timeout=0
[ "$have_timeout" -eq 1 ] || echo "many-core.sh: no timeout(1) here: cells are not capped" >&2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
body=$work/body.csv
head_done=0
start=$(date +%s)
IFS=, read -r -a scen_list <<<"$scenarios"
IFS=, read -r -a pair_list <<<"$pairs"
for scen in "${scen_list[@]}"; do
    for pair in "${pair_list[@]}"; do
        cell=$work/cell.csv
        t0=$(date +%s)
        echo "many-core.sh: $scen $pair (items $items, runs $runs) ..." >&2
        set +e
        if [ "$have_timeout" -eq 1 ]; then
            timeout --kill-after=5 "$cell_timeout" "$bin" --items "$items" --runs "$runs" \
                --pairs "$pair" --scenarios "$scen" >"$cell" 2>"$work/err"
        else
            "$bin" --items "$items" --runs "$runs" --pairs "$pair" --scenarios "$scen" \
                >"$cell" 2>"$work/err"
        fi
        rc=$?
        set -e
        t1=$(date +%s)
        if [ "$head_done" -eq 0 ] && grep -q '^scenario,' "$cell"; then
            # The header comments and the column line of the first cell.
            sed -n '1,/^scenario,/p' "$cell" >"$work/head.csv"
            head_done=1
        fi
        # Data rows: everything after the column line that is not a comment.
        sed '1,/^scenario,/d' "$cell" | grep -v '^#' >>"$body" || true
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "# timed out: $scen $pair after ${cell_timeout} s (rows of this cell are missing)" >>"$body"
            echo "many-core.sh: $scen $pair timed out after ${cell_timeout} s" >&2
        elif [ "$rc" -ne 0 ]; then
            echo "# failed: $scen $pair, exit $rc: $(tail -1 "$work/err" | tr -d '\n' | tr ',' ';')" >>"$body"
            echo "many-core.sh: $scen $pair failed (exit $rc):" >&2
            tail -5 "$work/err" >&2
        fi
        echo "# cell $scen $pair: $((t1 - t0)) s" >>"$body"
    done
done
if [ "$head_done" -eq 0 ]; then
    echo "many-core.sh: no cell produced output; nothing written" >&2
    exit 1
fi
mkdir -p "$(dirname "$out")"
{
    cat "$work/head.csv"
    echo "# run by benches/many-core.sh: one scaling process per (scenario, pair); the command line above is the first cell's"
    cat "$body"
    echo "# many-core.sh: $(( $(date +%s) - start )) s in all; ITEMS=$items RUNS=$runs PAIRS=$pairs SCENARIOS=$scenarios CELL_TIMEOUT=$cell_timeout"
} >"$out"
echo "many-core.sh: wrote $out ($(( $(date +%s) - start )) s)" >&2
