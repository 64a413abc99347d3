#!/usr/bin/env bash
# Route-reflector benchmark: BIRD 2 and bgpd as the reflector of N iBGP clients, each
# client announcing K prefixes and receiving every other client's (bgp-loadgen: all the
# clients in one process over the project's sans-IO session).
#
#   bench/rr.sh RESULTS [--runs R] [--sizes "100x1000 1000x1000"] [--timeout S]
#                       [--port P] [--no-build] [--keep DIR]
#
#   RESULTS      file the JSON lines are appended to, one per measured run:
#                {"workload": "rr-100x1k", "daemon": "bird"|"bgpd", "run": K,
#                 "time_s": F, "cpu_s": F, "rss_mib": F, "note": "..."}
#                time_s: from the clients' start to every client holding every other
#                client's routes; cpu_s: the reflector's user + system CPU over that
#                time (/proc/PID/stat); rss_mib: its peak RSS (VmHWM) then. The note holds
#                the time to all sessions Established, the load generator's own CPU and
#                the load average before the run.
#   --runs       runs per daemon and size (default 3), interleaved: BIRD, bgpd, BIRD, ...
#                with the first daemon alternating between runs.
#   --sizes      CLIENTSxROUTES pairs (default "100x1000 1000x1000").
#   --timeout    seconds one run may take (default 600); a run past it is recorded with
#                null figures and the reason in its note.
#   --port       the reflector's port on 127.0.0.1 (default 41790).
#   --no-build   use the binaries already in target/release.
#   --keep       copy the configurations and the daemons' logs to DIR.
#
# The reflector listens on 127.0.0.1; client i connects from 127.1.(i/250).(i%250+1), all
# on loopback, so no namespace is needed. Both daemons get the same configuration from
# `bgp-loadgen config` (passive route-reflector clients, accept everything; BIRD with a
# static device route so its recursive next hops resolve). Each daemon is started, measured
# and stopped by its PID. Needs BIRD 2 at /usr/sbin/bird (or $BIRD), jq and ss.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

RESULTS=""
RUNS=3
SIZES="100x1000 1000x1000"
TIMEOUT=600
PORT=41790
BUILD=1
KEEP=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) shift; RUNS=${1:?--runs needs a number} ;;
        --sizes) shift; SIZES=${1:?--sizes needs CLIENTSxROUTES pairs} ;;
        --timeout) shift; TIMEOUT=${1:?--timeout needs seconds} ;;
        --port) shift; PORT=${1:?--port needs a number} ;;
        --no-build) BUILD=0 ;;
        --keep) shift; KEEP=${1:?--keep needs a directory} ;;
        -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
        -*) echo "unknown option: $1" >&2; exit 2 ;;
        *) [ -z "$RESULTS" ] || { echo "one results file only" >&2; exit 2; }; RESULTS=$1 ;;
    esac
    shift
done
[ -n "$RESULTS" ] || { echo "usage: bench/rr.sh RESULTS [options] (--help)" >&2; exit 2; }
BIRD=${BIRD:-/usr/sbin/bird}
for tool in jq ss "$BIRD"; do
    command -v "$tool" >/dev/null || { echo "rr.sh needs $tool" >&2; exit 2; }
done

if [ "$BUILD" = 1 ]; then
    cargo build --release -p bgpd --bin bgpd -p bgp-loadgen
fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/release
BGPD=$TARGET/bgpd
LOADGEN=$TARGET/bgp-loadgen
for bin in "$BGPD" "$LOADGEN"; do
    [ -x "$bin" ] || { echo "missing $bin (build without --no-build)" >&2; exit 2; }
done

# One socket per session on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /tmp/bench-rr.XXXXXX)
DUT_PID=""
# SIGTERM, then SIGKILL if the daemon is still there after 10 s (a reflector busy with a
# million routes may take long to stop; the next run must not share the machine with it).
stop_dut() {
    if [ -n "$DUT_PID" ]; then
        kill "$DUT_PID" 2>/dev/null || true
        local i
        for i in $(seq 1 100); do
            kill -0 "$DUT_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$DUT_PID" 2>/dev/null || true
        wait "$DUT_PID" 2>/dev/null || true
        DUT_PID=""
    fi
}
cleanup() {
    stop_dut
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# "1000" -> "1k", "1000000" -> "1M": the workload id's size words.
short() {
    local n=$1
    if [ $((n % 1000000)) -eq 0 ]; then echo "$((n / 1000000))M"
    elif [ $((n % 1000)) -eq 0 ]; then echo "$((n / 1000))k"
    else echo "$n"; fi
}

# Waits until something listens on the port, or the daemon died, or 60 s passed.
wait_listening() {
    local i
    for i in $(seq 1 600); do
        if ss -Hltn "sport = :$PORT" | grep -q .; then return 0; fi
        kill -0 "$DUT_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# run_one DAEMON CLIENTS ROUTES RUN: one measured run, one JSON line appended.
run_one() {
    local daemon=$1 clients=$2 routes=$3 run=$4
    local workload="rr-${clients}x$(short "$routes")"
    local dir=$WORK/$workload-$daemon-$run
    mkdir -p "$dir"
    local load=(--dut "127.0.0.1:$PORT" --clients "$clients" --routes "$routes")
    case "$daemon" in
        bgpd)
            "$LOADGEN" config bgpd "${load[@]}" --control-socket "$dir/bgpd.sock" >"$dir/bgpd.toml"
            BGPD_LOG=warn "$BGPD" -c "$dir/bgpd.toml" >"$dir/daemon.log" 2>&1 &
            ;;
        bird)
            "$LOADGEN" config bird "${load[@]}" >"$dir/bird.conf"
            "$BIRD" -f -c "$dir/bird.conf" -s "$dir/bird.ctl" -P "$dir/bird.pid" \
                >"$dir/daemon.log" 2>&1 &
            ;;
    esac
    DUT_PID=$!
    local loadavg note line
    if ! wait_listening; then
        note="$daemon did not listen on port $PORT: $(tail -n 3 "$dir/daemon.log" | tr '\n"' ' _')"
        stop_dut
        line=$(jq -cn --arg w "$workload" --arg d "$daemon" --argjson r "$run" --arg n "$note" \
            '{workload: $w, daemon: $d, run: $r, time_s: null, cpu_s: null, rss_mib: null, note: $n}')
        echo "$line" | tee -a "$RESULTS"
        return
    fi
    loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
    local report
    if report=$("$LOADGEN" run "${load[@]}" --timeout "$TIMEOUT" --dut-pid "$DUT_PID" 2>"$dir/loadgen.err"); then
        note=$(jq -r --arg l "$loadavg" \
            '"established \(.established_s * 1000 | round / 1000) s; loadgen cpu \(.loadgen_cpu_s * 100 | round / 100) s; load average \($l)"' \
            <<<"$report")
        line=$(jq -c --arg w "$workload" --arg d "$daemon" --argjson r "$run" --arg n "$note" \
            '{workload: $w, daemon: $d, run: $r, time_s: .complete_s, cpu_s: .dut_cpu_s,
              rss_mib: (if .dut_peak_rss_mib == null then null else (.dut_peak_rss_mib * 10 | round / 10) end),
              note: $n}' <<<"$report")
    else
        note="failed: $(tr '\n"' ' _' <"$dir/loadgen.err"); load average $loadavg"
        line=$(jq -cn --arg w "$workload" --arg d "$daemon" --argjson r "$run" --arg n "$note" \
            '{workload: $w, daemon: $d, run: $r, time_s: null, cpu_s: null, rss_mib: null, note: $n}')
    fi
    stop_dut
    echo "$line" | tee -a "$RESULTS"
    if [ -n "$KEEP" ]; then
        mkdir -p "$KEEP"
        cp -r "$dir" "$KEEP/"
    fi
    rm -rf "$dir"
}

for size in $SIZES; do
    clients=${size%x*}
    routes=${size#*x}
    case "$clients$routes" in
        *[!0-9]*|"") echo "bad size $size (CLIENTSxROUTES)" >&2; exit 2 ;;
    esac
    for run in $(seq 1 "$RUNS"); do
        if [ $((run % 2)) -eq 1 ]; then order="bird bgpd"; else order="bgpd bird"; fi
        for daemon in $order; do
            run_one "$daemon" "$clients" "$routes" "$run"
        done
    done
done
