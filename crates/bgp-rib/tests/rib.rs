//! Loc-RIB behaviour: graceful restart (RFC 4724) and LLGR (RFC 9494), FIB output, next-hop
//! resolution, queries, IPv6, and order independence of the decision (property test).

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::{
    Community, Family, GracefulRestart, GracefulRestartFamily, LlgrFamily, MpNextHop, MpNlri,
    MpReach, MpUnreach, Nlri, PathAttributes, Update,
};
use bgp_rib::policy::{InstallMode, Policy, RouteSource};
use bgp_rib::{AllReachable, FibChange, LocalRoute, PeerConfig, Rib, RibConfig, SessionInfo, Step};
use common::*;
use proptest::prelude::*;

fn gr_session(n: u8, restart: u16, llgr: u32) -> SessionInfo {
    let mut s = SessionInfo::new(rid(n), Some(Ipv4Addr::new(192, 0, 2, 1)));
    s.graceful_restart = Some(GracefulRestart {
        restart_state: false,
        notification: true,
        restart_time: restart,
        families: vec![GracefulRestartFamily {
            family: Family::IPV4_UNICAST,
            forwarding_preserved: true,
        }],
    });
    if llgr > 0 {
        s.llgr = vec![LlgrFamily {
            family: Family::IPV4_UNICAST,
            forwarding_preserved: true,
            stale_time: llgr,
        }];
    }
    s
}

fn gr_peer(
    rib: &mut Rib,
    n: u8,
    asn: u32,
    restart: u16,
    llgr: u32,
    now: Instant,
) -> bgp_rib::PeerId {
    let id = rib
        .add_peer(PeerConfig::new(format!("gr{n}"), addr(n), asn))
        .unwrap();
    rib.peer_up(id, gr_session(n, restart, llgr), now).unwrap();
    id
}

fn best_prefixes(rib: &Rib) -> Vec<String> {
    rib.loc_rib()
        .into_iter()
        .map(|(p, _)| p.to_string())
        .collect()
}

#[test]
fn graceful_restart_keeps_stale_until_end_of_rib() {
    let t0 = Instant::now();
    let mut rib = rib();
    let p = gr_peer(&mut rib, 2, 65001, 120, 0, t0);
    let watcher = peer(&mut rib, 3, 65003, false);
    rib.apply_update(
        p,
        &announce(
            &["10.1.0.0/24", "10.2.0.0/24"],
            attrs(&[65001], "192.0.2.2"),
        ),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    rib.take_fib(usize::MAX);
    changes(&mut rib, watcher);
    let deadline = rib.peer_down(p, true, t0).unwrap();
    assert_eq!(deadline, Some(t0 + Duration::from_secs(120)));
    assert_eq!(rib.next_deadline(), deadline);
    rib.process(&AllReachable);
    assert_eq!(best_prefixes(&rib).len(), 2, "stale routes still used");
    assert_eq!(rib.take_fib(usize::MAX).len(), 0, "no FIB churn");
    assert!(changes(&mut rib, watcher).is_empty(), "no churn to peers");
    let d = rib
        .route("10.1.0.0/24".parse().unwrap(), &AllReachable)
        .unwrap();
    assert!(d.paths[0].stale);
    // Peer comes back, re-announces only one prefix, then End-of-RIB.
    let t1 = t0 + Duration::from_secs(30);
    rib.peer_up(p, gr_session(2, 120, 0), t1).unwrap();
    rib.apply_update(
        p,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    assert!(
        !rib.route("10.1.0.0/24".parse().unwrap(), &AllReachable)
            .unwrap()
            .paths[0]
            .stale
    );
    rib.end_of_rib(p, Family::IPV4_UNICAST).unwrap();
    rib.process(&AllReachable);
    assert_eq!(best_prefixes(&rib), vec!["10.1.0.0/24"]);
    assert_eq!(
        rib.take_fib(usize::MAX),
        vec![FibChange::Remove("10.2.0.0/24".parse().unwrap())]
    );
    let w = changes(&mut rib, watcher);
    assert_eq!(w.len(), 1);
    assert!(w[0].attrs.is_none());
    assert_eq!(rib.next_deadline(), None);
    assert_eq!(rib.audit(), Ok(()));
}

#[test]
fn graceful_restart_timeout_sweeps_and_hard_down_removes() {
    let t0 = Instant::now();
    let mut rib = rib();
    let p = gr_peer(&mut rib, 2, 65001, 60, 0, t0);
    rib.apply_update(
        p,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    rib.peer_down(p, true, t0).unwrap();
    rib.handle_timeout(t0 + Duration::from_secs(59));
    rib.process(&AllReachable);
    assert_eq!(best_prefixes(&rib).len(), 1);
    rib.handle_timeout(t0 + Duration::from_secs(60));
    rib.process(&AllReachable);
    assert!(best_prefixes(&rib).is_empty());
    // Hard down (no GR) removes at once.
    rib.peer_up(p, gr_session(2, 60, 0), t0).unwrap();
    rib.apply_update(
        p,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    assert_eq!(rib.peer_down(p, false, t0).unwrap(), None);
    rib.process(&AllReachable);
    assert!(best_prefixes(&rib).is_empty());
    assert_eq!(rib.audit(), Ok(()));
}

#[test]
fn restart_without_forwarding_state_drops_stale() {
    let t0 = Instant::now();
    let mut rib = rib();
    let p = gr_peer(&mut rib, 2, 65001, 60, 0, t0);
    rib.apply_update(
        p,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    rib.peer_down(p, true, t0).unwrap();
    let mut s = gr_session(2, 60, 0);
    if let Some(gr) = s.graceful_restart.as_mut() {
        gr.families[0].forwarding_preserved = false;
    }
    rib.peer_up(p, s, t0).unwrap();
    rib.process(&AllReachable);
    assert!(best_prefixes(&rib).is_empty());
}

#[test]
fn llgr_stale_is_least_preferred_and_marked() {
    let t0 = Instant::now();
    let mut rib = rib();
    let p = gr_peer(&mut rib, 2, 65001, 10, 3600, t0);
    let other = peer(&mut rib, 3, 65003, false);
    let mut good = attrs(&[65001], "192.0.2.2");
    good.local_pref = Some(500);
    rib.apply_update(p, &announce(&["10.1.0.0/24"], good), false)
        .unwrap();
    let mut no_llgr = attrs(&[65001], "192.0.2.2");
    no_llgr.communities = vec![Community::NO_LLGR];
    rib.apply_update(p, &announce(&["10.2.0.0/24"], no_llgr), false)
        .unwrap();
    rib.apply_update(
        other,
        &announce(&["10.1.0.0/24"], attrs(&[65003, 65004, 65005], "192.0.2.3")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let d = rib
        .route("10.1.0.0/24".parse().unwrap(), &AllReachable)
        .unwrap();
    assert_eq!(d.paths.iter().find(|x| x.best).unwrap().peer, Some(p));
    rib.peer_down(p, true, t0).unwrap();
    rib.handle_timeout(t0 + Duration::from_secs(10));
    rib.process(&AllReachable);
    assert_eq!(rib.next_deadline(), Some(t0 + Duration::from_secs(3610)));
    assert_eq!(
        best_prefixes(&rib),
        vec!["10.1.0.0/24"],
        "NO_LLGR route dropped"
    );
    let d = rib
        .route("10.1.0.0/24".parse().unwrap(), &AllReachable)
        .unwrap();
    let stale = d.paths.iter().find(|x| x.peer == Some(p)).unwrap();
    assert!(stale.llgr_stale);
    assert!(stale
        .attrs
        .attrs
        .communities
        .contains(&Community::LLGR_STALE));
    assert_eq!(stale.lost_at, Some(Step::LlgrStale));
    // Alone it is still used.
    rib.remove_peer(other).unwrap();
    rib.process(&AllReachable);
    assert_eq!(best_prefixes(&rib), vec!["10.1.0.0/24"]);
    rib.handle_timeout(t0 + Duration::from_secs(3610));
    rib.process(&AllReachable);
    assert!(best_prefixes(&rib).is_empty());
    assert_eq!(rib.audit(), Ok(()));
}

#[test]
fn unresolvable_next_hop_is_not_eligible() {
    let mut rib = rib();
    let a = peer(&mut rib, 2, LOCAL_AS, false);
    let b = peer(&mut rib, 3, LOCAL_AS, false);
    let mut pa = attrs(&[], "172.16.0.1");
    pa.local_pref = Some(200);
    rib.apply_update(a, &announce(&["10.1.0.0/24"], pa), false)
        .unwrap();
    rib.apply_update(
        b,
        &announce(&["10.1.0.0/24"], attrs(&[], "192.0.2.3")),
        false,
    )
    .unwrap();
    let resolver = |nh: IpAddr| match nh {
        IpAddr::V4(v4) if v4.octets()[0] == 192 => Some(10),
        _ => None,
    };
    rib.process(&resolver);
    let d = rib
        .route("10.1.0.0/24".parse().unwrap(), &resolver)
        .unwrap();
    let best = d.paths.iter().find(|x| x.best).unwrap();
    assert_eq!(best.peer, Some(b));
    let lost = d.paths.iter().find(|x| !x.best).unwrap();
    assert_eq!(
        lost.lost_at,
        Some(Step::NotEligible(bgp_rib::Ineligible::NextHopUnresolvable))
    );
    // The IGP learns the route: re-run.
    rib.take_fib(usize::MAX);
    rib.resolver_changed(&AllReachable);
    let d = rib
        .route("10.1.0.0/24".parse().unwrap(), &AllReachable)
        .unwrap();
    assert_eq!(d.paths.iter().find(|x| x.best).unwrap().peer, Some(a));
    match rib.take_fib(1).pop() {
        Some(FibChange::Upsert(r)) => assert_eq!(r.local_pref, 200),
        other => panic!("{other:?}"),
    }
    assert_eq!(rib.audit(), Ok(()));
}

#[test]
fn lookup_longest_match_with_reasons() {
    let mut rib = rib();
    let a = peer(&mut rib, 2, 65001, false);
    let b = peer(&mut rib, 3, 65002, false);
    rib.apply_update(
        a,
        &announce(&["10.0.0.0/8"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.apply_update(
        a,
        &announce(&["10.1.0.0/16"], attrs(&[65001, 65009], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.apply_update(
        b,
        &announce(&["10.1.0.0/16"], attrs(&[65002], "192.0.2.3")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let d = rib
        .lookup("10.1.2.3".parse().unwrap(), &AllReachable)
        .unwrap();
    assert_eq!(d.prefix.to_string(), "10.1.0.0/16");
    assert_eq!(d.paths.len(), 2);
    let best = d.paths.iter().find(|x| x.best).unwrap();
    assert_eq!(best.peer, Some(b));
    assert_eq!(best.lost_at, None);
    assert_eq!(
        d.paths.iter().find(|x| !x.best).unwrap().lost_at,
        Some(Step::AsPathLength)
    );
    let d = rib
        .lookup("10.200.0.1".parse().unwrap(), &AllReachable)
        .unwrap();
    assert_eq!(d.prefix.to_string(), "10.0.0.0/8");
    assert!(rib
        .lookup("11.0.0.1".parse().unwrap(), &AllReachable)
        .is_none());
    assert_eq!(rib.adj_rib_in(a, Family::IPV4_UNICAST).unwrap().len(), 2);
}

#[test]
fn fib_output_local_routes_no_install_and_policy() {
    let fib_policy: Policy = toml::from_str(
        r#"
        default = "accept"
        [[rules]]
        match = { prefix_in = [{ prefix = "10.65.0.0/16", orlonger = true }], source = ["bgp"] }
        set = { tunnel_device = "tunl0", install = "onlink", metric_from_local_pref = true }
        action = "accept"
        [[rules]]
        match = { source = ["static"], prefix_in = [{ prefix = "10.65.1.0/26" }] }
        set = { install = "blackhole" }
        action = "accept"
        "#,
    )
    .unwrap();
    let mut cfg = RibConfig::new(LOCAL_AS, rid(1));
    cfg.fib_policy = Arc::new(fib_policy.compile().unwrap());
    let mut rib = Rib::new(cfg);
    let p = peer(&mut rib, 2, LOCAL_AS, false);
    rib.originate(LocalRoute::new(
        "10.65.1.0/26".parse().unwrap(),
        RouteSource::Static,
    ))
    .unwrap();
    let mut svc = LocalRoute::new("10.96.0.0/12".parse().unwrap(), RouteSource::Static);
    svc.no_install = true;
    rib.originate(svc).unwrap();
    let mut pod = LocalRoute::new("10.65.1.5/32".parse().unwrap(), RouteSource::Kernel);
    pod.kernel.ifname = Some("cali123".into());
    pod.kernel.metric = Some(1024);
    pod.kernel.protocol = Some(3);
    rib.originate(pod).unwrap();
    rib.apply_update(
        p,
        &announce(&["10.65.2.0/26"], attrs(&[], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let fib: Vec<_> = rib
        .take_fib(usize::MAX)
        .into_iter()
        .map(|c| match c {
            FibChange::Upsert(r) => r,
            FibChange::Remove(p) => panic!("remove {p}"),
        })
        .collect();
    assert_eq!(fib.len(), 4);
    let by = |p: &str| fib.iter().find(|r| r.prefix.to_string() == p).unwrap();
    assert_eq!(by("10.65.1.0/26").install, Some(InstallMode::Blackhole));
    assert!(!by("10.65.1.0/26").no_install);
    assert!(by("10.96.0.0/12").no_install);
    let pod = by("10.65.1.5/32");
    assert!(pod.no_install, "kernel-learned routes are not reinstalled");
    assert_eq!(pod.ifname.as_deref(), Some("cali123"));
    let remote = by("10.65.2.0/26");
    assert_eq!(remote.tunnel_device.as_deref(), Some("tunl0"));
    assert_eq!(remote.install, Some(InstallMode::Onlink));
    assert_eq!(remote.metric, Some(2_147_483_647 - 100));
    assert_eq!(remote.next_hops.as_slice(), &[addr(2)]);
    // Re-originating with different metadata re-announces to the FIB.
    let mut svc = LocalRoute::new("10.96.0.0/12".parse().unwrap(), RouteSource::Static);
    svc.no_install = false;
    rib.originate(svc).unwrap();
    rib.process(&AllReachable);
    match rib.take_fib(1).pop() {
        Some(FibChange::Upsert(r)) => assert!(!r.no_install),
        other => panic!("{other:?}"),
    }
    // Static beats BGP for the same prefix (source preference).
    rib.apply_update(
        p,
        &announce(&["10.65.1.0/26"], attrs(&[], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let d = rib
        .route("10.65.1.0/26".parse().unwrap(), &AllReachable)
        .unwrap();
    assert_eq!(
        d.paths.iter().find(|x| x.best).unwrap().source,
        RouteSource::Static
    );
    assert_eq!(
        d.paths.iter().find(|x| !x.best).unwrap().lost_at,
        Some(Step::SourcePreference)
    );
    assert_eq!(rib.audit(), Ok(()));
}

#[test]
fn ipv6_mp_reach_and_unreach() {
    let mut rib = rib();
    let a = peer(&mut rib, 2, 65001, false);
    let mut s = SessionInfo::new(rid(3), None);
    s.local_v6 = Some("2001:db8::1".parse().unwrap());
    let b = rib
        .add_peer(PeerConfig::new("v6", "2001:db8::3".parse().unwrap(), 65003))
        .unwrap();
    rib.peer_up(b, s, Instant::now()).unwrap();
    let nh: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let u = Update {
        attributes: PathAttributes {
            origin: Some(bgp_proto::Origin::Igp),
            as_path: Some(path(&[65001])),
            ..Default::default()
        },
        mp_reach: Some(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: MpNextHop::V6 {
                global: nh,
                link_local: None,
            },
            nlri: MpNlri::Unicast(vec![Nlri::new("2001:db8:100::/48".parse().unwrap())]),
        }),
        ..Default::default()
    };
    rib.apply_update(a, &u, false).unwrap();
    rib.process(&AllReachable);
    assert_eq!(rib.prefix_count(), (0, 1));
    let out = take(&mut rib, b).unwrap();
    let sent = out.changes[0].attrs.as_ref().unwrap();
    assert_eq!(
        sent.next_hop,
        Some(MpNextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: None
        })
    );
    let mut frames = Vec::new();
    rib.apply_update(
        a,
        &Update {
            mp_unreach: Some(MpUnreach {
                family: Family::IPV6_UNICAST,
                nlri: MpNlri::Unicast(vec![Nlri::new("2001:db8:100::/48".parse().unwrap())]),
            }),
            ..Default::default()
        },
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let out = rib.take_encoded(b, usize::MAX, &mut frames).unwrap();
    assert_eq!((out.announced, out.withdrawn), (0, 1));
    assert_eq!(frames.len(), 1);
    assert_eq!(rib.prefix_count(), (0, 0));
    assert_eq!(rib.audit(), Ok(()));
}

#[test]
fn attribute_sets_are_interned_and_released() {
    let mut rib = rib();
    let a = peer(&mut rib, 2, 65001, false);
    let prefixes: Vec<String> = (0..5000)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    rib.apply_update(a, &announce(&refs, attrs(&[65001], "192.0.2.2")), false)
        .unwrap();
    rib.process(&AllReachable);
    assert!(rib.attribute_sets() <= 2, "{}", rib.attribute_sets());
    rib.apply_update(a, &withdraw(&refs), false).unwrap();
    rib.process(&AllReachable);
    rib.remove_peer(a).unwrap();
    assert_eq!(rib.prefix_count(), (0, 0));
}

/// A random path: (peer 2..=6, local_pref, as path length, origin, med).
fn arb_path() -> impl Strategy<Value = (u8, u32, usize, u8, u32)> {
    (2u8..=6, 99u32..=101, 0usize..3, 0u8..3, 0u32..3)
}

fn build(order: &[(u8, u32, usize, u8, u32)]) -> Vec<(String, Option<String>, bool)> {
    let mut cfg = RibConfig::new(LOCAL_AS, rid(1));
    cfg.max_paths = 4;
    let mut rib = Rib::new(cfg);
    // Peers 2, 3 in AS 65001, 4 in 65002 (MED groups), 5, 6 iBGP.
    let asn = |n: u8| match n {
        2 | 3 => 65001,
        4 => 65002,
        _ => LOCAL_AS,
    };
    let ids: Vec<_> = (2u8..=6)
        .map(|n| peer(&mut rib, n, asn(n), false))
        .collect();
    for (k, &(n, lp, len, origin, med)) in order.iter().enumerate() {
        let mut a = PathAttributes {
            origin: Some(match origin {
                0 => bgp_proto::Origin::Igp,
                1 => bgp_proto::Origin::Egp,
                _ => bgp_proto::Origin::Incomplete,
            }),
            ..Default::default()
        };
        let mut asns: Vec<u32> = if asn(n) == LOCAL_AS {
            vec![]
        } else {
            vec![asn(n)]
        };
        asns.extend(std::iter::repeat_n(64999, len));
        a.as_path = Some(path(&asns));
        a.next_hop = Some(Ipv4Addr::new(192, 0, 2, n));
        a.local_pref = Some(lp);
        a.med = Some(med);
        // Interleave processing so intermediate decisions happen too.
        rib.apply_update(
            ids[usize::from(n - 2)],
            &announce(&["10.1.0.0/24"], a),
            false,
        )
        .unwrap();
        if k % 2 == 0 {
            rib.process(&AllReachable);
        }
    }
    rib.process(&AllReachable);
    let d = rib
        .route("10.1.0.0/24".parse().unwrap(), &AllReachable)
        .unwrap();
    let mut v: Vec<_> = d
        .paths
        .iter()
        .map(|x| {
            (
                x.peer_name.clone().unwrap_or_default(),
                x.lost_at.map(|s| format!("{s:?}")),
                x.multipath,
            )
        })
        .collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// The best path, the multipath set and every loser's reason do not depend on the
    /// order in which routes arrived (the MED rule is not transitive; elimination is).
    #[test]
    fn decision_independent_of_arrival_order(
        paths in proptest::collection::vec(arb_path(), 1..8),
        seed in any::<u64>(),
    ) {
        // One path per peer: later announcements replace earlier ones, so keep the last.
        let mut last: std::collections::BTreeMap<u8, (u8, u32, usize, u8, u32)> = Default::default();
        for p in &paths { last.insert(p.0, *p); }
        let uniq: Vec<_> = last.into_values().collect();
        let mut shuffled = uniq.clone();
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let j = (s >> 33) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        let a = build(&uniq);
        let b = build(&shuffled);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.iter().filter(|x| x.1.is_none()).count(), 1, "exactly one best");
    }
}

#[test]
fn peer_removal_withdraws_everywhere() {
    let mut rib = rib();
    let a = peer(&mut rib, 2, 65001, false);
    let w = peer(&mut rib, 3, 65003, false);
    rib.apply_update(
        a,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    changes(&mut rib, w);
    rib.remove_peer(a).unwrap();
    rib.process(&AllReachable);
    let c = changes(&mut rib, w);
    assert_eq!(c.len(), 1);
    assert!(c[0].attrs.is_none());
    assert!(rib.apply_update(a, &withdraw(&[]), false).is_err());
    assert!(take(&mut rib, a).is_err());
    let _ = IpAddr::V4(Ipv4Addr::LOCALHOST);
}

#[test]
fn llgr_stale_routes_only_to_llgr_peers() {
    let t0 = Instant::now();
    let mut rib = rib();
    let p = gr_peer(&mut rib, 2, 65001, 0, 3600, t0);
    let plain = peer(&mut rib, 3, 65003, false);
    let llgr_peer = gr_peer(&mut rib, 4, 65004, 120, 3600, t0);
    rib.apply_update(
        p,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    assert_eq!(changes(&mut rib, plain).len(), 1);
    assert_eq!(changes(&mut rib, llgr_peer).len(), 1);
    // Restart time 0: straight into LLGR (RFC 9494).
    rib.peer_down(p, true, t0).unwrap();
    rib.process(&AllReachable);
    let w = changes(&mut rib, plain);
    assert_eq!(w.len(), 1);
    assert!(w[0].attrs.is_none(), "withdrawn from the peer without LLGR");
    let l = changes(&mut rib, llgr_peer);
    assert_eq!(l.len(), 1);
    assert!(l[0]
        .attrs
        .as_ref()
        .unwrap()
        .attrs
        .communities
        .contains(&Community::LLGR_STALE));
    assert_eq!(rib.audit(), Ok(()));
}

#[test]
fn outgoing_attribute_sets_released_after_policy_churn() {
    let mut rib = rib();
    let a = peer(&mut rib, 2, 65001, false);
    let out = peer(&mut rib, 3, 65003, false);
    let prefixes: Vec<String> = (0..6000)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    rib.apply_update(a, &announce(&refs, attrs(&[65001], "192.0.2.2")), false)
        .unwrap();
    rib.process(&AllReachable);
    let accept = Arc::new(bgp_rib::policy::CompiledPolicy::accept_all());
    for med in 0..10 {
        let p: Policy = toml::from_str(&format!(
            "default = \"accept\"\n[[rules]]\nset = {{ med = {med} }}\naction = \"accept\""
        ))
        .unwrap();
        rib.set_policies(out, accept.clone(), Arc::new(p.compile().unwrap()))
            .unwrap();
        rib.process(&AllReachable);
        take(&mut rib, out).unwrap();
    }
    // Received set + current outgoing set (+ at most one not yet collected per round).
    assert!(rib.attribute_sets() <= 4, "{}", rib.attribute_sets());
    assert_eq!(rib.audit(), Ok(()));
}

/// The FIB policy (fixed for the life of the RIB) decides each best route's form; a best
/// route it rejects leaves the FIB, also when it replaces one that was installed.
#[test]
fn fib_policy_rejecting_a_new_best_route_removes_it() {
    let pol: Policy = toml::from_str(
        r#"
        default = "accept"
        [[rules]]
        match = { next_hop_in = ["192.0.2.3/32"] }
        action = "reject"
        [[rules]]
        set = { tunnel_device = "tunl0" }
        action = "accept"
        "#,
    )
    .unwrap();
    let mut cfg = RibConfig::new(LOCAL_AS, rid(1));
    cfg.fib_policy = Arc::new(pol.compile().unwrap());
    let mut rib = Rib::new(cfg);
    let p = peer(&mut rib, 2, 65001, false);
    let q = peer(&mut rib, 3, 65003, false);
    rib.apply_update(
        p,
        &announce(
            &["10.1.0.0/24", "10.2.0.0/24"],
            attrs(&[65001, 65009], "192.0.2.2"),
        ),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let fib = rib.take_fib(usize::MAX);
    assert_eq!(fib.len(), 2);
    assert!(fib
        .iter()
        .all(|c| matches!(c, FibChange::Upsert(r) if r.tunnel_device.as_deref() == Some("tunl0"))));
    // A shorter path through the refused next hop becomes best for one prefix.
    rib.apply_update(
        q,
        &announce(&["10.1.0.0/24"], attrs(&[65003], "192.0.2.3")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    assert_eq!(
        rib.take_fib(usize::MAX),
        vec![FibChange::Remove("10.1.0.0/24".parse().unwrap())]
    );
    let best = rib
        .route("10.1.0.0/24".parse().unwrap(), &AllReachable)
        .unwrap();
    assert!(best.paths.iter().any(|x| x.best && x.peer == Some(q)));
    assert_eq!(rib.audit(), Ok(()));
}

/// RFC 4724 4.1, as the restarting speaker: nothing is advertised until every
/// graceful-restart peer sent End-of-RIB (peers without GR are not waited for); then
/// each peer gets the whole table and End-of-RIB. Routes are decided and reach the FIB
/// meanwhile.
#[test]
fn selection_deferral_waits_for_end_of_rib_from_graceful_restart_peers() {
    let t0 = Instant::now();
    let mut rib = rib();
    let a = rib.add_peer(PeerConfig::new("a", addr(2), 65001)).unwrap();
    let b = rib.add_peer(PeerConfig::new("b", addr(3), 65002)).unwrap();
    let plain = rib
        .add_peer(PeerConfig::new("plain", addr(4), 65004))
        .unwrap();
    let deadline = t0 + Duration::from_secs(60);
    rib.defer_selection(deadline);
    assert!(rib.is_deferring());
    assert_eq!(rib.next_deadline(), Some(deadline));
    rib.peer_up(a, gr_session(2, 120, 0), t0).unwrap();
    rib.peer_up(
        plain,
        SessionInfo::new(rid(4), Some(Ipv4Addr::new(192, 0, 2, 1))),
        t0,
    )
    .unwrap();
    rib.apply_update(
        a,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    // A withdrawn route is never advertised at all.
    rib.apply_update(
        a,
        &announce(&["10.9.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    rib.apply_update(a, &withdraw(&["10.9.0.0/24"]), false)
        .unwrap();
    rib.end_of_rib(a, Family::IPV4_UNICAST).unwrap();
    rib.end_of_rib(a, Family::IPV6_UNICAST).unwrap();
    rib.process(&AllReachable);
    assert_eq!(best_prefixes(&rib), vec!["10.1.0.0/24"], "decided");
    assert!(
        !rib.take_fib(usize::MAX).is_empty(),
        "FIB fed during the deferral"
    );
    assert!(
        rib.is_deferring(),
        "b has not sent End-of-RIB (not even come up)"
    );
    assert!(rib.peers_with_output().is_empty());
    let held = take(&mut rib, plain).unwrap();
    assert!(held.is_empty(), "{held:?}");
    rib.peer_up(b, gr_session(3, 120, 0), t0).unwrap();
    rib.apply_update(
        b,
        &announce(&["10.2.0.0/24"], attrs(&[65002], "192.0.2.3")),
        false,
    )
    .unwrap();
    rib.end_of_rib(b, Family::IPV4_UNICAST).unwrap();
    rib.process(&AllReachable);
    assert!(rib.is_deferring(), "IPv6 End-of-RIB of b missing");
    rib.end_of_rib(b, Family::IPV6_UNICAST).unwrap();
    assert!(!rib.is_deferring());
    assert_eq!(rib.next_deadline(), None);
    rib.process(&AllReachable);
    let out = take(&mut rib, plain).unwrap();
    let mut sent: Vec<String> = out
        .changes
        .iter()
        .map(|c| {
            assert!(c.attrs.is_some(), "only announcements: {c:?}");
            c.nlri.prefix.to_string()
        })
        .collect();
    sent.sort();
    assert_eq!(sent, vec!["10.1.0.0/24", "10.2.0.0/24"]);
    assert_eq!(
        out.end_of_rib,
        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    let to_a = take(&mut rib, a).unwrap();
    assert_eq!(to_a.changes.len(), 1, "b's route");
    assert_eq!(to_a.end_of_rib.len(), 2);
    assert_eq!(rib.audit(), Ok(()));
}

/// The Selection_Deferral_Timer ends the wait for a peer that never sends End-of-RIB; a
/// peer that is restarting itself (Restart State bit) is not waited for.
#[test]
fn selection_deferral_ends_at_its_deadline_and_skips_restarting_peers() {
    let t0 = Instant::now();
    let mut rib = rib();
    let restarting = rib.add_peer(PeerConfig::new("r", addr(2), 65001)).unwrap();
    let silent = rib.add_peer(PeerConfig::new("s", addr(3), 65002)).unwrap();
    let deadline = t0 + Duration::from_secs(60);
    rib.defer_selection(deadline);
    let mut s = gr_session(2, 120, 0);
    if let Some(gr) = s.graceful_restart.as_mut() {
        gr.restart_state = true;
    }
    rib.peer_up(restarting, s, t0).unwrap();
    rib.apply_update(
        restarting,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.peer_up(silent, gr_session(3, 120, 0), t0).unwrap();
    rib.process(&AllReachable);
    assert!(rib.is_deferring(), "waiting for the silent peer only");
    rib.handle_timeout(t0 + Duration::from_secs(59));
    assert!(rib.is_deferring());
    rib.handle_timeout(deadline);
    assert!(!rib.is_deferring());
    rib.process(&AllReachable);
    assert_eq!(rib.peers_with_output(), vec![restarting, silent]);
    let out = take(&mut rib, silent).unwrap();
    assert_eq!(out.changes.len(), 1);
    assert_eq!(out.end_of_rib.len(), 2);

    // Only the restarting peer configured: nothing to wait for once it is up.
    let mut rib = self::rib();
    let r = rib.add_peer(PeerConfig::new("r", addr(2), 65001)).unwrap();
    rib.defer_selection(deadline);
    assert!(rib.is_deferring(), "not up yet");
    let mut s = gr_session(2, 120, 0);
    if let Some(gr) = s.graceful_restart.as_mut() {
        gr.restart_state = true;
    }
    rib.peer_up(r, s, t0).unwrap();
    assert!(!rib.is_deferring());
}

/// Our AS and router id change only while no peer is configured; peers added after see them.
#[test]
fn identity_changes_only_without_peers_and_applies_to_new_peers() {
    let mut rib = Rib::new(RibConfig::new(65000, Ipv4Addr::new(10, 0, 0, 1)));
    rib.originate(LocalRoute::new(
        "10.9.0.0/24".parse().unwrap(),
        RouteSource::Static,
    ))
    .unwrap();
    let peer = |asn| PeerConfig::new("p", IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), asn);
    let id = rib.add_peer(peer(65001)).unwrap();
    assert!(matches!(
        rib.set_identity(65001, Ipv4Addr::new(10, 0, 0, 9)),
        Err(bgp_rib::RibError::PeersConfigured)
    ));
    rib.remove_peer(id).unwrap();
    rib.set_identity(65001, Ipv4Addr::new(10, 0, 0, 9)).unwrap();
    assert_eq!(rib.config().local_as, 65001);
    assert_eq!(rib.config().router_id, Ipv4Addr::new(10, 0, 0, 9));
    // The same peer is now iBGP: the local route goes out without our AS prepended
    // and with LOCAL_PREF (eBGP would prepend 65001 and strip LOCAL_PREF).
    let id = rib.add_peer(peer(65001)).unwrap();
    let s = SessionInfo::new(Ipv4Addr::new(10, 0, 0, 2), Some(Ipv4Addr::new(10, 0, 0, 1)));
    rib.peer_up(id, s, Instant::now()).unwrap();
    rib.process(&AllReachable);
    let out = take(&mut rib, id).unwrap();
    let c = out
        .changes
        .iter()
        .find(|c| c.nlri.prefix.to_string() == "10.9.0.0/24")
        .expect("local route announced");
    let a = c.attrs.as_ref().expect("announcement");
    assert!(a
        .attrs
        .as_path
        .as_ref()
        .is_none_or(|p| p.segments.is_empty()));
    assert!(a.attrs.local_pref.is_some());
}
