//! One session driven by hand-made packets, one test per RFC 5880 / 5881 / 5883 rule.

mod support;

use std::num::NonZeroU8;
use std::time::Instant;

use bgp_bfd::{Diagnostic, Discard, Hops, Reason, Session, SessionEvent, State};
use support::*;

const OURS: u32 = 0x1234;

fn session() -> (Session, Instant) {
    let now = Instant::now();
    let mut s = Session::new(config(), discr(OURS), now);
    s.handle_timeout(now);
    let first = sent(&mut s);
    assert_eq!(first.len(), 1);
    (s, now)
}

/// RFC 5880 6.8.6 steps 20-21: every (local state, received state) pair.
#[test]
fn reception_state_table() {
    use State::*;
    let table = [
        (Down, AdminDown, Down),
        (Down, Down, Init),
        (Down, Init, Up),
        (Down, Up, Down),
        (Init, AdminDown, Down),
        (Init, Down, Init),
        (Init, Init, Up),
        (Init, Up, Up),
        (Up, AdminDown, Down),
        (Up, Down, Down),
        (Up, Init, Up),
        (Up, Up, Up),
        (AdminDown, AdminDown, AdminDown),
        (AdminDown, Down, AdminDown),
        (AdminDown, Init, AdminDown),
        (AdminDown, Up, AdminDown),
    ];
    for (from, received, expected) in table {
        let (mut s, now) = session();
        // Reach `from`.
        match from {
            Down => {}
            Init => s.handle_control(now, &peer_packet(Down, 0), 255).unwrap(),
            Up => s
                .handle_control(now, &peer_packet(Init, OURS), 255)
                .unwrap(),
            AdminDown => s.admin_down(now),
        }
        assert_eq!(s.state(), from);
        events(&mut s);
        // A packet in Init or Up would be discarded with Your Discriminator zero.
        let your = if matches!(received, Init | Up) {
            OURS
        } else {
            0
        };
        s.handle_control(now, &peer_packet(received, your), 255)
            .expect("accepted");
        assert_eq!(s.state(), expected, "{from} + {received}");
        let evs = events(&mut s);
        if expected != from {
            assert_eq!(changes(&evs), vec![(from, expected)], "{from} + {received}");
        } else {
            assert!(changes(&evs).is_empty(), "{from} + {received}");
        }
    }
}

/// Going Down on the peer's word sets diagnostic 3 (6.8.6 steps 20-21).
#[test]
fn peer_signalled_down_sets_diagnostic_3() {
    let (mut s, now) = session();
    s.handle_control(now, &peer_packet(State::Init, OURS), 255)
        .unwrap();
    assert_eq!(s.state(), State::Up);
    s.handle_control(now, &peer_packet(State::Down, OURS), 255)
        .unwrap();
    assert_eq!(
        s.local_diagnostic(),
        Diagnostic::NeighborSignaledSessionDown
    );
    assert_eq!(s.last_down_reason(), Some(Reason::PeerState(State::Down)));
}

/// 6.8.6 steps 7-8: Your Discriminator must be ours, or zero in Down/AdminDown only.
#[test]
fn discriminator_checks() {
    let (mut s, now) = session();
    assert_eq!(
        s.handle_control(now, &peer_packet(State::Down, 99), 255),
        Err(Discard::WrongDiscriminator {
            got: 99,
            ours: OURS
        })
    );
    for st in [State::Init, State::Up] {
        assert_eq!(
            s.handle_control(now, &peer_packet(st, 0), 255),
            Err(Discard::ZeroDiscriminatorInState(st))
        );
    }
    assert_eq!(s.stats().discarded, 3);
    assert_eq!(s.stats().received, 0);
    assert_eq!(s.state(), State::Down);
    assert_eq!(
        s.remote_discriminator(),
        0,
        "discarded packets teach nothing"
    );
    let mut p = peer_packet(State::AdminDown, 0);
    p.control_plane_independent = true;
    s.handle_control(now, &p, 255)
        .expect("AdminDown with zero is fine");
    assert_eq!(s.remote_discriminator(), 0x77, "6.8.6 step 11");
    assert!(s.remote_control_plane_independent());
}

/// RFC 5881 5: single hop requires TTL 255; RFC 5883 5: multihop a configured minimum.
#[test]
fn ttl_is_checked_first() {
    let (mut s, now) = session();
    assert_eq!(
        s.handle_control(now, &peer_packet(State::Down, 0), 254),
        Err(Discard::Ttl { ttl: 254, min: 255 })
    );
    let mut c = config();
    c.hops = Hops::Multi { min_ttl: 200 };
    let mut m = Session::new(c, discr(OURS), now);
    assert!(m
        .handle_control(now, &peer_packet(State::Down, 0), 200)
        .is_ok());
    assert_eq!(
        m.handle_control(now, &peer_packet(State::Down, 0), 199),
        Err(Discard::Ttl { ttl: 199, min: 200 })
    );
}

/// 6.8.4: Detection Time = remote Detect Mult x max(our Required Min RX, remote Desired
/// Min TX); expiry in Init or Up goes Down with diagnostic 1.
#[test]
fn detection_time_formula_and_expiry() {
    let (mut s, now) = session();
    assert_eq!(s.detection_time(), None, "nothing received yet");
    let mut p = peer_packet(State::Down, 0);
    p.detect_mult = NonZeroU8::new(5).unwrap();
    p.desired_min_tx_us = 400_000;
    s.handle_control(now, &p, 255).unwrap();
    assert_eq!(s.state(), State::Init);
    assert_eq!(s.detection_time(), Some(ms(2000)), "5 x max(300, 400)");
    p.desired_min_tx_us = 100_000;
    s.handle_control(now, &p, 255).unwrap();
    assert_eq!(s.detection_time(), Some(ms(1500)), "5 x max(300, 100)");
    assert_eq!(
        s.poll_timeout(),
        Some(now + ms(1000)),
        "next slow packet first"
    );
    s.handle_timeout(now + ms(1499));
    assert_eq!(s.state(), State::Init);
    events(&mut s);
    s.handle_timeout(now + ms(1500));
    assert_eq!(s.state(), State::Down);
    assert_eq!(
        events(&mut s)[0],
        SessionEvent::StateChanged {
            from: State::Init,
            to: State::Down,
            reason: Reason::DetectionTimeExpired
        }
    );
    assert_eq!(
        s.local_diagnostic(),
        Diagnostic::ControlDetectionTimeExpired
    );
    assert_eq!(s.remote_discriminator(), 0);
}

/// 6.8.7: interval = max(our Desired Min TX, remote Required Min RX); a Required Min RX
/// of zero stops periodic packets.
#[test]
fn transmit_interval_follows_the_slower_side() {
    let (mut s, now) = session();
    assert_eq!(s.transmit_interval(), ms(1000), "not Up: 1 s");
    let mut p = peer_packet(State::Init, OURS);
    p.required_min_rx_us = 2_000_000;
    s.handle_control(now, &p, 255).unwrap();
    assert_eq!(s.state(), State::Up);
    assert_eq!(s.transmit_interval(), ms(2000));
    p.required_min_rx_us = 50_000;
    s.handle_control(now, &p, 255).unwrap();
    assert_eq!(s.transmit_interval(), ms(300));
    assert!(
        s.poll_timeout().unwrap() <= now + ms(300),
        "brought forward"
    );
    p.required_min_rx_us = 0;
    s.handle_control(now, &p, 255).unwrap();
    sent(&mut s);
    let mut t = now;
    for _ in 0..10 {
        t += ms(300);
        s.handle_control(t, &p, 255).unwrap();
        s.handle_timeout(t);
    }
    assert!(sent(&mut s).is_empty(), "peer asked for no packets");
}

/// 6.8.6 step 23 and 6.8.7: a Poll is answered at once with Final and never with both
/// bits; while our own Poll Sequence runs the Final goes out on its own.
#[test]
fn poll_is_answered_with_a_separate_final() {
    let (mut s, now) = session();
    s.handle_control(now, &peer_packet(State::Init, OURS), 255)
        .unwrap();
    assert!(
        s.poll_in_progress(),
        "Up: 1 s -> 300 ms needs a Poll Sequence"
    );
    let mut p = peer_packet(State::Up, OURS);
    p.poll_bit = true;
    s.handle_control(now, &p, 255).unwrap();
    let out = sent(&mut s);
    assert_eq!(
        out.len(),
        1,
        "the Final at once, the periodic Poll on its timer"
    );
    assert!(out[0].final_bit && !out[0].poll_bit);
    s.handle_timeout(s.poll_timeout().unwrap());
    let out = sent(&mut s);
    assert_eq!(out.len(), 1);
    assert!(out[0].poll_bit && !out[0].final_bit);
    // The Final from the peer ends our sequence.
    let mut f = peer_packet(State::Up, OURS);
    f.final_bit = true;
    s.handle_control(now, &f, 255).unwrap();
    assert!(!s.poll_in_progress());
}

/// 6.8.3: not Up means at most one packet a second, Up means the configured rate.
#[test]
fn desired_min_tx_is_one_second_until_up() {
    let now = Instant::now();
    let mut s = Session::new(config(), discr(OURS), now);
    s.handle_timeout(now);
    let first = sent(&mut s);
    assert_eq!(first[0].desired_min_tx_us, 1_000_000);
    assert_eq!(
        first[0].required_min_rx_us, 300_000,
        "receive rate is not slowed"
    );
    s.handle_control(now, &peer_packet(State::Init, OURS), 255)
        .unwrap();
    s.handle_timeout(s.poll_timeout().unwrap());
    let p = sent(&mut s).pop().expect("a packet");
    assert_eq!(p.state, State::Up);
    assert_eq!(p.desired_min_tx_us, 300_000);
    assert!(p.poll_bit);
}

/// 6.8.7: with the peer in demand mode and both Up, periodic packets stop (a Poll
/// Sequence still goes out).
#[test]
fn peer_demand_mode_stops_periodic_packets() {
    let (mut s, now) = session();
    let mut p = peer_packet(State::Init, OURS);
    p.demand = true;
    s.handle_control(now, &p, 255).unwrap();
    p.state = State::Up;
    p.final_bit = true;
    s.handle_control(now, &p, 255).unwrap();
    assert!(!s.poll_in_progress());
    sent(&mut s);
    // The peer keeps sending (we are not in demand mode), we stay silent.
    p.final_bit = false;
    let mut t = now;
    for _ in 0..5 {
        t += ms(300);
        s.handle_control(t, &p, 255).unwrap();
        s.handle_timeout(t);
    }
    assert_eq!(s.state(), State::Up);
    assert!(sent(&mut s).is_empty());
    s.set_timers(t, ms(200), ms(200), NonZeroU8::new(3).unwrap());
    t += ms(300);
    s.handle_timeout(t);
    assert!(sent(&mut s).iter().all(|pk| pk.poll_bit));
}

/// 6.8.1: the peer's variables start at RemoteMinRxInterval 1 us, nothing else known.
#[test]
fn initial_remote_variables() {
    let (s, _) = session();
    assert_eq!(s.remote_state(), State::Down);
    assert_eq!(s.remote_discriminator(), 0);
    assert_eq!(s.remote_intervals(), (ms(0), ms(0), 0));
    assert_eq!(s.advertised_intervals(), (ms(1000), ms(300)));
    assert_eq!(s.local_discriminator(), discr(OURS));
}
