//! The RIB driver's peer registry, keyed by [`PeerId`], and the configuration changes that
//! go through it: peers added, removed and changed, named policies replaced.
//!
//! One entry per peer holds everything the RIB side knows of it: its settings, the
//! caller's link to it (channels in the daemon, nothing in the simulator), its session
//! while established, its output credit and its max-prefix count. An UPDATE finds its
//! peer by index, not by name.

use std::collections::BTreeMap;
use std::time::Instant;

use bgp_rib::policy::Policy;
use bgp_rib::{RibError, SessionInfo};
use tracing::{info, warn};

use super::{RibDriver, RibEvent};
use crate::policy::chain_policy;
use crate::settings::PeerSettings;
use crate::PeerId;

/// One peer as the RIB driver knows it.
#[derive(Debug)]
pub struct PeerEntry<L> {
    pub(super) id: PeerId,
    /// The peer in the [`bgp_rib::Rib`] (changes when the peer is re-added there).
    pub(super) rib_id: bgp_rib::PeerId,
    pub(super) settings: PeerSettings,
    pub(super) link: L,
    /// Session facts while established (kept to re-add the peer after a setting change).
    pub(super) session: Option<SessionInfo>,
    /// The session they belong to ([`RibInput::Up`](crate::RibInput::Up)).
    pub(super) session_seq: u64,
    /// Output slices the peer may still be handed before it takes some.
    pub(super) credit: u32,
    /// Running estimate of received prefixes since the last exact count (max-prefix).
    pub(super) estimate: u64,
    /// A max-prefix warning was logged for the current excess.
    pub(super) warned: bool,
    /// A route that could not be sent to this peer was logged this session.
    pub(super) unsendable_logged: bool,
    /// Paths past `add_path_receive_limit` were logged this session.
    pub(super) path_limit_logged: bool,
}

impl<L> PeerEntry<L> {
    /// The peer.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Its settings.
    pub fn settings(&self) -> &PeerSettings {
        &self.settings
    }

    /// The caller's link to it.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// What its session negotiated, while established.
    pub fn session(&self) -> Option<&SessionInfo> {
        self.session.as_ref()
    }

    /// The peer's handle in [`RibDriver::rib`], for queries of its tables.
    pub fn rib_id(&self) -> bgp_rib::PeerId {
        self.rib_id
    }

    /// The number of its current or last session ([`RibInput::Up`](crate::RibInput::Up)).
    pub fn session_seq(&self) -> u64 {
        self.session_seq
    }
}

/// The peers by index, and the RIB's handles back to them.
#[derive(Debug)]
pub(super) struct Registry<L> {
    /// Indexed by [`PeerId::index`].
    slots: Vec<Option<PeerEntry<L>>>,
    /// [`bgp_rib::PeerId`] index → the peer.
    by_rib: Vec<Option<PeerId>>,
}

impl<L> Default for Registry<L> {
    fn default() -> Self {
        Registry {
            slots: Vec::new(),
            by_rib: Vec::new(),
        }
    }
}

impl<L> Registry<L> {
    pub(super) fn get(&self, id: PeerId) -> Option<&PeerEntry<L>> {
        self.slots
            .get(id.index())
            .and_then(Option::as_ref)
            .filter(|e| e.id == id)
    }

    pub(super) fn get_mut(&mut self, id: PeerId) -> Option<&mut PeerEntry<L>> {
        self.slots
            .get_mut(id.index())
            .and_then(Option::as_mut)
            .filter(|e| e.id == id)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &PeerEntry<L>> {
        self.slots.iter().flatten()
    }

    /// Whoever holds `id`'s index, whatever its generation.
    fn holder(&self, id: PeerId) -> Option<PeerId> {
        self.slots
            .get(id.index())
            .and_then(Option::as_ref)
            .map(|e| e.id)
    }

    /// The peer the RIB knows as `rib_id`.
    pub(super) fn by_rib(&self, rib_id: bgp_rib::PeerId) -> Option<PeerId> {
        self.by_rib.get(rib_id.index() as usize).copied().flatten()
    }

    fn map_rib_id(&mut self, rib_id: bgp_rib::PeerId, to: Option<PeerId>) {
        let i = rib_id.index() as usize;
        if self.by_rib.len() <= i {
            self.by_rib.resize(i + 1, None);
        }
        if let Some(slot) = self.by_rib.get_mut(i) {
            *slot = to;
        }
    }

    fn insert(&mut self, entry: PeerEntry<L>) {
        let i = entry.id.index();
        self.map_rib_id(entry.rib_id, Some(entry.id));
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Some(entry);
        }
    }

    fn take(&mut self, id: PeerId) -> Option<PeerEntry<L>> {
        let entry = self
            .slots
            .get_mut(id.index())
            .and_then(|slot| slot.take_if(|e| e.id == id))?;
        self.map_rib_id(entry.rib_id, None);
        Some(entry)
    }

    /// The peer is known to the RIB as `rib_id` from now on.
    fn rekey(&mut self, id: PeerId, rib_id: bgp_rib::PeerId) {
        let Some(old) = self.get(id).map(|e| e.rib_id) else {
            return;
        };
        self.map_rib_id(old, None);
        self.map_rib_id(rib_id, Some(id));
        if let Some(e) = self.get_mut(id) {
            e.rib_id = rib_id;
        }
    }
}

impl<L, R: bgp_rib::NextHopResolver> RibDriver<L, R> {
    /// The peer `id`.
    pub fn peer(&self, id: PeerId) -> Option<&PeerEntry<L>> {
        self.peers.get(id)
    }

    /// Every peer, in index order.
    pub fn peers(&self) -> impl Iterator<Item = &PeerEntry<L>> {
        self.peers.iter()
    }

    /// The peer the RIB knows as `rib_id` (a path's [`bgp_rib::PathInfo::peer`]).
    pub fn peer_by_rib(&self, rib_id: bgp_rib::PeerId) -> Option<&PeerEntry<L>> {
        self.peers.by_rib(rib_id).and_then(|id| self.peers.get(id))
    }

    /// The peer named `name` (for queries by name; messages use [`PeerId`]).
    pub fn peer_by_name(&self, name: &str) -> Option<&PeerEntry<L>> {
        self.peers.iter().find(|e| e.settings.name == name)
    }

    /// Adds the peer `id` (down until its session comes up), reachable through `link`.
    /// An earlier peer holding the same index is removed first.
    pub fn add_peer(
        &mut self,
        id: PeerId,
        settings: PeerSettings,
        link: L,
    ) -> Result<(), RibError> {
        if let Some(old) = self.peers.holder(id) {
            self.remove_peer(old);
        }
        let rc = settings.rib_peer_config(&self.policies, self.rib.config().local_as);
        let rib_id = self.rib.add_peer(rc)?;
        self.peers.insert(PeerEntry {
            id,
            rib_id,
            settings,
            link,
            session: None,
            session_seq: 0,
            credit: 0,
            estimate: 0,
            warned: false,
            unsendable_logged: false,
            path_limit_logged: false,
        });
        self.changed();
        Ok(())
    }

    /// Removes the peer and every route learned from it. Returns its link.
    pub fn remove_peer(&mut self, id: PeerId) -> Option<L> {
        let entry = self.peers.take(id)?;
        if let Err(e) = self.rib.remove_peer(entry.rib_id) {
            warn!(peer = %entry.settings.name, error = %e, "RIB remove peer");
        }
        self.changed();
        self.recovery_ended(&[]);
        Some(entry.link)
    }

    /// Applies settings that need no session reset: policies by soft reconfiguration;
    /// reflection, next-hop and cluster settings by re-adding the peer to the RIB and
    /// asking it for a ROUTE-REFRESH ([`RibEvent::RouteRefresh`]); limits in place.
    pub fn update_peer(&mut self, now: Instant, id: PeerId, settings: PeerSettings) {
        let local_as = self.rib.config().local_as;
        let Some(entry) = self.peers.get_mut(id) else {
            return;
        };
        let old = std::mem::replace(&mut entry.settings, settings);
        let new = &entry.settings;
        let name = new.name.clone();
        if old.rib_structure_differs(new) {
            let rc = new.rib_peer_config(&self.policies, local_as);
            let (old_rib_id, session) = (entry.rib_id, entry.session.as_ref());
            let families = session.map(|s| s.families.clone()).unwrap_or_default();
            match self.rib.readd_peer(old_rib_id, rc, now) {
                Ok(rib_id) => {
                    self.peers.rekey(id, rib_id);
                    for family in families {
                        self.events
                            .push_back(RibEvent::RouteRefresh { peer: id, family });
                    }
                }
                Err(e) => warn!(peer = %name, error = %e, "cannot re-add peer"),
            }
        } else if old.import != new.import || old.export != new.export {
            self.reapply_policies(id);
        }
        if let Some(entry) = self.peers.get(id) {
            let limit = entry.settings.add_path_receive_limit;
            if let Err(e) = self.rib.set_add_path_receive_limit(entry.rib_id, limit) {
                warn!(peer = %name, error = %e, "add_path_receive_limit");
            }
            // A peer disabled in the configuration is not waited for.
            if let Err(e) = self
                .rib
                .set_peer_disabled(entry.rib_id, entry.settings.disabled)
            {
                warn!(peer = %name, error = %e, "disabled");
            }
        }
        self.changed();
        self.recovery_ended(&[]);
    }

    /// The named policies peers' chains refer to. Peers using a policy that changed are
    /// re-evaluated by soft reconfiguration (no ROUTE-REFRESH needed).
    pub fn set_policies(&mut self, policies: BTreeMap<String, Policy>) {
        let changed: Vec<String> = policies
            .keys()
            .chain(self.policies.keys())
            .filter(|n| policies.get(*n) != self.policies.get(*n))
            .cloned()
            .collect();
        self.policies = policies;
        let affected: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|e| {
                e.settings
                    .import
                    .iter()
                    .chain(&e.settings.export)
                    .any(|n| changed.contains(n))
            })
            .map(|e| e.id)
            .collect();
        for id in affected {
            self.reapply_policies(id);
        }
        self.changed();
    }

    /// The named policies in force.
    pub fn policies(&self) -> &BTreeMap<String, Policy> {
        &self.policies
    }

    fn reapply_policies(&mut self, id: PeerId) {
        let local_as = self.rib.config().local_as;
        let Some(entry) = self.peers.get(id) else {
            return;
        };
        let s = &entry.settings;
        let ebgp = s.is_ebgp(local_as);
        let import = chain_policy(&s.import, &self.policies, ebgp);
        let export = chain_policy(&s.export, &self.policies, ebgp);
        // Soft reconfiguration from the stored Adj-RIB-In (no ROUTE-REFRESH needed).
        match self.rib.set_policies(entry.rib_id, import, export) {
            Ok(()) => info!(peer = %s.name, "policies re-applied (soft reconfiguration)"),
            Err(e) => warn!(peer = %s.name, error = %e, "applying policies"),
        }
    }
}
