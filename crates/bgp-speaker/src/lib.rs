//! Embeddable tokio BGP speaker.
//!
//! This crate turns the sans-IO pieces — the session state machine of `bgp-proto` and the
//! RIB of `bgp-rib` — into a running speaker: one task per peer session over TCP, one task
//! owning the RIB, and the listeners. It opens no other socket and watches no file: `bgpd`
//! is a binary over it that adds the control socket, the BIRD-compatible status socket
//! and the configuration watcher; other agents embed it through [`Speaker`].
//!
//! ```text
//!  listeners ──accept──▶ peer task (Session over TcpStream) ──RibInput──▶ RIB task (Rib)
//!                            ▲                                   │
//!                            └──────── encoded UPDATEs ──────────┤
//!                                                                ├──▶ RouteChange broadcast
//!                                                                └──▶ FIB channel (kernel)
//! ```
//!
//! All channels are bounded: a peer that sends faster than the RIB processes is slowed by
//! TCP flow control (the peers→RIB channel is bounded by the memory its messages hold, with
//! a share per peer: `rib_input`); a peer that reads slowly makes the RIB hold its updates
//! (merged per prefix) instead of queueing them.
//!
//! The API: [`Speaker`] (start, peers and routes, queries, a stream of best-path changes),
//! its configuration in [`config`] (a TOML file or [`config::Config::builder`]) and its
//! read models ([`Peer`], [`Route`], [`Status`]). Modules: [`config`] (schema, validation,
//! builder, diff), [`net`] (socket options: TCP-MD5 for sockets of the embedder's own;
//! GTSM and TTL are the speaker's), fib/ (the kernel FIB component started for a
//! `[kernel]` section: kernel routes into the RIB, best routes into the kernel; next-hop
//! resolution through the kernel's routes comes with it, nexthop.rs),
//! health.rs (components that can fail on their own and heal, [`ComponentState`]), bfd/
//! (the BFD task: per-peer BFD sessions that close a BGP session when its path fails,
//! [`BfdSession`]). A panic
//! anywhere is fatal in bgpd ([`abort_on_panic`]); docs/security.md gathers the limits and
//! failure handling.

#![warn(missing_docs)]

mod bfd;
pub mod config;
mod fatal;
mod fib;
mod health;
mod log_limit;
mod monitor;
pub mod net;
mod nexthop;
mod peer;
mod rib_input;
mod rib_task;
mod routes;
mod speaker;

#[cfg(test)]
mod tests;

pub use bfd::BfdSession;
pub use fatal::abort_on_panic;
pub use health::ComponentState;
pub use monitor::TableDumpSummary;
pub use rib_task::{chain_policy, BestRoute, FamilyCount, PrefixCounts, RouteChange};
pub use routes::{DecisionStep, FamilyFilter, Route, RouteCursor, RouteQuery, Table};
pub use speaker::{
    Owner, Peer, PeerAction, PeerCounters, PeerState, SelectionDeferral, Speaker, SpeakerError,
    SpeakerOptions, Status,
};

/// The kernel FIB's state as [`Speaker::fib`] reports it.
pub use bgp_kernel::{FibCounters, FibState, Installed, Refused};
/// A peer's NOTIFICATIONs by code and subcode ([`Peer::notifications`]).
pub use bgp_node::NotificationCount;
/// Re-exported so embedders name states, families and the path attributes of [`Route`]
/// without depending on `bgp-proto`.
pub use bgp_proto::session::{Negotiated, State as SessionState};
pub use bgp_proto::{AsPath, AsSegment, Community, Family, LargeCommunity, Origin, SegmentType};
pub use bgp_rib::policy::RouteSource;
