//! Compiling a [`Policy`] (validated prefix ranges, compiled regexes) and evaluating it on
//! a route: what a policy sees ([`RouteView`]) and what an accepted route becomes
//! ([`Accepted`]).

use std::borrow::Cow;
use std::net::IpAddr;

use bgp_proto::{AsPath, PathAttributes};
use ipnet::IpNet;

use super::model::{
    InstallMode, IpFamily, Match, Modify, NextHopAction, PeerType, Policy, Prepend, RouteSource,
    RuleAction, Verdict, METRIC_LOCAL_PREF_BASE,
};
use crate::attrs::DEFAULT_LOCAL_PREF;

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
            if !lps.contains(&attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF)) {
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
        let lp = out.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF);
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
