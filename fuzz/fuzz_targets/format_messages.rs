//! Every decoded message and every decode error formatted, as logs and `bgpctl` do.
//!
//! Formatting is a second reader of peer data (a Hard Reset NOTIFICATION shows the
//! NOTIFICATION inside it, AS paths and communities are rendered): it must stay bounded
//! and never panic, whatever the bytes.
#![no_main]

use std::fmt::Write;

use bgp_proto::wire::{decode_message, frame_len, Inbound};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let ctx = common::context_from(selector);
    let mut out = String::new();
    while let Ok(Some(len)) = frame_len(rest, ctx.max_message_len()) {
        let Some((frame, tail)) = rest.split_at_checked(len) else {
            return;
        };
        rest = tail;
        out.clear();
        match decode_message(frame, &ctx) {
            Ok(inbound) => {
                let _ = write!(out, "{inbound:?}");
                match &inbound {
                    Inbound::Notification(n) => {
                        let _ = write!(
                            out,
                            "{n} {}",
                            bgp_proto::session::event::describe_notification(n)
                        );
                        let _ = n.shutdown_message();
                    }
                    Inbound::Update(u) => {
                        let attrs = &u.update.attributes;
                        if let Some(path) = &attrs.as_path {
                            let _ = write!(out, "{path}");
                        }
                        for c in &attrs.communities {
                            let _ = write!(out, "{c}");
                        }
                        for c in &attrs.large_communities {
                            let _ = write!(out, "{c}");
                        }
                    }
                    _ => {}
                }
                let _ = write!(out, "{:?}", inbound.into_message());
            }
            Err(e) => {
                let _ = write!(out, "{e} {e:?} {}", e.to_notification());
            }
        }
        // Rendering is proportional to the message, never more (the largest message is
        // 64 KiB; its Debug form is a few times that).
        assert!(out.len() < 64 * 65_536, "{} bytes of text", out.len());
    }
});
