//! Outbound rules: iBGP split horizon, RFC 4456 reflection, eBGP attribute handling,
//! well-known communities, Adj-RIB-Out diffing, update packing and End-of-RIB.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bgp_proto::wire::{decode_message, Inbound};
use bgp_proto::{Community, Family, Nlri};
use bgp_rib::policy::{Policy, RouteSource};
use bgp_rib::{AddPathSend, AllReachable, LocalRoute, NextHopMode, PeerConfig, RibConfig};
use common::*;

#[test]
fn ebgp_route_to_ibgp_keeps_next_hop_and_sets_local_pref() {
    let mut rib = rib();
    let e = peer(&mut rib, 2, 65001, false);
    let i = peer(&mut rib, 3, LOCAL_AS, false);
    let mut a = attrs(&[65001], "192.0.2.2");
    a.med = Some(7);
    a.local_pref = Some(999); // ignored from eBGP (RFC 4271 5.1.5)
    rib.apply_update(e, &announce(&["203.0.113.0/24"], a), false)
        .unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, i);
    assert_eq!(out.len(), 1);
    let sent = out[0].attrs.as_ref().unwrap();
    assert_eq!(sent.attrs.local_pref, Some(100));
    assert_eq!(sent.attrs.med, Some(7), "MED kept towards iBGP");
    assert_eq!(
        sent.attrs.as_path,
        Some(path(&[65001])),
        "no prepend on iBGP"
    );
    assert_eq!(sent.next_hop_addr(), Some("192.0.2.2".parse().unwrap()));
    assert!(
        changes(&mut rib, e).is_empty(),
        "not sent back to its source"
    );
}

#[test]
fn ebgp_export_prepends_sets_next_hop_self_strips_local_pref_and_med() {
    let mut rib = rib();
    let e1 = peer(&mut rib, 2, 65001, false);
    let e2 = peer(&mut rib, 3, 65002, false);
    let i = peer(&mut rib, 4, LOCAL_AS, false);
    let mut a = attrs(&[65001, 65010], "192.0.2.2");
    a.med = Some(7);
    rib.apply_update(e1, &announce(&["203.0.113.0/24"], a), false)
        .unwrap();
    let mut b = attrs(&[], "192.0.2.4");
    b.local_pref = Some(300);
    b.med = Some(5);
    rib.apply_update(i, &announce(&["198.51.100.0/24"], b), false)
        .unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, e2);
    assert_eq!(out.len(), 2);
    for c in &out {
        let s = c.attrs.as_ref().unwrap();
        assert_eq!(s.attrs.local_pref, None);
        assert_eq!(s.attrs.med, None);
        assert_eq!(s.next_hop_addr(), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(
            s.attrs.as_path.as_ref().unwrap().first_asn(),
            Some(LOCAL_AS)
        );
    }
    let from_e1 = out
        .iter()
        .find(|c| c.nlri.prefix == "203.0.113.0/24".parse().unwrap())
        .unwrap();
    assert_eq!(
        from_e1.attrs.as_ref().unwrap().attrs.as_path,
        Some(path(&[LOCAL_AS, 65001, 65010]))
    );
}

#[test]
fn ibgp_split_horizon_without_reflection() {
    let mut rib = rib();
    let a = peer(&mut rib, 2, LOCAL_AS, false);
    let b = peer(&mut rib, 3, LOCAL_AS, false);
    let e = peer(&mut rib, 4, 65004, false);
    rib.apply_update(
        a,
        &announce(&["10.1.0.0/26"], attrs(&[], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    assert!(
        changes(&mut rib, b).is_empty(),
        "iBGP route not re-advertised over iBGP"
    );
    assert_eq!(changes(&mut rib, e).len(), 1, "but sent to eBGP");
}

#[test]
fn reflection_client_to_all_sets_originator_and_cluster_list() {
    let mut rib = rib();
    let c1 = peer(&mut rib, 2, LOCAL_AS, true);
    let c2 = peer(&mut rib, 3, LOCAL_AS, true);
    let nc = peer(&mut rib, 4, LOCAL_AS, false);
    rib.apply_update(
        c1,
        &announce(&["10.1.0.0/26"], attrs(&[], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    for p in [c2, nc] {
        let out = changes(&mut rib, p);
        assert_eq!(out.len(), 1);
        let s = out[0].attrs.as_ref().unwrap();
        assert_eq!(s.attrs.originator_id, Some(rid(2)));
        assert_eq!(s.attrs.cluster_list, vec![rid(1)]);
        assert_eq!(s.next_hop_addr(), Some("192.0.2.2".parse().unwrap()));
    }
    assert!(changes(&mut rib, c1).is_empty());
    assert_eq!(rib.audit(), Ok(()));
}

#[test]
fn reflection_non_client_to_clients_only_and_not_to_originator() {
    let mut cfg = RibConfig::new(LOCAL_AS, rid(1));
    cfg.cluster_id = Some(Ipv4Addr::new(1, 1, 1, 1));
    let mut rib = bgp_rib::Rib::new(cfg);
    let c1 = peer(&mut rib, 2, LOCAL_AS, true);
    let c_orig = peer(&mut rib, 5, LOCAL_AS, true);
    let nc1 = peer(&mut rib, 3, LOCAL_AS, false);
    let nc2 = peer(&mut rib, 4, LOCAL_AS, false);
    let mut a = attrs(&[], "192.0.2.3");
    a.originator_id = Some(rid(5));
    a.cluster_list = vec![Ipv4Addr::new(2, 2, 2, 2)];
    rib.apply_update(nc1, &announce(&["10.1.0.0/26"], a), false)
        .unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, c1);
    assert_eq!(out.len(), 1);
    let s = out[0].attrs.as_ref().unwrap();
    assert_eq!(
        s.attrs.originator_id,
        Some(rid(5)),
        "existing ORIGINATOR_ID kept"
    );
    assert_eq!(
        s.attrs.cluster_list,
        vec![Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2)],
        "our CLUSTER_ID prepended"
    );
    assert!(
        changes(&mut rib, nc2).is_empty(),
        "non-client to non-client: no"
    );
    assert!(
        changes(&mut rib, c_orig).is_empty(),
        "never back to the originator"
    );
}

#[test]
fn loop_detection_as_path_originator_cluster() {
    let mut rib = rib();
    let e = peer(&mut rib, 2, 65001, false);
    let mut cfg = PeerConfig::new("allow", addr(3), 65003);
    cfg.allow_local_as = 1;
    let e_allow = peer_with(&mut rib, 3, cfg);
    let i = peer(&mut rib, 4, LOCAL_AS, true);
    let looped = attrs(&[65001, LOCAL_AS, 65009], "192.0.2.2");
    let s = rib
        .apply_update(e, &announce(&["10.9.0.0/24"], looped.clone()), false)
        .unwrap();
    assert_eq!(s.rejected, 1);
    let mut l2 = looped.clone();
    l2.next_hop = Some("192.0.2.3".parse().unwrap());
    let s = rib
        .apply_update(e_allow, &announce(&["10.8.0.0/24"], l2.clone()), false)
        .unwrap();
    assert_eq!(s.rejected, 0, "allow_local_as 1 accepts one occurrence");
    let mut twice = l2.clone();
    twice.as_path = Some(path(&[65003, LOCAL_AS, LOCAL_AS]));
    let s = rib
        .apply_update(e_allow, &announce(&["10.7.0.0/24"], twice), false)
        .unwrap();
    assert_eq!(s.rejected, 1, "but not two");
    let mut orig = attrs(&[], "192.0.2.4");
    orig.originator_id = Some(rid(1));
    assert_eq!(
        rib.apply_update(i, &announce(&["10.6.0.0/24"], orig), false)
            .unwrap()
            .rejected,
        1
    );
    let mut cl = attrs(&[], "192.0.2.4");
    cl.cluster_list = vec![rid(1)];
    assert_eq!(
        rib.apply_update(i, &announce(&["10.5.0.0/24"], cl), false)
            .unwrap()
            .rejected,
        1
    );
    rib.process(&AllReachable);
    let best: Vec<_> = rib
        .loc_rib()
        .into_iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(best, vec!["10.8.0.0/24"]);
    // Rejected paths stay in the Adj-RIB-In, marked.
    let adj = rib.adj_rib_in(e, Family::IPV4_UNICAST).unwrap();
    assert_eq!(adj.len(), 1);
    assert!(!adj[0].2);
    let detail = rib
        .route("10.9.0.0/24".parse().unwrap(), &AllReachable)
        .unwrap();
    assert_eq!(
        detail.paths[0].lost_at,
        Some(bgp_rib::Step::NotEligible(bgp_rib::Ineligible::Loop))
    );
    assert_eq!(rib.audit(), Ok(()));
}

#[test]
fn well_known_communities() {
    let mut rib = rib();
    let src = peer(&mut rib, 2, 65001, false);
    let e = peer(&mut rib, 3, 65003, false);
    let i = peer(&mut rib, 4, LOCAL_AS, false);
    let with = |c: Community, nh: &str| {
        let mut a = attrs(&[65001], nh);
        a.communities = vec![c];
        a
    };
    rib.apply_update(
        src,
        &announce(&["10.1.0.0/24"], with(Community::NO_EXPORT, "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.apply_update(
        src,
        &announce(&["10.2.0.0/24"], with(Community::NO_ADVERTISE, "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.apply_update(
        src,
        &announce(
            &["10.3.0.0/24"],
            with(Community::NO_EXPORT_SUBCONFED, "192.0.2.2"),
        ),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let to_e: Vec<_> = changes(&mut rib, e)
        .into_iter()
        .map(|c| c.nlri.prefix.to_string())
        .collect();
    assert!(to_e.is_empty(), "{to_e:?}");
    let mut to_i: Vec<_> = changes(&mut rib, i)
        .into_iter()
        .map(|c| c.nlri.prefix.to_string())
        .collect();
    to_i.sort();
    assert_eq!(to_i, vec!["10.1.0.0/24", "10.3.0.0/24"]);
    assert_eq!(rib.loc_rib().len(), 3, "all still used locally");
}

#[test]
fn adj_rib_out_diffing_sends_only_changes() {
    let mut rib = rib();
    let src = peer(&mut rib, 2, 65001, false);
    let dst = peer(&mut rib, 3, 65003, false);
    let out0 = take(&mut rib, dst).unwrap();
    assert_eq!(
        out0.end_of_rib,
        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    let a = attrs(&[65001], "192.0.2.2");
    rib.apply_update(src, &announce(&["10.1.0.0/24"], a.clone()), false)
        .unwrap();
    rib.process(&AllReachable);
    assert_eq!(changes(&mut rib, dst).len(), 1);
    // Same again: nothing to send.
    rib.apply_update(src, &announce(&["10.1.0.0/24"], a.clone()), false)
        .unwrap();
    rib.process(&AllReachable);
    assert!(changes(&mut rib, dst).is_empty());
    // A change that does not survive export (MED is stripped towards eBGP): nothing either.
    let mut m = a.clone();
    m.med = Some(50);
    rib.apply_update(src, &announce(&["10.1.0.0/24"], m), false)
        .unwrap();
    rib.process(&AllReachable);
    assert!(changes(&mut rib, dst).is_empty());
    // Real change.
    let mut c = a.clone();
    c.as_path = Some(path(&[65001, 65005]));
    rib.apply_update(src, &announce(&["10.1.0.0/24"], c), false)
        .unwrap();
    rib.process(&AllReachable);
    assert_eq!(changes(&mut rib, dst).len(), 1);
    rib.apply_update(src, &withdraw(&["10.1.0.0/24"]), false)
        .unwrap();
    rib.process(&AllReachable);
    let w = changes(&mut rib, dst);
    assert_eq!(w.len(), 1);
    assert!(w[0].attrs.is_none());
    assert!(rib
        .adj_rib_out(dst, Family::IPV4_UNICAST)
        .unwrap()
        .is_empty());
}

#[test]
fn treat_as_withdraw_removes() {
    let mut rib = rib();
    let src = peer(&mut rib, 2, 65001, false);
    let a = attrs(&[65001], "192.0.2.2");
    rib.apply_update(src, &announce(&["10.1.0.0/24"], a.clone()), false)
        .unwrap();
    rib.process(&AllReachable);
    assert_eq!(rib.loc_rib().len(), 1);
    let s = rib
        .apply_update(src, &announce(&["10.1.0.0/24"], a), true)
        .unwrap();
    assert_eq!((s.announced, s.withdrawn), (0, 1));
    rib.process(&AllReachable);
    assert!(rib.loc_rib().is_empty());
}

#[test]
fn updates_packed_by_attribute_set_and_decode_back() {
    let mut rib = rib();
    let src = peer(&mut rib, 2, 65001, false);
    let dst = peer(&mut rib, 3, 65003, false);
    take(&mut rib, dst).unwrap();
    let prefixes: Vec<String> = (0..2000)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let (first, second) = refs.split_at(1000);
    rib.apply_update(src, &announce(first, attrs(&[65001], "192.0.2.2")), false)
        .unwrap();
    rib.apply_update(
        src,
        &announce(second, attrs(&[65001, 65002], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let mut frames = Vec::new();
    let out = rib.take_encoded(dst, usize::MAX, &mut frames).unwrap();
    assert_eq!(out.announced, 2000);
    assert_eq!(out.messages, frames.len());
    // 1000 /24s take 4 octets each: one 4096-octet UPDATE holds ~1000, so each set needs
    // at most 2 messages.
    assert!(frames.len() <= 4, "{} frames", frames.len());
    let ctx = bgp_proto::CodecContext {
        four_octet_as: true,
        ..Default::default()
    };
    let mut seen = 0;
    for f in &frames {
        match decode_message(f, &ctx).unwrap() {
            Inbound::Update(u) => {
                assert!(u.treat_as_withdraw.is_none());
                assert_eq!(
                    u.update.attributes.next_hop,
                    Some("192.0.2.1".parse().unwrap())
                );
                seen += u.update.nlri.len();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, 2000);
    // Withdrawals batched.
    rib.apply_update(src, &withdraw(first), false).unwrap();
    rib.process(&AllReachable);
    frames.clear();
    rib.take_encoded(dst, usize::MAX, &mut frames).unwrap();
    assert_eq!(frames.len(), 1);
}

#[test]
fn end_of_rib_follows_initial_table() {
    let mut rib = rib();
    let src = peer(&mut rib, 2, 65001, false);
    rib.apply_update(
        src,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let late = peer(&mut rib, 3, 65003, false);
    let mut frames = Vec::new();
    let out = rib.take_encoded(late, usize::MAX, &mut frames).unwrap();
    assert_eq!((out.announced, out.withdrawn), (1, 0));
    assert_eq!(out.end_of_rib.len(), 2);
    assert_eq!(frames.len(), 3);
    let ctx = bgp_proto::CodecContext::default();
    match decode_message(frames.last().unwrap(), &ctx).unwrap() {
        Inbound::Update(u) => assert!(u.update.mp_unreach.is_some()),
        other => panic!("{other:?}"),
    }
    assert!(take(&mut rib, late).unwrap().is_empty());
}

#[test]
fn local_routes_exported_with_next_hop_self() {
    let mut rib = rib();
    let i = peer(&mut rib, 2, LOCAL_AS, false);
    let e = peer(&mut rib, 3, 65003, false);
    rib.originate(LocalRoute::new(
        "10.65.1.0/26".parse().unwrap(),
        RouteSource::Static,
    ))
    .unwrap();
    rib.process(&AllReachable);
    for p in [i, e] {
        let out = changes(&mut rib, p);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].attrs.as_ref().unwrap().next_hop_addr(),
            Some("192.0.2.1".parse().unwrap())
        );
    }
    rib.withdraw_local("10.65.1.0/26".parse().unwrap(), RouteSource::Static);
    rib.process(&AllReachable);
    assert!(changes(&mut rib, i)[0].attrs.is_none());
    assert!(rib
        .originate(LocalRoute::new(
            "10.0.0.0/8".parse().unwrap(),
            RouteSource::Bgp
        ))
        .is_err());
    assert_eq!(rib.audit(), Ok(()));
}

#[test]
fn export_policy_and_soft_reconfiguration() {
    let mut rib = rib();
    let src = peer(&mut rib, 2, 65001, false);
    let dst = peer(&mut rib, 3, 65003, false);
    rib.apply_update(
        src,
        &announce(
            &["10.1.0.0/24", "10.2.0.0/24"],
            attrs(&[65001], "192.0.2.2"),
        ),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    assert_eq!(changes(&mut rib, dst).len(), 2);
    let deny: Policy = toml::from_str(
        r#"
        default = "accept"
        [[rules]]
        match = { prefix_in = [{ prefix = "10.1.0.0/24" }] }
        action = "reject"
        [[rules]]
        set = { med = 42, add_community = ["65000:1"] }
        action = "accept"
        "#,
    )
    .unwrap();
    let accept = Arc::new(bgp_rib::policy::CompiledPolicy::accept_all());
    rib.set_policies(dst, accept.clone(), Arc::new(deny.compile().unwrap()))
        .unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, dst);
    assert_eq!(out.len(), 2);
    let w = out
        .iter()
        .find(|c| c.nlri.prefix.to_string() == "10.1.0.0/24")
        .unwrap();
    assert!(w.attrs.is_none());
    let m = out
        .iter()
        .find(|c| c.nlri.prefix.to_string() == "10.2.0.0/24")
        .unwrap();
    let m = m.attrs.as_ref().unwrap();
    assert_eq!(
        m.attrs.med,
        Some(42),
        "MED set by policy survives eBGP export"
    );
    assert_eq!(m.attrs.communities, vec![Community::new(65000, 1)]);
    // Import side: reject 10.2/24 from src; then accept again from the stored Adj-RIB-In.
    let imp: Policy = toml::from_str(
        r#"
        default = "accept"
        [[rules]]
        match = { prefix_in = [{ prefix = "10.2.0.0/24" }] }
        action = "reject"
        "#,
    )
    .unwrap();
    rib.set_policies(src, Arc::new(imp.compile().unwrap()), accept.clone())
        .unwrap();
    rib.process(&AllReachable);
    assert_eq!(rib.loc_rib().len(), 1);
    let info = rib.peer_info(src).unwrap();
    assert_eq!((info.received_v4, info.accepted_v4), (2, 1));
    assert_eq!(rib.audit(), Ok(()));
    rib.set_policies(src, accept.clone(), accept).unwrap();
    rib.process(&AllReachable);
    assert_eq!(rib.loc_rib().len(), 2);
    let info = rib.peer_info(src).unwrap();
    assert_eq!((info.received_v4, info.accepted_v4), (2, 2));
    assert_eq!(rib.audit(), Ok(()));
}

#[test]
fn add_path_send_all_and_multipath() {
    let mut cfg = RibConfig::new(LOCAL_AS, rid(1));
    cfg.max_paths = 4;
    let mut rib = bgp_rib::Rib::new(cfg);
    let a = peer(&mut rib, 2, 65001, false);
    let b = peer(&mut rib, 3, 65001, false);
    let c = peer(&mut rib, 4, 65001, false);
    let mut pc = PeerConfig::new("addpath", addr(5), LOCAL_AS);
    pc.add_path_send = AddPathSend::All;
    pc.rr_client = true;
    let id = rib.add_peer(pc).unwrap();
    let mut s = bgp_rib::SessionInfo::new(rid(5), Some(Ipv4Addr::new(192, 0, 2, 1)));
    s.codec.add_path_send = vec![Family::IPV4_UNICAST];
    rib.peer_up(id, s, std::time::Instant::now()).unwrap();
    rib.apply_update(
        a,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.apply_update(
        b,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.3")),
        false,
    )
    .unwrap();
    let mut worse = attrs(&[65001, 65001], "192.0.2.4");
    worse.med = Some(1);
    rib.apply_update(c, &announce(&["10.1.0.0/24"], worse), false)
        .unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, id);
    assert_eq!(out.len(), 3, "all paths");
    let ids: std::collections::BTreeSet<_> = out.iter().map(|c| c.nlri.path_id.unwrap()).collect();
    assert_eq!(ids.len(), 3, "distinct path ids");
    // FIB gets the ECMP pair.
    let fib: Vec<_> = rib.take_fib(usize::MAX);
    match fib.last().unwrap() {
        bgp_rib::FibChange::Upsert(r) => {
            let nh: Vec<IpAddr> = r.next_hops.to_vec();
            assert_eq!(nh, vec![addr(2), addr(3)]);
        }
        other => panic!("{other:?}"),
    }
    rib.apply_update(c, &withdraw(&["10.1.0.0/24"]), false)
        .unwrap();
    rib.process(&AllReachable);
    // The Adj-RIB-Out is what the peer holds: the withdrawal counts once taken.
    assert_eq!(rib.adj_rib_out(id, Family::IPV4_UNICAST).unwrap().len(), 3);
    let gone = take(&mut rib, id).unwrap();
    assert_eq!(gone.changes.len(), 1);
    assert!(gone.changes[0].attrs.is_none());
    // On the wire the withdrawal names the path id of one of the announcements.
    let withdrawn_id = gone.changes[0].nlri.path_id.unwrap();
    assert!(ids.contains(&withdrawn_id), "{withdrawn_id} not in {ids:?}");
    assert_eq!(rib.adj_rib_out(id, Family::IPV4_UNICAST).unwrap().len(), 2);
    rib.route_refresh(id, Family::IPV4_UNICAST).unwrap();
    take(&mut rib, id).unwrap();
    // Multipath mode sends only the ECMP set.
    let mut pm = PeerConfig::new("mp", addr(6), LOCAL_AS);
    pm.add_path_send = AddPathSend::Multipath;
    pm.rr_client = true;
    let m = rib.add_peer(pm).unwrap();
    let mut s = bgp_rib::SessionInfo::new(rid(6), Some(Ipv4Addr::new(192, 0, 2, 1)));
    s.codec.add_path_send = vec![Family::IPV4_UNICAST];
    rib.peer_up(m, s, std::time::Instant::now()).unwrap();
    rib.apply_update(
        c,
        &announce(&["10.1.0.0/24"], attrs(&[65001, 65001], "192.0.2.4")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    assert_eq!(changes(&mut rib, m).len(), 2);
    let _ = Nlri::new("10.1.0.0/24".parse().unwrap());
    assert_eq!(rib.audit(), Ok(()));
}

#[test]
fn next_hop_modes() {
    let mut rib = rib();
    let src = peer(&mut rib, 2, 65001, false);
    let mut keep = PeerConfig::new("keep", addr(3), 65003);
    keep.next_hop = NextHopMode::Keep;
    let keep = peer_with(&mut rib, 3, keep);
    let mut selfi = PeerConfig::new("self-ibgp", addr(4), LOCAL_AS);
    selfi.next_hop = NextHopMode::SelfAlways;
    let selfi = peer_with(&mut rib, 4, selfi);
    rib.apply_update(
        src,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let k = changes(&mut rib, keep);
    assert_eq!(k[0].attrs.as_ref().unwrap().next_hop_addr(), Some(addr(2)));
    let s = changes(&mut rib, selfi);
    assert_eq!(s[0].attrs.as_ref().unwrap().next_hop_addr(), Some(addr(1)));
}

#[test]
fn several_rounds_before_drain_send_latest_state_once() {
    let mut rib = rib();
    let src = peer(&mut rib, 2, 65001, false);
    let dst = peer(&mut rib, 3, 65003, false);
    take(&mut rib, dst).unwrap();
    rib.apply_update(
        src,
        &announce(
            &["10.1.0.0/24", "10.2.0.0/24"],
            attrs(&[65001], "192.0.2.2"),
        ),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    rib.apply_update(src, &withdraw(&["10.1.0.0/24"]), false)
        .unwrap();
    rib.process(&AllReachable);
    // 10.1.0.0/24 came and went before the peer was told: nothing to say about it.
    let out = changes(&mut rib, dst);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].nlri.prefix.to_string(), "10.2.0.0/24");
    assert!(out[0].attrs.is_some());
    // Once told, a change and a withdrawal in later rounds leave only the withdrawal.
    rib.apply_update(
        src,
        &announce(&["10.2.0.0/24"], attrs(&[65001, 65009], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    rib.apply_update(src, &withdraw(&["10.2.0.0/24"]), false)
        .unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, dst);
    assert_eq!(out.len(), 1);
    assert!(out[0].attrs.is_none(), "latest state (withdrawn) only");
    rib.apply_update(
        src,
        &announce(&["10.2.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    changes(&mut rib, dst);
    // Route refresh re-sends the Adj-RIB-Out.
    rib.route_refresh(dst, Family::IPV4_UNICAST).unwrap();
    let again = changes(&mut rib, dst);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].nlri.prefix.to_string(), "10.2.0.0/24");
    assert_eq!(rib.audit(), Ok(()));
}

#[test]
fn ipv6_link_local_next_hop_not_propagated() {
    use bgp_proto::{MpNextHop, MpNlri, MpReach, Update};
    let mut rib = rib();
    let mut s = bgp_rib::SessionInfo::new(rid(2), None);
    s.local_v6 = Some("2001:db8::1".parse().unwrap());
    let src = rib
        .add_peer(PeerConfig::new(
            "src",
            "2001:db8::2".parse().unwrap(),
            LOCAL_AS,
        ))
        .unwrap();
    rib.peer_up(src, s.clone(), std::time::Instant::now())
        .unwrap();
    let mut c = PeerConfig::new("client", "2001:db8::3".parse().unwrap(), LOCAL_AS);
    c.rr_client = true;
    let dst = rib.add_peer(c).unwrap();
    s.router_id = rid(3);
    rib.peer_up(dst, s, std::time::Instant::now()).unwrap();
    take(&mut rib, dst).unwrap();
    let global: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
    let u = Update {
        attributes: bgp_proto::PathAttributes {
            origin: Some(bgp_proto::Origin::Igp),
            as_path: Some(path(&[])),
            ..Default::default()
        },
        mp_reach: Some(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: MpNextHop::V6 {
                global,
                link_local: Some("fe80::2".parse().unwrap()),
            },
            nlri: MpNlri::Unicast(vec![Nlri::new("2001:db8:1::/48".parse().unwrap())]),
        }),
        ..Default::default()
    };
    // src is not a client but dst is: reflected.
    rib.apply_update(src, &u, false).unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, dst);
    assert_eq!(
        out[0].attrs.as_ref().unwrap().next_hop,
        Some(MpNextHop::V6 {
            global,
            link_local: None
        })
    );
}

#[test]
fn per_peer_cluster_id_and_peer_info() {
    let mut rib = rib();
    let c1 = peer(&mut rib, 2, LOCAL_AS, true);
    let mut pc = PeerConfig::new("c2", addr(3), LOCAL_AS);
    pc.rr_client = true;
    pc.cluster_id = Some(Ipv4Addr::new(9, 9, 9, 9));
    let c2 = peer_with(&mut rib, 3, pc);
    rib.apply_update(
        c1,
        &announce(&["10.1.0.0/26"], attrs(&[], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, c2);
    assert_eq!(
        out[0].attrs.as_ref().unwrap().attrs.cluster_list,
        vec![Ipv4Addr::new(9, 9, 9, 9)]
    );
    // A route carrying c2's cluster id is a loop when it comes back from c2.
    let mut back = attrs(&[], "192.0.2.3");
    back.cluster_list = vec![Ipv4Addr::new(9, 9, 9, 9)];
    let s = rib
        .apply_update(c2, &announce(&["10.2.0.0/26"], back), false)
        .unwrap();
    assert_eq!(s.rejected, 1);
    let info = rib.peer_info(c2).unwrap();
    assert_eq!(info.router_id, Some(rid(3)));
    assert_eq!(info.peer_type, bgp_rib::policy::PeerType::Ibgp);
    assert_eq!((info.received_v4, info.advertised_v4), (1, 1));
}

/// The other reflector of the cluster reflects a client's route back to us: refused as a
/// CLUSTER_LIST loop (RFC 4456 8), the selection is unchanged and no peer is looked at
/// again, except one receiving every path (ADD-PATH "all").
#[test]
fn unchanged_selection_skips_the_per_peer_export() {
    let mut rib = rib();
    let c1 = peer(&mut rib, 2, LOCAL_AS, true);
    let others: Vec<_> = (3..8).map(|n| peer(&mut rib, n, LOCAL_AS, true)).collect();
    let rr2 = peer(&mut rib, 20, LOCAL_AS, false);
    rib.apply_update(
        c1,
        &announce(&["10.1.0.0/26"], attrs(&[], "192.0.2.2")),
        false,
    )
    .unwrap();
    let before = rib.counters();
    rib.process(&AllReachable);
    let after = rib.counters();
    assert_eq!(after.prefixes_decided - before.prefixes_decided, 1);
    assert_eq!(
        after.peer_exports - before.peer_exports,
        7,
        "every peer once"
    );
    for p in rib.peers_with_output() {
        changes(&mut rib, p);
    }
    // rr2's reflected copy: ORIGINATOR_ID c1, our CLUSTER_ID in the list.
    let mut back = attrs(&[], "192.0.2.2");
    back.originator_id = Some(rid(2));
    back.cluster_list = vec![rid(1)];
    let s = rib
        .apply_update(rr2, &announce(&["10.1.0.0/26"], back.clone()), false)
        .unwrap();
    assert_eq!(s.rejected, 1);
    let before = rib.counters();
    rib.process(&AllReachable);
    let after = rib.counters();
    assert_eq!(after.prefixes_decided - before.prefixes_decided, 1);
    assert_eq!(after.peer_exports, before.peer_exports, "no export work");
    assert!(rib.peers_with_output().is_empty());
    // A duplicate of the client's own UPDATE: the same.
    rib.apply_update(
        c1,
        &announce(&["10.1.0.0/26"], attrs(&[], "192.0.2.2")),
        false,
    )
    .unwrap();
    let before = rib.counters();
    rib.process(&AllReachable);
    assert_eq!(rib.counters().peer_exports, before.peer_exports);
    assert!(rib.peers_with_output().is_empty());

    // A peer with ADD-PATH "all" sees non-selected paths: it alone is recomputed.
    let mut pc = PeerConfig::new("all", addr(30), LOCAL_AS);
    pc.rr_client = true;
    pc.add_path_send = AddPathSend::All;
    let id = rib.add_peer(pc).unwrap();
    let mut session = bgp_rib::SessionInfo::new(rid(30), Some(Ipv4Addr::new(192, 0, 2, 1)));
    session.codec.add_path_send = vec![Family::IPV4_UNICAST];
    rib.peer_up(id, session, std::time::Instant::now()).unwrap();
    rib.process(&AllReachable);
    changes(&mut rib, id);
    let mut other = attrs(&[], "192.0.2.3");
    other.local_pref = Some(50);
    rib.apply_update(others[0], &announce(&["10.1.0.0/26"], other), false)
        .unwrap();
    let before = rib.counters();
    rib.process(&AllReachable);
    assert_eq!(rib.counters().peer_exports - before.peer_exports, 1);
    let out = changes(&mut rib, id);
    assert_eq!(out.len(), 1, "the second path, under its own path id");
    assert_eq!(out[0].attrs.as_ref().unwrap().attrs.local_pref, Some(50));
    assert!(rib.peers_with_output().is_empty());
    assert_eq!(rib.audit(), Ok(()));
}

/// A peer that comes up while a prefix waits for its decision run gets it even though the
/// selection ends up as it was: its full export saw the flags of the last run.
#[test]
fn peer_up_between_change_and_decision_still_gets_the_route() {
    let mut rib = rib();
    let c1 = peer(&mut rib, 2, LOCAL_AS, true);
    let a1 = attrs(&[], "192.0.2.2");
    let mut a2 = a1.clone();
    a2.med = Some(5);
    rib.apply_update(c1, &announce(&["10.1.0.0/26"], a1.clone()), false)
        .unwrap();
    rib.process(&AllReachable);
    rib.apply_update(c1, &announce(&["10.1.0.0/26"], a2), false)
        .unwrap();
    // Not decided yet: the replaced path carries no best flag.
    let late = peer(&mut rib, 3, LOCAL_AS, true);
    rib.apply_update(c1, &announce(&["10.1.0.0/26"], a1), false)
        .unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, late);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].nlri.prefix,
        "10.1.0.0/26".parse::<ipnet::IpNet>().unwrap()
    );
    assert!(out[0].attrs.is_some());
}

/// A client restarts gracefully under a new router id: its stale routes, refreshed with
/// the same attributes, are reflected with the new ORIGINATOR_ID.
#[test]
fn new_router_id_of_restarting_peer_is_reflected() {
    let mut rib = rib();
    let now = std::time::Instant::now();
    let gr = |router_id: Ipv4Addr| {
        let mut s = bgp_rib::SessionInfo::new(router_id, Some(Ipv4Addr::new(192, 0, 2, 1)));
        s.graceful_restart = Some(bgp_proto::GracefulRestart {
            restart_state: false,
            notification: true,
            restart_time: 120,
            families: vec![bgp_proto::GracefulRestartFamily {
                family: Family::IPV4_UNICAST,
                forwarding_preserved: true,
            }],
        });
        s
    };
    let mut pc = PeerConfig::new("c1", addr(2), LOCAL_AS);
    pc.rr_client = true;
    let c1 = rib.add_peer(pc).unwrap();
    rib.peer_up(c1, gr(rid(2)), now).unwrap();
    let c2 = peer(&mut rib, 3, LOCAL_AS, true);
    let u = announce(&["10.1.0.0/26"], attrs(&[], "192.0.2.2"));
    rib.apply_update(c1, &u, false).unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, c2);
    assert_eq!(
        out[0].attrs.as_ref().unwrap().attrs.originator_id,
        Some(rid(2))
    );
    assert!(rib.peer_down(c1, true, now).unwrap().is_some());
    rib.process(&AllReachable);
    assert!(changes(&mut rib, c2).is_empty(), "stale route kept");
    rib.peer_up(c1, gr(rid(42)), now).unwrap();
    rib.apply_update(c1, &u, false).unwrap();
    rib.end_of_rib(c1, Family::IPV4_UNICAST).unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, c2);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].attrs.as_ref().unwrap().attrs.originator_id,
        Some(rid(42))
    );
    assert_eq!(rib.audit(), Ok(()));
}

mod replica {
    //! Property: the changes a peer is sent, applied in order to a replica, always equal
    //! the table a freshly connected peer receives (diffing loses and invents nothing).
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    enum Op {
        Announce {
            from: u8,
            prefix: u8,
            len: u8,
            lp: u32,
        },
        Withdraw {
            from: u8,
            prefix: u8,
        },
        Process,
        Drain,
        /// The watcher's session goes down and comes back (full export, maybe while
        /// prefixes wait for a decision).
        Reconnect,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..3, 0u8..8, 0u8..3, 90u32..110).prop_map(|(from, prefix, len, lp)| Op::Announce { from, prefix, len, lp }),
            2 => (0u8..3, 0u8..8).prop_map(|(from, prefix)| Op::Withdraw { from, prefix }),
            1 => Just(Op::Process),
            1 => Just(Op::Drain),
            1 => Just(Op::Reconnect),
        ]
    }

    type Replica = BTreeMap<(String, Option<u32>), bgp_rib::Attrs>;

    fn apply(replica: &mut Replica, out: Vec<OutChange>) {
        for c in out {
            let k = (c.nlri.prefix.to_string(), c.nlri.path_id);
            match c.attrs {
                Some(a) => {
                    replica.insert(k, a);
                }
                None => {
                    replica.remove(&k);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn changes_reconstruct_the_table(ops in proptest::collection::vec(op(), 1..60), add_path in any::<bool>(), eager in any::<bool>()) {
            let mut cfg = RibConfig::new(LOCAL_AS, rid(1));
            cfg.max_paths = 2;
            let mut rib = bgp_rib::Rib::new(cfg);
            // Sources: two eBGP peers and one iBGP client.
            let srcs = [
                peer(&mut rib, 2, 65001, false),
                peer(&mut rib, 3, 65002, false),
                peer(&mut rib, 4, LOCAL_AS, true),
            ];
            let session = |n: u8| {
                let mut s = bgp_rib::SessionInfo::new(rid(n), Some(Ipv4Addr::new(192, 0, 2, 1)));
                if add_path {
                    s.codec.add_path_send = vec![Family::IPV4_UNICAST];
                }
                s
            };
            let mk = |rib: &mut bgp_rib::Rib, n: u8| {
                let mut pc = PeerConfig::new(format!("w{n}"), addr(n), LOCAL_AS);
                pc.rr_client = true;
                pc.add_path_send = AddPathSend::All;
                let id = rib.add_peer(pc).unwrap();
                rib.peer_up(id, session(n), std::time::Instant::now()).unwrap();
                id
            };
            let watcher = mk(&mut rib, 10);
            let mut replica = Replica::new();
            for op in ops {
                match op {
                    Op::Announce { from, prefix, len, lp } => {
                        let p = format!("10.{prefix}.0.0/{}", 16 + len * 4);
                        let mut a = attrs(&[], &format!("192.0.2.{}", from + 2));
                        if from < 2 {
                            a.as_path = Some(path(&[65001 + u32::from(from)]));
                        }
                        a.local_pref = Some(lp);
                        let u = announce(&[&p], a);
                        if eager {
                            rib.apply_update_and_process(srcs[usize::from(from)], &u, false, &AllReachable).unwrap();
                        } else {
                            rib.apply_update(srcs[usize::from(from)], &u, false).unwrap();
                        }
                    }
                    Op::Withdraw { from, prefix } => {
                        let ps: Vec<String> = (0..3).map(|l| format!("10.{prefix}.0.0/{}", 16 + l * 4)).collect();
                        let refs: Vec<&str> = ps.iter().map(String::as_str).collect();
                        let u = withdraw(&refs);
                        if eager {
                            rib.apply_update_and_process(srcs[usize::from(from)], &u, false, &AllReachable).unwrap();
                        } else {
                            rib.apply_update(srcs[usize::from(from)], &u, false).unwrap();
                        }
                    }
                    Op::Process => rib.process(&AllReachable),
                    Op::Reconnect => {
                        rib.peer_down(watcher, false, std::time::Instant::now()).unwrap();
                        replica.clear();
                        rib.peer_up(watcher, session(10), std::time::Instant::now()).unwrap();
                    }
                    Op::Drain => {
                        apply(&mut replica, changes(&mut rib, watcher));
                        prop_assert_eq!(rib.audit(), Ok(()));
                    }
                }
            }
            rib.process(&AllReachable);
            prop_assert_eq!(rib.audit(), Ok(()));
            apply(&mut replica, changes(&mut rib, watcher));
            let fresh = mk(&mut rib, 11);
            let mut expected = Replica::new();
            apply(&mut expected, changes(&mut rib, fresh));
            // Same prefixes and path ids, same attributes except ORIGINATOR_ID and the
            // router-id dependent parts (both watchers are clients; identical otherwise).
            prop_assert_eq!(replica.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
            for (k, a) in &replica {
                prop_assert_eq!(a, &expected[k], "{:?}", k);
            }
        }
    }
}

#[test]
fn per_peer_local_as() {
    let mut rib = rib();
    let src = peer(&mut rib, 2, 65001, false);
    let mut pc = PeerConfig::new("other-as", addr(3), 65003);
    pc.local_as = Some(64999);
    let dst = peer_with(&mut rib, 3, pc);
    // A peer in AS 64999 is eBGP under the RIB's AS but iBGP when our side uses 64999.
    let mut same = PeerConfig::new("ibgp-by-local-as", addr(4), 64999);
    same.local_as = Some(64999);
    let same = peer_with(&mut rib, 4, same);
    assert_eq!(
        rib.peer_type(same).unwrap(),
        bgp_rib::policy::PeerType::Ibgp
    );
    rib.apply_update(
        src,
        &announce(&["10.1.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, dst);
    assert_eq!(
        out[0].attrs.as_ref().unwrap().attrs.as_path,
        Some(path(&[64999, 65001]))
    );
    // Routes from dst carrying 64999 are loops.
    let s = rib
        .apply_update(
            dst,
            &announce(&["10.2.0.0/24"], attrs(&[65003, 64999], "192.0.2.3")),
            false,
        )
        .unwrap();
    assert_eq!(s.rejected, 1);
}

/// One prefix exported to peers of different kinds in one run: each gets its own
/// transformation (CLUSTER_LIST per cluster id, AS prepend per local AS, next hop per
/// session), peers alike get the same interned set.
#[test]
fn one_export_run_serves_each_kind_of_peer_its_own_attributes() {
    let mut rib = rib();
    let src = peer(&mut rib, 2, LOCAL_AS, true);
    let c1 = peer(&mut rib, 3, LOCAL_AS, true);
    let mut pc = PeerConfig::new("c9", addr(4), LOCAL_AS);
    pc.rr_client = true;
    pc.cluster_id = Some(Ipv4Addr::new(9, 9, 9, 9));
    let c9 = peer_with(&mut rib, 4, pc);
    let c5 = peer(&mut rib, 5, LOCAL_AS, true);
    let e1 = peer(&mut rib, 6, 65001, false);
    let mut pc = PeerConfig::new("e2", addr(7), 65002);
    pc.local_as = Some(64999);
    let e2 = peer_with(&mut rib, 7, pc);
    let e3 = peer(&mut rib, 8, 65003, false);
    rib.apply_update(
        src,
        &announce(&["10.1.0.0/26"], attrs(&[], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let get = |rib: &mut bgp_rib::Rib, p| {
        let out = changes(rib, p);
        assert_eq!(out.len(), 1);
        out[0].attrs.clone().unwrap()
    };
    let a1 = get(&mut rib, c1);
    let a9 = get(&mut rib, c9);
    let a5 = get(&mut rib, c5);
    assert_eq!(a1.attrs.cluster_list, vec![rid(1)]);
    assert_eq!(a9.attrs.cluster_list, vec![Ipv4Addr::new(9, 9, 9, 9)]);
    assert_eq!(a1, a5, "alike peers get the same set");
    let b1 = get(&mut rib, e1);
    let b2 = get(&mut rib, e2);
    let b3 = get(&mut rib, e3);
    assert_eq!(b1.attrs.as_path, Some(path(&[LOCAL_AS])));
    assert_eq!(b2.attrs.as_path, Some(path(&[64999])));
    assert_eq!(b1, b3);
    assert_eq!(b1.attrs.originator_id, None);
    // Interned once per kind of peer: the received set, the two reflected ones (one per
    // cluster id) and the two eBGP ones (one per local AS).
    assert_eq!(rib.attribute_sets(), 5);
    assert_eq!(rib.audit(), Ok(()));
}

/// The RIB passes on what the codec decoded, Partial bits included: a route from a
/// 2-octet AS speaker (RFC 6793) carrying attributes that some speaker before it did not
/// recognise, re-advertised over eBGP to another 2-octet AS speaker.
/// - COMMUNITIES and AS4_PATH keep their received Partial bit (RFC 4271 4.3: "MUST NOT
///   be unset"); AS4_PATH is regenerated with our AS prepended (RFC 6793 4.2.2);
/// - an unrecognised optional transitive attribute is passed on with Partial set, an
///   unrecognised optional non-transitive one is not passed on (RFC 4271 5).
#[test]
fn partial_bits_survive_the_rib_rfc4271_4_3() {
    let two_octet = bgp_proto::CodecContext::default();
    let mut rib = rib();
    let src = peer(&mut rib, 2, 65001, false);
    let dst = rib
        .add_peer(PeerConfig::new("old", addr(3), 65003))
        .unwrap();
    let mut s = bgp_rib::SessionInfo::new(rid(3), Some(Ipv4Addr::new(192, 0, 2, 1)));
    s.codec = two_octet.clone();
    rib.peer_up(dst, s, std::time::Instant::now()).unwrap();
    take(&mut rib, dst).unwrap();

    let attr = |flags: u8, t: u8, v: &[u8]| [&[flags, t, v.len() as u8][..], v].concat();
    let block = [
        attr(0x40, 1, &[0]),
        attr(0x40, 2, &[2, 2, 0xFD, 0xE9, 0x5B, 0xA0]), // 65001 AS_TRANS
        attr(0x40, 3, &[192, 0, 2, 2]),
        attr(0xE0, 8, &[0xFD, 0xE8, 0, 1]), // COMMUNITIES 65000:1, Partial
        attr(0xE0, 17, &[2, 2, 0, 0, 0xFD, 0xE9, 0xFA, 0x56, 0xEA, 0x00]), // AS4_PATH, Partial
        attr(0xC0, 98, &[1, 2, 3]),         // unknown optional transitive
        attr(0x80, 99, &[4, 5]),            // unknown optional non-transitive
    ]
    .concat();
    let nlri = [24u8, 203, 0, 113];
    let mut frame = vec![0xFF; 16];
    frame.extend_from_slice(&((19 + 4 + block.len() + nlri.len()) as u16).to_be_bytes());
    frame.push(2);
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(&(block.len() as u16).to_be_bytes());
    frame.extend_from_slice(&block);
    frame.extend_from_slice(&nlri);
    let Inbound::Update(received) = decode_message(&frame, &two_octet).unwrap() else {
        panic!("not an UPDATE");
    };
    assert_eq!(received.treat_as_withdraw, None);
    rib.apply_update(src, &received.update, false).unwrap();
    rib.process(&AllReachable);

    let mut frames = Vec::new();
    rib.take_encoded(dst, usize::MAX, &mut frames).unwrap();
    assert_eq!(frames.len(), 1);
    // (type, flags) of each attribute sent.
    let f = &frames[0][19..];
    let alen = usize::from(u16::from_be_bytes([f[2], f[3]]));
    let mut sent = &f[4..4 + alen];
    let mut flags = Vec::new();
    while let [fl, t, len, rest @ ..] = sent {
        flags.push((*t, *fl));
        sent = &rest[usize::from(*len)..];
    }
    assert_eq!(
        flags,
        [
            (1, 0x40),
            (2, 0x40),
            (3, 0x40),
            (8, 0xE0),
            (17, 0xE0),
            (98, 0xE0)
        ]
    );
    let Inbound::Update(out) = decode_message(&frames[0], &two_octet).unwrap() else {
        panic!("not an UPDATE");
    };
    assert_eq!(
        out.update.attributes.as_path,
        Some(path(&[LOCAL_AS, 65001, 4_200_000_000]))
    );
}

/// `prepend_path` (Calico's BGPFilter `prependASPath`, as BIRD runs it): the ASNs go in
/// front of the path as sent, so after our own AS towards eBGP peers; on import in front
/// of the received path. `local_pref` matches the route's LOCAL_PREF (100 when absent).
#[test]
fn prepend_path_goes_in_front_of_the_path_as_sent() {
    let mut rib = rib();
    let export: Policy = toml::from_str(
        r#"
        default = "accept"
        [[rules]]
        match = { local_pref = [300] }
        set = { prepend_path = [64999, 64998] }
        action = "accept"
        [[rules]]
        match = { local_pref = [100] }
        set = { add_community = ["65000:1"] }
        action = "accept"
        "#,
    )
    .unwrap();
    let import: Policy = toml::from_str(
        r#"
        default = "accept"
        [[rules]]
        set = { prepend_path = [64900] }
        action = "continue"
        [[rules]]
        set = { prepend_path = [64901] }
        action = "accept"
        "#,
    )
    .unwrap();
    let mut e_cfg = PeerConfig::new("e", addr(2), 65001);
    e_cfg.export = Arc::new(export.compile().unwrap());
    let e = peer_with(&mut rib, 2, e_cfg);
    let mut i_cfg = PeerConfig::new("i", addr(3), LOCAL_AS);
    i_cfg.export = Arc::new(export.compile().unwrap());
    i_cfg.import = Arc::new(import.compile().unwrap());
    let i = peer_with(&mut rib, 3, i_cfg);
    let mut a = attrs(&[65010], "192.0.2.3");
    a.local_pref = Some(300);
    rib.apply_update(i, &announce(&["203.0.113.0/24"], a), false)
        .unwrap();
    let b = attrs(&[], "192.0.2.3");
    rib.apply_update(i, &announce(&["198.51.100.0/24"], b), false)
        .unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, e);
    let sent = |p: &str| {
        out.iter()
            .find(|c| c.nlri.prefix == p.parse().unwrap())
            .and_then(|c| c.attrs.clone())
            .unwrap()
    };
    // Import put 64901 64900 in front (the later rule first); export 64999 64998 in front
    // of our own AS.
    assert_eq!(
        sent("203.0.113.0/24").attrs.as_path,
        Some(path(&[64999, 64998, LOCAL_AS, 64901, 64900, 65010]))
    );
    // No LOCAL_PREF counts as 100.
    let other = sent("198.51.100.0/24");
    assert_eq!(other.attrs.communities, vec![Community::new(65000, 1)]);
    assert_eq!(other.attrs.as_path, Some(path(&[LOCAL_AS, 64901, 64900])));
}

/// A resolver that reaches 192.0.2.0/24 through `eth0` and everything else through `tunl0`.
struct Interfaces;

impl bgp_rib::NextHopResolver for Interfaces {
    fn resolve(&self, _: IpAddr) -> Option<u32> {
        Some(0)
    }
    fn knows_interfaces(&self) -> bool {
        true
    }
    fn interface(&self, nh: IpAddr) -> Option<Arc<str>> {
        let eth0: ipnet::IpNet = "192.0.2.0/24".parse().unwrap();
        Some(Arc::from(if eth0.contains(&nh) { "eth0" } else { "tunl0" }))
    }
}

/// Policy `interface` conditions match a BGP route by the interface its next hop resolves
/// through (BIRD's `ifname` with `gateway recursive`), on import and export.
#[test]
fn interface_conditions_see_the_next_hop_interface_of_bgp_routes() {
    let mut rib = rib();
    let only_eth0: Policy = toml::from_str(
        r#"
        default = "reject"
        [[rules]]
        match = { interface = ["eth*"] }
        action = "accept"
        "#,
    )
    .unwrap();
    let mut src_cfg = PeerConfig::new("src", addr(2), 65001);
    src_cfg.import = Arc::new(only_eth0.compile().unwrap());
    let src = peer_with(&mut rib, 2, src_cfg);
    let mut dst_cfg = PeerConfig::new("dst", addr(3), 65003);
    dst_cfg.export = Arc::new(only_eth0.compile().unwrap());
    let dst = peer_with(&mut rib, 3, dst_cfg);
    rib.apply_update_resolved(
        src,
        &announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
        &Interfaces,
    )
    .unwrap();
    rib.apply_update_resolved(
        src,
        &announce(&["198.51.100.0/24"], attrs(&[65001], "10.9.9.9")),
        false,
        &Interfaces,
    )
    .unwrap();
    rib.process(&Interfaces);
    let out = changes(&mut rib, dst);
    let sent: Vec<String> = out.iter().map(|c| c.nlri.prefix.to_string()).collect();
    assert_eq!(
        sent,
        ["203.0.113.0/24"],
        "the tunl0 route is rejected on import"
    );
    // Without interface knowledge a BGP route has no interface and never matches.
    let mut plain = common::rib();
    let mut d2 = PeerConfig::new("dst", addr(3), 65003);
    d2.export = Arc::new(only_eth0.compile().unwrap());
    let s2 = peer(&mut plain, 2, 65001, false);
    let d2 = peer_with(&mut plain, 3, d2);
    plain
        .apply_update(
            s2,
            &announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.2")),
            false,
        )
        .unwrap();
    plain.process(&AllReachable);
    assert!(changes(&mut plain, d2).is_empty());
}

/// RFC 4271 5.1.3 for locally originated routes: to internal peers with the address the
/// route is reachable through (a kernel route's gateway), to external ones with ours; and
/// never to the peer a route's NEXT_HOP names (it would route to itself; BIRD drops it).
#[test]
fn local_route_next_hop_is_its_gateway_internally_and_never_the_peer_itself() {
    let mut rib = rib();
    let i2 = peer(&mut rib, 2, LOCAL_AS, false);
    let i3 = peer(&mut rib, 3, LOCAL_AS, false);
    let e = peer(&mut rib, 4, 65004, false);
    let mut via = LocalRoute::new("10.200.0.0/24".parse().unwrap(), RouteSource::Kernel);
    via.next_hop = Some(addr(3));
    rib.originate(via).unwrap();
    rib.process(&AllReachable);
    let nh = |out: &[OutChange]| {
        out.iter()
            .map(|c| c.attrs.as_ref().and_then(|a| a.next_hop_addr()))
            .collect::<Vec<_>>()
    };
    assert_eq!(nh(&changes(&mut rib, i2)), [Some(addr(3))]);
    assert!(
        changes(&mut rib, i3).is_empty(),
        "192.0.2.3 is not told to route to itself"
    );
    assert_eq!(
        nh(&changes(&mut rib, e)),
        [Some("192.0.2.1".parse().unwrap())]
    );
}

/// Two speakers on one address (a loopback test pair): the peer's address is ours too, so
/// a next hop naming it names us, and the route is sent.
#[test]
fn next_hop_self_is_sent_when_the_peer_shares_our_address() {
    let mut rib = rib();
    let ours = Ipv4Addr::new(192, 0, 2, 1);
    let id = rib
        .add_peer(PeerConfig::new("twin", IpAddr::V4(ours), LOCAL_AS))
        .unwrap();
    rib.peer_up(
        id,
        bgp_rib::SessionInfo::new(rid(9), Some(ours)),
        std::time::Instant::now(),
    )
    .unwrap();
    rib.originate(LocalRoute::new(
        "10.201.0.0/24".parse().unwrap(),
        RouteSource::Static,
    ))
    .unwrap();
    rib.process(&AllReachable);
    let out = changes(&mut rib, id);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        out[0].attrs.as_ref().and_then(|a| a.next_hop_addr()),
        Some(IpAddr::V4(ours))
    );
}
