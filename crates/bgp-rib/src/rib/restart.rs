//! Graceful restart, both sides, and the End-of-RIB facts they rest on.
//!
//! # Receiving side (a peer restarts): RFC 4724 4.2, RFC 9494
//! When a session that negotiated graceful restart ends by a transport failure (or a
//! NOTIFICATION with RFC 8538's N bit) its routes stay, marked stale, until the restart
//! time passes; the new session keeps them for the families it still covers with
//! forwarding state preserved, for at most `stale_path_time`, and its End-of-RIB sweeps
//! what it did not refresh. With long-lived GR the expiry moves them to the LLGR phase
//! instead (LLGR_STALE attached, NO_LLGR routes dropped, least preferred, advertised only
//! to LLGR-capable peers). [`Restart`] keeps per peer which families are stale, in which
//! phase and until when; the store marks, moves and sweeps the paths.
//!
//! # Restarting side (we restarted): RFC 4724 4.1
//! After our own restart the RIB waits for End-of-RIB from every peer, excluding those
//! that do not advertise graceful restart and those restarting themselves (Restart State
//! bit): such a peer counts as soon as its session is established. A peer counts once it
//! has sent End-of-RIB for every family of one session; that stays true if the session
//! drops later (the table it sent was received). Administratively disabled peers are not
//! waited for, nor, once the optional absent-peer bound has passed
//! ([`Rib::bound_absent_peers`](crate::Rib::bound_absent_peers)), peers whose session has
//! not come up since the recovery started: RFC 4724 4.1 ends the deferral when every peer
//! that re-established sent End-of-RIB, and a peer that is down (a node that left while
//! still configured) must not hold back everything for the whole deferral time. The wait ends when every other configured peer counts or at the deadline
//! (the Selection_Deferral_Timer), whichever comes first; then [`Rib::poll_recovery_done`](crate::Rib::poll_recovery_done)
//! reports it once, so that the kernel side can remove the routes it adopted from the
//! previous run and not refreshed since (BIRD's graceful restart recovery). This is the
//! only tracker of that fact: the daemon's FIB and its status (BIRD's 0024 "graceful
//! restart in progress") read it here. Once over, the recovery stays over: a session
//! lost later does not bring it back, and starting it again does nothing.
//!
//! [`Rib::defer_selection`](crate::Rib::defer_selection) also holds back all advertisement meanwhile (we announced the
//! Restart State bit, so peers wait for our End-of-RIB): routes are stored and decided
//! and the FIB is fed as usual, but nothing is queued for peers until the wait ends, when
//! each established peer receives the whole table followed by End-of-RIB.
//! [`Rib::start_recovery`](crate::Rib::start_recovery) tracks the wait without holding advertisement (we kept our
//! kernel routes from a previous run but did not announce a restart).
//!
//! Everything here runs on the caller's clock: [`Rib::next_deadline`](crate::Rib::next_deadline) says when to call
//! [`Rib::handle_timeout`](crate::Rib::handle_timeout).

use std::time::{Duration, Instant};

use bgp_proto::{Family, LlgrFamily};
use smallvec::SmallVec;

use super::config::PeerId;
use super::config::SessionInfo;
use crate::table::PeerIdx;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum StalePhase {
    /// RFC 4724: until the restart time, then until `stale_path_time` after the new
    /// session came up.
    Gr,
    /// RFC 9494: until the long-lived stale time.
    Llgr,
}

#[derive(Clone, Debug)]
struct StaleState {
    family: Family,
    deadline: Instant,
    phase: StalePhase,
}

/// Families whose stale paths are kept when a session goes down: (family, long-lived).
pub(crate) type KeptFamilies = SmallVec<[(Family, bool); 2]>;

/// What expired for one peer at a [`Restart::expire`].
#[derive(Debug, Default)]
pub(crate) struct Expired {
    pub peer: PeerIdx,
    /// Stale paths to remove.
    pub drop: SmallVec<[Family; 2]>,
    /// Stale paths entering the long-lived phase.
    pub llgr: SmallVec<[Family; 2]>,
}

/// Per peer: graceful-restart state of its routes and its End-of-RIB record.
#[derive(Debug, Default)]
struct PeerRestart {
    /// The peer's long-lived GR capability of the last session (used after it ended).
    last_llgr: Vec<LlgrFamily>,
    stale: Vec<StaleState>,
    /// Families whose End-of-RIB the current session has sent.
    eor_received: SmallVec<[Family; 2]>,
    /// The peer has sent its whole table (End-of-RIB for every family of one session),
    /// or needs not (no graceful restart, or restarting itself), since it was added.
    initial_table_done: bool,
    /// Not waited for by the recovery ([`PeerConfig::disabled`](crate::PeerConfig)).
    disabled: bool,
    /// A session came up since the peer was added.
    came_up: bool,
}

/// Why the recovery after our own restart ended ([`Rib::poll_recovery_done`](crate::Rib::poll_recovery_done)).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RecoveryDone {
    /// Every peer waited for has sent End-of-RIB for all its families.
    EndOfRib,
    /// The deadline passed first.
    Deadline,
}

/// Where the recovery after our own restart stands ([`Rib::recovery`](crate::Rib::recovery)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryStatus {
    /// When it ends at the latest.
    pub deadline: Instant,
    /// Advertisement is held back meanwhile ([`Rib::defer_selection`](crate::Rib::defer_selection)).
    pub deferring: bool,
    /// Peers waited for that have not sent their whole table yet, in id order.
    pub waiting: Vec<PeerId>,
    /// Peers that have (or need not).
    pub complete: usize,
}

#[derive(Copy, Clone, Debug)]
struct Recovery {
    deadline: Instant,
    /// Advertisement is held back until the end (RFC 4724 4.1 selection deferral).
    defer_selection: bool,
    /// From then on, peers whose session has not come up are not waited for.
    absent_after: Option<Instant>,
    /// `absent_after` has passed.
    absent_passed: bool,
}

/// The graceful-restart state: per peer (indexed like the peer table) and our own
/// recovery.
#[derive(Debug, Default)]
pub(crate) struct Restart {
    peers: Vec<Option<PeerRestart>>,
    recovery: Option<Recovery>,
    /// The end of the recovery, until polled.
    done: Option<RecoveryDone>,
    /// A recovery ended: it stays over (a later [`Restart::start`] is ignored).
    ended: bool,
}

/// A peer's End-of-RIB record, carried over when the peer is re-added to the table
/// ([`Rib::readd_peer`](crate::Rib::readd_peer)): the same peer, the same session.
#[derive(Clone, Debug, Default)]
pub(crate) struct EorRecord {
    eor_received: SmallVec<[Family; 2]>,
    initial_table_done: bool,
    came_up: bool,
}

/// RFC 4724 4.1: a peer that does not advertise graceful restart, or restarts itself,
/// is not waited for.
fn exempt(session: &SessionInfo) -> bool {
    session
        .graceful_restart
        .as_ref()
        .is_none_or(|gr| gr.restart_state)
        || session.families.is_empty()
}

impl Restart {
    pub fn add_peer(&mut self, idx: PeerIdx, disabled: bool) {
        let i = idx as usize;
        if self.peers.len() <= i {
            self.peers.resize_with(i + 1, || None);
        }
        if let Some(slot) = self.peers.get_mut(i) {
            *slot = Some(PeerRestart {
                disabled,
                ..PeerRestart::default()
            });
        }
    }

    pub fn remove_peer(&mut self, idx: PeerIdx) {
        if let Some(slot) = self.peers.get_mut(idx as usize) {
            *slot = None;
        }
    }

    fn peer_mut(&mut self, idx: PeerIdx) -> Option<&mut PeerRestart> {
        self.peers.get_mut(idx as usize).and_then(Option::as_mut)
    }

    fn peer(&self, idx: PeerIdx) -> Option<&PeerRestart> {
        self.peers.get(idx as usize).and_then(Option::as_ref)
    }

    /// The peer's End-of-RIB record.
    pub fn eor_record(&self, idx: PeerIdx) -> Option<EorRecord> {
        self.peer(idx).map(|p| EorRecord {
            eor_received: p.eor_received.clone(),
            initial_table_done: p.initial_table_done,
            came_up: p.came_up,
        })
    }

    /// Restores a record taken by [`Restart::eor_record`].
    pub fn restore_eor_record(&mut self, idx: PeerIdx, record: EorRecord) {
        if let Some(p) = self.peer_mut(idx) {
            p.eor_received = record.eor_received;
            p.initial_table_done = record.initial_table_done;
            p.came_up = record.came_up;
        }
    }

    pub fn set_disabled(&mut self, idx: PeerIdx, disabled: bool) {
        if let Some(p) = self.peer_mut(idx) {
            p.disabled = disabled;
        }
    }

    /// Whether the peer holds stale routes.
    pub fn has_stale(&self, idx: PeerIdx) -> bool {
        self.peer(idx).is_some_and(|p| !p.stale.is_empty())
    }

    /// The families of the peer whose routes are stale.
    pub fn stale_families(&self, idx: PeerIdx) -> Vec<Family> {
        self.peer(idx)
            .map(|p| p.stale.iter().map(|s| s.family).collect())
            .unwrap_or_default()
    }

    /// A session came up (RFC 4724 4.2): stale families it still covers with forwarding
    /// state preserved wait at most `stale_time` more for End-of-RIB; returns the others,
    /// whose stale paths go now.
    pub fn session_up(
        &mut self,
        idx: PeerIdx,
        session: &SessionInfo,
        now: Instant,
        stale_time: Duration,
    ) -> SmallVec<[Family; 2]> {
        let mut sweep = SmallVec::new();
        let Some(p) = self.peer_mut(idx) else {
            return sweep;
        };
        p.last_llgr = session.llgr.clone();
        for s in &mut p.stale {
            let kept = session.graceful_restart.as_ref().is_some_and(|gr| {
                gr.families
                    .iter()
                    .any(|f| f.family == s.family && f.forwarding_preserved)
            }) || (s.phase == StalePhase::Llgr
                && session
                    .llgr
                    .iter()
                    .any(|f| f.family == s.family && f.forwarding_preserved));
            if kept && session.families.contains(&s.family) {
                if s.phase == StalePhase::Gr {
                    s.deadline = now + stale_time;
                }
            } else {
                sweep.push(s.family);
            }
        }
        p.stale.retain(|s| !sweep.contains(&s.family));
        p.eor_received.clear();
        p.came_up = true;
        if exempt(session) {
            p.initial_table_done = true;
        }
        sweep
    }

    /// A session went down. With `graceful`, the families it covered keep their routes as
    /// stale (RFC 4724: until the restart time; RFC 9494 4.2: a zero restart time goes
    /// straight to the long-lived phase); families still stale from an earlier session
    /// stay as they are. Returns the families whose routes are kept (the others go) and
    /// the earliest stale deadline.
    pub fn session_down(
        &mut self,
        idx: PeerIdx,
        session: &SessionInfo,
        graceful: bool,
        now: Instant,
    ) -> (KeptFamilies, Option<Instant>) {
        let Some(p) = self.peer_mut(idx) else {
            return (KeptFamilies::new(), None);
        };
        let mut keep: Vec<StaleState> = Vec::new();
        if graceful {
            let gr = session.graceful_restart.as_ref();
            for &family in &session.families {
                let in_gr = gr.is_some_and(|g| g.families.iter().any(|f| f.family == family));
                let llgr = session
                    .llgr
                    .iter()
                    .find(|f| f.family == family && f.stale_time > 0);
                let restart = gr.map_or(0, |g| u64::from(g.restart_time));
                if in_gr && restart > 0 {
                    keep.push(StaleState {
                        family,
                        deadline: now + Duration::from_secs(restart),
                        phase: StalePhase::Gr,
                    });
                } else if let Some(l) = llgr {
                    keep.push(StaleState {
                        family,
                        deadline: now + Duration::from_secs(u64::from(l.stale_time)),
                        phase: StalePhase::Llgr,
                    });
                }
            }
        }
        p.stale
            .retain(|s| !keep.iter().any(|k| k.family == s.family));
        let kept: KeptFamilies = keep
            .iter()
            .chain(&p.stale)
            .map(|s| (s.family, s.phase == StalePhase::Llgr))
            .collect();
        p.stale.extend(keep);
        let deadline = p.stale.iter().map(|s| s.deadline).min();
        (kept, deadline)
    }

    /// End-of-RIB from the peer for `family` (RFC 4724 2). Returns whether the family had
    /// stale routes, which go now (RFC 4724 4.2).
    pub fn end_of_rib(
        &mut self,
        idx: PeerIdx,
        family: Family,
        session: Option<&SessionInfo>,
    ) -> bool {
        let Some(p) = self.peer_mut(idx) else {
            return false;
        };
        if let Some(s) = session {
            if !p.eor_received.contains(&family) {
                p.eor_received.push(family);
            }
            if s.families.iter().all(|f| p.eor_received.contains(f)) {
                p.initial_table_done = true;
            }
        }
        let had_stale = p.stale.iter().any(|s| s.family == family);
        p.stale.retain(|s| s.family != family);
        had_stale
    }

    /// Stale families whose deadline has come (`up`: whether the peer's session is
    /// established). A GR-stale family of a peer still down enters the long-lived phase
    /// when the peer offered one for it (RFC 9494 4.2); everything else due is dropped.
    pub fn expire(&mut self, now: Instant, up: impl Fn(PeerIdx) -> bool) -> Vec<Expired> {
        let mut out = Vec::new();
        for (i, p) in self.peers.iter_mut().enumerate() {
            let Some(p) = p else { continue };
            let idx = i as PeerIdx;
            let mut e = Expired {
                peer: idx,
                ..Expired::default()
            };
            for s in &mut p.stale {
                if s.deadline > now {
                    continue;
                }
                let llgr = p
                    .last_llgr
                    .iter()
                    .find(|f| f.family == s.family && f.stale_time > 0);
                match (s.phase, llgr) {
                    (StalePhase::Gr, Some(l)) if !up(idx) => {
                        s.phase = StalePhase::Llgr;
                        s.deadline = now + Duration::from_secs(u64::from(l.stale_time));
                        e.llgr.push(s.family);
                    }
                    _ => e.drop.push(s.family),
                }
            }
            p.stale.retain(|s| !e.drop.contains(&s.family));
            if !e.drop.is_empty() || !e.llgr.is_empty() {
                out.push(e);
            }
        }
        out
    }

    /// The earliest stale deadline or recovery deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.peers
            .iter()
            .flatten()
            .flat_map(|p| p.stale.iter().map(|s| s.deadline))
            .chain(self.recovery.map(|r| r.deadline))
            .chain(
                self.recovery
                    .filter(|r| !r.absent_passed)
                    .and_then(|r| r.absent_after),
            )
            .min()
    }

    /// Begin (or extend) the recovery after our own restart; once one ended, nothing
    /// starts it again.
    pub fn start(&mut self, deadline: Instant, defer_selection: bool) {
        if self.ended {
            return;
        }
        let defer = defer_selection || self.recovery.is_some_and(|r| r.defer_selection);
        let (absent_after, absent_passed) = self
            .recovery
            .map_or((None, false), |r| (r.absent_after, r.absent_passed));
        self.recovery = Some(Recovery {
            deadline,
            defer_selection: defer,
            absent_after,
            absent_passed,
        });
        self.done = None;
    }

    /// Peers whose session has not come up by `at` are no longer waited for by the
    /// recovery in progress (nothing without one).
    pub fn bound_absent_peers(&mut self, at: Instant) {
        if let Some(r) = &mut self.recovery {
            r.absent_after = Some(at);
        }
    }

    /// Whether the recovery waits for this peer.
    fn waits_for(p: &PeerRestart, absent_passed: bool) -> bool {
        !p.disabled && (p.came_up || !absent_passed)
    }

    /// The end of the recovery, once.
    pub fn take_done(&mut self) -> Option<RecoveryDone> {
        self.done.take()
    }

    /// RFC 4724 4.1: every peer waited for has sent its whole table.
    fn complete(&self, absent_passed: bool) -> bool {
        self.peers
            .iter()
            .flatten()
            .all(|p| !Self::waits_for(p, absent_passed) || p.initial_table_done)
    }

    /// End the recovery when it is complete or its deadline has come. Returns whether
    /// advertisement was held until now.
    pub fn check(&mut self, now: Option<Instant>) -> Option<bool> {
        let r = self.recovery.as_mut()?;
        if let (Some(at), Some(now)) = (r.absent_after, now) {
            r.absent_passed |= at <= now;
        }
        let r = *r;
        let why = if self.complete(r.absent_passed) {
            RecoveryDone::EndOfRib
        } else if now.is_some_and(|n| r.deadline <= n) {
            RecoveryDone::Deadline
        } else {
            return None;
        };
        self.recovery = None;
        self.done = Some(why);
        self.ended = true;
        Some(r.defer_selection)
    }

    /// The recovery, while it lasts.
    pub fn status(&self) -> Option<RecoveryStatus> {
        let r = self.recovery?;
        let mut s = RecoveryStatus {
            deadline: r.deadline,
            deferring: r.defer_selection,
            waiting: Vec::new(),
            complete: 0,
        };
        for (i, p) in self.peers.iter().enumerate() {
            let Some(p) = p else { continue };
            if !Self::waits_for(p, r.absent_passed) {
                continue;
            }
            if p.initial_table_done {
                s.complete += 1;
            } else {
                s.waiting.push(PeerId(i as PeerIdx));
            }
        }
        Some(s)
    }
}
