//! A node crashes (all its state lost, its peers see the connections close) and restarts,
//! with and without graceful restart (RFC 4724): the cluster converges back to the same
//! Loc-RIBs, and with graceful restart the peers keep the node's routes, marked stale,
//! for the whole time it is away.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp_proto::session::DownReason;
use bgp_sim::{NodeId, Sim, SimConfig, Topology};
use common::*;

const CRASHED: NodeId = NodeId(4);

fn others(n: usize, except: NodeId) -> Vec<NodeId> {
    (0..n).map(NodeId).filter(|&i| i != except).collect()
}

/// Every established session to `node` went down with the connection (nothing else).
fn assert_peers_saw_close(sim: &Sim, node: NodeId, peers: usize) {
    let downs: Vec<_> = sim
        .session_downs()
        .iter()
        .filter(|d| d.peer == node)
        .collect();
    assert_eq!(downs.len(), peers, "{downs:?}");
    assert!(
        downs
            .iter()
            .all(|d| d.reason == DownReason::ConnectionClosed),
        "{downs:?}"
    );
    assert_eq!(
        sim.session_downs().len(),
        peers,
        "only sessions to {node} went down"
    );
}

#[test]
fn mesh_crash_and_restart_without_graceful_restart() {
    let n = 10;
    let mut sim = Sim::new(Topology::full_mesh(n), SimConfig::new(21)).unwrap();
    converge(&mut sim);
    let before = sim.loc_ribs();

    sim.crash(CRASHED).unwrap();
    assert!(!sim.is_running(CRASHED));
    // Without graceful restart the peers withdraw the node's block at once.
    converge(&mut sim);
    assert_healthy(&sim);
    assert_peers_saw_close(&sim, CRASHED, n - 1);
    let survivors = others(n, CRASHED);
    for &p in &survivors {
        assert_holds_blocks(&sim, p, &survivors);
    }
    let block: ipnet::IpNet = sim.topology().nodes[CRASHED.0].originate[0].into();
    let removed = sim
        .fib_removals()
        .iter()
        .filter(|r| r.prefix == block)
        .count();
    assert_eq!(removed, n - 1, "every peer removed the block once");

    sim.restart(CRASHED).unwrap();
    converge(&mut sim);
    assert_healthy(&sim);
    assert_full_reachability(&sim);
    assert_eq!(sim.loc_ribs(), before);
}

#[test]
fn mesh_crash_and_graceful_restart_keeps_routes_stale_until_end_of_rib() {
    let n = 10;
    let cfg = SimConfig::new(22).with_graceful_restart();
    let mut sim = Sim::new(Topology::full_mesh(n), cfg).unwrap();
    converge(&mut sim);
    let before = sim.loc_ribs();
    let block = sim.topology().nodes[CRASHED.0].originate[0];
    let survivors = others(n, CRASHED);

    sim.crash(CRASHED).unwrap();
    // Well within the advertised Restart Time (120 s): every peer still forwards to the
    // node, through a stale path (RFC 4724 4.2).
    sim.run_for(Duration::from_secs(20));
    assert_peers_saw_close(&sim, CRASHED, n - 1);
    assert!(!sim.is_converged());
    for &p in &survivors {
        let e = best(&sim, p, block).unwrap_or_else(|| panic!("{p} lost {block}"));
        assert!(e.stale, "{p}: {e:?}");
        assert_eq!(e.next_hop, Some(addr(CRASHED.0)));
    }

    // Restart. The restarted node defers its routes until every peer sent End-of-RIB
    // (RFC 4724 4.1), then the peers replace the stale path by the fresh one and sweep.
    sim.restart(CRASHED).unwrap();
    converge(&mut sim);
    assert_healthy(&sim);
    assert_full_reachability(&sim);
    assert_eq!(sim.loc_ribs(), before);
    // At no time, from the crash to now, did any peer remove the block from its table.
    let lost: Vec<_> = sim
        .fib_removals()
        .iter()
        .filter(|r| r.prefix == block.into())
        .collect();
    assert!(lost.is_empty(), "{lost:?}");
}

#[test]
fn stale_routes_are_swept_when_the_node_does_not_come_back_in_time() {
    let n = 6;
    let cfg = SimConfig::new(23).with_graceful_restart();
    let restart_time = cfg.graceful_restart.as_ref().unwrap().restart_time;
    let mut sim = Sim::new(Topology::full_mesh(n), cfg).unwrap();
    converge(&mut sim);
    let crashed_at = sim.now();
    sim.crash(CRASHED).unwrap();
    // Converged only once the restart timer expired and the stale block was swept.
    let done = converge(&mut sim);
    assert!(done.at >= crashed_at + Duration::from_secs(u64::from(restart_time)));
    let survivors = others(n, CRASHED);
    for &p in &survivors {
        assert_holds_blocks(&sim, p, &survivors);
    }
    assert_healthy(&sim);
}

const CLUSTER: Ipv4Addr = Ipv4Addr::new(10, 255, 255, 1);
const RR0: NodeId = NodeId(0);

#[test]
fn reflector_crash_without_graceful_restart_fails_over_to_the_other_reflector() {
    let clients = 30;
    let n = clients + 2;
    let topo = Topology::route_reflection(2, clients, CLUSTER);
    let mut sim = Sim::new(topo, SimConfig::new(31)).unwrap();
    converge(&mut sim);
    let before = sim.loc_ribs();

    sim.crash(RR0).unwrap();
    converge(&mut sim);
    assert_healthy(&sim);
    assert_peers_saw_close(&sim, RR0, n - 1);
    let survivors = others(n, RR0);
    for &c in &survivors[1..] {
        assert_holds_blocks(&sim, c, &survivors);
        // Every foreign block now comes from rr1, the next hop still being its originator.
        for e in sim
            .loc_rib(c)
            .unwrap()
            .iter()
            .filter(|e| e.learned_from.is_some())
        {
            assert_eq!(e.learned_from, Some(addr(1)), "{c}: {e:?}");
        }
    }

    // Only rr0's own block left the survivors' tables; the others failed over with the
    // same next hop.
    let rr0_block: ipnet::IpNet = sim.topology().nodes[0].originate[0].into();
    assert_eq!(sim.fib_removals().len(), n - 1);
    assert!(sim.fib_removals().iter().all(|r| r.prefix == rr0_block));

    sim.restart(RR0).unwrap();
    converge(&mut sim);
    assert_healthy(&sim);
    assert_full_reachability(&sim);
    assert_eq!(sim.loc_ribs(), before);
}

#[test]
fn reflector_graceful_restart_keeps_its_paths_stale_then_refreshes_them() {
    let clients = 30;
    let n = clients + 2;
    let topo = Topology::route_reflection(2, clients, CLUSTER);
    let mut sim = Sim::new(topo, SimConfig::new(32).with_graceful_restart()).unwrap();
    converge(&mut sim);
    let before = sim.loc_ribs();

    sim.crash(RR0).unwrap();
    sim.run_for(Duration::from_secs(30));
    assert_peers_saw_close(&sim, RR0, n - 1);
    let rr1_block: ipnet::IpNet = sim.topology().nodes[1].originate[0].into();
    for c in 2..n {
        let rib = sim.loc_rib(NodeId(c)).unwrap();
        // All blocks, rr0's included, are still there; the paths from rr0 (preferred by
        // peer address) are stale but still best. rr1's own block is best from rr1.
        assert_eq!(rib.len(), n, "node{c}");
        for e in rib.iter().filter(|e| e.learned_from.is_some()) {
            if e.prefix == rr1_block {
                assert_eq!((e.learned_from, e.stale), (Some(addr(1)), false), "{e:?}");
            } else {
                assert_eq!(
                    (e.learned_from, e.stale),
                    (Some(addr(0)), true),
                    "node{c}: {e:?}"
                );
            }
        }
    }

    // rr0 comes back and defers its routes until every client and rr1 sent End-of-RIB
    // (RFC 4724 4.1), so it never hands a client a partial table followed by End-of-RIB
    // (which would sweep the stale paths and flip clients to rr1 and back). The only
    // best-path changes are rr0 installing the n blocks: the clients' stale paths turn
    // fresh in place.
    let changes = sim.stats().loc_rib_changes;
    sim.restart(RR0).unwrap();
    converge(&mut sim);
    assert_healthy(&sim);
    assert_full_reachability(&sim);
    assert_eq!(sim.loc_ribs(), before);
    assert!(sim.fib_removals().is_empty(), "{:?}", sim.fib_removals());
    assert_eq!(sim.stats().loc_rib_changes - changes, n as u64);
}

/// Crash and restart random nodes at random moments, without waiting for convergence in
/// between (restarts while peers still hold stale routes, before they even noticed the
/// crash, crashes during graceful restart): the cluster always ends where it started.
fn churn(topo: Topology, cfg: SimConfig, rounds: usize) {
    let mut rng = bgp_sim::Rng::new(cfg.seed ^ 0x5eed);
    let n = topo.nodes.len();
    let mut sim = Sim::new(topo, cfg).unwrap();
    converge(&mut sim);
    let before = sim.loc_ribs();
    for _ in 0..rounds {
        let victim = NodeId(rng.below(n as u64) as usize);
        sim.crash(victim).unwrap();
        sim.run_for(rng.duration(Duration::ZERO, Duration::from_secs(30)));
        sim.restart(victim).unwrap();
        sim.run_for(rng.duration(Duration::ZERO, Duration::from_secs(10)));
    }
    converge(&mut sim);
    assert_healthy(&sim);
    assert_full_reachability(&sim);
    assert_eq!(sim.loc_ribs(), before);
}

#[test]
fn random_crash_and_restart_sequences_converge_back() {
    for seed in [41, 42, 43] {
        churn(Topology::full_mesh(8), SimConfig::new(seed), 6);
        churn(
            Topology::full_mesh(8),
            SimConfig::new(seed).with_graceful_restart(),
            6,
        );
        let rr = || Topology::route_reflection(2, 10, CLUSTER);
        churn(rr(), SimConfig::new(seed), 6);
        churn(rr(), SimConfig::new(seed).with_graceful_restart(), 6);
    }
}
