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
//!
//! Two peer drivers joined by one in-memory connection: the active side asks for a
//! connection, the caller reports it up at both ends and carries the bytes, and each
//! driver tells its RIB that the session is up.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr, SocketAddr};
//! use std::time::Instant;
//! use bgp_node::{Identity, PeerDriver, PeerEvent, PeerIds, PeerSettings, RibInput, Transport};
//!
//! let now = Instant::now();
//! let ip = |n: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
//! let mut ids = PeerIds::default();
//! let to_b = PeerSettings::new("b", ip(2), 64512);
//! let mut to_a = PeerSettings::new("a", ip(1), 64512);
//! to_a.passive = true;
//! let mut a = PeerDriver::new(ids.allocate(), to_b, Identity::new(64512, Ipv4Addr::new(10, 0, 0, 1)), now);
//! let mut b = PeerDriver::new(ids.allocate(), to_a, Identity::new(64512, Ipv4Addr::new(10, 0, 0, 2)), now);
//!
//! // a wants a connection; the caller's TCP connect succeeds and b accepts it.
//! let conn_a = std::iter::from_fn(|| a.poll_event())
//!     .find_map(|e| match e {
//!         PeerEvent::Connect(conn) => Some(conn),
//!         _ => None,
//!     })
//!     .expect("the active side connects");
//! let (ea, eb) = (SocketAddr::new(ip(1), 40000), SocketAddr::new(ip(2), 179));
//! a.handle_connected(now, conn_a, Transport { local: ea, remote: eb, link_global_v6: None });
//! let conn_b = b
//!     .handle_accepted(now, Transport { local: eb, remote: ea, link_global_v6: None })
//!     .expect("b takes the connection");
//!
//! // Carry bytes both ways until neither side has more; collect what each tells its RIB.
//! let mut up = Vec::new();
//! loop {
//!     let mut moved = false;
//!     while let Some(bytes) = a.poll_transmit(conn_a) {
//!         b.handle_data(now, conn_b, &bytes);
//!         moved = true;
//!     }
//!     while let Some(bytes) = b.poll_transmit(conn_b) {
//!         a.handle_data(now, conn_a, &bytes);
//!         moved = true;
//!     }
//!     for (name, driver) in [("a", &mut a), ("b", &mut b)] {
//!         while let Some(event) = driver.poll_event() {
//!             if let PeerEvent::Rib(RibInput::Up { .. }) = event {
//!                 up.push(name);
//!             }
//!         }
//!     }
//!     if !moved {
//!         break;
//!     }
//! }
//! up.sort();
//! assert_eq!(up, ["a", "b"], "both sessions Established");
//! ```

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
