//! The life cycle of a peer: configured ([`Rib::add_peer`]), its sessions coming up and
//! going down, End-of-RIB and route refresh from it, its policies changing, removed.
//!
//! Each step updates every owner of per-peer state in turn (peer table, store, outbound,
//! restart); this is the only place peers are added and removed, so those tables stay
//! indexed alike.

use std::sync::Arc;
use std::time::Instant;

use bgp_proto::Family;
use ipnet::{Ipv4Net, Ipv6Net};

use super::config::PeerId;
use super::config::{PeerConfig, SessionInfo};
use super::error::RibError;
use super::peers::PeerState;
use super::state::Rib;
use crate::policy::{CompiledPolicy, PeerType};

impl Rib {
    /// Configure a peer. It starts down.
    pub fn add_peer(&mut self, cfg: PeerConfig) -> Result<PeerId, RibError> {
        let disabled = cfg.disabled;
        let idx = self.peers.add(PeerState::new(cfg, self.cfg.local_as))?;
        self.store.add_peer(idx);
        self.out.add_peer(idx);
        self.restart.add_peer(idx, disabled);
        Ok(PeerId(idx))
    }

    /// Remove a peer and every route learned from it. Call [`Rib::process`] afterwards.
    pub fn remove_peer(&mut self, id: PeerId) -> Result<(), RibError> {
        self.drop_peer(id)?;
        // The recovery may have been waiting for it.
        self.check_recovery(None);
        Ok(())
    }

    /// Re-add a peer under `cfg` (a change only a new peer in the table gives: route
    /// reflection, next hop, cluster id). Its routes are removed; if its session is
    /// established the peer comes up again at once with that session, keeping its
    /// End-of-RIB record: the recovery after our restart still waits for the End-of-RIBs
    /// it has not sent, and a peer that sent its table still counts. Returns its new id.
    /// Call [`Rib::process`] afterwards (and ask the peer for a route refresh).
    pub fn readd_peer(
        &mut self,
        id: PeerId,
        cfg: PeerConfig,
        now: Instant,
    ) -> Result<PeerId, RibError> {
        let session = self.peers.session(id).ok().cloned();
        let record = self.restart.eor_record(id.0);
        self.drop_peer(id)?;
        let new = match self.add_peer(cfg) {
            Ok(new) => new,
            Err(e) => {
                // Gone, then: the recovery may have been waiting for it.
                self.check_recovery(None);
                return Err(e);
            }
        };
        if let Some(session) = session {
            self.peer_up(new, session, now)?;
        }
        if let Some(record) = record {
            self.restart.restore_eor_record(new.0, record);
        }
        self.check_recovery(None);
        Ok(new)
    }

    /// Removes the peer from every table.
    fn drop_peer(&mut self, id: PeerId) -> Result<(), RibError> {
        self.peers.by_id(id)?;
        self.out.remove_peer(id.0, &mut self.store.attrs);
        self.store.drop_paths(id.0, |_| true);
        self.store.remove_peer(id.0);
        self.restart.remove_peer(id.0);
        self.peers.remove(id.0);
        Ok(())
    }

    /// The peers, in id order: id, configuration, established.
    pub fn peers(&self) -> impl Iterator<Item = (PeerId, &PeerConfig, bool)> {
        self.peers
            .iter()
            .map(|(i, p)| (PeerId(i), &p.cfg, p.session.is_some()))
    }

    /// Whether the peer is an eBGP peer.
    pub fn peer_type(&self, id: PeerId) -> Result<PeerType, RibError> {
        Ok(self.peers.by_id(id)?.peer_type())
    }

    /// The peer's configuration.
    pub fn peer_config(&self, id: PeerId) -> Result<&PeerConfig, RibError> {
        Ok(&self.peers.by_id(id)?.cfg)
    }

    /// Whether the peer is established.
    pub fn is_up(&self, id: PeerId) -> bool {
        self.peers.by_id(id).is_ok_and(|p| p.session.is_some())
    }

    /// What the peer's current session negotiated (`None` while it is down).
    pub fn session(&self, id: PeerId) -> Option<&SessionInfo> {
        self.peers.session(id).ok()
    }

    /// The session reached Established. Stale routes from a previous session are kept for
    /// families the new session still covers with forwarding state preserved (RFC 4724 4.2),
    /// dropped otherwise, and wait at most `stale_path_time` for End-of-RIB. The whole
    /// table is queued for the peer, followed by End-of-RIB per family. Call
    /// [`Rib::process`] afterwards.
    pub fn peer_up(
        &mut self,
        id: PeerId,
        session: SessionInfo,
        now: Instant,
    ) -> Result<(), RibError> {
        let stale_time = self.cfg.stale_path_time;
        let had_stale = self.restart.has_stale(id.0);
        let p = self.peers.by_id_mut(id)?;
        // Stale paths kept from the last session compete and are reflected with the
        // peer's router id (tie-break, ORIGINATOR_ID): a new one means deciding again.
        let new_router_id = p.router_id != session.router_id && had_stale;
        p.router_id = session.router_id;
        let sweep = self.restart.session_up(id.0, &session, now, stale_time);
        let ap4 = session.codec.sends_path_id(Family::IPV4_UNICAST);
        let ap6 = session.codec.sends_path_id(Family::IPV6_UNICAST);
        let families = session.families.clone();
        p.session = Some(session);
        if let Some(o) = self.out.get_mut(id.0) {
            o.eor_due = families;
        }
        self.out.reset(id.0, ap4, ap6, &mut self.store.attrs);
        for f in sweep {
            self.store.drop_paths(id.0, |fam| fam == f);
        }
        if new_router_id {
            // Cached exports of its routes name the old one.
            self.out.clear_export_caches();
            self.store.touch_peer_paths::<Ipv4Net>(id.0);
            self.store.touch_peer_paths::<Ipv6Net>(id.0);
        }
        self.full_export::<Ipv4Net>(id.0);
        self.full_export::<Ipv6Net>(id.0);
        // A peer without graceful restart is not waited for: it may complete the wait.
        self.check_recovery(None);
        Ok(())
    }

    /// The session left Established. With `graceful` (the peer advertised graceful restart
    /// and the session ended by a transport failure, or by a NOTIFICATION with RFC 8538's
    /// N bit) routes of the families it covered become stale and stay usable until the
    /// returned deadline (restart time); otherwise they are removed. Call
    /// [`Rib::process`] afterwards.
    pub fn peer_down(
        &mut self,
        id: PeerId,
        graceful: bool,
        now: Instant,
    ) -> Result<Option<Instant>, RibError> {
        let p = self.peers.by_id_mut(id)?;
        let Some(session) = p.session.take() else {
            return Ok(None);
        };
        if let Some(o) = self.out.get_mut(id.0) {
            o.eor_due.clear();
        }
        self.out.reset(id.0, false, false, &mut self.store.attrs);
        let (kept, deadline) = self.restart.session_down(id.0, &session, graceful, now);
        self.store
            .drop_paths(id.0, |f| !kept.iter().any(|k| k.0 == f));
        for (f, llgr) in kept {
            if llgr {
                self.store.enter_llgr(id.0, f);
            } else {
                self.store.mark_stale(id.0, f);
            }
        }
        Ok(deadline)
    }

    /// End-of-RIB received from the peer for `family`: sweep its stale routes (RFC 4724
    /// 4.2); once it has sent End-of-RIB for every family of its session it counts as
    /// done for the recovery after our own restart ([`Rib::recovery`]).
    pub fn end_of_rib(&mut self, id: PeerId, family: Family) -> Result<(), RibError> {
        let p = self.peers.by_id(id)?;
        let had_stale = self.restart.end_of_rib(id.0, family, p.session.as_ref());
        // Without a stale phase for this family there is nothing to sweep (and no table scan).
        if had_stale {
            self.store.sweep_stale(id.0, family);
        }
        self.check_recovery(None);
        Ok(())
    }

    /// The peer asked for a route refresh (RFC 2918): queue everything it holds in
    /// `family` again. Returns false when the request is ignored because the previous
    /// one is still being answered for that family (its answer already covers the whole
    /// Adj-RIB-Out, and queueing it again would only repeat the work: a peer looping
    /// refreshes without reading costs nothing more). During selection deferral there is
    /// nothing to do: the whole table goes out when it ends.
    pub fn route_refresh(&mut self, id: PeerId, family: Family) -> Result<bool, RibError> {
        self.peers.session(id)?;
        if self.out.is_held() {
            return Ok(true);
        }
        Ok(self
            .out
            .get_mut(id.0)
            .is_some_and(|o| o.adj.refresh(family, &mut self.store.attrs)))
    }

    /// Replace a peer's policies (soft reconfiguration): received routes are re-run through
    /// the new import policy from the stored Adj-RIB-In and everything is re-exported
    /// through the new export policy; only differences reach the peer. Call
    /// [`Rib::process`] afterwards.
    pub fn set_policies(
        &mut self,
        id: PeerId,
        import: Arc<CompiledPolicy>,
        export: Arc<CompiledPolicy>,
    ) -> Result<(), RibError> {
        let p = self.peers.by_id_mut(id)?;
        p.cfg.import = import;
        p.cfg.export = export;
        let up = p.session.is_some();
        if let Some(o) = self.out.get_mut(id.0) {
            o.cache = None;
        }
        self.reimport::<Ipv4Net>(id.0);
        self.reimport::<Ipv6Net>(id.0);
        if up {
            self.full_export::<Ipv4Net>(id.0);
            self.full_export::<Ipv6Net>(id.0);
        }
        Ok(())
    }

    /// Change a peer's [`PeerConfig::add_path_receive_limit`] (configuration reload). It
    /// applies to paths received from then on; paths already held past a lowered limit
    /// stay until the peer withdraws them.
    pub fn set_add_path_receive_limit(&mut self, id: PeerId, limit: usize) -> Result<(), RibError> {
        self.peers.by_id_mut(id)?.cfg.add_path_receive_limit = limit;
        Ok(())
    }
}
