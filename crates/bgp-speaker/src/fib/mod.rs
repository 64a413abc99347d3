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
//! - **export** (RIB → kernel): best-path batches ([`FibBatch`]) from the RIB task are
//!   merged per prefix (latest wins) and applied with the [`KernelInstaller`]; the FIB
//!   channel keeps being drained while a long kernel write runs. Each route's form comes
//!   from the FIB policy (`[kernel.export] policy`, see [`fib_op`]). Refused routes are
//!   retried when the installer says they are due.
//!
//! The kernel is a client of the RIB, as BIRD's kernel protocol is of its table: the RIB
//! side (`bgp_node::RibDriver`) keeps what the FIB has not taken yet, merged per prefix,
//! and offers it whenever the FIB channel has room, so nothing is ever dropped; and it
//! passes on the end of graceful-restart recovery, which the RIB's one End-of-RIB tracker
//! reports (`bgp_rib::Rib::poll_recovery_done`), with the batch that carries everything
//! learned before it ([`FibBatch::recovery_done`]). Nothing here asks the RIB anything.
//!
//! Beside them, a second watcher feeds next-hop resolution (all main-table routes, not only
//! the imported ones; see `nexthop.rs`). Both watchers reach the RIB task as
//! [`KernelInput`]s on a channel of their own.
//!
//! # Start-up reconciliation and graceful restart
//! The installer adopts the routes of our protocol left by a previous run as *stale*; they
//! keep forwarding. Routes the RIB learns again replace them in place (no write when
//! identical). The restarting speaker's recovery (RFC 4724 section 4.1; BIRD's "graceful
//! restart recovery") ends when every enabled peer has sent End-of-RIB for every family of
//! its session (peers that do not advertise graceful restart, or are restarting themselves,
//! are not waited for), or when the recovery deadline has passed (the RIB's, one for the
//! whole speaker: the restart time, or [`DEFAULT_RECOVERY_WAIT`]); then the routes still
//! stale are deleted (RFC 4724 section 4.2 applied to our own FIB). On exit the routes
//! persist or are flushed per `[kernel.export] on_exit`; the speaker stops this component
//! before it closes sessions, so routes are not withdrawn from the kernel by the shutdown
//! itself.
//!
//! # Seams
//! The kernel is reached through two traits, [`KernelFib`] (installer side) and
//! [`KernelEvents`] (watcher side), implemented by the `bgp-kernel` types and, in tests, by
//! in-memory fakes.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bgp_kernel::{
    ApplyReport, FibAction, FibNextHop, FibOp, FibState, KernelError, KernelEvent, KernelInstaller,
    KernelWatcher, NextHopMode,
};
use bgp_node::chain_policy;
pub use bgp_node::rib::FibBatch;
use bgp_rib::policy::{CompiledPolicy, InstallMode, RouteSource};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{Config, KernelSection};
use crate::health::Health;

mod export;
mod import;
#[cfg(test)]
mod tests;

use export::ExportTask;
use export::Pending;
use import::import_task;
pub(crate) use import::LocalChange;

/// What the kernel tells the RIB task.
#[derive(Debug)]
pub(crate) enum KernelInput {
    /// Kernel-learned local routes changed (the import side).
    Local(Vec<LocalChange>),
    /// Links, addresses and routes for next-hop resolution ([`crate::nexthop`]).
    NextHops(Vec<KernelEvent>),
}

/// How long a speaker that was not started for a graceful restart keeps the kernel routes
/// a previous run left at most while waiting for End-of-RIB from every peer (BIRD's
/// `graceful restart wait`, what Calico nodes run with).
pub const DEFAULT_RECOVERY_WAIT: Duration = Duration::from_secs(240);
/// Batches of best-path changes queued from the RIB task (drained continuously).
const FIB_QUEUE: usize = 256;
/// Kernel events folded into one RIB command.
const IMPORT_BATCH: usize = 1024;
/// Changes handed to the installer at a time: bounds the installer's per-call working set
/// (its operation list and the set of touched prefixes) whatever the size of a burst.
const FLUSH_SLICE: usize = 32_768;
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
    /// What we installed, what the kernel refused and the retries pending (the list of
    /// installed routes only with `routes`).
    fn fib_state(&self, routes: bool) -> FibState;
    /// A failure left the kernel's state unknown and the reconciliation that repairs it
    /// (at the next `retry_due`) has not succeeded yet: why.
    fn recovering(&self) -> Option<String> {
        None
    }
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
    fn fib_state(&self, routes: bool) -> FibState {
        KernelInstaller::fib_state(self, routes)
    }
    fn recovering(&self) -> Option<String> {
        self.is_recovering().map(str::to_owned)
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
#[derive(Clone, Debug, Default)]
pub(crate) struct FibOptions {
    /// Where the component reports its health (crate::health).
    pub health: Health,
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
fn op_prefix(op: &FibOp) -> ipnet::IpNet {
    match op {
        FibOp::Install(r) => r.prefix.trunc(),
        FibOp::Withdraw(p) => p.trunc(),
    }
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

/// A question to the export task about the kernel FIB: whether to list the installed
/// routes, and where to answer.
pub(crate) type FibQuery = (bool, oneshot::Sender<FibState>);

/// Questions waiting for the export task (answered between kernel batches).
const FIB_QUERIES: usize = 8;

/// The running component; [`KernelHandle::stop`] ends it.
#[derive(Debug)]
pub(crate) struct KernelHandle {
    /// Asks the export task for the FIB's state ([`KernelHandle::state`]).
    queries: mpsc::Sender<FibQuery>,
    stop: oneshot::Sender<()>,
    export: JoinHandle<()>,
    import: JoinHandle<()>,
}

impl KernelHandle {
    /// Where to ask the export task for the FIB's state.
    pub(crate) fn queries(&self) -> mpsc::Sender<FibQuery> {
        self.queries.clone()
    }

    /// Stops importing, then stops the installer (persist or flush, per `on_exit`).
    pub(crate) async fn stop(self) {
        self.import.abort();
        let _ = self.stop.send(());
        let abort = self.export.abort_handle();
        if tokio::time::timeout(STOP_WAIT, self.export).await.is_err() {
            warn!("kernel FIB did not stop in time");
            abort.abort();
        }
    }
}

/// Opens the kernel (installer first, so our old routes are adopted before anything else
/// happens; then the watcher) and starts the component. Kernel routes go to the RIB on
/// `rib`; returns the sender the RIB task hands best-path changes on.
pub(crate) async fn start(
    kernel: &KernelSection,
    rib: mpsc::Sender<KernelInput>,
    options: FibOptions,
) -> Result<(mpsc::Sender<FibBatch>, KernelHandle), KernelError> {
    let installer = KernelInstaller::open(kernel.export.clone()).await?;
    let watcher = KernelWatcher::spawn(kernel.import_config())?;
    info!(
        protocol = kernel.export.protocol,
        table = kernel.export.table,
        "kernel FIB started"
    );
    Ok(spawn(installer, watcher, rib, options))
}

/// Starts the component over any kernel implementation.
pub(crate) fn spawn<K: KernelFib, E: KernelEvents>(
    fib: K,
    events: E,
    rib: mpsc::Sender<KernelInput>,
    options: FibOptions,
) -> (mpsc::Sender<FibBatch>, KernelHandle) {
    let (tx, rx) = mpsc::channel(FIB_QUEUE);
    let (obs_tx, obs_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let (queries_tx, queries_rx) = mpsc::channel(FIB_QUERIES);
    let recovering = fib.stale_count() > 0;
    let task = ExportTask {
        fib,
        queries: queries_rx,
        changes: rx,
        changes_open: true,
        observe: obs_rx,
        pending: Pending::default(),
        recovering,
        health: options.health.clone(),
    };
    let export = tokio::spawn(task.run(stop_rx));
    let import = tokio::spawn(import_task(events, rib, obs_tx, options.health));
    (
        tx,
        KernelHandle {
            queries: queries_tx,
            stop: stop_tx,
            export,
            import,
        },
    )
}
