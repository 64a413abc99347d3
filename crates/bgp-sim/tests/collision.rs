//! Connection collisions (RFC 4271 6.8): with both ends of every session connecting, the
//! two connections of a pair of nodes cross and the peer drivers keep one. Whichever is
//! kept, both ends end on the same connection, each end reports one session up, none is
//! lost, and the cluster converges to the Loc-RIBs it reaches with one passive end, within
//! a few seconds of simulated time.

mod common;

use std::time::Duration;

use bgp_sim::{NodeId, Sim, SimConfig, Topology};
use common::*;

const N: usize = 6;

#[test]
fn crossing_connections_leave_one_session_per_pair() {
    let pairs = (N * (N - 1) / 2) as u64;
    for seed in 1..=8 {
        let mut cfg = SimConfig::new(seed);
        cfg.both_active = true;
        let mut sim = Sim::new(Topology::full_mesh(N), cfg).unwrap();
        let c = converge(&mut sim);
        // Crossing attempts can leave both ends without a connection (each took the
        // peer's and abandoned its own); the retry after a connection closed before any
        // OPEN is ~1 s, not the connect-retry backoff (7.5-10 s).
        assert!(
            c.at < Duration::from_secs(3),
            "seed {seed}: converged at {:?}",
            c.at
        );
        assert_healthy(&sim);
        assert_full_reachability(&sim);
        let s = sim.stats();
        assert!(
            s.connections > pairs,
            "seed {seed}: no two connections met ({s:?})"
        );
        // Each end told its RIB of one session, and none went down.
        assert_eq!(s.sessions_established, 2 * pairs, "seed {seed}: {s:?}");
        assert!(sim.session_downs().is_empty(), "{:?}", sim.session_downs());
        for a in (0..N).map(NodeId) {
            for b in (0..N).map(NodeId).filter(|b| *b != a) {
                let opener = sim.connection_opener(a, b);
                assert!(
                    opener.is_some(),
                    "seed {seed}: {a} has not one connection to {b}"
                );
                assert_eq!(opener, sim.connection_opener(b, a), "seed {seed}: {a}, {b}");
                let status = sim.peer_status(a, b).expect("running");
                assert_eq!(status.counters.established_transitions, 1);
            }
        }

        // Same Loc-RIBs as with one passive end per session.
        let mut one_active = Sim::new(Topology::full_mesh(N), SimConfig::new(seed)).unwrap();
        converge(&mut one_active);
        assert_eq!(sim.loc_ribs(), one_active.loc_ribs(), "seed {seed}");
    }
}
