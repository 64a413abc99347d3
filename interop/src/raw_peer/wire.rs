//! BGP messages built byte by byte, independently of the codec under test,
//! each builder following the wire format of its RFC directly: framing (RFC
//! 4271 4.1; broken framings are made by editing the result), UPDATE and
//! path attributes (RFC 4271 4.3), 4-octet AS_PATHs (RFC 6793), path
//! identifiers (RFC 7911), messages up to 65,535 octets (RFC 8654) and
//! ROUTE-REFRESH (RFC 2918). OPENs come from [`super::RawPeer`] through the
//! codec: what is under test is what follows them.

use std::net::Ipv4Addr;

use bgp_proto::{message_type, HEADER_LEN};
use ipnet::Ipv4Net;

/// Attribute flags (RFC 4271 4.3).
pub mod flags {
    /// Optional.
    pub const OPTIONAL: u8 = 0x80;
    /// Transitive.
    pub const TRANSITIVE: u8 = 0x40;
    /// Extended Length.
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Frames `body` as a BGP message of `msg_type` with the all-ones marker and
/// a correct length field (build broken framings by editing the result).
pub fn message(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let len = HEADER_LEN + body.len();
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    m.push(msg_type);
    m.extend_from_slice(body);
    m
}

/// One path attribute (Extended Length when the value needs it).
pub fn attr(flag_bits: u8, type_code: u8, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len() + 4);
    if value.len() > 255 {
        v.push(flag_bits | flags::EXTENDED_LENGTH);
        v.push(type_code);
        v.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
    } else {
        v.push(flag_bits & !flags::EXTENDED_LENGTH);
        v.push(type_code);
        v.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
    }
    v.extend_from_slice(value);
    v
}

/// The mandatory attributes of an eBGP route (RFC 4271 5.1): ORIGIN IGP, an AS_PATH
/// SEQUENCE of `path` (4-octet ASNs), NEXT_HOP `next_hop`.
pub fn base_attributes(path: &[u32], next_hop: Ipv4Addr) -> Vec<u8> {
    let mut seq = vec![2, u8::try_from(path.len()).unwrap_or(u8::MAX)];
    for a in path {
        seq.extend_from_slice(&a.to_be_bytes());
    }
    [
        attr(flags::TRANSITIVE, 1, &[0]),
        attr(flags::TRANSITIVE, 2, &seq),
        attr(flags::TRANSITIVE, 3, &next_hop.octets()),
    ]
    .concat()
}

/// MULTI_EXIT_DISC (RFC 4271 5.1.4).
pub fn med(value: u32) -> Vec<u8> {
    attr(flags::OPTIONAL, 4, &value.to_be_bytes())
}

/// COMMUNITIES (RFC 1997) with `values`.
pub fn communities(values: impl IntoIterator<Item = u32>) -> Vec<u8> {
    let v: Vec<u8> = values.into_iter().flat_map(u32::to_be_bytes).collect();
    attr(flags::OPTIONAL | flags::TRANSITIVE, 8, &v)
}

/// An IPv4 NLRI (RFC 4271 4.3), with a path identifier first when `path_id` is given
/// (RFC 7911 3).
pub fn nlri(prefix: Ipv4Net, path_id: Option<u32>) -> Vec<u8> {
    let mut v = Vec::with_capacity(9);
    if let Some(id) = path_id {
        v.extend_from_slice(&id.to_be_bytes());
    }
    let len = prefix.prefix_len();
    v.push(len);
    v.extend_from_slice(&prefix.addr().octets()[..usize::from(len).div_ceil(8)]);
    v
}

/// An UPDATE message: withdrawn routes, path attributes and NLRI, each already encoded.
pub fn update(withdrawn: &[u8], attributes: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + withdrawn.len() + attributes.len() + nlri.len());
    b.extend_from_slice(
        &u16::try_from(withdrawn.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(
        &u16::try_from(attributes.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    b.extend_from_slice(attributes);
    b.extend_from_slice(nlri);
    message(message_type::UPDATE, &b)
}

/// UPDATEs announcing `prefixes` (IPv4, with their path ids) under `attributes`, as
/// many per message as fit in `max_len` octets.
pub fn announcements(
    attributes: &[u8],
    prefixes: impl IntoIterator<Item = (Ipv4Net, Option<u32>)>,
    max_len: usize,
) -> Vec<Vec<u8>> {
    let room = max_len.saturating_sub(HEADER_LEN + 4 + attributes.len());
    pack(prefixes, room, |n| update(&[], attributes, n))
}

/// UPDATEs withdrawing `prefixes` (IPv4, with their path ids), as many per message as
/// fit in `max_len` octets.
pub fn withdrawals(
    prefixes: impl IntoIterator<Item = (Ipv4Net, Option<u32>)>,
    max_len: usize,
) -> Vec<Vec<u8>> {
    pack(prefixes, max_len.saturating_sub(HEADER_LEN + 4), |n| {
        update(n, &[], &[])
    })
}

/// Packs the NLRI of `prefixes` into fields of at most `room` octets, each
/// framed by `frame`.
fn pack(
    prefixes: impl IntoIterator<Item = (Ipv4Net, Option<u32>)>,
    room: usize,
    frame: impl Fn(&[u8]) -> Vec<u8>,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut field = Vec::new();
    for (p, id) in prefixes {
        let n = nlri(p, id);
        if !field.is_empty() && field.len() + n.len() > room {
            out.push(frame(&field));
            field.clear();
        }
        field.extend_from_slice(&n);
    }
    if !field.is_empty() {
        out.push(frame(&field));
    }
    out
}

/// A ROUTE-REFRESH for IPv4 unicast (RFC 2918 3).
pub fn route_refresh_ipv4() -> Vec<u8> {
    message(message_type::ROUTE_REFRESH, &[0, 1, 0, 1])
}

/// The `n`-th /24 from 10.1.0.0/24 on, clear of the test segment's 10.0.0.0/24 (past
/// 10.255.255.0/24 at `n` = 65,279 it goes on into 11.0.0.0/8: announced inside the
/// test's namespaces only, never installed in a kernel).
pub fn slash24(n: u32) -> Ipv4Net {
    let a = 0x0A01_0000u32.wrapping_add(n << 8);
    Ipv4Net::new(Ipv4Addr::from(a), 24).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_messages() {
        let k = message(message_type::KEEPALIVE, &[]);
        assert_eq!(k.len(), 19);
        assert_eq!(&k[16..], &[0, 19, 4]);
        assert!(k[..16].iter().all(|b| *b == 0xff));
    }

    #[test]
    fn builds_updates_by_the_rfc() {
        let p: Ipv4Net = "10.1.2.0/24".parse().unwrap();
        assert_eq!(nlri(p, None), vec![24, 10, 1, 2]);
        assert_eq!(nlri(p, Some(7)), vec![0, 0, 0, 7, 24, 10, 1, 2]);
        assert_eq!(nlri("0.0.0.0/0".parse().unwrap(), None), vec![0]);
        let a = attr(flags::OPTIONAL | flags::TRANSITIVE, 8, &[0; 300]);
        assert_eq!(&a[..4], &[0xD0, 8, 1, 44]);
        let base = base_attributes(&[65001], Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(base.len(), 4 + 9 + 7);
        let u = update(&[], &base, &nlri(p, None));
        assert_eq!(u.len(), 19 + 4 + base.len() + 4);
        assert_eq!(u[18], message_type::UPDATE);
        // Packing: every message within the size, every prefix once.
        let ups = announcements(&base, (0..3000).map(|i| (slash24(i), None)), 4096);
        assert!(ups.iter().all(|m| m.len() <= 4096));
        let total: usize = ups.iter().map(|m| m.len() - 19 - 4 - base.len()).sum();
        assert_eq!(total, 3000 * 4);
        let w = withdrawals((0..3000).map(|i| (slash24(i), Some(i))), 4096);
        assert!(w.iter().all(|m| m.len() <= 4096));
        assert_eq!(route_refresh_ipv4(), message(5, &[0, 1, 0, 1]));
        assert_eq!(slash24(0).to_string(), "10.1.0.0/24");
        assert_eq!(slash24(256).to_string(), "10.2.0.0/24");
        assert_eq!(slash24(65_280).to_string(), "11.0.0.0/24");
    }
}
