//! The session machine offering every capability it knows — extended messages, ADD-PATH,
//! graceful restart with the N bit, long-lived graceful restart, extended next hop,
//! enhanced route refresh, role, FQDN, both unicast families — fed arbitrary bytes and
//! timer firings (see `session_driver.rs`). With extended messages a single frame can
//! carry 64 KiB, and with ADD-PATH and GR every negotiated code path is reachable.
#![no_main]

use std::net::Ipv4Addr;

use bgp_proto::session::{LocalCapabilities, SessionConfig};
use bgp_proto::{
    AddPathMode, Afi, BgpRole, Family, GracefulRestart, GracefulRestartFamily, LlgrFamily,
};
use libfuzzer_sys::fuzz_target;

#[path = "session_driver.rs"]
mod session_driver;

fuzz_target!(|data: &[u8]| {
    let families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
    let mut config = SessionConfig::new(4_200_000_001, Ipv4Addr::new(10, 0, 0, 1), None);
    config.passive = data.first().is_some_and(|b| b & 1 == 1);
    config.capabilities = LocalCapabilities {
        families: families.clone(),
        route_refresh: true,
        enhanced_route_refresh: true,
        add_path: families.iter().map(|&f| (f, AddPathMode::Both)).collect(),
        graceful_restart: Some(GracefulRestart {
            restart_state: false,
            notification: true,
            restart_time: 120,
            families: families
                .iter()
                .map(|&family| GracefulRestartFamily {
                    family,
                    forwarding_preserved: true,
                })
                .collect(),
        }),
        long_lived_gr: families
            .iter()
            .map(|&family| LlgrFamily {
                family,
                forwarding_preserved: true,
                stale_time: 3600,
            })
            .collect(),
        extended_next_hop: vec![(Family::IPV4_UNICAST, Afi::IPV6)],
        extended_message: true,
        role: Some(BgpRole::PEER),
        strict_role: false,
        fqdn: Some(("node-1".into(), "cluster.local".into())),
        required: Vec::new(),
    };
    session_driver::drive(config, data);
});
