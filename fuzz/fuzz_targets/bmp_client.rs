//! The BMP client state machine driven by arbitrary operations: transport events, timer
//! firings, peers going up and down, route floods over the queue limit. It must never
//! panic, and every connection's byte stream must be whole BMP messages, Initiation first.
//!
//! Input: one byte per operation (low 4 bits: which, high 4 bits: an argument).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bgp_bmp::client::{Client, ClientConfig, ClientEvent, ClientState, MIN_QUEUE};
use bgp_bmp::wire::{
    decode_message, frame_len, BmpMessage, PeerDown, PeerDownReason, PeerHeader, PeerUp,
    RouteMonitoring, Stat, StatisticsReport,
};
use bgp_proto::wire::{encode_end_of_rib, encode_message};
use bgp_proto::{Capability, CodecContext, Family, Message, Open};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

fn peer(n: u8) -> PeerHeader {
    PeerHeader::new(
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)),
        65000 + u32::from(n),
        Ipv4Addr::new(10, 0, 0, n),
    )
}

fn open(asn: u32) -> Bytes {
    let mut out = BytesMut::new();
    let open = Open {
        version: 4,
        my_as: Open::my_as_field(asn),
        hold_time: 90,
        bgp_id: Ipv4Addr::new(10, 0, 0, 9),
        capabilities: vec![Capability::FourOctetAs(asn)],
        other_params: vec![],
    };
    encode_message(&Message::Open(open), &CodecContext::default(), &mut out).expect("OPEN");
    out.freeze()
}

fn peer_up(n: u8) -> PeerUp {
    PeerUp {
        peer: peer(n),
        local_address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254)),
        local_port: 179,
        remote_port: 1000,
        sent_open: open(64512),
        received_open: open(65000 + u32::from(n)),
        information: vec![],
    }
}

/// Check and consume one connection's bytes.
fn check_stream(stream: &mut BytesMut, first: &mut bool) {
    while let Ok(Some(n)) = frame_len(stream, usize::MAX) {
        let msg =
            decode_message(stream.split_to(n).freeze()).expect("the client writes valid messages");
        if *first {
            assert!(
                matches!(msg, BmpMessage::Initiation(_)),
                "first message {msg:?}"
            );
            *first = false;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut config = ClientConfig::new("fuzz", "fuzz");
    config.max_queue = MIN_QUEUE;
    let Ok(mut client) = Client::new(config) else {
        return;
    };
    let mut eor = Vec::new();
    encode_end_of_rib(Family::IPV4_UNICAST, &mut eor);
    let update = eor.remove(0);
    let mut now = Instant::now();
    let mut stream = BytesMut::new();
    let mut first = true;
    for &b in data {
        let arg = b >> 4;
        let p = arg % 4 + 1;
        match b & 0x0f {
            0 => client.start(now),
            1 => client.stop(),
            2 => {
                let _ = client.peer_up(peer_up(p));
            }
            3 => {
                let _ = client.peer_down(PeerDown {
                    peer: peer(p),
                    reason: PeerDownReason::RemoteNoData,
                });
            }
            4 => {
                for _ in 0..u32::from(arg) * 200 {
                    let _ = client.route_monitoring(RouteMonitoring {
                        peer: peer(p),
                        update: update.clone(),
                    });
                }
            }
            5 => {
                let _ = client.statistics(StatisticsReport {
                    peer: peer(p),
                    stats: vec![Stat::gauge(7, 1)],
                });
            }
            6 => {
                // A new connection's stream starts here (the client ignores a report of a
                // connection it did not ask for).
                if client.state() == ClientState::Connecting {
                    stream.clear();
                    first = true;
                }
                client.handle_connected(now);
            }
            7 => client.handle_connect_failed(now),
            8 => client.handle_closed(now),
            9 => client.handle_data(&[b]),
            10 => {
                now += Duration::from_millis(u64::from(arg) * 10_000);
                client.handle_timeout(now);
            }
            11 => {
                if let Some(t) = client.poll_timeout() {
                    now = now.max(t);
                    client.handle_timeout(now);
                }
            }
            _ => {
                while let Some(bytes) = client.poll_transmit() {
                    stream.extend_from_slice(&bytes);
                }
                check_stream(&mut stream, &mut first);
            }
        }
        while let Some(event) = client.poll_event() {
            if let ClientEvent::ReplayRoutes { .. } | ClientEvent::Writable = event {
                let _ = client.has_room();
            }
        }
        let _ = (
            client.state(),
            client.session(),
            client.queued_bytes(),
            client.counters(),
        );
    }
});
