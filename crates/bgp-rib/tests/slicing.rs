//! Bounded encoding of a peer's queue (`Rib::take_encoded_bounded`): slices go out in
//! queue order, add up to the unsliced encoding, and End-of-RIB comes with the last one.

mod common;

use std::collections::BTreeMap;

use bgp_proto::wire::{decode_message, Inbound};
use bgp_proto::{AsPath, CodecContext, Family};
use bgp_rib::{AllReachable, PeerId, Rib};
use bytes::Bytes;
use common::*;
use ipnet::IpNet;

/// One decoded event of the outbound stream, in order (an announcement with its AS_PATH,
/// which tells the attribute sets of these tests apart).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    Announce(IpNet, Option<AsPath>),
    Withdraw(IpNet),
    EndOfRib(Family),
}

fn ctx() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        ..Default::default()
    }
}

/// Decode frames into events, in message order (IPv4 unicast and End-of-RIB only).
fn events(frames: &[Bytes]) -> Vec<Event> {
    let mut v = Vec::new();
    for f in frames {
        let Inbound::Update(u) = decode_message(f, &ctx()).unwrap() else {
            panic!("not an UPDATE");
        };
        let u = u.update;
        if u.withdrawn.is_empty() && u.nlri.is_empty() && u.mp_reach.is_none() {
            match &u.mp_unreach {
                None => {
                    v.push(Event::EndOfRib(Family::IPV4_UNICAST));
                    continue;
                }
                Some(m) if m.nlri.is_empty() => {
                    v.push(Event::EndOfRib(m.family));
                    continue;
                }
                Some(_) => {}
            }
        }
        v.extend(u.withdrawn.iter().map(|n| Event::Withdraw(n.prefix)));
        v.extend(
            u.nlri
                .iter()
                .map(|n| Event::Announce(n.prefix, u.attributes.as_path.clone())),
        );
    }
    v
}

/// What a receiver holds after applying `events` in order.
fn replay(events: &[Event]) -> BTreeMap<IpNet, Option<AsPath>> {
    let mut m = BTreeMap::new();
    for e in events {
        match e {
            Event::Announce(p, a) => {
                m.insert(*p, a.clone());
            }
            Event::Withdraw(p) => {
                m.remove(p);
            }
            Event::EndOfRib(_) => {}
        }
    }
    m
}

/// The peer's Adj-RIB-Out for IPv4 unicast, as the receiver should hold it.
fn adj_out(rib: &Rib, id: PeerId) -> BTreeMap<IpNet, Option<AsPath>> {
    rib.adj_rib_out(id, Family::IPV4_UNICAST)
        .unwrap()
        .into_iter()
        .map(|(n, a)| (n.prefix, a.attrs.as_path.clone()))
        .collect()
}

/// Take slices of at most `budget` NLRI octets until the queue is empty; checks that
/// End-of-RIB only comes with the last slice. Returns the frames and the slice count.
fn take_sliced(rib: &mut Rib, id: PeerId, budget: usize) -> (Vec<Bytes>, usize, usize) {
    let mut frames = Vec::new();
    let mut slices = 0;
    let mut announced = 0;
    loop {
        let before = frames.len();
        let e = rib.take_encoded(id, budget, &mut frames).unwrap();
        slices += 1;
        announced += e.announced;
        assert_eq!(e.messages, frames.len() - before);
        if e.more {
            assert!(e.end_of_rib.is_empty(), "End-of-RIB before the last slice");
            assert!(e.messages > 0, "a slice with more to come sent nothing");
        } else {
            return (frames, slices, announced);
        }
        assert!(slices < 100_000, "slicing does not end");
    }
}

/// 3000 /24s under three attribute sets, so groups span slices.
fn table(rib: &mut Rib) -> PeerId {
    let src = peer(rib, 2, 65001, false);
    let prefixes: Vec<String> = (0..3000)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    for (k, chunk) in prefixes.chunks(1000).enumerate() {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let asns = [65001, 65010 + k as u32];
        rib.apply_update(src, &announce(&refs, attrs(&asns, "192.0.2.2")), false)
            .unwrap();
    }
    rib.process(&AllReachable);
    src
}

#[test]
fn slices_add_up_to_the_unsliced_encoding_with_end_of_rib_last() {
    let mut rib = rib();
    table(&mut rib);
    // Two peers come up on the same table: one drained at once, one in slices.
    let whole = peer(&mut rib, 3, 65003, false);
    let sliced = peer(&mut rib, 4, 65003, false);
    let mut all = Vec::new();
    let e = rib.take_encoded(whole, usize::MAX, &mut all).unwrap();
    assert!(!e.more);
    assert_eq!(e.announced, 3000);
    // 4 octets per /24: ~250 prefixes per slice.
    let (frames, slices, announced) = take_sliced(&mut rib, sliced, 1000);
    assert!(slices >= 12, "{slices} slices");
    assert_eq!(announced, 3000);
    let (a, b) = (events(&all), events(&frames));
    assert_eq!(a.len(), b.len());
    // Same announcements (as sets: grouping differs at slice boundaries).
    assert_eq!(replay(&a), replay(&b));
    assert_eq!(replay(&b), adj_out(&rib, sliced));
    // End-of-RIB for both families, after every announcement.
    let eor: Vec<usize> = b
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Event::EndOfRib(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(eor, vec![b.len() - 2, b.len() - 1]);
    assert!(take(&mut rib, sliced).unwrap().is_empty());
    rib.audit().unwrap();
}

#[test]
fn a_withdrawal_queued_after_an_announcement_does_not_overtake_it() {
    let mut rib = rib();
    let src = table(&mut rib);
    let dst = peer(&mut rib, 3, 65003, false);
    // Send the first slice of the initial table only.
    let mut frames = Vec::new();
    let first = rib.take_encoded(dst, 1000, &mut frames).unwrap();
    assert!(first.more);
    // Withdraw a prefix still queued (not yet sent), one already sent, and change one
    // still queued: each change lands behind the queued announcement.
    let first_sent = replay(&events(&frames));
    let mut unsent = (0..3000)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .filter(|p| !first_sent.contains_key(&p.parse::<IpNet>().unwrap()));
    let queued = unsent.next().unwrap();
    let changed = unsent.next().unwrap();
    let sent = first_sent.keys().next().unwrap().to_string();
    let (queued, changed, sent) = (queued.as_str(), changed.as_str(), sent.as_str());
    rib.apply_update(src, &withdraw(&[queued, sent]), false)
        .unwrap();
    rib.apply_update(
        src,
        &announce(&[changed], attrs(&[65001, 65099], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let (rest, _, _) = take_sliced(&mut rib, dst, 1000);
    frames.extend(rest);
    let ev = events(&frames);
    let pos = |want: &Event| ev.iter().rposition(|e| e == want);
    let q: IpNet = queued.parse().unwrap();
    let s: IpNet = sent.parse().unwrap();
    let last_of = |p: IpNet| {
        ev.iter()
            .rposition(|e| matches!(e, Event::Announce(x, _) | Event::Withdraw(x) if *x == p))
    };
    // The last word on each changed prefix is the newest state.
    assert_eq!(last_of(q), pos(&Event::Withdraw(q)));
    assert_eq!(last_of(s), pos(&Event::Withdraw(s)));
    let c: IpNet = changed.parse().unwrap();
    assert_eq!(
        ev.get(last_of(c).unwrap()),
        Some(&Event::Announce(c, Some(path(&[LOCAL_AS, 65001, 65099]))))
    );
    // The receiver ends up with exactly the Adj-RIB-Out.
    let held = replay(&ev);
    assert!(!held.contains_key(&q) && !held.contains_key(&s));
    assert_eq!(held.len(), 2998);
    assert_eq!(held, adj_out(&rib, dst));
    rib.audit().unwrap();
}

#[test]
fn route_refresh_readvertises_in_slices() {
    let mut rib = rib();
    table(&mut rib);
    let dst = peer(&mut rib, 3, 65003, false);
    let mut frames = Vec::new();
    rib.take_encoded(dst, usize::MAX, &mut frames).unwrap();
    let initial = replay(&events(&frames));
    rib.route_refresh(dst, Family::IPV4_UNICAST).unwrap();
    let (again, slices, announced) = take_sliced(&mut rib, dst, 2000);
    assert!(slices > 1, "{slices} slices");
    assert_eq!(announced, 3000);
    let ev = events(&again);
    assert!(
        !ev.iter().any(|e| matches!(e, Event::EndOfRib(_))),
        "no End-of-RIB after a refresh (RFC 2918)"
    );
    assert_eq!(replay(&ev), initial);
    assert_eq!(initial, adj_out(&rib, dst));
    rib.audit().unwrap();
}

#[test]
fn a_slice_takes_at_least_one_change_and_an_empty_queue_takes_nothing() {
    let mut rib = rib();
    table(&mut rib);
    let dst = peer(&mut rib, 3, 65003, false);
    let mut frames = Vec::new();
    let e = rib.take_encoded(dst, 0, &mut frames).unwrap();
    assert_eq!((e.announced, e.messages, e.more), (1, 1, true));
    let (_, _, announced) = take_sliced(&mut rib, dst, usize::MAX);
    assert_eq!(announced, 2999);
    frames.clear();
    let e = rib.take_encoded(dst, 100, &mut frames).unwrap();
    assert_eq!((e.announced, e.messages, e.more), (0, 0, false));
    assert!(frames.is_empty());
}

/// Route-reflector clients alike for export get the same changes in the same order: the
/// second one's slice reuses the first one's UPDATEs, byte for byte; a client with other
/// codec parameters gets its own encoding.
#[test]
fn reflector_clients_of_one_class_share_encoded_updates() {
    let mut rib = rib();
    let c1 = peer(&mut rib, 3, LOCAL_AS, true);
    let c2 = peer(&mut rib, 4, LOCAL_AS, true);
    let id = rib
        .add_peer(bgp_rib::PeerConfig::new("two-octet", addr(5), LOCAL_AS))
        .unwrap();
    let mut session =
        bgp_rib::SessionInfo::new(rid(5), Some(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    session.codec.four_octet_as = !session.codec.four_octet_as;
    rib.peer_up(id, session, std::time::Instant::now()).unwrap();
    let mut frames = Vec::new();
    for p in [c1, c2, id] {
        rib.take_encoded(p, usize::MAX, &mut frames).unwrap();
    }
    table(&mut rib);
    let shared = rib.counters().encodings_shared;
    // Slices taken in turns, one per peer, as the daemon's RIB task does.
    let peers = [c1, c2, id];
    let mut frames: [Vec<Bytes>; 3] = Default::default();
    let mut announced = [0; 3];
    let mut slices = 0;
    let mut more = true;
    while more {
        more = false;
        for (i, p) in peers.iter().enumerate() {
            let e = rib.take_encoded(*p, 1000, &mut frames[i]).unwrap();
            announced[i] += e.announced;
            more |= e.more;
        }
        slices += 1;
    }
    assert_eq!(announced, [3000; 3]);
    assert!(slices > 10, "{slices} slices");
    let [f1, f2, f3] = frames;
    assert_eq!(f1, f2, "same class, same frames");
    assert_ne!(f1, f3, "other codec parameters, other frames");
    // Every slice of the second client, but none of the third.
    assert_eq!(rib.counters().encodings_shared - shared, slices);
    assert_eq!(replay(&events(&f2)), adj_out(&rib, c2));
    rib.audit().unwrap();
}

/// A client that sent one of the changes is not sent it back, so its slice differs; the
/// clients after it still share the slice encoded before it.
#[test]
fn a_source_client_between_two_others_does_not_break_the_sharing() {
    let mut rib = rib();
    let c1 = peer(&mut rib, 3, LOCAL_AS, true);
    let c2 = peer(&mut rib, 4, LOCAL_AS, true);
    let c3 = peer(&mut rib, 5, LOCAL_AS, true);
    let mut frames = Vec::new();
    for p in [c1, c2, c3] {
        rib.take_encoded(p, usize::MAX, &mut frames).unwrap();
    }
    // In one decision run: c2's own /26 and a route from an eBGP peer.
    let e = peer(&mut rib, 2, 65001, false);
    rib.take_encoded(e, usize::MAX, &mut frames).unwrap();
    rib.apply_update(
        c2,
        &announce(&["10.128.0.64/26"], attrs(&[], "192.0.2.4")),
        false,
    )
    .unwrap();
    rib.apply_update(
        e,
        &announce(&["203.0.113.0/24"], attrs(&[65001], "192.0.2.2")),
        false,
    )
    .unwrap();
    rib.process(&AllReachable);
    let shared = rib.counters().encodings_shared;
    let mut take = |p| {
        let mut f = Vec::new();
        let n = rib.take_encoded(p, usize::MAX, &mut f).unwrap().announced;
        (f, n)
    };
    let (f1, n1) = take(c1);
    let (_, n2) = take(c2);
    let (f3, n3) = take(c3);
    assert_eq!((n1, n2, n3), (2, 1, 2));
    assert_eq!(f1, f3);
    assert_eq!(rib.counters().encodings_shared - shared, 1);
    rib.audit().unwrap();
}

#[derive(Clone, Debug)]
enum Op {
    /// Peer (0 or 1) announces prefix `p` with AS_PATH variant `v`.
    Announce(usize, u8, u8),
    Withdraw(usize, u8),
    Process,
    /// Take one slice of up to this many NLRI octets for each client, in turns.
    Slice(usize),
    RouteRefresh(usize),
}

fn arb_op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0..2usize, 0..24u8, 0..3u8).prop_map(|(s, p, v)| Op::Announce(s, p, v)),
        2 => (0..2usize, 0..24u8).prop_map(|(s, p)| Op::Withdraw(s, p)),
        2 => Just(Op::Process),
        3 => (0..40usize).prop_map(Op::Slice),
        1 => (0..2usize).prop_map(Op::RouteRefresh),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]
    /// Whatever the interleaving of changes, decision runs, slices and refreshes, each
    /// client ends up holding exactly its Adj-RIB-Out, and shared slices are the same
    /// bytes an own encoding would be (the replay would differ otherwise).
    #[test]
    fn sliced_output_always_replays_to_the_adj_rib_out(ops in proptest::collection::vec(arb_op(), 1..60)) {
        let mut rib = rib();
        let src = [peer(&mut rib, 2, 65001, false), peer(&mut rib, 3, 65002, false)];
        let clients = [peer(&mut rib, 4, LOCAL_AS, true), peer(&mut rib, 5, LOCAL_AS, true)];
        let mut frames: [Vec<Bytes>; 2] = Default::default();
        for (i, c) in clients.iter().enumerate() {
            rib.take_encoded(*c, usize::MAX, &mut frames[i]).unwrap();
        }
        for s in src {
            rib.take_encoded(s, usize::MAX, &mut Vec::new()).unwrap();
        }
        let pfx = |p: u8| format!("10.0.{p}.0/24");
        for op in ops {
            match op {
                Op::Announce(s, p, v) => {
                    let a = attrs(&[65001 + s as u32, 64600 + u32::from(v)], "192.0.2.9");
                    rib.apply_update(src[s], &announce(&[pfx(p).as_str()], a), false).unwrap();
                }
                Op::Withdraw(s, p) => {
                    rib.apply_update(src[s], &withdraw(&[pfx(p).as_str()]), false).unwrap();
                }
                Op::Process => rib.process(&AllReachable),
                Op::Slice(b) => {
                    for (i, c) in clients.iter().enumerate() {
                        let e = rib.take_encoded(*c, b, &mut frames[i]).unwrap();
                        proptest::prop_assert!(e.end_of_rib.is_empty());
                    }
                }
                Op::RouteRefresh(i) => {
                    rib.route_refresh(clients[i], Family::IPV4_UNICAST).unwrap();
                }
            }
        }
        rib.process(&AllReachable);
        let mut more = true;
        while more {
            more = false;
            for (i, c) in clients.iter().enumerate() {
                more |= rib.take_encoded(*c, 12, &mut frames[i]).unwrap().more;
            }
        }
        for (i, c) in clients.iter().enumerate() {
            let ev = events(&frames[i]);
            // End-of-RIB once, from the initial (empty) table, before any route.
            proptest::prop_assert_eq!(
                ev.iter().filter(|e| matches!(e, Event::EndOfRib(Family::IPV4_UNICAST))).count(),
                1
            );
            proptest::prop_assert_eq!(replay(&ev), adj_out(&rib, *c));
        }
        rib.audit().unwrap();
    }
}
