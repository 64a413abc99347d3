#!/usr/bin/env bash
# Demo: a small Calico-style cluster in network namespaces, bgpd on every node.
#
#   sudo ./interop/demo.sh
#
# Three node namespaces share one L2 segment (a bridge in its own namespace;
# nodes are 10.0.0.1-3/24). Each node gets Felix-like state: a blackhole for
# its IPAM block 10.244.N.0/26 (protocol 80) and one "pod" — a namespace behind
# a cali* veth with address 10.244.N.2, a /32 route to it (protocol 3, boot)
# and Calico's 169.254.1.1 default-gateway trick. bgpd runs on every node in
# an iBGP full mesh (AS 64512, Calico's rule for which side connects), learns
# the other blocks and installs them in the node's kernel. The demo prints
# `bgpctl show peers` and `ip route` per node, pings pod to pod across nodes,
# and removes everything it created on exit (trap), whatever happens.
#
# bgpd/bgpctl come from target/release and are built if missing.
#
#   sudo ./interop/demo.sh --without-bgpd
#
# builds the same cluster but installs by hand (proto static) the routes bgpd
# would learn: a check of the namespace plumbing alone, without bgpd.
set -euo pipefail

WITHOUT_BGPD=0
case "${1:-}" in
    --without-bgpd) WITHOUT_BGPD=1 ;;
    "") ;;
    *) echo "usage: $0 [--without-bgpd]" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODES=3
ASN=64512
TAG="bgpdemo$$"
WORK=""
PIDS=()
NSS=()

if [ "$(id -u)" != 0 ]; then
    echo "the demo creates network namespaces: re-running with sudo" >&2
    exec sudo -E "$0" "$@"
fi
# Set up what a fresh Debian machine lacks (the demo needs nothing else but cargo).
# protoc builds the etcd client that bgpd's Calico mode links.
# protoc needs the well-known types (google/protobuf/*.proto) of libprotobuf-dev, which
# protobuf-compiler only recommends.
if ! command -v ip >/dev/null || ! command -v ping >/dev/null || ! command -v protoc >/dev/null \
    || [ ! -e /usr/include/google/protobuf/descriptor.proto ]; then
    if command -v apt-get >/dev/null; then
        echo "installing iproute2, iputils-ping, protobuf-compiler and libprotobuf-dev" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            iproute2 iputils-ping protobuf-compiler libprotobuf-dev
    fi
fi
for tool in ip ping protoc; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool (apt-get install iproute2 iputils-ping protobuf-compiler libprotobuf-dev)" >&2
        exit 1
    }
done

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    if [ "$rc" != 0 ] && [ -n "$WORK" ]; then
        for log in "$WORK"/n*/bgpd.log; do
            [ -f "$log" ] || continue
            echo "--- $log (last 20 lines)"
            tail -n 20 "$log"
        done
    fi
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
    echo "demo: cleaned up (namespaces and processes removed)"
    exit $rc
}
trap cleanup EXIT INT TERM

# --- build -----------------------------------------------------------------
# BGPD_BIN / BGPCTL_BIN override the binaries (as for the interop tests).
BGPD="${BGPD_BIN:-$ROOT/target/release/bgpd}"
BGPCTL="${BGPCTL_BIN:-$ROOT/target/release/bgpctl}"
build() {
    local cmd=(cargo build --release -p bgpd -p bgpctl)
    if command -v cargo >/dev/null; then
        (cd "$ROOT" && "${cmd[@]}")
    elif [ -n "${SUDO_USER:-}" ]; then
        # Under sudo root usually has no Rust toolchain: build as the user.
        sudo -u "$SUDO_USER" -H bash -lc "cd '$ROOT' && PATH=\"\$HOME/.cargo/bin:\$PATH\" ${cmd[*]}"
    elif [ -x "$HOME/.cargo/bin/cargo" ]; then
        (cd "$ROOT" && "$HOME/.cargo/bin/cargo" "${cmd[@]:1}")
    else
        echo "cargo not found: install Rust (https://rustup.rs) or build bgpd first" >&2
        return 1
    fi
}
if [ $WITHOUT_BGPD = 0 ] && { [ ! -x "$BGPD" ] || [ ! -x "$BGPCTL" ]; }; then
    echo "== building bgpd and bgpctl (release)"
    build
fi

WORK=$(mktemp -d "/tmp/$TAG.XXXXXX")
chmod 755 "$WORK"

node_ns() { echo "$TAG-n$1"; }
pod_ns() { echo "$TAG-pod$1"; }
node_ip() { echo "10.0.0.$1"; }
block() { echo "10.244.$1.0/26"; }
pod_ip() { echo "10.244.$1.2"; }
socket() { echo "$WORK/n$1/bgpd.sock"; }

# ===========================================================================
# bgpd configuration for node $1 — THE ONE PLACE TO ADAPT when the config
# format changes. Follows examples/calico-node-mesh.toml: iBGP full mesh,
# multihop, graceful restart, Calico's passive rule (a node is passive
# towards peers whose address is greater as a string), the node's block
# learned from the kernel (Felix's blackhole, protocol 80) and announced,
# learned blocks installed in the kernel with protocol 12. Kept in step with
# interop::calico::bgpd_config (used by interop/tests/calico.rs).
# ===========================================================================
write_bgpd_config() {
    local i=$1 me peer j passive
    me=$(node_ip "$i")
    mkdir -p "$WORK/n$i"
    {
        echo "# bgpd demo node $i (generated by interop/demo.sh)"
        echo "[global]"
        echo "asn = $ASN"
        echo "router_id = \"$me\""
        echo "listen = [\"$me\"]"
        echo
        echo "[global.control]"
        echo "socket = \"$(socket "$i")\""
        echo
        echo "[global.graceful_restart]"
        echo "enabled = true"
        echo
        echo "[templates.mesh]"
        echo "remote_as = $ASN"
        echo "multihop = 64"
        echo "hold_time = 30"
        echo "keepalive = 10"
        echo "connect_retry = 2"
        echo "import = [\"mesh-import\"]"
        echo "export = [\"calico-export\"]"
        for j in $(seq "$NODES"); do
            [ "$j" = "$i" ] && continue
            peer=$(node_ip "$j")
            # Calico: passive towards every peer whose address is greater as a string.
            if [[ "$peer" > "$me" ]]; then passive=true; else passive=false; fi
            echo
            echo "[peers.Mesh_${peer//./_}]"
            echo "template = \"mesh\""
            echo "address = \"$peer\""
            echo "passive = $passive"
        done
        echo
        echo "# Learn Felix's routes: pod /32s (protocol 3) and the block blackhole (80)."
        echo "[kernel.import]"
        echo "protocols = [3, 80]"
        echo "route_types = [\"unicast\", \"blackhole\"]"
        echo "ipv4_prefix_len = { min = 26, max = 32 }"
        echo
        echo "# Install learned blocks with protocol 12 (\"bird\"); remove them on exit."
        echo "[kernel.export]"
        echo "protocol = 12"
        echo "on_exit = \"flush\""
        echo
        echo "[policies.mesh-import]"
        echo "default = \"accept\""
        echo
        echo "# Announce the block Felix blackholed; never the pod routes on cali*."
        echo "[policies.calico-export]"
        echo "default = \"reject\""
        echo
        echo "[[policies.calico-export.rules]]"
        echo "name = \"no-pod-interfaces\""
        echo "match = { interface = [\"cali*\", \"kube-ipvs*\"] }"
        echo "action = \"reject\""
        echo
        echo "[[policies.calico-export.rules]]"
        echo "name = \"felix-blocks\""
        echo "match = { source = [\"kernel\"], kernel_protocol = [80] }"
        echo "action = \"accept\""
    } > "$WORK/n$i/bgpd.toml"
}

# Waits until bgpd on node $1 shows $2 established sessions.
wait_established() {
    local i=$1 want=$2 n out
    for _ in $(seq 120); do
        out=$(BGPCTL_SOCKET="$(socket "$i")" "$BGPCTL" show peers --json 2>/dev/null || true)
        n=$(grep -oi '"established"' <<<"$out" | wc -l || true)
        if [ "${n:-0}" -ge "$want" ]; then return 0; fi
        sleep 0.5
    done
    echo "node $i: sessions not established after 60 s; bgpctl says:" >&2
    BGPCTL_SOCKET="$(socket "$i")" "$BGPCTL" show peers >&2 || true
    return 1
}

# --- topology --------------------------------------------------------------
echo "== creating $NODES nodes on a bridge (namespaces $TAG-*)"
BR="$TAG-br"
ip netns add "$BR"; NSS+=("$BR")
ip -n "$BR" link add br0 type bridge
ip -n "$BR" link set br0 up
for i in $(seq "$NODES"); do
    n=$(node_ns "$i"); p=$(pod_ns "$i")
    ip netns add "$n"; NSS+=("$n")
    ip netns add "$p"; NSS+=("$p")
    ip -n "$n" link set lo up
    ip netns exec "$n" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
    ip -n "$n" link add eth0 type veth peer name port$i netns "$BR"
    ip -n "$BR" link set "port$i" master br0 up
    ip -n "$n" addr add "$(node_ip "$i")/24" dev eth0
    ip -n "$n" link set eth0 up
    # Felix-like state: the IPAM block as a blackhole (protocol 80) ...
    ip -n "$n" route add blackhole "$(block "$i")" proto 80
    # ... and a pod behind a cali* veth with a /32 route (protocol 3, boot).
    ip -n "$n" link add "cali$i" type veth peer name eth0 netns "$p"
    # Calico gives every cali* the MAC ee:ee:ee:ee:ee:ee; pods reach their
    # 169.254.1.1 gateway through it (a permanent neighbour entry here, as
    # nodes in this demo have no default route for proxy ARP to answer from).
    ip -n "$n" link set "cali$i" address ee:ee:ee:ee:ee:ee
    ip -n "$n" link set "cali$i" up
    ip netns exec "$n" sh -c "echo 1 > /proc/sys/net/ipv4/conf/cali$i/proxy_arp"
    ip -n "$n" route add "$(pod_ip "$i")/32" dev "cali$i" proto boot scope link
    ip -n "$p" link set lo up
    ip -n "$p" addr add "$(pod_ip "$i")/32" dev eth0
    ip -n "$p" link set eth0 up
    ip -n "$p" route add 169.254.1.1 dev eth0 scope link
    ip -n "$p" route add default via 169.254.1.1 dev eth0
    ip -n "$p" neigh add 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent
done

# --- bgpd ------------------------------------------------------------------
if [ $WITHOUT_BGPD = 1 ]; then
    echo "== --without-bgpd: installing the routes bgpd would learn by hand"
    for i in $(seq "$NODES"); do
        for j in $(seq "$NODES"); do
            [ "$i" = "$j" ] && continue
            ip -n "$(node_ns "$i")" route add "$(block "$j")" via "$(node_ip "$j")" proto static
        done
    done
else
    echo "== starting bgpd on every node"
    for i in $(seq "$NODES"); do
        write_bgpd_config "$i"
        NO_COLOR=1 ip netns exec "$(node_ns "$i")" "$BGPD" -c "$WORK/n$i/bgpd.toml" >"$WORK/n$i/bgpd.log" 2>&1 &
        PIDS+=($!)
    done
    for i in $(seq "$NODES"); do
        wait_established "$i" $((NODES - 1)) || exit 1
    done
fi

# Wait (60 s at most in all) for every block to reach every other node's kernel.
routes_complete() {
    local i j
    for i in $(seq "$NODES"); do
        for j in $(seq "$NODES"); do
            [ "$i" = "$j" ] && continue
            ip -n "$(node_ns "$i")" route show "$(block "$j")" | grep -q via || return 1
        done
    done
}
for _ in $(seq 120); do
    routes_complete && break
    sleep 0.5
done
routes_complete || echo "demo: WARNING: not every block reached every node's kernel within 60 s" >&2

for i in $(seq "$NODES"); do
    echo
    if [ $WITHOUT_BGPD = 0 ]; then
        echo "== node $i ($(node_ip "$i")): bgpctl show peers"
        BGPCTL_SOCKET="$(socket "$i")" "$BGPCTL" show peers
    fi
    echo "== node $i: ip route"
    ip -n "$(node_ns "$i")" route
done

echo
status=0
for j in $(seq 2 "$NODES"); do
    echo "== ping pod on node 1 ($(pod_ip 1)) -> pod on node $j ($(pod_ip "$j"))"
    if ! ip netns exec "$(pod_ns 1)" ping -c 3 -W 2 "$(pod_ip "$j")"; then
        status=1
    fi
done
if [ $status = 0 ]; then
    echo "demo: cross-node pod pings succeeded"
else
    echo "demo: a cross-node pod ping FAILED" >&2
fi
exit $status
