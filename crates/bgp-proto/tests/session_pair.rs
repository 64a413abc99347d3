//! Two sessions wired back to back in memory with a virtual clock: they reach
//! Established, negotiate, exchange UPDATEs, keep the session alive, time out, stop,
//! reconnect and resolve collisions (RFC 4271 6.8).

mod session_support;

use std::net::Ipv4Addr;
use std::time::Instant;

use bgp_proto::session::{
    resolve_collision, CollisionOutcome, DownReason, Session, SessionConfig, SessionEvent, State,
};
use bgp_proto::wire::Inbound;
use bgp_proto::{
    AddPathMode, Capability, Family, GracefulRestart, GracefulRestartFamily, Message, Nlri,
    Notification, AS_TRANS,
};
use session_support::*;

#[test]
fn reach_established_and_exchange_updates() {
    let mut p = Pair::new(config_a(), config_b());
    p.establish();
    for side in [&p.a, &p.b] {
        let est = side
            .events
            .iter()
            .filter(|e| matches!(e, SessionEvent::Established(_)))
            .count();
        assert_eq!(est, 1);
        assert_eq!(side.sent_count("OPEN"), 1);
    }
    assert_eq!(p.connects, 1);

    let ua = update(AS_A, "10.10.0.0/24");
    p.a.session.send_update(&ua).unwrap();
    let ub = update(AS_B, "10.20.0.0/16");
    p.b.session.send_update(&ub).unwrap();
    p.drive();
    assert_eq!(p.b.updates_received(), vec![ua]);
    assert_eq!(p.a.updates_received(), vec![ub]);
    assert_eq!(p.a.session.queued_bytes(), 0);
}

#[test]
fn the_passive_side_never_connects() {
    let mut s = Session::new(config_b());
    let now = Instant::now();
    s.start(now);
    assert_eq!(s.state(), State::Active);
    assert!(!events(&mut s).contains(&SessionEvent::Connect));
    assert_eq!(s.poll_timeout(), None, "no ConnectRetryTimer when passive");
}

#[test]
fn negotiated_capabilities_match_on_both_sides() {
    let v4 = Family::IPV4_UNICAST;
    let v6 = Family::IPV6_UNICAST;
    let gr = GracefulRestart {
        restart_state: false,
        notification: true,
        restart_time: 120,
        families: vec![GracefulRestartFamily {
            family: v4,
            forwarding_preserved: true,
        }],
    };
    let mut a = config_a();
    a.capabilities.families = vec![v4, v6];
    a.capabilities.add_path = vec![(v4, AddPathMode::Both), (v6, AddPathMode::Receive)];
    a.capabilities.extended_message = true;
    a.capabilities.enhanced_route_refresh = true;
    let mut b = config_b();
    b.local_as = 4_200_000_002;
    a.remote_as = Some(4_200_000_002);
    b.capabilities.families = vec![
        v4,
        v6,
        Family::new(bgp_proto::Afi::L2VPN, bgp_proto::Safi::EVPN),
    ];
    b.capabilities.add_path = vec![(v4, AddPathMode::Receive), (v6, AddPathMode::Both)];
    b.capabilities.graceful_restart = Some(gr.clone());
    b.capabilities.extended_message = true;

    let mut p = Pair::new(a, b);
    p.establish();
    let na = p.a.session.negotiated().unwrap().clone();
    let nb = p.b.session.negotiated().unwrap().clone();

    assert_eq!(na.peer_as, 4_200_000_002);
    assert_eq!(na.peer_open.my_as, AS_TRANS);
    assert_eq!(nb.peer_as, AS_A);
    assert_eq!(na.peer_id, ID_B);
    assert_eq!(nb.peer_id, ID_A);
    assert_eq!(p.a.session.peer_bgp_id(), Some(ID_B));
    assert_eq!(na.families, vec![v4, v6]);
    assert_eq!(nb.families, vec![v4, v6]);
    assert!(na.codec.four_octet_as && nb.codec.four_octet_as);
    assert!(na.codec.extended_message && nb.codec.extended_message);
    // a sends path ids for v4 (a Both, b Receive) and receives them for v6 (a Receive,
    // b Both); b mirrors it.
    assert_eq!(na.codec.add_path_send, vec![v4]);
    assert_eq!(na.codec.add_path_receive, vec![v6]);
    assert_eq!(nb.codec.add_path_send, vec![v6]);
    assert_eq!(nb.codec.add_path_receive, vec![v4]);
    assert_eq!(na.peer_graceful_restart, Some(gr));
    assert_eq!(nb.peer_graceful_restart, None);
    assert!(na.route_refresh && nb.route_refresh);
    assert!(!na.enhanced_route_refresh, "only a announced it");
    assert_eq!(na.hold_time, 90);
    assert_eq!(na.keepalive_time, 30);

    // The contexts are used on the wire: a path id survives the trip a -> b.
    let mut u = update(4_200_000_002, "10.30.0.0/24");
    u.nlri = vec![Nlri {
        path_id: Some(7),
        ..u.nlri[0]
    }];
    p.a.session.send_update(&u).unwrap();
    p.drive();
    let got = p.b.updates_received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].nlri[0].path_id, Some(7));
    assert_eq!(got[0].attributes.as_path, u.attributes.as_path);
}

#[test]
fn keepalives_flow_and_keep_the_session_up() {
    let mut p = Pair::new(config_a(), config_b());
    p.establish();
    let before = p.a.sent_count("KEEPALIVE");
    p.advance(secs(600));
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(p.b.state(), State::Established);
    // One every 30 s (a third of the 90 s hold time) for 10 minutes.
    let sent = p.a.sent_count("KEEPALIVE") - before;
    assert!((19..=21).contains(&sent), "{sent} keepalives");
    assert!(p.a.downs().is_empty() && p.b.downs().is_empty());
}

#[test]
fn updates_stand_in_for_keepalives() {
    let mut p = Pair::new(config_a(), config_b());
    p.establish();
    let before = p.a.sent_count("KEEPALIVE");
    // An UPDATE every 20 s: a never needs to send a KEEPALIVE (RFC 4271 4.4).
    for i in 0..30 {
        p.a.session
            .send_update(&update(AS_A, &format!("10.40.{i}.0/24")))
            .unwrap();
        p.advance(secs(20));
    }
    assert_eq!(p.a.sent_count("KEEPALIVE"), before);
    assert_eq!(p.b.updates_received().len(), 30);
    assert_eq!(p.b.state(), State::Established);
}

#[test]
fn hold_time_zero_means_no_keepalives_and_no_timers() {
    let mut a = config_a();
    a.hold_time = 0;
    let mut p = Pair::new(a, config_b());
    p.establish();
    assert_eq!(p.a.session.negotiated().unwrap().hold_time, 0);
    assert_eq!(p.b.session.negotiated().unwrap().keepalive_time, 0);
    let before = (p.a.sent_count("KEEPALIVE"), p.b.sent_count("KEEPALIVE"));
    assert_eq!(p.a.session.poll_timeout(), None);
    assert_eq!(p.b.session.poll_timeout(), None);
    p.advance(secs(3600));
    assert_eq!(
        (p.a.sent_count("KEEPALIVE"), p.b.sent_count("KEEPALIVE")),
        before
    );
    assert_eq!(p.a.state(), State::Established);
}

#[test]
fn hold_timer_expiry_sends_notification_4_0() {
    let mut p = Pair::new(config_a(), config_b());
    p.establish();
    // b's socket stops carrying data (b keeps running but nothing reaches a).
    p.b.stalled = true;
    p.advance(secs(91));
    assert_eq!(p.a.downs(), vec![DownReason::HoldTimerExpired]);
    assert_eq!(notifications(&p.a.sent), vec![(4, 0)]);
    let down_b = p.b.downs();
    match down_b.as_slice() {
        [DownReason::NotificationReceived(n)] => assert_eq!((n.code, n.subcode), (4, 0)),
        other => panic!("b: {other:?}"),
    }
}

#[test]
fn admin_stop_sends_cease_with_shutdown_communication() {
    let mut p = Pair::new(config_a(), config_b());
    p.establish();
    let n = Notification::admin_shutdown("planned maintenance");
    p.a.session.stop(p.now, Some(n.clone()));
    p.drive();
    assert_eq!(p.a.downs(), vec![DownReason::AdminStop(Some(n.clone()))]);
    assert_eq!(p.b.downs(), vec![DownReason::NotificationReceived(n)]);
    match p.a.sent.last() {
        Some(Inbound::Notification(sent)) => {
            assert_eq!((sent.code, sent.subcode), (6, 2));
            assert_eq!(
                sent.shutdown_message().as_deref(),
                Some("planned maintenance")
            );
        }
        other => panic!("{other:?}"),
    }
    // a stays down; b goes back to waiting.
    p.advance(secs(600));
    assert_eq!(p.a.state(), State::Idle);
    assert_eq!(p.b.state(), State::Active);
    assert_eq!(p.connects, 1);
}

#[test]
fn default_admin_stop_is_cease_2_without_data() {
    let mut p = Pair::new(config_a(), config_b());
    p.establish();
    p.b.session.stop(p.now, None);
    p.drive();
    match p.b.sent.last() {
        Some(Inbound::Notification(n)) => {
            assert_eq!((n.code, n.subcode), (6, 2));
            assert!(n.data.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn session_comes_back_after_a_failure() {
    let mut p = Pair::new(config_a(), config_b());
    p.establish();
    p.b.stalled = true;
    p.advance(secs(91));
    assert_eq!(p.a.state(), State::Idle);
    p.b.stalled = false;
    p.advance(secs(60));
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(p.b.state(), State::Established);
    assert_eq!(p.connects, 2);
}

#[test]
fn connect_retry_backs_off_exponentially_up_to_the_cap() {
    let mut p = Pair::new(config_a(), config_b());
    p.reachable = false;
    p.start();
    p.advance(secs(700));
    let gaps: Vec<u64> = p
        .attempts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs())
        .collect();
    // Refused attempts: 1 s doubling while under connect retry 5 s, then 5 s doubling to
    // the 120 s cap.
    assert_eq!(gaps, vec![1, 2, 4, 5, 10, 20, 40, 80, 120, 120, 120, 120]);
    // Reachable again: the next attempt succeeds, and a success resets the backoff.
    p.reachable = true;
    p.advance(secs(120));
    assert_eq!(p.a.state(), State::Established);
}

#[test]
fn delay_open_waits_for_the_peer_open() {
    // a delays; b sends its OPEN at once and a answers it without waiting.
    let mut a = config_a();
    a.delay_open = Some(secs(30));
    let mut p = Pair::new(a, config_b());
    p.start();
    // No time passed: a answered b's OPEN with its own OPEN and a KEEPALIVE (RFC 4271
    // 8.2.2 event 20) instead of waiting 30 s.
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(kinds(&p.a.sent), vec!["OPEN", "KEEPALIVE"]);
    assert_eq!(kinds(&p.b.sent), vec!["OPEN", "KEEPALIVE"]);

    // Both delay: nothing is sent until the DelayOpenTimer expires.
    let mut a = config_a();
    a.delay_open = Some(secs(5));
    let mut b = config_b();
    b.delay_open = Some(secs(5));
    let mut p = Pair::new(a, b);
    p.start();
    assert!(p.a.sent.is_empty() && p.b.sent.is_empty());
    assert_eq!((p.a.state(), p.b.state()), (State::Connect, State::Active));
    p.advance(secs(5));
    assert_eq!(
        (p.a.state(), p.b.state()),
        (State::Established, State::Established)
    );
}

#[test]
fn bad_open_is_refused_with_2_2_and_retried_later() {
    let mut b = config_b();
    b.local_as = 65099; // a expects 65002
    b.remote_as = Some(AS_A);
    let mut p = Pair::new(config_a(), b);
    p.start();
    assert_eq!(notifications(&p.a.sent), vec![(2, 2)]);
    match p.a.downs().as_slice() {
        [DownReason::NotificationSent {
            notification,
            reason,
        }] => {
            assert_eq!((notification.code, notification.subcode), (2, 2));
            assert!(reason.contains("65099"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        p.b.downs().as_slice(),
        [DownReason::NotificationReceived(_)]
    ));
    assert_eq!(p.a.state(), State::Idle);
    p.advance(secs(6));
    assert_eq!(p.connects, 2, "retried after the idle hold time");
}

/// Move bytes between two connected sessions until neither has anything to send.
fn pump(x: &mut Session, y: &mut Session, now: Instant) {
    loop {
        let mut moved = false;
        while let Some(b) = x.poll_transmit() {
            y.handle_data(now, &b);
            moved = true;
        }
        while let Some(b) = y.poll_transmit() {
            x.handle_data(now, &b);
            moved = true;
        }
        if !moved {
            break;
        }
    }
}

/// Two speakers connect to each other at once: each has an outbound session (active)
/// and an inbound one (passive) for the same peer, so there are two links. The OPENs
/// cross, all four sessions wait in OpenConfirm, and speaker A, seeing two sessions in
/// OpenConfirm for one peer, applies RFC 4271 6.8 with `resolve_collision`. The
/// survivor must be the link B would keep too; the loser is closed with Cease 6/7.
fn collision(id_a: Ipv4Addr, id_b: Ipv4Addr) -> CollisionOutcome {
    let now = Instant::now();
    let mut ca = config_a();
    ca.local_id = id_a;
    let mut cb = config_b();
    cb.local_id = id_b;
    cb.passive = false;
    let passive = |c: &SessionConfig| SessionConfig {
        passive: true,
        ..c.clone()
    };
    // Link 1: A connects to B. Link 2: B connects to A.
    let mut a_out = Session::new(ca.clone());
    let mut b_in = Session::new(passive(&cb));
    let mut b_out = Session::new(cb);
    let mut a_in = Session::new(passive(&ca));
    for s in [&mut a_out, &mut b_in, &mut b_out, &mut a_in] {
        s.start(now);
        s.handle_connected(now);
        assert_eq!(s.state(), State::OpenSent);
    }
    // Exchange the OPENs only.
    let opens: Vec<_> = [&mut a_out, &mut b_in, &mut b_out, &mut a_in]
        .into_iter()
        .map(|s| s.poll_transmit().expect("OPEN"))
        .collect();
    b_in.handle_data(now, &opens[0]);
    a_out.handle_data(now, &opens[1]);
    a_in.handle_data(now, &opens[2]);
    b_out.handle_data(now, &opens[3]);
    for s in [&a_out, &b_in, &b_out, &a_in] {
        assert_eq!(s.state(), State::OpenConfirm);
    }

    let at_a = resolve_collision(id_a, AS_A, a_out.peer_bgp_id().unwrap(), AS_B);
    let at_b = resolve_collision(id_b, AS_B, b_out.peer_bgp_id().unwrap(), AS_A);
    let keep_link1 = at_a == CollisionOutcome::KeepLocallyInitiated;
    assert_eq!(
        keep_link1,
        at_b == CollisionOutcome::KeepRemotelyInitiated,
        "both speakers keep the same connection"
    );

    // A applies its decision; B learns about it from the NOTIFICATION.
    let (mut keep_a, mut keep_b, mut dump_a, mut dump_b) = if keep_link1 {
        (a_out, b_in, a_in, b_out)
    } else {
        (a_in, b_out, a_out, b_in)
    };
    events(&mut dump_a);
    events(&mut dump_b);
    dump_a.collision_dump(now);
    let bytes: Vec<u8> = std::iter::from_fn(|| dump_a.poll_transmit())
        .flat_map(|b| b.to_vec())
        .collect();
    assert_eq!(
        notifications(&decode_stream(&bytes, &Default::default())),
        vec![(6, 7)]
    );
    dump_b.handle_data(now, &bytes);
    assert_eq!(downs(&events(&mut dump_a)), vec![DownReason::CollisionDump]);
    match downs(&events(&mut dump_b)).as_slice() {
        [DownReason::NotificationReceived(n)] => assert_eq!((n.code, n.subcode), (6, 7)),
        other => panic!("{other:?}"),
    }
    assert_eq!(dump_a.state(), State::Idle);
    assert_eq!(dump_b.state(), State::Idle);
    assert_eq!(
        dump_a.poll_timeout(),
        None,
        "a dumped session does not restart"
    );

    // The survivor completes.
    pump(&mut keep_a, &mut keep_b, now);
    assert_eq!(keep_a.state(), State::Established);
    assert_eq!(keep_b.state(), State::Established);
    at_a
}

#[test]
fn collision_keeps_the_connection_of_the_higher_identifier_both_ways() {
    // B has the higher identifier: B's connection (link 2) survives.
    assert_eq!(
        collision(Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::new(10, 0, 0, 10)),
        CollisionOutcome::KeepRemotelyInitiated
    );
    // A has the higher identifier: A's connection (link 1) survives.
    assert_eq!(
        collision(Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 9)),
        CollisionOutcome::KeepLocallyInitiated
    );
}

#[test]
fn collision_dump_in_open_confirm() {
    // The textbook case: the loser is dumped in OpenConfirm, before Established.
    let now = Instant::now();
    let mut s = Session::new(config_a());
    s.start(now);
    s.handle_connected(now);
    s.handle_data(now, &open_bytes_from_b());
    assert_eq!(s.state(), State::OpenConfirm);
    events(&mut s);
    sent(&mut s);
    s.collision_dump(now);
    assert_eq!(notifications(&sent(&mut s)), vec![(6, 7)]);
    let evs = events(&mut s);
    assert_eq!(downs(&evs), vec![DownReason::CollisionDump]);
    assert!(evs.contains(&SessionEvent::Disconnect));
    assert_eq!(s.poll_timeout(), None, "a dumped session does not restart");
}

#[test]
fn route_refresh_round_trip() {
    let mut p = Pair::new(config_a(), config_b());
    p.establish();
    let rr = bgp_proto::RouteRefresh {
        family: Family::IPV4_UNICAST,
        subtype: bgp_proto::RefreshSubtype::Normal,
    };
    p.a.session.send_route_refresh(rr).unwrap();
    p.drive();
    assert!(p.b.events.contains(&SessionEvent::RouteRefresh(rr)));
    // Not negotiated: IPv6, and BoRR without enhanced route refresh.
    let v6 = bgp_proto::RouteRefresh {
        family: Family::IPV6_UNICAST,
        ..rr
    };
    assert!(p.a.session.send_route_refresh(v6).is_err());
    let borr = bgp_proto::RouteRefresh {
        subtype: bgp_proto::RefreshSubtype::BoRR,
        ..rr
    };
    assert!(p.a.session.send_route_refresh(borr).is_err());
}

#[test]
fn send_encoded_frames_are_delivered_as_is() {
    let mut p = Pair::new(config_a(), config_b());
    p.establish();
    let ctx = p.a.session.negotiated().unwrap().codec.clone();
    let u1 = update(AS_A, "10.50.0.0/24");
    let u2 = update(AS_A, "10.51.0.0/24");
    let frames = vec![
        encode(&Message::Update(u1.clone()), &ctx),
        encode(&Message::Update(u2.clone()), &ctx),
    ];
    p.a.session.send_encoded(frames).unwrap();
    p.drive();
    assert_eq!(p.b.updates_received(), vec![u1, u2]);
    // A frame that is not one whole message is refused, nothing queued.
    let half = encode(&Message::Keepalive, &ctx).slice(0..10);
    assert!(p.a.session.send_encoded(vec![half]).is_err());
    assert_eq!(p.a.session.queued_bytes(), 0);
}

#[test]
fn capability_announcements_follow_the_config() {
    let mut a = config_a();
    a.capabilities.fqdn = Some(("node-a".into(), "example".into()));
    let mut p = Pair::new(a, config_b());
    p.establish();
    let nb = p.b.session.negotiated().unwrap();
    assert_eq!(nb.peer_fqdn, Some(("node-a".into(), "example".into())));
    assert!(has_capability(&nb.peer_open, |c| matches!(
        c,
        Capability::FourOctetAs(AS_A)
    )));
}

#[test]
fn jitter_spreads_retries_and_keepalives_within_rfc_bounds() {
    let mut a = config_a();
    a.jitter_seed = Some(0x5eed);
    let mut b = config_b();
    b.jitter_seed = Some(0xb0b);
    let mut p = Pair::new(a, b);
    p.reachable = false;
    p.start();
    p.advance(secs(700));
    let nominal = [1u64, 2, 4, 5, 10, 20, 40, 80, 120];
    let gaps: Vec<f64> = p
        .attempts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    assert!(gaps.len() >= nominal.len(), "{gaps:?}");
    for (gap, nominal) in gaps.iter().zip(nominal) {
        let nominal = nominal as f64;
        assert!(
            (0.75 * nominal..=nominal).contains(gap),
            "gap {gap} outside [0.75, 1] x {nominal}"
        );
    }
    assert!(
        gaps.iter().zip(nominal).any(|(g, n)| *g < n as f64),
        "jitter changed nothing: {gaps:?}"
    );

    // Keepalives: 30 s nominal, never later, so the peer's hold timer is safe.
    p.reachable = true;
    p.advance(secs(130));
    assert_eq!(p.a.state(), State::Established);
    let before = p.a.sent_count("KEEPALIVE");
    p.advance(secs(600));
    let sent = p.a.sent_count("KEEPALIVE") - before;
    assert!((20..=27).contains(&sent), "{sent} keepalives in 600 s");
    assert_eq!(p.b.state(), State::Established);
}
