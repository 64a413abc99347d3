//! A scripted BGP peer over raw TCP, for inputs no real daemon sends: sessions brought
//! up by hand, UPDATEs built byte by byte (independently of the codec under test), a
//! peer that stops reading; and the resource use of a daemon under that input.
//!
//! Built on [`crate::raw`] (framing, reading, namespaces). Every builder follows the
//! wire format of its RFC directly: RFC 4271 4.3 (UPDATE, path attributes), RFC 4760
//! (multiprotocol), RFC 6793 (4-octet AS), RFC 7911 (path identifiers), RFC 8654
//! (extended messages), RFC 2918 (ROUTE-REFRESH).

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use ipnet::Ipv4Net;

use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::raw::{message, read_message, send, RawMessage};

/// BGP message types (RFC 4271 4.1, RFC 2918).
pub mod msg_type {
    /// OPEN.
    pub const OPEN: u8 = 1;
    /// UPDATE.
    pub const UPDATE: u8 = 2;
    /// NOTIFICATION.
    pub const NOTIFICATION: u8 = 3;
    /// KEEPALIVE.
    pub const KEEPALIVE: u8 = 4;
    /// ROUTE-REFRESH.
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Attribute flags (RFC 4271 4.3).
pub mod flags {
    /// Optional.
    pub const OPTIONAL: u8 = 0x80;
    /// Transitive.
    pub const TRANSITIVE: u8 = 0x40;
    /// Extended Length.
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// What the raw peer announces in its OPEN (besides IPv4 unicast and 4-octet AS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// RFC 8654 extended messages (UPDATEs up to 65,535 octets).
    pub extended_message: bool,
    /// RFC 7911 ADD-PATH for IPv4 unicast: we send path identifiers.
    pub add_path_send: bool,
    /// RFC 2918 route refresh.
    pub route_refresh: bool,
}

/// An OPEN body (RFC 4271 4.2) for `asn` (4-octet AS, RFC 6793) with `caps`.
pub fn open_body(asn: u32, hold_time: u16, router_id: Ipv4Addr, caps: Capabilities) -> Vec<u8> {
    let mut c: Vec<u8> = vec![1, 4, 0, 1, 0, 1]; // multiprotocol IPv4 unicast
    c.extend_from_slice(&[65, 4]);
    c.extend_from_slice(&asn.to_be_bytes());
    if caps.extended_message {
        c.extend_from_slice(&[6, 0]);
    }
    if caps.route_refresh {
        c.extend_from_slice(&[2, 0]);
    }
    if caps.add_path_send {
        c.extend_from_slice(&[69, 4, 0, 1, 1, 2]); // AFI 1, SAFI 1, send
    }
    let my_as = u16::try_from(asn).unwrap_or(23456); // AS_TRANS
    let mut b = vec![4];
    b.extend_from_slice(&my_as.to_be_bytes());
    b.extend_from_slice(&hold_time.to_be_bytes());
    b.extend_from_slice(&router_id.octets());
    b.push(u8::try_from(c.len() + 2).unwrap_or(u8::MAX));
    b.push(2); // capabilities
    b.push(u8::try_from(c.len()).unwrap_or(u8::MAX));
    b.extend_from_slice(&c);
    b
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
    message(msg_type::UPDATE, &b)
}

/// UPDATEs announcing `prefixes` (IPv4, with their path ids) under `attributes`, as
/// many per message as fit in `max_len` octets.
pub fn announcements(
    attributes: &[u8],
    prefixes: impl IntoIterator<Item = (Ipv4Net, Option<u32>)>,
    max_len: usize,
) -> Vec<Vec<u8>> {
    pack(prefixes, max_len - 23 - attributes.len(), |n| {
        update(&[], attributes, n)
    })
}

/// UPDATEs withdrawing `prefixes` (IPv4, with their path ids), as many per message as
/// fit in `max_len` octets.
pub fn withdrawals(
    prefixes: impl IntoIterator<Item = (Ipv4Net, Option<u32>)>,
    max_len: usize,
) -> Vec<Vec<u8>> {
    pack(prefixes, max_len - 23, |n| update(n, &[], &[]))
}

fn pack(
    prefixes: impl IntoIterator<Item = (Ipv4Net, Option<u32>)>,
    room: usize,
    frame: impl Fn(&[u8]) -> Vec<u8>,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut field = Vec::new();
    for (p, id) in prefixes {
        let n = nlri(p, id);
        if field.len() + n.len() > room {
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
    message(msg_type::ROUTE_REFRESH, &[0, 1, 0, 1])
}

/// The `n`-th /24 from 10.1.0.0/24 on, clear of the test segment's 10.0.0.0/24 (past
/// 10.255.255.0/24 at `n` = 65,279 it goes on into 11.0.0.0/8: announced inside the
/// test's namespaces only, never installed in a kernel).
pub fn slash24(n: u32) -> Ipv4Net {
    let a = 0x0A01_0000u32.wrapping_add(n << 8);
    Ipv4Net::new(Ipv4Addr::from(a), 24).unwrap_or_default()
}

/// A session brought up by hand from inside a namespace.
#[derive(Debug)]
pub struct RawPeer {
    stream: TcpStream,
    /// The OPEN the daemon sent.
    pub peer_open: RawMessage,
}

impl RawPeer {
    /// Connects from `ns` to `to`, exchanges OPENs and KEEPALIVEs and returns once the
    /// session is Established on both sides (RFC 4271 8.2.2). `hold_time` 0 (no
    /// keepalives, RFC 4271 4.2) lets the script stop reading for as long as it likes.
    pub fn establish(ns: &Netns, to: SocketAddr, open: &[u8]) -> Result<RawPeer> {
        let mut stream = ns.tcp_connect(to)?;
        send(&mut stream, &message(msg_type::OPEN, open))?;
        let mut peer_open = None;
        for _ in 0..8 {
            let m = read_message(&mut stream)?
                .ok_or_else(|| Error::Check(format!("{to} closed during the OPEN exchange")))?;
            match m.msg_type {
                msg_type::OPEN => {
                    peer_open = Some(m);
                    send(&mut stream, &message(msg_type::KEEPALIVE, &[]))?;
                }
                msg_type::KEEPALIVE => {
                    if let Some(peer_open) = peer_open.take() {
                        return Ok(RawPeer { stream, peer_open });
                    }
                }
                msg_type::NOTIFICATION => {
                    return Err(Error::Check(format!(
                        "{to} refused the session: NOTIFICATION {:?}",
                        m.notification()
                    )))
                }
                _ => {}
            }
        }
        Err(Error::Check(format!("{to}: no session after 8 messages")))
    }

    /// Sends raw bytes (one or more framed messages).
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        send(&mut self.stream, bytes)
    }

    /// Sends each message in turn.
    pub fn send_all(&mut self, messages: &[Vec<u8>]) -> Result<()> {
        for m in messages {
            self.send(m)?;
        }
        Ok(())
    }

    /// Reads messages until a NOTIFICATION (returned) or the end of the stream (`None`),
    /// skipping UPDATEs and KEEPALIVEs (at most `limit` of them).
    pub fn read_notification(&mut self, limit: usize) -> Result<Option<RawMessage>> {
        for _ in 0..limit {
            match read_message(&mut self.stream)? {
                None => return Ok(None),
                Some(m) if m.msg_type == msg_type::NOTIFICATION => return Ok(Some(m)),
                Some(_) => {}
            }
        }
        Err(Error::Check(format!(
            "no NOTIFICATION within {limit} messages"
        )))
    }

    /// A handle on the same connection (to write from another thread while this one
    /// does something else), with `timeout` on writes.
    pub fn writer(&self, timeout: Duration) -> Result<TcpStream> {
        let s = self
            .stream
            .try_clone()
            .map_err(|e| Error::io("cloning", "tcp stream", e))?;
        let _ = s.set_write_timeout(Some(timeout));
        Ok(s)
    }
}

/// Resource use of a process, from `/proc` (Linux).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Resident set size, bytes.
    pub rss: u64,
    /// User plus system CPU time, seconds.
    pub cpu_secs: f64,
}

/// The resource use of process `pid`; checks it is still `comm` (so a recycled PID is
/// not measured instead).
pub fn usage(pid: u32, comm: &str) -> Result<Usage> {
    let dir = format!("/proc/{pid}");
    let read = |f: &str| {
        let p = format!("{dir}/{f}");
        std::fs::read_to_string(&p).map_err(|e| Error::io("reading", p, e))
    };
    let name = read("comm")?;
    if name.trim() != comm {
        return Err(Error::Check(format!(
            "pid {pid} is {:?}, not {comm}",
            name.trim()
        )));
    }
    let status = read("status")?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::parse(format!("{dir}/status"), "no VmRSS"))?;
    let stat = read("stat")?;
    // Fields after the command name (which may contain spaces) are space-separated;
    // utime and stime are fields 14 and 15 of the whole line.
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| Error::parse(format!("{dir}/stat"), stat.clone()))
    };
    let hz = 100.0; // USER_HZ on Linux
    Ok(Usage {
        rss: rss_kib * 1024,
        cpu_secs: (ticks(11)? + ticks(12)?) as f64 / hz,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(u[18], msg_type::UPDATE);
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

    #[test]
    fn open_lists_the_capabilities() {
        let all = Capabilities {
            extended_message: true,
            add_path_send: true,
            route_refresh: true,
        };
        let o = open_body(4_200_000_000, 0, Ipv4Addr::new(10, 0, 0, 9), all);
        assert_eq!(&o[1..3], &23456u16.to_be_bytes());
        assert_eq!(usize::from(o[9]), o.len() - 10);
        let caps = &o[12..];
        assert!(caps.windows(2).any(|w| w == [6, 0]));
        assert!(caps.windows(6).any(|w| w == [69, 4, 0, 1, 1, 2]));
        let none = open_body(
            65001,
            90,
            Ipv4Addr::new(10, 0, 0, 9),
            Capabilities::default(),
        );
        assert_eq!(none.len(), 10 + 2 + 6 + 6);
    }

    #[test]
    fn reads_its_own_usage() {
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let u = usage(std::process::id(), comm.trim()).unwrap();
        assert!(u.rss > 0);
        assert!(usage(std::process::id(), "not-this").is_err());
    }
}
