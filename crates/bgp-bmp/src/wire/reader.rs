//! A bounded reader over one BMP message.
//!
//! Every read returns exactly what was asked for or a [`DecodeError::Truncated`] naming the
//! field; slices are [`Bytes`] sharing the message buffer, so BGP PDUs carried inside are
//! kept without copying.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

use super::error::DecodeError;

pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn peek(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes, DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated {
                what,
                need: n,
                left: self.buf.len(),
            });
        }
        Ok(self.buf.split_to(n))
    }

    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let b = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&b);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.array(what).map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.array(what).map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.array(what).map(u64::from_be_bytes)
    }

    pub(crate) fn ipv4(&mut self, what: &'static str) -> Result<Ipv4Addr, DecodeError> {
        self.array::<4>(what).map(Ipv4Addr::from)
    }

    pub(crate) fn ipv6(&mut self, what: &'static str) -> Result<Ipv6Addr, DecodeError> {
        self.array::<16>(what).map(Ipv6Addr::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded_and_a_failed_read_consumes_nothing() {
        let mut r = Reader::new(Bytes::from_static(&[0, 1, 0, 0, 0, 2, 9]));
        assert_eq!(r.u16("a"), Ok(1));
        assert_eq!(r.u32("b"), Ok(2));
        assert_eq!(
            r.u16("c"),
            Err(DecodeError::Truncated {
                what: "c",
                need: 2,
                left: 1
            })
        );
        assert_eq!(r.peek(), &[9]);
        assert_eq!(r.remaining(), 1);
        assert_eq!(r.rest(), Bytes::from_static(&[9]));
        assert!(r.is_empty());
    }
}
