//! Which part of one node's derived configuration a datastore change can touch, decided
//! from the change and the resources before it, so that a cluster's steady churn costs
//! each node work in proportion to what concerns it:
//!
//! - [`Impact::None`]: nothing this node derives reads it (another node's block
//!   affinity, a Secret or BGPFilter no BGPPeer names, a BGPPeer that neither applies to
//!   this node nor points at it, a Node change that leaves its BGP facts as they were);
//! - [`Impact::Mesh`]: another node's facts changed and only the node-to-node mesh
//!   sessions towards it follow from them (no BGPPeer involves it, no address is shared);
//! - [`Impact::All`]: anything else; the configuration is derived again.
//!
//! The rules mirror what [`super::derive`] reads, and are conservative: where a change
//! might matter (a selector that does not parse, a BGPPeer that would log a warning,
//! this node's own resources) the answer is [`Impact::All`]. The follower's tests check
//! the result against a full derivation after every change of random change streams.

use std::collections::HashMap;
use std::net::IpAddr;

use super::node::{node_info, NodeInfo};
use super::peerings::split_ip_port;
use super::NodeEnv;
use crate::resource::spec::{BgpPeerSpec, PasswordRef};
use crate::resource::{Kind, Object, Resource, ResourceKey};
use crate::selector::Selector;
use crate::store::{ResourceStore, Update};

/// A node's BGP facts as the derivation sees them: absent (no Node resource), unusable
/// (addresses that do not parse; it warns), or usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeFacts {
    /// No Node resource.
    Absent,
    /// A Node whose BGP addresses do not parse.
    Unusable,
    /// A usable node.
    Usable(Box<NodeInfo>),
}

impl NodeFacts {
    /// Node `name`'s facts in `store`.
    pub fn of(store: &ResourceStore, name: &str) -> NodeFacts {
        match store.node(name) {
            None => NodeFacts::Absent,
            Some(n) => {
                node_info(store, n).map_or(NodeFacts::Unusable, |i| NodeFacts::Usable(Box::new(i)))
            }
        }
    }

    /// Its BGP addresses.
    pub fn ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let info = match self {
            NodeFacts::Usable(i) => Some(i),
            _ => None,
        };
        info.into_iter().flat_map(|i| [i.ipv4, i.ipv6]).flatten()
    }
}

/// Another node's facts before and after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeChange {
    /// The node.
    pub name: String,
    /// Before.
    pub before: NodeFacts,
    /// After.
    pub after: NodeFacts,
}

/// What a change (or a batch of changes) can touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Impact {
    /// Nothing.
    None,
    /// The mesh sessions towards these nodes only.
    Mesh(Vec<NodeChange>),
    /// Anything: derive again.
    All,
}

impl Impact {
    /// Both impacts together.
    pub fn merge(self, other: Impact) -> Impact {
        match (self, other) {
            (Impact::All, _) | (_, Impact::All) => Impact::All,
            (Impact::None, x) | (x, Impact::None) => x,
            (Impact::Mesh(mut a), Impact::Mesh(b)) => {
                for c in b {
                    match a.iter_mut().find(|x| x.name == c.name) {
                        // Several changes of one node in a batch: first before, last after.
                        Some(x) => x.after = c.after,
                        None => a.push(c),
                    }
                }
                Impact::Mesh(a)
            }
        }
    }
}

/// How many usable nodes have each BGP address: two nodes sharing one make their mesh
/// sessions collide by name, which only a full derivation settles.
#[derive(Clone, Debug, Default)]
pub struct AddressCount(HashMap<IpAddr, u32>);

impl AddressCount {
    /// Counts a node's addresses in.
    pub fn add(&mut self, f: &NodeFacts) {
        for ip in f.ips() {
            *self.0.entry(ip).or_default() += 1;
        }
    }

    /// Counts a node's addresses out.
    pub fn remove(&mut self, f: &NodeFacts) {
        for ip in f.ips() {
            if let Some(n) = self.0.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.0.remove(&ip);
                }
            }
        }
    }

    /// Whether more than one node has `ip`.
    pub fn shared(&self, ip: IpAddr) -> bool {
        self.0.get(&ip).is_some_and(|n| *n > 1)
    }
}

/// The node a change of `key` concerns when it is a Node or its `node.<name>`
/// BGPConfiguration (its listen port is one of the node's facts).
pub fn node_of(key: &ResourceKey) -> Option<&str> {
    match key.kind {
        Kind::Node => Some(&key.name),
        Kind::BgpConfiguration => key.name.strip_prefix("node."),
        _ => None,
    }
}

/// The impact of `update` on node `env.node_name`, `store` holding the resources before
/// it. Node changes are not decided here (their facts before and after are needed):
/// see [`node_impact`].
pub fn impact(store: &ResourceStore, update: &Update, env: &NodeEnv) -> Impact {
    let (key, new) = match update {
        Update::Put(r) => (r.key(), Some(r.as_ref())),
        Update::Delete(k) => (k.clone(), None),
    };
    let old = store.get(&key);
    let both = || old.into_iter().chain(new);
    match key.kind {
        Kind::BlockAffinity => {
            let mine = both().any(|r| match r {
                Resource::BlockAffinity(a) => a.spec.node == env.node_name,
                _ => true,
            });
            if mine {
                Impact::All
            } else {
                Impact::None
            }
        }
        Kind::Secret => {
            let ns = key.namespace.as_deref().unwrap_or("");
            if ns == env.secret_namespace && secret_is_named(store, &key.name) {
                Impact::All
            } else {
                Impact::None
            }
        }
        Kind::BgpFilter => {
            if store
                .bgp_peers()
                .any(|p| p.spec.filters.contains(&key.name))
            {
                Impact::All
            } else {
                Impact::None
            }
        }
        Kind::BgpConfiguration if key.name == "default" => Impact::All,
        Kind::BgpConfiguration | Kind::Node => {
            // Decided with the node's facts ([`node_impact`]); other names are not read.
            if node_of(&key).is_some() {
                Impact::All
            } else {
                Impact::None
            }
        }
        Kind::IpPool => Impact::All,
        Kind::BgpPeer => {
            let me = match NodeFacts::of(store, &env.node_name) {
                NodeFacts::Usable(i) => i,
                _ => return Impact::All,
            };
            let touches = both().any(|r| match r {
                Resource::BgpPeer(p) => peer_touches(store, env, p, &me),
                _ => true,
            });
            if touches {
                Impact::All
            } else {
                Impact::None
            }
        }
    }
}

/// The impact of node `change.name`'s facts changing (`store` may hold the resources
/// before or after it: only other nodes' facts and the BGPPeers are read). `shared`:
/// one of its addresses, before or after, is another node's too.
pub fn node_impact(
    store: &ResourceStore,
    env: &NodeEnv,
    change: NodeChange,
    shared: bool,
) -> Impact {
    if change.before == change.after {
        return Impact::None;
    }
    if change.name == env.node_name {
        return Impact::All;
    }
    let (NodeFacts::Usable(_) | NodeFacts::Absent, NodeFacts::Usable(_) | NodeFacts::Absent) =
        (&change.before, &change.after)
    else {
        // An unusable node warns; only a full derivation words that.
        return Impact::All;
    };
    let me = match NodeFacts::of(store, &env.node_name) {
        NodeFacts::Usable(i) => i,
        _ => return Impact::All,
    };
    if me.wireguard_v4.is_some() || me.wireguard_v6.is_some() {
        // WireGuard next hops list every other node's address.
        return Impact::All;
    }
    if shared {
        return Impact::All;
    }
    let involved = store.bgp_peers().any(|p| {
        [&change.before, &change.after]
            .into_iter()
            .any(|f| peer_involves(&p.spec, f, &me))
    });
    if involved {
        Impact::All
    } else {
        Impact::Mesh(vec![change])
    }
}

fn secret_is_named(store: &ResourceStore, name: &str) -> bool {
    let names = |r: Option<&PasswordRef>| {
        r.and_then(|r| r.secret_key_ref.as_ref())
            .is_some_and(|k| k.name == name)
    };
    store.bgp_peers().any(|p| names(p.spec.password.as_ref()))
        || store
            .bgp_configuration("default")
            .is_some_and(|c| names(c.spec.node_mesh_password.as_ref()))
}

/// A selector's verdict on some labels; `None` when it does not parse.
fn selects(
    selector: Option<&str>,
    labels: &std::collections::BTreeMap<String, String>,
) -> Option<bool> {
    match selector.filter(|s| !s.is_empty()) {
        None => Some(false),
        Some(s) => Selector::parse(s).ok().map(|s| s.matches(labels)),
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|x| !x.is_empty())
}

/// Whether the peer's `peerIP` is one of `ips` (as written, like Calico compares).
fn peer_ip_is(p: &BgpPeerSpec, mut ips: impl Iterator<Item = IpAddr>) -> bool {
    let (host, _) = split_ip_port(p.peer_ip.as_deref().unwrap_or(""));
    ips.any(|ip| ip.to_string() == host)
}

/// Whether BGPPeer `p` matters to node `me`: it applies to it (global, `node`, or a
/// `nodeSelector` matching it), its reverse peering lands on it, or it would warn (every
/// node's derivation carries the warnings).
fn peer_touches(
    store: &ResourceStore,
    env: &NodeEnv,
    p: &Object<BgpPeerSpec>,
    me: &NodeInfo,
) -> bool {
    let s = &p.spec;
    if may_warn(store, env, s) {
        return true;
    }
    let applies = match (non_empty(&s.node_selector), non_empty(&s.node)) {
        (Some(sel), _) => selects(Some(sel), &me.labels) != Some(false),
        (None, Some(n)) => n == me.name,
        (None, None) => true,
    };
    applies || reverse_lands_on(s, me)
}

/// Whether `p`'s reverse peering is configured on node `me` (it is among the nodes `p`
/// points at).
fn reverse_lands_on(s: &BgpPeerSpec, me: &NodeInfo) -> bool {
    if s.reverse_peering.as_deref() == Some("Manual") {
        return false;
    }
    match non_empty(&s.peer_selector) {
        Some(sel) => selects(Some(sel), &me.labels) != Some(false),
        None => peer_ip_is(s, [me.ipv4, me.ipv6].into_iter().flatten()),
    }
}

/// Whether BGPPeer `p` makes any node's derivation warn (a warning is in every node's
/// result, whoever the peer is for).
fn may_warn(store: &ResourceStore, env: &NodeEnv, s: &BgpPeerSpec) -> bool {
    if non_empty(&s.local_workload_selector).is_some() {
        return true;
    }
    let bad_selector = [&s.node_selector, &s.peer_selector]
        .into_iter()
        .filter_map(non_empty)
        .any(|sel| Selector::parse(sel).is_err());
    if bad_selector {
        return true;
    }
    if non_empty(&s.peer_selector).is_none() {
        let (host, _) = split_ip_port(s.peer_ip.as_deref().unwrap_or(""));
        match host.parse::<IpAddr>() {
            Err(_) => return true,
            Ok(ip) => {
                if let Some(r) = non_empty(&s.reachable_by) {
                    match r.parse::<IpAddr>() {
                        Ok(a) if a.is_ipv4() == ip.is_ipv4() => {}
                        _ => return true,
                    }
                }
            }
        }
    }
    if let Some(k) = s.password.as_ref().and_then(|p| p.secret_key_ref.as_ref()) {
        let found = store
            .secret(&env.secret_namespace, &k.name)
            .is_some_and(|sec| sec.spec.get(&k.key).is_some());
        if !found {
            return true;
        }
    }
    false
}

/// Whether BGPPeer `s` involves node `x` (with facts `f`) in node `me`'s sessions:
/// `x` is a peer it selects or names by address, or `x` is among the nodes whose
/// reverse peerings land on `me`.
fn peer_involves(s: &BgpPeerSpec, f: &NodeFacts, me: &NodeInfo) -> bool {
    let NodeFacts::Usable(x) = f else {
        return false;
    };
    if selects(non_empty(&s.peer_selector), &x.labels) != Some(false) {
        return true;
    }
    if peer_ip_is(s, f.ips()) {
        return true;
    }
    let x_is_remote = match (non_empty(&s.node_selector), non_empty(&s.node)) {
        (Some(sel), _) => selects(Some(sel), &x.labels) != Some(false),
        (None, Some(n)) => n == x.name,
        (None, None) => true,
    };
    x_is_remote && reverse_lands_on(s, me)
}
