//! What a peer's configuration turns into on the wire and on its sockets: the
//! [`SessionConfig`] (our OPEN: timers and capabilities) and the socket options (TCP-MD5,
//! TTL, GTSM, source address).

use std::time::Duration;

use bgp_proto::session::{LocalCapabilities, SessionConfig};
use bgp_proto::{AddPathMode, Family, GracefulRestart, GracefulRestartFamily, LlgrFamily};

use super::PeerEnv;
use crate::config::{AddPathConfig, GlobalConfig, PeerConfig};
use crate::net;

/// The session configuration for a peer (what goes into our OPEN).
pub(crate) fn session_config(cfg: &PeerConfig, env: &PeerEnv, passive: bool) -> SessionConfig {
    let g = &env.global;
    let mut sc = SessionConfig::new(cfg.local_as(g), g.router_id, Some(cfg.remote_as));
    sc.hold_time = cfg.hold_time;
    sc.keepalive_time = Some(cfg.keepalive);
    sc.connect_retry = Duration::from_secs(u64::from(cfg.connect_retry.max(1)));
    sc.connect_retry_max = sc.connect_retry.max(Duration::from_secs(120));
    sc.passive = passive;
    let mode = match cfg.add_path {
        AddPathConfig::Off => None,
        AddPathConfig::Receive => Some(AddPathMode::Receive),
        AddPathConfig::Send => Some(AddPathMode::Send),
        AddPathConfig::Both => Some(AddPathMode::Both),
    };
    let gr = &cfg.graceful_restart;
    sc.capabilities = LocalCapabilities {
        families: cfg.families.clone(),
        route_refresh: true,
        enhanced_route_refresh: true,
        add_path: mode
            .map(|m| cfg.families.iter().map(|f| (*f, m)).collect())
            .unwrap_or_default(),
        // RFC 4724 section 3: restart state and per-family forwarding state.
        graceful_restart: gr.enabled.then(|| GracefulRestart {
            restart_state: env.restarting,
            notification: gr.notification,
            restart_time: gr.restart_time.min(4095),
            families: cfg
                .families
                .iter()
                .map(|f| GracefulRestartFamily {
                    family: *f,
                    forwarding_preserved: env.forwarding_preserved,
                })
                .collect(),
        }),
        long_lived_gr: if gr.enabled && gr.long_lived_stale_time > 0 {
            cfg.families
                .iter()
                .map(|f| LlgrFamily {
                    family: *f,
                    forwarding_preserved: env.forwarding_preserved,
                    stale_time: gr.long_lived_stale_time,
                })
                .collect()
        } else {
            Vec::new()
        },
        extended_message: true,
        // RFC 8950 4: IPv4 unicast NLRI with IPv6 next hops.
        extended_next_hop: if cfg.extended_next_hop {
            vec![(Family::IPV4_UNICAST, bgp_proto::Afi::IPV6)]
        } else {
            Vec::new()
        },
        ..LocalCapabilities::default()
    };
    sc
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
