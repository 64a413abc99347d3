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
//! read models ([`Peer`], [`Route`], [`Status`]) and the operator's event stream ([`Events`]:
//! peer state changes, routes received, best-path changes). Modules: [`config`] (schema, validation,
//! builder, diff), [`net`] (socket options: TCP-MD5 for sockets of the embedder's own;
//! GTSM and TTL are the speaker's), fib/ (the kernel FIB component started for a
//! `[kernel]` section: kernel routes into the RIB, best routes into the kernel; next-hop
//! resolution through the kernel's routes comes with it, nexthop.rs),
//! health.rs (components that can fail on their own and heal, [`ComponentState`]), bfd/
//! (the BFD task: per-peer BFD sessions that close a BGP session when its path fails,
//! [`BfdSession`]). A panic
//! anywhere is fatal in bgpd ([`abort_on_panic`]); docs/security.md gathers the limits and
//! failure handling.
//!
//! Two speakers in one process on loopback addresses: one originates a prefix, the other
//! learns it over iBGP and sees the best-path change.
//!
//! ```
//! use std::time::Duration;
//! use bgp_speaker::config::policy::Verdict;
//! use bgp_speaker::config::{Config, Originate, PeerConfig, PolicyDef};
//! use bgp_speaker::{RouteChange, Speaker, SpeakerOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let port = 11194;
//! let node = |host: u8, peer_host: u8| -> Result<Config, Box<dyn std::error::Error>> {
//!     let mut peer = PeerConfig::new(format!("node{peer_host}"), format!("127.0.24.{peer_host}").parse()?, 64512);
//!     peer.port = port;
//!     peer.source_address = Some(format!("127.0.24.{host}").parse()?);
//!     peer.passive = host == 2; // one side connects
//!     peer.import = vec!["all".into()];
//!     peer.export = vec!["all".into()];
//!     Ok(Config::builder(64512, format!("10.24.0.{host}").parse()?)
//!         .listen([format!("127.0.24.{host}:{port}").parse()?])
//!         .policy("all", PolicyDef::all(Verdict::Accept))
//!         .peer(peer)
//!         .build()?)
//! };
//! let a = Speaker::start(node(1, 2)?, SpeakerOptions::default()).await?;
//! let b = Speaker::start(node(2, 1)?, SpeakerOptions::default()).await?;
//! let mut changes = b.subscribe();
//!
//! let block = "10.244.3.0/26".parse()?;
//! a.advertise(Originate::new(block)).await?;
//! let learned = tokio::time::timeout(Duration::from_secs(60), async {
//!     loop {
//!         match changes.recv().await {
//!             Ok(RouteChange::Best(route)) if route.prefix == block => return Some(route),
//!             Ok(_) => {}
//!             Err(_) => return None,
//!         }
//!     }
//! })
//! .await?
//! .expect("the route reaches b");
//! assert_eq!(learned.next_hops, ["127.0.24.1".parse::<std::net::IpAddr>()?]);
//!
//! a.shutdown("example done").await;
//! b.shutdown("example done").await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod bfd;
pub mod config;
mod events;
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
pub use events::{connect_failure, EventError, Events, SpeakerEvent};
pub use fatal::abort_on_panic;
pub use health::ComponentState;
pub use monitor::TableDumpSummary;
pub use rib_task::{chain_policy, BestRoute, FamilyCount, PrefixCounts, RouteChange};
pub use routes::{
    CommunityFilter, DecisionStep, FamilyFilter, Route, RouteCursor, RouteQuery, Table,
};
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
pub use bgp_proto::{
    Aggregator, AsPath, AsSegment, Community, ExtendedCommunity, Family, LargeCommunity, Origin,
    RawAttribute, SegmentType,
};
pub use bgp_rib::policy::RouteSource;
