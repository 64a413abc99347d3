//! RFC 8538 Hard Reset: when the N bit was negotiated, a session that ends for good
//! (operator disable, peer removed from the configuration, prefix limit exceeded) is closed
//! with Cease / Hard Reset (6/9) wrapping the real cause, so the peer drops our routes at
//! once instead of keeping them as stale; without the N bit, and on a daemon shutdown (the
//! restart case graceful restart exists for), the plain Cease is sent. With `on_stop =
//! "restart"` (Calico mode) a shutdown closes without a NOTIFICATION towards a peer that
//! negotiated graceful restart without the N bit (RFC 4724 4.2: it keeps our routes);
//! `bgpctl shutdown --for-good` sends Hard Reset wherever the N bit was negotiated.
//!
//! The peers are played by the test over raw TCP (interop::raw_peer), so it reads
//! exactly which NOTIFICATION bgpd sends. No root needed: 127.0.70.x, 127.0.71.x, 127.0.87.x
//! and 127.0.88.x.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use bgp_control::{Command as Ctl, Reply};
use bgp_proto::notification_code as nc;
use interop::raw_peer::{RawPeer, RawSession};
use support::{peer_toml, Daemon};

const PORT: u16 = 11179;
const WAIT: Duration = Duration::from_secs(30);

fn ip(net: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, net, host))
}

/// bgpd at 127.0.NET.1.
fn global(dir: &Path, name: &str, net: u8) -> String {
    support::global_toml(
        dir,
        name,
        64512,
        &format!("10.{net}.0.1"),
        &format!("127.0.{net}.1:{PORT}"),
        "",
    )
}

/// A passive peer at 127.0.NET.HOST with graceful restart and the N bit on our side.
fn peer(name: &str, net: u8, host: u8, extra: &str) -> String {
    peer_toml(
        name,
        &format!("127.0.{net}.{host}"),
        64512,
        PORT,
        Some(&format!("127.0.{net}.1")),
        &format!(
            "passive = true\ngraceful_restart = {{ enabled = true, notification = true }}\n{extra}"
        ),
    )
}

/// The test's peer at 127.0.NET.HOST, Established with bgpd; with graceful restart and
/// the N bit when `n_bit`.
fn connect(net: u8, host: u8, n_bit: bool) -> RawSession {
    let mut me = RawPeer::new(64512, Ipv4Addr::new(10, net, 0, host), 9);
    if n_bit {
        me = me.with_graceful_restart(120, true);
    }
    let mut s = RawSession::connect(None, Some(ip(net, host)), SocketAddr::new(ip(net, 1), PORT))
        .expect("connect to bgpd");
    s.establish(&me, WAIT).expect("session established");
    s.keepalives(Duration::from_secs(3));
    s
}

fn wait_established(d: &Daemon, peers: &[&str]) {
    for p in peers {
        d.wait_established(p);
    }
}

/// The NOTIFICATION bgpd closes `s` with, as (code, subcode, data).
fn closed_with(s: &RawSession) -> (u8, u8, Vec<u8>) {
    let n = s
        .notification(WAIT)
        .expect("reading")
        .expect("a NOTIFICATION before the close");
    (n.code, n.subcode, n.data.to_vec())
}

#[test]
fn disable_sends_a_hard_reset_only_where_the_n_bit_was_negotiated() {
    let dir = support::tempdir("bgpd-hard-reset");
    let d = dir.path();
    let config = global(d, "a", 70) + &peer("with_n", 70, 2, "") + &peer("without_n", 70, 3, "");
    let a = Daemon::start(d, "a", &config);
    let with_n = connect(70, 2, true);
    let without_n = connect(70, 3, false);
    wait_established(&a, &["with_n", "without_n"]);
    for name in ["with_n", "without_n"] {
        let out = a.bgpctl(&["peer", name, "disable"]);
        assert!(out.status.success(), "{out:?}");
    }
    let (code, subcode, data) = closed_with(&with_n);
    assert_eq!((code, subcode), (nc::CEASE, nc::CEASE_HARD_RESET));
    assert_eq!(
        data.get(..2),
        Some(&[nc::CEASE, nc::CEASE_ADMIN_SHUTDOWN][..])
    );
    // The shutdown communication travels inside (RFC 8203 length octet, then text).
    assert!(String::from_utf8_lossy(&data[2..]).contains("disabled by operator"));
    let (code, subcode, _) = closed_with(&without_n);
    assert_eq!((code, subcode), (nc::CEASE, nc::CEASE_ADMIN_SHUTDOWN));
}

#[test]
fn removal_and_prefix_limit_send_a_hard_reset_shutdown_does_not() {
    let dir = support::tempdir("bgpd-hard-reset");
    let d = dir.path();
    let limited = "max_prefixes = { limit = 2, action = \"teardown\" }";
    let base = global(d, "a", 71) + &peer("limited", 71, 5, limited) + &peer("stays", 71, 6, "");
    let a = Daemon::start(d, "a", &(base.clone() + &peer("removed", 71, 4, "")));
    let removed = connect(71, 4, true);
    let limited = connect(71, 5, true);
    let stays = connect(71, 6, true);
    wait_established(&a, &["removed", "limited", "stays"]);

    // Removed from the configuration: Hard Reset wrapping Peer De-configured (6/3).
    std::fs::write(&a.config, &base).expect("new config");
    assert!(matches!(a.request(Ctl::Reload), Reply::Done { .. }));
    let (code, subcode, data) = closed_with(&removed);
    assert_eq!((code, subcode), (nc::CEASE, nc::CEASE_HARD_RESET));
    assert_eq!(data, vec![nc::CEASE, nc::CEASE_PEER_DECONFIGURED]);

    // Over the prefix limit: Hard Reset wrapping Maximum Number of Prefixes Reached
    // (6/1) with AFI, SAFI and the limit (RFC 4486).
    support::announce(
        &limited,
        Ipv4Addr::new(127, 0, 71, 5),
        &["10.70.1.0/24", "10.70.2.0/24", "10.70.3.0/24"],
    );
    let (code, subcode, data) = closed_with(&limited);
    assert_eq!((code, subcode), (nc::CEASE, nc::CEASE_HARD_RESET));
    assert_eq!(
        data,
        vec![nc::CEASE, nc::CEASE_MAX_PREFIXES, 0, 1, 1, 0, 0, 0, 2]
    );

    // A daemon shutdown is the restart graceful restart is for: plain Administrative
    // Shutdown, so the peer keeps our routes while we come back.
    a.signal(libc::SIGTERM);
    let (code, subcode, _) = closed_with(&stays);
    assert_eq!((code, subcode), (nc::CEASE, nc::CEASE_ADMIN_SHUTDOWN));
}

/// A passive peer at 127.0.NET.HOST with graceful restart, the N bit and `on_stop`.
fn peer_on_stop(name: &str, net: u8, host: u8, on_stop: &str) -> String {
    peer_toml(
        name,
        &format!("127.0.{net}.{host}"),
        64512,
        PORT,
        Some(&format!("127.0.{net}.1")),
        &format!(
            "passive = true\ngraceful_restart = {{ enabled = true, notification = true, on_stop = \"{on_stop}\" }}\n"
        ),
    )
}

/// The test's peer at 127.0.NET.HOST, Established with bgpd, with graceful restart
/// without the N bit.
fn connect_gr_without_n(net: u8, host: u8) -> RawSession {
    let me =
        RawPeer::new(64512, Ipv4Addr::new(10, net, 0, host), 9).with_graceful_restart(120, false);
    let mut s = RawSession::connect(None, Some(ip(net, host)), SocketAddr::new(ip(net, 1), PORT))
        .expect("connect to bgpd");
    s.establish(&me, WAIT).expect("session established");
    s.keepalives(Duration::from_secs(3));
    s
}

#[test]
fn a_stop_that_is_a_restart_says_nothing_to_graceful_peers_without_the_n_bit() {
    let dir = support::tempdir("bgpd-hard-reset");
    let d = dir.path();
    let config = global(d, "a", 87)
        + &peer_on_stop("with_n", 87, 2, "restart")
        + &peer_on_stop("gr_without_n", 87, 3, "restart")
        + &peer_on_stop("no_gr", 87, 4, "restart")
        + &peer_on_stop("notify", 87, 5, "notify");
    let a = Daemon::start(d, "a", &config);
    let with_n = connect(87, 2, true);
    let gr_without_n = connect_gr_without_n(87, 3);
    let no_gr = connect(87, 4, false);
    let notify = connect_gr_without_n(87, 5);
    wait_established(&a, &["with_n", "gr_without_n", "no_gr", "notify"]);
    a.signal(libc::SIGTERM);
    // N bit: the Cease, graceful under RFC 8538.
    let (code, subcode, _) = closed_with(&with_n);
    assert_eq!((code, subcode), (nc::CEASE, nc::CEASE_ADMIN_SHUTDOWN));
    // Graceful restart without the N bit: the connection ends without a NOTIFICATION.
    assert_eq!(gr_without_n.notification(WAIT).expect("reading"), None);
    // No graceful restart: the peer drops our routes anyway, and learns why.
    let (code, subcode, _) = closed_with(&no_gr);
    assert_eq!((code, subcode), (nc::CEASE, nc::CEASE_ADMIN_SHUTDOWN));
    // on_stop = "notify" (the default): the Cease, whatever the peer negotiated.
    let (code, subcode, _) = closed_with(&notify);
    assert_eq!((code, subcode), (nc::CEASE, nc::CEASE_ADMIN_SHUTDOWN));
}

#[test]
fn shutdown_for_good_sends_a_hard_reset_where_the_n_bit_was_negotiated() {
    let dir = support::tempdir("bgpd-hard-reset");
    let d = dir.path();
    let config = global(d, "a", 88)
        + &peer_on_stop("with_n", 88, 2, "restart")
        + &peer_on_stop("gr_without_n", 88, 3, "restart");
    let mut a = Daemon::start(d, "a", &config);
    let with_n = connect(88, 2, true);
    let gr_without_n = connect_gr_without_n(88, 3);
    wait_established(&a, &["with_n", "gr_without_n"]);
    let out = a.bgpctl(&["shutdown", "--for-good"]);
    assert!(out.status.success(), "{out:?}");
    let (code, subcode, data) = closed_with(&with_n);
    assert_eq!((code, subcode), (nc::CEASE, nc::CEASE_HARD_RESET));
    assert_eq!(
        data.get(..2),
        Some(&[nc::CEASE, nc::CEASE_ADMIN_SHUTDOWN][..])
    );
    // Without the N bit, any NOTIFICATION ends graceful restart: the plain Cease.
    let (code, subcode, _) = closed_with(&gr_without_n);
    assert_eq!((code, subcode), (nc::CEASE, nc::CEASE_ADMIN_SHUTDOWN));
    assert_eq!(a.wait_exit(), Some(0), "bgpd exits after leaving");
}
