//! RIB → kernel: best-path changes merged per prefix and applied with the installer.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use bgp_kernel::{ApplyReport, FibAction, FibOp, KernelError, KernelEvent};
use bgp_rib::FibChange;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info};

use super::{fib_op, FibBatch, KernelFib, FLUSH_SLICE};
use crate::health::{Health, KERNEL_FIB};

/// A route to install as the pending map keeps it (the prefix is the key); shared between
/// the prefixes that have the same (most routes of a table share a few next-hop sets).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Install {
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
pub(super) struct Pending {
    pub(super) v4: HashMap<Ipv4Net, Option<Arc<Install>>>,
    pub(super) v6: HashMap<Ipv6Net, Option<Arc<Install>>>,
    /// Interned install forms; those no pending change uses are dropped when the set
    /// doubled, and all when nothing is pending.
    pub(super) forms: HashSet<Arc<Install>>,
    /// Size of `forms` after its last clean-up.
    pub(super) forms_kept: usize,
}

/// Pending maps with more room than this are freed once empty rather than kept for reuse.
pub(super) const PENDING_KEEP: usize = 4096;

impl Pending {
    pub(super) fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub(super) fn merge(&mut self, batch: Vec<FibChange>) {
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

    pub(super) fn intern(&mut self, i: Install) -> Arc<Install> {
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
    pub(super) fn take(&mut self, max: usize) -> Vec<FibOp> {
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
pub(super) fn take_from<K>(
    map: &mut HashMap<K, Option<Arc<Install>>>,
    max: usize,
    ops: &mut Vec<FibOp>,
) where
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
/// the RIB task finds room for its changes however long the kernel takes. The end of
/// recovery, if it comes meanwhile, is noted in `recovery_done`.
pub(super) async fn drive<T>(
    fut: impl Future<Output = T>,
    changes: &mut mpsc::Receiver<FibBatch>,
    open: &mut bool,
    pending: &mut Pending,
    recovery_done: &mut bool,
) -> T {
    let mut fut = pin!(fut);
    loop {
        tokio::select! {
            biased;
            v = &mut fut => return v,
            b = changes.recv(), if *open => match b {
                Some(b) => {
                    *recovery_done |= b.recovery_done;
                    pending.merge(b.changes);
                }
                None => *open = false,
            },
        }
    }
}

pub(super) struct ExportTask<K> {
    pub(super) fib: K,
    /// Questions about the FIB's state (`bgpctl show fib`, metrics).
    pub(super) queries: mpsc::Receiver<super::FibQuery>,
    pub(super) changes: mpsc::Receiver<FibBatch>,
    pub(super) changes_open: bool,
    pub(super) observe: mpsc::UnboundedReceiver<KernelEvent>,
    pub(super) pending: Pending,
    /// Routes a previous run left are kept until the RIB says recovery is over.
    pub(super) recovering: bool,
    /// Where the writer's health is reported.
    pub(super) health: Health,
}

pub(super) fn log_report(what: &str, r: Result<ApplyReport, KernelError>) {
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
    /// Logs the outcome of a kernel operation and updates the writer's health: down from
    /// a failure until the installer reconciled the kernel again.
    fn report(&self, what: &str, r: Result<ApplyReport, KernelError>) {
        match (&r, self.fib.recovering()) {
            (Err(e), _) => self.health.down(KERNEL_FIB, e.to_string()),
            (Ok(_), Some(why)) => self.health.down(KERNEL_FIB, why),
            (Ok(_), None) => self.health.up(KERNEL_FIB),
        }
        log_report(what, r);
    }

    /// Answers a question about the FIB's state.
    fn answer(&self, (routes, reply): super::FibQuery) {
        let _ = reply.send(self.fib.fib_state(routes));
    }

    pub(super) async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        self.health.up(KERNEL_FIB);
        let stale = self.fib.stale_count();
        if stale > 0 {
            info!(
                stale,
                "kernel routes of a previous run adopted; kept until every peer sent End-of-RIB"
            );
        }
        let mut recovery_done = false;
        loop {
            // Between batches, however busy: a question waits one batch at most.
            while let Ok(q) = self.queries.try_recv() {
                self.answer(q);
            }
            if recovery_done {
                recovery_done = false;
                self.end_recovery().await;
                continue;
            }
            if !self.pending.is_empty() {
                self.flush(&mut recovery_done).await;
                continue;
            }
            let retry_at = self.fib.next_retry_at();
            tokio::select! {
                biased;
                _ = &mut stop => break,
                b = self.changes.recv(), if self.changes_open => match b {
                    Some(b) => {
                        recovery_done |= b.recovery_done;
                        self.pending.merge(b.changes);
                    }
                    None => self.changes_open = false,
                },
                Some(ev) = self.observe.recv() => self.fib.observe(&ev),
                Some(q) = self.queries.recv() => self.answer(q),
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
                        &mut recovery_done,
                    )
                    .await;
                    self.report("retry", r);
                }
            }
        }
        match self.fib.shutdown().await {
            Ok(r) => info!(deleted = r.deleted, "kernel FIB stopped"),
            Err(e) => error!(error = %e, "kernel FIB shutdown"),
        }
    }

    /// Applies what is pending, at most [`FLUSH_SLICE`] changes, the observations that
    /// arrived first. The rest (and what arrives meanwhile) waits for the next call.
    pub(super) async fn flush(&mut self, recovery_done: &mut bool) {
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
            recovery_done,
        )
        .await;
        debug!(ops = n, "kernel FIB batch");
        self.report("apply", r);
    }

    /// Graceful-restart recovery is over (the RIB said so, with everything it learned
    /// before): install what is pending, then remove what nobody announced again.
    pub(super) async fn end_recovery(&mut self) {
        if !std::mem::take(&mut self.recovering) {
            return;
        }
        // What arrives meanwhile is after the end of recovery: nothing to note.
        let mut after = false;
        while !self.pending.is_empty() {
            self.flush(&mut after).await;
        }
        let r = drive(
            self.fib.sweep_stale(),
            &mut self.changes,
            &mut self.changes_open,
            &mut self.pending,
            &mut after,
        )
        .await;
        match &r {
            Ok(r) => info!(
                deleted = r.deleted,
                "graceful restart recovery finished: stale kernel routes removed"
            ),
            // The installer reconciles (and so deletes them) at its next retry.
            Err(e) => error!(error = %e, "removing stale kernel routes"),
        }
        self.report("sweep", r);
    }
}
