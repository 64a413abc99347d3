//! A BFD endpoint with three sessions (single hop IPv4, multihop IPv6 with a simple
//! password, passive single hop IPv6) driven by arbitrary operations: raw datagrams,
//! packets built from input fields and addressed to a session (so the fuzzer reaches
//! every state without guessing discriminators), clock jumps, AdminDown/up and timer
//! changes. Every packet sent must decode, the timer must never lie in the past after
//! it ran, and every event and discard must format.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::{NonZeroU32, NonZeroU8};
use std::time::{Duration, Instant};

use bgp_bfd::{
    Addresses, ControlPacket, Diagnostic, Endpoint, Hops, PacketInfo, Password, SessionConfig,
    SessionId, SimplePassword, State,
};
use libfuzzer_sys::fuzz_target;

const PEERS: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 2)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
];
const LOCAL6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 1));

fn password() -> SimplePassword {
    SimplePassword {
        key_id: 1,
        password: Password::new(b"secret").unwrap_or_else(|_| unreachable!()),
    }
}

fn setup(now: Instant) -> Option<(Endpoint, [SessionId; 3])> {
    let mut e = Endpoint::new(7);
    let single = SessionConfig::new(Hops::Single);
    let mut multi = SessionConfig::new(Hops::Multi { min_ttl: 250 });
    multi.authentication = Some(password());
    let mut passive = SessionConfig::new(Hops::Single);
    passive.passive = true;
    let a = e
        .add_session(now, Addresses { peer: PEERS[0], local: None, interface: Some(2) }, single)
        .ok()?;
    let b = e
        .add_session(now, Addresses { peer: PEERS[1], local: Some(LOCAL6), interface: None }, multi)
        .ok()?;
    let c = e
        .add_session(now, Addresses { peer: PEERS[2], local: None, interface: None }, passive)
        .ok()?;
    Some((e, [a, b, c]))
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if data.len() < n {
        return None;
    }
    let (head, tail) = data.split_at(n);
    *data = tail;
    Some(head)
}

fn u32_of(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x))
}

fuzz_target!(|input: &[u8]| {
    let mut now = Instant::now();
    let Some((mut e, ids)) = setup(now) else {
        return;
    };
    let mut data = input;
    let mut text = String::new();
    while let Some(op) = take(&mut data, 1).and_then(|b| b.first().copied()) {
        let which = usize::from(op >> 4) % 3;
        let id = ids[which];
        let multihop = which == 1;
        match op & 0x07 {
            0 => {
                let Some(head) = take(&mut data, 2) else { break };
                let len = usize::from(head[0] % 64);
                let Some(payload) = take(&mut data, len) else { break };
                let info = PacketInfo {
                    source: PEERS[which],
                    destination: multihop.then_some(LOCAL6),
                    interface: Some(2),
                    ttl: head[1],
                    multihop,
                };
                if let Err(d) = e.handle_datagram(now, &info, payload) {
                    text.push_str(&d.to_string());
                }
            }
            1 | 2 => {
                let Some(f) = take(&mut data, 12) else { break };
                let your = if f[0] & 0x80 != 0 {
                    e.session(id).map_or(0, |s| s.local_discriminator().get())
                } else {
                    0
                };
                let packet = ControlPacket {
                    diagnostic: Diagnostic::from_bits(f[1]),
                    state: State::from_bits(f[0]),
                    poll_bit: f[0] & 0x04 != 0,
                    final_bit: f[0] & 0x08 != 0,
                    control_plane_independent: false,
                    demand: f[0] & 0x10 != 0,
                    authentication: (f[0] & 0x20 != 0).then(password),
                    detect_mult: NonZeroU8::new(f[2]).unwrap_or(NonZeroU8::MIN),
                    my_discriminator: NonZeroU32::new(u32::from(f[3]) + 1).unwrap_or(NonZeroU32::MIN),
                    your_discriminator: your,
                    desired_min_tx_us: u32_of(&f[4..7]) * 16,
                    required_min_rx_us: if f[0] & 0x40 != 0 { 0 } else { u32_of(&f[7..10]) * 16 },
                    required_min_echo_rx_us: 0,
                };
                let ttl = if op & 0x07 == 1 { 255 } else { f[11] };
                let info = PacketInfo {
                    source: PEERS[which],
                    destination: multihop.then_some(LOCAL6),
                    interface: Some(2),
                    ttl,
                    multihop,
                };
                if let Err(d) = e.handle_datagram(now, &info, packet.encode().as_bytes()) {
                    text.push_str(&d.to_string());
                }
            }
            3 => {
                let Some(b) = take(&mut data, 2) else { break };
                now += Duration::from_millis(u64::from(u16::from_be_bytes([b[0], b[1]])));
                e.handle_timeout(now);
                if let Some(t) = e.poll_timeout() {
                    assert!(t > now, "timer in the past after handle_timeout");
                }
            }
            4 => {
                e.with_session(id, |s| s.admin_down(now));
            }
            5 => {
                e.with_session(id, |s| s.admin_up(now));
            }
            _ => {
                let Some(b) = take(&mut data, 5) else { break };
                let tx = Duration::from_micros(u64::from(u16::from_be_bytes([b[0], b[1]])) * 100);
                let rx = Duration::from_micros(u64::from(u16::from_be_bytes([b[2], b[3]])) * 100);
                let mult = NonZeroU8::new(b[4]).unwrap_or(NonZeroU8::MIN);
                e.with_session(id, |s| s.set_timers(now, tx, rx, mult));
            }
        }
        while let Some(t) = e.poll_transmit() {
            let p = ControlPacket::decode(t.packet.as_bytes());
            assert!(p.is_ok(), "sent an undecodable packet: {p:?}");
            assert!(p.is_ok_and(|p| !(p.poll_bit && p.final_bit)), "P and F together");
        }
        while let Some((id, event)) = e.poll_event() {
            text.push_str(&format!("{id} {event:?} {}", event.is_failure()));
        }
        text.clear();
    }
    for (_, _, s) in e.sessions() {
        let _ = format!("{} {:?} {:?}", s.state(), s.last_down_reason(), s.stats());
    }
});
