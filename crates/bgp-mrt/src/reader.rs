//! Streaming MRT reader: one [`MrtRecord`] at a time from any [`Read`].
//!
//! The reader never trusts a length field with memory: a record longer than
//! [`MrtReader::max_record_len`] is rejected before anything is allocated, and the body is
//! read with `Read::take`, so the buffer only grows as bytes actually arrive. A truncated
//! or corrupt stream yields an error value; nothing panics.
//!
//! [`open`] and [`MrtReader::decompressed`] recognise gzip (RFC 1952, including
//! multi-member files as written by concatenating dumps) and bzip2 by their magic bytes,
//! not by file name.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use bytes::Bytes;

use crate::error::MrtError;
use crate::record::{mrt_type, MrtHeader, MrtRecord};

/// Common header size (RFC 6396 section 2).
pub const HEADER_LEN: usize = 12;

/// Default cap on a record's length field: 16 MiB. The largest records in practice are
/// TABLE_DUMP_V2 RIB entries for a prefix seen by every peer of a collector, a few hundred
/// kilobytes; anything far larger is corruption.
pub const DEFAULT_MAX_RECORD_LEN: u32 = 16 * 1024 * 1024;

/// An iterator over the records of an MRT stream.
///
/// Yields `Ok(record)` per record, `Err(MrtError::Malformed)` for a well-framed record whose
/// body does not parse (iteration continues with the next record), and at most one fatal
/// error (I/O, truncation, absurd length) after which it yields nothing more.
pub struct MrtReader<R> {
    inner: BufReader<R>,
    max_record_len: u32,
    done: bool,
}

impl<R: Read> MrtReader<R> {
    /// Read uncompressed MRT from `inner` (buffered internally).
    pub fn new(inner: R) -> MrtReader<R> {
        MrtReader {
            inner: BufReader::with_capacity(64 * 1024, inner),
            max_record_len: DEFAULT_MAX_RECORD_LEN,
            done: false,
        }
    }

    /// Change the cap on a record's length field.
    pub fn with_max_record_len(mut self, limit: u32) -> MrtReader<R> {
        self.max_record_len = limit;
        self
    }

    pub fn max_record_len(&self) -> u32 {
        self.max_record_len
    }

    /// Read the next record. `Ok(None)` at a clean end of stream.
    pub fn read_record(&mut self) -> Result<Option<MrtRecord>, MrtError> {
        let mut raw = [0u8; HEADER_LEN];
        let got = read_full(&mut self.inner, &mut raw)?;
        if got == 0 {
            return Ok(None);
        }
        if got < HEADER_LEN {
            return Err(MrtError::TruncatedHeader {
                got,
                expected: HEADER_LEN,
            });
        }
        let [t0, t1, t2, t3, y0, y1, s0, s1, l0, l1, l2, l3] = raw;
        let mut header = MrtHeader {
            timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
            mrt_type: u16::from_be_bytes([y0, y1]),
            subtype: u16::from_be_bytes([s0, s1]),
            length: u32::from_be_bytes([l0, l1, l2, l3]),
            microseconds: None,
        };
        if header.length > self.max_record_len {
            return Err(MrtError::RecordTooLong {
                length: header.length,
                limit: self.max_record_len,
            });
        }
        let expected = u64::from(header.length);
        let mut body = Vec::with_capacity(header.length.min(64 * 1024) as usize);
        let got = (&mut self.inner).take(expected).read_to_end(&mut body)?;
        if (got as u64) < expected {
            return Err(MrtError::TruncatedRecord {
                mrt_type: header.mrt_type,
                subtype: header.subtype,
                got: got as u64,
                expected,
            });
        }
        let mut body = Bytes::from(body);
        // RFC 6396 section 3: the microsecond field is counted in the length.
        if header.mrt_type == mrt_type::BGP4MP_ET {
            if body.len() < 4 {
                return Err(MrtError::Malformed {
                    mrt_type: header.mrt_type,
                    subtype: header.subtype,
                    reason: format!("length {} leaves no room for microseconds", body.len()),
                });
            }
            let us = body.split_to(4);
            header.microseconds = Some(u32::from_be_bytes([us[0], us[1], us[2], us[3]]));
            header.length -= 4;
        }
        MrtRecord::parse(header, body).map(Some)
    }
}

impl<R: Read> Iterator for MrtReader<R> {
    type Item = Result<MrtRecord, MrtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_record() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                if e.is_fatal() {
                    self.done = true;
                }
                Some(Err(e))
            }
        }
    }
}

/// Fill `buf` as far as the stream allows; returns how many bytes were read (less than
/// `buf.len()` only at end of stream).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The compression of an MRT stream, recognised by its first bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    /// gzip: `1f 8b` (RFC 1952 2.3.1).
    Gzip,
    /// bzip2: `BZh`.
    Bzip2,
}

impl Compression {
    pub fn detect(magic: &[u8]) -> Compression {
        match magic {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [b'B', b'Z', b'h', ..] => Compression::Bzip2,
            _ => Compression::None,
        }
    }
}

/// A byte stream with any gzip/bzip2 layer removed.
pub type Decompressed = Box<dyn Read + Send>;

impl MrtReader<Decompressed> {
    /// Read MRT from `inner`, decompressing gzip or bzip2 if its magic bytes say so.
    pub fn decompressed<R: Read + Send + 'static>(mut inner: R) -> io::Result<Self> {
        let mut magic = [0u8; 3];
        let n = read_full(&mut inner, &mut magic)?;
        let prefix = io::Cursor::new(magic[..n].to_vec());
        let chained = prefix.chain(inner);
        let stream: Decompressed = match Compression::detect(&magic[..n]) {
            Compression::None => Box::new(chained),
            // Multi-member decoders: a concatenation of compressed files is one stream.
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(chained)),
            Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(chained)),
        };
        Ok(MrtReader::new(stream))
    }
}

/// Open an MRT file, plain, gzip or bzip2 compressed.
pub fn open(path: impl AsRef<Path>) -> io::Result<MrtReader<Decompressed>> {
    MrtReader::decompressed(File::open(path)?)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::record::MrtBody;

    fn record(mrt_type: u16, subtype: u16, body: &[u8]) -> Vec<u8> {
        let mut r = 1_027_381_055u32.to_be_bytes().to_vec();
        r.extend_from_slice(&mrt_type.to_be_bytes());
        r.extend_from_slice(&subtype.to_be_bytes());
        r.extend_from_slice(&(body.len() as u32).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    /// A 2-octet BGP4MP STATE_CHANGE, IPv4: Established -> Idle.
    fn state_change() -> Vec<u8> {
        record(
            16,
            0,
            &[
                0, 1, 0, 2, 0, 0, 0, 1, 192, 0, 2, 1, 192, 0, 2, 2, 0, 6, 0, 1,
            ],
        )
    }

    fn all(data: Vec<u8>) -> Vec<Result<MrtRecord, MrtError>> {
        MrtReader::new(io::Cursor::new(data)).collect()
    }

    #[test]
    fn reads_records_until_a_clean_end() {
        let mut data = state_change();
        data.extend(state_change());
        let records = all(data);
        assert_eq!(records.len(), 2);
        for r in records {
            let r = r.unwrap();
            assert_eq!(r.header.timestamp, 1_027_381_055);
            assert!(matches!(r.body, MrtBody::StateChange(_)));
        }
        assert!(all(Vec::new()).is_empty());
    }

    #[test]
    fn truncated_header_and_body_end_the_stream_with_an_error() {
        let full = state_change();
        for cut in 1..full.len() {
            let mut data = state_change();
            data.extend_from_slice(&full[..cut]);
            let records = all(data);
            assert_eq!(records.len(), 2, "cut at {cut}");
            assert!(records[0].is_ok());
            match &records[1] {
                Err(MrtError::TruncatedHeader { got, .. }) => {
                    assert!(cut < HEADER_LEN && *got == cut)
                }
                Err(MrtError::TruncatedRecord { got, expected, .. }) => {
                    assert!(cut >= HEADER_LEN);
                    assert_eq!((*got, *expected), ((cut - HEADER_LEN) as u64, 20));
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn absurd_length_is_refused_before_allocating() {
        let mut data = 0u32.to_be_bytes().to_vec();
        data.extend_from_slice(&[0, 13, 0, 2, 0xff, 0xff, 0xff, 0xff]);
        let records = all(data);
        assert_eq!(records.len(), 1);
        assert!(matches!(
            records[0],
            Err(MrtError::RecordTooLong {
                length: u32::MAX,
                limit: DEFAULT_MAX_RECORD_LEN
            })
        ));
        // A length under the cap but beyond the data only grows the buffer as data arrives.
        let data: Vec<u8> = record(13, 2, &[])
            .into_iter()
            .take(8)
            .chain(1_000_000u32.to_be_bytes())
            .collect();
        let mut reader = MrtReader::new(io::Cursor::new(data)).with_max_record_len(2_000_000);
        assert_eq!(reader.max_record_len(), 2_000_000);
        assert!(matches!(
            reader.next(),
            Some(Err(MrtError::TruncatedRecord {
                got: 0,
                expected: 1_000_000,
                ..
            }))
        ));
        assert!(reader.next().is_none());
    }

    #[test]
    fn a_malformed_record_does_not_stop_the_stream() {
        let mut data = record(16, 0, &[0, 1, 0, 2, 0, 0, 0, 9, 1, 2, 3, 4]); // AFI 9
        data.extend(state_change());
        let records = all(data);
        assert_eq!(records.len(), 2);
        assert!(matches!(
            records[0],
            Err(MrtError::Malformed {
                mrt_type: 16,
                subtype: 0,
                ..
            })
        ));
        assert!(records[1].is_ok());
    }

    #[test]
    fn extended_timestamp_takes_microseconds_from_the_body() {
        let plain = state_change();
        let mut body = 123_456u32.to_be_bytes().to_vec();
        body.extend_from_slice(&plain[HEADER_LEN..]);
        let records = all(record(17, 0, &body));
        let r = records[0].as_ref().unwrap();
        assert_eq!(r.header.microseconds, Some(123_456));
        assert_eq!(r.header.length, 20);
        assert!(matches!(r.body, MrtBody::StateChange(_)));
        // Too short for the microsecond field: a record error, and the stream goes on.
        let mut data = record(17, 0, &[0, 0]);
        data.extend(state_change());
        let records = all(data);
        assert!(matches!(records[0], Err(MrtError::Malformed { .. })));
        assert!(records[1].is_ok());
    }

    #[test]
    fn gzip_multi_member_and_bzip2_are_detected_by_magic() {
        let mut gz = Vec::new();
        for _ in 0..2 {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&state_change()).unwrap();
            gz.extend(enc.finish().unwrap());
        }
        assert_eq!(Compression::detect(&gz), Compression::Gzip);
        let n = MrtReader::decompressed(io::Cursor::new(gz))
            .unwrap()
            .filter(|r| r.is_ok())
            .count();
        assert_eq!(n, 2);

        let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        enc.write_all(&state_change()).unwrap();
        let bz = enc.finish().unwrap();
        assert_eq!(Compression::detect(&bz), Compression::Bzip2);
        let n = MrtReader::decompressed(io::Cursor::new(bz))
            .unwrap()
            .filter(|r| r.is_ok())
            .count();
        assert_eq!(n, 1);

        let plain = state_change();
        assert_eq!(Compression::detect(&plain), Compression::None);
        let n = MrtReader::decompressed(io::Cursor::new(plain))
            .unwrap()
            .count();
        assert_eq!(n, 1);
    }

    #[test]
    fn corrupt_compressed_data_is_an_error_not_a_panic() {
        let mut data = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        data.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let records: Vec<_> = MrtReader::decompressed(io::Cursor::new(data))
            .unwrap()
            .collect();
        assert_eq!(records.len(), 1);
        assert!(matches!(records[0], Err(MrtError::Io(_))));
        // Streams shorter than any magic number.
        assert_eq!(
            MrtReader::decompressed(io::Cursor::new(vec![0x1f]))
                .unwrap()
                .count(),
            1
        );
        assert_eq!(
            MrtReader::decompressed(io::Cursor::new(Vec::new()))
                .unwrap()
                .count(),
            0
        );
    }
}
