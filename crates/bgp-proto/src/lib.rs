//! Sans-IO BGP-4.
//!
//! This crate holds the two pieces of BGP that need no operating system: the wire codec
//! ([`wire`]) that turns bytes into typed messages and back, and the per-peer session
//! finite-state machine ([`session`]) of RFC 4271 section 8.
//!
//! Nothing here opens a socket, reads a clock or spawns a task. The caller feeds bytes,
//! transport events, administrative commands and the current [`std::time::Instant`], then
//! drains what the machine wants done (bytes to send, the next timer deadline, session
//! events). That keeps the code fuzzable and lets whole clusters be simulated
//! deterministically, in the manner of `quinn-proto` and `rustls`.
//!
//! Two sessions joined by an in-memory "wire" reach Established, and one sends the other an
//! End-of-RIB marker (RFC 4724), which arrives as a decoded UPDATE:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use std::time::Instant;
//! use bgp_proto::session::{Session, SessionConfig, SessionEvent, State};
//! use bgp_proto::wire::encode_end_of_rib;
//! use bgp_proto::Family;
//!
//! let now = Instant::now();
//! let mut a = Session::new(SessionConfig::new(65001, Ipv4Addr::new(192, 0, 2, 1), Some(65002)));
//! let mut b = Session::new(SessionConfig::new(65002, Ipv4Addr::new(192, 0, 2, 2), Some(65001)));
//! for s in [&mut a, &mut b] {
//!     s.start(now);
//!     s.handle_connected(now); // the caller's TCP connection is up
//! }
//! // Carry bytes both ways until neither side has anything left to send.
//! let mut events = Vec::new();
//! loop {
//!     let mut moved = false;
//!     while let Some(bytes) = a.poll_transmit() {
//!         b.handle_data(now, &bytes);
//!         moved = true;
//!     }
//!     while let Some(bytes) = b.poll_transmit() {
//!         a.handle_data(now, &bytes);
//!         moved = true;
//!     }
//!     events.extend(std::iter::from_fn(|| b.poll_event()));
//!     if !moved {
//!         break;
//!     }
//! }
//! assert_eq!((a.state(), b.state()), (State::Established, State::Established));
//! assert_eq!(b.peer_as(), Some(65001));
//!
//! let mut frames = Vec::new();
//! encode_end_of_rib(Family::IPV4_UNICAST, &mut frames);
//! a.send_encoded(frames).expect("room in the output queue");
//! while let Some(bytes) = a.poll_transmit() {
//!     b.handle_data(now, &bytes);
//! }
//! let eor = std::iter::from_fn(|| b.poll_event()).find_map(|e| match e {
//!     SessionEvent::Update(u) => u.update.end_of_rib(),
//!     _ => None,
//! });
//! assert_eq!(eor, Some(Family::IPV4_UNICAST));
//! assert!(events.iter().any(|e| matches!(e, SessionEvent::Established(_))));
//! ```

pub mod session;
pub mod wire;

pub use wire::types::*;
