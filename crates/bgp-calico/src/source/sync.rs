//! The sans-IO core of a watched key-value datastore (etcd v3): what has been seen, from
//! which revision each watch resumes, and how listings and watch events become the one
//! stream of [`Update`]s a consumer applies to its
//! [`ResourceStore`](crate::store::ResourceStore).
//!
//! The datastore is read as an initial complete listing of a few key prefixes at one
//! revision, then one watch per prefix from the revision after it. Changes come in
//! datastore order per prefix (per kind, as calico-node's syncer watches each kind on its
//! own), not across prefixes. A watch that breaks is
//! resumed from the revision after the last one it delivered, so nothing is lost or seen
//! twice; a watch whose revision was compacted away (or a history that went backwards, a
//! restored cluster) cannot be resumed, and a fresh listing is taken instead. That listing
//! is compared with what was seen before and handed over as the same kind of change batch
//! (puts of what changed, deletes of what is gone), so the consumer only ever applies
//! diffs and its derivation stays incremental: a batch names exactly the resources that
//! changed.
//!
//! The driver (the etcd client task, [`crate::source::etcd`]) feeds this with what the
//! network gave it and sends the results on; everything here is deterministic and tested
//! without a datastore.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde::Serialize;

use crate::resource::etcd::decode_kv;
use crate::resource::ResourceKey;
use crate::store::Update;

/// Where a watched source stands (calico-node's syncer states).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncState {
    /// No complete listing yet: the consumer has nothing to derive from.
    WaitingForDatastore,
    /// A fresh listing is being taken (after a compaction or a lost history); what was
    /// delivered before stays valid until the difference arrives.
    Resyncing,
    /// Everything up to the current revision has been delivered.
    InSync,
}

impl SyncState {
    /// The state's name as `bgpctl show datastore` prints it.
    pub fn name(self) -> &'static str {
        match self {
            SyncState::WaitingForDatastore => "waiting-for-datastore",
            SyncState::Resyncing => "resyncing",
            SyncState::InSync => "in-sync",
        }
    }
}

/// What a watched source tells its consumer, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum SyncEvent {
    /// Changes in datastore order, ending at `revision`. The first batch after
    /// [`SyncState::WaitingForDatastore`] holds every resource; one after a resync holds
    /// the difference to what was delivered before. A batch is whole: apply it, then derive.
    Updates {
        /// The changes.
        updates: Vec<Update>,
        /// The datastore revision they bring the consumer to.
        revision: i64,
    },
    /// The source's state changed. [`SyncState::InSync`] follows the batch of a complete
    /// listing: from the first one on, the consumer may configure sessions.
    State(SyncState),
}

/// A key and its value as the datastore stores them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kv {
    /// The key.
    pub key: String,
    /// The value (JSON).
    pub value: Vec<u8>,
    /// The revision of its last modification.
    pub mod_revision: i64,
}

/// One event of a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvEvent {
    /// The key was created or modified.
    Put(Kv),
    /// The key was deleted at `mod_revision`.
    Delete {
        /// The key.
        key: String,
        /// The revision of the deletion.
        mod_revision: i64,
    },
}

impl KvEvent {
    fn revision(&self) -> i64 {
        match self {
            KvEvent::Put(kv) => kv.mod_revision,
            KvEvent::Delete { mod_revision, .. } => *mod_revision,
        }
    }
}

/// What was last seen under one datastore key.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    /// Hash of the value, to tell a changed value from an unchanged one in a relisting
    /// (revisions alone cannot: a restored cluster reuses them).
    value_hash: u64,
    /// The resource it holds, when it decoded (an undecodable value stands for nothing).
    resource: Option<ResourceKey>,
}

/// A problem with one key's value; the key is taken as absent until it is fixed, as
/// calico-node's syncer does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BadValue {
    /// The key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// The state of a watched datastore, fed by the driver.
#[derive(Clone, Debug)]
pub struct Syncer {
    prefixes: Vec<String>,
    seen: BTreeMap<String, Seen>,
    /// Per prefix: the revision its watch resumes from.
    resume: Vec<i64>,
    /// The highest revision delivered.
    revision: i64,
    state: SyncState,
    listed: bool,
    resyncs: u64,
    bad: Vec<BadValue>,
}

fn hash_of(value: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

impl Syncer {
    /// A syncer for the given key prefixes (each is listed and watched).
    pub fn new(prefixes: Vec<String>) -> Syncer {
        let n = prefixes.len();
        Syncer {
            prefixes,
            seen: BTreeMap::new(),
            resume: vec![0; n],
            revision: 0,
            state: SyncState::WaitingForDatastore,
            listed: false,
            resyncs: 0,
            bad: Vec::new(),
        }
    }

    /// The prefixes, in watch order (a watch's index is its position here).
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// The state.
    pub fn state(&self) -> SyncState {
        self.state
    }

    /// The highest revision delivered (0 before the first listing).
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Complete listings taken so far (the first one included).
    pub fn listings(&self) -> u64 {
        self.resyncs
    }

    /// Keys holding a resource now.
    pub fn resources(&self) -> usize {
        self.seen.values().filter(|s| s.resource.is_some()).count()
    }

    /// Whether a (fresh) listing must be taken before watching.
    pub fn needs_listing(&self) -> bool {
        !self.listed
    }

    /// The revision watch `index` resumes from (`None` for an unknown index, or before
    /// the first listing).
    pub fn watch_from(&self, index: usize) -> Option<i64> {
        self.resume.get(index).copied().filter(|_| self.listed)
    }

    /// Values that did not decode since the last call.
    pub fn take_bad_values(&mut self) -> Vec<BadValue> {
        std::mem::take(&mut self.bad)
    }

    /// A listing is about to be taken; returns the state change to announce, if any.
    pub fn listing_started(&mut self) -> Option<SyncEvent> {
        if self.state == SyncState::InSync {
            self.state = SyncState::Resyncing;
            return Some(SyncEvent::State(SyncState::Resyncing));
        }
        None
    }

    /// A watch could not resume from its revision (compacted, or the history changed):
    /// the next step is a fresh listing.
    pub fn history_lost(&mut self) {
        self.listed = false;
    }

    /// The complete content of every prefix at `revision`: returns the batch of what
    /// differs from what was delivered before, then [`SyncState::InSync`].
    pub fn listed(&mut self, revision: i64, kvs: Vec<Kv>) -> Vec<SyncEvent> {
        let mut fresh: BTreeMap<String, Kv> = BTreeMap::new();
        for kv in kvs {
            if self.prefix_of(&kv.key).is_some() {
                fresh.insert(kv.key.clone(), kv);
            }
        }
        let mut updates = Vec::new();
        let gone: Vec<String> = self
            .seen
            .keys()
            .filter(|k| !fresh.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(Seen {
                resource: Some(rk), ..
            }) = self.seen.remove(&key)
            {
                updates.push(Update::Delete(rk));
            }
        }
        for (key, kv) in fresh {
            let h = hash_of(&kv.value);
            if self.seen.get(&key).is_some_and(|s| s.value_hash == h) {
                continue;
            }
            updates.extend(self.put(kv, h));
        }
        self.resume.iter_mut().for_each(|r| *r = revision + 1);
        self.revision = revision;
        self.listed = true;
        self.resyncs += 1;
        self.state = SyncState::InSync;
        vec![
            SyncEvent::Updates { updates, revision },
            SyncEvent::State(SyncState::InSync),
        ]
    }

    /// Events of watch `index`, in order: returns the batch to deliver (`None` when
    /// nothing changed). Events at or below the watch's resume point were delivered
    /// already (a resumed watch may repeat them) and are skipped.
    pub fn watched(&mut self, index: usize, events: Vec<KvEvent>) -> Option<SyncEvent> {
        let from = *self.resume.get(index)?;
        let mut updates = Vec::new();
        let mut last = None;
        for ev in events {
            let rev = ev.revision();
            if rev < from {
                continue;
            }
            last = Some(rev);
            match ev {
                KvEvent::Put(kv) => {
                    if self.prefix_of(&kv.key).is_none() {
                        continue;
                    }
                    let h = hash_of(&kv.value);
                    updates.extend(self.put(kv, h));
                }
                KvEvent::Delete { key, .. } => {
                    if let Some(Seen {
                        resource: Some(rk), ..
                    }) = self.seen.remove(&key)
                    {
                        updates.push(Update::Delete(rk));
                    }
                }
            }
        }
        let last = last?;
        if let Some(r) = self.resume.get_mut(index) {
            *r = last + 1;
        }
        self.revision = self.revision.max(last);
        (!updates.is_empty()).then_some(SyncEvent::Updates {
            updates,
            revision: self.revision,
        })
    }

    /// Watch `index` has seen everything up to `revision` (a progress notification):
    /// it resumes after it.
    pub fn progress(&mut self, index: usize, revision: i64) {
        if let Some(r) = self.resume.get_mut(index) {
            *r = (*r).max(revision + 1);
        }
    }

    fn prefix_of(&self, key: &str) -> Option<usize> {
        self.prefixes.iter().position(|p| key.starts_with(p))
    }

    /// Records a new value of `kv.key`; the update it means, if any.
    fn put(&mut self, kv: Kv, value_hash: u64) -> Option<Update> {
        let decoded = decode_kv(&kv.key, &kv.value);
        let before = self.seen.get(&kv.key).and_then(|s| s.resource.clone());
        let (resource, update) = match decoded {
            Ok(Some(r)) => (Some(r.key()), Some(Update::Put(Box::new(r)))),
            Ok(None) => (None, before.map(Update::Delete)),
            Err(e) => {
                self.bad.push(BadValue {
                    key: kv.key.clone(),
                    message: e.to_string(),
                });
                (None, before.map(Update::Delete))
            }
        };
        self.seen.insert(
            kv.key,
            Seen {
                value_hash,
                resource,
            },
        );
        update
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::etcd::{AFFINITY_PREFIX, RESOURCES_PREFIX};
    use crate::resource::Kind;

    fn node_kv(name: &str, ip: &str, rev: i64) -> Kv {
        Kv {
            key: format!("{RESOURCES_PREFIX}nodes/{name}"),
            value: format!(
                r#"{{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{{"name":"{name}"}},"spec":{{"bgp":{{"ipv4Address":"{ip}"}}}}}}"#
            )
            .into_bytes(),
            mod_revision: rev,
        }
    }

    fn syncer() -> Syncer {
        Syncer::new(vec![
            format!("{RESOURCES_PREFIX}nodes/"),
            format!("{AFFINITY_PREFIX}n1/"),
        ])
    }

    fn updates(ev: &SyncEvent) -> Vec<String> {
        match ev {
            SyncEvent::Updates { updates, .. } => updates
                .iter()
                .map(|u| match u {
                    Update::Put(r) => format!("put {}", r.key()),
                    Update::Delete(k) => format!("delete {k}"),
                })
                .collect(),
            SyncEvent::State(s) => vec![s.name().to_owned()],
        }
    }

    #[test]
    fn first_listing_then_watch_events_in_order() {
        let mut s = syncer();
        assert!(s.needs_listing());
        assert_eq!(s.watch_from(0), None);
        assert_eq!(s.listing_started(), None, "nothing to announce yet");
        let ev = s.listed(
            10,
            vec![
                node_kv("a", "10.0.0.1/24", 3),
                node_kv("b", "10.0.0.2/24", 4),
                // Not under a watched prefix: not ours.
                Kv {
                    key: "/calico/felix/v2/x".into(),
                    value: b"{}".to_vec(),
                    mod_revision: 5,
                },
            ],
        );
        assert_eq!(updates(&ev[0]), ["put Node a", "put Node b"]);
        assert_eq!(ev[1], SyncEvent::State(SyncState::InSync));
        assert_eq!((s.watch_from(0), s.watch_from(1)), (Some(11), Some(11)));
        let ev = s
            .watched(
                0,
                vec![
                    KvEvent::Put(node_kv("c", "10.0.0.3/24", 11)),
                    KvEvent::Delete {
                        key: format!("{RESOURCES_PREFIX}nodes/a"),
                        mod_revision: 12,
                    },
                ],
            )
            .unwrap();
        assert_eq!(updates(&ev), ["put Node c", "delete Node a"]);
        assert_eq!(s.revision(), 12);
        assert_eq!((s.watch_from(0), s.watch_from(1)), (Some(13), Some(11)));
        // A resumed watch repeating what was delivered is not delivered twice.
        assert_eq!(
            s.watched(0, vec![KvEvent::Put(node_kv("c", "10.0.0.3/24", 11))]),
            None
        );
        s.progress(1, 20);
        assert_eq!(s.watch_from(1), Some(21));
        assert_eq!(s.resources(), 2);
    }

    #[test]
    fn a_fresh_listing_is_delivered_as_the_difference() {
        let mut s = syncer();
        s.listed(
            10,
            vec![
                node_kv("a", "10.0.0.1/24", 3),
                node_kv("b", "10.0.0.2/24", 4),
                node_kv("c", "10.0.0.3/24", 5),
            ],
        );
        s.history_lost();
        assert!(s.needs_listing());
        assert_eq!(
            s.listing_started(),
            Some(SyncEvent::State(SyncState::Resyncing))
        );
        assert_eq!(s.state(), SyncState::Resyncing);
        let ev = s.listed(
            40,
            vec![
                node_kv("a", "10.0.0.1/24", 3),
                node_kv("b", "10.0.0.9/24", 30),
                node_kv("d", "10.0.0.4/24", 31),
            ],
        );
        assert_eq!(
            updates(&ev[0]),
            ["delete Node c", "put Node b", "put Node d"],
            "only what changed"
        );
        assert_eq!(updates(&ev[1]), ["in-sync"]);
        assert_eq!(s.listings(), 2);
        // A restored cluster may list at an older revision with other values: values
        // decide, not revisions.
        s.history_lost();
        let ev = s.listed(
            5,
            vec![
                node_kv("a", "10.0.0.1/24", 3),
                node_kv("b", "10.0.0.2/24", 4),
                node_kv("d", "10.0.0.4/24", 31),
            ],
        );
        assert_eq!(updates(&ev[0]), ["put Node b"]);
        assert_eq!(s.watch_from(0), Some(6));
    }

    #[test]
    fn a_bad_value_stands_for_no_resource() {
        let mut s = syncer();
        s.listed(10, vec![node_kv("a", "10.0.0.1/24", 3)]);
        let bad = Kv {
            key: format!("{RESOURCES_PREFIX}nodes/a"),
            value: b"{not json".to_vec(),
            mod_revision: 11,
        };
        let ev = s.watched(0, vec![KvEvent::Put(bad.clone())]).unwrap();
        assert_eq!(updates(&ev), ["delete Node a"]);
        let b = s.take_bad_values();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].key, bad.key);
        assert!(s.take_bad_values().is_empty());
        // Deleting the bad key changes nothing more; fixing it brings the node back.
        assert_eq!(
            s.watched(
                0,
                vec![KvEvent::Delete {
                    key: bad.key.clone(),
                    mod_revision: 12
                }]
            ),
            None
        );
        let ev = s
            .watched(0, vec![KvEvent::Put(node_kv("a", "10.0.0.5/24", 13))])
            .unwrap();
        assert_eq!(updates(&ev), ["put Node a"]);
        assert_eq!(s.resources(), 1);
    }

    #[test]
    fn affinities_of_this_node() {
        let mut s = syncer();
        let ev = s.listed(
            7,
            vec![Kv {
                key: format!("{AFFINITY_PREFIX}n1/ipv4/block/10.0.1.0-26"),
                value: br#"{"state":"confirmed","deleted":false}"#.to_vec(),
                mod_revision: 2,
            }],
        );
        let SyncEvent::Updates { updates, revision } = &ev[0] else {
            panic!("no batch")
        };
        assert_eq!(*revision, 7);
        assert!(matches!(&updates[..], [Update::Put(r)] if r.kind() == Kind::BlockAffinity));
        assert_eq!(s.watched(5, vec![]), None, "no such watch");
    }
}
