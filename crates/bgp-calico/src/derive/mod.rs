//! One node's BGP configuration from Calico's resources: what calico-node's confd renders
//! into BIRD's `bird.cfg`/`bird6.cfg` and their includes, as a [`NodeBgp`] (sessions,
//! originated routes, filter inputs), then as bgpd's configuration ([`config`]).
//!
//! - [`node`]: node facts, router id, AS;
//! - [`peerings`]: the sessions (mesh, explicit and selector peers, reverse peerings,
//!   route reflection);
//! - [`routes`]: blocks, service routes, IP pool rules, communities, WireGuard;
//! - [`filters`]: `BGPFilter` rules as bgpd policy rules;
//! - [`config`]: the bgpd configuration (peers, policies, originated routes, kernel);
//! - [`impact`]: which part of the result a datastore change can touch (for
//!   [`crate::follow`]).
//!
//! BIRD runs one daemon per address family; bgpd carries both, so the IPv4 and IPv6 halves
//! are derived separately and merged (session names cannot collide: IPv4 names have no
//! hex digits or `::`).

pub mod config;
pub mod filters;
pub mod impact;
pub mod node;
pub mod peerings;
pub mod routes;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::store::ResourceStore;
use node::{nodes, router_id, NodeInfo, DEFAULT_AS};
use peerings::{peerings, Cluster, Me, Peering};
use routes::FamilyRoutes;

/// An address family (BIRD's `bird` and `bird6`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// `v4` / `v6`, used in policy names.
    pub fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }

    /// The family of an address.
    pub fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    /// The family of a CIDR as Calico decides it (a colon means IPv6).
    pub fn of_cidr(cidr: &str) -> Family {
        if cidr.contains(':') {
            Family::V6
        } else {
            Family::V4
        }
    }
}

/// calico-node's environment that shapes the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeEnv {
    /// `NODENAME`: the node to derive for.
    pub node_name: String,
    /// `CALICO_ROUTER_ID`: an IPv4 address or `hash`.
    pub router_id: Option<String>,
    /// `NAMESPACE`: where password Secrets live (default `kube-system`).
    pub secret_namespace: String,
    /// `CALICO_ADVERTISE_CLUSTER_IPS`: a service cluster IP range overriding
    /// `serviceClusterIPs`.
    pub advertise_cluster_ips: Option<String>,
}

impl NodeEnv {
    /// The environment for node `name` with calico-node's defaults.
    pub fn new(node_name: impl Into<String>) -> NodeEnv {
        NodeEnv {
            node_name: node_name.into(),
            router_id: None,
            secret_namespace: "kube-system".into(),
            advertise_cluster_ips: None,
        }
    }

    /// Reads calico-node's variables through `get` (e.g. `std::env::var`), `node` taking
    /// precedence over `NODENAME`.
    pub fn from_vars(
        node: Option<String>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<NodeEnv, DeriveError> {
        let nonempty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let name = node
            .or_else(|| nonempty("NODENAME"))
            .ok_or(DeriveError::NoNodeName)?;
        Ok(NodeEnv {
            node_name: name,
            router_id: nonempty("CALICO_ROUTER_ID"),
            secret_namespace: nonempty("NAMESPACE").unwrap_or_else(|| "kube-system".into()),
            advertise_cluster_ips: nonempty("CALICO_ADVERTISE_CLUSTER_IPS"),
        })
    }
}

/// Why no configuration could be derived (calico-node's confd would not render either).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeriveError {
    /// Neither `--node` nor `NODENAME`.
    #[error("no node name: give --node or set NODENAME")]
    NoNodeName,
    /// This node has no `Node` resource (or one whose addresses do not parse).
    #[error("node {0:?} has no usable Node resource")]
    NoNode(String),
    /// No router id can be chosen.
    #[error("node {node:?}: {message}")]
    RouterId {
        /// The node.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// A resource holds a value confd cannot render.
    #[error("{what}: {message}")]
    Invalid {
        /// The resource (`BGPFilter x`, `BGPConfiguration default`, ...).
        what: String,
        /// What is wrong.
        message: String,
    },
}

impl DeriveError {
    /// An invalid value of a resource.
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> DeriveError {
        DeriveError::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }
}

/// Things calico-node would log and skip (a BGPPeer with a bad address, an unsupported
/// field); the rest of the configuration is derived without them.
pub type Warnings = Vec<String>;

/// Everything derived for one node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeBgp {
    /// The node.
    pub node_name: String,
    /// Its AS.
    pub asn: u32,
    /// BGP router id.
    pub router_id: Ipv4Addr,
    /// Its IPv4 BGP address (IPv4 sessions need one).
    pub ipv4: Option<IpAddr>,
    /// Its IPv6 BGP address.
    pub ipv6: Option<IpAddr>,
    /// Addresses to listen on (`bindMode: NodeIP`); empty: every address.
    pub listen: Vec<IpAddr>,
    /// BGP port (node's BGPConfiguration, else the default one).
    pub listen_port: Option<u16>,
    /// Route reflector cluster id, when the node is a reflector.
    pub rr_cluster_id: Option<String>,
    /// Interfaces whose addresses BIRD would not import.
    pub ignored_interfaces: Vec<String>,
    /// Every session, IPv4 first, by name.
    pub peerings: Vec<Peering>,
    /// Routes and filter inputs, IPv4 then IPv6.
    pub families: Vec<FamilyRoutes>,
    /// BGPFilters by name (those the sessions use).
    #[serde(skip)]
    pub filters: BTreeMap<String, crate::resource::BgpFilterSpec>,
    /// What was left out, and why.
    pub warnings: Warnings,
}

impl NodeBgp {
    /// The routes and filter inputs of a family.
    pub fn family(&self, f: Family) -> Option<&FamilyRoutes> {
        self.families.iter().find(|r| r.family == f)
    }
}

/// Derives node `env.node_name`'s configuration from `store`.
pub fn derive(store: &ResourceStore, env: &NodeEnv) -> Result<NodeBgp, DeriveError> {
    let mut warnings = Warnings::new();
    let (all, bad) = nodes(store);
    for b in &bad {
        warnings.push(format!(
            "Node {b}: its BGP addresses do not parse; it takes part in no peering"
        ));
    }
    let me: &NodeInfo = all
        .get(&env.node_name)
        .ok_or_else(|| DeriveError::NoNode(env.node_name.clone()))?;
    let default_cfg = store.bgp_configuration("default");
    let global_as = default_cfg
        .and_then(|c| c.spec.as_number)
        .map_or(DEFAULT_AS, |a| a.0);
    let asn = me.asn.unwrap_or(global_as);
    let router_id = router_id(env, me)?;
    let node_cfg = store.bgp_configuration(&format!("node.{}", env.node_name));
    let global_listen_port = default_cfg
        .and_then(|c| c.spec.listen_port)
        .filter(|p| *p != 0);
    let listen_port = me.listen_port.or(global_listen_port);
    let listen = match default_cfg.and_then(|c| c.spec.bind_mode.as_deref()) {
        Some("NodeIP") => [me.ipv4, me.ipv6].into_iter().flatten().collect(),
        _ => Vec::new(),
    };
    let cluster = Cluster {
        store,
        nodes: &all,
        global_as,
        global_listen_port,
        secret_namespace: &env.secret_namespace,
    };
    let peerings = peerings(&cluster, &Me { info: me, asn }, &mut warnings);
    let mut families = Vec::new();
    for f in [Family::V4, Family::V6] {
        families.push(routes::family_routes(
            &routes::Inputs {
                store,
                env,
                me,
                nodes: &all,
                default_cfg,
                node_cfg,
                peerings: &peerings,
            },
            f,
            &mut warnings,
        )?);
    }
    // A resource used twice (both families, a peering and its reverse) warns once.
    let mut seen = std::collections::HashSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    let mut filters = BTreeMap::new();
    for p in &peerings {
        for name in &p.filters {
            if let Some(f) = store.bgp_filter(name) {
                filters.insert(name.clone(), f.spec.clone());
            }
        }
    }
    Ok(NodeBgp {
        node_name: env.node_name.clone(),
        asn,
        router_id,
        ipv4: me.ipv4,
        ipv6: me.ipv6,
        listen,
        listen_port,
        rr_cluster_id: Some(me.rr_cluster_id.clone()).filter(|c| !c.is_empty()),
        ignored_interfaces: default_cfg
            .map(|c| c.spec.ignored_interfaces.clone())
            .unwrap_or_default(),
        peerings,
        families,
        filters,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_password_secret_warns_once() {
        let mut l = crate::source::Listing::default();
        crate::source::file::parse_into(
            "kind: Node\napiVersion: projectcalico.org/v3\nmetadata: {name: n1}\n\
             spec: {bgp: {ipv4Address: 10.0.0.1/24, ipv6Address: fd00::1/64}}\n---\n\
             kind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata: {name: ext}\n\
             spec: {peerIP: 10.0.0.9, asNumber: 65001,\n\
             password: {secretKeyRef: {name: bgp-secrets, key: ext}}}\n",
            "t.yaml",
            &mut l,
        )
        .unwrap();
        let store = ResourceStore::from_resources(l.resources);
        let node = derive(&store, &NodeEnv::new("n1")).unwrap();
        let p = node.peerings.iter().find(|p| p.name == "Global_10_0_0_9");
        assert_eq!(p.map(|p| p.password.clone()), Some(None));
        let w: Vec<&String> = node
            .warnings
            .iter()
            .filter(|w| w.contains("Secret kube-system/bgp-secrets"))
            .collect();
        assert_eq!(w.len(), 1, "{:?}", node.warnings);
        assert!(w[0].starts_with("BGPPeer ext: no key \"ext\""), "{w:?}");
    }

    #[test]
    fn environment() {
        let vars = |k: &str| match k {
            "NODENAME" => Some("n1".to_string()),
            "CALICO_ROUTER_ID" => Some("hash".to_string()),
            "NAMESPACE" => Some(" ".to_string()),
            _ => None,
        };
        let e = NodeEnv::from_vars(None, vars).unwrap();
        assert_eq!(e.node_name, "n1");
        assert_eq!(e.router_id.as_deref(), Some("hash"));
        assert_eq!(e.secret_namespace, "kube-system");
        let e = NodeEnv::from_vars(Some("n2".into()), vars).unwrap();
        assert_eq!(e.node_name, "n2");
        assert_eq!(
            NodeEnv::from_vars(None, |_| None),
            Err(DeriveError::NoNodeName)
        );
    }
}
