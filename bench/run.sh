#!/usr/bin/env bash
# Side-by-side benchmark of bgpd and BIRD 2: every transfer workload, the device under test
# (DUT) being BIRD and bgpd in turn, interleaved (bird, bgpd, bird, bgpd, ...), one JSON line
# per measured run appended to a results file; `bench/report FILE` turns that file into the
# summary table of docs/benchmarks.md and its chart.
#
#   bench/run.sh [--quick] [--runs K] [--only SCENARIO[,SCENARIO...]] [--no-build]
#                [--results FILE]
#
#   --quick      one run of each, tables a tenth of the size (1M -> 100k; the RIS table
#                replicated twice instead of nine times; 15 s at rest instead of 60).
#   --runs K     measured runs per scenario and daemon (default 3).
#   --only       scenarios to run (default all, in this order):
#                  same-100k  100k routes with identical attributes       -> same-100k
#                  same-1m    1M routes with identical attributes          -> same-1m
#                             then, with the 1M routes held, a newly connected peer
#                             receives the whole table                      -> dump-1m
#                             then the source withdraws everything          -> withdraw-1m
#                  ris        the RIS table of 2002, 112,826 routes          -> ris-113k
#                  ris-1m     the same replicated nine times, 975,331 routes -> ris-975k
#                  fib-1m     1M routes learned into the DUT's kernel FIB    -> fib-1m
#                  calico-idle  a Calico node at rest with 20k kernel routes -> calico-idle-20k
#   --no-build   use target/release/bgpd and bgpctl as they are (default: build them with
#                `cargo build --release`).
#   --results    the file to append to (default bench/results/DATE.jsonl, --quick:
#                bench/results/DATE-quick.jsonl).
#
# Transfer workloads (same-*, dump, withdraw, ris*): three BIRD 2 or bgpd processes in four
# network namespaces this script creates: the source BIRD (AS 65001, 10.9.1.1) holds the
# routes as `protocol static` (bench/routes.sh) and is passive; the DUT (AS 65000: BIRD
# with `protocol bgp` only, or bgpd without [kernel]) connects to it and to the monitor
# BIRD (AS 65002, 10.9.2.1, passive); the second monitor (AS 65003, 10.9.3.1) connects to
# the DUT only for the dump. eBGP everywhere; import all, export all on the DUT.
# time_s: from the later of the two sessions reaching Established (source and monitor
# logs, millisecond timestamps) to the monitor holding every route (`birdc show route
# count`, polled every 0.05 s); dump: the second monitor's Established to it holding every
# route; withdraw: `birdc disable` of the source's static protocol to both monitors
# holding none. cpu_s: utime + stime of the DUT (/proc/PID/stat) from its start to the end
# of the transfer, or over the phase for dump and withdraw. rss_mib: the DUT's VmHWM,
# reset (/proc/PID/clear_refs 5) at the start of the dump and withdraw phases.
# fib-1m: scripts/bench-e2e.sh with bgpd as sender and the DUT as receiver installing the
# routes into its kernel (time: Established -> all in the kernel). calico-idle:
# scripts/bench-e2e.sh with the DUT as the Calico-style sender importing 20k kernel
# routes, BIRD as its peer, then 60 s at rest: cpu_s is CPU per minute at rest, rss_mib
# the DUT's peak.
#
# Needs root, iproute2, bird/birdc (BIRD 2), awk, zcat. Namespaces and daemons are removed
# on every exit path; traffic stays inside the namespaces. The load average (1 min) at the
# start and end of each run is in its note: on a shared machine CPU seconds and peak RSS
# are the robust figures, wall times move with the load.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

QUICK=0
RUNS=3
ONLY=""
ONE=""
BUILD=1
RESULTS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --runs) shift; RUNS=${1:?--runs needs a count} ;;
        --only) shift; ONLY=${1:?--only needs scenario names} ;;
        --no-build) BUILD=0 ;;
        --results) shift; RESULTS=${1:?--results needs a file} ;;
        --one) ONE="${2:?} ${3:?} ${4:?}"; shift 3 ;; # internal: one scenario, daemon, run
        -h|--help) sed -n '2,52p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
ALL_SCENARIOS="same-100k same-1m ris ris-1m fib-1m calico-idle"
SCENARIOS=${ONLY//,/ }
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
for s in $SCENARIOS; do
    case " $ALL_SCENARIOS " in
        *" $s "*) ;;
        *) echo "unknown scenario $s (one of: $ALL_SCENARIOS)" >&2; exit 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "--runs takes a positive count" >&2; exit 2 ;; esac
[ "$QUICK" = 1 ] && [ -z "$ONLY" ] && RUNS=1
if [ "$(id -u)" -ne 0 ]; then
    echo "bench/run.sh needs root (network namespaces)" >&2
    exit 2
fi
for tool in bird birdc ip awk zcat; do
    command -v "$tool" > /dev/null || { echo "$tool is needed" >&2; exit 2; }
done

if [ -z "$RESULTS" ]; then
    mkdir -p "$ROOT/bench/results"
    RESULTS=$ROOT/bench/results/$(date -u +%Y%m%dT%H%M)$([ "$QUICK" = 1 ] && echo -quick).jsonl
fi
if [ "$BUILD" = 1 ] && [ -z "$ONE" ]; then
    cargo build --release -q -p bgpd -p bgpctl
fi
BGPD=$ROOT/target/release/bgpd
BGPCTL=$ROOT/target/release/bgpctl
if [ -z "$ONE" ] && { [ ! -x "$BGPD" ] || [ ! -x "$BGPCTL" ]; }; then
    echo "no $BGPD / $BGPCTL: build them or drop --no-build" >&2
    exit 2
fi
CACHE=${BENCH_CACHE:-/tmp/bench-routes}
mkdir -p "$CACHE"

if [ "$QUICK" = 1 ]; then
    BIG=100000; SMALL=10000; RIS_COPIES=2; IDLE=15; QFLAG=" --quick"
else
    BIG=1000000; SMALL=100000; RIS_COPIES=9; IDLE=60; QFLAG=""
fi

# The source BIRD's static routes for a route set, generated once into the cache.
routes_file() { # same N | ris COPIES
    local f="$CACHE/$1-$2.conf"
    if [ ! -s "$f" ]; then
        "$ROOT/bench/routes.sh" "$1" "$2" > "$f.tmp"
        mv "$f.tmp" "$f"
    fi
    echo "$f"
}

# One JSON line of the shared results format (null for a figure that does not apply).
record() { # workload daemon run time cpu rss note scenario
    local json
    json=$(printf '{"workload": "%s", "daemon": "%s", "run": %s, "time_s": %s, "cpu_s": %s, "rss_mib": %s, "note": "%s", "cmd": "bench/run.sh%s --only %s", "date": "%s", "machine": "%s"}' \
        "$1" "$2" "$3" "${4:-null}" "${5:-null}" "${6:-null}" "$7" "$QFLAG" "$8" \
        "$(date -u +%F)" "$(nproc) cores, $(machine_cpu), Linux $(uname -r)")
    echo "$json" >> "$RESULTS"
    echo "  $json"
}

scenario() { # name daemon run
    local name=$1 d=$2 k=$3 f n load0
    load0=$(load1)
    case "$name" in
        same-100k)
            f=$(routes_file same "$SMALL"); n=$SMALL
            transfer "$d" "$f" "$n" 0 ;;
        same-1m)
            f=$(routes_file same "$BIG"); n=$BIG
            transfer "$d" "$f" "$n" 1 ;;
        ris)
            f=$(routes_file ris 1); n=$(wc -l < "$f")
            transfer "$d" "$f" "$n" 0 ;;
        ris-1m)
            f=$(routes_file ris "$RIS_COPIES"); n=$(wc -l < "$f")
            transfer "$d" "$f" "$n" 0 ;;
        fib-1m)
            fib "$d" "$BIG" ;;
        calico-idle)
            idle "$d" 20000 "$IDLE" ;;
    esac
    local load
    load="load $load0-$(load1)"
    case "$name" in
        same-*|ris*)
            local id
            case "$name" in
                same-*) id=same-$(label "$n") ;;
                *) id=ris-$(label "$n") ;;
            esac
            record "$id" "$d" "$k" "$T_TIME" "$T_CPU" "$T_RSS" "$n routes, $load, $T_NOTE" "$name"
            if [ -n "${D_TIME:-}" ]; then
                record "dump-$(label "$n")" "$d" "$k" "$D_TIME" "$D_CPU" "$D_RSS" \
                    "$n routes held, new peer, $load" "$name"
                record "withdraw-$(label "$n")" "$d" "$k" "$W_TIME" "$W_CPU" "$W_RSS" \
                    "$n routes withdrawn by the source, $load" "$name"
            fi ;;
        fib-1m)
            record "fib-$(label "$BIG")" "$d" "$k" "$F_TIME" "$F_CPU" "$F_RSS" \
                "$BIG routes into the kernel, bgpd sender, $load, $F_NOTE" "$name" ;;
        calico-idle)
            record "calico-idle-20k" "$d" "$k" null "$I_CPU" "$I_RSS" \
                "cpu_s is CPU per minute over ${IDLE} s at rest, 20000 kernel routes, $load" "$name" ;;
    esac
}

if [ -n "$ONE" ]; then
    # One measured run in this process, so that `set -e` and the cleanup trap hold for it.
    trap teardown EXIT
    trap 'exit 130' INT TERM
    # shellcheck disable=SC2086
    scenario $ONE
    exit 0
fi

echo "results: $RESULTS"
echo "machine: $(nproc) cores, $(machine_cpu), kernel $(uname -r); bird $(bird --version 2>&1 | awk '{print $3}')"
failed=0
# Run K of every scenario before run K+1 of any, so that an interrupted pass still has
# every workload, and BIRD right before bgpd under about the same load.
for k in $(seq 1 "$RUNS"); do
    for s in $SCENARIOS; do
        for d in bird bgpd; do
            echo "=== $s run $k, DUT $d (load $(load1), $(date -u +%H:%M:%S) UTC)"
            args=(--no-build --results "$RESULTS" --one "$s" "$d" "$k")
            [ "$QUICK" = 1 ] && args=(--quick "${args[@]}")
            if ! "$0" "${args[@]}"; then
                echo "!!! $s run $k with DUT $d failed (nothing recorded)" >&2
                failed=$((failed + 1))
            fi
        done
    done
done
echo "done: $RESULTS (bench/report $RESULTS); $failed failed runs"
[ "$failed" = 0 ]
