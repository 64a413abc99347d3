//! Connections a peer opens to bgpd: a graceful-restart peer's new connection replaces its
//! Established session only once it sent a valid OPEN (RFC 4724 4.2), and a connection
//! arriving while the session waits after an error is refused until the backoff ran out.
//!
//! The peer is played by the test over raw TCP (interop::raw_peer). No root
//! needed: 127.0.72.x and 127.0.73.x.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use bgp_proto::wire::Inbound;
use bgp_proto::{notification_code as nc, Message};
use interop::raw_peer::{RawPeer, RawSession};
use support::Daemon;

const PORT: u16 = 11179;
const WAIT: Duration = Duration::from_secs(30);

fn ip(net: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, net, host))
}

/// bgpd at 127.0.NET.1 with one passive peer `p` at 127.0.NET.2.
fn config(dir: &Path, net: u8, peer_extra: &str) -> String {
    support::global_toml(
        dir,
        "a",
        64512,
        &format!("10.{net}.0.1"),
        &format!("127.0.{net}.1:{PORT}"),
        "",
    ) + &format!(
        r#"
[peers.p]
address = "127.0.{net}.2"
remote_as = 64512
port = {PORT}
source_address = "127.0.{net}.1"
passive = true
hold_time = 9
import = ["all"]
export = ["all"]
{peer_extra}
"#
    )
}

fn connect(net: u8) -> RawSession {
    RawSession::connect(None, Some(ip(net, 2)), SocketAddr::new(ip(net, 1), PORT))
        .expect("connect to bgpd")
}

fn me(net: u8) -> RawPeer {
    RawPeer::new(64512, Ipv4Addr::new(10, net, 0, 2), 9)
}

fn transitions(a: &Daemon) -> u64 {
    a.peer("p").counters.established_transitions
}

#[test]
fn a_restarted_peer_replaces_its_session_only_with_a_valid_open() {
    let dir = support::tempdir("bgpd-incoming");
    let d = dir.path();
    let a = Daemon::start(
        d,
        "a",
        &config(
            d,
            72,
            "graceful_restart = { enabled = true, notification = true }",
        ),
    );
    let peer = me(72).with_graceful_restart(120, true);
    let mut first = connect(72);
    first.establish(&peer, WAIT).expect("first session");
    first.keepalives(Duration::from_secs(3));
    support::announce(&first, Ipv4Addr::new(127, 0, 72, 2), &["10.72.1.0/24"]);
    a.wait_for(|a| a.best("10.72.1.0/24").is_some(), "the route learned");

    // A bare connection from the peer's address: bgpd answers with its OPEN (a candidate
    // session) but keeps the Established one.
    let bare = connect(72);
    assert!(matches!(bare.next(WAIT), Ok(Some(Inbound::Open(_)))));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(a.state("p").as_deref(), Some("Established"));
    assert_eq!(transitions(&a), 1);
    let route = a.best("10.72.1.0/24").expect("route kept");
    assert!(!route.stale, "the running session was not touched");
    // An OPEN bgpd refuses there (wrong AS) changes nothing either.
    let mut wrong = RawPeer::new(65099, Ipv4Addr::new(10, 72, 0, 2), 9);
    wrong = wrong.with_graceful_restart(120, true);
    bare.send(&Message::Open(wrong.open())).expect("OPEN");
    let n = bare
        .notification(WAIT)
        .expect("read")
        .expect("NOTIFICATION");
    assert_eq!((n.code, n.subcode), (nc::OPEN_MESSAGE, nc::BAD_PEER_AS));
    assert_eq!(transitions(&a), 1);
    // The first session still gets its KEEPALIVEs.
    let deadline = Instant::now() + WAIT;
    loop {
        match first.next(WAIT) {
            Ok(Some(Inbound::Keepalive)) => break,
            Ok(Some(_)) => {}
            other => panic!("the first session ended: {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "no KEEPALIVE on the first session"
        );
    }

    // A valid OPEN on a new connection: the peer restarted. The old session is closed
    // (no NOTIFICATION, as a TCP close), its route kept as stale until the new session
    // announces it again.
    let mut second = connect(72);
    second.establish(&peer, WAIT).expect("second session");
    second.keepalives(Duration::from_secs(3));
    loop {
        match first.next(WAIT) {
            Ok(None) => break,
            Ok(Some(Inbound::Notification(n))) => panic!("old session got a NOTIFICATION: {n}"),
            Ok(Some(_)) => {}
            Err(e) => panic!("old session not closed: {e}"),
        }
    }
    a.wait_for(|a| transitions(a) == 2, "the new session Established");
    assert_eq!(a.state("p").as_deref(), Some("Established"));
    assert!(a.best("10.72.1.0/24").expect("kept").stale);
    support::announce(&second, Ipv4Addr::new(127, 0, 72, 2), &["10.72.1.0/24"]);
    a.wait_for(
        |a| a.best("10.72.1.0/24").is_some_and(|r| !r.stale),
        "the route refreshed by the new session",
    );
}

#[test]
fn incoming_connections_wait_out_the_error_backoff() {
    let dir = support::tempdir("bgpd-incoming");
    let d = dir.path();
    // The first restart after an error waits connect_retry (4 s, jittered down to 3 s).
    let a = Daemon::start(d, "a", &config(d, 73, "connect_retry = 4"));

    // An OPEN with the wrong AS: 2/2, and the session waits before the next attempt.
    let bad = connect(73);
    let wrong = RawPeer::new(65099, Ipv4Addr::new(10, 73, 0, 2), 9);
    bad.send(&Message::Open(wrong.open())).expect("OPEN");
    let n = bad.notification(WAIT).expect("read").expect("NOTIFICATION");
    assert_eq!((n.code, n.subcode), (nc::OPEN_MESSAGE, nc::BAD_PEER_AS));
    let refused_at = Instant::now();
    // Connecting again at once: closed without an OPEN.
    let early = connect(73);
    match early.next(WAIT) {
        Ok(None) => {}
        other => panic!("a connection during the backoff was answered: {other:?}"),
    }
    assert!(
        refused_at.elapsed() < Duration::from_secs(3),
        "the refusal came within the backoff"
    );
    assert!(a.log_text().contains("waiting after a session error"));

    // Once the backoff ran out, the peer is welcome.
    std::thread::sleep(Duration::from_secs(5));
    let mut good = connect(73);
    good.establish(&me(73), WAIT)
        .expect("session after the backoff");
    a.wait_established("p");

    // A Cease is no error: the peer may come back at once.
    good.send(&Message::Notification(
        bgp_proto::Notification::admin_reset("restarting"),
    ))
    .expect("Cease");
    while let Ok(Some(m)) = good.next(WAIT) {
        assert!(
            !matches!(m, Inbound::Notification(_)),
            "a Cease is not answered"
        );
    }
    a.wait_for(
        |a| a.state("p").as_deref() != Some("Established"),
        "session down",
    );
    let mut again = connect(73);
    again
        .establish(&me(73), WAIT)
        .expect("reconnect right after a Cease");
    a.wait_for(|a| transitions(a) == 2, "second session Established");
}
