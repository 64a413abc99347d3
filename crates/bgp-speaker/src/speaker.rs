//! [`Speaker`]: the embedding API. It owns the listeners, one task per peer and the RIB
//! task, and applies configuration changes incrementally.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex as StdMutex, RwLock};
use std::time::{Duration, Instant};

use bgp_proto::{notification_code as nc, Notification};
use bgp_rib::FibChange;
use bytes::Bytes;
use ipnet::IpNet;
use tokio::sync::{broadcast, mpsc, oneshot, watch, Mutex};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{diff, Config, ConfigDiff, Originate, PeerConfig};
use crate::net;
use crate::peer::{PeerCmd, PeerEnv, PeerHandle, PeerShared, PeerTask};
use crate::rib_input::RibInputs;
use crate::rib_task::{BestRoute, Query, RibCtl, RibTask, RouteChange, PEER_OUT_QUEUE};
use crate::routes::{Route, RouteCursor, RouteQuery, MAX_PAGE};

mod ownership;
mod status;
pub use ownership::Owner;
pub use status::{Peer, PeerCounters, PeerState, SelectionDeferral, Status};

/// Depth of each peer's command channel.
const PEER_CMD_QUEUE: usize = 16;
/// Subscribers that fall this far behind lose changes (and are told so by tokio).
const ROUTE_EVENTS: usize = 65536;
/// How long shutdown waits for peers to send their NOTIFICATION.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// Errors of the speaker API.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("listening on {addr}: {source}")]
    /// A listener could not be opened.
    Listen {
        /// The address.
        addr: SocketAddr,
        #[source]
        /// The error.
        source: std::io::Error,
    },
    #[error("peer {0:?} already exists")]
    /// A peer with this name exists.
    PeerExists(String),
    #[error("no peer named {0:?}")]
    /// No peer with this name.
    NoSuchPeer(String),
    /// The peer configuration is invalid.
    #[error("peer {name:?}: {reason}")]
    InvalidPeer {
        /// The peer.
        name: String,
        /// What is wrong.
        reason: String,
    },
    #[error("unknown policy {0:?}")]
    /// A peer names a policy that does not exist.
    UnknownPolicy(String),
    #[error("peer {0:?} comes from the configuration; change it there")]
    /// The API was asked to change or remove a peer of the configuration.
    ConfiguredPeer(String),
    #[error("peer {0:?} was added through the API; the configuration cannot define it too")]
    /// A configuration defines a peer the API added.
    ApiPeer(String),
    #[error("route {0} comes from the configuration; change it there")]
    /// The API was asked to originate or withdraw a route of the configuration.
    ConfiguredRoute(IpNet),
    #[error("route {0} was advertised through the API; the configuration cannot originate it too")]
    /// A configuration originates a route the API advertised.
    ApiRoute(IpNet),
    #[error("the speaker has shut down")]
    /// The speaker has shut down.
    Stopped,
    #[error("kernel FIB: {0}")]
    /// The kernel FIB component failed to start.
    Kernel(#[from] bgp_kernel::KernelError),
    #[error("RIB: {0}")]
    /// The RIB refused a change.
    Rib(#[from] bgp_rib::RibError),
}

/// Options that are not part of the configuration file.
#[derive(Clone, Debug, Default)]
pub struct SpeakerOptions {
    /// We are restarting with forwarding state kept (RFC 4724): announce the restart state
    /// bit so peers keep our routes while we come back.
    pub graceful_restart: bool,
    /// Forwarding state is preserved across our restart (RFC 4724 F bit), e.g. kernel
    /// routes were kept.
    pub forwarding_preserved: bool,
    /// Receives every batch of best-path changes for the forwarding table.
    pub fib: Option<mpsc::Sender<Vec<FibChange>>>,
}

/// An operator's action on one peer ([`Speaker::peer_action`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerAction {
    /// Close the session with Cease / Administrative Reset (RFC 4486) and let it
    /// re-establish.
    Reset,
    /// Close with Cease / Administrative Shutdown and keep it down.
    Disable,
    /// Start a disabled session again.
    Enable,
}

struct Listener {
    fd: RawFd,
    task: JoinHandle<()>,
}

/// What the listeners need to hand an accepted connection to its peer task.
#[derive(Clone)]
struct IndexEntry {
    cmd: mpsc::Sender<PeerCmd>,
    /// Applied right after accept (GTSM minimum TTL, TTL), before the peer task runs.
    opts: net::SocketOptions,
    /// Interface of a link-local peer: connections from its address over another link
    /// are someone else.
    scope: Option<String>,
}

/// Peers by address, several when they differ by port (BIRD allows one protocol per
/// neighbour address and port, as Calico's `Node_<ip>_port_<n>` sessions need); by name.
/// A connection from the address goes to the first one, as BIRD gives it to the first
/// protocol of its configuration.
type PeerIndex = Arc<RwLock<HashMap<IpAddr, Vec<(String, IndexEntry)>>>>;

struct State {
    /// The running configuration: the last one applied, with the peers and routes added
    /// through the API.
    config: Config,
    /// Which of those the API added (speaker/ownership.rs).
    api: ownership::ApiOwned,
    peers: BTreeMap<String, PeerHandle>,
    listeners: BTreeMap<SocketAddr, Listener>,
    loaded: Instant,
    stopped: bool,
}

struct Inner {
    state: Mutex<State>,
    /// Replaced when our AS or router id changes (every peer is restarted then).
    env: RwLock<PeerEnv>,
    /// The configuration in force, published after every start and reload.
    applied: watch::Sender<Arc<Config>>,
    rib_ctl: mpsc::Sender<RibCtl>,
    /// The peers→RIB channel, bounded by weight with a share per peer (rib_input.rs).
    rib_in: RibInputs,
    routes: broadcast::Sender<RouteChange>,
    index: PeerIndex,
    started: Instant,
    /// When a graceful restart of ours (`SpeakerOptions::graceful_restart`) is over at the
    /// latest, whether or not every peer sent End-of-RIB.
    recovery_deadline: Option<Instant>,
    /// The whole of that wait (the restart time), for the status.
    recovery_wait: Option<Duration>,
    /// The components that can fail on their own (crate::health).
    health: crate::health::Health,
    /// The last complete status answers (speaker/status.rs).
    last_answers: StdMutex<status::LastAnswers>,
    rib_task: StdMutex<Option<JoinHandle<()>>>,
    /// The kernel FIB component, when the configuration has a `[kernel]` section.
    kernel: StdMutex<Option<crate::fib::KernelHandle>>,
}

/// A running BGP speaker. Cheap to clone; all clones control the same speaker.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use bgp_speaker::{config, Speaker, SpeakerOptions};
/// let cfg = config::load(std::path::Path::new("/etc/bgpd/bgpd.toml"))?;
/// let speaker = Speaker::start(cfg, SpeakerOptions::default()).await?;
/// let mut changes = speaker.subscribe();
/// while let Ok(change) = changes.recv().await {
///     println!("{change:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Speaker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker").finish_non_exhaustive()
    }
}

impl Speaker {
    /// Starts a speaker: binds the listeners, starts the RIB task and one task per peer,
    /// and originates the configured routes. Must be called within a tokio runtime.
    pub async fn start(config: Config, options: SpeakerOptions) -> Result<Speaker, SpeakerError> {
        let (rib_in, rib_in_rx) = crate::rib_input::channel(Default::default());
        let (rib_ctl, rib_ctl_rx) = mpsc::channel(64);
        let (routes, _) = broadcast::channel(ROUTE_EVENTS);
        // RFC 4724 4.1: a restarting speaker defers selection until every peer sent
        // End-of-RIB or the restart time passed. One deadline ends every part of the
        // recovery: the RIB's deferral, the kernel FIB's sweep of stale routes and the
        // "graceful restart in progress" status (BIRD's 0024).
        let recovery_wait = options.graceful_restart.then(|| {
            Duration::from_secs(u64::from(
                config.global.graceful_restart.restart_time.max(1),
            ))
        });
        let recovery_deadline = recovery_wait.map(|w| Instant::now() + w);
        let health = crate::health::Health::default();
        // The kernel FIB component, unless the embedder takes the FIB channel itself.
        let (fib, kernel) = match (&config.kernel, &options.fib) {
            (Some(k), None) => {
                let mut fib_options = crate::fib::FibOptions {
                    health: health.clone(),
                    ..crate::fib::FibOptions::default()
                };
                if let Some(w) = recovery_wait {
                    fib_options.recovery_wait = w;
                }
                let (tx, h) = crate::fib::start(k, rib_ctl.clone(), fib_options).await?;
                (Some(tx), Some(h))
            }
            (Some(_), Some(_)) => {
                info!("[kernel] not started: the embedder receives the FIB changes (SpeakerOptions::fib)");
                (options.fib.clone(), None)
            }
            (None, _) => (options.fib.clone(), None),
        };
        // Next hops resolve through the kernel when its component runs (crate::nexthop).
        let kernel_view = kernel.is_some();
        let rib = RibTask::new(
            &config,
            rib_in_rx,
            rib_ctl_rx,
            routes.clone(),
            fib,
            kernel_view,
        );
        let rib_task = tokio::spawn(rib.run());
        let env = PeerEnv {
            global: Arc::new(config.global.clone()),
            restarting: options.graceful_restart,
            forwarding_preserved: options.forwarding_preserved,
        };
        let (applied, _) = watch::channel(Arc::new(config.clone()));
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                config: config.clone(),
                api: ownership::ApiOwned::default(),
                peers: BTreeMap::new(),
                listeners: BTreeMap::new(),
                loaded: Instant::now(),
                stopped: false,
            }),
            env: RwLock::new(env),
            applied,
            rib_ctl,
            rib_in,
            routes,
            index: Arc::new(RwLock::new(HashMap::new())),
            started: Instant::now(),
            recovery_deadline,
            recovery_wait,
            health,
            last_answers: StdMutex::new(status::LastAnswers::default()),
            rib_task: StdMutex::new(Some(rib_task)),
            kernel: StdMutex::new(kernel),
        });
        let speaker = Speaker { inner };
        {
            let mut st = speaker.inner.state.lock().await;
            for o in config.originate.values() {
                speaker.rib(RibCtl::Originate(o.clone())).await?;
            }
            // Peers before listeners, so an early connection finds its peer.
            for p in config.peers.values() {
                speaker.spawn_peer(&mut st, p.clone()).await?;
            }
            if let Some(deadline) = speaker.inner.recovery_deadline {
                speaker.rib(RibCtl::DeferSelection(deadline)).await?;
            }
            for addr in &config.global.listen {
                speaker.open_listener(&mut st, *addr)?;
            }
        }
        info!(
            asn = config.global.asn,
            router_id = %config.global.router_id,
            peers = config.peers.len(),
            "speaker started"
        );
        Ok(speaker)
    }

    /// What every new peer task gets.
    fn env(&self) -> PeerEnv {
        self.inner
            .env
            .read()
            .map(|e| e.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    async fn rib(&self, c: RibCtl) -> Result<(), SpeakerError> {
        self.inner
            .rib_ctl
            .send(c)
            .await
            .map_err(|_| SpeakerError::Stopped)
    }

    async fn ask<T>(&self, f: impl FnOnce(oneshot::Sender<T>) -> Query) -> Result<T, SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.rib(RibCtl::Query(f(tx))).await?;
        rx.await.map_err(|_| SpeakerError::Stopped)
    }

    fn open_listener(&self, st: &mut State, addr: SocketAddr) -> Result<(), SpeakerError> {
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
        let task = tokio::spawn(async move {
            // Anyone can connect: what they can make us log is limited (log_limit.rs).
            let mut unknown = crate::log_limit::LogLimit::default();
            let mut refused = crate::log_limit::LogLimit::default();
            loop {
                match l.accept().await {
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

    fn set_listener_md5(st: &State, addr: IpAddr, key: Option<&[u8]>) {
        for (la, l) in &st.listeners {
            if la.is_ipv4() == addr.is_ipv4() {
                if let Err(e) = net::set_md5(l.fd, addr, key) {
                    warn!(listener = %la, peer = %addr, error = %e, "TCP-MD5 on listener");
                }
            }
        }
    }

    async fn spawn_peer(&self, st: &mut State, cfg: PeerConfig) -> Result<(), SpeakerError> {
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
        let (cmd_tx, cmd_rx) = mpsc::channel(PEER_CMD_QUEUE);
        let (out_tx, out_rx) = mpsc::channel::<Vec<Bytes>>(PEER_OUT_QUEUE);
        let shared = Arc::new(StdMutex::new(PeerShared::new(cfg.disabled)));
        self.rib(RibCtl::AddPeer {
            config: Box::new(cfg.clone()),
            out: out_tx,
            cmd: cmd_tx.clone(),
        })
        .await?;
        let task = PeerTask::new(
            cfg.clone(),
            self.env(),
            shared.clone(),
            cmd_rx,
            out_rx,
            self.inner.rib_in.feed(),
        );
        let handle = tokio::spawn(task.run());
        self.index_peer(&cfg, cmd_tx.clone());
        info!(peer = %cfg.name, address = %cfg.address, remote_as = cfg.remote_as, "peer added");
        st.config.peers.insert(cfg.name.clone(), cfg.clone());
        st.peers.insert(
            cfg.name.clone(),
            PeerHandle {
                config: cfg,
                cmd: cmd_tx,
                shared,
                task: handle,
            },
        );
        Ok(())
    }

    fn index_peer(&self, cfg: &PeerConfig, cmd: mpsc::Sender<PeerCmd>) {
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

    /// Stops and removes a peer's task, closing its session with `n` (as a Hard Reset
    /// when `hard_reset` and the N bit was negotiated: a removal must not leave our routes
    /// stale at the peer, a restart for new settings may).
    async fn stop_peer(
        &self,
        st: &mut State,
        name: &str,
        n: Notification,
        hard_reset: bool,
    ) -> Result<(), SpeakerError> {
        let Some(h) = st.peers.remove(name) else {
            return Err(SpeakerError::NoSuchPeer(name.to_string()));
        };
        st.config.peers.remove(name);
        let addr = h.config.address.addr;
        if let Ok(mut idx) = self.inner.index.write() {
            if let Some(v) = idx.get_mut(&addr) {
                v.retain(|(n, _)| n != name);
                if v.is_empty() {
                    idx.remove(&addr);
                }
            }
        }
        if h.config.password.is_some() {
            // The listener's key serves every peer of the address: another one's, or none.
            let other = st
                .peers
                .values()
                .find(|p| p.config.address.addr == addr)
                .and_then(|p| p.config.password.clone());
            Self::set_listener_md5(st, addr, other.as_deref().map(str::as_bytes));
        }
        let _ = h
            .cmd
            .send(PeerCmd::Stop {
                notification: n,
                hard_reset,
            })
            .await;
        let abort = h.task.abort_handle();
        if tokio::time::timeout(SHUTDOWN_WAIT, h.task).await.is_err() {
            abort.abort();
        }
        self.rib(RibCtl::RemovePeer(name.to_string())).await?;
        info!(peer = %name, "peer removed");
        Ok(())
    }

    /// Adds and starts a peer, owned by the API: configurations applied later leave it
    /// alone (see [`Owner`]). Its import and export policies must exist, and no other
    /// peer may have its name, or its address and port.
    pub async fn add_peer(&self, cfg: PeerConfig) -> Result<(), SpeakerError> {
        let mut st = self.inner.state.lock().await;
        if st.stopped {
            return Err(SpeakerError::Stopped);
        }
        if st.peers.contains_key(&cfg.name) {
            return Err(SpeakerError::PeerExists(cfg.name));
        }
        ownership::check_endpoints(st.config.peers.values().chain([&cfg]))?;
        let name = cfg.name.clone();
        self.spawn_peer(&mut st, cfg).await?;
        st.api.add_peer(&name);
        Ok(())
    }

    /// Removes a peer added through the API, closing its session with Cease / Peer
    /// De-configured (RFC 4486).
    pub async fn remove_peer(&self, name: &str) -> Result<(), SpeakerError> {
        let mut st = self.inner.state.lock().await;
        if !st.peers.contains_key(name) {
            return Err(SpeakerError::NoSuchPeer(name.to_string()));
        }
        st.api.check_peer(name)?;
        self.stop_peer(
            &mut st,
            name,
            Notification {
                code: nc::CEASE,
                subcode: nc::CEASE_PEER_DECONFIGURED,
                data: Bytes::new(),
            },
            true,
        )
        .await?;
        st.api.remove_peer(name);
        Ok(())
    }

    /// Replaces the configuration of a peer added through the API. The session restarts
    /// only when a session parameter changed (see [`PeerChange`](crate::config::PeerChange)); policy
    /// changes are applied by soft reconfiguration.
    pub async fn update_peer(&self, cfg: PeerConfig) -> Result<(), SpeakerError> {
        let mut st = self.inner.state.lock().await;
        let Some(old) = st.peers.get(&cfg.name).map(|h| h.config.clone()) else {
            return Err(SpeakerError::NoSuchPeer(cfg.name));
        };
        st.api.check_peer(&cfg.name)?;
        ownership::check_endpoints(
            st.config
                .peers
                .values()
                .filter(|p| p.name != cfg.name)
                .chain([&cfg]),
        )?;
        let change = diff::diff_peer(&old, &cfg, &Default::default());
        self.apply_peer_change(&mut st, old, cfg, &change).await
    }

    async fn apply_peer_change(
        &self,
        st: &mut State,
        old: PeerConfig,
        cfg: PeerConfig,
        change: &diff::PeerChange,
    ) -> Result<(), SpeakerError> {
        cfg.check().map_err(|reason| SpeakerError::InvalidPeer {
            name: cfg.name.clone(),
            reason,
        })?;
        if change.is_empty() {
            return Ok(());
        }
        if old.address.addr != cfg.address.addr || old.password != cfg.password {
            // The listener keys and the accept index are per address: simplest to re-add.
            let name = cfg.name.clone();
            self.stop_peer(
                st,
                &name,
                Notification {
                    code: nc::CEASE,
                    subcode: nc::CEASE_OTHER_CONFIG_CHANGE,
                    data: Bytes::new(),
                },
                false,
            )
            .await?;
            return self.spawn_peer(st, cfg).await;
        }
        let Some(h) = st.peers.get_mut(&cfg.name) else {
            return Err(SpeakerError::NoSuchPeer(cfg.name));
        };
        h.config = cfg.clone();
        let cmd = h.cmd.clone();
        self.index_peer(&cfg, cmd);
        let restart = change.needs_restart();
        if restart {
            info!(peer = %cfg.name, changed = ?change.restart, "session parameters changed: restarting session");
        }
        let _ = h
            .cmd
            .send(PeerCmd::Reconfigure {
                config: Box::new(cfg.clone()),
                restart,
            })
            .await;
        st.config.peers.insert(cfg.name.clone(), cfg.clone());
        if change.soft_in || change.soft_out || !change.runtime.is_empty() {
            self.rib(RibCtl::UpdatePeer(Box::new(cfg))).await?;
        }
        Ok(())
    }

    /// Applies a whole new configuration: computes the [`ConfigDiff`] against the running
    /// one and applies only that. Unchanged sessions are not touched, nor are the peers
    /// and routes added through the API (see [`Owner`]).
    pub async fn apply_config(&self, new: Config) -> Result<ConfigDiff, SpeakerError> {
        let mut st = self.inner.state.lock().await;
        if st.stopped {
            return Err(SpeakerError::Stopped);
        }
        let new = st.api.merge(&st.config, new)?;
        // `found` is reported; `d` is what is applied below: after an identity change
        // every peer is new.
        let found = diff::diff(&st.config, &new);
        if found.control_changed {
            info!(socket = ?new.global.control.socket, mode = format!("{:o}", new.global.control.mode), "control socket settings changed");
        }
        if found.rib_changed {
            warn!("global cluster_id or max_paths changed: they take effect when bgpd restarts");
        }
        if found.process_changed {
            warn!("[global] user or group changed: they take effect when bgpd restarts");
        }
        if found.kernel_changed {
            warn!("[kernel] settings changed: they take effect when bgpd restarts; the running kernel FIB keeps the old ones");
        }
        // All or nothing: what can fail is checked, and new listeners bound, before
        // anything changes. A listener that cannot be bound refuses the whole reload
        // (closing those bound just before), so the running configuration stays what is
        // recorded and the next reload tries again.
        Self::check_applicable(&new)?;
        self.open_listeners(&mut st, &found.listen_added)?;
        let d = if found.global_restart.is_empty() {
            found.clone()
        } else {
            self.change_identity(&mut st, &new).await?;
            diff::diff(&st.config, &new)
        };
        // Policies first, so added and changed peers see them.
        st.config.policies = new.policies.clone();
        if !d.policies_changed.is_empty() {
            self.rib(RibCtl::SetPolicies(new.policies.clone())).await?;
        }
        for name in &d.peers_removed {
            self.stop_peer(
                &mut st,
                name,
                Notification {
                    code: nc::CEASE,
                    subcode: nc::CEASE_PEER_DECONFIGURED,
                    data: Bytes::new(),
                },
                true,
            )
            .await?;
        }
        for addr in &d.listen_removed {
            if let Some(l) = st.listeners.remove(addr) {
                l.task.abort();
                info!(%addr, "stopped listening");
            }
        }
        for (name, change) in &d.peers_changed {
            let (Some(old), Some(cfg)) = (st.config.peers.get(name).cloned(), new.peers.get(name))
            else {
                continue;
            };
            self.apply_peer_change(&mut st, old, cfg.clone(), change)
                .await?;
        }
        for name in &d.peers_added {
            if let Some(cfg) = new.peers.get(name) {
                self.spawn_peer(&mut st, cfg.clone()).await?;
            }
        }
        for p in &d.originate_removed {
            self.rib(RibCtl::Withdraw(*p)).await?;
        }
        for o in &d.originate_added {
            self.rib(RibCtl::Originate(o.clone())).await?;
        }
        // Keep what could not be applied live as it was, so the next diff still sees it.
        let mut applied = new;
        applied.kernel = st.config.kernel.clone();
        applied.global.user = st.config.global.user.clone();
        applied.global.group = st.config.global.group.clone();
        st.config = applied;
        st.loaded = Instant::now();
        self.inner.applied.send_replace(Arc::new(st.config.clone()));
        info!(changes = %found, "configuration applied");
        Ok(found)
    }

    /// The checks that would make applying `new` fail halfway (every peer valid, every
    /// policy it names defined, no two peers at one address and port), made before
    /// anything is applied.
    fn check_applicable(new: &Config) -> Result<(), SpeakerError> {
        ownership::check_endpoints(new.peers.values())?;
        for p in new.peers.values() {
            p.check().map_err(|reason| SpeakerError::InvalidPeer {
                name: p.name.clone(),
                reason,
            })?;
            if let Some(n) = p
                .import
                .iter()
                .chain(&p.export)
                .find(|n| !new.policies.contains_key(*n))
            {
                return Err(SpeakerError::UnknownPolicy(n.clone()));
            }
        }
        Ok(())
    }

    /// Binds every listener of `addrs`, or none: on the first failure the ones bound here
    /// are closed again and the error returned.
    fn open_listeners(&self, st: &mut State, addrs: &[SocketAddr]) -> Result<(), SpeakerError> {
        for (i, addr) in addrs.iter().enumerate() {
            if let Err(e) = self.open_listener(st, *addr) {
                for done in addrs.iter().take(i) {
                    if let Some(l) = st.listeners.remove(done) {
                        l.task.abort();
                    }
                }
                warn!(error = %e, "cannot open a new listener: configuration refused");
                return Err(e);
            }
        }
        Ok(())
    }

    /// Our AS or router id changed: both go into every OPEN and into the RIB's view of
    /// every peer, so every session is closed with Cease / Other Configuration Change
    /// (RFC 4486 subcode 6), the RIB takes the new identity, and the caller starts the
    /// peers again (BIRD also restarts every session for this).
    async fn change_identity(&self, st: &mut State, new: &Config) -> Result<(), SpeakerError> {
        let (asn, router_id) = (new.global.asn, new.global.router_id);
        info!(
            old_asn = st.config.global.asn,
            asn,
            old_router_id = %st.config.global.router_id,
            %router_id,
            peers = st.peers.len(),
            "AS or router id changed: restarting every session"
        );
        let names: Vec<String> = st.peers.keys().cloned().collect();
        for name in &names {
            self.stop_peer(
                st,
                name,
                Notification {
                    code: nc::CEASE,
                    subcode: nc::CEASE_OTHER_CONFIG_CHANGE,
                    data: Bytes::new(),
                },
                false,
            )
            .await?;
        }
        let (tx, rx) = oneshot::channel();
        self.rib(RibCtl::SetIdentity {
            asn,
            router_id,
            done: tx,
        })
        .await?;
        rx.await.map_err(|_| SpeakerError::Stopped)??;
        st.config.global.asn = asn;
        st.config.global.router_id = router_id;
        if let Ok(mut env) = self.inner.env.write() {
            let mut g = (*env.global).clone();
            g.asn = asn;
            g.router_id = router_id;
            env.global = Arc::new(g);
        }
        Ok(())
    }

    /// The configuration in force: the current value, then a new one after every start
    /// or reload that applied something (an embedder or the daemon follows changes that
    /// live outside the speaker, such as the control socket path or the drop-in
    /// directory).
    pub fn config_updates(&self) -> watch::Receiver<Arc<Config>> {
        self.inner.applied.subscribe()
    }

    /// Administrative action on a peer (reset, disable, enable).
    pub async fn peer_action(&self, name: &str, action: PeerAction) -> Result<(), SpeakerError> {
        let st = self.inner.state.lock().await;
        let h = st
            .peers
            .get(name)
            .ok_or_else(|| SpeakerError::NoSuchPeer(name.to_string()))?;
        let cmd = match action {
            // RFC 8538 5 leaves a reset to the operator: it stays graceful.
            PeerAction::Reset => PeerCmd::Teardown {
                notification: Notification::admin_reset("reset by operator"),
                restart_after: Some(Duration::ZERO),
                hard_reset: false,
            },
            PeerAction::Disable => PeerCmd::Teardown {
                notification: Notification::admin_shutdown("disabled by operator"),
                restart_after: None,
                hard_reset: true,
            },
            PeerAction::Enable => PeerCmd::Enable,
        };
        info!(peer = %name, ?action, "operator action");
        h.cmd.send(cmd).await.map_err(|_| SpeakerError::Stopped)
    }

    /// Originates (or replaces) a route, owned by the API: configurations applied later
    /// leave it alone, and may not originate its prefix themselves (see [`Owner`]).
    pub async fn advertise(&self, route: Originate) -> Result<(), SpeakerError> {
        let mut guard = self.inner.state.lock().await;
        let st = &mut *guard;
        st.api.add_route(&st.config, route.prefix)?;
        st.config.originate.insert(route.prefix, route.clone());
        self.rib(RibCtl::Originate(route)).await
    }

    /// Withdraws a route originated through the API (nothing happens for a prefix that
    /// nobody originates).
    pub async fn withdraw(&self, prefix: IpNet) -> Result<(), SpeakerError> {
        let prefix = prefix.trunc();
        let mut guard = self.inner.state.lock().await;
        let st = &mut *guard;
        st.api.remove_route(&st.config, prefix)?;
        st.config.originate.remove(&prefix);
        self.rib(RibCtl::Withdraw(prefix)).await
    }

    /// A stream of best-path changes (what an agent programming its own forwarding table
    /// needs). Take [`Speaker::best_routes`] after subscribing for the starting state.
    pub fn subscribe(&self) -> broadcast::Receiver<RouteChange> {
        self.inner.routes.subscribe()
    }

    /// Every prefix's current best route.
    pub async fn best_routes(&self) -> Result<Vec<BestRoute>, SpeakerError> {
        self.ask(Query::Best).await
    }

    /// Routes of a table, filtered: every page of [`Speaker::routes_page`] collected
    /// (for a large table, take the pages one by one instead).
    pub async fn routes(&self, q: RouteQuery) -> Result<Vec<Route>, SpeakerError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let (mut page, next) = self.routes_page(q.clone(), after, MAX_PAGE).await?;
            all.append(&mut page);
            match next {
                Some(n) => after = Some(n),
                None => return Ok(all),
            }
        }
    }

    /// Up to `limit` routes of a table (at most 10,000) after `after`, and where the next
    /// page starts (`None` after the last). The RIB answers each page separately, so a
    /// large table costs memory for one page at a time.
    pub async fn routes_page(
        &self,
        q: RouteQuery,
        after: Option<RouteCursor>,
        limit: usize,
    ) -> Result<(Vec<Route>, Option<RouteCursor>), SpeakerError> {
        let page = self
            .ask(|reply| Query::RoutesPage {
                filter: q,
                after,
                limit,
                reply,
            })
            .await?
            .map_err(SpeakerError::NoSuchPeer)?;
        Ok((page.routes, page.next))
    }

    /// Longest-prefix match: every path of the most specific prefix covering `addr`, the
    /// best marked and the others with the decision step they lost at.
    pub async fn lookup(&self, addr: IpAddr) -> Result<Vec<Route>, SpeakerError> {
        self.ask(|r| Query::Lookup(addr, r)).await
    }

    /// Tests only: blocks the RIB task for `d` (tests/rib_stall.rs).
    #[cfg(test)]
    pub(crate) async fn stall_rib(&self, d: Duration) -> Result<(), SpeakerError> {
        self.rib(RibCtl::Stall(d)).await
    }

    /// The running configuration.
    pub async fn config(&self) -> Config {
        self.inner.state.lock().await.config.clone()
    }

    /// The addresses the listeners are bound to.
    pub async fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.inner
            .state
            .lock()
            .await
            .listeners
            .keys()
            .copied()
            .collect()
    }

    /// Closes every session with Cease / Administrative Shutdown carrying `message`
    /// (RFC 8203 shutdown communication), stops the listeners and the RIB.
    pub async fn shutdown(&self, message: &str) {
        let mut st = self.inner.state.lock().await;
        if st.stopped {
            return;
        }
        st.stopped = true;
        // The kernel FIB first: closing sessions must not withdraw routes from the kernel
        // (they persist or are flushed per `on_exit`).
        let kernel = self.inner.kernel.lock().ok().and_then(|mut k| k.take());
        if let Some(k) = kernel {
            k.stop().await;
        }
        for (_, l) in std::mem::take(&mut st.listeners) {
            l.task.abort();
        }
        let peers = std::mem::take(&mut st.peers);
        info!(peers = peers.len(), message, "shutting down");
        for h in peers.values() {
            let _ = h
                .cmd
                // Not a Hard Reset: with the N bit, peers keep our routes while we
                // restart (RFC 8538).
                .send(PeerCmd::Stop {
                    notification: Notification::admin_shutdown(message),
                    hard_reset: false,
                })
                .await;
        }
        for (_, h) in peers {
            let abort = h.task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_WAIT, h.task).await.is_err() {
                abort.abort();
            }
        }
        if let Ok(mut idx) = self.inner.index.write() {
            idx.clear();
        }
        let rib = self.inner.rib_task.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = rib {
            t.abort();
        }
    }
}
