//! The BMP wire codec (RFC 7854, with RFC 8671 Adj-RIB-Out and RFC 9069 Loc-RIB fields).
//!
//! - [`frame_len`] delimits messages in a receive buffer by the common header;
//!   [`decode_message`] turns one frame into a [`BmpMessage`]; [`encode_message`] turns
//!   any [`BmpMessage`] back into bytes.
//! - The BGP messages BMP carries (the UPDATE of Route Monitoring, the OPENs of Peer Up,
//!   the NOTIFICATION of Peer Down) stay [`bytes::Bytes`] sharing the frame; the codec only
//!   checks each is one well-framed BGP message of the right type, and the `bgp_proto`
//!   codec decodes them on demand ([`RouteMonitoring::decode_update`] under the context
//!   [`PeerUp::update_context`] derives from the OPENs and the per-peer flags).
//! - Decoding reads through a bounded reader: it never reads past a length field, never
//!   reserves more than the frame could hold, never panics (property-tested with arbitrary
//!   bytes, and fuzzed). Encoding refuses values the wire cannot carry and then leaves its
//!   output untouched.
//!
//! One file per message family: `header` (common header), `peer` (per-peer header),
//! `tlv` (information and mirroring TLVs), `peer_up`, `peer_down`, `stats`, `message`
//! (the rest and the dispatch), `pdu` (embedded BGP messages).

mod error;
mod header;
mod message;
mod pdu;
mod peer;
mod peer_down;
mod peer_up;
mod reader;
mod stats;
mod tlv;

pub use error::{DecodeError, EncodeError};
pub use header::{frame_len, message_type, COMMON_HEADER_LEN, DEFAULT_MAX_MESSAGE_LEN, VERSION};
pub use message::{
    decode_message, encode_message, BmpMessage, Initiation, RouteMirroring, RouteMonitoring,
    Termination,
};
pub use peer::{PeerFlags, PeerHeader, PeerKey, PeerType, PER_PEER_HEADER_LEN};
pub use peer_down::{peer_down_reason, PeerDown, PeerDownReason};
pub use peer_up::PeerUp;
pub use stats::{stat_type, Stat, StatValue, StatisticsReport};
pub use tlv::{information_type, mirroring_type, termination_type, TerminationReason, Tlv};
