//! Our own recovery after a restart (RFC 4724 4.1): the RIB is the one tracker of "every
//! peer waited for has sent End-of-RIB, or the deadline passed", reported once by
//! `Rib::poll_recovery_done`, with or without selection deferral.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp_proto::{Family, GracefulRestart, GracefulRestartFamily};
use bgp_rib::{AllReachable, PeerConfig, RecoveryDone, SessionInfo};
use common::*;

/// A session that negotiated graceful restart for both families, not restarting itself.
fn gr_session(n: u8) -> SessionInfo {
    let mut s = SessionInfo::new(rid(n), Some(Ipv4Addr::new(192, 0, 2, 1)));
    s.graceful_restart = Some(GracefulRestart {
        restart_state: false,
        notification: true,
        restart_time: 120,
        families: [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
            .into_iter()
            .map(|family| GracefulRestartFamily {
                family,
                forwarding_preserved: true,
            })
            .collect(),
    });
    s
}

/// Waiting without holding advertisement: a peer without graceful restart counts once
/// established, a disabled peer is not waited for, a graceful-restart peer counts once
/// it has sent End-of-RIB for every family of its session; the end is reported once.
#[test]
fn recovery_ends_once_every_peer_waited_for_has_sent_end_of_rib() {
    let t0 = Instant::now();
    let mut rib = rib();
    let gr = rib.add_peer(PeerConfig::new("gr", addr(2), 65001)).unwrap();
    let plain = rib
        .add_peer(PeerConfig::new("plain", addr(3), 65002))
        .unwrap();
    let mut off = PeerConfig::new("off", addr(4), 65003);
    off.disabled = true;
    rib.add_peer(off).unwrap();
    let deadline = t0 + Duration::from_secs(60);
    rib.start_recovery(deadline);
    let s = rib.recovery().expect("recovering");
    assert_eq!(s.deadline, deadline);
    assert!(!s.deferring);
    assert_eq!(
        s.waiting,
        vec![gr, plain],
        "the disabled peer is not waited for"
    );
    assert_eq!(s.complete, 0);
    assert!(!rib.is_deferring());
    assert_eq!(rib.next_deadline(), Some(deadline));

    rib.peer_up(
        plain,
        SessionInfo::new(rid(3), Some(Ipv4Addr::new(192, 0, 2, 1))),
        t0,
    )
    .unwrap();
    let s = rib.recovery().expect("recovering");
    assert_eq!((s.waiting, s.complete), (vec![gr], 1));
    // Advertisement is not held: the plain peer gets its (empty) table and End-of-RIB.
    rib.process(&AllReachable);
    assert_eq!(rib.peers_with_output(), vec![plain]);
    assert_eq!(
        take(&mut rib, plain).unwrap().end_of_rib,
        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );

    rib.peer_up(gr, gr_session(2), t0).unwrap();
    rib.apply_update(
        gr,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.end_of_rib(gr, Family::IPV4_UNICAST).unwrap();
    assert_eq!(rib.poll_recovery_done(), None, "IPv6 End-of-RIB still due");
    assert!(rib.recovery().is_some());
    rib.end_of_rib(gr, Family::IPV6_UNICAST).unwrap();
    assert_eq!(rib.poll_recovery_done(), Some(RecoveryDone::EndOfRib));
    assert_eq!(rib.poll_recovery_done(), None, "reported once");
    assert_eq!(rib.recovery(), None);
    assert_eq!(rib.next_deadline(), None);
    // A later deadline reports nothing more.
    rib.handle_timeout(deadline);
    assert_eq!(rib.poll_recovery_done(), None);
    assert_eq!(rib.audit(), Ok(()));
}

/// With selection deferral: the recovery ends at its deadline when a peer stays silent,
/// or as soon as the only peer still waited for is disabled.
#[test]
fn deferred_recovery_ends_at_its_deadline_or_when_the_last_peer_waited_for_is_disabled() {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(60);
    let mut rib = rib();
    let silent = rib.add_peer(PeerConfig::new("s", addr(2), 65001)).unwrap();
    rib.defer_selection(deadline);
    assert!(rib.recovery().expect("recovering").deferring);
    rib.peer_up(silent, gr_session(2), t0).unwrap();
    rib.handle_timeout(deadline - Duration::from_secs(1));
    assert_eq!(rib.poll_recovery_done(), None);
    assert!(rib.is_deferring());
    rib.handle_timeout(deadline);
    assert_eq!(rib.poll_recovery_done(), Some(RecoveryDone::Deadline));
    assert!(!rib.is_deferring());
    rib.process(&AllReachable);
    assert_eq!(
        rib.peers_with_output(),
        vec![silent],
        "its table after the hold"
    );

    let mut rib = self::rib();
    let done = rib.add_peer(PeerConfig::new("d", addr(2), 65001)).unwrap();
    let later = rib.add_peer(PeerConfig::new("l", addr(3), 65002)).unwrap();
    rib.defer_selection(deadline);
    rib.peer_up(done, gr_session(2), t0).unwrap();
    for f in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        rib.end_of_rib(done, f).unwrap();
    }
    let s = rib.recovery().expect("recovering");
    assert_eq!((s.waiting, s.complete), (vec![later], 1));
    assert_eq!(rib.poll_recovery_done(), None);
    rib.set_peer_disabled(later, true).unwrap();
    assert_eq!(rib.poll_recovery_done(), Some(RecoveryDone::EndOfRib));
    assert!(!rib.is_deferring());
    rib.remove_peer(later).unwrap();
    assert!(rib.set_peer_disabled(later, true).is_err(), "unknown peer");
}

/// A session for `families` with the peer's graceful restart capability (`None`: not
/// advertised), the Restart State bit as given.
fn session(n: u8, families: &[Family], restart_state: Option<bool>) -> SessionInfo {
    let mut s = gr_session(n);
    s.families = families.to_vec();
    s.graceful_restart = restart_state.map(|restart_state| GracefulRestart {
        restart_state,
        ..s.graceful_restart.clone().expect("graceful restart")
    });
    s
}

/// End-of-RIB counts per family and only from an established session; a peer that sent
/// its whole table stays complete through a new session; a peer never up holds the
/// recovery; a peer without graceful restart, or restarting itself, is not waited for.
#[test]
fn every_family_counts_and_a_complete_peer_stays_complete() {
    let t0 = Instant::now();
    let mut rib = rib();
    let a = rib.add_peer(PeerConfig::new("a", addr(2), 65001)).unwrap();
    let b = rib.add_peer(PeerConfig::new("b", addr(3), 65002)).unwrap();
    let never = rib.add_peer(PeerConfig::new("n", addr(4), 65003)).unwrap();
    let plain = rib.add_peer(PeerConfig::new("p", addr(5), 65004)).unwrap();
    let restarting = rib.add_peer(PeerConfig::new("r", addr(6), 65005)).unwrap();
    let both = [Family::IPV4_UNICAST, Family::IPV6_UNICAST];
    let v4 = [Family::IPV4_UNICAST];
    rib.start_recovery(t0 + Duration::from_secs(60));
    rib.peer_up(plain, session(5, &v4, None), t0).unwrap();
    rib.peer_up(restarting, session(6, &v4, Some(true)), t0)
        .unwrap();
    rib.peer_up(a, session(2, &both, Some(false)), t0).unwrap();
    rib.end_of_rib(a, Family::IPV4_UNICAST).unwrap();
    rib.end_of_rib(b, Family::IPV4_UNICAST).unwrap(); // not up: no table sent
    let s = rib.recovery().expect("recovering");
    assert_eq!((s.waiting, s.complete), (vec![a, b, never], 2));
    rib.end_of_rib(a, Family::IPV6_UNICAST).unwrap();
    rib.peer_up(b, session(3, &v4, Some(false)), t0).unwrap();
    rib.end_of_rib(b, Family::IPV4_UNICAST).unwrap();
    // A lost session and a new one do not reopen a complete peer.
    rib.peer_down(a, false, t0).unwrap();
    rib.peer_up(a, session(2, &both, Some(false)), t0).unwrap();
    let s = rib.recovery().expect("recovering");
    assert_eq!((s.waiting, s.complete), (vec![never], 4));
    rib.remove_peer(never).unwrap();
    assert_eq!(rib.poll_recovery_done(), Some(RecoveryDone::EndOfRib));
}

/// Once over, the recovery stays over: starting it again does nothing, and holds no
/// advertisement back.
#[test]
fn a_recovery_once_over_is_not_started_again() {
    let t0 = Instant::now();
    let mut rib = rib();
    rib.add_peer(PeerConfig::new("a", addr(2), 65001)).unwrap();
    rib.start_recovery(t0 + Duration::from_secs(60));
    rib.handle_timeout(t0 + Duration::from_secs(60));
    assert_eq!(rib.poll_recovery_done(), Some(RecoveryDone::Deadline));
    rib.start_recovery(t0 + Duration::from_secs(120));
    rib.defer_selection(t0 + Duration::from_secs(120));
    assert_eq!(rib.recovery(), None);
    assert!(!rib.is_deferring());
    assert_eq!(rib.next_deadline(), None);
    assert_eq!(rib.poll_recovery_done(), None);
}

/// A peer re-added under a new configuration keeps its session's End-of-RIB record: the
/// recovery waits for the End-of-RIB it has not sent, and neither ends nor reopens.
#[test]
fn a_readded_peer_keeps_its_end_of_rib_record() {
    let t0 = Instant::now();
    let mut rib = rib();
    let a = rib.add_peer(PeerConfig::new("a", addr(2), 65001)).unwrap();
    let b = rib.add_peer(PeerConfig::new("b", addr(3), 65002)).unwrap();
    rib.start_recovery(t0 + Duration::from_secs(60));
    rib.peer_up(a, gr_session(2), t0).unwrap();
    rib.end_of_rib(a, Family::IPV4_UNICAST).unwrap();
    rib.peer_up(b, gr_session(3), t0).unwrap();
    for f in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        rib.end_of_rib(b, f).unwrap();
    }
    let mut cfg = PeerConfig::new("b", addr(3), 65002);
    cfg.rr_client = true;
    let b = rib.readd_peer(b, cfg, t0).unwrap();
    assert!(rib.is_up(b));
    let a = rib
        .readd_peer(a, PeerConfig::new("a", addr(2), 65001), t0)
        .unwrap();
    let s = rib.recovery().expect("recovering");
    assert_eq!((s.waiting, s.complete), (vec![a], 1));
    rib.end_of_rib(a, Family::IPV6_UNICAST).unwrap();
    assert_eq!(rib.poll_recovery_done(), Some(RecoveryDone::EndOfRib));
    assert_eq!(rib.audit(), Ok(()));
}

/// RFC 4724 4.1 with a bound on absent peers: a peer whose session has not come up by the
/// bound is no longer waited for, one that came up is waited for until its End-of-RIB or
/// the deadline; the bound is a deadline of its own, and does nothing without a recovery.
#[test]
fn a_peer_that_never_comes_up_is_not_waited_for_after_the_absent_bound() {
    let t0 = Instant::now();
    let mut rib = rib();
    rib.bound_absent_peers(t0);
    assert_eq!(rib.next_deadline(), None, "no recovery: nothing to bound");
    let up = rib.add_peer(PeerConfig::new("up", addr(2), 65001)).unwrap();
    let down = rib
        .add_peer(PeerConfig::new("down", addr(3), 65002))
        .unwrap();
    let deadline = t0 + Duration::from_secs(120);
    let bound = t0 + Duration::from_secs(10);
    rib.defer_selection(deadline);
    rib.bound_absent_peers(bound);
    assert_eq!(rib.next_deadline(), Some(bound));
    rib.peer_up(up, gr_session(2), t0).unwrap();
    rib.end_of_rib(up, Family::IPV4_UNICAST).unwrap();
    // Before the bound both are waited for.
    rib.handle_timeout(bound - Duration::from_millis(1));
    let s = rib.recovery().expect("recovering");
    assert_eq!((s.waiting, s.complete), (vec![up, down], 0));
    // After it, only the peer that came up, which still owes End-of-RIB for IPv6.
    rib.handle_timeout(bound);
    let s = rib.recovery().expect("recovering");
    assert_eq!((s.waiting, s.complete), (vec![up], 0));
    assert!(rib.is_deferring());
    assert_eq!(rib.next_deadline(), Some(deadline));
    rib.end_of_rib(up, Family::IPV6_UNICAST).unwrap();
    assert_eq!(rib.poll_recovery_done(), Some(RecoveryDone::EndOfRib));
    assert!(!rib.is_deferring());
    let _ = down;
}

/// With the bound passed and every peer absent, the recovery ends at the bound, not at
/// the deadline.
#[test]
fn the_absent_bound_ends_a_recovery_where_no_peer_came_up() {
    let t0 = Instant::now();
    let mut rib = rib();
    rib.add_peer(PeerConfig::new("a", addr(2), 65001)).unwrap();
    rib.defer_selection(t0 + Duration::from_secs(120));
    rib.bound_absent_peers(t0 + Duration::from_secs(5));
    rib.handle_timeout(t0 + Duration::from_secs(5));
    assert_eq!(rib.poll_recovery_done(), Some(RecoveryDone::EndOfRib));
    assert!(!rib.is_deferring());
    assert_eq!(rib.next_deadline(), None);
}
