//! RFC 8950 at cluster scale: every session runs over IPv6 only, negotiates the extended
//! next hop capability, and the IPv4 blocks travel in MP_REACH_NLRI with IPv6 next hops —
//! through a full mesh, through route reflectors (next hop unchanged), across a crash.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use bgp_proto::{Family, MpNextHop};
use bgp_rib::policy::RouteSource;
use bgp_sim::{NodeId, Sim, SimConfig, Topology};
use common::*;

const CLUSTER: Ipv4Addr = Ipv4Addr::new(10, 255, 255, 1);

/// Every node holds every block of `originators`, learned over IPv6 with the originator's
/// IPv6 address as next hop.
fn assert_blocks_via_ipv6(sim: &Sim, node: NodeId, originators: &[NodeId]) {
    let t = sim.topology();
    let rib = sim.loc_rib(node).expect("running");
    let mut want: Vec<(ipnet::IpNet, NodeId)> = originators
        .iter()
        .flat_map(|&o| t.nodes[o.0].originate.iter().map(move |b| ((*b).into(), o)))
        .collect();
    want.sort();
    assert_eq!(
        rib.iter().map(|e| e.prefix).collect::<Vec<_>>(),
        want.iter().map(|w| w.0).collect::<Vec<_>>(),
        "{node}"
    );
    for (e, (_, origin)) in rib.iter().zip(&want) {
        assert!(e.prefix.addr().is_ipv4());
        if *origin == node {
            assert_eq!(e.source, RouteSource::Static);
            continue;
        }
        let v6 = Topology::ipv6_address(t.nodes[origin.0].address);
        assert_eq!(e.next_hop, Some(IpAddr::V6(v6)), "{node}: {e:?}");
        assert!(
            matches!(e.learned_from, Some(IpAddr::V6(_))),
            "{node}: {e:?}"
        );
    }
}

#[test]
fn full_mesh_exchanges_ipv4_blocks_with_ipv6_next_hops() {
    let n = 8;
    let mut sim = Sim::new(
        Topology::full_mesh(n),
        SimConfig::new(7).with_extended_next_hop(),
    )
    .unwrap();
    converge(&mut sim);
    assert_healthy(&sim);
    let all: Vec<NodeId> = (0..n).map(NodeId).collect();
    for &node in &all {
        assert_blocks_via_ipv6(&sim, node, &all);
    }
}

#[test]
fn reflectors_pass_ipv6_next_hops_unchanged_and_runs_are_deterministic() {
    let (rrs, clients) = (2, 24);
    let run = |seed: u64| {
        let mut sim = Sim::new(
            Topology::route_reflection(rrs, clients, CLUSTER),
            SimConfig::new(seed).with_extended_next_hop(),
        )
        .unwrap();
        converge(&mut sim);
        assert_healthy(&sim);
        sim
    };
    let sim = run(1);
    let all: Vec<NodeId> = (0..rrs + clients).map(NodeId).collect();
    for &node in &all {
        assert_blocks_via_ipv6(&sim, node, &all);
    }
    // What a client received from a reflector: MP_REACH IPv6 next hop of the originating
    // client, with the RFC 4456 attributes.
    let t = sim.topology();
    let client = NodeId(rrs);
    let rib = sim.rib(client).unwrap();
    let rr0 = rib
        .peers()
        .find(|(_, c, _)| c.address == IpAddr::V6(Topology::ipv6_address(t.nodes[0].address)))
        .map(|(id, _, _)| id)
        .expect("peer rr0");
    let from_rr = rib.adj_rib_in(rr0, Family::IPV4_UNICAST).unwrap();
    assert_eq!(from_rr.len(), rrs + clients - 1);
    for (nlri, attrs, accepted) in &from_rr {
        assert!(accepted);
        let origin = t.originators(match nlri.prefix {
            ipnet::IpNet::V4(p) => p,
            ipnet::IpNet::V6(p) => panic!("IPv6 prefix {p}"),
        });
        let origin: Vec<NodeId> = origin.collect();
        assert_eq!(origin.len(), 1);
        let o = &t.nodes[origin[0].0];
        assert_eq!(
            attrs.next_hop,
            Some(MpNextHop::V6 {
                global: Topology::ipv6_address(o.address),
                link_local: None,
            }),
            "{nlri:?}"
        );
        if origin[0].0 >= rrs {
            // Reflected: ORIGINATOR_ID is the originating client's router id.
            assert_eq!(attrs.attrs.originator_id, Some(o.address));
            assert_eq!(attrs.attrs.cluster_list, vec![CLUSTER]);
        }
    }
    // Same Loc-RIBs whatever the interleaving.
    let digests = sim.loc_rib_digests();
    for seed in [2, 3] {
        assert_eq!(run(seed).loc_rib_digests(), digests, "seed {seed}");
    }
}

#[test]
fn crash_withdraws_and_restart_restores_ipv4_blocks_over_ipv6() {
    let n = 5;
    let mut sim = Sim::new(
        Topology::full_mesh(n),
        SimConfig::new(11).with_extended_next_hop(),
    )
    .unwrap();
    converge(&mut sim);
    let gone = NodeId(3);
    sim.crash(gone).unwrap();
    converge(&mut sim);
    let rest: Vec<NodeId> = (0..n).map(NodeId).filter(|&x| x != gone).collect();
    for &node in &rest {
        assert_blocks_via_ipv6(&sim, node, &rest);
    }
    sim.restart(gone).unwrap();
    converge(&mut sim);
    assert_healthy(&sim);
    let all: Vec<NodeId> = (0..n).map(NodeId).collect();
    for &node in &all {
        assert_blocks_via_ipv6(&sim, node, &all);
    }
}
