//! Graceful-restart recovery of our own FIB: which peers have sent their whole table.

use std::collections::{HashMap, HashSet};

use bgp_proto::{Family, GracefulRestart};

/// Which peers have sent End-of-RIB for every family of their current or last session
/// (kept by the RIB task, asked by the export task during graceful-restart recovery).
///
/// RFC 4724 section 4.1: the restarting speaker waits for End-of-RIB from all its peers,
/// excluding those that do not advertise the graceful restart capability and those that
/// have restarted themselves (Restart State bit set): such a peer counts as complete as
/// soon as its session is established. A configured peer that never comes up holds the
/// recovery until [`FibOptions::recovery_wait`] passes.
#[derive(Debug, Default)]
pub(crate) struct EorTracker {
    /// Sessions still sending their initial table: families negotiated, families done.
    open: HashMap<String, (Vec<Family>, Vec<Family>)>,
    /// Peers that completed an initial table since we started (sticky: a later session
    /// loss does not put the restart recovery back).
    complete: HashSet<String>,
}

impl EorTracker {
    /// A session reached Established with these families and the peer's graceful restart
    /// capability.
    pub(crate) fn session_up(
        &mut self,
        peer: &str,
        families: &[Family],
        graceful_restart: Option<&GracefulRestart>,
    ) {
        if self.complete.contains(peer) {
            return;
        }
        let exempt = graceful_restart.is_none_or(|gr| gr.restart_state);
        if exempt || families.is_empty() {
            self.complete.insert(peer.to_string());
        } else {
            self.open
                .insert(peer.to_string(), (families.to_vec(), Vec::new()));
        }
    }

    /// End-of-RIB (RFC 4724 section 2) received from `peer` for `family`.
    pub(crate) fn end_of_rib(&mut self, peer: &str, family: Family) {
        let Some((want, seen)) = self.open.get_mut(peer) else {
            return;
        };
        if !seen.contains(&family) {
            seen.push(family);
        }
        if want.iter().all(|f| seen.contains(f)) {
            self.open.remove(peer);
            self.complete.insert(peer.to_string());
        }
    }

    /// The recovery state over the given (enabled) peers.
    pub(crate) fn status<'a>(&self, peers: impl Iterator<Item = &'a str>) -> RecoveryStatus {
        let mut s = RecoveryStatus::default();
        for p in peers {
            if self.complete.contains(p) {
                s.complete += 1;
            } else {
                s.waiting.push(p.to_string());
            }
        }
        s.waiting.sort();
        s
    }
}

/// Answer of [`Query::Recovery`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RecoveryStatus {
    /// Peers that sent their whole initial table.
    pub complete: usize,
    /// Peers still expected to.
    pub waiting: Vec<String>,
}
