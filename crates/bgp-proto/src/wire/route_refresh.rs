//! ROUTE-REFRESH (RFC 2918 3) with the Beginning/End of Route Refresh subtypes of
//! RFC 7313 3.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::NotificationError;
use super::types::{notification_code as nc, Afi, Family, RefreshSubtype, RouteRefresh, Safi};

/// Decode a ROUTE-REFRESH. Takes the whole framed message because a body that is not
/// exactly 4 octets is answered with 7/1 carrying the complete message (RFC 7313 5).
pub(crate) fn decode_route_refresh(
    frame: &[u8],
    body: &[u8],
) -> Result<RouteRefresh, NotificationError> {
    let &[a0, a1, subtype, safi] = body else {
        return Err(NotificationError::new(
            nc::ROUTE_REFRESH_MESSAGE,
            nc::INVALID_MESSAGE_LENGTH,
            format!("ROUTE-REFRESH body of {} octets, expected 4", body.len()),
        )
        .with_data(Bytes::copy_from_slice(frame)));
    };
    let subtype = match subtype {
        0 => RefreshSubtype::Normal,
        1 => RefreshSubtype::BoRR,
        2 => RefreshSubtype::EoRR,
        other => RefreshSubtype::Reserved(other),
    };
    Ok(RouteRefresh {
        family: Family::new(Afi(u16::from_be_bytes([a0, a1])), Safi(safi)),
        subtype,
    })
}

pub(crate) fn encode_route_refresh(rr: &RouteRefresh, out: &mut BytesMut) {
    out.put_u16(rr.family.afi.0);
    out.put_u8(match rr.subtype {
        RefreshSubtype::Normal => 0,
        RefreshSubtype::BoRR => 1,
        RefreshSubtype::EoRR => 2,
        RefreshSubtype::Reserved(v) => v,
    });
    out.put_u8(rr.family.safi.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtypes_round_trip() {
        for (sub, byte) in [
            (RefreshSubtype::Normal, 0u8),
            (RefreshSubtype::BoRR, 1),
            (RefreshSubtype::EoRR, 2),
            (RefreshSubtype::Reserved(255), 255),
        ] {
            let rr = RouteRefresh {
                family: Family::IPV6_UNICAST,
                subtype: sub,
            };
            let mut out = BytesMut::new();
            encode_route_refresh(&rr, &mut out);
            assert_eq!(&out[..], &[0, 2, byte, 1]);
            assert_eq!(decode_route_refresh(&out, &out), Ok(rr));
        }
    }

    #[test]
    fn bad_length_is_7_1_with_the_message() {
        for body in [&[][..], &[0, 1, 1], &[0, 1, 2, 1, 0]] {
            let frame = [&[0xAAu8][..], body].concat();
            let e = decode_route_refresh(&frame, body).unwrap_err();
            assert_eq!((e.code, e.subcode), (7, 1));
            assert_eq!(&e.data[..], &frame[..]);
        }
    }
}
