//! What a simulated cluster consists of: nodes (router id, AS, originated blocks) and the
//! BGP sessions between them, with builders for the two Calico layouts: an iBGP full mesh,
//! and route reflectors sharing one CLUSTER_ID serving every other node as a client.
//!
//! A [`Topology`] is plain data. [`Sim::new`](crate::Sim::new) turns it into running
//! speakers and can rebuild any node from it after a crash, which is why a node's whole
//! configuration lives here and nowhere else.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::Ipv4Net;

/// The AS every node of the built-in topologies is in (Calico's default, 64512).
pub const CLUSTER_AS: u32 = 64512;

/// Index of a node in its [`Topology`] (and in the [`Sim`](crate::Sim) built from it).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node{}", self.0)
    }
}

/// One BGP speaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    /// The node's address: its BGP Identifier, the address its peers connect to and the
    /// next hop it advertises for its own routes (next hop self, RFC 4271 5.1.3).
    pub address: Ipv4Addr,
    pub local_as: u32,
    /// CLUSTER_ID when the node reflects routes (RFC 4456 7); `None` = its router id.
    pub cluster_id: Option<Ipv4Addr>,
    /// Blocks the node originates (Calico: its IPAM blocks, usually /26).
    pub originate: Vec<Ipv4Net>,
}

/// How the two ends of a session relate.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SessionKind {
    /// Plain iBGP between equals (full-mesh members, or two route reflectors).
    Internal,
    /// `a` is a route reflector and `b` one of its clients (RFC 4456).
    ReflectorClient,
}

/// A BGP session between two nodes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SessionSpec {
    pub a: NodeId,
    pub b: NodeId,
    pub kind: SessionKind,
}

impl SessionSpec {
    /// The end that opens the TCP connection. The other end is passive (RFC 4271 8.1.1
    /// PassiveTcpEstablishment), so connections do not collide unless
    /// [`SimConfig::both_active`](crate::SimConfig::both_active) says otherwise: clients
    /// connect to their reflectors, and otherwise the lower node index connects.
    pub fn active_end(&self) -> NodeId {
        match self.kind {
            SessionKind::ReflectorClient => self.b,
            SessionKind::Internal => self.a.min(self.b),
        }
    }
}

/// Nodes and sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    pub nodes: Vec<NodeSpec>,
    pub sessions: Vec<SessionSpec>,
}

/// Why a [`Topology`] cannot be simulated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("session {0}: node {1} does not exist")]
    UnknownNode(usize, NodeId),
    #[error("session {0}: a node cannot peer with itself")]
    SelfSession(usize),
    #[error("session {0}: {1} and {2} already have a session")]
    DuplicateSession(usize, NodeId, NodeId),
    #[error("nodes {0} and {1} share the address {2}")]
    DuplicateAddress(NodeId, NodeId, Ipv4Addr),
    #[error("session {0}: route reflection needs both ends in one AS")]
    ReflectionAcrossAs(usize),
}

impl Topology {
    /// The address of the `i`th node of the built-in topologies: 10.0.0.1, 10.0.0.2, ...
    pub fn node_address(i: usize) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)).wrapping_add(i as u32 + 1))
    }

    /// The IPv6 address of the node with IPv4 address `a` in runs with
    /// [`SimConfig::extended_next_hop`](crate::SimConfig::extended_next_hop):
    /// 2001:db8:ffff::a.b.c.d (documentation prefix, RFC 3849).
    pub fn ipv6_address(a: Ipv4Addr) -> Ipv6Addr {
        let [p, q, r, s] = a.octets();
        Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xffff,
            0,
            0,
            0,
            u16::from_be_bytes([p, q]),
            u16::from_be_bytes([r, s]),
        )
    }

    /// The /26 block the `i`th node originates: 10.128.0.0/26, 10.128.0.64/26, ...
    /// (room for 131072 nodes).
    pub fn block(i: usize) -> Ipv4Net {
        let base = u32::from(Ipv4Addr::new(10, 128, 0, 0));
        let addr = Ipv4Addr::from(base.wrapping_add((i as u32) << 6));
        Ipv4Net::new(addr, 26).unwrap_or_default()
    }

    /// A node of the built-in topologies: address [`Topology::node_address`], AS
    /// [`CLUSTER_AS`], originating [`Topology::block`].
    pub fn standard_node(i: usize) -> NodeSpec {
        NodeSpec {
            name: format!("node{i}"),
            address: Self::node_address(i),
            local_as: CLUSTER_AS,
            cluster_id: None,
            originate: vec![Self::block(i)],
        }
    }

    /// `n` nodes, each with an iBGP session to every other (Calico's default node mesh).
    pub fn full_mesh(n: usize) -> Topology {
        let nodes = (0..n).map(Self::standard_node).collect();
        let mut sessions = Vec::with_capacity(n * n.saturating_sub(1) / 2);
        for a in 0..n {
            for b in a + 1..n {
                sessions.push(SessionSpec {
                    a: NodeId(a),
                    b: NodeId(b),
                    kind: SessionKind::Internal,
                });
            }
        }
        Topology { nodes, sessions }
    }

    /// `reflectors` route reflectors sharing `cluster_id` (nodes `0..reflectors`, meshed
    /// with each other as non-clients) and `clients` clients (the following nodes), each
    /// client peering with every reflector. Every node originates its block.
    pub fn route_reflection(reflectors: usize, clients: usize, cluster_id: Ipv4Addr) -> Topology {
        let mut nodes: Vec<NodeSpec> = (0..reflectors + clients).map(Self::standard_node).collect();
        for rr in nodes.iter_mut().take(reflectors) {
            rr.cluster_id = Some(cluster_id);
            rr.name = format!("rr{}", rr.name.trim_start_matches("node"));
        }
        let mut sessions = Vec::new();
        for a in 0..reflectors {
            for b in a + 1..reflectors {
                sessions.push(SessionSpec {
                    a: NodeId(a),
                    b: NodeId(b),
                    kind: SessionKind::Internal,
                });
            }
        }
        for c in reflectors..reflectors + clients {
            for rr in 0..reflectors {
                sessions.push(SessionSpec {
                    a: NodeId(rr),
                    b: NodeId(c),
                    kind: SessionKind::ReflectorClient,
                });
            }
        }
        Topology { nodes, sessions }
    }

    /// Every node that originates `prefix`.
    pub fn originators(&self, prefix: Ipv4Net) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(_, n)| n.originate.contains(&prefix))
            .map(|(i, _)| NodeId(i))
    }

    /// Check the topology can be simulated.
    pub fn validate(&self) -> Result<(), TopologyError> {
        let mut addrs: Vec<(Ipv4Addr, usize)> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.address, i))
            .collect();
        addrs.sort_unstable();
        for w in addrs.windows(2) {
            if let [(a, i), (b, j)] = w {
                if a == b {
                    return Err(TopologyError::DuplicateAddress(NodeId(*i), NodeId(*j), *a));
                }
            }
        }
        let mut pairs = Vec::with_capacity(self.sessions.len());
        for (k, s) in self.sessions.iter().enumerate() {
            for end in [s.a, s.b] {
                if end.0 >= self.nodes.len() {
                    return Err(TopologyError::UnknownNode(k, end));
                }
            }
            if s.a == s.b {
                return Err(TopologyError::SelfSession(k));
            }
            let same_as = self.nodes.get(s.a.0).map(|n| n.local_as)
                == self.nodes.get(s.b.0).map(|n| n.local_as);
            if s.kind == SessionKind::ReflectorClient && !same_as {
                return Err(TopologyError::ReflectionAcrossAs(k));
            }
            pairs.push((s.a.min(s.b), s.a.max(s.b), k));
        }
        pairs.sort_unstable();
        for w in pairs.windows(2) {
            if let [(a, b, _), (c, d, k)] = w {
                if a == c && b == d {
                    return Err(TopologyError::DuplicateSession(*k, *a, *b));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_mesh_has_every_pair_once() {
        let t = Topology::full_mesh(5);
        assert_eq!(t.nodes.len(), 5);
        assert_eq!(t.sessions.len(), 10);
        assert_eq!(t.validate(), Ok(()));
        assert_eq!(t.nodes[0].address, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(t.nodes[4].originate, vec!["10.128.1.0/26".parse().unwrap()]);
        assert_eq!(
            t.originators(Topology::block(3)).collect::<Vec<_>>(),
            [NodeId(3)]
        );
    }

    #[test]
    fn route_reflection_layout() {
        let cluster = Ipv4Addr::new(10, 255, 0, 1);
        let t = Topology::route_reflection(2, 3, cluster);
        assert_eq!(t.validate(), Ok(()));
        // rr0-rr1, then each client to both reflectors.
        assert_eq!(t.sessions.len(), 1 + 3 * 2);
        assert_eq!(t.nodes[0].cluster_id, Some(cluster));
        assert_eq!(t.nodes[2].cluster_id, None);
        let to_client = t.sessions[1];
        assert_eq!(to_client.kind, SessionKind::ReflectorClient);
        assert_eq!(
            to_client.active_end(),
            to_client.b,
            "clients connect to reflectors"
        );
        assert_eq!(t.sessions[0].active_end(), NodeId(0));
    }

    #[test]
    fn blocks_do_not_overlap() {
        let a = Topology::block(0);
        let b = Topology::block(1);
        assert_eq!(a.to_string(), "10.128.0.0/26");
        assert_eq!(b.to_string(), "10.128.0.64/26");
        assert!(!a.contains(&b.network()));
        assert_eq!(Topology::block(1023).to_string(), "10.128.255.192/26");
    }

    #[test]
    fn ipv6_addresses_embed_the_ipv4_address() {
        assert_eq!(
            Topology::ipv6_address(Topology::node_address(0)).to_string(),
            "2001:db8:ffff::a00:1"
        );
        assert_ne!(
            Topology::ipv6_address(Topology::node_address(1)),
            Topology::ipv6_address(Topology::node_address(257))
        );
    }

    #[test]
    fn invalid_topologies_are_refused() {
        let mut t = Topology::full_mesh(3);
        t.sessions.push(t.sessions[0]);
        assert!(matches!(
            t.validate(),
            Err(TopologyError::DuplicateSession(..))
        ));
        let mut t = Topology::full_mesh(2);
        t.sessions[0].b = NodeId(7);
        assert!(matches!(
            t.validate(),
            Err(TopologyError::UnknownNode(0, NodeId(7)))
        ));
        let mut t = Topology::full_mesh(2);
        t.sessions[0].b = NodeId(0);
        assert_eq!(t.validate(), Err(TopologyError::SelfSession(0)));
        let mut t = Topology::full_mesh(2);
        t.nodes[1].address = t.nodes[0].address;
        assert!(matches!(
            t.validate(),
            Err(TopologyError::DuplicateAddress(..))
        ));
        let mut t = Topology::route_reflection(1, 1, Ipv4Addr::new(1, 1, 1, 1));
        t.nodes[1].local_as = 65000;
        assert_eq!(t.validate(), Err(TopologyError::ReflectionAcrossAs(0)));
    }
}
