//! OPEN validation (RFC 4271 6.2) and capability negotiation (RFC 5492 and the RFC of
//! each capability).
//!
//! Pure functions from (our configuration, the peer's OPEN) to either the [`Negotiated`]
//! parameters of the session or the NOTIFICATION that refuses the OPEN. Kept apart from
//! the state machine so every rule is unit-tested on its own.

use std::net::Ipv4Addr;

use crate::wire::error::NotificationError;
use crate::wire::types::{
    notification_code as nc, AddPathMode, Afi, BgpRole, Capability, CodecContext, Family,
    GracefulRestart, LlgrFamily, Open,
};

use super::config::{SessionConfig, BGP_VERSION};

/// What both sides agreed on, known once the peer's OPEN has been accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Our AS, for [`Negotiated::is_ibgp`].
    pub local_as: u32,
    /// The peer's AS: the 4-octet AS capability value if present, else My AS (RFC 6793).
    pub peer_as: u32,
    /// The peer's BGP Identifier.
    pub peer_id: Ipv4Addr,
    /// min(ours, theirs) in seconds; 0 means no keepalives and no hold timer (RFC 4271 4.2).
    pub hold_time: u16,
    /// Interval of our KEEPALIVEs in seconds; 0 when the hold time is 0.
    pub keepalive_time: u16,
    /// Families both sides announced (RFC 4760 8: no multiprotocol capability at all
    /// means IPv4 unicast only).
    pub families: Vec<Family>,
    /// How UPDATEs are encoded and decoded on this session.
    pub codec: CodecContext,
    /// Both sides announced route refresh (RFC 2918).
    pub route_refresh: bool,
    /// Both sides announced enhanced route refresh (RFC 7313).
    pub enhanced_route_refresh: bool,
    /// The peer's graceful restart capability (RFC 4724), as received.
    pub peer_graceful_restart: Option<GracefulRestart>,
    /// The peer's long-lived graceful restart families (RFC 9494), as received.
    pub peer_llgr: Vec<LlgrFamily>,
    /// (NLRI family, next-hop AFI) pairs both sides announced (RFC 8950).
    pub extended_next_hop: Vec<(Family, Afi)>,
    /// The peer's BGP role (RFC 9234).
    pub peer_role: Option<BgpRole>,
    /// The peer's hostname and domain name.
    pub peer_fqdn: Option<(String, String)>,
    /// The OPEN we sent.
    pub local_open: Open,
    /// The OPEN we received.
    pub peer_open: Open,
}

impl Negotiated {
    /// Internal BGP: both sides in the same AS.
    pub fn is_ibgp(&self) -> bool {
        self.local_as == self.peer_as
    }

    /// Whether `family` was negotiated.
    pub fn has_family(&self, family: Family) -> bool {
        self.families.contains(&family)
    }
}

/// The IANA code of a capability.
pub fn capability_code(cap: &Capability) -> u8 {
    use crate::wire::types::capability_code as cc;
    match cap {
        Capability::MultiProtocol(_) => cc::MULTIPROTOCOL,
        Capability::RouteRefresh => cc::ROUTE_REFRESH,
        Capability::EnhancedRouteRefresh => cc::ENHANCED_ROUTE_REFRESH,
        Capability::FourOctetAs(_) => cc::FOUR_OCTET_AS,
        Capability::GracefulRestart(_) => cc::GRACEFUL_RESTART,
        Capability::LongLivedGracefulRestart(_) => cc::LONG_LIVED_GRACEFUL_RESTART,
        Capability::AddPath(_) => cc::ADD_PATH,
        Capability::ExtendedNextHop(_) => cc::EXTENDED_NEXT_HOP,
        Capability::ExtendedMessage => cc::EXTENDED_MESSAGE,
        Capability::Role(_) => cc::ROLE,
        Capability::Fqdn { .. } => cc::FQDN,
        Capability::Unknown { code, .. } => *code,
    }
}

/// RFC 9234 4.2: the allowed (local, remote) role pairs.
fn roles_match(local: BgpRole, remote: BgpRole) -> bool {
    matches!(
        (local, remote),
        (BgpRole::PROVIDER, BgpRole::CUSTOMER)
            | (BgpRole::CUSTOMER, BgpRole::PROVIDER)
            | (BgpRole::RS, BgpRole::RS_CLIENT)
            | (BgpRole::RS_CLIENT, BgpRole::RS)
            | (BgpRole::PEER, BgpRole::PEER)
    )
}

/// Validate the peer's OPEN against our configuration and negotiate the session
/// parameters. `Err` carries the NOTIFICATION to send (RFC 4271 6.2, RFC 5492 3,
/// RFC 6286 2.2, RFC 7607 2, RFC 9234 4.2).
pub fn negotiate(config: &SessionConfig, peer: &Open) -> Result<Negotiated, NotificationError> {
    // RFC 4271 6.2: version. The data is the largest version we support.
    if peer.version != BGP_VERSION {
        return Err(NotificationError::new(
            nc::OPEN_MESSAGE,
            nc::UNSUPPORTED_VERSION,
            format!("peer speaks BGP version {}, we speak 4", peer.version),
        )
        .with_data(vec![0, BGP_VERSION]));
    }

    // RFC 4271 6.2 / RFC 6793 4.1: the peer AS, 4-octet when the capability is present.
    // RFC 7607 2: AS 0 is Bad Peer AS.
    let peer_as = peer.asn();
    if peer_as == 0 {
        return Err(NotificationError::new(
            nc::OPEN_MESSAGE,
            nc::BAD_PEER_AS,
            "peer announced AS 0 (RFC 7607)",
        ));
    }
    if let Some(expected) = config.remote_as {
        if peer_as != expected {
            return Err(NotificationError::new(
                nc::OPEN_MESSAGE,
                nc::BAD_PEER_AS,
                format!("peer announced AS {peer_as}, expected AS {expected}"),
            ));
        }
    }

    // RFC 4271 6.2: a Hold Time of 1 or 2 seconds MUST be rejected.
    if peer.hold_time == 1 || peer.hold_time == 2 {
        return Err(NotificationError::new(
            nc::OPEN_MESSAGE,
            nc::UNACCEPTABLE_HOLD_TIME,
            format!("peer proposed hold time {} s", peer.hold_time),
        ));
    }

    // RFC 6286 2.2: the identifier must be non-zero, and differ from ours on iBGP
    // (eBGP peers may share an identifier; collisions then compare AS numbers).
    if peer.bgp_id.is_unspecified() {
        return Err(NotificationError::new(
            nc::OPEN_MESSAGE,
            nc::BAD_BGP_IDENTIFIER,
            "peer BGP identifier is 0.0.0.0",
        )
        .with_data(peer.bgp_id.octets().to_vec()));
    }
    if peer.bgp_id == config.local_id && peer_as == config.local_as {
        return Err(NotificationError::new(
            nc::OPEN_MESSAGE,
            nc::BAD_BGP_IDENTIFIER,
            format!("iBGP peer uses our own BGP identifier {}", peer.bgp_id),
        )
        .with_data(peer.bgp_id.octets().to_vec()));
    }

    // RFC 5492 3 / RFC 4271 6.2: optional parameters other than capabilities.
    if let Some((ptype, _)) = peer.other_params.first() {
        return Err(NotificationError::new(
            nc::OPEN_MESSAGE,
            nc::UNSUPPORTED_OPTIONAL_PARAMETER,
            format!("unsupported optional parameter type {ptype}"),
        ));
    }

    let local_caps = &config.capabilities;

    // RFC 5492 3: capabilities we require that the peer did not announce.
    let missing: Vec<u8> = local_caps
        .required
        .iter()
        .copied()
        .filter(|code| {
            !peer
                .capabilities
                .iter()
                .any(|c| capability_code(c) == *code)
        })
        .collect();
    if !missing.is_empty() {
        // Each missing capability as an empty (code, length 0) TLV.
        let data: Vec<u8> = missing.iter().flat_map(|&code| [code, 0]).collect();
        return Err(NotificationError::new(
            nc::OPEN_MESSAGE,
            nc::UNSUPPORTED_CAPABILITY,
            format!("peer lacks required capabilities {missing:?}"),
        )
        .with_data(data));
    }

    // RFC 9234 4.2: roles are checked on eBGP only.
    let peer_roles: Vec<BgpRole> = peer
        .capabilities
        .iter()
        .filter_map(|c| match c {
            Capability::Role(r) => Some(*r),
            _ => None,
        })
        .collect();
    let peer_role = peer_roles.first().copied();
    if peer_as != config.local_as {
        if peer_roles.iter().any(|r| Some(*r) != peer_role) {
            return Err(NotificationError::new(
                nc::OPEN_MESSAGE,
                nc::ROLE_MISMATCH,
                "peer announced several different roles",
            ));
        }
        if let Some(local_role) = local_caps.role {
            match peer_role {
                Some(remote) if !roles_match(local_role, remote) => {
                    return Err(NotificationError::new(
                        nc::OPEN_MESSAGE,
                        nc::ROLE_MISMATCH,
                        format!(
                            "role mismatch: we are role {}, peer is role {}",
                            local_role.0, remote.0
                        ),
                    ));
                }
                None if local_caps.strict_role => {
                    return Err(NotificationError::new(
                        nc::OPEN_MESSAGE,
                        nc::ROLE_MISMATCH,
                        "strict role mode: peer announced no role",
                    ));
                }
                _ => {}
            }
        }
    }

    let local_open = config.local_open();
    Ok(negotiate_capabilities(
        config,
        local_open,
        peer.clone(),
        peer_as,
        peer_role,
    ))
}

/// Combine both sides' capabilities once the OPEN is known to be acceptable.
fn negotiate_capabilities(
    config: &SessionConfig,
    local_open: Open,
    peer_open: Open,
    peer_as: u32,
    peer_role: Option<BgpRole>,
) -> Negotiated {
    let local = &config.capabilities;
    let caps = &peer_open.capabilities;
    let has = |want: &Capability| caps.contains(want);

    // RFC 4760 8: without any multiprotocol capability the peer does IPv4 unicast only.
    let mut peer_families: Vec<Family> = caps
        .iter()
        .filter_map(|c| match c {
            Capability::MultiProtocol(f) => Some(*f),
            _ => None,
        })
        .collect();
    if peer_families.is_empty() {
        peer_families.push(Family::IPV4_UNICAST);
    }
    let mut families: Vec<Family> = local
        .effective_families()
        .into_iter()
        .filter(|f| peer_families.contains(f))
        .collect();
    families.dedup();

    // RFC 7911 4: per family, the last mode the peer announced counts. We receive path
    // ids where we may receive and the peer may send, and send them the other way round.
    let mut peer_add_path: Vec<(Family, AddPathMode)> = Vec::new();
    for cap in caps {
        if let Capability::AddPath(entries) = cap {
            for &(family, mode) in entries {
                peer_add_path.retain(|(f, _)| *f != family);
                peer_add_path.push((family, mode));
            }
        }
    }
    let mut add_path_receive = Vec::new();
    let mut add_path_send = Vec::new();
    for &(family, mode) in &local.add_path {
        if !families.contains(&family) {
            continue;
        }
        let Some(&(_, peer_mode)) = peer_add_path.iter().find(|(f, _)| *f == family) else {
            continue;
        };
        if mode.can_receive() && peer_mode.can_send() && !add_path_receive.contains(&family) {
            add_path_receive.push(family);
        }
        if mode.can_send() && peer_mode.can_receive() && !add_path_send.contains(&family) {
            add_path_send.push(family);
        }
    }

    let four_octet_as = caps.iter().any(|c| matches!(c, Capability::FourOctetAs(_)));
    let extended_message = local.extended_message && has(&Capability::ExtendedMessage);

    let peer_graceful_restart = caps.iter().find_map(|c| match c {
        Capability::GracefulRestart(gr) => Some(gr.clone()),
        _ => None,
    });
    let peer_llgr = caps
        .iter()
        .find_map(|c| match c {
            Capability::LongLivedGracefulRestart(v) => Some(v.clone()),
            _ => None,
        })
        .unwrap_or_default();

    let peer_enh: Vec<(Family, Afi)> = caps
        .iter()
        .filter_map(|c| match c {
            Capability::ExtendedNextHop(v) => Some(v.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    let extended_next_hop = local
        .extended_next_hop
        .iter()
        .copied()
        .filter(|pair| peer_enh.contains(pair))
        .collect();

    let peer_fqdn = caps.iter().find_map(|c| match c {
        Capability::Fqdn { hostname, domain } => Some((hostname.clone(), domain.clone())),
        _ => None,
    });

    // RFC 4271 4.2: the smaller Hold Time; keepalives at a third of it unless configured
    // shorter (RFC 4271 10 suggests one third).
    let hold_time = config.effective_hold_time().min(peer_open.hold_time);
    let keepalive_time = if hold_time == 0 {
        0
    } else {
        let third = (hold_time / 3).max(1);
        config
            .keepalive_time
            .filter(|&k| k > 0)
            .unwrap_or(third)
            .min(third)
    };

    Negotiated {
        local_as: config.local_as,
        peer_as,
        peer_id: peer_open.bgp_id,
        hold_time,
        keepalive_time,
        families,
        codec: CodecContext {
            four_octet_as,
            extended_message,
            add_path_receive,
            add_path_send,
            external: peer_as != config.local_as,
        },
        route_refresh: local.route_refresh && has(&Capability::RouteRefresh),
        enhanced_route_refresh: local.enhanced_route_refresh
            && has(&Capability::EnhancedRouteRefresh),
        peer_graceful_restart,
        peer_llgr,
        extended_next_hop,
        peer_role,
        peer_fqdn,
        local_open,
        peer_open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::types::{GracefulRestartFamily, AS_TRANS};

    const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const PEER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn config() -> SessionConfig {
        SessionConfig::new(65001, LOCAL_ID, Some(65002))
    }

    fn peer_open(caps: Vec<Capability>) -> Open {
        Open {
            version: 4,
            my_as: 65002,
            hold_time: 30,
            bgp_id: PEER_ID,
            capabilities: caps,
            other_params: Vec::new(),
        }
    }

    fn err(config: &SessionConfig, open: &Open) -> (u8, u8) {
        match negotiate(config, open) {
            Err(e) => (e.code, e.subcode),
            Ok(n) => panic!("accepted: {n:?}"),
        }
    }

    #[test]
    fn bad_version_is_2_1_with_supported_version() {
        let mut open = peer_open(vec![]);
        open.version = 3;
        let e = negotiate(&config(), &open).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 1));
        assert_eq!(&e.data[..], &[0, 4]);
    }

    #[test]
    fn wrong_peer_as_is_2_2() {
        let mut open = peer_open(vec![]);
        open.my_as = 65003;
        assert_eq!(err(&config(), &open), (2, 2));
    }

    #[test]
    fn four_octet_peer_as_comes_from_capability() {
        let mut c = config();
        c.remote_as = Some(4_200_000_001);
        let mut open = peer_open(vec![Capability::FourOctetAs(4_200_000_001)]);
        open.my_as = AS_TRANS;
        let n = negotiate(&c, &open).unwrap();
        assert_eq!(n.peer_as, 4_200_000_001);
        assert!(n.codec.four_octet_as);
        // The same AS in the 2-octet field only (AS_TRANS) is the wrong AS.
        let open = Open {
            capabilities: vec![],
            ..open
        };
        assert_eq!(err(&c, &open), (2, 2));
    }

    #[test]
    fn peer_as_zero_is_2_2_even_when_any_as_is_accepted() {
        let mut c = config();
        c.remote_as = None;
        let mut open = peer_open(vec![]);
        open.my_as = 0;
        assert_eq!(err(&c, &open), (2, 2));
    }

    #[test]
    fn hold_time_one_or_two_is_2_6() {
        for hold in [1, 2] {
            let mut open = peer_open(vec![]);
            open.hold_time = hold;
            assert_eq!(err(&config(), &open), (2, 6));
        }
    }

    #[test]
    fn bgp_identifier_zero_or_ours_on_ibgp_is_2_3() {
        let mut open = peer_open(vec![]);
        open.bgp_id = Ipv4Addr::UNSPECIFIED;
        assert_eq!(err(&config(), &open), (2, 3));

        let mut ibgp = config();
        ibgp.remote_as = Some(65001);
        let mut open = peer_open(vec![]);
        open.my_as = 65001;
        open.bgp_id = LOCAL_ID;
        assert_eq!(err(&ibgp, &open), (2, 3));

        // RFC 6286: an eBGP peer may use the same identifier.
        let mut open = peer_open(vec![]);
        open.bgp_id = LOCAL_ID;
        assert!(negotiate(&config(), &open).is_ok());
    }

    #[test]
    fn unknown_optional_parameter_is_2_4() {
        let mut open = peer_open(vec![]);
        open.other_params
            .push((3, bytes::Bytes::from_static(&[1, 2])));
        assert_eq!(err(&config(), &open), (2, 4));
    }

    #[test]
    fn missing_required_capability_is_2_7_listing_it() {
        let mut c = config();
        c.capabilities.required = vec![crate::wire::types::capability_code::ROUTE_REFRESH];
        let e = negotiate(&c, &peer_open(vec![])).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 7));
        assert_eq!(&e.data[..], &[2, 0]);
        assert!(negotiate(&c, &peer_open(vec![Capability::RouteRefresh])).is_ok());
    }

    #[test]
    fn role_mismatch_is_2_11() {
        let mut c = config();
        c.capabilities.role = Some(BgpRole::PROVIDER);
        assert_eq!(
            err(&c, &peer_open(vec![Capability::Role(BgpRole::PROVIDER)])),
            (2, 11)
        );
        let n = negotiate(&c, &peer_open(vec![Capability::Role(BgpRole::CUSTOMER)])).unwrap();
        assert_eq!(n.peer_role, Some(BgpRole::CUSTOMER));
        // Without strict mode a missing role is fine; with it, refused.
        assert!(negotiate(&c, &peer_open(vec![])).is_ok());
        c.capabilities.strict_role = true;
        assert_eq!(err(&c, &peer_open(vec![])), (2, 11));
        // Two different roles from the peer.
        c.capabilities.strict_role = false;
        assert_eq!(
            err(
                &c,
                &peer_open(vec![
                    Capability::Role(BgpRole::CUSTOMER),
                    Capability::Role(BgpRole::PEER)
                ])
            ),
            (2, 11)
        );
    }

    #[test]
    fn roles_are_not_checked_on_ibgp() {
        let mut c = config();
        c.remote_as = Some(65001);
        c.capabilities.role = Some(BgpRole::PROVIDER);
        c.capabilities.strict_role = true;
        let mut open = peer_open(vec![Capability::Role(BgpRole::PROVIDER)]);
        open.my_as = 65001;
        assert!(negotiate(&c, &open).is_ok());
    }

    #[test]
    fn families_are_the_intersection_and_default_to_ipv4_unicast() {
        let mut c = config();
        c.capabilities.families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
        let n = negotiate(&c, &peer_open(vec![])).unwrap();
        assert_eq!(n.families, vec![Family::IPV4_UNICAST]);
        let n = negotiate(
            &c,
            &peer_open(vec![Capability::MultiProtocol(Family::IPV6_UNICAST)]),
        )
        .unwrap();
        assert_eq!(n.families, vec![Family::IPV6_UNICAST]);
        assert!(n.has_family(Family::IPV6_UNICAST));
        assert!(!n.has_family(Family::IPV4_UNICAST));
    }

    #[test]
    fn add_path_directions_follow_both_modes() {
        let v4 = Family::IPV4_UNICAST;
        let v6 = Family::IPV6_UNICAST;
        let mut c = config();
        c.capabilities.families = vec![v4, v6];
        c.capabilities.add_path = vec![(v4, AddPathMode::Both), (v6, AddPathMode::Receive)];
        let open = peer_open(vec![
            Capability::MultiProtocol(v4),
            Capability::MultiProtocol(v6),
            Capability::AddPath(vec![(v4, AddPathMode::Receive), (v6, AddPathMode::Both)]),
        ]);
        let n = negotiate(&c, &open).unwrap();
        // v4: we may send and receive, the peer only receives: we send path ids.
        // v6: we only receive, the peer may send: we receive path ids.
        assert_eq!(n.codec.add_path_send, vec![v4]);
        assert_eq!(n.codec.add_path_receive, vec![v6]);

        // A family that was not negotiated gets no ADD-PATH.
        c.capabilities.families = vec![v4];
        let n = negotiate(&c, &open).unwrap();
        assert_eq!(n.codec.add_path_receive, Vec::<Family>::new());
        assert_eq!(n.codec.add_path_send, vec![v4]);
    }

    #[test]
    fn add_path_last_announcement_per_family_wins() {
        let v4 = Family::IPV4_UNICAST;
        let mut c = config();
        c.capabilities.add_path = vec![(v4, AddPathMode::Both)];
        let open = peer_open(vec![
            Capability::AddPath(vec![(v4, AddPathMode::Both)]),
            Capability::AddPath(vec![(v4, AddPathMode::Send)]),
        ]);
        let n = negotiate(&c, &open).unwrap();
        assert_eq!(n.codec.add_path_receive, vec![v4]);
        assert!(n.codec.add_path_send.is_empty());
    }

    #[test]
    fn hold_and_keepalive_times() {
        let mut c = config();
        c.hold_time = 90;
        let n = negotiate(&c, &peer_open(vec![])).unwrap();
        assert_eq!((n.hold_time, n.keepalive_time), (30, 10));

        c.keepalive_time = Some(3);
        let n = negotiate(&c, &peer_open(vec![])).unwrap();
        assert_eq!((n.hold_time, n.keepalive_time), (30, 3));

        // A configured keepalive longer than a third of the hold time is shortened.
        c.keepalive_time = Some(60);
        let n = negotiate(&c, &peer_open(vec![])).unwrap();
        assert_eq!(n.keepalive_time, 10);

        let mut open = peer_open(vec![]);
        open.hold_time = 0;
        let n = negotiate(&c, &open).unwrap();
        assert_eq!((n.hold_time, n.keepalive_time), (0, 0));

        let mut open = peer_open(vec![]);
        open.hold_time = 3;
        c.keepalive_time = None;
        let n = negotiate(&c, &open).unwrap();
        assert_eq!((n.hold_time, n.keepalive_time), (3, 1));
    }

    #[test]
    fn other_capabilities() {
        let mut c = config();
        c.capabilities.extended_message = true;
        c.capabilities.enhanced_route_refresh = true;
        c.capabilities.extended_next_hop = vec![(Family::IPV4_UNICAST, Afi::IPV6)];
        let gr = GracefulRestart {
            restart_state: true,
            notification: false,
            restart_time: 120,
            families: vec![GracefulRestartFamily {
                family: Family::IPV4_UNICAST,
                forwarding_preserved: true,
            }],
        };
        let open = peer_open(vec![
            Capability::RouteRefresh,
            Capability::ExtendedMessage,
            Capability::GracefulRestart(gr.clone()),
            Capability::ExtendedNextHop(vec![
                (Family::IPV4_UNICAST, Afi::IPV6),
                (Family::IPV6_UNICAST, Afi::IPV4),
            ]),
            Capability::Fqdn {
                hostname: "node-1".into(),
                domain: "cluster.local".into(),
            },
        ]);
        let n = negotiate(&c, &open).unwrap();
        assert!(n.route_refresh);
        assert!(!n.enhanced_route_refresh, "peer did not announce it");
        assert!(n.codec.extended_message);
        assert!(!n.codec.four_octet_as, "peer did not announce it");
        assert_eq!(n.peer_graceful_restart, Some(gr));
        assert_eq!(n.extended_next_hop, vec![(Family::IPV4_UNICAST, Afi::IPV6)]);
        assert_eq!(
            n.peer_fqdn,
            Some(("node-1".to_string(), "cluster.local".to_string()))
        );
        assert_eq!(n.peer_id, PEER_ID);
        assert!(!n.is_ibgp());
        assert_eq!(n.peer_open, open);
        assert_eq!(n.local_open, c.local_open());
    }
}
