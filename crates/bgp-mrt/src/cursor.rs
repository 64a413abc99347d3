//! A bounds-checked reader over one record body.
//!
//! Every accessor checks the remaining length first and returns an error rather than
//! reading past the end, so a corrupt length field can never cause a panic or an
//! out-of-bounds read. Slices are handed out as [`Bytes`] that share the record buffer.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

/// Why a field could not be read: a short description used in `MrtError::Malformed`.
pub(crate) type ParseError = String;

pub(crate) struct Cursor {
    buf: Bytes,
    pos: usize,
}

impl Cursor {
    pub(crate) fn new(buf: Bytes) -> Cursor {
        Cursor { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next byte without consuming it.
    pub(crate) fn peek_u8(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn need(&self, n: usize, what: &str) -> Result<(), ParseError> {
        if self.remaining() < n {
            Err(format!(
                "truncated {what}: need {n} bytes, {} left",
                self.remaining()
            ))
        } else {
            Ok(())
        }
    }

    /// Consume `n` bytes as a shared slice of the record buffer.
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<Bytes, ParseError> {
        self.need(n, what)?;
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// Consume everything left.
    pub(crate) fn rest(&mut self) -> Bytes {
        let out = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        out
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ParseError> {
        self.need(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, ParseError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, ParseError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, ParseError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// A 2- or 4-octet AS number.
    pub(crate) fn asn(&mut self, four_octet: bool, what: &str) -> Result<u32, ParseError> {
        if four_octet {
            self.u32(what)
        } else {
            self.u16(what).map(u32::from)
        }
    }

    pub(crate) fn ipv4(&mut self, what: &str) -> Result<Ipv4Addr, ParseError> {
        Ok(Ipv4Addr::from(self.array::<4>(what)?))
    }

    pub(crate) fn ipv6(&mut self, what: &str) -> Result<Ipv6Addr, ParseError> {
        Ok(Ipv6Addr::from(self.array::<16>(what)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_in_order_and_refuses_to_overrun() {
        let mut c = Cursor::new(Bytes::from_static(&[0, 1, 0, 0, 0, 2, 9]));
        assert_eq!(c.u16("a"), Ok(1));
        assert_eq!(c.u32("b"), Ok(2));
        assert_eq!(c.peek_u8(), Some(9));
        assert!(c.u16("c").unwrap_err().contains("truncated c"));
        // A failed read consumes nothing.
        assert_eq!(c.remaining(), 1);
        assert_eq!(c.take(1, "d").map(|b| b.to_vec()), Ok(vec![9]));
        assert!(c.is_empty());
        assert_eq!(c.peek_u8(), None);
    }
}
