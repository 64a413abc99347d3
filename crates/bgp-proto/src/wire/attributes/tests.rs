//! Decoding and encoding path attributes: every RFC 7606 outcome, AS4 merging, Partial bits.

use bytes::BytesMut;

use super::*;
use crate::wire::types::{AddPathMode, Nlri, PartialBits};

const V4: Family = Family::IPV4_UNICAST;
const V6: Family = Family::IPV6_UNICAST;

fn ctx4() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        ..CodecContext::default()
    }
}

fn ctx2() -> CodecContext {
    CodecContext::default()
}

/// One attribute TLV, with the extended length form when `value` needs it.
fn attr(flags: u8, type_code: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, type_code];
    if flags & af::EXTENDED_LENGTH != 0 {
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        v.push(value.len() as u8);
    }
    v.extend_from_slice(value);
    v
}

fn dec(block: &[u8], ctx: &CodecContext) -> DecodedAttributes {
    decode_path_attributes(block, ctx, MpReachForm::Standard).unwrap()
}

fn dec_err(block: &[u8], ctx: &CodecContext) -> NotificationError {
    decode_path_attributes(block, ctx, MpReachForm::Standard).unwrap_err()
}

fn withdrawn(block: &[u8], ctx: &CodecContext) -> String {
    let d = dec(block, ctx);
    match d.treat_as_withdraw {
        Some(reason) => reason,
        None => panic!("expected treat-as-withdraw: {d:?}"),
    }
}

fn discarded(block: &[u8], ctx: &CodecContext) -> DecodedAttributes {
    let d = dec(block, ctx);
    assert_eq!(d.treat_as_withdraw, None, "{d:?}");
    assert_eq!(d.discarded.len(), 1, "{d:?}");
    d
}

fn seq(asns: &[u32]) -> AsSegment {
    AsSegment {
        kind: SegmentType::Sequence,
        asns: asns.to_vec(),
    }
}

fn full_set() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Egp),
        as_path: Some(AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentType::ConfedSequence,
                    asns: vec![64512],
                },
                AsSegment {
                    kind: SegmentType::ConfedSet,
                    asns: vec![64513],
                },
                seq(&[65001, 4_200_000_000]),
                AsSegment {
                    kind: SegmentType::Set,
                    asns: vec![1, 2],
                },
            ],
        }),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        med: Some(10),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 4_200_000_000,
            address: Ipv4Addr::new(10, 0, 0, 1),
        }),
        communities: vec![Community::new(65000, 1), Community::NO_EXPORT],
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 2)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 4)],
        extended_communities: vec![ExtendedCommunity([0, 2, 0xFD, 0xE8, 0, 0, 0, 1])],
        large_communities: vec![LargeCommunity {
            global: 4_200_000_000,
            local1: 1,
            local2: 2,
        }],
        otc: Some(65002),
        unknown: vec![RawAttribute {
            flags: af::OPTIONAL | af::TRANSITIVE | af::PARTIAL,
            type_code: 99,
            value: Bytes::from_static(b"xyz"),
        }],
        // Received with Partial from some earlier speaker (RFC 4271 4.3).
        partial: PartialBits::default().with(at::COMMUNITIES).with(at::OTC),
    }
}

fn encode(
    attrs: &PathAttributes,
    reach: Option<&MpReach>,
    unreach: Option<&MpUnreach>,
    ctx: &CodecContext,
) -> BytesMut {
    let mut out = BytesMut::new();
    encode_path_attributes(attrs, reach, unreach, ctx, &mut out).unwrap();
    out
}

#[test]
fn every_attribute_round_trips_on_a_4_octet_session() {
    let attrs = full_set();
    let reach = MpReach {
        family: V6,
        next_hop: MpNextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
        },
        nlri: MpNlri::Unicast(vec![Nlri::new("2001:db8:1::/48".parse().unwrap())]),
    };
    let unreach = MpUnreach {
        family: V6,
        nlri: MpNlri::Unicast(vec![Nlri::new("2001:db8:2::/48".parse().unwrap())]),
    };
    let wire = encode(&attrs, Some(&reach), Some(&unreach), &ctx4());
    let d = dec(&wire, &ctx4());
    assert_eq!(d.treat_as_withdraw, None);
    assert!(d.discarded.is_empty(), "{:?}", d.discarded);
    assert_eq!(d.attributes, attrs);
    assert_eq!(d.mp_reach, Some(reach));
    assert_eq!(d.mp_unreach, Some(unreach));
    // Ascending type order (RFC 4271 5).
    let mut r = Reader::new(&wire);
    let mut types = Vec::new();
    while let Some((_, t, _)) = attribute_tlv(&mut r) {
        types.push(t);
    }
    assert_eq!(
        types,
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 32, 35, 99]
    );
}

#[test]
fn two_octet_session_uses_as_trans_and_as4_attributes_both_ways() {
    let attrs = full_set();
    let wire = encode(&attrs, None, None, &ctx2());
    let d = dec(&wire, &ctx2());
    assert_eq!(d.treat_as_withdraw, None);
    assert!(d.discarded.is_empty(), "{:?}", d.discarded);
    assert_eq!(d.attributes, attrs, "RFC 6793 4.2.3 reconstruction");
    // On the wire: AS_TRANS in AS_PATH and AGGREGATOR, plus AS4_PATH/AS4_AGGREGATOR.
    let mut r = Reader::new(&wire);
    let mut seen = Vec::new();
    while let Some((_, t, v)) = attribute_tlv(&mut r) {
        if t == at::AS_PATH {
            assert_eq!(
                decode_as_path(v, false).unwrap().segments[2].asns,
                [65001, 23456]
            );
        }
        if t == at::AGGREGATOR {
            assert_eq!(&v[..2], &AS_TRANS.to_be_bytes());
        }
        seen.push(t);
    }
    assert!(seen.contains(&at::AS4_PATH) && seen.contains(&at::AS4_AGGREGATOR));
    // All-2-octet paths need no AS4_PATH.
    let mut small = PathAttributes {
        as_path: Some(AsPath {
            segments: vec![seq(&[65001, 65002])],
        }),
        ..Default::default()
    };
    let wire = encode(&small, None, None, &ctx2());
    assert_eq!(
        &wire[..],
        &attr(0x40, 2, &[2, 2, 0xFD, 0xE9, 0xFD, 0xEA])[..]
    );
    small.as_path = Some(AsPath::default());
    assert_eq!(&encode(&small, None, None, &ctx2())[..], &[0x40, 2, 0]);
}

#[test]
fn as4_path_reconstruction_rfc6793_4_2_3() {
    let as_path = attr(0x40, 2, &[2, 3, 0xFD, 0xE9, 0x5B, 0xA0, 0x5B, 0xA0]);
    let as4 = attr(0xC0, 17, &[2, 2, 0xFA, 0x56, 0xEA, 1, 0xFA, 0x56, 0xEA, 2]);
    let d = dec(&[as_path.clone(), as4.clone()].concat(), &ctx2());
    assert_eq!(
        d.attributes.as_path.unwrap().segments,
        vec![seq(&[65001, 4_200_000_001, 4_200_000_002])]
    );
    // AS4_PATH longer than AS_PATH: ignored.
    let long4 = attr(
        0xC0,
        17,
        &[2, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4],
    );
    let d = dec(&[as_path.clone(), long4].concat(), &ctx2());
    assert_eq!(
        d.attributes.as_path.unwrap().segments,
        vec![seq(&[65001, 23456, 23456])]
    );
    assert_eq!(d.discarded.len(), 1);
    // Received on a 4-octet session: discarded, AS_PATH untouched.
    let path4 = attr(0x40, 2, &[2, 1, 0, 0, 0xFD, 0xE9]);
    let d = discarded(&[path4, as4.clone()].concat(), &ctx4());
    assert_eq!(d.attributes.as_path.unwrap().segments, vec![seq(&[65001])]);
    // Malformed AS4_PATH: attribute-discard, the update stands.
    let bad4 = attr(0xC0, 17, &[2, 5, 0, 0, 0, 1]);
    let d = discarded(&[as_path.clone(), bad4].concat(), &ctx2());
    assert_eq!(
        d.attributes.as_path.unwrap().segments,
        vec![seq(&[65001, 23456, 23456])]
    );
    // AS 0 in AS4_PATH: discard (RFC 7607).
    discarded(
        &[as_path.clone(), attr(0xC0, 17, &[2, 1, 0, 0, 0, 0])].concat(),
        &ctx2(),
    );
    // AGGREGATOR with AS_TRANS is replaced by AS4_AGGREGATOR.
    let agg = attr(0xC0, 7, &[0x5B, 0xA0, 10, 0, 0, 1]);
    let agg4 = attr(0xC0, 18, &[0xFA, 0x56, 0xEA, 1, 10, 0, 0, 1]);
    let d = dec(
        &[as_path.clone(), agg, agg4.clone(), as4.clone()].concat(),
        &ctx2(),
    );
    assert_eq!(d.attributes.aggregator.unwrap().asn, 4_200_000_001);
    // AGGREGATOR with a real 2-octet AS: AS4_AGGREGATOR and AS4_PATH ignored.
    let agg_real = attr(0xC0, 7, &[0xFD, 0xE9, 10, 0, 0, 1]);
    let d = dec(&[as_path, agg_real, agg4, as4].concat(), &ctx2());
    assert_eq!(d.attributes.aggregator.unwrap().asn, 65001);
    assert_eq!(
        d.attributes.as_path.unwrap().segments,
        vec![seq(&[65001, 23456, 23456])]
    );
}

#[test]
fn as_path_malformations_are_treat_as_withdraw() {
    for (value, four) in [
        (&[0x02, 0xff, 0x00, 0x00, 0xfd, 0xe9][..], true), // segment overrun
        (&[0x02, 0xff, 0x00, 0x00, 0xfd, 0xe9][..], false),
        (&[2, 0], true),                // empty segment
        (&[0, 1, 0, 0, 0, 1], true),    // segment type 0
        (&[5, 1, 0, 0, 0, 1], true),    // segment type 5
        (&[2, 1, 0, 0, 0, 0], true),    // AS 0 (RFC 7607)
        (&[2, 1, 0, 0], false),         // AS 0, 2-octet
        (&[2], true),                   // truncated header
        (&[2, 1, 0, 0, 0, 1, 2], true), // trailing octet
    ] {
        let ctx = if four { ctx4() } else { ctx2() };
        let reason = withdrawn(&attr(0x40, 2, value), &ctx);
        assert!(reason.contains("AS_PATH"), "{reason}");
    }
}

#[test]
fn long_as_path_in_an_extended_message_decodes() {
    // 3000 ASNs (> 2048) in 12 segments: 12024 octets, only possible with RFC 8654.
    let mut value = Vec::new();
    for chunk in (1..=3000u32).collect::<Vec<_>>().chunks(255) {
        value.push(2);
        value.push(chunk.len() as u8);
        chunk
            .iter()
            .for_each(|a| value.extend_from_slice(&a.to_be_bytes()));
    }
    let d = dec(&attr(0x50, 2, &value), &ctx4());
    assert_eq!(d.treat_as_withdraw, None);
    assert_eq!(d.attributes.as_path.as_ref().unwrap().path_len(), 3000);
    // And it re-encodes to the same octets.
    let wire = encode(&d.attributes, None, None, &ctx4());
    assert_eq!(&wire[..], &attr(0x50, 2, &value)[..]);
}

#[test]
fn fixed_length_attributes_rfc7606_7() {
    let ctx = ctx4();
    // treat-as-withdraw
    for (flags, t, v) in [
        (0x40u8, 1u8, &[0u8, 0][..]), // ORIGIN length 2
        (0x40, 1, &[3]),              // ORIGIN undefined value
        (0x40, 3, &[1, 2, 3, 4, 5]),  // NEXT_HOP length 5
        (0x80, 4, &[1, 2, 3]),        // MED length 3
        (0x40, 5, &[]),               // LOCAL_PREF length 0
        (0x80, 9, &[1, 2, 3]),        // ORIGINATOR_ID length 3
        (0xC0, 8, &[]),               // COMMUNITIES length 0
        (0xC0, 8, &[1, 2, 3, 4, 5]),  // COMMUNITIES length 5
        (0x80, 10, &[]),              // CLUSTER_LIST length 0
        (0x80, 10, &[1, 2, 3, 4, 5, 6]),
        (0xC0, 16, &[1, 2, 3, 4, 5, 6, 7]), // EXTENDED_COMMUNITIES length 7
        (0xC0, 16, &[]),
        (0xC0, 32, &[0; 11]), // LARGE_COMMUNITY length 11
        (0xC0, 32, &[]),
        (0xC0, 35, &[0, 0, 1]),       // OTC length 3
        (0xC0, 35, &[0, 0, 0, 1, 0]), // OTC length 5
    ] {
        let reason = withdrawn(&attr(flags, t, v), &ctx);
        assert!(reason.contains(attr_name(t)), "{reason}");
    }
    // attribute-discard
    for (flags, t, v, c) in [
        (0x40u8, 6u8, &[0u8][..], ctx4()), // ATOMIC_AGGREGATE length 1
        (0xC0, 7, &[0, 0, 0xFD, 0xE9, 10, 0, 0], ctx4()), // AGGREGATOR length 7
        (0xC0, 7, &[0, 0, 0xFD, 0xE9, 10, 0, 0, 1], ctx2()), // 8 on a 2-octet session
        (0xC0, 7, &[0, 0, 0, 0, 10, 0, 0, 1], ctx4()), // AS 0
        (0xC0, 18, &[0, 0, 0xFD, 0xE9, 10, 0], ctx2()), // AS4_AGGREGATOR length 6
    ] {
        discarded(&attr(flags, t, v), &c);
    }
}

#[test]
fn reflection_attributes_from_an_external_peer_are_discarded_rfc7606_7_9() {
    let external = CodecContext {
        external: true,
        ..ctx4()
    };
    let originator = attr(0x80, at::ORIGINATOR_ID, &[10, 0, 0, 9]);
    let cluster = attr(0x80, at::CLUSTER_LIST, &[10, 0, 0, 1, 10, 0, 0, 2]);
    // Well formed or not, from an external peer they are dropped and the route stays.
    for tlv in [
        originator.clone(),
        cluster.clone(),
        attr(0x80, at::ORIGINATOR_ID, &[1, 2, 3]),
        attr(0x80, at::CLUSTER_LIST, &[]),
        attr(0xC0, at::CLUSTER_LIST, &[10, 0, 0, 1]),
    ] {
        let d = discarded(&tlv, &external);
        assert!(d.discarded[0].contains("external"), "{d:?}");
        assert_eq!(d.attributes.originator_id, None);
        assert!(d.attributes.cluster_list.is_empty());
    }
    // From an internal peer they are kept (and malformed ones still withdraw).
    let d = dec(&[originator, cluster].concat(), &ctx4());
    assert_eq!(d.attributes.originator_id, Some(Ipv4Addr::new(10, 0, 0, 9)));
    assert_eq!(d.attributes.cluster_list.len(), 2);
    assert!(d.discarded.is_empty());
    withdrawn(&attr(0x80, at::ORIGINATOR_ID, &[1, 2, 3]), &ctx4());
}

#[test]
fn attribute_flag_errors_rfc7606_3c() {
    // ORIGIN marked optional: treat-as-withdraw.
    assert!(withdrawn(&attr(0xC0, 1, &[0]), &ctx4()).contains("flags"));
    // MED marked transitive.
    withdrawn(&attr(0xC0, 4, &[0, 0, 0, 1]), &ctx4());
    // AGGREGATOR marked non-transitive: its own action, discard.
    discarded(&attr(0x80, 7, &[0, 0, 0xFD, 0xE9, 10, 0, 0, 1]), &ctx4());
    // MP_REACH marked transitive: still parsed so its prefixes can be withdrawn.
    let reach = [0, 1, 1, 4, 10, 0, 0, 1, 0, 24, 10, 1, 2];
    let d = dec(&attr(0xC0, 14, &reach), &ctx4());
    assert!(d.treat_as_withdraw.is_some());
    assert_eq!(
        d.mp_reach.unwrap().nlri,
        MpNlri::Unicast(vec![Nlri::new("10.1.2.0/24".parse().unwrap())])
    );
    // The Partial and Extended Length bits are not errors.
    let d = dec(&attr(0x70, 1, &[2]), &ctx4());
    assert_eq!(
        (d.treat_as_withdraw, d.attributes.origin),
        (None, Some(Origin::Incomplete))
    );
}

#[test]
fn duplicates_rfc7606_3g() {
    let d = discarded(
        &[attr(0x40, 1, &[0]), attr(0x40, 1, &[2])].concat(),
        &ctx4(),
    );
    assert_eq!(d.attributes.origin, Some(Origin::Igp), "the first one wins");
    let unreach = attr(0x80, 15, &[0, 2, 1]);
    let e = dec_err(&[unreach.clone(), unreach].concat(), &ctx4());
    assert_eq!((e.code, e.subcode), (3, 1));
    let reach = attr(0x80, 14, &[0, 1, 1, 4, 10, 0, 0, 1, 0]);
    let e = dec_err(&[reach.clone(), reach].concat(), &ctx4());
    assert_eq!((e.code, e.subcode), (3, 1));
}

#[test]
fn attribute_framing_errors_rfc7606_4() {
    let origin = attr(0x40, 1, &[0]);
    for tail in [
        &[0x40u8, 1][..],          // truncated header
        &[0x50, 2, 0],             // extended length with too few octets
        &[0x40, 2, 10, 2, 1, 0],   // value overruns the block
        &[0x50, 2, 0xFF, 0xFF, 2], // extended length overrun
        &[0x40],
    ] {
        let block = [&origin[..], tail].concat();
        let d = dec(&block, &ctx4());
        assert!(d.treat_as_withdraw.is_some(), "{tail:?}");
        assert_eq!(
            d.attributes.origin,
            Some(Origin::Igp),
            "attributes before the error are kept"
        );
    }
}

#[test]
fn unknown_attributes() {
    // Optional transitive: kept with its flags; re-encoded with Partial.
    let d = dec(&attr(0xC0, 200, &[1, 2]), &ctx4());
    assert_eq!(
        d.attributes.unknown,
        vec![RawAttribute {
            flags: 0xC0,
            type_code: 200,
            value: Bytes::from_static(&[1, 2])
        }]
    );
    assert_eq!(
        &encode(&d.attributes, None, None, &ctx4())[..],
        &attr(0xE0, 200, &[1, 2])[..]
    );
    // Optional non-transitive: kept for the RIB's eyes, never passed on.
    let d = dec(&attr(0x80, 201, &[1]), &ctx4());
    assert_eq!(d.attributes.unknown.len(), 1);
    assert!(encode(&d.attributes, None, None, &ctx4()).is_empty());
    // Unrecognized well-known: RFC 4271 6.3 reset 3/2 carrying the attribute, also
    // behind attributes that decoded fine and in the extended length form.
    let tlv = attr(0x40, 202, &[9, 8]);
    let mut block = attr(0x40, at::ORIGIN, &[0]);
    block.extend_from_slice(&tlv);
    let e = dec_err(&block, &ctx4());
    assert_eq!((e.code, e.subcode), (3, 2), "{e:?}");
    assert_eq!(&e.data[..], &tlv[..]);
    let ext = attr(0x50, 99, &[1; 3]);
    assert_eq!(ext[2..4], [0, 3]);
    assert_eq!(&dec_err(&ext, &ctx4()).data[..], &ext[..]);
    // A known optional attribute without the Optional bit has wrong flags (RFC 7606
    // 3 c): its own error action, not a reset.
    for t in [at::TUNNEL_ENCAPSULATION, at::AIGP, at::PREFIX_SID] {
        let d = discarded(&attr(0x40, t, &[]), &ctx4());
        assert!(d.discarded[0].contains("flags"), "{d:?}");
    }
    assert!(withdrawn(&attr(0x40, at::PMSI_TUNNEL, &[0; 5]), &ctx4()).contains("flags"));
    // Long unknown values use the extended length on encode.
    let big = PathAttributes {
        unknown: vec![RawAttribute {
            flags: 0xE0,
            type_code: 203,
            value: Bytes::from(vec![7; 300]),
        }],
        ..Default::default()
    };
    let wire = encode(&big, None, None, &ctx4());
    assert_eq!(&wire[..4], &[0xF0, 203, 1, 44]);
    assert_eq!(dec(&wire, &ctx4()).attributes.unknown[0].value.len(), 300);
}

#[test]
fn inner_tlv_overruns_are_discarded_not_propagated() {
    // RFC 9012 tunnel encapsulation: TLV length overruns; sub-TLV overruns.
    discarded(&attr(0xC0, 23, &[0, 8, 0, 10, 1, 2]), &ctx4());
    discarded(&attr(0xC0, 23, &[0, 8, 0, 3, 1, 5, 0]), &ctx4());
    discarded(&attr(0xC0, 23, &[0, 8, 0, 3, 0x80, 0, 9]), &ctx4());
    // RFC 7311 AIGP: TLV length below its header; overrun.
    discarded(&attr(0x80, 26, &[1, 0, 2]), &ctx4());
    discarded(&attr(0x80, 26, &[1, 0, 11, 0, 0]), &ctx4());
    // RFC 8669 Prefix-SID: TLV overrun; truncated header.
    discarded(&attr(0xC0, 40, &[1, 0, 7, 0, 0, 0]), &ctx4());
    discarded(&attr(0xC0, 40, &[1, 0]), &ctx4());
    // Well-formed ones are kept opaque.
    for (f, t, v) in [
        (0xC0u8, 23u8, &[0u8, 8, 0, 6, 1, 1, 9, 0x80, 0, 0][..]),
        (0x80, 26, &[1, 0, 11, 0, 0, 0, 0, 0, 0, 0, 5]),
        (0xC0, 40, &[1, 0, 7, 0, 0, 0, 0, 0, 0, 100]),
    ] {
        let d = dec(&attr(f, t, v), &ctx4());
        assert_eq!(
            (
                d.treat_as_withdraw,
                d.discarded.len(),
                d.attributes.unknown.len()
            ),
            (None, 0, 1)
        );
    }
}

#[test]
fn mp_reach_next_hop_errors_reset_3_1() {
    for value in [
        &[0u8, 1, 1, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0][..], // v4 next-hop length 9
        &[
            0, 2, 1, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ], // 64 with 17 left
        &[0, 2, 1, 0, 0],                                  // v6 next-hop length 0
        &[0, 1, 1, 0, 0, 24, 10, 0, 0],                    // v4 next-hop length 0
        &[0, 2, 1, 5, 10, 0, 0, 1, 1, 0],                  // v6 with a 5-octet next hop
        &[0, 1, 1, 4],                                     // truncated
        &[0, 1],
        &[0, 1, 1, 4, 10, 0, 0, 1], // no reserved octet
        &[0, 1, 1, 4, 10, 0, 0, 1, 0, 33, 1, 2, 3, 4, 5], // prefix length 33
        &[0, 1, 1, 4, 10, 0, 0, 1, 0, 24, 10], // prefix overrun
    ] {
        let e = dec_err(&attr(0x80, 14, value), &ctx4());
        assert_eq!((e.code, e.subcode), (3, 1), "{value:?}");
    }
    let mut v6_129 = vec![0, 2, 1, 16];
    v6_129.extend_from_slice(&[
        0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 129,
    ]);
    v6_129.extend_from_slice(&[0; 17]);
    assert_eq!(dec_err(&attr(0x80, 14, &v6_129), &ctx4()).subcode, 1);
    for value in [&[0u8, 2][..], &[0, 1, 1, 33, 1, 2, 3, 4, 5]] {
        let e = dec_err(&attr(0x80, 15, value), &ctx4());
        assert_eq!((e.code, e.subcode), (3, 1), "MP_UNREACH {value:?}");
    }
}

#[test]
fn mp_next_hop_forms() {
    let g: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let ll: Ipv6Addr = "fe80::1".parse().unwrap();
    let cases = [
        (
            V6,
            MpNextHop::V6 {
                global: g,
                link_local: None,
            },
        ),
        (
            V6,
            MpNextHop::V6 {
                global: g,
                link_local: Some(ll),
            },
        ),
        // RFC 8950: IPv4 NLRI with an IPv6 next hop.
        (
            V4,
            MpNextHop::V6 {
                global: g,
                link_local: None,
            },
        ),
        (
            V4,
            MpNextHop::V6 {
                global: g,
                link_local: Some(ll),
            },
        ),
        (V4, MpNextHop::V4(Ipv4Addr::new(10, 0, 0, 1))),
        // ExaBGP-style IPv4 next hop for IPv6 NLRI.
        (V6, MpNextHop::V4(Ipv4Addr::new(170, 170, 170, 170))),
    ];
    for (family, next_hop) in cases {
        let prefix = if family == V4 {
            "10.1.0.0/16"
        } else {
            "2001:db8:5::/48"
        };
        for add_path in [false, true] {
            let ctx = CodecContext {
                four_octet_as: true,
                add_path_receive: if add_path { vec![family] } else { vec![] },
                add_path_send: if add_path { vec![family] } else { vec![] },
                ..Default::default()
            };
            let reach = MpReach {
                family,
                next_hop: next_hop.clone(),
                nlri: MpNlri::Unicast(vec![Nlri {
                    path_id: add_path.then_some(3),
                    prefix: prefix.parse().unwrap(),
                }]),
            };
            let wire = encode(&PathAttributes::default(), Some(&reach), None, &ctx);
            assert_eq!(dec(&wire, &ctx).mp_reach, Some(reach));
        }
    }
    let _ = AddPathMode::Both;
}

#[test]
fn other_families_are_opaque() {
    for (afi, safi, nh, nlri) in [
        // MPLS VPN with an RD-prefixed next hop.
        (
            1u16,
            128u8,
            &[0u8, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1][..],
            &[
                0x70u8, 0x04, 0xE2, 0xC1, 0, 0, 0, 0x64, 0, 0, 0, 0x64, 10, 0, 0,
            ][..],
        ),
        // Labeled unicast whose label lacks bottom-of-stack (RFC 8277): not our business.
        (1, 4, &[10, 0, 0, 1], &[0x30, 0x04, 0xE2, 0xC0, 10, 0, 0]),
        // EVPN, flowspec (next-hop length 0), BGP-LS.
        (25, 70, &[10, 0, 0, 1], &[2, 3, 1, 2, 3]),
        (1, 133, &[], &[5, 1, 24, 10, 0, 0]),
        (16388, 71, &[10, 0, 0, 1], &[0, 1, 0, 2, 9, 9]),
    ] {
        let mut value = afi.to_be_bytes().to_vec();
        value.push(safi);
        value.push(nh.len() as u8);
        value.extend_from_slice(nh);
        value.push(0);
        value.extend_from_slice(nlri);
        let d = dec(&attr(0x80, 14, &value), &ctx4());
        let reach = d.mp_reach.unwrap();
        assert_eq!(reach.family, Family::new(Afi(afi), Safi(safi)));
        assert_eq!(
            reach.next_hop,
            MpNextHop::Opaque(Bytes::copy_from_slice(nh))
        );
        assert_eq!(reach.nlri, MpNlri::Opaque(Bytes::copy_from_slice(nlri)));
        // Re-encoded unchanged.
        assert_eq!(
            &encode(&PathAttributes::default(), Some(&reach), None, &ctx4())[..],
            &attr(0x80, 14, &value)[..]
        );
        let mut unreach = afi.to_be_bytes().to_vec();
        unreach.push(safi);
        unreach.extend_from_slice(nlri);
        assert_eq!(
            dec(&attr(0x80, 15, &unreach), &ctx4())
                .mp_unreach
                .unwrap()
                .nlri,
            MpNlri::Opaque(Bytes::copy_from_slice(nlri))
        );
    }
}

#[test]
fn mrt_abbreviated_mp_reach_rfc6396_4_3_4() {
    let ctx = ctx4();
    let mrt = |v: &[u8]| {
        decode_path_attributes(&attr(0x80, 14, v), &ctx, MpReachForm::MrtAbbreviated)
            .unwrap()
            .mp_reach
            .unwrap()
    };
    let mut v6 = vec![32];
    v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    v6.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
    let r = mrt(&v6);
    assert_eq!(r.family, V6);
    assert_eq!(r.next_hop.addr(), Some("2001:db8::1".parse().unwrap()));
    assert_eq!(
        mrt(&[4, 10, 0, 0, 1]).next_hop,
        MpNextHop::V4(Ipv4Addr::new(10, 0, 0, 1))
    );
    assert_eq!(
        mrt(&[2, 1, 2]).next_hop,
        MpNextHop::Opaque(Bytes::from_static(&[1, 2]))
    );
    // A full-form attribute in an MRT entry is still understood.
    let full = mrt(&[0, 1, 1, 4, 10, 0, 0, 1, 0, 8, 10]);
    assert_eq!(
        full.nlri,
        MpNlri::Unicast(vec![Nlri::new("10.0.0.0/8".parse().unwrap())])
    );
}

#[test]
fn rib_attributes_encode_the_rfc6396_4_3_4_layout_and_decode_back() {
    let rib = |family, attrs: &PathAttributes, nh: Option<&MpNextHop>| {
        let mut out = BytesMut::new();
        encode_rib_attributes(family, attrs, nh, &mut out).map(|()| out)
    };
    let mut attrs = full_set();
    attrs.next_hop = Some(Ipv4Addr::new(192, 0, 2, 9));
    // IPv4 unicast: NEXT_HOP (the argument wins), no MP_REACH_NLRI, 4-octet AS.
    let nh4 = MpNextHop::V4(Ipv4Addr::new(10, 0, 0, 1));
    let block = rib(Family::IPV4_UNICAST, &attrs, Some(&nh4)).unwrap();
    let d = decode_path_attributes(&block, &ctx4(), MpReachForm::MrtAbbreviated).unwrap();
    assert_eq!(d.attributes.next_hop, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(d.mp_reach, None);
    assert_eq!(d.attributes.as_path, full_set().as_path);
    // No next hop given: attrs.next_hop as it is.
    let block = rib(Family::IPV4_UNICAST, &attrs, None).unwrap();
    let d = decode_path_attributes(&block, &ctx4(), MpReachForm::MrtAbbreviated).unwrap();
    assert_eq!(d.attributes.next_hop, Some(Ipv4Addr::new(192, 0, 2, 9)));
    // IPv6: the abbreviated MP_REACH_NLRI (length octet + next hop), no NEXT_HOP.
    let nh6 = MpNextHop::V6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: Some("fe80::1".parse().unwrap()),
    };
    let block = rib(V6, &attrs, Some(&nh6)).unwrap();
    let mp = flags_by_type(&block).into_iter().filter(|(t, _)| *t == 14);
    assert_eq!(mp.count(), 1);
    let d = decode_path_attributes(&block, &ctx4(), MpReachForm::MrtAbbreviated).unwrap();
    assert_eq!(d.attributes.next_hop, None);
    let mut want = full_set();
    want.next_hop = None;
    assert_eq!(d.attributes, want);
    assert_eq!(d.mp_reach.map(|r| (r.family, r.next_hop)), Some((V6, nh6)));
    // An IPv4 route over an IPv6 next hop (RFC 8950) also uses MP_REACH_NLRI.
    let v6_nh = MpNextHop::V6 {
        global: "2001:db8::2".parse().unwrap(),
        link_local: None,
    };
    let block = rib(Family::IPV4_UNICAST, &attrs, Some(&v6_nh)).unwrap();
    let d = decode_path_attributes(&block, &ctx4(), MpReachForm::MrtAbbreviated).unwrap();
    assert_eq!(d.mp_reach.map(|r| r.next_hop), Some(v6_nh));
    // An MP family without a next hop cannot be written.
    assert!(rib(V6, &attrs, None).is_err());
}

#[test]
fn encode_refuses_values_too_long_for_an_attribute() {
    let attrs = PathAttributes {
        communities: vec![Community(1); 20_000],
        ..Default::default()
    };
    let mut out = BytesMut::new();
    assert!(matches!(
        encode_path_attributes(&attrs, None, None, &ctx4(), &mut out),
        Err(EncodeError::Invalid(_))
    ));
}

/// The flag octet of each attribute in an encoded block, by type.
fn flags_by_type(block: &[u8]) -> Vec<(u8, u8)> {
    let mut r = Reader::new(block);
    let mut out = Vec::new();
    while let Some((f, t, _)) = attribute_tlv(&mut r) {
        out.push((t, f));
    }
    out
}

#[test]
fn recognised_optional_transitive_attributes_keep_partial_rfc4271_4_3() {
    let base = [
        attr(0x40, 1, &[0]),
        attr(0x40, 2, &[2, 1, 0, 0, 0xFD, 0xE9]),
        attr(0x40, 3, &[10, 0, 0, 1]),
    ]
    .concat();
    let block = [
        base.clone(),
        attr(0xE0, 7, &[0, 0, 0xFD, 0xE9, 10, 0, 0, 1]),
        attr(0xC0, 8, &[0xFD, 0xE8, 0, 1]),
        attr(0xE0, 16, &[0, 2, 0xFD, 0xE8, 0, 0, 0, 1]),
        attr(0xE0, 32, &[0, 0, 0xFD, 0xE8, 0, 0, 0, 1, 0, 0, 0, 2]),
        attr(0xE0, 35, &[0, 0, 0xFD, 0xE9]),
    ]
    .concat();
    let d = dec(&block, &ctx4());
    assert_eq!(
        (d.treat_as_withdraw.as_deref(), d.discarded.len()),
        (None, 0)
    );
    let p = d.attributes.partial;
    for t in [7, 16, 32, 35] {
        assert!(p.contains(t), "type {t}");
    }
    assert!(!p.contains(8), "COMMUNITIES arrived without Partial");
    // Passed on exactly as received: Partial kept where set, not added elsewhere.
    assert_eq!(&encode(&d.attributes, None, None, &ctx4())[..], &block[..]);

    // Partial on a well-known or optional non-transitive attribute is not an error
    // (RFC 7606 3 c checks only Optional/Transitive) but is not passed on either:
    // "For well-known attributes and for optional non-transitive attributes, the
    // Partial bit MUST be set to 0" (RFC 4271 4.3).
    let d = dec(
        &[attr(0x60, 1, &[0]), attr(0xA0, 4, &[0, 0, 0, 5])].concat(),
        &ctx4(),
    );
    assert_eq!(d.treat_as_withdraw, None);
    assert!(d.attributes.partial.is_empty());
    assert_eq!(
        flags_by_type(&encode(&d.attributes, None, None, &ctx4())),
        [(1, 0x40), (4, 0x80)]
    );
}

#[test]
fn partial_of_a_discarded_or_duplicate_attribute_is_not_kept() {
    // AGGREGATOR of the wrong length: discarded with its Partial bit.
    let d = discarded(&attr(0xE0, 7, &[0, 0, 0xFD, 0xE9, 10, 0, 0]), &ctx4());
    assert!(d.attributes.partial.is_empty());
    // The first COMMUNITIES wins, and with it its flags.
    let d = discarded(
        &[
            attr(0xC0, 8, &[0xFD, 0xE8, 0, 1]),
            attr(0xE0, 8, &[0xFD, 0xE8, 0, 2]),
        ]
        .concat(),
        &ctx4(),
    );
    assert_eq!(d.attributes.communities, [Community::new(65000, 1)]);
    assert!(!d.attributes.partial.contains(at::COMMUNITIES));
}

/// RFC 6793 4.2.3: a NEW speaker behind an OLD one receives AS4_PATH/AS4_AGGREGATOR
/// with Partial (the OLD speaker passed them on unrecognised, RFC 4271 5).
#[test]
fn as4_attributes_partial_from_an_old_speaker_rfc6793() {
    let block = [
        attr(0x40, 1, &[0]),
        // AS_PATH 65001 AS_TRANS
        attr(0x40, 2, &[2, 2, 0xFD, 0xE9, 0x5B, 0xA0]),
        attr(0x40, 3, &[10, 0, 0, 1]),
        // AGGREGATOR AS_TRANS 10.0.0.1, without Partial (the OLD speaker knows it)
        attr(0xC0, 7, &[0x5B, 0xA0, 10, 0, 0, 1]),
        // AS4_PATH 65001 4200000000, AS4_AGGREGATOR 4200000000 10.0.0.1
        attr(0xE0, 17, &[2, 2, 0, 0, 0xFD, 0xE9, 0xFA, 0x56, 0xEA, 0x00]),
        attr(0xE0, 18, &[0xFA, 0x56, 0xEA, 0x00, 10, 0, 0, 1]),
    ]
    .concat();
    let d = dec(&block, &ctx2());
    assert_eq!(
        (d.treat_as_withdraw.as_deref(), d.discarded.len()),
        (None, 0)
    );
    let a = &d.attributes;
    assert_eq!(
        a.as_path.as_ref().unwrap().segments,
        [seq(&[65001, 4_200_000_000])]
    );
    assert_eq!(a.aggregator.unwrap().asn, 4_200_000_000);
    assert!(a.partial.contains(at::AS4_PATH) && a.partial.contains(at::AS4_AGGREGATOR));
    assert!(!a.partial.contains(at::AGGREGATOR));
    // Towards another 2-octet speaker the regenerated AS4_* keep Partial: the exact
    // bytes received.
    assert_eq!(&encode(a, None, None, &ctx2())[..], &block[..]);
    // A 4-octet speaker gets no AS4_* attributes: AS_PATH is well-known (Partial 0)
    // and AGGREGATOR keeps its own (clear) bit.
    assert_eq!(
        flags_by_type(&encode(a, None, None, &ctx4())),
        [(1, 0x40), (2, 0x40), (3, 0x40), (7, 0xC0)]
    );

    // Ignored AS4 attributes (RFC 6793 4.2.3) leave no Partial behind.
    let ignored = [
        attr(0x40, 2, &[2, 1, 0xFD, 0xE9]),
        // AGGREGATOR with a real 2-octet AS: AS4_AGGREGATOR and AS4_PATH ignored.
        attr(0xC0, 7, &[0xFD, 0xEA, 10, 0, 0, 1]),
        attr(0xE0, 17, &[2, 1, 0xFA, 0x56, 0xEA, 0x00]),
        attr(0xE0, 18, &[0xFA, 0x56, 0xEA, 0x00, 10, 0, 0, 1]),
    ]
    .concat();
    let d = dec(&ignored, &ctx2());
    assert!(d.attributes.partial.is_empty(), "{d:?}");
    // AS4_PATH longer than AS_PATH: ignored.
    let longer = [
        attr(0x40, 2, &[2, 1, 0xFD, 0xE9]),
        attr(0xE0, 17, &[2, 2, 0, 0, 0xFD, 0xE9, 0xFA, 0x56, 0xEA, 0x00]),
    ]
    .concat();
    let d = dec(&longer, &ctx2());
    assert_eq!(d.attributes.as_path.unwrap().segments, [seq(&[65001])]);
    assert!(d.attributes.partial.is_empty());
}
