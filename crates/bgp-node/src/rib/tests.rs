//! The RIB driver on its own: peers registered by id, output in slices with credit, FIB
//! batches that wait for their consumer, recovery, max-prefix, configuration changes.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bgp_proto::session::Negotiated;
use bgp_proto::wire::DecodedUpdate;
use bgp_proto::{
    AsPath, CodecContext, Family, GracefulRestart, GracefulRestartFamily, Nlri, Open, Origin,
    PathAttributes, Update,
};
use bgp_rib::policy::RouteSource;

use super::*;
use crate::message::RibInput;
use crate::settings::{MaxPrefixAction, MaxPrefixes, PeerSettings};
use crate::PeerIds;

const LOCAL_AS: u32 = 64512;

fn driver(fib: bool) -> RibDriver<&'static str> {
    let config = RibDriverConfig {
        fib,
        ..RibDriverConfig::default()
    };
    RibDriver::new(
        RibConfig::new(LOCAL_AS, Ipv4Addr::new(10, 0, 0, 1)),
        AllReachable,
        config,
    )
}

fn peer(host: u8) -> PeerSettings {
    PeerSettings::new(
        format!("p{host}"),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, host)),
        LOCAL_AS,
    )
}

fn negotiated(host: u8, graceful_restart: bool) -> Box<Negotiated> {
    let open = Open {
        version: 4,
        my_as: LOCAL_AS as u16,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(10, 0, 0, host),
        capabilities: Vec::new(),
        other_params: Vec::new(),
    };
    Box::new(Negotiated {
        local_as: LOCAL_AS,
        peer_as: LOCAL_AS,
        peer_id: Ipv4Addr::new(10, 0, 0, host),
        hold_time: 90,
        keepalive_time: 30,
        families: vec![Family::IPV4_UNICAST],
        codec: CodecContext {
            four_octet_as: true,
            ..CodecContext::default()
        },
        route_refresh: true,
        enhanced_route_refresh: false,
        peer_graceful_restart: graceful_restart.then(|| GracefulRestart {
            restart_state: false,
            notification: true,
            restart_time: 120,
            families: vec![GracefulRestartFamily {
                family: Family::IPV4_UNICAST,
                forwarding_preserved: true,
            }],
        }),
        peer_llgr: Vec::new(),
        extended_next_hop: Vec::new(),
        peer_role: None,
        peer_fqdn: None,
        local_open: open.clone(),
        peer_open: open,
    })
}

fn up(session: u64, host: u8, graceful_restart: bool) -> RibInput {
    RibInput::Up {
        session,
        negotiated: negotiated(host, graceful_restart),
        local: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        link_global_v6: None,
    }
}

/// An UPDATE from `host` announcing `count` /24s from 10.(host).0.0 up.
fn announce(host: u8, count: u32) -> RibInput {
    let nlri = (0..count)
        .map(|i| {
            let a = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, host, 0, 0)) + (i << 8));
            Nlri::new(ipnet::IpNet::V4(
                ipnet::Ipv4Net::new(a, 24).expect("prefix"),
            ))
        })
        .collect();
    RibInput::Update(Box::new(DecodedUpdate {
        update: Update {
            attributes: PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::default()),
                next_hop: Some(Ipv4Addr::new(10, 0, 0, host)),
                local_pref: Some(100),
                ..PathAttributes::default()
            },
            nlri,
            ..Update::default()
        },
        treat_as_withdraw: None,
        discarded: Vec::new(),
    }))
}

fn end_of_rib() -> RibInput {
    RibInput::Update(Box::new(DecodedUpdate {
        update: Update::default(),
        treat_as_withdraw: None,
        discarded: Vec::new(),
    }))
}

fn drain_output<L>(d: &mut RibDriver<L>) -> Vec<(PeerId, OutputSliceSummary)> {
    let mut v = Vec::new();
    while let Some((id, s)) = d.poll_output() {
        v.push((id, (s.session, s.frames.len())));
    }
    v
}

type OutputSliceSummary = (u64, usize);

#[test]
fn inputs_for_an_unknown_peer_are_handed_back() {
    let mut d = driver(false);
    let mut ids = PeerIds::default();
    let id = ids.allocate();
    let now = Instant::now();
    assert!(d.handle_input(now, id, up(1, 2, false)).is_err());
    d.add_peer(id, peer(2), "p2").expect("add");
    assert!(d.handle_input(now, id, up(1, 2, false)).is_ok());
    assert_eq!(d.peer(id).map(|e| *e.link()), Some("p2"));
    assert_eq!(d.peer_by_name("p2").map(|e| e.id()), Some(id));
    // Removed, the index goes to a new peer: the old id no longer reaches it.
    assert_eq!(d.remove_peer(id), Some("p2"));
    ids.release(id);
    let next = ids.allocate();
    d.add_peer(next, peer(3), "p3").expect("add");
    assert!(d.handle_input(now, id, end_of_rib()).is_err());
    assert!(d.peer(id).is_none());
}

/// A peer is handed at most its window of slices until it takes some; a whole table
/// comes in slices; a credit for an earlier session changes nothing.
#[test]
fn output_waits_for_credit_and_comes_in_slices() {
    let mut d: RibDriver<()> = RibDriver::new(
        RibConfig::new(LOCAL_AS, Ipv4Addr::new(10, 0, 0, 1)),
        AllReachable,
        RibDriverConfig {
            out_slice_bytes: 64,
            out_window: 2,
            fib: false,
        },
    );
    let mut ids = PeerIds::default();
    let (a, b) = (ids.allocate(), ids.allocate());
    let mut client = peer(3);
    client.rr_client = true;
    d.add_peer(a, peer(2), ()).expect("add");
    d.add_peer(b, client, ()).expect("add");
    let now = Instant::now();
    d.handle_input(now, a, up(1, 2, false)).expect("known");
    d.handle_input(now, a, announce(2, 100)).expect("known");
    d.handle_input(now, b, up(7, 3, false)).expect("known");
    // a gets its End-of-RIB; b, a reflector client, gets a's 100 routes, 64 octets of
    // NLRI (16 /24s) a slice, 2 slices at a time.
    let out = drain_output(&mut d);
    assert_eq!(out.iter().filter(|(id, _)| *id == a).count(), 1, "{out:?}");
    let to_b: Vec<_> = out.iter().filter(|(id, _)| *id == b).collect();
    assert_eq!(to_b.len(), 2, "{out:?}");
    assert!(to_b.iter().all(|(_, (session, _))| *session == 7));
    assert!(d.poll_output().is_none(), "no credit left");
    d.handle_output_taken(b, 6);
    assert!(d.poll_output().is_none(), "credit of another session");
    let mut slices = 2;
    loop {
        d.handle_output_taken(b, 7);
        match d.poll_output() {
            Some((id, _)) => {
                assert_eq!(id, b);
                slices += 1;
            }
            None => break,
        }
    }
    assert_eq!(slices, 7, "100 routes by 16, and End-of-RIB with the last");
    let info = d
        .rib()
        .peer_info(d.peer(b).expect("b").rib_id())
        .expect("info");
    assert_eq!(info.advertised_v4, 100);
}

/// FIB batches wait for the consumer; what piles up is merged per prefix; the end of
/// recovery comes after everything learned before it; subscribers get copies only when
/// asked for.
#[test]
fn fib_batches_wait_for_their_consumer_and_recovery_comes_last() {
    let mut d = driver(true);
    let mut ids = PeerIds::default();
    let (a, b) = (ids.allocate(), ids.allocate());
    d.add_peer(a, peer(2), "a").expect("add");
    d.add_peer(b, peer(3), "b").expect("add");
    let now = Instant::now();
    d.start_recovery(now + Duration::from_secs(240), false, now);
    assert!(d.is_recovering());
    d.handle_input(now, a, up(1, 2, true)).expect("known");
    d.handle_input(now, a, announce(2, 3)).expect("known");
    assert!(d.poll_event().is_none(), "no subscribers");
    assert!(d.fib_pending());
    // The consumer is busy: another round arrives, and a's End-of-RIB.
    d.set_route_events(true);
    d.handle_input(now, b, up(1, 3, false)).expect("known");
    d.handle_input(now, b, announce(3, 2)).expect("known");
    assert!(matches!(d.poll_event(), Some(RibEvent::RouteChanges(c)) if c.len() == 2));
    assert_eq!(
        d.recovery_status(),
        RecoveryStatus {
            complete: 1,
            waiting: vec!["p2".to_string()]
        },
        "b has no graceful restart: not waited for"
    );
    d.handle_input(now, a, end_of_rib()).expect("known");
    assert!(!d.is_recovering());
    let batch = d.poll_fib().expect("everything");
    assert_eq!(batch.changes.len(), 5);
    assert!(batch.recovery_done);
    assert!(d.poll_fib().is_none());
    assert!(!d.fib_pending());
    assert_eq!(d.fib_backlog(), 0);
}

#[test]
fn recovery_ends_at_its_deadline_and_ignores_disabled_peers() {
    let mut d = driver(true);
    let mut ids = PeerIds::default();
    let (a, b) = (ids.allocate(), ids.allocate());
    d.add_peer(a, peer(2), "a").expect("add");
    let mut off = peer(3);
    off.disabled = true;
    d.add_peer(b, off, "b").expect("add");
    let now = Instant::now();
    let deadline = now + Duration::from_secs(30);
    d.start_recovery(deadline, false, now);
    assert_eq!(d.recovery_status().waiting, vec!["p2".to_string()]);
    assert_eq!(d.poll_timeout(), Some(deadline));
    d.handle_timeout(now + Duration::from_secs(29));
    assert!(d.is_recovering());
    d.handle_timeout(deadline);
    assert!(!d.is_recovering());
    assert_eq!(d.poll_timeout(), None);
    assert_eq!(
        d.poll_fib(),
        Some(FibBatch {
            changes: Vec::new(),
            recovery_done: true
        })
    );
}

/// Configuration changes during recovery: a peer re-added to the RIB (reflection change)
/// still counts as having sent its table; disabling the last peer waited for ends the
/// recovery, and the FIB hears it once.
#[test]
fn recovery_follows_configuration_changes() {
    let mut d = driver(true);
    let mut ids = PeerIds::default();
    let (a, b) = (ids.allocate(), ids.allocate());
    d.add_peer(a, peer(2), "a").expect("add");
    d.add_peer(b, peer(3), "b").expect("add");
    let now = Instant::now();
    d.start_recovery(now + Duration::from_secs(240), false, now);
    d.handle_input(now, a, up(1, 2, true)).expect("known");
    d.handle_input(now, a, end_of_rib()).expect("known");
    let mut client = peer(2);
    client.rr_client = true;
    d.update_peer(now, a, client);
    assert_eq!(
        d.recovery_status(),
        RecoveryStatus {
            complete: 1,
            waiting: vec!["p3".to_string()]
        }
    );
    let mut off = peer(3);
    off.disabled = true;
    d.update_peer(now, b, off);
    assert!(!d.is_recovering());
    assert_eq!(
        d.recovery_status(),
        RecoveryStatus {
            complete: 1,
            waiting: Vec::new()
        }
    );
    assert!(d.poll_fib().expect("batch").recovery_done);
    d.handle_timeout(now + Duration::from_secs(240));
    assert!(d.poll_fib().is_none(), "reported once");
}

#[test]
fn a_peer_over_its_prefix_limit_is_torn_down_once_counted_exactly() {
    let mut d = driver(false);
    let mut ids = PeerIds::default();
    let (warned, closed) = (ids.allocate(), ids.allocate());
    let mut w = peer(2);
    w.max_prefixes = Some(MaxPrefixes {
        limit: 5,
        action: MaxPrefixAction::Warn,
    });
    let mut t = peer(3);
    t.max_prefixes = Some(MaxPrefixes {
        limit: 5,
        action: MaxPrefixAction::Teardown,
    });
    d.add_peer(warned, w, "w").expect("add");
    d.add_peer(closed, t, "t").expect("add");
    let now = Instant::now();
    for id in [warned, closed] {
        d.handle_input(now, id, up(1, 2 + id.index() as u8, false))
            .expect("known");
    }
    // The same 5 prefixes twice: the estimate goes over, the exact count does not.
    d.handle_input(now, closed, announce(3, 5)).expect("known");
    d.handle_input(now, closed, announce(3, 5)).expect("known");
    d.handle_input(now, warned, announce(2, 9)).expect("known");
    assert!(d.poll_event().is_none());
    d.handle_input(now, closed, announce(3, 6)).expect("known");
    match d.poll_event() {
        Some(RibEvent::Teardown {
            peer,
            notification,
            restart_after,
            hard_reset,
        }) => {
            assert_eq!(peer, closed);
            assert_eq!((notification.code, notification.subcode), (6, 1));
            // AFI 1, SAFI 1, limit 5 (RFC 4486 4).
            assert_eq!(&notification.data[..], &[0, 1, 1, 0, 0, 0, 5]);
            assert_eq!(restart_after, MAX_PREFIX_RESTART);
            assert!(hard_reset);
        }
        other => panic!("{other:?}"),
    }
    assert!(d.poll_event().is_none());
}

#[test]
fn a_reflection_change_readds_the_peer_and_asks_for_its_routes() {
    let mut d = driver(false);
    let mut ids = PeerIds::default();
    let a = ids.allocate();
    d.add_peer(a, peer(2), "a").expect("add");
    let now = Instant::now();
    d.handle_input(now, a, up(1, 2, false)).expect("known");
    d.handle_input(now, a, announce(2, 3)).expect("known");
    let before = d.peer(a).expect("a").rib_id();
    let mut client = peer(2);
    client.rr_client = true;
    d.update_peer(now, a, client);
    let after = d.peer(a).expect("a").rib_id();
    assert_ne!(before, after);
    assert_eq!(
        d.poll_event(),
        Some(RibEvent::RouteRefresh {
            peer: a,
            family: Family::IPV4_UNICAST
        })
    );
    assert!(d.peer(a).expect("a").session().is_some(), "still up");
    // Its routes went with the old RIB peer until the refresh brings them back.
    d.handle_input(now, a, announce(2, 3)).expect("known");
    assert_eq!(d.rib().prefix_count().0, 3);
    d.originate(
        bgp_rib::LocalRoute::new("10.99.0.0/24".parse().expect("prefix"), RouteSource::Static),
        now,
    )
    .expect("originate");
    assert!(d.poll_output().is_some(), "the new route goes to a");
}
