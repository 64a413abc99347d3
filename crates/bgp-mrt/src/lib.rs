//! MRT (RFC 6396) reader, writer and `bgpdump -m` formatter.
//!
//! MRT is the format route collectors (RIPE RIS, RouteViews) and BGP daemons use to dump
//! routing tables and log BGP messages. This crate reads it as a stream:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! for record in bgp_mrt::open("bview.20020722.2337.gz")? {
//!     match record {
//!         Ok(record) => println!("{:?}", record.header),
//!         Err(e) => eprintln!("{e}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Supported: TABLE_DUMP (v4/v6), TABLE_DUMP_V2 (PEER_INDEX_TABLE, RIB_IPV4/IPV6 unicast
//! and multicast, RIB_GENERIC, and the RFC 8050 `*_ADDPATH` subtypes), BGP4MP and
//! BGP4MP_ET (MESSAGE, MESSAGE_AS4, MESSAGE_LOCAL, MESSAGE_AS4_LOCAL, STATE_CHANGE,
//! STATE_CHANGE_AS4 and the RFC 8050 ADD-PATH message subtypes). Files may be plain,
//! gzip or bzip2, recognised by their magic bytes.
//!
//! Records keep the BGP data they carry as raw bytes; [`decode`] turns it into `bgp_proto`
//! values with the shared wire codec, and [`bgpdump`] prints records exactly as
//! `bgpdump -m` does, which lets bgpdump's own test files serve as an external
//! oracle for both this reader and the codec.
//!
//! [`writer`] writes MRT: TABLE_DUMP_V2 table dumps fed prefix by prefix from a RIB,
//! BGP4MP_ET update logs, compressed files named and rotated by period:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::net::{IpAddr, Ipv4Addr};
//! use bgp_mrt::{Peer, PeerIndexTable, RibEntryRef, TableDumpWriter};
//!
//! let peers = PeerIndexTable {
//!     collector_bgp_id: Ipv4Addr::new(192, 0, 2, 254),
//!     view_name: String::new(),
//!     peers: vec![Peer { bgp_id: Ipv4Addr::new(10, 0, 0, 1), ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), asn: 65001 }],
//! };
//! let mut dump = TableDumpWriter::new(Vec::new(), 1_700_000_000, &peers)?;
//! let origin_igp_next_hop = [0x40, 1, 1, 0, 0x40, 3, 4, 192, 0, 2, 1];
//! let route = RibEntryRef { peer_index: 0, originated_time: 1_699_999_000, path_id: None, attributes: &origin_igp_next_hop };
//! dump.write_rib("10.1.0.0/16".parse()?, &[route])?;
//! let bytes = dump.finish()?;
//! assert_eq!(bgp_mrt::MrtReader::new(&bytes[..]).count(), 2); // PEER_INDEX_TABLE + one RIB record
//! # Ok(())
//! # }
//! ```

pub mod bgpdump;
mod cursor;
pub mod decode;
pub mod error;
pub mod reader;
pub mod record;
mod text;
pub mod writer;

pub use decode::RibAttributes;
pub use error::MrtError;
pub use reader::{open, Compression, MrtReader, DEFAULT_MAX_RECORD_LEN};
pub use record::{
    Bgp4mpMessage, MrtBody, MrtHeader, MrtRecord, Peer, PeerIndexTable, Rib, RibEntry, RibNlri,
    StateChange, TableDump,
};
pub use writer::{
    Bgp4mpSession, BgpState, CompressedWriter, Direction, FileNamePattern, MrtFile, MrtTime,
    Period, RibAttributeCache, RibEntryRef, RotatingUpdateLog, TableDumpWriter, UpdateLogWriter,
    WriteError,
};
