//! The read model of the routing tables: what [`Speaker::routes`], [`Speaker::routes_page`]
//! and [`Speaker::lookup`] return, and how a caller says which routes it wants.
//!
//! Every value is typed as BGP has it (prefixes as [`IpNet`], the AS path as
//! [`AsPath`], communities as [`Community`] values, the decision step a path lost at as
//! [`DecisionStep`]); rendering them as text is the caller's business (bgpd's control
//! socket renders them as its protocol says, the BIRD-compatible socket as BIRD does).
//!
//! [`Speaker::routes`]: crate::Speaker::routes
//! [`Speaker::routes_page`]: crate::Speaker::routes_page
//! [`Speaker::lookup`]: crate::Speaker::lookup

use std::net::{IpAddr, Ipv4Addr};

use bgp_proto::{AsPath, Community, LargeCommunity, Origin};
use bgp_rib::policy::RouteSource;
use ipnet::IpNet;

/// The decision step at which a path lost to the best one (RFC 4271 9.1.2.2), or why it
/// was not eligible at all (rejected by import policy, a loop, an unresolvable next hop).
pub use bgp_rib::Step as DecisionStep;

/// Most routes one page holds, whatever the caller asks for.
pub(crate) const MAX_PAGE: usize = 10_000;

/// Which table a query reads.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Table {
    /// Loc-RIB: every candidate path, the best ones marked.
    #[default]
    Loc,
    /// Adj-RIB-In: what peers sent, before import policy.
    In,
    /// Adj-RIB-Out: what we announce to peers.
    Out,
}

/// An address family a query is limited to (unicast is the only SAFI the tables hold).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FamilyFilter {
    /// IPv4 unicast.
    Ipv4,
    /// IPv6 unicast.
    Ipv6,
}

/// Which routes [`Speaker::routes`](crate::Speaker::routes) returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteQuery {
    /// Exactly this prefix.
    pub prefix: Option<IpNet>,
    /// Only paths from (Loc-RIB, Adj-RIB-In) or to (Adj-RIB-Out) this peer.
    pub peer: Option<String>,
    /// Which table.
    pub table: Table,
    /// Only this address family.
    pub family: Option<FamilyFilter>,
}

/// Where a page of routes ended: its last entry; pass it back to get the next page.
///
/// Order: Loc-RIB by prefix (IPv4 first) then the prefix's paths; Adj-RIB-In/Out by peer
/// name, prefix, path identifier. Pages are not a snapshot: routes that change between two
/// pages may be missed or seen twice, as in BIRD's `show route`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteCursor {
    /// Adj-RIB-In/Out: the peer of the last entry.
    pub peer: Option<String>,
    /// The prefix of the last entry.
    pub prefix: IpNet,
    /// Loc-RIB: the last entry's index among its prefix's paths; Adj-RIB-In/Out: its
    /// path identifier.
    pub path: u32,
}

/// One path of a routing table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The prefix.
    pub prefix: IpNet,
    /// ADD-PATH path identifier (RFC 7911), where the session to its peer carries them.
    pub path_id: Option<u32>,
    /// Where the path came from.
    pub source: RouteSource,
    /// The peer the path came from (Loc-RIB, Adj-RIB-In) or goes to (Adj-RIB-Out); `None`
    /// for a Loc-RIB path of another source (originated, kernel).
    pub peer: Option<String>,
    /// NEXT_HOP, or the next hop of MP_REACH_NLRI.
    pub next_hop: Option<IpAddr>,
    /// AS_PATH (empty when the path has none).
    pub as_path: AsPath,
    /// ORIGIN.
    pub origin: Option<Origin>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// Standard communities (RFC 1997).
    pub communities: Vec<Community>,
    /// Large communities (RFC 8092).
    pub large_communities: Vec<LargeCommunity>,
    /// ORIGINATOR_ID (RFC 4456 8).
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST (RFC 4456 8), the most recent reflector first.
    pub cluster_list: Vec<Ipv4Addr>,
    /// Loc-RIB: the best path of its prefix.
    pub best: bool,
    /// Loc-RIB: part of the multipath (ECMP) set.
    pub multipath: bool,
    /// Loc-RIB: why this path is not the best; Adj-RIB-In: rejected by import policy.
    pub not_best: Option<DecisionStep>,
    /// Marked stale by graceful restart (RFC 4724) or long-lived graceful restart (RFC
    /// 9494).
    pub stale: bool,
    /// Interface of a kernel route, or the one a BGP path's next hop is reached through
    /// (Loc-RIB, with a `[kernel]` section).
    pub interface: Option<String>,
}
