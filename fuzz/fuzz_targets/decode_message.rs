//! Framing plus whole-message decode of a byte stream, as a session sees it.
#![no_main]

use bgp_proto::wire::{decode_message, frame_len};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let ctx = common::context_from(selector);
    while let Ok(Some(len)) = frame_len(rest, ctx.max_message_len()) {
        let Some((frame, tail)) = rest.split_at_checked(len) else {
            return;
        };
        let _ = decode_message(frame, &ctx);
        rest = tail;
    }
});
