//! `BGPFilter` rules as bgpd policy rules, with BIRD's semantics of the functions confd
//! renders for them (`'bgp_NAME_importFilterV4'()` and so on):
//!
//! - a rule's conditions all hold (`&&`): CIDR with `Equal` (`net = P`), `NotEqual`,
//!   `In` (`net ~ P`: P or inside it), `NotIn`, optionally a prefix length range (then
//!   `net ~ [ P{min,max} ]`; `Equal`/`NotEqual` against a range compare a prefix with a set,
//!   which BIRD answers "not the same": never equal); `source: RemotePeers` (learned over
//!   BGP); `interface` (a pattern on the route's interface); one community; an AS path
//!   prefix (`bgp_path ~ [= A B * =]`); a priority (LOCAL_PREF = 2147483647 − priority);
//!   `peerType` (iBGP: same AS on both ends);
//! - operations (add a community, prepend ASNs, set the priority) then accept or reject;
//! - a route no rule decides goes on to the next filter, then to Calico's own rules.
//!
//! On export to an eBGP peer BIRD's filters see the AS path with our own AS already in
//! front; an `asPathPrefix` rule is rendered for that path, so export policies of filters
//! with such rules exist per (iBGP, eBGP with local AS N) context.

use ipnet::IpNet;

use bgp_rib::policy::{
    LargeCommunityValue, Match, Modify, PeerType, PrefixRange, RouteSource, Rule, RuleAction,
    StdCommunity, METRIC_LOCAL_PREF_BASE,
};

use super::{DeriveError, Family};
use crate::resource::spec::{BgpFilterSpec, FilterRule};

/// Import or export.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Routes received.
    Import,
    /// Routes sent.
    Export,
}

impl Direction {
    /// `import` / `export`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Import => "import",
            Direction::Export => "export",
        }
    }
}

/// Who an export policy is for, when the filter's rules depend on it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExportContext {
    /// Any peer (the filter has no rule that depends on it).
    Any,
    /// iBGP peers.
    Ibgp,
    /// eBGP peers with our AS on the session.
    Ebgp(u32),
}

/// The rules of `spec` for a direction and family (`None`: the filter has none, and confd
/// does not call it).
pub fn rules_of(spec: &BgpFilterSpec, dir: Direction, f: Family) -> Option<&[FilterRule]> {
    let v = match (dir, f) {
        (Direction::Import, Family::V4) => &spec.import_v4,
        (Direction::Import, Family::V6) => &spec.import_v6,
        (Direction::Export, Family::V4) => &spec.export_v4,
        (Direction::Export, Family::V6) => &spec.export_v6,
    };
    (!v.is_empty()).then_some(v.as_slice())
}

/// The export context a filter's policy needs for a peer.
pub fn export_context(rules: &[FilterRule], same_as: bool, local_as: u32) -> ExportContext {
    if rules.iter().all(|r| r.as_path_prefix.is_empty()) {
        ExportContext::Any
    } else if same_as {
        ExportContext::Ibgp
    } else {
        ExportContext::Ebgp(local_as)
    }
}

/// The policy rules of one filter for a direction, family and context.
pub fn policy_rules(
    name: &str,
    rules: &[FilterRule],
    dir: Direction,
    f: Family,
    ctx: ExportContext,
) -> Result<Vec<Rule>, DeriveError> {
    let what = format!("BGPFilter {name}");
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let label = format!("{name} {}{} #{}", dir.name(), f.suffix(), i + 1);
        if let Some(rule) = policy_rule(r, f, ctx, label).map_err(|m| {
            DeriveError::invalid(
                &what,
                format!(
                    "{}{} rule {}: {m}",
                    dir.name(),
                    f.suffix().to_uppercase(),
                    i + 1
                ),
            )
        })? {
            out.push(rule);
        }
    }
    Ok(out)
}

fn prefix_range(cidr: IpNet, min: Option<i32>, max: Option<i32>) -> PrefixRange {
    let own = i32::from(cidr.prefix_len());
    let full = i32::from(cidr.max_prefix_len());
    let lo = min.map_or(own, |m| m.max(own));
    let hi = max.map_or(full, |m| m.min(full));
    PrefixRange::range(cidr, lo.clamp(0, 128) as u8, hi.clamp(0, 128) as u8)
}

/// One rule; `Ok(None)` when it can never match (and so is left out).
fn policy_rule(
    r: &FilterRule,
    f: Family,
    ctx: ExportContext,
    label: String,
) -> Result<Option<Rule>, String> {
    let action = match r.action.as_str() {
        "Accept" => RuleAction::Accept,
        "Reject" => RuleAction::Reject,
        other => return Err(format!("unexpected action {other:?}")),
    };
    let mut m = Match::default();
    if let Some(c) = r.cidr.as_deref().filter(|c| !c.is_empty()) {
        let op = r
            .match_operator
            .as_deref()
            .filter(|o| !o.is_empty())
            .ok_or("a CIDR needs a matchOperator")?;
        let net: IpNet = c.parse().map_err(|_| format!("{c:?} is not a CIDR"))?;
        if Family::of(net.addr()) != f {
            return Err(format!("{c} is not an {} CIDR", f.suffix()));
        }
        let net = net.trunc();
        let ranged = r
            .prefix_length
            .as_ref()
            .map(|pl| prefix_range(net, pl.min, pl.max));
        match (op, ranged) {
            ("Equal", None) => m.prefix_in = Some(vec![PrefixRange::exact(net)]),
            ("NotEqual", None) => m.prefix_not_in = Some(vec![PrefixRange::exact(net)]),
            ("In", None) => m.prefix_in = Some(vec![PrefixRange::orlonger(net)]),
            ("NotIn", None) => m.prefix_not_in = Some(vec![PrefixRange::orlonger(net)]),
            ("In" | "NotIn", Some(range)) if range.ge > range.le => {
                // BIRD refuses such a prefix pattern ("Invalid prefix pattern range").
                return Err(format!("prefix length range of {net} is empty"));
            }
            ("In", Some(range)) => m.prefix_in = Some(vec![range]),
            ("NotIn", Some(range)) => m.prefix_not_in = Some(vec![range]),
            // A prefix is never the same as a prefix set.
            ("Equal", Some(_)) => return Ok(None),
            ("NotEqual", Some(_)) => {}
            (other, _) => return Err(format!("unexpected matchOperator {other:?}")),
        }
    }
    match r.source.as_deref() {
        None | Some("") => {}
        Some("RemotePeers") => m.source = Some(vec![RouteSource::Bgp]),
        Some(other) => return Err(format!("unexpected source {other:?}")),
    }
    if let Some(i) = r.interface.as_deref().filter(|i| !i.is_empty()) {
        m.interface = Some(vec![i.to_owned()]);
    }
    if let Some(c) = &r.communities {
        let v = c.values.first().ok_or("communities has no value")?;
        match v.split(':').count() {
            2 => m.community = Some(vec![v.parse::<StdCommunity>()?]),
            3 => m.large_community = Some(vec![v.parse::<LargeCommunityValue>()?]),
            _ => return Err(format!("invalid community {v:?}")),
        }
    }
    if !r.as_path_prefix.is_empty() {
        let mut want: Vec<u32> = r.as_path_prefix.iter().map(|a| a.0).collect();
        if let ExportContext::Ebgp(local_as) = ctx {
            // BIRD's path starts with our own AS; the rest must follow it.
            if want.first() != Some(&local_as) {
                return Ok(None);
            }
            want.remove(0);
        }
        if !want.is_empty() {
            m.as_path_prefix = Some(want);
        }
    }
    if let Some(p) = r.priority {
        m.local_pref = Some(vec![priority_to_local_pref(p)?]);
    }
    match r.peer_type.as_deref() {
        None | Some("") => {}
        Some("iBGP") => m.peer_type = Some(PeerType::Ibgp),
        Some("eBGP") => m.peer_type = Some(PeerType::Ebgp),
        Some(other) => return Err(format!("unexpected peerType {other:?}")),
    }
    let mut set = Modify::default();
    for op in &r.operations {
        if let Some(c) = &op.add_community {
            let v = c.value.as_deref().ok_or("addCommunity has no value")?;
            match v.split(':').count() {
                2 => set.add_community.push(v.parse::<StdCommunity>()?),
                3 => set
                    .add_large_community
                    .push(v.parse::<LargeCommunityValue>()?),
                _ => return Err(format!("invalid community {v:?}")),
            }
        } else if let Some(p) = &op.prepend_as_path {
            // Each operation's ASNs go in front of what earlier operations prepended.
            let mut front: Vec<u32> = p.prefix.iter().map(|a| a.0).collect();
            front.append(&mut set.prepend_path);
            set.prepend_path = front;
        } else if let Some(p) = &op.set_priority {
            let v = p.value.ok_or("setPriority has no value")?;
            set.local_pref = Some(priority_to_local_pref(v)?);
        } else {
            return Err("an operation sets nothing".into());
        }
    }
    Ok(Some(Rule {
        name: Some(label),
        matches: m,
        set,
        action,
    }))
}

/// Calico's priority (a kernel metric, lower preferred) as LOCAL_PREF.
fn priority_to_local_pref(p: i64) -> Result<u32, String> {
    u32::try_from(p)
        .ok()
        .filter(|p| (1..METRIC_LOCAL_PREF_BASE).contains(p))
        .map(|p| METRIC_LOCAL_PREF_BASE - p)
        .ok_or_else(|| format!("priority {p} is not within 1..2147483646"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::spec::{CommunityMatch, FilterOperation, PrefixLength, PrependAsPath};
    use crate::resource::AsNumber;

    fn rule(action: &str) -> FilterRule {
        FilterRule {
            action: action.into(),
            ..Default::default()
        }
    }

    fn one(r: FilterRule, ctx: ExportContext) -> Option<Rule> {
        policy_rule(&r, Family::V4, ctx, "t".into()).unwrap()
    }

    #[test]
    fn cidr_operators_and_ranges() {
        let mut r = rule("Accept");
        r.cidr = Some("77.0.0.0/16".into());
        r.match_operator = Some("NotIn".into());
        let p = one(r.clone(), ExportContext::Any).unwrap();
        assert_eq!(
            p.matches.prefix_not_in,
            Some(vec![PrefixRange::orlonger("77.0.0.0/16".parse().unwrap())])
        );
        r.match_operator = Some("In".into());
        r.prefix_length = Some(PrefixLength {
            min: Some(8),
            max: Some(24),
        });
        let p = one(r.clone(), ExportContext::Any).unwrap();
        assert_eq!(
            p.matches.prefix_in,
            Some(vec![PrefixRange::range(
                "77.0.0.0/16".parse().unwrap(),
                16,
                24
            )])
        );
        r.match_operator = Some("Equal".into());
        assert!(
            one(r.clone(), ExportContext::Any).is_none(),
            "never equal to a set"
        );
        r.match_operator = Some("NotEqual".into());
        let p = one(r.clone(), ExportContext::Any).unwrap();
        assert_eq!(p.matches, Match::default(), "always different from a set");
        r.match_operator = None;
        assert!(policy_rule(&r, Family::V4, ExportContext::Any, "t".into()).is_err());
        r.match_operator = Some("In".into());
        assert!(policy_rule(&r, Family::V6, ExportContext::Any, "t".into()).is_err());
    }

    #[test]
    fn operations_priority_and_communities() {
        let mut r = rule("Accept");
        r.priority = Some(100);
        r.communities = Some(CommunityMatch {
            values: vec!["65000:1:2".into()],
        });
        r.operations = vec![
            FilterOperation {
                prepend_as_path: Some(PrependAsPath {
                    prefix: vec![AsNumber(1), AsNumber(2)],
                }),
                ..Default::default()
            },
            FilterOperation {
                prepend_as_path: Some(PrependAsPath {
                    prefix: vec![AsNumber(3)],
                }),
                ..Default::default()
            },
        ];
        let p = one(r, ExportContext::Any).unwrap();
        assert_eq!(p.matches.local_pref, Some(vec![2_147_483_547]));
        assert_eq!(p.matches.large_community.map(|v| v.len()), Some(1));
        assert_eq!(p.set.prepend_path, [3, 1, 2]);
        assert!(policy_rule(&rule("Drop"), Family::V4, ExportContext::Any, "t".into()).is_err());
        let mut bad = rule("Accept");
        bad.operations = vec![FilterOperation::default()];
        assert!(policy_rule(&bad, Family::V4, ExportContext::Any, "t".into()).is_err());
    }

    #[test]
    fn as_path_prefix_towards_ebgp_includes_our_as() {
        let mut r = rule("Accept");
        r.as_path_prefix = vec![AsNumber(64512), AsNumber(65001)];
        let rules = [r.clone()];
        assert_eq!(
            export_context(&rules, false, 64512),
            ExportContext::Ebgp(64512)
        );
        let e = one(r.clone(), ExportContext::Ebgp(64512)).unwrap();
        assert_eq!(e.matches.as_path_prefix, Some(vec![65001]));
        assert!(one(r.clone(), ExportContext::Ebgp(65000)).is_none());
        let i = one(r, ExportContext::Ibgp).unwrap();
        assert_eq!(i.matches.as_path_prefix, Some(vec![64512, 65001]));
    }
}
