//! The per-peer header (RFC 7854 4.2) that opens every message about one monitored peer.
//!
//! Flags: V (0x80) the peer address is IPv6, L (0x40) post-policy Adj-RIB-In, A (0x20) the
//! carried UPDATE uses 2-octet AS numbers (legacy AS_PATH format), O (0x10) Adj-RIB-Out
//! (RFC 8671). Loc-RIB instance peers (type 3, RFC 9069) have a zero address and use
//! 0x80 as their F (filtered) flag; the codec reads the address by that bit whatever the
//! peer type, so a value always encodes back to what it was decoded from. An IPv4
//! address is written in the last four octets of the 16-octet field.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::reader::Reader;

/// Octets of the per-peer header.
pub const PER_PEER_HEADER_LEN: usize = 42;

/// Peer types (RFC 7854 4.2, RFC 9069 4.1).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerType(pub u8);

impl PeerType {
    pub const GLOBAL_INSTANCE: PeerType = PeerType(0);
    pub const RD_INSTANCE: PeerType = PeerType(1);
    pub const LOCAL_INSTANCE: PeerType = PeerType(2);
    pub const LOC_RIB_INSTANCE: PeerType = PeerType(3);
}

/// The peer flags octet.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PeerFlags(pub u8);

impl PeerFlags {
    /// V: the peer address is IPv6.
    pub const IPV6: u8 = 0x80;
    /// L: the routes are post-policy (RFC 7854 4.2).
    pub const POST_POLICY: u8 = 0x40;
    /// A: the UPDATE carries 2-octet AS numbers (the legacy AS_PATH format).
    pub const LEGACY_AS_PATH: u8 = 0x20;
    /// O: the routes are the Adj-RIB-Out (RFC 8671 4).
    pub const ADJ_RIB_OUT: u8 = 0x10;

    pub fn is_ipv6(self) -> bool {
        self.0 & Self::IPV6 != 0
    }
    pub fn post_policy(self) -> bool {
        self.0 & Self::POST_POLICY != 0
    }
    pub fn legacy_as_path(self) -> bool {
        self.0 & Self::LEGACY_AS_PATH != 0
    }
    pub fn adj_rib_out(self) -> bool {
        self.0 & Self::ADJ_RIB_OUT != 0
    }

    /// These flags with `bit` set or cleared.
    #[must_use]
    pub fn with(self, bit: u8, on: bool) -> PeerFlags {
        PeerFlags(if on { self.0 | bit } else { self.0 & !bit })
    }
}

/// The per-peer header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerHeader {
    pub peer_type: PeerType,
    pub flags: PeerFlags,
    /// Route distinguisher of the peer's instance; 0 for a global instance peer.
    pub distinguisher: u64,
    /// The peer's address; its family must agree with the V flag.
    pub address: IpAddr,
    pub asn: u32,
    pub bgp_id: Ipv4Addr,
    /// When the event happened or the routes were received; 0 when unknown.
    pub timestamp_seconds: u32,
    pub timestamp_microseconds: u32,
}

impl PeerHeader {
    /// A global instance peer, pre-policy Adj-RIB-In, 4-octet AS path, no timestamp.
    pub fn new(address: IpAddr, asn: u32, bgp_id: Ipv4Addr) -> PeerHeader {
        PeerHeader {
            peer_type: PeerType::GLOBAL_INSTANCE,
            flags: PeerFlags::default().with(PeerFlags::IPV6, address.is_ipv6()),
            distinguisher: 0,
            address,
            asn,
            bgp_id,
            timestamp_seconds: 0,
            timestamp_microseconds: 0,
        }
    }

    /// This header with `flags` (the V flag kept as the address says).
    #[must_use]
    pub fn with_flags(mut self, flags: PeerFlags) -> PeerHeader {
        self.flags = flags.with(PeerFlags::IPV6, self.address.is_ipv6());
        self
    }

    /// This header stamped with `t` (times outside the 32-bit range give 0, "unknown").
    #[must_use]
    pub fn at(mut self, t: SystemTime) -> PeerHeader {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        match u32::try_from(d.as_secs()) {
            Ok(s) => {
                self.timestamp_seconds = s;
                self.timestamp_microseconds = d.subsec_micros();
            }
            Err(_) => {
                self.timestamp_seconds = 0;
                self.timestamp_microseconds = 0;
            }
        }
        self
    }

    /// The fields that name the peer, whatever the flags and time: what a Peer Up and the
    /// messages that follow it have in common.
    pub fn key(&self) -> PeerKey {
        PeerKey {
            peer_type: self.peer_type,
            distinguisher: self.distinguisher,
            address: self.address,
        }
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<PeerHeader, DecodeError> {
        let peer_type = PeerType(r.u8("peer type")?);
        let flags = PeerFlags(r.u8("peer flags")?);
        let distinguisher = r.u64("peer distinguisher")?;
        let address = read_address(r, flags.is_ipv6(), "peer address")?;
        let asn = r.u32("peer AS")?;
        let bgp_id = r.ipv4("peer BGP ID")?;
        let timestamp_seconds = r.u32("timestamp")?;
        let timestamp_microseconds = r.u32("timestamp microseconds")?;
        Ok(PeerHeader {
            peer_type,
            flags,
            distinguisher,
            address,
            asn,
            bgp_id,
            timestamp_seconds,
            timestamp_microseconds,
        })
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        if self.flags.is_ipv6() != self.address.is_ipv6() {
            return Err(EncodeError::Invalid(format!(
                "peer address {} disagrees with the V flag in {:#04x}",
                self.address, self.flags.0
            )));
        }
        out.reserve(PER_PEER_HEADER_LEN);
        out.put_u8(self.peer_type.0);
        out.put_u8(self.flags.0);
        out.put_u64(self.distinguisher);
        put_address(out, self.address);
        out.put_u32(self.asn);
        out.put_slice(&self.bgp_id.octets());
        out.put_u32(self.timestamp_seconds);
        out.put_u32(self.timestamp_microseconds);
        Ok(())
    }
}

/// What identifies a monitored peer (RFC 7854 4.2: type, distinguisher, address).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey {
    pub peer_type: PeerType,
    pub distinguisher: u64,
    pub address: IpAddr,
}

/// A 16-octet address field: IPv6, or IPv4 in the last four octets (RFC 7854 4.2, 4.10).
pub(crate) fn read_address(
    r: &mut Reader,
    v6: bool,
    what: &'static str,
) -> Result<IpAddr, DecodeError> {
    let a = r.ipv6(what)?;
    Ok(if v6 {
        IpAddr::V6(a)
    } else {
        let o = a.octets();
        IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    })
}

pub(crate) fn put_address(out: &mut BytesMut, address: IpAddr) {
    match address {
        IpAddr::V4(a) => {
            out.put_slice(&[0; 12]);
            out.put_slice(&a.octets());
        }
        IpAddr::V6(a) => out.put_slice(&a.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::net::Ipv6Addr;

    #[test]
    fn ipv4_peers_sit_in_the_last_four_octets() {
        let h = PeerHeader::new(
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            65001,
            Ipv4Addr::new(10, 0, 0, 1),
        )
        .with_flags(PeerFlags(PeerFlags::POST_POLICY));
        let mut out = BytesMut::new();
        h.encode(&mut out).unwrap();
        assert_eq!(out.len(), PER_PEER_HEADER_LEN);
        assert_eq!(&out[..2], &[0, 0x40]);
        assert_eq!(
            &out[10..26],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1]
        );
        let back = PeerHeader::decode(&mut Reader::new(out.freeze())).unwrap();
        assert_eq!(back, h);
        assert!(back.flags.post_policy() && !back.flags.is_ipv6());
    }

    #[test]
    fn v_flag_follows_the_address_and_must_agree_with_it() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let h = PeerHeader::new(v6, 1, Ipv4Addr::new(1, 1, 1, 1));
        assert!(h.flags.is_ipv6());
        // with_flags cannot clear V for an IPv6 address.
        assert!(h.clone().with_flags(PeerFlags(0)).flags.is_ipv6());
        let mut wrong = h;
        wrong.flags = PeerFlags(0);
        assert!(wrong.encode(&mut BytesMut::new()).is_err());
        // Decoding reads the address as the V flag says.
        let mut raw = vec![0, 0x80];
        raw.extend_from_slice(&[0; 8]);
        raw.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        raw.extend_from_slice(&[0; 16]);
        let h = PeerHeader::decode(&mut Reader::new(Bytes::from(raw.clone()))).unwrap();
        assert_eq!(h.address, IpAddr::V6(Ipv6Addr::LOCALHOST));
        raw[1] = 0;
        let h = PeerHeader::decode(&mut Reader::new(Bytes::from(raw))).unwrap();
        assert_eq!(h.address, IpAddr::V4(Ipv4Addr::new(0, 0, 0, 1)));
    }

    #[test]
    fn timestamps_come_from_system_time() {
        let t = UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_123_456);
        let h = PeerHeader::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1, Ipv4Addr::LOCALHOST).at(t);
        assert_eq!(
            (h.timestamp_seconds, h.timestamp_microseconds),
            (1_700_000_000, 123_456)
        );
        let far = UNIX_EPOCH + std::time::Duration::from_secs(1 << 33);
        let h = h.at(far);
        assert_eq!((h.timestamp_seconds, h.timestamp_microseconds), (0, 0));
    }
}
