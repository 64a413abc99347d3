//! Assertions shared by the simulation tests.

#![allow(dead_code)]

use std::net::IpAddr;
use std::time::Duration;

use bgp_rib::policy::RouteSource;
use bgp_sim::{LocRibEntry, NodeId, Sim, Topology};

/// Generous bound on virtual time for a cluster to converge.
pub const CONVERGE_LIMIT: Duration = Duration::from_secs(600);

pub fn converge(sim: &mut Sim) -> bgp_sim::Convergence {
    match sim.run_until_converged(CONVERGE_LIMIT) {
        Ok(c) => c,
        Err(e) => panic!("{e}; anomalies: {:?}", sim.anomalies()),
    }
}

/// Nothing a healthy cluster never does: no RIB/send errors, no malformed UPDATEs.
pub fn assert_healthy(sim: &Sim) {
    assert!(
        sim.anomalies().is_empty(),
        "anomalies: {:#?}",
        sim.anomalies()
    );
}

/// `node`'s Loc-RIB holds exactly the blocks of `originators`, its own as a local static
/// route and each other one via BGP with the originator's address as next hop, and nothing
/// stale.
pub fn assert_holds_blocks(sim: &Sim, node: NodeId, originators: &[NodeId]) {
    let t = sim.topology();
    let rib = sim
        .loc_rib(node)
        .unwrap_or_else(|| panic!("{node} is not running"));
    let mut expected: Vec<(ipnet::IpNet, NodeId)> = originators
        .iter()
        .flat_map(|&o| t.nodes[o.0].originate.iter().map(move |b| ((*b).into(), o)))
        .collect();
    expected.sort();
    let got: Vec<_> = rib.iter().map(|e| e.prefix).collect();
    let want: Vec<_> = expected.iter().map(|e| e.0).collect();
    assert_eq!(got, want, "{node}: wrong set of prefixes");
    for (entry, (_, origin)) in rib.iter().zip(&expected) {
        assert!(!entry.stale, "{node}: {entry:?} still stale");
        if *origin == node {
            assert_eq!(
                entry.source,
                RouteSource::Static,
                "{node}: own block {entry:?}"
            );
            assert_eq!(entry.learned_from, None);
        } else {
            let addr = IpAddr::V4(t.nodes[origin.0].address);
            assert_eq!(entry.source, RouteSource::Bgp, "{node}: {entry:?}");
            assert_eq!(
                entry.next_hop,
                Some(addr),
                "{node}: {} must go via its originator {origin}",
                entry.prefix
            );
        }
    }
}

/// Every node holds every node's block (see [`assert_holds_blocks`]).
pub fn assert_full_reachability(sim: &Sim) {
    let all: Vec<NodeId> = (0..sim.topology().nodes.len()).map(NodeId).collect();
    for &n in &all {
        assert_holds_blocks(sim, n, &all);
    }
}

/// The best path for `prefix` at `node`, if any.
pub fn best(sim: &Sim, node: NodeId, prefix: ipnet::Ipv4Net) -> Option<LocRibEntry> {
    let p: ipnet::IpNet = prefix.into();
    sim.loc_rib(node)?.into_iter().find(|e| e.prefix == p)
}

pub fn addr(i: usize) -> IpAddr {
    IpAddr::V4(Topology::node_address(i))
}
