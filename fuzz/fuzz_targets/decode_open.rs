//! OPEN messages: optional parameters, RFC 9072 extended parameters and capabilities.
#![no_main]

use bgp_proto::wire::{decode_message, MARKER};
use bgp_proto::{message_type, CodecContext, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(len) = u16::try_from(HEADER_LEN + body.len()) else {
        return;
    };
    let mut frame = Vec::with_capacity(len as usize);
    frame.extend_from_slice(&MARKER);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.push(message_type::OPEN);
    frame.extend_from_slice(body);
    let _ = decode_message(&frame, &CodecContext::default());
});
