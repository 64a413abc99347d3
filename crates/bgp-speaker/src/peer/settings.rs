//! What a peer's configuration turns into: the node layer's [`PeerSettings`] (from which
//! `bgp-node` builds our OPEN and the RIB's view of the peer, as it does for the
//! simulator) and the socket options (TCP-MD5, TTL, GTSM, source address), which only
//! the daemon has.

use std::time::Duration;

use bgp_node::settings::{GracefulRestartSettings, MaxPrefixAction, MaxPrefixes};
use bgp_node::{Identity, PeerSettings};
use bgp_proto::AddPathMode;
use bgp_rib::AddPathSend;

use super::PeerEnv;
use crate::config::{self, AddPathConfig, GlobalConfig, NextHopMode, PeerConfig};
use crate::net;

/// The node's identity as every peer's OPEN gives it.
pub(crate) fn identity(env: &PeerEnv) -> Identity {
    Identity {
        local_as: env.global.asn,
        router_id: env.global.router_id,
        restarting: env.restarting,
        forwarding_preserved: env.forwarding_preserved,
    }
}

/// The node layer's settings for a configured peer.
pub(crate) fn peer_settings(cfg: &PeerConfig) -> PeerSettings {
    let gr = &cfg.graceful_restart;
    let mut s = PeerSettings::new(cfg.name.clone(), cfg.address.addr, cfg.remote_as);
    s.local_as = cfg.local_as;
    s.passive = cfg.passive;
    s.disabled = cfg.disabled;
    s.hold_time = cfg.hold_time;
    s.keepalive = Some(cfg.keepalive);
    s.connect_retry = Duration::from_secs(u64::from(cfg.connect_retry.max(1)));
    s.families = cfg.families.clone();
    s.add_path = match cfg.add_path {
        AddPathConfig::Off => None,
        AddPathConfig::Receive => Some(AddPathMode::Receive),
        AddPathConfig::Send => Some(AddPathMode::Send),
        AddPathConfig::Both => Some(AddPathMode::Both),
    };
    s.graceful_restart = GracefulRestartSettings {
        enabled: gr.enabled,
        restart_time: gr.restart_time,
        notification: gr.notification,
        long_lived_stale_time: gr.long_lived_stale_time,
        max_restart_time: gr.max_restart_time,
        max_long_lived_stale_time: gr.max_long_lived_stale_time,
        retain_on_hold_expiry: gr.retain_on_hold_expiry,
    };
    s.extended_next_hop = cfg.extended_next_hop;
    s.enhanced_route_refresh = true;
    s.extended_message = true;
    s.max_prefixes = cfg.max_prefixes.map(|m| MaxPrefixes {
        limit: m.limit,
        action: match m.action {
            config::MaxPrefixAction::Warn => MaxPrefixAction::Warn,
            config::MaxPrefixAction::Teardown => MaxPrefixAction::Teardown,
        },
    });
    s.rr_client = cfg.route_reflector_client;
    s.cluster_id = cfg.cluster_id;
    s.allow_local_as = cfg.allow_local_as;
    s.next_hop = match cfg.next_hop {
        NextHopMode::Auto => bgp_rib::NextHopMode::Auto,
        NextHopMode::SelfAddr => bgp_rib::NextHopMode::SelfAlways,
        NextHopMode::Keep => bgp_rib::NextHopMode::Keep,
    };
    s.add_path_send = AddPathSend::All;
    s.add_path_receive_limit = cfg.add_path_receive_limit as usize;
    s.import = cfg.import.clone();
    s.export = cfg.export.clone();
    s
}

/// Socket options for the peer's connections.
pub(crate) fn socket_options(cfg: &PeerConfig, global: &GlobalConfig) -> net::SocketOptions {
    net::SocketOptions {
        md5_key: cfg.password.as_ref().map(|p| p.as_bytes().to_vec()),
        ttl: Some(cfg.ttl(global)),
        min_ttl: cfg.min_ttl(),
        source: cfg.source_address,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    /// The OPEN and the RIB view of a configured peer are what they were before the node
    /// layer built them: every capability the daemon announces, the peer's limits and
    /// RIB settings.
    #[test]
    fn a_configured_peer_keeps_its_open_and_rib_view() {
        let mut cfg = PeerConfig::new("p", "192.0.2.2".parse().expect("address"), 65000);
        cfg.keepalive = 7;
        cfg.connect_retry = 0;
        cfg.add_path = AddPathConfig::Both;
        cfg.route_reflector_client = true;
        cfg.next_hop = NextHopMode::SelfAddr;
        cfg.add_path_receive_limit = 16;
        let global = GlobalConfig {
            asn: 64512,
            router_id: "192.0.2.1".parse().expect("id"),
            ..config::from_str(
                "[global]\nasn = 64512\nrouter_id = \"192.0.2.1\"\n",
                std::path::Path::new("t.toml"),
            )
            .expect("config")
            .global
        };
        let env = PeerEnv {
            global: Arc::new(global),
            restarting: true,
            forwarding_preserved: true,
        };
        let s = peer_settings(&cfg);
        let sc = s.session_config(&identity(&env), false);
        assert_eq!(sc.keepalive_time, Some(7));
        assert_eq!(sc.connect_retry, Duration::from_secs(1));
        assert!(sc.capabilities.route_refresh && sc.capabilities.enhanced_route_refresh);
        assert!(sc.capabilities.extended_message);
        assert_eq!(sc.capabilities.add_path.len(), cfg.families.len());
        let gr = sc.capabilities.graceful_restart.expect("on by default");
        assert!(gr.restart_state && gr.notification);
        let rc = s.rib_peer_config(&BTreeMap::new(), 64512);
        assert!(rc.rr_client);
        assert_eq!(rc.next_hop, bgp_rib::NextHopMode::SelfAlways);
        assert_eq!(rc.add_path_send, AddPathSend::All);
        assert_eq!(rc.add_path_receive_limit, 16);
        // eBGP without policies: nothing in, nothing out (RFC 8212).
        assert!(!rc.import.is_accept_all() && !rc.export.is_accept_all());
    }
}
