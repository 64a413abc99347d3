//! One node following a watched datastore: the consumer side of a
//! [`SyncEvent`](crate::source::SyncEvent) stream. It keeps the
//! [`ResourceStore`], derives nothing before the first complete listing (as calico-node
//! waits for its syncer), then brings the node's [`NodeBgp`] up to date after every batch
//! and says what changed:
//!
//! - [`Change::Unchanged`]: the batch did not concern this node (another node's block, a
//!   Node status update, a BGPPeer for other nodes...), decided in time proportional to
//!   the batch ([`impact`](crate::derive::impact));
//! - [`Change::Sessions`]: only mesh sessions towards the nodes that changed, patched in
//!   place without deriving the rest; a caller applies them peer by peer;
//! - [`Change::Whole`]: derived again; a caller renders the configuration and lets the
//!   configuration diff find what differs.
//!
//! Whatever the path, [`Follower::derived`] equals a full [`derive`] of the store (the
//! tests check it after every change of random change streams).

use crate::derive::impact::{
    impact, node_impact, node_of, AddressCount, Impact, NodeChange, NodeFacts,
};
use crate::derive::node::{router_id, DEFAULT_AS};
use std::collections::BTreeMap;

use crate::derive::peerings::{mesh_peering, Cluster, Me, MeshSettings, Peering};
use crate::derive::{derive, DeriveError, Family, NodeBgp, NodeEnv, Warnings};
use crate::source::{SyncEvent, SyncState};
use crate::store::{ResourceStore, Update};

/// What a batch changed in the node's derived configuration.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Nothing (or nothing derived yet: no complete listing so far).
    Unchanged,
    /// Only these sessions: removed by name, added or replaced whole.
    Sessions {
        /// Sessions gone.
        removed: Vec<String>,
        /// Sessions new or different.
        upserted: Vec<Peering>,
    },
    /// Derived again (the first derivation, or a change beyond mesh sessions). The result
    /// may be an error (no Node for this node yet): keep running on the last good one.
    Whole,
}

/// How the follower has spent its work, for benchmarks and `show datastore`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FollowStats {
    /// Updates applied to the store.
    pub updates: u64,
    /// Batches that concerned nothing derived.
    pub skipped: u64,
    /// Batches applied by patching mesh sessions.
    pub patched: u64,
    /// Full derivations.
    pub derived: u64,
}

/// A node following its datastore.
#[derive(Clone, Debug)]
pub struct Follower {
    env: NodeEnv,
    store: ResourceStore,
    addresses: AddressCount,
    state: SyncState,
    synced: bool,
    derived: Option<Result<NodeBgp, DeriveError>>,
    stats: FollowStats,
}

impl Follower {
    /// A follower deriving node `env.node_name`'s configuration.
    pub fn new(env: NodeEnv) -> Follower {
        Follower {
            env,
            store: ResourceStore::new(),
            addresses: AddressCount::default(),
            state: SyncState::WaitingForDatastore,
            synced: false,
            derived: None,
            stats: FollowStats::default(),
        }
    }

    /// The resources known now.
    pub fn store(&self) -> &ResourceStore {
        &self.store
    }

    /// The source's last announced state.
    pub fn state(&self) -> SyncState {
        self.state
    }

    /// Whether a complete listing has been received (sessions may be configured).
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The current derivation (`None` before the first complete listing).
    pub fn derived(&self) -> Option<&Result<NodeBgp, DeriveError>> {
        self.derived.as_ref()
    }

    /// Work counters.
    pub fn stats(&self) -> &FollowStats {
        &self.stats
    }

    /// Takes one event of the source.
    pub fn handle(&mut self, event: SyncEvent) -> Change {
        match event {
            SyncEvent::State(s) => {
                self.state = s;
                if s == SyncState::InSync && !self.synced {
                    self.synced = true;
                    return self.derive_whole();
                }
                Change::Unchanged
            }
            SyncEvent::Updates { updates, .. } => self.apply(updates),
        }
    }

    /// Applies a batch; derives what it touched once a complete listing was seen.
    pub fn apply(&mut self, updates: Vec<Update>) -> Change {
        let mut total = Impact::None;
        for u in updates {
            self.stats.updates += 1;
            total = total.merge(self.apply_one(u));
        }
        if !self.synced {
            return Change::Unchanged;
        }
        if !matches!(self.derived, Some(Ok(_))) && total != Impact::None {
            total = Impact::All;
        }
        match total {
            Impact::None => {
                self.stats.skipped += 1;
                Change::Unchanged
            }
            Impact::All => self.derive_whole(),
            Impact::Mesh(changes) => self.patch_mesh(changes),
        }
    }

    fn apply_one(&mut self, u: Update) -> Impact {
        let key = match &u {
            Update::Put(r) => r.key(),
            Update::Delete(k) => k.clone(),
        };
        let Some(name) = node_of(&key).map(str::to_owned) else {
            let i = impact(&self.store, &u, &self.env);
            self.store.apply(u);
            return i;
        };
        // A Node, or the `node.<name>` BGPConfiguration that sets its listen port: the
        // node's facts before and after, every node's addresses counted.
        let mine = name == self.env.node_name;
        let i = if mine {
            impact(&self.store, &u, &self.env)
        } else {
            Impact::None
        };
        let before = NodeFacts::of(&self.store, &name);
        let shared_before = before.ips().any(|ip| self.addresses.shared(ip));
        if !self.store.apply(u) {
            return Impact::None;
        }
        let after = NodeFacts::of(&self.store, &name);
        self.addresses.remove(&before);
        self.addresses.add(&after);
        if mine {
            return i;
        }
        let shared = shared_before || after.ips().any(|ip| self.addresses.shared(ip));
        node_impact(
            &self.store,
            &self.env,
            NodeChange {
                name,
                before,
                after,
            },
            shared,
        )
    }

    fn derive_whole(&mut self) -> Change {
        self.stats.derived += 1;
        let fresh = derive(&self.store, &self.env);
        if self.derived.as_ref() == Some(&fresh) {
            return Change::Unchanged;
        }
        self.derived = Some(fresh);
        Change::Whole
    }

    /// Replaces the mesh sessions towards the changed nodes.
    fn patch_mesh(&mut self, changes: Vec<NodeChange>) -> Change {
        let Some(Ok(node)) = self.derived.as_mut() else {
            return self.derive_whole();
        };
        let me_info = match NodeFacts::of(&self.store, &self.env.node_name) {
            NodeFacts::Usable(i) => i,
            _ => return self.derive_whole(),
        };
        // A router id that no longer derives (it cannot change here, but the check is
        // cheap) sends us the full way.
        if router_id(&self.env, &me_info).ok() != Some(node.router_id) {
            return self.derive_whole();
        }
        self.stats.patched += 1;
        let empty = Default::default();
        let default_cfg = self.store.bgp_configuration("default");
        let cluster = Cluster {
            store: &self.store,
            nodes: &empty,
            global_as: default_cfg
                .and_then(|c| c.spec.as_number)
                .map_or(DEFAULT_AS, |a| a.0),
            global_listen_port: default_cfg
                .and_then(|c| c.spec.listen_port)
                .filter(|p| *p != 0),
            secret_namespace: &self.env.secret_namespace,
        };
        let mut ignored = Warnings::new();
        let settings = MeshSettings::of(&cluster, &mut ignored);
        let meshed =
            me_info.rr_cluster_id.is_empty() && crate::derive::peerings::mesh_enabled(&self.store);
        let me = Me {
            info: &me_info,
            asn: node.asn,
        };
        // What each touched session was before this batch: a name may move from one node
        // to another within a batch (one leaves an address, another takes it).
        let mut original: BTreeMap<(Family, String), Option<Peering>> = BTreeMap::new();
        for c in &changes {
            for family in [Family::V4, Family::V6] {
                let Some(my_ip) = me_info.ip(family) else {
                    continue;
                };
                let session = |f: &NodeFacts| match (f, meshed) {
                    (NodeFacts::Usable(n), true) => {
                        mesh_peering(cluster.global_listen_port, &me, family, my_ip, n, &settings)
                    }
                    _ => None,
                };
                let (old, new) = (session(&c.before), session(&c.after));
                if old == new {
                    continue;
                }
                if let Some(o) = old {
                    if let Ok(i) = find(&node.peerings, family, &o.name) {
                        let gone = node.peerings.remove(i);
                        original.entry((family, o.name)).or_insert(Some(gone));
                    }
                }
                if let Some(n) = new {
                    match find(&node.peerings, family, &n.name) {
                        Ok(i) => {
                            let was = std::mem::replace(&mut node.peerings[i], n);
                            original
                                .entry((family, was.name.clone()))
                                .or_insert(Some(was));
                        }
                        Err(i) => {
                            original.entry((family, n.name.clone())).or_insert(None);
                            node.peerings.insert(i, n);
                        }
                    }
                }
            }
        }
        let mut removed = Vec::new();
        let mut upserted = Vec::new();
        for ((family, name), was) in original {
            let now = find(&node.peerings, family, &name)
                .ok()
                .and_then(|i| node.peerings.get(i));
            match (was, now) {
                (Some(_), None) => removed.push(name),
                (was, Some(p)) if was.as_ref() != Some(p) => upserted.push(p.clone()),
                _ => {}
            }
        }
        if removed.is_empty() && upserted.is_empty() {
            Change::Unchanged
        } else {
            Change::Sessions { removed, upserted }
        }
    }
}

/// Where session `name` of `family` is (or goes) in a derivation's list: IPv4 sessions
/// first, each family sorted by name, as [`derive`] orders them.
fn find(peerings: &[Peering], family: Family, name: &str) -> Result<usize, usize> {
    peerings.binary_search_by(|q| (q.family, q.name.as_str()).cmp(&(family, name)))
}
