//! A stream of BMP messages framed and decoded as a station reads it; whatever decodes
//! must re-encode and decode to the same value, and the BGP messages inside are decoded
//! as a station would (UPDATEs under the Peer Up's context and under every codec context
//! the first byte picks, OPENs, NOTIFICATIONs).
#![no_main]

use bgp_bmp::wire::{decode_message, encode_message, frame_len, BmpMessage, PeerFlags};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let ctx = common::context_from(selector);
    let mut rest = Bytes::copy_from_slice(rest);
    let mut last_peer_up = None;
    while let Ok(Some(len)) = frame_len(&rest, 1 << 20) {
        if len > rest.len() {
            return;
        }
        let Ok(msg) = decode_message(rest.split_to(len)) else {
            continue;
        };
        let mut out = BytesMut::new();
        encode_message(&msg, &mut out).expect("a decoded message encodes");
        assert_eq!(decode_message(out.freeze()).as_ref(), Ok(&msg));
        let _ = format!("{msg:?}");
        match &msg {
            BmpMessage::PeerUp(up) => {
                let _ = up.decode_sent_open();
                let _ = up.decode_received_open();
                let _ = up.update_context(PeerFlags(selector));
                last_peer_up = Some(up.clone());
            }
            BmpMessage::RouteMonitoring(rm) => {
                let _ = rm.decode_update(&ctx);
                if let Some(Ok(peer_ctx)) = last_peer_up
                    .as_ref()
                    .map(|u| u.update_context(rm.peer.flags))
                {
                    let _ = rm.decode_update(&peer_ctx);
                }
            }
            BmpMessage::PeerDown(down) => {
                let _ = down.reason.notification();
            }
            BmpMessage::Initiation(i) => {
                let _ = (i.sys_name(), i.sys_descr());
            }
            BmpMessage::Termination(t) => {
                let _ = t.reason();
            }
            BmpMessage::RouteMirroring(m) => {
                let _ = (m.messages().count(), m.information().count());
            }
            BmpMessage::StatisticsReport(r) => {
                let _ = r.get(7, None);
            }
        }
    }
});
