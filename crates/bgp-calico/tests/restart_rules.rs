//! Calico mode's graceful restart rules in the rendered configuration (docs/calico.md,
//! "Restarts and departures"): a stop is a restart for every peer, no routes are kept at
//! hold expiry, no restart time (ours or a peer's) runs beyond the hold time, and a
//! restart waits for absent peers at most four connect-retry intervals. A BGPPeer's
//! `maxRestartTime` stays the operator's choice, both ways.

use bgp_calico::derive::config::RenderOptions;
use bgp_calico::derive::NodeEnv;
use bgp_calico::render::render;
use bgp_calico::resource::{decode, Decoded, Resource};
use bgp_calico::store::ResourceStore;
use bgp_speaker::config::OnStop;
use serde_json::{json, Value};

fn res(v: Value) -> Resource {
    match decode(v).expect("test resources decode") {
        Decoded::Resources(mut r) => r.remove(0),
        Decoded::Ignored { .. } => panic!("ignored"),
    }
}

fn node(name: &str, addr: &str) -> Resource {
    res(json!({"kind": "Node", "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": name},
        "spec": {"bgp": {"ipv4Address": addr}}}))
}

fn store() -> ResourceStore {
    ResourceStore::from_resources([
        node("a", "10.0.0.1/24"),
        node("b", "10.0.0.2/24"),
        node("c", "10.0.0.3/24"),
        res(
            json!({"kind": "BGPPeer", "apiVersion": "projectcalico.org/v3",
            "metadata": {"name": "slow"},
            "spec": {"node": "a", "peerIP": "10.0.0.9", "asNumber": 64512,
                     "maxRestartTime": "300s"}}),
        ),
    ])
}

fn options(hold_time: u16) -> RenderOptions {
    RenderOptions {
        control_socket: None,
        bird_socket: None,
        bird6_socket: None,
        hold_time,
    }
}

#[test]
fn calico_mode_restarts_keep_forwarding_and_departures_do_not_linger() {
    let env = NodeEnv::from_vars(Some("a".into()), |_| None).expect("env");
    for (hold, bound, absent) in [(240, 120, 20), (9, 9, 9), (30, 30, 20), (0, 120, 20)] {
        let cfg = render(&store(), &env, &options(hold))
            .expect("renders")
            .config;
        let g = &cfg.global.graceful_restart;
        assert_eq!(g.absent_peer_wait, absent, "hold {hold}");
        for (name, p) in &cfg.peers {
            let gr = &p.graceful_restart;
            assert!(gr.enabled, "{name}");
            assert_eq!(gr.on_stop, OnStop::Restart, "{name}");
            assert!(!gr.retain_on_hold_expiry, "{name}");
            let want = if name.starts_with("Node_") {
                300
            } else {
                bound
            };
            // The BGPPeer's maxRestartTime is taken both ways.
            assert_eq!(gr.restart_time, want, "{name}, hold {hold}");
            assert_eq!(gr.max_restart_time, want, "{name}, hold {hold}");
        }
        assert_eq!(cfg.peers.len(), 3, "two mesh sessions and the BGPPeer");
    }
}
