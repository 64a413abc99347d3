//! IPv4/IPv6 prefixes as NLRI (RFC 4271 4.3, RFC 4760 5, RFC 7911 3 path identifiers).
//!
//! A prefix is `length (1 octet, bits) | ceil(length / 8) octets`. Bits past the length
//! ("trailing host bits") carry no meaning (RFC 4271 4.3) and are cleared on decode, so
//! `10.1.2.3/16` on the wire becomes `10.1.0.0/16`: one route, one key. bgpdump does the
//! same (see `tests/data/mrt/updates.nlri_mask_trailing_bits.gz`, printed as 11.8.0.0/13).
//! Decoding is the hot path of a full-table load and is written to stay allocation-free
//! apart from the output vector.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::error::EncodeError;
use super::types::{Afi, Nlri};

/// Why an NLRI field could not be parsed; the caller maps it to its NOTIFICATION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NlriError(pub String);

/// Decode a run of IPv4 (`afi` = IPv4) or IPv6 prefixes, each preceded by a 4-octet
/// path identifier when `add_path` is set, appending them to `out`.
pub(crate) fn decode_prefixes(
    buf: &[u8],
    afi: Afi,
    add_path: bool,
    out: &mut Vec<Nlri>,
) -> Result<(), NlriError> {
    if afi == Afi::IPV6 {
        decode_v6(buf, add_path, out)
    } else {
        decode_v4(buf, add_path, out)
    }
}

/// Split off a 4-octet ADD-PATH path identifier if `add_path`.
#[inline(always)]
fn path_id(buf: &[u8], add_path: bool) -> Result<(Option<u32>, &[u8]), NlriError> {
    if !add_path {
        return Ok((None, buf));
    }
    match buf.split_first_chunk::<4>() {
        Some((id, rest)) => Ok((Some(u32::from_be_bytes(*id)), rest)),
        None => Err(NlriError("truncated ADD-PATH path identifier".into())),
    }
}

// The two decoders below are the hot path of a full-table load, so they work on the
// slice directly: one bounds check per prefix for the length octet and one for the
// address octets, then a masked 4- or 16-octet load when the buffer is long enough.

fn decode_v4(buf: &[u8], add_path: bool, out: &mut Vec<Nlri>) -> Result<(), NlriError> {
    // Most IPv4 prefixes take 3 or 4 octets (/9 to /24), so this usually reserves
    // enough in one go; the vector grows if they are shorter.
    out.reserve(buf.len() / if add_path { 7 } else { 3 });
    let mut rest = buf;
    while !rest.is_empty() {
        let (path_id, after_id) = path_id(rest, add_path)?;
        let Some((&len, tail)) = after_id.split_first() else {
            return Err(NlriError("path identifier without a prefix".into()));
        };
        if len > 32 {
            return Err(NlriError(format!("IPv4 prefix length {len} > 32")));
        }
        let n = usize::from(len).div_ceil(8);
        if tail.len() < n {
            return Err(NlriError(format!(
                "IPv4 prefix of length {len} overruns its field"
            )));
        }
        // Load four octets when available (the mask drops what follows the prefix).
        let raw = match tail.first_chunk::<4>() {
            Some(w) => u32::from_be_bytes(*w),
            None => {
                let mut a = [0u8; 4];
                for (d, s) in a.iter_mut().zip(tail) {
                    *d = *s;
                }
                u32::from_be_bytes(a)
            }
        };
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        let net =
            Ipv4Net::new(Ipv4Addr::from(raw & mask), len).map_err(|e| NlriError(e.to_string()))?;
        out.push(Nlri {
            path_id,
            prefix: IpNet::V4(net),
        });
        rest = tail.get(n..).unwrap_or(&[]);
    }
    Ok(())
}

fn decode_v6(buf: &[u8], add_path: bool, out: &mut Vec<Nlri>) -> Result<(), NlriError> {
    out.reserve(buf.len() / if add_path { 12 } else { 8 });
    let mut rest = buf;
    while !rest.is_empty() {
        let (path_id, after_id) = path_id(rest, add_path)?;
        let Some((&len, tail)) = after_id.split_first() else {
            return Err(NlriError("path identifier without a prefix".into()));
        };
        if len > 128 {
            return Err(NlriError(format!("IPv6 prefix length {len} > 128")));
        }
        let n = usize::from(len).div_ceil(8);
        if tail.len() < n {
            return Err(NlriError(format!(
                "IPv6 prefix of length {len} overruns its field"
            )));
        }
        let raw = match tail.first_chunk::<16>() {
            Some(w) => u128::from_be_bytes(*w),
            None => {
                let mut a = [0u8; 16];
                for (d, s) in a.iter_mut().zip(tail) {
                    *d = *s;
                }
                u128::from_be_bytes(a)
            }
        };
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        let net =
            Ipv6Net::new(Ipv6Addr::from(raw & mask), len).map_err(|e| NlriError(e.to_string()))?;
        out.push(Nlri {
            path_id,
            prefix: IpNet::V6(net),
        });
        rest = tail.get(n..).unwrap_or(&[]);
    }
    Ok(())
}

/// Octets `nlri` takes on the wire.
pub(crate) fn prefix_wire_len(nlri: &Nlri, add_path: bool) -> usize {
    (if add_path { 4 } else { 0 }) + 1 + usize::from(nlri.prefix.prefix_len()).div_ceil(8)
}

/// Encode one prefix of family `afi` (path identifier 0 if ADD-PATH is on and none set).
pub(crate) fn encode_prefix(
    nlri: &Nlri,
    afi: Afi,
    add_path: bool,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    match (nlri.prefix, afi) {
        (IpNet::V4(p), Afi::IPV4) => {
            if add_path {
                out.put_u32(nlri.path_id.unwrap_or(0));
            }
            let len = p.prefix_len();
            out.put_u8(len);
            // Write all four octets, then drop the ones past the prefix: cheaper than a
            // variable-length copy on this hot path.
            out.put_u32(u32::from(p.trunc().addr()));
            out.truncate(out.len() - (4 - usize::from(len).div_ceil(8)));
        }
        (IpNet::V6(p), Afi::IPV6) => {
            if add_path {
                out.put_u32(nlri.path_id.unwrap_or(0));
            }
            let len = p.prefix_len();
            out.put_u8(len);
            let octets = p.trunc().addr().octets();
            out.put_slice(octets.get(..usize::from(len).div_ceil(8)).unwrap_or(&[]));
        }
        (p, afi) => {
            return Err(EncodeError::Invalid(format!(
                "prefix {p} does not belong to AFI {}",
                afi.0
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Nlri {
        Nlri::new(s.parse().unwrap())
    }

    fn dec(buf: &[u8], afi: Afi, add_path: bool) -> Result<Vec<Nlri>, NlriError> {
        let mut v = Vec::new();
        decode_prefixes(buf, afi, add_path, &mut v).map(|()| v)
    }

    #[test]
    fn ipv4_prefixes() {
        assert_eq!(
            dec(&[0, 8, 10, 24, 192, 0, 2, 32, 1, 2, 3, 4], Afi::IPV4, false).unwrap(),
            vec![
                p("0.0.0.0/0"),
                p("10.0.0.0/8"),
                p("192.0.2.0/24"),
                p("1.2.3.4/32")
            ]
        );
    }

    #[test]
    fn trailing_host_bits_are_cleared() {
        // The case in updates.nlri_mask_trailing_bits: 11.13.0.0/13 is 11.8.0.0/13.
        assert_eq!(
            dec(&[13, 11, 13], Afi::IPV4, false).unwrap(),
            vec![p("11.8.0.0/13")]
        );
        assert_eq!(
            dec(
                &[65, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0x7f],
                Afi::IPV6,
                false
            )
            .unwrap(),
            vec![p("2001:db8::/65")]
        );
    }

    #[test]
    fn add_path_identifiers() {
        let v = dec(&[0, 0, 0, 7, 24, 10, 0, 1], Afi::IPV4, true).unwrap();
        assert_eq!(v[0].path_id, Some(7));
        assert_eq!(v[0].prefix, "10.0.1.0/24".parse::<IpNet>().unwrap());
        assert!(dec(&[0, 0, 0], Afi::IPV4, true).is_err());
        assert!(dec(&[0, 0, 0, 1], Afi::IPV4, true).is_err());
    }

    #[test]
    fn bad_lengths_and_overruns() {
        assert!(dec(&[33, 1, 2, 3, 4, 5], Afi::IPV4, false).is_err());
        assert!(dec(&[129], Afi::IPV6, false).is_err());
        assert!(dec(&[24, 10, 0], Afi::IPV4, false).is_err());
        assert!(dec(&[64, 0x20, 1], Afi::IPV6, false).is_err());
    }

    #[test]
    fn encode_round_trips() {
        for (s, afi) in [
            ("10.0.0.0/8", Afi::IPV4),
            ("0.0.0.0/0", Afi::IPV4),
            ("2001:db8::/33", Afi::IPV6),
        ] {
            for add_path in [false, true] {
                let n = Nlri {
                    path_id: add_path.then_some(9),
                    prefix: s.parse().unwrap(),
                };
                let mut out = BytesMut::new();
                encode_prefix(&n, afi, add_path, &mut out).unwrap();
                assert_eq!(out.len(), prefix_wire_len(&n, add_path));
                assert_eq!(dec(&out, afi, add_path).unwrap(), vec![n]);
            }
        }
        let mut out = BytesMut::new();
        assert!(encode_prefix(&p("10.0.0.0/8"), Afi::IPV6, false, &mut out).is_err());
    }
}
