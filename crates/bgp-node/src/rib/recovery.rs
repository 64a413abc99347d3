//! Graceful-restart recovery of the node as a whole: has every peer sent its whole table?
//!
//! RFC 4724 section 4.1: the restarting speaker waits for End-of-RIB from all its peers,
//! excluding those that do not advertise the graceful restart capability and those that
//! have restarted themselves (Restart State bit set): such a peer counts as complete as
//! soon as its session is established. A configured peer that never comes up holds the
//! recovery until its deadline. A disabled peer is not waited for. Once over, recovery
//! stays over: a session lost later does not bring it back.
//!
//! This is the node's one End-of-RIB tracker. The RIB's own selection deferral (RFC 4724
//! 4.1, [`bgp_rib::Rib::defer_selection`]) ends on the same End-of-RIBs or the same
//! deadline; the FIB learns that recovery is over from the RIB driver
//! ([`FibBatch::recovery_done`](super::FibBatch::recovery_done)), with everything the
//! RIB learned until then, and only then removes what a previous run left in the kernel.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use bgp_proto::{Family, GracefulRestart};

use crate::PeerId;

/// Which peers are still expected to send their whole table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryStatus {
    /// Peers that sent their whole initial table.
    pub complete: usize,
    /// Names of the peers still expected to, sorted.
    pub waiting: Vec<String>,
}

/// The tracker (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Recovery {
    /// Set by [`Recovery::start`]: before, the peers are not all known yet.
    deadline: Option<Instant>,
    done: bool,
    /// Sessions still sending their initial table: families negotiated, families done.
    open: HashMap<PeerId, (Vec<Family>, Vec<Family>)>,
    /// Peers that completed an initial table since we started.
    complete: HashSet<PeerId>,
}

impl Recovery {
    pub(super) fn start(&mut self, deadline: Instant) {
        if !self.done {
            self.deadline = Some(deadline);
        }
    }

    /// Recovery was started and is not over.
    pub(super) fn is_running(&self) -> bool {
        self.deadline.is_some() && !self.done
    }

    /// When it ends at the latest, while it runs.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline.filter(|_| !self.done)
    }

    /// A session reached Established with these families and the peer's graceful restart
    /// capability.
    pub(super) fn session_up(
        &mut self,
        peer: PeerId,
        families: &[Family],
        graceful_restart: Option<&GracefulRestart>,
    ) {
        if self.complete.contains(&peer) {
            return;
        }
        let exempt = graceful_restart.is_none_or(|gr| gr.restart_state);
        if exempt || families.is_empty() {
            self.complete.insert(peer);
        } else {
            self.open.insert(peer, (families.to_vec(), Vec::new()));
        }
    }

    /// End-of-RIB (RFC 4724 section 2) received from `peer` for `family`.
    pub(super) fn end_of_rib(&mut self, peer: PeerId, family: Family) {
        let Some((want, seen)) = self.open.get_mut(&peer) else {
            return;
        };
        if !seen.contains(&family) {
            seen.push(family);
        }
        if want.iter().all(|f| seen.contains(f)) {
            self.open.remove(&peer);
            self.complete.insert(peer);
        }
    }

    /// The peer is gone.
    pub(super) fn forget(&mut self, peer: PeerId) {
        self.open.remove(&peer);
        self.complete.remove(&peer);
    }

    /// The state over the given enabled peers (nobody is waited for once recovery is
    /// over).
    pub(super) fn status<'a>(
        &self,
        enabled: impl Iterator<Item = (PeerId, &'a str)>,
    ) -> RecoveryStatus {
        let mut s = RecoveryStatus::default();
        for (id, name) in enabled {
            if self.done || self.complete.contains(&id) {
                s.complete += 1;
            } else {
                s.waiting.push(name.to_string());
            }
        }
        s.waiting.sort();
        s
    }

    /// Ends recovery when it runs and `status` waits for nobody, or `now` is past the
    /// deadline. True when it ended here.
    pub(super) fn check(&mut self, status: &RecoveryStatus, now: Option<Instant>) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        if self.done {
            return false;
        }
        let over = now.is_some_and(|n| n >= deadline);
        if status.waiting.is_empty() || over {
            self.done = true;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PeerIds;

    fn gr(restart_state: bool) -> GracefulRestart {
        GracefulRestart {
            restart_state,
            notification: false,
            restart_time: 120,
            families: Vec::new(),
        }
    }

    #[test]
    fn every_family_counts_and_a_complete_peer_stays_complete() {
        let mut ids = PeerIds::default();
        let (a, b, off) = (ids.allocate(), ids.allocate(), ids.allocate());
        let names = [(a, "a"), (b, "b")];
        let both = [Family::IPV4_UNICAST, Family::IPV6_UNICAST];
        let mut t = Recovery::default();
        assert_eq!(t.status(names.into_iter()).complete, 0);
        t.session_up(a, &both, Some(&gr(false)));
        t.end_of_rib(a, Family::IPV4_UNICAST);
        t.end_of_rib(b, Family::IPV4_UNICAST); // not up: ignored
        assert_eq!(t.status(names.into_iter()).waiting, vec!["a", "b"]);
        t.end_of_rib(a, Family::IPV6_UNICAST);
        t.session_up(b, &[Family::IPV4_UNICAST], Some(&gr(false)));
        t.end_of_rib(b, Family::IPV4_UNICAST);
        let s = t.status(names.into_iter());
        assert_eq!((s.complete, s.waiting.len()), (2, 0));
        // A new session does not reopen it; a peer never up is still waited for.
        t.session_up(a, &both, Some(&gr(false)));
        let all = names.into_iter().chain([(off, "off")]);
        assert_eq!(t.status(all).waiting, vec!["off"]);
    }

    #[test]
    fn peers_without_graceful_restart_or_restarting_are_not_waited_for() {
        let mut ids = PeerIds::default();
        let (plain, restarting, gr_peer) = (ids.allocate(), ids.allocate(), ids.allocate());
        let v4 = [Family::IPV4_UNICAST];
        let mut t = Recovery::default();
        t.session_up(plain, &v4, None);
        t.session_up(restarting, &v4, Some(&gr(true)));
        t.session_up(gr_peer, &v4, Some(&gr(false)));
        let s = t.status(
            [
                (plain, "plain"),
                (restarting, "restarting"),
                (gr_peer, "gr"),
            ]
            .into_iter(),
        );
        assert_eq!((s.complete, s.waiting), (2, vec!["gr".to_string()]));
    }
}
