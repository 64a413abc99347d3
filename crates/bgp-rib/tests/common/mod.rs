//! Shared helpers for the RIB integration tests.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use bgp_proto::{AsPath, AsSegment, Nlri, Origin, PathAttributes, SegmentType, Update};
use bgp_rib::{OutChange, PeerConfig, PeerId, Rib, RibConfig, SessionInfo};

pub const LOCAL_AS: u32 = 65000;

pub fn rid(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

pub fn rib() -> Rib {
    Rib::new(RibConfig::new(LOCAL_AS, rid(1)))
}

pub fn addr(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
}

/// Add a peer numbered `n` (address 192.0.2.n, router id 10.0.0.n) and bring it up.
pub fn peer(rib: &mut Rib, n: u8, asn: u32, rr_client: bool) -> PeerId {
    let mut cfg = PeerConfig::new(format!("peer{n}"), addr(n), asn);
    cfg.rr_client = rr_client;
    peer_with(rib, n, cfg)
}

pub fn peer_with(rib: &mut Rib, n: u8, cfg: PeerConfig) -> PeerId {
    let id = rib.add_peer(cfg).unwrap();
    rib.peer_up(
        id,
        SessionInfo::new(rid(n), Some(Ipv4Addr::new(192, 0, 2, 1))),
        Instant::now(),
    )
    .unwrap();
    id
}

pub fn path(asns: &[u32]) -> AsPath {
    AsPath {
        segments: if asns.is_empty() {
            vec![]
        } else {
            vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: asns.to_vec(),
            }]
        },
    }
}

pub fn attrs(asns: &[u32], nh: &str) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(path(asns)),
        next_hop: Some(nh.parse().unwrap()),
        ..Default::default()
    }
}

pub fn announce(prefixes: &[&str], a: PathAttributes) -> Update {
    Update {
        attributes: a,
        nlri: prefixes
            .iter()
            .map(|p| Nlri::new(p.parse().unwrap()))
            .collect(),
        ..Default::default()
    }
}

pub fn withdraw(prefixes: &[&str]) -> Update {
    Update {
        withdrawn: prefixes
            .iter()
            .map(|p| Nlri::new(p.parse().unwrap()))
            .collect(),
        ..Default::default()
    }
}

/// Drain a peer's changes (dropping the End-of-RIB list).
pub fn changes(rib: &mut Rib, p: PeerId) -> Vec<OutChange> {
    rib.take_output(p).unwrap().changes
}
