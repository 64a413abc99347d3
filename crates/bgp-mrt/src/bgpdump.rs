//! Output identical to `bgpdump -m` (RIPE NCC libbgpdump 1.6), one line per route or event.
//!
//! Line formats (fields separated by `|`, every route line ends with `|`):
//!
//! ```text
//! TABLE_DUMP|time|B|peer|peer_as|prefix|as_path|origin|next_hop|local_pref|med|communities|AG/NAG|aggregator|
//! TABLE_DUMP2|time|B|peer|peer_as|prefix|as_path|origin|next_hop|local_pref|med|communities|AG/NAG|aggregator|
//! TABLE_DUMP2_AP|time|B|peer|peer_as|prefix|path_id|as_path|...                       (RFC 8050)
//! BGP4MP|time|A|peer|peer_as|prefix|as_path|origin|next_hop|local_pref|med|communities|AG/NAG|aggregator|
//! BGP4MP|time|W|peer|peer_as|prefix
//! BGP4MP|time|STATE|peer|peer_as|old_state|new_state
//! ```
//!
//! BGP4MP lines are named `BGP4MP`, `BGP4MP_ET` (extended timestamp, `time` is then
//! `seconds.microseconds`), with `_LOCAL` for messages the local side sent and `_AP` for
//! ADD-PATH subtypes (`path_id` after the prefix). An UPDATE gives one `W` line per
//! withdrawn prefix (Withdrawn Routes first, then MP_UNREACH_NLRI) and then one `A` line per
//! announced prefix (NLRI first, then MP_REACH_NLRI), all with the message's attributes.
//! OPEN, NOTIFICATION, KEEPALIVE and ROUTE-REFRESH messages print nothing.
//!
//! Field rules, as bgpdump applies them:
//! - `as_path`: see the notation in `text::push_as_path`; empty when there is no AS_PATH.
//!   For 2-octet records the AS4_PATH/AS4_AGGREGATOR merge of RFC 6793 4.2.3 is applied
//!   (by the codec).
//! - `origin`: `IGP`, `EGP`, else `INCOMPLETE` (also when ORIGIN is missing).
//! - `local_pref`, `med`: 0 when absent.
//! - `AG`/`NAG`: ATOMIC_AGGREGATE present or not; `aggregator`: `AS address` or empty.
//! - `next_hop`: NEXT_HOP for IPv4 NLRI (`255.255.255.255` when absent, bgpdump's unset
//!   value); the MP_REACH_NLRI next hop (global address only) for MP routes; for RIB
//!   entries the next hop of the (abbreviated, RFC 6396 4.3.4) MP_REACH_NLRI if present,
//!   else NEXT_HOP.
//!
//! bgpdump's quirks are reproduced deliberately, each marked "bgpdump quirk" below, since
//! the point of this format is byte-for-byte comparison with bgpdump's output. What
//! bgpdump does not print (TABLE_DUMP_V2 multicast and RIB_GENERIC records, unknown
//! families) is not printed here either.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgp_proto::{
    attr_type, Afi, Family, MpNextHop, MpReach, Nlri, Origin, PathAttributes, Safi, Update,
};
use ipnet::IpNet;

use crate::decode::{self, RibAttributes};
use crate::error::MrtError;
use crate::reader::MrtReader;
use crate::record::{
    mrt_type, table_dump_subtype, Bgp4mpMessage, MrtBody, MrtHeader, MrtRecord, PeerIndexTable,
    Rib, RibNlri, StateChange, TableDump,
};
use crate::text::{push_as_path, push_communities, push_i32, push_ipv4, push_ipv6, push_u32};

/// Why (part of) a record produced no output. bgpdump logs these and carries on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Skipped(pub String);

/// Formats records as `bgpdump -m` lines. Keeps the latest PEER_INDEX_TABLE, which the
/// TABLE_DUMP_V2 RIB records that follow it refer to.
#[derive(Debug, Default)]
pub struct Formatter {
    peers: Option<PeerIndexTable>,
}

impl Formatter {
    pub fn new() -> Formatter {
        Formatter::default()
    }

    /// Append the lines for `record` to `out`. Parts that cannot be decoded are left out
    /// and reported in the error, after the lines of the parts that could.
    pub fn format_record(&mut self, record: &MrtRecord, out: &mut Vec<u8>) -> Result<(), Skipped> {
        match &record.body {
            MrtBody::TableDump(td) => format_table_dump(&record.header, td, out),
            MrtBody::PeerIndexTable(t) => {
                self.peers = Some(t.clone());
                Ok(())
            }
            MrtBody::Rib(rib) => format_rib(&record.header, rib, self.peers.as_ref(), out),
            MrtBody::StateChange(sc) => {
                format_state_change(&record.header, sc, out);
                Ok(())
            }
            MrtBody::Message(msg) => format_message(&record.header, msg, out),
            MrtBody::Unsupported(_) => Ok(()),
        }
    }
}

/// Counts from [`dump`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DumpStats {
    pub records: u64,
    pub lines: u64,
    /// Records (or parts) that could not be read or decoded.
    pub errors: u64,
}

/// Read every record from `reader` and write its `bgpdump -m` lines to `out`.
/// `on_error` is told about each record that could not be read or printed in full.
pub fn dump<R: Read, W: Write>(
    reader: MrtReader<R>,
    mut out: W,
    mut on_error: impl FnMut(&dyn std::fmt::Display),
) -> io::Result<DumpStats> {
    let mut formatter = Formatter::new();
    let mut stats = DumpStats::default();
    let mut buf = Vec::with_capacity(256 * 1024);
    for item in reader {
        match item {
            Ok(record) => {
                stats.records += 1;
                let before = buf.len();
                if let Err(e) = formatter.format_record(&record, &mut buf) {
                    stats.errors += 1;
                    on_error(&e);
                }
                stats.lines += buf[before..].iter().filter(|&&b| b == b'\n').count() as u64;
            }
            Err(e) => {
                stats.errors += 1;
                on_error(&e as &MrtError);
            }
        }
        if buf.len() >= 128 * 1024 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(stats)
}

/// `seconds` or, for extended-timestamp records, `seconds.microseconds`.
fn push_time(out: &mut Vec<u8>, header: &MrtHeader) {
    push_u32(out, header.timestamp);
    if let Some(us) = header.microseconds {
        out.push(b'.');
        let start = out.len();
        push_u32(out, us);
        // %06ld
        let digits = out.len() - start;
        if digits < 6 {
            out.splice(start..start, std::iter::repeat_n(b'0', 6 - digits));
        }
    }
}

fn push_ip(out: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => push_ipv4(out, a),
        IpAddr::V6(a) => push_ipv6(out, a),
    }
}

/// bgpdump quirk: it keeps addresses in a union and sometimes prints an IPv4 value with
/// the IPv6 formatter, i.e. the four octets followed by twelve zero octets.
fn v4_as_v6(a: Ipv4Addr) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[..4].copy_from_slice(&a.octets());
    Ipv6Addr::from(o)
}

/// bgpdump quirk, the converse: an IPv6 value printed with the IPv4 formatter shows its
/// first four octets.
fn v6_as_v4(a: Ipv6Addr) -> Ipv4Addr {
    let o = a.octets();
    Ipv4Addr::new(o[0], o[1], o[2], o[3])
}

fn push_prefix(out: &mut Vec<u8>, prefix: IpNet) {
    push_ip(out, prefix.addr());
    out.push(b'/');
    push_u32(out, prefix.prefix_len().into());
}

fn origin_text(origin: Option<Origin>) -> &'static [u8] {
    match origin {
        Some(Origin::Igp) => b"IGP",
        Some(Origin::Egp) => b"EGP",
        _ => b"INCOMPLETE",
    }
}

fn push_as_path_field(out: &mut Vec<u8>, attrs: &PathAttributes) {
    if let Some(path) = &attrs.as_path {
        push_as_path(out, path);
    }
    out.push(b'|');
}

fn push_origin_field(out: &mut Vec<u8>, attrs: &PathAttributes) {
    out.extend_from_slice(origin_text(attrs.origin));
    out.push(b'|');
}

/// `local_pref|med|`, unsigned (`%u`), or signed as bgpdump prints them for IPv4 MP routes.
fn push_pref_med(out: &mut Vec<u8>, attrs: &PathAttributes, signed: bool) {
    let lp = attrs.local_pref.unwrap_or(0);
    let med = attrs.med.unwrap_or(0);
    if signed {
        // bgpdump quirk: `%d` for these two fields of IPv4 MP_REACH routes.
        push_i32(out, lp as i32);
        out.push(b'|');
        push_i32(out, med as i32);
    } else {
        push_u32(out, lp);
        out.push(b'|');
        push_u32(out, med);
    }
    out.push(b'|');
}

/// `communities|AG|aggregator|` and the newline.
fn push_tail(out: &mut Vec<u8>, attrs: &PathAttributes) {
    push_communities(out, &attrs.communities);
    out.push(b'|');
    out.extend_from_slice(if attrs.atomic_aggregate {
        b"AG|"
    } else {
        b"NAG|"
    });
    if let Some(agg) = &attrs.aggregator {
        // bgpdump quirk: 255.255.255.255 is its "no aggregator" value, so an aggregator
        // with that address is not printed.
        if agg.address != Ipv4Addr::BROADCAST {
            push_u32(out, agg.asn);
            out.push(b' ');
            push_ipv4(out, agg.address);
        }
    }
    out.extend_from_slice(b"|\n");
}

/// The MP next hop as bgpdump reads it: by length alone (4: IPv4, 16: IPv6, 32: IPv6
/// global + link-local), whatever the family. The codec leaves the next hop of families it
/// does not decode (multicast among them) opaque.
fn readable_next_hop(nh: &MpNextHop) -> MpNextHop {
    match nh {
        MpNextHop::Opaque(b) => match b.len() {
            4 => <[u8; 4]>::try_from(&b[..])
                .map(|o| MpNextHop::V4(Ipv4Addr::from(o)))
                .unwrap_or_else(|_| nh.clone()),
            16 | 32 => <[u8; 16]>::try_from(&b[..16])
                .map(|o| MpNextHop::V6 {
                    global: Ipv6Addr::from(o),
                    link_local: None,
                })
                .unwrap_or_else(|_| nh.clone()),
            _ => nh.clone(),
        },
        other => other.clone(),
    }
}

/// bgpdump shows AGGREGATOR and ATOMIC_AGGREGATE as written; the codec discards ones
/// RFC 7606/7607 call malformed (AS 0; a non-empty ATOMIC_AGGREGATE). Put them back for
/// display.
fn show_discarded_aggregation(attrs: &mut PathAttributes, block: &[u8], four_octet_as: bool) {
    if attrs.aggregator.is_none() {
        attrs.aggregator = decode::raw_aggregator(block, four_octet_as);
    }
    if !attrs.atomic_aggregate {
        attrs.atomic_aggregate = decode::has_attribute(block, attr_type::ATOMIC_AGGREGATE);
    }
}

/// NEXT_HOP, or bgpdump's unset value.
fn next_hop_v4(attrs: &PathAttributes) -> Ipv4Addr {
    attrs.next_hop.unwrap_or(Ipv4Addr::BROADCAST)
}

/// RFC 6396 section 4.2.
fn format_table_dump(header: &MrtHeader, td: &TableDump, out: &mut Vec<u8>) -> Result<(), Skipped> {
    let mut decoded = decode::table_dump_attributes(td)
        .map_err(|e| Skipped(format!("TABLE_DUMP {}: attributes: {e}", td.prefix)))?;
    show_discarded_aggregation(&mut decoded.attributes, &td.attributes, td.four_octet_as);
    let attrs = &decoded.attributes;
    // bgpdump quirk: only subtype 2 is printed as IPv6; subtype 4 (IPv6 with 4-octet AS)
    // goes through the IPv4 formatter.
    let v6 = header.subtype == table_dump_subtype::AFI_IPV6;
    let push_addr = |out: &mut Vec<u8>, addr: IpAddr| match (v6, addr) {
        (true, IpAddr::V6(a)) => push_ipv6(out, a),
        (true, IpAddr::V4(a)) => push_ipv6(out, v4_as_v6(a)),
        (false, IpAddr::V4(a)) => push_ipv4(out, a),
        (false, IpAddr::V6(a)) => push_ipv4(out, v6_as_v4(a)),
    };
    out.extend_from_slice(b"TABLE_DUMP|");
    push_time(out, header);
    out.extend_from_slice(b"|B|");
    push_addr(out, td.peer_ip);
    out.push(b'|');
    push_u32(out, td.peer_as);
    out.push(b'|');
    push_addr(out, td.prefix.addr());
    out.push(b'/');
    push_u32(out, td.prefix.prefix_len().into());
    out.push(b'|');
    push_as_path_field(out, attrs);
    push_origin_field(out, attrs);
    // The next hop of an IPv6 MP_REACH_NLRI (bgpdump files the abbreviated form under
    // IPv6 unicast too), always through the IPv6 formatter; else NEXT_HOP.
    match decoded
        .mp_reach
        .as_ref()
        .filter(|mp| decoded.abbreviated || mp.family == Family::IPV6_UNICAST)
    {
        Some(mp) => {
            let a = match readable_next_hop(&mp.next_hop) {
                MpNextHop::V4(a) => v4_as_v6(a),
                MpNextHop::V6 { global, .. } => global,
                // bgpdump leaves an unrecognised next hop zeroed.
                MpNextHop::Opaque(_) => Ipv6Addr::UNSPECIFIED,
            };
            push_ipv6(out, a);
        }
        None => push_ipv4(out, next_hop_v4(attrs)),
    }
    out.push(b'|');
    push_pref_med(out, attrs, false);
    push_tail(out, attrs);
    Ok(())
}

/// The next hop text bgpdump shows for a RIB entry.
fn push_rib_next_hop(out: &mut Vec<u8>, decoded: &RibAttributes) {
    // The abbreviated MP_REACH_NLRI (filed as IPv6 unicast by bgpdump), or a full one of
    // IPv6 or IPv4 unicast; otherwise NEXT_HOP.
    let mp = decoded.mp_reach.as_ref().filter(|mp| {
        decoded.abbreviated
            || mp.family == Family::IPV6_UNICAST
            || mp.family == Family::IPV4_UNICAST
    });
    match mp.map(|mp| readable_next_hop(&mp.next_hop)) {
        Some(MpNextHop::V4(a)) => push_ipv4(out, a),
        Some(MpNextHop::V6 { global, .. }) => push_ipv6(out, global),
        // bgpdump prints an uninitialised buffer here; an empty field is the sane reading.
        Some(MpNextHop::Opaque(_)) => {}
        None => push_ipv4(out, next_hop_v4(&decoded.attributes)),
    }
    out.push(b'|');
}

/// RFC 6396 section 4.3.2 (and RFC 8050 section 4 for ADD-PATH).
fn format_rib(
    header: &MrtHeader,
    rib: &Rib,
    peers: Option<&PeerIndexTable>,
    out: &mut Vec<u8>,
) -> Result<(), Skipped> {
    // bgpdump prints only the IPv4 and IPv6 unicast subtypes.
    let unicast = rib.family == Family::IPV4_UNICAST || rib.family == Family::IPV6_UNICAST;
    if rib.generic || !unicast {
        return Ok(());
    }
    let RibNlri::Prefix(prefix) = rib.nlri else {
        return Ok(());
    };
    if rib.entries.is_empty() {
        return Ok(());
    }
    let Some(peers) = peers else {
        return Err(Skipped(format!(
            "RIB record for {prefix} before any PEER_INDEX_TABLE"
        )));
    };
    let mut problems = Vec::new();
    for entry in &rib.entries {
        let Some(peer) = peers.peer(entry.peer_index) else {
            problems.push(format!(
                "{prefix}: peer index {} not in the PEER_INDEX_TABLE",
                entry.peer_index
            ));
            continue;
        };
        let mut decoded = match decode::rib_entry_attributes(entry) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("{prefix} from {}: attributes: {e}", peer.ip));
                continue;
            }
        };
        show_discarded_aggregation(&mut decoded.attributes, &entry.attributes, true);
        let attrs = &decoded.attributes;
        out.extend_from_slice(if rib.add_path {
            b"TABLE_DUMP2_AP|"
        } else {
            b"TABLE_DUMP2|"
        });
        push_time(out, header);
        out.extend_from_slice(b"|B|");
        push_ip(out, peer.ip);
        out.push(b'|');
        push_u32(out, peer.asn);
        out.push(b'|');
        push_prefix(out, prefix);
        out.push(b'|');
        if rib.add_path {
            push_u32(out, entry.path_id.unwrap_or(0));
            out.push(b'|');
        }
        push_as_path_field(out, attrs);
        push_origin_field(out, attrs);
        push_rib_next_hop(out, &decoded);
        push_pref_med(out, attrs, false);
        push_tail(out, attrs);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Skipped(problems.join("; ")))
    }
}

/// RFC 6396 sections 4.4.1 and 4.4.4.
fn format_state_change(header: &MrtHeader, sc: &StateChange, out: &mut Vec<u8>) {
    out.extend_from_slice(if header.mrt_type == mrt_type::BGP4MP_ET {
        b"BGP4MP_ET|"
    } else {
        b"BGP4MP|"
    });
    push_time(out, header);
    out.extend_from_slice(b"|STATE|");
    push_ip(out, sc.peer_ip);
    out.push(b'|');
    push_u32(out, sc.peer_as);
    out.push(b'|');
    push_u32(out, sc.old_state.into());
    out.push(b'|');
    push_u32(out, sc.new_state.into());
    out.push(b'\n');
}

/// Whether bgpdump labels a message as locally sent. bgpdump quirk: it reads the
/// `MESSAGE_*LOCAL_ADDPATH` subtypes (RFC 8050) with the LOCAL field order but then
/// treats them as received, so they are labelled `BGP4MP_AP` and show the local address
/// and AS where the peer's belong.
fn shown_as_local(msg: &Bgp4mpMessage) -> bool {
    msg.local && !msg.add_path
}

/// The address and AS bgpdump shows in the peer fields (see [`shown_as_local`]).
fn shown_peer(msg: &Bgp4mpMessage) -> (IpAddr, u32) {
    if msg.local && msg.add_path {
        (msg.local_ip, msg.local_as)
    } else {
        (msg.peer_ip, msg.peer_as)
    }
}

/// The line name for a BGP4MP message record.
fn message_format(header: &MrtHeader, msg: &Bgp4mpMessage) -> &'static [u8] {
    let et = header.mrt_type == mrt_type::BGP4MP_ET;
    match (et, shown_as_local(msg), msg.add_path) {
        (false, false, false) => b"BGP4MP",
        (false, false, true) => b"BGP4MP_AP",
        (false, true, false) => b"BGP4MP_LOCAL",
        (false, true, true) => b"BGP4MP_LOCAL_AP",
        (true, false, false) => b"BGP4MP_ET",
        (true, false, true) => b"BGP4MP_ET_AP",
        (true, true, false) => b"BGP4MP_ET_LOCAL",
        (true, true, true) => b"BGP4MP_ET_LOCAL_AP",
    }
}

/// What every line of one BGP4MP UPDATE starts with.
struct MessageLines<'a> {
    header: &'a MrtHeader,
    msg: &'a Bgp4mpMessage,
    attrs: &'a PathAttributes,
}

impl MessageLines<'_> {
    /// `FORMAT|time|kind|peer|peer_as|`
    fn start(&self, out: &mut Vec<u8>, kind: &[u8], v6_withdrawal: bool) {
        out.extend_from_slice(message_format(self.header, self.msg));
        out.push(b'|');
        push_time(out, self.header);
        out.push(b'|');
        out.extend_from_slice(kind);
        out.push(b'|');
        let (peer_ip, peer_as) = shown_peer(self.msg);
        match peer_ip {
            // bgpdump quirk: IPv6 withdrawals in a locally sent message from an IPv4
            // session print the peer with the IPv6 formatter.
            IpAddr::V4(a) if v6_withdrawal && shown_as_local(self.msg) => {
                push_ipv6(out, v4_as_v6(a))
            }
            ip => push_ip(out, ip),
        }
        out.push(b'|');
        push_u32(out, peer_as);
        out.push(b'|');
    }

    fn withdrawal(&self, out: &mut Vec<u8>, nlri: &Nlri) {
        self.start(out, b"W", nlri.prefix.addr().is_ipv6());
        push_prefix(out, nlri.prefix.trunc());
        if self.msg.add_path {
            out.push(b'|');
            push_u32(out, nlri.path_id.unwrap_or(0));
        }
        out.push(b'\n');
    }

    fn prefix_and_path_id(&self, out: &mut Vec<u8>, nlri: &Nlri) {
        push_prefix(out, nlri.prefix.trunc());
        out.push(b'|');
        if self.msg.add_path {
            push_u32(out, nlri.path_id.unwrap_or(0));
            out.push(b'|');
        }
    }

    /// An IPv4 prefix of the NLRI field: next hop from NEXT_HOP.
    fn announcement(&self, out: &mut Vec<u8>, nlri: &Nlri) {
        self.start(out, b"A", false);
        self.prefix_and_path_id(out, nlri);
        push_as_path_field(out, self.attrs);
        push_origin_field(out, self.attrs);
        push_ipv4(out, next_hop_v4(self.attrs));
        out.push(b'|');
        push_pref_med(out, self.attrs, false);
        push_tail(out, self.attrs);
    }

    /// A prefix of MP_REACH_NLRI.
    fn mp_announcement(&self, out: &mut Vec<u8>, nlri: &Nlri, next_hop: &MpNextHop, afi: Afi) {
        self.start(out, b"A", false);
        self.prefix_and_path_id(out, nlri);
        let push_next_hop = |out: &mut Vec<u8>| {
            match next_hop {
                MpNextHop::V4(a) => push_ipv4(out, *a),
                MpNextHop::V6 { global, .. } => push_ipv6(out, *global),
                MpNextHop::Opaque(_) => {}
            }
            out.push(b'|');
        };
        // bgpdump quirk: with a next hop it cannot read, the next hop, local_pref and med
        // fields are left out, and for IPv6 the AS path and origin too.
        let readable = !matches!(next_hop, MpNextHop::Opaque(_));
        if afi == Afi::IPV4 {
            push_as_path_field(out, self.attrs);
            push_origin_field(out, self.attrs);
            if readable {
                push_next_hop(out);
                push_pref_med(out, self.attrs, true);
            }
        } else if readable {
            push_as_path_field(out, self.attrs);
            push_origin_field(out, self.attrs);
            push_next_hop(out);
            push_pref_med(out, self.attrs, false);
        }
        push_tail(out, self.attrs);
    }
}

/// bgpdump prints MP routes of IPv4/IPv6 unicast, multicast and the old SAFI 3
/// (unicast+multicast); other families are ignored.
fn printable_mp_family(family: Family) -> bool {
    (family.afi == Afi::IPV4 || family.afi == Afi::IPV6)
        && (family.safi == Safi::UNICAST || family.safi == Safi::MULTICAST || family.safi.0 == 3)
}

/// RFC 6396 sections 4.4.2, 4.4.3, 4.4.5, 4.4.6; RFC 8050 section 3.
fn format_message(
    header: &MrtHeader,
    msg: &Bgp4mpMessage,
    out: &mut Vec<u8>,
) -> Result<(), Skipped> {
    // Only UPDATEs produce -m output.
    if msg.message_type() != Some(bgp_proto::message_type::UPDATE) {
        return Ok(());
    }
    let mut update: Update = decode::message_update(msg).map_err(|e| {
        Skipped(format!(
            "UPDATE from {} AS{}: {e}",
            msg.peer_ip, msg.peer_as
        ))
    })?;
    if let Some(sections) = decode::update_sections(&msg.message) {
        show_discarded_aggregation(
            &mut update.attributes,
            sections.attributes,
            msg.four_octet_as,
        );
    }
    let lines = MessageLines {
        header,
        msg,
        attrs: &update.attributes,
    };
    for nlri in &update.withdrawn {
        lines.withdrawal(out, nlri);
    }
    let mut problems = Vec::new();
    if let Some(mp) = update
        .mp_unreach
        .as_ref()
        .filter(|mp| printable_mp_family(mp.family))
    {
        match decode::mp_prefixes(&mp.nlri, mp.family, msg.add_path) {
            Ok(list) => list.iter().for_each(|n| lines.withdrawal(out, n)),
            Err(e) => problems.push(format!("MP_UNREACH_NLRI: {e}")),
        }
    }
    for nlri in &update.nlri {
        lines.announcement(out, nlri);
    }
    if let Some(mp) = update
        .mp_reach
        .as_ref()
        .filter(|mp| printable_mp_family(mp.family))
    {
        let MpReach {
            family,
            next_hop,
            nlri,
        } = mp;
        let next_hop = readable_next_hop(next_hop);
        match decode::mp_prefixes(nlri, *family, msg.add_path) {
            Ok(list) => list
                .iter()
                .for_each(|n| lines.mp_announcement(out, n, &next_hop, family.afi)),
            Err(e) => problems.push(format!("MP_REACH_NLRI: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Skipped(problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::record::{Peer, RibEntry};

    fn header(mrt_type: u16, microseconds: Option<u32>) -> MrtHeader {
        MrtHeader {
            timestamp: 1_700_000_000,
            mrt_type,
            subtype: 0,
            length: 0,
            microseconds,
        }
    }

    #[test]
    fn time_has_six_digit_microseconds_for_extended_timestamps() {
        let mut out = Vec::new();
        push_time(&mut out, &header(mrt_type::BGP4MP_ET, Some(42)));
        out.push(b' ');
        push_time(&mut out, &header(mrt_type::BGP4MP_ET, Some(999_999)));
        out.push(b' ');
        push_time(&mut out, &header(mrt_type::BGP4MP, None));
        assert_eq!(out, b"1700000000.000042 1700000000.999999 1700000000");
    }

    #[test]
    fn opaque_next_hops_are_read_by_length() {
        let opaque = |b: &[u8]| MpNextHop::Opaque(Bytes::copy_from_slice(b));
        assert_eq!(
            readable_next_hop(&opaque(&[192, 0, 2, 1])),
            MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1))
        );
        let mut v6 = [0u8; 32];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[16] = 0xfe;
        v6[17] = 0x80;
        for nh in [&v6[..16], &v6[..]] {
            let MpNextHop::V6 { global, .. } = readable_next_hop(&opaque(nh)) else {
                panic!("not IPv6");
            };
            assert_eq!(global, "2001::".parse::<Ipv6Addr>().unwrap());
        }
        assert_eq!(readable_next_hop(&opaque(&[0; 12])), opaque(&[0; 12]));
    }

    fn rib_with(peer_index: u16) -> MrtRecord {
        MrtRecord {
            header: header(mrt_type::TABLE_DUMP_V2, None),
            body: MrtBody::Rib(Rib {
                sequence: 0,
                family: Family::IPV4_UNICAST,
                add_path: false,
                generic: false,
                nlri: RibNlri::Prefix("192.0.2.0/24".parse().unwrap()),
                path_id: None,
                entries: vec![RibEntry {
                    peer_index,
                    originated_time: 0,
                    path_id: None,
                    // ORIGIN IGP, AS_PATH 65000, NEXT_HOP 192.0.2.1
                    attributes: Bytes::from_static(&[
                        0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe8, 0x40, 3, 4, 192, 0, 2, 1,
                    ]),
                }],
            }),
        }
    }

    fn peer_table() -> MrtRecord {
        MrtRecord {
            header: header(mrt_type::TABLE_DUMP_V2, None),
            body: MrtBody::PeerIndexTable(PeerIndexTable {
                collector_bgp_id: Ipv4Addr::UNSPECIFIED,
                view_name: String::new(),
                peers: vec![Peer {
                    bgp_id: Ipv4Addr::new(192, 0, 2, 1),
                    ip: "192.0.2.1".parse().unwrap(),
                    asn: 65000,
                }],
            }),
        }
    }

    #[test]
    fn rib_entries_need_the_peer_index_table() {
        let mut f = Formatter::new();
        let mut out = Vec::new();
        let err = f.format_record(&rib_with(0), &mut out).unwrap_err();
        assert!(err.0.contains("before any PEER_INDEX_TABLE"), "{err}");
        assert!(out.is_empty());

        f.format_record(&peer_table(), &mut out).unwrap();
        f.format_record(&rib_with(0), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "TABLE_DUMP2|1700000000|B|192.0.2.1|65000|192.0.2.0/24|65000|IGP|192.0.2.1|0|0||NAG||\n"
        );
        // An index past the table is reported, not a panic (bgpdump aborts here).
        out.clear();
        let err = f.format_record(&rib_with(1), &mut out).unwrap_err();
        assert!(err.0.contains("peer index 1"), "{err}");
        assert!(out.is_empty());
    }

    #[test]
    fn undecodable_update_is_reported_and_prints_nothing() {
        // An UPDATE whose total path attribute length runs past the message.
        let mut message = vec![0xff; 16];
        message.extend_from_slice(&[0, 27, 2, 0, 0, 0, 200, 0x40, 1, 1, 0]);
        let record = MrtRecord {
            header: header(mrt_type::BGP4MP, None),
            body: MrtBody::Message(Bgp4mpMessage {
                peer_as: 65000,
                local_as: 65001,
                interface_index: 0,
                afi: Afi::IPV4,
                peer_ip: "192.0.2.1".parse().unwrap(),
                local_ip: "192.0.2.2".parse().unwrap(),
                four_octet_as: false,
                local: false,
                add_path: false,
                message: Bytes::from(message),
            }),
        };
        let mut out = Vec::new();
        let err = Formatter::new()
            .format_record(&record, &mut out)
            .unwrap_err();
        assert!(err.0.contains("UPDATE from 192.0.2.1 AS65000"), "{err}");
        assert!(out.is_empty());
    }
}
