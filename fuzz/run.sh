#!/usr/bin/env bash
# Run every fuzz target for a bounded time: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
# Needs cargo-fuzz (cargo install cargo-fuzz). The stable toolchain is enough with
# RUSTC_BOOTSTRAP=1, which we allow for fuzz builds only.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
python3 seed.py
export RUSTC_BOOTSTRAP=1
failed=0
for t in "${targets[@]}"; do
    echo "== fuzz $t for ${secs}s"
    if ! cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=65535 -rss_limit_mb=2048 2>&1 | tail -n 5; then
        echo "FUZZ FAILED: $t (crash input under fuzz/artifacts/$t)"
        failed=1
    fi
done
exit $failed
