//! UPDATE bodies under every negotiated-capability context; whatever decodes must
//! re-encode without error and decode again to the same update.
#![no_main]

use bgp_proto::wire::{decode_message, decode_update, encode_message, Inbound};
use bgp_proto::Message;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let ctx = common::context_from(selector);
    let Ok(decoded) = decode_update(body, &ctx) else {
        return;
    };
    if decoded.treat_as_withdraw.is_some() {
        return;
    }
    // Round trip: what we send must be what we would receive, in the mirrored context.
    let mut mirrored = ctx.clone();
    std::mem::swap(&mut mirrored.add_path_receive, &mut mirrored.add_path_send);
    let mut out = BytesMut::new();
    if encode_message(
        &Message::Update(decoded.update.clone()),
        &mirrored,
        &mut out,
    )
    .is_err()
    {
        return;
    }
    match decode_message(&out, &ctx) {
        Ok(Inbound::Update(again)) => {
            assert_eq!(
                again.treat_as_withdraw, None,
                "re-encoded update is malformed"
            );
        }
        other => panic!("re-encoded update does not decode: {other:?}"),
    }
});
