//! MRT records (RFC 6396, with the ADD-PATH subtypes of RFC 8050) and their parsing.
//!
//! A record is parsed into its framing fields only. The BGP content it carries (a path
//! attribute block, a whole BGP message) is kept as raw [`Bytes`] sharing the record buffer
//! and decoded on demand with the `bgp_proto::wire` codec (see the `decode_*` methods), so
//! iterating over a file costs little unless the caller looks inside, and a bad attribute
//! never makes the framing fail.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgp_proto::{Afi, Family, Safi};
use bytes::Bytes;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::cursor::{Cursor, ParseError};
use crate::error::MrtError;

/// MRT type codes (RFC 6396 section 4, IANA "MRT Types").
pub mod mrt_type {
    /// Deprecated MRT type 5 (RFC 6396 appendix B.2.1): not interpreted by this reader.
    pub const BGP: u16 = 5;
    pub const TABLE_DUMP: u16 = 12;
    pub const TABLE_DUMP_V2: u16 = 13;
    pub const BGP4MP: u16 = 16;
    /// BGP4MP with the extended (microsecond) timestamp header (RFC 6396 section 3).
    pub const BGP4MP_ET: u16 = 17;
}

/// TABLE_DUMP subtypes (RFC 6396 section 4.2): the AFI of the entry.
pub mod table_dump_subtype {
    pub const AFI_IPV4: u16 = 1;
    pub const AFI_IPV6: u16 = 2;
    /// Not in RFC 6396: a bgpdump extension for TABLE_DUMP with 4-octet AS numbers.
    pub const AFI_IPV4_AS4: u16 = 3;
    /// Not in RFC 6396: a bgpdump extension for TABLE_DUMP with 4-octet AS numbers.
    pub const AFI_IPV6_AS4: u16 = 4;
}

/// TABLE_DUMP_V2 subtypes (RFC 6396 section 4.3, RFC 8050 section 4).
pub mod table_dump_v2_subtype {
    pub const PEER_INDEX_TABLE: u16 = 1;
    pub const RIB_IPV4_UNICAST: u16 = 2;
    pub const RIB_IPV4_MULTICAST: u16 = 3;
    pub const RIB_IPV6_UNICAST: u16 = 4;
    pub const RIB_IPV6_MULTICAST: u16 = 5;
    pub const RIB_GENERIC: u16 = 6;
    pub const RIB_IPV4_UNICAST_ADDPATH: u16 = 8;
    pub const RIB_IPV4_MULTICAST_ADDPATH: u16 = 9;
    pub const RIB_IPV6_UNICAST_ADDPATH: u16 = 10;
    pub const RIB_IPV6_MULTICAST_ADDPATH: u16 = 11;
    pub const RIB_GENERIC_ADDPATH: u16 = 12;
}

/// BGP4MP / BGP4MP_ET subtypes (RFC 6396 section 4.4, RFC 8050 section 3).
pub mod bgp4mp_subtype {
    pub const STATE_CHANGE: u16 = 0;
    pub const MESSAGE: u16 = 1;
    pub const MESSAGE_AS4: u16 = 4;
    pub const STATE_CHANGE_AS4: u16 = 5;
    pub const MESSAGE_LOCAL: u16 = 6;
    pub const MESSAGE_AS4_LOCAL: u16 = 7;
    pub const MESSAGE_ADDPATH: u16 = 8;
    pub const MESSAGE_AS4_ADDPATH: u16 = 9;
    pub const MESSAGE_LOCAL_ADDPATH: u16 = 10;
    pub const MESSAGE_AS4_LOCAL_ADDPATH: u16 = 11;
}

/// The MRT common header (RFC 6396 section 2), plus the microsecond field of the
/// extended-timestamp header (section 3) for `*_ET` types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MrtHeader {
    /// Seconds since the Unix epoch.
    pub timestamp: u32,
    pub mrt_type: u16,
    pub subtype: u16,
    /// Length of the message field, excluding the microsecond field of `_ET` records.
    pub length: u32,
    /// Microseconds, present only for extended-timestamp types (BGP4MP_ET).
    pub microseconds: Option<u32>,
}

/// One MRT record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MrtRecord {
    pub header: MrtHeader,
    pub body: MrtBody,
}

/// The parsed message field of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MrtBody {
    /// TABLE_DUMP (type 12): one route.
    TableDump(TableDump),
    /// TABLE_DUMP_V2 PEER_INDEX_TABLE.
    PeerIndexTable(PeerIndexTable),
    /// TABLE_DUMP_V2 RIB_* and RIB_*_ADDPATH, including RIB_GENERIC.
    Rib(Rib),
    /// BGP4MP(_ET) STATE_CHANGE and STATE_CHANGE_AS4.
    StateChange(StateChange),
    /// BGP4MP(_ET) MESSAGE* subtypes.
    Message(Bgp4mpMessage),
    /// A type or subtype this reader does not interpret (OSPF, IS-IS, BGP4MP_ENTRY, ...):
    /// the raw message field.
    Unsupported(Bytes),
}

/// A TABLE_DUMP record (RFC 6396 section 4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDump {
    pub view: u16,
    pub sequence: u16,
    /// The prefix as written in the record (host bits are not cleared).
    pub prefix: IpNet,
    pub status: u8,
    pub originated_time: u32,
    pub peer_ip: IpAddr,
    pub peer_as: u32,
    /// AS numbers in `peer_as` and the attributes are 4 octets (bgpdump subtypes 3 and 4).
    pub four_octet_as: bool,
    /// The path attribute block, undecoded.
    pub attributes: Bytes,
}

/// One peer of a PEER_INDEX_TABLE (RFC 6396 section 4.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub bgp_id: Ipv4Addr,
    pub ip: IpAddr,
    pub asn: u32,
}

/// TABLE_DUMP_V2 PEER_INDEX_TABLE (RFC 6396 section 4.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIndexTable {
    pub collector_bgp_id: Ipv4Addr,
    /// The view name, decoded lossily as UTF-8.
    pub view_name: String,
    pub peers: Vec<Peer>,
}

impl PeerIndexTable {
    /// The peer a RIB entry refers to.
    pub fn peer(&self, index: u16) -> Option<&Peer> {
        self.peers.get(usize::from(index))
    }
}

/// The NLRI of a RIB record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RibNlri {
    /// An IPv4 or IPv6 prefix, as written (host bits are not cleared).
    Prefix(IpNet),
    /// A RIB_GENERIC NLRI of a family whose encoding this reader does not interpret.
    Opaque(Bytes),
}

/// A TABLE_DUMP_V2 RIB record: one NLRI and the routes of every peer for it
/// (RFC 6396 sections 4.3.2 and 4.3.3, RFC 8050 section 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rib {
    pub sequence: u32,
    pub family: Family,
    /// The record is one of the RFC 8050 `*_ADDPATH` subtypes: entries carry a path id.
    pub add_path: bool,
    /// The record is RIB_GENERIC(_ADDPATH) rather than an AFI/SAFI-specific subtype.
    pub generic: bool,
    pub nlri: RibNlri,
    /// RIB_GENERIC_ADDPATH: the path identifier written before the NLRI (RFC 8050 4.2,
    /// "additional-path-enabled NLRI"); its RIB entries then carry none.
    pub path_id: Option<u32>,
    pub entries: Vec<RibEntry>,
}

/// One RIB entry (RFC 6396 section 4.3.4, RFC 8050 section 4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RibEntry {
    /// Index into the most recent PEER_INDEX_TABLE.
    pub peer_index: u16,
    pub originated_time: u32,
    /// ADD-PATH path identifier (RFC 8050 4.1: the AFI/SAFI-specific `*_ADDPATH`
    /// subtypes only; RIB_GENERIC_ADDPATH has it in the NLRI, see [`Rib::path_id`]).
    pub path_id: Option<u32>,
    /// The path attribute block, undecoded. Always 4-octet AS; an MP_REACH_NLRI in it
    /// is normally the abbreviated form of RFC 6396 section 4.3.4.
    pub attributes: Bytes,
}

/// BGP4MP(_ET) STATE_CHANGE / STATE_CHANGE_AS4 (RFC 6396 sections 4.4.1 and 4.4.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    pub peer_as: u32,
    pub local_as: u32,
    pub interface_index: u16,
    pub afi: Afi,
    pub peer_ip: IpAddr,
    pub local_ip: IpAddr,
    /// RFC 6396 section 4.4.1 state codes: 1 Idle ... 6 Established.
    pub old_state: u16,
    pub new_state: u16,
    pub four_octet_as: bool,
}

/// A BGP message recorded by BGP4MP(_ET) (RFC 6396 sections 4.4.2, 4.4.3, 4.4.5, 4.4.6;
/// RFC 8050 section 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bgp4mpMessage {
    pub peer_as: u32,
    pub local_as: u32,
    pub interface_index: u16,
    pub afi: Afi,
    pub peer_ip: IpAddr,
    pub local_ip: IpAddr,
    /// `*_AS4*` subtypes: AS numbers (here and in the message) are 4 octets.
    pub four_octet_as: bool,
    /// `MESSAGE_*LOCAL*` subtypes: the message was sent by the local side, not the peer.
    pub local: bool,
    /// `*_ADDPATH` subtypes: NLRI in the message carry ADD-PATH path identifiers.
    pub add_path: bool,
    /// The whole BGP message, from the marker on.
    pub message: Bytes,
}

impl Bgp4mpMessage {
    /// The BGP message type octet (RFC 4271 4.1), if the message has a full header.
    pub fn message_type(&self) -> Option<u8> {
        self.message.get(18).copied()
    }
}

fn malformed(header: &MrtHeader, reason: ParseError) -> MrtError {
    MrtError::Malformed {
        mrt_type: header.mrt_type,
        subtype: header.subtype,
        reason,
    }
}

impl MrtRecord {
    /// Parse a record's message field. `body` excludes the microsecond field of `_ET`
    /// records (already moved into `header.microseconds`).
    pub fn parse(header: MrtHeader, body: Bytes) -> Result<MrtRecord, MrtError> {
        let parsed = match header.mrt_type {
            mrt_type::TABLE_DUMP => parse_table_dump(&header, body),
            mrt_type::TABLE_DUMP_V2 => parse_table_dump_v2(&header, body),
            mrt_type::BGP4MP | mrt_type::BGP4MP_ET => parse_bgp4mp(&header, body),
            _ => Ok(MrtBody::Unsupported(body)),
        };
        match parsed {
            Ok(body) => Ok(MrtRecord { header, body }),
            Err(reason) => Err(malformed(&header, reason)),
        }
    }
}

/// Build a prefix from its address and length, refusing a length the family cannot have.
fn make_prefix(addr: IpAddr, len: u8) -> Result<IpNet, ParseError> {
    match addr {
        IpAddr::V4(a) => Ipv4Net::new(a, len)
            .map(IpNet::V4)
            .map_err(|_| format!("IPv4 prefix length {len} > 32")),
        IpAddr::V6(a) => Ipv6Net::new(a, len)
            .map(IpNet::V6)
            .map_err(|_| format!("IPv6 prefix length {len} > 128")),
    }
}

/// Read a prefix in NLRI encoding (RFC 4271 4.3: length in bits, then the minimum number
/// of octets), for an IPv4 or IPv6 AFI. Trailing host bits are kept as written.
pub(crate) fn read_nlri_prefix(c: &mut Cursor, afi: Afi) -> Result<IpNet, ParseError> {
    let len = c.u8("prefix length")?;
    let max = if afi == Afi::IPV4 { 32 } else { 128 };
    if len > max {
        return Err(format!("prefix length {len} > {max}"));
    }
    let octets = usize::from(len).div_ceil(8);
    let bytes = c.take(octets, "prefix")?;
    let addr = if afi == Afi::IPV4 {
        let mut a = [0u8; 4];
        a[..octets].copy_from_slice(&bytes);
        IpAddr::V4(Ipv4Addr::from(a))
    } else {
        let mut a = [0u8; 16];
        a[..octets].copy_from_slice(&bytes);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    make_prefix(addr, len)
}

fn read_ip(c: &mut Cursor, v6: bool, what: &str) -> Result<IpAddr, ParseError> {
    if v6 {
        c.ipv6(what).map(IpAddr::V6)
    } else {
        c.ipv4(what).map(IpAddr::V4)
    }
}

/// The attribute block of TABLE_DUMP and RIB entries: a 2-octet length, then the block.
fn read_attribute_block(c: &mut Cursor) -> Result<Bytes, ParseError> {
    let len = c.u16("attribute length")?;
    c.take(usize::from(len), "path attributes")
}

/// RFC 6396 section 4.2.
fn parse_table_dump(header: &MrtHeader, body: Bytes) -> Result<MrtBody, ParseError> {
    use table_dump_subtype::*;
    let (v6, four_octet_as) = match header.subtype {
        AFI_IPV4 => (false, false),
        AFI_IPV6 => (true, false),
        AFI_IPV4_AS4 => (false, true),
        AFI_IPV6_AS4 => (true, true),
        _ => return Ok(MrtBody::Unsupported(body)),
    };
    let mut c = Cursor::new(body);
    let view = c.u16("view number")?;
    let sequence = c.u16("sequence number")?;
    let addr = read_ip(&mut c, v6, "prefix")?;
    let len = c.u8("prefix length")?;
    let prefix = make_prefix(addr, len)?;
    let status = c.u8("status")?;
    let originated_time = c.u32("originated time")?;
    let peer_ip = read_ip(&mut c, v6, "peer IP address")?;
    let peer_as = c.asn(four_octet_as, "peer AS")?;
    let attributes = read_attribute_block(&mut c)?;
    if !c.is_empty() {
        return Err(format!("{} bytes after the attributes", c.remaining()));
    }
    Ok(MrtBody::TableDump(TableDump {
        view,
        sequence,
        prefix,
        status,
        originated_time,
        peer_ip,
        peer_as,
        four_octet_as,
        attributes,
    }))
}

fn parse_table_dump_v2(header: &MrtHeader, body: Bytes) -> Result<MrtBody, ParseError> {
    use table_dump_v2_subtype::*;
    let family = |afi, safi| Family::new(afi, safi);
    let (fam, add_path) = match header.subtype {
        PEER_INDEX_TABLE => return parse_peer_index_table(body),
        RIB_GENERIC => return parse_rib(body, None, false),
        RIB_GENERIC_ADDPATH => return parse_rib(body, None, true),
        RIB_IPV4_UNICAST => (family(Afi::IPV4, Safi::UNICAST), false),
        RIB_IPV4_MULTICAST => (family(Afi::IPV4, Safi::MULTICAST), false),
        RIB_IPV6_UNICAST => (family(Afi::IPV6, Safi::UNICAST), false),
        RIB_IPV6_MULTICAST => (family(Afi::IPV6, Safi::MULTICAST), false),
        RIB_IPV4_UNICAST_ADDPATH => (family(Afi::IPV4, Safi::UNICAST), true),
        RIB_IPV4_MULTICAST_ADDPATH => (family(Afi::IPV4, Safi::MULTICAST), true),
        RIB_IPV6_UNICAST_ADDPATH => (family(Afi::IPV6, Safi::UNICAST), true),
        RIB_IPV6_MULTICAST_ADDPATH => (family(Afi::IPV6, Safi::MULTICAST), true),
        _ => return Ok(MrtBody::Unsupported(body)),
    };
    parse_rib(body, Some(fam), add_path)
}

/// RFC 6396 section 4.3.1.
fn parse_peer_index_table(body: Bytes) -> Result<MrtBody, ParseError> {
    let mut c = Cursor::new(body);
    let collector_bgp_id = c.ipv4("collector BGP ID")?;
    let name_len = c.u16("view name length")?;
    let name = c.take(usize::from(name_len), "view name")?;
    let view_name = String::from_utf8_lossy(&name).into_owned();
    let count = c.u16("peer count")?;
    // Each peer entry is at least 1 + 4 + 4 + 2 octets: never reserve more than fits.
    let mut peers = Vec::with_capacity(usize::from(count).min(c.remaining() / 11));
    for _ in 0..count {
        let peer_type = c.u8("peer type")?;
        // Bit 0: IPv6 peer address; bit 1: 4-octet AS.
        let v6 = peer_type & 0x01 != 0;
        let as4 = peer_type & 0x02 != 0;
        let bgp_id = c.ipv4("peer BGP ID")?;
        let ip = read_ip(&mut c, v6, "peer IP address")?;
        let asn = c.asn(as4, "peer AS")?;
        peers.push(Peer { bgp_id, ip, asn });
    }
    Ok(MrtBody::PeerIndexTable(PeerIndexTable {
        collector_bgp_id,
        view_name,
        peers,
    }))
}

/// Read a RIB_GENERIC NLRI. The families whose NLRI start with a length in bits
/// (unicast, multicast, labelled, VPN: RFC 4760, RFC 8277, RFC 4364) are framed by it;
/// IPv4/IPv6 unicast and multicast are decoded to a prefix. For other encodings the NLRI
/// length cannot be known, and RFC 6396 4.3.3 says to discard the rest of the record.
fn read_generic_nlri(c: &mut Cursor, family: Family) -> Result<RibNlri, ParseError> {
    let ip = family.afi == Afi::IPV4 || family.afi == Afi::IPV6;
    match family.safi {
        Safi::UNICAST | Safi::MULTICAST if ip => {
            read_nlri_prefix(c, family.afi).map(RibNlri::Prefix)
        }
        Safi::UNICAST | Safi::MULTICAST | Safi::MPLS_LABEL | Safi::MPLS_VPN => {
            let bits = c.peek_u8().ok_or_else(|| "truncated NLRI".to_string())?;
            let octets = 1 + usize::from(bits).div_ceil(8);
            c.take(octets, "NLRI").map(RibNlri::Opaque)
        }
        _ => Err(format!(
            "RIB_GENERIC NLRI of AFI {} SAFI {} cannot be framed",
            family.afi.0, family.safi.0
        )),
    }
}

/// RFC 6396 sections 4.3.2-4.3.4; RFC 8050 section 4 for `add_path`. `family` is None for
/// RIB_GENERIC, whose AFI and SAFI are in the record.
fn parse_rib(body: Bytes, family: Option<Family>, add_path: bool) -> Result<MrtBody, ParseError> {
    let mut c = Cursor::new(body);
    let sequence = c.u32("sequence number")?;
    let (family, generic, nlri_path_id, nlri) = match family {
        Some(f) => (
            f,
            false,
            None,
            RibNlri::Prefix(read_nlri_prefix(&mut c, f.afi)?),
        ),
        None => {
            let afi = Afi(c.u16("AFI")?);
            let safi = Safi(c.u8("SAFI")?);
            let f = Family::new(afi, safi);
            // RFC 8050 4.2: RIB_GENERIC_ADDPATH carries an ADD-PATH NLRI (RFC 7911 3).
            let path_id = if add_path {
                Some(c.u32("path identifier")?)
            } else {
                None
            };
            (f, true, path_id, read_generic_nlri(&mut c, f)?)
        }
    };
    // RFC 8050 4.1: the path identifier is in each entry of the AFI/SAFI-specific subtypes;
    // 4.2: RIB_GENERIC_ADDPATH entries are not redefined.
    let entry_path_id = add_path && !generic;
    let count = c.u16("entry count")?;
    // An entry is at least 2 + 4 + 2 octets (plus 4 for ADD-PATH): cap the reservation.
    let min_entry = if entry_path_id { 12 } else { 8 };
    let mut entries = Vec::with_capacity(usize::from(count).min(c.remaining() / min_entry));
    for _ in 0..count {
        let peer_index = c.u16("peer index")?;
        let originated_time = c.u32("originated time")?;
        let path_id = if entry_path_id {
            Some(c.u32("path identifier")?)
        } else {
            None
        };
        let attributes = read_attribute_block(&mut c)?;
        entries.push(RibEntry {
            peer_index,
            originated_time,
            path_id,
            attributes,
        });
    }
    if !c.is_empty() {
        return Err(format!("{} bytes after the last RIB entry", c.remaining()));
    }
    Ok(MrtBody::Rib(Rib {
        sequence,
        family,
        add_path,
        generic,
        nlri,
        path_id: nlri_path_id,
        entries,
    }))
}

/// The peer/local AS, interface and addresses that start every BGP4MP subtype.
struct Bgp4mpPeers {
    peer_as: u32,
    local_as: u32,
    interface_index: u16,
    afi: Afi,
    peer_ip: IpAddr,
    local_ip: IpAddr,
}

fn read_bgp4mp_peers(c: &mut Cursor, four_octet_as: bool) -> Result<Bgp4mpPeers, ParseError> {
    let peer_as = c.asn(four_octet_as, "peer AS")?;
    let local_as = c.asn(four_octet_as, "local AS")?;
    let interface_index = c.u16("interface index")?;
    let afi = Afi(c.u16("address family")?);
    let v6 = match afi {
        Afi::IPV4 => false,
        Afi::IPV6 => true,
        other => return Err(format!("unsupported address family {}", other.0)),
    };
    let peer_ip = read_ip(c, v6, "peer IP address")?;
    let local_ip = read_ip(c, v6, "local IP address")?;
    Ok(Bgp4mpPeers {
        peer_as,
        local_as,
        interface_index,
        afi,
        peer_ip,
        local_ip,
    })
}

/// RFC 6396 section 4.4; RFC 8050 section 3.
fn parse_bgp4mp(header: &MrtHeader, body: Bytes) -> Result<MrtBody, ParseError> {
    use bgp4mp_subtype::*;
    let (four_octet_as, local, add_path) = match header.subtype {
        STATE_CHANGE => return parse_state_change(body, false),
        STATE_CHANGE_AS4 => return parse_state_change(body, true),
        MESSAGE => (false, false, false),
        MESSAGE_AS4 => (true, false, false),
        MESSAGE_LOCAL => (false, true, false),
        MESSAGE_AS4_LOCAL => (true, true, false),
        MESSAGE_ADDPATH => (false, false, true),
        MESSAGE_AS4_ADDPATH => (true, false, true),
        MESSAGE_LOCAL_ADDPATH => (false, true, true),
        MESSAGE_AS4_LOCAL_ADDPATH => (true, true, true),
        _ => return Ok(MrtBody::Unsupported(body)),
    };
    let mut c = Cursor::new(body);
    let p = read_bgp4mp_peers(&mut c, four_octet_as)?;
    let message = c.rest();
    if message.len() < 19 {
        return Err(format!(
            "BGP message of {} bytes is shorter than its header",
            message.len()
        ));
    }
    Ok(MrtBody::Message(Bgp4mpMessage {
        peer_as: p.peer_as,
        local_as: p.local_as,
        interface_index: p.interface_index,
        afi: p.afi,
        peer_ip: p.peer_ip,
        local_ip: p.local_ip,
        four_octet_as,
        local,
        add_path,
        message,
    }))
}

/// RFC 6396 sections 4.4.1 and 4.4.4.
fn parse_state_change(body: Bytes, four_octet_as: bool) -> Result<MrtBody, ParseError> {
    let mut c = Cursor::new(body);
    // Old Zebra versions wrote 2-octet state changes with only the ASes and the states
    // (8 octets). bgpdump accepts them with unspecified addresses; so do we.
    if !four_octet_as && c.remaining() == 8 {
        let peer_as = c.asn(false, "peer AS")?;
        let local_as = c.asn(false, "local AS")?;
        let old_state = c.u16("old state")?;
        let new_state = c.u16("new state")?;
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        return Ok(MrtBody::StateChange(StateChange {
            peer_as,
            local_as,
            interface_index: 0,
            afi: Afi::IPV4,
            peer_ip: unspecified,
            local_ip: unspecified,
            old_state,
            new_state,
            four_octet_as,
        }));
    }
    let p = read_bgp4mp_peers(&mut c, four_octet_as)?;
    let old_state = c.u16("old state")?;
    let new_state = c.u16("new state")?;
    if !c.is_empty() {
        return Err(format!("{} bytes after the new state", c.remaining()));
    }
    Ok(MrtBody::StateChange(StateChange {
        peer_as: p.peer_as,
        local_as: p.local_as,
        interface_index: p.interface_index,
        afi: p.afi,
        peer_ip: p.peer_ip,
        local_ip: p.local_ip,
        old_state,
        new_state,
        four_octet_as,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(mrt_type: u16, subtype: u16, len: usize) -> MrtHeader {
        MrtHeader {
            timestamp: 1_000_000_000,
            mrt_type,
            subtype,
            length: len as u32,
            microseconds: None,
        }
    }

    fn parse(mrt_type: u16, subtype: u16, body: &[u8]) -> Result<MrtBody, MrtError> {
        MrtRecord::parse(
            header(mrt_type, subtype, body.len()),
            Bytes::copy_from_slice(body),
        )
        .map(|r| r.body)
    }

    /// Every proper prefix of a valid body must fail cleanly (no panic, no partial record).
    fn assert_truncations_fail(mrt_type: u16, subtype: u16, body: &[u8]) {
        for cut in 0..body.len() {
            let r = parse(mrt_type, subtype, &body[..cut]);
            assert!(
                matches!(r, Err(MrtError::Malformed { .. })),
                "type {mrt_type}/{subtype} cut at {cut} of {}: {r:?}",
                body.len()
            );
        }
    }

    const ATTRS: &[u8] = &[0x40, 1, 1, 0]; // ORIGIN IGP

    fn table_dump_v4() -> Vec<u8> {
        let mut b = vec![0, 0, 0, 7]; // view 0, sequence 7
        b.extend_from_slice(&[10, 1, 0, 0, 16, 1]); // 10.1.0.0/16, status 1
        b.extend_from_slice(&1_000u32.to_be_bytes());
        b.extend_from_slice(&[192, 0, 2, 1, 0xfd, 0xe8]); // peer 192.0.2.1 AS 65000
        b.extend_from_slice(&(ATTRS.len() as u16).to_be_bytes());
        b.extend_from_slice(ATTRS);
        b
    }

    #[test]
    fn table_dump_ipv4_route() {
        let body = table_dump_v4();
        let MrtBody::TableDump(td) = parse(mrt_type::TABLE_DUMP, 1, &body).unwrap() else {
            panic!("not a TABLE_DUMP");
        };
        assert_eq!(td.sequence, 7);
        assert_eq!(td.prefix.to_string(), "10.1.0.0/16");
        assert_eq!(td.status, 1);
        assert_eq!(td.originated_time, 1000);
        assert_eq!(td.peer_ip.to_string(), "192.0.2.1");
        assert_eq!(td.peer_as, 65000);
        assert!(!td.four_octet_as);
        assert_eq!(&td.attributes[..], ATTRS);
        assert_truncations_fail(mrt_type::TABLE_DUMP, 1, &body);
    }

    #[test]
    fn table_dump_ipv6_with_bgpdump_as4_subtype() {
        let mut b = vec![0, 0, 0, 1];
        b.extend_from_slice(&"2001:db8::".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&[32, 1, 0, 0, 0, 0]);
        b.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&4_200_000_000u32.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        let MrtBody::TableDump(td) = parse(mrt_type::TABLE_DUMP, 4, &b).unwrap() else {
            panic!("not a TABLE_DUMP");
        };
        assert_eq!(td.prefix.to_string(), "2001:db8::/32");
        assert_eq!(td.peer_as, 4_200_000_000);
        assert!(td.four_octet_as);
        assert_truncations_fail(mrt_type::TABLE_DUMP, 4, &b);
    }

    #[test]
    fn table_dump_rejects_impossible_prefix_length_and_trailing_bytes() {
        let mut body = table_dump_v4();
        body[8] = 33;
        let err = parse(mrt_type::TABLE_DUMP, 1, &body).unwrap_err();
        assert!(err.to_string().contains("prefix length 33"), "{err}");
        let mut body = table_dump_v4();
        body.push(0);
        assert!(parse(mrt_type::TABLE_DUMP, 1, &body).is_err());
    }

    fn peer_index_table() -> Vec<u8> {
        let mut b = vec![192, 0, 2, 254, 0, 4];
        b.extend_from_slice(b"rrc0");
        b.extend_from_slice(&[0, 3]);
        // IPv4 peer, 2-octet AS.
        b.extend_from_slice(&[0, 1, 1, 1, 1, 192, 0, 2, 1, 0xfd, 0xe8]);
        // IPv6 peer, 4-octet AS.
        b.extend_from_slice(&[3, 2, 2, 2, 2]);
        b.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&196_608u32.to_be_bytes());
        // IPv4 peer, 4-octet AS.
        b.extend_from_slice(&[2, 3, 3, 3, 3, 198, 51, 100, 1, 0, 0, 0xfd, 0xe9]);
        b
    }

    #[test]
    fn peer_index_table_with_mixed_peer_types() {
        let body = peer_index_table();
        let MrtBody::PeerIndexTable(t) = parse(mrt_type::TABLE_DUMP_V2, 1, &body).unwrap() else {
            panic!("not a PEER_INDEX_TABLE");
        };
        assert_eq!(t.collector_bgp_id, Ipv4Addr::new(192, 0, 2, 254));
        assert_eq!(t.view_name, "rrc0");
        assert_eq!(t.peers.len(), 3);
        assert_eq!(t.peer(0).map(|p| p.asn), Some(65000));
        assert_eq!(
            t.peer(1).map(|p| p.ip.to_string()),
            Some("2001:db8::2".into())
        );
        assert_eq!(t.peer(1).map(|p| p.asn), Some(196_608));
        assert_eq!(t.peer(2).map(|p| p.asn), Some(65001));
        assert_eq!(t.peer(3), None);
        assert_truncations_fail(mrt_type::TABLE_DUMP_V2, 1, &body);
    }

    #[test]
    fn peer_count_larger_than_the_record_fails_without_reserving_for_it() {
        let body = [192, 0, 2, 254, 0, 0, 0xff, 0xff];
        assert!(parse(mrt_type::TABLE_DUMP_V2, 1, &body).is_err());
    }

    fn rib(add_path: bool) -> Vec<u8> {
        let mut b = vec![0, 0, 0, 9, 23, 198, 51, 100]; // seq 9, 198.51.100.0/23
        b.extend_from_slice(&[0, 2]);
        for (peer, id) in [(0u16, 5u32), (2, 6)] {
            b.extend_from_slice(&peer.to_be_bytes());
            b.extend_from_slice(&77u32.to_be_bytes());
            if add_path {
                b.extend_from_slice(&id.to_be_bytes());
            }
            b.extend_from_slice(&(ATTRS.len() as u16).to_be_bytes());
            b.extend_from_slice(ATTRS);
        }
        b
    }

    #[test]
    fn rib_ipv4_unicast_and_its_add_path_form() {
        for (subtype, add_path) in [(2, false), (8, true)] {
            let body = rib(add_path);
            let MrtBody::Rib(r) = parse(mrt_type::TABLE_DUMP_V2, subtype, &body).unwrap() else {
                panic!("not a RIB record");
            };
            assert_eq!(r.sequence, 9);
            assert_eq!(r.family, Family::IPV4_UNICAST);
            assert_eq!(r.add_path, add_path);
            assert!(!r.generic);
            assert_eq!(r.nlri, RibNlri::Prefix("198.51.100.0/23".parse().unwrap()));
            assert_eq!(r.entries.len(), 2);
            assert_eq!(r.entries[1].peer_index, 2);
            assert_eq!(r.entries[1].originated_time, 77);
            let want = if add_path { Some(6) } else { None };
            assert_eq!(r.entries[1].path_id, want);
            assert_eq!(&r.entries[1].attributes[..], ATTRS);
            assert_truncations_fail(mrt_type::TABLE_DUMP_V2, subtype, &body);
        }
    }

    #[test]
    fn rib_ipv6_multicast_keeps_host_bits_as_written() {
        let body = [0, 0, 0, 1, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0];
        let MrtBody::Rib(r) = parse(mrt_type::TABLE_DUMP_V2, 5, &body).unwrap() else {
            panic!("not a RIB record");
        };
        assert_eq!(r.family, Family::new(Afi::IPV6, Safi::MULTICAST));
        assert_eq!(r.nlri, RibNlri::Prefix("2001:db8:1::/48".parse().unwrap()));
        assert!(r.entries.is_empty());
        // 10.0.0.1/8 as written: the reader does not mask.
        let body = [0, 0, 0, 1, 8, 10, 0, 0];
        let MrtBody::Rib(r) = parse(mrt_type::TABLE_DUMP_V2, 2, &body).unwrap() else {
            panic!("not a RIB record");
        };
        assert_eq!(r.nlri, RibNlri::Prefix("10.0.0.0/8".parse().unwrap()));
    }

    #[test]
    fn rib_generic_frames_bit_length_nlri_and_refuses_others() {
        // IPv4 unicast through RIB_GENERIC.
        let body = [0, 0, 0, 3, 0, 1, 1, 24, 192, 0, 2, 0, 0];
        let MrtBody::Rib(r) = parse(mrt_type::TABLE_DUMP_V2, 6, &body).unwrap() else {
            panic!("not a RIB record");
        };
        assert!(r.generic);
        assert_eq!(r.nlri, RibNlri::Prefix("192.0.2.0/24".parse().unwrap()));
        assert_truncations_fail(mrt_type::TABLE_DUMP_V2, 6, &body);
        // RIB_GENERIC_ADDPATH, IPv4 MPLS VPN (SAFI 128): the path id precedes the NLRI
        // (RFC 8050 4.2); 88 bits = label (3) + RD (8) + 0 prefix octets; one plain entry.
        let mut body = vec![0, 0, 0, 3, 0, 1, 128, 0, 0, 0, 9, 88];
        body.extend_from_slice(&[0; 11]);
        body.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 5, 0, 0]);
        let MrtBody::Rib(r) = parse(mrt_type::TABLE_DUMP_V2, 12, &body).unwrap() else {
            panic!("not a RIB record");
        };
        assert!(r.add_path && r.generic);
        assert_eq!(r.path_id, Some(9));
        assert!(matches!(&r.nlri, RibNlri::Opaque(b) if b.len() == 12));
        assert_eq!(r.entries.len(), 1);
        assert_eq!(
            (r.entries[0].originated_time, r.entries[0].path_id),
            (5, None)
        );
        assert_truncations_fail(mrt_type::TABLE_DUMP_V2, 12, &body);
        // EVPN: no way to know the NLRI length.
        let body = [0, 0, 0, 3, 0, 25, 70, 2, 13];
        assert!(parse(mrt_type::TABLE_DUMP_V2, 6, &body).is_err());
    }

    fn bgp_keepalive() -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&[0, 19, 4]);
        m
    }

    #[test]
    fn bgp4mp_message_subtypes_set_their_flags() {
        use bgp4mp_subtype::*;
        for (subtype, as4, local, add_path) in [
            (MESSAGE, false, false, false),
            (MESSAGE_AS4, true, false, false),
            (MESSAGE_LOCAL, false, true, false),
            (MESSAGE_AS4_LOCAL, true, true, false),
            (MESSAGE_ADDPATH, false, false, true),
            (MESSAGE_AS4_ADDPATH, true, false, true),
            (MESSAGE_LOCAL_ADDPATH, false, true, true),
            (MESSAGE_AS4_LOCAL_ADDPATH, true, true, true),
        ] {
            let mut b = Vec::new();
            if as4 {
                b.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0xfd, 0xe8]);
            } else {
                b.extend_from_slice(&[0, 1, 0xfd, 0xe8]);
            }
            b.extend_from_slice(&[0, 5, 0, 1, 192, 0, 2, 1, 192, 0, 2, 2]);
            b.extend_from_slice(&bgp_keepalive());
            let MrtBody::Message(m) = parse(mrt_type::BGP4MP, subtype, &b).unwrap() else {
                panic!("subtype {subtype} is not a message");
            };
            assert_eq!(
                (m.four_octet_as, m.local, m.add_path),
                (as4, local, add_path)
            );
            assert_eq!(m.peer_as, if as4 { 65536 } else { 1 });
            assert_eq!(m.local_as, 65000);
            assert_eq!(m.interface_index, 5);
            assert_eq!(m.peer_ip.to_string(), "192.0.2.1");
            assert_eq!(m.local_ip.to_string(), "192.0.2.2");
            assert_eq!(m.message_type(), Some(4));
            assert_truncations_fail(mrt_type::BGP4MP_ET, subtype, &b);
        }
    }

    #[test]
    fn bgp4mp_rejects_unknown_address_family() {
        let b = [0, 1, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4];
        let err = parse(mrt_type::BGP4MP, 1, &b).unwrap_err();
        assert!(err.to_string().contains("address family 3"), "{err}");
    }

    #[test]
    fn state_changes_ipv6_as4_and_old_zebra_form() {
        let mut b = vec![0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2];
        b.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&[0, 1, 0, 6]);
        let MrtBody::StateChange(s) = parse(mrt_type::BGP4MP, 5, &b).unwrap() else {
            panic!("not a state change");
        };
        assert_eq!(
            (s.peer_as, s.local_as, s.old_state, s.new_state),
            (1, 2, 1, 6)
        );
        assert_eq!(s.peer_ip.to_string(), "2001:db8::1");
        // Trailing garbage is refused.
        let mut long = b.clone();
        long.push(0);
        assert!(parse(mrt_type::BGP4MP, 5, &long).is_err());
        // Every cut fails, except the 8-byte one in 2-octet form, which is the Zebra form.
        assert_truncations_fail(mrt_type::BGP4MP, 5, &b);
        let zebra = [0, 1, 0, 2, 0, 3, 0, 4];
        let MrtBody::StateChange(s) = parse(mrt_type::BGP4MP, 0, &zebra).unwrap() else {
            panic!("not a state change");
        };
        assert_eq!(
            (s.peer_as, s.local_as, s.old_state, s.new_state),
            (1, 2, 3, 4)
        );
        assert_eq!(s.peer_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }

    #[test]
    fn unknown_types_and_subtypes_are_kept_raw() {
        for (t, st) in [
            (11, 0),
            (32, 1),
            (mrt_type::BGP4MP, 2),
            (mrt_type::TABLE_DUMP_V2, 7),
        ] {
            assert_eq!(
                parse(t, st, &[1, 2, 3]).unwrap(),
                MrtBody::Unsupported(Bytes::from_static(&[1, 2, 3]))
            );
        }
    }
}
