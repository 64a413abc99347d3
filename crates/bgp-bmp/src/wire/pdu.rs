//! BGP PDUs carried inside BMP messages: Route Monitoring's UPDATE, Peer Up's two OPENs,
//! Peer Down's NOTIFICATION.
//!
//! They stay bytes (shared with the message buffer); the BMP codec only checks that each
//! is one well-framed BGP message of the expected type, with the BGP codec's own framing
//! check (`bgp_proto::wire::frame_len`, RFC 4271 4.1, 6.1), up to the extended message
//! size (RFC 8654) since a router may monitor such sessions. Their content is decoded on
//! demand with the BGP codec.

use bgp_proto::wire::frame_len;
use bgp_proto::{message_type as bgp_type, MAX_EXTENDED_MESSAGE_LEN};
use bytes::Bytes;

use super::error::{DecodeError, EncodeError};
use super::reader::Reader;

fn type_name(t: u8) -> &'static str {
    match t {
        bgp_type::OPEN => "OPEN",
        bgp_type::UPDATE => "UPDATE",
        bgp_type::NOTIFICATION => "NOTIFICATION",
        _ => "BGP message",
    }
}

/// Length of the BGP message of `msg_type` at the start of `buf`, or why there is none.
fn framed(buf: &[u8], msg_type: u8) -> Result<usize, String> {
    let name = type_name(msg_type);
    match frame_len(buf, MAX_EXTENDED_MESSAGE_LEN) {
        Ok(Some(len)) if buf.get(18) == Some(&msg_type) => Ok(len),
        Ok(Some(_)) => Err(format!(
            "expected a BGP {name}, found message type {}",
            buf.get(18).copied().unwrap_or(0)
        )),
        Ok(None) => Err(format!("truncated BGP {name}")),
        Err(e) => Err(format!("bad BGP {name}: {}", e.reason)),
    }
}

/// Take one BGP message of `msg_type` from `r`.
pub(crate) fn read_pdu(r: &mut Reader, msg_type: u8) -> Result<Bytes, DecodeError> {
    let len = framed(r.peek(), msg_type).map_err(DecodeError::Malformed)?;
    r.take(len, "BGP message")
}

/// Check that `pdu` is exactly one BGP message of `msg_type`, before encoding it.
pub(crate) fn check_pdu(pdu: &[u8], msg_type: u8) -> Result<(), EncodeError> {
    match framed(pdu, msg_type) {
        Ok(len) if len == pdu.len() => Ok(()),
        Ok(len) => Err(EncodeError::Invalid(format!(
            "{} octets after a BGP {} of {len}",
            pdu.len() - len,
            type_name(msg_type)
        ))),
        Err(reason) => Err(EncodeError::Invalid(reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keepalive() -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&[0, 19, 4]);
        m
    }

    fn notification() -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&[0, 21, 3, 6, 2]);
        m
    }

    #[test]
    fn one_pdu_of_the_expected_type() {
        let mut two = notification();
        two.extend(keepalive());
        let mut r = Reader::new(Bytes::from(two));
        assert_eq!(read_pdu(&mut r, bgp_type::NOTIFICATION).unwrap().len(), 21);
        let e = read_pdu(&mut r, bgp_type::NOTIFICATION).unwrap_err();
        assert!(e.to_string().contains("found message type 4"), "{e}");
        assert_eq!(r.remaining(), 19, "a refused PDU is not consumed");
        let mut short = Reader::new(Bytes::from(notification()[..20].to_vec()));
        assert!(read_pdu(&mut short, bgp_type::NOTIFICATION).is_err());
        let mut bad = notification();
        bad[0] = 0;
        let e = read_pdu(&mut Reader::new(Bytes::from(bad)), bgp_type::NOTIFICATION);
        assert!(e.unwrap_err().to_string().contains("marker"));

        assert!(check_pdu(&notification(), bgp_type::NOTIFICATION).is_ok());
        let mut long = notification();
        long.push(0);
        assert!(check_pdu(&long, bgp_type::NOTIFICATION).is_err());
        assert!(check_pdu(&keepalive(), bgp_type::UPDATE).is_err());
    }
}
