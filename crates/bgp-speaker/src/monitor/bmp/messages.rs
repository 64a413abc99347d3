//! The BMP messages of a station's feed built from the speaker's facts: the per-peer
//! header (which of the peer's RIBs), Peer Up with both OPENs, the Peer Down reason
//! of a session's end (RFC 7854 4.9, 4.10), and the UPDATEs of the post-policy
//! Adj-RIB-In's changes (RFC 7854 4.6, the L flag).

use std::sync::Arc;
#[cfg(test)]
use std::time::SystemTime;

use bgp_bmp::wire::{PeerDownReason, PeerFlags, PeerHeader, PeerUp};
use bgp_proto::session::DownReason;
use bgp_proto::wire::{encode_announcements, encode_message, encode_withdrawals, EncodeError};
use bgp_proto::{notification_code as nc, Family, Message, Nlri, Notification};
use bgp_rib::Attrs;
use bytes::{Bytes, BytesMut};
use ipnet::IpNet;

use super::super::rib::AdjRib;
use super::super::tap::SessionFacts;

/// The per-peer header of a session: global instance peer, the RIB `rib` the message is
/// about (the L flag for post-policy, RFC 7854 4.2; the O flag for the Adj-RIB-Out, RFC
/// 8671 4), the A flag where the session uses 2-octet AS numbers.
pub(super) fn header(s: &SessionFacts, rib: AdjRib) -> PeerHeader {
    let n = &s.negotiated;
    let flags = PeerFlags::default()
        .with(PeerFlags::LEGACY_AS_PATH, !n.codec.four_octet_as)
        .with(PeerFlags::POST_POLICY, rib != AdjRib::PrePolicyIn)
        .with(PeerFlags::ADJ_RIB_OUT, rib == AdjRib::PostPolicyOut);
    PeerHeader::new(s.addresses().0, n.peer_as, n.peer_id).with_flags(flags)
}

/// A Peer Up with both OPENs as sent (RFC 7854 4.10).
pub(super) fn peer_up(s: &SessionFacts) -> Result<PeerUp, String> {
    let open = |o: &bgp_proto::Open| -> Result<Bytes, String> {
        let mut out = BytesMut::new();
        encode_message(&Message::Open(o.clone()), &Default::default(), &mut out)
            .map_err(|e| e.to_string())?;
        Ok(out.freeze())
    };
    Ok(PeerUp {
        peer: header(s, AdjRib::PrePolicyIn).at(s.at),
        local_address: s.addresses().1,
        local_port: s.local.port(),
        remote_port: s.remote.port(),
        sent_open: open(&s.negotiated.local_open)?,
        received_open: open(&s.negotiated.peer_open)?,
        information: Vec::new(),
    })
}

/// The Peer Down reason of a session's end (RFC 7854 4.9).
///
/// A session we closed because its peer was removed from the configuration (Cease /
/// Peer De-configured, RFC 4486, also inside a Hard Reset, RFC 8538) gives reason 5:
/// "information for this peer will no longer be sent to the monitoring station for
/// configuration reasons", with no data. Reason 1 would describe the session's end as
/// well, but only reason 5 tells the station that the peer is gone for good rather than
/// down until it reconnects; GoBGP sends 5 for a de-configured peer too.
pub(super) fn down_reason(r: &DownReason) -> PeerDownReason {
    let framed = |n: &Notification| {
        let mut out = BytesMut::new();
        let msg = Message::Notification(n.clone());
        match encode_message(&msg, &Default::default(), &mut out) {
            Ok(()) => Some(out.freeze()),
            Err(_) => None,
        }
    };
    let local = |n: Notification| match framed(&n) {
        Some(b) => PeerDownReason::LocalNotification(b),
        None => PeerDownReason::LocalNoNotification(0),
    };
    match r {
        DownReason::NotificationSent { notification, .. }
        | DownReason::AdminStop(Some(notification))
            if deconfigured(notification) =>
        {
            PeerDownReason::PeerDeconfigured
        }
        DownReason::NotificationSent { notification, .. }
        | DownReason::AdminStop(Some(notification)) => local(notification.clone()),
        DownReason::HoldTimerExpired => local(Notification {
            code: nc::HOLD_TIMER_EXPIRED,
            subcode: 0,
            data: Bytes::new(),
        }),
        DownReason::SendHoldTimerExpired => local(Notification {
            code: nc::SEND_HOLD_TIMER_EXPIRED,
            subcode: 0,
            data: Bytes::new(),
        }),
        DownReason::CollisionDump => local(Notification {
            code: nc::CEASE,
            subcode: nc::CEASE_CONNECTION_COLLISION,
            data: Bytes::new(),
        }),
        DownReason::NotificationReceived(n) => match framed(n) {
            Some(b) => PeerDownReason::RemoteNotification(b),
            None => PeerDownReason::RemoteNoData,
        },
        DownReason::ConnectionClosed => PeerDownReason::RemoteNoData,
        // RFC 4271 8.1 events: 2 ManualStop; 18 TcpConnectionFails.
        DownReason::AdminStop(None) => PeerDownReason::LocalNoNotification(2),
        DownReason::ConnectionFailed => PeerDownReason::LocalNoNotification(18),
    }
}

/// `n` is Cease / Peer De-configured, bare or as the cause of a Hard Reset (RFC 8538 3:
/// the cause's code and subcode lead the data).
fn deconfigured(n: &Notification) -> bool {
    let cause = if n.code == nc::CEASE && n.subcode == nc::CEASE_HARD_RESET {
        (n.data.first().copied(), n.data.get(1).copied())
    } else {
        (Some(n.code), Some(n.subcode))
    };
    cause == (Some(nc::CEASE), Some(nc::CEASE_PEER_DECONFIGURED))
}

pub(super) fn family(n: &Nlri) -> Family {
    match n.prefix {
        IpNet::V4(_) => Family::IPV4_UNICAST,
        IpNet::V6(_) => Family::IPV6_UNICAST,
    }
}
/// The UPDATEs that tell a station `changes` of a peer's post-policy Adj-RIB-In, in
/// order: each run of withdrawals of one family, each run of announcements of one family
/// sharing an attribute set, packed as few UPDATEs as fit. Encoded under the codec of
/// the session's received UPDATEs (`received_codec`), path identifiers included where
/// it carries them.
pub(super) fn accepted_updates(
    s: &SessionFacts,
    changes: &[(Nlri, Option<Attrs>)],
) -> Result<Vec<Bytes>, EncodeError> {
    let codec = s.received_codec();
    let mut out = Vec::new();
    let mut rest = changes;
    while let Some(((first, attrs), _)) = rest.split_first() {
        let fam = family(first);
        let n = rest
            .iter()
            .take_while(|(n, a)| {
                family(n) == fam
                    && match (a, attrs) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                        (None, None) => true,
                        _ => false,
                    }
            })
            .count()
            .max(1);
        let (run, after) = rest.split_at(n.min(rest.len()));
        let nlri: Vec<Nlri> = run.iter().map(|(n, _)| *n).collect();
        match attrs {
            Some(a) => {
                encode_announcements(fam, &a.attrs, a.next_hop.as_ref(), &nlri, &codec, &mut out)?
            }
            None => encode_withdrawals(fam, &nlri, &codec, &mut out)?,
        }
        rest = after;
    }
    Ok(out)
}

#[cfg(test)]
pub(super) fn test_facts() -> Arc<SessionFacts> {
    let open = |asn: u32, id: [u8; 4]| bgp_proto::Open {
        version: 4,
        my_as: bgp_proto::Open::my_as_field(asn),
        hold_time: 90,
        bgp_id: id.into(),
        capabilities: vec![bgp_proto::Capability::FourOctetAs(asn)],
        other_params: Vec::new(),
    };
    let codec = bgp_proto::CodecContext {
        four_octet_as: true,
        ..Default::default()
    };
    Arc::new(SessionFacts {
        negotiated: Box::new(bgp_proto::session::Negotiated {
            local_as: 64512,
            peer_as: 65001,
            peer_id: [10, 0, 0, 2].into(),
            hold_time: 90,
            keepalive_time: 30,
            families: vec![Family::IPV4_UNICAST],
            codec,
            route_refresh: false,
            enhanced_route_refresh: false,
            peer_graceful_restart: None,
            peer_llgr: Vec::new(),
            extended_next_hop: Vec::new(),
            peer_role: None,
            peer_fqdn: None,
            local_open: open(64512, [10, 0, 0, 1]),
            peer_open: open(65001, [10, 0, 0, 2]),
        }),
        local: "127.0.0.1:179".parse().unwrap(),
        remote: "127.0.0.2:40000".parse().unwrap(),
        at: SystemTime::now(),
        seq: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::wire::{decode_message, Inbound};

    fn carried(r: &PeerDownReason) -> Option<(u8, u8)> {
        let (PeerDownReason::LocalNotification(b) | PeerDownReason::RemoteNotification(b)) = r
        else {
            return None;
        };
        match decode_message(b, &Default::default()) {
            Ok(Inbound::Notification(n)) => Some((n.code, n.subcode)),
            other => panic!("not a NOTIFICATION: {other:?}"),
        }
    }

    #[test]
    fn peer_down_reasons_follow_rfc_7854_4_9() {
        let cease = Notification::admin_shutdown("maintenance");
        let deconfigured = Notification {
            code: nc::CEASE,
            subcode: nc::CEASE_PEER_DECONFIGURED,
            data: Bytes::new(),
        };
        let hard_reset = |n: &Notification| Notification {
            code: nc::CEASE,
            subcode: nc::CEASE_HARD_RESET,
            data: [&[n.code, n.subcode][..], &n.data[..]].concat().into(),
        };
        let sent = DownReason::NotificationSent {
            notification: cease.clone(),
            reason: "bgpctl".into(),
        };
        let cases = [
            (sent, 1, Some((nc::CEASE, nc::CEASE_ADMIN_SHUTDOWN))),
            (DownReason::AdminStop(Some(cease.clone())), 1, Some((6, 2))),
            (
                DownReason::HoldTimerExpired,
                1,
                Some((nc::HOLD_TIMER_EXPIRED, 0)),
            ),
            (
                DownReason::SendHoldTimerExpired,
                1,
                Some((nc::SEND_HOLD_TIMER_EXPIRED, 0)),
            ),
            (DownReason::CollisionDump, 1, Some((6, 7))),
            (
                DownReason::NotificationReceived(cease.clone()),
                3,
                Some((6, 2)),
            ),
            (DownReason::ConnectionClosed, 4, None),
            (DownReason::AdminStop(None), 2, None),
            (DownReason::ConnectionFailed, 2, None),
            // A peer removed from the configuration: reason 5, no data.
            (DownReason::AdminStop(Some(deconfigured.clone())), 5, None),
            (
                DownReason::NotificationSent {
                    notification: hard_reset(&deconfigured),
                    reason: "removed".into(),
                },
                5,
                None,
            ),
            // A Hard Reset for another cause stays reason 1.
            (
                DownReason::AdminStop(Some(hard_reset(&cease))),
                1,
                Some((nc::CEASE, nc::CEASE_HARD_RESET)),
            ),
        ];
        for (reason, code, notification) in cases {
            let r = down_reason(&reason);
            assert_eq!(r.code(), code, "{reason:?}");
            assert_eq!(carried(&r), notification, "{reason:?}");
        }
        assert_eq!(
            down_reason(&DownReason::AdminStop(None)),
            PeerDownReason::LocalNoNotification(2),
            "FSM event 2, ManualStop"
        );
    }

    /// The UPDATEs of one post-policy change set, decoded back as the station would.
    fn decoded(changes: &[(Nlri, Option<Attrs>)]) -> Vec<bgp_proto::Update> {
        let s = test_facts();
        let updates = accepted_updates(&s, changes).unwrap();
        updates
            .iter()
            .map(|b| match decode_message(b, &s.received_codec()) {
                Ok(Inbound::Update(u)) => u.update,
                other => panic!("not an UPDATE: {other:?}"),
            })
            .collect()
    }

    fn nlri(p: &str) -> Nlri {
        Nlri {
            path_id: None,
            prefix: p.parse().unwrap(),
        }
    }

    /// Announcements sharing an attribute set go in one UPDATE, with the attributes as
    /// the import policy left them; withdrawals of each family follow in order.
    #[test]
    fn post_policy_changes_become_updates_in_order() {
        let accepted: Attrs = Arc::new(bgp_rib::RouteAttrs {
            attrs: bgp_proto::PathAttributes {
                local_pref: Some(300),
                communities: vec![bgp_proto::Community::new(65000, 7)],
                ..Default::default()
            },
            next_hop: Some(bgp_proto::MpNextHop::V4([192, 0, 2, 2].into())),
        });
        let changes = [
            (nlri("10.1.0.0/24"), Some(accepted.clone())),
            (nlri("10.2.0.0/24"), Some(accepted.clone())),
            (nlri("10.9.0.0/24"), None),
            (nlri("2001:db8::/32"), None),
        ];
        let u = decoded(&changes);
        assert_eq!(u.len(), 3, "{u:?}");
        assert_eq!(u[0].nlri, [nlri("10.1.0.0/24"), nlri("10.2.0.0/24")]);
        assert_eq!(u[0].attributes.local_pref, Some(300));
        assert_eq!(
            u[0].attributes.communities,
            [bgp_proto::Community::new(65000, 7)]
        );
        assert_eq!(u[0].attributes.next_hop, Some([192, 0, 2, 2].into()));
        assert_eq!(u[1].withdrawn, [nlri("10.9.0.0/24")]);
        assert!(u[1].nlri.is_empty());
        let v6 = u[2].mp_unreach.as_ref().expect("MP_UNREACH_NLRI");
        assert_eq!(v6.family, Family::IPV6_UNICAST);
        assert_eq!(
            v6.nlri,
            bgp_proto::MpNlri::Unicast(vec![nlri("2001:db8::/32")])
        );
    }

    /// The per-peer header says which Adj-RIB-In a message is about (RFC 7854 4.2).
    #[test]
    fn the_l_and_o_flags_name_the_rib() {
        let s = test_facts();
        let flags = |rib| {
            let f = header(&s, rib).flags;
            (f.post_policy(), f.adj_rib_out())
        };
        assert_eq!(flags(AdjRib::PrePolicyIn), (false, false));
        assert_eq!(flags(AdjRib::PostPolicyIn), (true, false));
        assert_eq!(flags(AdjRib::PostPolicyOut), (true, true));
        assert_eq!(
            header(&s, AdjRib::PostPolicyOut).key(),
            header(&s, AdjRib::PrePolicyIn).key(),
            "one peer"
        );
    }
}
