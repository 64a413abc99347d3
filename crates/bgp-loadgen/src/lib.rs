//! A BGP load generator: many client sessions in one process, for benchmarking a route
//! reflector (RFC 4456).
//!
//! Each client is a [`bgp_proto::session::Session`], the project's own sans-IO state
//! machine, driven over a TCP connection from its own loopback address. N clients
//! connect to the device under test, each announces K distinct prefixes with its own
//! NEXT_HOP and AS_PATH, and each counts what it receives until it holds every other
//! client's routes. Many sessions share one thread, so the clients cost little next to
//! the reflector and are not what the benchmark measures.
//!
//! - [`plan`]: which client announces which prefixes, and the way back from a prefix.
//! - [`tally`]: what one client holds, one bit per prefix.
//! - [`client`]: one client's session driver.
//! - [`run`]: the coordinator and its [`run::Report`].
//! - [`usage`]: CPU time and peak memory of this process and of the device under test.
//! - [`dut_config`]: the reflector's configuration for bgpd and for BIRD 2, written alike.

pub mod client;
pub mod dut_config;
pub mod plan;
pub mod run;
pub mod tally;
pub mod usage;
