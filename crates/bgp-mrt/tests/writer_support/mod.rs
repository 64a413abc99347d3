//! What the writer tests share: a peer table with an IPv4 and an IPv6 peer (one with a
//! 4-octet AS), and the attributes of a typical route.

use std::net::{IpAddr, Ipv4Addr};

use bgp_mrt::{Peer, PeerIndexTable};
use bgp_proto::{
    AsPath, AsSegment, Community, LargeCommunity, Origin, PathAttributes, SegmentType,
};

/// Peer 0: 192.0.2.1, AS 65001; peer 1: 2001:db8::2, AS 4200000000.
pub fn peers() -> PeerIndexTable {
    PeerIndexTable {
        collector_bgp_id: Ipv4Addr::new(192, 0, 2, 254),
        view_name: "bgpd".into(),
        peers: vec![
            Peer {
                bgp_id: Ipv4Addr::new(10, 0, 0, 1),
                ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                asn: 65001,
            },
            Peer {
                bgp_id: Ipv4Addr::new(10, 0, 0, 2),
                ip: "2001:db8::2".parse().unwrap(),
                asn: 4_200_000_000,
            },
        ],
    }
}

/// ORIGIN IGP, AS_PATH `asns`, MED 10, LOCAL_PREF 100, community 65000:1 and a large
/// community (which `bgpdump -m` does not print).
pub fn path_attrs(asns: &[u32]) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: asns.to_vec(),
            }],
        }),
        med: Some(10),
        local_pref: Some(100),
        communities: vec![Community::new(65000, 1)],
        large_communities: vec![LargeCommunity {
            global: 4_200_000_000,
            local1: 1,
            local2: 2,
        }],
        ..Default::default()
    }
}
