//! When paths last changed ([`Rib::set_time`], [`bgp_rib::PathInfo::since`]): stamped when
//! a path is stored or replaced by a different one, kept when a peer announces the same
//! path again (as BIRD keeps a route's `lastmod`), including the refresh of a stale path
//! after a graceful restart. The time is handed in: these tests step it by hand.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp_proto::{Family, GracefulRestart, GracefulRestartFamily};
use bgp_rib::policy::RouteSource;
use bgp_rib::{AllReachable, LocalRoute, PeerConfig, Rib, SessionInfo};
use common::*;

const PREFIX: &str = "10.1.0.0/24";

/// The time `PREFIX`'s only path was last changed.
fn since(rib: &Rib) -> Option<Instant> {
    let d = rib.route(PREFIX.parse().unwrap(), &AllReachable)?;
    assert_eq!(d.paths.len(), 1, "{d:?}");
    d.paths[0].since
}

#[test]
fn identical_announcement_keeps_the_time_a_change_resets_it() {
    let t0 = Instant::now();
    let mut rib = rib();
    rib.set_time(t0);
    let p = peer(&mut rib, 2, 65001, false);
    let at = |s: u64| t0 + Duration::from_secs(s);

    rib.set_time(at(10));
    let first = announce(&[PREFIX], attrs(&[65001], "192.0.2.2"));
    rib.apply_update(p, &first, false).unwrap();
    rib.process(&AllReachable);
    assert_eq!(since(&rib), Some(at(10)));

    // The same path again, 50 s later: unchanged, its time stays.
    rib.set_time(at(60));
    rib.apply_update(p, &first, false).unwrap();
    rib.process(&AllReachable);
    assert_eq!(since(&rib), Some(at(10)));

    // Another AS path: a new route, a new time.
    rib.set_time(at(125));
    let longer = announce(&[PREFIX], attrs(&[65001, 65009], "192.0.2.2"));
    rib.apply_update(p, &longer, false).unwrap();
    rib.process(&AllReachable);
    assert_eq!(since(&rib), Some(at(125)));

    // Withdrawn, then announced as before: new again.
    rib.set_time(at(200));
    rib.apply_update(p, &withdraw(&[PREFIX]), false).unwrap();
    rib.process(&AllReachable);
    assert_eq!(since(&rib), None);
    rib.set_time(at(230));
    rib.apply_update(p, &longer, false).unwrap();
    rib.process(&AllReachable);
    assert_eq!(since(&rib), Some(at(230)));
}

#[test]
fn stale_path_refreshed_unchanged_keeps_its_time() {
    let t0 = Instant::now();
    let mut rib = rib();
    rib.set_time(t0);
    let p = rib
        .add_peer(PeerConfig::new("gr2", addr(2), 65001))
        .unwrap();
    let mut session = SessionInfo::new(rid(2), Some(Ipv4Addr::new(192, 0, 2, 1)));
    session.graceful_restart = Some(GracefulRestart {
        restart_state: false,
        notification: true,
        restart_time: 120,
        families: vec![GracefulRestartFamily {
            family: Family::IPV4_UNICAST,
            forwarding_preserved: true,
        }],
    });
    rib.peer_up(p, session.clone(), t0).unwrap();
    let a = announce(&[PREFIX], attrs(&[65001], "192.0.2.2"));
    rib.apply_update(p, &a, false).unwrap();
    rib.process(&AllReachable);
    // The session restarts gracefully (RFC 4724): the path is kept stale...
    let later = t0 + Duration::from_secs(30);
    rib.set_time(later);
    rib.peer_down(p, true, later).unwrap();
    rib.process(&AllReachable);
    let d = rib.route(PREFIX.parse().unwrap(), &AllReachable).unwrap();
    assert!(d.paths[0].stale);
    // ...and refreshed as it was: no longer stale, and as old as before.
    rib.peer_up(p, session, later).unwrap();
    rib.apply_update(p, &a, false).unwrap();
    rib.process(&AllReachable);
    let d = rib.route(PREFIX.parse().unwrap(), &AllReachable).unwrap();
    assert!(!d.paths[0].stale);
    assert_eq!(since(&rib), Some(t0));
}

#[test]
fn local_route_keeps_its_time_until_it_changes() {
    let t0 = Instant::now();
    let mut rib = rib();
    rib.set_time(t0);
    let route = || LocalRoute::new(PREFIX.parse().unwrap(), RouteSource::Static);
    rib.originate(route()).unwrap();
    rib.process(&AllReachable);
    rib.set_time(t0 + Duration::from_secs(40));
    rib.originate(route()).unwrap();
    rib.process(&AllReachable);
    assert_eq!(since(&rib), Some(t0));
    let mut other = route();
    other.attrs.med = Some(5);
    rib.originate(other).unwrap();
    rib.process(&AllReachable);
    assert_eq!(since(&rib), Some(t0 + Duration::from_secs(40)));
}

#[test]
fn no_time_before_one_is_given() {
    let mut rib = rib();
    let p = peer(&mut rib, 2, 65001, false);
    rib.apply_update(p, &announce(&[PREFIX], attrs(&[65001], "192.0.2.2")), false)
        .unwrap();
    rib.process(&AllReachable);
    assert_eq!(since(&rib), None);
}
