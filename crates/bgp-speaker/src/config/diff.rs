//! The difference between a running configuration and a new one, classified by what a
//! running speaker must do about it.
//!
//! The rule: added peers start, removed peers stop with a
//! Cease, changed peers restart *only* when a session parameter changed (something that
//! goes into the OPEN message or the TCP connection); policy changes are applied with a
//! route refresh / re-evaluation of stored routes (inbound) and a re-run of the export
//! policy (outbound), without resetting the session; originated routes are added and
//! withdrawn one by one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;

use ipnet::IpNet;

use super::{Config, Originate, PeerConfig};

/// What changed for one peer that exists in both configurations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerChange {
    /// Session parameters that changed; any entry means the session must be restarted
    /// (Cease / Other Configuration Change, RFC 4486 subcode 6).
    pub restart: Vec<&'static str>,
    /// The import side changed (policy chain or a policy in it): re-evaluate routes
    /// received, using stored routes or a ROUTE-REFRESH (RFC 2918).
    pub soft_in: bool,
    /// The export side changed (policy chain, a policy in it, reflection or next-hop
    /// settings): recompute what the peer is told.
    pub soft_out: bool,
    /// Settings applied to the running session without any re-evaluation
    /// (connect retry, prefix limit, description).
    pub runtime: Vec<&'static str>,
    /// `Some(true)`: the peer became disabled; `Some(false)`: it became enabled.
    pub disabled: Option<bool>,
}

impl PeerChange {
    /// The session must be torn down and re-established.
    pub fn needs_restart(&self) -> bool {
        !self.restart.is_empty()
    }

    /// Nothing at all changed.
    pub fn is_empty(&self) -> bool {
        *self == PeerChange::default()
    }
}

/// Everything that differs between two configurations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    /// Global settings that changed and force every session to restart (AS, router id).
    pub global_restart: Vec<&'static str>,
    /// Listen sockets to open.
    pub listen_added: Vec<SocketAddr>,
    /// Listen sockets to close.
    pub listen_removed: Vec<SocketAddr>,
    /// The control socket settings changed (applied on the next daemon start).
    pub control_changed: bool,
    /// The metrics endpoint settings changed (bgpd moves it).
    pub metrics_changed: bool,
    /// RIB-wide settings changed (cluster id, multipath): every peer's outbound state is
    /// recomputed.
    pub rib_changed: bool,
    /// The user or group bgpd runs as changed (takes effect when it restarts).
    pub process_changed: bool,
    /// Peers to start, by name.
    pub peers_added: Vec<String>,
    /// Peers to stop with a Cease / Peer De-configured (RFC 4486 subcode 3).
    pub peers_removed: Vec<String>,
    /// Peers present in both, with a non-empty change.
    pub peers_changed: BTreeMap<String, PeerChange>,
    /// Policies added, removed or modified, by name.
    pub policies_changed: BTreeSet<String>,
    /// Originated routes to announce (new ones and ones whose attributes changed).
    pub originate_added: Vec<Originate>,
    /// Originated routes to withdraw.
    pub originate_removed: Vec<IpNet>,
    /// The kernel section changed.
    pub kernel_changed: bool,
    /// BMP stations or MRT files changed (the feeds are restarted; sessions are not
    /// touched).
    pub monitoring_changed: bool,
}

impl ConfigDiff {
    /// No difference at all.
    pub fn is_empty(&self) -> bool {
        *self == ConfigDiff::default()
    }
}

impl fmt::Display for ConfigDiff {
    /// A one-line summary for the log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no changes");
        }
        let mut parts = Vec::new();
        if !self.global_restart.is_empty() {
            parts.push(format!(
                "global {:?} (all sessions restart)",
                self.global_restart
            ));
        }
        if !self.peers_added.is_empty() {
            parts.push(format!("peers added {:?}", self.peers_added));
        }
        if !self.peers_removed.is_empty() {
            parts.push(format!("peers removed {:?}", self.peers_removed));
        }
        for (name, c) in &self.peers_changed {
            let mut what = Vec::new();
            if c.needs_restart() {
                what.push(format!("restart for {:?}", c.restart));
            }
            if c.soft_in {
                what.push("soft-in".into());
            }
            if c.soft_out {
                what.push("soft-out".into());
            }
            if let Some(d) = c.disabled {
                what.push(if d { "disable".into() } else { "enable".into() });
            }
            if !c.runtime.is_empty() {
                what.push(format!("update {:?}", c.runtime));
            }
            parts.push(format!("peer {name}: {}", what.join(", ")));
        }
        if !self.policies_changed.is_empty() {
            parts.push(format!("policies {:?}", self.policies_changed));
        }
        if !self.originate_added.is_empty() || !self.originate_removed.is_empty() {
            parts.push(format!(
                "originate +{} -{}",
                self.originate_added.len(),
                self.originate_removed.len()
            ));
        }
        if !self.listen_added.is_empty() || !self.listen_removed.is_empty() {
            parts.push(format!(
                "listen +{:?} -{:?}",
                self.listen_added, self.listen_removed
            ));
        }
        if self.rib_changed {
            parts.push("rib settings".into());
        }
        if self.kernel_changed {
            parts.push("kernel settings".into());
        }
        if self.monitoring_changed {
            parts.push("BMP/MRT feeds".into());
        }
        if self.control_changed {
            parts.push("control sockets".into());
        }
        if self.metrics_changed {
            parts.push("metrics endpoint".into());
        }
        if self.process_changed {
            parts.push("user/group".into());
        }
        f.write_str(&parts.join("; "))
    }
}

/// Compares two peers with the same name.
pub fn diff_peer(
    old: &PeerConfig,
    new: &PeerConfig,
    changed_policies: &BTreeSet<String>,
) -> PeerChange {
    let mut c = PeerChange::default();
    macro_rules! restart_if {
        ($($field:ident),*) => {
            $(if old.$field != new.$field { c.restart.push(stringify!($field)); })*
        };
    }
    // Everything that goes into the TCP connection or the OPEN message.
    restart_if!(
        address,
        remote_as,
        local_as,
        port,
        passive,
        password,
        hold_time,
        keepalive,
        ttl_security,
        multihop,
        source_address,
        allow_local_as,
        add_path,
        extended_next_hop,
        families
    );
    // The caps on what the peer announces, and what we do at hold expiry or stop, are
    // ours alone, not in the OPEN.
    let uncapped = |g: &super::GracefulRestartConfig| super::GracefulRestartConfig {
        max_restart_time: 0,
        max_long_lived_stale_time: 0,
        retain_on_hold_expiry: true,
        on_stop: super::OnStop::Notify,
        absent_peer_wait: 0,
        ..g.clone()
    };
    if uncapped(&old.graceful_restart) != uncapped(&new.graceful_restart) {
        c.restart.push("graceful_restart");
    }
    macro_rules! runtime_if {
        ($($field:ident),*) => {
            $(if old.$field != new.$field { c.runtime.push(stringify!($field)); })*
        };
    }
    runtime_if!(
        connect_retry,
        max_prefixes,
        add_path_receive_limit,
        description,
        bfd
    );
    if old.graceful_restart != new.graceful_restart
        && uncapped(&old.graceful_restart) == uncapped(&new.graceful_restart)
    {
        c.runtime.push("graceful_restart caps");
    }
    let touches = |chain: &[String]| chain.iter().any(|p| changed_policies.contains(p));
    c.soft_in = old.import != new.import || touches(&new.import);
    c.soft_out = old.export != new.export
        || touches(&new.export)
        || old.route_reflector_client != new.route_reflector_client
        || old.cluster_id != new.cluster_id
        || old.next_hop != new.next_hop;
    if old.disabled != new.disabled {
        c.disabled = Some(new.disabled);
    }
    c
}

/// Computes what changed from `old` to `new`.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let mut d = ConfigDiff::default();
    let (og, ng) = (&old.global, &new.global);
    if og.asn != ng.asn {
        d.global_restart.push("asn");
    }
    if og.router_id != ng.router_id {
        d.global_restart.push("router_id");
    }
    d.listen_added = ng
        .listen
        .iter()
        .filter(|a| !og.listen.contains(a))
        .copied()
        .collect();
    d.listen_removed = og
        .listen
        .iter()
        .filter(|a| !ng.listen.contains(a))
        .copied()
        .collect();
    d.control_changed = og.control != ng.control;
    d.metrics_changed = og.metrics != ng.metrics;
    d.rib_changed = og.cluster_id != ng.cluster_id || og.max_paths != ng.max_paths;
    d.kernel_changed = old.kernel != new.kernel;
    d.monitoring_changed = (&old.bmp, &old.mrt) != (&new.bmp, &new.mrt);
    d.process_changed = (&og.user, &og.group) != (&ng.user, &ng.group);

    let names: BTreeSet<&String> = old.policies.keys().chain(new.policies.keys()).collect();
    d.policies_changed = names
        .into_iter()
        .filter(|n| old.policies.get(*n) != new.policies.get(*n))
        .cloned()
        .collect();

    for (name, np) in &new.peers {
        match old.peers.get(name) {
            None => d.peers_added.push(name.clone()),
            Some(op) => {
                let mut c = diff_peer(op, np, &d.policies_changed);
                if !d.global_restart.is_empty() && c.restart.is_empty() {
                    c.restart.extend(d.global_restart.iter().copied());
                }
                if d.rib_changed {
                    c.soft_out = true;
                }
                if !c.is_empty() {
                    d.peers_changed.insert(name.clone(), c);
                }
            }
        }
    }
    d.peers_removed = old
        .peers
        .keys()
        .filter(|n| !new.peers.contains_key(*n))
        .cloned()
        .collect();

    for (prefix, r) in &new.originate {
        if old.originate.get(prefix) != Some(r) {
            d.originate_added.push(r.clone());
        }
    }
    d.originate_removed = old
        .originate
        .keys()
        .filter(|p| !new.originate.contains_key(*p))
        .copied()
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(extra: &str) -> Config {
        let text = format!(
            r#"
[global]
asn = 64512
router_id = "10.0.0.1"
listen = ["127.0.0.1:1179"]

[policies.all]
default = "accept"

[policies.none]
default = "reject"

[templates.mesh]
remote_as = 64512
import = ["all"]
export = ["all"]

[peers.a]
template = "mesh"
address = "10.0.0.2"

[peers.b]
template = "mesh"
address = "10.0.0.3"

{extra}
"#
        );
        super::super::from_str(&text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn identical_configs_have_no_diff() {
        let d = diff(&cfg(""), &cfg(""));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(d.to_string(), "no changes");
    }

    #[test]
    fn added_and_removed_peers() {
        let old = cfg("[peers.c]\ntemplate = \"mesh\"\naddress = \"10.0.0.4\"\n");
        let new = cfg("[peers.d]\ntemplate = \"mesh\"\naddress = \"10.0.0.5\"\n");
        let d = diff(&old, &new);
        assert_eq!(d.peers_added, vec!["d".to_string()]);
        assert_eq!(d.peers_removed, vec!["c".to_string()]);
        assert!(d.peers_changed.is_empty(), "a and b untouched: {d:?}");
    }

    #[test]
    fn session_parameter_change_restarts_only_that_peer() {
        let old = cfg("");
        let mut new = old.clone();
        if let Some(p) = new.peers.get_mut("a") {
            p.hold_time = 30;
            p.keepalive = 10;
        }
        let d = diff(&old, &new);
        assert_eq!(d.peers_changed.len(), 1);
        let c = &d.peers_changed["a"];
        assert!(c.needs_restart());
        assert_eq!(c.restart, vec!["hold_time", "keepalive"]);
        assert!(!c.soft_in && !c.soft_out);
    }

    #[test]
    fn each_session_field_is_a_restart() {
        let old = cfg("");
        type Edit = Box<dyn Fn(&mut PeerConfig)>;
        let edits: Vec<(&str, Edit)> = vec![
            (
                "address",
                Box::new(|p| p.address.addr = "10.0.0.9".parse().unwrap()),
            ),
            ("remote_as", Box::new(|p| p.remote_as = 65000)),
            ("local_as", Box::new(|p| p.local_as = Some(65001))),
            ("port", Box::new(|p| p.port = 1179)),
            ("passive", Box::new(|p| p.passive = true)),
            ("password", Box::new(|p| p.password = Some("x".into()))),
            ("ttl_security", Box::new(|p| p.ttl_security = true)),
            ("multihop", Box::new(|p| p.multihop = Some(2))),
            (
                "source_address",
                Box::new(|p| p.source_address = Some("10.0.0.1".parse().unwrap())),
            ),
            (
                "add_path",
                Box::new(|p| p.add_path = super::super::AddPathConfig::Both),
            ),
            (
                "extended_next_hop",
                Box::new(|p| p.extended_next_hop = true),
            ),
            (
                "graceful_restart",
                Box::new(|p| p.graceful_restart.restart_time = 1),
            ),
            (
                "families",
                Box::new(|p| p.families.push(bgp_proto::Family::IPV6_UNICAST)),
            ),
        ];
        for (field, edit) in edits {
            let mut new = old.clone();
            edit(new.peers.get_mut("b").unwrap());
            let d = diff(&old, &new);
            assert_eq!(d.peers_changed["b"].restart, vec![field]);
        }
    }

    #[test]
    fn policy_reference_change_is_soft() {
        let old = cfg("");
        let mut new = old.clone();
        if let Some(p) = new.peers.get_mut("a") {
            p.import = vec!["none".into()];
        }
        if let Some(p) = new.peers.get_mut("b") {
            p.export = vec!["none".into()];
        }
        let d = diff(&old, &new);
        let a = &d.peers_changed["a"];
        assert!(!a.needs_restart() && a.soft_in && !a.soft_out);
        let b = &d.peers_changed["b"];
        assert!(!b.needs_restart() && !b.soft_in && b.soft_out);
    }

    #[test]
    fn policy_body_change_softly_reconfigures_users() {
        let old = cfg("[peers.c]\naddress = \"10.0.0.4\"\nremote_as = 65000\n");
        let mut new = old.clone();
        if let Some(p) = new.policies.get_mut("all") {
            p.rules.push(bgp_rib::policy::Rule {
                name: Some("x".into()),
                matches: Default::default(),
                set: Default::default(),
                action: bgp_rib::policy::RuleAction::Reject,
            });
        }
        let d = diff(&old, &new);
        assert_eq!(d.policies_changed, BTreeSet::from(["all".to_string()]));
        for n in ["a", "b"] {
            let c = &d.peers_changed[n];
            assert!(c.soft_in && c.soft_out && !c.needs_restart(), "{n}: {c:?}");
        }
        assert!(!d.peers_changed.contains_key("c"), "c uses no policy");
    }

    #[test]
    fn reflection_and_next_hop_are_soft_out() {
        let old = cfg("");
        let mut new = old.clone();
        if let Some(p) = new.peers.get_mut("a") {
            p.route_reflector_client = true;
        }
        if let Some(p) = new.peers.get_mut("b") {
            p.next_hop = super::super::NextHopMode::SelfAddr;
        }
        let d = diff(&old, &new);
        assert!(d.peers_changed["a"].soft_out && !d.peers_changed["a"].needs_restart());
        assert!(d.peers_changed["b"].soft_out && !d.peers_changed["b"].needs_restart());
    }

    #[test]
    fn runtime_and_admin_changes() {
        let old = cfg("");
        let mut new = old.clone();
        if let Some(p) = new.peers.get_mut("a") {
            p.connect_retry = 9;
            p.max_prefixes = Some(super::super::MaxPrefixes {
                limit: 10,
                action: super::super::MaxPrefixAction::Warn,
            });
        }
        if let Some(p) = new.peers.get_mut("b") {
            p.disabled = true;
            // Caps on the peer's announced times are ours, not in the OPEN.
            p.graceful_restart.max_restart_time = 30;
        }
        let d = diff(&old, &new);
        assert_eq!(
            d.peers_changed["a"].runtime,
            vec!["connect_retry", "max_prefixes"]
        );
        assert_eq!(d.peers_changed["b"].runtime, vec!["graceful_restart caps"]);
        assert!(!d.peers_changed["a"].needs_restart());
        assert_eq!(d.peers_changed["b"].disabled, Some(true));
        assert!(!d.peers_changed["b"].needs_restart());
    }

    #[test]
    fn global_identity_change_restarts_everything() {
        let old = cfg("");
        let mut new = old.clone();
        new.global.router_id = "10.0.0.99".parse().unwrap();
        let d = diff(&old, &new);
        assert_eq!(d.global_restart, vec!["router_id"]);
        assert!(d.peers_changed["a"].needs_restart());
        assert!(d.peers_changed["b"].needs_restart());
    }

    #[test]
    fn rib_settings_and_listen() {
        let old = cfg("");
        let mut new = old.clone();
        new.global.max_paths = 2;
        new.global.listen = vec!["127.0.0.2:1179".parse().unwrap()];
        let d = diff(&old, &new);
        assert!(d.rib_changed);
        assert!(d
            .peers_changed
            .values()
            .all(|c| c.soft_out && !c.needs_restart()));
        assert_eq!(d.listen_added, vec!["127.0.0.2:1179".parse().unwrap()]);
        assert_eq!(d.listen_removed, vec!["127.0.0.1:1179".parse().unwrap()]);
    }

    #[test]
    fn originate_incremental() {
        let old = cfg(
            "[[originate]]\nprefix = \"10.1.0.0/26\"\n[[originate]]\nprefix = \"10.2.0.0/26\"\n",
        );
        let new = cfg("[[originate]]\nprefix = \"10.2.0.0/26\"\ncommunities = [\"1:1\"]\n[[originate]]\nprefix = \"10.3.0.0/26\"\n");
        let d = diff(&old, &new);
        let added: Vec<IpNet> = d.originate_added.iter().map(|o| o.prefix).collect();
        assert_eq!(
            added,
            vec![
                "10.2.0.0/26".parse().unwrap(),
                "10.3.0.0/26".parse().unwrap()
            ]
        );
        assert_eq!(d.originate_removed, vec!["10.1.0.0/26".parse().unwrap()]);
        assert!(d.peers_changed.is_empty());
        assert!(d.to_string().contains("originate +2 -1"));
    }
}
