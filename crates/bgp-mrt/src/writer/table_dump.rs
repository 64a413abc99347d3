//! TABLE_DUMP_V2 table dumps (RFC 6396 4.3, RFC 8050 4): a PEER_INDEX_TABLE, then one RIB
//! record per prefix.
//!
//! The caller walks its RIB prefix by prefix and hands each prefix's routes over as
//! [`RibEntryRef`]s borrowing the encoded attribute block; the writer frames them into an
//! output buffer that it flushes every 64 KiB, so memory stays flat whatever the table
//! size. A prefix whose routes mix ADD-PATH and plain entries (peers with and without
//! ADD-PATH) gives two records, a `RIB_*_UNICAST` one for the entries without a path id
//! and a `RIB_*_UNICAST_ADDPATH` one for those with one: RFC 8050 4.1 puts the path id in
//! every entry of the latter, so the two kinds cannot share a record. BIRD writes its
//! dumps the same way.

use std::collections::HashMap;
use std::hash::Hash;
use std::io::Write;

use bgp_proto::{Family, MpNextHop, PathAttributes};
use bytes::{Bytes, BytesMut};
use ipnet::IpNet;

use super::{put_ip, u16_len, WriteError};
use crate::record::{mrt_type, table_dump_v2_subtype as subtype, PeerIndexTable};

/// Output is handed to the writer in pieces of about this size.
const FLUSH_AT: usize = 64 * 1024;

/// One route of a RIB record (RFC 6396 4.3.4, RFC 8050 4.1), borrowing its attributes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RibEntryRef<'a> {
    /// Index of the peer in the PEER_INDEX_TABLE the writer was created with.
    pub peer_index: u16,
    /// When the route was received (seconds since the Unix epoch).
    pub originated_time: u32,
    /// ADD-PATH path identifier: `Some` puts the entry in an `*_ADDPATH` record.
    pub path_id: Option<u32>,
    /// The attribute block as RIB entries carry it: 4-octet AS numbers, the abbreviated
    /// MP_REACH_NLRI for a next hop other than NEXT_HOP ([`super::encode_rib_attributes`]).
    pub attributes: &'a [u8],
}

/// Writes one table dump: the PEER_INDEX_TABLE at creation, then [`write_rib`] per prefix.
///
/// Every record carries the dump's timestamp (RFC 6396 4.3: the time the dump was
/// taken); sequence numbers count the RIB records from 0 and wrap at 2^32.
///
/// [`write_rib`]: TableDumpWriter::write_rib
#[derive(Debug)]
pub struct TableDumpWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    timestamp: u32,
    peer_count: usize,
    sequence: u32,
    records: u64,
    entries: u64,
}

impl<W: Write> TableDumpWriter<W> {
    /// Start a dump taken at `timestamp` (seconds since the Unix epoch) by the collector
    /// and peers of `table` (RFC 6396 4.3.1); the PEER_INDEX_TABLE is written at once.
    pub fn new(out: W, timestamp: u32, table: &PeerIndexTable) -> Result<Self, WriteError> {
        let mut w = TableDumpWriter {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            timestamp,
            peer_count: table.peers.len(),
            sequence: 0,
            records: 0,
            entries: 0,
        };
        let view = table.view_name.as_bytes();
        let view_len = u16_len("view name", view.len())?;
        let peer_count = u16_len("peer count", table.peers.len())?;
        let start = w.begin(subtype::PEER_INDEX_TABLE);
        w.buf.extend_from_slice(&table.collector_bgp_id.octets());
        w.buf.extend_from_slice(&view_len.to_be_bytes());
        w.buf.extend_from_slice(view);
        w.buf.extend_from_slice(&peer_count.to_be_bytes());
        for peer in &table.peers {
            // Peer type bit 0: IPv6 address; bit 1: 4-octet AS, which we always use.
            let v6 = if peer.ip.is_ipv6() { 0x01 } else { 0 };
            w.buf.push(v6 | 0x02);
            w.buf.extend_from_slice(&peer.bgp_id.octets());
            put_ip(&mut w.buf, peer.ip);
            w.buf.extend_from_slice(&peer.asn.to_be_bytes());
        }
        w.end(start)?;
        w.flush_if_full()?;
        Ok(w)
    }

    /// Write the routes of `prefix` (IPv4 or IPv6 unicast): one record for the entries
    /// without a path id, one `*_ADDPATH` record for those with one; nothing when
    /// `entries` is empty. Host bits of `prefix` are not written. On error nothing of this
    /// prefix is written and the dump can go on.
    pub fn write_rib(
        &mut self,
        prefix: IpNet,
        entries: &[RibEntryRef<'_>],
    ) -> Result<(), WriteError> {
        if let Some(bad) = entries
            .iter()
            .find(|e| usize::from(e.peer_index) >= self.peer_count)
        {
            return Err(WriteError::Invalid(format!(
                "{prefix}: peer index {} outside the PEER_INDEX_TABLE of {} peers",
                bad.peer_index, self.peer_count
            )));
        }
        let (plain, add_path) = match prefix {
            IpNet::V4(_) => (subtype::RIB_IPV4_UNICAST, subtype::RIB_IPV4_UNICAST_ADDPATH),
            IpNet::V6(_) => (subtype::RIB_IPV6_UNICAST, subtype::RIB_IPV6_UNICAST_ADDPATH),
        };
        let mark = self.buf.len();
        let (sequence, records) = (self.sequence, self.records);
        let written = self
            .rib_record(prefix, plain, entries, false)
            .and_then(|()| self.rib_record(prefix, add_path, entries, true));
        if let Err(e) = written {
            self.buf.truncate(mark);
            (self.sequence, self.records) = (sequence, records);
            return Err(e);
        }
        self.entries += entries.len() as u64;
        self.flush_if_full()
    }

    /// One RIB record holding the entries with (`with_path_id`) or without a path id.
    fn rib_record(
        &mut self,
        prefix: IpNet,
        subtype: u16,
        entries: &[RibEntryRef<'_>],
        with_path_id: bool,
    ) -> Result<(), WriteError> {
        let count = entries
            .iter()
            .filter(|e| e.path_id.is_some() == with_path_id)
            .count();
        if count == 0 {
            return Ok(());
        }
        let count = u16_len("RIB entry count", count)?;
        let start = self.begin(subtype);
        self.buf.extend_from_slice(&self.sequence.to_be_bytes());
        put_prefix(&mut self.buf, prefix);
        self.buf.extend_from_slice(&count.to_be_bytes());
        for e in entries
            .iter()
            .filter(|e| e.path_id.is_some() == with_path_id)
        {
            self.buf.extend_from_slice(&e.peer_index.to_be_bytes());
            self.buf.extend_from_slice(&e.originated_time.to_be_bytes());
            if let Some(id) = e.path_id {
                self.buf.extend_from_slice(&id.to_be_bytes());
            }
            let len = u16_len("RIB entry attributes", e.attributes.len())?;
            self.buf.extend_from_slice(&len.to_be_bytes());
            self.buf.extend_from_slice(e.attributes);
        }
        self.end(start)?;
        self.sequence = self.sequence.wrapping_add(1);
        self.records += 1;
        Ok(())
    }

    /// Start a record in the buffer: header with a length to patch. Returns its offset.
    fn begin(&mut self, subtype: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&self.timestamp.to_be_bytes());
        self.buf
            .extend_from_slice(&mrt_type::TABLE_DUMP_V2.to_be_bytes());
        self.buf.extend_from_slice(&subtype.to_be_bytes());
        self.buf.extend_from_slice(&[0; 4]);
        start
    }

    /// Patch the length of the record started at `start`.
    fn end(&mut self, start: usize) -> Result<(), WriteError> {
        let len = self.buf.len() - start - 12;
        let len = u32::try_from(len).map_err(|_| WriteError::TooLarge {
            what: "MRT record",
            len,
            max: u32::MAX as usize,
        })?;
        if let Some(field) = self.buf.get_mut(start + 8..start + 12) {
            field.copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }

    fn flush_if_full(&mut self) -> Result<(), WriteError> {
        if self.buf.len() >= FLUSH_AT {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Stamp the records written from now on with `timestamp` instead of the dump's
    /// start time (a long dump may carry the time each record was written, as the RIS
    /// collectors' dumps of 2002 did).
    pub fn set_timestamp(&mut self, timestamp: u32) {
        self.timestamp = timestamp;
    }

    /// RIB records written so far (the PEER_INDEX_TABLE not counted).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Routes (RIB entries) written so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Write out what is buffered and flush the output, then hand it back (to finish a
    /// compressed stream or rename a file: see [`super::MrtFile`]).
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A prefix in NLRI form (RFC 4271 4.3): length in bits, then the octets that hold them,
/// host bits cleared.
fn put_prefix(out: &mut Vec<u8>, prefix: IpNet) {
    let len = prefix.prefix_len();
    out.push(len);
    let octets = usize::from(len).div_ceil(8);
    match prefix.trunc() {
        IpNet::V4(p) => out.extend_from_slice(p.addr().octets().get(..octets).unwrap_or(&[])),
        IpNet::V6(p) => out.extend_from_slice(p.addr().octets().get(..octets).unwrap_or(&[])),
    }
}

/// Encoded RIB-entry attribute blocks by the caller's handle for an attribute set.
///
/// A RIB holds far fewer attribute sets than routes (18k sets for the 113k routes of the
/// 2002 RIS table), so a dump encodes each set once: the caller keys the cache by its
/// own interned handle (an `Arc` pointer, an arena index) and gets the bytes for
/// [`RibEntryRef::attributes`]. The key includes the family, since an IPv4 route carries
/// its next hop in NEXT_HOP and an IPv6 one in MP_REACH_NLRI. Drop the cache with the dump.
#[derive(Debug)]
pub struct RibAttributeCache<K> {
    blocks: HashMap<(K, Family), Bytes>,
    scratch: BytesMut,
}

impl<K: Hash + Eq> Default for RibAttributeCache<K> {
    fn default() -> Self {
        RibAttributeCache {
            blocks: HashMap::new(),
            scratch: BytesMut::new(),
        }
    }
}

impl<K: Hash + Eq> RibAttributeCache<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The encoded block for attribute set `key` of a `family` route, encoding `attrs`
    /// with `next_hop` ([`super::encode_rib_attributes`]) the first time `key` is seen.
    /// The block is shared, not copied, so the entries of a prefix can hold several.
    pub fn get_or_encode(
        &mut self,
        key: K,
        family: Family,
        attrs: &PathAttributes,
        next_hop: Option<&MpNextHop>,
    ) -> Result<Bytes, WriteError> {
        use std::collections::hash_map::Entry;
        match self.blocks.entry((key, family)) {
            Entry::Occupied(e) => Ok(e.get().clone()),
            Entry::Vacant(e) => {
                self.scratch.clear();
                super::encode_rib_attributes(family, attrs, next_hop, &mut self.scratch)
                    .map_err(|err| WriteError::Invalid(format!("attributes: {err}")))?;
                Ok(e.insert(self.scratch.split().freeze()).clone())
            }
        }
    }

    /// Distinct attribute sets encoded so far.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}
