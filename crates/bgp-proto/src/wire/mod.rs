//! The BGP-4 wire codec: messages, capabilities and path attributes.
//!
//! Decoding is bounded by the lengths on the wire and never panics; encoding writes into
//! a `BytesMut`. [`types`] holds the data model every other crate shares.

pub mod error;
pub mod types;

pub use error::{EncodeError, NotificationError};
