//! One prefix with N ADD-PATH paths from one peer, then 20 changes, with the per-prefix
//! limit lifted: what storing, deciding and exporting a large destination costs (it
//! should grow linearly with N). An eBGP peer takes the best path, an iBGP reflector
//! client every path (ADD-PATH send "all").
//!
//! `cargo run --release -p bgp-rib --example add_path_flood [-- N...]` (default 10000
//! 50000 200000).

use std::net::Ipv4Addr;
use std::time::Instant;

use bgp_proto::{AsPath, AsSegment, Family, Nlri, Origin, PathAttributes, SegmentType, Update};
use bgp_rib::{AddPathSend, AllReachable, PeerConfig, Rib, RibConfig, SessionInfo};

fn attrs(med: u32) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: vec![65001],
            }],
        }),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 2)),
        med: Some(med),
        ..Default::default()
    }
}

fn update(ids: std::ops::Range<u32>, med: u32) -> Update {
    Update {
        attributes: attrs(med),
        nlri: ids
            .map(|id| Nlri {
                path_id: Some(id),
                prefix: "10.9.9.9/32".parse().unwrap_or_default(),
            })
            .collect(),
        ..Default::default()
    }
}

fn addr(n: u8) -> std::net::IpAddr {
    Ipv4Addr::new(192, 0, 2, n).into()
}

fn run(n: u32) {
    let local = Some(Ipv4Addr::new(192, 0, 2, 1));
    let mut rib = Rib::new(RibConfig::new(65000, Ipv4Addr::new(10, 0, 0, 1)));
    let mut src_cfg = PeerConfig::new("src", addr(2), 65001);
    src_cfg.add_path_receive_limit = usize::MAX;
    let src = rib.add_peer(src_cfg).unwrap_or_else(|e| panic!("{e}"));
    let mut s = SessionInfo::new(Ipv4Addr::new(10, 0, 0, 2), local);
    s.codec.add_path_receive = vec![Family::IPV4_UNICAST];
    rib.peer_up(src, s, Instant::now())
        .unwrap_or_else(|e| panic!("{e}"));
    let ebgp = rib
        .add_peer(PeerConfig::new("ebgp", addr(3), 65003))
        .unwrap_or_else(|e| panic!("{e}"));
    rib.peer_up(
        ebgp,
        SessionInfo::new(Ipv4Addr::new(10, 0, 0, 3), local),
        Instant::now(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut c = PeerConfig::new("client", addr(4), 65000);
    c.rr_client = true;
    c.add_path_send = AddPathSend::All;
    let client = rib.add_peer(c).unwrap_or_else(|e| panic!("{e}"));
    let mut s = SessionInfo::new(Ipv4Addr::new(10, 0, 0, 4), local);
    s.codec.add_path_send = vec![Family::IPV4_UNICAST];
    rib.peer_up(client, s, Instant::now())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut frames = Vec::new();
    let t = Instant::now();
    let mut start = 0;
    while start < n {
        let end = (start + 1000).min(n);
        rib.apply_update(src, &update(start..end, 500), false)
            .unwrap_or_else(|e| panic!("{e}"));
        rib.process(&AllReachable);
        start = end;
    }
    let stored = t.elapsed();
    let t = Instant::now();
    for k in 0..20 {
        rib.apply_update(src, &update(k..k + 1, 100 + k), false)
            .unwrap_or_else(|e| panic!("{e}"));
        rib.process(&AllReachable);
    }
    let changed = t.elapsed();
    let t = Instant::now();
    for p in [ebgp, client] {
        rib.take_encoded(p, usize::MAX, &mut frames)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let encoded = t.elapsed();
    println!(
        "{n} paths: stored and decided in {:.3} s, 20 changes in {:.3} s, encoded {} UPDATEs in {:.3} s",
        stored.as_secs_f64(),
        changed.as_secs_f64(),
        frames.len(),
        encoded.as_secs_f64()
    );
}

fn main() {
    let ns: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let ns = if ns.is_empty() {
        vec![10_000, 50_000, 200_000]
    } else {
        ns
    };
    for n in ns {
        run(n);
    }
}
