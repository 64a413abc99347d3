#!/usr/bin/env bash
# End-to-end benchmark of the daemon: N kernel routes -> bgpd A -> iBGP -> bgpd B -> B's kernel.
#
#   scripts/bench-e2e.sh [N] [--no-build] [--keep-logs DIR]
#                        [--sender bgpd|bird] [--receiver bgpd|bird] [--all] [--idle SECS]
#
#   N             routes (default 1000000): IPv4 /32 blackholes from 10.128.0.0 up, put
#                 into A's kernel with protocol 80, imported by A ([kernel.import]),
#                 advertised over iBGP to B, installed by B into its kernel (protocol 12).
#   --no-build    use the binaries already in target/release.
#   --keep-logs   copy the configurations and both daemons' logs to DIR.
#   --sender / --receiver  which daemon plays A / B (default bgpd for both). BIRD 2
#                 (/usr/sbin/bird) runs in Calico's style: as A, `protocol kernel` with
#                 `learn; scan time 2;` importing protocol-80 routes, exported over iBGP with
#                 `next hop self`; as B, BGP in (`gateway recursive` over `protocol direct`),
#                 `protocol kernel` exporting BGP routes to the main table (protocol 12,
#                 "bird"; no `learn`, `merge paths` off). Own control socket (-s) and pid
#                 file in the work directory, started and stopped by PID.
#   --idle SECS   once B has every route, leave both at rest for SECS seconds and report A's
#                 CPU over that window (`a_idle_cpu`; a Calico node at rest: bgpd watches
#                 netlink, BIRD rescans the kernel every scan time).
#   --all         run the four pairs (bgpd->bgpd, bgpd->bird, bird->bgpd, bird->bird) one
#                 after the other, each in fresh namespaces, and print one summary table.
#
# Needs root (network namespaces), iproute2 and awk. Creates two namespaces joined by a
# veth pair (192.0.2.1 = A, 192.0.2.2 = B) and deletes them, and stops both daemons, on
# every exit path. Traffic stays inside those namespaces.
#
# Prints, for A: the time from start to all N prefixes in its RIB (kernel import; BIRD:
# `birdc show route count`), and for B: the time from session Established to the end of the
# last kernel batch (bgpd B only, from B's log), the time from Established (B's log; BIRD
# logs with millisecond timestamps) to all N routes in B's kernel (polled every 0.2 s, for
# any B), and the time from B's start to all N routes in B's kernel (polled); CPU seconds
# (user + system, /proc/PID/stat) and peak RSS (VmHWM, /proc/PID/status) of both daemons,
# sampled once B has all routes; a check that B's kernel holds exactly N routes of protocol
# 12; and one `summary:` line with those figures. Exit status 1 if the check fails.
#
# Environment: BENCH_TIMEOUT (seconds per phase, default 600); BENCH_WRAP_A / BENCH_WRAP_B:
# a command prefix for daemon A / B (e.g. "heaptrack -o /tmp/b" to profile the heap; the
# figures are then those of the wrapped, slower process). Anything else in the environment
# (e.g. MALLOC_ARENA_MAX) reaches both daemons. BENCH_BIRD_SCAN: BIRD's `scan time` in
# seconds for its kernel and device protocols (default 2, as calico-node writes it; every
# scan re-reads the whole kernel table, which costs BIRD seconds of CPU at 1M routes).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

N=1000000
BUILD=1
KEEP=""
SENDER=bgpd
RECEIVER=bgpd
ALL=0
IDLE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --keep-logs) shift; KEEP=${1:?--keep-logs needs a directory} ;;
        --sender) shift; SENDER=${1:?--sender needs bgpd or bird} ;;
        --receiver) shift; RECEIVER=${1:?--receiver needs bgpd or bird} ;;
        --all) ALL=1 ;;
        --idle) shift; IDLE=${1:?--idle needs seconds} ;;
        -h|--help) sed -n '2,43p' "$0"; exit 0 ;;
        [0-9]*) N=$1 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
case "$IDLE" in ''|*[!0-9]*) echo "--idle takes whole seconds" >&2; exit 2 ;; esac
TIMEOUT=${BENCH_TIMEOUT:-600}
SCAN=${BENCH_BIRD_SCAN:-2}

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-e2e.sh needs root (network namespaces)" >&2
    exit 2
fi
if [ "$N" -lt 1 ] || [ "$N" -gt 4000000 ]; then
    echo "N must be between 1 and 4000000" >&2
    exit 2
fi

for r in "$SENDER" "$RECEIVER"; do
    case "$r" in
        bgpd|bird) ;;
        *) echo "--sender/--receiver take bgpd or bird, not $r" >&2; exit 2 ;;
    esac
done

if [ "$BUILD" = 1 ]; then
    cargo build --release -q -p bgpd -p bgpctl
fi

if [ "$ALL" = 1 ]; then
    # Each pair in its own invocation (own namespaces, own cleanup); then one table.
    rows=""
    fail=0
    for pair in bgpd:bgpd bgpd:bird bird:bgpd bird:bird; do
        echo "=== A ${pair%:*} -> B ${pair#*:}, $N routes ($(cut -d' ' -f1-3 /proc/loadavg) load) ==="
        out=$("$0" "$N" --no-build --sender "${pair%:*}" --receiver "${pair#*:}" \
            ${KEEP:+--keep-logs "$KEEP/${pair/:/-}"}) || fail=1
        echo "$out"
        rows="$rows$(echo "$out" | sed -n 's/^summary: //p')
"
    done
    echo
    echo "| A -> B | A import | A CPU | A peak RSS | B Established -> all in kernel | B start -> all in kernel | B CPU | B peak RSS |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s' "$rows" | awk '
        function get(k,   i) { for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) return substr($i, length(k) + 2); return "?" }
        NF { printf "| %s -> %s | %s s | %s s | %s MiB | %s s | %s s | %s s | %s MiB |\n",
                    get("sender"), get("receiver"), get("a_import"), get("a_cpu"), get("a_hwm"),
                    get("b_est_all"), get("b_start_all"), get("b_cpu"), get("b_hwm") }'
    exit "$fail"
fi
if [ "$SENDER" = bird ] || [ "$RECEIVER" = bird ]; then
    if ! command -v bird > /dev/null || ! command -v birdc > /dev/null; then
        echo "bird and birdc (BIRD 2, package bird2) are needed" >&2
        exit 2
    fi
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
    for p in $(daemon_of "$PB") $(daemon_of "$PA"); do
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
        mkdir -p "$KEEP" && cp "$WORK"/*.toml "$WORK"/*.conf "$WORK"/*.log "$KEEP"/ 2>/dev/null
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
# BIRD 2 in Calico's style (interop/src/calico.rs `bird_config`): same AS, iBGP over the
# veth, `multihop` and `gateway recursive` as calico-node writes them. Log to a file with
# millisecond timestamps; `debug protocols { states }` logs the session reaching Established.
bird_config() { # own address, peer address, role (sender|receiver), log name (a|b)
    cat <<CFG
router id $1;
log "$WORK/$4.log" all;
timeformat log "%F %T.%3f";
debug protocols { states };
protocol device { scan time $SCAN; }
CFG
    if [ "$3" = sender ]; then
        cat <<CFG
# Learns the kernel's routes every scan time (calico-node: 2 s); only protocol 80, as bgpd's [kernel.import].
protocol kernel {
  learn; scan time $SCAN;
  ipv4 { import where krt_source = 80; export none; };
}
protocol bgp peer {
  local $1 as 64512;
  neighbor $2 as 64512;
  multihop;
  connect delay time 1; connect retry time 2; error wait time 1, 5;
  passive on;
  ipv4 { import none; export all; next hop self; };
}
CFG
    else
        cat <<CFG
protocol direct { ipv4; interface "eth0"; }
# Kernel programming of BGP routes (protocol 12, "bird"); no learn, merge paths off.
protocol kernel {
  scan time $SCAN;
  ipv4 { import none; export where source = RTS_BGP; };
}
protocol bgp peer {
  local $1 as 64512;
  neighbor $2 as 64512;
  multihop;
  connect delay time 1; connect retry time 2; error wait time 1, 5;
  ipv4 { import all; export none; gateway recursive; };
}
CFG
    fi
}
if [ "$SENDER" = bgpd ]; then
    config 192.0.2.1 192.0.2.2 true > "$WORK/a.toml"
else
    bird_config 192.0.2.1 192.0.2.2 sender a > "$WORK/a.conf"
fi
if [ "$RECEIVER" = bgpd ]; then
    config 192.0.2.2 192.0.2.1 false > "$WORK/b.toml"
else
    bird_config 192.0.2.2 192.0.2.1 receiver b > "$WORK/b.conf"
fi

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# CPU seconds (user + system) and VmHWM in MiB of a process.
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
hwm_of() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
rss_of() { awk '/^VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$1/status"; }
# The bgpd or bird process at or below PID (a wrapper may run bgpd as a descendant).
daemon_of() {
    local queue=$1 p
    while [ -n "$queue" ]; do
        # shellcheck disable=SC2086 # a list of PIDs, split on purpose
        set -- $queue
        p=$1
        shift
        queue="$* $(cat /proc/"$p"/task/*/children 2>/dev/null)"
        queue=${queue# }
        case "$(cat "/proc/$p/comm" 2>/dev/null)" in
            bgpd|bird) echo "$p"; return ;;
        esac
    done
}
alive() { kill -0 "$1" 2>/dev/null || { echo "daemon $2 exited; log:" >&2; tail -20 "$WORK/$2.log" >&2; exit 1; }; }
rib_prefixes() { # from `bgpctl show status --json`: the Loc-RIB prefix count
    "$BGPCTL" -s "$1" show status --json 2>/dev/null |
        tr ',{}' '\n\n\n' | awk -F: '/"loc_rib_prefixes"/ { gsub(/[^0-9]/, "", $2); print $2; exit }' || true
}
trie_prefixes() { # IPv4 prefixes in B's main FIB trie (also holds the local table's)
    ip netns exec "$NSB" awk '/^Main:/ { m = 1 } m && /Prefixes:/ { print $2; exit }' \
        /proc/net/fib_triestat 2>/dev/null | grep -x '[0-9][0-9]*'
}
bird_routes() { # from `birdc show route count`: routes in master4
    birdc -s "$1" show route count 2>/dev/null | awk '/routes for/ { print $1; exit }' || true
}
# Session Established as seconds since the epoch, from B's log (bgpd: RFC 3339 UTC;
# BIRD: "YYYY-MM-DD HH:MM:SS.mmm" local time).
established_at() {
    local ts
    if [ "$RECEIVER" = bgpd ]; then
        ts=$(awk '/session established/ { print $1; exit }' "$WORK/b.log")
    else
        ts=$(awk '/peer: State changed to up/ { print $1 " " $2; exit }' "$WORK/b.log")
    fi
    [ -n "$ts" ] && date -d "$ts" +%s.%N
}

# ip netns exec execs bgpd / bird (or the wrapper): $! is that process.
t0=$(now)
if [ "$SENDER" = bgpd ]; then
    BGPD_LOG=warn ip netns exec "$NSA" ${BENCH_WRAP_A:-} "$BGPD" -c "$WORK/a.toml" --no-watch 2> "$WORK/a.log" &
else
    ip netns exec "$NSA" bird -f -c "$WORK/a.conf" -s "$WORK/a.ctl" -P "$WORK/a.pid" 2> "$WORK/a.err" &
fi
PA=$!
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
    alive "$PA" a
    if [ "$SENDER" = bgpd ]; then
        n=$(rib_prefixes "$WORK/192.0.2.1.sock")
    else
        n=$(bird_routes "$WORK/a.ctl")
    fi
    [ "${n:-0}" -ge "$N" ] && break
    if [ "$(date +%s)" -gt "$deadline" ]; then
        echo "A did not import $N routes in ${TIMEOUT}s (has ${n:-0})" >&2
        exit 1
    fi
    sleep 0.2
done
t1=$(now)
A=$(daemon_of "$PA")
[ -n "$A" ] || { echo "no bgpd/bird process under $PA" >&2; exit 1; }
a_import_cpu=$(cpu_of "$A")
a_import_hwm=$(hwm_of "$A")

# B's kernel is polled through /proc/net/fib_triestat (prefix count of the main trie, read
# in microseconds even at 1M routes) rather than by listing every route, which takes
# seconds at 1M and steals CPU from the daemons; the exact check at the end lists them.
base=$(trie_prefixes || true)
t2=$(now)
if [ "$RECEIVER" = bgpd ]; then
    BGPD_LOG=info,bgp_speaker::fib=debug NO_COLOR=1 \
        ip netns exec "$NSB" ${BENCH_WRAP_B:-} "$BGPD" -c "$WORK/b.toml" --no-watch 2> "$WORK/b.log" &
else
    ip netns exec "$NSB" bird -f -c "$WORK/b.conf" -s "$WORK/b.ctl" -P "$WORK/b.pid" 2> "$WORK/b.err" &
fi
PB=$!
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
    alive "$PB" b
    if [ -n "$base" ]; then
        c=$(( $(trie_prefixes) - base ))
    else
        c=$(ip -n "$NSB" -4 route show proto 12 | wc -l)
    fi
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
B=$(daemon_of "$PB")
[ -n "$B" ] || { echo "no bgpd/bird process under $PB" >&2; exit 1; }

span=n/a
if [ "$RECEIVER" = bgpd ]; then
    # Session Established -> end of the last kernel batch, from B's log timestamps (RFC 3339).
    span=$(awk '
        function secs(ts,   d, t) { split(ts, d, "T"); split(d[2], t, ":"); sub(/Z$/, "", t[3]);
                                   return t[1] * 3600 + t[2] * 60 + t[3] }
        /session established/ && !e { e = secs($1) }
        /kernel FIB batch/ { b++; if (!f) f = secs($1); l = secs($1) }
        END { if (e && l) printf "%.2f s (first batch at +%.2f s, %d batches)", l - e, f - e, b; else print "n/a" }
    ' "$WORK/b.log")
fi
te=$(established_at || true)
est_all=n/a
[ -n "$te" ] && est_all=$(elapsed "$te" "$t3")

idle_cpu=n/a
if [ "$IDLE" -gt 0 ]; then
    c0=$(cpu_of "$A")
    sleep "$IDLE"
    alive "$PA" a
    idle_cpu=$(awk -v a="$c0" -v b="$(cpu_of "$A")" 'BEGIN { printf "%.2f", b - a }')
    echo "A: at rest for $IDLE s: CPU $idle_cpu s"
fi

count=$(ip -n "$NSB" -4 route show proto 12 | wc -l)
a_cpu=$(cpu_of "$A"); a_hwm=$(hwm_of "$A")
b_cpu=$(cpu_of "$B"); b_hwm=$(hwm_of "$B")

echo "routes:                 $N (A $SENDER, B $RECEIVER)"
echo "A: kernel import        $(elapsed "$t0" "$t1") s to $N prefixes in the RIB (CPU $a_import_cpu s, peak RSS $a_import_hwm MiB then)"
[ "$RECEIVER" = bgpd ] && echo "B: Established -> last kernel batch  $span"
echo "B: Established -> all routes in kernel (polled)  $est_all s"
echo "B: start -> all routes in kernel     $(elapsed "$t2" "$t3") s"
echo "A: CPU $a_cpu s, peak RSS (VmHWM) $a_hwm MiB, RSS now $(rss_of "$A") MiB"
echo "B: CPU $b_cpu s, peak RSS (VmHWM) $b_hwm MiB, RSS now $(rss_of "$B") MiB"
echo "summary: sender=$SENDER receiver=$RECEIVER n=$N bird_scan=$SCAN a_import=$(elapsed "$t0" "$t1") a_cpu=$a_cpu a_hwm=$a_hwm b_est_all=$est_all b_start_all=$(elapsed "$t2" "$t3") b_cpu=$b_cpu b_hwm=$b_hwm idle_s=$IDLE a_idle_cpu=$idle_cpu"
if [ "$count" -eq "$N" ]; then
    echo "check: B's kernel holds $count routes of protocol 12: OK"
else
    echo "check: B's kernel holds $count routes of protocol 12, expected $N: FAIL"
    exit 1
fi
