//! The routes a node originates and the inputs of its filters, per address family: the
//! node's IPAM blocks (`bird_aggr.cfg`), the service ranges it advertises and keeps out of
//! the kernel, the IP pool rules of the export and kernel filters (`bird_ipam.cfg`),
//! communities by prefix, and WireGuard next hops Felix routes itself.
//!
//! Where confd sorts filter statements as strings, the same strings are built here as sort
//! keys, so overlapping pools are tried in the same order.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::node::NodeInfo;
use super::peerings::Peering;
use super::{DeriveError, Family, NodeEnv, Warnings};
use crate::resource::spec::BgpConfigurationSpec;
use crate::resource::Object;
use crate::store::ResourceStore;

/// The kernel metric of normal routes (Calico's default `ipv4NormalRoutePriority`).
pub const DEFAULT_NORMAL_PRIORITY: u32 = 1024;

/// Node label excluding a node from service advertisement.
pub const EXCLUDE_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// A block affine to this node (pending affinities are left out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Block {
    /// The block.
    pub cidr: IpNet,
    /// `""` (implicitly confirmed), `confirmed`, or another state, which keeps the
    /// blackhole but gives the block no export rules.
    pub state: String,
}

impl Block {
    /// Whether export rules aggregate the block (confirmed, implicitly or not).
    pub fn confirmed(&self) -> bool {
        self.state.is_empty() || self.state == "confirmed"
    }

    /// Whether the node originates a blackhole for it (not for host-sized blocks).
    pub fn originated(&self) -> bool {
        self.cidr.prefix_len() < self.cidr.max_prefix_len()
    }
}

/// What an IP pool rule does with a matching route.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolAction {
    /// Accept (export it, or program it in the kernel).
    Accept,
    /// Reject.
    Reject,
}

/// How a kernel route of a pool is installed (Calico BIRD's `krt_tunnel`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tunnel {
    /// Directly.
    None,
    /// Through `tunl0` (IPIP `Always`).
    Always,
    /// Directly when the next hop is in this subnet, else through `tunl0` (`CrossSubnet`).
    CrossSubnet(IpNet),
}

/// One `if (net ~ POOL) then { ... }` statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolRule {
    /// The pool.
    pub cidr: IpNet,
    /// Accept or reject.
    pub action: PoolAction,
    /// Kernel installation (kernel rules only).
    pub tunnel: Tunnel,
    /// Why (confd's comment).
    pub reason: &'static str,
}

/// Communities added to routes inside a CIDR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommunityRule {
    /// Routes inside it get the communities.
    pub cidr: IpNet,
    /// `"A:B"` values.
    pub standard: Vec<String>,
    /// `"A:B:C"` values.
    pub large: Vec<String>,
}

/// A family's routes and filter inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FamilyRoutes {
    /// The family.
    pub family: Family,
    /// The node has a BGP address of this family (else no sessions).
    pub enabled: bool,
    /// Kernel metric of normal routes; more specifics inside a block are exported below it.
    pub normal_priority: u32,
    /// The node's subnet (for IPIP `CrossSubnet`).
    pub local_subnet: Option<IpNet>,
    /// Blocks affine to this node.
    pub blocks: Vec<Block>,
    /// Service ranges this node advertises (blackholes).
    pub static_routes: Vec<IpNet>,
    /// Ranges never programmed into the kernel.
    pub reject_cidrs: Vec<IpNet>,
    /// Service ranges a route reflector passes on.
    pub rr_accept: Vec<IpNet>,
    /// Communities by prefix, in order.
    pub communities: Vec<CommunityRule>,
    /// Export: pools with BGP export disabled (rejected first).
    pub export_disabled_pools: Vec<PoolRule>,
    /// Export: the other pools (accepted last).
    pub export_pools: Vec<PoolRule>,
    /// Kernel programming rules of the pools.
    pub kernel_pools: Vec<PoolRule>,
    /// Interfaces of Felix's tunnel routes, not announced over iBGP.
    pub tunnel_interfaces: Vec<String>,
    /// Next hops of WireGuard peers, whose routes Felix programs.
    pub wireguard_next_hops: Vec<IpAddr>,
    /// Static routes to `reachableBy` peers: (peer/32, gateway).
    pub reachable: Vec<(IpNet, IpAddr)>,
}

/// What the route derivation reads.
pub struct Inputs<'a> {
    /// The resources.
    pub store: &'a ResourceStore,
    /// calico-node's environment.
    pub env: &'a NodeEnv,
    /// This node.
    pub me: &'a NodeInfo,
    /// Every node.
    pub nodes: &'a BTreeMap<String, NodeInfo>,
    /// The default BGPConfiguration.
    pub default_cfg: Option<&'a Object<BgpConfigurationSpec>>,
    /// This node's BGPConfiguration.
    pub node_cfg: Option<&'a Object<BgpConfigurationSpec>>,
    /// The sessions (for `reachableBy` routes).
    pub peerings: &'a [Peering],
}

fn parse_net(s: &str) -> Option<IpNet> {
    s.trim().parse::<IpNet>().ok().map(|n| n.trunc())
}

/// Derives one family.
pub fn family_routes(
    i: &Inputs<'_>,
    family: Family,
    w: &mut Warnings,
) -> Result<FamilyRoutes, DeriveError> {
    let dcfg = i.default_cfg.map(|c| &c.spec);
    let normal_priority = normal_priority(dcfg, family)?;
    let (static_routes, reject_cidrs) = service_routes(i, family, w);
    Ok(FamilyRoutes {
        family,
        enabled: i.me.ip(family).is_some(),
        normal_priority,
        local_subnet: i.me.net(family),
        blocks: blocks(i, family, w),
        static_routes,
        reject_cidrs,
        rr_accept: rr_accept(i, family),
        communities: communities(i, family)?,
        export_disabled_pools: pool_rules(i, family, Purpose::ExportDisabled, w),
        export_pools: pool_rules(i, family, Purpose::ExportEnabled, w),
        kernel_pools: pool_rules(i, family, Purpose::Kernel, w),
        tunnel_interfaces: tunnel_interfaces(dcfg),
        wireguard_next_hops: wireguard(i, family),
        reachable: reachable(i.peerings, family),
    })
}

fn normal_priority(cfg: Option<&BgpConfigurationSpec>, f: Family) -> Result<u32, DeriveError> {
    let v = cfg.and_then(|c| match f {
        Family::V4 => c.ipv4_normal_route_priority,
        Family::V6 => c.ipv6_normal_route_priority,
    });
    match v {
        None => Ok(DEFAULT_NORMAL_PRIORITY),
        Some(p) if (1..=2_147_483_646).contains(&p) => Ok(p as u32),
        Some(p) => Err(DeriveError::invalid(
            "BGPConfiguration default",
            format!("normal route priority {p} is not within 1..2147483646"),
        )),
    }
}

fn blocks(i: &Inputs<'_>, f: Family, w: &mut Warnings) -> Vec<Block> {
    // confd lists them by key, "CIDR with / as -".
    let mut v: BTreeMap<String, Block> = BTreeMap::new();
    for a in i.store.block_affinities() {
        if a.spec.node != i.env.node_name || Family::of_cidr(&a.spec.cidr) != f {
            continue;
        }
        if a.spec.state == "pending" {
            continue;
        }
        let Some(cidr) = parse_net(&a.spec.cidr) else {
            w.push(format!(
                "block affinity {}: {:?} is not a CIDR",
                a.spec.node, a.spec.cidr
            ));
            continue;
        };
        v.insert(
            cidr.to_string().replacen('/', "-", 1),
            Block {
                cidr,
                state: a.spec.state.clone(),
            },
        );
    }
    v.into_values().collect()
}

/// Single addresses are advertised per service by calico-node's Kubernetes route
/// generator, not as ranges.
fn non_single(cidrs: &[String]) -> Vec<String> {
    cidrs
        .iter()
        .filter(|c| {
            if c.contains(':') {
                !c.ends_with("/128")
            } else {
                !c.ends_with("/32")
            }
        })
        .cloned()
        .collect()
}

/// (advertised blackholes, ranges kept out of the kernel) from the default
/// BGPConfiguration's service ranges (calico-node's `updateGlobalRoutes`).
fn service_routes(i: &Inputs<'_>, f: Family, w: &mut Warnings) -> (Vec<IpNet>, Vec<IpNet>) {
    let cfg = i.default_cfg.map(|c| &c.spec);
    let cidrs = |list: Option<&Vec<crate::resource::spec::CidrEntry>>| -> Vec<String> {
        list.map(|l| {
            l.iter()
                .map(|e| e.cidr.clone())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default()
    };
    let cluster = match &i.env.advertise_cluster_ips {
        Some(c) => vec![c.clone()],
        None => cidrs(cfg.map(|c| &c.service_cluster_ips)),
    };
    let external = non_single(&cidrs(cfg.map(|c| &c.service_external_ips)));
    let aggregate = cfg
        .and_then(|c| c.service_load_balancer_aggregation.as_deref())
        .is_none_or(|a| a == "Enabled");
    let lb = if aggregate {
        non_single(&cidrs(cfg.map(|c| &c.service_load_balancer_ips)))
    } else {
        Vec::new()
    };
    let excluded = i.me.labels.get(EXCLUDE_LB_LABEL).map(String::as_str) == Some("true");
    let (mut adv, mut rej) = (BTreeSet::new(), BTreeSet::new());
    for (what, list) in [
        ("cluster", cluster),
        ("external", external),
        ("LoadBalancer", lb),
    ] {
        // calico-node refuses a whole list when one entry does not parse.
        let parsed: Option<Vec<IpNet>> = list.iter().map(|c| parse_net(c)).collect();
        let Some(parsed) = parsed else {
            w.push(format!(
                "service {what} IP ranges {list:?}: not all are CIDRs; none is advertised"
            ));
            continue;
        };
        for n in parsed {
            if Family::of(n.addr()) != f {
                continue;
            }
            rej.insert(n);
            if !excluded {
                adv.insert(n);
            }
        }
    }
    (adv.into_iter().collect(), rej.into_iter().collect())
}

/// A route reflector passes on routes inside the LoadBalancer and external IP ranges.
fn rr_accept(i: &Inputs<'_>, f: Family) -> Vec<IpNet> {
    if i.me.rr_cluster_id.is_empty() {
        return Vec::new();
    }
    let Some(cfg) = i.default_cfg.map(|c| &c.spec) else {
        return Vec::new();
    };
    cfg.service_load_balancer_ips
        .iter()
        .chain(&cfg.service_external_ips)
        .filter(|e| !e.cidr.is_empty() && Family::of_cidr(&e.cidr) == f)
        .filter_map(|e| parse_net(&e.cidr))
        .collect()
}

fn is_community(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    (parts.len() == 2 || parts.len() == 3)
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn communities(i: &Inputs<'_>, f: Family) -> Result<Vec<CommunityRule>, DeriveError> {
    // The node's list, when it has one, else the default one.
    let src = i
        .node_cfg
        .filter(|c| c.spec.prefix_advertisements.is_some())
        .or(i
            .default_cfg
            .filter(|c| c.spec.prefix_advertisements.is_some()));
    let Some(src) = src else {
        return Ok(Vec::new());
    };
    let what = format!("BGPConfiguration {}", src.metadata.name);
    let mut out = Vec::new();
    for adv in src.spec.prefix_advertisements.iter().flatten() {
        if adv.cidr.is_empty() || Family::of_cidr(&adv.cidr) != f {
            continue;
        }
        let cidr = parse_net(&adv.cidr).ok_or_else(|| {
            DeriveError::invalid(
                &what,
                format!("prefixAdvertisements: {:?} is not a CIDR", adv.cidr),
            )
        })?;
        let mut values = BTreeSet::new();
        for c in &adv.communities {
            if is_community(c) {
                values.insert(c.clone());
            } else if let Some(d) = src.spec.communities.iter().find(|d| d.name == *c) {
                values.insert(d.value.clone());
            }
        }
        let mut rule = CommunityRule {
            cidr,
            standard: Vec::new(),
            large: Vec::new(),
        };
        for v in values {
            match v.split(':').count() {
                2 => rule.standard.push(v),
                3 => rule.large.push(v),
                _ => {}
            }
        }
        if !rule.standard.is_empty() || !rule.large.is_empty() {
            out.push(rule);
        }
    }
    Ok(out)
}

/// Which of confd's three pool statement lists.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Purpose {
    ExportDisabled,
    ExportEnabled,
    Kernel,
}

/// Which cluster routes BIRD programs (`BGPConfiguration.programClusterRoutes`):
/// (IPIP pools, unencapsulated pools).
fn cluster_route_policy(cfg: Option<&BgpConfigurationSpec>) -> (bool, bool) {
    match cfg.and_then(|c| c.program_cluster_routes.as_deref()) {
        Some("Disabled") => (false, false),
        Some("Enabled") => (true, true),
        Some("EnabledIPIPOnly") => (true, false),
        _ => (false, true),
    }
}

fn encap(mode: Option<&str>) -> &'static str {
    match mode {
        Some("Always") => "Always",
        Some("CrossSubnet") => "CrossSubnet",
        _ => "Never",
    }
}

fn pool_rules(i: &Inputs<'_>, f: Family, purpose: Purpose, w: &mut Warnings) -> Vec<PoolRule> {
    let cfg = i.default_cfg.map(|c| &c.spec);
    let (bird_ipip, bird_noencap) = cluster_route_policy(cfg);
    let local_subnet = i.me.net(f);
    // IPv4 kernel rules need the node's subnet (for CrossSubnet); IPv6 keeps only rejects.
    if purpose == Purpose::Kernel && f == Family::V4 && local_subnet.is_none() {
        return Vec::new();
    }
    let mut out: Vec<(String, PoolRule)> = Vec::new();
    for p in i.store.ip_pools() {
        if Family::of_cidr(&p.spec.cidr) != f {
            continue;
        }
        let Some(cidr) = parse_net(&p.spec.cidr) else {
            if purpose == Purpose::Kernel {
                w.push(format!(
                    "IPPool {}: {:?} is not a CIDR",
                    p.metadata.name, p.spec.cidr
                ));
            }
            continue;
        };
        let ipip = encap(p.spec.ipip_mode.as_deref());
        let vxlan = encap(p.spec.vxlan_mode.as_deref()) != "Never";
        let kernel = purpose == Purpose::Kernel;
        let rule = |action, tunnel, reason| PoolRule {
            cidr,
            action,
            tunnel,
            reason,
        };
        let r = if p.spec.disable_bgp_export && !kernel {
            rule(PoolAction::Reject, Tunnel::None, "BGP export is disabled.")
        } else if vxlan {
            if kernel {
                rule(
                    PoolAction::Reject,
                    Tunnel::None,
                    "VXLAN routes are handled by Felix.",
                )
            } else {
                rule(PoolAction::Accept, Tunnel::None, "")
            }
        } else if (ipip != "Never" && bird_ipip) || (ipip == "Never" && bird_noencap) {
            let tunnel = match (kernel && f == Family::V4, ipip, local_subnet) {
                (true, "Always", _) => Tunnel::Always,
                (true, "CrossSubnet", Some(s)) => Tunnel::CrossSubnet(s),
                _ => Tunnel::None,
            };
            rule(PoolAction::Accept, tunnel, "")
        } else if kernel {
            rule(
                PoolAction::Reject,
                Tunnel::None,
                "Cluster routes are handled by Felix.",
            )
        } else {
            rule(PoolAction::Accept, Tunnel::None, "")
        };
        let keep = match purpose {
            Purpose::ExportDisabled => r.action == PoolAction::Reject,
            Purpose::ExportEnabled => r.action == PoolAction::Accept,
            // IPv6 kernel rules: only rejects (a final accept follows anyway).
            Purpose::Kernel => f == Family::V4 || r.action == PoolAction::Reject,
        };
        if keep {
            out.push((statement(&r), r));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, r)| r).collect()
}

/// confd's rendering of a pool rule, the sort key of its statement lists.
fn statement(r: &PoolRule) -> String {
    let action = match r.action {
        PoolAction::Accept => "accept",
        PoolAction::Reject => "reject",
    };
    let extra = match &r.tunnel {
        Tunnel::None => String::new(),
        Tunnel::Always => "krt_tunnel=\"tunl0\"; ".to_owned(),
        Tunnel::CrossSubnet(s) => format!(
            "if (defined(bgp_next_hop)&&(bgp_next_hop ~ {s})) then krt_tunnel=\"\"; else krt_tunnel=\"tunl0\"; "
        ),
    };
    let mut s = format!("  if (net ~ {}) then {{ {extra}{action}; }}", r.cidr);
    if !r.reason.is_empty() {
        s.push_str(" # ");
        s.push_str(r.reason);
    }
    s
}

fn tunnel_interfaces(cfg: Option<&BgpConfigurationSpec>) -> Vec<String> {
    let mut v = vec!["*.cali".to_owned(), "*.calico".to_owned()];
    if !cluster_route_policy(cfg).0 {
        // Felix programs the IPIP routes: they are its own, not to be re-advertised.
        v.push("tunl0".to_owned());
    }
    v
}

fn wireguard(i: &Inputs<'_>, f: Family) -> Vec<IpAddr> {
    if i.me.wireguard(f).is_none() {
        return Vec::new();
    }
    let mut v: Vec<(String, IpAddr)> = i
        .nodes
        .values()
        .filter(|n| n.name != i.me.name && n.wireguard(f).is_some())
        .filter_map(|n| n.ip(f))
        .map(|ip| (ip.to_string(), ip))
        .collect();
    v.sort();
    v.dedup();
    v.into_iter().map(|(_, ip)| ip).collect()
}

fn reachable(peerings: &[Peering], f: Family) -> Vec<(IpNet, IpAddr)> {
    let mut out: Vec<(IpNet, IpAddr)> = Vec::new();
    for p in peerings.iter().filter(|p| p.family == f) {
        if let Some(gw) = p.reachable_by {
            let host = IpNet::from(p.address);
            if !out.iter().any(|(h, _)| *h == host) {
                out.push((host, gw));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_values() {
        assert!(is_community("65000:100"));
        assert!(is_community("65000:100:1"));
        assert!(!is_community("name"));
        assert!(!is_community("1:"));
        assert!(!is_community("1:2:3:4"));
    }

    #[test]
    fn statements_sort_like_confd() {
        let r = |c: &str, action, reason| PoolRule {
            cidr: c.parse().unwrap(),
            action,
            tunnel: Tunnel::None,
            reason,
        };
        assert_eq!(
            statement(&r(
                "192.168.2.0/24",
                PoolAction::Reject,
                "BGP export is disabled."
            )),
            "  if (net ~ 192.168.2.0/24) then { reject; } # BGP export is disabled."
        );
        let mut t = r("10.0.0.0/16", PoolAction::Accept, "");
        t.tunnel = Tunnel::CrossSubnet("10.192.0.0/16".parse().unwrap());
        assert!(statement(&t).contains("bgp_next_hop ~ 10.192.0.0/16"));
    }

    #[test]
    fn single_addresses_are_not_ranges() {
        assert_eq!(
            non_single(&[
                "10.0.0.1/32".into(),
                "10.0.0.0/24".into(),
                "fd00::1/128".into()
            ]),
            ["10.0.0.0/24"]
        );
    }
}
