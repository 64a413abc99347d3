//! OPEN (RFC 4271 4.2) with optional parameters (RFC 5492) and the extended optional
//! parameters length of RFC 9072.

use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes, BytesMut};

use super::capability::{decode_capabilities, encode_capability};
use super::error::{EncodeError, NotificationError};
use super::reader::Reader;
use super::types::{notification_code as nc, Capability, Open, AS_TRANS};

/// Optional parameter type carrying capabilities (RFC 5492 4).
const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072 2: a Non-Ext OP Type of 255 announces two-octet parameter lengths.
const EXTENDED_PARAMS: u8 = 255;

impl Open {
    /// The speaker's AS: the 4-octet AS capability if present (RFC 6793 4.1), else the
    /// 2-octet My Autonomous System field.
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    /// The 2-octet My Autonomous System value to send for `asn` (RFC 6793 4.1).
    pub fn my_as_field(asn: u32) -> u16 {
        u16::try_from(asn).unwrap_or(AS_TRANS)
    }
}

fn open_error(subcode: u8, reason: impl Into<String>) -> NotificationError {
    NotificationError::new(nc::OPEN_MESSAGE, subcode, reason)
}

/// Decode an OPEN body (after the header).
///
/// Beyond the format this applies the checks RFC 4271 6.2 ties to the message itself:
/// version 4 (2/1, data = the version we support), hold time not 1 or 2 (2/6), and a
/// non-zero BGP Identifier (2/3, RFC 6286 2.2). Peer AS, identifier collisions and
/// capability negotiation are the session's business. Optional parameters other than
/// capabilities are returned in `other_params` so the session can answer 2/4.
pub(crate) fn decode_open(body: &[u8]) -> Result<Open, NotificationError> {
    let mut r = Reader::new(body);
    let short = || open_error(0, "OPEN shorter than its fixed fields");
    let version = r.u8().ok_or_else(short)?;
    if version != 4 {
        return Err(open_error(
            nc::UNSUPPORTED_VERSION,
            format!("unsupported BGP version {version}"),
        )
        .with_data(vec![0, 4]));
    }
    let my_as = r.u16().ok_or_else(short)?;
    let hold_time = r.u16().ok_or_else(short)?;
    let bgp_id = Ipv4Addr::from(r.u32().ok_or_else(short)?);
    let opt_len = r.u8().ok_or_else(short)?;
    if hold_time == 1 || hold_time == 2 {
        return Err(open_error(
            nc::UNACCEPTABLE_HOLD_TIME,
            format!("unacceptable hold time {hold_time}"),
        ));
    }
    if bgp_id.is_unspecified() {
        return Err(open_error(nc::BAD_BGP_IDENTIFIER, "BGP identifier 0.0.0.0"));
    }

    // RFC 9072 2: a non-zero length followed by type 255 selects the extended encoding.
    let extended = opt_len != 0 && r.peek_rest().first() == Some(&EXTENDED_PARAMS);
    let params = if extended {
        let _ = r.u8();
        let ext_len = r
            .u16()
            .ok_or_else(|| open_error(0, "truncated extended optional parameters length"))?;
        r.take(usize::from(ext_len)).ok_or_else(|| {
            open_error(
                0,
                format!("extended optional parameters length {ext_len} overruns the OPEN"),
            )
        })?
    } else {
        r.take(usize::from(opt_len)).ok_or_else(|| {
            open_error(
                0,
                format!("optional parameters length {opt_len} overruns the OPEN"),
            )
        })?
    };
    if !r.is_empty() {
        return Err(open_error(
            0,
            format!("{} bytes after the optional parameters", r.remaining()),
        ));
    }

    let mut capabilities = Vec::new();
    let mut other_params = Vec::new();
    let mut p = Reader::new(params);
    while !p.is_empty() {
        let truncated = || open_error(0, "optional parameter overruns the parameters length");
        let ptype = p.u8().ok_or_else(truncated)?;
        let plen = if extended {
            p.u16().ok_or_else(truncated)?
        } else {
            u16::from(p.u8().ok_or_else(truncated)?)
        };
        let value = p.take(usize::from(plen)).ok_or_else(truncated)?;
        if ptype == PARAM_CAPABILITIES {
            decode_capabilities(value, &mut capabilities)?;
        } else {
            other_params.push((ptype, Bytes::copy_from_slice(value)));
        }
    }
    Ok(Open {
        version,
        my_as,
        hold_time,
        bgp_id,
        capabilities,
        other_params,
    })
}

/// Encode an OPEN body. Capabilities are packed into as few parameters of up to 255 bytes
/// as they fit; if the parameters then exceed 255 bytes, the RFC 9072 encoding is used.
pub(crate) fn encode_open(open: &Open, out: &mut BytesMut) -> Result<(), EncodeError> {
    // Encode each capability once, then group them.
    let mut caps = BytesMut::new();
    let mut ends = Vec::with_capacity(open.capabilities.len());
    for cap in &open.capabilities {
        encode_capability(cap, &mut caps)?;
        ends.push(caps.len());
    }
    let mut params: Vec<(u8, &[u8])> = Vec::new();
    let mut group_start = 0;
    let mut prev_end = 0;
    for &end in &ends {
        if end - group_start > 255 {
            params.push((
                PARAM_CAPABILITIES,
                caps.get(group_start..prev_end).unwrap_or(&[]),
            ));
            group_start = prev_end;
        }
        prev_end = end;
    }
    if prev_end > group_start {
        params.push((
            PARAM_CAPABILITIES,
            caps.get(group_start..prev_end).unwrap_or(&[]),
        ));
    }
    for (t, v) in &open.other_params {
        params.push((*t, v));
    }
    let plain_len: usize = params.iter().map(|(_, v)| 2 + v.len()).sum();
    // A plain list whose first parameter has type 255 would read as the RFC 9072 header
    // (section 2), so such a list is sent in the extended form, where it is unambiguous.
    let extended = plain_len > 255
        || params.iter().any(|(_, v)| v.len() > 255)
        || params.first().is_some_and(|(t, _)| *t == EXTENDED_PARAMS);

    out.put_u8(open.version);
    out.put_u16(open.my_as);
    out.put_u16(open.hold_time);
    out.put_slice(&open.bgp_id.octets());
    if extended {
        let ext_len: usize = params.iter().map(|(_, v)| 3 + v.len()).sum();
        let ext_len = u16::try_from(ext_len)
            .map_err(|_| EncodeError::Invalid("optional parameters exceed 65535 bytes".into()))?;
        out.put_u8(255);
        out.put_u8(EXTENDED_PARAMS);
        out.put_u16(ext_len);
        for (t, v) in params {
            out.put_u8(t);
            out.put_u16(v.len() as u16); // bounded by ext_len above
            out.put_slice(v);
        }
    } else {
        out.put_u8(plain_len as u8); // <= 255 checked above
        for (t, v) in params {
            out.put_u8(t);
            out.put_u8(v.len() as u8);
            out.put_slice(v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::types::{AddPathMode, Family};

    fn open(caps: Vec<Capability>) -> Open {
        Open {
            version: 4,
            my_as: AS_TRANS,
            hold_time: 90,
            bgp_id: Ipv4Addr::new(192, 0, 2, 1),
            capabilities: caps,
            other_params: vec![],
        }
    }

    fn rt(o: &Open) -> BytesMut {
        let mut out = BytesMut::new();
        encode_open(o, &mut out).unwrap();
        assert_eq!(&decode_open(&out).unwrap(), o);
        out
    }

    #[test]
    fn open_round_trips_and_reports_the_4_octet_asn() {
        let o = open(vec![
            Capability::MultiProtocol(Family::IPV4_UNICAST),
            Capability::FourOctetAs(4_200_000_001),
            Capability::RouteRefresh,
        ]);
        let wire = rt(&o);
        assert_eq!(wire[9], 16, "one capabilities parameter of 14 bytes");
        assert_eq!(o.asn(), 4_200_000_001);
        assert_eq!(open(vec![]).asn(), u32::from(AS_TRANS));
        assert_eq!(Open::my_as_field(65001), 65001);
        assert_eq!(Open::my_as_field(4_200_000_001), AS_TRANS);
    }

    #[test]
    fn several_parameters_and_other_params_are_kept() {
        // Two capability parameters and an unknown parameter type 1 (deprecated auth).
        let body = [
            4, 0xFD, 0xE9, 0, 90, 10, 0, 0, 1, 16, 2, 6, 1, 4, 0, 1, 0, 1, 2, 2, 2, 0, 1, 2, 0xAB,
            0xCD,
        ];
        let o = decode_open(&body).unwrap();
        assert_eq!(o.my_as, 65001);
        assert_eq!(
            o.capabilities,
            vec![
                Capability::MultiProtocol(Family::IPV4_UNICAST),
                Capability::RouteRefresh
            ]
        );
        assert_eq!(o.other_params, vec![(1, Bytes::from_static(&[0xAB, 0xCD]))]);
    }

    #[test]
    fn large_capability_sets_use_rfc9072_extended_parameters() {
        let caps: Vec<Capability> = (0..60u16)
            .map(|i| Capability::MultiProtocol(Family::new(crate::Afi(i), crate::Safi(1))))
            .chain([Capability::AddPath(vec![(
                Family::IPV4_UNICAST,
                AddPathMode::Both,
            )])])
            .collect();
        let wire = rt(&open(caps));
        assert_eq!(&wire[9..11], &[255, 255]);
    }

    #[test]
    fn bad_fixed_fields() {
        let good = [4u8, 0xFD, 0xE9, 0, 90, 10, 0, 0, 1, 0];
        assert_eq!(decode_open(&good).unwrap().hold_time, 90);
        let mut v3 = good;
        v3[0] = 3;
        let e = decode_open(&v3).unwrap_err();
        assert_eq!((e.code, e.subcode, &e.data[..]), (2, 1, &[0u8, 4][..]));
        for hold in [1u8, 2] {
            let mut h = good;
            h[4] = hold;
            assert_eq!(decode_open(&h).unwrap_err().subcode, 6);
        }
        let mut h0 = good;
        h0[4] = 0;
        assert_eq!(
            decode_open(&h0).unwrap().hold_time,
            0,
            "hold time 0 is allowed"
        );
        let mut id0 = good;
        id0[5..9].copy_from_slice(&[0; 4]);
        assert_eq!(decode_open(&id0).unwrap_err().subcode, 3);
        for n in 0..good.len() {
            assert!(decode_open(&good[..n]).is_err(), "truncated at {n}");
        }
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert_eq!(decode_open(&trailing).unwrap_err().subcode, 0);
    }

    #[test]
    fn truncated_parameters_are_2_0() {
        // Optional parameters length 0xFF with a few bytes only.
        let e = decode_open(&[4, 0xFD, 0xE9, 0, 90, 10, 0, 0, 1, 0xFF, 2, 0]).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 0));
        // Parameter length beyond the parameters.
        let e = decode_open(&[4, 0xFD, 0xE9, 0, 90, 10, 0, 0, 1, 2, 2, 6]).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 0));
        // RFC 9072: truncated extended length, extended length beyond the message,
        // and an extended parameter with a truncated two-octet length.
        for body in [
            &[4u8, 0xFD, 0xE9, 0, 90, 10, 0, 0, 1, 0xFF, 0xFF, 0][..],
            &[4, 0xFD, 0xE9, 0, 90, 10, 0, 0, 1, 0xFF, 0xFF, 0, 10, 2, 0],
            &[4, 0xFD, 0xE9, 0, 90, 10, 0, 0, 1, 0xFF, 0xFF, 0, 2, 2, 0],
            &[
                4, 0xFD, 0xE9, 0, 90, 10, 0, 0, 1, 0xFF, 0xFF, 0, 5, 2, 0, 4, 2, 0,
            ],
        ] {
            let e = decode_open(body).unwrap_err();
            assert_eq!((e.code, e.subcode), (2, 0), "{body:?}");
        }
        // A well-formed extended parameter block decodes.
        let o = decode_open(&[
            4, 0xFD, 0xE9, 0, 90, 10, 0, 0, 1, 0xFF, 0xFF, 0, 5, 2, 0, 2, 2, 0,
        ])
        .unwrap();
        assert_eq!(o.capabilities, vec![Capability::RouteRefresh]);
    }

    #[test]
    fn a_first_parameter_of_type_255_is_sent_in_the_extended_form() {
        let mut o = open(vec![]);
        o.other_params = vec![(255, Bytes::new()), (7, Bytes::from_static(&[1]))];
        let mut wire = BytesMut::new();
        encode_open(&o, &mut wire).unwrap();
        assert_eq!(&wire[9..11], &[255, 255], "extended header");
        let back = decode_open(&wire).unwrap();
        assert_eq!(back.other_params, o.other_params);
    }
}
