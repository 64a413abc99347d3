//! The speaker's side of the monitoring feeds (monitor/): starting and reconciling the
//! BMP stations and MRT files of the configuration, the sessions a new station starts
//! with, and table dumps on demand.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bgp_proto::session::State as SessionState;
use tracing::info;

use super::{Speaker, SpeakerError, State};
use crate::config::Config;
use crate::monitor::mrt::{self, DumpPeers};
use crate::monitor::rib::RibAccess;
use crate::monitor::tap::{RibFeed, SessionFacts};
use crate::monitor::{bmp, TableDumpSummary};

impl Speaker {
    /// Brings the running feeds to what `config` says: stations and MRT files removed or
    /// changed are stopped, new and changed ones started. Sessions are not touched.
    pub(super) fn apply_feeds(&self, config: &Config) {
        let mut feeds = self.inner.feeds.lock().unwrap_or_else(|e| e.into_inner());
        for station in feeds.reconcile_bmp(&config.bmp) {
            let cancel = self.inner.tasks.cancel.child_token();
            // Subscribed before the task reads the sessions: a session coming up in
            // between is announced twice (harmless), never missed.
            let events = self.inner.tap.subscribe();
            let me = self.clone();
            let sessions_now: bmp::SessionsNow = Arc::new(move || {
                let me = me.clone();
                Box::pin(async move { me.established_sessions().await })
            });
            let s = bmp::Station {
                config: station.clone(),
                router_id: config.global.router_id,
                rib: self.rib_access(),
                sessions_now,
                events,
                wants: [
                    (station.post_policy, RibFeed::Accepted),
                    (station.adj_rib_out, RibFeed::Sent),
                ]
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, feed)| self.inner.tap.want(feed))
                .collect(),
                cancel: cancel.clone(),
            };
            feeds
                .stations
                .insert(station.name.clone(), (station, cancel));
            self.inner.tasks.spawn(bmp::run(s));
        }
        if let Some(m) = feeds.reconcile_mrt(config.mrt.as_ref()) {
            let cancel = self.inner.tasks.cancel.child_token();
            if let Some(files) = m.update_log.clone() {
                let events = self.inner.tap.subscribe();
                self.inner
                    .tasks
                    .spawn(mrt::update_log(files, events, cancel.clone()));
            }
            if let Some(files) = m.table_dump.clone() {
                let me = self.clone();
                let rib = self.rib_access();
                let c = cancel.clone();
                self.inner.tasks.spawn(async move {
                    let who = || async { me.dump_peers().await.ok() };
                    mrt::periodic_dumps(rib, files, who, c).await;
                });
                info!("MRT table dumps scheduled");
            }
            feeds.mrt = Some((m, cancel));
        }
    }

    /// The established sessions of the running peers.
    async fn established_sessions(&self) -> Vec<(String, Arc<SessionFacts>)> {
        sessions(&*self.inner.state.lock().await)
    }

    fn rib_access(&self) -> RibAccess {
        RibAccess(self.inner.rib_ctl.clone())
    }

    /// Writes a TABLE_DUMP_V2 file of the Loc-RIB at `path` (gzip or bzip2 by its
    /// extension), complete or not at all (written aside, then renamed). `path` must be
    /// absolute and its directory must exist.
    pub async fn write_table_dump(&self, path: &Path) -> Result<TableDumpSummary, SpeakerError> {
        let bad = |m: &str| SpeakerError::Mrt(format!("{}: {m}", path.display()));
        if !path.is_absolute() {
            return Err(bad("not an absolute path"));
        }
        if path.file_name().is_none() || path.is_dir() {
            return Err(bad("not a file name"));
        }
        if !path.parent().is_some_and(Path::is_dir) {
            return Err(bad("its directory does not exist"));
        }
        let who = self.dump_peers().await?;
        let s = mrt::write_table_dump(&self.rib_access(), who, path.to_owned())
            .await
            .map_err(|e| bad(&e))?;
        info!(path = %s.path.display(), prefixes = s.records, paths = s.entries, "MRT table dump written");
        Ok(s)
    }

    /// The speaker and its peers for a PEER_INDEX_TABLE.
    async fn dump_peers(&self) -> Result<DumpPeers, SpeakerError> {
        let global = self.env().global;
        let peers = self
            .peers()
            .await?
            .into_iter()
            .map(|p| {
                let (asn, bgp_id) = match &p.negotiated {
                    Some(n) => (n.peer_as, n.peer_id),
                    None => (p.config.remote_as, std::net::Ipv4Addr::UNSPECIFIED),
                };
                let peer = bgp_mrt::Peer {
                    bgp_id,
                    ip: p.config.address.addr,
                    asn,
                };
                (p.config.name, peer)
            })
            .collect();
        Ok(DumpPeers {
            router_id: global.router_id,
            asn: global.asn,
            peers,
        })
    }
}

/// The established sessions of the running peers, for a station starting now.
fn sessions(st: &State) -> Vec<(String, Arc<SessionFacts>)> {
    st.peers
        .values()
        .filter_map(|h| {
            let s = h.shared.lock().unwrap_or_else(|e| e.into_inner());
            if s.state != SessionState::Established {
                return None;
            }
            let facts = SessionFacts {
                negotiated: s.negotiated.clone()?,
                local: s.local_addr?,
                remote: s.remote_addr?,
                at: SystemTime::now()
                    .checked_sub(s.since.elapsed())
                    .unwrap_or_else(SystemTime::now),
                // Sessions are numbered from 1 as they reach Established.
                seq: s.counters.established_transitions,
            };
            Some((h.config.name.clone(), Arc::new(facts)))
        })
        .collect()
}
