//! A network partition between two nodes: their sessions end on hold timer expiry
//! (RFC 4271 6.5), the routes they exchanged are withdrawn, or kept stale when graceful
//! restart with the N bit covers hold timer expiry (RFC 8538), and everything comes back
//! once the network heals.

mod common;

use std::time::Duration;

use bgp_proto::session::DownReason;
use bgp_sim::{NodeId, Sim, SimConfig, Topology};
use common::*;

const A: NodeId = NodeId(0);
const B: NodeId = NodeId(1);
const N: usize = 6;

fn partitioned(cfg: SimConfig) -> (Sim, Vec<Option<Vec<bgp_sim::LocRibEntry>>>) {
    let mut sim = Sim::new(Topology::full_mesh(N), cfg).unwrap();
    converge(&mut sim);
    let before = sim.loc_ribs();
    sim.partition(A, B).unwrap();
    // Past the 90 s hold time, short of the 120 s restart time.
    sim.run_for(Duration::from_secs(100));
    let downs = sim.session_downs();
    assert_eq!(downs.len(), 2, "{downs:?}");
    for d in downs {
        assert!([(A, B), (B, A)].contains(&(d.node, d.peer)), "{d:?}");
        assert_eq!(d.reason, DownReason::HoldTimerExpired);
    }
    assert!(!sim.is_converged());
    (sim, before)
}

fn heal_and_converge(mut sim: Sim, before: Vec<Option<Vec<bgp_sim::LocRibEntry>>>) -> Sim {
    sim.heal(A, B);
    converge(&mut sim);
    assert_healthy(&sim);
    assert_full_reachability(&sim);
    assert_eq!(sim.loc_ribs(), before);
    sim
}

#[test]
fn partition_without_graceful_restart_withdraws_then_recovers() {
    let (sim, before) = partitioned(SimConfig::new(51));
    let all: Vec<NodeId> = (0..N).map(NodeId).collect();
    let without = |x: NodeId| all.iter().copied().filter(|&n| n != x).collect::<Vec<_>>();
    assert_holds_blocks(&sim, A, &without(B));
    assert_holds_blocks(&sim, B, &without(A));
    for n in 2..N {
        assert_holds_blocks(&sim, NodeId(n), &all);
    }
    let sim = heal_and_converge(sim, before);
    assert_eq!(sim.fib_removals().len(), 2, "{:?}", sim.fib_removals());
}

#[test]
fn partition_with_graceful_restart_keeps_the_routes_stale() {
    let (sim, before) = partitioned(SimConfig::new(52).with_graceful_restart());
    let block_a = sim.topology().nodes[A.0].originate[0];
    let block_b = sim.topology().nodes[B.0].originate[0];
    for (node, block, via) in [(B, block_a, A), (A, block_b, B)] {
        let e = best(&sim, node, block).unwrap_or_else(|| panic!("{node} lost {block}"));
        assert!(e.stale, "{e:?}");
        assert_eq!(e.next_hop, Some(addr(via.0)));
    }
    let sim = heal_and_converge(sim, before);
    assert!(sim.fib_removals().is_empty(), "{:?}", sim.fib_removals());
}

#[test]
fn a_partition_that_heals_before_the_hold_time_is_invisible() {
    let mut sim = Sim::new(Topology::full_mesh(N), SimConfig::new(53)).unwrap();
    converge(&mut sim);
    let before = sim.loc_ribs();
    let stats = sim.stats().clone();
    sim.partition(A, B).unwrap();
    sim.run_for(Duration::from_secs(60));
    sim.heal(A, B);
    converge(&mut sim);
    assert!(sim.session_downs().is_empty(), "{:?}", sim.session_downs());
    assert_eq!(sim.loc_ribs(), before);
    assert_eq!(sim.stats().loc_rib_changes, stats.loc_rib_changes);
    assert!(sim.stats().dropped_segments == stats.dropped_segments);
}

#[test]
fn random_partitions_with_short_hold_times_and_slow_links_converge_back() {
    for seed in [61, 62, 63, 64] {
        for graceful in [false, true] {
            let mut cfg = SimConfig::new(seed);
            if graceful {
                cfg = cfg.with_graceful_restart();
            }
            cfg.hold_time = 3;
            cfg.link.max_latency = Duration::from_millis(300);
            let mut rng = bgp_sim::Rng::new(seed);
            let mut sim = Sim::new(Topology::full_mesh(N), cfg).unwrap();
            converge(&mut sim);
            let before = sim.loc_ribs();
            for _ in 0..8 {
                let a = NodeId(rng.below(N as u64) as usize);
                let b = NodeId((a.0 + 1 + rng.below(N as u64 - 1) as usize) % N);
                sim.partition(a, b).unwrap();
                sim.run_for(rng.duration(Duration::ZERO, Duration::from_secs(10)));
                sim.heal(a, b);
                sim.run_for(rng.duration(Duration::ZERO, Duration::from_secs(2)));
            }
            converge(&mut sim);
            assert_healthy(&sim);
            assert_full_reachability(&sim);
            assert_eq!(sim.loc_ribs(), before, "seed {seed}, graceful {graceful}");
            assert!(
                !sim.session_downs().is_empty(),
                "some partition outlived the hold time"
            );
        }
    }
}
