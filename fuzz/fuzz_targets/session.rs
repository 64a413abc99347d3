//! The session machine with the default capabilities (IPv4 unicast, route refresh) fed
//! arbitrary bytes and timer firings; see `session_driver.rs`. The first input byte picks
//! passive or active. It must never panic and must always answer with well-formed frames.
#![no_main]

use std::net::Ipv4Addr;

use bgp_proto::session::SessionConfig;
use libfuzzer_sys::fuzz_target;

#[path = "session_driver.rs"]
mod session_driver;

fuzz_target!(|data: &[u8]| {
    let mut config = SessionConfig::new(64512, Ipv4Addr::new(10, 0, 0, 1), Some(64512));
    config.passive = data.first().is_some_and(|b| b & 1 == 1);
    session_driver::drive(config, data);
});
