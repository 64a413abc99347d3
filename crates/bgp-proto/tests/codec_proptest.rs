//! Property tests for the wire codec:
//! - encode then decode is the identity for every message the encoder produces (Partial
//!   bits of recognised attributes included), under
//!   every combination of negotiated 4-octet AS, ADD-PATH and extended messages, also
//!   when several messages share one stream buffer and are split by `frame_len`;
//! - arbitrary bytes never panic `frame_len`, `decode_message`, `decode_update` or
//!   `decode_path_attributes`, whether wholly random or structured as plausible
//!   attribute TLVs (to reach deep into each attribute parser).

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_proto::wire::{
    decode_message, decode_path_attributes, decode_update, encode_message, frame_len, Inbound,
    MpReachForm,
};
use bgp_proto::{
    attr_flags as af, attr_type as at, AddPathMode, Afi, Aggregator, AsPath, AsSegment, BgpRole,
    Capability, CodecContext, Community, ExtendedCommunity, Family, GracefulRestart,
    GracefulRestartFamily, LargeCommunity, LlgrFamily, Message, MpNextHop, MpNlri, MpReach,
    MpUnreach, Nlri, Notification, Open, Origin, PartialBits, PathAttributes, RawAttribute,
    RefreshSubtype, RouteRefresh, Safi, SegmentType, Update,
};
use bytes::{Bytes, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

fn ctx_strategy() -> impl Strategy<Value = CodecContext> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(four, ext, ap4, ap6)| {
            let mut fams = Vec::new();
            if ap4 {
                fams.push(Family::IPV4_UNICAST);
            }
            if ap6 {
                fams.push(Family::IPV6_UNICAST);
            }
            CodecContext {
                four_octet_as: four,
                extended_message: ext,
                add_path_receive: fams.clone(),
                add_path_send: fams,
                // Internal: an external peer's reflection attributes are discarded on
                // receipt, so they would not round-trip (tested in wire::attributes).
                external: false,
            }
        },
    )
}

fn v4_nlri() -> impl Strategy<Value = Nlri> {
    (any::<Option<u32>>(), any::<u32>(), 0u8..=32).prop_map(|(path_id, a, len)| Nlri {
        path_id,
        prefix: IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc()),
    })
}

fn v6_nlri() -> impl Strategy<Value = Nlri> {
    (any::<Option<u32>>(), any::<u128>(), 0u8..=128).prop_map(|(path_id, a, len)| Nlri {
        path_id,
        prefix: IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), len).unwrap().trunc()),
    })
}

fn asn() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..=65535, 65536u32..=u32::MAX, Just(23456)]
}

fn segment(
    kinds: &'static [SegmentType],
    asn: impl Strategy<Value = u32>,
) -> impl Strategy<Value = AsSegment> {
    (
        prop::sample::select(kinds),
        prop::collection::vec(asn, 1..8),
    )
        .prop_map(|(kind, asns)| AsSegment { kind, asns })
}

/// Confederation segments lead the path, as RFC 5065 places them, and hold 2-octet
/// member ASes: RFC 6793 4.2.2 cannot carry a 4-octet member AS to a 2-octet speaker
/// (AS4_PATH excludes confederation segments), so that case is not an identity.
fn as_path() -> impl Strategy<Value = AsPath> {
    (
        prop::collection::vec(
            segment(
                &[SegmentType::ConfedSequence, SegmentType::ConfedSet],
                1u32..=65535,
            ),
            0..2,
        ),
        prop::collection::vec(
            segment(&[SegmentType::Sequence, SegmentType::Set], asn()),
            0..4,
        ),
    )
        .prop_map(|(mut confed, rest)| {
            confed.extend(rest);
            AsPath { segments: confed }
        })
}

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

/// Attribute type codes the codec does not interpret (nor TLV-check).
fn unknown_type() -> impl Strategy<Value = u8> {
    any::<u8>().prop_filter(
        "interpreted type",
        |t| !matches!(t, 1..=10 | 14..=18 | 23 | 26 | 32 | 35 | 40),
    )
}

fn attributes() -> impl Strategy<Value = PathAttributes> {
    (
        (
            prop::option::of(prop_oneof![
                Just(Origin::Igp),
                Just(Origin::Egp),
                Just(Origin::Incomplete)
            ]),
            prop::option::of(as_path()),
            prop::option::of(ipv4()),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<bool>(),
            prop::option::of(
                (asn(), ipv4()).prop_map(|(asn, address)| Aggregator { asn, address }),
            ),
        ),
        (
            prop::collection::vec(any::<u32>().prop_map(Community), 0..5),
            prop::option::of(ipv4()),
            prop::collection::vec(ipv4(), 0..4),
            prop::collection::vec(any::<[u8; 8]>().prop_map(ExtendedCommunity), 0..4),
            prop::collection::vec(
                any::<(u32, u32, u32)>().prop_map(|(global, local1, local2)| LargeCommunity {
                    global,
                    local1,
                    local2,
                }),
                0..3,
            ),
            any::<Option<u32>>(),
            prop::collection::btree_map(
                unknown_type(),
                prop::collection::vec(any::<u8>(), 0..300),
                0..3,
            ),
            prop::sample::subsequence(PartialBits::TYPES.to_vec(), 0..=PartialBits::TYPES.len()),
        ),
    )
        .prop_map(
            |((origin, as_path, next_hop, med, local_pref, atomic_aggregate, aggregator), rest)| {
                let (
                    communities,
                    originator_id,
                    cluster_list,
                    extended_communities,
                    large_communities,
                    otc,
                    unknown,
                    partial,
                ) = rest;
                PathAttributes {
                    origin,
                    as_path,
                    next_hop,
                    med,
                    local_pref,
                    atomic_aggregate,
                    aggregator,
                    communities,
                    originator_id,
                    cluster_list,
                    extended_communities,
                    large_communities,
                    otc,
                    // Passed-on optional transitive attributes carry Partial (RFC 4271 5).
                    unknown: unknown
                        .into_iter()
                        .map(|(type_code, v)| RawAttribute {
                            flags: af::OPTIONAL | af::TRANSITIVE | af::PARTIAL,
                            type_code,
                            value: Bytes::from(v),
                        })
                        .collect(),
                    // Received with Partial (RFC 4271 4.3); `fit_partial` keeps the bits
                    // the encoding can carry.
                    partial: partial
                        .into_iter()
                        .fold(PartialBits::default(), PartialBits::with),
                }
            },
        )
}

fn v6_next_hop() -> impl Strategy<Value = MpNextHop> {
    (any::<u128>(), prop::option::of(any::<u128>())).prop_map(|(g, ll)| MpNextHop::V6 {
        global: Ipv6Addr::from(g),
        link_local: ll.map(Ipv6Addr::from),
    })
}

fn opaque_family() -> impl Strategy<Value = Family> {
    (any::<u16>(), any::<u8>())
        .prop_map(|(a, s)| Family::new(Afi(a), Safi(s)))
        .prop_filter("unicast", |f| !f.is_unicast_ip())
}

fn mp_reach() -> impl Strategy<Value = MpReach> {
    prop_oneof![
        (
            prop_oneof![ipv4().prop_map(MpNextHop::V4), v6_next_hop()],
            prop::collection::vec(v4_nlri(), 0..20)
        )
            .prop_map(|(next_hop, v)| MpReach {
                family: Family::IPV4_UNICAST,
                next_hop,
                nlri: MpNlri::Unicast(v)
            }),
        (v6_next_hop(), prop::collection::vec(v6_nlri(), 0..20)).prop_map(|(next_hop, v)| {
            MpReach {
                family: Family::IPV6_UNICAST,
                next_hop,
                nlri: MpNlri::Unicast(v),
            }
        }),
        (
            opaque_family(),
            prop::collection::vec(any::<u8>(), 0..24),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(family, nh, nlri)| MpReach {
                family,
                next_hop: MpNextHop::Opaque(Bytes::from(nh)),
                nlri: MpNlri::Opaque(Bytes::from(nlri)),
            }),
    ]
}

fn mp_unreach() -> impl Strategy<Value = MpUnreach> {
    prop_oneof![
        prop::collection::vec(v4_nlri(), 0..20).prop_map(|v| MpUnreach {
            family: Family::IPV4_UNICAST,
            nlri: MpNlri::Unicast(v)
        }),
        prop::collection::vec(v6_nlri(), 0..20).prop_map(|v| MpUnreach {
            family: Family::IPV6_UNICAST,
            nlri: MpNlri::Unicast(v)
        }),
        (opaque_family(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(family, v)| {
            MpUnreach {
                family,
                nlri: MpNlri::Opaque(Bytes::from(v)),
            }
        }),
    ]
}

fn update() -> impl Strategy<Value = Update> {
    (
        prop::collection::vec(v4_nlri(), 0..30),
        prop::option::of(mp_unreach()),
        attributes(),
        prop::option::of(mp_reach()),
        prop::collection::vec(v4_nlri(), 0..30),
    )
        .prop_map(
            |(withdrawn, mp_unreach, attributes, mp_reach, nlri)| Update {
                withdrawn,
                mp_unreach,
                attributes,
                mp_reach,
                nlri,
            },
        )
}

/// Partial bits exist only for attributes that are sent (RFC 4271 4.3): present ones, and
/// AS4_PATH/AS4_AGGREGATOR only where the encoder regenerates them for a 2-octet AS
/// speaker (RFC 6793 4.2.2: a 4-octet AS in the path / aggregator).
fn fit_partial(u: &mut Update, ctx: &CodecContext) {
    let a = &u.attributes;
    let two_octet = |asn: u32| !ctx.four_octet_as && asn > 0xFFFF;
    let sent = |t: u8| match t {
        at::AGGREGATOR => a.aggregator.is_some(),
        at::COMMUNITIES => !a.communities.is_empty(),
        at::EXTENDED_COMMUNITIES => !a.extended_communities.is_empty(),
        at::LARGE_COMMUNITIES => !a.large_communities.is_empty(),
        at::OTC => a.otc.is_some(),
        at::AS4_PATH => a.as_path.as_ref().is_some_and(|p| {
            p.segments
                .iter()
                .flat_map(|s| &s.asns)
                .any(|&x| two_octet(x))
        }),
        at::AS4_AGGREGATOR => a.aggregator.is_some_and(|g| two_octet(g.asn)),
        _ => false,
    };
    let fitted = PartialBits::TYPES
        .into_iter()
        .filter(|&t| a.partial.contains(t) && sent(t))
        .fold(PartialBits::default(), PartialBits::with);
    u.attributes.partial = fitted;
}

/// Path identifiers exist exactly where ADD-PATH is negotiated (0 when unset).
fn fit_path_ids(u: &mut Update, ctx: &CodecContext) {
    let fix = |v: &mut Vec<Nlri>, family: Family| {
        let on = ctx.sends_path_id(family);
        for n in v {
            n.path_id = if on {
                Some(n.path_id.unwrap_or(0))
            } else {
                None
            };
        }
    };
    fix(&mut u.withdrawn, Family::IPV4_UNICAST);
    fix(&mut u.nlri, Family::IPV4_UNICAST);
    if let Some(MpReach {
        family,
        nlri: MpNlri::Unicast(v),
        ..
    }) = &mut u.mp_reach
    {
        fix(v, *family);
    }
    if let Some(MpUnreach {
        family,
        nlri: MpNlri::Unicast(v),
    }) = &mut u.mp_unreach
    {
        fix(v, *family);
    }
}

fn capability() -> impl Strategy<Value = Capability> {
    let family = (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Family::new(Afi(a), Safi(s)));
    let name = "[a-z0-9.-]{0,20}";
    prop_oneof![
        family.clone().prop_map(Capability::MultiProtocol),
        Just(Capability::RouteRefresh),
        Just(Capability::EnhancedRouteRefresh),
        Just(Capability::ExtendedMessage),
        any::<u32>().prop_map(Capability::FourOctetAs),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..4096,
            prop::collection::vec((family.clone(), any::<bool>()), 0..4)
        )
            .prop_map(|(restart_state, notification, restart_time, fams)| {
                Capability::GracefulRestart(GracefulRestart {
                    restart_state,
                    notification,
                    restart_time,
                    families: fams
                        .into_iter()
                        .map(|(family, forwarding_preserved)| GracefulRestartFamily {
                            family,
                            forwarding_preserved,
                        })
                        .collect(),
                })
            }),
        prop::collection::vec((family.clone(), any::<bool>(), 0u32..0x100_0000), 0..4).prop_map(
            |v| {
                Capability::LongLivedGracefulRestart(
                    v.into_iter()
                        .map(|(family, forwarding_preserved, stale_time)| LlgrFamily {
                            family,
                            forwarding_preserved,
                            stale_time,
                        })
                        .collect(),
                )
            }
        ),
        prop::collection::vec(
            (
                family.clone(),
                prop_oneof![
                    Just(AddPathMode::Receive),
                    Just(AddPathMode::Send),
                    Just(AddPathMode::Both)
                ]
            ),
            1..4
        )
        .prop_map(Capability::AddPath),
        prop::collection::vec((family, any::<u16>().prop_map(Afi)), 1..4)
            .prop_map(Capability::ExtendedNextHop),
        any::<u8>().prop_map(|r| Capability::Role(BgpRole(r))),
        (name, name).prop_map(|(hostname, domain)| Capability::Fqdn { hostname, domain }),
        (
            any::<u8>().prop_filter("known code", |c| !matches!(
                c,
                1 | 2 | 5 | 6 | 9 | 64 | 65 | 69 | 70 | 71 | 73
            )),
            prop::collection::vec(any::<u8>(), 0..30)
        )
            .prop_map(|(code, v)| Capability::Unknown {
                code,
                value: Bytes::from(v)
            }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::Keepalive),
        (
            any::<u16>(),
            any::<u16>().prop_filter("hold 1 or 2", |h| !matches!(h, 1 | 2)),
            1u32..,
            prop::collection::vec(capability(), 0..40),
            prop::collection::vec(
                (
                    any::<u8>().prop_filter("capabilities param", |t| *t != 2),
                    prop::collection::vec(any::<u8>(), 0..40)
                ),
                0..3
            ),
        )
            .prop_map(
                |(my_as, hold_time, id, capabilities, other)| Message::Open(Open {
                    version: 4,
                    my_as,
                    hold_time,
                    bgp_id: Ipv4Addr::from(id),
                    capabilities,
                    other_params: other
                        .into_iter()
                        .map(|(t, v)| (t, Bytes::from(v)))
                        .collect(),
                })
            ),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..100)
        )
            .prop_map(|(code, subcode, data)| {
                Message::Notification(Notification {
                    code,
                    subcode,
                    data: Bytes::from(data),
                })
            }),
        (
            any::<(u16, u8)>(),
            prop_oneof![
                Just(RefreshSubtype::Normal),
                Just(RefreshSubtype::BoRR),
                Just(RefreshSubtype::EoRR),
                (3u8..).prop_map(RefreshSubtype::Reserved)
            ]
        )
            .prop_map(|((a, s), subtype)| Message::RouteRefresh(RouteRefresh {
                family: Family::new(Afi(a), Safi(s)),
                subtype
            })),
        update().prop_map(Message::Update),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn encode_then_decode_is_identity(mut msg in message(), ctx in ctx_strategy()) {
        if let Message::Update(u) = &mut msg {
            fit_path_ids(u, &ctx);
            fit_partial(u, &ctx);
        }
        let mut out = BytesMut::new();
        if encode_message(&msg, &ctx, &mut out).is_err() {
            // Too long for the negotiated size: nothing was written.
            prop_assert!(out.is_empty());
            return Ok(());
        }
        prop_assert_eq!(frame_len(&out, ctx.max_message_len()), Ok(Some(out.len())));
        let decoded = decode_message(&out, &ctx).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Inbound::Update(d) = &decoded {
            prop_assert!(d.discarded.is_empty(), "{:?}", d.discarded);
            // treat-as-withdraw only for missing mandatory attributes, never the encoding.
            if let Some(r) = &d.treat_as_withdraw {
                prop_assert!(r.contains("missing"), "{}", r);
            }
        }
        prop_assert_eq!(decoded.into_message(), msg);
    }

    /// Messages back to back in one buffer, as on a TCP stream, are delimited again by
    /// `frame_len` and decode to what was sent, whatever the split points.
    #[test]
    fn stream_framing(msgs in prop::collection::vec(message(), 1..6), ctx in ctx_strategy(), cut in any::<prop::sample::Index>()) {
        let mut stream = BytesMut::new();
        let mut sent = Vec::new();
        for mut msg in msgs {
            if let Message::Update(u) = &mut msg {
                fit_path_ids(u, &ctx);
                fit_partial(u, &ctx);
            }
            if encode_message(&msg, &ctx, &mut stream).is_ok() {
                sent.push(msg);
            }
        }
        // A prefix of the stream never yields a frame longer than what is buffered.
        let cut = cut.index(stream.len() + 1);
        if let Some(len) = frame_len(&stream[..cut], ctx.max_message_len()).unwrap() {
            prop_assert!(len <= cut);
        }
        let mut got = Vec::new();
        let mut rest = &stream[..];
        while let Some(len) = frame_len(rest, ctx.max_message_len()).unwrap() {
            let (frame, tail) = rest.split_at(len);
            got.push(decode_message(frame, &ctx).map_err(|e| TestCaseError::fail(e.to_string()))?.into_message());
            rest = tail;
        }
        prop_assert!(rest.is_empty());
        prop_assert_eq!(got, sent);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..700), ctx in ctx_strategy()) {
        let _ = frame_len(&bytes, ctx.max_message_len());
        let _ = decode_message(&bytes, &ctx);
        let _ = decode_update(&bytes, &ctx);
        let _ = decode_path_attributes(&bytes, &ctx, MpReachForm::Standard);
        let _ = decode_path_attributes(&bytes, &ctx, MpReachForm::MrtAbbreviated);
    }

    #[test]
    fn framed_random_bodies_never_panic(
        msg_type in 1u8..=5,
        body in prop::collection::vec(any::<u8>(), 0..700),
        ctx in ctx_strategy(),
    ) {
        let mut frame = vec![0xFF; 16];
        frame.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
        frame.push(msg_type);
        frame.extend_from_slice(&body);
        let _ = decode_message(&frame, &ctx);
    }

    /// Plausible attribute TLVs with random flags and short random values.
    #[test]
    fn structured_attribute_blocks_never_panic(
        tlvs in prop::collection::vec(
            (
                any::<u8>(),
                prop_oneof![1u8..=40, any::<u8>()],
                prop::collection::vec(any::<u8>(), 0..40),
            ),
            0..8,
        ),
        nlri in prop::collection::vec(any::<u8>(), 0..20),
        withdrawn in prop::collection::vec(any::<u8>(), 0..10),
        ctx in ctx_strategy(),
    ) {
        let mut block = Vec::new();
        for (flags, t, v) in &tlvs {
            block.push(*flags);
            block.push(*t);
            if flags & af::EXTENDED_LENGTH != 0 {
                block.extend_from_slice(&(v.len() as u16).to_be_bytes());
            } else {
                block.push(v.len() as u8);
            }
            block.extend_from_slice(v);
        }
        for form in [MpReachForm::Standard, MpReachForm::MrtAbbreviated] {
            if let Ok(d) = decode_path_attributes(&block, &ctx, form) {
                // Whatever survived decoding must encode.
                let u = Update { attributes: d.attributes, mp_reach: d.mp_reach, mp_unreach: d.mp_unreach, ..Update::default() };
                let mut out = BytesMut::new();
                let _ = encode_message(&Message::Update(u), &ctx, &mut out);
            }
        }
        let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(&withdrawn);
        body.extend_from_slice(&(block.len() as u16).to_be_bytes());
        body.extend_from_slice(&block);
        body.extend_from_slice(&nlri);
        let _ = decode_update(&body, &ctx);
    }
}
