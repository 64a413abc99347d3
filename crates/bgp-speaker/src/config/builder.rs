//! Building a [`Config`] in code, as an embedding agent does: typed values, no TOML. What
//! is not set has the default a configuration file without it has, and [`build`] checks
//! the rules a file is checked by (check.rs), so a built configuration and a loaded one
//! are the same value.
//!
//! [`build`]: ConfigBuilder::build

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};

use super::{
    check, Config, ConfigError, GlobalConfig, GracefulRestartConfig, KernelSection, Originate,
    PeerConfig, PolicyDef,
};

/// A [`Config`] being built; see [`Config::builder`].
///
/// ```
/// use bgp_speaker::config::policy::{Match, Rule, RuleAction, Verdict};
/// use bgp_speaker::config::{Config, Originate, PeerConfig, PolicyDef};
/// use bgp_speaker::RouteSource;
///
/// // Announce only what we originate; take everything.
/// let ours = PolicyDef {
///     rules: vec![Rule {
///         name: Some("originated".into()),
///         matches: Match {
///             source: Some(vec![RouteSource::Static]),
///             ..Match::default()
///         },
///         set: Default::default(),
///         action: RuleAction::Accept,
///     }],
///     default: Verdict::Reject,
/// };
/// let mut upstream = PeerConfig::new("upstream", "192.0.2.1".parse()?, 64500);
/// upstream.import = vec!["all".into()];
/// upstream.export = vec!["ours".into()];
/// let config = Config::builder(64512, "192.0.2.2".parse()?)
///     .listen(["192.0.2.2:179".parse()?])
///     .policy("all", PolicyDef::all(Verdict::Accept))
///     .policy("ours", ours)
///     .peer(upstream)
///     .originate(Originate::new("10.244.1.0/26".parse()?))
///     .build()?;
/// assert_eq!(config.peers.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until built"]
pub struct ConfigBuilder {
    global: GlobalConfig,
    peers: Vec<PeerConfig>,
    policies: Vec<(String, PolicyDef)>,
    originate: Vec<Originate>,
    kernel: Option<KernelSection>,
}

impl Config {
    /// Starts a configuration for AS `asn` with BGP identifier `router_id`.
    pub fn builder(asn: u32, router_id: Ipv4Addr) -> ConfigBuilder {
        ConfigBuilder {
            global: GlobalConfig::new(asn, router_id),
            peers: Vec::new(),
            policies: Vec::new(),
            originate: Vec::new(),
            kernel: None,
        }
    }
}

impl ConfigBuilder {
    /// Accepts BGP connections on these addresses (default: every address, port 179);
    /// none: only outgoing sessions.
    pub fn listen(mut self, addrs: impl IntoIterator<Item = SocketAddr>) -> ConfigBuilder {
        self.global.listen = addrs.into_iter().collect();
        self
    }

    /// The route reflection cluster id (RFC 4456 7; default: the router id).
    pub fn cluster_id(mut self, id: Ipv4Addr) -> ConfigBuilder {
        self.global.cluster_id = Some(id);
        self
    }

    /// At most this many equal-cost paths in a multipath set (default 16).
    pub fn max_paths(mut self, n: u16) -> ConfigBuilder {
        self.global.max_paths = n.max(1);
        self
    }

    /// Our graceful restart settings (RFC 4724): the restart time a restarting speaker
    /// defers selection for. Each peer carries its own
    /// ([`PeerConfig::graceful_restart`]).
    pub fn graceful_restart(mut self, settings: GracefulRestartConfig) -> ConfigBuilder {
        self.global.graceful_restart = settings;
        self
    }

    /// A peer. Its name is its identity (logs, the API, policies' `peer_name`).
    pub fn peer(mut self, peer: PeerConfig) -> ConfigBuilder {
        self.peers.push(peer);
        self
    }

    /// A named routing policy, for peers' `import` and `export` chains and the kernel's
    /// export.
    pub fn policy(mut self, name: impl Into<String>, policy: PolicyDef) -> ConfigBuilder {
        self.policies.push((name.into(), policy));
        self
    }

    /// A route to originate.
    pub fn originate(mut self, route: Originate) -> ConfigBuilder {
        self.originate.push(route);
        self
    }

    /// Run the kernel FIB component: import the kernel's routes, install the best ones.
    pub fn kernel(mut self, kernel: KernelSection) -> ConfigBuilder {
        self.kernel = Some(kernel);
        self
    }

    /// The configuration, if it follows every rule a configuration file must.
    pub fn build(self) -> Result<Config, ConfigError> {
        let invalid = ConfigError::Invalid;
        let global = self.global;
        check::identity(global.asn, global.router_id).map_err(invalid)?;
        let mut listen = BTreeSet::new();
        if let Some(sa) = global.listen.iter().find(|sa| !listen.insert(**sa)) {
            return Err(invalid(format!("listen address {sa} is given twice")));
        }
        let mut policies = BTreeMap::new();
        for (name, policy) in self.policies {
            policy
                .compile()
                .map_err(|e| invalid(format!("policy {name:?}: {e}")))?;
            if policies.insert(name.clone(), policy).is_some() {
                return Err(invalid(format!("policy {name:?} is defined twice")));
            }
        }
        let mut originate = BTreeMap::new();
        for mut route in self.originate {
            route.prefix = check::originate(route.prefix, route.next_hop).map_err(invalid)?;
            let prefix = route.prefix;
            if originate.insert(prefix, route).is_some() {
                return Err(invalid(format!("prefix {prefix} is originated twice")));
            }
        }
        if let Some(name) = self.kernel.as_ref().and_then(|k| k.export.policy.as_ref()) {
            if !policies.contains_key(name) {
                return Err(invalid(format!(
                    "[kernel.export] policy: unknown policy {name:?}"
                )));
            }
        }
        let mut peers = BTreeMap::new();
        let mut endpoints = HashMap::new();
        for mut peer in self.peers {
            let name = peer.name.clone();
            check::reflection(&peer, &global).map_err(invalid)?;
            check::peer(&peer).map_err(|m| invalid(format!("peer {name:?}: {m}")))?;
            if let Some(n) = peer
                .import
                .iter()
                .chain(&peer.export)
                .find(|n| !policies.contains_key(*n))
            {
                return Err(invalid(format!("peer {name:?}: unknown policy {n:?}")));
            }
            if let Some(other) = endpoints.insert(peer.endpoint(), name.clone()) {
                return Err(invalid(check::same_endpoint(&peer, &other)));
            }
            peer.families.sort();
            peer.families.dedup();
            if peers.insert(name.clone(), peer).is_some() {
                return Err(invalid(format!("peer {name:?} is defined twice")));
            }
        }
        Ok(Config {
            global,
            peers,
            policies,
            originate,
            kernel: self.kernel,
            bmp: Vec::new(),
            mrt: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bgp_proto::{Community, Family};
    use bgp_rib::policy::Verdict;

    use super::*;
    use crate::config::{from_str, AddPathConfig, MaxPrefixAction, MaxPrefixes};

    /// The builder and the loader give the same value for the same settings.
    #[test]
    fn a_built_configuration_equals_the_loaded_one() {
        let text = r#"
[global]
asn = 64512
router_id = "10.0.0.1"
listen = ["127.0.0.1:1790"]
cluster_id = "10.0.0.9"
max_paths = 4
[global.graceful_restart]
restart_time = 30
[policies.all]
default = "accept"
[peers.rr]
address = "10.0.0.2"
remote_as = 64512
route_reflector_client = true
hold_time = 30
keepalive = 10
add_path = "both"
families = ["ipv6", "ipv4"]
import = ["all"]
export = ["all"]
graceful_restart = { restart_time = 30 }
max_prefixes = { limit = 1000, action = "teardown" }
[[originate]]
prefix = "10.1.0.0/24"
communities = ["64512:1"]
"#;
        let loaded = from_str(text, Path::new("t.toml")).unwrap();
        let mut rr = PeerConfig::new("rr", "10.0.0.2".parse().unwrap(), 64512);
        rr.route_reflector_client = true;
        rr.hold_time = 30;
        rr.keepalive = 10;
        rr.add_path = AddPathConfig::Both;
        rr.families = vec![Family::IPV6_UNICAST, Family::IPV4_UNICAST];
        rr.import = vec!["all".into()];
        rr.export = vec!["all".into()];
        rr.graceful_restart.restart_time = 30;
        rr.max_prefixes = Some(MaxPrefixes {
            limit: 1000,
            action: MaxPrefixAction::Teardown,
        });
        let mut route = Originate::new("10.1.0.0/24".parse().unwrap());
        route.communities = vec![Community(64512 << 16 | 1)];
        let built = Config::builder(64512, "10.0.0.1".parse().unwrap())
            .listen(["127.0.0.1:1790".parse().unwrap()])
            .cluster_id("10.0.0.9".parse().unwrap())
            .max_paths(4)
            .graceful_restart(GracefulRestartConfig {
                restart_time: 30,
                ..GracefulRestartConfig::default()
            })
            .policy("all", PolicyDef::all(Verdict::Accept))
            .peer(rr)
            .originate(route)
            .build()
            .unwrap();
        assert_eq!(built, loaded);
    }

    #[test]
    fn the_files_rules_apply() {
        let id = "10.0.0.1".parse().unwrap();
        let peer = |name: &str, addr: &str| PeerConfig::new(name, addr.parse().unwrap(), 64513);
        let err = |b: ConfigBuilder| b.build().unwrap_err().to_string();
        assert!(err(Config::builder(0, id)).contains("asn 0"));
        assert!(err(Config::builder(1, "0.0.0.0".parse().unwrap())).contains("router_id"));
        let b = Config::builder(64512, id);
        assert!(err(b
            .clone()
            .peer(peer("a", "10.0.0.2"))
            .peer(peer("a", "10.0.0.3")))
        .contains("defined twice"));
        assert!(err(b
            .clone()
            .peer(peer("a", "10.0.0.2"))
            .peer(peer("b", "10.0.0.2")))
        .contains("same address"));
        let mut unknown = peer("a", "10.0.0.2");
        unknown.import = vec!["nope".into()];
        assert!(err(b.clone().peer(unknown)).contains("unknown policy \"nope\""));
        let mut slow = peer("a", "10.0.0.2");
        slow.hold_time = 2;
        assert!(err(b.clone().peer(slow)).contains("RFC 4271 4.2"));
        let mut ebgp_client = peer("a", "10.0.0.2");
        ebgp_client.route_reflector_client = true;
        assert!(err(b.clone().peer(ebgp_client)).contains("route_reflector_client"));
        let host_bits = Originate::new("10.1.0.1/24".parse().unwrap());
        assert!(err(b.clone().originate(host_bits)).contains("host bits"));
        let route = Originate::new("10.1.0.0/24".parse().unwrap());
        assert!(err(b.clone().originate(route.clone()).originate(route)).contains("twice"));
        assert!(err(b.clone().listen([
            "127.0.0.1:179".parse().unwrap(),
            "127.0.0.1:179".parse().unwrap()
        ]))
        .contains("given twice"));
        let mut other_port = peer("b", "10.0.0.2");
        other_port.port = 1179;
        assert!(b
            .peer(peer("a", "10.0.0.2"))
            .peer(other_port)
            .build()
            .is_ok());
    }
}
