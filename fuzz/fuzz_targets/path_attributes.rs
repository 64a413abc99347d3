//! A path attribute block in both MP_REACH layouts (UPDATE and MRT RIB entry).
#![no_main]

use bgp_proto::wire::{decode_path_attributes, MpReachForm};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, block)) = data.split_first() else {
        return;
    };
    let ctx = common::context_from(selector);
    let form = if selector & 0x80 != 0 {
        MpReachForm::MrtAbbreviated
    } else {
        MpReachForm::Standard
    };
    let _ = decode_path_attributes(block, &ctx, form);
});
