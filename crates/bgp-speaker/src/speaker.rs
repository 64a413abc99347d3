//! [`Speaker`]: the embedding API. It owns the listeners, one task per peer and the RIB
//! task, and applies configuration changes incrementally.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex as StdMutex, RwLock};
use std::time::{Duration, Instant};

use bgp_node::graceful::Farewell;
use bgp_node::{PeerId, PeerIds};
use bgp_proto::{notification_code as nc, Notification};
use bgp_rib::FibChange;
use bytes::Bytes;
use ipnet::IpNet;
use tokio::sync::{broadcast, mpsc, oneshot, watch, Mutex};
use tokio::task::AbortHandle;
use tracing::{info, warn};

use crate::config::{diff, Config, ConfigDiff, OnStop, Originate, PeerConfig};
use crate::net;
use crate::peer::{PeerCmd, PeerEnv, PeerHandle};
use crate::rib_input::RibInputs;
use crate::rib_task::{BestRoute, FibSink, Query, RibChannels, RibCtl, RibTask, RouteChange};
use crate::routes::{Route, RouteCursor, RouteQuery, MAX_PAGE};

mod bfd_peers;
mod feeds;
mod ownership;
mod peer_changes;
mod status;
mod tasks;
pub use ownership::Owner;
pub use status::{Peer, PeerCounters, PeerState, SelectionDeferral, Status};
use tasks::Tasks;

/// Subscribers that fall this far behind lose changes (and are told so by tokio).
const ROUTE_EVENTS: usize = 65536;
/// Kernel messages (batches of route or next-hop changes) queued for the RIB task.
const KERNEL_QUEUE: usize = 64;

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
    #[error("no answer within 2 s (busy)")]
    /// A report the speaker could not give in time (the RIB or the kernel FIB busy).
    Busy,
    /// An MRT file could not be written.
    #[error("MRT: {0}")]
    Mrt(String),
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
    task: AbortHandle,
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
    /// The ids of the peers, handed out and taken back.
    ids: PeerIds,
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
    /// Peers' output credit back to the RIB task.
    credits: mpsc::UnboundedSender<(PeerId, u64)>,
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
    /// The RIB task, the peer tasks and the listeners.
    tasks: Tasks,
    /// The kernel FIB component, when the configuration has a `[kernel]` section.
    kernel: StdMutex<Option<crate::fib::KernelHandle>>,
    /// Copies of the peers' session events for the monitoring feeds.
    tap: crate::monitor::tap::Tap,
    /// The peers' state changes, for [`Speaker::events`] (events.rs).
    transitions: crate::events::Transitions,
    /// The BMP stations and MRT files running.
    feeds: StdMutex<crate::monitor::Feeds>,
    /// The BFD task (crate::bfd).
    bfd: crate::bfd::BfdHandle,
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
        let (kernel_tx, kernel_rx) = mpsc::channel(KERNEL_QUEUE);
        let (credits, credits_rx) = mpsc::unbounded_channel();
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
                let fib_options = crate::fib::FibOptions {
                    health: health.clone(),
                };
                let (tx, h) = crate::fib::start(k, kernel_tx.clone(), fib_options).await?;
                (Some(FibSink::Kernel(tx)), Some(h))
            }
            (Some(_), Some(tx)) => {
                info!("[kernel] not started: the embedder receives the FIB changes (SpeakerOptions::fib)");
                (Some(FibSink::Embedder(tx.clone())), None)
            }
            (None, tx) => (tx.clone().map(FibSink::Embedder), None),
        };
        // Next hops resolve through the kernel when its component runs (crate::nexthop).
        let next_hops = match (&config.kernel, &kernel) {
            (Some(k), Some(_)) => {
                let feed = crate::nexthop::start(k.export.protocol, kernel_tx, health.clone())?;
                Some(feed)
            }
            _ => None,
        };
        let tasks = Tasks::default();
        let tap = crate::monitor::tap::Tap::default();
        let kernel_view = match next_hops {
            Some(feed) => {
                tasks.spawn(feed);
                true
            }
            None => false,
        };
        let rib = RibTask::new(
            &config,
            RibChannels {
                input: rib_in_rx,
                ctl: rib_ctl_rx,
                kernel: kernel_rx,
                credits: credits_rx,
                routes: routes.clone(),
                fib,
                tap: tap.clone(),
                cancel: tasks.cancel.child_token(),
            },
            kernel_view,
        );
        tasks.spawn(rib.run());
        let (bfd, bfd_task) = crate::bfd::BfdHandle::new(tasks.cancel.child_token());
        tasks.spawn(crate::bfd::run_isolated(bfd_task));
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
                ids: PeerIds::default(),
                listeners: BTreeMap::new(),
                loaded: Instant::now(),
                stopped: false,
            }),
            env: RwLock::new(env),
            applied,
            rib_ctl,
            rib_in,
            credits,
            routes,
            index: Arc::new(RwLock::new(HashMap::new())),
            started: Instant::now(),
            recovery_deadline,
            recovery_wait,
            health,
            last_answers: StdMutex::new(status::LastAnswers::default()),
            tasks,
            kernel: StdMutex::new(kernel),
            tap,
            transitions: Default::default(),
            feeds: Default::default(),
            bfd,
        });
        let speaker = Speaker { inner };
        {
            let mut st = speaker.inner.state.lock().await;
            // The feeds first: the update log sees the first sessions come up.
            speaker.apply_feeds(&config);
            for o in config.originate.values() {
                speaker.rib(RibCtl::Originate(o.clone())).await?;
            }
            // Peers before listeners, so an early connection finds its peer.
            for p in config.peers.values() {
                speaker.spawn_peer(&mut st, p.clone()).await?;
            }
            // With every configured peer known, the recovery can be judged. Without a
            // restart of ours it still ends the kernel FIB's adoption of routes a
            // previous run left (kept at most DEFAULT_RECOVERY_WAIT).
            let deadline = speaker
                .inner
                .recovery_deadline
                .unwrap_or_else(|| Instant::now() + crate::fib::DEFAULT_RECOVERY_WAIT);
            // A peer that does not come up within `absent_peer_wait` (a node gone while
            // still configured) is not waited for the whole restart time.
            let absent_wait = config.global.graceful_restart.absent_peer_wait;
            let absent_after = (speaker.inner.recovery_deadline.is_some() && absent_wait > 0)
                .then(|| Instant::now() + Duration::from_secs(u64::from(absent_wait)));
            speaker
                .rib(RibCtl::StartRecovery {
                    deadline,
                    defer_selection: speaker.inner.recovery_deadline.is_some(),
                    absent_after,
                })
                .await?;
            for addr in &config.global.listen {
                speaker.open_listener(&mut st, *addr)?;
            }
            speaker.sync_bfd(&st).await;
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
        self.sync_bfd(&st).await;
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
        self.stop_peers(&mut st, &[name.to_string()], deconfigured(), |_| {
            Farewell::HardReset
        })
        .await?;
        st.api.remove_peer(name);
        self.sync_bfd(&st).await;
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
        let applied = self.apply_peer_change(&mut st, old, cfg, &change).await;
        self.sync_bfd(&st).await;
        applied
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
            self.stop_peers(st, &[name], config_changed(), |_| Farewell::Notify)
                .await?;
            return self.spawn_peer(st, cfg).await;
        }
        let Some(h) = st.peers.get_mut(&cfg.name) else {
            return Err(SpeakerError::NoSuchPeer(cfg.name));
        };
        h.config = cfg.clone();
        let (id, cmd) = (h.id, h.cmd.clone());
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
            self.rib(RibCtl::UpdatePeer(id, Box::new(cfg))).await?;
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
        // Removed peers stop together: their sessions close at once, not one after
        // the other.
        self.stop_peers(&mut st, &d.peers_removed, deconfigured(), |_| {
            Farewell::HardReset
        })
        .await?;
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
        if d.monitoring_changed {
            self.apply_feeds(&new);
        }
        // Keep what could not be applied live as it was, so the next diff still sees it.
        let mut applied = new;
        applied.kernel = st.config.kernel.clone();
        applied.global.user = st.config.global.user.clone();
        applied.global.group = st.config.global.group.clone();
        st.config = applied;
        st.loaded = Instant::now();
        self.sync_bfd(&st).await;
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
            Self::check_peer(p, &new.policies)?;
        }
        Ok(())
    }

    /// One peer's own checks: its settings valid, every policy it names in `policies`.
    fn check_peer(
        p: &PeerConfig,
        policies: &BTreeMap<String, crate::config::PolicyDef>,
    ) -> Result<(), SpeakerError> {
        p.check().map_err(|reason| SpeakerError::InvalidPeer {
            name: p.name.clone(),
            reason,
        })?;
        match p
            .import
            .iter()
            .chain(&p.export)
            .find(|n| !policies.contains_key(*n))
        {
            Some(n) => Err(SpeakerError::UnknownPolicy(n.clone())),
            None => Ok(()),
        }
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
        self.stop_peers(st, &names, config_changed(), |_| Farewell::Notify)
            .await?;
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
    /// directory). Peers changed one by one ([`Speaker::add_peer`], ...,
    /// [`Speaker::apply_peer_changes`]) publish nothing here: [`Speaker::config`] has
    /// them.
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

    /// A stream of what happens, for operators (`bgpctl monitor`): peer state changes,
    /// the routes peers announce and withdraw, best-path changes, in order (events.rs).
    /// Bounded: a reader that falls behind is told how many events it lost.
    pub fn events(&self) -> crate::events::Events {
        crate::events::Events::new(
            &self.inner.transitions,
            self.inner.tap.subscribe(),
            self.inner.routes.subscribe(),
        )
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
    /// (RFC 8203 shutdown communication), as each peer's `graceful_restart.on_stop` says
    /// ([`OnStop`](crate::config::OnStop): a restart closes without a NOTIFICATION
    /// towards a peer that negotiated graceful restart without the N bit), stops the
    /// listeners and the RIB.
    pub async fn shutdown(&self, message: &str) {
        self.stop(message, false).await
    }

    /// Like [`Speaker::shutdown`], for a speaker leaving for good: every session ends with
    /// Cease / Hard Reset where the N bit was negotiated, and with the plain Cease
    /// elsewhere (RFC 8538 3), so every peer drops our routes at once instead of keeping
    /// them for a restart that will not come.
    pub async fn shutdown_for_good(&self, message: &str) {
        self.stop(message, true).await
    }

    async fn stop(&self, message: &str, for_good: bool) {
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
        info!(peers = st.peers.len(), message, for_good, "shutting down");
        let names: Vec<String> = st.peers.keys().cloned().collect();
        // Unless we leave for good, not a Hard Reset: with the N bit, peers keep our
        // routes while we restart (RFC 8538).
        let n = Notification::admin_shutdown(message);
        let farewell = |p: &PeerConfig| match (for_good, p.graceful_restart.on_stop) {
            (true, _) => Farewell::HardReset,
            (false, OnStop::Notify) => Farewell::Notify,
            (false, OnStop::Restart) => Farewell::Restart,
        };
        let _ = self.stop_peers(&mut st, &names, n, farewell).await;
        if let Ok(mut idx) = self.inner.index.write() {
            idx.clear();
        }
        self.inner.tasks.shutdown().await;
    }
}

/// Cease / Peer De-configured (RFC 4486), for a peer removed.
fn deconfigured() -> Notification {
    Notification {
        code: nc::CEASE,
        subcode: nc::CEASE_PEER_DECONFIGURED,
        data: Bytes::new(),
    }
}

/// Cease / Other Configuration Change (RFC 4486), for a session restarted with new
/// parameters.
fn config_changed() -> Notification {
    Notification {
        code: nc::CEASE,
        subcode: nc::CEASE_OTHER_CONFIG_CHANGE,
        data: Bytes::new(),
    }
}
