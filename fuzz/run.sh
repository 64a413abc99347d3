#!/usr/bin/env bash
# Run every fuzz target for a bounded time: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
# Needs cargo-fuzz (cargo install cargo-fuzz). The stable toolchain is enough with
# RUSTC_BOOTSTRAP=1, which we allow for fuzz builds only.
#
# Every target is built first in one cargo invocation, then the targets run
# FUZZ_JOBS at a time (default: the number of CPUs), each on one core; each target's
# output is printed whole when it ends.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
python3 seed.py
export RUSTC_BOOTSTRAP=1
cargo fuzz build
logs=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-run.XXXXXX")
trap 'rm -rf "$logs"' EXIT

run_one() {
    local t=$1
    if cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=65535 \
        -rss_limit_mb=2048 >"$logs/$t.log" 2>&1; then
        echo ok >"$logs/$t.status"
    else
        echo failed >"$logs/$t.status"
    fi
    { echo "== fuzz $t for ${secs}s"; tail -n 5 "$logs/$t.log"; } >"$logs/$t.out"
    cat "$logs/$t.out"
}

running=0
for t in "${targets[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

failed=0
for t in "${targets[@]}"; do
    if [ "$(cat "$logs/$t.status" 2>/dev/null)" != ok ]; then
        echo "FUZZ FAILED: $t (crash input under fuzz/artifacts/$t)"
        failed=1
    fi
done
exit $failed
