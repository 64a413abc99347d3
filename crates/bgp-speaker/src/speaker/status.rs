//! What the speaker reports about itself: [`Speaker::status`] ([`Status`]),
//! [`Speaker::peers`] and [`Speaker::peer`] ([`Peer`], in a [`PeerState`]).
//!
//! These answer health checks (`bgpctl show status`, the BIRD-compatible socket that
//! calico-node's readiness and liveness probes read), so they must answer even when the
//! RIB task is busy (a huge table arriving, a pathological destination) or a reload holds
//! the speaker's state: each takes at most [`ANSWER_WITHIN`], and past that answers from
//! the last complete answer, with the component `rib` reported down ("busy"). A node
//! whose RIB is stuck is then reported not ready (the down component fails calico-node's
//! readiness check) but stays live, instead of being killed by the liveness probe in the
//! middle of a large update.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bgp_proto::session::{Negotiated, State};

use super::{Owner, Speaker, SpeakerError};
use crate::config::PeerConfig;
use crate::health::ComponentState;
use crate::rib_task::{FamilyCount, PrefixCounts, Query};
use bgp_kernel::FibState;
use bgp_node::{NotificationCount, PeerStatus};

/// How long a status answer may wait for the RIB task or the speaker's state.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// The component reported down while the RIB does not answer in time.
pub(crate) const RIB: &str = "rib";

/// The last complete answers, for when the next one cannot be had in time.
#[derive(Debug, Default)]
pub(super) struct LastAnswers {
    status: Option<Status>,
    peers: Option<Vec<Peer>>,
}

/// The state of a peer: its session's (RFC 4271 8.2.2), or disabled by configuration or
/// by an operator.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// Administratively down: no session is attempted.
    Disabled,
    /// Idle.
    Idle,
    /// Connect: connecting.
    Connect,
    /// Active: waiting for the peer to connect, or to connect again.
    Active,
    /// OpenSent.
    OpenSent,
    /// OpenConfirm.
    OpenConfirm,
    /// Established.
    Established,
}

impl PeerState {
    pub(crate) fn of(session: State, disabled: bool) -> PeerState {
        match session {
            State::Idle if disabled => PeerState::Disabled,
            State::Idle => PeerState::Idle,
            State::Connect => PeerState::Connect,
            State::Active => PeerState::Active,
            State::OpenSent => PeerState::OpenSent,
            State::OpenConfirm => PeerState::OpenConfirm,
            State::Established => PeerState::Established,
        }
    }

    /// The RFC 4271 name of the state, or `Disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Disabled => "Disabled",
            PeerState::Idle => "Idle",
            PeerState::Connect => "Connect",
            PeerState::Active => "Active",
            PeerState::OpenSent => "OpenSent",
            PeerState::OpenConfirm => "OpenConfirm",
            PeerState::Established => "Established",
        }
    }
}

impl std::fmt::Display for PeerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Message counters of a peer, over every session it had: the node layer's.
pub use bgp_node::PeerCounters;

/// A peer as [`Speaker::peers`] and [`Speaker::peer`] report it.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Its configuration.
    pub config: PeerConfig,
    /// Who added it: the configuration or the API.
    pub owner: Owner,
    /// Our AS on this session (the peer's `local_as`, else the global AS).
    pub local_as: u32,
    /// Its state.
    pub state: PeerState,
    /// When it entered this state (Established: when the session came up).
    pub since: Instant,
    /// Why the session last went down.
    pub last_error: Option<String>,
    /// The last NOTIFICATION we sent, as `code/subcode description`.
    pub last_notification_sent: Option<String>,
    /// The last NOTIFICATION the peer sent, as `code/subcode description`.
    pub last_notification_received: Option<String>,
    /// What the session negotiated (both OPENs, the families, the capabilities), while
    /// Established.
    pub negotiated: Option<Box<Negotiated>>,
    /// Our end of the current connection.
    pub local_address: Option<SocketAddr>,
    /// The peer's end of the current connection.
    pub remote_address: Option<SocketAddr>,
    /// Message counters.
    pub counters: PeerCounters,
    /// NOTIFICATIONs sent and received, by code and subcode.
    pub notifications: Vec<NotificationCount>,
    /// Prefix counters from the RIB.
    pub prefixes: PrefixCounts,
}

impl Peer {
    fn new(
        config: PeerConfig,
        owner: Owner,
        local_as: u32,
        s: PeerStatus,
        prefixes: PrefixCounts,
    ) -> Peer {
        Peer {
            config,
            owner,
            local_as,
            state: PeerState::of(s.state, s.disabled),
            since: s.since,
            last_error: s.last_error,
            last_notification_sent: s.last_notification_sent,
            last_notification_received: s.last_notification_received,
            negotiated: s.negotiated,
            local_address: s.local_addr,
            remote_address: s.remote_addr,
            counters: s.counters,
            notifications: s.notifications,
            prefixes,
        }
    }
}

/// The Selection_Deferral_Timer of a restarting speaker (RFC 4724 4.1): selection waits
/// for End-of-RIB from every peer, at most this long from the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectionDeferral {
    /// The whole wait (the graceful restart `restart_time`).
    pub total: Duration,
    /// What is left of it.
    pub remaining: Duration,
}

/// The speaker's identity and counters, as [`Speaker::status`] reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Our autonomous system number.
    pub asn: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Time since the speaker started.
    pub uptime: Duration,
    /// Peers, configured or added through the API.
    pub peers: usize,
    /// Peers in Established.
    pub peers_established: usize,
    /// Prefixes in the Loc-RIB.
    pub loc_rib_prefixes: usize,
    /// Started as a restarting speaker (RFC 4724) and still waiting for End-of-RIB from
    /// some peers: how long route selection is deferred.
    pub selection_deferral: Option<SelectionDeferral>,
    /// Time since the configuration was last applied.
    pub config_age: Duration,
    /// The components that can fail on their own (kernel FIB writer, kernel import,
    /// next-hop watcher, and `rib` while the RIB does not answer in time) and their state.
    pub components: Vec<ComponentState>,
}

impl Speaker {
    /// The state of every peer (at most 2 s late; see the module docs).
    pub async fn peers(&self) -> Result<Vec<Peer>, SpeakerError> {
        match tokio::time::timeout(ANSWER_WITHIN, self.peers_now()).await {
            Ok(r) => {
                let v = r?;
                self.answered();
                self.last().peers = Some(v.clone());
                Ok(v)
            }
            Err(_) => {
                self.busy();
                Ok(self.last().peers.clone().unwrap_or_default())
            }
        }
    }

    async fn peers_now(&self) -> Result<Vec<Peer>, SpeakerError> {
        let counts = self.ask(Query::Counts).await?;
        let global = self.env().global;
        let st = self.inner.state.lock().await;
        Ok(st
            .peers
            .values()
            .map(|h| {
                let shared = h
                    .shared
                    .lock()
                    .map(|s| s.clone())
                    .unwrap_or_else(|e| e.into_inner().clone());
                let prefixes = counts.get(&h.config.name).copied().unwrap_or_default();
                let local_as = h.config.local_as(&global);
                let owner = st.api.owner(&h.config.name);
                Peer::new(h.config.clone(), owner, local_as, shared, prefixes)
            })
            .collect())
    }

    /// The state of one peer (at most 2 s late; see the module docs).
    pub async fn peer(&self, name: &str) -> Result<Peer, SpeakerError> {
        self.peers()
            .await?
            .into_iter()
            .find(|p| p.config.name == name)
            .ok_or_else(|| SpeakerError::NoSuchPeer(name.to_string()))
    }

    /// Prefixes and paths in the RIB per address family. Walks the tables: for
    /// occasional reports (a metrics scrape), not for health checks.
    pub async fn rib_families(&self) -> Result<Vec<FamilyCount>, SpeakerError> {
        match tokio::time::timeout(ANSWER_WITHIN, self.ask(Query::FamilyCounts)).await {
            Ok(r) => r,
            Err(_) => {
                self.busy();
                Err(SpeakerError::Busy)
            }
        }
    }

    /// The kernel FIB as the installer sees it: what it installed (listed only with
    /// `routes`), what the kernel refused and why, the retries pending. `None` without a
    /// running kernel FIB component (no `[kernel]` section, or an embedder takes the FIB).
    /// Answered between two kernel batches, within [`ANSWER_WITHIN`].
    pub async fn fib(&self, routes: bool) -> Result<Option<FibState>, SpeakerError> {
        let queries = self
            .inner
            .kernel
            .lock()
            .ok()
            .and_then(|k| k.as_ref().map(|k| k.queries()));
        let Some(queries) = queries else {
            return Ok(None);
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ask = async {
            queries
                .send((routes, tx))
                .await
                .map_err(|_| SpeakerError::Stopped)?;
            rx.await.map_err(|_| SpeakerError::Stopped)
        };
        match tokio::time::timeout(ANSWER_WITHIN, ask).await {
            Ok(r) => r.map(Some),
            Err(_) => Err(SpeakerError::Busy),
        }
    }

    /// Identity and counters (at most 2 s late; see the module docs).
    pub async fn status(&self) -> Result<Status, SpeakerError> {
        let mut st = match tokio::time::timeout(ANSWER_WITHIN, self.status_now()).await {
            Ok(r) => {
                let st = r?;
                self.answered();
                self.last().status = Some(st.clone());
                st
            }
            Err(_) => {
                self.busy();
                let g = self.env().global;
                self.last().status.clone().unwrap_or(Status {
                    asn: g.asn,
                    router_id: g.router_id,
                    uptime: Duration::ZERO,
                    peers: 0,
                    peers_established: 0,
                    loc_rib_prefixes: 0,
                    selection_deferral: None,
                    config_age: Duration::ZERO,
                    components: Vec::new(),
                })
            }
        };
        st.uptime = self.inner.started.elapsed();
        st.components = self.inner.health.components();
        Ok(st)
    }

    async fn status_now(&self) -> Result<Status, SpeakerError> {
        let prefixes = self.ask(Query::PrefixCount).await?;
        let now = Instant::now();
        let selection_deferral = match (self.inner.recovery_deadline, self.inner.recovery_wait) {
            (Some(deadline), Some(total)) if now < deadline => {
                let waiting = !self.ask(Query::Recovery).await?.waiting.is_empty();
                waiting.then(|| SelectionDeferral {
                    total,
                    remaining: deadline - now,
                })
            }
            _ => None,
        };
        let st = self.inner.state.lock().await;
        let established = st
            .peers
            .values()
            .filter(|h| h.shared.lock().is_ok_and(|s| s.state == State::Established))
            .count();
        Ok(Status {
            asn: st.config.global.asn,
            router_id: st.config.global.router_id,
            uptime: self.inner.started.elapsed(),
            peers: st.peers.len(),
            peers_established: established,
            loc_rib_prefixes: prefixes,
            selection_deferral,
            config_age: st.loaded.elapsed(),
            components: Vec::new(),
        })
    }

    fn last(&self) -> std::sync::MutexGuard<'_, LastAnswers> {
        self.inner
            .last_answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn answered(&self) {
        self.inner.health.up(RIB);
    }

    fn busy(&self) {
        self.inner.health.down(
            RIB,
            format!("busy: no answer within {} s", ANSWER_WITHIN.as_secs()),
        );
    }
}
