//! Timers and the outbound queue, against a scripted peer on a virtual clock: the large
//! OpenSent hold time, connect-retry backoff, the RFC 9687 SendHoldTimer, queue bounds
//! and backpressure, RFC 7606 outcomes passed through without a reset.

mod session_support;

use std::time::{Duration, Instant};

use bgp_proto::session::{DownReason, SendError, Session, SessionConfig, SessionEvent, State};
use bgp_proto::wire::frame_len;
use bgp_proto::{Family, Message, Nlri, RefreshSubtype, RouteRefresh, Update};
use bytes::Bytes;
use session_support::*;

/// A session Established with a scripted peer at the returned instant, everything
/// drained.
fn established(config: SessionConfig) -> (Session, Instant) {
    let now = Instant::now();
    let mut s = Session::new(config);
    s.start(now);
    s.handle_connected(now);
    s.handle_data(now, &open_bytes_from_b());
    s.handle_data(now, &keepalive_bytes());
    assert_eq!(s.state(), State::Established);
    events(&mut s);
    sent(&mut s);
    (s, now)
}

/// An UPDATE close to the 4096-byte limit: 900 /24s.
fn big_update() -> Update {
    let mut u = update(AS_B, "10.0.0.0/24");
    u.nlri = (0..900u32)
        .map(|i| {
            let net = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(0x0A00_0000 + (i << 8)), 24)
                .expect("valid prefix");
            Nlri::new(net.into())
        })
        .collect();
    u
}

#[test]
fn open_sent_waits_with_the_large_hold_time() {
    let now = Instant::now();
    let mut s = Session::new(config_a());
    s.start(now);
    s.handle_connected(now);
    sent(&mut s);
    assert_eq!(s.poll_timeout(), Some(now + secs(240)));
    s.handle_timeout(now + secs(239));
    assert_eq!(s.state(), State::OpenSent);
    s.handle_timeout(now + secs(240));
    assert_eq!(s.state(), State::Idle);
    assert_eq!(notifications(&sent(&mut s)), vec![(4, 0)]);
}

#[test]
fn negotiated_timers_replace_the_open_hold_time() {
    let (s, now) = established(config_a());
    // Keepalive after 30 s comes first; hold is 90 s.
    assert_eq!(s.poll_timeout(), Some(now + secs(30)));
}

#[test]
fn hold_timer_restarts_on_every_message() {
    let (mut s, now) = established(config_a());
    let mut t = now;
    for _ in 0..10 {
        t += secs(80);
        s.handle_timeout(t - secs(50)); // the keepalive we send is no sign of life
        s.handle_data(t, &keepalive_bytes());
        sent(&mut s);
        assert_eq!(s.state(), State::Established);
    }
    s.handle_timeout(t + secs(89));
    assert_eq!(s.state(), State::Established);
    s.handle_timeout(t + secs(90));
    assert_eq!(s.state(), State::Idle);
    assert_eq!(downs(&events(&mut s)), vec![DownReason::HoldTimerExpired]);
}

#[test]
fn held_input_restarts_a_due_hold_timer_until_it_is_read() {
    let (mut s, now) = established(config_a());
    // The caller stopped reading (a busy RIB) while the peer keeps sending: the hold
    // timer is not judged over messages that arrived but wait unread.
    let mut t = now + secs(90);
    for _ in 0..5 {
        s.handle_input_held(t);
        s.handle_timeout(t);
        sent(&mut s);
        assert_eq!(s.state(), State::Established);
        t += secs(90);
    }
    // Not due yet: nothing changes.
    s.handle_input_held(t - secs(1));
    // Once the input is read (or nothing is held), the timer runs as usual.
    s.handle_timeout(t);
    assert_eq!(s.state(), State::Idle);
    assert_eq!(downs(&events(&mut s)), vec![DownReason::HoldTimerExpired]);
}

#[test]
fn connect_retry_timer_retries_with_backoff_when_connect_hangs() {
    let now = Instant::now();
    let mut c = config_a();
    c.connect_retry = secs(10);
    c.connect_retry_max = secs(60);
    let mut s = Session::new(c);
    s.start(now);
    let mut attempts = vec![now];
    events(&mut s);
    let mut t = now;
    for _ in 0..6 {
        t = s.poll_timeout().expect("ConnectRetryTimer");
        s.handle_timeout(t);
        let evs = events(&mut s);
        // Each expiry abandons the hanging attempt and starts a new one.
        assert_eq!(evs, vec![SessionEvent::Disconnect, SessionEvent::Connect]);
        attempts.push(t);
        assert_eq!(s.state(), State::Connect);
    }
    let gaps: Vec<u64> = attempts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs())
        .collect();
    assert_eq!(gaps, vec![10, 20, 40, 60, 60, 60]);
    // ManualStart resets the backoff.
    s.stop(t, None);
    s.start(t);
    assert_eq!(s.poll_timeout(), Some(t + secs(10)));
}

/// Peers started together: the first attempts are refused until the peer listens. They
/// are retried after 1 s, 2 s, 4 s, then on the ConnectRetryTime backoff (5 s, 10 s, ...);
/// a session that was up and closes waits ConnectRetryTime as before.
#[test]
fn refused_connects_retry_sooner_than_connect_retry_time() {
    let now = Instant::now();
    let mut s = Session::new(config_a());
    s.start(now);
    events(&mut s);
    let mut t = now;
    let mut waits = Vec::new();
    for _ in 0..4 {
        s.handle_connect_failed(t);
        assert_eq!(s.state(), State::Idle);
        assert_eq!(downs(&events(&mut s)), vec![DownReason::ConnectionFailed]);
        let next = s.poll_timeout().expect("IdleHoldTimer");
        waits.push((next - t).as_secs());
        s.handle_timeout(next);
        assert_eq!(s.state(), State::Connect);
        assert!(events(&mut s).contains(&SessionEvent::Connect));
        t = next;
    }
    assert_eq!(waits, vec![1, 2, 4, 5]);
    // The peer listens now: the session comes up and the backoff is reset.
    s.handle_connected(t);
    s.handle_data(t, &open_bytes_from_b());
    s.handle_data(t, &keepalive_bytes());
    assert_eq!(s.state(), State::Established);
    events(&mut s);
    sent(&mut s);
    // An Established connection that closes waits ConnectRetryTime, as before.
    s.handle_closed(t);
    assert_eq!(s.state(), State::Idle);
    assert_eq!(downs(&events(&mut s)), vec![DownReason::ConnectionClosed]);
    assert_eq!(s.poll_timeout(), Some(t + secs(5)), "IdleHoldTimer");
}

#[test]
fn stop_cancels_the_automatic_restart() {
    let now = Instant::now();
    let mut s = Session::new(config_a());
    s.start(now);
    s.handle_connect_failed(now);
    assert_eq!(s.state(), State::Idle);
    // A refused connect is retried after 1 s, not ConnectRetryTime (5 s here).
    assert_eq!(s.poll_timeout(), Some(now + secs(1)), "IdleHoldTimer");
    s.stop(now, None);
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(now + secs(3600));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn send_hold_timer_closes_a_session_whose_peer_does_not_read() {
    let (mut s, t0) = established(config_a());
    s.send_update(&update(AS_A, "10.1.0.0/24")).unwrap();
    // The caller cannot write (peer not reading), so it does not poll_transmit. The
    // session asks to be called at once to start the timer from a real `now`.
    assert_eq!(s.poll_timeout(), Some(t0));
    s.handle_timeout(t0);
    // The peer keeps sending KEEPALIVEs, so the hold timer never fires; our queue never
    // drains. Run the clock one event at a time.
    let mut t;
    let mut next_peer_keepalive = t0 + secs(30);
    let down_at = loop {
        let next = s
            .poll_timeout()
            .map_or(next_peer_keepalive, |d| d.min(next_peer_keepalive));
        t = next;
        if t == next_peer_keepalive {
            s.handle_data(t, &keepalive_bytes());
            next_peer_keepalive += secs(30);
        } else {
            s.handle_timeout(t);
        }
        if s.state() != State::Established {
            break t;
        }
        assert!(t < t0 + secs(3600), "send hold timer never fired");
    };
    // RFC 9687: max(8 minutes, 2 x 90 s).
    assert_eq!(down_at - t0, Duration::from_secs(480));
    assert_eq!(
        downs(&events(&mut s)),
        vec![DownReason::SendHoldTimerExpired]
    );
    // Queued UPDATEs and KEEPALIVEs were dropped; only the NOTIFICATION is left.
    assert_eq!(notifications(&sent(&mut s)), vec![(8, 0)]);
}

#[test]
fn send_hold_timer_restarts_while_the_peer_reads_slowly() {
    let mut c = config_a();
    c.hold_time = 0; // no keepalives: only the send hold timer runs
    c.max_queued_bytes = usize::MAX;
    let (mut s, t0) = established(c);
    let ctx = s.negotiated().unwrap().codec.clone();
    let frame = encode(&Message::Update(big_update()), &ctx);
    assert!(frame.len() > 3600 && frame.len() <= 4096);
    // Every minute: 20 frames queued, one poll_transmit (17 coalesced frames) taken. The
    // backlog grows but the peer makes progress, so the session stays up for an hour.
    let mut t = t0;
    for _ in 0..60 {
        s.send_encoded(vec![frame.clone(); 20]).unwrap();
        if let Some(due) = s.poll_timeout().filter(|d| *d <= t) {
            s.handle_timeout(due.max(t));
        }
        t += secs(60);
        s.handle_timeout(t);
        assert_eq!(s.state(), State::Established);
        let chunk = s.poll_transmit().expect("backlog");
        assert_eq!(chunk.len(), 17 * frame.len(), "as many as fit in 64 KiB");
    }
    assert_eq!(s.queued_bytes(), 60 * 3 * frame.len());
    // Now the peer stops reading entirely: down after 8 minutes.
    s.handle_timeout(t);
    let deadline = s.poll_timeout().expect("send hold timer");
    assert_eq!(deadline - t, secs(480));
    s.handle_timeout(deadline);
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn configured_send_hold_time_is_used() {
    let mut c = config_a();
    c.send_hold_time = Some(secs(100));
    let (mut s, t0) = established(c);
    s.send_update(&update(AS_A, "10.1.0.0/24")).unwrap();
    s.handle_timeout(t0);
    s.handle_timeout(t0 + secs(30)); // keepalive, queued behind
    assert!(s.state() == State::Established);
    s.handle_data(t0 + secs(60), &keepalive_bytes());
    s.handle_timeout(t0 + secs(100));
    assert_eq!(
        downs(&events(&mut s)),
        vec![DownReason::SendHoldTimerExpired]
    );
}

#[test]
fn outbound_queue_is_bounded_and_observable() {
    let mut c = config_a();
    c.max_queued_bytes = 20_000;
    let (mut s, _) = established(c);
    assert_eq!(s.queued_bytes(), 0);
    assert_eq!(s.send_capacity(), 20_000);
    let big = big_update();
    let mut accepted = 0;
    let err = loop {
        match s.send_update(&big) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(accepted, 5, "5 x ~3.6 KB fit in 20 KB");
    assert!(matches!(err, SendError::QueueFull { limit: 20_000, .. }));
    assert!(s.queued_bytes() <= 20_000);
    assert!(s.send_capacity() < 4096);
    // Draining makes room again; everything drained frames into whole messages.
    let drained: Vec<u8> = std::iter::from_fn(|| s.poll_transmit())
        .flat_map(|b| b.to_vec())
        .collect();
    assert_eq!(s.queued_bytes(), 0);
    let msgs = decode_stream(&drained, &Default::default());
    assert_eq!(kinds(&msgs), vec!["UPDATE"; 5]);
    s.send_update(&big).unwrap();
}

#[test]
fn control_messages_ignore_the_queue_bound() {
    let mut c = config_a();
    c.max_queued_bytes = 100;
    let (mut s, t0) = established(c);
    s.handle_timeout(t0 + secs(30));
    s.handle_timeout(t0 + secs(60));
    assert_eq!(kinds(&sent(&mut s)), vec!["KEEPALIVE", "KEEPALIVE"]);
    s.send_route_refresh(RouteRefresh {
        family: Family::IPV4_UNICAST,
        subtype: RefreshSubtype::Normal,
    })
    .unwrap();
    assert_eq!(kinds(&sent(&mut s)), vec!["ROUTE-REFRESH"]);
}

#[test]
fn nothing_can_be_sent_before_established() {
    let now = Instant::now();
    let mut s = Session::new(config_a());
    let u = update(AS_A, "10.1.0.0/24");
    assert_eq!(s.send_update(&u), Err(SendError::NotEstablished));
    s.start(now);
    s.handle_connected(now);
    s.handle_data(now, &open_bytes_from_b());
    assert_eq!(s.state(), State::OpenConfirm);
    assert_eq!(s.send_update(&u), Err(SendError::NotEstablished));
    assert_eq!(
        s.send_encoded(vec![Bytes::from_static(b"x")]),
        Err(SendError::NotEstablished)
    );
}

#[test]
fn poll_transmit_hands_out_whole_messages() {
    let (mut s, _) = established(config_a());
    for i in 0..50 {
        s.send_update(&update(AS_A, &format!("10.2.{i}.0/24")))
            .unwrap();
    }
    let mut chunks = 0;
    while let Some(chunk) = s.poll_transmit() {
        chunks += 1;
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let len = frame_len(rest, 4096).unwrap().expect("whole message");
            rest = &rest[len..];
        }
    }
    assert_eq!(chunks, 1, "small messages are coalesced");
}

#[test]
fn treat_as_withdraw_is_passed_on_without_a_reset() {
    let (mut s, now) = established(config_a());
    let ctx = s.negotiated().unwrap().codec.clone();
    let mut bytes = encode(&Message::Update(update(AS_B, "10.3.0.0/24")), &ctx).to_vec();
    // First attribute: ORIGIN (flags, type 1, length 1, value). 7 is not a valid origin:
    // RFC 7606 7.1 treat-as-withdraw.
    assert_eq!(bytes[24], 1, "ORIGIN is the first attribute");
    bytes[26] = 7;
    s.handle_data(now, &bytes);
    assert_eq!(s.state(), State::Established);
    assert!(sent(&mut s).is_empty(), "no NOTIFICATION");
    let evs = events(&mut s);
    match evs.as_slice() {
        [SessionEvent::Update(d)] => {
            assert!(d.treat_as_withdraw.is_some(), "{d:?}");
            assert_eq!(d.update.nlri.len(), 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn route_refresh_for_a_family_not_negotiated_is_ignored() {
    let (mut s, now) = established(config_a());
    let rr = encode_default(&Message::RouteRefresh(RouteRefresh {
        family: Family::IPV6_UNICAST,
        subtype: RefreshSubtype::Normal,
    }));
    s.handle_data(now, &rr);
    assert_eq!(s.state(), State::Established);
    assert!(events(&mut s).is_empty());
    assert!(sent(&mut s).is_empty());
}

#[test]
fn end_of_rib_arrives_as_an_update() {
    let (mut s, now) = established(config_a());
    s.handle_data(now, &encode_default(&Message::Update(Update::default())));
    match events(&mut s).as_slice() {
        [SessionEvent::Update(d)] => {
            assert_eq!(d.update.end_of_rib(), Some(Family::IPV4_UNICAST));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_partial_message_is_buffered_until_complete() {
    let (mut s, now) = established(config_a());
    let ka = keepalive_bytes();
    s.handle_data(now + secs(80), &ka[..10]);
    s.handle_timeout(now + secs(89));
    s.handle_data(now + secs(89), &ka[10..]);
    s.handle_timeout(now + secs(170));
    assert_eq!(s.state(), State::Established, "hold restarted at 89 s");
    s.handle_timeout(now + secs(179));
    assert_eq!(s.state(), State::Idle);
}
