//! Felix-like node state for Calico end-to-end tests (the semantics calico-node gives the kernel state).
//!
//! On a node namespace: the node's IPAM block as a blackhole route with
//! protocol 80 (Felix), and "pods" — each a namespace behind a `cali*` veth,
//! with a /32 address from the block, Calico's 169.254.1.1 default gateway
//! reached through the `ee:ee:ee:ee:ee:ee` MAC Calico gives every `cali*`
//! interface, and a /32 route to it on the node with protocol 3 (boot).
//!
//! [`bird_config`] renders the BIRD 2 configuration calico-node would run on
//! such a node (kernel learn and export, blackhole aggregate, mesh sessions),
//! for mixed clusters where some nodes keep BIRD; [`bgpd_config`] and
//! [`bgpd_config_pool`] the equivalent bgpd configuration, the latter with
//! the kernel route form of an IP pool's IPIP mode ([`IpipMode`]).
//!
//! IPIP needs a `tunl0` device on every node: [`setup_tunl0`] uses the
//! kernel's real `ipip` device when it has one, and otherwise (kernels built
//! without `ipip`, such as the CI machines of this project) a VXLAN device
//! *named* `tunl0` as the encapsulating stand-in. bgpd only sees the device
//! name and installs the same `BLOCK via NODE dev tunl0 onlink` routes either
//! way; the stand-in floods to every other node's underlay address and the
//! peer node answers ARP for its own underlay address on its `tunl0`, so the
//! onlink next hop resolves over the tunnel exactly as IPIP sends to it.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net};

use crate::context::Test;
use crate::error::{Error, Result};
use crate::netns::{Netns, Node};

/// Calico's MAC for every host-side `cali*` interface.
pub const CALI_MAC: &str = "ee:ee:ee:ee:ee:ee";
/// Felix's kernel route protocol number.
pub const PROTO_FELIX: &str = "80";

/// A pod: a namespace behind a `cali*` veth on its node.
#[derive(Debug, Clone)]
pub struct Pod {
    /// The pod's namespace.
    pub ns: Arc<Netns>,
    /// Its address (a /32 from the node's block).
    pub ip: Ipv4Addr,
    /// The host-side interface on the node (`caliN`).
    pub host_iface: String,
}

/// The Felix-like state of one node.
#[derive(Debug, Clone)]
pub struct FelixState {
    /// The node's IPAM block (blackholed on the node, protocol 80).
    pub block: Ipv4Net,
    /// Its pods.
    pub pods: Vec<Pod>,
}

/// Programs Felix-like state on `node`: a blackhole for `block` (protocol 80)
/// and `pods` pods with addresses `block + 2`, `block + 3`, ...
pub fn setup_felix(test: &Test, node: &Node, block: Ipv4Net, pods: u32) -> Result<FelixState> {
    let ns = &node.ns;
    ns.ip(&[
        "route",
        "add",
        "blackhole",
        &block.to_string(),
        "proto",
        PROTO_FELIX,
    ])?;
    let mut out = Vec::new();
    for i in 0..pods {
        let ip = u32::from(block.network())
            .checked_add(2 + i)
            .map(Ipv4Addr::from)
            .filter(|a| block.contains(a) && *a != block.broadcast())
            .ok_or_else(|| Error::Invalid(format!("{pods} pods do not fit in {block}")))?;
        let pod_ns = Netns::new(test, &format!("{}pod{i}", node.name))?;
        let host_iface = format!("cali{i}");
        ns.ip(&[
            "link",
            "add",
            &host_iface,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            pod_ns.name(),
        ])?;
        ns.ip(&["link", "set", &host_iface, "address", CALI_MAC])?;
        ns.ip(&["link", "set", &host_iface, "up"])?;
        ns.sysctl(&format!("net.ipv4.conf.{host_iface}.proxy_arp"), "1")?;
        ns.ip(&[
            "route",
            "add",
            &format!("{ip}/32"),
            "dev",
            &host_iface,
            "proto",
            "boot",
            "scope",
            "link",
        ])?;
        pod_ns.ip(&["addr", "add", &format!("{ip}/32"), "dev", "eth0"])?;
        pod_ns.ip(&["link", "set", "eth0", "up"])?;
        pod_ns.ip(&[
            "route",
            "add",
            "169.254.1.1",
            "dev",
            "eth0",
            "scope",
            "link",
        ])?;
        pod_ns.ip(&[
            "route",
            "add",
            "default",
            "via",
            "169.254.1.1",
            "dev",
            "eth0",
        ])?;
        pod_ns.ip(&[
            "neigh",
            "add",
            "169.254.1.1",
            "lladdr",
            CALI_MAC,
            "dev",
            "eth0",
            "nud",
            "permanent",
        ])?;
        out.push(Pod {
            ns: pod_ns,
            ip,
            host_iface,
        });
    }
    Ok(FelixState { block, pods: out })
}

/// Calico's session name for a mesh peer: `Mesh_10_0_0_2`.
pub fn mesh_name(peer: IpAddr) -> String {
    format!("Mesh_{}", peer.to_string().replace(['.', ':'], "_"))
}

/// Calico's rule for a mesh pair: a node is passive towards every peer whose
/// address is greater than its own *compared as strings*.
pub fn mesh_passive(me: IpAddr, peer: IpAddr) -> bool {
    peer.to_string() > me.to_string()
}

/// A calico-node style BIRD 2 configuration for a node at `me` in `asn` with
/// IPAM `block` out of `pool` and iBGP mesh sessions to `mesh` (IPv4 only).
pub fn bird_config(
    me: Ipv4Addr,
    asn: u32,
    block: Ipv4Net,
    pool: Ipv4Net,
    mesh: &[Ipv4Addr],
) -> String {
    bird_config_timers(me, asn, block, pool, mesh, None)
}

/// [`bird_config`] with explicit session timers (`hold time`, `keepalive
/// time`, `graceful restart time` on every mesh session); `None` keeps
/// BIRD's defaults, as calico-node does.
pub fn bird_config_timers(
    me: Ipv4Addr,
    asn: u32,
    block: Ipv4Net,
    pool: Ipv4Net,
    mesh: &[Ipv4Addr],
    timers: Option<SessionTimers>,
) -> String {
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# calico-node style BIRD configuration (interop harness)."
    );
    let _ = writeln!(c, "router id {me};");
    let _ = writeln!(c, "log stderr all;");
    // Export to peers: the local block aggregate, nothing more specific
    // inside it, anything else from the pool (borrowed /32s, learned blocks
    // are never re-announced over iBGP anyway).
    let _ = writeln!(c, "function calico_aggr() {{");
    let _ = writeln!(c, "  if ( net = {block} ) then {{ accept; }}");
    let _ = writeln!(c, "  if ( net ~ {block} ) then {{ reject; }}");
    let _ = writeln!(c, "}}");
    let _ = writeln!(c, "filter calico_export_to_bgp_peers {{");
    let _ = writeln!(c, "  calico_aggr();");
    let _ = writeln!(c, "  if ( net ~ {pool} ) then {{ accept; }}");
    let _ = writeln!(c, "  reject;");
    let _ = writeln!(c, "}}");
    // Kernel programming: BGP-learned pool routes only (protocol bird).
    let _ = writeln!(c, "filter calico_kernel_programming {{");
    let _ = writeln!(
        c,
        "  if ( net ~ {pool} ) && ( source = RTS_BGP ) then {{ accept; }}"
    );
    let _ = writeln!(c, "  reject;");
    let _ = writeln!(c, "}}");
    let _ = writeln!(c, "protocol kernel {{");
    let _ = writeln!(
        c,
        "  learn; persist; scan time 2; graceful restart; merge paths on;"
    );
    let _ = writeln!(
        c,
        "  ipv4 {{ import all; export filter calico_kernel_programming; }};"
    );
    let _ = writeln!(c, "}}");
    let _ = writeln!(c, "protocol device {{ scan time 2; }}");
    let _ = writeln!(
        c,
        "protocol direct {{ ipv4; interface -\"cali*\", -\"kube-ipvs*\", \"*\"; }}"
    );
    for peer in mesh {
        let me_ip = IpAddr::V4(me);
        let peer_ip = IpAddr::V4(*peer);
        let _ = writeln!(c, "protocol bgp {} {{", mesh_name(peer_ip));
        let _ = writeln!(c, "  local {me} as {asn};");
        let _ = writeln!(c, "  neighbor {peer} as {asn};");
        let _ = writeln!(c, "  multihop;");
        let _ = writeln!(
            c,
            "  connect delay time 1; connect retry time 2; error wait time 1, 5;"
        );
        let _ = writeln!(c, "  graceful restart;");
        if let Some(t) = timers {
            let _ = writeln!(
                c,
                "  hold time {}; keepalive time {};",
                t.hold_time, t.keepalive
            );
            if let Some(r) = t.restart_time {
                let _ = writeln!(c, "  graceful restart time {r};");
            }
        }
        if mesh_passive(me_ip, peer_ip) {
            let _ = writeln!(c, "  passive on;");
        }
        let _ = writeln!(
            c,
            "  ipv4 {{ import all; export filter calico_export_to_bgp_peers; next hop self; gateway recursive; add paths on; }};"
        );
        let _ = writeln!(c, "}}");
    }
    c
}

/// A calico-node style bgpd configuration (the format of
/// `examples/calico-node-mesh.toml` and docs/config.md) for a node at `me` in
/// `asn` with iBGP mesh sessions to `mesh`: Felix's routes are learned from
/// the kernel (protocols 3 and 80), the node's blackhole block (protocol 80)
/// is announced, pod routes on `cali*` are not, learned blocks are installed
/// with protocol 12 ("bird") and persist across restarts. Kept in step with
/// `interop/demo.sh`.
pub fn bgpd_config(me: Ipv4Addr, asn: u32, mesh: &[Ipv4Addr], socket: &std::path::Path) -> String {
    let peers = mesh_peers(mesh);
    bgpd_config_with(me, asn, &peers, None, socket)
}

/// The full-mesh sessions of a node: one per other node, named as calico-node does.
fn mesh_peers(mesh: &[Ipv4Addr]) -> Vec<CalicoPeer> {
    mesh.iter()
        .map(|p| CalicoPeer {
            address: *p,
            name: mesh_name(IpAddr::V4(*p)),
            rr_client: false,
        })
        .collect()
}

/// One iBGP session of a Calico node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalicoPeer {
    /// The peer node's address.
    pub address: Ipv4Addr,
    /// Session name (`Mesh_…`, `Node_…`).
    pub name: String,
    /// This node reflects routes to the peer (Calico: we are a route
    /// reflector and the peer a plain node).
    pub rr_client: bool,
}

/// [`bgpd_config`] for arbitrary sessions and, on route reflectors, a
/// cluster id (Calico's `routeReflectorClusterID`). Which side connects
/// follows Calico's string rule ([`mesh_passive`]).
pub fn bgpd_config_with(
    me: Ipv4Addr,
    asn: u32,
    peers: &[CalicoPeer],
    cluster_id: Option<Ipv4Addr>,
    socket: &std::path::Path,
) -> String {
    render_bgpd_config(
        me,
        asn,
        peers,
        cluster_id,
        None,
        SessionTimers::default(),
        RestartRules::Plain,
        socket,
    )
}

/// Session timers of a Calico node's BGP sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimers {
    /// Hold time offered in OPEN, seconds (RFC 4271 4.2).
    pub hold_time: u16,
    /// Keepalive interval, seconds.
    pub keepalive: u16,
    /// Graceful restart time announced to peers (RFC 4724 3): how long they
    /// keep this node's routes stale after its session drops gracefully.
    /// `None`: the speaker's default (bgpd and BIRD: 120 s).
    pub restart_time: Option<u16>,
}

impl Default for SessionTimers {
    /// The harness's usual timers: hold 30 s, keepalive 10 s, default
    /// restart time.
    fn default() -> SessionTimers {
        SessionTimers {
            hold_time: 30,
            keepalive: 10,
            restart_time: None,
        }
    }
}

/// [`bgpd_config`] with explicit session timers (failure-detection tests:
/// a short hold time and restart time).
pub fn bgpd_config_timers(
    me: Ipv4Addr,
    asn: u32,
    mesh: &[Ipv4Addr],
    timers: SessionTimers,
    socket: &std::path::Path,
) -> String {
    let peers = mesh_peers(mesh);
    render_bgpd_config(
        me,
        asn,
        &peers,
        None,
        None,
        timers,
        RestartRules::Plain,
        socket,
    )
}

/// Graceful restart rules of a bgpd node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartRules {
    /// bgpd's defaults (outside Calico mode).
    Plain,
    /// Calico mode's, as `bgpd calico render` derives them: the restart time (ours and
    /// the one accepted from peers) at most the hold time, no routes kept at hold expiry,
    /// a stop is a restart for every peer, and a restart (`-R`) waits for absent peers
    /// at most four connect-retry intervals.
    CalicoMode,
}

/// BIRD's restart time, Calico mode's when the hold time is not shorter.
const CALICO_RESTART_TIME: u16 = 120;
/// Calico's connect retry (`bgpd calico render`), the unit of the absent-peer wait.
const CALICO_CONNECT_RETRY: u16 = 5;

/// [`bgpd_config_timers`] with the graceful restart rules of Calico mode
/// ([`RestartRules::CalicoMode`]).
pub fn bgpd_config_calico_mode(
    me: Ipv4Addr,
    asn: u32,
    mesh: &[Ipv4Addr],
    timers: SessionTimers,
    socket: &std::path::Path,
) -> String {
    let peers = mesh_peers(mesh);
    render_bgpd_config(
        me,
        asn,
        &peers,
        None,
        None,
        timers,
        RestartRules::CalicoMode,
        socket,
    )
}

/// [`bgpd_config_with`] plus the kernel route form of `pool`'s IPIP mode:
/// a FIB policy (docs/config.md, "kernel.export") that installs the blocks
/// learned over BGP from inside the pool as `BLOCK via NODE dev tunl0 onlink`
/// (`Always`), in that form only for next hops outside the node's connected
/// subnets and directly otherwise (`CrossSubnet`), or directly (`Never`) —
/// what calico-node's BIRD template does with its per-pool kernel filter.
pub fn bgpd_config_pool(
    me: Ipv4Addr,
    asn: u32,
    peers: &[CalicoPeer],
    cluster_id: Option<Ipv4Addr>,
    pool: IpPool,
    socket: &std::path::Path,
) -> String {
    render_bgpd_config(
        me,
        asn,
        peers,
        cluster_id,
        Some(pool),
        SessionTimers::default(),
        RestartRules::Plain,
        socket,
    )
}

/// A Calico IP pool: its CIDR and IPIP mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPool {
    /// The pool (blocks are carved out of it).
    pub cidr: Ipv4Net,
    /// How routes to its blocks on other nodes are installed.
    pub ipip: IpipMode,
}

/// Calico's `ipipMode` of an IP pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpipMode {
    /// No encapsulation: `BLOCK via NODE dev eth0`.
    Never,
    /// Always IPIP: `BLOCK via NODE dev tunl0 onlink`.
    Always,
    /// IPIP only towards nodes outside the local node's subnet.
    CrossSubnet,
}

impl IpipMode {
    /// The FIB policy's `install` value for this mode (docs/config.md).
    fn install(self) -> &'static str {
        match self {
            IpipMode::Never => "normal",
            IpipMode::Always => "onlink",
            IpipMode::CrossSubnet => "cross_subnet",
        }
    }
}

/// The name of Calico's IPIP device, and of the FIB policy's tunnel device.
pub const TUNNEL_DEVICE: &str = "tunl0";

#[allow(clippy::too_many_arguments)]
fn render_bgpd_config(
    me: Ipv4Addr,
    asn: u32,
    peers: &[CalicoPeer],
    cluster_id: Option<Ipv4Addr>,
    pool: Option<IpPool>,
    timers: SessionTimers,
    rules: RestartRules,
    socket: &std::path::Path,
) -> String {
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# calico-node style bgpd configuration (interop harness)."
    );
    let _ = writeln!(
        c,
        "[global]\nasn = {asn}\nrouter_id = \"{me}\"\nlisten = [\"{me}\"]"
    );
    if let Some(id) = cluster_id {
        let _ = writeln!(c, "cluster_id = \"{id}\"");
    }
    let _ = writeln!(c, "\n[global.control]\nsocket = \"{}\"", socket.display());
    let _ = writeln!(c, "\n[global.graceful_restart]\nenabled = true");
    match rules {
        RestartRules::Plain => {
            if let Some(r) = timers.restart_time {
                let _ = writeln!(c, "restart_time = {r}");
            }
        }
        RestartRules::CalicoMode => {
            // What `bgpd calico render` writes (docs/calico.md, "Restarts and
            // departures"): nothing outlives a node beyond the hold time.
            let bound = CALICO_RESTART_TIME.min(timers.hold_time);
            let _ = writeln!(c, "restart_time = {bound}\nmax_restart_time = {bound}");
            let _ = writeln!(c, "retain_on_hold_expiry = false\non_stop = \"restart\"");
            let _ = writeln!(
                c,
                "absent_peer_wait = {}",
                (4 * CALICO_CONNECT_RETRY).min(bound)
            );
        }
    }
    let _ = writeln!(c, "\n[templates.mesh]\nremote_as = {asn}\nmultihop = 64");
    let _ = writeln!(
        c,
        "hold_time = {}\nkeepalive = {}\nconnect_retry = 2",
        timers.hold_time, timers.keepalive
    );
    let _ = writeln!(
        c,
        "import = [\"mesh-import\"]\nexport = [\"calico-export\"]"
    );
    for peer in peers {
        let (me_ip, peer_ip) = (IpAddr::V4(me), IpAddr::V4(peer.address));
        let _ = writeln!(c, "\n[peers.{}]", peer.name);
        let _ = writeln!(c, "template = \"mesh\"\naddress = \"{}\"", peer.address);
        let _ = writeln!(c, "passive = {}", mesh_passive(me_ip, peer_ip));
        if peer.rr_client {
            let _ = writeln!(c, "route_reflector_client = true");
        }
    }
    let _ = writeln!(c, "\n[kernel.import]\nprotocols = [3, 80]");
    let _ = writeln!(c, "route_types = [\"unicast\", \"blackhole\"]");
    let _ = writeln!(c, "ipv4_prefix_len = {{ min = 26, max = 32 }}");
    let _ = writeln!(c, "ipv6_prefix_len = {{ min = 122, max = 128 }}");
    // Calico's setting: routes stay when bgpd stops, a restart adopts them.
    let _ = writeln!(c, "\n[kernel.export]\nprotocol = 12\non_exit = \"persist\"");
    if pool.is_some() {
        let _ = writeln!(
            c,
            "tunnel_device = \"{TUNNEL_DEVICE}\"\npolicy = \"calico-kernel\""
        );
    }
    let _ = writeln!(c, "\n[policies.mesh-import]\ndefault = \"accept\"");
    let _ = writeln!(c, "\n[policies.calico-export]\ndefault = \"reject\"");
    let _ = writeln!(
        c,
        "\n[[policies.calico-export.rules]]\nname = \"no-pod-interfaces\""
    );
    let _ = writeln!(
        c,
        "match = {{ interface = [\"cali*\", \"kube-ipvs*\"] }}\naction = \"reject\""
    );
    let _ = writeln!(
        c,
        "\n[[policies.calico-export.rules]]\nname = \"felix-blocks\""
    );
    let _ = writeln!(
        c,
        "match = {{ source = [\"kernel\"], kernel_protocol = [80] }}\naction = \"accept\""
    );
    // BGP-learned blocks: iBGP rules keep a mesh node from passing them on;
    // a route reflector reflects them (RFC 4456).
    let _ = writeln!(
        c,
        "\n[[policies.calico-export.rules]]\nname = \"learned-blocks\""
    );
    let _ = writeln!(c, "match = {{ source = [\"bgp\"] }}\naction = \"accept\"");
    if let Some(pool) = pool {
        // To the kernel: the pool's IPIP mode picks the route form; anything
        // else learned (outside every pool) is installed directly.
        let _ = writeln!(c, "\n[policies.calico-kernel]\ndefault = \"accept\"");
        let _ = writeln!(c, "\n[[policies.calico-kernel.rules]]");
        let _ = writeln!(
            c,
            "name = \"pool-{}\"",
            pool.cidr.to_string().replace(['.', '/'], "-")
        );
        let _ = writeln!(
            c,
            "match = {{ prefix_in = [{{ prefix = \"{}\", orlonger = true }}], source = [\"bgp\"] }}",
            pool.cidr
        );
        let _ = writeln!(
            c,
            "set = {{ install = \"{}\" }}\naction = \"accept\"",
            pool.ipip.install()
        );
    }
    c
}

/// Which device [`setup_tunl0`] created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    /// The kernel's IPIP device (`ipip` link type), as on a Calico node.
    Ipip,
    /// A VXLAN device named `tunl0` (VNI 4096, UDP 4789) standing in for IPIP
    /// on kernels without the `ipip` link type.
    VxlanStandIn,
}

impl TunnelKind {
    /// A sentence for test output and reports.
    pub fn describe(self) -> &'static str {
        match self {
            TunnelKind::Ipip => "tunl0 is the kernel's ipip device (real IPIP encapsulation)",
            TunnelKind::VxlanStandIn => {
                "tunl0 is a VXLAN device standing in for IPIP (this kernel has no ipip link type)"
            }
        }
    }
}

/// Creates and configures `tunl0` on `node` with the /32 tunnel address
/// `address` (Calico gives it an address from the node's block), towards the
/// other nodes' underlay addresses `peers`.
///
/// A real IPIP device is used when the kernel has one: the per-namespace
/// fallback `tunl0` the `ipip` module creates, or one added with
/// `ip link add tunl0 type ipip`; IPIP sends each packet to the onlink
/// next hop of its route, so it needs no per-peer state. Otherwise a VXLAN
/// device named `tunl0` is the stand-in: flood entries (all-zero MAC) to every
/// peer's underlay address carry the ARP request for the next hop, which the
/// peer answers on its own `tunl0` (`arp_ignore` 0: any local address), and
/// unicast frames then follow the learned FDB entry. Reverse-path filtering
/// is off on the device in both cases: packets arriving on it come from
/// addresses routed elsewhere (the peer node's underlay address in ARP).
pub fn setup_tunl0(node: &Node, address: Ipv4Addr, peers: &[Ipv4Addr]) -> Result<TunnelKind> {
    let ns = &node.ns;
    let exists = ns.ip(&["link", "show", TUNNEL_DEVICE]).is_ok();
    let kind = if exists
        || ns
            .ip(&["link", "add", TUNNEL_DEVICE, "type", "ipip"])
            .is_ok()
    {
        let kind = ns.ip(&["-d", "-j", "link", "show", TUNNEL_DEVICE])?;
        if !kind.contains("\"info_kind\":\"ipip\"") {
            return Err(Error::Check(format!(
                "{} already has a {TUNNEL_DEVICE} that is not an ipip device: {kind}",
                node.name
            )));
        }
        // IPIP's 20-byte header inside a 1500-byte underlay, as Calico sets.
        ns.ip(&["link", "set", TUNNEL_DEVICE, "mtu", "1480"])?;
        TunnelKind::Ipip
    } else {
        let local = node.v4.to_string();
        ns.ip(&[
            "link",
            "add",
            TUNNEL_DEVICE,
            "type",
            "vxlan",
            "id",
            "4096",
            "dstport",
            "4789",
            "local",
            &local,
            "dev",
            &node.ifname,
        ])?;
        for peer in peers.iter().filter(|p| **p != node.v4) {
            let dst = peer.to_string();
            ns.exec(
                "bridge",
                &[
                    "fdb",
                    "append",
                    "00:00:00:00:00:00",
                    "dev",
                    TUNNEL_DEVICE,
                    "dst",
                    &dst,
                ],
            )?;
        }
        TunnelKind::VxlanStandIn
    };
    ns.ip(&["link", "set", TUNNEL_DEVICE, "up"])?;
    ns.ip(&[
        "addr",
        "add",
        &format!("{address}/32"),
        "dev",
        TUNNEL_DEVICE,
    ])?;
    ns.sysctl("net.ipv4.conf.all.rp_filter", "0")?;
    ns.sysctl(&format!("net.ipv4.conf.{TUNNEL_DEVICE}.rp_filter"), "0")?;
    Ok(kind)
}

/// True if `routes` has `dst` in the IPIP form: `via gw dev tunl0 onlink`
/// with protocol `proto`.
pub fn has_tunnel_route(
    routes: &[crate::KernelRoute],
    dst: IpNet,
    gw: IpAddr,
    proto: &str,
) -> bool {
    routes.iter().any(|r| {
        r.dst == dst
            && r.protocol == proto
            && r.gateway == Some(gw)
            && r.dev.as_deref() == Some(TUNNEL_DEVICE)
            && r.flags.iter().any(|f| f == "onlink")
    })
}

/// True if `routes` has `dst` in the direct form: `via gw dev dev` with
/// protocol `proto`, not onlink.
pub fn has_direct_route(
    routes: &[crate::KernelRoute],
    dst: IpNet,
    gw: IpAddr,
    dev: &str,
    proto: &str,
) -> bool {
    routes.iter().any(|r| {
        r.dst == dst
            && r.protocol == proto
            && r.gateway == Some(gw)
            && r.dev.as_deref() == Some(dev)
            && !r.flags.iter().any(|f| f == "onlink")
    })
}

/// True if `routes` has `dst` routed via `gw` with protocol `proto`.
pub fn has_route_via(routes: &[crate::KernelRoute], dst: IpNet, gw: IpAddr, proto: &str) -> bool {
    routes.iter().any(|r| {
        r.dst == dst && r.protocol == proto && (r.gateway == Some(gw) || r.nexthops.contains(&gw))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passive_rule_compares_strings() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.10".parse().unwrap();
        let c: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(mesh_passive(a, b) && mesh_passive(a, c));
        // "10.0.0.10" < "10.0.0.2" as strings: .2 is passive towards .10.
        assert!(mesh_passive(b, c));
        assert!(!mesh_passive(c, b));
        assert_eq!(mesh_name(b), "Mesh_10_0_0_10");
    }

    fn peers() -> Vec<CalicoPeer> {
        vec![CalicoPeer {
            address: "10.0.1.1".parse().unwrap(),
            name: "Mesh_10_0_1_1".into(),
            rr_client: false,
        }]
    }

    #[test]
    fn bgpd_config_pool_adds_the_kernel_form_of_the_ipip_mode() {
        let sock = std::path::Path::new("/tmp/x.sock");
        let me = "10.0.0.1".parse().unwrap();
        let plain = bgpd_config_with(me, 64512, &peers(), None, sock);
        assert!(
            !plain.contains("calico-kernel") && !plain.contains("tunl0"),
            "{plain}"
        );
        for (mode, install) in [
            (IpipMode::Always, "onlink"),
            (IpipMode::CrossSubnet, "cross_subnet"),
            (IpipMode::Never, "normal"),
        ] {
            let pool = IpPool {
                cidr: "10.244.0.0/16".parse().unwrap(),
                ipip: mode,
            };
            let c = bgpd_config_pool(me, 64512, &peers(), None, pool, sock);
            let v: toml::Value = toml::from_str(&c).unwrap_or_else(|e| panic!("{e}\n{c}"));
            let export = &v["kernel"]["export"];
            assert_eq!(export["tunnel_device"].as_str(), Some("tunl0"), "{c}");
            assert_eq!(export["policy"].as_str(), Some("calico-kernel"), "{c}");
            let rule = &v["policies"]["calico-kernel"]["rules"][0];
            assert_eq!(rule["set"]["install"].as_str(), Some(install), "{c}");
            let m = &rule["match"];
            assert_eq!(m["prefix_in"][0]["prefix"].as_str(), Some("10.244.0.0/16"));
            assert_eq!(m["prefix_in"][0]["orlonger"].as_bool(), Some(true));
            assert_eq!(m["source"][0].as_str(), Some("bgp"));
            // Everything of the plain configuration is still there.
            for line in plain.lines() {
                assert!(c.lines().any(|l| l == line), "{line:?} missing from\n{c}");
            }
        }
    }

    #[test]
    fn session_timers_reach_both_configurations() {
        let sock = std::path::Path::new("/tmp/x.sock");
        let me: Ipv4Addr = "10.0.0.1".parse().unwrap();
        let mesh = ["10.0.0.2".parse().unwrap()];
        let timers = SessionTimers {
            hold_time: 9,
            keepalive: 3,
            restart_time: Some(6),
        };
        let c = bgpd_config_timers(me, 64512, &mesh, timers, sock);
        let v: toml::Value = toml::from_str(&c).unwrap_or_else(|e| panic!("{e}\n{c}"));
        assert_eq!(v["templates"]["mesh"]["hold_time"].as_integer(), Some(9));
        assert_eq!(v["templates"]["mesh"]["keepalive"].as_integer(), Some(3));
        let gr = &v["global"]["graceful_restart"];
        assert_eq!(gr["restart_time"].as_integer(), Some(6), "{c}");
        // Default timers: the usual configuration, no restart time line.
        let plain = bgpd_config(me, 64512, &mesh, sock);
        assert!(plain.contains("hold_time = 30\nkeepalive = 10"), "{plain}");
        assert!(!plain.contains("restart_time"), "{plain}");

        let block = "10.244.1.0/26".parse().unwrap();
        let pool = "10.244.0.0/16".parse().unwrap();
        let b = bird_config_timers(me, 64512, block, pool, &mesh, Some(timers));
        assert!(b.contains("  hold time 9; keepalive time 3;"), "{b}");
        assert!(b.contains("  graceful restart time 6;"), "{b}");
        assert_eq!(
            bird_config_timers(me, 64512, block, pool, &mesh, None),
            bird_config(me, 64512, block, pool, &mesh)
        );
        assert!(!bird_config(me, 64512, block, pool, &mesh).contains("hold time"));
    }

    #[test]
    fn route_form_predicates_tell_tunnel_from_direct() {
        let text = r#"[{"dst":"10.244.2.0/26","gateway":"10.0.0.2","dev":"tunl0","protocol":"bird","flags":["onlink"]},
            {"dst":"10.244.3.0/26","gateway":"10.0.0.3","dev":"eth0","protocol":"bird","flags":[]},
            {"dst":"10.244.4.0/26","gateway":"10.0.1.1","dev":"eth0","protocol":"bird","flags":["onlink"]},
            {"dst":"10.244.5.0/26","gateway":"10.0.1.2","dev":"tunl0","protocol":"boot","flags":["onlink"]}]"#;
        let r = crate::parse_ip_route_json(text, crate::Family::Ipv4).unwrap();
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(has_tunnel_route(
            &r,
            net("10.244.2.0/26"),
            ip("10.0.0.2"),
            "bird"
        ));
        assert!(!has_direct_route(
            &r,
            net("10.244.2.0/26"),
            ip("10.0.0.2"),
            "tunl0",
            "bird"
        ));
        assert!(has_direct_route(
            &r,
            net("10.244.3.0/26"),
            ip("10.0.0.3"),
            "eth0",
            "bird"
        ));
        assert!(!has_tunnel_route(
            &r,
            net("10.244.3.0/26"),
            ip("10.0.0.3"),
            "bird"
        ));
        // onlink on the wrong device is neither form.
        assert!(!has_tunnel_route(
            &r,
            net("10.244.4.0/26"),
            ip("10.0.1.1"),
            "bird"
        ));
        assert!(!has_direct_route(
            &r,
            net("10.244.4.0/26"),
            ip("10.0.1.1"),
            "eth0",
            "bird"
        ));
        // Right form, wrong protocol or gateway.
        assert!(!has_tunnel_route(
            &r,
            net("10.244.5.0/26"),
            ip("10.0.1.2"),
            "bird"
        ));
        assert!(!has_tunnel_route(
            &r,
            net("10.244.2.0/26"),
            ip("10.0.0.9"),
            "bird"
        ));
    }

    #[test]
    fn bird_config_has_calico_filters_and_mesh() {
        let c = bird_config(
            "10.0.0.2".parse().unwrap(),
            64512,
            "10.244.2.0/26".parse().unwrap(),
            "10.244.0.0/16".parse().unwrap(),
            &["10.0.0.1".parse().unwrap(), "10.0.0.3".parse().unwrap()],
        );
        assert!(
            c.contains("if ( net = 10.244.2.0/26 ) then { accept; }"),
            "{c}"
        );
        assert!(c.contains("protocol bgp Mesh_10_0_0_1 {"), "{c}");
        let m3 = c.split("protocol bgp Mesh_10_0_0_3").nth(1).unwrap();
        assert!(m3.contains("passive on;"), "{c}");
        let m1 = c.split("protocol bgp Mesh_10_0_0_1").nth(1).unwrap();
        assert!(!m1.split('}').next().unwrap().contains("passive"), "{c}");
    }
}
