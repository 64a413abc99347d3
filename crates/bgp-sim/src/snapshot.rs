//! Plain-data views of a node's Loc-RIB, for comparing runs and asserting on outcomes.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr};

use bgp_rib::policy::RouteSource;
use bgp_rib::Rib;
use ipnet::IpNet;

/// One Loc-RIB best path, reduced to what decides forwarding and loop freedom.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LocRibEntry {
    pub prefix: IpNet,
    pub source: RouteSource,
    /// NEXT_HOP of the best path (`None` for originated blackhole blocks).
    pub next_hop: Option<IpAddr>,
    /// Address of the peer the best path came from; `None` for local routes.
    pub learned_from: Option<IpAddr>,
    pub local_pref: Option<u32>,
    /// RFC 4456 ORIGINATOR_ID and CLUSTER_LIST of the best path.
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// Kept from a restarting peer (RFC 4724), waiting for its End-of-RIB.
    pub stale: bool,
}

/// A node's Loc-RIB: every prefix's best path, sorted by prefix.
pub fn loc_rib(rib: &Rib) -> Vec<LocRibEntry> {
    rib.loc_rib()
        .into_iter()
        .map(|(prefix, p)| {
            let a = &p.attrs.attrs;
            LocRibEntry {
                prefix,
                source: p.source,
                next_hop: p.attrs.next_hop_addr(),
                learned_from: p
                    .peer
                    .and_then(|id| rib.peer_config(id).ok())
                    .map(|c| c.address),
                local_pref: a.local_pref,
                originator_id: a.originator_id,
                cluster_list: a.cluster_list.clone(),
                stale: p.stale,
            }
        })
        .collect()
}

/// A digest of a Loc-RIB, for comparing thousands of nodes between runs without keeping
/// every table. Stable within one build of the program (not across Rust versions).
pub fn digest(entries: &[LocRibEntry]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    entries.hash(&mut h);
    h.finish()
}
