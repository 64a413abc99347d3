//! Two route reflectors sharing one CLUSTER_ID with every other node as a client
//! (RFC 4456; Calico's route-reflector layout): convergence, next hops, ORIGINATOR_ID and
//! CLUSTER_LIST handling, and the absence of reflection loops.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use bgp_proto::Family;
use bgp_rib::{PeerId, Rib};
use bgp_sim::{NodeId, Sim, SimConfig, Topology};
use common::*;

const CLUSTER: Ipv4Addr = Ipv4Addr::new(10, 255, 255, 1);
const REFLECTORS: usize = 2;

/// Clients of the big test: `BGP_SIM_RR_CLIENTS`, else 1000 in optimised builds
/// (`cargo test --release -p bgp-sim`) and 250 in debug builds, where the same run takes
/// about 100 s of CPU, almost all of it in the RIB and codec.
fn big_client_count() -> usize {
    std::env::var("BGP_SIM_RR_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 250 } else { 1000 })
}

fn peer_for(rib: &Rib, addr: Ipv4Addr) -> PeerId {
    rib.peers()
        .find(|(_, cfg, _)| cfg.address == IpAddr::V4(addr))
        .map(|(id, _, _)| id)
        .unwrap_or_else(|| panic!("no peer {addr}"))
}

/// Everything RFC 4456 promises for this layout, checked on every node.
fn assert_reflection_correct(sim: &Sim, clients: usize) {
    let t = sim.topology();
    let addr_of = |i: usize| t.nodes[i].address;
    let owner = |p: &ipnet::IpNet| -> usize {
        t.nodes
            .iter()
            .position(|n| n.originate.iter().any(|b| ipnet::IpNet::V4(*b) == *p))
            .unwrap_or(usize::MAX)
    };
    for c in REFLECTORS..REFLECTORS + clients {
        let rib = sim.rib(NodeId(c)).unwrap();
        let own = t.nodes[c].originate[0];
        for r in 0..REFLECTORS {
            let from_rr = rib
                .adj_rib_in(peer_for(rib, addr_of(r)), Family::IPV4_UNICAST)
                .unwrap();
            // Everything but the client's own block, from each reflector.
            assert_eq!(
                from_rr.len(),
                REFLECTORS + clients - 1,
                "node{c} from rr{r}"
            );
            for (nlri, attrs, accepted) in &from_rr {
                // A reflector never reflects a route back to its originator (RFC 4456 8).
                assert_ne!(
                    nlri.prefix,
                    ipnet::IpNet::V4(own),
                    "node{c} got its own block from rr{r}"
                );
                assert!(accepted, "node{c}: {nlri:?} from rr{r} rejected");
                let o = owner(&nlri.prefix);
                let a = &attrs.attrs;
                assert_eq!(attrs.next_hop_addr(), Some(IpAddr::V4(addr_of(o))));
                if o == r {
                    // The reflector's own block: not reflected, no RFC 4456 attributes.
                    assert_eq!((a.originator_id, a.cluster_list.len()), (None, 0));
                } else {
                    assert_eq!(a.originator_id, Some(addr_of(o)), "{nlri:?} via rr{r}");
                    assert_eq!(a.cluster_list, vec![CLUSTER], "{nlri:?} via rr{r}");
                }
            }
        }
        // Two paths per foreign block. A reflector's own block is best from that reflector
        // (empty CLUSTER_LIST beats the other's reflection, RFC 4456 9); for client blocks
        // ORIGINATOR_ID and CLUSTER_LIST length tie and the lowest peer address, rr0, wins.
        for e in sim.loc_rib(NodeId(c)).unwrap() {
            let o = owner(&e.prefix);
            if o == c {
                continue;
            }
            let via = if o < REFLECTORS { o } else { 0 };
            assert_eq!(
                e.learned_from,
                Some(IpAddr::V4(addr_of(via))),
                "node{c}: {e:?}"
            );
        }
    }
    for r in 0..REFLECTORS {
        let rib = sim.rib(NodeId(r)).unwrap();
        // Client blocks are best via the client itself, unreflected.
        for e in sim.loc_rib(NodeId(r)).unwrap() {
            let o = owner(&e.prefix);
            if o >= REFLECTORS {
                assert_eq!(e.learned_from, Some(IpAddr::V4(addr_of(o))), "rr{r}: {e:?}");
                assert!(e.cluster_list.is_empty() && e.originator_id.is_none());
            }
        }
        // The other reflector reflects client routes to us (client → non-client), with our
        // shared CLUSTER_ID in the CLUSTER_LIST: every one is refused as a loop
        // (RFC 4456 8), so nothing circulates between the reflectors.
        for other in (0..REFLECTORS).filter(|&o| o != r) {
            let got = rib
                .adj_rib_in(peer_for(rib, addr_of(other)), Family::IPV4_UNICAST)
                .unwrap();
            assert_eq!(got.len(), clients + 1, "rr{r} from rr{other}");
            for (nlri, attrs, accepted) in got {
                let o = owner(&nlri.prefix);
                if o == other {
                    assert!(accepted, "rr{other}'s own block refused at rr{r}");
                } else {
                    assert!(!accepted, "rr{r} accepted reflected {nlri:?}");
                    assert_eq!(attrs.attrs.cluster_list, vec![CLUSTER]);
                }
            }
        }
    }
}

/// UPDATEs (End-of-RIB not counted) a loop-free run delivers, each carrying one block:
/// every client to each reflector; each reflector to each client every block but the
/// client's own; each reflector to the other its own block and every client block.
fn expected_updates(clients: u64) -> u64 {
    let r = REFLECTORS as u64;
    clients * r + r * clients * (clients + r - 1) + r * (r - 1) * (clients + 1)
}

#[test]
fn two_reflectors_and_many_clients_converge_without_loops() {
    let clients = big_client_count();
    let started = Instant::now();
    let topo = Topology::route_reflection(REFLECTORS, clients, CLUSTER);
    let mut sim = Sim::new(topo, SimConfig::new(1000)).unwrap();
    let done = converge(&mut sim);
    let wall = started.elapsed();
    assert_healthy(&sim);
    assert_full_reachability(&sim);
    assert_reflection_correct(&sim, clients);
    assert!(
        sim.session_downs().is_empty(),
        "{:?}",
        &sim.session_downs()[..1]
    );
    assert_eq!(
        sim.stats().updates_received,
        expected_updates(clients as u64)
    );
    eprintln!(
        "{clients} clients: converged at {:?} virtual ({} events, {} UPDATEs) in {wall:?} wall",
        done.at,
        done.events,
        sim.stats().updates_received
    );
}

#[test]
fn reflection_outcome_is_independent_of_delivery_order() {
    let clients = 40;
    let run = |seed: u64| {
        let mut cfg = SimConfig::new(seed);
        cfg.start_jitter = std::time::Duration::from_millis(30);
        cfg.link.split_percent = 50;
        let topo = Topology::route_reflection(REFLECTORS, clients, CLUSTER);
        let mut sim = Sim::new(topo, cfg).unwrap();
        converge(&mut sim);
        assert_healthy(&sim);
        assert_full_reachability(&sim);
        assert_reflection_correct(&sim, clients);
        assert_eq!(
            sim.stats().updates_received,
            expected_updates(clients as u64)
        );
        sim.loc_ribs()
    };
    let reference = run(11);
    for seed in [12, 13, 14] {
        assert_eq!(run(seed), reference, "seed {seed}");
    }
}
