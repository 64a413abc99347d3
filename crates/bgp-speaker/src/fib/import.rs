//! Kernel → RIB: the kernel routes the watcher selects become local routes of the RIB.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use bgp_kernel::{KernelEvent, KernelRoute};
use bgp_rib::policy::{KernelInfo, RouteSource};
use bgp_rib::LocalRoute;
use ipnet::IpNet;
use tokio::sync::mpsc;
use tracing::{debug, error, info};

use super::{now_or_never, KernelEvents, KernelInput, IMPORT_BATCH};
use crate::health::{Health, KERNEL_IMPORT};

/// A change of the RIB's kernel-learned local routes.
#[derive(Clone, Debug)]
pub(crate) enum LocalChange {
    /// Originate or replace the kernel route for its prefix.
    Originate(Box<LocalRoute>),
    /// No selected kernel route for the prefix any more.
    Withdraw(IpNet),
}

/// What the RIB's local route takes from a selected kernel route besides its prefix and
/// metric. Shared between the routes that have the same (a node has few distinct
/// interfaces and gateways and many routes).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct KernelAttrs {
    protocol: u8,
    gateway: Option<IpAddr>,
    ifname: Option<String>,
}

/// One selected kernel route as the import side keeps it: 16 bytes instead of a whole
/// [`KernelRoute`] (which owns its interface name and next-hop list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct KernelSlot {
    metric: u32,
    attrs: Arc<KernelAttrs>,
}

/// The RIB's local route for a selected kernel route.
pub(super) fn local_route(prefix: IpNet, r: &KernelSlot) -> LocalRoute {
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
pub(super) struct KernelRoutes {
    /// The preferred (lowest-metric) route of each prefix.
    pub(super) best: HashMap<IpNet, KernelSlot>,
    /// The other routes of prefixes that have several, sorted by metric.
    pub(super) others: HashMap<IpNet, Vec<KernelSlot>>,
    /// Interned attributes; those no route uses any more are dropped when the set doubled.
    pub(super) attrs: HashSet<Arc<KernelAttrs>>,
    /// Size of `attrs` after its last clean-up.
    pub(super) attrs_kept: usize,
}

impl KernelRoutes {
    pub(super) fn slot(&mut self, r: KernelRoute) -> KernelSlot {
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

    pub(super) fn added(&mut self, r: KernelRoute) -> Option<LocalChange> {
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

    pub(super) fn removed(&mut self, r: &KernelRoute) -> Option<LocalChange> {
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

    pub(super) fn len(&self) -> usize {
        self.best.len()
    }
}

/// Kernel → RIB.
pub(super) async fn import_task<E: KernelEvents>(
    mut events: E,
    rib: mpsc::Sender<KernelInput>,
    observe: mpsc::UnboundedSender<KernelEvent>,
    health: Health,
) {
    health.up(KERNEL_IMPORT);
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
                    health.up(KERNEL_IMPORT);
                }
                // The watcher reconnects and re-reads; until it is synced again, kernel
                // changes may be missing from the RIB.
                KernelEvent::Lost(reason) => health.down(KERNEL_IMPORT, reason),
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
            if rib.send(KernelInput::Local(batch)).await.is_err() {
                debug!("kernel import ended: the RIB has stopped");
                return;
            }
        }
    }
    // The watcher ended (the runtime is shutting down): what the RIB holds from the kernel
    // is no longer followed. Say so loudly; the installer keeps working.
    health.down(KERNEL_IMPORT, "kernel watcher stopped");
    error!("kernel watcher stopped: kernel route changes no longer reach the RIB");
}
