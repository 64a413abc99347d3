#!/usr/bin/env bash
# End-to-end benchmark of the daemon: N kernel routes -> bgpd A -> iBGP -> bgpd B -> B's kernel.
#
#   scripts/bench-e2e.sh [N] [--no-build] [--keep-logs DIR]
#
#   N             routes (default 1000000): IPv4 /32 blackholes from 10.128.0.0 up, put
#                 into A's kernel with protocol 80, imported by A ([kernel.import]),
#                 advertised over iBGP to B, installed by B into its kernel (protocol 12).
#   --no-build    use the binaries already in target/release.
#   --keep-logs   copy the configurations and both daemons' logs to DIR.
#
# Needs root (network namespaces), iproute2 and awk. Creates two namespaces joined by a
# veth pair (192.0.2.1 = A, 192.0.2.2 = B) and deletes them, and stops both daemons, on
# every exit path. Traffic stays inside those namespaces.
#
# Prints, for A: the time from start to all N prefixes in its RIB (kernel import), and for
# B: the time from session Established to the end of the last kernel batch (from B's log),
# and the time from B's start to all N routes in B's kernel (polled); CPU seconds (user +
# system) and peak RSS (VmHWM) of both daemons, sampled once B has all routes; and a check
# that B's kernel holds exactly N routes of protocol 12. Exit status 1 if the check fails.
#
# Environment: BENCH_TIMEOUT (seconds per phase, default 600); BENCH_WRAP_A / BENCH_WRAP_B:
# a command prefix for daemon A / B (e.g. "heaptrack -o /tmp/b" to profile the heap; the
# figures are then those of the wrapped, slower process). Anything else in the environment
# (e.g. MALLOC_ARENA_MAX) reaches both daemons.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

N=1000000
BUILD=1
KEEP=""
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --keep-logs) shift; KEEP=${1:?--keep-logs needs a directory} ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        [0-9]*) N=$1 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
TIMEOUT=${BENCH_TIMEOUT:-600}

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-e2e.sh needs root (network namespaces)" >&2
    exit 2
fi
if [ "$N" -lt 1 ] || [ "$N" -gt 4000000 ]; then
    echo "N must be between 1 and 4000000" >&2
    exit 2
fi

if [ "$BUILD" = 1 ]; then
    cargo build --release -q -p bgpd -p bgpctl
fi
BGPD=$ROOT/target/release/bgpd
BGPCTL=$ROOT/target/release/bgpctl

WORK=$(mktemp -d /tmp/bench-e2e.XXXXXX)
NSA=bench-a-$$
NSB=bench-b-$$
PA=""
PB=""

cleanup() {
    set +e
    for p in $(bgpd_of "$PB") $(bgpd_of "$PA"); do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $PB $PA; do
        for _ in $(seq 1 100); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null
    done
    if [ -n "$KEEP" ]; then
        mkdir -p "$KEEP" && cp "$WORK"/*.toml "$WORK"/*.log "$KEEP"/ 2>/dev/null
    fi
    ip netns del "$NSA" 2>/dev/null
    ip netns del "$NSB" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NSA"
ip netns add "$NSB"
ip -n "$NSA" link set lo up
ip -n "$NSB" link set lo up
ip -n "$NSA" link add eth0 type veth peer name eth0 netns "$NSB"
ip -n "$NSA" addr add 192.0.2.1/24 dev eth0
ip -n "$NSB" addr add 192.0.2.2/24 dev eth0
ip -n "$NSA" link set eth0 up
ip -n "$NSB" link set eth0 up

# N blackhole /32s from 10.128.0.0 (at most 4M fit below 10.192.0.0).
awk -v n="$N" 'BEGIN {
    base = 10 * 16777216 + 128 * 65536
    for (i = 0; i < n; i++) {
        a = base + i
        printf "route add blackhole %d.%d.%d.%d/32 proto 80\n",
            int(a / 16777216), int(a / 65536) % 256, int(a / 256) % 256, a % 256
    }
}' > "$WORK/routes.batch"
ip -n "$NSA" -batch "$WORK/routes.batch"
rm -f "$WORK/routes.batch"

config() { # own address, peer address, passive
    cat <<CFG
[global]
asn = 64512
router_id = "$1"
listen = ["$1"]

[global.control]
socket = "$WORK/$1.sock"

[peers.p]
address = "$2"
remote_as = 64512
passive = $3
connect_retry = 1
import = ["all"]
export = ["all"]

[kernel.import]
ipv6 = false
protocols = [80]

[kernel.export]
protocol = 12
on_exit = "flush"

[policies.all]
default = "accept"
CFG
}
config 192.0.2.1 192.0.2.2 true > "$WORK/a.toml"
config 192.0.2.2 192.0.2.1 false > "$WORK/b.toml"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# CPU seconds (user + system) and VmHWM in MiB of a process.
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
hwm_of() { awk '/^VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$1/status"; }
rss_of() { awk '/^VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$1/status"; }
# The bgpd process at or below PID (a wrapper may run it as a descendant).
bgpd_of() {
    local queue=$1 p
    while [ -n "$queue" ]; do
        set -- $queue
        p=$1
        shift
        queue="$* $(cat /proc/"$p"/task/*/children 2>/dev/null)"
        queue=${queue# }
        if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = bgpd ]; then
            echo "$p"
            return
        fi
    done
}
alive() { kill -0 "$1" 2>/dev/null || { echo "bgpd $2 exited; log:" >&2; tail -20 "$WORK/$2.log" >&2; exit 1; }; }
rib_prefixes() { # from `bgpctl show status --json`: the Loc-RIB prefix count
    "$BGPCTL" -s "$1" show status --json 2>/dev/null |
        tr ',{}' '\n\n\n' | awk -F: '/"loc_rib_prefixes"/ { gsub(/[^0-9]/, "", $2); print $2; exit }' || true
}

# ip netns exec execs bgpd (or the wrapper): $! is that process.
t0=$(now)
BGPD_LOG=warn ip netns exec "$NSA" ${BENCH_WRAP_A:-} "$BGPD" -c "$WORK/a.toml" --no-watch 2> "$WORK/a.log" &
PA=$!
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
    alive "$PA" a
    n=$(rib_prefixes "$WORK/192.0.2.1.sock")
    [ "${n:-0}" -ge "$N" ] && break
    if [ "$(date +%s)" -gt "$deadline" ]; then
        echo "A did not import $N routes in ${TIMEOUT}s (has ${n:-0})" >&2
        exit 1
    fi
    sleep 0.2
done
t1=$(now)
A=$(bgpd_of "$PA")
[ -n "$A" ] || { echo "no bgpd process under $PA" >&2; exit 1; }
a_import_cpu=$(cpu_of "$A")
a_import_hwm=$(hwm_of "$A")

t2=$(now)
BGPD_LOG=info,bgp_speaker::fib=debug NO_COLOR=1 \
    ip netns exec "$NSB" ${BENCH_WRAP_B:-} "$BGPD" -c "$WORK/b.toml" --no-watch 2> "$WORK/b.log" &
PB=$!
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
    alive "$PB" b
    c=$(ip -n "$NSB" -4 route show proto 12 | wc -l)
    [ "$c" -ge "$N" ] && break
    if [ "$(date +%s)" -gt "$deadline" ]; then
        echo "B did not install $N routes in ${TIMEOUT}s (has $c)" >&2
        exit 1
    fi
    sleep 0.2
done
t3=$(now)
# Let B finish the batch it is in (the last log line of a batch follows the last write).
sleep 1
alive "$PA" a
alive "$PB" b
B=$(bgpd_of "$PB")
[ -n "$B" ] || { echo "no bgpd process under $PB" >&2; exit 1; }

# Session Established -> end of the last kernel batch, from B's log timestamps (RFC 3339).
span=$(awk '
    function secs(ts,   d, t) { split(ts, d, "T"); split(d[2], t, ":"); sub(/Z$/, "", t[3]);
                               return t[1] * 3600 + t[2] * 60 + t[3] }
    /session established/ && !e { e = secs($1) }
    /kernel FIB batch/ { b++; if (!f) f = secs($1); l = secs($1) }
    END { if (e && l) printf "%.2f s (first batch at +%.2f s, %d batches)", l - e, f - e, b; else print "n/a" }
' "$WORK/b.log")

count=$(ip -n "$NSB" -4 route show proto 12 | wc -l)

echo "routes:                 $N"
echo "A: kernel import        $(elapsed "$t0" "$t1") s to $N prefixes in the RIB (CPU $a_import_cpu s, peak RSS $a_import_hwm MiB then)"
echo "B: Established -> last kernel batch  $span"
echo "B: start -> all routes in kernel     $(elapsed "$t2" "$t3") s"
echo "A: CPU $(cpu_of "$A") s, peak RSS (VmHWM) $(hwm_of "$A") MiB, RSS now $(rss_of "$A") MiB"
echo "B: CPU $(cpu_of "$B") s, peak RSS (VmHWM) $(hwm_of "$B") MiB, RSS now $(rss_of "$B") MiB"
if [ "$count" -eq "$N" ]; then
    echo "check: B's kernel holds $count routes of protocol 12: OK"
else
    echo "check: B's kernel holds $count routes of protocol 12, expected $N: FAIL"
    exit 1
fi
