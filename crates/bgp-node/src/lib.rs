//! The node layer: one BGP speaker's peers and RIB as sans-IO state machines, shared by
//! the tokio speaker (`bgp-speaker`) and the simulator (`bgp-sim`).
//!
//! `bgp-proto` gives one session over one connection and `bgp-rib` the routing tables;
//! between them is what makes a speaker: a peer is more than one session (collisions,
//! the restarted peer's new connection, the backoff after errors, the teardown that
//! restarts, the Hard Reset for disable and removal, output waiting for room), and a RIB
//! needs to know its peers (End-of-RIB and recovery, max-prefix, policy chains, output in
//! bounded slices per peer with credit, lossless FIB batches). Written once here, the
//! daemon and the simulator run the same code, so the simulator tests what the daemon
//! does.
//!
//! Two drivers, each shaped like `quinn-proto`'s `Connection` (getters, `handle_*`,
//! commands, `poll_*`; time is always a parameter, nothing here opens a socket or reads a
//! clock):
//!
//! - [`PeerDriver`]: one configured peer, one or two [`Session`](bgp_proto::session::Session)s.
//! - [`RibDriver`]: the [`Rib`](bgp_rib::Rib) and its peer registry, keyed by [`PeerId`].
//!
//! ```text
//!   bytes ─▶ PeerDriver ──RibInput (PeerId)──▶ RibDriver ──FIB batches──▶ kernel / agent
//!            ▲        └──OutputTaken (credit)─▶    │  └──route changes──▶ subscribers
//!            └────────── OutputSlice (PeerId) ─────┘
//! ```
//!
//! The caller moves the messages: the daemon over bounded channels between tokio tasks
//! (a task per peer, one for the RIB), the simulator by direct calls on one thread.
//! [`settings`] turns a peer's [`PeerSettings`] into its OPEN and its RIB view, the same
//! for both.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod graceful;
mod id;
pub mod message;
pub mod peer;
pub mod policy;
pub mod rib;
pub mod session_info;
pub mod settings;

pub use id::{ConnId, PeerId, PeerIds};
pub use message::{OutputSlice, RibInput};
pub use peer::{
    NotificationCount, PeerCounters, PeerDriver, PeerEvent, PeerStatus, Refusal, Transport,
};
pub use policy::chain_policy;
pub use rib::{RibDriver, RibEvent};
pub use settings::{Identity, MaxPrefixAction, MaxPrefixes, PeerSettings};
