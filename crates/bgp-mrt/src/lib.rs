//! MRT (RFC 6396) reader and `bgpdump -m` formatter.
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

pub mod bgpdump;
mod cursor;
pub mod decode;
pub mod error;
pub mod reader;
pub mod record;
mod text;

pub use decode::RibAttributes;
pub use error::MrtError;
pub use reader::{open, Compression, MrtReader, DEFAULT_MAX_RECORD_LEN};
pub use record::{
    Bgp4mpMessage, MrtBody, MrtHeader, MrtRecord, Peer, PeerIndexTable, Rib, RibEntry, RibNlri,
    StateChange, TableDump,
};
