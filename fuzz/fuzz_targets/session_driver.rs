//! Shared by the session targets: drive one [`Session`] with arbitrary bytes and timer
//! firings after the transport is up, check every frame it sends and format every event.
//!
//! Input: a sequence of chunks, each `len: u8` then `len` bytes; a zero length advances the
//! virtual clock by 30 s and fires timers instead (every second time after reporting input
//! held back, as the daemon does under RIB backpressure).

use std::fmt::Write;
use std::time::{Duration, Instant};

use bgp_proto::session::{Session, SessionConfig, SessionEvent};
use bgp_proto::wire::frame_len;
use bgp_proto::MAX_EXTENDED_MESSAGE_LEN;

pub fn drive(config: SessionConfig, data: &[u8]) {
    let mut now = Instant::now();
    let mut session = Session::new(config);
    session.start(now);
    session.handle_connected(now);
    let mut text = String::new();
    let mut rest = data;
    let mut ticks = 0u32;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        if chunk.is_empty() {
            now += Duration::from_secs(30);
            ticks += 1;
            if ticks % 2 == 0 {
                session.handle_input_held(now);
            }
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
        // Every event as the daemon logs it; a DownReason also as `show peers` shows it.
        while let Some(event) = session.poll_event() {
            text.clear();
            let _ = write!(text, "{event:?}");
            if let SessionEvent::Down(reason) = &event {
                let _ = write!(text, "{reason}");
            }
            if let SessionEvent::StateChanged { from, to } = &event {
                let _ = write!(text, "{from} {to}");
            }
        }
        let _ = write!(text, "{}", session.state());
    }
}
