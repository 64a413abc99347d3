//! Prefix limits (RFC 4271 8.1.2, RFC 4486): a peer sending more prefixes than its limit
//! gets Cease / Maximum Number of Prefixes Reached, its routes leave the Loc-RIB, and the
//! session starts again a minute later (to be closed again while the peer still sends too
//! many); with the warning action the session stays and every route is used.

mod common;

use std::time::Duration;

use bgp_node::rib::MAX_PREFIX_RESTART;
use bgp_proto::notification_code as nc;
use bgp_proto::session::{DownReason, State};
use bgp_sim::{MaxPrefixAction, MaxPrefixes, NodeId, Sim, SimConfig, Topology};
use common::*;

/// The node sending too many prefixes, and the two that limit it.
const BIG: NodeId = NodeId(0);
const SMALL: [NodeId; 2] = [NodeId(1), NodeId(2)];
const LIMIT: u32 = 5;

/// Three nodes; the first originates twice the limit.
fn topology() -> Topology {
    let mut t = Topology::full_mesh(3);
    t.nodes[BIG.0]
        .originate
        .extend((1..2 * LIMIT as usize).map(|i| Topology::block(1000 + i)));
    t
}

fn limited(seed: u64, action: MaxPrefixAction) -> SimConfig {
    let mut cfg = SimConfig::new(seed);
    cfg.max_prefixes = Some(MaxPrefixes {
        limit: LIMIT,
        action,
    });
    cfg
}

/// The session was closed by us with Cease / Maximum Number of Prefixes Reached.
fn is_max_prefix_cease(reason: &DownReason) -> bool {
    matches!(reason, DownReason::AdminStop(Some(n))
        if n.code == nc::CEASE && n.subcode == nc::CEASE_MAX_PREFIXES)
}

#[test]
fn a_peer_over_its_limit_is_closed_and_retried_a_minute_later() {
    for seed in 1..=4 {
        let mut sim = Sim::new(topology(), limited(seed, MaxPrefixAction::Teardown)).unwrap();
        sim.run_for(Duration::from_secs(30));
        assert_healthy(&sim);
        for node in SMALL {
            assert_ne!(sim.session_state(node, BIG), Some(State::Established));
            assert_holds_blocks(&sim, node, &SMALL);
            let downs: Vec<_> = sim
                .session_downs()
                .iter()
                .filter(|d| d.node == node && d.peer == BIG)
                .collect();
            assert_eq!(downs.len(), 1, "seed {seed}: {downs:?}");
            assert!(is_max_prefix_cease(&downs[0].reason), "{downs:?}");
            // The limited node saw the Cease (no Hard Reset without graceful restart).
            assert!(sim.session_downs().iter().any(|d| d.node == BIG
                && d.peer == node
                && matches!(&d.reason, DownReason::NotificationReceived(n)
                    if n.subcode == nc::CEASE_MAX_PREFIXES)));
        }
        // The sessions between the two others are untouched; BIG lost theirs.
        assert_eq!(
            sim.session_state(SMALL[0], SMALL[1]),
            Some(State::Established)
        );
        assert_holds_blocks(&sim, BIG, &[BIG]);
        // A minute after each teardown the session comes back, and is closed again.
        let first = sim.session_downs().len();
        sim.run_for(MAX_PREFIX_RESTART);
        let again = sim.session_downs()[first..]
            .iter()
            .filter(|d| SMALL.contains(&d.node) && is_max_prefix_cease(&d.reason))
            .count();
        assert_eq!(again, SMALL.len(), "seed {seed}: {:?}", sim.session_downs());
        for node in SMALL {
            assert_holds_blocks(&sim, node, &SMALL);
        }
        assert_healthy(&sim);
    }
}

#[test]
fn the_warning_action_keeps_the_session_and_the_routes() {
    for seed in 1..=4 {
        let mut sim = Sim::new(topology(), limited(seed, MaxPrefixAction::Warn)).unwrap();
        converge(&mut sim);
        assert_healthy(&sim);
        assert_full_reachability(&sim);
        assert!(sim.session_downs().is_empty(), "{:?}", sim.session_downs());
    }
}
