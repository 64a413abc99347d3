//! The kernel FIB component: what makes the speaker a router on a Calico node.
//!
//! Started by the speaker when the configuration has a `[kernel]` section (and the embedder
//! did not take the FIB channel itself through [`crate::SpeakerOptions::fib`]). Two tasks:
//!
//! - **import** (kernel → RIB): the [`KernelWatcher`]'s selected routes become local routes
//!   of the RIB with [`RouteSource::Kernel`], carrying interface name, metric and protocol,
//!   so export policy can implement Calico's rules (announce blocks, suppress /32s inside
//!   own blocks unless their metric is elevated, never announce `cali*`). Several kernel
//!   routes for one prefix (different metrics, e.g. a pod route at 1024 and its elevated copy
//!   at 512 during live migration) are folded into the preferred one (lowest metric). Link
//!   and address events, and removals of our own routes, go to the export task: they are
//!   the installer's device, connected-subnet (cross-subnet decision) and self-healing
//!   knowledge. Events are batched: one RIB command per burst.
//! - **export** (RIB → kernel): best-path batches ([`FibChange`]) from the RIB task are
//!   merged per prefix (latest wins) and applied with the [`KernelInstaller`]; the FIB
//!   channel keeps being drained while a long kernel write runs, so the RIB never finds it
//!   full. Each route's form comes from the FIB policy (`[kernel.export] policy`, see
//!   [`fib_op`]). Refused routes are retried when the installer says they are due.
//!
//! Beside them, a second watcher feeds next-hop resolution (all main-table routes, not only
//! the imported ones; see [`crate::nexthop`]).
//!
//! # Start-up reconciliation and graceful restart
//! The installer adopts the routes of our protocol left by a previous run as *stale*; they
//! keep forwarding. Routes the RIB learns again replace them in place (no write when
//! identical). The restarting speaker's recovery (RFC 4724 section 4.1; BIRD's "graceful
//! restart recovery") ends when every enabled peer has sent End-of-RIB for every family of
//! its session (peers that do not advertise graceful restart, or are restarting themselves,
//! are not waited for), or when [`DEFAULT_RECOVERY_WAIT`] has passed; then the routes still
//! stale are deleted (RFC 4724 section 4.2 applied to our own FIB). On exit the routes persist or
//! are flushed per `[kernel.export] on_exit`; the speaker stops this component before it
//! closes sessions, so routes are not withdrawn from the kernel by the shutdown itself.
//!
//! # Seams
//! The kernel is reached through two traits, [`KernelFib`] (installer side) and
//! [`KernelEvents`] (watcher side), implemented by the `bgp-kernel` types and, in tests, by
//! in-memory fakes.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bgp_kernel::{
    ApplyReport, FibAction, FibNextHop, FibOp, KernelError, KernelEvent, KernelInstaller,
    KernelRoute, KernelWatcher, NextHopMode,
};
use bgp_proto::{Family, GracefulRestart};
use bgp_rib::policy::{CompiledPolicy, InstallMode, KernelInfo, RouteSource};
use bgp_rib::{FibChange, LocalRoute, Rib};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::config::{Config, KernelSection};
use crate::rib_task::{chain_policy, Query, RibCtl};

/// How long a restarting speaker keeps its adopted kernel routes at most while waiting for
/// End-of-RIB from every peer (BIRD's `graceful restart wait`, what Calico nodes run with).
pub const DEFAULT_RECOVERY_WAIT: Duration = Duration::from_secs(240);
/// Batches of best-path changes queued from the RIB task (drained continuously).
const FIB_QUEUE: usize = 256;
/// Kernel events folded into one RIB command.
const IMPORT_BATCH: usize = 1024;
/// Changes handed to the installer at a time: bounds the installer's per-call working set
/// (its operation list and the set of touched prefixes) whatever the size of a burst.
const FLUSH_SLICE: usize = 32_768;
/// How often the recovery state is asked of the RIB while routes are stale.
const RECOVERY_POLL: Duration = Duration::from_millis(500);
/// How long stopping waits for the installer's `on_exit` work.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// The installer side of the kernel: what the export task needs. Implemented by
/// [`KernelInstaller`]; tests and embedders may supply their own.
pub trait KernelFib: Send + 'static {
    /// Apply a batch (see [`KernelInstaller::apply`]); an error means the channel to the
    /// kernel failed, refused routes are retried internally.
    fn apply(
        &mut self,
        ops: Vec<FibOp>,
    ) -> impl Future<Output = Result<ApplyReport, KernelError>> + Send;
    /// Learn links, addresses and removals of our routes from the watcher.
    fn observe(&mut self, event: &KernelEvent);
    /// When the earliest retry is due.
    fn next_retry_at(&self) -> Option<Instant>;
    /// Retry what is due.
    fn retry_due(&mut self) -> impl Future<Output = Result<ApplyReport, KernelError>> + Send;
    /// Routes adopted at start-up and not refreshed since.
    fn stale_count(&self) -> usize;
    /// Delete the routes still stale.
    fn sweep_stale(&mut self) -> impl Future<Output = Result<ApplyReport, KernelError>> + Send;
    /// Stop: persist or flush our routes.
    fn shutdown(self) -> impl Future<Output = Result<ApplyReport, KernelError>> + Send
    where
        Self: Sized;
}

impl KernelFib for KernelInstaller {
    fn apply(
        &mut self,
        ops: Vec<FibOp>,
    ) -> impl Future<Output = Result<ApplyReport, KernelError>> + Send {
        KernelInstaller::apply(self, ops)
    }
    fn observe(&mut self, event: &KernelEvent) {
        KernelInstaller::observe(self, event)
    }
    fn next_retry_at(&self) -> Option<Instant> {
        KernelInstaller::next_retry_at(self)
    }
    fn retry_due(&mut self) -> impl Future<Output = Result<ApplyReport, KernelError>> + Send {
        KernelInstaller::retry_due(self)
    }
    fn stale_count(&self) -> usize {
        KernelInstaller::stale_count(self)
    }
    fn sweep_stale(&mut self) -> impl Future<Output = Result<ApplyReport, KernelError>> + Send {
        KernelInstaller::sweep_stale(self)
    }
    fn shutdown(self) -> impl Future<Output = Result<ApplyReport, KernelError>> + Send {
        KernelInstaller::shutdown(self)
    }
}

/// The watcher side of the kernel. `next` must be cancel-safe (it is raced and dropped).
pub trait KernelEvents: Send + 'static {
    /// The next event; `None` when the source stopped.
    fn next(&mut self) -> impl Future<Output = Option<KernelEvent>> + Send;
}

impl KernelEvents for KernelWatcher {
    fn next(&mut self) -> impl Future<Output = Option<KernelEvent>> + Send {
        KernelWatcher::next(self)
    }
}

impl KernelEvents for mpsc::Receiver<KernelEvent> {
    fn next(&mut self) -> impl Future<Output = Option<KernelEvent>> + Send {
        self.recv()
    }
}

/// Settings of the component that are not in the `[kernel]` section.
#[derive(Clone, Debug)]
pub(crate) struct FibOptions {
    /// Upper bound of the graceful-restart recovery (see the module docs).
    pub recovery_wait: Duration,
}

impl Default for FibOptions {
    fn default() -> Self {
        FibOptions {
            recovery_wait: DEFAULT_RECOVERY_WAIT,
        }
    }
}

/// The FIB policy named by `[kernel.export] policy` (accept everything, forms chosen by
/// defaults, when unset or without a `[kernel]` section). Configuration validation makes
/// sure the name exists.
pub(crate) fn fib_policy(config: &Config) -> Arc<CompiledPolicy> {
    match config
        .kernel
        .as_ref()
        .and_then(|k| k.export.policy.as_ref())
    {
        Some(name) => chain_policy(std::slice::from_ref(name), &config.policies, false),
        None => Arc::new(CompiledPolicy::accept_all()),
    }
}

/// The kernel operation for one RIB best-path change.
///
/// - Advertise-only routes (`no_install`: originated with `no_install = true`, learned from
///   the kernel itself, or FIB policy `install = "no_install"`) are withdrawn, never
///   installed (withdrawing a prefix we do not hold is a no-op).
/// - FIB policy `install = "blackhole"`, or a route without next hops (an originated block),
///   is a blackhole.
/// - Otherwise every next hop of the multipath set (ECMP when more than one) gets the form
///   chosen by policy: `onlink` → `via NH dev <tunnel_device> onlink` (IPIP always),
///   `cross_subnet` → direct inside a connected subnet, tunnel outside (IPIP CrossSubnet),
///   `normal` → `via NH` (no encapsulation). Without `install`, a `tunnel_device` hint means
///   tunnel, and nothing means direct.
/// - The metric comes from LOCAL_PREF through `[kernel.export] metric` (the RIB's value: 100
///   for a path without the attribute, e.g. eBGP-learned); local routes (originated blocks)
///   have no LOCAL_PREF of their own and get `default_metric`. A FIB policy's `metric` action
///   is not used: the installer derives every metric from its mapping.
pub fn fib_op(r: &bgp_rib::FibRoute) -> FibOp {
    if r.no_install || r.install == Some(InstallMode::NoInstall) {
        return FibOp::Withdraw(r.prefix);
    }
    let action = if r.install == Some(InstallMode::Blackhole) || r.next_hops.is_empty() {
        FibAction::Blackhole
    } else {
        let mode = match r.install {
            Some(InstallMode::Onlink) => NextHopMode::Tunnel,
            Some(InstallMode::CrossSubnet) => NextHopMode::CrossSubnet,
            Some(InstallMode::Normal) => NextHopMode::Direct,
            Some(InstallMode::Blackhole) | Some(InstallMode::NoInstall) | None => {
                if r.tunnel_device.is_some() {
                    NextHopMode::Tunnel
                } else {
                    NextHopMode::Direct
                }
            }
        };
        FibAction::Forward(
            r.next_hops
                .iter()
                .map(|&gateway| FibNextHop {
                    gateway,
                    mode,
                    device: None,
                })
                .collect(),
        )
    };
    FibOp::Install(bgp_kernel::FibRoute {
        prefix: r.prefix,
        action,
        local_pref: (r.source == RouteSource::Bgp).then_some(r.local_pref),
    })
}

#[cfg(test)]
fn op_prefix(op: &FibOp) -> IpNet {
    match op {
        FibOp::Install(r) => r.prefix.trunc(),
        FibOp::Withdraw(p) => p.trunc(),
    }
}

/// A change of the RIB's kernel-learned local routes.
#[derive(Clone, Debug)]
pub(crate) enum LocalChange {
    /// Originate or replace the kernel route for its prefix.
    Originate(Box<LocalRoute>),
    /// No selected kernel route for the prefix any more.
    Withdraw(IpNet),
}

/// Applies kernel-learned route changes to the RIB (called by the RIB task).
pub(crate) fn apply_local(rib: &mut Rib, changes: Vec<LocalChange>) {
    for c in changes {
        match c {
            LocalChange::Originate(r) => {
                let prefix = r.prefix;
                if let Err(e) = rib.originate(*r) {
                    warn!(%prefix, error = %e, "cannot originate kernel route");
                }
            }
            LocalChange::Withdraw(p) => rib.withdraw_local(p, RouteSource::Kernel),
        }
    }
}

/// What the RIB's local route takes from a selected kernel route besides its prefix and
/// metric. Shared between the routes that have the same (a node has few distinct
/// interfaces and gateways and many routes).
#[derive(Debug, PartialEq, Eq, Hash)]
struct KernelAttrs {
    protocol: u8,
    gateway: Option<IpAddr>,
    ifname: Option<String>,
}

/// One selected kernel route as the import side keeps it: 16 bytes instead of a whole
/// [`KernelRoute`] (which owns its interface name and next-hop list).
#[derive(Clone, Debug, PartialEq, Eq)]
struct KernelSlot {
    metric: u32,
    attrs: Arc<KernelAttrs>,
}

/// The RIB's local route for a selected kernel route.
fn local_route(prefix: IpNet, r: &KernelSlot) -> LocalRoute {
    let mut l = LocalRoute::new(prefix, RouteSource::Kernel);
    l.next_hop = r.attrs.gateway;
    l.kernel = KernelInfo {
        ifname: r.attrs.ifname.clone(),
        metric: Some(r.metric),
        protocol: Some(r.attrs.protocol),
    };
    // Already in the kernel: never installed again by us.
    l.no_install = true;
    l
}

/// Selected kernel routes per prefix and metric; the RIB holds the preferred one of each
/// prefix (lowest metric, as the kernel itself prefers).
///
/// Kept compact because a node may import a million routes: the preferred route of each
/// prefix in one map of small slots, the others (several metrics for one prefix, e.g. a
/// live migration) in a second map that is normally empty, and the attributes interned.
#[derive(Debug, Default)]
struct KernelRoutes {
    /// The preferred (lowest-metric) route of each prefix.
    best: HashMap<IpNet, KernelSlot>,
    /// The other routes of prefixes that have several, sorted by metric.
    others: HashMap<IpNet, Vec<KernelSlot>>,
    /// Interned attributes; those no route uses any more are dropped when the set doubled.
    attrs: HashSet<Arc<KernelAttrs>>,
    /// Size of `attrs` after its last clean-up.
    attrs_kept: usize,
}

impl KernelRoutes {
    fn slot(&mut self, r: KernelRoute) -> KernelSlot {
        let a = KernelAttrs {
            protocol: r.protocol,
            gateway: r.gateway,
            ifname: r.ifname,
        };
        let attrs = match self.attrs.get(&a) {
            Some(a) => a.clone(),
            None => {
                if self.attrs.len() >= 2 * self.attrs_kept.max(64) {
                    self.attrs.retain(|a| Arc::strong_count(a) > 1);
                    self.attrs_kept = self.attrs.len();
                }
                let a = Arc::new(a);
                self.attrs.insert(a.clone());
                a
            }
        };
        KernelSlot {
            metric: r.metric,
            attrs,
        }
    }

    fn added(&mut self, r: KernelRoute) -> Option<LocalChange> {
        let prefix = r.prefix.trunc();
        let new = self.slot(r);
        let Some(best) = self.best.get_mut(&prefix) else {
            let change = LocalChange::Originate(Box::new(local_route(prefix, &new)));
            self.best.insert(prefix, new);
            return Some(change);
        };
        if new.metric == best.metric {
            if *best == new {
                return None;
            }
            *best = new;
            return Some(LocalChange::Originate(Box::new(local_route(prefix, best))));
        }
        let change = (new.metric < best.metric)
            .then(|| LocalChange::Originate(Box::new(local_route(prefix, &new))));
        let other = if change.is_some() {
            std::mem::replace(best, new)
        } else {
            new
        };
        let others = self.others.entry(prefix).or_default();
        match others.binary_search_by_key(&other.metric, |o| o.metric) {
            Ok(i) => others[i] = other,
            Err(i) => others.insert(i, other),
        }
        change
    }

    fn removed(&mut self, r: &KernelRoute) -> Option<LocalChange> {
        let prefix = r.prefix.trunc();
        let best = self.best.get_mut(&prefix)?;
        if best.metric != r.metric {
            let others = self.others.get_mut(&prefix)?;
            let i = others.binary_search_by_key(&r.metric, |o| o.metric).ok()?;
            others.remove(i);
            if others.is_empty() {
                self.others.remove(&prefix);
            }
            return None;
        }
        let next = match self.others.get_mut(&prefix) {
            Some(o) if !o.is_empty() => Some(o.remove(0)),
            _ => None,
        };
        if self.others.get(&prefix).is_some_and(Vec::is_empty) {
            self.others.remove(&prefix);
        }
        match next {
            Some(next) => {
                *best = next;
                Some(LocalChange::Originate(Box::new(local_route(prefix, best))))
            }
            None => {
                self.best.remove(&prefix);
                Some(LocalChange::Withdraw(prefix))
            }
        }
    }

    fn len(&self) -> usize {
        self.best.len()
    }
}

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

/// Polls a future once: its value if ready now.
pub(crate) async fn now_or_never<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    std::future::poll_fn(|cx| {
        Poll::Ready(match f.as_mut().poll(cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        })
    })
    .await
}

/// Kernel → RIB.
async fn import_task<E: KernelEvents>(
    mut events: E,
    rib: mpsc::Sender<RibCtl>,
    observe: mpsc::UnboundedSender<KernelEvent>,
) {
    let mut routes = KernelRoutes::default();
    let mut synced = false;
    while let Some(first) = events.next().await {
        let mut batch = Vec::new();
        let mut next = Some(first);
        let mut n = 0;
        while let Some(ev) = next.take() {
            match ev {
                KernelEvent::RouteAdded(r) => batch.extend(routes.added(r)),
                KernelEvent::RouteRemoved(r) => batch.extend(routes.removed(&r)),
                KernelEvent::Synced => {
                    if !synced {
                        info!(
                            prefixes = routes.len(),
                            "kernel routes imported (initial dump complete)"
                        );
                    }
                    synced = true;
                }
                other => {
                    // Links, addresses, our own routes removed: the installer's business.
                    let _ = observe.send(other);
                }
            }
            n += 1;
            if n < IMPORT_BATCH {
                next = now_or_never(events.next()).await.flatten();
            }
        }
        if !batch.is_empty() {
            debug!(changes = batch.len(), "kernel routes to the RIB");
            if rib.send(RibCtl::Local(batch)).await.is_err() {
                debug!("kernel import ended: the RIB has stopped");
                return;
            }
        }
    }
    // The watcher failed (its error is logged by bgp-kernel): what the RIB holds from the
    // kernel is no longer followed. Say so loudly; the installer keeps working.
    error!("kernel watcher stopped: kernel route changes no longer reach the RIB");
}

/// A route to install as the pending map keeps it (the prefix is the key); shared between
/// the prefixes that have the same (most routes of a table share a few next-hop sets).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Install {
    action: FibAction,
    local_pref: Option<u32>,
}

/// Best-path changes not yet applied, latest per prefix.
///
/// This is where changes wait while the kernel is slower than the RIB (a whole table
/// arriving at once): bounded by the number of prefixes, and kept small per prefix (an
/// interned [`Install`], `None` for a withdrawal; no allocation per prefix). The maps'
/// memory is given back once they have been applied.
///
/// One map per address family: an [`Ipv4Net`] key takes 5 bytes where an [`IpNet`] takes
/// 18, so an IPv4 entry fits a 16-byte slot instead of 32 (1M pending /32s: ~34 MiB
/// instead of ~69 MiB).
#[derive(Debug, Default)]
struct Pending {
    v4: HashMap<Ipv4Net, Option<Arc<Install>>>,
    v6: HashMap<Ipv6Net, Option<Arc<Install>>>,
    /// Interned install forms; those no pending change uses are dropped when the set
    /// doubled, and all when nothing is pending.
    forms: HashSet<Arc<Install>>,
    /// Size of `forms` after its last clean-up.
    forms_kept: usize,
}

/// Pending maps with more room than this are freed once empty rather than kept for reuse.
const PENDING_KEEP: usize = 4096;

impl Pending {
    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    fn merge(&mut self, batch: Vec<FibChange>) {
        for c in batch {
            let (prefix, op) = match c {
                FibChange::Upsert(r) => match fib_op(&r) {
                    FibOp::Install(r) => (
                        r.prefix.trunc(),
                        Some(self.intern(Install {
                            action: r.action,
                            local_pref: r.local_pref,
                        })),
                    ),
                    FibOp::Withdraw(p) => (p.trunc(), None),
                },
                FibChange::Remove(p) => (p.trunc(), None),
            };
            match prefix {
                IpNet::V4(p) => self.v4.insert(p, op),
                IpNet::V6(p) => self.v6.insert(p, op),
            };
        }
    }

    fn intern(&mut self, i: Install) -> Arc<Install> {
        if let Some(a) = self.forms.get(&i) {
            return a.clone();
        }
        if self.forms.len() >= 2 * self.forms_kept.max(64) {
            self.forms.retain(|a| Arc::strong_count(a) > 1);
            self.forms_kept = self.forms.len();
        }
        let a = Arc::new(i);
        self.forms.insert(a.clone());
        a
    }

    /// Takes up to `max` changes as installer operations (IPv4 first).
    fn take(&mut self, max: usize) -> Vec<FibOp> {
        let mut ops = Vec::new();
        take_from(&mut self.v4, max, &mut ops);
        take_from(&mut self.v6, max, &mut ops);
        if self.is_empty() {
            self.forms.clear();
            self.forms_kept = 0;
        }
        ops
    }
}

/// Moves up to `max - ops.len()` changes from `map` into `ops`; frees the map once it is
/// empty if it had more room than [`PENDING_KEEP`].
fn take_from<K>(map: &mut HashMap<K, Option<Arc<Install>>>, max: usize, ops: &mut Vec<FibOp>)
where
    K: Copy + Eq + std::hash::Hash + Into<IpNet>,
{
    let room = max.saturating_sub(ops.len());
    // (`HashMap::extract_if` would do this in one pass, but needs Rust 1.88.)
    let keys: Vec<K> = map.keys().take(room).copied().collect();
    ops.extend(
        keys.into_iter()
            .filter_map(|k| map.remove(&k).map(|op| (k.into(), op)))
            .map(|(prefix, op)| match op {
                Some(i) => FibOp::Install(bgp_kernel::FibRoute {
                    prefix,
                    action: i.action.clone(),
                    local_pref: i.local_pref,
                }),
                None => FibOp::Withdraw(prefix),
            }),
    );
    if map.is_empty() && map.capacity() > PENDING_KEEP {
        *map = HashMap::new();
    }
}

/// Runs `fut` (a kernel operation) while still taking the RIB's batches off the channel, so
/// the RIB task never finds it full however long the kernel takes.
async fn drive<T>(
    fut: impl Future<Output = T>,
    changes: &mut mpsc::Receiver<Vec<FibChange>>,
    open: &mut bool,
    pending: &mut Pending,
) -> T {
    let mut fut = pin!(fut);
    loop {
        tokio::select! {
            biased;
            v = &mut fut => return v,
            b = changes.recv(), if *open => match b {
                Some(b) => pending.merge(b),
                None => *open = false,
            },
        }
    }
}

struct ExportTask<K> {
    fib: K,
    changes: mpsc::Receiver<Vec<FibChange>>,
    changes_open: bool,
    observe: mpsc::UnboundedReceiver<KernelEvent>,
    rib: mpsc::Sender<RibCtl>,
    pending: Pending,
    /// Deadline of the graceful-restart recovery while adopted routes are stale (tokio's
    /// clock, so tests can run it in virtual time).
    recovery: Option<tokio::time::Instant>,
    /// The recovery state last logged.
    last_waiting: Vec<String>,
}

fn log_report(what: &str, r: Result<ApplyReport, KernelError>) {
    match r {
        Ok(r) if r.failed > 0 => debug!(
            what,
            added = r.added,
            replaced = r.replaced,
            deleted = r.deleted,
            failed = r.failed,
            "kernel FIB (refused routes are retried)"
        ),
        Ok(r) => debug!(
            what,
            added = r.added,
            replaced = r.replaced,
            deleted = r.deleted,
            unchanged = r.unchanged,
            "kernel FIB"
        ),
        Err(e) => error!(what, error = %e, "kernel FIB write failed"),
    }
}

impl<K: KernelFib> ExportTask<K> {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let stale = self.fib.stale_count();
        if stale > 0 {
            info!(
                stale,
                "kernel routes of a previous run adopted; kept until every peer sent End-of-RIB"
            );
        }
        loop {
            if !self.pending.is_empty() {
                self.flush().await;
                continue;
            }
            let retry_at = self.fib.next_retry_at();
            let recovering = self.recovery.is_some();
            tokio::select! {
                biased;
                _ = &mut stop => break,
                b = self.changes.recv(), if self.changes_open => match b {
                    Some(b) => self.pending.merge(b),
                    None => self.changes_open = false,
                },
                Some(ev) = self.observe.recv() => self.fib.observe(&ev),
                _ = async {
                    match retry_at {
                        Some(t) => tokio::time::sleep_until(t.into()).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let r = drive(
                        self.fib.retry_due(),
                        &mut self.changes,
                        &mut self.changes_open,
                        &mut self.pending,
                    )
                    .await;
                    log_report("retry", r);
                }
                _ = tokio::time::sleep(RECOVERY_POLL), if recovering => self.check_recovery().await,
            }
        }
        match self.fib.shutdown().await {
            Ok(r) => info!(deleted = r.deleted, "kernel FIB stopped"),
            Err(e) => error!(error = %e, "kernel FIB shutdown"),
        }
    }

    /// Applies what is pending, at most [`FLUSH_SLICE`] changes, the observations that
    /// arrived first. The rest (and what arrives meanwhile) waits for the next call.
    async fn flush(&mut self) {
        while let Ok(ev) = self.observe.try_recv() {
            self.fib.observe(&ev);
        }
        let ops = self.pending.take(FLUSH_SLICE);
        let n = ops.len();
        for op in &ops {
            tracing::trace!(?op, "kernel FIB op");
        }
        let r = drive(
            self.fib.apply(ops),
            &mut self.changes,
            &mut self.changes_open,
            &mut self.pending,
        )
        .await;
        debug!(ops = n, "kernel FIB batch");
        log_report("apply", r);
    }

    /// Ends the graceful-restart recovery when every peer sent End-of-RIB or the time is up.
    async fn check_recovery(&mut self) {
        let Some(deadline) = self.recovery else {
            return;
        };
        let finished = if tokio::time::Instant::now() >= deadline {
            warn!(
                waiting = ?self.last_waiting,
                "graceful restart recovery time over before every peer sent End-of-RIB"
            );
            true
        } else {
            let (tx, rx) = oneshot::channel();
            if self
                .rib
                .send(RibCtl::Query(Query::Recovery(tx)))
                .await
                .is_err()
            {
                return;
            }
            let Ok(status) = drive(
                rx,
                &mut self.changes,
                &mut self.changes_open,
                &mut self.pending,
            )
            .await
            else {
                return;
            };
            if status.waiting != self.last_waiting {
                debug!(complete = status.complete, waiting = ?status.waiting, "graceful restart recovery");
                self.last_waiting = status.waiting.clone();
            }
            status.waiting.is_empty()
        };
        if !finished {
            return;
        }
        // The RIB published everything it learned before it answered: take it, install it,
        // then remove what nobody announced again.
        while let Ok(b) = self.changes.try_recv() {
            self.pending.merge(b);
        }
        while !self.pending.is_empty() {
            self.flush().await;
        }
        let r = drive(
            self.fib.sweep_stale(),
            &mut self.changes,
            &mut self.changes_open,
            &mut self.pending,
        )
        .await;
        match &r {
            Ok(r) => info!(
                deleted = r.deleted,
                "graceful restart recovery finished: stale kernel routes removed"
            ),
            Err(e) => error!(error = %e, "removing stale kernel routes"),
        }
        self.recovery = None;
    }
}

/// The running component; [`KernelHandle::stop`] ends it.
#[derive(Debug)]
pub(crate) struct KernelHandle {
    stop: oneshot::Sender<()>,
    export: JoinHandle<()>,
    import: JoinHandle<()>,
    /// The watcher feeding next-hop resolution ([`crate::nexthop`]), when started.
    next_hops: Option<JoinHandle<()>>,
}

impl KernelHandle {
    /// Stops importing, then stops the installer (persist or flush, per `on_exit`).
    pub(crate) async fn stop(self) {
        self.import.abort();
        if let Some(h) = &self.next_hops {
            h.abort();
        }
        let _ = self.stop.send(());
        let abort = self.export.abort_handle();
        if tokio::time::timeout(STOP_WAIT, self.export).await.is_err() {
            warn!("kernel FIB did not stop in time");
            abort.abort();
        }
    }
}

/// Opens the kernel (installer first, so our old routes are adopted before anything else
/// happens; then the watcher) and starts the component. Returns the sender the RIB task
/// publishes best-path changes on.
pub(crate) async fn start(
    kernel: &KernelSection,
    rib: mpsc::Sender<RibCtl>,
    options: FibOptions,
) -> Result<(mpsc::Sender<Vec<FibChange>>, KernelHandle), KernelError> {
    let installer = KernelInstaller::open(kernel.export.clone()).await?;
    let watcher = KernelWatcher::spawn(kernel.import_config())?;
    let next_hops = crate::nexthop::start(kernel.export.protocol, rib.clone())?;
    info!(
        protocol = kernel.export.protocol,
        table = kernel.export.table,
        "kernel FIB started"
    );
    let (tx, mut handle) = spawn(installer, watcher, rib, options);
    handle.next_hops = Some(next_hops);
    Ok((tx, handle))
}

/// Starts the component over any kernel implementation.
pub(crate) fn spawn<K: KernelFib, E: KernelEvents>(
    fib: K,
    events: E,
    rib: mpsc::Sender<RibCtl>,
    options: FibOptions,
) -> (mpsc::Sender<Vec<FibChange>>, KernelHandle) {
    let (tx, rx) = mpsc::channel(FIB_QUEUE);
    let (obs_tx, obs_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let recovery =
        (fib.stale_count() > 0).then(|| tokio::time::Instant::now() + options.recovery_wait);
    let task = ExportTask {
        fib,
        changes: rx,
        changes_open: true,
        observe: obs_rx,
        rib: rib.clone(),
        pending: Pending::default(),
        recovery,
        last_waiting: Vec::new(),
    };
    let export = tokio::spawn(task.run(stop_rx));
    let import = tokio::spawn(import_task(events, rib, obs_tx));
    (
        tx,
        KernelHandle {
            stop: stop_tx,
            export,
            import,
            next_hops: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use std::sync::Mutex;

    use bgp_kernel::{KernelNextHop, RouteKind, RT_TABLE_MAIN};

    fn hops(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn rib_route(prefix: &str, nh: &[&str]) -> bgp_rib::FibRoute {
        bgp_rib::FibRoute {
            prefix: net(prefix),
            next_hops: hops(nh).into_iter().collect(),
            local_pref: 100,
            source: RouteSource::Bgp,
            no_install: false,
            metric: None,
            tunnel_device: None,
            install: None,
            ifname: None,
        }
    }

    #[test]
    fn pending_keeps_latest_per_prefix_shares_forms_and_gives_memory_back() {
        let n = PENDING_KEEP as u32 * 2;
        let prefix = |i: u32| IpNet::new(std::net::Ipv4Addr::from(0x0a80_0000 + i).into(), 32);
        let mut p = Pending::default();
        let batch = (0..n)
            .map(|i| {
                let mut r = rib_route(
                    "10.0.0.0/32",
                    &[if i % 2 == 0 { "192.0.2.1" } else { "192.0.2.9" }],
                );
                r.prefix = prefix(i).unwrap();
                FibChange::Upsert(r)
            })
            .collect();
        p.merge(batch);
        // Two next-hop sets: two shared forms for all the prefixes.
        assert_eq!(p.forms.len(), 2);
        // The latest change of a prefix wins.
        // An IPv6 change goes to the other family's map and comes out of the same slices.
        p.merge(vec![
            FibChange::Remove(prefix(0).unwrap()),
            FibChange::Remove("2001:db8::/48".parse().unwrap()),
        ]);
        let n = n + 1;
        assert_eq!(p.len(), n as usize);
        let mut seen = HashSet::new();
        let mut withdrawn = 0;
        let mut slices = 0;
        while !p.is_empty() {
            let ops = p.take(1000);
            assert!(!ops.is_empty() && ops.len() <= 1000);
            slices += 1;
            for op in ops {
                if let FibOp::Withdraw(_) = op {
                    withdrawn += 1;
                } else {
                    assert_eq!(forward(&op).len(), 1);
                }
                assert!(seen.insert(op_prefix(&op)));
            }
        }
        assert_eq!(seen.len(), n as usize);
        assert_eq!(withdrawn, 2);
        assert!(seen.contains(&"2001:db8::/48".parse::<IpNet>().unwrap()));
        assert_eq!(slices, (n as usize).div_ceil(1000));
        // Applied: the maps and the forms are released.
        assert_eq!(p.v4.capacity(), 0);
        assert!(p.forms.is_empty());
    }

    fn forward(op: &FibOp) -> Vec<(IpAddr, NextHopMode)> {
        match op {
            FibOp::Install(bgp_kernel::FibRoute {
                action: FibAction::Forward(h),
                ..
            }) => h.iter().map(|h| (h.gateway, h.mode)).collect(),
            other => panic!("not a forward install: {other:?}"),
        }
    }

    #[test]
    fn modes_from_policy() {
        let gw: IpAddr = "192.0.2.1".parse().unwrap();
        let mut r = rib_route("10.65.2.0/26", &["192.0.2.1"]);
        assert_eq!(forward(&fib_op(&r)), vec![(gw, NextHopMode::Direct)]);
        r.tunnel_device = Some("tunl0".into());
        assert_eq!(forward(&fib_op(&r)), vec![(gw, NextHopMode::Tunnel)]);
        r.install = Some(InstallMode::Onlink);
        assert_eq!(forward(&fib_op(&r)), vec![(gw, NextHopMode::Tunnel)]);
        r.install = Some(InstallMode::CrossSubnet);
        assert_eq!(forward(&fib_op(&r)), vec![(gw, NextHopMode::CrossSubnet)]);
        r.install = Some(InstallMode::Normal);
        assert_eq!(forward(&fib_op(&r)), vec![(gw, NextHopMode::Direct)]);
        match fib_op(&r) {
            FibOp::Install(k) => assert_eq!(k.local_pref, Some(100)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ecmp_set_is_one_multipath_install() {
        let r = rib_route("10.65.3.0/26", &["192.0.2.1", "192.0.2.3"]);
        let hops = forward(&fib_op(&r));
        assert_eq!(hops.len(), 2);
        assert!(hops.iter().all(|(_, m)| *m == NextHopMode::Direct));
    }

    #[test]
    fn blackholes_and_advertise_only() {
        let mut block = rib_route("10.65.1.0/26", &[]);
        block.source = RouteSource::Static;
        assert!(matches!(
            fib_op(&block),
            FibOp::Install(bgp_kernel::FibRoute {
                action: FibAction::Blackhole,
                local_pref: None,
                ..
            })
        ));
        let mut bh = rib_route("10.65.9.0/26", &["192.0.2.1"]);
        bh.install = Some(InstallMode::Blackhole);
        assert!(matches!(
            fib_op(&bh),
            FibOp::Install(bgp_kernel::FibRoute {
                action: FibAction::Blackhole,
                ..
            })
        ));
        let mut svc = rib_route("10.96.0.0/12", &[]);
        svc.no_install = true;
        assert_eq!(fib_op(&svc), FibOp::Withdraw(net("10.96.0.0/12")));
        let mut pol = rib_route("10.65.4.0/26", &["192.0.2.1"]);
        pol.install = Some(InstallMode::NoInstall);
        assert_eq!(fib_op(&pol), FibOp::Withdraw(net("10.65.4.0/26")));
    }

    fn kroute(prefix: &str, proto: u8, metric: u32, dev: Option<&str>) -> KernelRoute {
        KernelRoute {
            prefix: net(prefix),
            kind: if dev.is_some() {
                RouteKind::Unicast
            } else {
                RouteKind::Blackhole
            },
            protocol: proto,
            metric,
            table: RT_TABLE_MAIN,
            ifname: dev.map(str::to_string),
            gateway: None,
            nexthops: dev
                .map(|d| KernelNextHop {
                    gateway: None,
                    ifindex: 5,
                    ifname: Some(d.to_string()),
                    onlink: false,
                    weight: 1,
                })
                .into_iter()
                .collect(),
        }
    }

    fn originated(c: Option<LocalChange>) -> LocalRoute {
        match c {
            Some(LocalChange::Originate(r)) => *r,
            other => panic!("expected an originate, got {other:?}"),
        }
    }

    #[test]
    fn kernel_routes_fold_to_lowest_metric() {
        let mut k = KernelRoutes::default();
        let normal = kroute("10.65.1.5/32", 3, 1024, Some("cali1"));
        let l = originated(k.added(normal.clone()));
        assert_eq!(l.source, RouteSource::Kernel);
        assert!(l.no_install);
        assert_eq!(l.kernel.ifname.as_deref(), Some("cali1"));
        assert_eq!(l.kernel.metric, Some(1024));
        assert_eq!(l.kernel.protocol, Some(3));
        // Same route again: nothing to tell the RIB.
        assert!(k.added(normal.clone()).is_none());
        // An elevated copy (live migration) is preferred.
        let elevated = kroute("10.65.1.5/32", 3, 512, Some("cali1"));
        assert_eq!(
            originated(k.added(elevated.clone())).kernel.metric,
            Some(512)
        );
        // Removing the non-preferred one changes nothing; removing the preferred falls back.
        assert!(k.removed(&normal).is_none());
        assert!(k.added(normal.clone()).is_none());
        assert_eq!(originated(k.removed(&elevated)).kernel.metric, Some(1024));
        assert!(matches!(
            k.removed(&normal),
            Some(LocalChange::Withdraw(p)) if p == net("10.65.1.5/32")
        ));
        // Unknown removals are ignored.
        assert!(k.removed(&normal).is_none());
        assert_eq!(k.len(), 0);
        assert!(k.others.is_empty());
    }

    #[test]
    fn kernel_routes_three_metrics_and_in_place_changes() {
        let mut k = KernelRoutes::default();
        let at = |m: u32, dev: &str| kroute("10.65.2.0/26", 80, m, Some(dev));
        assert_eq!(originated(k.added(at(300, "a"))).kernel.metric, Some(300));
        // Worse routes are remembered, not announced.
        assert!(k.added(at(500, "a")).is_none());
        assert!(k.added(at(400, "a")).is_none());
        // A worse route changing in place is not announced either.
        assert!(k.added(at(400, "b")).is_none());
        // The preferred one changing in place is.
        assert_eq!(
            originated(k.added(at(300, "b"))).kernel.ifname.as_deref(),
            Some("b")
        );
        // Removal falls back through the metrics in order, with the latest attributes.
        let l = originated(k.removed(&at(300, "b")));
        assert_eq!(
            (l.kernel.metric, l.kernel.ifname.as_deref()),
            (Some(400), Some("b"))
        );
        assert_eq!(
            originated(k.removed(&at(400, "b"))).kernel.metric,
            Some(500)
        );
        assert!(matches!(
            k.removed(&at(500, "a")),
            Some(LocalChange::Withdraw(_))
        ));
        assert_eq!(k.len(), 0);
        assert!(k.others.is_empty());
    }

    #[test]
    fn kernel_route_attributes_are_shared() {
        let mut k = KernelRoutes::default();
        for i in 0..1000u32 {
            let mut r = kroute("10.0.0.0/32", 80, 0, None);
            r.prefix = IpNet::new(std::net::Ipv4Addr::from(0x0a00_0000u32 + i).into(), 32).unwrap();
            assert!(k.added(r).is_some());
        }
        assert_eq!(k.len(), 1000);
        // One blackhole attribute set for all of them.
        assert_eq!(k.attrs.len(), 1);
        // Attribute sets of removed routes are dropped once the set has grown.
        for i in 0..200u32 {
            let r = kroute("10.200.0.0/32", 80, 0, Some(&format!("cali{i}")));
            let mut r = r;
            r.prefix = IpNet::new(std::net::Ipv4Addr::from(0x0ac8_0000u32 + i).into(), 32).unwrap();
            assert!(k.added(r.clone()).is_some());
            assert!(k.removed(&r).is_some());
        }
        assert!(k.attrs.len() < 200);
    }

    fn gr(restart_state: bool) -> GracefulRestart {
        GracefulRestart {
            restart_state,
            notification: false,
            restart_time: 120,
            families: Vec::new(),
        }
    }

    #[test]
    fn eor_tracker() {
        let mut t = EorTracker::default();
        let peers = ["a", "b", "off"];
        let both = [Family::IPV4_UNICAST, Family::IPV6_UNICAST];
        let g = gr(false);
        assert_eq!(t.status(peers[..2].iter().copied()).complete, 0);
        t.session_up("a", &both, Some(&g));
        t.end_of_rib("a", Family::IPV4_UNICAST);
        t.end_of_rib("b", Family::IPV4_UNICAST); // not up: ignored
        let s = t.status(peers[..2].iter().copied());
        assert_eq!(s.waiting, vec!["a".to_string(), "b".to_string()]);
        t.end_of_rib("a", Family::IPV6_UNICAST);
        t.session_up("b", &[Family::IPV4_UNICAST], Some(&g));
        t.end_of_rib("b", Family::IPV4_UNICAST);
        let s = t.status(peers[..2].iter().copied());
        assert_eq!((s.complete, s.waiting.len()), (2, 0));
        // Sticky: a new session does not reopen the recovery.
        t.session_up("a", &both, Some(&g));
        assert!(t.status(peers[..2].iter().copied()).waiting.is_empty());
        assert_eq!(t.status(peers.iter().copied()).waiting, vec!["off"]);
    }

    #[test]
    fn eor_not_awaited_from_peers_without_graceful_restart_or_restarting() {
        let mut t = EorTracker::default();
        let v4 = [Family::IPV4_UNICAST];
        t.session_up("plain", &v4, None);
        t.session_up("restarting", &v4, Some(&gr(true)));
        t.session_up("gr", &v4, Some(&gr(false)));
        let s = t.status(["plain", "restarting", "gr"].into_iter());
        assert_eq!((s.complete, s.waiting), (2, vec!["gr".to_string()]));
    }

    /// An in-memory kernel: records every batch, holds stale routes.
    #[derive(Clone, Default)]
    struct FakeFib {
        state: Arc<Mutex<FakeState>>,
    }

    #[derive(Default)]
    struct FakeState {
        /// While set, `apply` waits until it is notified (a slow kernel).
        gate: Option<Arc<tokio::sync::Notify>>,
        installed: HashMap<IpNet, FibOp>,
        stale: HashSet<IpNet>,
        batches: Vec<Vec<FibOp>>,
        observed: Vec<KernelEvent>,
        swept: Vec<IpNet>,
        shut_down: bool,
    }

    impl FakeFib {
        fn with_stale(prefixes: &[&str]) -> FakeFib {
            let f = FakeFib::default();
            {
                let mut s = f.state.lock().unwrap();
                for p in prefixes {
                    s.stale.insert(net(p));
                    s.installed.insert(net(p), FibOp::Withdraw(net(p)));
                }
            }
            f
        }
    }

    impl KernelFib for FakeFib {
        async fn apply(&mut self, ops: Vec<FibOp>) -> Result<ApplyReport, KernelError> {
            let gate = self.state.lock().unwrap().gate.clone();
            if let Some(g) = gate {
                g.notified().await;
            }
            let mut s = self.state.lock().unwrap();
            for op in &ops {
                let p = op_prefix(op);
                s.stale.remove(&p);
                match op {
                    FibOp::Install(_) => {
                        s.installed.insert(p, op.clone());
                    }
                    FibOp::Withdraw(_) => {
                        s.installed.remove(&p);
                    }
                }
            }
            s.batches.push(ops);
            Ok(ApplyReport::default())
        }
        fn observe(&mut self, event: &KernelEvent) {
            self.state.lock().unwrap().observed.push(event.clone());
        }
        fn next_retry_at(&self) -> Option<Instant> {
            None
        }
        async fn retry_due(&mut self) -> Result<ApplyReport, KernelError> {
            Ok(ApplyReport::default())
        }
        fn stale_count(&self) -> usize {
            self.state.lock().unwrap().stale.len()
        }
        async fn sweep_stale(&mut self) -> Result<ApplyReport, KernelError> {
            let mut s = self.state.lock().unwrap();
            let stale: Vec<IpNet> = s.stale.drain().collect();
            for p in &stale {
                s.installed.remove(p);
            }
            s.swept.extend(stale);
            Ok(ApplyReport::default())
        }
        async fn shutdown(self) -> Result<ApplyReport, KernelError> {
            self.state.lock().unwrap().shut_down = true;
            Ok(ApplyReport::default())
        }
    }

    /// Waits (in virtual time) until `f` holds.
    async fn until(mut f: impl FnMut() -> bool) {
        for _ in 0..10_000 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition never held");
    }

    #[tokio::test(start_paused = true)]
    async fn export_applies_batches_and_stops() {
        let fib = FakeFib::default();
        let (_ev_tx, ev_rx) = mpsc::channel::<KernelEvent>(8);
        let (rib_tx, _rib_rx) = mpsc::channel(8);
        let (tx, handle) = spawn(fib.clone(), ev_rx, rib_tx, FibOptions::default());
        tx.send(vec![
            FibChange::Upsert(rib_route("10.65.2.0/26", &["192.0.2.1"])),
            FibChange::Upsert(rib_route("10.65.3.0/26", &["192.0.2.1"])),
        ])
        .await
        .unwrap();
        tx.send(vec![FibChange::Remove(net("10.65.3.0/26"))])
            .await
            .unwrap();
        until(|| {
            let s = fib.state.lock().unwrap();
            s.installed.len() == 1 && s.installed.contains_key(&net("10.65.2.0/26"))
        })
        .await;
        handle.stop().await;
        assert!(fib.state.lock().unwrap().shut_down);
    }

    /// The RIB offers its batches with `try_send`: a kernel write that takes long must not
    /// make the channel full (changes would be lost), and what queued up meanwhile is merged
    /// per prefix into one later batch.
    #[tokio::test(start_paused = true)]
    async fn slow_kernel_never_fills_the_fib_channel() {
        let fib = FakeFib::default();
        let gate = Arc::new(tokio::sync::Notify::new());
        fib.state.lock().unwrap().gate = Some(gate.clone());
        let (_ev_tx, ev_rx) = mpsc::channel::<KernelEvent>(8);
        let (rib_tx, _rib_rx) = mpsc::channel(8);
        let (tx, handle) = spawn(fib.clone(), ev_rx, rib_tx, FibOptions::default());
        tx.try_send(vec![FibChange::Upsert(rib_route(
            "10.65.0.0/26",
            &["192.0.2.1"],
        ))])
        .unwrap();
        // Let the first apply start and block on the gate.
        tokio::time::sleep(Duration::from_millis(10)).await;
        for i in 0..(4 * FIB_QUEUE) {
            let gw = if i % 2 == 0 { "192.0.2.1" } else { "192.0.2.3" };
            let batch = vec![FibChange::Upsert(rib_route("10.65.1.0/26", &[gw]))];
            tx.try_send(batch)
                .expect("the FIB channel is drained during a kernel write");
            tokio::task::yield_now().await;
        }
        fib.state.lock().unwrap().gate = None;
        gate.notify_one();
        until(|| fib.state.lock().unwrap().batches.len() == 2).await;
        {
            let s = fib.state.lock().unwrap();
            // Everything that arrived during the slow write became one batch, one op per
            // prefix, with the last next hop sent.
            assert_eq!(s.batches[1].len(), 1);
            assert_eq!(
                forward(&s.batches[1][0]),
                vec![("192.0.2.3".parse().unwrap(), NextHopMode::Direct)]
            );
        }
        handle.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn import_feeds_rib_and_installer() {
        let fib = FakeFib::default();
        let (ev_tx, ev_rx) = mpsc::channel::<KernelEvent>(16);
        let (rib_tx, mut rib_rx) = mpsc::channel(8);
        let (_tx, handle) = spawn(fib.clone(), ev_rx, rib_tx, FibOptions::default());
        let link = bgp_kernel::Link {
            index: 2,
            name: "eth0".into(),
            up: true,
        };
        ev_tx.send(KernelEvent::LinkUp(link.clone())).await.unwrap();
        ev_tx
            .send(KernelEvent::RouteAdded(kroute("10.65.1.0/26", 80, 0, None)))
            .await
            .unwrap();
        ev_tx
            .send(KernelEvent::RouteAdded(kroute(
                "10.65.1.5/32",
                3,
                1024,
                Some("cali1"),
            )))
            .await
            .unwrap();
        ev_tx.send(KernelEvent::Synced).await.unwrap();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            match rib_rx.recv().await {
                Some(RibCtl::Local(v)) => seen.extend(v),
                other => panic!("unexpected {other:?}"),
            }
        }
        let prefixes: Vec<IpNet> = seen
            .iter()
            .map(|c| match c {
                LocalChange::Originate(r) => r.prefix,
                LocalChange::Withdraw(p) => *p,
            })
            .collect();
        assert_eq!(prefixes, vec![net("10.65.1.0/26"), net("10.65.1.5/32")]);
        until(|| fib.state.lock().unwrap().observed == vec![KernelEvent::LinkUp(link.clone())])
            .await;
        handle.stop().await;
    }

    /// Answers the export task's recovery queries with `waiting` until told otherwise.
    fn answer_recovery(
        mut rib_rx: mpsc::Receiver<RibCtl>,
        waiting: Arc<Mutex<Vec<String>>>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            while let Some(c) = rib_rx.recv().await {
                if let RibCtl::Query(Query::Recovery(reply)) = c {
                    let _ = reply.send(RecoveryStatus {
                        complete: 0,
                        waiting: waiting.lock().unwrap().clone(),
                    });
                }
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn graceful_restart_sweeps_only_stale_after_end_of_rib() {
        let fib = FakeFib::with_stale(&["10.65.2.0/26", "10.65.7.0/26"]);
        let (_ev_tx, ev_rx) = mpsc::channel::<KernelEvent>(8);
        let (rib_tx, rib_rx) = mpsc::channel(8);
        let waiting = Arc::new(Mutex::new(vec!["Mesh_192_0_2_1".to_string()]));
        let answers = answer_recovery(rib_rx, waiting.clone());
        let (tx, handle) = spawn(fib.clone(), ev_rx, rib_tx, FibOptions::default());
        // The peer announces one of the two again.
        tx.send(vec![FibChange::Upsert(rib_route(
            "10.65.2.0/26",
            &["192.0.2.1"],
        ))])
        .await
        .unwrap();
        until(|| fib.state.lock().unwrap().stale.len() == 1).await;
        // Still waiting for End-of-RIB: nothing swept however many polls pass.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(fib.state.lock().unwrap().swept.is_empty());
        assert_eq!(fib.state.lock().unwrap().installed.len(), 2);
        waiting.lock().unwrap().clear();
        until(|| !fib.state.lock().unwrap().swept.is_empty()).await;
        {
            let s = fib.state.lock().unwrap();
            assert_eq!(s.swept, vec![net("10.65.7.0/26")]);
            assert!(s.installed.contains_key(&net("10.65.2.0/26")));
        }
        handle.stop().await;
        answers.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn graceful_restart_ends_at_the_recovery_time() {
        let fib = FakeFib::with_stale(&["10.65.7.0/26"]);
        let (_ev_tx, ev_rx) = mpsc::channel::<KernelEvent>(8);
        let (rib_tx, rib_rx) = mpsc::channel(8);
        let waiting = Arc::new(Mutex::new(vec!["never".to_string()]));
        let answers = answer_recovery(rib_rx, waiting);
        let options = FibOptions {
            recovery_wait: Duration::from_secs(30),
        };
        let (_tx, handle) = spawn(fib.clone(), ev_rx, rib_tx, options);
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(fib.state.lock().unwrap().swept.is_empty());
        until(|| fib.state.lock().unwrap().swept == vec![net("10.65.7.0/26")]).await;
        handle.stop().await;
        answers.abort();
    }
}
