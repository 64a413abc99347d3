//! Properties of the BMP codec: every message value encodes and decodes back to itself;
//! arbitrary bytes, and valid messages with bytes changed or cut, never make the decoder
//! panic, and whatever decodes re-encodes to a message that decodes the same.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgp_bmp::wire::{
    decode_message, encode_message, frame_len, BmpMessage, Initiation, PeerDown, PeerDownReason,
    PeerFlags, PeerHeader, PeerType, PeerUp, RouteMirroring, RouteMonitoring, Stat, StatValue,
    StatisticsReport, Termination, Tlv,
};
use bgp_proto::{AddPathMode, Afi, CodecContext, Family, Safi};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

fn arb_peer() -> impl Strategy<Value = PeerHeader> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u64>(),
        any::<u128>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(t, flags, distinguisher, addr, asn, id, s, us)| {
            let flags = PeerFlags(flags);
            let address = if flags.is_ipv6() {
                IpAddr::V6(Ipv6Addr::from(addr))
            } else {
                IpAddr::V4(Ipv4Addr::from(addr as u32))
            };
            PeerHeader {
                peer_type: PeerType(t),
                flags,
                distinguisher,
                address,
                asn,
                bgp_id: Ipv4Addr::from(id),
                timestamp_seconds: s,
                timestamp_microseconds: us,
            }
        })
}

fn arb_tlvs() -> impl Strategy<Value = Vec<Tlv>> {
    proptest::collection::vec(
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..24))
            .prop_map(|(k, v)| Tlv::new(k, v)),
        0..4,
    )
}

fn arb_update() -> impl Strategy<Value = Bytes> {
    (
        proptest::collection::vec((any::<u32>(), 8u8..=32, any::<Option<u32>>()), 1..6),
        proptest::collection::vec(1u32..4_000_000_000, 1..6),
        any::<bool>(),
    )
        .prop_map(|(prefixes, asns, add_path)| {
            let ctx = CodecContext {
                four_octet_as: true,
                add_path_receive: vec![Family::IPV4_UNICAST],
                add_path_send: if add_path {
                    vec![Family::IPV4_UNICAST]
                } else {
                    vec![]
                },
                ..Default::default()
            };
            let texts: Vec<(String, Option<u32>)> = prefixes
                .iter()
                .map(|(a, l, id)| {
                    let net = ipnet::Ipv4Net::new(Ipv4Addr::from(*a), *l).unwrap().trunc();
                    (net.to_string(), id.filter(|_| add_path))
                })
                .collect();
            let refs: Vec<(&str, Option<u32>)> =
                texts.iter().map(|(p, id)| (p.as_str(), *id)).collect();
            common::update(&refs, &common::attrs(&asns), &ctx)
        })
}

fn arb_stat() -> impl Strategy<Value = Stat> {
    prop_oneof![
        (prop_oneof![0u16..=6, 11u16..=13], any::<u32>()).prop_map(|(t, v)| Stat::counter(t, v)),
        (
            prop_oneof![Just(7u16), Just(8), Just(14), Just(15)],
            any::<u64>()
        )
            .prop_map(|(t, v)| Stat::gauge(t, v)),
        (
            prop_oneof![Just(9u16), Just(10), Just(16), Just(17)],
            any::<u16>(),
            any::<u8>(),
            any::<u64>()
        )
            .prop_map(|(t, afi, safi, v)| Stat::family_gauge(
                t,
                Family::new(Afi(afi), Safi(safi)),
                v
            )),
        (18u16.., proptest::collection::vec(any::<u8>(), 0..12)).prop_map(|(t, v)| Stat {
            stat_type: t,
            value: StatValue::Other(Bytes::from(v)),
        }),
    ]
}

fn arb_reason() -> impl Strategy<Value = PeerDownReason> {
    prop_oneof![
        (1u8..=6, 0u8..=9)
            .prop_map(|(c, s)| PeerDownReason::LocalNotification(common::notification(c, s))),
        any::<u16>().prop_map(PeerDownReason::LocalNoNotification),
        (1u8..=6, 0u8..=9)
            .prop_map(|(c, s)| PeerDownReason::RemoteNotification(common::notification(c, s))),
        Just(PeerDownReason::RemoteNoData),
        Just(PeerDownReason::PeerDeconfigured),
        arb_tlvs().prop_map(PeerDownReason::LocalTlv),
        (7u8.., proptest::collection::vec(any::<u8>(), 0..12)).prop_map(|(code, d)| {
            PeerDownReason::Unknown {
                code,
                data: Bytes::from(d),
            }
        }),
    ]
}

fn arb_peer_up() -> impl Strategy<Value = PeerUp> {
    (
        arb_peer(),
        any::<u128>(),
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        0usize..4,
        arb_tlvs(),
    )
        .prop_map(|(peer, local, lp, rp, asn, mode, information)| {
            let local_address = if peer.flags.is_ipv6() {
                IpAddr::V6(Ipv6Addr::from(local))
            } else {
                IpAddr::V4(Ipv4Addr::from(local as u32))
            };
            let modes = [AddPathMode::Receive, AddPathMode::Send, AddPathMode::Both];
            let add_path: Vec<_> = modes
                .get(mode)
                .map(|m| vec![(Family::IPV4_UNICAST, *m)])
                .unwrap_or_default();
            PeerUp {
                local_address,
                local_port: lp,
                remote_port: rp,
                sent_open: common::open(asn.max(1), Ipv4Addr::new(10, 0, 0, 1), &add_path),
                received_open: common::open(peer.asn.max(1), Ipv4Addr::new(10, 0, 0, 2), &[]),
                information,
                peer,
            }
        })
}

fn arb_message() -> impl Strategy<Value = BmpMessage> {
    prop_oneof![
        (arb_peer(), arb_update()).prop_map(|(peer, update)| BmpMessage::RouteMonitoring(
            RouteMonitoring { peer, update }
        )),
        (arb_peer(), proptest::collection::vec(arb_stat(), 0..6)).prop_map(|(peer, stats)| {
            BmpMessage::StatisticsReport(StatisticsReport { peer, stats })
        }),
        (arb_peer(), arb_reason())
            .prop_map(|(peer, reason)| BmpMessage::PeerDown(PeerDown { peer, reason })),
        arb_peer_up().prop_map(BmpMessage::PeerUp),
        arb_tlvs().prop_map(|information| BmpMessage::Initiation(Initiation { information })),
        arb_tlvs().prop_map(|information| BmpMessage::Termination(Termination { information })),
        (arb_peer(), arb_tlvs())
            .prop_map(|(peer, tlvs)| BmpMessage::RouteMirroring(RouteMirroring { peer, tlvs })),
    ]
}

fn encode(msg: &BmpMessage) -> Bytes {
    let mut out = BytesMut::new();
    encode_message(msg, &mut out).unwrap();
    out.freeze()
}

/// Decoding `bytes` must not panic; what decodes must re-encode and decode the same.
fn decode_is_stable(bytes: Bytes) {
    let _ = frame_len(&bytes, 1 << 20);
    if let Ok(msg) = decode_message(bytes) {
        let again = decode_message(encode(&msg)).unwrap();
        assert_eq!(again, msg);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_decode_identity(msg in arb_message()) {
        let bytes = encode(&msg);
        prop_assert_eq!(frame_len(&bytes, usize::MAX), Ok(Some(bytes.len())));
        prop_assert_eq!(decode_message(bytes).unwrap(), msg);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        decode_is_stable(Bytes::from(bytes));
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(
        msg_type in 0u8..8,
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = vec![3];
        bytes.extend_from_slice(&((6 + body.len()) as u32).to_be_bytes());
        bytes.push(msg_type);
        bytes.extend(body);
        decode_is_stable(Bytes::from(bytes));
    }

    #[test]
    fn changed_and_cut_messages_never_panic(
        msg in arb_message(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&msg).to_vec();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        decode_is_stable(Bytes::from(bytes.clone()));
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
        decode_is_stable(Bytes::from(bytes));
    }
}
