# shellcheck shell=bash disable=SC2034,SC2001
# (SC2034: the figures are read by bench/run.sh; SC2001: sed indents multi-line output.)
# The measuring parts of bench/run.sh (sourced by it): namespaces and daemons with their
# cleanup, the configurations of the source, the device under test and the monitors, and
# the transfer, kernel FIB and at-rest measurements. Each sets global figures that
# bench/run.sh records as one JSON line per workload.

TIMEOUT=${BENCH_TIMEOUT:-600}
WORK=""
NETNS=()
PIDS=()

# Stops every daemon this run started (by PID: TERM, then KILL after 10 s) and deletes its
# namespaces and work directory. Runs on every exit path (trap set by bench/run.sh).
teardown() {
    set +e
    local p i
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2> /dev/null; done
    for p in "${PIDS[@]}"; do
        for i in $(seq 1 100); do
            kill -0 "$p" 2> /dev/null || break
            [ "$i" = 100 ] && kill -KILL "$p" 2> /dev/null
            sleep 0.1
        done
    done
    for p in "${NETNS[@]}"; do ip netns del "$p" 2> /dev/null; done
    [ -n "$WORK" ] && [ -n "${BENCH_KEEP:-}" ] && mkdir -p "$BENCH_KEEP" && cp -r "$WORK" "$BENCH_KEEP/"
    [ -n "$WORK" ] && rm -rf "$WORK"
    PIDS=()
    NETNS=()
    WORK=""
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
load1() { cut -d' ' -f1 /proc/loadavg; }
machine_cpu() { awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo; }
# 100000 -> 100k, 1000000 -> 1m, 112826 -> 113k, 975331 -> 975k.
label() {
    awk -v n="$1" 'BEGIN {
        if (n >= 1000000 && n % 1000000 == 0) printf "%dm", n / 1000000
        else if (n >= 1000) printf "%dk", int(n / 1000 + 0.5)
        else printf "%d", n }'
}
# CPU seconds (utime + stime) and VmHWM in MiB of a process; resetting VmHWM to VmRSS.
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
hwm_of() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
reset_hwm() { echo 5 > "/proc/$1/clear_refs"; }
alive() { # pid name
    kill -0 "$1" 2> /dev/null && return 0
    echo "$2 exited; its log:" >&2
    tail -20 "$WORK/$2.log" "$WORK/$2.err" >&2 2> /dev/null
    exit 1
}
# Routes in a BIRD's master4 table (`birdc show route count`), empty if it does not answer.
bird_count() {
    birdc -s "$WORK/$1.ctl" show route count 2> /dev/null | awk '/routes for/ { print $1; exit }' || true
}
# Polls until `bird_count NAME` compares to N as OP (ge, eq) or the timeout passes.
wait_count() { # name op n watched-pid watched-name
    local deadline c
    deadline=$(($(date +%s) + TIMEOUT))
    while :; do
        c=$(bird_count "$1")
        case "$2" in
            ge) [ -n "$c" ] && [ "$c" -ge "$3" ] && return 0 ;;
            eq) [ -n "$c" ] && [ "$c" -eq "$3" ] && return 0 ;;
        esac
        alive "$4" "$5"
        if [ "$(date +%s)" -gt "$deadline" ]; then
            echo "$1 holds ${c:-?} routes after ${TIMEOUT}s, waiting for -$2 $3" >&2
            exit 1
        fi
        sleep 0.05
    done
}
# When protocol PROTO of a BIRD reached Established, as seconds since the epoch (from its
# log: "YYYY-MM-DD HH:MM:SS.mmm <TRACE> PROTO: State changed to up").
established_at() { # bird name, protocol
    local ts
    ts=$(awk -v p="$2:" '$4 == p && /State changed to up/ { print $1 " " $2; exit }' "$WORK/$1.log")
    [ -n "$ts" ] || { echo "no Established of $2 in $1's log" >&2; exit 1; }
    date -d "$ts" +%s.%N
}
later() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }

# A namespace of this run, with lo up.
netns() {
    ip netns add "$1"
    NETNS+=("$1")
    ip -n "$1" link set lo up
}
# A veth pair between namespaces: link NS1 IF1 ADDR1 NS2 IF2 ADDR2 (addresses with /24).
link() {
    ip -n "$1" link add "$2" type veth peer name "$5" netns "$4"
    ip -n "$1" addr add "$3" dev "$2"
    ip -n "$4" addr add "$6" dev "$5"
    ip -n "$1" link set "$2" up
    ip -n "$4" link set "$5" up
}
start_bird() { # namespace name
    ip netns exec "$1" bird -f -c "$WORK/$2.conf" -s "$WORK/$2.ctl" -P "$WORK/$2.pid" 2> "$WORK/$2.err" &
    PIDS+=($!)
    LAST_PID=$!
}
bird_head() { # router id, log name
    cat <<CFG
router id $1;
log "$WORK/$2.log" all;
timeformat log "%F %T.%3f";
debug protocols { states };
protocol device { }
CFG
}

# The source BIRD: the routes as static blackholes, exported over eBGP to the DUT.
source_config() { # routes file
    bird_head 10.9.1.1 src
    echo "protocol static src_routes {"
    echo "  ipv4;"
    cat "$1"
    cat <<CFG
}
protocol bgp dut {
  local 10.9.1.1 as 65001; neighbor 10.9.1.2 as 65000;
  passive on;
  ipv4 { import none; export all; };
}
CFG
}
# A monitor BIRD: receives everything from the DUT, sends nothing.
monitor_config() { # own address, AS, DUT address, name, passive (on|off)
    bird_head "$1" "$4"
    cat <<CFG
protocol bgp dut {
  local $1 as $2; neighbor $3 as 65000;
  passive $5; connect delay time 1; connect retry time 1;
  ipv4 { import all; export none; };
}
CFG
}
# The DUT as BIRD: BGP only (no kernel protocol), import from the source, export to the monitors.
dut_bird_config() {
    bird_head 10.9.0.2 dut
    cat <<CFG
protocol bgp feed {
  local 10.9.1.2 as 65000; neighbor 10.9.1.1 as 65001;
  connect delay time 1; connect retry time 1;
  ipv4 { import all; export none; };
}
protocol bgp monitor1 {
  local 10.9.2.2 as 65000; neighbor 10.9.2.1 as 65002;
  connect delay time 1; connect retry time 1;
  ipv4 { import none; export all; };
}
protocol bgp monitor2 {
  local 10.9.3.2 as 65000; neighbor 10.9.3.1 as 65003;
  passive on;
  ipv4 { import none; export all; };
}
CFG
}
# The DUT as bgpd: the same sessions, no [kernel] (it never touches the FIB).
dut_bgpd_config() {
    cat <<CFG
[global]
asn = 65000
router_id = "10.9.0.2"
listen = ["10.9.1.2", "10.9.2.2", "10.9.3.2"]

[global.control]
socket = "$WORK/dut.sock"

[peers.src]
address = "10.9.1.1"
remote_as = 65001
connect_retry = 1
import = ["all"]
export = ["none"]

[peers.mon]
address = "10.9.2.1"
remote_as = 65002
connect_retry = 1
import = ["none"]
export = ["all"]

[peers.mon2]
address = "10.9.3.1"
remote_as = 65003
passive = true
import = ["none"]
export = ["all"]

[policies.all]
default = "accept"

[policies.none]
default = "reject"
CFG
}

# Source BIRD -> DUT -> monitor BIRD. Sets T_TIME, T_CPU, T_RSS, T_NOTE; with DUMP=1 then
# also the dump to a second monitor (D_*) and the withdrawal of everything (W_*).
transfer() { # daemon routes-file n dump
    local d=$1 f=$2 n=$3 dump=$4 tag=$$
    local S=bsrc-$tag D=bdut-$tag M=bmon-$tag M2=bmo2-$tag
    WORK=$(mktemp -d /tmp/bench-run.XXXXXX)
    netns "$S"; netns "$D"; netns "$M"; netns "$M2"
    link "$D" s0 10.9.1.2/24 "$S" d0 10.9.1.1/24
    link "$D" m0 10.9.2.2/24 "$M" d0 10.9.2.1/24
    link "$D" m1 10.9.3.2/24 "$M2" d0 10.9.3.1/24

    source_config "$f" > "$WORK/src.conf"
    monitor_config 10.9.2.1 65002 10.9.2.2 mon on > "$WORK/mon.conf"
    monitor_config 10.9.3.1 65003 10.9.3.2 mon2 off > "$WORK/mon2.conf"
    start_bird "$S" src
    local src=$LAST_PID
    wait_count src ge "$n" "$src" src
    start_bird "$M" mon
    local mon=$LAST_PID
    wait_count mon ge 0 "$mon" mon

    local t0 dut
    t0=$(now)
    if [ "$d" = bird ]; then
        dut_bird_config > "$WORK/dut.conf"
        start_bird "$D" dut
    else
        dut_bgpd_config > "$WORK/dut.toml"
        BGPD_LOG=warn ip netns exec "$D" "$BGPD" -c "$WORK/dut.toml" --no-watch 2> "$WORK/dut.log" &
        PIDS+=($!)
        LAST_PID=$!
    fi
    dut=$LAST_PID
    wait_count mon ge "$n" "$dut" dut
    local t1 up
    t1=$(now)
    T_CPU=$(cpu_of "$dut")
    T_RSS=$(hwm_of "$dut")
    up=$(later "$(established_at src dut)" "$(established_at mon dut)")
    T_TIME=$(elapsed "$up" "$t1")
    T_NOTE="sessions up $(elapsed "$t0" "$up") s after the DUT started"
    D_TIME=""
    [ "$dump" = 1 ] || return 0

    sleep 1
    alive "$dut" dut
    local c0
    reset_hwm "$dut"
    c0=$(cpu_of "$dut")
    start_bird "$M2" mon2
    local mon2=$LAST_PID
    wait_count mon2 ge "$n" "$dut" dut
    t1=$(now)
    D_CPU=$(awk -v a="$c0" -v b="$(cpu_of "$dut")" 'BEGIN { printf "%.2f", b - a }')
    D_RSS=$(hwm_of "$dut")
    D_TIME=$(elapsed "$(established_at mon2 dut)" "$t1")
    alive "$mon2" mon2

    sleep 1
    reset_hwm "$dut"
    c0=$(cpu_of "$dut")
    t0=$(now)
    birdc -s "$WORK/src.ctl" disable src_routes > /dev/null
    wait_count mon eq 0 "$dut" dut
    wait_count mon2 eq 0 "$dut" dut
    t1=$(now)
    W_CPU=$(awk -v a="$c0" -v b="$(cpu_of "$dut")" 'BEGIN { printf "%.2f", b - a }')
    W_RSS=$(hwm_of "$dut")
    W_TIME=$(elapsed "$t0" "$t1")
}

# A field of scripts/bench-e2e.sh's `summary:` line.
summary_field() { # output key
    echo "$1" | sed -n 's/^summary: //p' | tr ' ' '\n' | sed -n "s/^$2=//p"
}
# 1M routes into the DUT's kernel: bgpd sender (kernel import) -> DUT receiver -> its FIB.
fib() { # daemon n
    local out
    out=$("$ROOT/scripts/bench-e2e.sh" "$2" --no-build --sender bgpd --receiver "$1")
    echo "$out" | sed 's/^/    /'
    F_TIME=$(summary_field "$out" b_est_all)
    F_CPU=$(summary_field "$out" b_cpu)
    F_RSS=$(summary_field "$out" b_hwm)
    F_NOTE="sender import $(summary_field "$out" a_import) s"
}
# A Calico-style node at rest: the DUT imports N kernel routes and exports them to BIRD,
# then SECS at rest; CPU per minute over that window and the peak RSS.
idle() { # daemon n secs
    local out
    out=$("$ROOT/scripts/bench-e2e.sh" "$2" --no-build --sender "$1" --receiver bird --idle "$3")
    echo "$out" | sed 's/^/    /'
    I_CPU=$(awk -v c="$(summary_field "$out" a_idle_cpu)" -v s="$3" 'BEGIN { printf "%.3f", c * 60 / s }')
    I_RSS=$(summary_field "$out" a_hwm)
}
