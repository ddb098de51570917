#!/usr/bin/env bash
# Instruction counts per item under callgrind, chunkq beside its peers, and
# heap allocations per item (examples/icount.rs; see benches/README.md,
# "Instruction counts (callgrind)").
#
#   benches/icount.sh                    # every case; writes benches/results/icount.csv
#   benches/icount.sh --write-baseline   # the same, and rewrites benches/results/icount-baseline.csv
#   benches/icount.sh --check            # chunkq's cases only; fails (exit 1) when one is
#                                        # more than 10 % above the baseline (the CI stage)
#
# Options:
#   --only LIST        comma-separated peers to run (e.g. chunkq,kanal); default all
#   --out FILE         the CSV to write (default benches/results/icount.csv;
#                      with --check, a temporary file unless --out is given)
#   --write-baseline   write chunkq's instr/item of this run to the baseline file
#   --check            compare chunkq's instr/item with the baseline (implies --only chunkq)
#   --tolerance PCT    allowed rise above the baseline for --check (default 10)
#   --baseline FILE    default benches/results/icount-baseline.csv
#
# Each case runs in its own process under
#   valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*icount_measured*'
# so only the measured bursts are counted (Ir: instructions executed);
# instr/item = the callgrind total ÷ items pushed. The extra-reader rows are
# derived: (broadcast-2 - push-recv) of the same peer. Instruction counts do
# not depend on the machine's load. Needs valgrind; CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."

out=""
only=""
write_baseline=0
check=0
tolerance=10
baseline=benches/results/icount-baseline.csv
cmdline="benches/icount.sh${*:+ $*}"
while [ $# -gt 0 ]; do
    case $1 in
        --only) only=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --write-baseline) write_baseline=1; shift ;;
        --check) check=1; shift ;;
        --tolerance) tolerance=$2; shift 2 ;;
        --baseline) baseline=$2; shift 2 ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "icount.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ "$check" -eq 1 ] && [ -z "$only" ]; then
    only=chunkq
fi

if ! command -v valgrind >/dev/null 2>&1; then
    echo "icount.sh: valgrind is not installed (apt-get install -y valgrind)" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$out" ]; then
    if [ "$check" -eq 1 ]; then out=$work/icount.csv; else out=benches/results/icount.csv; fi
fi

# Build (release: optimised; symbols stay, which is all --toggle-collect needs).
if ! cargo build --release --example icount --message-format=json-render-diagnostics >"$work/build.json"; then
    echo "icount.sh: build failed" >&2
    exit 2
fi
bin=$(grep -o '"executable":"[^"]*examples/icount"' "$work/build.json" | tail -n 1 | sed 's/^"executable":"//; s/"$//')
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "icount.sh: cannot find the built examples/icount binary" >&2
    exit 2
fi

# One callgrind process per case.
"$bin" list >"$work/cases"
rows=$work/rows
: >"$rows"
while IFS=, read -r id case peer readers; do
    if [ -n "$only" ] && ! printf ',%s,' "$only" | grep -q ",$peer,"; then
        continue
    fi
    cg=$work/$id.cg
    if ! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*icount_measured*' \
        --callgrind-out-file="$cg" "$bin" "$id" >"$work/$id.stdout" 2>"$work/$id.stderr"; then
        echo "icount.sh: case $id failed under callgrind:" >&2
        tail -n 20 "$work/$id.stderr" "$work/$id.stdout" >&2
        exit 2
    fi
    ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$cg" | tail -n 1)
    [ -n "$ir" ] || ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$cg" | tail -n 1)
    line=$(grep '^icount ' "$work/$id.stdout")
    items=$(printf '%s\n' "$line" | sed 's/.* items=\([0-9]*\).*/\1/')
    allocs=$(printf '%s\n' "$line" | sed 's/.* allocs=\([0-9]*\).*/\1/')
    frees=$(printf '%s\n' "$line" | sed 's/.* frees=\([0-9]*\).*/\1/')
    case $line in
        *" settled=yes "*) ;;
        *) echo "  warning: $id: no settled burst within the runner's limit (not a steady state): $line" >&2 ;;
    esac
    if [ -z "$ir" ] || [ "$ir" -eq 0 ] || [ -z "$items" ]; then
        echo "icount.sh: no instruction count for $id (is the marker icount_measured collected?)" >&2
        exit 2
    fi
    echo "$case,$peer,$readers,$items,$ir,$allocs,$frees" >>"$rows"
    echo "  $id: $ir Ir over $items items" >&2
done <"$work/cases"

# The CSV: measured rows, then the derived extra-reader rows.
mkdir -p "$(dirname "$out")"
{
    echo "# command: $cmdline; date: $(date -u '+%Y-%m-%d %H:%M UTC'); source: chunkq $(git describe --always --dirty 2>/dev/null || echo unknown) (git describe --always --dirty)"
    echo "# $(valgrind --version), $(rustc --version); examples/icount.rs: one thread pushes a burst of 1000 u64 then each of the C readers drains it; warm-up >= 5 bursts, then a measured window of >= 256 bursts, each phase ending on a burst after which no more heap blocks are live than before it (so the window holds the deferred frees of what it allocates); items = items pushed in the window; instructions = callgrind Ir inside icount_measured (the window); instr_per_item = instructions / items; allocs_per_item = allocation calls (alloc, alloc_zeroed, realloc) during the measured bursts / items pushed; frees_per_item = dealloc calls during them / items pushed (below allocs_per_item: frees deferred past the window, their instructions not counted); extra-reader = broadcast-2 minus push-recv of the same peer, per item (instructions = that x the broadcast-2 window's items)"
    echo "case,peer,readers,items,instructions,instr_per_item,allocs_per_item,frees_per_item"
    awk -F, '
        { printf "%s,%s,%s,%s,%s,%.1f,%.4f,%.4f\n", $1, $2, $3, $4, $5, $5 / $4, $6 / $4, $7 / $4
          if ($1 == "push-recv") { ir1[$2] = $5 / $4; al1[$2] = $6 / $4; fr1[$2] = $7 / $4 }
          if ($1 == "broadcast-2") { ir2[$2] = $5 / $4; al2[$2] = $6 / $4; fr2[$2] = $7 / $4; it[$2] = $4; order[++n] = $2 } }
        # Per item of each window (the two windows may differ in length);
        # instructions = that difference x the items of the broadcast-2 window.
        END { for (i = 1; i <= n; i++) { p = order[i]; if (p in ir1)
                printf "extra-reader,%s,2,%s,%.0f,%.1f,%.4f,%.4f\n", p, it[p], (ir2[p] - ir1[p]) * it[p],
                    ir2[p] - ir1[p], al2[p] - al1[p], fr2[p] - fr1[p] } }
    ' "$rows"
} >"$out"

# The tables: every row; then chunkq beside the peers (ratio = chunkq's
# instr/item ÷ the peer's: how many times the peer's instructions chunkq runs).
echo
echo "instructions per item (callgrind Ir ÷ items pushed) and heap allocations per item -> $out"
awk -F, '!/^#/ && $1 != "case" { printf "  %-18s %-18s C=%s  %8s instr/item  %7s allocs/item  %7s frees/item\n", $1, $2, $3, $6, $7, $8 }' "$out"
# A window that allocates more than it frees has left frees (and their
# instructions) for later: its figure is not a steady state.
awk -F, '!/^#/ && $1 != "case" && $1 != "extra-reader" && ($7 - $8 > 0.05 || $8 - $7 > 0.05) {
    printf "  warning: %s %s allocates %s and frees %s per item in the measured bursts: not a steady state, the deferred frees are not counted\n", $1, $2, $7, $8 }' "$out"
echo
echo "chunkq beside the peers: chunkq instr/item, then each peer's instr/item (chunkq ÷ peer)"
awk -F, '
    !/^#/ && $1 != "case" {
        v[$1 "," $2] = $6
        if ($2 != "chunkq") { if (!(($1) in np)) np[$1] = 0; peers[$1, ++np[$1]] = $2 }
    }
    function row(label, c, pc,   i, p, s) {
        if (!((c ",chunkq") in v)) return
        s = sprintf("  %-40s chunkq %7.1f", label, v[c ",chunkq"])
        for (i = 1; i <= np[pc]; i++) {
            p = peers[pc, i]
            s = s sprintf(" | %s %.1f (%.1f×)", p, v[pc "," p], v[c ",chunkq"] / v[pc "," p])
        }
        print s
    }
    END {
        row("push + 1 delivery (C=1)", "push-recv", "push-recv")
        row("push_batch 64 + try_recv_many 64 (C=1)", "push-recv-batch64", "push-recv")
        row("broadcast, 2 readers (C=2)", "broadcast-2", "broadcast-2")
        row("each extra broadcast reader (C=2 - C=1)", "extra-reader", "extra-reader")
    }
' "$out"

if [ "$write_baseline" -eq 1 ]; then
    if ! grep -q '^[^#,]*,chunkq,' "$out"; then
        echo "icount.sh: --write-baseline needs chunkq's cases in the run (check --only)" >&2
        exit 2
    fi
    {
        echo "# chunkq's committed instructions per item (benches/icount.sh; update with: benches/icount.sh --write-baseline); source: chunkq $(git describe --always --dirty 2>/dev/null || echo unknown), $(date -u +%Y-%m-%d)"
        echo "case,instr_per_item"
        awk -F, '!/^#/ && $1 != "case" && $2 == "chunkq" { print $1 "," $6 }' "$out"
    } >"$baseline"
    echo
    echo "baseline written: $baseline"
fi

if [ "$check" -eq 1 ]; then
    echo
    if [ ! -f "$baseline" ]; then
        echo "icount.sh: no baseline $baseline (create it with benches/icount.sh --write-baseline)" >&2
        exit 1
    fi
    echo "chunkq instr/item against the committed baseline ($baseline; fail above +$tolerance %):"
    awk -F, -v tol="$tolerance" '
        FNR == NR { if (!/^#/ && $1 != "case" && $2 == "chunkq") m[$1] = $6; next }
        /^#/ || $1 == "case" { next }
        {
            n++
            if (!($1 in m)) { printf "  %-18s committed %8.1f  measured    (none)  FAIL (case missing)\n", $1, $2; bad++; next }
            d = (m[$1] - $2) / $2 * 100
            verdict = d > tol ? "FAIL" : (d < -tol ? "ok (well below: update the baseline with benches/icount.sh --write-baseline)" : "ok")
            if (d > tol) bad++
            printf "  %-18s committed %8.1f  measured %8.1f  %+6.1f %%  %s\n", $1, $2, m[$1], d, verdict
        }
        END {
            if (n == 0) { print "  the baseline holds no case"; exit 1 }
            exit bad > 0
        }
    ' "$out" "$baseline" || { echo "icount: chunkq's instructions per item rose more than $tolerance % above the baseline"; exit 1; }
    echo "icount: every chunkq case within +$tolerance % of the baseline"
fi
