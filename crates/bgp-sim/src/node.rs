//! A running simulated speaker: the node layer's [`RibDriver`] plus one [`PeerDriver`] per
//! configured neighbour, built from the node's [`NodeSpec`] as the daemon builds them
//! from its configuration file. The daemon and the simulator run the same drivers (the
//! `bgp-node` crate); only sockets and the clock differ. A crash drops this whole value; a
//! restart builds a new one.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bgp_node::rib::RibDriverConfig;
use bgp_node::settings::GracefulRestartSettings;
use bgp_node::{
    ConnId, Identity, OutputSlice, PeerDriver, PeerId, PeerIds, PeerSettings, RibDriver,
};
use bgp_proto::Family;
use bgp_rib::policy::{Policy, RouteSource, Verdict};
use bgp_rib::{AllReachable, LocalRoute, RibConfig};
use ipnet::IpNet;

use crate::config::SimConfig;
use crate::error::SimError;
use crate::topology::{NodeId, NodeSpec, SessionKind, Topology};

/// The one policy of every simulated session: accept and announce everything (the
/// simulator's sessions have no filters; an empty chain would refuse everything on eBGP,
/// RFC 8212).
const ACCEPT_ALL: &str = "all";
/// The TCP port of simulated connections (only part of their addresses).
const PORT: u16 = 179;

/// One end of a session, as configured (survives crashes).
#[derive(Clone, Debug)]
pub(crate) struct NeighborSpec {
    pub peer: NodeId,
    /// Index of the matching [`NeighborSpec`] in the peer's list.
    pub peer_slot: usize,
    pub passive: bool,
    /// The peer is our route-reflector client.
    pub rr_client: bool,
}

/// The per-node neighbour lists of a topology, with each end knowing the other's slot.
/// Sessions naming a node that does not exist are skipped ([`Topology::validate`] reports
/// them). With `both_active` no end is passive, so connections may collide.
pub(crate) fn neighbor_specs(t: &Topology, both_active: bool) -> Vec<Vec<NeighborSpec>> {
    let mut out: Vec<Vec<NeighborSpec>> = vec![Vec::new(); t.nodes.len()];
    for s in &t.sessions {
        let (Some(slot_a), Some(slot_b)) =
            (out.get(s.a.0).map(Vec::len), out.get(s.b.0).map(Vec::len))
        else {
            continue;
        };
        let active = s.active_end();
        let reflector = s.kind == SessionKind::ReflectorClient;
        if let Some(list) = out.get_mut(s.a.0) {
            list.push(NeighborSpec {
                peer: s.b,
                peer_slot: slot_b,
                passive: !both_active && active != s.a,
                rr_client: reflector,
            });
        }
        if let Some(list) = out.get_mut(s.b.0) {
            list.push(NeighborSpec {
                peer: s.a,
                peer_slot: slot_a,
                passive: !both_active && active != s.b,
                rr_client: false,
            });
        }
    }
    out
}

/// A neighbour of a running node.
pub(crate) struct Neighbor {
    pub driver: PeerDriver,
    /// Its connections: the driver's id → the simulated connection and our end of it.
    pub conns: Vec<(ConnId, u64, usize)>,
    /// Its connection attempts in flight: the driver's id → the attempt.
    pub attempts: Vec<(ConnId, u64)>,
    /// The driver timer deadline currently scheduled in the event queue.
    pub timer: Option<Instant>,
    /// Output slices the RIB handed over that the driver has not taken yet (what the
    /// daemon's per-peer output channel holds).
    pub out: VecDeque<OutputSlice>,
}

impl Neighbor {
    /// The driver's id of simulated connection `conn`, end `side`.
    pub fn conn_id(&self, conn: u64, side: usize) -> Option<ConnId> {
        self.conns
            .iter()
            .find(|(_, c, s)| *c == conn && *s == side)
            .map(|(id, _, _)| *id)
    }
}

/// A node that is up.
pub(crate) struct Running {
    pub rib: RibDriver<()>,
    /// By slot; slot `i` is the peer with [`PeerId::index`] `i`.
    pub neighbors: Vec<Neighbor>,
    /// Our address on the sessions: the IPv4 one, or its IPv6 form with
    /// [`SimConfig::extended_next_hop`].
    pub session_address: IpAddr,
    /// A flush (decision process + UPDATE generation) is scheduled.
    pub flush_pending: bool,
    /// A flush is running (it hands out whatever output credit comes back meanwhile).
    pub flushing: bool,
    /// The RIB driver deadline currently scheduled in the event queue.
    pub rib_timer: Option<Instant>,
    /// Virtual time until which the RIB worker is busy ([`CpuModel`](crate::CpuModel)).
    pub busy_until: Duration,
    /// UPDATEs applied since the last flush.
    pub received_since_flush: u64,
}

/// Our address on sessions of a node with IPv4 address `a`.
pub(crate) fn session_address(a: Ipv4Addr, cfg: &SimConfig) -> IpAddr {
    if cfg.extended_next_hop {
        IpAddr::V6(Topology::ipv6_address(a))
    } else {
        IpAddr::V4(a)
    }
}

impl Running {
    /// Build a node from its spec: RIB with peers and originated blocks, one peer driver
    /// per neighbour (each starts its session: the caller drives them). `restarting` sets
    /// the Restart State bit in the graceful restart capability (RFC 4724 3).
    pub fn build(
        spec: &NodeSpec,
        neighbors: &[NeighborSpec],
        topology: &Topology,
        cfg: &SimConfig,
        restarting: bool,
        now: Instant,
    ) -> Result<Running, SimError> {
        let mut rc = RibConfig::new(spec.local_as, spec.address);
        rc.cluster_id = spec.cluster_id;
        if let Some(gr) = &cfg.graceful_restart {
            rc.stale_path_time = gr.stale_path_time;
        }
        let mut rib = RibDriver::new(
            rc,
            AllReachable,
            RibDriverConfig {
                out_slice_bytes: cfg.out_slice_bytes,
                // Best-path changes are counted (Stats) from the FIB batches.
                fib: true,
                ..RibDriverConfig::default()
            },
        );
        rib.set_policies(BTreeMap::from([(
            ACCEPT_ALL.to_string(),
            Policy::all(Verdict::Accept),
        )]));
        let mut identity = Identity::new(spec.local_as, spec.address);
        identity.restarting = restarting;
        identity.forwarding_preserved = true;
        let mut ids = PeerIds::default();
        let mut list = Vec::with_capacity(neighbors.len());
        for n in neighbors {
            let peer = topology
                .nodes
                .get(n.peer.0)
                .ok_or(SimError::UnknownNode(n.peer))?;
            let settings = peer_settings(peer, n, cfg);
            let id = ids.allocate();
            rib.add_peer(id, settings.clone(), ())?;
            list.push(Neighbor {
                driver: PeerDriver::new(id, settings, identity.clone(), now),
                conns: Vec::new(),
                attempts: Vec::new(),
                timer: None,
                out: VecDeque::new(),
            });
        }
        for block in &spec.originate {
            rib.originate(LocalRoute::new(IpNet::V4(*block), RouteSource::Static), now)?;
        }
        Ok(Running {
            rib,
            neighbors: list,
            session_address: session_address(spec.address, cfg),
            flush_pending: false,
            flushing: false,
            rib_timer: None,
            busy_until: Duration::ZERO,
            received_since_flush: 0,
        })
    }

    /// The slot of the neighbour `id`.
    pub fn slot(&self, id: PeerId) -> Option<usize> {
        let slot = id.index();
        self.neighbors
            .get(slot)
            .filter(|n| n.driver.id() == id)
            .map(|_| slot)
    }

    /// The addresses of a connection of ours to (or from) `peer`.
    pub fn transport(&self, peer: IpAddr) -> bgp_node::Transport {
        bgp_node::Transport {
            local: SocketAddr::new(self.session_address, PORT),
            remote: SocketAddr::new(peer, PORT),
            link_global_v6: None,
        }
    }
}

/// The node layer's settings for a neighbour: what the simulated speaker configures for
/// every session (IPv4 unicast, route refresh, graceful restart and RFC 8950 as the run
/// says, accept and announce everything).
fn peer_settings(peer: &NodeSpec, n: &NeighborSpec, cfg: &SimConfig) -> PeerSettings {
    let kind = if n.rr_client { "Client" } else { "Mesh" };
    let name = format!("{kind}_{}", peer.address).replace('.', "_");
    let mut s = PeerSettings::new(name, session_address(peer.address, cfg), peer.local_as);
    s.passive = n.passive;
    s.hold_time = cfg.hold_time;
    s.connect_retry = cfg.connect_retry;
    s.families = vec![Family::IPV4_UNICAST];
    s.max_queued_bytes = cfg.session_queue_bytes;
    s.extended_next_hop = cfg.extended_next_hop;
    if let Some(gr) = &cfg.graceful_restart {
        s.graceful_restart = GracefulRestartSettings {
            enabled: true,
            restart_time: gr.restart_time,
            notification: true,
            ..GracefulRestartSettings::default()
        };
    }
    s.max_prefixes = cfg.max_prefixes;
    s.rr_client = n.rr_client;
    s.import = vec![ACCEPT_ALL.to_string()];
    s.export = vec![ACCEPT_ALL.to_string()];
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbour_lists_pair_up_and_one_end_is_passive() {
        let t = Topology::route_reflection(2, 3, Ipv4Addr::new(1, 1, 1, 1));
        let specs = neighbor_specs(&t, false);
        for (node, list) in specs.iter().enumerate() {
            for n in list {
                let back = &specs[n.peer.0][n.peer_slot];
                assert_eq!(back.peer, NodeId(node));
                assert_ne!(back.passive, n.passive, "exactly one end connects");
            }
        }
        // Reflectors see clients as clients; clients connect, reflectors listen.
        assert!(specs[0]
            .iter()
            .filter(|n| n.peer.0 >= 2)
            .all(|n| n.rr_client && n.passive));
        assert!(specs[2].iter().all(|n| !n.rr_client && !n.passive));
        // Both ends active: nobody listens only.
        let both = neighbor_specs(&t, true);
        assert!(both.iter().flatten().all(|n| !n.passive));
    }

    #[test]
    fn a_node_gives_every_neighbour_a_driver_and_a_rib_peer() {
        let t = Topology::full_mesh(3);
        let specs = neighbor_specs(&t, false);
        let cfg = SimConfig::new(1);
        let run =
            Running::build(&t.nodes[0], &specs[0], &t, &cfg, false, Instant::now()).expect("built");
        assert_eq!(run.neighbors.len(), 2);
        for (slot, n) in run.neighbors.iter().enumerate() {
            assert_eq!(run.slot(n.driver.id()), Some(slot));
            let e = run.rib.peer(n.driver.id()).expect("in the RIB");
            assert_eq!(e.name(), n.driver.settings().name);
        }
        assert_eq!(run.rib.rib().prefix_count().0, 1, "its own block");
    }
}
