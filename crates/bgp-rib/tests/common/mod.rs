//! Shared helpers for the RIB integration tests.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use bgp_proto::wire::{decode_message, Inbound};
use bgp_proto::{
    AsPath, AsSegment, CodecContext, Family, MpNextHop, MpNlri, Nlri, Origin, PathAttributes,
    SegmentType, Update,
};
use bgp_rib::{Attrs, PeerConfig, PeerId, Rib, RibConfig, RibError, RouteAttrs, SessionInfo};
use bytes::Bytes;

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

/// One route as a peer receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutChange {
    pub family: Family,
    /// With the path id when ADD-PATH is negotiated.
    pub nlri: Nlri,
    /// `None` = withdrawn. The next hop is in [`RouteAttrs::next_hop`], as the RIB keeps it.
    pub attrs: Option<Attrs>,
}

/// What a peer receives from one drain.
#[derive(Clone, Debug, Default)]
pub struct Sent {
    /// In the order of the UPDATEs: withdrawals first, then announcements by attribute set.
    pub changes: Vec<OutChange>,
    pub end_of_rib: Vec<Family>,
}

impl Sent {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.end_of_rib.is_empty()
    }
}

/// Drain everything queued for `p` with `Rib::take_encoded` (the one drain) and decode the
/// UPDATEs as the peer would.
pub fn take(rib: &mut Rib, p: PeerId) -> Result<Sent, RibError> {
    let mut frames = Vec::new();
    rib.take_encoded(p, usize::MAX, &mut frames)?;
    let codec = rib.session(p).map(|s| s.codec.clone()).unwrap_or_default();
    Ok(decode(&frames, &codec))
}

/// Decode `frames` sent on a session with codec parameters `sent_with` (ours), as the
/// receiving side parses them. Panics on anything a correct speaker would not send.
pub fn decode(frames: &[Bytes], sent_with: &CodecContext) -> Sent {
    let ctx = CodecContext {
        four_octet_as: sent_with.four_octet_as,
        extended_message: sent_with.extended_message,
        add_path_receive: sent_with.add_path_send.clone(),
        add_path_send: Vec::new(),
        external: false,
    };
    let mut sent = Sent::default();
    for f in frames {
        let d = match decode_message(f, &ctx) {
            Ok(Inbound::Update(d)) => d,
            other => panic!("not a valid UPDATE: {other:?}"),
        };
        assert!(d.treat_as_withdraw.is_none(), "{:?}", d.treat_as_withdraw);
        assert!(d.discarded.is_empty(), "{:?}", d.discarded);
        let u = d.update;
        if let Some(family) = u.end_of_rib() {
            sent.end_of_rib.push(family);
            continue;
        }
        let mut withdraw = |family: Family, nlri: &[Nlri]| {
            for n in nlri {
                sent.changes.push(OutChange {
                    family,
                    nlri: *n,
                    attrs: None,
                });
            }
        };
        withdraw(Family::IPV4_UNICAST, &u.withdrawn);
        if let Some(m) = &u.mp_unreach {
            if let MpNlri::Unicast(v) = &m.nlri {
                withdraw(m.family, v);
            }
        }
        let mut attrs = u.attributes;
        let nh4 = attrs.next_hop.take();
        let mut announce = |family: Family, next_hop: Option<MpNextHop>, nlri: &[Nlri]| {
            let a: Attrs = Arc::new(RouteAttrs {
                attrs: attrs.clone(),
                next_hop,
            });
            for n in nlri {
                sent.changes.push(OutChange {
                    family,
                    nlri: *n,
                    attrs: Some(a.clone()),
                });
            }
        };
        if !u.nlri.is_empty() {
            announce(Family::IPV4_UNICAST, nh4.map(MpNextHop::V4), &u.nlri);
        }
        if let Some(r) = u.mp_reach {
            if let MpNlri::Unicast(v) = &r.nlri {
                announce(r.family, Some(r.next_hop.clone()), v);
            }
        }
    }
    sent
}

/// Drain a peer's changes (dropping the End-of-RIB list).
pub fn changes(rib: &mut Rib, p: PeerId) -> Vec<OutChange> {
    take(rib, p).unwrap().changes
}
