//! Arbitrary (including inconsistent) UPDATE contents never panic the RIB, and the tables
//! stay consistent: every Loc-RIB prefix has exactly one best path, FIB changes and peer
//! output can always be drained and encoded.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_proto::{
    AsPath, AsSegment, Community, Family, MpNextHop, MpNlri, MpReach, MpUnreach, Nlri, Origin,
    PathAttributes, SegmentType, Update,
};
use bgp_rib::AllReachable;
use common::*;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

fn arb_prefix() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<u32>(), 0u8..=32).prop_map(|(a, l)| IpNet::V4(
            Ipv4Net::new(Ipv4Addr::from(a & 0xFF00_0000 | 0x0A00_0000), l).unwrap_or_default()
        )),
        (any::<u16>(), 0u8..=128).prop_map(|(a, l)| IpNet::V6(
            Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, a, 0, 0, 0, 0, 1), l).unwrap_or_default()
        )),
    ]
}

fn arb_nlri() -> impl Strategy<Value = Nlri> {
    (arb_prefix(), proptest::option::of(0u32..4))
        .prop_map(|(prefix, path_id)| Nlri { path_id, prefix })
}

fn arb_attrs() -> impl Strategy<Value = PathAttributes> {
    (
        proptest::collection::vec(prop_oneof![Just(65000u32), 65001u32..65004], 0..4),
        any::<bool>(),
        proptest::option::of(0u32..3),
        proptest::option::of(50u32..150),
        proptest::collection::vec(
            prop_oneof![
                Just(Community::NO_EXPORT),
                Just(Community::NO_ADVERTISE),
                Just(Community::NO_LLGR),
                Just(Community::new(65000, 1))
            ],
            0..2,
        ),
        proptest::option::of(1u8..5),
        proptest::collection::vec(1u8..5, 0..2),
    )
        .prop_map(
            |(asns, set, med, lp, communities, orig, clusters)| PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath {
                    segments: vec![AsSegment {
                        kind: if set {
                            SegmentType::Set
                        } else {
                            SegmentType::Sequence
                        },
                        asns,
                    }],
                }),
                next_hop: Some(Ipv4Addr::new(192, 0, 2, 9)),
                med,
                local_pref: lp,
                communities,
                originator_id: orig.map(rid),
                cluster_list: clusters.into_iter().map(rid).collect(),
                ..Default::default()
            },
        )
}

fn arb_update() -> impl Strategy<Value = (u8, Update, bool)> {
    (
        0u8..4,
        proptest::collection::vec(arb_nlri(), 0..6),
        proptest::collection::vec(arb_nlri(), 0..6),
        arb_attrs(),
        proptest::option::of((
            prop_oneof![
                Just(Family::IPV4_UNICAST),
                Just(Family::IPV6_UNICAST),
                Just(Family::new(bgp_proto::Afi(25), bgp_proto::Safi(70)))
            ],
            prop_oneof![
                Just(MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 7))),
                Just(MpNextHop::V6 {
                    global: "2001:db8::7".parse().unwrap(),
                    link_local: Some("fe80::7".parse().unwrap())
                }),
                Just(MpNextHop::Opaque(bytes::Bytes::from_static(b"\x01\x02"))),
            ],
            proptest::collection::vec(arb_nlri(), 0..6),
        )),
        proptest::option::of(proptest::collection::vec(arb_nlri(), 0..4)),
        any::<bool>(),
    )
        .prop_map(|(from, nlri, withdrawn, attributes, reach, unreach, twa)| {
            let u = Update {
                withdrawn,
                mp_unreach: unreach.map(|v| MpUnreach {
                    family: Family::IPV6_UNICAST,
                    nlri: MpNlri::Unicast(v),
                }),
                attributes,
                mp_reach: reach.map(|(family, next_hop, v)| MpReach {
                    family,
                    next_hop,
                    nlri: MpNlri::Unicast(v),
                }),
                nlri,
            };
            (from, u, twa)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn arbitrary_updates_keep_tables_consistent(updates in proptest::collection::vec(arb_update(), 1..25)) {
        let mut rib = rib();
        let peers = [
            peer(&mut rib, 2, 65001, false),
            peer(&mut rib, 3, LOCAL_AS, true),
            peer(&mut rib, 4, LOCAL_AS, false),
            peer(&mut rib, 5, 65005, false),
        ];
        // Odd-numbered peers negotiated RFC 8950 (IPv4 routes with IPv6 next hops, both ways)
        // over an IPv6 session; the others did not.
        let session = |from: u8| {
            let mut s = bgp_rib::SessionInfo::new(rid(from + 2), Some(Ipv4Addr::new(192, 0, 2, 1)));
            s.local_v6 = Some("2001:db8::1".parse().unwrap());
            if from % 2 == 1 {
                s.local_v4 = None;
                s.extended_next_hop_v4 = true;
            }
            s
        };
        for from in [1u8, 3] {
            let p = peers[usize::from(from)];
            rib.peer_down(p, false, std::time::Instant::now()).unwrap();
            rib.peer_up(p, session(from), std::time::Instant::now()).unwrap();
        }
        for (k, (from, u, twa)) in updates.iter().enumerate() {
            rib.apply_update(peers[usize::from(*from)], u, *twa).unwrap();
            if k % 3 == 0 {
                rib.process(&AllReachable);
            }
            if k % 5 == 4 {
                rib.peer_down(peers[usize::from(*from)], k % 2 == 0, std::time::Instant::now()).unwrap();
                rib.process(&AllReachable);
                rib.peer_up(peers[usize::from(*from)], session(*from), std::time::Instant::now()).unwrap();
            }
        }
        prop_assert_eq!(rib.audit(), Ok(()));
        rib.process(&AllReachable);
        rib.take_fib(usize::MAX);
        prop_assert_eq!(rib.audit(), Ok(()));
        // The counters `show peers` reads equal the tables they count.
        for p in peers {
            let info = rib.peer_info(p).unwrap();
            let v4 = rib.adj_rib_in(p, Family::IPV4_UNICAST).unwrap();
            let v6 = rib.adj_rib_in(p, Family::IPV6_UNICAST).unwrap();
            prop_assert_eq!((info.received_v4, info.received_v6), (v4.len(), v6.len()));
            let accepted = |v: &[(Nlri, bgp_rib::Attrs, bool)]| v.iter().filter(|x| x.2).count();
            prop_assert_eq!((info.accepted_v4, info.accepted_v6), (accepted(&v4), accepted(&v6)));
            let out = |f| rib.adj_rib_out(p, f).unwrap().len();
            prop_assert_eq!(
                (info.advertised_v4, info.advertised_v6),
                (out(Family::IPV4_UNICAST), out(Family::IPV6_UNICAST))
            );
        }
        for (prefix, _) in rib.loc_rib() {
            let d = rib.route(prefix, &AllReachable).unwrap();
            prop_assert_eq!(d.paths.iter().filter(|p| p.best).count(), 1);
        }
        for (i, p) in peers.iter().enumerate() {
            let mut frames = Vec::new();
            if i % 2 == 0 || i == 3 {
                rib.take_encoded(*p, usize::MAX, &mut frames).unwrap();
            } else {
                take(&mut rib, *p).unwrap();
            }
            // Whatever was sent decodes cleanly; IPv4 routes carry an IPv6 next hop only
            // towards the peer that negotiated it (RFC 8950 4).
            let ctx = bgp_proto::CodecContext { four_octet_as: true, ..Default::default() };
            for f in &frames {
                let Ok(bgp_proto::wire::Inbound::Update(d)) = bgp_proto::wire::decode_message(f, &ctx) else {
                    panic!("peer {i}: undecodable frame");
                };
                prop_assert!(d.treat_as_withdraw.is_none());
                if let Some(r) = &d.update.mp_reach {
                    if r.family == Family::IPV4_UNICAST {
                        let v6_next_hop = matches!(r.next_hop, MpNextHop::V6 { .. });
                        prop_assert!(i == 3 || !v6_next_hop, "peer {} got an IPv6 next hop: {:?}", i, d.update);
                    }
                }
            }
        }
        prop_assert_eq!(rib.audit(), Ok(()));
        // Everything goes: no attribute set may stay referenced.
        for p in peers {
            rib.remove_peer(p).unwrap();
        }
        rib.process(&AllReachable);
        prop_assert_eq!(rib.audit(), Ok(()));
        prop_assert_eq!(rib.attribute_sets(), 0);
    }
}
