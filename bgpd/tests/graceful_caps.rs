//! What a peer announces about graceful restart is held to our limits: a restart time
//! above `max_restart_time` keeps its routes only that long after its session drops, and
//! its long-lived graceful restart (RFC 9494) is honoured only when we announced LLGR
//! ourselves.
//!
//! The peers are played by the test over raw TCP (interop::raw_peer). No root
//! needed: 127.0.74.x.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use interop::raw_peer::{RawPeer, RawSession};
use support::{peer_toml, Daemon};

const PORT: u16 = 11179;
const WAIT: Duration = Duration::from_secs(30);

fn ip(host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 74, host))
}

/// Establishes the test's peer at 127.0.74.HOST and announces one route through it.
fn peer_with_route(host: u8, me: &RawPeer, prefix: &str) -> RawSession {
    let mut s =
        RawSession::connect(None, Some(ip(host)), SocketAddr::new(ip(1), PORT)).expect("connect");
    s.establish(me, WAIT).expect("established");
    support::announce(&s, Ipv4Addr::new(127, 0, 74, host), &[prefix]);
    s
}

#[test]
fn announced_restart_and_llgr_times_are_held_to_our_limits() {
    let dir = support::tempdir("bgpd-gr-caps");
    let d = dir.path();
    let gr = "passive = true\ngraceful_restart = { enabled = true, max_restart_time = 2 }";
    let config = support::global_toml(d, "a", 64512, "10.74.0.1", "127.0.74.1:11179", "")
        + &peer_toml(
            "long_restart",
            "127.0.74.2",
            64512,
            PORT,
            Some("127.0.74.1"),
            gr,
        )
        + &peer_toml("llgr", "127.0.74.3", 64512, PORT, Some("127.0.74.1"), gr);
    let a = Daemon::start(d, "a", &config);
    // Asks us to keep its routes for 4095 s.
    let long =
        RawPeer::new(64512, Ipv4Addr::new(10, 74, 0, 2), 90).with_graceful_restart(4095, true);
    // No restart time, a day of long-lived retention: LLGR straight away (RFC 9494 4.2),
    // which we never offered.
    let llgr = RawPeer::new(64512, Ipv4Addr::new(10, 74, 0, 3), 90)
        .with_graceful_restart(0, true)
        .with_long_lived_graceful_restart(86_400);
    let s2 = peer_with_route(2, &long, "10.74.2.0/24");
    let s3 = peer_with_route(3, &llgr, "10.74.3.0/24");
    a.wait_for(
        |a| a.best("10.74.2.0/24").is_some() && a.best("10.74.3.0/24").is_some(),
        "both routes learned",
    );
    // Both peers vanish without a NOTIFICATION.
    drop(s2);
    drop(s3);
    let gone = Instant::now();
    a.wait_for(
        |a| a.state("long_restart").as_deref() != Some("Established"),
        "session down",
    );
    // The LLGR route goes at once: we did not offer LLGR.
    a.wait_for(|a| a.best("10.74.3.0/24").is_none(), "LLGR route removed");
    // The other stays stale for our 2 s, not its 4095 s.
    let kept = a.best("10.74.2.0/24");
    if gone.elapsed() < Duration::from_secs(1) {
        assert!(kept.is_some_and(|r| r.stale), "kept as stale meanwhile");
    }
    a.wait_for(
        |a| a.best("10.74.2.0/24").is_none(),
        "stale route removed after the cap",
    );
    assert!(gone.elapsed() < Duration::from_secs(30));
}
