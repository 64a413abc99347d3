//! Graceful restart as operations on the [`Rib`]: our own recovery (selection deferral,
//! RFC 4724 4.1, and its end), administratively disabled peers leaving the wait, and the
//! timers of both sides (RFC 4724 4.2 stale routes, RFC 9494 long-lived stale routes,
//! the Selection_Deferral_Timer). The state and the rules are the `restart` module's;
//! this file applies their outcome to the outbound state and the store.

use std::time::Instant;

use bgp_proto::Family;
use ipnet::{Ipv4Net, Ipv6Net};

use super::config::PeerId;
use super::error::RibError;
use super::restart::{RecoveryDone, RecoveryStatus};
use super::state::Rib;
use crate::table::PeerIdx;

impl Rib {
    /// Start selection deferral as the restarting speaker (RFC 4724 4.1): call it after
    /// our own restart, with the peers configured and before their sessions come up
    /// (announce the Restart State bit in our capability). Starts the recovery
    /// ([`Rib::start_recovery`]) and holds back all advertisement until it ends: routes
    /// received meanwhile are stored and decided and the FIB changes flow as usual, but
    /// [`Rib::peers_with_output`] is empty and [`Rib::take_encoded`] returns nothing.
    /// Then each established peer receives the whole table followed by End-of-RIB. Call
    /// [`Rib::process`] after the calls that may end it ([`Rib::end_of_rib`],
    /// [`Rib::peer_up`], [`Rib::remove_peer`], [`Rib::set_peer_disabled`],
    /// [`Rib::handle_timeout`]) as after any other change.
    pub fn defer_selection(&mut self, deadline: Instant) {
        self.restart.start(deadline, true);
        if self.restart.status().is_none() {
            return;
        }
        self.out.hold();
        self.check_recovery(None);
    }

    /// Start waiting for End-of-RIB from every peer (see the module documentation for
    /// which peers count) until `deadline`, without holding advertisement back: for a
    /// speaker that kept its kernel routes from a previous run without announcing a
    /// restart. The end is reported once by [`Rib::poll_recovery_done`]. Once a recovery
    /// ended, this and [`Rib::defer_selection`] do nothing.
    pub fn start_recovery(&mut self, deadline: Instant) {
        self.restart.start(deadline, false);
        self.check_recovery(None);
    }

    /// Bounds the wait of the recovery in progress for peers that are down: a peer whose
    /// session has not come up by `at` is no longer waited for (RFC 4724 4.1: the
    /// deferral ends once every peer that re-established sent End-of-RIB). Call
    /// [`Rib::handle_timeout`] at [`Rib::next_deadline`] as usual; no recovery, nothing.
    pub fn bound_absent_peers(&mut self, at: Instant) {
        self.restart.bound_absent_peers(at);
    }

    /// Whether outbound advertisement is held back by selection deferral.
    pub fn is_deferring(&self) -> bool {
        self.out.is_held()
    }

    /// The recovery after our own restart, while it lasts.
    pub fn recovery(&self) -> Option<RecoveryStatus> {
        self.restart.status()
    }

    /// The end of the recovery, once: after every peer waited for sent End-of-RIB, or at
    /// its deadline ([`Rib::handle_timeout`]). The daemon then removes the kernel routes
    /// of its previous run that were not learned again.
    pub fn poll_recovery_done(&mut self) -> Option<RecoveryDone> {
        self.restart.take_done()
    }

    /// End the recovery if it is complete (or, with `now`, due). When advertisement was
    /// held, every established peer gets the whole table (its End-of-RIB is still due
    /// since its session came up).
    pub(super) fn check_recovery(&mut self, now: Option<Instant>) {
        if self.restart.check(now) != Some(true) {
            return;
        }
        self.out.release();
        let up: Vec<(PeerIdx, bool, bool)> = self
            .peers
            .iter()
            .filter_map(|(idx, p)| {
                let s = p.session.as_ref()?;
                Some((
                    idx,
                    s.codec.sends_path_id(Family::IPV4_UNICAST),
                    s.codec.sends_path_id(Family::IPV6_UNICAST),
                ))
            })
            .collect();
        for (idx, ap4, ap6) in up {
            self.out.reset(idx, ap4, ap6, &mut self.store.attrs);
            self.full_export::<Ipv4Net>(idx);
            self.full_export::<Ipv6Net>(idx);
        }
    }

    /// Mark peer `id` administratively disabled or enabled ([`PeerConfig::disabled`]):
    /// the recovery waits only for enabled peers.
    ///
    /// [`PeerConfig::disabled`]: crate::PeerConfig::disabled
    pub fn set_peer_disabled(&mut self, id: PeerId, disabled: bool) -> Result<(), RibError> {
        self.peers.by_id_mut(id)?.cfg.disabled = disabled;
        self.restart.set_disabled(id.0, disabled);
        self.check_recovery(None);
        Ok(())
    }

    /// The earliest deadline: a graceful-restart stale timer or the recovery's end.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.restart.next_deadline()
    }

    /// Expire the timers due at `now`: the recovery's deadline (RFC 4724 4.1
    /// Selection_Deferral_Timer); GR-stale routes enter the long-lived phase where the
    /// peer supports it (RFC 9494), otherwise they are removed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_recovery(Some(now));
        let peers = &self.peers;
        let expired = self.restart.expire(now, |idx| {
            peers.get(idx).is_some_and(|p| p.session.is_some())
        });
        for e in expired {
            for f in e.drop {
                self.store.sweep_stale(e.peer, f);
            }
            for f in e.llgr {
                self.store.enter_llgr(e.peer, f);
            }
        }
    }
}
