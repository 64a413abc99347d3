//! Errors the MRT reader reports.
//!
//! Two kinds matter to a caller. A *framing* error (I/O failure, a truncated header or body,
//! a record length over the cap) leaves the stream position unknown, so the reader stops
//! after reporting it. A *record* error ([`MrtError::Malformed`]) concerns one well-framed
//! record whose body does not parse; the reader has already consumed exactly that record and
//! carries on with the next one.

/// Something went wrong reading or parsing an MRT stream.
#[derive(Debug, thiserror::Error)]
pub enum MrtError {
    /// The underlying reader (or decompressor) failed.
    #[error("I/O error reading MRT stream: {0}")]
    Io(#[from] std::io::Error),

    /// The stream ended inside a common header.
    #[error("truncated MRT header: {got} of {expected} bytes")]
    TruncatedHeader { got: usize, expected: usize },

    /// The stream ended inside a record body.
    #[error(
        "truncated MRT record (type {mrt_type}, subtype {subtype}): {got} of {expected} bytes"
    )]
    TruncatedRecord {
        mrt_type: u16,
        subtype: u16,
        got: u64,
        expected: u64,
    },

    /// The header's length field is larger than the configured cap: treated as corruption.
    #[error("MRT record length {length} exceeds the limit of {limit} bytes")]
    RecordTooLong { length: u32, limit: u32 },

    /// A well-framed record whose body does not parse.
    #[error("malformed MRT record (type {mrt_type}, subtype {subtype}): {reason}")]
    Malformed {
        mrt_type: u16,
        subtype: u16,
        reason: String,
    },
}

impl MrtError {
    /// True when the stream cannot be read further after this error (framing lost).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, MrtError::Malformed { .. })
    }
}
