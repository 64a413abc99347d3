//! RIB → kernel: install, replace and delete routes with our own protocol number.
//!
//! Two parts, in the manner of quinn-proto and quinn: the [`Reconciler`] holds what we want
//! and what the kernel holds and decides every write, without I/O (reconciler.rs); the
//! [`KernelInstaller`] is the netlink executor that moves its requests and the kernel's
//! answers (executor.rs). Around them: what the RIB hands over (fib.rs), route forms and
//! their resolution from links and subnets (form.rs), the per-prefix state (entry.rs), the
//! requests in flight (in_flight.rs), retry timing (backoff.rs) and the netlink encoding
//! (encode.rs).
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

mod backoff;
mod encode;
mod entry;
mod executor;
mod fib;
mod form;
mod in_flight;
mod reconciler;
mod state;

#[cfg(test)]
mod netns_tests;
#[cfg(test)]
mod tests;

pub use executor::KernelInstaller;
pub use fib::{ApplyReport, FibAction, FibNextHop, FibOp, FibRoute, NextHopMode};
pub use form::{ResolvedHop, RouteForm};
pub use in_flight::RequestId;
pub use reconciler::{Reconciler, RouteOp, RouteRequest};
pub use state::{errno_name, FibCounters, FibState, Installed, Refused};
