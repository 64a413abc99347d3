//! The speaker's tasks: who starts them, who owns them, how they end.
//!
//! Every long-lived task (the RIB task, one task per peer, the listeners, the next-hop
//! watcher) is spawned into one [`JoinSet`] under one [`CancellationToken`] ([`Tasks`]).
//! A peer is stopped by command (its session closes with a NOTIFICATION) and given
//! [`SHUTDOWN_WAIT`] to finish; several peers (a reload removing many, a new router id,
//! shutdown) are told all at once and waited for together, so stopping N peers takes the
//! time of the slowest, not the sum. At shutdown whatever is left is cancelled, then
//! aborted.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use bgp_node::graceful::Farewell;
use bgp_proto::Notification;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{IndexEntry, Listener, Speaker, SpeakerError, State};
use crate::config::PeerConfig;
use crate::net;
use crate::peer::{PeerChannels, PeerCmd, PeerHandle, PeerLink, PeerTask};
use crate::rib_task::RibCtl;

/// Depth of each peer's command channel.
const PEER_CMD_QUEUE: usize = 16;
/// How long a stopping peer may take to send its NOTIFICATION and close.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);
/// How long shutdown waits for the remaining tasks once cancelled.
const CANCEL_WAIT: Duration = Duration::from_secs(3);

/// The tasks of a speaker (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Tasks {
    set: StdMutex<JoinSet<()>>,
    /// Cancelled at shutdown; every task holds a child.
    pub(super) cancel: CancellationToken,
}

impl Tasks {
    /// Runs `task` until it ends or the speaker shuts down.
    pub(super) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        // Forget the tasks that ended (their results are `()`).
        while set.try_join_next().is_some() {}
        set.spawn(task)
    }

    /// Cancels every task, waits a little for them to end, aborts the rest.
    pub(super) async fn shutdown(&self) {
        self.cancel.cancel();
        let mut set = std::mem::take(&mut *self.set.lock().unwrap_or_else(|e| e.into_inner()));
        let all = async { while set.join_next().await.is_some() {} };
        if tokio::time::timeout(CANCEL_WAIT, all).await.is_err() {
            set.abort_all();
        }
    }
}

impl Speaker {
    pub(super) fn open_listener(
        &self,
        st: &mut State,
        addr: SocketAddr,
    ) -> Result<(), SpeakerError> {
        let l = net::listen(addr).map_err(|source| SpeakerError::Listen { addr, source })?;
        let fd = l.as_raw_fd();
        // Key every MD5 peer of this family on the new socket (RFC 2385).
        for p in st.peers.values() {
            if let Some(pw) = &p.config.password {
                if p.config.address.addr.is_ipv4() == addr.is_ipv4() {
                    if let Err(e) = net::set_md5(fd, p.config.address.addr, Some(pw.as_bytes())) {
                        warn!(%addr, peer = %p.config.name, error = %e, "TCP-MD5 on listener");
                    }
                }
            }
        }
        let index = self.inner.index.clone();
        let cancel = self.inner.tasks.cancel.child_token();
        let task = self.inner.tasks.spawn(async move {
            // Anyone can connect: what they can make us log is limited (log_limit.rs).
            let mut unknown = crate::log_limit::LogLimit::default();
            let mut refused = crate::log_limit::LogLimit::default();
            loop {
                let accepted = tokio::select! {
                    _ = cancel.cancelled() => return,
                    a = l.accept() => a,
                };
                match accepted {
                    Ok((stream, remote)) => {
                        let ip = match remote.ip() {
                            IpAddr::V6(v6) => v6
                                .to_ipv4_mapped()
                                .map(IpAddr::V4)
                                .unwrap_or(IpAddr::V6(v6)),
                            v4 => v4,
                        };
                        let entry = index.read().ok().and_then(|m| {
                            m.get(&ip).and_then(|v| v.first()).map(|(_, e)| e.clone())
                        });
                        match entry {
                            Some(e) if !net::scope_matches(e.scope.as_deref(), remote) => {
                                if let Some(suppressed) = refused.allow() {
                                    warn!(%remote, listener = %addr, scope = ?e.scope, suppressed, "refused connection from a link-local peer address over another interface");
                                }
                            }
                            Some(e) => {
                                // As early as possible: segments arriving before the
                                // minimum TTL is set are not filtered (RFC 5082).
                                if let Err(err) = net::apply_options(
                                    stream.as_raw_fd(),
                                    remote.is_ipv6(),
                                    &e.opts,
                                ) {
                                    warn!(%remote, error = %err, "socket options on accepted connection");
                                    continue;
                                }
                                if e.cmd.try_send(PeerCmd::Incoming(stream, remote)).is_err() {
                                    if let Some(suppressed) = refused.allow() {
                                        warn!(%remote, suppressed, "peer task busy; connection dropped");
                                    }
                                }
                            }
                            None => {
                                if let Some(suppressed) = unknown.allow() {
                                    warn!(%remote, listener = %addr, suppressed, "refused connection from unknown peer address");
                                }
                            }
                        }
                    }
                    Err(e) => {
                        warn!(listener = %addr, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        info!(%addr, "listening");
        st.listeners.insert(addr, Listener { fd, task });
        Ok(())
    }

    pub(super) fn set_listener_md5(st: &State, addr: IpAddr, key: Option<&[u8]>) {
        for (la, l) in &st.listeners {
            if la.is_ipv4() == addr.is_ipv4() {
                if let Err(e) = net::set_md5(l.fd, addr, key) {
                    warn!(listener = %la, peer = %addr, error = %e, "TCP-MD5 on listener");
                }
            }
        }
    }

    /// Adds a peer to the RIB and starts its task.
    pub(super) async fn spawn_peer(
        &self,
        st: &mut State,
        cfg: PeerConfig,
    ) -> Result<(), SpeakerError> {
        if st.peers.contains_key(&cfg.name) {
            return Err(SpeakerError::PeerExists(cfg.name));
        }
        cfg.check().map_err(|reason| SpeakerError::InvalidPeer {
            name: cfg.name.clone(),
            reason,
        })?;
        for n in cfg.import.iter().chain(&cfg.export) {
            if !st.config.policies.contains_key(n) {
                return Err(SpeakerError::UnknownPolicy(n.clone()));
            }
        }
        if let Some(pw) = &cfg.password {
            Self::set_listener_md5(st, cfg.address.addr, Some(pw.as_bytes()));
        }
        let id = st.ids.allocate();
        let (cmd_tx, cmd_rx) = mpsc::channel(PEER_CMD_QUEUE);
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(StdMutex::new(bgp_node::PeerStatus::new(
            cfg.disabled,
            std::time::Instant::now(),
        )));
        let link = PeerLink {
            out: out_tx,
            cmd: cmd_tx.clone(),
        };
        let added = self
            .rib(RibCtl::AddPeer {
                id,
                config: Box::new(cfg.clone()),
                link,
            })
            .await;
        if let Err(e) = added {
            st.ids.release(id);
            return Err(e);
        }
        let channels = PeerChannels {
            cmd: cmd_rx,
            out: out_rx,
            credits: self.inner.credits.clone(),
            feed: self.inner.rib_in.feed(),
            cancel: self.inner.tasks.cancel.child_token(),
            tap: crate::monitor::tap::PeerTap::new(self.inner.tap.clone()),
            states: crate::events::PeerStates::new(
                self.inner.transitions.clone(),
                &cfg.name,
                cfg.disabled,
            ),
        };
        let task = PeerTask::new(id, cfg.clone(), self.env(), shared.clone(), channels);
        let (done_tx, done) = oneshot::channel::<()>();
        let abort = self.inner.tasks.spawn(async move {
            task.run().await;
            // Dropped here, or with the future when the task is aborted.
            drop(done_tx);
        });
        self.index_peer(&cfg, cmd_tx.clone());
        info!(peer = %cfg.name, address = %cfg.address, remote_as = cfg.remote_as, "peer added");
        st.config.peers.insert(cfg.name.clone(), cfg.clone());
        st.peers.insert(
            cfg.name.clone(),
            PeerHandle {
                id,
                config: cfg,
                cmd: cmd_tx,
                shared,
                done,
                abort,
            },
        );
        Ok(())
    }

    pub(super) fn index_peer(&self, cfg: &PeerConfig, cmd: mpsc::Sender<PeerCmd>) {
        let opts = crate::peer::socket_options(cfg, &self.env().global);
        if let Ok(mut idx) = self.inner.index.write() {
            let v = idx.entry(cfg.address.addr).or_default();
            v.retain(|(n, _)| *n != cfg.name);
            v.push((
                cfg.name.clone(),
                IndexEntry {
                    cmd,
                    opts,
                    scope: cfg.address.scope.clone(),
                },
            ));
            v.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }

    /// Stops and removes the named peers, closing their sessions with `n` as `farewell`
    /// says for each (a Hard Reset where the N bit was negotiated: a removal must not
    /// leave our routes stale at the peer; a restart for new settings may). All are told
    /// at once and waited for together.
    pub(super) async fn stop_peers(
        &self,
        st: &mut State,
        names: &[String],
        n: Notification,
        farewell: impl Fn(&PeerConfig) -> Farewell,
    ) -> Result<(), SpeakerError> {
        let mut stopping = Vec::with_capacity(names.len());
        for name in names {
            let Some(h) = st.peers.remove(name) else {
                return Err(SpeakerError::NoSuchPeer(name.to_string()));
            };
            st.config.peers.remove(name);
            self.unindex_peer(st, &h.config);
            let _ = h
                .cmd
                .send(PeerCmd::Stop {
                    notification: n.clone(),
                    farewell: farewell(&h.config),
                })
                .await;
            stopping.push(h);
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_WAIT;
        for h in &mut stopping {
            if tokio::time::timeout_at(deadline, &mut h.done)
                .await
                .is_err()
            {
                h.abort.abort();
            }
        }
        for h in stopping {
            self.rib(RibCtl::RemovePeer(h.id)).await?;
            st.ids.release(h.id);
            info!(peer = %h.config.name, "peer removed");
        }
        Ok(())
    }

    /// Takes a peer out of the listeners' index and MD5 keys.
    fn unindex_peer(&self, st: &State, cfg: &PeerConfig) {
        let addr = cfg.address.addr;
        if let Ok(mut idx) = self.inner.index.write() {
            if let Some(v) = idx.get_mut(&addr) {
                v.retain(|(n, _)| *n != cfg.name);
                if v.is_empty() {
                    idx.remove(&addr);
                }
            }
        }
        if cfg.password.is_some() {
            // The listener's key serves every peer of the address: another one's, or none.
            let other = st
                .peers
                .values()
                .find(|p| p.config.address.addr == addr)
                .and_then(|p| p.config.password.clone());
            Self::set_listener_md5(st, addr, other.as_deref().map(str::as_bytes));
        }
    }
}
