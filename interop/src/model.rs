//! A daemon-neutral description of a BGP speaker's configuration and of what
//! its CLI shows, so one test body can drive BIRD, GoBGP, FRR, ExaBGP or bgpd.
//!
//! Each adapter translates [`SpeakerConfig`] into its native configuration
//! and parses its CLI's answers into [`PeerStatus`] and [`RouteView`] (and
//! [`AddPathSeen`]), which the [`crate::Speaker`] trait hands to scenarios.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// Address family (unicast SAFI only so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 unicast (AFI 1, SAFI 1).
    Ipv4,
    /// IPv6 unicast (AFI 2, SAFI 1).
    Ipv6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// The family of a prefix.
    pub fn of_net(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::Ipv4,
            IpNet::V6(_) => Family::Ipv6,
        }
    }

    /// `ipv4` or `ipv6`, as most CLIs and configurations spell it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

/// One BGP neighbor. The session carries the unicast family of its transport
/// (IPv4 session: IPv4 routes; IPv6 session: IPv6 routes), like Calico's
/// separate `bird`/`bird6` sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// The peer's address.
    pub address: IpAddr,
    /// Our address on the session (source address / update-source).
    pub local_address: IpAddr,
    /// The peer's AS number.
    pub remote_as: u32,
    /// Treat the peer as a route-reflector client (iBGP only).
    pub rr_client: bool,
    /// Only accept connections, never connect (where the daemon supports it).
    pub passive: bool,
    /// TCP MD5 signature key (RFC 2385).
    pub password: Option<String>,
    /// ADD-PATH (RFC 7911) for the session's family.
    pub add_path: AddPath,
    /// On an IPv6 session: also carry IPv4 unicast, with IPv6 next hops
    /// (extended next hop, RFC 8950). Rendered by every launcher (bgpd,
    /// BIRD, FRR, GoBGP, ExaBGP).
    pub extended_next_hop: bool,
}

/// ADD-PATH (RFC 7911) directions a speaker announces on a session, from its
/// own point of view.
///
/// FRR announces receive on every session whatever this says (its default);
/// GoBGP sends at most 8 paths per prefix when sending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AddPath {
    /// No ADD-PATH capability.
    #[default]
    Off,
    /// Accepts several paths per prefix from the peer.
    Receive,
    /// Sends several paths per prefix to the peer.
    Send,
    /// Both directions.
    Both,
}

impl AddPath {
    /// True for [`AddPath::Send`] and [`AddPath::Both`].
    pub fn sends(self) -> bool {
        matches!(self, AddPath::Send | AddPath::Both)
    }

    /// True for [`AddPath::Receive`] and [`AddPath::Both`].
    pub fn receives(self) -> bool {
        matches!(self, AddPath::Receive | AddPath::Both)
    }
}

impl Neighbor {
    /// A plain neighbor.
    pub fn new(address: IpAddr, local_address: IpAddr, remote_as: u32) -> Neighbor {
        Neighbor {
            address,
            local_address,
            remote_as,
            rr_client: false,
            passive: false,
            password: None,
            add_path: AddPath::Off,
            extended_next_hop: false,
        }
    }

    /// The family of the session's transport (the family it carries, plus
    /// IPv4 with [`Neighbor::extended_next_hop`]).
    pub fn family(&self) -> Family {
        Family::of(self.address)
    }

    /// True if the session carries `family`'s unicast routes.
    pub fn carries(&self, family: Family) -> bool {
        self.family() == family
            || (family == Family::Ipv4 && self.family() == Family::Ipv6 && self.extended_next_hop)
    }
}

/// A route a speaker originates, with the attributes it should carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// The prefix.
    pub prefix: IpNet,
    /// MULTI_EXIT_DISC to set.
    pub med: Option<u32>,
    /// LOCAL_PREF to set (meaningful over iBGP).
    pub local_pref: Option<u32>,
    /// Standard communities (RFC 1997) as (high, low).
    pub communities: Vec<(u16, u16)>,
    /// Large communities (RFC 8092) as (global, local1, local2).
    pub large_communities: Vec<(u32, u32, u32)>,
}

impl Announce {
    /// An announcement without optional attributes.
    pub fn new(prefix: IpNet) -> Announce {
        Announce {
            prefix,
            med: None,
            local_pref: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
        }
    }

    /// The standard communities as [`RouteView`] shows them (`"a:b"`), in order.
    pub fn community_strings(&self) -> Vec<String> {
        self.communities.iter().map(|c| community(*c)).collect()
    }

    /// The large communities as [`RouteView`] shows them (`"a:b:c"`), in order.
    pub fn large_community_strings(&self) -> Vec<String> {
        self.large_communities
            .iter()
            .map(|c| large_community(*c))
            .collect()
    }
}

/// What a launcher needs to write a daemon's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    /// BGP identifier.
    pub router_id: Ipv4Addr,
    /// Local AS number.
    pub asn: u32,
    /// Sessions.
    pub neighbors: Vec<Neighbor>,
    /// Routes to originate (with ORIGIN IGP).
    pub announce: Vec<Announce>,
    /// Route-reflector cluster id, if this speaker reflects.
    pub cluster_id: Option<Ipv4Addr>,
    /// Install BGP-learned routes into the namespace's kernel table (daemons
    /// that can: BIRD; FRR and GoBGP here run without a FIB).
    pub kernel_export: bool,
    /// Graceful restart (RFC 4724) on every session (BIRD and bgpd).
    pub graceful_restart: bool,
}

impl SpeakerConfig {
    /// A speaker with no neighbors or routes yet.
    pub fn new(router_id: Ipv4Addr, asn: u32) -> SpeakerConfig {
        SpeakerConfig {
            router_id,
            asn,
            neighbors: Vec::new(),
            announce: Vec::new(),
            cluster_id: None,
            kernel_export: false,
            graceful_restart: false,
        }
    }

    /// Our local address for `family`, taken from the first neighbor of that
    /// family (used as the next hop of originated routes where needed).
    pub fn local_address(&self, family: Family) -> Option<IpAddr> {
        self.neighbors
            .iter()
            .find(|n| n.family() == family)
            .map(|n| n.local_address)
    }
}

/// A session as shown by a daemon's CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The neighbor's address.
    pub address: IpAddr,
    /// True when the session is in state Established.
    pub established: bool,
    /// The daemon's own words for the state.
    pub state: String,
}

/// ORIGIN attribute (RFC 4271 section 5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// 0
    Igp,
    /// 1
    Egp,
    /// 2
    Incomplete,
}

/// A route as shown by a daemon's CLI, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteView {
    /// The prefix.
    pub prefix: IpNet,
    /// BGP next hop (global address for IPv6).
    pub next_hop: Option<IpAddr>,
    /// AS_PATH flattened (sets included in order).
    pub as_path: Vec<u32>,
    /// ORIGIN.
    pub origin: Option<Origin>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// Standard communities as `"a:b"`, sorted.
    pub communities: Vec<String>,
    /// Large communities as `"a:b:c"`, sorted.
    pub large_communities: Vec<String>,
    /// ORIGINATOR_ID (RFC 4456), set by route reflectors.
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST (RFC 4456), most recent first.
    pub cluster_list: Vec<Ipv4Addr>,
    /// True if the route was learned over BGP (not originated locally).
    pub learned: bool,
    /// True if this is the best path for the prefix.
    pub best: bool,
    /// Marked stale by graceful restart (where the CLI shows it: bgpd, GoBGP).
    pub stale: bool,
}

impl RouteView {
    pub(crate) fn new(prefix: IpNet) -> RouteView {
        RouteView {
            prefix,
            next_hop: None,
            as_path: Vec::new(),
            origin: None,
            med: None,
            local_pref: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
            originator_id: None,
            cluster_list: Vec::new(),
            learned: false,
            best: false,
            stale: false,
        }
    }

    /// Sorts community lists so comparisons do not depend on CLI ordering.
    pub(crate) fn normalise(mut self) -> RouteView {
        self.communities.sort();
        self.large_communities.sort();
        self
    }
}

/// Formats a community the way [`RouteView`] stores it.
pub fn community(c: (u16, u16)) -> String {
    format!("{}:{}", c.0, c.1)
}

/// Formats a large community the way [`RouteView`] stores it.
pub fn large_community(c: (u32, u32, u32)) -> String {
    format!("{}:{}:{}", c.0, c.1, c.2)
}

/// ADD-PATH (RFC 7911) for IPv4 unicast on one session as a speaker's CLI
/// shows it: negotiated means both sides announced the matching directions
/// (RFC 7911 section 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPathSeen {
    /// This speaker may send several paths (it announced send, the neighbor
    /// receive).
    pub sends: bool,
    /// This speaker may receive several paths.
    pub receives: bool,
}

/// Configurations shared by the adapters' unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{AddPath, Neighbor, SpeakerConfig};

    /// A speaker on 10.0.0.1/fd00::1 with an ADD-PATH IPv4 session and an
    /// IPv6 session carrying IPv4 by extended next hop.
    pub(crate) fn feature_config() -> SpeakerConfig {
        let mut cfg = SpeakerConfig::new("10.0.0.1".parse().unwrap(), 65010);
        let mut a = Neighbor::new(
            "10.0.0.2".parse().unwrap(),
            "10.0.0.1".parse().unwrap(),
            65020,
        );
        a.add_path = AddPath::Both;
        cfg.neighbors.push(a);
        let mut b = Neighbor::new(
            "fd00::2".parse().unwrap(),
            "fd00::1".parse().unwrap(),
            65020,
        );
        b.extended_next_hop = true;
        cfg.neighbors.push(b);
        cfg
    }
}
