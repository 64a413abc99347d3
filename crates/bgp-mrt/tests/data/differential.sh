#!/bin/sh
# Compare `bgpctl mrt dump` with `bgpdump -m` on COUNT random MRT files (make_random.py).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bgpctl=${BGPCTL:-$here/../../../../target/release/bgpctl}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
for seed in $(seq 1 "${1:-40}"); do
    python3 "$here/make_random.py" "$seed" "$tmp/rand.mrt"
    bgpdump -q -m "$tmp/rand.mrt" > "$tmp/bgpdump.txt" 2>/dev/null
    "$bgpctl" mrt dump "$tmp/rand.mrt" > "$tmp/bgpctl.txt"
    if ! cmp -s "$tmp/bgpdump.txt" "$tmp/bgpctl.txt"; then
        echo "seed $seed differs:"; diff "$tmp/bgpdump.txt" "$tmp/bgpctl.txt" | head -4
        fails=$((fails + 1))
    fi
done
echo "$fails of ${1:-40} random files differ"
[ "$fails" -eq 0 ]
