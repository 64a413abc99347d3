//! The BGP-4 wire codec: messages, capabilities and path attributes.
//!
//! Decoding reads through a bounded [`reader`](self) over the input slice, so it never
//! reads past a length field and never allocates more than the input could hold; it
//! never panics on any input (property-tested and fuzzed). Errors are values shaped by
//! what the receiver must do (RFC 7606): a [`NotificationError`] resets the session,
//! while [`DecodedUpdate`] carries treat-as-withdraw and attribute-discard outcomes.
//! Encoding writes into a `BytesMut`. [`types`] holds the data model every other crate
//! shares.
//!
//! One file per message family, in the manner of rustls' `msgs/`: [`header`](self) frames
//! the stream, `open` + `capability`, `update` + `attributes` + `nlri`, `notification`,
//! `route_refresh`, and `message` ties them together.

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

pub use attributes::{decode_path_attributes, DecodedAttributes, MpReachForm};
pub use error::{EncodeError, NotificationError};
pub use header::{frame_len, MARKER};
pub use message::{decode_message, encode_message, Inbound};
pub use notification::{code_name, subcode_name, MAX_SHUTDOWN_MESSAGE_LEN};
pub use update::{
    decode_update, encode_announcements, encode_end_of_rib, encode_withdrawals, DecodedUpdate,
};
