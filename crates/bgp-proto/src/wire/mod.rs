//! The BGP-4 wire codec: messages, capabilities and path attributes.
//!
//! - [`frame_len`] delimits messages in a receive buffer and checks the header
//!   (RFC 4271 4.1, 6.1); [`decode_message`] turns one frame into an [`Inbound`];
//!   [`encode_message`] turns any [`Message`](types::Message) back into bytes.
//! - UPDATEs decode to a [`DecodedUpdate`]: the update plus its RFC 7606 outcome
//!   (treat-as-withdraw, attribute-discard); session resets are the `Err`, a
//!   [`NotificationError`] carrying the exact NOTIFICATION to send.
//! - [`encode_announcements`], [`encode_withdrawals`] and [`encode_end_of_rib`] pack
//!   routes for the Adj-RIB-Out; [`decode_path_attributes`] also serves the MRT reader,
//!   and [`encode_rib_attributes`] the MRT writer.
//!
//! Decoding reads through a bounded reader over the input slice, so it never reads past a
//! length field, never allocates more than the input could hold, and never panics on any
//! input (property-tested with arbitrary bytes). The per-context switches (4-octet AS,
//! ADD-PATH, extended messages) come from [`CodecContext`](types::CodecContext).
//!
//! One file per message family, in the manner of rustls' `msgs/`: `header` (framing),
//! `open` + `capability`, `update` + `attributes` + `nlri`, `notification`,
//! `route_refresh`, and `message` tying them together; [`types`] holds the data model every
//! other crate shares.
//!
//! Decisions worth knowing:
//! - Trailing host bits of a prefix are cleared on decode (`10.1.2.3/16` is
//!   `10.1.0.0/16`), as bgpdump prints them; prefixes are keys, so one route, one key.
//! - OPEN: version, hold time 1-2 and BGP Identifier 0 are rejected here (2/1, 2/6,
//!   2/3); optional parameters other than capabilities are returned in
//!   `Open::other_params` for the session to answer 2/4. A known capability whose length
//!   disagrees with its layout is 2/0 with the capability as data.
//! - An unknown attribute without the Optional bit is treat-as-withdraw (as BIRD does);
//!   unknown optional transitive attributes are passed on with Partial set, unknown
//!   optional non-transitive ones are kept in `PathAttributes::unknown` but never encoded.
//! - An IPv4 next hop in MP_REACH for IPv6 NLRI is accepted (ExaBGP sends it).

mod attributes;
mod capability;
pub mod error;
mod header;
mod message;
mod nlri;
mod notification;
mod open;
mod reader;
mod route_refresh;
pub mod types;
mod update;

pub use attributes::{
    decode_path_attributes, encode_rib_attributes, DecodedAttributes, MpReachForm,
};
pub use error::{EncodeError, NotificationError};
pub use header::{frame_len, MARKER};
pub use message::{decode_message, encode_message, Inbound};
pub use notification::{code_name, subcode_name, MAX_SHUTDOWN_MESSAGE_LEN};
pub use update::{
    decode_update, encode_announcements, encode_end_of_rib, encode_withdrawals, DecodedUpdate,
};
