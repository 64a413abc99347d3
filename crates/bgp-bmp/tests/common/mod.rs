//! BGP messages and BMP values the tests build: OPENs with chosen capabilities, UPDATEs,
//! NOTIFICATIONs, peers.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use bgp_bmp::wire::{PeerHeader, PeerUp, Tlv};
use bgp_proto::wire::{encode_announcements, encode_message};
use bgp_proto::{
    AddPathMode, AsPath, AsSegment, Capability, CodecContext, Community, Family, Message,
    MpNextHop, Nlri, Notification, Open, Origin, PathAttributes, SegmentType,
};
use bytes::{Bytes, BytesMut};

pub fn framed(msg: Message) -> Bytes {
    let mut out = BytesMut::new();
    encode_message(&msg, &CodecContext::default(), &mut out).unwrap();
    out.freeze()
}

/// An OPEN from `asn` with 4-octet AS, IPv4 and IPv6 unicast, and `add_path` modes.
pub fn open(asn: u32, id: Ipv4Addr, add_path: &[(Family, AddPathMode)]) -> Bytes {
    let mut capabilities = vec![
        Capability::MultiProtocol(Family::IPV4_UNICAST),
        Capability::MultiProtocol(Family::IPV6_UNICAST),
        Capability::FourOctetAs(asn),
    ];
    if !add_path.is_empty() {
        capabilities.push(Capability::AddPath(add_path.to_vec()));
    }
    framed(Message::Open(Open {
        version: 4,
        my_as: Open::my_as_field(asn),
        hold_time: 90,
        bgp_id: id,
        capabilities,
        other_params: vec![],
    }))
}

pub fn notification(code: u8, subcode: u8) -> Bytes {
    framed(Message::Notification(Notification {
        code,
        subcode,
        data: Bytes::new(),
    }))
}

pub fn attrs(asns: &[u32]) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: asns.to_vec(),
            }],
        }),
        med: Some(10),
        local_pref: Some(100),
        communities: vec![Community::new(65000, 1)],
        ..Default::default()
    }
}

/// One UPDATE announcing `prefixes` (same family) with `attrs` under `ctx`.
pub fn update(
    prefixes: &[(&str, Option<u32>)],
    attrs: &PathAttributes,
    ctx: &CodecContext,
) -> Bytes {
    let nlri: Vec<Nlri> = prefixes
        .iter()
        .map(|(p, id)| Nlri {
            path_id: *id,
            prefix: p.parse().unwrap(),
        })
        .collect();
    let (family, nh) = match nlri[0].prefix {
        ipnet::IpNet::V4(_) => (
            Family::IPV4_UNICAST,
            MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1)),
        ),
        ipnet::IpNet::V6(_) => (
            Family::IPV6_UNICAST,
            MpNextHop::V6 {
                global: "2001:db8::1".parse().unwrap(),
                link_local: None,
            },
        ),
    };
    let mut out = Vec::new();
    encode_announcements(family, attrs, Some(&nh), &nlri, ctx, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    out.remove(0)
}

pub fn peer(last: u8) -> PeerHeader {
    PeerHeader::new(
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)),
        65000 + u32::from(last),
        Ipv4Addr::new(10, 0, 0, last),
    )
}

/// A Peer Up for `peer(last)`, both sides offering `add_path`.
pub fn peer_up(last: u8, add_path: &[(Family, AddPathMode)]) -> PeerUp {
    let p = peer(last);
    PeerUp {
        local_address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254)),
        local_port: 179,
        remote_port: 40_000 + u16::from(last),
        sent_open: open(64512, Ipv4Addr::new(10, 0, 0, 254), add_path),
        received_open: open(p.asn, p.bgp_id, add_path),
        information: vec![Tlv::text(0, "peer")],
        peer: p,
    }
}
