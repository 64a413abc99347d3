//! Kernel FIB over rtnetlink: import the routes Felix programs, install the routes learned
//! over BGP.
//!
//! Two independent halves, glued to the RIB by the daemon:
//! - [`KernelWatcher`] (kernel → RIB): an initial dump of links, addresses and routes, then
//!   rtnetlink multicast notifications; routes are filtered by [`ImportConfig`] (protocol
//!   numbers, route types, table, prefix lengths, interface globs) and reported as
//!   [`KernelEvent`]s, together with link and address changes for connected routes, next-hop
//!   resolution and the cross-subnet decision.
//! - [`KernelInstaller`] (RIB → kernel): batched, pipelined route writes with our own protocol
//!   number, never touching other protocols' routes, with start-up adoption of our old routes
//!   as stale and a sweep after graceful restart.
//!
//! Each half is a thin netlink executor around a state without I/O that makes every
//! decision, in the manner of quinn-proto: the installer drives a [`Reconciler`] (what we
//! want against what the kernel holds; `apply`, `handle_*`, `poll_transmit`,
//! `poll_retry_at`), the watcher an import state (selection, ownership of route keys,
//! re-reads, reconnection backoff). Both are tested without root, the reconciler against a
//! model kernel with a property test that any history of changes and failures converges.
//!
//! The crate has its own small types (built on `ipnet`) and does not depend on the RIB.
//!
//! # Module layout
//!
//! | file | what | I/O |
//! | --- | --- | --- |
//! | `config.rs` | [`KernelConfig`]: what to import, how to export | none |
//! | `types.rs` | the plain types both halves share ([`KernelRoute`], [`KernelEvent`], ...) | none |
//! | `convert.rs` | rtnetlink messages into those types (total: `None` for what we cannot read) | none |
//! | `nlsock.rs` | `NETLINK_ROUTE` sockets: dumps, and the writer thread for windows of route writes | netlink |
//! | `installer/fib.rs` | what the RIB hands over ([`FibOp`], [`FibRoute`]) and [`ApplyReport`] | none |
//! | `installer/reconciler.rs` | [`Reconciler`]: wanted against held, every write decided | none |
//! | `installer/entry.rs`, `form.rs`, `in_flight.rs`, `backoff.rs` | per-prefix state, route forms and their resolution, requests awaiting an answer, retry timing | none |
//! | `installer/encode.rs` | a [`RouteRequest`] as an `RTM_NEWROUTE` / `RTM_DELROUTE` message | none |
//! | `installer/executor.rs` | [`KernelInstaller`]: reads, sends and answers for the reconciler | netlink |
//! | `installer/tests/` | the reconciler against a model kernel: scenarios and a property test | none |
//! | `watcher/state.rs` | the import state: selection, ownership of route keys, re-reads | none |
//! | `watcher/reconnect.rs` | reconnection backoff | none |
//! | `watcher/mod.rs` | [`KernelWatcher`]: subscriptions, dumps, notifications into the state | netlink |
//!
//! Tests that need the kernel (root, in network namespaces they create) are
//! `installer/netns_tests.rs`, the watcher's reconnection test and `tests/`.
//!
//! # The reconciler alone
//!
//! The installer's decisions, driven by hand as its executor does (and as tests do, without
//! root): the first dump of our routes, a blackhole from the RIB, the write it asks for and
//! the kernel's acknowledgement.
//!
//! ```
//! use std::time::Instant;
//! use bgp_kernel::{ExportConfig, FibAction, FibOp, FibRoute, Reconciler, RouteOp};
//!
//! let now = Instant::now();
//! let mut reconciler = Reconciler::new(ExportConfig::default());
//! assert!(reconciler.poll_dump(), "first, what the kernel holds of ours");
//! reconciler.handle_dump([]); // nothing from an earlier run
//!
//! let block = "10.244.7.0/26".parse().unwrap();
//! reconciler.apply([FibOp::Install(FibRoute { prefix: block, action: FibAction::Blackhole, local_pref: None })]);
//! let request = reconciler.poll_transmit(now).expect("one route write");
//! assert_eq!(request.prefix, block);
//! assert!(matches!(request.op, RouteOp::Add(_)));
//! assert!(reconciler.poll_transmit(now).is_none(), "one request in flight per prefix");
//!
//! reconciler.handle_ack(request.id, now);
//! assert!(reconciler.is_installed(&block));
//! ```
//!
//! # Gluing it to a daemon
//!
//! One task owns both halves: it feeds every watcher event to the installer (links and
//! addresses for device and cross-subnet resolution, removals of our own routes for
//! self-healing), turns selected kernel routes into RIB routes, hands best-path changes to
//! the installer in batches, and runs the installer's retries when they are due.
//!
//! ```no_run
//! use bgp_kernel::*;
//!
//! # async fn daemon(cfg: KernelConfig) -> Result<(), KernelError> {
//! let mut watcher = KernelWatcher::spawn(cfg.import_config())?;
//! let mut installer = KernelInstaller::open(cfg.export.clone()).await?;
//! let mut graceful_restart_done = false;
//! loop {
//!     let retry_at = installer.next_retry_at();
//!     tokio::select! {
//!         ev = watcher.next() => {
//!             let Some(ev) = ev else { break };
//!             installer.observe(&ev);
//!             match ev {
//!                 KernelEvent::RouteAdded(r) => { /* RIB: originate r.prefix (ifname, metric, protocol) */ }
//!                 KernelEvent::RouteRemoved(r) => { /* RIB: withdraw r.prefix */ }
//!                 _ => {}
//!             }
//!         }
//!         _ = async {
//!             match retry_at {
//!                 Some(t) => tokio::time::sleep_until(t.into()).await,
//!                 None => std::future::pending().await,
//!             }
//!         } => {
//!             installer.retry_due().await?;
//!         }
//!     }
//!     // On Loc-RIB changes: installer.apply(ops).await?, with
//!     // FibOp::Install(FibRoute { prefix, action: FibAction::Forward(hops), local_pref })
//!     // or FibOp::Withdraw(prefix).
//!     if graceful_restart_done {
//!         installer.sweep_stale().await?;
//!         graceful_restart_done = false;
//!     }
//! }
//! installer.shutdown().await?; // persist or flush, per `on_exit`
//! # Ok(())
//! # }
//! ```

mod config;
mod convert;
mod installer;
mod nlsock;
mod types;
mod watcher;

pub use config::{
    glob_match, ExitAction, ExportConfig, ImportConfig, InterfaceFilter, KernelConfig,
    MetricMapping, PrefixLenRange, RTPROT_BIRD, RT_TABLE_MAIN,
};
pub use installer::{
    errno_name, ApplyReport, FibAction, FibCounters, FibNextHop, FibOp, FibRoute, FibState,
    Installed, KernelInstaller, NextHopMode, Reconciler, Refused, RequestId, ResolvedHop,
    RouteForm, RouteOp, RouteRequest,
};
pub use types::{Address, KernelEvent, KernelNextHop, KernelRoute, Link, RouteKind};
pub use watcher::KernelWatcher;

/// Errors of the kernel FIB layer. Refusals of individual routes are not errors (they are
/// counted and retried); these are failures of the netlink channel itself, or bad input.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// Socket-level failure.
    #[error("netlink I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Failure reported by the rtnetlink crate (dumps of the watcher).
    #[error("rtnetlink: {0}")]
    Rtnetlink(String),
    /// The kernel sent something we could not decode.
    #[error("malformed netlink message: {0}")]
    Decode(String),
    /// The socket's receive buffer overran: messages were lost and state must be re-read.
    #[error("netlink receive buffer overrun")]
    Overrun,
    /// A configured or requested device does not exist.
    #[error("unknown interface {0:?}")]
    UnknownInterface(String),
    /// A forward route without next hops.
    #[error("route {0} has no next hop")]
    NoNextHop(ipnet::IpNet),
    /// The consumer of the events went away.
    #[error("event receiver closed")]
    Closed,
}

impl From<rtnetlink::Error> for KernelError {
    fn from(e: rtnetlink::Error) -> Self {
        KernelError::Rtnetlink(e.to_string())
    }
}
