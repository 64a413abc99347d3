//! A running simulated speaker: one [`Rib`] plus one sans-IO [`Session`] per configured
//! neighbour, built from the node's [`NodeSpec`] exactly as a daemon would build them from
//! its configuration file. A crash drops this whole value; a restart builds a new one.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bgp_proto::notification_code as nc;
use bgp_proto::session::{DownReason, Negotiated, Session, SessionConfig};
use bgp_proto::{Afi, Family, GracefulRestart, GracefulRestartFamily};
use bgp_rib::policy::RouteSource;
use bgp_rib::{LocalRoute, PeerConfig, PeerId, Rib, RibConfig, RibError, SessionInfo};
use ipnet::IpNet;

use crate::config::SimConfig;
use crate::topology::{NodeId, NodeSpec, SessionKind, Topology};

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
/// them).
pub(crate) fn neighbor_specs(t: &Topology) -> Vec<Vec<NeighborSpec>> {
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
                passive: active != s.a,
                rr_client: reflector,
            });
        }
        if let Some(list) = out.get_mut(s.b.0) {
            list.push(NeighborSpec {
                peer: s.a,
                peer_slot: slot_a,
                passive: active != s.b,
                rr_client: false,
            });
        }
    }
    out
}

/// A neighbour of a running node.
pub(crate) struct Neighbor {
    pub session: Session,
    pub peer: PeerId,
    /// The TCP connection (index in the network's table) and which end of it we are.
    pub conn: Option<(u64, usize)>,
    /// Our connection attempt in flight.
    pub attempt: Option<u64>,
    /// The session timer deadline currently scheduled in the event queue.
    pub timer: Option<Instant>,
    /// Both sides set the N bit (RFC 8538): NOTIFICATIONs also end the session gracefully.
    pub gr_notification: bool,
}

/// A node that is up.
pub(crate) struct Running {
    pub rib: Rib,
    pub neighbors: Vec<Neighbor>,
    /// RIB peer index → neighbour slot.
    pub slot_of_peer: Vec<usize>,
    pub address: Ipv4Addr,
    /// A flush (decision process + UPDATE generation) is scheduled.
    pub flush_pending: bool,
    /// The graceful-restart deadline currently scheduled in the event queue.
    pub rib_timer: Option<Instant>,
    /// Virtual time until which the RIB worker is busy ([`CpuModel`](crate::CpuModel)).
    pub busy_until: Duration,
    /// UPDATEs applied since the last flush.
    pub received_since_flush: u64,
}

impl Running {
    /// Build a node from its spec: RIB with peers and originated blocks, one session per
    /// neighbour (not started). `restarting` sets the Restart State bit in the graceful
    /// restart capability (RFC 4724 3).
    pub fn build(
        spec: &NodeSpec,
        neighbors: &[NeighborSpec],
        topology: &Topology,
        cfg: &SimConfig,
        restarting: bool,
    ) -> Result<Running, RibError> {
        let mut rc = RibConfig::new(spec.local_as, spec.address);
        rc.cluster_id = spec.cluster_id;
        if let Some(gr) = &cfg.graceful_restart {
            rc.stale_path_time = gr.stale_path_time;
        }
        let mut rib = Rib::new(rc);
        let mut list = Vec::with_capacity(neighbors.len());
        let mut slot_of_peer = Vec::new();
        for (slot, n) in neighbors.iter().enumerate() {
            let Some(peer) = topology.nodes.get(n.peer.0) else {
                continue;
            };
            let kind = if n.rr_client { "Client" } else { "Mesh" };
            let name = format!("{kind}_{}", peer.address).replace('.', "_");
            let address = if cfg.extended_next_hop {
                IpAddr::V6(Topology::ipv6_address(peer.address))
            } else {
                IpAddr::V4(peer.address)
            };
            let mut pc = PeerConfig::new(name, address, peer.local_as);
            pc.rr_client = n.rr_client;
            let id = rib.add_peer(pc)?;
            let idx = id.index() as usize;
            if slot_of_peer.len() <= idx {
                slot_of_peer.resize(idx + 1, usize::MAX);
            }
            slot_of_peer[idx] = slot;
            list.push(Neighbor {
                session: Session::new(session_config(
                    spec,
                    peer.local_as,
                    n.passive,
                    cfg,
                    restarting,
                )),
                peer: id,
                conn: None,
                attempt: None,
                timer: None,
                gr_notification: false,
            });
        }
        for block in &spec.originate {
            rib.originate(LocalRoute::new(IpNet::V4(*block), RouteSource::Static))?;
        }
        Ok(Running {
            rib,
            neighbors: list,
            slot_of_peer,
            address: spec.address,
            flush_pending: false,
            rib_timer: None,
            busy_until: Duration::ZERO,
            received_since_flush: 0,
        })
    }

    pub fn slot(&self, peer: PeerId) -> Option<usize> {
        self.slot_of_peer
            .get(peer.index() as usize)
            .copied()
            .filter(|&s| s != usize::MAX)
    }
}

fn session_config(
    spec: &NodeSpec,
    remote_as: u32,
    passive: bool,
    cfg: &SimConfig,
    restarting: bool,
) -> SessionConfig {
    let mut sc = SessionConfig::new(spec.local_as, spec.address, Some(remote_as));
    sc.hold_time = cfg.hold_time;
    sc.connect_retry = cfg.connect_retry;
    sc.passive = passive;
    // The simulator drains every session right after each call, so nothing piles up;
    // a full-table burst to a client of two big reflectors must never be refused.
    sc.max_queued_bytes = 256 * 1024 * 1024;
    if cfg.extended_next_hop {
        // RFC 8950 4: IPv4 unicast NLRI with IPv6 next hops.
        sc.capabilities.extended_next_hop = vec![(Family::IPV4_UNICAST, Afi::IPV6)];
    }
    if let Some(gr) = &cfg.graceful_restart {
        sc.capabilities.graceful_restart = Some(GracefulRestart {
            restart_state: restarting,
            notification: true,
            restart_time: gr.restart_time,
            families: vec![GracefulRestartFamily {
                family: Family::IPV4_UNICAST,
                forwarding_preserved: true,
            }],
        });
    }
    sc
}

/// What the RIB must know about an established session. With `ipv6_only` the session runs
/// over IPv6 ([`SimConfig::extended_next_hop`]): our address on it is the IPv6 one.
pub(crate) fn session_info(n: &Negotiated, local: Ipv4Addr, ipv6_only: bool) -> SessionInfo {
    let mut info = if ipv6_only {
        let mut i = SessionInfo::new(n.peer_id, None);
        i.local_v6 = Some(Topology::ipv6_address(local));
        i
    } else {
        SessionInfo::new(n.peer_id, Some(local))
    };
    info.extended_next_hop_v4 = n
        .extended_next_hop
        .contains(&(Family::IPV4_UNICAST, Afi::IPV6));
    info.families = n.families.clone();
    info.codec = n.codec.clone();
    info.graceful_restart = n.peer_graceful_restart.clone();
    info.llgr = n.peer_llgr.clone();
    info
}

/// Both sides announced the N bit of RFC 8538.
pub(crate) fn gr_notification(n: &Negotiated, local: &SessionConfig) -> bool {
    let ours = local
        .capabilities
        .graceful_restart
        .as_ref()
        .is_some_and(|g| g.notification);
    let theirs = n
        .peer_graceful_restart
        .as_ref()
        .is_some_and(|g| g.notification);
    ours && theirs
}

/// Whether a session that went down keeps the peer's routes as stale: a transport failure
/// (RFC 4724 4.2), or with the N bit any NOTIFICATION except Cease/Hard Reset (RFC 8538
/// 4–5). The RIB then applies them only if the peer advertised graceful restart.
pub(crate) fn graceful_down(reason: &DownReason, n_bit: bool) -> bool {
    let hard =
        |n: &bgp_proto::Notification| n.code == nc::CEASE && n.subcode == nc::CEASE_HARD_RESET;
    match reason {
        DownReason::ConnectionClosed => true,
        DownReason::HoldTimerExpired | DownReason::SendHoldTimerExpired => n_bit,
        DownReason::NotificationSent { notification, .. } => n_bit && !hard(notification),
        DownReason::NotificationReceived(n) => n_bit && !hard(n),
        DownReason::AdminStop(_) | DownReason::CollisionDump | DownReason::ConnectionFailed => {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::Notification;
    use bytes::Bytes;

    fn notification(code: u8, subcode: u8) -> Notification {
        Notification {
            code,
            subcode,
            data: Bytes::new(),
        }
    }

    #[test]
    fn graceful_down_follows_rfc_4724_and_8538() {
        // RFC 4724 4.2: a transport failure is graceful whatever the N bit.
        assert!(graceful_down(&DownReason::ConnectionClosed, false));
        // RFC 8538: NOTIFICATIONs and hold timer expiry only with the N bit ...
        let cease = notification(nc::CEASE, nc::CEASE_ADMIN_RESET);
        let received = DownReason::NotificationReceived(cease.clone());
        assert!(!graceful_down(&received, false));
        assert!(graceful_down(&received, true));
        assert!(graceful_down(&DownReason::HoldTimerExpired, true));
        assert!(!graceful_down(&DownReason::HoldTimerExpired, false));
        // ... and never for Hard Reset.
        let hard = notification(nc::CEASE, nc::CEASE_HARD_RESET);
        assert!(!graceful_down(
            &DownReason::NotificationReceived(hard.clone()),
            true
        ));
        let sent = DownReason::NotificationSent {
            notification: hard,
            reason: String::new(),
        };
        assert!(!graceful_down(&sent, true));
        assert!(!graceful_down(&DownReason::AdminStop(Some(cease)), true));
        assert!(!graceful_down(&DownReason::ConnectionFailed, true));
    }

    #[test]
    fn neighbour_lists_pair_up_and_one_end_is_passive() {
        let t = Topology::route_reflection(2, 3, Ipv4Addr::new(1, 1, 1, 1));
        let specs = neighbor_specs(&t);
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
    }
}
