//! Property tests: arbitrary bytes never panic the codec or the endpoint; what decodes
//! re-encodes to the same bytes and the other way round; and two sessions with any valid
//! configurations, after any history of loss, administrative actions and restarts,
//! always come Up once packets flow, and stay Up.

mod support;

use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroU8};
use std::time::{Duration, Instant};

use bgp_bfd::{
    Addresses, ControlPacket, Diagnostic, Endpoint, Hops, PacketInfo, Password, SessionConfig,
    SessionEvent, SimplePassword, State,
};
use proptest::prelude::*;
use support::*;

fn control_packet() -> impl Strategy<Value = ControlPacket> {
    let auth = proptest::option::of(
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 1..=16)).prop_map(|(key_id, pw)| {
            SimplePassword {
                key_id,
                password: Password::new(&pw).expect("1..=16 bytes"),
            }
        }),
    );
    (
        (0u8..32, 0u8..4, any::<[bool; 4]>(), auth),
        (1u8..=255, 1u32.., any::<u32>()),
        (any::<u32>(), any::<u32>(), any::<u32>()),
    )
        .prop_map(
            |((diag, state, flags, authentication), (mult, my, your), (tx, rx, echo))| {
                ControlPacket {
                    diagnostic: Diagnostic::from_bits(diag),
                    state: State::from_bits(state),
                    poll_bit: flags[0],
                    final_bit: flags[1],
                    control_plane_independent: flags[2],
                    demand: flags[3],
                    authentication,
                    detect_mult: NonZeroU8::new(mult).expect("1.."),
                    my_discriminator: NonZeroU32::new(my).expect("1.."),
                    your_discriminator: your,
                    desired_min_tx_us: tx,
                    required_min_rx_us: rx,
                    required_min_echo_rx_us: echo,
                }
            },
        )
}

/// Bytes that are often nearly valid: an encoded packet with some bytes overwritten and
/// the end cut or extended.
fn mangled() -> impl Strategy<Value = Vec<u8>> {
    (
        control_packet(),
        proptest::collection::vec((0usize..48, any::<u8>()), 0..4),
        0usize..60,
    )
        .prop_map(|(p, edits, len)| {
            let mut b = p.encode().as_bytes().to_vec();
            for (at, v) in edits {
                if let Some(x) = b.get_mut(at) {
                    *x = v;
                }
            }
            b.resize(len, 0);
            b
        })
}

#[derive(Clone, Debug)]
enum Step {
    Datagram(Vec<u8>, u8, bool, u8),
    Advance(u16),
    AdminDown(usize),
    AdminUp(usize),
    SetTimers(usize, u16, u16, u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (
            prop_oneof![mangled(), proptest::collection::vec(any::<u8>(), 0..64)],
            any::<u8>(),
            any::<bool>(),
            0u8..3
        )
            .prop_map(|(b, ttl, mh, src)| Step::Datagram(b, ttl, mh, src)),
        (0u16..3000).prop_map(Step::Advance),
        (0usize..3).prop_map(Step::AdminDown),
        (0usize..3).prop_map(Step::AdminUp),
        (0usize..3, 1u16..2000, 1u16..2000, 1u8..10)
            .prop_map(|(i, tx, rx, m)| Step::SetTimers(i, tx, rx, m)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_decoded_packets_reencode_exactly(
        bytes in prop_oneof![mangled(), proptest::collection::vec(any::<u8>(), 0..80)]
    ) {
        if let Ok(p) = ControlPacket::decode(&bytes) {
            // Byte for byte, except that a Length beyond 24 without an Authentication
            // Section (accepted, RFC 5880 6.8.6 only bounds it) is written as 24.
            let encoded = p.encode();
            let e = encoded.as_bytes();
            prop_assert_eq!(&e[..3], &bytes[..3]);
            prop_assert_eq!(&e[4..], &bytes[4..e.len()]);
            if p.authentication.is_some() {
                prop_assert_eq!(e[3], bytes[3]);
            }
            prop_assert_eq!(ControlPacket::decode(e), Ok(p));
        }
    }

    #[test]
    fn encode_decode_identity(p in control_packet()) {
        prop_assert_eq!(ControlPacket::decode(p.encode().as_bytes()), Ok(p));
    }

    /// Any sequence of datagrams (valid, mangled, random; any TTL, either port, from
    /// known and unknown sources), clock jumps and commands: no panic, and the endpoint's
    /// timer is never in the past after it ran.
    #[test]
    fn endpoint_survives_anything(steps in proptest::collection::vec(step(), 1..60)) {
        let mut now = Instant::now();
        let mut e = Endpoint::new(9);
        let sources: [IpAddr; 3] = [ADDR_B, "fd00::2".parse().unwrap(), "10.9.9.9".parse().unwrap()];
        let mut multi = config();
        multi.hops = Hops::Multi { min_ttl: 200 };
        let ids = [
            e.add_session(now, Addresses { peer: ADDR_B, local: None, interface: None }, config()).unwrap(),
            e.add_session(now, Addresses { peer: sources[1], local: Some("fd00::1".parse().unwrap()), interface: None }, multi).unwrap(),
            e.add_session(now, Addresses { peer: sources[2], local: None, interface: Some(4) }, config()).unwrap(),
        ];
        for step in steps {
            match step {
                Step::Datagram(bytes, ttl, multihop, src) => {
                    let info = PacketInfo { source: sources[usize::from(src)], destination: None, interface: Some(4), ttl, multihop };
                    let _ = e.handle_datagram(now, &info, &bytes);
                }
                Step::Advance(ms) => {
                    now += Duration::from_millis(u64::from(ms));
                    e.handle_timeout(now);
                    if let Some(t) = e.poll_timeout() {
                        prop_assert!(t > now);
                    }
                }
                Step::AdminDown(i) => { e.with_session(ids[i], |s| s.admin_down(now)); }
                Step::AdminUp(i) => { e.with_session(ids[i], |s| s.admin_up(now)); }
                Step::SetTimers(i, tx, rx, m) => {
                    e.with_session(ids[i], |s| s.set_timers(
                        now,
                        Duration::from_millis(u64::from(tx)),
                        Duration::from_millis(u64::from(rx)),
                        NonZeroU8::new(m).unwrap_or(NonZeroU8::MIN),
                    ));
                }
            }
            while let Some(t) = e.poll_transmit() {
                let p = ControlPacket::decode(t.packet.as_bytes());
                prop_assert!(p.is_ok());
                prop_assert_eq!(t.ttl, 255);
            }
            while e.poll_event().is_some() {}
        }
    }
}

#[derive(Clone, Debug)]
enum Chaos {
    Link(bool),
    AdminDown(bool),
    Restart(bool),
    Wait(u16),
}

fn chaos() -> impl Strategy<Value = Chaos> {
    prop_oneof![
        any::<bool>().prop_map(Chaos::Link),
        any::<bool>().prop_map(Chaos::AdminDown),
        any::<bool>().prop_map(Chaos::Restart),
        (0u16..4000).prop_map(Chaos::Wait),
    ]
}

fn session_config() -> impl Strategy<Value = SessionConfig> {
    (
        10u64..2500,
        10u64..2500,
        1u8..=10,
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(tx, rx, detect_mult, jitter_seed)| {
            let mut c = SessionConfig::new(Hops::Single);
            c.desired_min_tx = Duration::from_millis(tx);
            c.required_min_rx = Duration::from_millis(rx);
            c.detect_mult = detect_mult;
            c.jitter_seed = jitter_seed;
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn two_sessions_always_converge_to_up_and_stay_up(
        mut a in session_config(),
        mut b in session_config(),
        passive_b in any::<bool>(),
        multihop in any::<bool>(),
        password in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..=16)),
        latency_ms in 0u64..40,
        history in proptest::collection::vec(chaos(), 0..12),
    ) {
        b.passive = passive_b;
        let auth = password.map(|pw| SimplePassword { key_id: 1, password: Password::new(&pw).unwrap() });
        for c in [&mut a, &mut b] {
            c.authentication = auth;
            if multihop {
                c.hops = Hops::Multi { min_ttl: 254 };
            }
        }
        let mut p = Pair::new(a.clone(), b.clone());
        p.latency = Duration::from_millis(latency_ms);
        p.ttl = if multihop { 254 } else { 255 };
        for c in history {
            match c {
                Chaos::Link(up) => p.set_link(up),
                Chaos::AdminDown(on_a) => p.command(if on_a { Side::A } else { Side::B }, |s, now| s.admin_down(now)),
                Chaos::Restart(on_a) => {
                    if on_a { p.restart(Side::A, a.clone()) } else { p.restart(Side::B, b.clone()) }
                }
                Chaos::Wait(ms) => p.run_for(Duration::from_millis(u64::from(ms))),
            }
        }
        p.set_link(true);
        p.command(Side::A, |s, now| s.admin_up(now));
        p.command(Side::B, |s, now| s.admin_up(now));
        // Not Up, the slowest side sends every max(1 s, its tx, the other's rx); a stale
        // Up on one side needs its detection time to fall back first.
        let slowest = [a.desired_min_tx, a.required_min_rx, b.desired_min_tx, b.required_min_rx]
            .into_iter()
            .max()
            .unwrap_or_default()
            .max(Duration::from_secs(1));
        // A detection timer armed before the link came back may still run out once:
        // let the longest possible Detection Time pass first.
        let longest_detection = slowest * u32::from(a.detect_mult.max(b.detect_mult));
        p.run_for(longest_detection);
        let bound = slowest * 15;
        let took = p.run_until(bound, Pair::both_up);
        prop_assert!(took.is_some(), "not Up after {:?}: A {} B {}", bound, p.state(Side::A), p.state(Side::B));
        let logged = p.log.len();
        p.run_for(slowest * 20);
        prop_assert!(p.both_up());
        let flaps: Vec<_> = p.log[logged..]
            .iter()
            .filter(|(_, _, e)| matches!(e, SessionEvent::StateChanged { .. }))
            .collect();
        prop_assert!(flaps.is_empty(), "{:?}", flaps);
        for side in [Side::A, Side::B] {
            prop_assert!(!p.session(side).poll_in_progress());
        }
    }
}
