//! The netlink side of the installer: [`KernelInstaller`] drives a [`Reconciler`] against
//! the kernel and does nothing else. It reads links, addresses and our routes when the
//! reconciler asks, encodes the route requests it hands out, sends them, and gives the
//! answers back; every decision is the reconciler's (reconciler.rs), so it is tested
//! without root.
//!
//! # Throughput
//! Writes go through a writer thread with its own socket (`crate::nlsock`): up to
//! `max_in_flight` requests are packed into 64 KiB datagrams before the acknowledgements are
//! collected, and the next window is serialized while the kernel processes the current one.
//! See docs/benchmarks.md, "Kernel FIB".
//!
//! # Failures
//! A broken channel (a socket error, an acknowledgement timeout, the writer thread gone) is
//! returned as an error after the reconciler was told ([`Reconciler::handle_channel_error`]);
//! the next [`KernelInstaller::retry_due`] opens a fresh writer socket, dumps our routes and
//! reconciles every entry, with backoff while that keeps failing. Overrun acknowledgements
//! are not an error: the reconciler asks for a dump and the same call reconciles.

use std::time::Instant;

use ipnet::IpNet;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use tokio::sync::oneshot;

use super::encode;
use super::fib::{ApplyReport, FibOp};
use super::in_flight::RequestId;
use super::reconciler::Reconciler;
use super::state::FibState;
use crate::config::{ExitAction, ExportConfig};
use crate::convert::{address_from_msg, link_from_msg, route_from_msg};
use crate::nlsock::{NlSocket, Window, Writer, ERR_TRUESIZE};
use crate::types::{Errno, KernelEvent, KernelRoute};
use crate::KernelError;

/// A window handed to the writer thread: its answer and the ids of its requests, in order.
struct Submitted {
    answer: oneshot::Receiver<Result<Vec<Errno>, KernelError>>,
    ids: Vec<RequestId>,
}

/// Installs routes into the kernel FIB. See the `installer` module docs for the rules it
/// follows.
pub struct KernelInstaller {
    state: Reconciler,
    /// Dumps (links, addresses, our routes).
    sock: NlSocket,
    /// Route writes, on a thread of their own; `None` after a failure until the next write.
    writer: Option<Writer>,
    /// Receive buffer asked for the writer's socket (to open a new one after a failure).
    writer_rcvbuf: usize,
    /// Requests per window (bounded by `max_in_flight` and the receive buffer).
    window: usize,
    /// Sequence number for the next window.
    seq: u32,
    /// Tests only: the next window fails before anything is written.
    #[cfg(test)]
    pub(super) fail_next_sync: bool,
}

impl KernelInstaller {
    /// Open the netlink socket, read links and addresses, and adopt the routes of our protocol
    /// in our table as stale. Must run inside a tokio runtime.
    pub async fn open(cfg: ExportConfig) -> Result<Self, KernelError> {
        let wanted = cfg
            .max_in_flight
            .max(1)
            .saturating_mul(ERR_TRUESIZE)
            .saturating_mul(2)
            .max(1 << 20);
        let sock = NlSocket::open(1 << 20)?;
        let writer = Writer::spawn(wanted)?;
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
            state: Reconciler::new(cfg),
            sock,
            writer: Some(writer),
            writer_rcvbuf: wanted,
            window,
            seq: 1,
            #[cfg(test)]
            fail_next_sync: false,
        };
        me.refresh_links().await?;
        me.refresh_addresses().await?;
        if me.state.poll_dump() {
            me.dump_ours().await?;
        }
        Ok(me)
    }

    /// The reconciliation state (what we want, what the kernel holds, what is pending).
    pub fn reconciler(&self) -> &Reconciler {
        &self.state
    }

    /// The configuration in use.
    pub fn config(&self) -> &ExportConfig {
        self.state.config()
    }

    /// The metric a route with this LOCAL_PREF gets.
    pub fn metric_for(&self, local_pref: Option<u32>) -> u32 {
        self.state.config().metric_for(local_pref)
    }

    /// Number of routes we hold in the kernel (or want to).
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// Whether we hold no routes.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// Routes adopted at start-up and not refreshed yet.
    pub fn stale_count(&self) -> usize {
        self.state.stale_count()
    }

    /// Routes waiting for a retry (conflicts or refusals).
    pub fn pending_count(&self) -> usize {
        self.state.pending_count()
    }

    /// What we installed, what the kernel refused and the retries pending (the list of
    /// installed routes only with `routes`).
    pub fn fib_state(&self, routes: bool) -> FibState {
        self.state.fib_state(Instant::now(), routes)
    }

    /// Whether `prefix` is currently installed by us.
    pub fn is_installed(&self, prefix: &IpNet) -> bool {
        self.state.is_installed(prefix)
    }

    /// Whether a failure left the kernel's state unknown and the reconciliation has not
    /// succeeded yet (the reason, for status reports).
    pub fn is_recovering(&self) -> Option<&str> {
        self.state.is_recovering()
    }

    /// Keep a stale route (the RIB still has it; content unchanged).
    pub fn mark_refreshed(&mut self, prefix: &IpNet) {
        self.state.mark_refreshed(prefix);
    }

    /// Keep link and address knowledge current from the watcher's events (the installer reads
    /// both at start-up; without these calls it re-reads links only when a device is unknown),
    /// and queue a rewrite of our routes someone else removed.
    pub fn observe(&mut self, ev: &KernelEvent) {
        self.state.handle_event(ev, Instant::now());
    }

    /// When the earliest pending retry (or the recovery after a failure) is due.
    pub fn next_retry_at(&self) -> Option<Instant> {
        self.state.poll_retry_at()
    }

    /// Apply a batch of changes. Returns an error only when the netlink socket failed (the
    /// changes are kept and the kernel is reconciled with them at the next
    /// [`KernelInstaller::retry_due`], see [`KernelInstaller::is_recovering`]); refused
    /// routes are counted in `failed` and retried later.
    pub async fn apply(
        &mut self,
        ops: impl IntoIterator<Item = FibOp>,
    ) -> Result<ApplyReport, KernelError> {
        self.state.take_report();
        self.state.apply(ops);
        self.run().await
    }

    /// Retry the routes whose retry time has come (conflicts, refusals, unresolvable
    /// devices), after reconciling the kernel with every route when a failure made its
    /// state unknown.
    pub async fn retry_due(&mut self) -> Result<ApplyReport, KernelError> {
        self.state.take_report();
        self.state.handle_timeout(Instant::now());
        self.run().await
    }

    /// Delete every route still stale (graceful restart finished: RFC 4724 §4.2, the
    /// receiving speaker removes the stale routes once End-of-RIB arrived or the timer ended).
    pub async fn sweep_stale(&mut self) -> Result<ApplyReport, KernelError> {
        self.state.take_report();
        self.state.sweep_stale();
        self.run().await
    }

    /// Re-read our routes from the kernel and reconcile (when the daemon suspects an outside
    /// change). Entries whose kernel state differs are rewritten.
    pub async fn resync(&mut self) -> Result<ApplyReport, KernelError> {
        self.state.take_report();
        self.state.request_dump();
        self.run().await
    }

    /// Stop: leave our routes in place (`on_exit = persist`) or delete them all (`flush`).
    /// Dropping the installer without calling this leaves the routes in place.
    pub async fn shutdown(mut self) -> Result<ApplyReport, KernelError> {
        match self.state.config().on_exit {
            ExitAction::Persist => Ok(ApplyReport::default()),
            ExitAction::Flush => {
                self.state.take_report();
                self.state.flush();
                self.run().await
            }
        }
    }

    // ----- the executor loop -----

    /// Drive the reconciler until it has nothing to send; its report, or the channel error
    /// (after telling the reconciler, which schedules the recovery).
    async fn run(&mut self) -> Result<ApplyReport, KernelError> {
        let mut in_flight = None;
        let r = self.drive(&mut in_flight).await;
        let report = self.state.take_report();
        match r {
            Ok(()) => Ok(report),
            Err(e) => {
                self.state
                    .handle_channel_error(e.to_string(), Instant::now());
                // Let the writer finish the other window before it is replaced.
                if let Some(s) = in_flight.take() {
                    let _ = s.answer.await;
                }
                self.writer = None;
                Err(e)
            }
        }
    }

    /// Windows of requests, pipelined: window N+1 is serialized and queued while the kernel
    /// processes window N, then N's answers are given back.
    async fn drive(&mut self, in_flight: &mut Option<Submitted>) -> Result<(), KernelError> {
        loop {
            if self.state.poll_links() {
                self.refresh_links().await?;
            }
            if self.state.poll_dump() {
                if let Some(s) = in_flight.take() {
                    self.settle(s).await?;
                    continue;
                }
                self.dump_ours().await?;
                continue;
            }
            let now = Instant::now();
            let mut window = Window::new(self.seq);
            let mut ids = Vec::new();
            while window.len() < self.window {
                let Some(req) = self.state.poll_transmit(now) else {
                    break;
                };
                let (msg, flags) = encode::request(self.state.config(), &req);
                window.push(msg, flags);
                ids.push(req.id);
            }
            if ids.is_empty() {
                match in_flight.take() {
                    Some(s) => {
                        self.settle(s).await?;
                        continue;
                    }
                    None => return Ok(()),
                }
            }
            self.seq = window.next_seq();
            let answer = self.submit(window)?;
            if let Some(prev) = in_flight.replace(Submitted { answer, ids }) {
                self.settle(prev).await?;
            }
        }
    }

    fn submit(
        &mut self,
        window: Window,
    ) -> Result<oneshot::Receiver<Result<Vec<Errno>, KernelError>>, KernelError> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_sync) {
            drop(window);
            let (tx, rx) = oneshot::channel();
            let _ = tx.send(Err(KernelError::Io(std::io::Error::other(
                "injected write failure",
            ))));
            return Ok(rx);
        }
        let writer = match &mut self.writer {
            Some(w) => w,
            None => self.writer.insert(Writer::spawn(self.writer_rcvbuf)?),
        };
        Ok(writer.submit(window))
    }

    /// Give one window's answers back to the reconciler.
    async fn settle(&mut self, s: Submitted) -> Result<(), KernelError> {
        let answer = s.answer.await.unwrap_or(Err(KernelError::Closed));
        let now = Instant::now();
        match answer {
            Ok(errnos) => {
                for (i, id) in s.ids.into_iter().enumerate() {
                    match errnos.get(i) {
                        Some(0) => self.state.handle_ack(id, now),
                        Some(&errno) => self.state.handle_error(id, errno, now),
                        None => self.state.handle_lost(id),
                    }
                }
                Ok(())
            }
            Err(KernelError::Overrun) => {
                tracing::warn!("netlink acknowledgements overran; re-reading our routes");
                for id in s.ids {
                    self.state.handle_lost(id);
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    // ----- reads -----

    async fn refresh_links(&mut self) -> Result<(), KernelError> {
        let msgs = self
            .sock
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
            .await?;
        let links: Vec<_> = msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => link_from_msg(l),
                _ => None,
            })
            .collect();
        self.state.handle_links(links, Instant::now());
        Ok(())
    }

    async fn refresh_addresses(&mut self) -> Result<(), KernelError> {
        let msgs = self
            .sock
            .dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))
            .await?;
        let links = self.state.links();
        let addrs: Vec<_> = msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => address_from_msg(a, links),
                _ => None,
            })
            .collect();
        self.state.handle_addresses(addrs);
        Ok(())
    }

    /// Dump our routes in our table, both families, and give them to the reconciler.
    async fn dump_ours(&mut self) -> Result<(), KernelError> {
        let routes = self.read_ours().await?;
        self.state.handle_dump(routes);
        Ok(())
    }

    /// Our routes in our table as the kernel holds them.
    pub(super) async fn read_ours(&mut self) -> Result<Vec<KernelRoute>, KernelError> {
        let cfg = self.state.config();
        let (protocol, table) = (cfg.protocol, cfg.table);
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let req = encode::dump_ours(self.state.config(), family);
            for m in self.sock.dump(req).await? {
                if let RouteNetlinkMessage::NewRoute(rm) = m {
                    if let Some(r) = route_from_msg(&rm, self.state.links()) {
                        if r.protocol == protocol && r.table == table {
                            out.push(r);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}
