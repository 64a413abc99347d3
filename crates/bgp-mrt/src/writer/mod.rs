//! MRT writer: TABLE_DUMP_V2 table dumps and BGP4MP_ET update logs (RFC 6396, RFC 8050).
//!
//! The writers stream records to any [`std::io::Write`] as they are given them and keep
//! nothing but a reusable record buffer, so a daemon can dump a table of a million routes
//! straight from its RIB without building a second copy of it:
//!
//! - [`TableDumpWriter`] writes the PEER_INDEX_TABLE first, then one RIB record per prefix
//!   from the entries the caller passes ([`RibEntryRef`]: peer index, originated time,
//!   ADD-PATH path id, the attribute block). [`encode_rib_attributes`] encodes an
//!   attribute set the way RIB entries carry it (RFC 6396 4.3.4); a caller dumping a RIB
//!   of interned attribute sets encodes each set once ([`RibAttributeCache`]).
//! - [`UpdateLogWriter`] writes BGP4MP_ET records (microsecond timestamps): every BGP
//!   message received or sent (MESSAGE_AS4 and the RFC 8050 ADD-PATH subtypes) and every
//!   session state change (STATE_CHANGE_AS4).
//! - [`CompressedWriter`] gzips or bzip2s any writer (as the reader reads them);
//!   [`MrtFile`] is a file being written, compressed or not, that appears under its final
//!   name only once complete;
//!   [`FileNamePattern`] names periodic files (`bview.%Y%m%d.%H%M.gz`) and
//!   [`Period`] says when the next one is due; [`RotatingUpdateLog`] puts the two
//!   together for an update log cut into periodic files.
//!
//! Everything written reads back through [`crate::MrtReader`] to the same values, and
//! `bgpdump -m` prints it as it prints collectors' files (tests/writer_*.rs).

mod file;
mod table_dump;
mod update_log;

pub use file::{CompressedWriter, FileNamePattern, MrtFile, Period, RotatingUpdateLog};
pub use table_dump::{RibAttributeCache, RibEntryRef, TableDumpWriter};
pub use update_log::{Bgp4mpSession, BgpState, Direction, MrtTime, UpdateLogWriter};

pub use bgp_proto::wire::encode_rib_attributes;

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The output failed.
    #[error("I/O error writing MRT: {0}")]
    Io(#[from] std::io::Error),
    /// A field does not fit its place in the record (an attribute block over 65535
    /// octets, more than 65535 peers or entries, a record over 4 GiB).
    #[error("{what} of {len} exceeds the MRT limit of {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// The caller passed something the format cannot express.
    #[error("{0}")]
    Invalid(String),
}

/// Append the common header (RFC 6396 section 2) and `body` to `out`. For `*_ET` types
/// `microseconds` is written first in the message field and counted in the length
/// (section 3).
pub(crate) fn put_record(
    out: &mut Vec<u8>,
    timestamp: u32,
    mrt_type: u16,
    subtype: u16,
    microseconds: Option<u32>,
    body: &[u8],
) -> Result<(), WriteError> {
    let len = body.len() + if microseconds.is_some() { 4 } else { 0 };
    let len = u32::try_from(len).map_err(|_| WriteError::TooLarge {
        what: "MRT record",
        len,
        max: u32::MAX as usize,
    })?;
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&mrt_type.to_be_bytes());
    out.extend_from_slice(&subtype.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    if let Some(us) = microseconds {
        out.extend_from_slice(&us.to_be_bytes());
    }
    out.extend_from_slice(body);
    Ok(())
}

/// A length that must fit a 16-bit field.
pub(crate) fn u16_len(what: &'static str, len: usize) -> Result<u16, WriteError> {
    u16::try_from(len).map_err(|_| WriteError::TooLarge {
        what,
        len,
        max: usize::from(u16::MAX),
    })
}

/// An address as MRT writes it: 4 or 16 octets.
pub(crate) fn put_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        std::net::IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}
