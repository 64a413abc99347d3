//! The Partial bit of recognised optional transitive attributes on real routes
//! (RFC 4271 4.3: "Once the Partial bit has been set by a BGP speaker, it MUST NOT be unset
//! by any BGP speaker that propagates the route").
//!
//! The two samples are the only attributes with Partial in tests/data/mrt (RIPE NCC RIS
//! data from the bgpdump project's tests), copied here as hex:
//! - `updates.20071015.1505.gz`: a BGP4MP_MESSAGE (2-octet AS) UPDATE from AS 34225 whose
//!   EXTENDED_COMMUNITIES arrived with Partial (flags 0xE0);
//! - `bview.64k_stream_overflow.gz`: a TABLE_DUMP_V2 RIB_IPV6_UNICAST entry for
//!   2001:579:1040::/46 whose LARGE_COMMUNITY has Partial; its attributes up to (not
//!   including) the 2.3 kB MP_REACH_NLRI.
//!
//! Both re-encode byte for byte, the Partial bits included.

use bgp_proto::wire::{
    decode_message, decode_path_attributes, encode_message, Inbound, MpReachForm,
};
use bgp_proto::{attr_type as at, CodecContext, ExtendedCommunity, LargeCommunity, Message};
use bytes::BytesMut;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn ris_update_with_partial_extended_communities_re_encodes_exactly() {
    let frame = unhex(concat!(
        "ffffffffffffffffffffffffffffffff004b02",
        "0000",                           // no withdrawn routes
        "0030",                           // 48 octets of attributes
        "40010100",                       // ORIGIN IGP
        "40020c020585b1a2dc89f81adca248", // AS_PATH 34225 41692 35320 6876 41544
        "400304c18aa401",                 // NEXT_HOP 193.138.164.1
        "c0080885b1044c85b1044e",         // COMMUNITIES 34225:1100 34225:1102
        "e01008000289f80000012c",         // EXTENDED_COMMUNITIES, Partial
        "17c34e5c",                       // 195.78.92.0/23
    ));
    let ctx = CodecContext::default(); // BGP4MP_MESSAGE: 2-octet AS numbers
    let Inbound::Update(d) = decode_message(&frame, &ctx).unwrap() else {
        panic!("not an UPDATE");
    };
    assert_eq!(
        (d.treat_as_withdraw.as_deref(), d.discarded.len()),
        (None, 0)
    );
    let a = &d.update.attributes;
    assert_eq!(
        a.extended_communities,
        [ExtendedCommunity([0, 2, 0x89, 0xF8, 0, 0, 1, 0x2C])]
    );
    assert!(a.partial.contains(at::EXTENDED_COMMUNITIES));
    assert!(!a.partial.contains(at::COMMUNITIES));
    let mut out = BytesMut::new();
    encode_message(&Message::Update(d.update), &ctx, &mut out).unwrap();
    assert_eq!(&out[..], &frame[..]);
}

#[test]
fn ris_rib_entry_with_partial_large_community_re_encodes_exactly() {
    let block = unhex(concat!(
        "40010102",                               // ORIGIN INCOMPLETE
        "40020e020300003cca00000b62000058f5",     // AS_PATH 15562 2914 22773
        "80040400000000",                         // MED 0
        "c008100b62019a0b6203ec0b6207d00b620bb8", // COMMUNITIES, 4
        "e0200c00003cca000010cc00000001",         // LARGE_COMMUNITY, Partial
    ));
    // TABLE_DUMP_V2 attributes always carry 4-octet AS numbers (RFC 6396 4.3.4).
    let ctx = CodecContext {
        four_octet_as: true,
        ..CodecContext::default()
    };
    let d = decode_path_attributes(&block, &ctx, MpReachForm::MrtAbbreviated).unwrap();
    assert_eq!(
        (d.treat_as_withdraw.as_deref(), d.discarded.len()),
        (None, 0)
    );
    assert_eq!(
        d.attributes.large_communities,
        [LargeCommunity {
            global: 15562,
            local1: 4300,
            local2: 1
        }]
    );
    assert!(d.attributes.partial.contains(at::LARGE_COMMUNITIES));
    let update = bgp_proto::Update {
        attributes: d.attributes,
        ..Default::default()
    };
    let mut out = BytesMut::new();
    encode_message(&Message::Update(update), &ctx, &mut out).unwrap();
    // Header, no withdrawn routes, the attribute block length, then the block itself.
    assert_eq!(&out[23..], &block[..]);
}
