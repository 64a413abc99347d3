//! The control protocol's answers made from the speaker's typed read models: the one
//! place that renders a [`Route`], a [`Peer`] or a [`Status`] in the wire form of
//! `bgp_control` (prefixes, addresses and AS paths as text, states by name).

use std::path::Path;

use bgp_control::{
    BfdSessionInfo, DaemonStatus, PeerCounters, PeerDetail, PeerSummary, RouteEntry,
};
use bgp_proto::Origin;

use bgp_speaker::{
    BfdSession, Peer, PeerAction, Route, RouteCursor, RouteQuery, RouteSource, Status,
};

/// `status`: the speaker's status, with the daemon's version and configuration file.
pub fn status(s: Status, config_file: Option<&Path>) -> DaemonStatus {
    DaemonStatus {
        version: env!("CARGO_PKG_VERSION").to_string(),
        asn: s.asn,
        router_id: s.router_id.to_string(),
        uptime_secs: s.uptime.as_secs(),
        peers: s.peers,
        peers_established: s.peers_established,
        loc_rib_prefixes: s.loc_rib_prefixes,
        graceful_restart_in_progress: s.selection_deferral.is_some(),
        config_file: config_file.map(|p| p.display().to_string()),
        config_age_secs: s.config_age.as_secs(),
        components: s
            .components
            .into_iter()
            .map(|c| bgp_control::ComponentStatus {
                name: c.name.to_string(),
                up: c.down.is_none(),
                since_secs: c.for_how_long().as_secs(),
                reason: c.down,
            })
            .collect(),
    }
}

/// One row of `show_bfd`.
pub fn bfd(s: &BfdSession) -> BfdSessionInfo {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    BfdSessionInfo {
        peer: s.peer.clone(),
        address: s.address.to_string(),
        local_address: s.local.map(|a| a.to_string()),
        multihop: s.multihop,
        state: s.state.to_string(),
        remote_state: s.remote_state.to_string(),
        tx_interval_ms: ms(s.tx_interval),
        rx_interval_ms: s.rx_interval.map(ms),
        multiplier: s.multiplier,
        remote_multiplier: s.remote_multiplier,
        detection_time_ms: s.detection_time.map(ms),
        local_diagnostic: s.local_diagnostic.clone(),
        remote_diagnostic: s.remote_diagnostic.clone(),
        uptime_secs: s.since.as_secs(),
        up_count: s.up_count,
        bgp_downs: s.bgp_downs,
        error: s.error.clone(),
    }
}

/// One row of `show_peers`.
pub fn summary(p: &Peer) -> PeerSummary {
    PeerSummary {
        name: p.config.name.clone(),
        address: p.config.address.to_string(),
        remote_as: p.config.remote_as,
        state: p.state.to_string(),
        uptime_secs: p.since.elapsed().as_secs(),
        prefixes_received: p.prefixes.received,
        prefixes_accepted: p.prefixes.accepted,
        prefixes_sent: p.prefixes.sent,
        last_error: p.last_error.clone(),
    }
}

/// `show_peer NAME`.
pub fn detail(p: &Peer) -> PeerDetail {
    let c = &p.config;
    let neg = p.negotiated.as_deref();
    let capabilities = |open: fn(&bgp_proto::session::Negotiated) -> &bgp_proto::Open| {
        neg.map(|n| {
            open(n)
                .capabilities
                .iter()
                .map(|c| format!("{c:?}"))
                .collect()
        })
        .unwrap_or_default()
    };
    PeerDetail {
        summary: summary(p),
        description: c.description.clone(),
        local_as: p.local_as,
        port: c.port,
        passive: c.passive,
        route_reflector_client: c.route_reflector_client,
        import: c.import.clone(),
        export: c.export.clone(),
        peer_id: neg.map(|n| n.peer_id.to_string()),
        local_address: p.local_address.map(|a| a.to_string()),
        hold_time: c.hold_time,
        keepalive: c.keepalive,
        negotiated_hold_time: neg.map(|n| n.hold_time),
        negotiated_keepalive: neg.map(|n| n.keepalive_time),
        families: match neg {
            Some(n) => n.families.iter().map(|f| f.to_string()).collect(),
            None => c.families.iter().map(|f| f.to_string()).collect(),
        },
        capabilities_sent: capabilities(|n| &n.local_open),
        capabilities_received: capabilities(|n| &n.peer_open),
        counters: PeerCounters {
            updates_received: p.counters.updates_received,
            updates_sent: p.counters.updates_sent,
            notifications_received: p.counters.notifications_received,
            notifications_sent: p.counters.notifications_sent,
            route_refresh_received: p.counters.route_refresh_received,
            established_transitions: p.counters.established_transitions,
        },
        last_notification_sent: p.last_notification_sent.clone(),
        last_notification_received: p.last_notification_received.clone(),
    }
}

/// Who a route came from or goes to, as the protocol names it: the peer, `local` for an
/// originated route, else the source (`kernel`, `connected`).
pub fn route_peer(r: &Route) -> String {
    match (&r.peer, r.source) {
        (Some(n), _) => n.clone(),
        (None, RouteSource::Static) => "local".into(),
        (None, s) => s.to_string(),
    }
}

/// One path of `show_routes` and `show_route`.
pub fn route(r: &Route) -> RouteEntry {
    RouteEntry {
        prefix: r.prefix.to_string(),
        path_id: r.path_id,
        peer: route_peer(r),
        next_hop: r.next_hop.map(|n| n.to_string()),
        as_path: r.as_path.to_string(),
        origin: match r.origin {
            Some(Origin::Igp) => "IGP",
            Some(Origin::Egp) => "EGP",
            Some(Origin::Incomplete) => "incomplete",
            None => "",
        }
        .to_string(),
        local_pref: r.local_pref,
        med: r.med,
        communities: r.communities.iter().map(|c| c.to_string()).collect(),
        large_communities: r.large_communities.iter().map(|c| c.to_string()).collect(),
        best: r.best,
        multipath: r.multipath,
        not_best_reason: r.not_best.map(|s| s.to_string()),
        age_secs: None,
        stale: r.stale,
        originator_id: r.originator_id.map(|i| i.to_string()),
        cluster_list: r.cluster_list.iter().map(|i| i.to_string()).collect(),
        interface: r.interface.clone(),
    }
}

/// The query of a `show_routes` request.
pub fn query(
    prefix: Option<ipnet::IpNet>,
    peer: Option<String>,
    table: bgp_control::Table,
    family: Option<bgp_control::FamilyFilter>,
) -> RouteQuery {
    RouteQuery {
        prefix,
        peer,
        table: match table {
            bgp_control::Table::Loc => bgp_speaker::Table::Loc,
            bgp_control::Table::In => bgp_speaker::Table::In,
            bgp_control::Table::Out => bgp_speaker::Table::Out,
        },
        family: family.map(|f| match f {
            bgp_control::FamilyFilter::Ipv4 => bgp_speaker::FamilyFilter::Ipv4,
            bgp_control::FamilyFilter::Ipv6 => bgp_speaker::FamilyFilter::Ipv6,
        }),
    }
}

/// A cursor from the wire.
pub fn cursor_in(c: bgp_control::RouteCursor) -> RouteCursor {
    RouteCursor {
        peer: c.peer,
        prefix: c.prefix,
        path: c.path,
    }
}

/// A cursor for the wire.
pub fn cursor_out(c: RouteCursor) -> bgp_control::RouteCursor {
    bgp_control::RouteCursor {
        peer: c.peer,
        prefix: c.prefix,
        path: c.path,
    }
}

/// An action from the wire.
pub fn action(a: bgp_control::PeerAction) -> PeerAction {
    match a {
        bgp_control::PeerAction::Reset => PeerAction::Reset,
        bgp_control::PeerAction::Disable => PeerAction::Disable,
        bgp_control::PeerAction::Enable => PeerAction::Enable,
    }
}
