//! The set of resources one node's configuration is derived from: a sans-IO cache that
//! every datastore source feeds with [`Update`]s (a file source puts everything once; a
//! watching source puts and deletes as the datastore changes), and that the derivation reads.
//!
//! A put replaces what was stored under the same [`ResourceKey`], as `calicoctl apply`
//! does, so later files (or steps) override earlier ones. Every change that alters the
//! content bumps [`ResourceStore::revision`], which lets a caller skip re-deriving when
//! nothing changed.

use std::collections::BTreeMap;

use crate::resource::spec::{
    BgpConfigurationSpec, BgpFilterSpec, BgpPeerSpec, BlockAffinitySpec, IpPoolSpec, NodeSpec,
    SecretData,
};
use crate::resource::{Kind, Object, Resource, ResourceKey};

/// A change of the datastore.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// Created or modified.
    Put(Box<Resource>),
    /// Deleted.
    Delete(ResourceKey),
}

/// The resources known now.
#[derive(Clone, Debug, Default)]
pub struct ResourceStore {
    resources: BTreeMap<ResourceKey, Resource>,
    revision: u64,
    /// `Node`s held, counted as they come and go: asked after every change, and a walk
    /// would cost a big cluster's size each time.
    node_count: usize,
}

/// Iterates the objects of one kind.
macro_rules! of_kind {
    ($self:ident, $kind:expr, $variant:ident) => {
        $self
            .resources
            .range(range_of($kind))
            .filter_map(|(_, r)| match r {
                Resource::$variant(o) => Some(o),
                _ => None,
            })
    };
}

fn range_of(kind: Kind) -> std::ops::RangeInclusive<ResourceKey> {
    // Keys sort by kind first; None sorts before every Some namespace.
    let lo = ResourceKey {
        kind,
        namespace: None,
        name: String::new(),
    };
    let hi = ResourceKey {
        kind,
        namespace: Some("\u{10FFFF}".repeat(4)),
        name: "\u{10FFFF}".repeat(4),
    };
    lo..=hi
}

impl ResourceStore {
    /// An empty store.
    pub fn new() -> ResourceStore {
        ResourceStore::default()
    }

    /// A store holding `resources`, later ones replacing earlier ones with the same key.
    pub fn from_resources(resources: impl IntoIterator<Item = Resource>) -> ResourceStore {
        let mut s = ResourceStore::new();
        for r in resources {
            s.apply(Update::Put(Box::new(r)));
        }
        s
    }

    /// Applies one change; true when the content changed.
    pub fn apply(&mut self, update: Update) -> bool {
        let changed = match update {
            Update::Put(r) => {
                let key = r.key();
                match self.resources.get(&key) {
                    Some(old) if *old == *r => false,
                    _ => {
                        let is_node = key.kind == Kind::Node;
                        if self.resources.insert(key, *r).is_none() && is_node {
                            self.node_count += 1;
                        }
                        true
                    }
                }
            }
            Update::Delete(key) => {
                let gone = self.resources.remove(&key).is_some();
                if gone && key.kind == Kind::Node {
                    self.node_count -= 1;
                }
                gone
            }
        };
        if changed {
            self.revision += 1;
        }
        changed
    }

    /// Replaces the whole content with `resources` (a fresh listing), as the minimal set of
    /// updates; returns them.
    pub fn replace_all(&mut self, resources: impl IntoIterator<Item = Resource>) -> Vec<Update> {
        let fresh = ResourceStore::from_resources(resources).resources;
        let mut updates: Vec<Update> = self
            .resources
            .keys()
            .filter(|k| !fresh.contains_key(*k))
            .cloned()
            .map(Update::Delete)
            .collect();
        for (k, r) in fresh {
            if self.resources.get(&k) != Some(&r) {
                updates.push(Update::Put(Box::new(r)));
            }
        }
        for u in &updates {
            self.apply(u.clone());
        }
        updates
    }

    /// Counts every change applied so far.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// Every resource, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values()
    }

    /// One resource.
    pub fn get(&self, key: &ResourceKey) -> Option<&Resource> {
        self.resources.get(key)
    }

    /// `BGPConfiguration` NAME (`default`, or `node.<nodename>`).
    pub fn bgp_configuration(&self, name: &str) -> Option<&Object<BgpConfigurationSpec>> {
        match self.resources.get(&ResourceKey {
            kind: Kind::BgpConfiguration,
            namespace: None,
            name: name.to_owned(),
        }) {
            Some(Resource::BgpConfiguration(o)) => Some(o),
            _ => None,
        }
    }

    /// Every `Node`, by name.
    pub fn nodes(&self) -> impl Iterator<Item = &Object<NodeSpec>> {
        of_kind!(self, Kind::Node, Node)
    }

    /// How many `Node`s there are (as `nodes().count()`, without the walk).
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// `Node` NAME.
    pub fn node(&self, name: &str) -> Option<&Object<NodeSpec>> {
        match self.resources.get(&ResourceKey {
            kind: Kind::Node,
            namespace: None,
            name: name.to_owned(),
        }) {
            Some(Resource::Node(o)) => Some(o),
            _ => None,
        }
    }

    /// Every `BGPPeer`, by name.
    pub fn bgp_peers(&self) -> impl Iterator<Item = &Object<BgpPeerSpec>> {
        of_kind!(self, Kind::BgpPeer, BgpPeer)
    }

    /// Every `IPPool`, by name.
    pub fn ip_pools(&self) -> impl Iterator<Item = &Object<IpPoolSpec>> {
        of_kind!(self, Kind::IpPool, IpPool)
    }

    /// `BGPFilter` NAME.
    pub fn bgp_filter(&self, name: &str) -> Option<&Object<BgpFilterSpec>> {
        match self.resources.get(&ResourceKey {
            kind: Kind::BgpFilter,
            namespace: None,
            name: name.to_owned(),
        }) {
            Some(Resource::BgpFilter(o)) => Some(o),
            _ => None,
        }
    }

    /// Every `BGPFilter`, by name.
    pub fn bgp_filters(&self) -> impl Iterator<Item = &Object<BgpFilterSpec>> {
        of_kind!(self, Kind::BgpFilter, BgpFilter)
    }

    /// Every block affinity.
    pub fn block_affinities(&self) -> impl Iterator<Item = &Object<BlockAffinitySpec>> {
        of_kind!(self, Kind::BlockAffinity, BlockAffinity)
    }

    /// Secret NAMESPACE/NAME.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Object<SecretData>> {
        match self.resources.get(&ResourceKey {
            kind: Kind::Secret,
            namespace: Some(namespace.to_owned()),
            name: name.to_owned(),
        }) {
            Some(Resource::Secret(o)) => Some(o),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{decode, Decoded};
    use serde_json::json;

    fn res(v: serde_json::Value) -> Resource {
        match decode(v).unwrap() {
            Decoded::Resources(mut r) => r.remove(0),
            Decoded::Ignored { .. } => panic!("ignored"),
        }
    }

    fn node(name: &str, ip: &str) -> Resource {
        res(json!({"kind": "Node", "apiVersion": "projectcalico.org/v3",
            "metadata": {"name": name}, "spec": {"bgp": {"ipv4Address": ip}}}))
    }

    #[test]
    fn put_replace_delete_and_revision() {
        let mut s = ResourceStore::new();
        assert!(s.apply(Update::Put(Box::new(node("a", "10.0.0.1/24")))));
        assert!(
            !s.apply(Update::Put(Box::new(node("a", "10.0.0.1/24")))),
            "same content"
        );
        assert_eq!(s.revision(), 1);
        assert!(s.apply(Update::Put(Box::new(node("a", "10.0.0.2/24")))));
        assert_eq!(s.nodes().count(), 1);
        assert_eq!(s.node_count(), 1);
        assert_eq!(
            s.node("a")
                .and_then(|n| n.spec.bgp.as_ref())
                .and_then(|b| b.ipv4_address.as_deref()),
            Some("10.0.0.2/24")
        );
        s.apply(Update::Put(Box::new(res(json!({"kind": "IPPool",
            "apiVersion": "projectcalico.org/v3", "metadata": {"name": "p"},
            "spec": {"cidr": "10.1.0.0/16"}})))));
        assert_eq!(s.nodes().count(), 1, "kinds stay apart");
        assert_eq!(s.node_count(), 1, "kinds stay apart");
        assert_eq!(s.ip_pools().count(), 1);
        assert!(s.apply(Update::Delete(node("a", "x").key())));
        assert!(!s.apply(Update::Delete(node("a", "x").key())));
        assert_eq!(s.node_count(), 0);
        assert_eq!(s.revision(), 4);
    }

    #[test]
    fn replace_all_yields_the_difference() {
        let mut s =
            ResourceStore::from_resources([node("a", "10.0.0.1/24"), node("b", "10.0.0.2/24")]);
        let u = s.replace_all([node("b", "10.0.0.3/24"), node("c", "10.0.0.4/24")]);
        assert_eq!(u.len(), 3, "{u:?}");
        assert!(u.contains(&Update::Delete(node("a", "x").key())));
        let names: Vec<_> = s.nodes().map(|n| n.metadata.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert!(s
            .replace_all([node("b", "10.0.0.3/24"), node("c", "10.0.0.4/24")])
            .is_empty());
    }
}
