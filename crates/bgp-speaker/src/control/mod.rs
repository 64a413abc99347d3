//! The control socket: a versioned JSON-lines protocol (the `bgp-control` crate) over a Unix socket,
//! served by [`server::ControlServer`] and spoken by `bgpctl`; and an optional read-only
//! BIRD-compatible status socket ([`bird`]) for calico-node's health checks.

mod answer;
pub mod bird;
pub mod limits;
pub mod server;
pub mod socket;
