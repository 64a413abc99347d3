//! RFC 8950: IPv4 routes with IPv6 next hops, in and out.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use bgp_proto::wire::{decode_message, Inbound};
use bgp_proto::{
    AsPath, AsSegment, CodecContext, Family, MpNextHop, MpNlri, MpReach, Nlri, Origin,
    PathAttributes, SegmentType, Update,
};
use bgp_rib::policy::RouteSource;
use bgp_rib::{
    AllReachable, FibChange, LocalRoute, PeerConfig, PeerId, Rib, RibConfig, SessionInfo, Step,
};
use common::take;

const V6_SELF: &str = "2001:db8::1";

fn rib() -> Rib {
    Rib::new(RibConfig::new(65000, Ipv4Addr::new(10, 0, 0, 1)))
}

/// A session over IPv6 (no IPv4 address of ours), with or without RFC 8950.
fn v6_session(n: u8, ext: bool) -> SessionInfo {
    let mut s = SessionInfo::new(Ipv4Addr::new(10, 0, 0, n), None);
    s.local_v6 = Some(V6_SELF.parse().unwrap());
    s.local_v6_link_local = Some("fe80::1".parse().unwrap());
    s.extended_next_hop_v4 = ext;
    s
}

fn add(rib: &mut Rib, n: u8, asn: u32, rr_client: bool, s: SessionInfo) -> PeerId {
    let mut cfg = PeerConfig::new(
        format!("p{n}"),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n))),
        asn,
    );
    cfg.rr_client = rr_client;
    let id = rib.add_peer(cfg).unwrap();
    rib.peer_up(id, s, Instant::now()).unwrap();
    id
}

fn attrs(asns: &[u32]) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: asns.to_vec(),
            }],
        }),
        ..Default::default()
    }
}

/// IPv4 prefixes in MP_REACH_NLRI with an IPv6 next hop (RFC 8950 3).
fn v4_via_v6(prefixes: &[&str], asns: &[u32], global: &str, ll: Option<&str>) -> Update {
    Update {
        attributes: attrs(asns),
        mp_reach: Some(MpReach {
            family: Family::IPV4_UNICAST,
            next_hop: MpNextHop::V6 {
                global: global.parse().unwrap(),
                link_local: ll.map(|l| l.parse().unwrap()),
            },
            nlri: MpNlri::Unicast(
                prefixes
                    .iter()
                    .map(|p| Nlri::new(p.parse().unwrap()))
                    .collect(),
            ),
        }),
        ..Default::default()
    }
}

fn v6(a: &str) -> MpNextHop {
    MpNextHop::V6 {
        global: a.parse().unwrap(),
        link_local: None,
    }
}

/// (prefix, next hop) of each announcement queued for `p`.
fn announced(rib: &mut Rib, p: PeerId) -> Vec<(String, Option<MpNextHop>)> {
    take(rib, p)
        .unwrap()
        .changes
        .into_iter()
        .map(|c| {
            (
                c.nlri.prefix.to_string(),
                c.attrs.and_then(|a| a.next_hop.clone()),
            )
        })
        .collect()
}

#[test]
fn received_on_extended_session_is_selected_resolved_and_installed() {
    let mut rib = rib();
    let p = add(&mut rib, 2, 65002, false, v6_session(2, true));
    let u = v4_via_v6(&["10.2.0.0/16"], &[65002], "2001:db8::2", Some("fe80::2"));
    let stats = rib.apply_update(p, &u, false).unwrap();
    assert_eq!((stats.announced, stats.next_hop_refused), (1, 0));
    // Resolution asks about the IPv6 global address.
    let asked = std::cell::RefCell::new(Vec::new());
    rib.process(&|a: IpAddr| {
        asked.borrow_mut().push(a);
        Some(1)
    });
    assert_eq!(
        asked.into_inner(),
        vec!["2001:db8::2".parse::<IpAddr>().unwrap()]
    );
    let (pfx, best) = rib.loc_rib().pop().unwrap();
    assert_eq!(pfx.to_string(), "10.2.0.0/16");
    assert_eq!(
        best.attrs.next_hop,
        Some(MpNextHop::V6 {
            global: "2001:db8::2".parse().unwrap(),
            link_local: Some("fe80::2".parse().unwrap()),
        })
    );
    match rib.take_fib(1).pop() {
        Some(FibChange::Upsert(r)) => {
            assert_eq!(r.prefix.to_string(), "10.2.0.0/16");
            assert_eq!(
                r.next_hops.to_vec(),
                vec!["2001:db8::2".parse::<IpAddr>().unwrap()]
            );
        }
        other => panic!("expected an install, got {other:?}"),
    }
}

#[test]
fn unresolvable_ipv6_next_hop_makes_ipv4_route_ineligible() {
    let mut rib = rib();
    let p = add(&mut rib, 2, 65002, false, v6_session(2, true));
    rib.apply_update(
        p,
        &v4_via_v6(&["10.2.0.0/16"], &[65002], "2001:db8::2", None),
        false,
    )
    .unwrap();
    let only_v4 = |a: IpAddr| a.is_ipv4().then_some(1);
    rib.process(&only_v4);
    assert!(rib.loc_rib().is_empty());
    let d = rib.route("10.2.0.0/16".parse().unwrap(), &only_v4).unwrap();
    assert_eq!(d.paths.len(), 1);
    assert!(!d.paths[0].best);
}

#[test]
fn igp_cost_to_ipv6_next_hops_decides_between_ipv4_paths() {
    let mut rib = rib();
    let a = add(&mut rib, 2, 65000, false, v6_session(2, true));
    let b = add(&mut rib, 3, 65000, false, v6_session(3, true));
    rib.apply_update(
        a,
        &v4_via_v6(&["10.9.0.0/16"], &[65009], "2001:db8::a", None),
        false,
    )
    .unwrap();
    rib.apply_update(
        b,
        &v4_via_v6(&["10.9.0.0/16"], &[65009], "2001:db8::b", None),
        false,
    )
    .unwrap();
    // The path via peer 3 (higher address, lower router id is peer 2) wins only on cost.
    let cost = |x: IpAddr| {
        Some(if x == "2001:db8::b".parse::<IpAddr>().unwrap() {
            5
        } else {
            50
        })
    };
    rib.process(&cost);
    let (_, best) = rib.loc_rib().pop().unwrap();
    assert_eq!(best.peer, Some(b));
    let d = rib.route("10.9.0.0/16".parse().unwrap(), &cost).unwrap();
    let loser = d.paths.iter().find(|x| !x.best).unwrap();
    assert_eq!(loser.lost_at, Some(Step::IgpCost));
}

#[test]
fn refused_without_capability_and_previous_route_withdrawn() {
    let mut rib = rib();
    let p = add(&mut rib, 2, 65002, false, v6_session(2, false));
    // First an ordinary IPv4 next hop, then the same prefix via an IPv6 one.
    let plain = Update {
        attributes: PathAttributes {
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 2)),
            ..attrs(&[65002])
        },
        nlri: vec![Nlri::new("10.2.0.0/16".parse().unwrap())],
        ..Default::default()
    };
    rib.apply_update(p, &plain, false).unwrap();
    rib.process(&AllReachable);
    assert_eq!(rib.loc_rib().len(), 1);
    let stats = rib
        .apply_update(
            p,
            &v4_via_v6(&["10.2.0.0/16"], &[65002], "2001:db8::2", None),
            false,
        )
        .unwrap();
    assert_eq!(stats.next_hop_refused, 1);
    assert_eq!(stats.withdrawn, 1);
    assert_eq!(stats.announced, 0);
    rib.process(&AllReachable);
    assert!(rib.loc_rib().is_empty());
    rib.audit().unwrap();
}

#[test]
fn next_hop_self_on_ipv6_session_uses_ipv6_address_only_with_capability() {
    let mut rib = rib();
    rib.originate(LocalRoute::new(
        "10.1.0.0/16".parse().unwrap(),
        RouteSource::Static,
    ))
    .unwrap();
    let ext = add(&mut rib, 2, 65002, false, v6_session(2, true));
    let plain = add(&mut rib, 3, 65003, false, v6_session(3, false));
    let mut v4s = v6_session(4, false);
    v4s.local_v4 = Some(Ipv4Addr::new(192, 0, 2, 1));
    let v4_only = add(&mut rib, 4, 65004, false, v4s);
    rib.process(&AllReachable);
    assert_eq!(
        announced(&mut rib, ext),
        vec![(
            "10.1.0.0/16".into(),
            Some(MpNextHop::V6 {
                global: V6_SELF.parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
            })
        )]
    );
    // No IPv4 address to offer and no RFC 8950: not advertised.
    assert!(announced(&mut rib, plain).is_empty());
    assert_eq!(
        announced(&mut rib, v4_only),
        vec![(
            "10.1.0.0/16".into(),
            Some(MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1)))
        )]
    );
}

#[test]
fn reflection_keeps_ipv6_next_hop_for_capable_clients_only() {
    let mut rib = rib();
    let src = add(&mut rib, 2, 65000, true, v6_session(2, true));
    let capable = add(&mut rib, 3, 65000, true, v6_session(3, true));
    let incapable = add(&mut rib, 4, 65000, true, v6_session(4, false));
    let mut v4s = v6_session(5, false);
    v4s.local_v4 = Some(Ipv4Addr::new(192, 0, 2, 1));
    let with_v4 = add(&mut rib, 5, 65000, true, v4s);
    rib.apply_update(
        src,
        &v4_via_v6(&["10.2.0.0/16"], &[], "2001:db8::2", Some("fe80::2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let out = take(&mut rib, capable).unwrap().changes;
    assert_eq!(out.len(), 1);
    let a = out[0].attrs.clone().unwrap();
    // RFC 4456 8 attributes, next hop unchanged but the link-local part dropped (it is
    // only meaningful on the link it was learned on).
    assert_eq!(a.next_hop, Some(v6("2001:db8::2")));
    assert_eq!(a.attrs.originator_id, Some(Ipv4Addr::new(10, 0, 0, 2)));
    assert!(announced(&mut rib, incapable).is_empty());
    assert_eq!(
        announced(&mut rib, with_v4),
        vec![(
            "10.2.0.0/16".into(),
            Some(MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1)))
        )]
    );
}

/// One attribute set, IPv6 next hop included, interned for an IPv4 prefix (RFC 8950)
/// and an IPv6 prefix alike: the export caches must not hand the IPv6 prefix's
/// result (next hop unchanged) to the IPv4 prefix of a peer without the capability.
#[test]
fn export_cache_tells_ipv4_from_ipv6_prefixes_of_one_attribute_set() {
    let mut rib = rib();
    let src = add(&mut rib, 2, 65002, false, v6_session(2, true));
    let mut v4s = v6_session(5, false);
    v4s.local_v4 = Some(Ipv4Addr::new(192, 0, 2, 1));
    let ibgp = add(&mut rib, 5, 65000, false, v4s);
    let mut v6_update = v4_via_v6(&[], &[65002], "2001:db8::2", None);
    if let Some(r) = v6_update.mp_reach.as_mut() {
        r.family = Family::IPV6_UNICAST;
        r.nlri = MpNlri::Unicast(vec![Nlri::new("2001:db8:2::/48".parse().unwrap())]);
    }
    rib.apply_update(src, &v6_update, false).unwrap();
    let v4_update = v4_via_v6(&["10.2.0.0/16"], &[65002], "2001:db8::2", None);
    rib.apply_update(src, &v4_update, false).unwrap();
    rib.process(&AllReachable);
    let mut out = announced(&mut rib, ibgp);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        out,
        vec![
            (
                "10.2.0.0/16".into(),
                Some(MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1)))
            ),
            ("2001:db8:2::/48".into(), Some(v6("2001:db8::2"))),
        ]
    );
}

#[test]
fn encoded_in_mp_reach_afi_1_with_ipv6_next_hop() {
    let mut rib = rib();
    let src = add(&mut rib, 2, 65002, false, v6_session(2, true));
    let dst = add(&mut rib, 3, 65003, false, v6_session(3, true));
    rib.apply_update(
        src,
        &v4_via_v6(
            &["10.2.0.0/16", "10.3.0.0/24"],
            &[65002],
            "2001:db8::2",
            None,
        ),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let mut frames = Vec::new();
    let ctx = CodecContext {
        four_octet_as: true,
        ..Default::default()
    };
    let enc = rib.take_encoded(dst, usize::MAX, &mut frames).unwrap();
    assert_eq!(enc.announced, 2);
    let mut seen = Vec::new();
    for f in &frames {
        let Ok(Inbound::Update(d)) = decode_message(f, &ctx) else {
            panic!("not an UPDATE");
        };
        let u = d.update;
        if let Some(r) = u.mp_reach {
            assert!(u.nlri.is_empty(), "IPv4 NLRI go inside MP_REACH_NLRI");
            assert_eq!(u.attributes.next_hop, None, "no NEXT_HOP attribute");
            assert_eq!(r.family, Family::IPV4_UNICAST);
            // eBGP: next hop self, our global IPv6 address plus link-local.
            assert_eq!(
                r.next_hop,
                MpNextHop::V6 {
                    global: V6_SELF.parse().unwrap(),
                    link_local: Some("fe80::1".parse().unwrap()),
                }
            );
            let MpNlri::Unicast(v) = r.nlri else {
                panic!("opaque NLRI")
            };
            seen.extend(v.into_iter().map(|n| n.prefix.to_string()));
        }
    }
    assert_eq!(seen, vec!["10.2.0.0/16", "10.3.0.0/24"]);
}
