//! The common header (RFC 7854 4.1) and stream framing.
//!
//! Every BMP message starts with version (3), a 4-octet length covering the whole message
//! and the message type. [`frame_len`] is what a reader calls on its receive buffer; the
//! encoder writes the header with [`begin_message`] and patches the length in
//! [`finish_message`].

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};

/// The only BMP version (RFC 7854 4.1).
pub const VERSION: u8 = 3;

/// Version, length, type.
pub const COMMON_HEADER_LEN: usize = 6;

/// The default cap on a message's length for [`frame_len`]. The largest message a router
/// sends is a Peer Up with two OPENs of up to 65535 octets each (RFC 9072 extended
/// parameters); a few information TLVs aside, nothing comes near 1 MiB.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 1 << 20;

/// BMP message types (RFC 7854 4.1, IANA "BMP Message Types").
pub mod message_type {
    pub const ROUTE_MONITORING: u8 = 0;
    pub const STATISTICS_REPORT: u8 = 1;
    pub const PEER_DOWN: u8 = 2;
    pub const PEER_UP: u8 = 3;
    pub const INITIATION: u8 = 4;
    pub const TERMINATION: u8 = 5;
    pub const ROUTE_MIRRORING: u8 = 6;
}

/// Length of the first complete message in `buf`, or `Ok(None)` until its common header
/// and body are in. Refuses another version and a length below the header or above
/// `max_len`, as soon as the header is in, so a reader never buffers a bogus length.
pub fn frame_len(buf: &[u8], max_len: usize) -> Result<Option<usize>, DecodeError> {
    let Some(&[version, l0, l1, l2, l3, _msg_type]) = buf.get(..COMMON_HEADER_LEN) else {
        // Reject a wrong version from the first octet on.
        return match buf.first() {
            Some(&v) if v != VERSION => Err(DecodeError::Version(v)),
            _ => Ok(None),
        };
    };
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    let max = u32::try_from(max_len).unwrap_or(u32::MAX);
    if len < COMMON_HEADER_LEN as u32 || len > max {
        return Err(DecodeError::Length {
            len,
            min: COMMON_HEADER_LEN as u32,
            max,
        });
    }
    let len = len as usize;
    Ok((buf.len() >= len).then_some(len))
}

/// Start a message of `msg_type` in `out`; returns its offset for [`finish_message`].
pub(crate) fn begin_message(out: &mut BytesMut, msg_type: u8) -> usize {
    let start = out.len();
    out.put_u8(VERSION);
    out.put_u32(0);
    out.put_u8(msg_type);
    start
}

/// Write the length of the message started at `start`.
pub(crate) fn finish_message(out: &mut BytesMut, start: usize) -> Result<(), EncodeError> {
    let len = out.len() - start;
    let field = u32::try_from(len).map_err(|_| EncodeError::TooLong {
        what: "BMP message",
        len,
        max: u32::MAX as usize,
    })?;
    if let Some(slot) = out.get_mut(start + 1..start + 5) {
        slot.copy_from_slice(&field.to_be_bytes());
    }
    Ok(())
}

/// A length that must fit a 2-octet field.
pub(crate) fn u16_len(what: &'static str, len: usize) -> Result<u16, EncodeError> {
    u16::try_from(len).map_err(|_| EncodeError::TooLong {
        what,
        len,
        max: usize::from(u16::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_delimited_by_the_common_header() {
        assert_eq!(frame_len(&[], 100), Ok(None));
        assert_eq!(frame_len(&[3, 0, 0], 100), Ok(None));
        assert_eq!(frame_len(&[3, 0, 0, 0, 8, 4, 0], 100), Ok(None));
        assert_eq!(frame_len(&[3, 0, 0, 0, 8, 4, 0, 0, 9], 100), Ok(Some(8)));
        assert_eq!(frame_len(&[3, 0, 0, 0, 6, 4], 100), Ok(Some(6)));
        assert_eq!(frame_len(&[1], 100), Err(DecodeError::Version(1)));
        assert_eq!(
            frame_len(&[2, 0, 0, 0, 8, 4], 100),
            Err(DecodeError::Version(2))
        );
        assert!(matches!(
            frame_len(&[3, 0, 0, 0, 5, 4], 100),
            Err(DecodeError::Length { len: 5, .. })
        ));
        assert!(matches!(
            frame_len(&[3, 0xff, 0xff, 0xff, 0xff, 0], 100),
            Err(DecodeError::Length { .. })
        ));
    }

    #[test]
    fn the_length_is_patched_on_finish() {
        let mut out = BytesMut::from(&b"xx"[..]);
        let start = begin_message(&mut out, message_type::INITIATION);
        out.put_slice(&[1, 2, 3]);
        finish_message(&mut out, start).unwrap();
        assert_eq!(&out[..], &[b'x', b'x', 3, 0, 0, 0, 9, 4, 1, 2, 3]);
        assert!(u16_len("x", 65536).is_err());
    }
}
