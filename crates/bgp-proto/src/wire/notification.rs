//! NOTIFICATION (RFC 4271 4.5) with every registered code and subcode named, and the
//! shutdown communication of RFC 8203 / RFC 9003.

use bytes::{BufMut, Bytes, BytesMut};

use super::types::{notification_code as nc, Notification};

/// RFC 9003 2: the shutdown communication is at most 255 octets of UTF-8.
pub const MAX_SHUTDOWN_MESSAGE_LEN: usize = 255;

/// Name of an error code (IANA "BGP Error (Notification) Codes").
pub fn code_name(code: u8) -> Option<&'static str> {
    Some(match code {
        nc::MESSAGE_HEADER => "Message Header Error",
        nc::OPEN_MESSAGE => "OPEN Message Error",
        nc::UPDATE_MESSAGE => "UPDATE Message Error",
        nc::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
        nc::FSM => "Finite State Machine Error",
        nc::CEASE => "Cease",
        nc::ROUTE_REFRESH_MESSAGE => "ROUTE-REFRESH Message Error",
        nc::SEND_HOLD_TIMER_EXPIRED => "Send Hold Timer Expired",
        _ => return None,
    })
}

/// Name of a subcode within `code` (IANA registries; RFC 4271, 4486, 6608, 7313, 8203,
/// 8538, 9234, 9384).
pub fn subcode_name(code: u8, subcode: u8) -> Option<&'static str> {
    Some(match (code, subcode) {
        (nc::MESSAGE_HEADER, 1) => "Connection Not Synchronized",
        (nc::MESSAGE_HEADER, 2) => "Bad Message Length",
        (nc::MESSAGE_HEADER, 3) => "Bad Message Type",
        (nc::OPEN_MESSAGE, 0) => "Unspecific",
        (nc::OPEN_MESSAGE, 1) => "Unsupported Version Number",
        (nc::OPEN_MESSAGE, 2) => "Bad Peer AS",
        (nc::OPEN_MESSAGE, 3) => "Bad BGP Identifier",
        (nc::OPEN_MESSAGE, 4) => "Unsupported Optional Parameter",
        (nc::OPEN_MESSAGE, 5) => "Authentication Failure (deprecated)",
        (nc::OPEN_MESSAGE, 6) => "Unacceptable Hold Time",
        (nc::OPEN_MESSAGE, 7) => "Unsupported Capability",
        (nc::OPEN_MESSAGE, 8..=10) => "Deprecated",
        (nc::OPEN_MESSAGE, 11) => "Role Mismatch",
        (nc::UPDATE_MESSAGE, 0) => "Unspecific",
        (nc::UPDATE_MESSAGE, 1) => "Malformed Attribute List",
        (nc::UPDATE_MESSAGE, 2) => "Unrecognized Well-known Attribute",
        (nc::UPDATE_MESSAGE, 3) => "Missing Well-known Attribute",
        (nc::UPDATE_MESSAGE, 4) => "Attribute Flags Error",
        (nc::UPDATE_MESSAGE, 5) => "Attribute Length Error",
        (nc::UPDATE_MESSAGE, 6) => "Invalid ORIGIN Attribute",
        (nc::UPDATE_MESSAGE, 7) => "AS Routing Loop (deprecated)",
        (nc::UPDATE_MESSAGE, 8) => "Invalid NEXT_HOP Attribute",
        (nc::UPDATE_MESSAGE, 9) => "Optional Attribute Error",
        (nc::UPDATE_MESSAGE, 10) => "Invalid Network Field",
        (nc::UPDATE_MESSAGE, 11) => "Malformed AS_PATH",
        (nc::FSM, 0) => "Unspecified Error",
        (nc::FSM, 1) => "Receive Unexpected Message in OpenSent State",
        (nc::FSM, 2) => "Receive Unexpected Message in OpenConfirm State",
        (nc::FSM, 3) => "Receive Unexpected Message in Established State",
        (nc::CEASE, 1) => "Maximum Number of Prefixes Reached",
        (nc::CEASE, 2) => "Administrative Shutdown",
        (nc::CEASE, 3) => "Peer De-configured",
        (nc::CEASE, 4) => "Administrative Reset",
        (nc::CEASE, 5) => "Connection Rejected",
        (nc::CEASE, 6) => "Other Configuration Change",
        (nc::CEASE, 7) => "Connection Collision Resolution",
        (nc::CEASE, 8) => "Out of Resources",
        (nc::CEASE, 9) => "Hard Reset",
        (nc::CEASE, 10) => "BFD Down",
        (nc::ROUTE_REFRESH_MESSAGE, 1) => "Invalid Message Length",
        _ => return None,
    })
}

impl Notification {
    /// The RFC 8203/9003 shutdown communication carried by Cease / Administrative
    /// Shutdown (2) or Administrative Reset (4): a length octet then that many octets of
    /// UTF-8. `None` if absent, or if the length or UTF-8 is invalid (RFC 9003 2 says to
    /// log such a message rather than act on it).
    pub fn shutdown_message(&self) -> Option<String> {
        shutdown_text(self.code, self.subcode, &self.data).map(str::to_owned)
    }

    /// Cease / Administrative Shutdown with `msg` as the shutdown communication, cut at a
    /// character boundary to the 255-octet limit of RFC 9003.
    pub fn admin_shutdown(msg: &str) -> Notification {
        Notification {
            code: nc::CEASE,
            subcode: nc::CEASE_ADMIN_SHUTDOWN,
            data: shutdown_data(msg),
        }
    }

    /// Cease / Administrative Reset with `msg` as the shutdown communication.
    pub fn admin_reset(msg: &str) -> Notification {
        Notification {
            code: nc::CEASE,
            subcode: nc::CEASE_ADMIN_RESET,
            data: shutdown_data(msg),
        }
    }
}

fn shutdown_data(msg: &str) -> Bytes {
    let mut end = msg.len().min(MAX_SHUTDOWN_MESSAGE_LEN);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    let text = msg.get(..end).unwrap_or("");
    if text.is_empty() {
        return Bytes::new();
    }
    let mut data = BytesMut::with_capacity(1 + text.len());
    data.put_u8(text.len() as u8); // <= 255 by construction
    data.put_slice(text.as_bytes());
    data.freeze()
}

/// The shutdown communication in `data` when `code/subcode` carries one (see
/// [`Notification::shutdown_message`]), borrowed from the data.
fn shutdown_text(code: u8, subcode: u8, data: &[u8]) -> Option<&str> {
    if code != nc::CEASE || !matches!(subcode, nc::CEASE_ADMIN_SHUTDOWN | nc::CEASE_ADMIN_RESET) {
        return None;
    }
    let (&len, text) = data.split_first()?;
    let text = text.get(..usize::from(len))?;
    if len == 0 {
        return None;
    }
    std::str::from_utf8(text).ok()
}

impl std::fmt::Display for Notification {
    /// `Cease/Administrative Shutdown: "text"`, `UPDATE Message Error/Malformed AS_PATH
    /// (data 02ff)`, or numbers for codes no registry names. A Hard Reset shows the
    /// NOTIFICATION it carries (RFC 8538 3) — one level only: the data comes from the
    /// peer, and a Hard Reset nested in a Hard Reset has no meaning, so the inner one's
    /// data is shown as bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = match (self.code, self.subcode, self.data.as_ref()) {
            (nc::CEASE, nc::CEASE_HARD_RESET, [code, subcode, data @ ..]) => {
                Some((*code, *subcode, data))
            }
            _ => None,
        };
        match inner {
            Some((code, subcode, data)) => {
                fmt_parts(f, self.code, self.subcode, &[])?;
                f.write_str(" (")?;
                fmt_parts(f, code, subcode, data)?;
                f.write_str(")")
            }
            None => fmt_parts(f, self.code, self.subcode, &self.data),
        }
    }
}

/// One NOTIFICATION's code, subcode and data as text, without looking inside the data
/// for another NOTIFICATION; at most 64 octets of data are shown.
fn fmt_parts(
    f: &mut std::fmt::Formatter<'_>,
    code: u8,
    subcode: u8,
    data: &[u8],
) -> std::fmt::Result {
    match code_name(code) {
        Some(name) => f.write_str(name)?,
        None => write!(f, "error code {code}")?,
    }
    match subcode_name(code, subcode) {
        Some(name) => write!(f, "/{name}")?,
        // Codes without subcodes use 0 (RFC 4271 4.5).
        None if subcode == 0 => {}
        None => write!(f, "/subcode {subcode}")?,
    }
    if let Some(text) = shutdown_text(code, subcode, data) {
        write!(f, ": {text:?}")?;
    } else if !data.is_empty() {
        f.write_str(" (data ")?;
        for b in data.iter().take(64) {
            write!(f, "{b:02x}")?;
        }
        if data.len() > 64 {
            f.write_str("...")?;
        }
        f.write_str(")")?;
    }
    Ok(())
}

/// Decode a NOTIFICATION body (after the header); framing guarantees two octets.
pub(crate) fn decode_notification(body: &[u8]) -> Option<Notification> {
    let (&code, rest) = body.split_first()?;
    let (&subcode, data) = rest.split_first()?;
    Some(Notification {
        code,
        subcode,
        data: Bytes::copy_from_slice(data),
    })
}

pub(crate) fn encode_notification(n: &Notification, out: &mut BytesMut) {
    out.put_u8(n.code);
    out.put_u8(n.subcode);
    out.put_slice(&n.data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(code: u8, subcode: u8, data: &'static [u8]) -> Notification {
        Notification {
            code,
            subcode,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn every_registered_code_and_subcode_is_named() {
        for code in 1..=8u8 {
            assert!(code_name(code).is_some());
        }
        let subcodes: &[(u8, &[u8])] = &[
            (1, &[1, 2, 3]),
            (2, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
            (3, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
            (5, &[0, 1, 2, 3]),
            (6, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            (7, &[1]),
        ];
        for (code, subs) in subcodes {
            for &s in *subs {
                assert!(subcode_name(*code, s).is_some(), "{code}/{s}");
            }
        }
    }

    #[test]
    fn display() {
        assert_eq!(n(4, 0, b"").to_string(), "Hold Timer Expired");
        assert_eq!(
            n(3, 11, &[2, 0xff]).to_string(),
            "UPDATE Message Error/Malformed AS_PATH (data 02ff)"
        );
        assert_eq!(n(6, 42, b"").to_string(), "Cease/subcode 42");
        assert_eq!(n(99, 1, b"").to_string(), "error code 99/subcode 1");
        assert_eq!(
            n(6, 9, b"\x06\x02\x03bye").to_string(),
            "Cease/Hard Reset (Cease/Administrative Shutdown: \"bye\")"
        );
        assert_eq!(
            Notification::admin_shutdown("maintenance").to_string(),
            "Cease/Administrative Shutdown: \"maintenance\""
        );
        assert_eq!(
            n(6, 2, b"").to_string(),
            "Cease/Administrative Shutdown",
            "no communication"
        );
    }

    #[test]
    fn hard_reset_shows_one_inner_level() {
        // 06 09 repeated to the largest extended message: formerly one recursion (and a
        // copy of the rest) per pair, which overflowed the stack.
        let data: Vec<u8> = [6u8, 9].repeat(32_000);
        let hard = Notification {
            code: 6,
            subcode: 9,
            data: Bytes::from(data),
        };
        let text = hard.to_string();
        assert!(
            text.starts_with("Cease/Hard Reset (Cease/Hard Reset (data 0609"),
            "{text}"
        );
        assert!(text.ends_with("...))"), "{text}");
        assert!(text.len() < 300, "bounded: {} bytes", text.len());
        // An inner NOTIFICATION without data, and a Hard Reset too short to carry one.
        assert_eq!(
            n(6, 9, b"\x04\x00").to_string(),
            "Cease/Hard Reset (Hold Timer Expired)"
        );
        assert_eq!(n(6, 9, b"\x04").to_string(), "Cease/Hard Reset (data 04)");
    }

    #[test]
    fn shutdown_communication() {
        let sd = Notification::admin_shutdown("bye");
        assert_eq!(&sd.data[..], b"\x03bye");
        assert_eq!(sd.shutdown_message().as_deref(), Some("bye"));
        let reset = Notification::admin_reset("again");
        assert_eq!((reset.code, reset.subcode), (6, 4));
        assert_eq!(reset.shutdown_message().as_deref(), Some("again"));
        // Not a shutdown subcode; length beyond the data; invalid UTF-8; empty.
        assert_eq!(n(6, 3, b"\x03bye").shutdown_message(), None);
        assert_eq!(n(6, 2, b"\x09bye").shutdown_message(), None);
        assert_eq!(n(6, 2, b"\x02\xff\xfe").shutdown_message(), None);
        assert_eq!(n(6, 2, b"\x00").shutdown_message(), None);
        // Trailing bytes after the communication are ignored.
        assert_eq!(
            n(6, 2, b"\x02hiXX").shutdown_message().as_deref(),
            Some("hi")
        );
        // RFC 9003: up to 255 octets, cut at a character boundary.
        let long = "é".repeat(200);
        let sd = Notification::admin_shutdown(&long);
        assert_eq!(sd.data[0], 254);
        assert_eq!(sd.shutdown_message().unwrap().chars().count(), 127);
        assert!(Notification::admin_shutdown("").data.is_empty());
    }

    #[test]
    fn decode_and_encode() {
        let body = [6u8, 2, 3, b'b', b'y', b'e'];
        let d = decode_notification(&body).unwrap();
        assert_eq!(d, n(6, 2, b"\x03bye"));
        let mut out = BytesMut::new();
        encode_notification(&d, &mut out);
        assert_eq!(&out[..], &body);
        assert_eq!(decode_notification(&[6]), None);
    }
}
