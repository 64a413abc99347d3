//! Many ADD-PATH paths for one prefix (RFC 7911 sets no limit): the per-peer, per-prefix
//! limit, and destinations large enough to be indexed behaving exactly like small ones.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use bgp_proto::{Family, Nlri, PathAttributes, Update};
use bgp_rib::{AddPathSend, AllReachable, PeerConfig, PeerId, Rib, SessionInfo};
use common::*;
use proptest::prelude::*;

const HOST: &str = "10.9.9.9/32";

/// A peer that negotiated ADD-PATH receive (its path ids are kept), with `limit`.
fn add_path_source(rib: &mut Rib, n: u8, asn: u32, limit: usize) -> PeerId {
    let mut cfg = PeerConfig::new(format!("src{n}"), addr(n), asn);
    cfg.add_path_receive_limit = limit;
    let id = rib.add_peer(cfg).unwrap();
    let mut s = SessionInfo::new(rid(n), Some(Ipv4Addr::new(192, 0, 2, 1)));
    s.codec.add_path_receive = vec![Family::IPV4_UNICAST];
    rib.peer_up(id, s, std::time::Instant::now()).unwrap();
    id
}

/// An iBGP reflector client that takes every path (ADD-PATH send, "all").
fn add_path_client(rib: &mut Rib, n: u8) -> PeerId {
    let mut cfg = PeerConfig::new(format!("client{n}"), addr(n), LOCAL_AS);
    cfg.rr_client = true;
    cfg.add_path_send = AddPathSend::All;
    let id = rib.add_peer(cfg).unwrap();
    let mut s = SessionInfo::new(rid(n), Some(Ipv4Addr::new(192, 0, 2, 1)));
    s.codec.add_path_send = vec![Family::IPV4_UNICAST];
    rib.peer_up(id, s, std::time::Instant::now()).unwrap();
    id
}

fn with_med(med: u32) -> PathAttributes {
    let mut a = attrs(&[65001], "192.0.2.2");
    a.med = Some(med);
    a
}

/// `ids` of the host route, in one UPDATE.
fn paths(ids: impl Iterator<Item = u32>, a: PathAttributes) -> Update {
    Update {
        attributes: a,
        nlri: ids
            .map(|id| Nlri {
                path_id: Some(id),
                prefix: HOST.parse().unwrap(),
            })
            .collect(),
        ..Default::default()
    }
}

fn withdraw_paths(ids: impl Iterator<Item = u32>) -> Update {
    Update {
        withdrawn: paths(ids, PathAttributes::default()).nlri,
        ..Default::default()
    }
}

/// One /32 with 200,000 path ids, then 20 changes: the peer keeps the first 1,024
/// (the default limit), the rest are counted and ignored; downstream peers get the
/// right best path and path set; withdrawing paths makes room again.
#[test]
fn a_flood_of_path_ids_for_one_prefix_stops_at_the_limit() {
    let mut rib = rib();
    let src = add_path_source(&mut rib, 2, 65001, bgp_rib::DEFAULT_ADD_PATH_RECEIVE_LIMIT);
    let ebgp = peer(&mut rib, 3, 65003, false);
    let client = add_path_client(&mut rib, 4);
    changes(&mut rib, ebgp);
    changes(&mut rib, client);
    let limit = bgp_rib::DEFAULT_ADD_PATH_RECEIVE_LIMIT as u32;
    let mut over = 0;
    for chunk in 0..200u32 {
        let s = rib
            .apply_update(
                src,
                &paths(chunk * 1000..(chunk + 1) * 1000, with_med(500)),
                false,
            )
            .unwrap();
        over += s.over_add_path_limit;
        rib.process(&AllReachable);
    }
    assert_eq!(over, 200_000 - limit as usize);
    assert_eq!(rib.peer_info(src).unwrap().received_v4, limit as usize);
    // 20 changes: path id k gets MED 100 + k; the best is then id 0 (lowest MED).
    for k in 0..20u32 {
        let s = rib
            .apply_update(src, &paths(k..k + 1, with_med(100 + k)), false)
            .unwrap();
        assert_eq!(s.over_add_path_limit, 0, "a held path id is replaced");
        rib.process(&AllReachable);
    }
    let best = rib.route(HOST.parse().unwrap(), &AllReachable).unwrap();
    assert_eq!(best.paths.len(), limit as usize);
    let b = best.paths.iter().find(|p| p.best).unwrap();
    assert_eq!((b.path_id, b.attrs.attrs.med), (0, Some(100)));
    let to_ebgp = changes(&mut rib, ebgp);
    assert_eq!(to_ebgp.len(), 1, "one best path, its latest state");
    assert!(to_ebgp[0].attrs.is_some());
    let to_client = changes(&mut rib, client);
    assert_eq!(to_client.len(), limit as usize);
    assert_eq!(
        rib.adj_rib_out(client, Family::IPV4_UNICAST).unwrap().len(),
        limit as usize
    );
    // Withdraw the first half: the other half stays, new ids fit again up to the limit.
    rib.apply_update(src, &withdraw_paths(0..limit / 2), false)
        .unwrap();
    rib.process(&AllReachable);
    let s = rib
        .apply_update(src, &paths(500_000..500_000 + limit, with_med(900)), false)
        .unwrap();
    assert_eq!(s.over_add_path_limit, limit as usize / 2);
    rib.process(&AllReachable);
    assert_eq!(rib.peer_info(src).unwrap().received_v4, limit as usize);
    let held = rib.adj_rib_in(src, Family::IPV4_UNICAST).unwrap();
    assert!(held.iter().all(|(n, _, _)| {
        let id = n.path_id.unwrap();
        (limit / 2..limit).contains(&id) || (500_000..500_000 + limit / 2).contains(&id)
    }));
    changes(&mut rib, client);
    assert_eq!(
        rib.adj_rib_out(client, Family::IPV4_UNICAST).unwrap().len(),
        limit as usize
    );
    // Every path withdrawn: both downstream peers hold nothing.
    rib.apply_update(
        src,
        &withdraw_paths((limit / 2..limit).chain(500_000..500_000 + limit / 2)),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    changes(&mut rib, ebgp);
    changes(&mut rib, client);
    for p in [ebgp, client] {
        assert!(rib.adj_rib_out(p, Family::IPV4_UNICAST).unwrap().is_empty());
    }
    rib.audit().unwrap();
}

/// The limit is per peer and per prefix: another peer, and another prefix, have their own.
#[test]
fn the_limit_is_per_peer_and_per_prefix() {
    let mut rib = rib();
    let a = add_path_source(&mut rib, 2, 65001, 3);
    let b = add_path_source(&mut rib, 3, 65002, 3);
    let s = rib
        .apply_update(a, &paths(0..5, with_med(1)), false)
        .unwrap();
    assert_eq!(s.over_add_path_limit, 2);
    let s = rib
        .apply_update(b, &paths(0..5, with_med(1)), false)
        .unwrap();
    assert_eq!(s.over_add_path_limit, 2);
    let mut other = paths(0..5, with_med(1));
    for n in &mut other.nlri {
        n.prefix = "10.9.9.8/32".parse().unwrap();
    }
    assert_eq!(
        rib.apply_update(a, &other, false)
            .unwrap()
            .over_add_path_limit,
        2
    );
    rib.process(&AllReachable);
    assert_eq!(
        rib.route(HOST.parse().unwrap(), &AllReachable)
            .unwrap()
            .paths
            .len(),
        6
    );
    rib.audit().unwrap();
}

#[derive(Clone, Debug)]
enum Op {
    Announce { peer: usize, id: u32, med: u32 },
    Withdraw { peer: usize, id: u32 },
    Down { peer: usize },
    Process,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, 0..60u32, 0..4u32).prop_map(|(peer, id, med)| Op::Announce { peer, id, med }),
        3 => (0..3usize, 0..60u32).prop_map(|(peer, id)| Op::Withdraw { peer, id }),
        1 => (0..3usize).prop_map(|peer| Op::Down { peer }),
        2 => Just(Op::Process),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// A destination crossing the size where it gets indexed (and back), under
    /// announcements, replacements, withdrawals and sessions going down, holds exactly
    /// the paths a plain model says, applies the limit, picks the best a fresh decision
    /// picks, and tells an ADD-PATH client exactly the eligible paths.
    #[test]
    fn large_destinations_match_a_model(ops in proptest::collection::vec(arb_op(), 1..300)) {
        let mut rib = rib();
        let limit = 40;
        let sources: Vec<PeerId> = (0..3u8)
            .map(|i| add_path_source(&mut rib, 2 + i, 65001 + u32::from(i), limit))
            .collect();
        let client = add_path_client(&mut rib, 9);
        changes(&mut rib, client);
        // (peer, id) -> med
        let mut model: BTreeMap<(usize, u32), u32> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Announce { peer, id, med } => {
                    let held = model.keys().filter(|k| k.0 == peer).count();
                    let s = rib.apply_update(sources[peer], &paths(id..id + 1, with_med(med)), false).unwrap();
                    if model.contains_key(&(peer, id)) || held < limit {
                        model.insert((peer, id), med);
                        prop_assert_eq!(s.over_add_path_limit, 0);
                    } else {
                        prop_assert_eq!(s.over_add_path_limit, 1);
                    }
                }
                Op::Withdraw { peer, id } => {
                    rib.apply_update(sources[peer], &withdraw_paths(id..id + 1), false).unwrap();
                    model.remove(&(peer, id));
                }
                Op::Down { peer } => {
                    rib.peer_down(sources[peer], false, std::time::Instant::now()).unwrap();
                    let mut s = SessionInfo::new(rid(2 + peer as u8), Some(Ipv4Addr::new(192, 0, 2, 1)));
                    s.codec.add_path_receive = vec![Family::IPV4_UNICAST];
                    rib.peer_up(sources[peer], s, std::time::Instant::now()).unwrap();
                    model.retain(|k, _| k.0 != peer);
                }
                Op::Process => rib.process(&AllReachable),
            }
        }
        rib.process(&AllReachable);
        let mut held: BTreeMap<(usize, u32), u32> = BTreeMap::new();
        if let Some(d) = rib.route(HOST.parse().unwrap(), &AllReachable) {
            for p in &d.paths {
                let peer = sources.iter().position(|s| Some(*s) == p.peer).unwrap();
                held.insert((peer, p.path_id), p.attrs.attrs.med.unwrap());
            }
            // The best kept from the incremental runs is the one a fresh decision picks
            // (`route` gives every other path the step it lost at).
            prop_assert_eq!(d.paths.iter().filter(|p| p.best).count(), 1);
            prop_assert_eq!(d.paths.iter().filter(|p| p.lost_at.is_none()).count(), 1);
        }
        prop_assert_eq!(&held, &model);
        changes(&mut rib, client);
        prop_assert_eq!(
            rib.adj_rib_out(client, Family::IPV4_UNICAST).unwrap().len(),
            model.len()
        );
        prop_assert_eq!(rib.audit(), Ok(()));
    }
}
