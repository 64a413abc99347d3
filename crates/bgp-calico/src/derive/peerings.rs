//! Which BGP sessions a node has: the node-to-node mesh, and the peerings `BGPPeer`
//! resources give every node (global ones, per node by `node` / `nodeSelector`, to an
//! address or to the nodes a `peerSelector` picks, and the reverse peerings Calico adds so
//! two Calico nodes peer both ways) — calico-node's `updatePeersV1` and confd's
//! `processPeers`.
//!
//! Calico computes the peerings of every node, keyed by peer address and port, first ones
//! winning: global peerings before node ones (and a node peering is dropped when a global
//! one to the same address and port exists), explicit ones before reverse ones. Where
//! Calico iterates a Go map (in no defined order) this module goes by resource name.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::node::NodeInfo;
use super::{Family, Warnings};
use crate::resource::spec::{BgpPeerSpec, PasswordRef};
use crate::resource::Object;
use crate::selector::Selector;
use crate::store::ResourceStore;

/// How a session came about (its name prefix).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum PeeringKind {
    /// Node-to-node mesh (`Mesh_`).
    Mesh,
    /// A BGPPeer for every node (`Global_`).
    Global,
    /// A BGPPeer for this node (`Node_`).
    Node,
}

impl PeeringKind {
    /// The session name prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            PeeringKind::Mesh => "Mesh",
            PeeringKind::Global => "Global",
            PeeringKind::Node => "Node",
        }
    }
}

/// Next hop handling of a session.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum NextHop {
    /// BGP's defaults.
    Auto,
    /// Always our address (`next hop self`).
    SelfAddress,
    /// Never changed (`next hop keep`).
    Keep,
}

/// One session of this node, as BIRD's `protocol bgp` would be rendered.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Peering {
    /// `Mesh_10_0_0_2`, `Global_...`, `Node_..._port_N`.
    pub name: String,
    /// Mesh, global or node peering.
    pub kind: PeeringKind,
    /// Address family of the session.
    pub family: Family,
    /// Neighbour address.
    pub address: IpAddr,
    /// Neighbour port, when not 179 by default.
    pub port: Option<u16>,
    /// The neighbour's AS.
    pub remote_as: u32,
    /// Our AS on this session when `localASNumber` overrides the node's.
    pub local_as: Option<u32>,
    /// Our AS on this session (the node's, or `local_as`).
    pub effective_local_as: u32,
    /// Source address for the TCP connection.
    pub source_address: Option<IpAddr>,
    /// GTSM hop count (`ttl security on; multihop N`); `None`: `multihop` with TTL 64.
    pub ttl_security: Option<u8>,
    /// Never connect.
    pub passive: bool,
    /// TCP-MD5 password.
    pub password: Option<String>,
    /// Graceful restart time, seconds.
    pub restart_time: Option<u64>,
    /// Keepalive interval, seconds.
    pub keepalive: Option<u64>,
    /// Route reflector client of this cluster id.
    pub rr_client_cluster_id: Option<String>,
    /// Next hop mode.
    pub next_hop: NextHop,
    /// `allow local as N`.
    pub allow_local_as: Option<u32>,
    /// BGPFilter names, in order.
    pub filters: Vec<String>,
    /// Same AS on both ends (Calico's `is_same_as`, iBGP).
    pub same_as: bool,
    /// Gateway to reach the neighbour through (static route added).
    pub reachable_by: Option<IpAddr>,
}

/// A peering as calico-node stores it for one node (its `v1` form).
#[derive(Clone, Debug, PartialEq, Eq)]
struct V1Peer {
    ip: IpAddr,
    port: u16,
    asn: u32,
    local_asn: u32,
    rr_cluster_id: String,
    password: Option<String>,
    source_addr: String,
    restart_time: Option<u64>,
    keepalive: Option<u64>,
    keep_next_hop: bool,
    next_hop_mode: String,
    calico_node: bool,
    num_allow_local_as: i64,
    ttl_security: u8,
    filters: Vec<String>,
    reachable_by: Option<IpAddr>,
}

/// The inputs of the peering computation.
pub struct Cluster<'a> {
    /// The resources.
    pub store: &'a ResourceStore,
    /// Every node.
    pub nodes: &'a BTreeMap<String, NodeInfo>,
    /// The cluster AS (default BGPConfiguration, or 64512).
    pub global_as: u32,
    /// The default BGPConfiguration's listenPort.
    pub global_listen_port: Option<u16>,
    /// Namespace of password Secrets.
    pub secret_namespace: &'a str,
}

impl Cluster<'_> {
    /// The password a reference names, when the Secret and key exist; otherwise none, with
    /// a warning naming `what` (as calico-node logs it).
    pub fn password(
        &self,
        r: Option<&PasswordRef>,
        what: &str,
        w: &mut Warnings,
    ) -> Option<String> {
        let sk = r?.secret_key_ref.as_ref()?;
        let found = self
            .store
            .secret(self.secret_namespace, &sk.name)
            .and_then(|s| s.spec.get(&sk.key));
        if found.is_none() {
            w.push(format!(
                "{what}: no key {:?} in Secret {}/{}; the session has no password",
                sk.key, self.secret_namespace, sk.name
            ));
        }
        found
    }

    fn nodes_matching(&self, sel: &str, w: &mut Warnings) -> Vec<String> {
        match Selector::parse(sel) {
            Ok(s) => self
                .nodes
                .values()
                .filter(|n| s.matches(&n.labels))
                .map(|n| n.name.clone())
                .collect(),
            Err(e) => {
                w.push(format!("{e}; it matches no node"));
                Vec::new()
            }
        }
    }

    fn node_port(&self, node: &str) -> u16 {
        self.nodes
            .get(node)
            .and_then(|n| n.listen_port)
            .or(self.global_listen_port)
            .unwrap_or(0)
    }

    /// The nodes whose BGP address is `ip` (as written) with AS `asn` (0: the cluster's)
    /// and, when `port` is given, that listen there (calico-node's `nodesWithIPPortAndAS`,
    /// including its treatment of a node port equal to `port` while a different global
    /// port is set).
    fn nodes_with_ip_port_as(&self, ip: &str, asn: u32, port: u16) -> Vec<String> {
        let want_as = if asn == 0 { self.global_as } else { asn };
        self.nodes
            .values()
            .filter(|n| {
                let s = |a: Option<IpAddr>| a.map(|a| a.to_string()).unwrap_or_default();
                if s(n.ipv4) != ip && s(n.ipv6) != ip {
                    return false;
                }
                if n.asn.unwrap_or(self.global_as) != want_as {
                    return false;
                }
                if port != 0 {
                    let gp = self.global_listen_port.unwrap_or(0);
                    match n.listen_port {
                        Some(np) if np != port => return false,
                        _ if gp != 0 && gp != port => return false,
                        _ => {}
                    }
                }
                true
            })
            .map(|n| n.name.clone())
            .collect()
    }

    /// calico-node's `nodeAsBGPPeers`: the peerings towards node `name` for `BGPPeer` `p`.
    fn node_as_peers(&self, name: &str, v4: bool, v6: bool, p: &BgpPeerSpec) -> Vec<V1Peer> {
        let Some(n) = self.nodes.get(name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (want, ip) in [(v4, n.ipv4), (v6, n.ipv6)] {
            let (true, Some(ip)) = (want, ip) else {
                continue;
            };
            let (keep, mode) = next_hop_mode(p);
            out.push(V1Peer {
                ip,
                port: self.node_port(name),
                asn: n.asn.unwrap_or(self.global_as),
                local_asn: 0,
                rr_cluster_id: n.rr_cluster_id.clone(),
                password: None,
                source_addr: String::new(),
                restart_time: None,
                keepalive: None,
                keep_next_hop: keep,
                next_hop_mode: mode,
                calico_node: false,
                num_allow_local_as: 0,
                ttl_security: p.ttl_security.unwrap_or(0),
                filters: p.filters.clone(),
                reachable_by: p.reachable_by.as_deref().and_then(|r| r.parse().ok()),
            });
        }
        out
    }

    /// calico-node's `setPeerConfigFieldsFromV3Resource`.
    fn set_common(&self, peers: &mut [V1Peer], p: &Object<BgpPeerSpec>, w: &mut Warnings) {
        let password = self.password(
            p.spec.password.as_ref(),
            &format!("BGPPeer {}", p.metadata.name),
            w,
        );
        let p = &p.spec;
        for v in peers {
            v.password = password.clone();
            v.source_addr = p
                .source_address
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "UseNodeIP".into());
            v.restart_time = p.max_restart_time.map(|d| d.rounded_secs());
            v.keepalive = p.keepalive_time.map(|d| d.rounded_secs());
        }
    }
}

fn next_hop_mode(p: &BgpPeerSpec) -> (bool, String) {
    match &p.next_hop_mode {
        Some(m) => (false, m.clone()),
        None => (p.keep_original_next_hop, String::new()),
    }
}

/// `IP:port`, `[IPv6]:port` or a bare address (Go's `net.SplitHostPort`, port 0 when absent).
pub(crate) fn split_ip_port(s: &str) -> (String, u16) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((host, port)) = rest.split_once("]:") {
            if let Ok(p) = port.parse() {
                return (host.to_owned(), p);
            }
        }
        return (s.to_owned(), 0);
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host.to_owned(), p),
            Err(_) => (s.to_owned(), 0),
        },
        _ => (s.to_owned(), 0),
    }
}

/// Global and per-node peerings of the whole cluster.
#[derive(Default)]
struct V1Peerings {
    global: BTreeMap<(IpAddr, u16), V1Peer>,
    node: BTreeMap<(String, IpAddr, u16), V1Peer>,
}

impl V1Peerings {
    fn emit_global(&mut self, v: V1Peer) {
        self.global.entry((v.ip, v.port)).or_insert(v);
    }

    fn emit_node(&mut self, node: &str, v: V1Peer) {
        if self.global.contains_key(&(v.ip, v.port)) {
            return;
        }
        self.node
            .entry((node.to_owned(), v.ip, v.port))
            .or_insert(v);
    }
}

fn explicit_peers(
    c: &Cluster<'_>,
    p: &Object<BgpPeerSpec>,
    w: &mut Warnings,
) -> Option<Vec<V1Peer>> {
    let s = &p.spec;
    let name = &p.metadata.name;
    if s.local_workload_selector
        .as_deref()
        .is_some_and(|x| !x.is_empty())
    {
        w.push(format!(
            "BGPPeer {name}: localWorkloadSelector peerings (workload endpoint status files) are not supported; it is left out"
        ));
        return None;
    }
    if let Some(sel) = s.peer_selector.as_deref().filter(|x| !x.is_empty()) {
        let mut peers = Vec::new();
        for n in c.nodes_matching(sel, w) {
            peers.extend(c.node_as_peers(&n, true, true, s));
        }
        c.set_common(&mut peers, p, w);
        return Some(peers);
    }
    let (host, mut port) = split_ip_port(s.peer_ip.as_deref().unwrap_or(""));
    let Ok(ip) = host.parse::<IpAddr>() else {
        w.push(format!(
            "BGPPeer {name}: peerIP {:?} is not an address; it is left out",
            s.peer_ip.as_deref().unwrap_or("")
        ));
        return None;
    };
    let asn = s.as_number.map_or(0, |a| a.0);
    if port == 0 {
        if let Some(first) = c.nodes_with_ip_port_as(&host, asn, 0).first() {
            port = c.node_port(first);
        }
    }
    let calico_node = c
        .nodes
        .values()
        .any(|n| n.ipv4 == Some(ip) || n.ipv6 == Some(ip));
    let reachable_by = match s.reachable_by.as_deref().filter(|x| !x.is_empty()) {
        None => None,
        Some(r) => match r.parse::<IpAddr>() {
            Ok(a) if a.is_ipv4() == ip.is_ipv4() => Some(a),
            Ok(_) => {
                w.push(format!(
                    "BGPPeer {name}: reachableBy {r} is not of the peer address's family; it is left out"
                ));
                return None;
            }
            Err(_) => {
                w.push(format!(
                    "BGPPeer {name}: reachableBy {r:?} is not an address; it is left out"
                ));
                return None;
            }
        },
    };
    let (keep, mode) = next_hop_mode(s);
    let mut peers = vec![V1Peer {
        ip,
        port,
        asn,
        local_asn: s.local_as_number.map_or(0, |a| a.0),
        rr_cluster_id: String::new(),
        password: None,
        source_addr: String::new(),
        restart_time: None,
        keepalive: None,
        keep_next_hop: keep,
        next_hop_mode: mode,
        calico_node,
        num_allow_local_as: s.num_allowed_local_as_numbers.unwrap_or(0),
        ttl_security: s.ttl_security.unwrap_or(0),
        filters: s.filters.clone(),
        reachable_by,
    }];
    c.set_common(&mut peers, p, w);
    Some(peers)
}

/// The reverse peerings of `p`: the nodes that `p` points at peer back with the nodes it
/// applies to (unless `reversePeering: Manual`).
fn reverse_peers(c: &Cluster<'_>, p: &Object<BgpPeerSpec>, out: &mut V1Peerings, w: &mut Warnings) {
    let s = &p.spec;
    if s.reverse_peering.as_deref() == Some("Manual")
        || s.local_workload_selector
            .as_deref()
            .is_some_and(|x| !x.is_empty())
    {
        return;
    }
    let (locals, v4, v6) = if let Some(sel) = s.peer_selector.as_deref().filter(|x| !x.is_empty()) {
        (c.nodes_matching(sel, w), true, true)
    } else {
        let (ip, port) = split_ip_port(s.peer_ip.as_deref().unwrap_or(""));
        let v6 = ip.contains(':');
        (
            c.nodes_with_ip_port_as(&ip, s.as_number.map_or(0, |a| a.0), port),
            !v6,
            v6,
        )
    };
    if locals.is_empty() {
        return;
    }
    let remotes = if let Some(sel) = s.node_selector.as_deref().filter(|x| !x.is_empty()) {
        c.nodes_matching(sel, w)
    } else if let Some(n) = s.node.as_deref().filter(|x| !x.is_empty()) {
        vec![n.to_owned()]
    } else {
        c.nodes.keys().cloned().collect()
    };
    let mut peers = Vec::new();
    for r in &remotes {
        peers.extend(c.node_as_peers(r, v4, v6, s));
    }
    c.set_common(&mut peers, p, w);
    for v in peers {
        for l in &locals {
            out.emit_node(l, v.clone());
        }
    }
}

fn all_v1_peerings(c: &Cluster<'_>, w: &mut Warnings) -> V1Peerings {
    let mut out = V1Peerings::default();
    for global_pass in [true, false] {
        for p in c.store.bgp_peers() {
            let s = &p.spec;
            let node = s.node.as_deref().filter(|x| !x.is_empty());
            let node_sel = s.node_selector.as_deref().filter(|x| !x.is_empty());
            if global_pass != (node.is_none() && node_sel.is_none()) {
                continue;
            }
            let locals = match (node_sel, node) {
                (Some(sel), _) => c.nodes_matching(sel, w),
                (None, Some(n)) => vec![n.to_owned()],
                (None, None) => Vec::new(),
            };
            let Some(peers) = explicit_peers(c, p, w) else {
                continue;
            };
            for v in peers {
                if global_pass {
                    out.emit_global(v);
                } else {
                    for l in &locals {
                        out.emit_node(l, v.clone());
                    }
                }
            }
        }
    }
    for p in c.store.bgp_peers() {
        reverse_peers(c, p, &mut out, w);
    }
    out
}

/// What confd needs of this node for its sessions.
pub struct Me<'a> {
    /// This node.
    pub info: &'a NodeInfo,
    /// Its AS.
    pub asn: u32,
}

/// Every session of node `me`, both families, sorted by name within each family.
pub fn peerings(c: &Cluster<'_>, me: &Me<'_>, w: &mut Warnings) -> Vec<Peering> {
    let v1 = all_v1_peerings(c, w);
    let cluster_id = me.info.rr_cluster_id.as_str();
    let mut out = Vec::new();
    for family in [Family::V4, Family::V6] {
        let Some(my_ip) = me.info.ip(family) else {
            continue;
        };
        let mut fam: Vec<Peering> = Vec::new();
        if cluster_id.is_empty() && mesh_enabled(c.store) {
            fam.extend(mesh(c, me, family, my_ip, w));
        }
        let globals = v1.global.values().filter(|v| ip_family(v.ip) == family);
        let nodes = v1
            .node
            .iter()
            .filter(|((n, ip, _), _)| *n == me.info.name && ip_family(*ip) == family)
            .map(|(_, v)| v);
        for (kind, v) in globals
            .map(|v| (PeeringKind::Global, v))
            .chain(nodes.map(|v| (PeeringKind::Node, v)))
        {
            if let Some(p) = build(v, kind, me, family, my_ip) {
                fam.push(p);
            }
        }
        fam.sort_by(|a, b| a.name.cmp(&b.name));
        fam.dedup_by(|b, a| a.name == b.name);
        out.extend(fam);
    }
    out
}

fn ip_family(ip: IpAddr) -> Family {
    if ip.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    }
}

/// Whether the default BGPConfiguration leaves the mesh on.
pub fn mesh_enabled(store: &ResourceStore) -> bool {
    store
        .bgp_configuration("default")
        .and_then(|c| c.spec.node_to_node_mesh_enabled)
        .unwrap_or(true)
}

/// Session name: prefix, address with `.`/`:` as `_`, `_port_N` for explicit ports.
pub fn session_name(prefix: &str, ip: IpAddr, port: u16) -> String {
    let a = ip.to_string().replace(['.', ':'], "_");
    if port > 0 {
        format!("{prefix}_{a}_port_{port}")
    } else {
        format!("{prefix}_{a}")
    }
}

/// What every mesh session of a node shares (from the default BGPConfiguration).
pub struct MeshSettings {
    /// `nodeMeshPassword`.
    pub password: Option<String>,
    /// `nodeMeshMaxRestartTime`, seconds.
    pub restart_time: Option<u64>,
}

impl MeshSettings {
    /// The settings, warning once about a password that cannot be found.
    pub fn of(c: &Cluster<'_>, w: &mut Warnings) -> MeshSettings {
        let default_cfg = c.store.bgp_configuration("default");
        MeshSettings {
            password: c.password(
                default_cfg.and_then(|d| d.spec.node_mesh_password.as_ref()),
                "BGPConfiguration default, nodeMeshPassword",
                w,
            ),
            restart_time: default_cfg
                .and_then(|d| d.spec.node_mesh_max_restart_time)
                .map(|d| d.rounded_secs()),
        }
    }
}

fn mesh(
    c: &Cluster<'_>,
    me: &Me<'_>,
    family: Family,
    my_ip: IpAddr,
    w: &mut Warnings,
) -> Vec<Peering> {
    let settings = MeshSettings::of(c, w);
    c.nodes
        .values()
        .filter_map(|n| mesh_peering(c.global_listen_port, me, family, my_ip, n, &settings))
        .collect()
}

/// The mesh session of `family` towards node `n`, if it has one: not to ourselves, not
/// to a route reflector (reflectors are peered through BGPPeers).
pub fn mesh_peering(
    global_listen_port: Option<u16>,
    me: &Me<'_>,
    family: Family,
    my_ip: IpAddr,
    n: &NodeInfo,
    settings: &MeshSettings,
) -> Option<Peering> {
    let ip = n.ip(family)?;
    if ip == my_ip || !n.rr_cluster_id.is_empty() {
        return None;
    }
    let remote_as = n.asn.unwrap_or(me.asn);
    let port = n.listen_port.or(global_listen_port).unwrap_or(0);
    Some(Peering {
        name: session_name("Mesh", ip, 0),
        kind: PeeringKind::Mesh,
        family,
        address: ip,
        port: (port > 0).then_some(port),
        remote_as,
        local_as: None,
        effective_local_as: me.asn,
        source_address: Some(my_ip),
        ttl_security: None,
        passive: ip.to_string() > my_ip.to_string(),
        password: settings.password.clone(),
        restart_time: settings.restart_time,
        keepalive: None,
        rr_client_cluster_id: None,
        next_hop: NextHop::Auto,
        allow_local_as: None,
        filters: Vec::new(),
        same_as: remote_as == me.asn,
        reachable_by: None,
    })
}

/// confd's `buildPeerFromData`.
fn build(
    v: &V1Peer,
    kind: PeeringKind,
    me: &Me<'_>,
    family: Family,
    my_ip: IpAddr,
) -> Option<Peering> {
    if v.ip == my_ip {
        return None;
    }
    let effective = if v.local_asn != 0 {
        v.local_asn
    } else {
        me.asn
    };
    let same_as = v.asn == effective;
    let mut next_hop = match v.next_hop_mode.as_str() {
        "Self" => NextHop::SelfAddress,
        "Keep" => NextHop::Keep,
        _ => NextHop::Auto,
    };
    if v.keep_next_hop && !same_as {
        next_hop = NextHop::Keep;
    }
    let cluster_id = &me.info.rr_cluster_id;
    let rr = (same_as && !cluster_id.is_empty() && v.rr_cluster_id != *cluster_id)
        .then(|| cluster_id.clone());
    let passive =
        kind == PeeringKind::Global && v.calico_node && v.ip.to_string() > my_ip.to_string();
    Some(Peering {
        name: session_name(kind.prefix(), v.ip, v.port),
        kind,
        family,
        address: v.ip,
        port: (v.port > 0).then_some(v.port),
        remote_as: v.asn,
        local_as: (v.local_asn != 0).then_some(v.local_asn),
        effective_local_as: effective,
        source_address: (v.source_addr == "UseNodeIP").then_some(my_ip),
        ttl_security: (v.ttl_security > 0).then_some(v.ttl_security),
        passive,
        password: v.password.clone().filter(|p| !p.is_empty()),
        restart_time: v.restart_time,
        keepalive: v.keepalive,
        rr_client_cluster_id: rr,
        next_hop,
        allow_local_as: u32::try_from(v.num_allow_local_as).ok().filter(|n| *n > 0),
        filters: v.filters.clone(),
        same_as,
        reachable_by: v.reachable_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_port_forms() {
        assert_eq!(split_ip_port("10.0.0.1"), ("10.0.0.1".into(), 0));
        assert_eq!(split_ip_port("10.0.0.1:1790"), ("10.0.0.1".into(), 1790));
        assert_eq!(split_ip_port("[fd00::1]:1790"), ("fd00::1".into(), 1790));
        assert_eq!(split_ip_port("fd00::1"), ("fd00::1".into(), 0));
        assert_eq!(split_ip_port("10.0.0.1:x"), ("10.0.0.1:x".into(), 0));
    }

    #[test]
    fn names() {
        assert_eq!(
            session_name("Mesh", "10.0.0.2".parse().unwrap(), 0),
            "Mesh_10_0_0_2"
        );
        assert_eq!(
            session_name("Node", "fd00::2".parse().unwrap(), 500),
            "Node_fd00__2_port_500"
        );
    }
}
