//! Cost of one small peer's session loss next to a big table: N /24s from one eBGP peer
//! (NO_ADVERTISE, so not reflected),
//! then C route-reflector clients with one /26 each; every client in turn goes down
//! (its route withdrawn from the other clients, `peer_info` asked), then comes back
//! and re-announces its /26 (not timed: the full-table export to it is O(table) anyway).
//!
//! `cargo run --release -p bgp-rib --example peer_flap [-- N [C]]` (default 1,000,000 and 200).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use bgp_proto::{AsPath, AsSegment, Community, Nlri, Origin, PathAttributes, SegmentType, Update};
use bgp_rib::{AllReachable, PeerConfig, Rib, RibConfig, SessionInfo};
use ipnet::{IpNet, Ipv4Net};

fn update(prefixes: Vec<Nlri>, next_hop: Ipv4Addr, asns: Vec<u32>) -> Update {
    Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath {
                segments: vec![AsSegment {
                    kind: SegmentType::Sequence,
                    asns,
                }],
            }),
            next_hop: Some(next_hop),
            ..Default::default()
        },
        nlri: prefixes,
        ..Default::default()
    }
}

fn net(a: u32, len: u8) -> Nlri {
    Nlri::new(IpNet::V4(
        Ipv4Net::new(Ipv4Addr::from(a), len).unwrap_or_default(),
    ))
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let clients_n: u32 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let now = Instant::now();
    let mut rib = Rib::new(RibConfig::new(65000, Ipv4Addr::new(10, 0, 0, 1)));
    let big = rib
        .add_peer(PeerConfig::new("big", "192.0.2.2".parse().unwrap(), 65001))
        .unwrap_or_else(|e| panic!("{e}"));
    rib.peer_up(big, SessionInfo::new(Ipv4Addr::new(10, 0, 0, 2), None), now)
        .unwrap_or_else(|e| panic!("{e}"));
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let nlri = chunk
            .iter()
            .map(|i| net(0x0100_0000 + (i << 8), 24))
            .collect();
        let mut u = update(nlri, Ipv4Addr::new(192, 0, 2, 2), vec![65001]);
        // Kept to ourselves: the clients' Adj-RIB-Outs stay small, so what is measured
        // is the table scan, not freeing a full table sent to the client.
        u.attributes.communities = vec![Community::NO_ADVERTISE];
        rib.apply_update(big, &u, false)
            .unwrap_or_else(|e| panic!("{e}"));
        rib.process(&AllReachable);
        rib.take_fib(usize::MAX);
    }
    let mut clients = Vec::new();
    for c in 0..clients_n {
        let addr = Ipv4Addr::from(0x0A01_0000 + c);
        let mut pc = PeerConfig::new(format!("c{c}"), IpAddr::V4(addr), 65000);
        pc.rr_client = true;
        let id = rib.add_peer(pc).unwrap_or_else(|e| panic!("{e}"));
        clients.push((id, addr));
    }
    let session = |addr: Ipv4Addr| SessionInfo::new(addr, Some(Ipv4Addr::new(10, 0, 0, 1)));
    let announce = |rib: &mut Rib, c: u32, id, addr: Ipv4Addr| {
        let u = update(vec![net(0xC000_0000 + (c << 6), 26)], addr, vec![]);
        rib.apply_update(id, &u, false)
            .unwrap_or_else(|e| panic!("{e}"));
    };
    for (c, &(id, addr)) in clients.iter().enumerate() {
        rib.peer_up(id, session(addr), now)
            .unwrap_or_else(|e| panic!("{e}"));
        announce(&mut rib, c as u32, id, addr);
    }
    rib.process(&AllReachable);
    rib.take_fib(usize::MAX);
    // The full-table exports to the clients are not what is measured: drop them.
    for p in rib.peers_with_output() {
        let _ = rib.take_encoded(p, usize::MAX, &mut Vec::new());
    }
    let mut spent = std::time::Duration::ZERO;
    for (c, &(id, addr)) in clients.iter().enumerate() {
        let t = Instant::now();
        rib.peer_down(id, false, now)
            .unwrap_or_else(|e| panic!("{e}"));
        rib.process(&AllReachable);
        let _ = rib.peer_info(id).unwrap_or_else(|e| panic!("{e}"));
        spent += t.elapsed();
        // Coming back costs a full-table export to the client (O(table) by nature): not
        // part of the figure.
        rib.peer_up(id, session(addr), now)
            .unwrap_or_else(|e| panic!("{e}"));
        announce(&mut rib, c as u32, id, addr);
        rib.process(&AllReachable);
        rib.take_fib(usize::MAX);
        // Only the flapping client's own re-sent table is queued; drop it unencoded.
        let _ = rib.take_encoded(id, usize::MAX, &mut Vec::new());
    }
    let per = spent / clients_n;
    println!(
        "{n} prefixes + {clients_n} clients: client session down (peer_down, process, peer_info) {:.1} µs",
        per.as_secs_f64() * 1e6
    );
}
