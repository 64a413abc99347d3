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

pub mod session;
pub mod wire;

pub use wire::types::*;
