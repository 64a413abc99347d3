//! Inputs a peer can send to make the RIB do unbounded work, hold unbounded memory or
//! lose a withdrawal: each case with what must hold instead.

mod common;

use std::collections::BTreeMap;

use bgp_proto::wire::{decode_message, Inbound};
use bgp_proto::{CodecContext, Community, Family};
use bgp_rib::{AllReachable, PeerId, Rib};
use bytes::Bytes;
use common::*;
use ipnet::IpNet;

fn ctx() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        ..Default::default()
    }
}

fn prefixes(n: u32, third: u32) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.{}.{}.0/24", third + i / 256, i % 256))
        .collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// What a receiver holds after the frames (announced prefix → community count).
fn replay(held: &mut BTreeMap<IpNet, usize>, frames: &[Bytes], max: usize) {
    for f in frames {
        assert!(f.len() <= max, "{} octets, at most {max} allowed", f.len());
        let ext = CodecContext {
            extended_message: true,
            ..ctx()
        };
        let Inbound::Update(u) = decode_message(f, &ext).unwrap() else {
            panic!("not an UPDATE");
        };
        for n in &u.update.withdrawn {
            held.remove(&n.prefix);
        }
        for n in &u.update.nlri {
            held.insert(n.prefix, u.update.attributes.communities.len());
        }
    }
}

/// Take every queued slice for `id`, applying it to `held`.
fn take_all(rib: &mut Rib, id: PeerId, held: &mut BTreeMap<IpNet, usize>) -> bgp_rib::Encoded {
    let ext = rib.peer_info(id).unwrap().name == "ext";
    let max = if ext { 65535 } else { 4096 };
    let mut total = bgp_rib::Encoded::default();
    loop {
        let mut frames = Vec::new();
        let e = rib.take_encoded(id, 2000, &mut frames).unwrap();
        replay(held, &frames, max);
        total.announced += e.announced;
        total.withdrawn += e.withdrawn;
        total.unsendable.extend(e.unsendable);
        if !e.more {
            return total;
        }
    }
}

/// A source eBGP peer and a receiving eBGP peer that has taken its (empty) initial table.
fn source_and_receiver() -> (Rib, PeerId, PeerId, BTreeMap<IpNet, usize>) {
    let mut rib = rib();
    let src = peer(&mut rib, 2, 65001, false);
    let dst = peer(&mut rib, 3, 65003, false);
    let mut held = BTreeMap::new();
    take_all(&mut rib, dst, &mut held);
    (rib, src, dst, held)
}

/// 1,000 /24s and one /24 with 1,100 communities (4,400 octets of COMMUNITIES) in one
/// burst, towards a peer without extended messages: the big one cannot be encoded
/// (RFC 8654: 4,096 octets at most). The 1,000 still go out, the big one is reported
/// and withdrawn towards that peer only, a peer with extended messages gets it, and
/// later withdrawals of everything reach both.
#[test]
fn a_route_too_large_for_a_peer_is_withdrawn_towards_it_and_the_rest_goes_out() {
    let mut rib = rib();
    let src = peer(&mut rib, 2, 65001, false);
    let small = peer(&mut rib, 3, 65003, false);
    let ext = rib
        .add_peer(bgp_rib::PeerConfig::new("ext", addr(4), 65004))
        .unwrap();
    let mut s = bgp_rib::SessionInfo::new(rid(4), Some(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    s.codec.extended_message = true;
    rib.peer_up(ext, s, std::time::Instant::now()).unwrap();
    let mut held_small = BTreeMap::new();
    let mut held_ext = BTreeMap::new();
    take_all(&mut rib, small, &mut held_small);
    take_all(&mut rib, ext, &mut held_ext);

    let many = prefixes(1000, 0);
    rib.apply_update(
        src,
        &announce(&refs(&many), attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    let mut big = attrs(&[65001], "192.0.2.2");
    big.communities = (0..1100).map(|i| Community::new(65001, i)).collect();
    rib.apply_update(src, &announce(&["10.200.0.0/24"], big.clone()), false)
        .unwrap();
    rib.process(&AllReachable);

    let e = take_all(&mut rib, small, &mut held_small);
    assert_eq!(e.announced, 1000);
    assert_eq!(e.unsendable.len(), 1);
    assert_eq!(e.unsendable[0].nlri.prefix.to_string(), "10.200.0.0/24");
    assert_eq!(held_small.len(), 1000);
    assert!(!held_small.contains_key(&"10.200.0.0/24".parse().unwrap()));
    // The Adj-RIB-Out says what the peer holds: the 1,000.
    assert_eq!(
        rib.adj_rib_out(small, Family::IPV4_UNICAST).unwrap().len(),
        1000
    );
    assert_eq!(rib.peer_info(small).unwrap().advertised_v4, 1000);
    let e = take_all(&mut rib, ext, &mut held_ext);
    assert!(e.unsendable.is_empty());
    assert_eq!(held_ext.len(), 1001);
    rib.audit().unwrap();

    // A route that fit before and grows too large is withdrawn towards the small peer.
    let mut grown = attrs(&[65001], "192.0.2.2");
    grown.communities = big.communities.clone();
    rib.apply_update(src, &announce(&[many[0].as_str()], grown), false)
        .unwrap();
    rib.process(&AllReachable);
    let e = take_all(&mut rib, small, &mut held_small);
    assert_eq!((e.announced, e.unsendable.len()), (0, 1));
    assert_eq!(held_small.len(), 999, "the grown route is withdrawn");
    take_all(&mut rib, ext, &mut held_ext);

    // Everything withdrawn: both receivers end up empty (no withdrawal lost).
    let mut all = many.clone();
    all.push("10.200.0.0/24".into());
    rib.apply_update(src, &withdraw(&refs(&all)), false)
        .unwrap();
    rib.process(&AllReachable);
    take_all(&mut rib, small, &mut held_small);
    take_all(&mut rib, ext, &mut held_ext);
    assert!(held_small.is_empty(), "{} left", held_small.len());
    assert!(held_ext.is_empty(), "{} left", held_ext.len());
    assert!(rib
        .adj_rib_out(small, Family::IPV4_UNICAST)
        .unwrap()
        .is_empty());
    rib.audit().unwrap();
}

/// A peer that does not read and loops route refreshes: the first queues its table once,
/// the others are ignored while it is pending, and nothing grows. Once sent, a refresh
/// is answered again.
#[test]
fn route_refresh_loop_without_reading_queues_the_table_once() {
    let (mut rib, src, dst, mut held) = source_and_receiver();
    let table = prefixes(50_000, 0);
    for chunk in table.chunks(1000) {
        rib.apply_update(
            src,
            &announce(&refs(chunk), attrs(&[65001], "192.0.2.2")),
            false,
        )
        .unwrap();
    }
    rib.process(&AllReachable);
    take_all(&mut rib, dst, &mut held);
    assert_eq!(held.len(), 50_000);
    assert_eq!(rib.peer_info(dst).unwrap().queued, 0);

    assert!(rib.route_refresh(dst, Family::IPV4_UNICAST).unwrap());
    for _ in 0..20_000 {
        assert!(!rib.route_refresh(dst, Family::IPV4_UNICAST).unwrap());
    }
    // Routes keep changing meanwhile: still one queued change per prefix.
    for round in 0..5u32 {
        rib.apply_update(
            src,
            &announce(
                &refs(&table[..1000]),
                attrs(&[65001, 65100 + round], "192.0.2.2"),
            ),
            false,
        )
        .unwrap();
        rib.process(&AllReachable);
    }
    assert_eq!(rib.peer_info(dst).unwrap().queued, 50_000);
    rib.audit().unwrap();

    let e = take_all(&mut rib, dst, &mut held);
    assert_eq!(e.announced, 50_000, "each prefix once, in its latest state");
    assert_eq!(held.len(), 50_000);
    // The IPv6 family holds nothing: its refresh queues nothing and is not pending.
    assert!(rib.route_refresh(dst, Family::IPV6_UNICAST).unwrap());
    assert!(rib.route_refresh(dst, Family::IPV6_UNICAST).unwrap());
    // Answered: the next request is served again.
    assert!(rib.route_refresh(dst, Family::IPV4_UNICAST).unwrap());
    assert_eq!(take_all(&mut rib, dst, &mut held).announced, 50_000);
    rib.audit().unwrap();
}

/// Churn towards a peer that does not read: a route flapping 10,000 times, and 10,000
/// distinct prefixes announced and withdrawn again, leave at most one queued change
/// per prefix the peer holds or is to be told, and none for what came and went.
#[test]
fn churn_towards_a_peer_that_does_not_read_stays_bounded() {
    let (mut rib, src, dst, mut held) = source_and_receiver();
    rib.apply_update(
        src,
        &announce(&["10.0.0.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    take_all(&mut rib, dst, &mut held);
    for i in 0..10_000u32 {
        let a = attrs(&[65001, 65100 + i % 7], "192.0.2.2");
        rib.apply_update(src, &announce(&["10.0.0.0/24"], a), false)
            .unwrap();
        rib.process(&AllReachable);
        rib.apply_update(src, &withdraw(&["10.0.0.0/24"]), false)
            .unwrap();
        rib.process(&AllReachable);
    }
    let passing = prefixes(10_000, 100);
    for chunk in passing.chunks(100) {
        rib.apply_update(
            src,
            &announce(&refs(chunk), attrs(&[65001], "192.0.2.2")),
            false,
        )
        .unwrap();
        rib.process(&AllReachable);
        rib.apply_update(src, &withdraw(&refs(chunk)), false)
            .unwrap();
        rib.process(&AllReachable);
        assert!(rib.peer_info(dst).unwrap().queued <= 101);
    }
    rib.audit().unwrap();
    let e = take_all(&mut rib, dst, &mut held);
    assert_eq!((e.announced, e.withdrawn), (0, 1));
    assert!(held.is_empty());
    rib.audit().unwrap();
}

/// One UPDATE whose NLRI share large attributes (here 1,000 prefixes with 1,100
/// communities): a policy that does not look at prefixes is evaluated once for all of
/// them, not once per prefix with a search among the communities each time; outputs
/// are the same as per-prefix evaluation gives, rejections included. (The receiver
/// negotiated extended messages: 4,400 octets of COMMUNITIES fit its UPDATEs.)
#[test]
fn policies_blind_to_prefixes_are_evaluated_once_per_attribute_set() {
    use bgp_rib::policy::Policy;
    use std::sync::Arc;
    let mut rib = rib();
    let src = peer(&mut rib, 2, 65001, false);
    let dst = rib
        .add_peer(bgp_rib::PeerConfig::new("ext", addr(3), 65003))
        .unwrap();
    let mut s = bgp_rib::SessionInfo::new(rid(3), Some(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    s.codec.extended_message = true;
    rib.peer_up(dst, s, std::time::Instant::now()).unwrap();
    take(&mut rib, dst).unwrap();
    let import: Policy = toml::from_str(
        r#"
        default = "accept"
        [[rules]]
        match = { community = ["65001:7", "65001:8"] }
        set = { local_pref = 300 }
        action = "accept"
        "#,
    )
    .unwrap();
    let export: Policy = toml::from_str(
        r#"
        default = "accept"
        [[rules]]
        match = { community = ["65001:9"] }
        action = "reject"
        [[rules]]
        set = { add_community = ["65000:1"] }
        action = "accept"
        "#,
    )
    .unwrap();
    rib.set_policies(
        src,
        Arc::new(import.compile().unwrap()),
        Arc::new(bgp_rib::policy::CompiledPolicy::accept_all()),
    )
    .unwrap();
    rib.set_policies(
        dst,
        Arc::new(bgp_rib::policy::CompiledPolicy::accept_all()),
        Arc::new(export.compile().unwrap()),
    )
    .unwrap();
    let mut big = attrs(&[65001], "192.0.2.2");
    big.communities = (1000..2100).map(|i| Community::new(65001, i)).collect();
    big.communities.push(Community::new(65001, 7));
    let many = prefixes(1000, 0);
    let before = rib.counters().import_evaluations;
    rib.apply_update(src, &announce(&refs(&many[..500]), big.clone()), false)
        .unwrap();
    // The same attributes rejected on export (65001:9), for the other 500.
    let mut rejected = big.clone();
    rejected.communities.push(Community::new(65001, 9));
    rib.apply_update(src, &announce(&refs(&many[500..]), rejected), false)
        .unwrap();
    assert_eq!(rib.counters().import_evaluations - before, 2);
    rib.process(&AllReachable);
    let loc = rib.loc_rib();
    assert_eq!(loc.len(), 1000);
    assert!(loc
        .iter()
        .all(|(_, p)| p.attrs.attrs.local_pref == Some(300)));
    let out = changes(&mut rib, dst);
    assert_eq!(out.len(), 500);
    for c in &out {
        let a = c.attrs.as_ref().unwrap();
        assert!(a.attrs.communities.contains(&Community::new(65000, 1)));
        assert!(many[..500].contains(&c.nlri.prefix.to_string()));
    }
    // A policy that looks at prefixes is still evaluated per prefix.
    let by_prefix: Policy = toml::from_str(
        r#"
        default = "accept"
        [[rules]]
        match = { prefix_in = [{ prefix = "10.0.0.0/24" }] }
        action = "reject"
        "#,
    )
    .unwrap();
    let by_prefix = Arc::new(by_prefix.compile().unwrap());
    assert!(by_prefix.reads_prefix());
    rib.set_policies(
        src,
        by_prefix,
        Arc::new(bgp_rib::policy::CompiledPolicy::accept_all()),
    )
    .unwrap();
    let before = rib.counters().import_evaluations;
    rib.apply_update(src, &announce(&refs(&many[..10]), big), false)
        .unwrap();
    assert_eq!(rib.counters().import_evaluations - before, 10);
    rib.process(&AllReachable);
    assert_eq!(rib.loc_rib().len(), 999);
    rib.audit().unwrap();
}
