//! Configuration of the kernel FIB side: what to import (selection) and how to export.
//!
//! Both structs deserialize with `deny_unknown_fields`, so a misspelt key is an error rather
//! than a silently ignored setting. docs/config.md, section "Kernel", documents every field
//! with a Calico example.

use serde::{Deserialize, Serialize};

use crate::types::{KernelRoute, RouteKind};

/// The Linux main routing table (`RT_TABLE_MAIN`).
pub const RT_TABLE_MAIN: u32 = 254;
/// `RTPROT_BIRD`: the protocol number Felix expects routes learned over BGP to carry.
pub const RTPROT_BIRD: u8 = 12;

/// Inclusive prefix length range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixLenRange {
    /// Shortest accepted prefix length.
    pub min: u8,
    /// Longest accepted prefix length.
    pub max: u8,
}

impl PrefixLenRange {
    /// Whether `len` is inside the range.
    pub fn contains(&self, len: u8) -> bool {
        self.min <= len && len <= self.max
    }
}

/// Include/exclude interface name globs (`*` matches any run of characters, `?` one
/// character). A name passes when it matches some include glob (or the include list is empty)
/// and matches no exclude glob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterfaceFilter {
    /// Globs an interface must match (empty: all interfaces).
    pub include: Vec<String>,
    /// Globs that reject an interface even when it is included.
    pub exclude: Vec<String>,
}

impl InterfaceFilter {
    /// Whether the interface `name` passes the filter.
    pub fn matches(&self, name: &str) -> bool {
        let included = self.include.is_empty() || self.include.iter().any(|g| glob_match(g, name));
        included && !self.exclude.iter().any(|g| glob_match(g, name))
    }
}

/// Shell-style glob matching supporting `*` and `?` (no character classes), iterative with
/// single-star backtracking, so linear in practice and never recursive.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || n.get(ni) == Some(&c) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// Which kernel routes the watcher reports (kernel → RIB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportConfig {
    /// Import IPv4 routes.
    pub ipv4: bool,
    /// Import IPv6 routes.
    pub ipv6: bool,
    /// Accepted `rtm_protocol` values (empty: any). Calico: `[3, 80]`.
    pub protocols: Vec<u8>,
    /// `rtm_protocol` values never imported (BIRD's `learn` skips 0 unspec, 1 redirect and
    /// 2 kernel, the routes the kernel derives from interface addresses).
    pub exclude_protocols: Vec<u8>,
    /// Accepted route types (empty: any). Calico: `["unicast", "blackhole"]`.
    pub route_types: Vec<RouteKind>,
    /// Routing table to import from.
    pub table: u32,
    /// Accepted IPv4 prefix lengths.
    pub ipv4_prefix_len: PrefixLenRange,
    /// Accepted IPv6 prefix lengths.
    pub ipv6_prefix_len: PrefixLenRange,
    /// Interface filter for routes that have an output interface. Routes without one
    /// (blackholes) are not subject to it.
    pub interfaces: InterfaceFilter,
    /// Protocol number never imported (so we do not re-learn what we installed). Unset: the
    /// export protocol ([`KernelConfig::import_config`] fills it in), or 12 for a watcher
    /// configured on its own.
    pub own_protocol: Option<u8>,
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            ipv4: true,
            ipv6: true,
            protocols: Vec::new(),
            exclude_protocols: Vec::new(),
            route_types: Vec::new(),
            table: RT_TABLE_MAIN,
            ipv4_prefix_len: PrefixLenRange { min: 0, max: 32 },
            ipv6_prefix_len: PrefixLenRange { min: 0, max: 128 },
            interfaces: InterfaceFilter::default(),
            own_protocol: None,
        }
    }
}

impl ImportConfig {
    /// Whether the route passes the selection.
    pub fn selects(&self, r: &KernelRoute) -> bool {
        if r.protocol == self.own_protocol.unwrap_or(RTPROT_BIRD) || r.table != self.table {
            return false;
        }
        let len_ok = match r.prefix {
            ipnet::IpNet::V4(p) => self.ipv4 && self.ipv4_prefix_len.contains(p.prefix_len()),
            ipnet::IpNet::V6(p) => self.ipv6 && self.ipv6_prefix_len.contains(p.prefix_len()),
        };
        if !len_ok {
            return false;
        }
        if (!self.protocols.is_empty() && !self.protocols.contains(&r.protocol))
            || self.exclude_protocols.contains(&r.protocol)
        {
            return false;
        }
        if !self.route_types.is_empty() && !self.route_types.contains(&r.kind) {
            return false;
        }
        // Every path's interface must pass (a multipath route leaving through an excluded
        // device is not ours to announce).
        r.nexthops
            .iter()
            .filter_map(|nh| nh.ifname.as_deref())
            .all(|name| self.interfaces.matches(name))
            && r.nexthops
                .iter()
                .all(|nh| nh.ifindex == 0 || nh.ifname.is_some())
    }
}

/// How LOCAL_PREF maps to the kernel metric (`RTA_PRIORITY`; lower is preferred).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MetricMapping {
    /// Calico's rule: metric = 2147483647 − local_pref (so a higher LOCAL_PREF is preferred).
    Calico,
    /// metric = value − local_pref, saturating at 0.
    SubtractFrom(u32),
    /// The same metric for every route.
    Fixed(u32),
}

/// What to do with our routes when the installer shuts down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitAction {
    /// Leave them in the kernel (forwarding continues; a restarted daemon adopts them).
    Persist,
    /// Delete every route we own.
    Flush,
}

/// How learned routes are installed (RIB → kernel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {
    /// `rtm_protocol` of the routes we install; only routes with this number are ever
    /// replaced or deleted.
    pub protocol: u8,
    /// Routing table to install into.
    pub table: u32,
    /// LOCAL_PREF → metric mapping.
    pub metric: MetricMapping,
    /// Metric used when a route has no LOCAL_PREF (eBGP-learned, originated).
    pub default_metric: u32,
    /// Tunnel device for `tunnel` and cross-subnet next hops (`dev tunl0 onlink`).
    pub tunnel_device: String,
    /// Keep or remove our routes on exit.
    pub on_exit: ExitAction,
    /// Upper bound on netlink requests sent before their acknowledgements are collected.
    pub max_in_flight: usize,
    /// First retry delay for a route the kernel refused (conflict with another protocol's
    /// route, unreachable gateway, missing device), in milliseconds; doubles per attempt.
    pub retry_initial_ms: u64,
    /// Longest retry delay in milliseconds.
    pub retry_max_ms: u64,
    /// Name of a routing policy (defined by the daemon, e.g. bgpd's `[policies.NAME]`)
    /// applied to each best route on its way to the kernel: it chooses the installation form
    /// per route (direct, tunnel, cross-subnet, blackhole, not installed). This crate only
    /// carries the name; the daemon resolves it.
    pub policy: Option<String>,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            protocol: RTPROT_BIRD,
            table: RT_TABLE_MAIN,
            metric: MetricMapping::Calico,
            default_metric: 1024,
            tunnel_device: "tunl0".to_string(),
            on_exit: ExitAction::Persist,
            max_in_flight: 1024,
            retry_initial_ms: 1_000,
            retry_max_ms: 60_000,
            policy: None,
        }
    }
}

impl ExportConfig {
    /// The kernel metric for a route with this LOCAL_PREF.
    pub fn metric_for(&self, local_pref: Option<u32>) -> u32 {
        match (self.metric, local_pref) {
            (MetricMapping::Fixed(m), _) => m,
            (_, None) => self.default_metric,
            (MetricMapping::Calico, Some(lp)) => 2_147_483_647u32.saturating_sub(lp),
            (MetricMapping::SubtractFrom(base), Some(lp)) => base.saturating_sub(lp),
        }
    }
}

/// The whole `[kernel]` configuration section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KernelConfig {
    /// Kernel → RIB.
    pub import: ImportConfig,
    /// RIB → kernel.
    pub export: ExportConfig,
}

impl KernelConfig {
    /// The watcher's selection, never importing the export protocol (unless `own_protocol`
    /// was set explicitly).
    pub fn import_config(&self) -> ImportConfig {
        let mut c = self.import.clone();
        c.own_protocol.get_or_insert(self.export.protocol);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::KernelNextHop;

    #[test]
    fn globs() {
        assert!(glob_match("cali*", "cali12345"));
        assert!(glob_match("cali*", "cali"));
        assert!(!glob_match("cali*", "eth0"));
        assert!(glob_match("*.calico", "vxlan.calico"));
        assert!(!glob_match("*.calico", "vxlan.calico0"));
        assert!(glob_match("tunl0", "tunl0"));
        assert!(!glob_match("tunl0", "tunl01"));
        assert!(glob_match("bpf*.cali", "bpfout.cali"));
        assert!(glob_match("e?h*", "eth0"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b*c", "aXbY"));
        assert!(glob_match("a*b*c", "aXbYc"));
    }

    #[test]
    fn interface_filter() {
        let f = InterfaceFilter {
            include: vec![],
            exclude: vec!["kube-ipvs*".into(), "*.calico".into()],
        };
        assert!(f.matches("cali1"));
        assert!(!f.matches("kube-ipvs0"));
        assert!(!f.matches("vxlan.calico"));
        let f = InterfaceFilter {
            include: vec!["cali*".into()],
            exclude: vec![],
        };
        assert!(f.matches("cali1"));
        assert!(!f.matches("eth0"));
    }

    fn route(prefix: &str, kind: RouteKind, proto: u8, ifname: Option<&str>) -> KernelRoute {
        KernelRoute {
            prefix: prefix.parse().unwrap(),
            kind,
            protocol: proto,
            metric: 1024,
            table: RT_TABLE_MAIN,
            ifname: ifname.map(str::to_string),
            gateway: None,
            nexthops: ifname
                .map(|n| KernelNextHop {
                    gateway: None,
                    ifindex: 7,
                    ifname: Some(n.to_string()),
                    onlink: false,
                    weight: 1,
                })
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn calico_selection() {
        let cfg: ImportConfig = toml::from_str(
            r#"
            protocols = [3, 80]
            route_types = ["unicast", "blackhole"]
            ipv4_prefix_len = { min = 26, max = 32 }
            interfaces = { exclude = ["kube-ipvs*", "*.calico"] }
            "#,
        )
        .unwrap();
        assert!(cfg.selects(&route("10.1.2.0/26", RouteKind::Blackhole, 80, None)));
        assert!(cfg.selects(&route("10.1.2.5/32", RouteKind::Unicast, 3, Some("cali1"))));
        assert!(!cfg.selects(&route("10.1.2.5/32", RouteKind::Unicast, 4, Some("cali1"))));
        assert!(!cfg.selects(&route("10.1.2.5/32", RouteKind::Unicast, 12, Some("cali1"))));
        assert!(!cfg.selects(&route("10.1.0.0/16", RouteKind::Blackhole, 80, None)));
        assert!(!cfg.selects(&route("10.1.2.5/32", RouteKind::Local, 3, Some("cali1"))));
        assert!(!cfg.selects(&route(
            "10.1.2.5/32",
            RouteKind::Unicast,
            3,
            Some("x.calico")
        )));
        let mut other_table = route("10.1.2.0/26", RouteKind::Blackhole, 80, None);
        other_table.table = 100;
        assert!(!cfg.selects(&other_table));
        // An interface we could not name is not selected.
        let mut unnamed = route("10.1.2.5/32", RouteKind::Unicast, 3, Some("cali1"));
        unnamed.nexthops[0].ifname = None;
        assert!(!cfg.selects(&unnamed));
    }

    #[test]
    fn excluded_protocols() {
        // BIRD's kernel `learn`: every protocol but unspec, redirect and kernel.
        let cfg: ImportConfig = toml::from_str("exclude_protocols = [0, 1, 2]").unwrap();
        assert!(cfg.selects(&route("10.1.2.5/32", RouteKind::Unicast, 3, Some("cali1"))));
        assert!(cfg.selects(&route("0.0.0.0/0", RouteKind::Unicast, 16, Some("eth0"))));
        assert!(!cfg.selects(&route("10.0.0.0/24", RouteKind::Unicast, 2, Some("eth0"))));
        assert!(!cfg.selects(&route("10.1.2.0/26", RouteKind::Blackhole, 12, None)));
    }

    #[test]
    fn import_excludes_the_export_protocol() {
        let k: KernelConfig = toml::from_str("[export]\nprotocol = 186").unwrap();
        let imp = k.import_config();
        assert_eq!(imp.own_protocol, Some(186));
        assert!(!imp.selects(&route("10.1.2.0/26", RouteKind::Blackhole, 186, None)));
        assert!(imp.selects(&route("10.1.2.0/26", RouteKind::Blackhole, 12, None)));
    }

    #[test]
    fn unknown_fields_rejected() {
        assert!(toml::from_str::<ImportConfig>("protocol = [3]").is_err());
        assert!(toml::from_str::<ExportConfig>("proto = 12").is_err());
        assert!(toml::from_str::<KernelConfig>("[import]\nfoo = 1").is_err());
    }

    #[test]
    fn metric_mapping() {
        let mut e = ExportConfig::default();
        assert_eq!(e.metric_for(Some(100)), 2_147_483_547);
        assert_eq!(e.metric_for(None), 1024);
        e.metric = MetricMapping::SubtractFrom(1000);
        assert_eq!(e.metric_for(Some(100)), 900);
        assert_eq!(e.metric_for(Some(5000)), 0);
        e.metric = MetricMapping::Fixed(20);
        assert_eq!(e.metric_for(Some(100)), 20);
        let e: ExportConfig =
            toml::from_str("metric = { subtract_from = 4096 }\non_exit = \"flush\"").unwrap();
        assert_eq!(e.metric, MetricMapping::SubtractFrom(4096));
        assert_eq!(e.on_exit, ExitAction::Flush);
        let e: ExportConfig = toml::from_str("metric = \"calico\"").unwrap();
        assert_eq!(e.metric, MetricMapping::Calico);
    }
}
