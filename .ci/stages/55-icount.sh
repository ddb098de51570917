#!/usr/bin/env bash
# Instruction-count gate (issue 9): runs chunkq's cases of the callgrind
# benchmark (examples/icount.rs, driven by `benches/icount.sh --check`) and
# fails when chunkq's instructions per item in any case rise more than 10 %
# above the committed figure in benches/results/icount-baseline.csv. Prints
# the measured and committed figures. Instruction counts do not depend on the
# machine's load (callgrind counts executed instructions; repeat runs agree
# to ~1e-5), so this is a fair gate on a shared 2-core machine. The peers are
# not run here (`benches/icount.sh` without --check runs them).
#
# After an intended change of the cost, update the baseline (and commit it):
#   benches/icount.sh --write-baseline
# ICOUNT_TOLERANCE (default 10) sets the allowed rise in percent.
#
# Time: ~15 s with chunkq's release build already in the target dir (stage
# 10 leaves it there); about 2 min from a clean target dir on 2 cores.
# Exit 77 (skipped) when valgrind is missing and cannot be installed.
set -uo pipefail
cd "$(dirname "$0")/../.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "installing valgrind (apt-get)"
    sudo=()
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
        sudo=(sudo -n)
    fi
    if ! { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y valgrind; } \
        >/tmp/chunkq-icount-apt.log 2>&1 || ! command -v valgrind >/dev/null 2>&1; then
        echo "SKIP: valgrind is not installed and 'apt-get install -y valgrind' failed (last lines below)"
        tail -n 5 /tmp/chunkq-icount-apt.log
        exit 77
    fi
fi
echo "$(valgrind --version); tolerance +${ICOUNT_TOLERANCE:-10} %"

benches/icount.sh --check --tolerance "${ICOUNT_TOLERANCE:-10}"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "FAIL: instruction-count gate (rc=$rc); if the rise is intended, run benches/icount.sh --write-baseline and commit the baseline"
    exit 1
fi
