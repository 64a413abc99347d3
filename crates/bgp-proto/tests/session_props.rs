//! Property tests: arbitrary bytes and arbitrary sequences of transport events, commands
//! and clock jumps never panic the session, and its invariants hold after every step.

mod session_support;

use std::time::{Duration, Instant};

use bgp_proto::session::{Session, SessionEvent, State};
use proptest::prelude::*;
use session_support::*;

#[derive(Clone, Debug)]
enum Step {
    Start,
    Stop,
    Connected,
    ConnectFailed,
    Closed,
    /// Arbitrary bytes.
    Garbage(Vec<u8>),
    /// Well-formed messages from the peer, possibly split.
    PeerOpen(usize),
    PeerKeepalive,
    PeerUpdate,
    PeerNotification,
    /// Jump the clock by this many seconds, then fire due timers.
    Advance(u16),
    Drain,
    SendUpdate,
    CollisionDump,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Start),
        Just(Step::Stop),
        Just(Step::Connected),
        Just(Step::ConnectFailed),
        Just(Step::Closed),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Step::Garbage),
        (0usize..80).prop_map(Step::PeerOpen),
        Just(Step::PeerKeepalive),
        Just(Step::PeerUpdate),
        Just(Step::PeerNotification),
        (0u16..400).prop_map(Step::Advance),
        Just(Step::Drain),
        Just(Step::SendUpdate),
        Just(Step::CollisionDump),
    ]
}

fn check_invariants(s: &Session, now: Instant) {
    match s.state() {
        State::Idle | State::Connect | State::Active => {
            // Negotiated only exists between an accepted OPEN and the end of the
            // connection.
            assert!(s.negotiated().is_none());
        }
        State::OpenConfirm | State::Established => assert!(s.negotiated().is_some()),
        State::OpenSent => assert!(s.negotiated().is_none()),
    }
    if let Some(t) = s.poll_timeout() {
        // A deadline is never further out than the longest timer (4-minute open hold,
        // 2-minute connect-retry cap, 8-minute send hold) from the current instant.
        assert!(t <= now + Duration::from_secs(480), "{t:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_in_any_state(
        setup in 0u8..3,
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..8),
    ) {
        let now = Instant::now();
        let mut s = Session::new(config_a());
        s.start(now);
        s.handle_connected(now);
        if setup >= 1 {
            s.handle_data(now, &open_bytes_from_b());
        }
        if setup >= 2 {
            s.handle_data(now, &keepalive_bytes());
        }
        events(&mut s);
        sent(&mut s);
        for chunk in &chunks {
            s.handle_data(now, chunk);
            check_invariants(&s, now);
        }
        // Whatever happened, at most one NOTIFICATION went out and the session either
        // still runs or is down with a reason.
        let evs = events(&mut s);
        let out: Vec<u8> = std::iter::from_fn(|| s.poll_transmit()).flat_map(|b| b.to_vec()).collect();
        let msgs = decode_stream(&out, &Default::default());
        prop_assert!(notifications(&msgs).len() <= 1);
        if s.state() == State::Idle {
            prop_assert_eq!(downs(&evs).len(), 1);
        }
    }

    #[test]
    fn arbitrary_event_sequences_keep_invariants(steps in proptest::collection::vec(step(), 1..60)) {
        let mut now = Instant::now();
        let mut s = Session::new(config_a());
        let open = open_bytes_from_b();
        for st in steps {
            match st {
                Step::Start => s.start(now),
                Step::Stop => s.stop(now, None),
                Step::Connected => s.handle_connected(now),
                Step::ConnectFailed => s.handle_connect_failed(now),
                Step::Closed => s.handle_closed(now),
                Step::Garbage(b) => s.handle_data(now, &b),
                Step::PeerOpen(split) => {
                    let split = split.min(open.len());
                    s.handle_data(now, &open[..split]);
                    s.handle_data(now, &open[split..]);
                }
                Step::PeerKeepalive => s.handle_data(now, &keepalive_bytes()),
                Step::PeerUpdate => {
                    let ctx = s.negotiated().map(|n| n.codec.clone()).unwrap_or_default();
                    let u = encode(&bgp_proto::Message::Update(update(AS_B, "10.9.0.0/16")), &ctx);
                    s.handle_data(now, &u);
                }
                Step::PeerNotification => s.handle_data(now, &notification_bytes(6, 4)),
                Step::Advance(secs) => {
                    now += Duration::from_secs(u64::from(secs));
                    s.handle_timeout(now);
                }
                Step::Drain => {
                    let mut taken = 0;
                    let queued = s.queued_bytes();
                    while let Some(b) = s.poll_transmit() {
                        taken += b.len();
                    }
                    prop_assert_eq!(taken, queued);
                    prop_assert_eq!(s.queued_bytes(), 0);
                }
                Step::SendUpdate => {
                    let r = s.send_update(&update(AS_A, "10.8.0.0/16"));
                    prop_assert_eq!(r.is_ok(), s.state() == State::Established);
                }
                Step::CollisionDump => s.collision_dump(now),
            }
            check_invariants(&s, now);
            // Events are consistent with the state they leave the session in.
            let evs = events(&mut s);
            if let Some(SessionEvent::StateChanged { to, .. }) = evs
                .iter()
                .rev()
                .find(|e| matches!(e, SessionEvent::StateChanged { .. }))
            {
                prop_assert_eq!(*to, s.state());
            }
        }
    }
}
