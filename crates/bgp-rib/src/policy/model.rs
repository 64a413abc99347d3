//! The policy as written in configuration: a [`Policy`] is ordered [`Rule`]s of
//! conditions ([`Match`]) and modifications ([`Modify`]) with an action, then a default
//! [`Verdict`]. Plain serde data (TOML in the daemon's configuration); validation and
//! evaluation are in `eval`.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::values::{LargeCommunityValue, MetricRange, PrefixRange, StdCommunity};

/// Offset used by Calico/BIRD to map BGP LOCAL_PREF to a kernel metric and back:
/// `metric = 2147483647 - local_pref` (what Calico programs and BIRD exports).
pub const METRIC_LOCAL_PREF_BASE: u32 = 2_147_483_647;

/// A routing policy as written in configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Policy {
    /// Rules, tried in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Verdict when no rule accepts or rejects.
    #[serde(default)]
    pub default: Verdict,
}

/// Final verdict of a policy.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accept,
    #[default]
    Reject,
}

/// What a matching rule does after applying its modifications.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    Accept,
    Reject,
    /// Keep the modifications and go on with the next rule.
    Continue,
}

/// One policy rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Rule {
    /// Free-form name, shown in errors and `bgpctl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Conditions; all must hold. An empty match matches every route.
    #[serde(default, rename = "match")]
    pub matches: Match,
    /// Modifications applied when the rule matches (before `action`).
    #[serde(default)]
    pub set: Modify,
    pub action: RuleAction,
}

/// Where a route came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteSource {
    /// Learned from a BGP peer.
    Bgp,
    /// Originated by configuration.
    Static,
    /// Learned from the kernel routing table.
    Kernel,
    /// An interface (connected) route.
    Connected,
}

impl fmt::Display for RouteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RouteSource::Bgp => "bgp",
            RouteSource::Static => "static",
            RouteSource::Kernel => "kernel",
            RouteSource::Connected => "connected",
        })
    }
}

/// Internal or external peer (RFC 4271 section 1.1).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerType {
    Ibgp,
    Ebgp,
}

/// Address family condition.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpFamily {
    Ipv4,
    Ipv6,
}

/// Conditions of a rule. Every condition given must hold; a list holds if any element does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Match {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<IpFamily>,
    /// The prefix lies in one of these ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_in: Option<Vec<PrefixRange>>,
    /// The prefix lies in none of these ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_not_in: Option<Vec<PrefixRange>>,
    /// The route carries one of these standard communities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<Vec<StdCommunity>>,
    /// The route carries one of these large communities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_community: Option<Vec<LargeCommunityValue>>,
    /// The AS_PATH starts (neighbour first) with this sequence of ASNs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_path_prefix: Option<Vec<u32>>,
    /// A regular expression (regex crate syntax) searched in the AS_PATH written as
    /// `"64500 64501 {64502,64503}"`; an absent or empty path is `""`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_path_regex: Option<String>,
    /// The next hop lies in one of these subnets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_in: Option<Vec<IpNet>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Vec<RouteSource>>,
    /// Type of the peer the policy is evaluated for (never matches when there is no peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_type: Option<PeerType>,
    /// Name of that peer, as globs (`*`, `?`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_name: Option<Vec<String>>,
    /// Interface of a kernel/connected route, or the one the next hop of a BGP route is
    /// reached through, as globs; routes without one never match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<Vec<String>>,
    /// Kernel metric of the route; routes without one never match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricRange>,
    /// Kernel routing protocol number (e.g. 3 = boot, 80 = Felix); routes without one never match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_protocol: Option<Vec<u8>>,
    /// LOCAL_PREF is one of these (a route without the attribute counts as 100, RFC 4271
    /// 5.1.5's usual default, as BIRD and the decision process take it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<Vec<u32>>,
}

/// An ORIGIN value to set (RFC 4271 5.1.1).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginValue {
    Igp,
    Egp,
    Incomplete,
}

impl OriginValue {
    pub(super) fn origin(self) -> bgp_proto::Origin {
        match self {
            OriginValue::Igp => bgp_proto::Origin::Igp,
            OriginValue::Egp => bgp_proto::Origin::Egp,
            OriginValue::Incomplete => bgp_proto::Origin::Incomplete,
        }
    }
}

/// Next-hop directive.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextHopAction {
    /// Our own address on the session.
    #[serde(rename = "self")]
    SelfAddress,
    /// Leave the next hop unchanged, even towards eBGP.
    Keep,
    /// This address.
    Address(IpAddr),
}

/// How the kernel component should install a route.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallMode {
    /// `via NH dev DEV`.
    Normal,
    /// `via NH dev DEV onlink` (tunnels).
    Onlink,
    /// Direct when the next hop is inside a connected subnet of this host, `onlink` through
    /// the tunnel device otherwise (Calico's IPIP mode `CrossSubnet`).
    CrossSubnet,
    /// A blackhole route (local blocks).
    Blackhole,
    /// Advertise but do not install.
    NoInstall,
}

/// AS prepend action: `asn` (our own AS when absent) `count` times.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Prepend {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    pub count: u8,
}

/// Modifications of a rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Modify {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    /// ORIGIN (BIRD announces routes of other protocols with IGP; bgpd's kernel routes
    /// are INCOMPLETE unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,
    /// Kernel metric for the FIB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    /// Kernel metric := 2147483647 − LOCAL_PREF (Calico's mapping).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub metric_from_local_pref: bool,
    /// LOCAL_PREF := 2147483647 − kernel metric (the inverse, for learned kernel routes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local_pref_from_metric: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_community: Vec<StdCommunity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_community: Vec<StdCommunity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_large_community: Vec<LargeCommunityValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_large_community: Vec<LargeCommunityValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepend: Option<Prepend>,
    /// ASNs put in front of the AS_PATH as it leaves this speaker, first one first: after
    /// our own AS towards an eBGP peer (BIRD filters run on the path with it), in front of
    /// the received path on import. A later rule's ASNs go in front of an earlier rule's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prepend_path: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<NextHopAction>,
    /// Kernel device to route through (e.g. `tunl0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<InstallMode>,
}

impl Modify {
    pub(super) fn is_empty(&self) -> bool {
        *self == Modify::default()
    }

    pub(super) fn touches_attributes(&self) -> bool {
        self.local_pref.is_some()
            || self.origin.is_some()
            || self.med.is_some()
            || self.local_pref_from_metric
            || !self.add_community.is_empty()
            || !self.remove_community.is_empty()
            || !self.add_large_community.is_empty()
            || !self.remove_large_community.is_empty()
            || self.prepend.is_some()
    }

    pub(super) fn touches_outcome(&self) -> bool {
        !self.prepend_path.is_empty()
    }
}
