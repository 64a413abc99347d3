//! Two endpoints back to back on a virtual clock: bring-up, timer renegotiation with
//! Poll/Final, detection on loss in one or both directions, recovery, administrative
//! down, a restarted peer, the passive role and authentication.

mod support;

use std::num::NonZeroU8;

use bgp_bfd::{Diagnostic, Discard, Hops, Password, Reason, SessionEvent, SimplePassword, State};
use support::*;

fn mult(n: u8) -> NonZeroU8 {
    NonZeroU8::new(n).expect("non-zero")
}

fn up_pair() -> Pair {
    let mut p = Pair::new(config(), config());
    let took = p.run_until(ms(5000), Pair::both_up).expect("comes Up");
    // Both start Down at once at the slow rate: Down -> Init -> Up within two slow
    // intervals.
    assert!(took <= ms(2100), "{took:?}");
    p
}

#[test]
fn bring_up_goes_down_init_up_and_negotiates_the_fast_rate() {
    let mut p = up_pair();
    let start = p.now - ms(10_000);
    for side in [Side::A, Side::B] {
        let changes = p.changes_since(side, start);
        assert_eq!(
            changes,
            vec![
                (State::Down, State::Init, Reason::PeerState(State::Down)),
                (State::Init, State::Up, Reason::PeerState(State::Init)),
            ],
            "{side:?}"
        );
    }
    // Both sides ran a Poll Sequence to move from 1 s to 300 ms.
    p.run_for(ms(1000));
    for side in [Side::A, Side::B] {
        let s = p.session(side);
        assert!(!s.poll_in_progress(), "{side:?}");
        assert_eq!(s.transmit_interval(), ms(300));
        assert_eq!(s.detection_time(), Some(ms(900)));
        assert_eq!(s.local_diagnostic(), Diagnostic::NoDiagnostic);
        assert_eq!(s.stats().up_count, 1);
    }
    // Without jitter: exactly one packet per 300 ms from each side in steady state.
    let since = p.now;
    p.run_for(ms(3000));
    assert_eq!(p.wire_since(Side::A, since).len(), 10);
    assert_eq!(p.wire_since(Side::B, since).len(), 10);
    // The last TimersChanged event reports what is in force.
    let last = p
        .log
        .iter()
        .rev()
        .find_map(|(_, s, e)| match (s, e) {
            (Side::A, SessionEvent::TimersChanged { .. }) => Some(e.clone()),
            _ => None,
        })
        .expect("timers reported");
    assert_eq!(
        last,
        SessionEvent::TimersChanged {
            transmit_interval: ms(300),
            detection_time: Some(ms(900))
        }
    );
}

/// RFC 5880 6.8.3: 1 s while not Up, whatever the configuration asks.
#[test]
fn slow_rate_while_the_peer_is_absent() {
    let mut p = Pair::new(config(), config());
    p.set_link(false);
    let since = p.now;
    p.run_for(ms(10_000));
    let sent = p.wire_since(Side::A, since);
    assert_eq!(sent.len(), 11, "t = 0, 1, ..., 10 s");
    assert!(sent.iter().all(|(_, pk)| pk.state == State::Down
        && pk.desired_min_tx_us == 1_000_000
        && pk.required_min_rx_us == 300_000
        && pk.your_discriminator == 0));
}

/// RFC 5880 6.5, 6.8.3: a faster rate negotiated while Up, with one Poll and one Final,
/// and no state change.
#[test]
fn renegotiation_to_a_faster_rate_uses_poll_and_final() {
    let mut p = up_pair();
    p.run_for(ms(2000));
    let since = p.now;
    p.command(Side::A, |s, now| {
        s.set_timers(now, ms(100), ms(100), mult(3))
    });
    assert!(p.session(Side::A).poll_in_progress());
    // Faster sending takes effect at once; the detection time waits for the Final.
    assert_eq!(p.session(Side::A).detection_time(), Some(ms(900)));
    p.run_for(ms(1000));
    let polls: Vec<_> = p
        .wire_since(Side::A, since)
        .into_iter()
        .filter(|(_, pk)| pk.poll_bit)
        .collect();
    let finals: Vec<_> = p
        .wire_since(Side::B, since)
        .into_iter()
        .filter(|(_, pk)| pk.final_bit)
        .collect();
    assert_eq!(polls.len(), 1, "the first Poll is answered");
    assert_eq!(finals.len(), 1);
    // B answers as soon as the Poll arrives (1 ms link).
    assert_eq!(finals[0].0 - polls[0].0, ms(1));
    assert_eq!(finals[0].1.desired_min_tx_us, 300_000);
    assert!(!p.session(Side::A).poll_in_progress());
    // B still asks for 300 ms, so A sends at max(100, 300) ms; B sends at
    // max(300, 100) ms, so A detects B after 3 x 300 ms.
    assert_eq!(p.session(Side::A).transmit_interval(), ms(300));
    assert_eq!(p.session(Side::B).transmit_interval(), ms(300));
    assert_eq!(p.session(Side::A).detection_time(), Some(ms(900)));
    // Now B asks for 100 ms too: both sides run at 100 ms, detection 300 ms.
    p.command(Side::B, |s, now| {
        s.set_timers(now, ms(100), ms(100), mult(3))
    });
    p.run_for(ms(1000));
    for side in [Side::A, Side::B] {
        assert_eq!(p.session(side).transmit_interval(), ms(100), "{side:?}");
        assert_eq!(p.session(side).detection_time(), Some(ms(300)), "{side:?}");
    }
    assert!(p.changes_since(Side::A, since).is_empty());
    assert!(p.changes_since(Side::B, since).is_empty());
}

/// RFC 5880 6.8.3: a slower transmit rate waits for the Final, so the peer never
/// times us out on the old, shorter detection time.
#[test]
fn slower_rate_waits_for_the_final() {
    let mut p = up_pair();
    p.latency = ms(50);
    p.run_for(ms(2000));
    let since = p.now;
    p.command(Side::A, |s, now| {
        s.set_timers(now, ms(1000), ms(1000), mult(3))
    });
    // Still 300 ms until the Final arrives; the detection time grows at once (slower
    // receiving is safe).
    assert_eq!(p.session(Side::A).transmit_interval(), ms(300));
    assert_eq!(p.session(Side::A).detection_time(), Some(ms(3000)));
    let until_final = p
        .run_until(ms(2000), |p| !p.session(Side::A).poll_in_progress())
        .expect("poll answered");
    // The Poll goes out with the next periodic packet (<= 300 ms), the Final needs a
    // round trip.
    assert!(until_final <= ms(400), "{until_final:?}");
    assert_eq!(p.session(Side::A).transmit_interval(), ms(1000));
    p.run_for(ms(10_000));
    assert!(p.both_up());
    assert!(p.changes_since(Side::A, since).is_empty());
    assert!(p.changes_since(Side::B, since).is_empty());
    assert_eq!(p.session(Side::B).detection_time(), Some(ms(3000)));
}

/// RFC 5880 6.5: a change made while a Poll Sequence runs gets a sequence of its own.
#[test]
fn change_during_a_poll_sequence_is_polled_again() {
    let mut p = up_pair();
    p.latency = ms(100);
    p.run_for(ms(2000));
    let since = p.now;
    p.command(Side::A, |s, now| {
        s.set_timers(now, ms(200), ms(200), mult(3))
    });
    p.run_for(ms(50));
    assert!(p.session(Side::A).poll_in_progress());
    p.command(Side::A, |s, now| {
        s.set_timers(now, ms(500), ms(500), mult(3))
    });
    p.run_for(ms(3000));
    assert!(!p.session(Side::A).poll_in_progress());
    let polls = p
        .wire_since(Side::A, since)
        .iter()
        .filter(|(_, pk)| pk.poll_bit)
        .count();
    assert!(polls >= 2, "{polls}");
    assert_eq!(p.session(Side::A).transmit_interval(), ms(500));
    assert_eq!(p.session(Side::B).detection_time(), Some(ms(1500)));
    assert!(p.both_up());
}

/// RFC 5880 6.8.4: cutting the link takes both sides Down within the detection time,
/// and restoring it brings them back Up.
#[test]
fn detection_on_loss_and_recovery() {
    let mut p = up_pair();
    p.run_for(ms(2000));
    let cut = p.now;
    p.set_link(false);
    let took = p
        .run_until(ms(5000), |p| {
            p.state(Side::A) == State::Down && p.state(Side::B) == State::Down
        })
        .expect("both sides detect the failure");
    assert!(took <= ms(900), "{took:?}");
    for side in [Side::A, Side::B] {
        assert_eq!(
            p.changes_since(side, cut),
            vec![(State::Up, State::Down, Reason::DetectionTimeExpired)]
        );
        let s = p.session(side);
        assert_eq!(
            s.local_diagnostic(),
            Diagnostic::ControlDetectionTimeExpired
        );
        assert_eq!(s.last_down_reason(), Some(Reason::DetectionTimeExpired));
        assert_eq!(s.remote_discriminator(), 0, "6.8.1: forgotten");
        assert_eq!(s.stats().failures, 1);
        assert_eq!(s.transmit_interval(), ms(1000), "back to the slow rate");
    }
    let failure = p
        .log
        .iter()
        .find(|(t, _, e)| *t >= cut && matches!(e, SessionEvent::StateChanged { .. }))
        .expect("logged");
    assert!(failure.2.is_failure());
    p.set_link(true);
    let back = p.run_until(ms(5000), Pair::both_up).expect("recovers");
    assert!(back <= ms(2100), "{back:?}");
    // The Down packets told the peer why.
    let first_down = p
        .wire
        .iter()
        .find(|(t, s, pk)| *t > cut && *s == Side::A && pk.state == State::Down)
        .expect("A keeps sending");
    assert_eq!(
        first_down.2.diagnostic,
        Diagnostic::ControlDetectionTimeExpired
    );
}

/// Loss in one direction: B times out, tells A it is Down, A follows with diagnostic 3.
#[test]
fn one_way_loss_is_signalled_to_the_other_side() {
    let mut p = up_pair();
    p.run_for(ms(2000));
    let cut = p.now;
    p.a_to_b = false;
    p.run_until(ms(2000), |p| p.state(Side::A) != State::Up)
        .expect("A learns from B");
    assert_eq!(
        p.changes_since(Side::B, cut)[0],
        (State::Up, State::Down, Reason::DetectionTimeExpired)
    );
    assert_eq!(
        p.changes_since(Side::A, cut)[0],
        (State::Up, State::Down, Reason::PeerState(State::Down))
    );
    assert_eq!(
        p.session(Side::A).local_diagnostic(),
        Diagnostic::NeighborSignaledSessionDown
    );
    assert_eq!(
        p.session(Side::A).remote_diagnostic(),
        Diagnostic::ControlDetectionTimeExpired
    );
    assert_eq!(p.session(Side::A).stats().failures, 1);
    // A keeps receiving B's Down packets, so it never reaches Up again while B cannot
    // hear it.
    p.run_for(ms(5000));
    assert_ne!(p.state(Side::A), State::Up);
    assert_ne!(p.state(Side::B), State::Up);
    p.a_to_b = true;
    p.run_until(ms(5000), Pair::both_up).expect("recovers");
}

/// RFC 5880 6.8.16, RFC 5882 3.2: AdminDown is signalled and is not a failure.
#[test]
fn administrative_down_and_up() {
    let mut p = up_pair();
    p.run_for(ms(1000));
    let since = p.now;
    p.command(Side::A, |s, now| s.admin_down(now));
    assert_eq!(p.state(Side::A), State::AdminDown);
    p.run_until(ms(2000), |p| p.state(Side::B) == State::Down)
        .expect("B learns");
    let b = p.changes_since(Side::B, since);
    assert_eq!(
        b,
        vec![(State::Up, State::Down, Reason::PeerState(State::AdminDown))]
    );
    assert!(p
        .log
        .iter()
        .filter(|(t, _, _)| *t >= since)
        .all(|(_, _, e)| !e.is_failure()));
    assert_eq!(
        p.session(Side::B).remote_diagnostic(),
        Diagnostic::AdministrativelyDown
    );
    // AdminDown keeps sending (slowly) and ignores what arrives.
    let mark = p.now;
    p.run_for(ms(5000));
    assert_eq!(p.state(Side::A), State::AdminDown);
    assert_eq!(p.state(Side::B), State::Down);
    let a_sent = p.wire_since(Side::A, mark);
    assert!((5..=6).contains(&a_sent.len()), "{}", a_sent.len());
    assert!(a_sent
        .iter()
        .all(|(_, pk)| pk.state == State::AdminDown
            && pk.diagnostic == Diagnostic::AdministrativelyDown));
    p.command(Side::A, |s, now| s.admin_up(now));
    assert_eq!(p.state(Side::A), State::Down);
    p.run_until(ms(5000), Pair::both_up).expect("back up");
    assert_eq!(p.session(Side::A).stats().failures, 0);
    assert_eq!(p.session(Side::B).stats().failures, 0);
}

/// A restarted peer (new discriminator, Down, Your Discriminator zero): the survivor
/// goes Down at once (6.8.6 steps 8 and 21) and both come back Up.
#[test]
fn restarted_peer_is_noticed_and_rejoined() {
    let mut p = up_pair();
    p.run_for(ms(1000));
    let old_remote = p.session(Side::A).remote_discriminator();
    let since = p.now;
    p.restart(Side::B, config());
    p.run_until(ms(500), |p| p.state(Side::A) != State::Up)
        .expect("A notices within the first packet");
    assert_eq!(
        p.changes_since(Side::A, since)[0],
        (State::Up, State::Down, Reason::PeerState(State::Down))
    );
    p.run_until(ms(5000), Pair::both_up).expect("rejoined");
    assert_ne!(p.session(Side::A).remote_discriminator(), old_remote);
}

/// RFC 5880 6.1: a passive session waits for the peer's first packet.
#[test]
fn passive_side_waits_for_the_active_side() {
    let mut passive = config();
    passive.passive = true;
    let mut p = Pair::new(config(), passive);
    p.a_to_b = false;
    let since = p.now;
    p.run_for(ms(5000));
    assert!(p.wire_since(Side::B, since).is_empty());
    p.a_to_b = true;
    p.run_until(ms(5000), Pair::both_up).expect("comes up");
}

fn with_password(key_id: u8, pw: &[u8]) -> bgp_bfd::SessionConfig {
    let mut c = config();
    c.authentication = Some(SimplePassword {
        key_id,
        password: Password::new(pw).expect("valid password"),
    });
    c
}

/// RFC 5880 6.7.2: simple password authentication.
#[test]
fn simple_password_authentication() {
    let mut p = Pair::new(with_password(1, b"secret"), with_password(1, b"secret"));
    p.run_until(ms(5000), Pair::both_up)
        .expect("same password: Up");
    assert!(p.wire.iter().all(|(_, _, pk)| pk.authentication.is_some()));

    for (b, expected) in [
        (with_password(1, b"other"), Discard::AuthenticationFailed),
        (with_password(2, b"secret"), Discard::AuthenticationKeyId(1)),
        (config(), Discard::AuthenticationUnexpected),
    ] {
        let mut p = Pair::new(with_password(1, b"secret"), b);
        p.run_for(ms(5000));
        assert_eq!(p.state(Side::A), State::Down);
        assert_eq!(p.state(Side::B), State::Down);
        assert!(
            p.discards
                .iter()
                .any(|(_, s, d)| *s == Side::B && *d == expected),
            "{expected:?}: {:?}",
            p.discards
        );
        assert!(p.session(Side::B).stats().discarded >= 4);
    }
    let mut p = Pair::new(config(), with_password(1, b"secret"));
    p.run_for(ms(3000));
    assert!(p
        .discards
        .iter()
        .any(|(_, s, d)| *s == Side::B && *d == Discard::AuthenticationMissing));
}

/// RFC 5881 5 / RFC 5883 5: single hop needs TTL 255, multihop its configured minimum.
#[test]
fn ttl_rules_for_single_and_multihop() {
    let mut p = Pair::new(config(), config());
    p.ttl = 254;
    p.run_for(ms(3000));
    assert_eq!(p.state(Side::A), State::Down);
    assert!(p
        .discards
        .iter()
        .all(|(_, _, d)| *d == Discard::Ttl { ttl: 254, min: 255 }));
    assert!(!p.discards.is_empty());

    let mut multi = config();
    multi.hops = Hops::Multi { min_ttl: 250 };
    let mut p = Pair::new(multi.clone(), multi.clone());
    p.ttl = 251;
    p.run_until(ms(5000), Pair::both_up)
        .expect("multihop within the TTL bound");
    let mut p = Pair::new(multi.clone(), multi);
    p.ttl = 249;
    p.run_for(ms(3000));
    assert_eq!(p.state(Side::B), State::Down);
}

/// RFC 5880 6.8.7: jitter keeps every interval within 75-100% (75-90% with Detect
/// Mult 1), and seeded runs repeat exactly.
#[test]
fn jitter_bounds_and_reproducibility() {
    for detect_mult in [3u8, 1] {
        let run = || {
            let mut a = config();
            a.jitter_seed = Some(42);
            a.detect_mult = detect_mult;
            let mut b = config();
            b.jitter_seed = Some(43);
            let mut p = Pair::new(a, b);
            p.run_until(ms(5000), Pair::both_up).expect("up");
            p.run_for(ms(1000));
            let since = p.now;
            p.run_for(ms(30_000));
            let times: Vec<_> = p
                .wire_since(Side::A, since)
                .into_iter()
                .filter(|(_, pk)| !pk.final_bit)
                .map(|(t, _)| t)
                .collect();
            times.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
        };
        let gaps = run();
        let (lo, hi) = if detect_mult == 1 {
            (ms(225), ms(270))
        } else {
            (ms(225), ms(300))
        };
        assert!(gaps.len() > 90, "{}", gaps.len());
        assert!(gaps.iter().all(|g| *g >= lo && *g <= hi), "{gaps:?}");
        let spread = gaps.iter().max().copied().unwrap_or_default()
            - gaps.iter().min().copied().unwrap_or_default();
        assert!(spread >= ms(30), "jitter actually varies: {spread:?}");
        assert_eq!(gaps, run(), "same seeds, same run");
    }
}

/// RFC 5880 6.8.1: the peer's discriminator is forgotten a Detection Time after its last
/// packet, even in AdminDown. Otherwise a session that learnt a discriminator while
/// AdminDown keeps addressing a passive peer that restarted, which discards every packet
/// and, being passive, never speaks first: neither side would ever come Up.
#[test]
fn stale_discriminator_learnt_in_admin_down_is_forgotten() {
    let mut passive = config();
    passive.passive = true;
    let mut p = Pair::new(config(), passive.clone());
    p.command(Side::A, |s, now| s.admin_down(now));
    p.run_for(ms(1500));
    assert_ne!(p.session(Side::A).remote_discriminator(), 0);
    p.restart(Side::B, passive);
    p.command(Side::A, |s, now| s.admin_up(now));
    p.run_until(ms(10_000), Pair::both_up)
        .expect("A forgets the old discriminator and B answers");
    assert!(p
        .discards
        .iter()
        .any(|(_, s, d)| *s == Side::B && matches!(d, Discard::UnknownDiscriminator(_))));
}
