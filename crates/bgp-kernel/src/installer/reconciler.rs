//! The installer's decisions, without I/O: what we want in the kernel against what it holds,
//! and the route writes that close the gap.
//!
//! [`Reconciler`] is shaped like quinn-proto's `Connection`: input arrives through `apply`
//! (the RIB's changes) and `handle_*` (the kernel's answers, dumps, links, the clock), and
//! what must happen next is read with `poll_*`: route requests to send
//! ([`Reconciler::poll_transmit`]), whether to dump our routes ([`Reconciler::poll_dump`])
//! or re-read the links ([`Reconciler::poll_links`]), and when to call back
//! ([`Reconciler::poll_retry_at`]). Time is always a parameter. After any input the caller
//! drains the polls. The netlink executor ([`crate::KernelInstaller`]) moves the bytes; tests
//! drive the same value against a model kernel, without root.
//!
//! Rules it follows (see the module docs of `installer` for the why):
//! - one request in flight per prefix; a change that arrives meanwhile is sent once the
//!   answer came, so any order of changes and answers ends with the kernel as wanted;
//! - a refused request is retried with exponential backoff (`backoff.rs`); an `EEXIST`
//!   (another protocol's route at our key) is logged once per episode;
//! - a metric change adds the new route before deleting the old one (make before break);
//! - when the outcome of requests is unknown (the channel failed, acknowledgements
//!   overran), nothing more is written until our routes are dumped again
//!   ([`Reconciler::handle_dump`]); then every entry is reconciled. After a channel failure
//!   this recovery is itself retried with backoff until it succeeds;
//! - the first dump adopts our routes from a previous run as stale; they keep forwarding
//!   until refreshed by the RIB or swept ([`Reconciler::sweep_stale`], RFC 4724 §4.2).

use std::collections::hash_map::Entry as MapEntry;
use std::collections::VecDeque;
use std::time::Instant;

use ipnet::IpNet;
use rustc_hash::{FxHashMap, FxHashSet};

use super::backoff::{self, OrphanRetry, Recovery, Retry};
use super::entry::Entry;
use super::fib::{ApplyReport, FibOp, FibRoute};
use super::form::{needs_reresolve, Resolver, RouteForm};
use super::in_flight::InFlight;
use super::in_flight::RequestId;
use super::state::FibCounters;
use crate::config::ExportConfig;
use crate::convert::LinkTable;
use crate::types::{Address, Errno, KernelEvent, KernelRoute, Link};

/// A route write for the executor to encode and send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRequest {
    /// Answer with this id ([`Reconciler::handle_ack`] / [`Reconciler::handle_error`]).
    pub id: RequestId,
    /// Destination, in our table with our protocol (`ExportConfig`).
    pub prefix: IpNet,
    /// What to do.
    pub op: RouteOp,
}

/// The three route writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOp {
    /// Create the route; the kernel refuses (`EEXIST`) if any route, of any protocol,
    /// holds its key (table, prefix, metric): `NLM_F_CREATE | NLM_F_EXCL`.
    Add(RouteForm),
    /// Replace our route at its key in place, without a gap in forwarding (or create it
    /// if it vanished): `NLM_F_CREATE | NLM_F_REPLACE`. Only sent for a key we own.
    Replace(RouteForm),
    /// Delete our route at this metric (the protocol is given too, so the kernel never
    /// matches another protocol's route).
    Delete {
        /// `RTA_PRIORITY` of the route to delete.
        metric: u32,
    },
}

/// What a request in flight was (to account for its answer).
#[derive(Debug)]
struct Request {
    prefix: IpNet,
    sent: Sent,
    /// The request also answers a suspected removal (`Entry::verify`, restored if it fails).
    verify: bool,
}

#[derive(Debug)]
enum Sent {
    Write {
        form: RouteForm,
        replace: bool,
    },
    Delete,
    /// Our route left at an old metric after a metric change.
    DeleteOrphan {
        metric: u32,
    },
}

/// Desired-versus-kernel state of our routes. See the module docs.
#[derive(Debug)]
pub struct Reconciler {
    cfg: ExportConfig,
    resolver: Resolver,
    entries: FxHashMap<IpNet, Entry>,
    retrying: FxHashMap<IpNet, Retry>,
    /// Prefixes to look at, each with `Entry::queued` set (a prefix found without it is a
    /// leftover of an entry removed meanwhile and is skipped).
    queue: VecDeque<IpNet>,
    /// Routes that need a link we do not know: resolved again when links are re-read
    /// (with whether a failure then counts in the report).
    awaiting_links: FxHashMap<IpNet, (FibRoute, bool)>,
    links_wanted: bool,
    /// Our routes left at a metric we no longer use: deleted after the queue.
    orphans: VecDeque<(IpNet, u32)>,
    /// Orphan deletes the kernel refused, waiting for `orphan_retry`.
    orphans_refused: Vec<(IpNet, u32)>,
    orphan_retry: OrphanRetry,
    /// Requests handed out and not answered yet.
    in_flight: InFlight<Request>,
    /// Our routes must be dumped before anything more is written.
    dump_wanted: bool,
    /// The next dump is the first: adopt what it shows as stale.
    adopting: bool,
    recovery: Option<Recovery>,
    report: ApplyReport,
    /// Refusals and retries since the start (state.rs).
    counters: FibCounters,
}

impl Reconciler {
    /// A reconciler that knows nothing of the kernel yet: its first wish is a dump of our
    /// routes ([`Reconciler::poll_dump`]), which it adopts as stale.
    pub fn new(cfg: ExportConfig) -> Self {
        Reconciler {
            cfg,
            resolver: Resolver::default(),
            entries: FxHashMap::default(),
            retrying: FxHashMap::default(),
            queue: VecDeque::new(),
            awaiting_links: FxHashMap::default(),
            links_wanted: false,
            orphans: VecDeque::new(),
            orphans_refused: Vec::new(),
            orphan_retry: OrphanRetry::default(),
            in_flight: InFlight::default(),
            dump_wanted: true,
            adopting: true,
            recovery: None,
            report: ApplyReport::default(),
            counters: FibCounters::default(),
        }
    }

    // ----- getters -----

    /// The configuration in use.
    pub fn config(&self) -> &ExportConfig {
        &self.cfg
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

    /// Requests handed out and not answered yet.
    pub fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether `prefix` is currently installed by us (as far as we know).
    pub fn is_installed(&self, prefix: &IpNet) -> bool {
        self.entries
            .get(&prefix.trunc())
            .is_some_and(|e| e.kernel().is_some())
    }

    /// Our route for `prefix` as the kernel holds it (as far as we know).
    pub fn kernel_form(&self, prefix: &IpNet) -> Option<&RouteForm> {
        self.entries.get(&prefix.trunc()).and_then(Entry::kernel)
    }

    /// Whether a failure left the kernel's state unknown and the reconciliation has not
    /// succeeded yet (the reason, for status reports).
    pub fn is_recovering(&self) -> Option<&str> {
        self.recovery.as_ref().map(|r| r.reason.as_str())
    }

    /// The links as last read or observed (to name devices in dumped routes).
    pub(crate) fn links(&self) -> &LinkTable {
        self.resolver.links()
    }

    /// Our routes and what we know of them.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&IpNet, &Entry)> {
        self.entries.iter()
    }

    /// The routes waiting for a retry.
    pub(crate) fn retrying(&self) -> impl Iterator<Item = (&IpNet, &Retry)> {
        self.retrying.iter()
    }

    /// Refusals and retries since the start.
    pub fn fib_counters(&self) -> &FibCounters {
        &self.counters
    }

    /// The counts of what happened since the last call.
    pub fn take_report(&mut self) -> ApplyReport {
        std::mem::take(&mut self.report)
    }

    // ----- input from the RIB -----

    /// Take a batch of changes from the RIB. Routes that cannot be resolved yet (an
    /// unknown device) wait for the links to be re-read ([`Reconciler::poll_links`]).
    pub fn apply(&mut self, ops: impl IntoIterator<Item = FibOp>) {
        let mut touched = Vec::new();
        for op in ops {
            match op {
                FibOp::Install(mut r) => {
                    r.prefix = r.prefix.trunc();
                    let p = r.prefix;
                    self.awaiting_links.remove(&p);
                    let form = self.resolver.resolve(&self.cfg, &r);
                    let e = self.entries.entry(p).or_insert_with(Entry::absent);
                    e.stale = false;
                    let keep = needs_reresolve(&r);
                    e.unresolved = form.is_err();
                    match form {
                        Ok(f) => {
                            e.set_route(keep.then_some(r));
                            e.set_want(Some(f));
                            if mark_queued(e) {
                                touched.push(p);
                            }
                        }
                        Err(_) => {
                            // Keep what is in the kernel until the route resolves (an earlier
                            // change of this batch is not written: the RIB moved past it).
                            e.set_route(keep.then(|| r.clone()));
                            e.keep_kernel();
                            self.awaiting_links.insert(p, (r, true));
                            self.links_wanted = true;
                        }
                    }
                }
                FibOp::Withdraw(p) => {
                    let p = p.trunc();
                    self.awaiting_links.remove(&p);
                    if let Some(e) = self.entries.get_mut(&p) {
                        e.set_want(None);
                        e.set_route(None);
                        e.stale = false;
                        e.unresolved = false;
                        if mark_queued(e) {
                            touched.push(p);
                        }
                    }
                }
            }
        }
        // Hash order: inserting consecutive prefixes makes the kernel's LC-trie resize the
        // same nodes over and over (measured with `ip -batch`, 300k /24s: 2.4 s of system
        // time in address order, 2.0 s shuffled).
        let touched: FxHashSet<IpNet> = touched.into_iter().collect();
        self.queue.extend(touched);
    }

    /// Keep a stale route (the RIB still has it; content unchanged).
    pub fn mark_refreshed(&mut self, prefix: &IpNet) {
        if let Some(e) = self.entries.get_mut(&prefix.trunc()) {
            e.stale = false;
        }
    }

    /// Graceful restart finished (RFC 4724 §4.2: End-of-RIB from every peer, or the
    /// restart timer ended): delete every route still stale.
    pub fn sweep_stale(&mut self) {
        let stale: Vec<IpNet> = self
            .entries
            .iter_mut()
            .filter(|(_, e)| e.stale)
            .filter_map(|(p, e)| {
                e.stale = false;
                e.set_want(None);
                mark_queued(e).then_some(*p)
            })
            .collect();
        if !stale.is_empty() {
            tracing::info!(routes = stale.len(), "sweeping stale kernel routes");
        }
        self.queue.extend(stale);
    }

    /// Delete every route we own (`on_exit = flush`).
    pub fn flush(&mut self) {
        self.awaiting_links.clear();
        let all: Vec<IpNet> = self
            .entries
            .iter_mut()
            .filter_map(|(p, e)| {
                e.set_want(None);
                e.set_route(None);
                e.stale = false;
                e.unresolved = false;
                mark_queued(e).then_some(*p)
            })
            .collect();
        self.queue.extend(all);
    }

    /// Re-read our routes and reconcile them (after an outside change is suspected).
    pub fn request_dump(&mut self) {
        self.dump_wanted = true;
    }

    // ----- input from the kernel -----

    /// The link table, as dumped (answers [`Reconciler::poll_links`]). Routes waiting for
    /// a device are resolved again; those that still fail wait for a retry.
    pub fn handle_links(&mut self, links: impl IntoIterator<Item = Link>, now: Instant) {
        self.resolver.set_links(links);
        self.links_wanted = false;
        let waiting: Vec<(IpNet, (FibRoute, bool))> = self.awaiting_links.drain().collect();
        for (p, (r, counts)) in waiting {
            let form = self.resolver.resolve(&self.cfg, &r);
            let Some(e) = self.entries.get_mut(&p) else {
                continue;
            };
            match form {
                Ok(f) => {
                    e.unresolved = false;
                    e.set_want(Some(f));
                    if mark_queued(e) {
                        self.queue.push_back(p);
                    }
                }
                Err(_) => {
                    if counts {
                        self.report.failed += 1;
                    }
                    self.schedule_retry(p, libc::ENODEV, now);
                }
            }
        }
    }

    /// The connected subnets, as dumped (for the cross-subnet decision).
    pub fn handle_addresses(&mut self, addrs: impl IntoIterator<Item = Address>) {
        self.resolver.set_addresses(addrs);
    }

    /// An event of the watcher: links and addresses keep resolution current; a removal of
    /// one of our routes we did not ask for queues it for a rewrite.
    pub fn handle_event(&mut self, ev: &KernelEvent, now: Instant) {
        self.resolver.observe(ev);
        let KernelEvent::OwnRouteRemoved(r) = ev else {
            return;
        };
        if r.table != self.cfg.table || r.protocol != self.cfg.protocol {
            return;
        }
        let Some(e) = self.entries.get_mut(&r.prefix) else {
            return; // we deleted it ourselves
        };
        // Ours as we know it, or maybe (a write for it is in flight: the removal may come
        // before or after it).
        let ours_now = e.kernel().is_some_and(|k| k.metric() == r.metric) || e.in_flight;
        if !ours_now {
            return;
        }
        // Not our doing (our deletes remove the entry or move the metric first), or an old
        // notification of a delete we followed by a re-add: either way a replace makes the
        // kernel right without racing our own route. Remembered even while we want the
        // route gone, in case the RIB wants it back before our delete is done.
        e.verify = true;
        if e.want.is_some() {
            if let MapEntry::Vacant(v) = self.retrying.entry(r.prefix) {
                tracing::info!(prefix = %r.prefix, "our kernel route was removed; reinstalling");
                v.insert(Retry {
                    attempts: 0,
                    at: Some(now),
                    errno: 0,
                });
            }
        }
    }

    /// What the kernel holds of our protocol in our table (answers
    /// [`Reconciler::poll_dump`]). The first dump adopts the routes as stale; later ones
    /// replace what we believed and queue every entry for reconciliation. Two routes of ours
    /// for one prefix (a metric change cut short): the one we want (else the preferred,
    /// lowest metric) is kept, the other deleted.
    pub fn handle_dump(&mut self, routes: impl IntoIterator<Item = KernelRoute>) {
        self.dump_wanted = false;
        self.drop_in_flight();
        self.orphans.clear();
        self.orphans_refused.clear();
        self.orphan_retry = OrphanRetry::default();
        let adopting = std::mem::take(&mut self.adopting);
        if !adopting {
            // The dump is the truth: suspicions of removals are answered by it.
            for e in self.entries.values_mut() {
                e.set_kernel(None);
                e.verify = false;
            }
        }
        for r in routes {
            if r.protocol != self.cfg.protocol || r.table != self.cfg.table {
                continue;
            }
            let p = r.prefix.trunc();
            let form = self.resolver.form_of_kernel(&r);
            let e = match self.entries.entry(p) {
                MapEntry::Vacant(v) => {
                    if adopting {
                        v.insert(Entry::adopted(form));
                    } else {
                        v.insert(Entry::absent()).set_kernel(Some(form));
                    }
                    continue;
                }
                MapEntry::Occupied(o) => o.into_mut(),
            };
            let Some(k) = e.kernel() else {
                e.set_kernel(Some(form));
                continue;
            };
            let wanted = (!adopting)
                .then(|| e.want.as_ref().map(RouteForm::metric))
                .flatten();
            let prefer_new = match wanted {
                Some(m) if k.metric() == m => false,
                Some(m) if form.metric() == m => true,
                _ => form.metric() < k.metric(),
            };
            let (keep, drop) = if prefer_new {
                let old = k.metric();
                (form, old)
            } else {
                (k.clone(), form.metric())
            };
            if adopting {
                *e = Entry::adopted(keep);
            } else {
                e.set_kernel(Some(keep));
            }
            self.orphans.push_back((p, drop));
        }
        if adopting {
            if !self.entries.is_empty() {
                tracing::info!(
                    routes = self.entries.len(),
                    "adopted routes from a previous run as stale"
                );
            }
            return;
        }
        let all: Vec<IpNet> = self
            .entries
            .iter_mut()
            .filter_map(|(p, e)| mark_queued(e).then_some(*p))
            .collect();
        self.queue.extend(all);
    }

    /// The kernel accepted request `id`.
    pub fn handle_ack(&mut self, id: RequestId, now: Instant) {
        self.handle_result(id, 0, now);
    }

    /// The kernel refused request `id` with `errno` (positive). A delete answered with
    /// `ESRCH` found nothing to delete, which is what it wanted.
    pub fn handle_error(&mut self, id: RequestId, errno: i32, now: Instant) {
        self.handle_result(id, errno.saturating_abs(), now);
    }

    /// The answer to request `id` was lost (the acknowledgements overran): what the kernel
    /// holds must be read again before anything more is written.
    pub fn handle_lost(&mut self, id: RequestId) {
        if let Some(f) = self.in_flight.take(id) {
            self.release(f.prefix, &f.sent);
            self.dump_wanted = true;
        }
    }

    /// The netlink channel failed: every request in flight has an unknown outcome. Nothing
    /// more is written until a recovery dump, right away the first time (at the next
    /// [`Reconciler::handle_timeout`]), then with backoff while it keeps failing.
    pub fn handle_channel_error(&mut self, reason: String, now: Instant) {
        self.drop_in_flight();
        self.dump_wanted = false;
        match &mut self.recovery {
            None => {
                tracing::error!(error = %reason, "kernel FIB write failed: re-reading our routes to reconcile them");
                self.recovery = Some(Recovery::start(reason, now));
            }
            Some(r) if r.at.is_none() => r.failed_again(&self.cfg, reason, now),
            Some(_) => {} // already waiting for its turn
        }
    }

    /// The clock: start what is due (route retries, orphan deletes, the recovery dump).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(r) = &mut self.recovery {
            if r.at.is_some_and(|at| at <= now) {
                r.at = None;
                self.dump_wanted = true;
            }
        }
        if self.orphan_retry.at.is_some_and(|at| at <= now) {
            self.orphan_retry.at = None;
            self.orphans.extend(self.orphans_refused.drain(..));
        }
        let due: Vec<IpNet> = self
            .retrying
            .iter_mut()
            .filter(|(_, r)| r.at.is_some_and(|at| at <= now))
            .map(|(p, r)| {
                r.at = None;
                *p
            })
            .collect();
        for p in due {
            let Some(e) = self.entries.get_mut(&p) else {
                self.retrying.remove(&p);
                continue;
            };
            // Re-resolve: the device or subnet may exist now.
            if let Some(r) = e.route().cloned() {
                match self.resolver.resolve(&self.cfg, &r) {
                    Ok(f) => {
                        e.unresolved = false;
                        e.set_want(Some(f));
                    }
                    Err(_) => {
                        self.awaiting_links.entry(p).or_insert((r, false));
                        self.links_wanted = true;
                        continue;
                    }
                }
            }
            self.counters.retried += 1;
            if mark_queued(e) {
                self.queue.push_back(p);
            }
        }
    }

    // ----- output -----

    /// The next route write, or `None` when there is nothing to send now (all done, or
    /// waiting for a dump, answers or the clock).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<RouteRequest> {
        if self.dump_wanted || self.recovery.as_ref().is_some_and(|r| r.at.is_some()) {
            return None;
        }
        while let Some(p) = self.queue.pop_front() {
            if let Some(req) = self.decide(p, now) {
                return Some(req);
            }
        }
        if self.queue.capacity() > 4096 {
            self.queue = VecDeque::new(); // give a big batch's memory back
        }
        while let Some((p, metric)) = self.orphans.pop_front() {
            match self.entries.get(&p) {
                // The key is the entry's own route now (the metric changed back): not ours
                // to delete.
                Some(e) if e.kernel().is_some_and(|k| k.metric() == metric) => continue,
                // A write for the prefix is under way: do not race it; try later.
                Some(e) if e.in_flight => {
                    self.orphans_refused.push((p, metric));
                    if self.orphan_retry.at.is_none() {
                        self.orphan_retry.at = Some(now);
                    }
                    continue;
                }
                _ => {}
            }
            let id = self.push_in_flight(p, Sent::DeleteOrphan { metric }, false);
            return Some(RouteRequest {
                id,
                prefix: p,
                op: RouteOp::Delete { metric },
            });
        }
        self.maybe_recovered();
        None
    }

    /// Whether our routes must be dumped now (answer with [`Reconciler::handle_dump`]).
    /// Only once no request is in flight, so the dump shows every write.
    pub fn poll_dump(&self) -> bool {
        self.dump_wanted && self.in_flight.len() == 0
    }

    /// Whether the links must be re-read (a route names a device we do not know; answer
    /// with [`Reconciler::handle_links`]).
    pub fn poll_links(&self) -> bool {
        self.links_wanted
    }

    /// When [`Reconciler::handle_timeout`] has something to do: the earliest route retry,
    /// orphan retry or recovery.
    pub fn poll_retry_at(&self) -> Option<Instant> {
        let retry = self.retrying.values().filter_map(|r| r.at).min();
        let recover = self.recovery.as_ref().and_then(|r| r.at);
        let orphans = self
            .orphan_retry
            .at
            .filter(|_| !self.orphans_refused.is_empty());
        [retry, recover, orphans].into_iter().flatten().min()
    }

    // ----- internals -----

    /// Look at one queued prefix: a request to send, or `None` after settling it locally.
    fn decide(&mut self, p: IpNet, now: Instant) -> Option<RouteRequest> {
        let e = self.entries.get_mut(&p)?;
        if !e.queued {
            return None; // a leftover of an entry removed and created again
        }
        e.queued = false;
        if e.in_flight {
            e.queued = true; // looked at again when the answer comes
            return None;
        }
        let (op, sent) = match (&e.want, e.kernel()) {
            (None, None) if e.route().is_some() => {
                // Waiting for its device: its retry owns it.
                if self.retrying.get(&p).is_some_and(|r| r.at.is_none())
                    && !self.awaiting_links.contains_key(&p)
                {
                    self.schedule_retry(p, libc::ENODEV, now);
                }
                return None;
            }
            (None, None) => {
                self.entries.remove(&p);
                self.retrying.remove(&p);
                return None;
            }
            (Some(w), Some(k)) if w.satisfied_by(k) && !e.verify => {
                self.report.unchanged += 1;
                self.clear_retry(&p);
                return None;
            }
            (Some(w), Some(k)) if w.metric() == k.metric() => (
                RouteOp::Replace(w.clone()),
                Sent::Write {
                    form: w.clone(),
                    replace: true,
                },
            ),
            // A new key (no route yet, or a metric change: the new route is added first and
            // ours at the old metric deleted once that succeeded).
            (Some(w), _) => (
                RouteOp::Add(w.clone()),
                Sent::Write {
                    form: w.clone(),
                    replace: false,
                },
            ),
            (None, Some(k)) => (RouteOp::Delete { metric: k.metric() }, Sent::Delete),
        };
        // A removal reported from now on may postdate this write: it sets `verify` again.
        let verify = std::mem::take(&mut e.verify);
        e.in_flight = true;
        let id = self.push_in_flight(p, sent, verify);
        Some(RouteRequest { id, prefix: p, op })
    }

    fn handle_result(&mut self, id: RequestId, errno: Errno, now: Instant) {
        let Some(f) = self.in_flight.take(id) else {
            return; // unknown, or superseded by a dump
        };
        let p = f.prefix;
        let written = match f.sent {
            Sent::DeleteOrphan { metric } => return self.orphan_answered(p, metric, errno, now),
            Sent::Write { form, replace } => Some((form, replace)),
            Sent::Delete => None,
        };
        // One lookup per answer (a million of them in a full-table install): decide with
        // the entry borrowed, act on the other tables after.
        let Some(e) = self.entries.get_mut(&p) else {
            return;
        };
        e.in_flight = false;
        // A change that arrived meanwhile was marked, not queued.
        let mut look_again = e.queued;
        let (mut orphan, mut done, mut remove, mut refused) = (None, false, false, false);
        match (written, errno) {
            (Some((form, replace)), 0) => {
                if replace {
                    self.report.replaced += 1;
                } else {
                    self.report.added += 1;
                }
                let old_metric = e.kernel().map(RouteForm::metric);
                orphan = old_metric.filter(|m| *m != form.metric());
                e.set_kernel(Some(form));
                // Behind: the RIB changed meanwhile, or a removal reported meanwhile may have
                // come after this write.
                if e.want.as_ref() != e.kernel() || e.verify {
                    look_again = true;
                } else {
                    // In line, unless waiting for a device (that retry stays).
                    done = !e.unresolved;
                }
            }
            (None, 0 | libc::ESRCH) => {
                if errno == 0 {
                    self.report.deleted += 1;
                }
                e.set_kernel(None);
                if e.is_void() {
                    remove = true;
                } else if e.want.is_some() {
                    look_again = true;
                }
            }
            _ => {
                if f.verify {
                    e.verify = true;
                }
                self.report.failed += 1;
                self.counters.count_refusal(errno);
                refused = true;
            }
        }
        if remove {
            self.entries.remove(&p);
            self.retrying.remove(&p);
            return;
        }
        if look_again {
            e.queued = true;
            self.queue.push_back(p);
        }
        if let Some(m) = orphan {
            self.orphans.push_back((p, m));
        }
        if done && !self.retrying.is_empty() {
            if let Some(r) = self.retrying.remove(&p) {
                tracing::info!(prefix = %p, attempts = r.attempts, "route in line with the RIB after retry");
            }
        }
        if refused {
            self.schedule_retry(p, errno, now);
        }
    }

    fn orphan_answered(&mut self, p: IpNet, metric: u32, errno: Errno, now: Instant) {
        match errno {
            0 | libc::ESRCH => {
                if errno == 0 {
                    self.report.deleted += 1;
                }
                if self.orphans_refused.is_empty() {
                    self.orphan_retry = OrphanRetry::default();
                }
            }
            _ => {
                self.counters.count_refusal(errno);
                tracing::warn!(prefix = %p, metric, error = %std::io::Error::from_raw_os_error(errno), "could not delete our route at its old metric; retrying later");
                self.orphans_refused.push((p, metric));
                self.orphan_retry.failed(&self.cfg, now);
            }
        }
    }

    fn schedule_retry(&mut self, prefix: IpNet, errno: Errno, now: Instant) {
        if !self.entries.contains_key(&prefix) {
            return;
        }
        let prev = self.retrying.get(&prefix).copied();
        let attempts = prev.map_or(0, |r| r.attempts).saturating_add(1);
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
                at: Some(now + backoff::delay(&self.cfg, attempts - 1)),
                errno,
            },
        );
    }

    /// The entry is in line with what we want: its retry (if any) is done, unless it is
    /// the one that resolves a route waiting for its device.
    fn clear_retry(&mut self, prefix: &IpNet) {
        if self.retrying.is_empty() || self.entries.get(prefix).is_some_and(|e| e.unresolved) {
            return;
        }
        if let Some(r) = self.retrying.remove(prefix) {
            tracing::info!(%prefix, attempts = r.attempts, "route in line with the RIB after retry");
        }
    }

    fn push_in_flight(&mut self, prefix: IpNet, sent: Sent, verify: bool) -> RequestId {
        self.in_flight.push(Request {
            prefix,
            sent,
            verify,
        })
    }

    /// The request for `p` is no longer in flight: a change that arrived meanwhile goes
    /// back in the queue.
    fn release(&mut self, p: IpNet, sent: &Sent) {
        if matches!(sent, Sent::DeleteOrphan { .. }) {
            return;
        }
        if let Some(e) = self.entries.get_mut(&p) {
            e.in_flight = false;
            if e.queued {
                self.queue.push_back(p);
            }
        }
    }

    /// Forget every request in flight (their outcome is unknown or superseded).
    fn drop_in_flight(&mut self) {
        for f in self.in_flight.drain() {
            self.release(f.prefix, &f.sent);
        }
    }

    fn maybe_recovered(&mut self) {
        let done = self.recovery.as_ref().is_some_and(|r| r.at.is_none())
            && !self.dump_wanted
            && self.in_flight.len() == 0;
        if done {
            if let Some(old) = self.recovery.take() {
                tracing::info!(
                    after_attempts = old.attempts + 1,
                    "kernel FIB reconciled after a failure"
                );
            }
        }
    }
}

/// Marks `e` for a look; true when it must be put in the queue (it was not marked, and no
/// request for it is in flight: the answer puts it back then).
fn mark_queued(e: &mut Entry) -> bool {
    if e.queued {
        return false;
    }
    e.queued = true;
    !e.in_flight
}
