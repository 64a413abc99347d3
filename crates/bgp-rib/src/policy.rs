//! Declarative routing policy: ordered rules of matches and actions, serde-serializable so the
//! daemon reads it from TOML, compiled once ([`Policy::compile`]) and evaluated per route.
//!
//! # Model
//! A [`Policy`] is a list of [`Rule`]s tried in order, then a default verdict. A rule matches
//! when *every* condition set in its [`Match`] holds (conditions left out do not constrain;
//! list-valued conditions hold when *any* element matches). A matching rule first applies its
//! modifications ([`Modify`]), then its [`RuleAction`]: `accept` and `reject` end evaluation,
//! `continue` goes on to the next rule, which sees the modified route. When no rule ends
//! evaluation the policy's `default` verdict applies (reject unless configured, in the spirit of
//! RFC 8212 for eBGP).
//!
//! The same policy language serves three attachment points in the RIB: a peer's import policy
//! (the peer conditions name the peer the route came from), a peer's export policy (they name
//! the peer the route is going to) and the FIB policy (no peer; chooses tunnel device, install
//! mode and kernel metric).
//!
//! # TOML example
//! ```toml
//! default = "reject"
//! [[rules]]
//! name = "pod-interfaces"
//! match = { interface = ["cali*", "kube-ipvs*"] }
//! action = "reject"
//! [[rules]]
//! name = "blocks"
//! match = { prefix_in = [{ prefix = "10.65.0.0/26" }], source = ["static"] }
//! set = { add_community = ["65000:100"] }
//! action = "accept"
//! ```

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use bgp_proto::{AsPath, Community, LargeCommunity, PathAttributes};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Offset used by Calico/BIRD to map BGP LOCAL_PREF to a kernel metric and back:
/// `metric = 2147483647 - local_pref` (REFERENCE section 1).
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

/// A prefix with an allowed length range.
///
/// Without `ge`, `le` or `orlonger` only the prefix itself matches ("equal"). `orlonger`
/// allows every more specific prefix; `ge`/`le` bound the length (`ge` alone means up to the
/// host length, `le` alone means from the prefix's own length).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct PrefixRange {
    pub prefix: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ge: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub le: Option<u8>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub orlonger: bool,
}

impl PrefixRange {
    /// Exactly this prefix.
    pub fn exact(prefix: IpNet) -> Self {
        PrefixRange {
            prefix,
            ge: None,
            le: None,
            orlonger: false,
        }
    }

    /// This prefix or any more specific one.
    pub fn orlonger(prefix: IpNet) -> Self {
        PrefixRange {
            orlonger: true,
            ..Self::exact(prefix)
        }
    }

    /// More specifics of `prefix` whose length lies in `ge..=le`.
    pub fn range(prefix: IpNet, ge: u8, le: u8) -> Self {
        PrefixRange {
            ge: Some(ge),
            le: Some(le),
            ..Self::exact(prefix)
        }
    }

    /// The inclusive length bounds this range allows.
    fn bounds(&self) -> (u8, u8) {
        let own = self.prefix.prefix_len();
        let max = self.prefix.max_prefix_len();
        match (self.ge, self.le, self.orlonger) {
            (None, None, false) => (own, own),
            (None, None, true) => (own, max),
            (Some(ge), None, _) => (ge, max),
            (None, Some(le), _) => (own, le),
            (Some(ge), Some(le), _) => (ge, le),
        }
    }

    fn validate(&self) -> Result<(), String> {
        let own = self.prefix.prefix_len();
        let max = self.prefix.max_prefix_len();
        let (lo, hi) = self.bounds();
        if lo < own || hi > max || lo > hi {
            return Err(format!(
                "prefix range {} ge {:?} le {:?}: need {own} <= ge <= le <= {max}",
                self.prefix, self.ge, self.le
            ));
        }
        Ok(())
    }

    /// Whether `p` lies in this range.
    pub fn contains(&self, p: &IpNet) -> bool {
        let (lo, hi) = self.bounds();
        let len = p.prefix_len();
        len >= lo && len <= hi && self.prefix.contains(p)
    }
}

/// Inclusive range of kernel route metrics (`max = 1023` reads "below 1024").
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MetricRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

impl MetricRange {
    pub fn contains(&self, m: u32) -> bool {
        self.min.is_none_or(|lo| m >= lo) && self.max.is_none_or(|hi| m <= hi)
    }
}

/// A standard community written `"65000:100"` or by well-known name (`"no_export"`,
/// `"no_advertise"`, `"no_export_subconfed"`, `"llgr_stale"`, `"no_llgr"`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct StdCommunity(pub Community);

impl FromStr for StdCommunity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let c = match s {
            "no_export" => Community::NO_EXPORT,
            "no_advertise" => Community::NO_ADVERTISE,
            "no_export_subconfed" => Community::NO_EXPORT_SUBCONFED,
            "llgr_stale" => Community::LLGR_STALE,
            "no_llgr" => Community::NO_LLGR,
            _ => {
                let (a, b) = s
                    .split_once(':')
                    .ok_or_else(|| format!("community {s:?}: expected ASN:VALUE"))?;
                let a: u16 = a.parse().map_err(|e| format!("community {s:?}: {e}"))?;
                let b: u16 = b.parse().map_err(|e| format!("community {s:?}: {e}"))?;
                Community::new(a, b)
            }
        };
        Ok(StdCommunity(c))
    }
}

impl Serialize for StdCommunity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StdCommunity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A large community written `"64512:1:2"` (RFC 8092).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct LargeCommunityValue(pub LargeCommunity);

impl FromStr for LargeCommunityValue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut it = s.split(':');
        let mut next = || -> Result<u32, String> {
            it.next()
                .ok_or_else(|| format!("large community {s:?}: expected A:B:C"))?
                .parse()
                .map_err(|e| format!("large community {s:?}: {e}"))
        };
        let (global, local1, local2) = (next()?, next()?, next()?);
        if it.next().is_some() {
            return Err(format!("large community {s:?}: expected A:B:C"));
        }
        Ok(LargeCommunityValue(LargeCommunity {
            global,
            local1,
            local2,
        }))
    }
}

impl Serialize for LargeCommunityValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LargeCommunityValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
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
    fn origin(self) -> bgp_proto::Origin {
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
    fn is_empty(&self) -> bool {
        *self == Modify::default()
    }

    fn touches_attributes(&self) -> bool {
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

    fn touches_outcome(&self) -> bool {
        !self.prepend_path.is_empty()
    }
}

/// Error compiling a policy.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("rule {rule}: invalid AS path regex: {message}")]
    Regex { rule: String, message: String },
    #[error("rule {rule}: {message}")]
    PrefixRange { rule: String, message: String },
}

/// The peer a policy is evaluated for.
#[derive(Copy, Clone, Debug)]
pub struct PeerView<'a> {
    pub name: &'a str,
    pub peer_type: PeerType,
}

/// Kernel facts of a kernel-learned or connected route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KernelInfo {
    pub ifname: Option<String>,
    pub metric: Option<u32>,
    pub protocol: Option<u8>,
}

/// What a policy sees of a route.
#[derive(Copy, Clone, Debug)]
pub struct RouteView<'a> {
    pub prefix: IpNet,
    pub attrs: &'a PathAttributes,
    pub next_hop: Option<IpAddr>,
    /// Interface the next hop of a BGP route is reached through (BIRD's `ifname` of a
    /// route with a recursive gateway), when the resolver knows it.
    pub next_hop_interface: Option<&'a str>,
    pub source: RouteSource,
    pub kernel: Option<&'a KernelInfo>,
    pub peer: Option<PeerView<'a>>,
}

/// Result of evaluating a policy on an accepted route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted<'a> {
    /// The attributes after modification (borrowed when untouched).
    pub attrs: Cow<'a, PathAttributes>,
    /// MED was set by policy (so eBGP export keeps it).
    pub med_set: bool,
    pub next_hop: Option<NextHopAction>,
    pub metric: Option<u32>,
    pub tunnel_device: Option<String>,
    pub install: Option<InstallMode>,
    /// Prepends requested: (ASN or None for our own, count), in order.
    pub prepend: Option<Prepend>,
    /// [`Modify::prepend_path`] of every applied rule, front first: the RIB puts them in
    /// front of the path as sent (export) or received (import).
    pub prepend_path: Vec<u32>,
}

impl Accepted<'_> {
    /// Whether the policy changed nothing at all.
    pub fn is_unmodified(&self) -> bool {
        matches!(self.attrs, Cow::Borrowed(_))
            && !self.med_set
            && self.next_hop.is_none()
            && self.metric.is_none()
            && self.tunnel_device.is_none()
            && self.install.is_none()
            && self.prepend.is_none()
            && self.prepend_path.is_empty()
    }
}

#[derive(Clone, Debug)]
struct CompiledRule {
    name: String,
    matches: Match,
    regex: Option<regex::Regex>,
    set: Modify,
    action: RuleAction,
}

/// A validated policy ready for evaluation.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    rules: Vec<CompiledRule>,
    default: Verdict,
    source: Policy,
}

impl Policy {
    /// A policy with no rules and this default.
    pub fn all(default: Verdict) -> Policy {
        Policy {
            rules: Vec::new(),
            default,
        }
    }

    /// Validate (prefix ranges, regexes) and compile.
    pub fn compile(&self) -> Result<CompiledPolicy, PolicyError> {
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, r) in self.rules.iter().enumerate() {
            let name = r.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
            for range in r
                .matches
                .prefix_in
                .iter()
                .chain(r.matches.prefix_not_in.iter())
                .flatten()
            {
                range
                    .validate()
                    .map_err(|message| PolicyError::PrefixRange {
                        rule: name.clone(),
                        message,
                    })?;
            }
            let regex = match &r.matches.as_path_regex {
                Some(re) => Some(regex::Regex::new(re).map_err(|e| PolicyError::Regex {
                    rule: name.clone(),
                    message: e.to_string(),
                })?),
                None => None,
            };
            rules.push(CompiledRule {
                name,
                matches: r.matches.clone(),
                regex,
                set: r.set.clone(),
                action: r.action,
            });
        }
        Ok(CompiledPolicy {
            rules,
            default: self.default,
            source: self.clone(),
        })
    }

    /// Whether any rule looks at the prefix (family, prefix_in, prefix_not_in).
    pub fn reads_prefix(&self) -> bool {
        self.rules.iter().any(|r| {
            let m = &r.matches;
            m.family.is_some() || m.prefix_in.is_some() || m.prefix_not_in.is_some()
        })
    }
}

/// Shell-style glob with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

fn as_path_starts_with(path: Option<&AsPath>, prefix: &[u32]) -> bool {
    let mut want = prefix.iter();
    let mut next = want.next();
    if let Some(path) = path {
        for seg in &path.segments {
            if seg.kind != bgp_proto::SegmentType::Sequence {
                break;
            }
            for asn in &seg.asns {
                match next {
                    None => return true,
                    Some(w) if w == asn => next = want.next(),
                    Some(_) => return false,
                }
            }
        }
    }
    next.is_none()
}

impl CompiledRule {
    fn matches(&self, r: &RouteView<'_>, attrs: &PathAttributes, metric: Option<u32>) -> bool {
        let m = &self.matches;
        if let Some(f) = m.family {
            let is_v4 = matches!(r.prefix, IpNet::V4(_));
            if is_v4 != (f == IpFamily::Ipv4) {
                return false;
            }
        }
        if let Some(set) = &m.prefix_in {
            if !set.iter().any(|pr| pr.contains(&r.prefix)) {
                return false;
            }
        }
        if let Some(set) = &m.prefix_not_in {
            if set.iter().any(|pr| pr.contains(&r.prefix)) {
                return false;
            }
        }
        if let Some(cs) = &m.community {
            if !cs.iter().any(|c| attrs.communities.contains(&c.0)) {
                return false;
            }
        }
        if let Some(cs) = &m.large_community {
            if !cs.iter().any(|c| attrs.large_communities.contains(&c.0)) {
                return false;
            }
        }
        if let Some(p) = &m.as_path_prefix {
            if !as_path_starts_with(attrs.as_path.as_ref(), p) {
                return false;
            }
        }
        if let Some(re) = &self.regex {
            let s = attrs
                .as_path
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            if !re.is_match(&s) {
                return false;
            }
        }
        if let Some(nets) = &m.next_hop_in {
            match r.next_hop {
                Some(nh) if nets.iter().any(|n| n.contains(&nh)) => {}
                _ => return false,
            }
        }
        if let Some(srcs) = &m.source {
            if !srcs.contains(&r.source) {
                return false;
            }
        }
        if let Some(t) = m.peer_type {
            if r.peer.is_none_or(|p| p.peer_type != t) {
                return false;
            }
        }
        if let Some(globs) = &m.peer_name {
            match r.peer {
                Some(p) if globs.iter().any(|g| glob_match(g, p.name)) => {}
                _ => return false,
            }
        }
        if let Some(globs) = &m.interface {
            let ifname = r
                .kernel
                .and_then(|k| k.ifname.as_deref())
                .or(r.next_hop_interface);
            match ifname {
                Some(ifn) if globs.iter().any(|g| glob_match(g, ifn)) => {}
                _ => return false,
            }
        }
        if let Some(range) = &m.metric {
            match metric {
                Some(v) if range.contains(v) => {}
                _ => return false,
            }
        }
        if let Some(protos) = &m.kernel_protocol {
            match r.kernel.and_then(|k| k.protocol) {
                Some(p) if protos.contains(&p) => {}
                _ => return false,
            }
        }
        if let Some(lps) = &m.local_pref {
            if !lps.contains(
                &attrs
                    .local_pref
                    .unwrap_or(crate::decision::DEFAULT_LOCAL_PREF),
            ) {
                return false;
            }
        }
        true
    }
}

impl CompiledPolicy {
    /// The policy this was compiled from.
    pub fn source(&self) -> &Policy {
        &self.source
    }

    /// A policy accepting everything unchanged.
    pub fn accept_all() -> CompiledPolicy {
        CompiledPolicy {
            rules: Vec::new(),
            default: Verdict::Accept,
            source: Policy::all(Verdict::Accept),
        }
    }

    /// A policy rejecting everything.
    pub fn reject_all() -> CompiledPolicy {
        CompiledPolicy {
            rules: Vec::new(),
            default: Verdict::Reject,
            source: Policy::all(Verdict::Reject),
        }
    }

    /// Whether this policy accepts everything without changes (lets callers skip it).
    pub fn is_accept_all(&self) -> bool {
        self.rules.is_empty() && self.default == Verdict::Accept
    }

    /// Whether the outcome may depend on the prefix: when not, routes sharing their
    /// attributes (all the NLRI of one UPDATE) get one evaluation. Matching and setting
    /// attributes cost in proportion to their size (a regex over the AS_PATH, a search
    /// among communities), so evaluating once per NLRI would make one UPDATE's cost its
    /// prefixes times its attributes.
    pub fn reads_prefix(&self) -> bool {
        self.source.reads_prefix()
    }

    /// Evaluate on a route: `None` when rejected.
    pub fn evaluate<'a>(&self, route: &RouteView<'a>) -> Option<Accepted<'a>> {
        let mut out = Accepted {
            attrs: Cow::Borrowed(route.attrs),
            med_set: false,
            next_hop: None,
            metric: None,
            tunnel_device: None,
            install: None,
            prepend: None,
            prepend_path: Vec::new(),
        };
        let mut metric = route.kernel.and_then(|k| k.metric);
        for rule in &self.rules {
            if !rule.matches(route, &out.attrs, metric) {
                continue;
            }
            if !rule.set.is_empty() && rule.action != RuleAction::Reject {
                apply(&rule.set, &mut out, &mut metric);
            }
            match rule.action {
                RuleAction::Accept => return Some(out),
                RuleAction::Reject => return None,
                RuleAction::Continue => {}
            }
        }
        match self.default {
            Verdict::Accept => Some(out),
            Verdict::Reject => None,
        }
    }

    /// Names of the rules, in order (for display).
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }
}

fn apply(set: &Modify, out: &mut Accepted<'_>, metric: &mut Option<u32>) {
    if set.touches_attributes() {
        let a = out.attrs.to_mut();
        if let Some(lp) = set.local_pref {
            a.local_pref = Some(lp);
        }
        if let Some(o) = set.origin {
            a.origin = Some(o.origin());
        }
        if set.local_pref_from_metric {
            if let Some(m) = *metric {
                a.local_pref = Some(METRIC_LOCAL_PREF_BASE.saturating_sub(m));
            }
        }
        if let Some(med) = set.med {
            a.med = Some(med);
            out.med_set = true;
        }
        for c in &set.remove_community {
            a.communities.retain(|x| *x != c.0);
        }
        for c in &set.add_community {
            if !a.communities.contains(&c.0) {
                a.communities.push(c.0);
            }
        }
        for c in &set.remove_large_community {
            a.large_communities.retain(|x| *x != c.0);
        }
        for c in &set.add_large_community {
            if !a.large_communities.contains(&c.0) {
                a.large_communities.push(c.0);
            }
        }
        if let Some(p) = set.prepend {
            // A concrete ASN is applied now; "own AS" is resolved by the RIB on export.
            match p.asn {
                Some(asn) => a
                    .as_path
                    .get_or_insert_with(AsPath::default)
                    .prepend(asn, usize::from(p.count)),
                None => {
                    let prev = out.prepend.map_or(0, |x| x.count);
                    out.prepend = Some(Prepend {
                        asn: None,
                        count: prev.saturating_add(p.count),
                    });
                }
            }
        }
    }
    if let Some(m) = set.metric {
        *metric = Some(m);
        out.metric = Some(m);
    }
    if set.metric_from_local_pref {
        let lp = out.attrs.local_pref.unwrap_or(100);
        let m = METRIC_LOCAL_PREF_BASE.saturating_sub(lp);
        *metric = Some(m);
        out.metric = Some(m);
    }
    if let Some(nh) = &set.next_hop {
        out.next_hop = Some(nh.clone());
    }
    if let Some(dev) = &set.tunnel_device {
        out.tunnel_device = Some(dev.clone());
    }
    if let Some(mode) = set.install {
        out.install = Some(mode);
    }
    if set.touches_outcome() {
        let mut front = set.prepend_path.clone();
        front.append(&mut out.prepend_path);
        out.prepend_path = front;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn view<'a>(prefix: &str, attrs: &'a PathAttributes) -> RouteView<'a> {
        RouteView {
            prefix: net(prefix),
            attrs,
            next_hop: None,
            next_hop_interface: None,
            source: RouteSource::Bgp,
            kernel: None,
            peer: None,
        }
    }

    #[test]
    fn glob() {
        assert!(glob_match("cali*", "cali12345"));
        assert!(glob_match("*.cali", "bpfout.cali"));
        assert!(glob_match("bpf*.cali", "bpfin.cali"));
        assert!(!glob_match("bpf*.cali", "bpfin.calico"));
        assert!(glob_match("eth?", "eth0"));
        assert!(!glob_match("eth?", "eth10"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }

    #[test]
    fn prefix_ranges() {
        let exact = PrefixRange::exact(net("10.0.0.0/24"));
        assert!(exact.contains(&net("10.0.0.0/24")));
        assert!(!exact.contains(&net("10.0.0.0/25")));
        let ol = PrefixRange::orlonger(net("10.0.0.0/24"));
        assert!(ol.contains(&net("10.0.0.128/25")));
        assert!(ol.contains(&net("10.0.0.1/32")));
        assert!(!ol.contains(&net("10.0.0.0/23")));
        assert!(!ol.contains(&net("10.0.1.0/24")));
        let r = PrefixRange::range(net("10.0.0.0/8"), 16, 24);
        assert!(r.contains(&net("10.1.0.0/16")));
        assert!(!r.contains(&net("10.1.1.0/25")));
        assert!(!r.contains(&net("10.0.0.0/8")));
        assert!(!ol.contains(&net("::/0")));
        let bad = PrefixRange::range(net("10.0.0.0/24"), 16, 24);
        assert!(bad.validate().is_err());
    }

    #[test]
    fn communities_parse() {
        assert_eq!(
            "65000:100".parse::<StdCommunity>().unwrap().0,
            Community::new(65000, 100)
        );
        assert_eq!(
            "no_export".parse::<StdCommunity>().unwrap().0,
            Community::NO_EXPORT
        );
        assert!("65536:1".parse::<StdCommunity>().is_err());
        assert!("x".parse::<StdCommunity>().is_err());
        let l: LargeCommunityValue = "4200000000:1:2".parse().unwrap();
        assert_eq!(l.0.global, 4_200_000_000);
        assert!("1:2".parse::<LargeCommunityValue>().is_err());
        assert!("1:2:3:4".parse::<LargeCommunityValue>().is_err());
    }

    #[test]
    fn rule_order_continue_and_default() {
        let p = Policy {
            rules: vec![
                Rule {
                    name: Some("tag".into()),
                    matches: Match::default(),
                    set: Modify {
                        add_community: vec!["65000:1".parse().unwrap()],
                        local_pref: Some(200),
                        ..Default::default()
                    },
                    action: RuleAction::Continue,
                },
                Rule {
                    name: Some("drop-small".into()),
                    matches: Match {
                        prefix_in: Some(vec![PrefixRange::range(net("0.0.0.0/0"), 25, 32)]),
                        ..Default::default()
                    },
                    set: Modify::default(),
                    action: RuleAction::Reject,
                },
                Rule {
                    name: None,
                    matches: Match {
                        community: Some(vec!["65000:1".parse().unwrap()]),
                        ..Default::default()
                    },
                    set: Modify {
                        med: Some(5),
                        ..Default::default()
                    },
                    action: RuleAction::Accept,
                },
            ],
            default: Verdict::Reject,
        }
        .compile()
        .unwrap();
        let attrs = PathAttributes::default();
        assert!(p.evaluate(&view("10.0.0.0/26", &attrs)).is_none());
        let a = p.evaluate(&view("10.0.0.0/24", &attrs)).unwrap();
        assert_eq!(a.attrs.local_pref, Some(200));
        assert_eq!(a.attrs.med, Some(5));
        assert!(a.med_set);
        assert_eq!(a.attrs.communities, vec![Community::new(65000, 1)]);
        // Input untouched.
        assert_eq!(attrs, PathAttributes::default());
        assert!(CompiledPolicy::accept_all()
            .evaluate(&view("10.0.0.0/24", &attrs))
            .unwrap()
            .is_unmodified());
    }

    #[test]
    fn as_path_matches() {
        let mut path = AsPath::default();
        path.prepend(64502, 1);
        path.prepend(64501, 1);
        path.prepend(64500, 1);
        let attrs = PathAttributes {
            as_path: Some(path),
            ..Default::default()
        };
        let rule = |m: Match| {
            Policy {
                rules: vec![Rule {
                    name: None,
                    matches: m,
                    set: Modify::default(),
                    action: RuleAction::Accept,
                }],
                default: Verdict::Reject,
            }
            .compile()
            .unwrap()
        };
        let v = view("10.0.0.0/24", &attrs);
        assert!(rule(Match {
            as_path_prefix: Some(vec![64500, 64501]),
            ..Default::default()
        })
        .evaluate(&v)
        .is_some());
        assert!(rule(Match {
            as_path_prefix: Some(vec![64501]),
            ..Default::default()
        })
        .evaluate(&v)
        .is_none());
        assert!(rule(Match {
            as_path_regex: Some("64502$".into()),
            ..Default::default()
        })
        .evaluate(&v)
        .is_some());
        assert!(rule(Match {
            as_path_regex: Some("^64501".into()),
            ..Default::default()
        })
        .evaluate(&v)
        .is_none());
        let bad = Policy {
            rules: vec![Rule {
                name: Some("r".into()),
                matches: Match {
                    as_path_regex: Some("(".into()),
                    ..Default::default()
                },
                set: Modify::default(),
                action: RuleAction::Accept,
            }],
            default: Verdict::Reject,
        };
        assert!(matches!(bad.compile(), Err(PolicyError::Regex { .. })));
    }

    #[test]
    fn peer_next_hop_and_kernel_conditions() {
        let p: Policy = toml::from_str(
            r#"
            default = "accept"
            [[rules]]
            match = { peer_type = "ebgp", peer_name = ["Node_*"], next_hop_in = ["192.168.0.0/16"] }
            action = "reject"
            [[rules]]
            match = { kernel_protocol = [80], metric = { max = 100 } }
            action = "reject"
            "#,
        )
        .unwrap();
        let p = p.compile().unwrap();
        let attrs = PathAttributes::default();
        let mut v = view("10.0.0.0/24", &attrs);
        v.next_hop = Some("192.168.1.1".parse().unwrap());
        v.peer = Some(PeerView {
            name: "Node_10_0_0_1",
            peer_type: PeerType::Ebgp,
        });
        assert!(p.evaluate(&v).is_none());
        v.peer = Some(PeerView {
            name: "Mesh_10_0_0_1",
            peer_type: PeerType::Ebgp,
        });
        assert!(p.evaluate(&v).is_some());
        let k = KernelInfo {
            ifname: Some("tunl0".into()),
            metric: Some(50),
            protocol: Some(80),
        };
        v.kernel = Some(&k);
        assert!(p.evaluate(&v).is_none());
        let k2 = KernelInfo {
            metric: Some(500),
            ..k.clone()
        };
        v.kernel = Some(&k2);
        assert!(p.evaluate(&v).is_some());
    }

    #[test]
    fn serde_round_trip_and_unknown_fields() {
        let text = r#"
            default = "reject"
            [[rules]]
            name = "x"
            match = { prefix_in = [{ prefix = "10.0.0.0/8", ge = 16, le = 24 }], community = ["no_export"], large_community = ["1:2:3"] }
            set = { local_pref = 10, next_hop = "self", prepend = { count = 2 }, install = "no_install", tunnel_device = "tunl0" }
            action = "continue"
            [[rules]]
            set = { next_hop = { address = "10.1.1.1" } }
            action = "accept"
        "#;
        let p: Policy = toml::from_str(text).unwrap();
        assert_eq!(p.rules[0].set.next_hop, Some(NextHopAction::SelfAddress));
        assert_eq!(
            p.rules[1].set.next_hop,
            Some(NextHopAction::Address("10.1.1.1".parse().unwrap()))
        );
        let back: Policy = toml::from_str(&toml::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        let json: Policy = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(json, p);
        assert!(toml::from_str::<Policy>("bogus = 1").is_err());
        assert!(
            toml::from_str::<Policy>("[[rules]]\naction = \"accept\"\nmatch = { nope = 1 }")
                .is_err()
        );
    }

    #[test]
    fn origin_is_set() {
        let p: Policy = toml::from_str(
            "default = \"accept\"\n[[rules]]\nset = { origin = \"igp\" }\naction = \"accept\"",
        )
        .unwrap();
        let attrs = PathAttributes {
            origin: Some(bgp_proto::Origin::Incomplete),
            ..Default::default()
        };
        let a = p
            .compile()
            .unwrap()
            .evaluate(&view("10.0.0.0/24", &attrs))
            .unwrap();
        assert_eq!(a.attrs.origin, Some(bgp_proto::Origin::Igp));
    }

    #[test]
    fn metric_local_pref_mapping() {
        let p: Policy = toml::from_str(
            r#"
            default = "accept"
            [[rules]]
            set = { local_pref_from_metric = true, metric_from_local_pref = true }
            action = "accept"
            "#,
        )
        .unwrap();
        let p = p.compile().unwrap();
        let attrs = PathAttributes::default();
        let k = KernelInfo {
            metric: Some(512),
            ..Default::default()
        };
        let mut v = view("10.0.0.1/32", &attrs);
        v.kernel = Some(&k);
        let a = p.evaluate(&v).unwrap();
        assert_eq!(a.attrs.local_pref, Some(2_147_483_647 - 512));
        assert_eq!(a.metric, Some(512));
    }
}
