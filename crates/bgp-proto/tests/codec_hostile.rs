//! Every known hostile input (inputs that crashed real BGP daemons),
//! fed as whole framed messages through `decode_message`, with the RFC 7606 outcome
//! asserted: session reset (the exact NOTIFICATION), treat-as-withdraw (with the
//! affected prefixes still reported) or attribute-discard (and never re-advertised).

use bgp_proto::wire::{decode_message, encode_message, DecodedUpdate, Inbound, NotificationError};
use bgp_proto::{CodecContext, Family, Message};
use bytes::BytesMut;

fn ctx() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        ..CodecContext::default()
    }
}

fn frame(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0xFF; 16];
    f.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    f.push(msg_type);
    f.extend_from_slice(body);
    f
}

fn update_body(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut v = (withdrawn.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(withdrawn);
    v.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    v.extend_from_slice(attrs);
    v.extend_from_slice(nlri);
    v
}

fn attr(flags: u8, t: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, t];
    if flags & 0x10 != 0 {
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        v.push(value.len() as u8);
    }
    v.extend_from_slice(value);
    v
}

/// ORIGIN IGP, AS_PATH [65001], NEXT_HOP 192.0.2.1.
fn mandatory() -> Vec<u8> {
    [
        attr(0x40, 1, &[0]),
        attr(0x40, 2, &[2, 1, 0, 0, 0xFD, 0xE9]),
        attr(0x40, 3, &[192, 0, 2, 1]),
    ]
    .concat()
}

const NLRI: [u8; 4] = [24, 10, 1, 2];

fn reset(bytes: &[u8], ctx: &CodecContext) -> NotificationError {
    match decode_message(bytes, ctx) {
        Err(e) => e,
        Ok(m) => panic!("expected a session reset, got {m:?}"),
    }
}

fn update(bytes: &[u8], ctx: &CodecContext) -> DecodedUpdate {
    match decode_message(bytes, ctx) {
        Ok(Inbound::Update(d)) => d,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

fn assert_withdraw(bytes: &[u8], reason_has: &str) -> DecodedUpdate {
    let d = update(bytes, &ctx());
    let reason = d
        .treat_as_withdraw
        .clone()
        .unwrap_or_else(|| panic!("no treat-as-withdraw: {d:?}"));
    assert!(reason.contains(reason_has), "{reason}");
    assert!(
        d.update.announced().count() + d.update.withdrawn_routes().count() > 0,
        "prefixes are reported"
    );
    d
}

fn reencode(d: &DecodedUpdate) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_message(&Message::Update(d.update.clone()), &ctx(), &mut out).unwrap();
    out.to_vec()
}

#[test]
fn s4_1_update_length_arithmetic() {
    for body in [
        vec![0xFF, 0xFF, 0, 0],                        // withdrawn length past the end
        vec![0, 3, 8, 10, 0],                          // withdrawn eats the attribute length
        vec![0, 0, 0xFF, 0xFF],                        // attribute length past the end
        [&[0u8, 0, 0, 30][..], &mandatory()].concat(), // 30 > 25 octets present
    ] {
        let e = reset(&frame(2, &body), &ctx());
        assert_eq!((e.code, e.subcode), (3, 1), "{body:?}");
    }
}

#[test]
fn s4_2_attribute_framing_is_treat_as_withdraw() {
    for broken in [
        vec![0x40u8, 5],                    // truncated header
        vec![0x50, 5, 0],                   // extended length, too few octets
        vec![0x40, 5, 200, 0, 0, 0, 100],   // value overruns the block
        vec![0x50, 8, 0x10, 0, 1, 2, 3, 4], // extended length overrun
    ] {
        let attrs = [mandatory(), broken].concat();
        let d = assert_withdraw(&frame(2, &update_body(&[], &attrs, &NLRI)), "overruns");
        // The Total Attribute Length still locates the NLRI (RFC 7606 4).
        assert_eq!(d.update.nlri[0].prefix.to_string(), "10.1.2.0/24");
    }
}

#[test]
fn s4_3_impossible_mp_next_hop_lengths_reset_3_1() {
    let nine = [&[0u8, 1, 1, 9][..], &[1; 9], &[0, 24, 10, 0, 0]].concat();
    let sixty_four = [&[0u8, 2, 1, 64][..], &[0; 17]].concat();
    let zero = [0u8, 2, 1, 0, 0, 32, 0x20, 1, 0xd, 0xb8];
    for value in [&nine[..], &sixty_four, &zero] {
        let attrs = [mandatory(), attr(0x80, 14, value)].concat();
        let e = reset(&frame(2, &update_body(&[], &attrs, &[])), &ctx());
        assert_eq!((e.code, e.subcode), (3, 1), "{value:?}");
    }
}

#[test]
fn s4_4_mp_unreach_truncated_missing_mandatory_and_bad_end_of_rib() {
    // Truncated MP_UNREACH (and an End-of-RIB cut short): reset 3/1.
    for value in [&[0u8, 2][..], &[0], &[0, 2, 1, 64, 0x20]] {
        let e = reset(
            &frame(2, &update_body(&[], &attr(0x80, 15, value), &[])),
            &ctx(),
        );
        assert_eq!((e.code, e.subcode), (3, 1));
    }
    // MP_REACH without the mandatory attributes: treat-as-withdraw.
    let reach = attr(0x80, 14, &[0, 1, 1, 4, 10, 0, 0, 1, 0, 24, 10, 9, 9]);
    assert_withdraw(&frame(2, &update_body(&[], &reach, &[])), "missing");
    // A well-formed End-of-RIB is recognised; one with an extra attribute is not.
    let eor = update(
        &frame(2, &update_body(&[], &attr(0x80, 15, &[0, 2, 1]), &[])),
        &ctx(),
    );
    assert_eq!(eor.update.end_of_rib(), Some(Family::IPV6_UNICAST));
    let not_eor = [attr(0x80, 15, &[0, 2, 1]), attr(0x40, 1, &[0])].concat();
    assert_eq!(
        update(&frame(2, &update_body(&[], &not_eor, &[])), &ctx())
            .update
            .end_of_rib(),
        None
    );
}

#[test]
fn s4_5_truncated_open_parameters_are_2_0() {
    let fixed = [4u8, 0xFD, 0xE9, 0, 90, 10, 0, 0, 1];
    for params in [
        &[0xFFu8, 2, 6, 1, 4, 0, 1][..],  // length 0xFF, few bytes
        &[0xFF, 0xFF, 0],                 // RFC 9072: truncated extended length
        &[0xFF, 0xFF, 0, 20, 2, 0, 4, 1], // extended length past the end
        &[0xFF, 0xFF, 0, 4, 2, 0, 9, 1],  // extended parameter overruns
    ] {
        let e = reset(&frame(1, &[&fixed[..], params].concat()), &ctx());
        assert_eq!((e.code, e.subcode), (2, 0), "{params:?}");
    }
}

#[test]
fn s4_6_capability_lengths_disagreeing_with_their_size_are_2_0() {
    let fixed = [4u8, 0xFD, 0xE9, 0, 90, 10, 0, 0, 1];
    for cap in [&[65u8, 2, 0xFD, 0xE9][..], &[1, 0]] {
        let mut body = fixed.to_vec();
        body.extend_from_slice(&[cap.len() as u8 + 2, 2, cap.len() as u8]);
        body.extend_from_slice(cap);
        let e = reset(&frame(1, &body), &ctx());
        assert_eq!((e.code, e.subcode), (2, 0));
        assert_eq!(&e.data[..], cap, "the capability is the NOTIFICATION data");
    }
}

#[test]
fn s4_7_as_path_malformations() {
    for path in [
        &[0x02u8, 0xff, 0x00, 0x00, 0xfd, 0xe9][..], // segment overrun
        &[2, 0],                                     // empty segment
        &[0, 1, 0, 0, 0xfd, 0xe9],                   // segment type 0
        &[5, 1, 0, 0, 0xfd, 0xe9],                   // segment type 5
        &[2, 1, 0, 0, 0, 0],                         // AS 0
    ] {
        let attrs = [
            attr(0x40, 1, &[0]),
            attr(0x40, 2, path),
            attr(0x40, 3, &[192, 0, 2, 1]),
        ]
        .concat();
        assert_withdraw(&frame(2, &update_body(&[], &attrs, &NLRI)), "AS_PATH");
    }
    // More than 2048 ASNs in an extended message: decodes, and only with the capability.
    let mut path = Vec::new();
    for chunk in (1..=3000u32).collect::<Vec<_>>().chunks(255) {
        path.extend_from_slice(&[2, chunk.len() as u8]);
        chunk
            .iter()
            .for_each(|a| path.extend_from_slice(&a.to_be_bytes()));
    }
    let attrs = [
        attr(0x40, 1, &[0]),
        attr(0x50, 2, &path),
        attr(0x40, 3, &[192, 0, 2, 1]),
    ]
    .concat();
    let msg = frame(2, &update_body(&[], &attrs, &NLRI));
    let ext = CodecContext {
        extended_message: true,
        ..ctx()
    };
    let d = update(&msg, &ext);
    assert_eq!(d.treat_as_withdraw, None);
    assert_eq!(d.update.attributes.as_path.unwrap().path_len(), 3000);
    assert_eq!(
        (reset(&msg, &ctx()).code, reset(&msg, &ctx()).subcode),
        (1, 2)
    );
}

#[test]
fn s4_8_inner_tlv_overruns_are_discarded_and_not_propagated() {
    for (flags, t, value) in [
        (0xC0u8, 23u8, &[0u8, 8, 0, 50, 1, 1, 1][..]), // tunnel encapsulation
        (0xC0, 40, &[1, 0, 50, 0, 0]),                 // prefix-SID
        (0x80, 26, &[1, 0, 1]),                        // AIGP, length below its header
        (0x80, 26, &[1, 0, 40, 0, 0]),                 // AIGP overrun
    ] {
        let attrs = [mandatory(), attr(flags, t, value)].concat();
        let d = update(&frame(2, &update_body(&[], &attrs, &NLRI)), &ctx());
        assert_eq!(d.treat_as_withdraw, None, "the route stands");
        assert_eq!(d.discarded.len(), 1, "{d:?}");
        let out = reencode(&d);
        assert!(
            !out.windows(2).any(|w| w[0] & 0x80 != 0 && w[1] == t),
            "type {t} re-advertised"
        );
    }
}

#[test]
fn s4_9_prefix_lengths_and_labeled_nlri() {
    let e = reset(
        &frame(2, &update_body(&[], &mandatory(), &[33, 1, 2, 3, 4, 5])),
        &ctx(),
    );
    assert_eq!((e.code, e.subcode), (3, 10));
    let e = reset(
        &frame(2, &update_body(&[33, 1, 2, 3, 4, 5], &[], &[])),
        &ctx(),
    );
    assert_eq!((e.code, e.subcode), (3, 10));
    let mut v6 = vec![0u8, 2, 1, 16];
    v6.extend_from_slice(&[
        0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 129,
    ]);
    v6.extend_from_slice(&[0xFF; 17]);
    let attrs = [mandatory(), attr(0x80, 14, &v6)].concat();
    let e = reset(&frame(2, &update_body(&[], &attrs, &[])), &ctx());
    assert_eq!((e.code, e.subcode), (3, 1));
    // Labeled unicast (SAFI 4) whose label lacks the bottom-of-stack bit: opaque, decodes.
    let labeled = attr(
        0x80,
        14,
        &[0, 1, 4, 4, 10, 0, 0, 1, 0, 48, 0x04, 0xE2, 0xC0, 10, 1, 2],
    );
    let d = update(
        &frame(2, &update_body(&[], &[mandatory(), labeled].concat(), &[])),
        &ctx(),
    );
    assert_eq!(d.treat_as_withdraw, None);
    assert_eq!(d.update.mp_reach.unwrap().family.safi.0, 4);
}

#[test]
fn s4_10_route_refresh_cluster_list_and_otc() {
    for body in [&[0u8, 1, 0][..], &[0, 1, 1, 1, 0], &[]] {
        let f = frame(5, body);
        let e = reset(&f, &ctx());
        assert_eq!((e.code, e.subcode), (7, 1));
        assert_eq!(
            &e.data[..],
            &f[..],
            "the whole message is the data (RFC 7313 5)"
        );
    }
    let d = assert_withdraw(
        &frame(
            2,
            &update_body(&[], &[mandatory(), attr(0x80, 10, &[])].concat(), &NLRI),
        ),
        "CLUSTER_LIST",
    );
    assert!(d.update.attributes.cluster_list.is_empty());
    for otc in [&[0u8, 0, 1][..], &[0, 0, 0, 1, 0], &[]] {
        let attrs = [mandatory(), attr(0xC0, 35, otc)].concat();
        let d = assert_withdraw(&frame(2, &update_body(&[], &attrs, &NLRI)), "OTC");
        assert_eq!(d.update.attributes.otc, None, "never re-advertised");
        assert!(!reencode(&d).windows(2).any(|w| w == [0xC0, 35]));
    }
}
