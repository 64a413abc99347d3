//! A resolved [`Config`] written back in the file schema with nothing left implicit: no
//! templates, every default filled in, each peer's `local_as` the AS it uses. Tools that
//! read a configuration (`bgpd calico render --format json`) get every peer's effective
//! settings without re-implementing template inheritance and defaults, and the result
//! loads as a configuration that runs the same. (`multihop` stays unset where it was:
//! unset means "directly connected" to GTSM, which no number says.)

use toml::Spanned;

use super::file::{
    ControlFile, FileConfig, GlobalFile, GracefulRestartFile, MaxPrefixesFile, MetricsFile,
    OriginateFile, PeerFile,
};
use super::types::{CommunityValue, FamilyName, LargeCommunityValue, ListenAddr};
use super::{BirdFormat, Config, GlobalConfig, GracefulRestartConfig, PeerConfig, BGP_PORT};
use bgp_proto::Family;

fn sp<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}

fn gr(g: &GracefulRestartConfig) -> GracefulRestartFile {
    GracefulRestartFile {
        enabled: Some(g.enabled),
        restart_time: Some(g.restart_time),
        stale_time: Some(g.stale_time),
        long_lived_stale_time: Some(g.long_lived_stale_time),
        notification: Some(g.notification),
        max_restart_time: Some(g.max_restart_time),
        max_long_lived_stale_time: Some(g.max_long_lived_stale_time),
        retain_on_hold_expiry: Some(g.retain_on_hold_expiry),
        on_stop: Some(g.on_stop),
        absent_peer_wait: Some(g.absent_peer_wait),
    }
}

fn family_name(f: Family) -> Option<FamilyName> {
    if f == Family::IPV4_UNICAST {
        Some(FamilyName::Ipv4)
    } else if f == Family::IPV6_UNICAST {
        Some(FamilyName::Ipv6)
    } else {
        None
    }
}

fn peer(p: &PeerConfig, global: &GlobalConfig) -> PeerFile {
    PeerFile {
        template: None,
        description: p.description.clone(),
        address: Some(sp(p.address.clone())),
        remote_as: Some(p.remote_as),
        local_as: Some(p.local_as(global)),
        port: Some(p.port),
        passive: Some(p.passive),
        disabled: Some(p.disabled),
        password: p.password.clone(),
        hold_time: Some(sp(p.hold_time)),
        keepalive: Some(p.keepalive),
        connect_retry: Some(p.connect_retry),
        ttl_security: Some(p.ttl_security),
        multihop: p.multihop.map(sp),
        source_address: p.source_address,
        route_reflector_client: Some(p.route_reflector_client),
        cluster_id: p.cluster_id,
        allow_local_as: Some(p.allow_local_as),
        next_hop: Some(p.next_hop),
        add_path: Some(p.add_path),
        add_path_receive_limit: Some(p.add_path_receive_limit),
        extended_next_hop: Some(p.extended_next_hop),
        graceful_restart: Some(gr(&p.graceful_restart)),
        families: Some(p.families.iter().filter_map(|f| family_name(*f)).collect()),
        import: Some(p.import.iter().cloned().map(sp).collect()),
        export: Some(p.export.iter().cloned().map(sp).collect()),
        max_prefixes: p.max_prefixes.map(|m| MaxPrefixesFile {
            limit: m.limit,
            action: m.action,
        }),
        bfd: p.bfd.as_ref().map(|b| sp(b.to_file())),
    }
}

/// `cfg` with every setting explicit (see the module documentation).
pub fn explicit(cfg: &Config) -> FileConfig {
    let g = &cfg.global;
    let c = &g.control;
    let global = GlobalFile {
        asn: g.asn,
        router_id: g.router_id,
        listen: Some(
            g.listen
                .iter()
                .map(|a| {
                    sp(ListenAddr {
                        addr: a.ip(),
                        port: Some(a.port()),
                    })
                })
                .collect(),
        ),
        listen_port: Some(g.listen.first().map_or(BGP_PORT, |a| a.port())),
        cluster_id: g.cluster_id,
        include_dir: g.include_dir.clone(),
        max_paths: Some(g.max_paths),
        control: Some(ControlFile {
            socket: c.socket.clone(),
            mode: Some(sp(format!("{:04o}", c.mode))),
            enabled: Some(c.socket.is_some()),
            bird_socket: c.bird.socket.clone(),
            bird6_socket: c.bird.socket6.clone(),
            bird_format: Some(sp(match c.bird.format {
                BirdFormat::Bird1 => "bird1".to_owned(),
                BirdFormat::Bird2 => "bird2".to_owned(),
            })),
            bird_mode: Some(sp(format!("{:04o}", c.bird.mode))),
            group: c.group.clone().map(sp),
            max_connections: Some(sp(c.limits.max_connections)),
            // One `timeout` sets both the idle and the write limit; the defaults differ,
            // so it is written only when the limits are not the defaults.
            timeout: (c.limits != super::ControlLimits::default())
                .then_some(c.limits.idle.as_secs()),
        }),
        metrics: g.metrics.map(|m| MetricsFile {
            listen: sp(m.listen.to_string()),
        }),
        graceful_restart: Some(gr(&g.graceful_restart)),
        user: g.user.clone(),
        group: g.group.clone(),
    };
    FileConfig {
        global: Some(sp(global)),
        templates: Default::default(),
        peers: cfg
            .peers
            .iter()
            .map(|(n, p)| (sp(n.clone()), peer(p, g)))
            .collect(),
        policies: cfg
            .policies
            .iter()
            .map(|(n, p)| (sp(n.clone()), p.clone()))
            .collect(),
        originate: cfg
            .originate
            .values()
            .map(|o| {
                sp(OriginateFile {
                    prefix: sp(o.prefix),
                    no_install: o.no_install,
                    next_hop: o.next_hop,
                    communities: o.communities.iter().map(|c| CommunityValue(*c)).collect(),
                    large_communities: o
                        .large_communities
                        .iter()
                        .map(|c| LargeCommunityValue(*c))
                        .collect(),
                    local_pref: o.local_pref,
                    med: o.med,
                })
            })
            .collect(),
        kernel: cfg.kernel.clone(),
        bmp: cfg.bmp.iter().map(|b| sp(b.to_file())).collect(),
        mrt: cfg.mrt.as_ref().map(|m| sp(m.to_file())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::from_str;
    use super::*;
    use std::path::Path;

    #[test]
    fn explicit_form_resolves_templates_and_loads_back_the_same() {
        let text = r#"
[global]
asn = 64512
router_id = "10.0.0.1"
listen_port = 1790
[global.control]
socket = "/tmp/x.sock"
[global.metrics]
listen = "[::1]:9179"
[templates.t]
remote_as = 64512
hold_time = 30
add_path = "both"
[peers.a]
template = "t"
address = "10.0.0.2"
[policies.p]
default = "accept"
[[originate]]
prefix = "10.1.0.0/26"
"#;
        let cfg = from_str(text, Path::new("t.toml")).unwrap();
        let e = explicit(&cfg);
        assert!(e.templates.is_empty());
        let a = e.peers.values().next().unwrap();
        assert_eq!(a.keepalive, Some(10));
        assert_eq!(a.remote_as, Some(64512));
        assert_eq!(a.port, Some(179));
        assert_eq!(a.local_as, Some(64512));
        let back = toml::to_string(&e).unwrap();
        let again = from_str(&back, Path::new("t.toml")).unwrap();
        // The same configuration, but for the AS now written on the peer.
        let mut resolved = cfg.clone();
        for p in resolved.peers.values_mut() {
            p.local_as = Some(p.local_as(&cfg.global));
        }
        assert_eq!(again, resolved, "{back}");
        assert_eq!(
            serde_json::to_value(explicit(&again)).unwrap(),
            serde_json::to_value(&e).unwrap(),
            "explicit is idempotent"
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["peers"]["a"]["hold_time"], 30);
        assert_eq!(json["global"]["listen_port"], 1790);
        assert_eq!(json["global"]["metrics"]["listen"], "[::1]:9179");
    }
}
