//! The daemon's local sockets, served for a running [`bgp_speaker::Speaker`]:
//!
//! - [`server`]: the control socket, bgpd's JSON-lines protocol (crate `bgp-control`),
//!   spoken by `bgpctl`; its answers rendered from the speaker's read models in
//!   [`answer`];
//! - [`bird`]: the read-only BIRD-compatible status sockets calico-node's health checks
//!   and status reports talk to;
//! - [`monitor`]: the control socket's stream of events (`bgpctl monitor`);
//! - [`socket`]: creating a socket file so that only those meant to use it can;
//! - [`limits`]: what one local client may hold of any of them.
//!
//! None of this is in the library: an embedder has its own API and no use for a socket
//! in `/run` (mini-redis's split between the library and its server binary).

pub mod answer;
pub mod bird;
pub mod limits;
pub mod monitor;
pub mod server;
pub mod socket;
