//! UPDATEs out: each peer's queued changes encoded a bounded slice at a time, as the peer
//! takes them.
//!
//! The RIB never waits on a peer. A peer holds at most [`RibDriverConfig::out_window`]
//! slices it has not taken into its session yet (its credit); a peer without credit keeps
//! its changes queued inside the RIB, merged per prefix, until it takes a slice
//! ([`RibDriver::handle_output_taken`]). So one slow peer neither blocks the others nor
//! grows a queue outside the RIB, and a whole table (session start, route refresh) costs a
//! few slices of frames at a time and its first UPDATEs leave at once.
//!
//! Peers take turns a slice at a time, in the RIB's peer order, so route-reflector
//! clients with the same queue are encoded one after the other and share the UPDATEs
//! (`Rib::take_encoded` reuses the previous slice's frames).
//!
//! [`RibDriverConfig::out_window`]: super::RibDriverConfig::out_window

use tracing::{debug, warn};

use super::RibDriver;
use crate::message::OutputSlice;
use crate::PeerId;

/// Whose turn it is to be handed a slice.
#[derive(Debug, Default)]
pub(super) struct Turns {
    /// This round's peers, and how far the round got.
    round: Vec<PeerId>,
    pos: usize,
    /// Peers with more queued after their slice of this round.
    next: Vec<PeerId>,
    /// Something changed since the peers with output were last listed.
    pub(super) stale: bool,
}

impl<L, R: bgp_rib::NextHopResolver> RibDriver<L, R> {
    /// The peer `peer` took a slice of session `session` into its session's queue: it
    /// may be handed one more. Credit for an earlier session is ignored (a new session
    /// starts with a full window).
    pub fn handle_output_taken(&mut self, peer: PeerId, session: u64) {
        let window = self.config.out_window;
        if let Some(e) = self.peers.get_mut(peer) {
            if e.session.is_some() && e.session_seq == session && e.credit < window {
                e.credit += 1;
                self.turns.stale = true;
            }
        }
    }

    /// The next slice of UPDATEs to hand a peer, if a peer with credit has any queued.
    /// Runs the decision process first when something changed.
    pub fn poll_output(&mut self) -> Option<(PeerId, OutputSlice)> {
        self.decide();
        loop {
            if self.turns.pos >= self.turns.round.len() {
                if !self.turns.next.is_empty() {
                    self.turns.round = std::mem::take(&mut self.turns.next);
                } else if std::mem::take(&mut self.turns.stale) {
                    // Empty while the RIB defers selection after a graceful restart.
                    let with_output = self.rib.peers_with_output();
                    self.turns.round = with_output
                        .into_iter()
                        .filter_map(|r| self.peers.by_rib(r))
                        .filter(|id| self.peers.get(*id).is_some_and(|e| e.credit > 0))
                        .collect();
                } else {
                    self.turns.round.clear();
                    return None;
                }
                self.turns.pos = 0;
                if self.turns.round.is_empty() {
                    return None;
                }
            }
            let id = self.turns.round.get(self.turns.pos).copied()?;
            self.turns.pos += 1;
            if let Some(slice) = self.take_slice(id) {
                return Some((id, slice));
            }
        }
    }

    /// One slice of `id`'s queue, if it has credit and anything queued.
    fn take_slice(&mut self, id: PeerId) -> Option<OutputSlice> {
        let slice_bytes = self.config.out_slice_bytes;
        let entry = self.peers.get(id).filter(|e| e.credit > 0)?;
        let (rib_id, session) = (entry.rib_id, entry.session_seq);
        let mut frames = Vec::new();
        let encoded = match self.rib.take_encoded(rib_id, slice_bytes, &mut frames) {
            Ok(e) => e,
            Err(e) => {
                warn!(peer = %entry.settings.name, error = %e, "encoding updates");
                return None;
            }
        };
        let entry = self.peers.get_mut(id)?;
        if !frames.is_empty() {
            entry.credit -= 1;
        }
        if encoded.more && entry.credit > 0 {
            self.turns.next.push(id);
        }
        if !encoded.unsendable.is_empty() {
            self.log_unsendable(id, &encoded.unsendable);
        }
        (!frames.is_empty()).then_some(OutputSlice { session, frames })
    }

    /// Routes that could not be encoded for a peer (RFC 8654 3: withdrawn towards it):
    /// one warning per session, the rest at debug level, so a peer sending many such
    /// routes cannot flood the log.
    fn log_unsendable(&mut self, id: PeerId, routes: &[bgp_rib::Unsendable]) {
        let Some(entry) = self.peers.get_mut(id) else {
            return;
        };
        let (Some(first), n) = (routes.first(), routes.len()) else {
            return;
        };
        let name = &entry.settings.name;
        if entry.unsendable_logged {
            debug!(peer = %name, routes = n, prefix = %first.nlri.prefix, "routes not sent to the peer");
            return;
        }
        entry.unsendable_logged = true;
        warn!(
            peer = %name,
            prefix = %first.nlri.prefix,
            routes = n,
            reason = %first.reason,
            "routes cannot be sent to this peer and are withdrawn towards it (RFC 8654 3); \
             further ones this session are logged at debug level"
        );
    }
}
