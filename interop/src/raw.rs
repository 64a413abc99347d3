//! Raw BGP over TCP from inside a namespace, for inputs no real daemon will
//! send (framing errors, bad OPENs; REFERENCE.md section 2: ExaBGP cannot).
//!
//! [`Netns::enter`] runs a closure on a fresh thread moved into the
//! namespace with `setns(2)`; sockets created there stay in that namespace
//! and can be used from any thread afterwards.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd as _;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::netns::Netns;

/// BGP message header length (RFC 4271 section 4.1).
pub const HEADER_LEN: usize = 19;
/// Largest BGP message without the extended message capability (RFC 4271 4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Largest BGP message with RFC 8654 extended messages.
pub const MAX_EXTENDED_LEN: usize = 65535;

impl Netns {
    /// Runs `f` on a new thread inside this namespace and returns its result. `f` may
    /// borrow from the caller (a scoped thread): a test body can drive a client inside
    /// the namespace while using the harness objects it owns.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let path = format!("/run/netns/{}", self.name());
        let file = std::fs::File::open(&path).map_err(|e| Error::io("opening", &path, e))?;
        let joined = std::thread::scope(|scope| {
            scope
                .spawn(move || -> std::result::Result<T, std::io::Error> {
                    // SAFETY: setns on a valid namespace fd; it only changes this
                    // (freshly spawned, soon finished) thread's network namespace.
                    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    if rc != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(f())
                })
                .join()
        });
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::io("setns into", path, e)),
            Err(_) => Err(Error::Invalid(format!(
                "thread in {} panicked",
                self.name()
            ))),
        }
    }

    /// Opens a TCP connection from inside this namespace (10 s connect
    /// timeout, 30 s read/write timeouts).
    pub fn tcp_connect(&self, to: SocketAddr) -> Result<TcpStream> {
        let stream = self
            .enter(move || TcpStream::connect_timeout(&to, Duration::from_secs(10)))?
            .map_err(|source| Error::Spawn {
                cmd: format!("connect to {to} from {}", self.name()),
                source,
            })?;
        let t = Some(Duration::from_secs(30));
        let _ = stream.set_read_timeout(t);
        let _ = stream.set_write_timeout(t);
        Ok(stream)
    }
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

/// A BGP message read from a raw connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Message type (1 OPEN, 2 UPDATE, 3 NOTIFICATION, 4 KEEPALIVE, 5 ROUTE-REFRESH).
    pub msg_type: u8,
    /// The bytes after the header.
    pub body: Vec<u8>,
}

impl RawMessage {
    /// For a NOTIFICATION: (error code, subcode).
    pub fn notification(&self) -> Option<(u8, u8)> {
        match (self.msg_type, self.body.first(), self.body.get(1)) {
            (3, Some(code), Some(sub)) => Some((*code, *sub)),
            _ => None,
        }
    }
}

/// Sends `bytes` on `stream`.
pub fn send(stream: &mut TcpStream, bytes: &[u8]) -> Result<()> {
    stream
        .write_all(bytes)
        .map_err(|e| Error::io("sending on", "tcp stream", e))
}

/// Reads one BGP message, validating the header; `Ok(None)` on a clean close
/// before any byte. Never reads more than the length field allows and rejects
/// lengths outside 19..=65535.
pub fn read_message(stream: &mut TcpStream) -> Result<Option<RawMessage>> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = stream
            .read(&mut header[got..])
            .map_err(|e| Error::io("reading from", "tcp stream", e))?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(Error::parse(
                    "BGP header",
                    format!("closed after {got} bytes"),
                ))
            };
        }
        got += n;
    }
    if header[..16].iter().any(|b| *b != 0xff) {
        return Err(Error::parse("BGP header", "marker is not all ones"));
    }
    let len = usize::from(u16::from_be_bytes([header[16], header[17]]));
    if !(HEADER_LEN..=MAX_EXTENDED_LEN).contains(&len) {
        return Err(Error::parse("BGP header", format!("length {len}")));
    }
    let mut body = vec![0u8; len - HEADER_LEN];
    stream
        .read_exact(&mut body)
        .map_err(|e| Error::io("reading from", "tcp stream", e))?;
    Ok(Some(RawMessage {
        msg_type: header[18],
        body,
    }))
}

/// Reads messages until a NOTIFICATION arrives (returning its code and
/// subcode) or the peer closes (`None`). Gives up after 16 messages.
pub fn read_until_notification(stream: &mut TcpStream) -> Result<Option<(u8, u8)>> {
    for _ in 0..16 {
        match read_message(stream)? {
            None => return Ok(None),
            Some(m) => {
                if let Some(n) = m.notification() {
                    return Ok(Some(n));
                }
            }
        }
    }
    Err(Error::Check("no NOTIFICATION within 16 messages".into()))
}

/// An OPEN body (RFC 4271 section 4.2) with 4-octet AS (RFC 6793) and
/// IPv4 unicast multiprotocol (RFC 4760) capabilities.
pub fn open_body(asn: u32, hold_time: u16, router_id: std::net::Ipv4Addr) -> Vec<u8> {
    let my_as = u16::try_from(asn).unwrap_or(23456); // AS_TRANS when 4-octet
    let caps: Vec<u8> = [
        vec![1, 4, 0, 1, 0, 1],                             // MP: AFI 1, SAFI 1
        [vec![65, 4], asn.to_be_bytes().to_vec()].concat(), // 4-octet AS
    ]
    .concat();
    let mut b = vec![4];
    b.extend_from_slice(&my_as.to_be_bytes());
    b.extend_from_slice(&hold_time.to_be_bytes());
    b.extend_from_slice(&router_id.octets());
    b.push(u8::try_from(caps.len() + 2).unwrap_or(u8::MAX));
    b.push(2); // optional parameter type 2: capabilities
    b.push(u8::try_from(caps.len()).unwrap_or(u8::MAX));
    b.extend_from_slice(&caps);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_messages() {
        let k = message(4, &[]);
        assert_eq!(k.len(), 19);
        assert_eq!(&k[16..], &[0, 19, 4]);
        let o = open_body(65001, 90, "10.0.0.9".parse().unwrap());
        assert_eq!(o[0], 4);
        assert_eq!(&o[1..3], &65001u16.to_be_bytes());
        assert_eq!(usize::from(o[9]), o.len() - 10);
        let big = open_body(4_200_000_000, 90, "10.0.0.9".parse().unwrap());
        assert_eq!(&big[1..3], &23456u16.to_be_bytes());
    }

    #[test]
    fn notification_fields() {
        let m = RawMessage {
            msg_type: 3,
            body: vec![1, 1],
        };
        assert_eq!(m.notification(), Some((1, 1)));
        let k = RawMessage {
            msg_type: 4,
            body: vec![],
        };
        assert_eq!(k.notification(), None);
    }
}
