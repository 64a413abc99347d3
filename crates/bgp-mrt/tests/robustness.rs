//! Corrupt input never panics the reader or the formatter: every failure is a value.
//!
//! Arbitrary byte strings, and every single-byte corruption and truncation of real
//! records (RIS update and table files, the synthetic file), go through `MrtReader` and the
//! `bgpdump -m` formatter.

use std::io::{Cursor, Read};
use std::path::Path;

use bgp_mrt::bgpdump::Formatter;
use bgp_mrt::MrtReader;
use proptest::prelude::*;

/// Read and format everything; returns (records, errors).
fn run(data: &[u8]) -> (usize, usize) {
    let mut formatter = Formatter::new();
    let mut out = Vec::new();
    let (mut records, mut errors) = (0, 0);
    for item in MrtReader::new(Cursor::new(data)) {
        match item {
            Ok(record) => {
                records += 1;
                if formatter.format_record(&record, &mut out).is_err() {
                    errors += 1;
                }
            }
            Err(_) => errors += 1,
        }
    }
    (records, errors)
}

/// The plain MRT bytes of a gzip test file.
fn gunzip(path: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let mut data = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).expect("test file"))
        .read_to_end(&mut data)
        .expect("gzip");
    data
}

/// The first `n` records of `data`, as raw byte ranges.
fn record_spans(data: &[u8], n: usize) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut pos = 0;
    while spans.len() < n && pos + 12 <= data.len() {
        let len =
            u32::from_be_bytes([data[pos + 8], data[pos + 9], data[pos + 10], data[pos + 11]]);
        let end = pos + 12 + len as usize;
        if end > data.len() {
            break;
        }
        spans.push(pos..end);
        pos = end;
    }
    spans
}

/// Flip each byte of each record (to a few values) and cut each record at every length.
fn mutate_records(data: &[u8], records: usize) -> usize {
    let mut runs = 0;
    for span in record_spans(data, records) {
        let record = &data[span];
        for i in 0..record.len() {
            for value in [0x00, 0xff, record[i] ^ 0x01, record[i].wrapping_add(0x80)] {
                let mut m = record.to_vec();
                m[i] = value;
                run(&m);
                runs += 1;
            }
            run(&record[..i]);
            runs += 1;
        }
    }
    runs
}

#[test]
fn corrupting_real_update_records_never_panics() {
    let data = gunzip("../../tests/data/mrt/updates.20071015.1505.gz");
    assert!(mutate_records(&data, 12) > 4_000);
    let data = gunzip("tests/data/updates.et-header.2015.trimmed.gz");
    assert!(mutate_records(&data, 6) > 1_000);
}

#[test]
fn corrupting_real_rib_records_never_panics() {
    for file in [
        "../../tests/data/mrt/bview.ipv6_unicast_add_path.gz",
        "../../tests/data/mrt/bview.20020722.2337.gz",
    ] {
        let data = gunzip(file);
        // Keep the PEER_INDEX_TABLE so RIB entries reach attribute decoding.
        let spans = record_spans(&data, 6);
        let prefix_len = spans.first().map(|s| s.end).unwrap_or(0);
        for span in spans.iter().skip(1) {
            let record = &data[span.clone()];
            for i in 0..record.len() {
                let mut m = data[..prefix_len].to_vec();
                let mut r = record.to_vec();
                r[i] ^= 0xff;
                m.extend_from_slice(&r);
                let (records, _) = run(&m);
                assert!(
                    records >= 1,
                    "{file}: the intact first record must still be read"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        run(&data);
    }

    /// A valid header with arbitrary type, subtype and body: exercises every parser.
    #[test]
    fn arbitrary_bodies_never_panic(
        mrt_type in prop::sample::select(vec![12u16, 13, 16, 17]),
        subtype in 0u16..13,
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut data = 0u32.to_be_bytes().to_vec();
        data.extend_from_slice(&mrt_type.to_be_bytes());
        data.extend_from_slice(&subtype.to_be_bytes());
        data.extend_from_slice(&(body.len() as u32).to_be_bytes());
        data.extend_from_slice(&body);
        let (records, errors) = run(&data);
        prop_assert_eq!(records + errors >= 1, true);
    }
}
