//! MRT records: framing, every record type, and the bgpdump formatter on top.
#![no_main]

use bgp_mrt::bgpdump::Formatter;
use bgp_mrt::MrtReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = MrtReader::new(data);
    let mut formatter = Formatter::new();
    let mut out = Vec::new();
    // Bounded: each record consumes at least its 12-byte header.
    while let Ok(Some(record)) = reader.read_record() {
        let _ = formatter.format_record(&record, &mut out);
        out.clear();
    }
});
