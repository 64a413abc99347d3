//! BGP Monitoring Protocol (RFC 7854), sans-IO.
//!
//! BMP lets a router stream what its BGP sessions do to a monitoring station (a
//! "collector" such as pmacct's `pmbmpd` or OpenBMP): sessions coming up and going down,
//! every route received before and after import policy, periodic statistics. The router
//! connects to the station and talks; the station never answers.
//!
//! Like `bgp_proto`, nothing here opens a socket or reads a clock:
//!
//! - [`wire`]: the message codec, every RFC 7854 message both ways.
//! - [`client`]: the router's side of one station connection as a state machine: the
//!   caller reports transport events and the current [`std::time::Instant`], feeds peer
//!   and route events, and drains bytes to write, when to call back and what to do next.
//!   It sends Initiation first, replays the peers that are up on every (re)connection and
//!   asks the caller to replay their routes, reconnects with exponential backoff, and
//!   bounds its queue: on overflow it drops the queue and resynchronises instead of
//!   growing.
//!
//! ```
//! use bgp_bmp::wire::{decode_message, encode_message, BmpMessage, Initiation};
//!
//! let mut out = bytes::BytesMut::new();
//! let init = BmpMessage::Initiation(Initiation::new("node-1", "bgpd 0.1"));
//! encode_message(&init, &mut out).unwrap();
//! // Version 3, length 28 (6 + sysDescr TLV 4 + 8 + sysName TLV 4 + 6), type Initiation.
//! assert_eq!(&out[..6], &[3, 0, 0, 0, 28, 4]);
//! assert_eq!(decode_message(out.freeze()).unwrap(), init);
//! ```

pub mod client;
pub mod wire;
