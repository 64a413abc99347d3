//! The control socket: a versioned JSON-lines protocol ([`proto`]) over a Unix socket,
//! served by [`server::ControlServer`] and spoken by `bgpctl`.

pub mod proto;
pub mod server;
