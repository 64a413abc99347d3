#!/usr/bin/env bash
# Build and run every test: unit, property and simulation tests, the interop
# suite (real BIRD 2 / GoBGP / FRR / ExaBGP in network namespaces; needs root)
# and short fuzz runs. The same command is used by CI (.ci/run) and by people.
#
#   scripts/test.sh [--setup] [--no-fuzz] [--fuzz-seconds N]
#
#   --setup         install what the tests need first (Debian 12: apt packages,
#                   cargo-fuzz); implied when CI=true. Uses sudo when not root.
#   --no-fuzz       skip the fuzz step.
#   --fuzz-seconds  time per fuzz target (default 60).
#
# Interop tests need root. Run as root, or as a user with sudo: the interop
# test binary is then run through `sudo -E` while cargo builds as you. Without
# either, each interop test prints "SKIPPED (needs root): NAME" — except under
# CI=true, where a missing prerequisite fails the test.
#
# The last line of output is "N passed, N failed": the sum of all cargo
# `test result:` lines, plus one failure per failed step (build, a test binary
# that did not run, a fuzz target that crashed) and one pass per fuzz target
# that ran clean. The exit status is non-zero if anything failed.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

SETUP=0
FUZZ=1
FUZZ_SECONDS=60
while [ $# -gt 0 ]; do
    case "$1" in
        --setup) SETUP=1 ;;
        --no-fuzz) FUZZ=0 ;;
        --fuzz-seconds) shift; FUZZ_SECONDS=${1:?--fuzz-seconds needs a value} ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done

is_ci() { case "${CI:-}" in true|TRUE|True|1|yes) return 0 ;; *) return 1 ;; esac; }
is_ci && SETUP=1

export CARGO_TERM_COLOR=never
# A one-off build (CI, a fresh clone) gains nothing from incremental artefacts, which
# take as much disk as the rest of target/.
is_ci && export CARGO_INCREMENTAL=0
START=$(date +%s)
LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/bgp-test.XXXXXX")
PASSED=0
FAILED=0
declare -a FAILED_STEPS=()

# Runs "$@" with a time limit of $1 minutes (so a hanging test cannot hold CI
# past its 90 minutes; cargo prints which test "has been running for over 60
# seconds"). Exit status 124 means the limit was hit.
limit() {
    local minutes=$1
    shift
    if command -v timeout >/dev/null; then
        timeout --kill-after=30s "${minutes}m" "$@"
    else
        "$@"
    fi
}
step() { echo; echo "==== $* ($(( $(date +%s) - START )) s elapsed)"; }
fail_step() { FAILED=$((FAILED + 1)); FAILED_STEPS+=("$1"); echo "!!!! step failed: $1"; }

# Root commands: directly when root, else through sudo (non-interactive if
# possible so CI never hangs on a password prompt).
SUDO=()
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        SUDO=(sudo)
    elif command -v sudo >/dev/null && [ -t 0 ]; then
        SUDO=(sudo)
    else
        SUDO=(none)
    fi
fi
as_root() {
    if [ "${SUDO[0]:-}" = none ]; then
        echo "cannot run as root (no sudo): $*" >&2
        return 1
    fi
    "${SUDO[@]}" "$@"
}

# --- setup -----------------------------------------------------------------
PACKAGES=(bird2 gobgpd frr exabgp bgpdump pmacct iproute2 iputils-ping procps
          build-essential pkg-config python3 ca-certificates curl
          etcd-server etcd-client openssl protobuf-compiler libprotobuf-dev shellcheck
          systemd)
# pmacct ships flow collectors as services; the tests only run its pmbmpd themselves.
# etcd-server ships an etcd service; the tests start their own members in namespaces.
# protobuf-compiler: protoc builds the etcd client's gRPC code (bgp-calico feature etcd);
# libprotobuf-dev holds the well-known types it imports (google/protobuf/*.proto), only
# recommended by protobuf-compiler, and recommendations are not installed.
SERVICES=(bird bird6 frr gobgpd exabgp pmacctd nfacctd sfacctd uacctd etcd)
DAEMONS=(bird bird6 gobgpd bgpd zebra watchfrr staticd mgmtd exabgp
         pmacctd nfacctd sfacctd uacctd pmbmpd pmbgpd pmtelemetryd etcd)

have_systemd() { [ -d /run/systemd/system ]; }

# PIDs of packaged routing daemons running in the root network namespace.
root_ns_daemons() {
    local own pid comm
    own=$(readlink /proc/self/ns/net)
    for pid in $(pgrep -x "$(IFS='|'; echo "${DAEMONS[*]}")" 2>/dev/null || true); do
        comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
        if [ "$(as_root readlink "/proc/$pid/ns/net" 2>/dev/null || true)" = "$own" ]; then
            echo "$pid:$comm"
        fi
    done
}

setup() {
    step "setup: packages"
    if [ ! -r /etc/debian_version ]; then
        echo "setup supports Debian 12 only; install ${PACKAGES[*]} yourself" >&2
        return 1
    fi
    # Keep postinst scripts from starting services in the root namespace: a
    # policy-rc.d that refuses every start (only if none exists; ours is
    # removed again afterwards).
    local made_policy=0 before_active=() before_pids
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        as_root sh -c 'printf "#!/bin/sh\n# bgp test setup: no service starts during install\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
        made_policy=1
    fi
    if have_systemd; then
        for s in "${SERVICES[@]}"; do
            systemctl is-active --quiet "$s" 2>/dev/null && before_active+=("$s")
        done
    fi
    before_pids=$(root_ns_daemons | sort)
    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || rc=$?
    if [ $rc = 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${PACKAGES[@]}" || rc=$?
    fi
    if [ $made_policy = 1 ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
    [ $rc = 0 ] || return $rc

    # Stop what the install started anyway (a service not active before).
    if have_systemd; then
        for s in "${SERVICES[@]}"; do
            if systemctl is-active --quiet "$s" 2>/dev/null \
                && [[ " ${before_active[*]:-} " != *" $s "* ]]; then
                echo "stopping $s (started by this install)"
                as_root systemctl disable --now "$s" || true
            fi
        done
    fi
    local now new
    now=$(root_ns_daemons | sort)
    new=$(comm -13 <(echo "$before_pids") <(echo "$now") | sed '/^$/d' || true)
    if [ -n "$new" ]; then
        if is_ci; then
            # A fresh CI machine: these were started by this run's install.
            for p in $new; do
                echo "stopping ${p#*:} (pid ${p%%:*}) started by the install"
                as_root kill "${p%%:*}" || true
            done
        else
            echo "WARNING: routing daemons in the root namespace (left alone): $new"
        fi
    fi
    if [ -n "$before_pids" ]; then
        echo "note: already running before setup, left alone: $before_pids"
    fi

    step "setup: BIRD 1.6.8 (Calico's BIRD generation) for the Calico twin tests"
    # Debian's `bird` (1.6.8) conflicts with bird2, so it is unpacked, not installed:
    # interop::bird1 runs target/bird1/usr/sbin/bird (or $BIRD1_BIN).
    if [ ! -x target/bird1/usr/sbin/bird ]; then
        local tmp
        tmp=$(mktemp -d)
        chmod 777 "$tmp"
        mkdir -p target/bird1
        if (cd "$tmp" && apt-get download bird) && dpkg-deb -x "$tmp"/bird_*.deb target/bird1; then
            echo "BIRD 1.6 unpacked: $(target/bird1/usr/sbin/bird --version 2>&1 | head -1)"
        else
            rm -rf "$tmp"
            return 1
        fi
        rm -rf "$tmp"
    fi

    step "setup: Rust tools"
    if ! command -v cargo >/dev/null; then
        if [ -x "$HOME/.cargo/bin/cargo" ]; then
            export PATH="$HOME/.cargo/bin:$PATH"
        else
            echo "installing Rust with rustup (https://rustup.rs)"
            curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
                | sh -s -- -y --profile minimal --component clippy,rustfmt
            export PATH="$HOME/.cargo/bin:$PATH"
        fi
    fi
    if [ -f fuzz/Cargo.toml ] && [ $FUZZ = 1 ] && ! cargo fuzz --version >/dev/null 2>&1; then
        echo "installing cargo-fuzz from crates.io"
        cargo install --locked cargo-fuzz
    fi
}

if [ $SETUP = 1 ]; then
    if ! setup; then
        fail_step "setup"
    fi
fi
command -v cargo >/dev/null || [ ! -x "$HOME/.cargo/bin/cargo" ] || export PATH="$HOME/.cargo/bin:$PATH"

# --- build -----------------------------------------------------------------
step "cargo build --workspace --all-targets"
if ! limit 40 cargo build --workspace --all-targets 2>&1 | tee "$LOG_DIR/build.log"; then
    fail_step "cargo build"
fi

# --- tests -----------------------------------------------------------------
count_results() {
    # Sums the "N passed; M failed" fields of a cargo test log's result lines.
    awk '/^test result:/ {
            for (i = 2; i <= NF; i++) {
                if ($i ~ /^passed;?$/) p += $(i - 1)
                if ($i ~ /^failed;?$/) f += $(i - 1)
            }
         }
         END { print p + 0, f + 0 }' "$1"
}
sum_log() {
    local log=$1 p f
    read -r p f < <(count_results "$log")
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
}

step "cargo test --workspace (except interop)"
# The simulator's route-reflector test at a 1,000-client size (debug build: ~1.5 min).
export BGP_SIM_RR_CLIENTS=${BGP_SIM_RR_CLIENTS:-1000}
set +e
limit 25 cargo test --workspace --exclude interop --no-fail-fast 2>&1 | tee "$LOG_DIR/test.log"
rc=${PIPESTATUS[0]}
set -e
sum_log "$LOG_DIR/test.log"
read -r _ f < <(count_results "$LOG_DIR/test.log")
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    fail_step "cargo test --workspace hit its time limit (see \"running for over 60 seconds\" above)"
elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    fail_step "cargo test --workspace (exit $rc without a failing test: a target did not build or run)"
fi

step "cargo test -p interop (network namespaces, real peers)"
RUNNER_ENV=()
if [ "$(id -u)" != 0 ] && [ "${SUDO[0]:-}" = sudo ]; then
    host=$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')
    RUNNER_ENV=("CARGO_TARGET_${host}_RUNNER=sudo -E")
    echo "running interop tests as root through sudo"
fi
set +e
limit 25 env "${RUNNER_ENV[@]}" cargo test -p interop --no-fail-fast 2>&1 | tee "$LOG_DIR/interop.log"
rc=${PIPESTATUS[0]}
set -e
sum_log "$LOG_DIR/interop.log"
read -r _ f < <(count_results "$LOG_DIR/interop.log")
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    fail_step "cargo test -p interop hit its time limit"
elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    fail_step "cargo test -p interop (exit $rc without a failing test)"
fi
# A skipped test reports "ok" to cargo: count it as skipped, not passed.
SKIPPED=$(grep -c '^SKIPPED' "$LOG_DIR/interop.log" || true)
PASSED=$((PASSED - SKIPPED))

# --- fuzz ------------------------------------------------------------------
if [ $FUZZ = 1 ] && [ -x fuzz/run.sh ]; then
    step "fuzz: ${FUZZ_SECONDS}s per target"
    if cargo fuzz --version >/dev/null 2>&1; then
        set +e
        limit 20 fuzz/run.sh "$FUZZ_SECONDS" 2>&1 | tee "$LOG_DIR/fuzz.log"
        rc=${PIPESTATUS[0]}
        set -e
        ran=$(grep -c '^== fuzz ' "$LOG_DIR/fuzz.log" || true)
        crashed=$(grep -c '^FUZZ FAILED' "$LOG_DIR/fuzz.log" || true)
        PASSED=$((PASSED + ran - crashed))
        FAILED=$((FAILED + crashed))
        [ "$crashed" = 0 ] || FAILED_STEPS+=("fuzz: $crashed target(s) crashed")
        if [ "$rc" != 0 ] && [ "$crashed" = 0 ]; then
            fail_step "fuzz/run.sh (exit $rc before any target failed)"
        fi
    elif is_ci; then
        fail_step "fuzz (cargo-fuzz missing)"
    else
        echo "fuzz step skipped: cargo-fuzz not installed (scripts/test.sh --setup installs it)"
    fi
elif [ $FUZZ = 1 ]; then
    echo "fuzz step skipped: no fuzz/run.sh"
fi

# --- summary ---------------------------------------------------------------
echo
echo "==== summary after $(( $(date +%s) - START )) s (logs in $LOG_DIR)"
if [ "${SKIPPED:-0}" != 0 ]; then
    echo "$SKIPPED interop tests skipped (see SKIPPED lines above; not counted as passed): run as root or with sudo"
fi
for s in "${FAILED_STEPS[@]}"; do echo "failed: $s"; done
grep -hE '^test .* \.\.\. FAILED$' "$LOG_DIR"/test.log "$LOG_DIR"/interop.log 2>/dev/null \
    | sed 's/^/failed: /' || true
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
