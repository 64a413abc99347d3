//! Facts about nodes: each node's BGP addresses, AS, route reflector cluster id and listen
//! port as calico-node's syncer flattens them, and this node's router id, AS and listen
//! settings (confd's `populateNodeConfig`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use super::{DeriveError, Family, NodeEnv};
use crate::resource::spec::NodeSpec;
use crate::resource::Object;
use crate::store::ResourceStore;

/// The AS of a cluster whose default BGPConfiguration sets none.
pub const DEFAULT_AS: u32 = 64512;

/// One Calico node as the peering computation sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// BGP IPv4 address (the `ipv4Address` without its prefix length).
    pub ipv4: Option<IpAddr>,
    /// The subnet of `ipv4Address`.
    pub ipv4_net: Option<IpNet>,
    /// BGP IPv6 address.
    pub ipv6: Option<IpAddr>,
    /// The subnet of `ipv6Address`.
    pub ipv6_net: Option<IpNet>,
    /// The node's own AS, when set on the node.
    pub asn: Option<u32>,
    /// Route reflector cluster id ("" when the node is no reflector).
    pub rr_cluster_id: String,
    /// Labels (for selectors).
    pub labels: BTreeMap<String, String>,
    /// Its `node.<name>` BGPConfiguration's listenPort.
    pub listen_port: Option<u16>,
    /// WireGuard IPv4 address.
    pub wireguard_v4: Option<String>,
    /// WireGuard IPv6 address.
    pub wireguard_v6: Option<String>,
}

impl NodeInfo {
    /// The BGP address of a family.
    pub fn ip(&self, f: Family) -> Option<IpAddr> {
        match f {
            Family::V4 => self.ipv4,
            Family::V6 => self.ipv6,
        }
    }

    /// The node's subnet of a family.
    pub fn net(&self, f: Family) -> Option<IpNet> {
        match f {
            Family::V4 => self.ipv4_net,
            Family::V6 => self.ipv6_net,
        }
    }

    /// Its WireGuard address of a family.
    pub fn wireguard(&self, f: Family) -> Option<&str> {
        match f {
            Family::V4 => self.wireguard_v4.as_deref(),
            Family::V6 => self.wireguard_v6.as_deref(),
        }
        .filter(|s| !s.is_empty())
    }
}

/// `IP/len` or a bare IP (then a host prefix), as libcalico's `ParseCIDROrIP`.
pub fn parse_cidr_or_ip(s: &str) -> Option<(IpAddr, IpNet)> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Some((net.addr(), net.trunc()));
    }
    let ip: IpAddr = s.parse().ok()?;
    Some((ip, IpNet::from(ip)))
}

/// The nodes of the store, by name. A node whose addresses do not parse is left out, as
/// calico-node's syncer drops it; its name comes back in the second list.
pub fn nodes(store: &ResourceStore) -> (BTreeMap<String, NodeInfo>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut bad = Vec::new();
    for n in store.nodes() {
        match node_info(store, n) {
            Some(i) => {
                out.insert(i.name.clone(), i);
            }
            None => bad.push(n.metadata.name.clone()),
        }
    }
    (out, bad)
}

pub(crate) fn node_info(store: &ResourceStore, n: &Object<NodeSpec>) -> Option<NodeInfo> {
    let name = n.metadata.name.clone();
    let bgp = n.spec.bgp.clone().unwrap_or_default();
    let addr = |a: &Option<String>| -> Result<(Option<IpAddr>, Option<IpNet>), ()> {
        match a.as_deref().map(str::trim) {
            None | Some("") => Ok((None, None)),
            Some(s) => parse_cidr_or_ip(s)
                .map(|(ip, net)| (Some(ip), Some(net)))
                .ok_or(()),
        }
    };
    let (ipv4, ipv4_net) = addr(&bgp.ipv4_address).ok()?;
    let (ipv6, ipv6_net) = addr(&bgp.ipv6_address).ok()?;
    let wg = n.spec.wireguard.clone().unwrap_or_default();
    Some(NodeInfo {
        listen_port: store
            .bgp_configuration(&format!("node.{name}"))
            .and_then(|c| c.spec.listen_port)
            .filter(|p| *p != 0),
        name,
        ipv4: ipv4.filter(IpAddr::is_ipv4),
        ipv4_net,
        ipv6: ipv6.filter(IpAddr::is_ipv6),
        ipv6_net,
        asn: bgp.as_number.map(|a| a.0),
        rr_cluster_id: bgp.route_reflector_cluster_id.unwrap_or_default(),
        labels: n.metadata.labels.clone(),
        wireguard_v4: wg.interface_ipv4_address,
        wireguard_v6: wg.interface_ipv6_address,
    })
}

/// Calico's router id for `CALICO_ROUTER_ID=hash`: the first four bytes of SHA-256 of the
/// node name, the first byte brought below 224 (no multicast or reserved ids).
pub fn hash_router_id(node_name: &str) -> Ipv4Addr {
    let h = Sha256::digest(node_name.as_bytes());
    let b = |i: usize| h.get(i).copied().unwrap_or(0);
    let first = if b(0) > 223 { b(0) - 32 } else { b(0) };
    Ipv4Addr::new(first, b(1), b(2), b(3))
}

/// This node's router id: `CALICO_ROUTER_ID` (an address or `hash`), else its IPv4 address.
pub fn router_id(env: &NodeEnv, me: &NodeInfo) -> Result<Ipv4Addr, DeriveError> {
    match env.router_id.as_deref().map(str::trim) {
        Some("hash") => Ok(hash_router_id(&env.node_name)),
        Some(s) if !s.is_empty() => s.parse().map_err(|_| DeriveError::RouterId {
            node: env.node_name.clone(),
            message: format!("CALICO_ROUTER_ID {s:?} is not an IPv4 address or \"hash\""),
        }),
        _ => match me.ipv4 {
            Some(IpAddr::V4(a)) => Ok(a),
            _ => Err(DeriveError::RouterId {
                node: env.node_name.clone(),
                message: "the node has no IPv4 address; set CALICO_ROUTER_ID".into(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_or_ip() {
        let (ip, net) = parse_cidr_or_ip("10.192.0.2/16").unwrap();
        assert_eq!(ip.to_string(), "10.192.0.2");
        assert_eq!(net.to_string(), "10.192.0.0/16");
        let (ip, net) = parse_cidr_or_ip("fd00::2").unwrap();
        assert_eq!(ip.to_string(), "fd00::2");
        assert_eq!(net.to_string(), "fd00::2/128");
        assert!(parse_cidr_or_ip("10.1.2/8").is_none());
    }

    #[test]
    fn hashed_router_ids_are_stable_and_below_224() {
        let a = hash_router_id("kube-master");
        assert_eq!(a, hash_router_id("kube-master"));
        assert_ne!(a, hash_router_id("kube-node-1"));
        for n in 0..200 {
            assert!(hash_router_id(&format!("node-{n}")).octets()[0] < 224);
        }
        // `echo -n kube-master | sha256sum` starts with 194fd408.
        assert_eq!(a, Ipv4Addr::new(25, 79, 212, 8));
        // SHA-256("node-18") starts with f5c28be3: 0xf5 = 245 becomes 213.
        assert_eq!(hash_router_id("node-18"), Ipv4Addr::new(213, 194, 139, 227));
        // Calico's own known answers (its template functions' tests).
        assert_eq!(
            hash_router_id("Testrobin123"),
            Ipv4Addr::new(207, 94, 5, 27)
        );
        assert_eq!(
            hash_router_id("nodeTest"),
            Ipv4Addr::new(109, 174, 215, 226)
        );
    }
}
