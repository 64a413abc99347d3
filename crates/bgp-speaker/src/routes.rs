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
use std::time::SystemTime;

use bgp_proto::{
    Aggregator, AsPath, Community, ExtendedCommunity, LargeCommunity, Origin, PathAttributes,
    RawAttribute,
};
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
    /// With `prefix`: that prefix and every more specific one, instead of exactly it.
    pub longer: bool,
    /// Only paths carrying this community.
    pub community: Option<CommunityFilter>,
}

/// A community a query asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommunityFilter {
    /// A standard community (RFC 1997).
    Standard(Community),
    /// A large community (RFC 8092).
    Large(LargeCommunity),
}

impl std::str::FromStr for CommunityFilter {
    type Err = String;

    /// `ASN:VALUE` or a well-known name (`no-export`, ...) for a standard community,
    /// `GLOBAL:LOCAL1:LOCAL2` for a large one: the configuration's forms.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.matches(':').count() == 2 {
            s.parse::<crate::config::LargeCommunityValue>()
                .map(|v| CommunityFilter::Large(v.0))
        } else {
            s.parse::<crate::config::CommunityValue>()
                .map(|v| CommunityFilter::Standard(v.0))
        }
    }
}

impl RouteQuery {
    /// Whether the query's prefix filter takes `p`.
    pub(crate) fn wants_prefix(&self, p: &IpNet) -> bool {
        match self.prefix.map(|q| q.trunc()) {
            None => true,
            Some(q) if self.longer => q.contains(p),
            Some(q) => q == *p,
        }
    }

    /// Whether the query's community filter takes a path with the attributes `a`.
    pub(crate) fn wants_attributes(&self, a: &PathAttributes) -> bool {
        match &self.community {
            None => true,
            Some(CommunityFilter::Standard(c)) => a.communities.contains(c),
            Some(CommunityFilter::Large(l)) => a.large_communities.contains(l),
        }
    }

    /// Where a walk of the Loc-RIB in prefix order starts for `prefix` and its more
    /// specific prefixes: just before `prefix` itself (prefixes sort by address, then
    /// length, so nothing between that point and `prefix` exists), `None` from the start
    /// of the family.
    pub(crate) fn longer_start(&self) -> Option<IpNet> {
        let q = self.prefix?.trunc();
        let len = q.prefix_len().checked_sub(1)?;
        match q {
            IpNet::V4(n) => ipnet::Ipv4Net::new(n.network(), len).ok().map(IpNet::V4),
            IpNet::V6(n) => ipnet::Ipv6Net::new(n.network(), len).ok().map(IpNet::V6),
        }
    }
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
    /// Extended communities (RFC 4360).
    pub extended_communities: Vec<ExtendedCommunity>,
    /// ATOMIC_AGGREGATE (RFC 4271 5.1.6).
    pub atomic_aggregate: bool,
    /// AGGREGATOR (RFC 4271 5.1.7).
    pub aggregator: Option<Aggregator>,
    /// Only To Customer (RFC 9234).
    pub otc: Option<u32>,
    /// Attributes bgpd does not interpret, passed on as received.
    pub unknown_attributes: Vec<RawAttribute>,
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
    /// Loc-RIB: when the path was last changed (received or originated, or replaced with
    /// other attributes; an identical re-announcement keeps it), to the second. `None`
    /// in Adj-RIB views and route events.
    pub since: Option<SystemTime>,
}

impl Route {
    /// A BGP path of `prefix` with the attributes `a` and the next hop `next_hop` (from
    /// NEXT_HOP or MP_REACH_NLRI); the Loc-RIB marks (`best`, `not_best`, ...) unset.
    pub(crate) fn with_attributes(
        prefix: IpNet,
        path_id: Option<u32>,
        peer: Option<String>,
        a: &PathAttributes,
        next_hop: Option<IpAddr>,
    ) -> Route {
        Route {
            prefix,
            path_id,
            source: RouteSource::Bgp,
            peer,
            next_hop,
            as_path: a.as_path.clone().unwrap_or_default(),
            origin: a.origin,
            local_pref: a.local_pref,
            med: a.med,
            communities: a.communities.to_vec(),
            large_communities: a.large_communities.to_vec(),
            extended_communities: a.extended_communities.to_vec(),
            atomic_aggregate: a.atomic_aggregate,
            aggregator: a.aggregator,
            otc: a.otc,
            unknown_attributes: a.unknown.to_vec(),
            originator_id: a.originator_id,
            cluster_list: a.cluster_list.to_vec(),
            best: false,
            multipath: false,
            not_best: None,
            stale: false,
            interface: None,
            since: None,
        }
    }
}
