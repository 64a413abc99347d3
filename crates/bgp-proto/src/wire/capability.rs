//! Capabilities advertisement (RFC 5492) and every capability this crate models.
//!
//! A capability is `code (1) | length (1) | value`. Several may share one optional
//! parameter, and a code may appear more than once (one MULTIPROTOCOL per family).
//! Capabilities with a fixed layout whose length disagrees with it are rejected with
//! OPEN Message Error / Unspecific (2/0) and the capability as data: accepting a 4-octet
//! AS capability of length 2, say, would silently change how every UPDATE is parsed.
//! The FQDN capability is informational, so a malformed one is kept as `Unknown`.
//! Unknown codes are kept verbatim.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{EncodeError, NotificationError};
use super::reader::Reader;
use super::types::{
    capability_code as cc, notification_code as nc, AddPathMode, Afi, BgpRole, Capability, Family,
    GracefulRestart, GracefulRestartFamily, LlgrFamily, Safi,
};

fn malformed(code: u8, value: &[u8], what: &str) -> NotificationError {
    let mut data = Vec::with_capacity(value.len() + 2);
    data.push(code);
    data.push(value.len() as u8);
    data.extend_from_slice(value);
    NotificationError::new(
        nc::OPEN_MESSAGE,
        0,
        format!(
            "malformed {what} capability (code {code}, length {})",
            value.len()
        ),
    )
    .with_data(data)
}

fn family(r: &mut Reader<'_>) -> Option<Family> {
    let afi = r.u16()?;
    let safi = r.u8()?;
    Some(Family::new(Afi(afi), Safi(safi)))
}

/// Decode one capability value. `None` means its length disagrees with its layout.
fn decode_value(code: u8, value: &[u8]) -> Option<Capability> {
    let mut r = Reader::new(value);
    let cap = match code {
        // RFC 4760 8: AFI (2), reserved (1), SAFI (1).
        cc::MULTIPROTOCOL => {
            let afi = r.u16()?;
            let _reserved = r.u8()?;
            let safi = r.u8()?;
            Capability::MultiProtocol(Family::new(Afi(afi), Safi(safi)))
        }
        // RFC 2918 2, RFC 7313 3, RFC 8654 3: no value.
        cc::ROUTE_REFRESH => Capability::RouteRefresh,
        cc::ENHANCED_ROUTE_REFRESH => Capability::EnhancedRouteRefresh,
        cc::EXTENDED_MESSAGE => Capability::ExtendedMessage,
        // RFC 6793 3.
        cc::FOUR_OCTET_AS => Capability::FourOctetAs(r.u32()?),
        // RFC 4724 3, RFC 8538 2 (N bit).
        cc::GRACEFUL_RESTART => {
            let head = r.u16()?;
            if !r.remaining().is_multiple_of(4) {
                return None;
            }
            let mut families = Vec::with_capacity(r.remaining() / 4);
            while !r.is_empty() {
                let family = family(&mut r)?;
                let flags = r.u8()?;
                families.push(GracefulRestartFamily {
                    family,
                    forwarding_preserved: flags & 0x80 != 0,
                });
            }
            Capability::GracefulRestart(GracefulRestart {
                restart_state: head & 0x8000 != 0,
                notification: head & 0x4000 != 0,
                restart_time: head & 0x0FFF,
                families,
            })
        }
        // RFC 9494 3: AFI (2), SAFI (1), flags (1), stale time (3) per family.
        cc::LONG_LIVED_GRACEFUL_RESTART => {
            if !r.remaining().is_multiple_of(7) {
                return None;
            }
            let mut families = Vec::with_capacity(r.remaining() / 7);
            while !r.is_empty() {
                let family = family(&mut r)?;
                let flags = r.u8()?;
                let stale_time = r.u24()?;
                families.push(LlgrFamily {
                    family,
                    forwarding_preserved: flags & 0x80 != 0,
                    stale_time,
                });
            }
            Capability::LongLivedGracefulRestart(families)
        }
        // RFC 7911 4: AFI (2), SAFI (1), Send/Receive (1) per family.
        cc::ADD_PATH => {
            if !r.remaining().is_multiple_of(4) || r.is_empty() {
                return None;
            }
            let mut families = Vec::with_capacity(r.remaining() / 4);
            while !r.is_empty() {
                let family = family(&mut r)?;
                let mode = match r.u8()? {
                    1 => AddPathMode::Receive,
                    2 => AddPathMode::Send,
                    3 => AddPathMode::Both,
                    _ => return None,
                };
                families.push((family, mode));
            }
            Capability::AddPath(families)
        }
        // RFC 8950 3: NLRI AFI (2), NLRI SAFI (2), next-hop AFI (2) per entry.
        cc::EXTENDED_NEXT_HOP => {
            if !r.remaining().is_multiple_of(6) || r.is_empty() {
                return None;
            }
            let mut entries = Vec::with_capacity(r.remaining() / 6);
            while !r.is_empty() {
                let afi = r.u16()?;
                let safi = u8::try_from(r.u16()?).ok()?;
                let nh_afi = r.u16()?;
                entries.push((Family::new(Afi(afi), Safi(safi)), Afi(nh_afi)));
            }
            Capability::ExtendedNextHop(entries)
        }
        // RFC 9234 4.1: one octet.
        cc::ROLE => Capability::Role(BgpRole(r.u8()?)),
        // draft-walton-bgp-hostname-capability: hostname and domain, each length-prefixed.
        cc::FQDN => {
            let hlen = r.u8()?;
            let hostname = std::str::from_utf8(r.take(usize::from(hlen))?).ok()?;
            let dlen = r.u8()?;
            let domain = std::str::from_utf8(r.take(usize::from(dlen))?).ok()?;
            Capability::Fqdn {
                hostname: hostname.to_owned(),
                domain: domain.to_owned(),
            }
        }
        _ => {
            return Some(Capability::Unknown {
                code,
                value: Bytes::copy_from_slice(value),
            })
        }
    };
    r.is_empty().then_some(cap)
}

/// Decode the capabilities in one Capabilities optional parameter (RFC 5492 4) and append
/// them to `out`.
pub(crate) fn decode_capabilities(
    param: &[u8],
    out: &mut Vec<Capability>,
) -> Result<(), NotificationError> {
    let mut r = Reader::new(param);
    while !r.is_empty() {
        let truncated = || {
            NotificationError::new(nc::OPEN_MESSAGE, 0, "capability overruns its parameter")
                .with_data(Bytes::copy_from_slice(param))
        };
        let code = r.u8().ok_or_else(truncated)?;
        let len = r.u8().ok_or_else(truncated)?;
        let value = r.take(usize::from(len)).ok_or_else(truncated)?;
        match decode_value(code, value) {
            Some(cap) => out.push(cap),
            None if code == cc::FQDN => out.push(Capability::Unknown {
                code,
                value: Bytes::copy_from_slice(value),
            }),
            None => return Err(malformed(code, value, capability_name(code))),
        }
    }
    Ok(())
}

fn capability_name(code: u8) -> &'static str {
    match code {
        cc::MULTIPROTOCOL => "multiprotocol",
        cc::ROUTE_REFRESH => "route refresh",
        cc::ENHANCED_ROUTE_REFRESH => "enhanced route refresh",
        cc::EXTENDED_MESSAGE => "extended message",
        cc::FOUR_OCTET_AS => "4-octet AS",
        cc::GRACEFUL_RESTART => "graceful restart",
        cc::LONG_LIVED_GRACEFUL_RESTART => "long-lived graceful restart",
        cc::ADD_PATH => "ADD-PATH",
        cc::EXTENDED_NEXT_HOP => "extended next hop",
        cc::ROLE => "BGP role",
        cc::FQDN => "FQDN",
        _ => "unknown",
    }
}

fn put_family(out: &mut BytesMut, f: Family) {
    out.put_u16(f.afi.0);
    out.put_u8(f.safi.0);
}

/// Encode one capability TLV. Fails if its value would exceed 255 bytes.
pub(crate) fn encode_capability(cap: &Capability, out: &mut BytesMut) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_u8(0);
    out.put_u8(0);
    let code = match cap {
        Capability::MultiProtocol(f) => {
            out.put_u16(f.afi.0);
            out.put_u8(0);
            out.put_u8(f.safi.0);
            cc::MULTIPROTOCOL
        }
        Capability::RouteRefresh => cc::ROUTE_REFRESH,
        Capability::EnhancedRouteRefresh => cc::ENHANCED_ROUTE_REFRESH,
        Capability::ExtendedMessage => cc::EXTENDED_MESSAGE,
        Capability::FourOctetAs(asn) => {
            out.put_u32(*asn);
            cc::FOUR_OCTET_AS
        }
        Capability::GracefulRestart(gr) => {
            let mut head = gr.restart_time & 0x0FFF;
            if gr.restart_state {
                head |= 0x8000;
            }
            if gr.notification {
                head |= 0x4000;
            }
            out.put_u16(head);
            for f in &gr.families {
                put_family(out, f.family);
                out.put_u8(if f.forwarding_preserved { 0x80 } else { 0 });
            }
            cc::GRACEFUL_RESTART
        }
        Capability::LongLivedGracefulRestart(families) => {
            for f in families {
                put_family(out, f.family);
                out.put_u8(if f.forwarding_preserved { 0x80 } else { 0 });
                out.put_slice(&(f.stale_time & 0x00FF_FFFF).to_be_bytes()[1..]);
            }
            cc::LONG_LIVED_GRACEFUL_RESTART
        }
        Capability::AddPath(families) => {
            for (f, mode) in families {
                put_family(out, *f);
                out.put_u8(*mode as u8);
            }
            cc::ADD_PATH
        }
        Capability::ExtendedNextHop(entries) => {
            for (f, nh_afi) in entries {
                out.put_u16(f.afi.0);
                out.put_u16(u16::from(f.safi.0));
                out.put_u16(nh_afi.0);
            }
            cc::EXTENDED_NEXT_HOP
        }
        Capability::Role(role) => {
            out.put_u8(role.0);
            cc::ROLE
        }
        Capability::Fqdn { hostname, domain } => {
            for s in [hostname, domain] {
                let len = u8::try_from(s.len())
                    .map_err(|_| EncodeError::Invalid(format!("FQDN part {s:?} too long")))?;
                out.put_u8(len);
                out.put_slice(s.as_bytes());
            }
            cc::FQDN
        }
        Capability::Unknown { code, value } => {
            out.put_slice(value);
            *code
        }
    };
    let len = out.len() - start - 2;
    let len = u8::try_from(len).map_err(|_| {
        out.truncate(start);
        EncodeError::Invalid(format!(
            "capability {code} value of {len} bytes exceeds 255"
        ))
    })?;
    if let Some(h) = out.get_mut(start..start + 2) {
        h.copy_from_slice(&[code, len]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(cap: Capability, wire: &[u8]) {
        let mut out = BytesMut::new();
        encode_capability(&cap, &mut out).unwrap();
        assert_eq!(&out[..], wire, "{cap:?}");
        let mut caps = Vec::new();
        decode_capabilities(wire, &mut caps).unwrap();
        assert_eq!(caps, vec![cap]);
    }

    #[test]
    fn every_modelled_capability_round_trips() {
        let v4 = Family::IPV4_UNICAST;
        let v6 = Family::IPV6_UNICAST;
        roundtrip(Capability::MultiProtocol(v6), &[1, 4, 0, 2, 0, 1]);
        roundtrip(Capability::RouteRefresh, &[2, 0]);
        roundtrip(Capability::EnhancedRouteRefresh, &[70, 0]);
        roundtrip(Capability::ExtendedMessage, &[6, 0]);
        roundtrip(
            Capability::FourOctetAs(4_200_000_000),
            &[65, 4, 0xFA, 0x56, 0xEA, 0],
        );
        roundtrip(
            Capability::GracefulRestart(GracefulRestart {
                restart_state: true,
                notification: true,
                restart_time: 120,
                families: vec![GracefulRestartFamily {
                    family: v4,
                    forwarding_preserved: true,
                }],
            }),
            &[64, 6, 0xC0, 120, 0, 1, 1, 0x80],
        );
        roundtrip(
            Capability::LongLivedGracefulRestart(vec![LlgrFamily {
                family: v6,
                forwarding_preserved: false,
                stale_time: 0x010203,
            }]),
            &[71, 7, 0, 2, 1, 0, 1, 2, 3],
        );
        roundtrip(
            Capability::AddPath(vec![(v4, AddPathMode::Both), (v6, AddPathMode::Receive)]),
            &[69, 8, 0, 1, 1, 3, 0, 2, 1, 1],
        );
        roundtrip(
            Capability::ExtendedNextHop(vec![(v4, Afi::IPV6)]),
            &[5, 6, 0, 1, 0, 1, 0, 2],
        );
        roundtrip(Capability::Role(BgpRole::CUSTOMER), &[9, 1, 3]);
        roundtrip(
            Capability::Fqdn {
                hostname: "node1".into(),
                domain: "k8s".into(),
            },
            &[73, 10, 5, b'n', b'o', b'd', b'e', b'1', 3, b'k', b'8', b's'],
        );
        roundtrip(
            Capability::Unknown {
                code: 128,
                value: Bytes::from_static(&[1, 2]),
            },
            &[128, 2, 1, 2],
        );
    }

    #[test]
    fn several_capabilities_in_one_parameter() {
        let mut caps = Vec::new();
        decode_capabilities(
            &[1, 4, 0, 1, 0, 1, 2, 0, 65, 4, 0, 0, 0xFD, 0xE8],
            &mut caps,
        )
        .unwrap();
        assert_eq!(
            caps,
            vec![
                Capability::MultiProtocol(Family::IPV4_UNICAST),
                Capability::RouteRefresh,
                Capability::FourOctetAs(65000)
            ]
        );
    }

    #[test]
    fn fixed_size_capabilities_with_wrong_length_are_2_0() {
        for wire in [
            &[65u8, 2, 0xFD, 0xE8][..], // 4-octet AS with length 2
            &[1, 0],                    // MP with length 0
            &[1, 5, 0, 1, 0, 1, 0],     // MP with length 5
            &[2, 1, 0],                 // route refresh with a value
            &[64, 1, 0],                // GR shorter than its header
            &[64, 5, 0, 0, 0, 1, 1],    // GR with a partial family
            &[69, 3, 0, 1, 1],          // ADD-PATH partial
            &[69, 4, 0, 1, 1, 4],       // ADD-PATH mode 4
            &[5, 4, 0, 1, 0, 1],        // extended next hop partial
            &[5, 6, 0, 1, 1, 0, 0, 2],  // extended next hop SAFI > 255
            &[9, 0],                    // role without value
            &[71, 6, 0, 1, 1, 0, 0, 0], // LLGR partial
        ] {
            let e = decode_capabilities(wire, &mut Vec::new()).unwrap_err();
            assert_eq!((e.code, e.subcode), (2, 0), "{wire:?}");
            assert_eq!(&e.data[..], wire);
        }
    }

    #[test]
    fn truncated_capability_is_2_0() {
        for wire in [&[65u8][..], &[65, 4, 0, 0]] {
            let e = decode_capabilities(wire, &mut Vec::new()).unwrap_err();
            assert_eq!((e.code, e.subcode), (2, 0));
        }
    }

    #[test]
    fn malformed_fqdn_is_kept_as_unknown() {
        let mut caps = Vec::new();
        decode_capabilities(&[73, 3, 9, b'a', b'b'], &mut caps).unwrap();
        assert_eq!(
            caps,
            vec![Capability::Unknown {
                code: 73,
                value: Bytes::from_static(&[9, b'a', b'b'])
            }]
        );
    }

    #[test]
    fn oversize_capability_is_an_encode_error() {
        let mut out = BytesMut::new();
        let cap = Capability::AddPath(vec![(Family::IPV4_UNICAST, AddPathMode::Both); 64]);
        assert!(matches!(
            encode_capability(&cap, &mut out),
            Err(EncodeError::Invalid(_))
        ));
        assert!(out.is_empty());
    }
}
