//! RIB → kernel: install, replace and delete routes with our own protocol number.
//!
//! Two parts, in the manner of quinn-proto and quinn: the [`Reconciler`] holds what we want
//! and what the kernel holds and decides every write, without I/O (reconciler.rs); the
//! [`KernelInstaller`] is the netlink executor that moves its requests and the kernel's
//! answers (executor.rs). Around them: route forms and their resolution from links and
//! subnets (form.rs), the per-prefix state (entry.rs), retry timing (backoff.rs) and the
//! netlink encoding (encode.rs).
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
//!   ([`crate::KernelEvent::OwnRouteRemoved`]); [`KernelInstaller::observe`] queues it for an
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
//! # After a failure
//! A failed window (the writer's socket broke, an acknowledgement timed out, the writer
//! thread died) leaves the routes of that window in an unknown state. The reconciler then
//! writes nothing more until it has read our routes again; at the next
//! [`KernelInstaller::retry_due`] (right away the first time, then with exponential backoff
//! while it keeps failing) the executor opens a fresh writer socket, dumps our routes and
//! every entry whose kernel form is not the wanted one is rewritten. The wanted state is kept
//! per entry, so the FIB converges to the RIB's view whatever failed in between.
//!
//! # IPv6 next hops of IPv4 prefixes (RFC 8950)
//! Installed as `via inet6 NH` (`RTA_VIA`), always in the plain form: the tunnel and
//! cross-subnet forms are IPv4 encapsulations and do not apply. Kernels before 5.2 refuse
//! `RTA_VIA` (`EINVAL`); such a route is logged once and retried with the usual backoff.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

mod backoff;
mod encode;
mod entry;
mod executor;
mod form;
mod in_flight;
mod reconciler;

#[cfg(test)]
mod netns_tests;
#[cfg(test)]
mod tests;

pub use executor::KernelInstaller;
pub use form::{ResolvedHop, RouteForm};
pub use reconciler::{Reconciler, RequestId, RouteOp, RouteRequest};

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
