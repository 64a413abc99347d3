//! The 19-byte message header (RFC 4271 4.1) and stream framing.
//!
//! [`frame_len`] is what a transport calls on its receive buffer: it says how long the
//! first message is once its header is in, and rejects a bad header with the exact
//! NOTIFICATION of RFC 4271 6.1 before the body is even buffered.

use bytes::{BufMut, BytesMut};

use super::error::{EncodeError, NotificationError};
use super::types::{message_type, notification_code as nc, HEADER_LEN};

/// The all-ones marker that opens every message (RFC 4271 4.1).
pub const MARKER: [u8; 16] = [0xFF; 16];

/// Smallest legal length of each message type, header included (RFC 4271 4.2-4.5,
/// RFC 2918 3). `None` for an unknown type.
fn min_len(msg_type: u8) -> Option<usize> {
    match msg_type {
        message_type::OPEN => Some(29),
        message_type::UPDATE => Some(23),
        message_type::NOTIFICATION => Some(21),
        message_type::KEEPALIVE => Some(19),
        // A ROUTE-REFRESH of the wrong length is answered with 7/1 (RFC 7313 5), which
        // needs the whole message as NOTIFICATION data, so framing only checks the header.
        message_type::ROUTE_REFRESH => Some(HEADER_LEN),
        _ => None,
    }
}

/// Length of the first complete message in `buf`, or `Ok(None)` if more bytes are needed.
///
/// Validates, as RFC 4271 6.1 orders: the marker (1/1 Connection Not Synchronized), the
/// length in `[19, max_len]` and at least the minimum for the type, and exactly 19 for a
/// KEEPALIVE (1/2 Bad Message Length, the length field as data), and a known message
/// type (1/3 Bad Message Type, the type as data). `max_len` is 4096, or 65535 once the
/// extended message capability is negotiated (RFC 8654).
pub fn frame_len(buf: &[u8], max_len: usize) -> Result<Option<usize>, NotificationError> {
    // Check the marker as soon as any of it is here, so garbage is rejected early. A
    // whole marker is compared as one 128-bit word: every message sent and received
    // passes here, some more than once.
    let marker_ok = match buf.first_chunk::<16>() {
        Some(m) => u128::from_ne_bytes(*m) == u128::MAX,
        None => buf.iter().all(|&b| b == 0xFF),
    };
    if !marker_ok {
        return Err(NotificationError::new(
            nc::MESSAGE_HEADER,
            nc::CONNECTION_NOT_SYNCHRONIZED,
            "message header marker is not all ones",
        ));
    }
    let Some(&[l0, l1, msg_type]) = buf.get(16..HEADER_LEN) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    let bad_length = || {
        NotificationError::new(
            nc::MESSAGE_HEADER,
            nc::BAD_MESSAGE_LENGTH,
            format!("bad message length {len} for message type {msg_type}"),
        )
        .with_data(vec![l0, l1])
    };
    if !(HEADER_LEN..=max_len).contains(&len) {
        return Err(bad_length());
    }
    let Some(min) = min_len(msg_type) else {
        return Err(NotificationError::new(
            nc::MESSAGE_HEADER,
            nc::BAD_MESSAGE_TYPE,
            format!("unknown message type {msg_type}"),
        )
        .with_data(vec![msg_type]));
    };
    if len < min || (msg_type == message_type::KEEPALIVE && len != HEADER_LEN) {
        return Err(bad_length());
    }
    Ok((buf.len() >= len).then_some(len))
}

/// Start a message: write the marker, a length placeholder and the type. Returns the
/// offset of the message in `out`, for [`finish_message`].
pub(crate) fn begin_message(out: &mut BytesMut, msg_type: u8) -> usize {
    let start = out.len();
    out.reserve(HEADER_LEN);
    out.put_slice(&MARKER);
    out.put_u16(0);
    out.put_u8(msg_type);
    start
}

/// Patch the length of the message started at `start`, or undo it if it is longer than
/// `max_len`.
pub(crate) fn finish_message(
    out: &mut BytesMut,
    start: usize,
    max_len: usize,
) -> Result<(), EncodeError> {
    let len = out.len() - start;
    if len > max_len {
        out.truncate(start);
        return Err(EncodeError::TooLong { len, max: max_len });
    }
    // len <= max_len <= 65535, and the placeholder was written by begin_message.
    let field = (len as u16).to_be_bytes();
    if let Some(slot) = out.get_mut(start + 16..start + 18) {
        slot.copy_from_slice(&field);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::types::MAX_MESSAGE_LEN;

    fn header(len: u16, t: u8) -> Vec<u8> {
        let mut v = MARKER.to_vec();
        v.extend_from_slice(&len.to_be_bytes());
        v.push(t);
        v
    }

    #[test]
    fn needs_more_bytes() {
        assert_eq!(frame_len(&[], 4096), Ok(None));
        assert_eq!(frame_len(&[0xFF; 18], 4096), Ok(None));
        let mut m = header(23, 2);
        assert_eq!(frame_len(&m, 4096), Ok(None));
        m.extend_from_slice(&[0, 0, 0]);
        assert_eq!(frame_len(&m, 4096), Ok(None));
        m.push(0);
        assert_eq!(frame_len(&m, 4096), Ok(Some(23)));
        m.extend_from_slice(&header(19, 4));
        assert_eq!(frame_len(&m, 4096), Ok(Some(23)), "only the first message");
    }

    #[test]
    fn bad_marker_is_1_1_even_before_the_header_is_complete() {
        let e = frame_len(&[0xFF, 0xFF, 0x00], 4096).unwrap_err();
        assert_eq!((e.code, e.subcode), (1, 1));
        let mut m = header(19, 4);
        m[15] = 0xFE;
        assert_eq!(frame_len(&m, 4096).unwrap_err().subcode, 1);
    }

    #[test]
    fn bad_length_is_1_2_with_the_length_as_data() {
        for (len, t) in [(18u16, 4u8), (4097, 2), (20, 4), (28, 1), (22, 2), (20, 3)] {
            let e = frame_len(&header(len, t), MAX_MESSAGE_LEN).unwrap_err();
            assert_eq!((e.code, e.subcode), (1, 2), "len {len} type {t}");
            assert_eq!(&e.data[..], &len.to_be_bytes());
        }
        // Extended messages allow up to 65535.
        assert_eq!(frame_len(&header(65535, 2), 65535), Ok(None));
    }

    #[test]
    fn bad_type_is_1_3_with_the_type_as_data() {
        for t in [0u8, 6, 255] {
            let e = frame_len(&header(19, t), 4096).unwrap_err();
            assert_eq!((e.code, e.subcode), (1, 3));
            assert_eq!(&e.data[..], &[t]);
        }
    }

    #[test]
    fn finish_rejects_oversize_and_rolls_back() {
        let mut out = BytesMut::new();
        out.put_u8(7);
        let start = begin_message(&mut out, 2);
        out.put_slice(&[0; 100]);
        assert_eq!(
            finish_message(&mut out, start, 50),
            Err(EncodeError::TooLong { len: 119, max: 50 })
        );
        assert_eq!(&out[..], &[7]);
    }
}
