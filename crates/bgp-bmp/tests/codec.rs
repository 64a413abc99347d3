//! The BMP codec message by message: exact bytes of each message type against the layout
//! of RFC 7854 4 (known answers built by hand), what decodes back, what is refused, and
//! how a station decodes the UPDATEs of Route Monitoring from the Peer Up's OPENs.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use bgp_bmp::wire::{
    decode_message, encode_message, frame_len, information_type, peer_down_reason, stat_type,
    BmpMessage, DecodeError, Initiation, PeerDown, PeerDownReason, PeerFlags, PeerHeader, PeerType,
    RouteMirroring, RouteMonitoring, Stat, StatValue, StatisticsReport, Termination,
    TerminationReason, Tlv, DEFAULT_MAX_MESSAGE_LEN,
};
use bgp_proto::wire::encode_end_of_rib;
use bgp_proto::{AddPathMode, CodecContext, Family};
use bytes::{Bytes, BytesMut};
use common::{attrs, notification, peer, peer_up, update};

fn encode(msg: &BmpMessage) -> Bytes {
    let mut out = BytesMut::new();
    encode_message(msg, &mut out).unwrap();
    out.freeze()
}

/// Encode, check the frame, decode: the same value back.
fn round_trip(msg: &BmpMessage) -> Bytes {
    let bytes = encode(msg);
    assert_eq!(
        frame_len(&bytes, DEFAULT_MAX_MESSAGE_LEN),
        Ok(Some(bytes.len()))
    );
    assert_eq!(&decode_message(bytes.clone()).unwrap(), msg);
    // Every cut of the frame is refused without a panic.
    for cut in 0..bytes.len() {
        assert!(decode_message(bytes.slice(..cut)).is_err(), "cut at {cut}");
    }
    bytes
}

fn end_of_rib() -> Bytes {
    let mut v = Vec::new();
    encode_end_of_rib(Family::IPV4_UNICAST, &mut v);
    v.remove(0)
}

/// The per-peer header of `peer(1)` with `flags`, timestamp 1700000000.000005.
fn peer_header_bytes(flags: u8) -> Vec<u8> {
    let mut b = vec![0, flags];
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&[0; 12]);
    b.extend_from_slice(&[192, 0, 2, 1]);
    b.extend_from_slice(&65001u32.to_be_bytes());
    b.extend_from_slice(&[10, 0, 0, 1]);
    b.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    b.extend_from_slice(&5u32.to_be_bytes());
    b
}

fn timed(p: PeerHeader) -> PeerHeader {
    PeerHeader {
        timestamp_seconds: 1_700_000_000,
        timestamp_microseconds: 5,
        ..p
    }
}

#[test]
fn route_monitoring_known_answer_rfc7854_4_6() {
    let eor = end_of_rib();
    let mut want = vec![3];
    want.extend_from_slice(&((6 + 42 + eor.len()) as u32).to_be_bytes());
    want.push(0);
    want.extend(peer_header_bytes(0x40));
    want.extend_from_slice(&eor);
    let msg = BmpMessage::RouteMonitoring(RouteMonitoring {
        peer: timed(peer(1)).with_flags(PeerFlags(PeerFlags::POST_POLICY)),
        update: eor,
    });
    assert_eq!(&round_trip(&msg)[..], &want[..]);
    // An UPDATE with bytes after it, or another BGP message, is refused both ways.
    let mut trailing = want.clone();
    trailing.push(0);
    trailing[4] += 1;
    assert!(decode_message(Bytes::from(trailing)).is_err());
    let BmpMessage::RouteMonitoring(mut rm) = msg else {
        unreachable!()
    };
    rm.update = notification(6, 2);
    assert!(encode_message(&BmpMessage::RouteMonitoring(rm), &mut BytesMut::new()).is_err());
}

#[test]
fn initiation_and_termination_tlvs_rfc7854_4_3_and_4_5() {
    let init = BmpMessage::Initiation(Initiation::new("node-1", "bgpd"));
    let bytes = round_trip(&init);
    let want: &[u8] = &[
        3, 0, 0, 0, 24, 4, // header
        0, 1, 0, 4, b'b', b'g', b'p', b'd', // sysDescr
        0, 2, 0, 6, b'n', b'o', b'd', b'e', b'-', b'1', // sysName
    ];
    assert_eq!(&bytes[..], want);
    let BmpMessage::Initiation(i) = decode_message(bytes).unwrap() else {
        unreachable!()
    };
    assert_eq!(i.sys_name().as_deref(), Some("node-1"));
    assert_eq!(i.sys_descr().as_deref(), Some("bgpd"));

    let term = Termination::new(TerminationReason::OUT_OF_RESOURCES, "full");
    let bytes = round_trip(&BmpMessage::Termination(term.clone()));
    assert_eq!(
        &bytes[..],
        &[3, 0, 0, 0, 20, 5, 0, 1, 0, 2, 0, 2, 0, 0, 0, 4, b'f', b'u', b'l', b'l']
    );
    assert_eq!(term.reason(), Some(TerminationReason::OUT_OF_RESOURCES));
    assert_eq!(
        Termination::new(TerminationReason(1), "").information.len(),
        1
    );
}

#[test]
fn peer_up_carries_both_opens_rfc7854_4_10() {
    let up = peer_up(1, &[]);
    let bytes = round_trip(&BmpMessage::PeerUp(up.clone()));
    let at = 6 + 42;
    assert_eq!(bytes[5], 3, "type Peer Up");
    assert_eq!(
        &bytes[at..at + 16],
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 254]
    );
    assert_eq!(&bytes[at + 16..at + 20], &[0, 179, 0x9c, 0x41]);
    let sent = &bytes[at + 20..at + 20 + up.sent_open.len()];
    assert_eq!(sent, &up.sent_open[..]);
    assert_eq!(up.decode_sent_open().unwrap().asn(), 64512);
    assert_eq!(up.decode_received_open().unwrap().asn(), 65001);
    // The information TLV is last.
    assert_eq!(
        &bytes[bytes.len() - 8..],
        &[0, 0, 0, 4, b'p', b'e', b'e', b'r']
    );

    // Mixed families and a non-OPEN in place of an OPEN are refused.
    let mut v6_local = up.clone();
    v6_local.local_address = "2001:db8::1".parse().unwrap();
    assert!(encode_message(&BmpMessage::PeerUp(v6_local), &mut BytesMut::new()).is_err());
    let mut not_open = up;
    not_open.received_open = notification(6, 2);
    assert!(encode_message(&BmpMessage::PeerUp(not_open), &mut BytesMut::new()).is_err());
}

#[test]
fn update_context_follows_the_opens_and_the_flags() {
    let v4 = Family::IPV4_UNICAST;
    // Both sides send and receive path ids for IPv4 unicast.
    let up = peer_up(1, &[(v4, AddPathMode::Both)]);
    let ctx = up.update_context(PeerFlags::default()).unwrap();
    assert!(ctx.four_octet_as && ctx.receives_path_id(v4));
    assert!(!ctx.receives_path_id(Family::IPV6_UNICAST));
    let legacy = up
        .update_context(PeerFlags(PeerFlags::LEGACY_AS_PATH))
        .unwrap();
    assert!(!legacy.four_octet_as);

    // The peer sends, the router only receives: path ids in the Adj-RIB-In only.
    let mut one_way = peer_up(1, &[]);
    one_way.sent_open = common::open(
        64512,
        Ipv4Addr::new(10, 0, 0, 254),
        &[(v4, AddPathMode::Receive)],
    );
    one_way.received_open = common::open(
        65001,
        Ipv4Addr::new(10, 0, 0, 1),
        &[(v4, AddPathMode::Send)],
    );
    let rib_in = one_way.update_context(PeerFlags::default()).unwrap();
    let rib_out = one_way
        .update_context(PeerFlags(PeerFlags::ADJ_RIB_OUT))
        .unwrap();
    assert!(rib_in.receives_path_id(v4));
    assert!(!rib_out.receives_path_id(v4));

    // A station decodes Route Monitoring with it: prefixes and path ids come back.
    let ctx = CodecContext {
        four_octet_as: true,
        add_path_receive: vec![v4],
        add_path_send: vec![v4],
        ..Default::default()
    };
    let pdu = update(
        &[("10.1.0.0/16", Some(7)), ("10.2.0.0/16", Some(8))],
        &attrs(&[65001, 4_200_000_000]),
        &ctx,
    );
    let rm = RouteMonitoring {
        peer: peer(1),
        update: pdu,
    };
    let decoded = rm
        .decode_update(&up.update_context(rm.peer.flags).unwrap())
        .unwrap();
    let got: Vec<_> = decoded
        .update
        .announced()
        .map(|(_, n)| (n.prefix.to_string(), n.path_id))
        .collect();
    assert_eq!(
        got,
        [
            ("10.1.0.0/16".to_string(), Some(7)),
            ("10.2.0.0/16".to_string(), Some(8))
        ]
    );
    assert_eq!(decoded.update.attributes, {
        let mut a = attrs(&[65001, 4_200_000_000]);
        a.next_hop = Some(Ipv4Addr::new(192, 0, 2, 1));
        a
    });
}

#[test]
fn peer_down_reasons_rfc7854_4_9() {
    let cases = [
        (
            PeerDownReason::LocalNotification(notification(6, 2)),
            peer_down_reason::LOCAL_NOTIFICATION,
            21,
        ),
        (
            PeerDownReason::LocalNoNotification(18),
            peer_down_reason::LOCAL_NO_NOTIFICATION,
            2,
        ),
        (
            PeerDownReason::RemoteNotification(notification(4, 0)),
            peer_down_reason::REMOTE_NOTIFICATION,
            21,
        ),
        (
            PeerDownReason::RemoteNoData,
            peer_down_reason::REMOTE_NO_DATA,
            0,
        ),
        (
            PeerDownReason::PeerDeconfigured,
            peer_down_reason::PEER_DECONFIGURED,
            0,
        ),
        (
            PeerDownReason::LocalTlv(vec![Tlv::text(information_type::VRF_TABLE_NAME, "main")]),
            peer_down_reason::LOCAL_TLV,
            8,
        ),
        (
            PeerDownReason::Unknown {
                code: 77,
                data: Bytes::from_static(&[1, 2]),
            },
            77,
            2,
        ),
    ];
    for (reason, code, data_len) in cases {
        let msg = BmpMessage::PeerDown(PeerDown {
            peer: peer(1),
            reason: reason.clone(),
        });
        let bytes = round_trip(&msg);
        assert_eq!(bytes[5], 2);
        assert_eq!(bytes[48], code);
        assert_eq!(bytes.len(), 6 + 42 + 1 + data_len, "reason {code}");
    }
    let down = PeerDownReason::RemoteNotification(notification(4, 0));
    assert_eq!(
        down.notification().map(|n| (n.code, n.subcode)),
        Some((4, 0))
    );
    assert_eq!(PeerDownReason::RemoteNoData.notification(), None);
    // Data after a reason that carries none.
    let mut bytes = encode(&BmpMessage::PeerDown(PeerDown {
        peer: peer(1),
        reason: PeerDownReason::RemoteNoData,
    }))
    .to_vec();
    bytes.push(0);
    bytes[4] += 1;
    assert!(matches!(
        decode_message(Bytes::from(bytes)),
        Err(DecodeError::Malformed(_))
    ));
    // A known code may not hide in Unknown.
    let hidden = BmpMessage::PeerDown(PeerDown {
        peer: peer(1),
        reason: PeerDownReason::Unknown {
            code: 4,
            data: Bytes::new(),
        },
    });
    assert!(encode_message(&hidden, &mut BytesMut::new()).is_err());
}

#[test]
fn statistics_report_rfc7854_4_8() {
    let report = StatisticsReport {
        peer: peer(1),
        stats: vec![
            Stat::counter(stat_type::REJECTED_PREFIXES, 2),
            Stat::gauge(stat_type::ADJ_RIB_IN_ROUTES, 100),
            Stat::family_gauge(
                stat_type::ADJ_RIB_IN_FAMILY_ROUTES,
                Family::IPV4_UNICAST,
                60,
            ),
            Stat::family_gauge(
                stat_type::ADJ_RIB_IN_FAMILY_ROUTES,
                Family::IPV6_UNICAST,
                40,
            ),
        ],
    };
    let bytes = round_trip(&BmpMessage::StatisticsReport(report.clone()));
    assert_eq!(bytes.len(), 6 + 42 + 4 + 8 + 12 + 15 + 15);
    assert_eq!(
        report.get(
            stat_type::ADJ_RIB_IN_FAMILY_ROUTES,
            Some(Family::IPV6_UNICAST)
        ),
        Some(&StatValue::FamilyGauge(Family::IPV6_UNICAST, 40))
    );
}

#[test]
fn route_mirroring_rfc7854_4_7() {
    let mut broken = notification(6, 2).to_vec();
    broken[0] = 0; // mirrored as received: not checked
    let msg = RouteMirroring {
        peer: peer(1),
        tlvs: vec![Tlv::new(0, broken.clone()), Tlv::new(1, vec![0, 1])],
    };
    round_trip(&BmpMessage::RouteMirroring(msg.clone()));
    assert_eq!(
        msg.messages().map(|b| b.to_vec()).collect::<Vec<_>>(),
        [broken]
    );
    assert_eq!(msg.information().collect::<Vec<_>>(), [1]);
}

#[test]
fn ipv6_and_loc_rib_peers_rfc9069() {
    let v6 = PeerHeader::new(
        "2001:db8::7".parse().unwrap(),
        4_200_000_000,
        Ipv4Addr::new(1, 2, 3, 4),
    );
    let msg = BmpMessage::RouteMonitoring(RouteMonitoring {
        peer: v6.clone(),
        update: end_of_rib(),
    });
    let bytes = round_trip(&msg);
    assert_eq!(bytes[7], 0x80, "V flag");
    // A Loc-RIB instance peer: zero address, F flag in the V position.
    let loc_rib = PeerHeader {
        peer_type: PeerType::LOC_RIB_INSTANCE,
        flags: PeerFlags(0),
        distinguisher: 1,
        address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ..v6
    };
    round_trip(&BmpMessage::RouteMonitoring(RouteMonitoring {
        peer: loc_rib,
        update: end_of_rib(),
    }));
}

#[test]
fn framing_errors() {
    assert_eq!(
        decode_message(Bytes::from_static(&[2, 0, 0, 0, 6, 4])),
        Err(DecodeError::Version(2))
    );
    assert!(matches!(
        decode_message(Bytes::from_static(&[3, 0, 0, 0, 7, 4])),
        Err(DecodeError::Length { len: 7, .. })
    ));
    assert_eq!(
        decode_message(Bytes::from_static(&[3, 0, 0, 0, 6, 9])),
        Err(DecodeError::UnknownType(9))
    );
    assert_eq!(
        decode_message(Bytes::from_static(&[3, 0, 0, 0, 6, 4])),
        Ok(BmpMessage::Initiation(Initiation {
            information: vec![]
        }))
    );
}
