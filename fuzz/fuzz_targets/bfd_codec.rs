//! BFD Control packets (RFC 5880 4.1): arbitrary datagrams through the decoder. What
//! decodes must re-encode to the same bytes (but for a Length beyond 24 without an
//! Authentication Section, which is written as 24) and decode to the same packet;
//! errors must format.
#![no_main]

use bgp_bfd::ControlPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match ControlPacket::decode(data) {
        Ok(p) => {
            let encoded = p.encode();
            let e = encoded.as_bytes();
            assert_eq!(&e[..3], &data[..3]);
            assert_eq!(&e[4..], &data[4..e.len()]);
            if p.authentication.is_some() {
                assert_eq!(e[3], data[3]);
            }
            assert_eq!(ControlPacket::decode(e), Ok(p));
            let _ = format!("{p:?} {} {}", p.state, p.diagnostic);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
