//! A bounded reader over a byte slice, in the manner of rustls' `codec::Reader`.
//!
//! Every read either returns exactly the bytes asked for or `None`; nothing can read past
//! the slice it was given. Nested structures (an attribute inside the attribute block, a
//! capability inside an optional parameter) are decoded by taking a sub-slice with
//! [`Reader::take`] and reading it with its own `Reader`, so a length field can never make
//! a decoder look beyond the enclosing length.

/// Cursor over a borrowed byte slice.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unconsumed bytes, without consuming them.
    pub(crate) fn peek_rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Consume exactly `n` bytes.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }

    /// Consume everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&b, tail) = self.buf.split_first()?;
        self.buf = tail;
        Some(b)
    }

    #[inline]
    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let head = self.take(N)?;
        head.try_into().ok()
    }

    #[inline]
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array::<2>().map(u16::from_be_bytes)
    }

    /// A 24-bit big-endian integer.
    pub(crate) fn u24(&mut self) -> Option<u32> {
        let [a, b, c] = self.array::<3>()?;
        Some(u32::from_be_bytes([0, a, b, c]))
    }

    #[inline]
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array::<4>().map(u32::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5]);
        assert_eq!(r.u8(), Some(1));
        assert_eq!(r.u16(), Some(0x0203));
        assert_eq!(r.u32(), None, "only two bytes left");
        assert_eq!(r.remaining(), 2, "a failed read consumes nothing");
        assert_eq!(r.take(3), None);
        assert_eq!(r.take(2), Some(&[4u8, 5][..]));
        assert!(r.is_empty());
        assert_eq!(r.u8(), None);
    }

    #[test]
    fn u24_and_rest() {
        let mut r = Reader::new(&[0x01, 0x02, 0x03, 9, 9]);
        assert_eq!(r.u24(), Some(0x010203));
        assert_eq!(r.peek_rest(), &[9, 9]);
        assert_eq!(r.rest(), &[9, 9]);
        assert!(r.is_empty());
    }
}
