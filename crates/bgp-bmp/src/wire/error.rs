//! Errors of the BMP codec.
//!
//! Decoding fails with a [`DecodeError`] naming what did not fit; nothing is read past a
//! length field and nothing panics. Encoding fails with an [`EncodeError`] when a value
//! cannot be put on the wire (a length over its field, a BGP PDU that is not one, a peer
//! flag that contradicts the address).

/// A BMP message could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// RFC 7854 4.1: only version 3 is defined.
    #[error("BMP version {0}, expected 3")]
    Version(u8),
    /// The common header's length is below the header itself or above the limit.
    #[error("BMP message length {len} outside {min}..={max}")]
    Length { len: u32, min: u32, max: u32 },
    /// A message type this codec does not know.
    #[error("unknown BMP message type {0}")]
    UnknownType(u8),
    /// A field runs past the end of the message.
    #[error("truncated {what}: need {need} octets, {left} left")]
    Truncated {
        what: &'static str,
        need: usize,
        left: usize,
    },
    /// Well framed, but a field holds what it may not.
    #[error("{0}")]
    Malformed(String),
}

/// A BMP message could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A length does not fit its field.
    #[error("{what} of {len} octets exceeds the limit of {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// The value cannot be encoded as it is.
    #[error("{0}")]
    Invalid(String),
}
