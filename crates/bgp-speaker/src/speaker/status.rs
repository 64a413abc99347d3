//! What the speaker reports about itself: [`Speaker::status`], [`Speaker::peers`] and
//! [`Speaker::peer`], and the [`PeerStatus`] rows they are made of.
//!
//! These answer health checks (`bgpctl show status`, the BIRD-compatible socket that
//! calico-node's readiness and liveness probes read), so they must answer even when the
//! RIB task is busy (a huge table arriving, a pathological destination) or a reload holds
//! the speaker's state: each takes at most [`ANSWER_WITHIN`], and past that answers from
//! the last complete answer, with the component `rib` reported down ("busy"). A node
//! whose RIB is stuck is then reported not ready (the down component fails calico-node's
//! readiness check) but stays live, instead of being killed by the liveness probe in the
//! middle of a large update.

use std::time::{Duration, Instant};

use super::{Speaker, SpeakerError};
use crate::config::{self, PeerConfig};
use crate::peer::PeerShared;
use crate::rib_task::{PrefixCounts, Query};
use bgp_control::{ComponentStatus, DaemonStatus, PeerCounters, PeerDetail, PeerSummary};

/// How long a status answer may wait for the RIB task or the speaker's state.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// The component reported down while the RIB does not answer in time.
pub(crate) const RIB: &str = "rib";

/// The last complete answers, for when the next one cannot be had in time.
#[derive(Debug, Default)]
pub(super) struct LastAnswers {
    status: Option<DaemonStatus>,
    peers: Option<Vec<PeerStatus>>,
}

/// Live state of one peer, as returned by [`Speaker::peers`].
#[derive(Clone, Debug)]
pub struct PeerStatus {
    /// The peer's configuration.
    pub config: PeerConfig,
    /// Session state and counters.
    pub shared: PeerShared,
    /// Prefix counters from the RIB.
    pub prefixes: PrefixCounts,
}

impl PeerStatus {
    /// The `show peers` row.
    pub fn summary(&self) -> PeerSummary {
        let s = &self.shared;
        PeerSummary {
            name: self.config.name.clone(),
            address: self.config.address.to_string(),
            remote_as: self.config.remote_as,
            state: if s.disabled && s.state == bgp_proto::session::State::Idle {
                "Disabled".to_string()
            } else {
                s.state.to_string()
            },
            uptime_secs: s.since.elapsed().as_secs(),
            prefixes_received: self.prefixes.received,
            prefixes_accepted: self.prefixes.accepted,
            prefixes_sent: self.prefixes.sent,
            last_error: s.last_error.clone(),
        }
    }

    /// The `show peer NAME` detail.
    pub fn detail(&self, global: &config::GlobalConfig) -> PeerDetail {
        let c = &self.config;
        let s = &self.shared;
        let neg = s.negotiated.as_deref();
        PeerDetail {
            summary: self.summary(),
            description: c.description.clone(),
            local_as: c.local_as(global),
            port: c.port,
            passive: c.passive,
            route_reflector_client: c.route_reflector_client,
            import: c.import.clone(),
            export: c.export.clone(),
            peer_id: neg.map(|n| n.peer_id.to_string()),
            local_address: s.local_addr.map(|a| a.to_string()),
            hold_time: c.hold_time,
            keepalive: c.keepalive,
            negotiated_hold_time: neg.map(|n| n.hold_time),
            negotiated_keepalive: neg.map(|n| n.keepalive_time),
            families: match neg {
                Some(n) => n.families.iter().map(|f| f.to_string()).collect(),
                None => c.families.iter().map(|f| f.to_string()).collect(),
            },
            capabilities_sent: neg
                .map(|n| {
                    n.local_open
                        .capabilities
                        .iter()
                        .map(|c| format!("{c:?}"))
                        .collect()
                })
                .unwrap_or_default(),
            capabilities_received: neg
                .map(|n| {
                    n.peer_open
                        .capabilities
                        .iter()
                        .map(|c| format!("{c:?}"))
                        .collect()
                })
                .unwrap_or_default(),
            counters: PeerCounters {
                updates_received: s.updates_received,
                updates_sent: s.updates_sent,
                notifications_received: s.notifications_received,
                notifications_sent: s.notifications_sent,
                route_refresh_received: s.route_refresh_received,
                established_transitions: s.established_transitions,
            },
            last_notification_sent: s.last_notification_sent.clone(),
            last_notification_received: s.last_notification_received.clone(),
        }
    }
}

impl Speaker {
    /// The state of every peer (at most 2 s late; see the module docs).
    pub async fn peers(&self) -> Result<Vec<PeerStatus>, SpeakerError> {
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

    async fn peers_now(&self) -> Result<Vec<PeerStatus>, SpeakerError> {
        let counts = self.ask(Query::Counts).await?;
        let st = self.inner.state.lock().await;
        Ok(st
            .peers
            .values()
            .map(|h| PeerStatus {
                config: h.config.clone(),
                shared: h
                    .shared
                    .lock()
                    .map(|s| s.clone())
                    .unwrap_or_else(|e| e.into_inner().clone()),
                prefixes: counts.get(&h.config.name).copied().unwrap_or_default(),
            })
            .collect())
    }

    /// The state of one peer, in detail.
    pub async fn peer(&self, name: &str) -> Result<PeerDetail, SpeakerError> {
        let global = self.env().global;
        self.peers()
            .await?
            .into_iter()
            .find(|p| p.config.name == name)
            .map(|p| p.detail(&global))
            .ok_or_else(|| SpeakerError::NoSuchPeer(name.to_string()))
    }

    /// Daemon identity and counters (at most 2 s late; see the module
    /// docs).
    pub async fn status(&self) -> Result<DaemonStatus, SpeakerError> {
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
                self.last().status.clone().unwrap_or(DaemonStatus {
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    asn: g.asn,
                    router_id: g.router_id.to_string(),
                    uptime_secs: 0,
                    peers: 0,
                    peers_established: 0,
                    loc_rib_prefixes: 0,
                    graceful_restart_in_progress: false,
                    config_file: None,
                    config_age_secs: 0,
                    components: Vec::new(),
                })
            }
        };
        st.uptime_secs = self.inner.started.elapsed().as_secs();
        st.components = self
            .inner
            .health
            .components()
            .into_iter()
            .map(|c| ComponentStatus {
                name: c.name.to_string(),
                up: c.down.is_none(),
                since_secs: c.for_how_long().as_secs(),
                reason: c.down,
            })
            .collect();
        Ok(st)
    }

    async fn status_now(&self) -> Result<DaemonStatus, SpeakerError> {
        let prefixes = self.ask(Query::PrefixCount).await?;
        let recovering = match self.inner.recovery_deadline {
            Some(deadline) if Instant::now() < deadline => {
                !self.ask(Query::Recovery).await?.waiting.is_empty()
            }
            _ => false,
        };
        let st = self.inner.state.lock().await;
        let established = st
            .peers
            .values()
            .filter(|h| {
                h.shared
                    .lock()
                    .is_ok_and(|s| s.state == bgp_proto::session::State::Established)
            })
            .count();
        Ok(DaemonStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            asn: st.config.global.asn,
            router_id: st.config.global.router_id.to_string(),
            uptime_secs: self.inner.started.elapsed().as_secs(),
            peers: st.peers.len(),
            peers_established: established,
            loc_rib_prefixes: prefixes,
            graceful_restart_in_progress: recovering,
            config_file: self
                .inner
                .options
                .config_path
                .as_ref()
                .map(|p| p.display().to_string()),
            config_age_secs: st.loaded.elapsed().as_secs(),
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
