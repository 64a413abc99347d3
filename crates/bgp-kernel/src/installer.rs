//! RIB → kernel: install, replace and delete routes with our own protocol number.
//!
//! # Ownership rules
//! - Every route we write carries `ExportConfig::protocol` (default 12, `RTPROT_BIRD`, which
//!   Felix leaves alone). Deletes always carry the protocol and metric too, and the kernel only
//!   deletes a route whose protocol matches (`fib_table_delete()` / `ip6_route_del()`), so a
//!   route of another protocol is never deleted.
//! - A route we do not yet own is added with `NLM_F_CREATE | NLM_F_EXCL`: the kernel checks
//!   atomically that nothing occupies the key (table, prefix, metric). If another protocol's
//!   route does, the answer is `EEXIST`; we log that once, leave the kernel alone and retry
//!   with exponential backoff (`retry_initial_ms` doubling up to `retry_max_ms`), driven by the
//!   daemon calling [`KernelInstaller::retry_due`] at [`KernelInstaller::next_retry_at`]. A
//!   refused route (unreachable gateway, missing device) is retried the same way.
//! - `NLM_F_REPLACE` is used only for a key we own (we added it, or adopted it from a dump of
//!   our protocol), so it updates our route in place without a gap in forwarding. Known
//!   limit: should another daemon *replace* our route at the same key between our writes
//!   (rather than add its own at another metric), our next replace takes the key back; the
//!   kernel offers no compare-and-replace on the protocol.
//! - A route of ours deleted by someone else is reported by the watcher
//!   ([`KernelEvent::OwnRouteRemoved`]); [`KernelInstaller::observe`] queues it for an
//!   immediate rewrite if the RIB still wants it.
//!
//! # Start-up reconciliation and graceful restart
//! [`KernelInstaller::open`] dumps the routes of our protocol in our table and adopts them as
//! *stale*: they stay in the kernel and keep forwarding. Installing the same prefix again (or
//! [`KernelInstaller::mark_refreshed`]) makes a route current again, without a kernel write when
//! its content did not change. When graceful restart completes (every peer sent End-of-RIB, or
//! the restart timer expired: RFC 4724 §4.2), [`KernelInstaller::sweep_stale`] deletes the
//! routes still stale. [`KernelInstaller::shutdown`] persists or flushes per `on_exit`.
//!
//! # Throughput
//! Writes go through a writer thread with its own socket (`crate::nlsock`): up to
//! `max_in_flight` requests are packed into 64 KiB datagrams before the acknowledgements are
//! collected, and the next window is serialized while the kernel processes the current one.
//! Prefixes are written in hash order, which the kernel's trie inserts faster than address
//! order. See docs/benchmarks.md, "Kernel FIB".
//!
//! # Memory
//! One 32-byte [`Entry`] per route (56 bytes with its key in the map): next-hop sets are
//! interned and referenced by a thin pointer, and what is rarely needed (the kernel form
//! while it differs from the wanted one, the RIB's route when a retry must re-resolve it)
//! sits behind one optional pointer. A batch is worked through one window at a time.
//!
//! # IPv6 next hops of IPv4 prefixes (RFC 8950)
//! Installed as `via inet6 NH` (`RTA_VIA`), always in the plain form: the tunnel and
//! cross-subnet forms are IPv4 encapsulations and do not apply. Kernels before 5.2 refuse
//! `RTA_VIA` (`EINVAL`); such a route is logged once and retried with the usual backoff.

use std::collections::HashMap;

use rustc_hash::{FxHashMap, FxHashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use serde::{Deserialize, Serialize};

use crate::config::{ExitAction, ExportConfig};
use crate::convert::{address_from_msg, link_from_msg, route_from_msg, LinkTable};
use crate::nlsock::{Errno, NlSocket, Window, Writer, ERR_TRUESIZE};
use crate::types::{KernelEvent, KernelRoute, RouteKind};
use crate::KernelError;

mod recovery;

/// How one next hop is installed (chosen per route by policy, e.g. Calico's IPIP mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextHopMode {
    /// `via NH [dev X]`: the next hop is on a connected subnet (Calico "no encapsulation").
    Direct,
    /// `via NH dev <tunnel_device> onlink` (Calico IPIP mode "Always").
    Tunnel,
    /// Direct when NH is inside a locally connected subnet, tunnel otherwise (Calico IPIP
    /// mode "CrossSubnet").
    CrossSubnet,
}

/// One next hop as the RIB hands it over (already resolved to an immediate neighbour).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FibNextHop {
    /// Next-hop address (an IPv6 next hop for an IPv4 prefix is installed with `RTA_VIA`).
    pub gateway: IpAddr,
    /// Installation form.
    pub mode: NextHopMode,
    /// Output device for `Direct` (None: the kernel picks it from the connected route).
    pub device: Option<String>,
}

/// What the kernel should do with a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FibAction {
    /// `blackhole P`.
    Blackhole,
    /// Forward; two or more next hops make an ECMP route (`RTA_MULTIPATH`).
    Forward(Vec<FibNextHop>),
}

/// A route to install.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FibRoute {
    /// Destination (host bits are cleared on install).
    pub prefix: IpNet,
    /// Blackhole or forward.
    pub action: FibAction,
    /// LOCAL_PREF of the best path, mapped to the metric by `ExportConfig::metric`.
    pub local_pref: Option<u32>,
}

/// A change for [`KernelInstaller::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FibOp {
    /// Install or update.
    Install(FibRoute),
    /// Remove our route for the prefix (other protocols' routes are never touched).
    Withdraw(IpNet),
}

/// Counts of what an `apply`, `retry_due`, `sweep_stale` or `shutdown` call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Routes newly added.
    pub added: usize,
    /// Routes replaced in place.
    pub replaced: usize,
    /// Routes deleted.
    pub deleted: usize,
    /// Installs that needed no kernel write (identical content).
    pub unchanged: usize,
    /// Requests the kernel refused; they are retried later.
    pub failed: usize,
}

impl std::ops::AddAssign for ApplyReport {
    fn add_assign(&mut self, r: ApplyReport) {
        self.added += r.added;
        self.replaced += r.replaced;
        self.deleted += r.deleted;
        self.unchanged += r.unchanged;
        self.failed += r.failed;
    }
}

/// One next hop in kernel terms. `ifindex` 0 lets the kernel choose the device.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Hop {
    gateway: IpAddr,
    ifindex: u32,
    onlink: bool,
}

/// A sorted next-hop set, shared between the routes that have the same (interned). A thin
/// pointer (8 bytes, where `Arc<[Hop]>` takes 16): there is one per route.
type HopSet = Arc<Box<[Hop]>>;

/// The kernel form of one of our routes (16 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Form {
    metric: u32,
    blackhole: bool,
    hops: HopSet,
}

impl Form {
    /// Whether the kernel route `have` already implements the wanted form `self` (a wanted
    /// hop without a device accepts whatever device the kernel picked).
    fn satisfied_by(&self, have: &Form) -> bool {
        self.metric == have.metric
            && self.blackhole == have.blackhole
            && self.hops.len() == have.hops.len()
            && self.hops.iter().zip(have.hops.iter()).all(|(w, h)| {
                w.gateway == h.gateway
                    && w.onlink == h.onlink
                    && (w.ifindex == 0 || w.ifindex == h.ifindex)
            })
    }
}

#[derive(Debug, Clone, Copy)]
struct Retry {
    attempts: u32,
    at: Instant,
    errno: Errno,
}

/// Per-prefix state, one per installed route: 32 bytes (56 with its key in the map). What
/// is rarely needed lives behind one optional pointer ([`Extra`]).
#[derive(Debug, Clone)]
struct Entry {
    /// What we want there (`None`: withdraw).
    want: Option<Form>,
    /// The kernel form when it is not `want`, and the RIB's route when it must be kept.
    extra: Option<Box<Extra>>,
    /// Our route in the kernel is exactly `want`.
    kernel_is_want: bool,
    /// Adopted from a previous run and not refreshed since.
    stale: bool,
    /// Our route may have been removed behind our back: rewrite it even if it looks current.
    verify: bool,
}

/// The rare parts of an [`Entry`].
#[derive(Debug, Clone, Default)]
struct Extra {
    /// Our route as it is in the kernel, when it is not `want` (see `kernel_is_want`):
    /// transient, between a change and its acknowledgement, or after a failure.
    kernel_other: Option<Form>,
    /// The RIB's route, kept only when its kernel form depends on links or addresses
    /// (tunnel, cross-subnet or named-device next hops) so a retry can re-resolve it.
    route: Option<FibRoute>,
}

impl Entry {
    fn absent() -> Self {
        Entry {
            want: None,
            extra: None,
            kernel_is_want: false,
            stale: false,
            verify: false,
        }
    }

    /// Our route as it is in the kernel (as far as we know).
    fn kernel(&self) -> Option<&Form> {
        if self.kernel_is_want {
            self.want.as_ref()
        } else {
            self.extra.as_ref().and_then(|x| x.kernel_other.as_ref())
        }
    }

    /// The RIB's route, when kept (see [`Extra::route`]).
    fn route(&self) -> Option<&FibRoute> {
        self.extra.as_ref().and_then(|x| x.route.as_ref())
    }

    fn set_route(&mut self, route: Option<FibRoute>) {
        self.update_extra(|x| x.route = route);
    }

    fn set_kernel_other(&mut self, kernel: Option<Form>) {
        self.update_extra(|x| x.kernel_other = kernel);
    }

    /// Changes the rare parts, allocating them only when something is to be kept.
    fn update_extra(&mut self, f: impl FnOnce(&mut Extra)) {
        let mut x = self.extra.take().map_or_else(Extra::default, |b| *b);
        f(&mut x);
        if x.kernel_other.is_some() || x.route.is_some() {
            self.extra = Some(Box::new(x));
        }
    }

    fn set_want(&mut self, want: Option<Form>) {
        if self.kernel_is_want {
            let was = self.want.take();
            self.set_kernel_other(was);
            self.kernel_is_want = false;
        }
        self.want = want;
    }

    fn set_kernel(&mut self, kernel: Option<Form>) {
        self.kernel_is_want = false;
        self.set_kernel_other(kernel);
    }

    /// The kernel now holds what we want.
    fn kernel_done(&mut self) {
        self.set_kernel_other(None);
        self.kernel_is_want = self.want.is_some();
    }
}

/// What a request in a batch was for.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Add,
    Replace,
    Delete,
}

/// A window handed to the writer thread: its answer channel and what each request was for.
type InFlight = (
    tokio::sync::oneshot::Receiver<Result<Vec<Errno>, KernelError>>,
    Vec<(IpNet, Purpose)>,
);

/// Installs routes into the kernel FIB. See the module docs for the rules it follows.
pub struct KernelInstaller {
    cfg: ExportConfig,
    /// Dumps (links, addresses, our routes).
    sock: NlSocket,
    /// Route writes, on a thread of their own.
    writer: Writer,
    /// Requests per window (bounded by `max_in_flight` and the receive buffer).
    window: usize,
    /// Sequence number for the next window.
    seq: u32,
    links: LinkTable,
    /// Connected subnets (address, ifindex) for the cross-subnet decision.
    subnets: HashMap<(u32, IpNet), ()>,
    entries: FxHashMap<IpNet, Entry>,
    retrying: FxHashMap<IpNet, Retry>,
    /// Interned next-hop sets (a cluster has few distinct next hops and many routes).
    hop_sets: FxHashSet<HopSet>,
    /// Our routes left at an old metric whose delete failed: (prefix, metric).
    orphans: Vec<(IpNet, u32)>,
    /// Receive buffer asked for the writer's socket (to open a new one after a failure).
    writer_rcvbuf: usize,
    /// A kernel write or read failed: what the kernel holds is unknown (recovery.rs).
    recovery: Option<recovery::Recovery>,
    /// Tests only: the next sync fails before writing anything.
    #[cfg(test)]
    fail_next_sync: bool,
}

impl KernelInstaller {
    /// Open the netlink socket, read links and addresses, and adopt the routes of our protocol
    /// in our table as stale. Must run inside a tokio runtime.
    pub async fn open(cfg: ExportConfig) -> Result<Self, KernelError> {
        let wanted = cfg
            .max_in_flight
            .max(1)
            .saturating_mul(ERR_TRUESIZE)
            .saturating_mul(2);
        let sock = NlSocket::open(1 << 20)?;
        let writer = Writer::spawn(wanted.max(1 << 20))?;
        // The kernel reports twice what it accounts; keep a window of failures inside it
        // (two windows can be queued at once).
        let window = cfg
            .max_in_flight
            .clamp(1, (writer.rcvbuf / ERR_TRUESIZE / 4).max(16));
        if window < cfg.max_in_flight {
            tracing::warn!(
                configured = cfg.max_in_flight,
                used = window,
                "netlink receive buffer too small for max_in_flight; using a smaller window"
            );
        }
        let mut me = KernelInstaller {
            cfg,
            sock,
            writer,
            window,
            seq: 1,
            links: LinkTable::new(),
            subnets: HashMap::new(),
            entries: FxHashMap::default(),
            retrying: FxHashMap::default(),
            hop_sets: FxHashSet::default(),
            orphans: Vec::new(),
            writer_rcvbuf: wanted.max(1 << 20),
            recovery: None,
            #[cfg(test)]
            fail_next_sync: false,
        };
        me.refresh_links().await?;
        me.refresh_addresses().await?;
        for r in me.dump_ours().await? {
            let form = me.form_of_kernel(&r);
            me.entries.insert(
                r.prefix,
                Entry {
                    want: Some(form),
                    kernel_is_want: true,
                    stale: true,
                    ..Entry::absent()
                },
            );
        }
        if !me.entries.is_empty() {
            tracing::info!(
                routes = me.entries.len(),
                "adopted routes from a previous run as stale"
            );
        }
        Ok(me)
    }

    /// The configuration in use.
    pub fn config(&self) -> &ExportConfig {
        &self.cfg
    }

    /// The metric a route with this LOCAL_PREF gets.
    pub fn metric_for(&self, local_pref: Option<u32>) -> u32 {
        self.cfg.metric_for(local_pref)
    }

    /// Number of routes we hold in the kernel (or want to).
    pub fn len(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.kernel().is_some() || e.want.is_some())
            .count()
    }

    /// Whether we hold no routes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Routes adopted at start-up and not refreshed yet.
    pub fn stale_count(&self) -> usize {
        self.entries.values().filter(|e| e.stale).count()
    }

    /// Routes waiting for a retry (conflicts or refusals).
    pub fn pending_count(&self) -> usize {
        self.retrying.len()
    }

    /// Whether `prefix` is currently installed by us.
    pub fn is_installed(&self, prefix: &IpNet) -> bool {
        self.entries
            .get(&prefix.trunc())
            .is_some_and(|e| e.kernel().is_some())
    }

    /// Keep a stale route (the RIB still has it; content unchanged).
    pub fn mark_refreshed(&mut self, prefix: &IpNet) {
        if let Some(e) = self.entries.get_mut(&prefix.trunc()) {
            e.stale = false;
        }
    }

    /// Keep link and address knowledge current from the watcher's events (the installer reads
    /// both at start-up; without these calls it re-reads links only when a device is unknown).
    pub fn observe(&mut self, ev: &KernelEvent) {
        match ev {
            KernelEvent::LinkUp(l) | KernelEvent::LinkDown(l) => {
                self.links.insert(l.index, l.clone());
            }
            KernelEvent::LinkRemoved(l) => {
                self.links.remove(&l.index);
                self.subnets.retain(|(i, _), _| *i != l.index);
            }
            KernelEvent::AddressAdded(a) => {
                self.subnets.insert((a.ifindex, a.address), ());
            }
            KernelEvent::AddressRemoved(a) => {
                self.subnets.remove(&(a.ifindex, a.address));
            }
            KernelEvent::OwnRouteRemoved(r) => {
                if r.table != self.cfg.table || r.protocol != self.cfg.protocol {
                    return;
                }
                let Some(e) = self.entries.get_mut(&r.prefix) else {
                    return; // we deleted it ourselves
                };
                let ours_now = e.kernel().is_some_and(|k| k.metric == r.metric);
                if ours_now && e.want.is_some() && !self.retrying.contains_key(&r.prefix) {
                    // Not our doing (our deletes remove the entry or move the metric first),
                    // or an old notification of a delete we followed by a re-add: either way
                    // a replace makes the kernel right without racing our own route.
                    tracing::info!(prefix = %r.prefix, "our kernel route was removed; reinstalling");
                    e.verify = true;
                    self.retrying.insert(
                        r.prefix,
                        Retry {
                            attempts: 0,
                            at: Instant::now(),
                            errno: 0,
                        },
                    );
                }
            }
            _ => {}
        }
    }

    /// When the earliest pending retry (or the recovery after a failure) is due.
    pub fn next_retry_at(&self) -> Option<Instant> {
        let retry = self.retrying.values().map(|r| r.at).min();
        let recover = self.recovery.as_ref().map(|r| r.at);
        retry.into_iter().chain(recover).min()
    }

    /// Apply a batch of changes. Returns an error only when the netlink socket failed (the
    /// changes are kept and the kernel is reconciled with them at the next
    /// [`KernelInstaller::retry_due`], see [`KernelInstaller::is_recovering`]); refused
    /// routes are counted in `failed` and retried later.
    pub async fn apply(
        &mut self,
        ops: impl IntoIterator<Item = FibOp>,
    ) -> Result<ApplyReport, KernelError> {
        let r = self.apply_ops(ops).await;
        self.note(r)
    }

    async fn apply_ops(
        &mut self,
        ops: impl IntoIterator<Item = FibOp>,
    ) -> Result<ApplyReport, KernelError> {
        let mut report = ApplyReport::default();
        let mut touched = Vec::new();
        let mut links_refreshed = false;
        for op in ops {
            match op {
                FibOp::Install(mut r) => {
                    r.prefix = r.prefix.trunc();
                    let form = match self.resolve(&r) {
                        Ok(f) => Some(f),
                        Err(_) if !links_refreshed => {
                            links_refreshed = true;
                            self.refresh_links().await?;
                            self.resolve(&r).ok()
                        }
                        Err(_) => None,
                    };
                    let prefix = r.prefix;
                    let e = self.entries.entry(prefix).or_insert_with(Entry::absent);
                    e.stale = false;
                    e.set_route(needs_reresolve(&r).then_some(r));
                    match form {
                        Some(f) => {
                            e.set_want(Some(f));
                            touched.push(prefix);
                        }
                        None => {
                            // Unresolvable (unknown tunnel/device): keep what is in the kernel
                            // and retry later.
                            report.failed += 1;
                            self.schedule_retry(prefix, libc::ENODEV);
                        }
                    }
                }
                FibOp::Withdraw(p) => {
                    let p = p.trunc();
                    if let Some(e) = self.entries.get_mut(&p) {
                        e.set_want(None);
                        e.set_route(None);
                        e.stale = false;
                        touched.push(p);
                    }
                }
            }
        }
        // Each prefix once (its final `want` is what counts). The hash order this yields is
        // also faster for the kernel than address order: inserting consecutive prefixes
        // makes its LC-trie resize the same nodes over and over (measured with `ip -batch`,
        // 300k /24s: 2.4 s of system time in address order, 2.0 s shuffled).
        let touched: Vec<IpNet> = touched
            .into_iter()
            .collect::<FxHashSet<IpNet>>()
            .into_iter()
            .collect();
        let r = self.sync(touched).await?;
        report += r;
        Ok(report)
    }

    /// Retry the routes whose retry time has come (conflicts, refusals, unresolvable
    /// devices), after reconciling the kernel with every route when a failure made its
    /// state unknown (recovery.rs).
    pub async fn retry_due(&mut self) -> Result<ApplyReport, KernelError> {
        let mut report = match self.recovery.as_ref() {
            Some(r) if r.at <= Instant::now() => self.recover().await?,
            _ => ApplyReport::default(),
        };
        let r = self.retry_routes().await;
        let r = self.note(r)?;
        report += r;
        Ok(report)
    }

    async fn retry_routes(&mut self) -> Result<ApplyReport, KernelError> {
        let now = Instant::now();
        let due: Vec<IpNet> = self
            .retrying
            .iter()
            .filter(|(_, r)| r.at <= now)
            .map(|(p, _)| *p)
            .collect();
        let mut links_refreshed = false;
        let mut ready = Vec::with_capacity(due.len());
        for p in due {
            // Re-resolve: the device or subnet may exist now.
            let route = self.entries.get(&p).and_then(|e| e.route().cloned());
            if let Some(r) = route.as_ref() {
                let mut form = self.resolve(r);
                if form.is_err() && !links_refreshed {
                    links_refreshed = true;
                    self.refresh_links().await?;
                    form = self.resolve(r);
                }
                match (form, self.entries.get_mut(&p)) {
                    (Ok(f), Some(e)) => e.set_want(Some(f)),
                    (Err(_), Some(_)) => {
                        // Still unresolvable: keep waiting (backoff continues).
                        self.schedule_retry(p, libc::ENODEV);
                        continue;
                    }
                    (_, None) => continue,
                }
            }
            ready.push(p);
        }
        let mut report = self.sync(ready).await?;
        report.deleted += self.delete_orphans().await?;
        Ok(report)
    }

    /// Delete every route still stale (graceful restart finished: RFC 4724 §4.2, the
    /// receiving speaker removes the stale routes once End-of-RIB arrived or the timer ended).
    pub async fn sweep_stale(&mut self) -> Result<ApplyReport, KernelError> {
        let r = self.sweep_stale_routes().await;
        self.note(r)
    }

    async fn sweep_stale_routes(&mut self) -> Result<ApplyReport, KernelError> {
        let stale: Vec<IpNet> = self
            .entries
            .iter_mut()
            .filter(|(_, e)| e.stale)
            .map(|(p, e)| {
                e.stale = false;
                e.set_want(None);
                *p
            })
            .collect();
        if !stale.is_empty() {
            tracing::info!(routes = stale.len(), "sweeping stale kernel routes");
        }
        self.sync(stale).await
    }

    /// Stop: leave our routes in place (`on_exit = persist`) or delete them all (`flush`).
    /// Dropping the installer without calling this leaves the routes in place.
    pub async fn shutdown(mut self) -> Result<ApplyReport, KernelError> {
        match self.cfg.on_exit {
            ExitAction::Persist => Ok(ApplyReport::default()),
            ExitAction::Flush => {
                let all: Vec<IpNet> = self
                    .entries
                    .iter_mut()
                    .map(|(p, e)| {
                        e.set_want(None);
                        e.set_route(None);
                        *p
                    })
                    .collect();
                self.sync(all).await
            }
        }
    }

    /// Re-read our routes from the kernel and reconcile (after a netlink overrun, or when the
    /// daemon suspects an outside change). Entries whose kernel state differs are rewritten.
    pub async fn resync(&mut self) -> Result<ApplyReport, KernelError> {
        let ours: HashMap<IpNet, Form> = self
            .dump_ours()
            .await?
            .iter()
            .map(|r| (r.prefix, self.form_of_kernel(r)))
            .collect();
        for (p, e) in self.entries.iter_mut() {
            e.set_kernel(ours.get(p).cloned());
        }
        for (p, f) in ours {
            self.entries.entry(p).or_insert_with(|| {
                let mut e = Entry::absent();
                e.set_kernel(Some(f));
                e
            });
        }
        let all: Vec<IpNet> = self.entries.keys().copied().collect();
        self.sync(all).await
    }

    // ----- internals -----

    fn schedule_retry(&mut self, prefix: IpNet, errno: Errno) {
        if !self.entries.contains_key(&prefix) {
            return;
        }
        let prev = self.retrying.get(&prefix).copied();
        let attempts = prev.map_or(0, |r| r.attempts).saturating_add(1);
        let shift = (attempts - 1).min(20);
        let delay = self
            .cfg
            .retry_initial_ms
            .saturating_mul(1u64 << shift)
            .min(self.cfg.retry_max_ms);
        if prev.is_none_or(|r| r.errno != errno) {
            // Logged once per episode (and when the reason changes), not per attempt.
            if errno == libc::EEXIST {
                tracing::warn!(%prefix, "kernel already has a route for this prefix and metric owned by another protocol; leaving it alone and retrying later");
            } else {
                tracing::warn!(%prefix, error = %std::io::Error::from_raw_os_error(errno), "kernel refused route; retrying later");
            }
        }
        self.retrying.insert(
            prefix,
            Retry {
                attempts,
                at: Instant::now() + Duration::from_millis(delay),
                errno,
            },
        );
    }

    fn intern(&mut self, hops: Vec<Hop>) -> HopSet {
        let hops = hops.into_boxed_slice();
        if let Some(a) = self.hop_sets.get(&hops) {
            return a.clone();
        }
        if self.hop_sets.len() >= 4096 {
            // Forget sets no route uses any more.
            self.hop_sets.retain(|a| Arc::strong_count(a) > 1);
        }
        let a: HopSet = Arc::new(hops);
        self.hop_sets.insert(a.clone());
        a
    }

    fn clear_retry(&mut self, prefix: &IpNet) {
        if self.retrying.is_empty() {
            return;
        }
        if let Some(r) = self.retrying.remove(prefix) {
            tracing::info!(%prefix, attempts = r.attempts, "route in line with the RIB after retry");
        }
    }

    /// Bring the kernel in line with `want` for the given prefixes (each at most once).
    ///
    /// Requests are serialized one window at a time and handed to the writer thread; while
    /// the kernel processes window N we build window N+1, then account for N's answers.
    /// Memory stays bounded however many routes change.
    async fn sync(&mut self, prefixes: Vec<IpNet>) -> Result<ApplyReport, KernelError> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_sync) {
            return Err(KernelError::Io(std::io::Error::other(
                "injected write failure",
            )));
        }
        let mut report = ApplyReport::default();
        let mut window = Window::new(self.seq);
        let mut meta: Vec<(IpNet, Purpose)> = Vec::with_capacity(self.window.min(prefixes.len()));
        let mut in_flight: Option<InFlight> = None;
        for p in prefixes {
            let Some(e) = self.entries.get(&p) else {
                continue;
            };
            match (&e.want, e.kernel()) {
                (None, None) if e.route().is_some() => {
                    // Waiting for its device to appear: retry_due owns it.
                }
                (None, None) => {
                    self.entries.remove(&p);
                    self.retrying.remove(&p);
                }
                (Some(w), Some(k)) if w.satisfied_by(k) && !e.verify => {
                    report.unchanged += 1;
                    self.clear_retry(&p);
                }
                (Some(w), None) => {
                    window.push(
                        RouteNetlinkMessage::NewRoute(self.new_msg(p, w)),
                        NLM_F_CREATE | NLM_F_EXCL,
                    );
                    meta.push((p, Purpose::Add));
                }
                (Some(w), Some(k)) if w.metric == k.metric => {
                    window.push(
                        RouteNetlinkMessage::NewRoute(self.new_msg(p, w)),
                        NLM_F_CREATE | NLM_F_REPLACE,
                    );
                    meta.push((p, Purpose::Replace));
                }
                (Some(w), Some(_)) => {
                    // Metric change: a new key. Add the new route first (make before break);
                    // ours at the old metric is deleted once the add succeeded.
                    window.push(
                        RouteNetlinkMessage::NewRoute(self.new_msg(p, w)),
                        NLM_F_CREATE | NLM_F_EXCL,
                    );
                    meta.push((p, Purpose::Add));
                }
                (None, Some(k)) => {
                    window.push(RouteNetlinkMessage::DelRoute(self.del_msg(p, k.metric)), 0);
                    meta.push((p, Purpose::Delete));
                }
            }
            if window.len() >= self.window {
                self.seq = window.next_seq();
                let full = std::mem::replace(&mut window, Window::new(self.seq));
                let rx = self.writer.submit(full);
                let batch = std::mem::replace(&mut meta, Vec::with_capacity(self.window));
                if let Some((prev, prev_meta)) = in_flight.replace((rx, batch)) {
                    if !self
                        .settle((prev, prev_meta), &mut report, &mut in_flight)
                        .await?
                    {
                        return Ok(report);
                    }
                }
            }
        }
        if window.len() > 0 {
            self.seq = window.next_seq();
            let rx = self.writer.submit(window);
            if let Some((prev, prev_meta)) = in_flight.replace((rx, meta)) {
                if !self
                    .settle((prev, prev_meta), &mut report, &mut in_flight)
                    .await?
                {
                    return Ok(report);
                }
            }
        }
        if let Some((last, last_meta)) = in_flight.take() {
            if !self
                .settle((last, last_meta), &mut report, &mut None)
                .await?
            {
                return Ok(report);
            }
        }
        report.deleted += self.delete_orphans().await?;
        Ok(report)
    }

    /// Account for the answers of one window. Returns false when the acknowledgements
    /// overran and a full resync (which covers every pending change) ran instead; any other
    /// window still in flight is awaited first.
    async fn settle(
        &mut self,
        (rx, meta): InFlight,
        report: &mut ApplyReport,
        other: &mut Option<InFlight>,
    ) -> Result<bool, KernelError> {
        let answer = rx.await.unwrap_or(Err(KernelError::Closed));
        let results = match answer {
            Ok(r) => r,
            Err(e) => {
                if let Some((o, _)) = other.take() {
                    let _ = o.await;
                }
                if !matches!(e, KernelError::Overrun) {
                    return Err(e);
                }
                tracing::warn!("netlink acknowledgements overran; re-reading our routes");
                let r = Box::pin(self.resync()).await?;
                *report += r;
                return Ok(false);
            }
        };
        for ((p, purpose), errno) in meta.into_iter().zip(results) {
            let Some(e) = self.entries.get_mut(&p) else {
                continue;
            };
            match (purpose, errno) {
                (Purpose::Add, 0) | (Purpose::Replace, 0) => {
                    match purpose {
                        Purpose::Add => report.added += 1,
                        _ => report.replaced += 1,
                    }
                    let old_metric = e.kernel().map(|k| k.metric);
                    e.kernel_done();
                    e.verify = false;
                    if let (Some(old), Some(new)) = (old_metric, e.kernel().map(|k| k.metric)) {
                        if old != new {
                            self.orphans.push((p, old));
                        }
                    }
                    self.clear_retry(&p);
                }
                (Purpose::Delete, 0) | (Purpose::Delete, libc::ESRCH) => {
                    if errno == 0 {
                        report.deleted += 1;
                    }
                    self.entries.remove(&p);
                    self.retrying.remove(&p);
                }
                (_, errno) => {
                    report.failed += 1;
                    self.schedule_retry(p, errno);
                }
            }
        }
        Ok(true)
    }

    /// Delete our routes left at an old metric after a metric change. Failures stay queued
    /// for the next `retry_due`.
    async fn delete_orphans(&mut self) -> Result<usize, KernelError> {
        let mut deleted = 0;
        while !self.orphans.is_empty() {
            let take = self.orphans.len().min(self.window);
            let batch: Vec<(IpNet, u32)> = self.orphans.drain(..take).collect();
            let mut window = Window::new(self.seq);
            for (p, m) in &batch {
                window.push(RouteNetlinkMessage::DelRoute(self.del_msg(*p, *m)), 0);
            }
            self.seq = window.next_seq();
            let res = self
                .writer
                .submit(window)
                .await
                .unwrap_or(Err(KernelError::Closed))?;
            let mut failed = Vec::new();
            for ((p, m), errno) in batch.into_iter().zip(res) {
                match errno {
                    0 => deleted += 1,
                    libc::ESRCH => {}
                    _ => {
                        tracing::warn!(prefix = %p, metric = m, error = %std::io::Error::from_raw_os_error(errno), "could not delete our route at its old metric; retrying later");
                        failed.push((p, m));
                    }
                }
            }
            if !failed.is_empty() {
                // Keep them for retry_due; do not spin on them now.
                self.orphans.extend(failed);
                break;
            }
        }
        Ok(deleted)
    }

    /// Turn a RIB route into its kernel form.
    fn resolve(&mut self, r: &FibRoute) -> Result<Form, KernelError> {
        let metric = self.cfg.metric_for(r.local_pref);
        let mut hops = Vec::new();
        match &r.action {
            FibAction::Blackhole => {
                return Ok(Form {
                    metric,
                    blackhole: true,
                    hops: self.intern(hops),
                })
            }
            FibAction::Forward(nhs) => {
                for nh in nhs {
                    let hop = match plain_v6_hop_of_v4_prefix(r.prefix, nh) {
                        Some(h) => h,
                        None => self.resolve_hop(nh)?,
                    };
                    hops.push(hop);
                }
            }
        }
        if hops.is_empty() {
            return Err(KernelError::NoNextHop(r.prefix));
        }
        hops.sort();
        hops.dedup();
        Ok(Form {
            metric,
            blackhole: false,
            hops: self.intern(hops),
        })
    }

    /// The form of one of our routes as dumped from the kernel (next hops interned: a
    /// restart may adopt a million routes).
    fn form_of_kernel(&mut self, r: &KernelRoute) -> Form {
        let mut hops: Vec<Hop> = r
            .nexthops
            .iter()
            .filter_map(|nh| {
                nh.gateway.map(|gateway| Hop {
                    gateway,
                    ifindex: nh.ifindex,
                    onlink: nh.onlink,
                })
            })
            .collect();
        hops.sort();
        Form {
            metric: r.metric,
            blackhole: r.kind == RouteKind::Blackhole,
            hops: self.intern(hops),
        }
    }

    fn ifindex_of(&self, name: &str) -> Result<u32, KernelError> {
        self.links
            .values()
            .find(|l| l.name == name)
            .map(|l| l.index)
            .ok_or_else(|| KernelError::UnknownInterface(name.to_string()))
    }

    fn resolve_hop(&self, nh: &FibNextHop) -> Result<Hop, KernelError> {
        let direct = |dev: Option<&str>| -> Result<Hop, KernelError> {
            Ok(Hop {
                gateway: nh.gateway,
                ifindex: match dev {
                    Some(d) => self.ifindex_of(d)?,
                    None => 0,
                },
                onlink: false,
            })
        };
        let tunnel = || -> Result<Hop, KernelError> {
            Ok(Hop {
                gateway: nh.gateway,
                ifindex: self.ifindex_of(&self.cfg.tunnel_device)?,
                onlink: true,
            })
        };
        match nh.mode {
            NextHopMode::Direct => direct(nh.device.as_deref()),
            NextHopMode::Tunnel => tunnel(),
            NextHopMode::CrossSubnet => match self.local_subnet_of(nh.gateway) {
                Some(ifindex) => Ok(Hop {
                    gateway: nh.gateway,
                    ifindex,
                    onlink: false,
                }),
                None => tunnel(),
            },
        }
    }

    /// The interface whose connected subnet contains `ip` (longest match), ignoring host
    /// addresses (/32, /128) and the tunnel device itself.
    fn local_subnet_of(&self, ip: IpAddr) -> Option<u32> {
        let tunnel = self.ifindex_of(&self.cfg.tunnel_device).ok();
        self.subnets
            .keys()
            .filter(|(i, net)| {
                Some(*i) != tunnel
                    && net.prefix_len() < net.max_prefix_len()
                    && net.trunc().contains(&ip)
            })
            .max_by_key(|(_, net)| net.prefix_len())
            .map(|(i, _)| *i)
    }

    fn header(&self, prefix: IpNet) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = match prefix {
            IpNet::V4(_) => AddressFamily::Inet,
            IpNet::V6(_) => AddressFamily::Inet6,
        };
        m.header.destination_prefix_length = prefix.prefix_len();
        m.header.table = u8::try_from(self.cfg.table)
            .ok()
            .filter(|t| *t != 0)
            .unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        m.header.protocol = RouteProtocol::from(self.cfg.protocol);
        m.attributes
            .push(RouteAttribute::Destination(addr_attr(prefix.network())));
        m.attributes.push(RouteAttribute::Table(self.cfg.table));
        m
    }

    fn new_msg(&self, prefix: IpNet, f: &Form) -> RouteMessage {
        let mut m = self.header(prefix);
        m.header.scope = RouteScope::Universe;
        m.attributes.push(RouteAttribute::Priority(f.metric));
        if f.blackhole {
            m.header.kind = RouteType::BlackHole;
            return m;
        }
        m.header.kind = RouteType::Unicast;
        match &f.hops[..] {
            [one] => {
                m.attributes.push(gateway_attr(prefix, one.gateway));
                if one.ifindex != 0 {
                    m.attributes.push(RouteAttribute::Oif(one.ifindex));
                }
                if one.onlink {
                    m.header.flags |= RouteFlags::Onlink;
                }
            }
            many => {
                let hops = many
                    .iter()
                    .map(|h| {
                        let mut nh = RouteNextHop::default();
                        nh.interface_index = h.ifindex;
                        if h.onlink {
                            nh.flags |= RouteNextHopFlags::Onlink;
                        }
                        nh.attributes.push(gateway_attr(prefix, h.gateway));
                        nh
                    })
                    .collect();
                m.attributes.push(RouteAttribute::MultiPath(hops));
            }
        }
        m
    }

    fn del_msg(&self, prefix: IpNet, metric: u32) -> RouteMessage {
        let mut m = self.header(prefix);
        // Match any scope and type; protocol and metric select our route only.
        m.header.scope = RouteScope::NoWhere;
        m.header.kind = RouteType::Unspec;
        m.attributes.push(RouteAttribute::Priority(metric));
        m
    }

    async fn refresh_links(&mut self) -> Result<(), KernelError> {
        let msgs = self
            .sock
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
            .await?;
        self.links = msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => link_from_msg(l),
                _ => None,
            })
            .map(|l| (l.index, l))
            .collect();
        Ok(())
    }

    async fn refresh_addresses(&mut self) -> Result<(), KernelError> {
        let msgs = self
            .sock
            .dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))
            .await?;
        self.subnets = msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => address_from_msg(a, &self.links),
                _ => None,
            })
            .map(|a| ((a.ifindex, a.address), ()))
            .collect();
        Ok(())
    }

    /// Our routes in our table, both families (the kernel filters by table and protocol
    /// thanks to strict checking; we filter again in case an old kernel ignored it).
    async fn dump_ours(&mut self) -> Result<Vec<KernelRoute>, KernelError> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut req = RouteMessage::default();
            req.header.address_family = family;
            req.header.protocol = RouteProtocol::from(self.cfg.protocol);
            req.header.table = u8::try_from(self.cfg.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
            req.attributes.push(RouteAttribute::Table(self.cfg.table));
            for m in self.sock.dump(RouteNetlinkMessage::GetRoute(req)).await? {
                if let RouteNetlinkMessage::NewRoute(rm) = m {
                    if let Some(r) = route_from_msg(&rm, &self.links) {
                        if r.protocol == self.cfg.protocol && r.table == self.cfg.table {
                            out.push(r);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// RFC 8950: an IPv6 next hop of an IPv4 prefix is installed as a plain `via inet6 NH`
/// (`RTA_VIA`), whatever the tunnel mode says: the tunnel forms (IPIP, cross-subnet) are
/// IPv4 encapsulations of IPv4 next hops and cannot reach an IPv6 address. `None`: resolve
/// the next hop by its mode.
fn plain_v6_hop_of_v4_prefix(prefix: IpNet, nh: &FibNextHop) -> Option<Hop> {
    (matches!(prefix, IpNet::V4(_)) && nh.gateway.is_ipv6() && nh.mode != NextHopMode::Direct)
        .then_some(Hop {
            gateway: nh.gateway,
            ifindex: 0,
            onlink: false,
        })
}

/// Whether a route's kernel form depends on links or addresses (so it must be kept to be
/// resolved again on retry).
fn needs_reresolve(r: &FibRoute) -> bool {
    match &r.action {
        FibAction::Blackhole => false,
        FibAction::Forward(hops) => hops
            .iter()
            .any(|h| h.mode != NextHopMode::Direct || h.device.is_some()),
    }
}

fn addr_attr(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

/// `RTA_GATEWAY` for a same-family next hop, `RTA_VIA` for an IPv6 next hop of an IPv4 route
/// (RFC 8950).
fn gateway_attr(prefix: IpNet, gw: IpAddr) -> RouteAttribute {
    match (prefix, gw) {
        (IpNet::V4(_), IpAddr::V6(v6)) => RouteAttribute::Via(RouteVia::Inet6(v6)),
        (_, gw) => RouteAttribute::Gateway(addr_attr(gw)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(gw: &str, ifindex: u32, onlink: bool) -> Hop {
        Hop {
            gateway: gw.parse().unwrap(),
            ifindex,
            onlink,
        }
    }

    #[test]
    fn v6_next_hop_of_v4_prefix_is_never_tunnelled() {
        let nh = |gw: &str, mode| FibNextHop {
            gateway: gw.parse().unwrap(),
            mode,
            device: None,
        };
        let v4: IpNet = "10.77.0.0/24".parse().unwrap();
        let v6: IpNet = "2001:db8:77::/48".parse().unwrap();
        let plain = Some(Hop {
            gateway: "2001:db8::1".parse().unwrap(),
            ifindex: 0,
            onlink: false,
        });
        for mode in [NextHopMode::Tunnel, NextHopMode::CrossSubnet] {
            assert_eq!(
                plain_v6_hop_of_v4_prefix(v4, &nh("2001:db8::1", mode)),
                plain
            );
            // IPv4 next hops, and IPv6 prefixes (an IPv6 tunnel device), keep their mode.
            assert_eq!(plain_v6_hop_of_v4_prefix(v4, &nh("192.0.2.1", mode)), None);
            assert_eq!(
                plain_v6_hop_of_v4_prefix(v6, &nh("2001:db8::1", mode)),
                None
            );
        }
        // Direct is resolved as usual (it may name a device).
        let direct = nh("2001:db8::1", NextHopMode::Direct);
        assert_eq!(plain_v6_hop_of_v4_prefix(v4, &direct), None);
    }

    #[test]
    fn per_route_state_stays_small() {
        // One Entry per installed route: a million routes cost 2^21 map slots of
        // (IpNet, Entry). Keep the sizes the docs state.
        assert_eq!(std::mem::size_of::<Form>(), 16);
        assert_eq!(std::mem::size_of::<Option<Form>>(), 16);
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        assert_eq!(std::mem::size_of::<(IpNet, Entry)>(), 56);
    }

    #[test]
    fn entry_keeps_rare_parts_only_while_needed() {
        let form = |metric| Form {
            metric,
            blackhole: true,
            hops: Arc::new(Box::new([])),
        };
        let mut e = Entry::absent();
        e.set_want(Some(form(10)));
        assert!(e.extra.is_none());
        e.kernel_done();
        assert_eq!(e.kernel(), Some(&form(10)));
        // A new want: the old kernel form is kept aside until acknowledged.
        e.set_want(Some(form(20)));
        assert_eq!(e.kernel(), Some(&form(10)));
        assert!(e.extra.is_some());
        e.kernel_done();
        assert_eq!(e.kernel(), Some(&form(20)));
        assert!(e.extra.is_none());
        // The route kept for re-resolution comes and goes on its own.
        let r = FibRoute {
            prefix: "10.0.0.0/24".parse().unwrap(),
            action: FibAction::Blackhole,
            local_pref: None,
        };
        e.set_route(Some(r.clone()));
        assert_eq!(e.route(), Some(&r));
        e.set_route(None);
        assert!(e.route().is_none() && e.extra.is_none());
    }

    #[test]
    fn form_comparison_accepts_kernel_chosen_device() {
        let want = Form {
            metric: 10,
            blackhole: false,
            hops: Arc::new(Box::new([hop("10.0.0.2", 0, false)])),
        };
        let have = Form {
            metric: 10,
            blackhole: false,
            hops: Arc::new(Box::new([hop("10.0.0.2", 3, false)])),
        };
        assert!(want.satisfied_by(&have));
        assert!(!have.satisfied_by(&Form {
            hops: Arc::new(Box::new([hop("10.0.0.2", 4, false)])),
            ..have.clone()
        }));
        let mut onlink = have.clone();
        onlink.hops = Arc::new(Box::new([hop("10.0.0.2", 3, true)]));
        assert!(!want.satisfied_by(&onlink));
        let mut other_metric = have.clone();
        other_metric.metric = 11;
        assert!(!want.satisfied_by(&other_metric));
    }

    #[test]
    fn gateway_attr_uses_via_for_v6_nexthop_of_v4_prefix() {
        let p: IpNet = "10.0.0.0/24".parse().unwrap();
        assert!(matches!(
            gateway_attr(p, "fe80::1".parse().unwrap()),
            RouteAttribute::Via(_)
        ));
        assert!(matches!(
            gateway_attr(p, "10.1.1.1".parse().unwrap()),
            RouteAttribute::Gateway(_)
        ));
    }
}
