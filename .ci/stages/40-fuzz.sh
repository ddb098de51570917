#!/usr/bin/env bash
# Short cargo-fuzz runs of each target in fuzz/ (ops, envelope), starting from
# the checked-in seed corpus (fuzz/corpus/<target>/; new inputs go to a
# scratch folder, so the checked-in corpus stays small). Nightly with
# AddressSanitizer when nightly can build the targets, else stable with
# `--sanitizer none`. A crash fails the stage; the input that made it is
# saved under fuzz/artifacts/<target>/ (replay it with
# `cargo fuzz run <target> --sanitizer none fuzz/artifacts/<target>/<file>`).
# FUZZ_SECS (default 60) sets the run length per target.
set -uo pipefail
secs=${FUZZ_SECS:-60}
cd fuzz || exit 1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    if ! cargo install cargo-fuzz --locked; then
        echo "SKIP: cargo-fuzz could not be installed here"
        exit 77
    fi
fi

# Nightly + ASan if it builds; stable without a sanitizer otherwise.
if cargo +nightly fuzz build >/tmp/chunkq-fuzz-nightly.log 2>&1; then
    run=(cargo +nightly fuzz run)
    echo "fuzzing with nightly + AddressSanitizer"
else
    echo "nightly + ASan build failed (last lines below); using stable with --sanitizer none"
    tail -5 /tmp/chunkq-fuzz-nightly.log
    if ! cargo fuzz build --sanitizer none; then
        echo "FAIL: the fuzz targets do not build on stable"
        exit 1
    fi
    run=(cargo fuzz run --sanitizer none)
fi

# Under ASan, libFuzzer runs a full LeakSanitizer scan after every input
# whose mallocs and frees do not balance; crossbeam-epoch defers frees past
# the end of an input, so that happens on every `ops` input and slows it
# ~8x. `ops` therefore runs without it (its interpreter counts every
# payload's drops exactly, so leaked items still fail it); `envelope` keeps
# leak detection on.
declare -A extra=([ops]="-detect_leaks=0" [envelope]="")

status=0
for target in ops envelope; do
    scratch=$(mktemp -d)
    echo "=== fuzz $target for ${secs}s ==="
    # shellcheck disable=SC2086 # extra flags are words
    if ! "${run[@]}" "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$secs" -max_len=256 -print_final_stats=1 ${extra[$target]} >"$scratch.log" 2>&1; then
        status=1
        echo "FAIL: fuzz target $target crashed:"
        tail -60 "$scratch.log"
    else
        grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)' "$scratch.log"
    fi
    rm -rf "$scratch" "$scratch.log"
done
exit $status
