//! The control protocol's answers made from the speaker's typed read models: the one
//! place that renders a [`Route`], a [`Peer`] or a [`Status`] in the wire form of
//! `bgp_control` (prefixes, addresses and AS paths as text, states by name).

use std::path::Path;
use std::time::SystemTime;

use bgp_control::{
    AsPathSegment, BfdSessionInfo, DaemonStatus, Event, FibInstalled, FibRefused, FibReport,
    MonitorEvent, PeerCounters, PeerDetail, PeerSummary, RouteEntry,
};
use bgp_proto::Origin;

use bgp_speaker::{
    connect_failure, BfdSession, ExtendedCommunity, FibState, Peer, PeerAction, Route, RouteChange,
    RouteCursor, RouteQuery, RouteSource, SegmentType, SpeakerEvent, Status,
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
        last_error: p.last_error.as_deref().map(|e| match connect_failure(e) {
            Some(why) => format!("connect: {why}"),
            None => e.to_owned(),
        }),
        messages_received: p.counters.messages_received,
        messages_sent: p.counters.messages_sent,
        output_queue_bytes: p.counters.output_queue_bytes,
        connect_error: p
            .last_error
            .as_deref()
            .and_then(connect_failure)
            .map(str::to_owned),
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
        as_path_segments: r
            .as_path
            .segments
            .iter()
            .map(|s| AsPathSegment {
                kind: match s.kind {
                    SegmentType::Sequence => "sequence",
                    SegmentType::Set => "set",
                    SegmentType::ConfedSequence => "confed_sequence",
                    SegmentType::ConfedSet => "confed_set",
                }
                .to_string(),
                asns: s.asns.clone(),
            })
            .collect(),
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
        // A wall clock set back makes a change look future: age 0 then.
        age_secs: r.since.map(|t| {
            SystemTime::now()
                .duration_since(t)
                .unwrap_or_default()
                .as_secs()
        }),
        stale: r.stale,
        originator_id: r.originator_id.map(|i| i.to_string()),
        cluster_list: r.cluster_list.iter().map(|i| i.to_string()).collect(),
        interface: r.interface.clone(),
        extended_communities: r.extended_communities.iter().map(extended).collect(),
        atomic_aggregate: r.atomic_aggregate,
        aggregator: r.aggregator.map(|a| format!("{} {}", a.asn, a.address)),
        otc: r.otc,
        unknown_attributes: r
            .unknown_attributes
            .iter()
            .map(|a| {
                format!(
                    "type {} flags {:#04x}, {} octets",
                    a.type_code,
                    a.flags,
                    a.value.len()
                )
            })
            .collect(),
    }
}

/// An extended community (RFC 4360) as BIRD prints it: `(rt, 64512, 100)` for a route
/// target, `(ro, ...)` for a route origin (RFC 4360 4, RFC 5668 for 4-octet ASNs),
/// `(generic, 0xHI, 0xLO)` for anything else.
pub fn extended(c: &ExtendedCommunity) -> String {
    let b = c.0;
    let [t, sub, rest @ ..] = b;
    let u16_at = |i: usize| u16::from_be_bytes([rest[i], rest[i + 1]]);
    let u32_at = |i: usize| u32::from_be_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
    let kind = match sub {
        0x02 => Some("rt"),
        0x03 => Some("ro"),
        _ => None,
    };
    match (t & 0x3f, kind) {
        // 2-octet AS specific: AS (2), local administrator (4).
        (0x00, Some(k)) => format!("({k}, {}, {})", u16_at(0), u32_at(2)),
        // IPv4 address specific: address (4), local administrator (2).
        (0x01, Some(k)) => format!(
            "({k}, {}, {})",
            std::net::Ipv4Addr::new(rest[0], rest[1], rest[2], rest[3]),
            u16_at(4)
        ),
        // 4-octet AS specific: AS (4), local administrator (2).
        (0x02, Some(k)) => format!("({k}, {}, {})", u32_at(0), u16_at(4)),
        _ => format!(
            "(generic, {:#010x}, {:#010x})",
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u32::from_be_bytes([b[4], b[5], b[6], b[7]])
        ),
    }
}

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One event of the speaker's stream as a `monitor` line, stamped now.
pub fn event(e: &SpeakerEvent) -> MonitorEvent {
    let event = match e {
        SpeakerEvent::PeerState {
            peer,
            from,
            to,
            reason,
        } => Event::PeerState {
            peer: peer.clone(),
            from: from.to_string(),
            to: to.to_string(),
            reason: reason.clone(),
        },
        SpeakerEvent::Announced { peer, route: r } => Event::Announced {
            peer: peer.clone(),
            route: Box::new(route(r)),
        },
        SpeakerEvent::Withdrawn {
            peer,
            prefix,
            path_id,
        } => Event::Withdrawn {
            peer: peer.clone(),
            prefix: prefix.to_string(),
            path_id: *path_id,
        },
        SpeakerEvent::Best(RouteChange::Best(b)) => Event::Best {
            prefix: b.prefix.to_string(),
            next_hops: b.next_hops.iter().map(|n| n.to_string()).collect(),
            source: b.source.to_string(),
        },
        SpeakerEvent::Best(RouteChange::Removed(p)) => Event::Unreachable {
            prefix: p.to_string(),
        },
    };
    stamped(event)
}

/// `event` stamped now.
pub fn stamped(event: Event) -> MonitorEvent {
    MonitorEvent {
        at_ms: now_ms(),
        event,
    }
}

/// The query of a `show_routes` request; an error for a community that does not parse.
pub fn query(
    prefix: Option<ipnet::IpNet>,
    peer: Option<String>,
    table: bgp_control::Table,
    family: Option<bgp_control::FamilyFilter>,
    longer: bool,
    community: Option<String>,
) -> Result<RouteQuery, String> {
    let community = community
        .map(|c| c.parse::<bgp_speaker::CommunityFilter>())
        .transpose()?;
    Ok(RouteQuery {
        longer,
        community,
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
    })
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

/// `show_fib`.
pub fn fib(f: FibState) -> FibReport {
    FibReport {
        installed: f
            .installed
            .into_iter()
            .map(|r| FibInstalled {
                prefix: r.prefix.to_string(),
                metric: r.metric,
                route: r.route,
                stale: r.stale,
            })
            .collect(),
        refused: f
            .refused
            .into_iter()
            .map(|r| FibRefused {
                prefix: r.prefix.to_string(),
                reason: r.reason,
                attempts: r.attempts,
                retry_in_ms: r
                    .retry_in
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            })
            .collect(),
        refused_total: f.counters.refused,
        retried_total: f.counters.retried,
        recovering: f.recovering,
    }
}

#[cfg(test)]
mod tests {
    use super::extended;
    use bgp_speaker::ExtendedCommunity;

    #[test]
    fn extended_communities_as_bird_writes_them() {
        // RFC 4360 4: 2-octet AS route target, IPv4 route origin; RFC 5668 4-octet AS.
        let rt = ExtendedCommunity([0x00, 0x02, 0xfc, 0x00, 0, 0, 0, 100]);
        assert_eq!(extended(&rt), "(rt, 64512, 100)");
        let ro = ExtendedCommunity([0x01, 0x03, 192, 0, 2, 1, 0, 7]);
        assert_eq!(extended(&ro), "(ro, 192.0.2.1, 7)");
        let rt4 = ExtendedCommunity([0x02, 0x02, 0, 1, 0, 0, 0, 9]);
        assert_eq!(extended(&rt4), "(rt, 65536, 9)");
        // Non-transitive bit set, same kinds; anything else is generic.
        let nt = ExtendedCommunity([0x40, 0x02, 0xfc, 0x00, 0, 0, 0, 1]);
        assert_eq!(extended(&nt), "(rt, 64512, 1)");
        let other = ExtendedCommunity([0x03, 0x0c, 0, 0, 0, 0, 0, 8]);
        assert_eq!(extended(&other), "(generic, 0x030c0000, 0x00000008)");
    }
}
