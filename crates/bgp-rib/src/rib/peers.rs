//! The peer table: each configured peer's static facts and its current session.
//!
//! A peer is known by its index ([`PeerIdx`], shown outside as [`PeerId`]): index 0 is
//! the local pseudo-peer (static, kernel and connected routes) and never has an entry;
//! indices are not reused while the [`Rib`](crate::Rib) lives, so a stale id cannot
//! name a newer peer. The other per-peer state lives with its owner, in tables indexed
//! the same way: the store's prefix logs (Adj-RIB-In index), the outbound state
//! (Adj-RIB-Out), the restart state (stale routes, End-of-RIB). Keeping them apart lets
//! the export of one prefix read every peer's facts here while it writes one peer's
//! Adj-RIB-Out there.

use std::net::Ipv4Addr;

use bgp_proto::Family;

use super::config::{PeerConfig, PeerId, SessionInfo};
use super::error::RibError;
use crate::policy::PeerType;
use crate::table::{PeerIdx, MAX_PEERS};

/// What the decision process, the export rules and policies read of a peer.
#[derive(Debug)]
pub(crate) struct PeerState {
    pub cfg: PeerConfig,
    /// External peer: its AS differs from ours on this session (RFC 4271 1.1).
    pub ebgp: bool,
    /// The session's negotiated facts while it is established.
    pub session: Option<SessionInfo>,
    /// BGP Identifier of the last session: kept while its routes are stale, for the
    /// decision's tie-break (RFC 4271 9.1.2.2 f) and reflection (RFC 4456 8).
    pub router_id: Ipv4Addr,
}

impl PeerState {
    pub fn new(cfg: PeerConfig, local_as: u32) -> PeerState {
        PeerState {
            ebgp: cfg.remote_as != cfg.local_as.unwrap_or(local_as),
            cfg,
            session: None,
            router_id: Ipv4Addr::UNSPECIFIED,
        }
    }

    pub fn peer_type(&self) -> PeerType {
        if self.ebgp {
            PeerType::Ebgp
        } else {
            PeerType::Ibgp
        }
    }

    /// The session, when it is established and negotiated `family`.
    pub fn up_for(&self, family: Family) -> Option<&SessionInfo> {
        self.session
            .as_ref()
            .filter(|s| s.families.contains(&family))
    }
}

/// The configured peers by index.
#[derive(Debug)]
pub(crate) struct PeerTable {
    slots: Vec<Option<PeerState>>,
}

impl Default for PeerTable {
    fn default() -> Self {
        // Index 0: the local pseudo-peer.
        PeerTable { slots: vec![None] }
    }
}

impl PeerTable {
    /// Add a peer; its index is the next unused one.
    pub fn add(&mut self, state: PeerState) -> Result<PeerIdx, RibError> {
        if self.slots.len() >= MAX_PEERS {
            return Err(RibError::TooManyPeers);
        }
        self.slots.push(Some(state));
        Ok((self.slots.len() - 1) as PeerIdx)
    }

    pub fn remove(&mut self, idx: PeerIdx) {
        if let Some(slot) = self.slots.get_mut(idx as usize) {
            *slot = None;
        }
    }

    /// Indices handed out so far (the bound of every per-peer table).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn any(&self) -> bool {
        self.slots.iter().any(Option::is_some)
    }

    pub fn get(&self, idx: PeerIdx) -> Option<&PeerState> {
        self.slots.get(idx as usize).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, idx: PeerIdx) -> Option<&mut PeerState> {
        self.slots.get_mut(idx as usize).and_then(Option::as_mut)
    }

    /// The peer `id`, or [`RibError::UnknownPeer`].
    pub fn by_id(&self, id: PeerId) -> Result<&PeerState, RibError> {
        self.get(id.0).ok_or(RibError::UnknownPeer(id))
    }

    pub fn by_id_mut(&mut self, id: PeerId) -> Result<&mut PeerState, RibError> {
        self.get_mut(id.0).ok_or(RibError::UnknownPeer(id))
    }

    /// The session of peer `id`: [`RibError::UnknownPeer`] or [`RibError::PeerDown`]
    /// when there is none.
    pub fn session(&self, id: PeerId) -> Result<&SessionInfo, RibError> {
        self.by_id(id)?
            .session
            .as_ref()
            .ok_or(RibError::PeerDown(id))
    }

    /// The configured peers, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (PeerIdx, &PeerState)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i as PeerIdx, p.as_ref()?)))
    }
}
