//! The session machine fed arbitrary bytes and timer firings after the transport is up.
//!
//! Input: a sequence of chunks, each `len: u8` then `len` bytes; a zero length advances the
//! virtual clock by 30 s and fires timers instead. The machine must never panic and must
//! always answer with well-formed frames.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp_proto::session::{Session, SessionConfig};
use bgp_proto::wire::frame_len;
use bgp_proto::MAX_EXTENDED_MESSAGE_LEN;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let mut config = SessionConfig::new(64512, Ipv4Addr::new(10, 0, 0, 1), Some(64512));
    config.passive = data.first().is_some_and(|b| b & 1 == 1);
    let mut session = Session::new(config);
    session.start(now);
    session.handle_connected(now);
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        if chunk.is_empty() {
            now += Duration::from_secs(30);
            session.handle_timeout(now);
        } else {
            session.handle_data(now, chunk);
        }
        while let Some(bytes) = session.poll_transmit() {
            let mut out: &[u8] = &bytes;
            while !out.is_empty() {
                match frame_len(out, MAX_EXTENDED_MESSAGE_LEN) {
                    Ok(Some(n)) => out = &out[n..],
                    other => panic!("session sent a bad frame: {other:?}"),
                }
            }
        }
        while session.poll_event().is_some() {}
    }
});
