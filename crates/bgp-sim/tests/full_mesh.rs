//! iBGP full mesh (Calico's default node-to-node mesh): convergence, next hops, stability,
//! and independence from the order in which the network delivers things.

mod common;

use std::time::Duration;

use bgp_proto::session::State;
use bgp_sim::{NodeId, Sim, SimConfig, Topology};
use common::*;

#[test]
fn fifty_node_mesh_every_node_holds_all_blocks_via_their_originators() {
    let n = 50;
    let mut sim = Sim::new(Topology::full_mesh(n), SimConfig::new(1)).unwrap();
    let done = converge(&mut sim);
    assert_healthy(&sim);
    assert_full_reachability(&sim);
    assert!(sim.session_downs().is_empty(), "{:?}", sim.session_downs());
    let stats = sim.stats().clone();
    assert_eq!(stats.sessions_established, (n * (n - 1)) as u64);
    // Each node sends its block and an End-of-RIB on each of its 49 sessions, and no
    // iBGP-learned route is passed on to another iBGP peer (RFC 4271 9.2 split horizon).
    assert_eq!(stats.updates_received, (n * (n - 1)) as u64);
    assert_eq!(stats.end_of_ribs_received, (n * (n - 1)) as u64);
    assert_eq!(
        sim.session_state(NodeId(0), NodeId(49)),
        Some(State::Established)
    );

    // Converged means stable: three hold times of keepalives later nothing has changed
    // and no session dropped.
    let before = sim.loc_ribs();
    sim.run_for(Duration::from_secs(270));
    assert!(sim.is_converged(), "{}", sim.why_not_converged());
    assert_eq!(sim.loc_ribs(), before);
    assert_eq!(sim.stats().updates_received, stats.updates_received);
    assert_eq!(sim.stats().loc_rib_changes, stats.loc_rib_changes);
    assert!(sim.session_downs().is_empty());
    assert!(
        sim.stats().segments > stats.segments,
        "keepalives kept flowing"
    );
    assert!(sim.now() > done.at + Duration::from_secs(269));
}

#[test]
fn delivery_order_does_not_change_the_loc_ribs() {
    let run = |seed: u64| {
        let mut cfg = SimConfig::new(seed);
        cfg.start_jitter = Duration::from_millis(20);
        cfg.link.split_percent = 50;
        let mut sim = Sim::new(Topology::full_mesh(20), cfg).unwrap();
        let done = converge(&mut sim);
        assert_healthy(&sim);
        assert_full_reachability(&sim);
        (sim.loc_ribs(), done.at, sim.stats().segments)
    };
    let (reference, at, segments) = run(1);
    let mut timings = vec![(at, segments)];
    for seed in [2, 3, 4, 5, 0xdead_beef] {
        let (ribs, at, segments) = run(seed);
        assert_eq!(
            ribs, reference,
            "seed {seed} converged to different Loc-RIBs"
        );
        timings.push((at, segments));
    }
    // The seeds did produce different runs.
    timings.sort();
    timings.dedup();
    assert!(timings.len() > 1, "all seeds ran identically: {timings:?}");
}

#[test]
fn a_seed_reproduces_its_run_exactly() {
    let run = || {
        let mut cfg = SimConfig::new(77);
        cfg.start_jitter = Duration::from_millis(20);
        let mut sim = Sim::new(Topology::full_mesh(8), cfg).unwrap();
        let done = converge(&mut sim);
        (done, sim.stats().clone(), sim.loc_ribs())
    };
    assert_eq!(run(), run());
}

#[test]
fn late_starters_are_retried_until_the_mesh_is_complete() {
    // With nodes starting up to a second apart, early connection attempts are refused and
    // retried after 1 s, 2 s, ... rather than ConnectRetryTime: the mesh converges well
    // before one ConnectRetryTime has passed.
    let mut cfg = SimConfig::new(9);
    cfg.start_jitter = Duration::from_secs(1);
    let mut sim = Sim::new(Topology::full_mesh(6), cfg).unwrap();
    let done = converge(&mut sim);
    assert_healthy(&sim);
    assert_full_reachability(&sim);
    assert!(
        done.at < sim.config().connect_retry,
        "a refused attempt waits for the whole retry timer: {done:?}"
    );
}

#[test]
fn rib_work_costs_virtual_time_but_does_not_change_the_outcome() {
    let n = 10;
    let run = |cpu: bgp_sim::CpuModel| {
        let mut cfg = SimConfig::new(3);
        cfg.cpu = cpu;
        let mut sim = Sim::new(Topology::full_mesh(n), cfg).unwrap();
        let done = converge(&mut sim);
        assert_full_reachability(&sim);
        (done, sim.loc_ribs())
    };
    let (free, ribs) = run(bgp_sim::CpuModel::default());
    let per_update = Duration::from_millis(1);
    let (costly, costly_ribs) = run(bgp_sim::CpuModel {
        per_update_received: per_update,
        per_update_sent: per_update,
    });
    assert_eq!(costly_ribs, ribs);
    // Each node's RIB worker encodes its block and End-of-RIB for its 9 peers one after
    // the other, starting at time 0 at the earliest: the last can leave no earlier than
    // 18 ms in.
    let sent = 2 * (n as u32 - 1);
    assert!(costly.at >= per_update * sent, "{costly:?}");
    assert!(costly.at > free.at, "{free:?} vs {costly:?}");
    assert!(costly.last_loc_rib_change > free.last_loc_rib_change);
    assert!(costly.at >= costly.last_loc_rib_change);
}
