//! End-to-end tests: several bgpd processes on 127.0.0.0/8 loopback addresses (no root
//! needed, no port 179), driven through their control sockets and bgpctl.
//!
//! Each test uses its own 127.0.N.0/24 block so tests can run in parallel. Waits poll a
//! condition with a generous deadline; nothing asserts on elapsed time.

mod support;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bgp_control::{Command as Ctl, Outcome, Reply, Response};
use support::{bgpctl_bin, bgpd_bin, originate, peer_toml, Daemon};

const PORT: u16 = 11179;

fn tempdir() -> tempfile::TempDir {
    support::tempdir("bgpd-test")
}

/// A minimal config for a speaker at 127.0.NET.HOST with router id 10.NET.0.HOST.
fn global(dir: &Path, name: &str, net: u8, host: u8, asn: u32) -> String {
    support::global_toml(
        dir,
        name,
        asn,
        &format!("10.{net}.0.{host}"),
        &format!("127.0.{net}.{host}:{PORT}"),
        "",
    )
}

/// Peer NAME at 127.0.NET.HOST, the session from 127.0.NET.LOCAL_HOST.
fn peer(name: &str, net: u8, host: u8, local_host: u8, remote_as: u32, extra: &str) -> String {
    peer_toml(
        name,
        &format!("127.0.{net}.{host}"),
        remote_as,
        PORT,
        Some(&format!("127.0.{net}.{local_host}")),
        extra,
    )
}

#[test]
fn two_speakers_establish_and_exchange_routes() {
    let dir = tempdir();
    let d = dir.path();
    let a = Daemon::start(
        d,
        "a",
        &(global(d, "a", 1, 1, 64512)
            + &peer("b", 1, 2, 1, 64512, "")
            + &originate("10.244.1.0/26")),
    );
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 1, 2, 64512)
            + &peer("a", 1, 1, 2, 64512, "passive = true")
            + &originate("10.244.2.0/26")),
    );
    a.wait_established("b");
    b.wait_established("a");
    a.wait_for(|a| a.best("10.244.2.0/26").is_some(), "b's block at a");
    b.wait_for(|b| b.best("10.244.1.0/26").is_some(), "a's block at b");
    let r = a.best("10.244.2.0/26").expect("route");
    assert_eq!(r.peer, "b");
    assert_eq!(r.next_hop.as_deref(), Some("127.0.1.2"));
    assert_eq!(r.local_pref, Some(100));

    // Longest match with all paths.
    match a.request(Ctl::ShowRoute {
        address: "10.244.2.7".parse().expect("addr"),
    }) {
        Reply::Routes { routes, .. } => {
            assert_eq!(routes.len(), 1);
            assert!(routes[0].best);
            assert_eq!(routes[0].prefix, "10.244.2.0/26");
        }
        other => panic!("{other:?}"),
    }

    // Prefix counters.
    a.wait_for(
        |a| {
            a.peers()
                .iter()
                .any(|p| p.name == "b" && p.prefixes_received == 1 && p.prefixes_sent == 1)
        },
        "counters",
    );

    // Detail: negotiated values.
    let det = a.peer("b");
    assert_eq!(det.negotiated_hold_time, Some(9));
    assert_eq!(det.peer_id.as_deref(), Some("10.1.0.2"));
    assert!(det
        .capabilities_received
        .iter()
        .any(|c| c.contains("FourOctetAs")));

    // bgpctl table output.
    let out = a.bgpctl(&["show", "peers"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let head = lines.next().expect("header");
    for col in [
        "Name",
        "Address",
        "AS",
        "State",
        "Uptime",
        "Received",
        "Accepted",
        "Sent",
        "Last error",
    ] {
        assert!(head.contains(col), "{head}");
    }
    let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
    assert_eq!(&row[..4], &["b", "127.0.1.2", "64512", "Established"]);
    assert_eq!(&row[5..8], &["1", "1", "1"]);

    // bgpctl JSON output is the protocol response.
    let out = a.bgpctl(&["--json", "show", "routes", "--table", "in"]);
    assert!(out.status.success(), "{out:?}");
    let resp: Response = serde_json::from_slice(&out.stdout).expect("json");
    match resp.outcome {
        Outcome::Ok {
            result: Reply::Routes { routes, .. },
        } => {
            assert_eq!(routes.len(), 1);
            assert_eq!(routes[0].prefix, "10.244.2.0/26");
            assert_eq!(routes[0].peer, "b");
        }
        other => panic!("{other:?}"),
    }
    let out = a.bgpctl(&["show", "routes", "10.244.2.0/26"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with('*') && l.contains("10.244.2.0/26") && l.contains("127.0.1.2")),
        "{text}"
    );

    // Errors: unknown peer is exit 1 with a message.
    let out = a.bgpctl(&["show", "peer", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no peer named"));
}

#[test]
fn route_reflector_propagates_between_clients() {
    let dir = tempdir();
    let d = dir.path();
    let client = "route_reflector_client = true\npassive = true";
    let rr = Daemon::start(
        d,
        "rr",
        &(global(d, "rr", 2, 1, 64512)
            + &peer("c1", 2, 2, 1, 64512, client)
            + &peer("c2", 2, 3, 1, 64512, client)),
    );
    let c1 = Daemon::start(
        d,
        "c1",
        &(global(d, "c1", 2, 2, 64512)
            + &peer("rr", 2, 1, 2, 64512, "")
            + &originate("10.2.2.0/24")
            + &originate("10.2.99.0/24")),
    );
    let c2 = Daemon::start(
        d,
        "c2",
        &(global(d, "c2", 2, 3, 64512)
            + &peer("rr", 2, 1, 3, 64512, "")
            + &originate("10.2.3.0/24")
            + &originate("10.2.99.0/24")),
    );
    rr.wait_established("c1");
    rr.wait_established("c2");
    c2.wait_for(|c| c.best("10.2.2.0/24").is_some(), "c1's route at c2");
    c1.wait_for(|c| c.best("10.2.3.0/24").is_some(), "c2's route at c1");
    let r = c2.best("10.2.2.0/24").expect("route");
    assert_eq!(r.peer, "rr");
    // RFC 4456: the reflector does not change the next hop of iBGP routes.
    assert_eq!(r.next_hop.as_deref(), Some("127.0.2.2"));
    // RFC 4456 8: ORIGINATOR_ID is c1's router id, the CLUSTER_LIST the reflector's
    // cluster id (its router id by default); both in JSON and in bgpctl's table.
    assert_eq!(r.originator_id.as_deref(), Some("10.2.0.2"));
    assert_eq!(r.cluster_list, ["10.2.0.1"]);
    let json = c2.bgpctl(&["--json", "show", "route", "10.2.2.1"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("bgpctl JSON");
    let route = &v["result"]["routes"][0];
    assert_eq!(route["originator_id"], "10.2.0.2", "{v}");
    // No ADD-PATH on this session: no path identifier (RFC 7911), not a made-up 0.
    assert!(route.get("path_id").is_none(), "{v}");
    assert_eq!(
        route["cluster_list"],
        serde_json::json!(["10.2.0.1"]),
        "{v}"
    );
    let out = c2.bgpctl(&["show", "routes", "10.2.2.0/24"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("10.2.0.2 [10.2.0.1]"), "{text}");
    // Routes learned directly from the originator carry neither.
    let own = rr.best("10.2.2.0/24").expect("route at rr");
    assert_eq!((own.originator_id, own.cluster_list.len()), (None, 0));

    // Both clients announce 10.2.99.0/24: the reflector shows both paths, one best,
    // the other with the decision step it lost at.
    let both = |rr: &Daemon| match rr.request(Ctl::ShowRoute {
        address: "10.2.99.1".parse().expect("addr"),
    }) {
        Reply::Routes { routes, .. } => routes,
        other => panic!("{other:?}"),
    };
    rr.wait_for(|rr| both(rr).len() == 2, "two paths at the reflector");
    let paths = both(&rr);
    assert_eq!(paths.iter().filter(|p| p.best).count(), 1);
    let loser = paths.iter().find(|p| !p.best).expect("loser");
    assert!(loser.not_best_reason.is_some(), "{loser:?}");
    let out = rr.bgpctl(&["show", "route", "10.2.99.1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("lost: "), "{text}");
}

#[test]
fn reload_adds_and_removes_peers_without_touching_others() {
    let dir = tempdir();
    let d = dir.path();
    let base = global(d, "a", 3, 1, 64512);
    let cfg1 = base.clone()
        + &peer("b", 3, 2, 1, 64512, "")
        + &peer("c", 3, 3, 1, 64512, "")
        + &originate("10.3.1.0/24");
    let a = Daemon::start(d, "a", &cfg1);
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 3, 2, 64512) + &peer("a", 3, 1, 2, 64512, "passive = true")),
    );
    let c = Daemon::start(
        d,
        "c",
        &(global(d, "c", 3, 3, 64512) + &peer("a", 3, 1, 3, 64512, "passive = true")),
    );
    let e = Daemon::start(
        d,
        "e",
        &(global(d, "e", 3, 4, 64512) + &peer("a", 3, 1, 4, 64512, "passive = true")),
    );
    a.wait_established("b");
    a.wait_established("c");
    let before = a.peer("b");
    assert_eq!(before.counters.established_transitions, 1);

    // Invalid config: refused, running config stays.
    std::fs::write(
        &a.config,
        cfg1.clone() + "\n[peers.bad]\naddress = \"127.0.3.9\"\n",
    )
    .expect("write");
    let out = a.bgpctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a.toml:") && err.contains("no remote_as"),
        "{err}"
    );
    assert_eq!(a.state("c").as_deref(), Some("Established"));

    // Remove c, add e, withdraw the originated route, originate another.
    let cfg2 = base
        + &peer("b", 3, 2, 1, 64512, "")
        + &peer("e", 3, 4, 1, 64512, "")
        + &originate("10.3.9.0/24");
    std::fs::write(&a.config, cfg2).expect("write");
    // The file watcher reloads on its own; `bgpctl reload` makes it deterministic.
    let out = a.bgpctl(&["reload"]);
    assert!(out.status.success(), "{out:?}");
    a.wait_established("e");
    a.wait_for(|a| a.state("c").is_none(), "c removed");
    // c was told why (RFC 4486 Peer De-configured).
    c.wait_for(
        |c| {
            c.peer("a")
                .last_notification_received
                .is_some_and(|n| n.contains("6/3"))
        },
        "Cease 6/3 at c",
    );
    // b's session was not touched.
    let after = a.peer("b");
    assert_eq!(after.summary.state, "Established");
    assert_eq!(after.counters.established_transitions, 1);
    assert!(after.summary.uptime_secs >= before.summary.uptime_secs);
    let b_side = b.peer("a");
    assert_eq!(b_side.counters.established_transitions, 1);
    // Originated routes changed incrementally.
    b.wait_for(
        |b| b.best("10.3.9.0/24").is_some() && b.best("10.3.1.0/24").is_none(),
        "originate diff at b",
    );
    e.wait_for(|e| e.best("10.3.9.0/24").is_some(), "route at e");
}

#[test]
fn peer_disable_enable_and_reset() {
    let dir = tempdir();
    let d = dir.path();
    let a = Daemon::start(
        d,
        "a",
        &(global(d, "a", 4, 1, 64512) + &peer("b", 4, 2, 1, 64513, "")),
    );
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 4, 2, 64513) + &peer("a", 4, 1, 2, 64512, "passive = true")),
    );
    a.wait_established("b");
    let out = a.bgpctl(&["peer", "b", "disable"]);
    assert!(out.status.success(), "{out:?}");
    a.wait_for(|a| a.state("b").as_deref() == Some("Disabled"), "disabled");
    b.wait_for(
        |b| {
            b.peer("a")
                .last_notification_received
                .is_some_and(|n| n.contains("6/2") && n.contains("disabled by operator"))
        },
        "shutdown message at b",
    );
    let out = a.bgpctl(&["peer", "b", "enable"]);
    assert!(out.status.success(), "{out:?}");
    a.wait_established("b");
    let out = a.bgpctl(&["peer", "b", "reset"]);
    assert!(out.status.success(), "{out:?}");
    a.wait_for(
        |a| a.peer("b").counters.established_transitions >= 3,
        "re-established after reset",
    );
    b.wait_for(
        |b| {
            b.peer("a")
                .last_notification_received
                .is_some_and(|n| n.contains("6/4"))
        },
        "admin reset at b",
    );
}

#[test]
fn md5_mismatch_keeps_session_down() {
    // Probe whether TCP-MD5 can be set here (needs a kernel with CONFIG_TCP_MD5SIG).
    {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        if let Err(e) = bgp_speaker::net::set_md5(
            l.as_raw_fd(),
            "127.0.0.1".parse().expect("addr"),
            Some(b"probe"),
        ) {
            eprintln!("SKIPPED md5_mismatch_keeps_session_down: TCP-MD5 not available here: {e}");
            return;
        }
    }
    let dir = tempdir();
    let d = dir.path();
    // a peers with b (same key) and c (different key).
    let a = Daemon::start(
        d,
        "a",
        &(global(d, "a", 5, 1, 64512)
            + &peer("b", 5, 2, 1, 64512, "password = \"good\"")
            + &peer("c", 5, 3, 1, 64512, "password = \"good\"")),
    );
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 5, 2, 64512)
            + &peer("a", 5, 1, 2, 64512, "password = \"good\"\npassive = true")),
    );
    let c = Daemon::start(
        d,
        "c",
        &(global(d, "c", 5, 3, 64512) + &peer("a", 5, 1, 3, 64512, "password = \"bad\"")),
    );
    // The matching pair comes up, over MD5, in both directions of connection setup
    // (a connects to passive b).
    a.wait_established("b");
    b.wait_established("a");
    // c keeps trying (connect_retry 1 s) against a listener keyed with a different
    // secret, and a keeps trying c: give both several attempts.
    std::thread::sleep(Duration::from_secs(4));
    assert_ne!(a.state("c").as_deref(), Some("Established"));
    assert_ne!(c.state("a").as_deref(), Some("Established"));
    assert_eq!(a.peer("c").counters.established_transitions, 0);
}

#[test]
fn unknown_peer_is_refused_and_logged() {
    let dir = tempdir();
    let d = dir.path();
    let a = Daemon::start(
        d,
        "a",
        &(global(d, "a", 6, 1, 64512) + &peer("b", 6, 2, 1, 64512, "passive = true")),
    );
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let src: SocketAddr = "127.0.6.9:0".parse().expect("addr");
    sock.bind(&src.into()).expect("bind");
    let dst: SocketAddr = format!("127.0.6.1:{PORT}").parse().expect("addr");
    sock.connect(&dst.into()).expect("connect");
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    // The daemon closes the connection without sending anything.
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0);
    a.wait_for(
        |a| {
            let l = a.log_text();
            l.contains("refused connection from unknown peer address") && l.contains("127.0.6.9")
        },
        "refusal logged",
    );
}

#[test]
fn sigterm_sends_cease_with_shutdown_message() {
    let dir = tempdir();
    let d = dir.path();
    let mut a = Daemon::start(
        d,
        "a",
        &(global(d, "a", 7, 1, 64512) + &peer("b", 7, 2, 1, 64512, "")),
    );
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 7, 2, 64512) + &peer("a", 7, 1, 2, 64512, "passive = true")),
    );
    a.wait_established("b");
    a.signal(libc::SIGTERM);
    assert_eq!(a.wait_exit(), Some(0));
    b.wait_for(
        |b| {
            b.peer("a").last_notification_received.is_some_and(|n| {
                n.contains("6/2")
                    && n.contains("Administrative Shutdown")
                    && n.contains("bgpd shutting down")
            })
        },
        "Cease at b",
    );
    let log = a.log_text();
    assert!(
        log.contains("NOTIFICATION sent") && log.contains("code=6") && log.contains("subcode=2"),
        "{log}"
    );
}

#[test]
fn check_catches_bad_configs_with_line_numbers() {
    let dir = tempdir();
    let d = dir.path();
    let good = global(d, "g", 8, 1, 64512) + &peer("b", 8, 2, 1, 64512, "");
    let p = d.join("good.toml");
    std::fs::write(&p, &good).expect("write");
    let out = Command::new(bgpd_bin())
        .arg("-c")
        .arg(&p)
        .arg("--check")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let cases = [
        // Unknown key on line 3.
        ("[global]\nasn = 1\nrouterid = \"1.1.1.1\"\n", ":3:1:", "unknown field"),
        // Bad value on line 3, column 13.
        ("[global]\nasn = 1\nrouter_id = \"1.1.1\"\n", ":3:13:", "invalid"),
        // Semantic: unknown policy, pointing at the name.
        (
            "[global]\nasn = 1\nrouter_id = \"1.1.1.1\"\n[peers.x]\naddress = \"10.0.0.2\"\nremote_as = 2\nimport = [\"nope\"]\n",
            ":7:11:",
            "unknown policy",
        ),
    ];
    for (text, pos, msg) in cases {
        let p = d.join("bad.toml");
        std::fs::write(&p, text).expect("write");
        let out = Command::new(bgpd_bin())
            .arg("-c")
            .arg(&p)
            .arg("--check")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("bad.toml{pos}")), "{err}");
        assert!(err.contains(msg), "{err}");
    }
}

#[test]
fn bgpctl_reports_a_missing_daemon() {
    let dir = tempdir();
    let sock = dir.path().join("none.sock");
    let out = Command::new(bgpctl_bin())
        .arg("-s")
        .arg(&sock)
        .args(["show", "peers"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bgpd is not running"));
}

#[test]
fn config_file_change_and_sighup_reload() {
    let dir = tempdir();
    let d = dir.path();
    let base = global(d, "a", 10, 1, 64512);
    let a = Daemon::start(d, "a", &(base.clone() + &peer("b", 10, 2, 1, 64512, "")));
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 10, 2, 64512) + &peer("a", 10, 1, 2, 64512, "passive = true")),
    );
    let c = Daemon::start(
        d,
        "c",
        &(global(d, "c", 10, 3, 64512) + &peer("a", 10, 1, 3, 64512, "passive = true")),
    );
    a.wait_established("b");
    // Written in place: the inotify watcher picks it up without any command.
    std::fs::write(
        &a.config,
        base.clone() + &peer("b", 10, 2, 1, 64512, "") + &peer("c", 10, 3, 1, 64512, ""),
    )
    .expect("write");
    a.wait_established("c");
    // Replaced by rename (what editors and renderers do), still picked up.
    let tmp = d.join("a.toml.new");
    std::fs::write(
        &tmp,
        base.clone()
            + &peer("b", 10, 2, 1, 64512, "")
            + &peer("c", 10, 3, 1, 64512, "")
            + &originate("10.10.1.0/24"),
    )
    .expect("write");
    std::fs::rename(&tmp, &a.config).expect("rename");
    c.wait_for(
        |c| c.best("10.10.1.0/24").is_some(),
        "originated after rename",
    );
    // SIGHUP also reloads.
    std::fs::write(&a.config, base + &peer("b", 10, 2, 1, 64512, "")).expect("write");
    a.signal(libc::SIGHUP);
    a.wait_for(|a| a.state("c").is_none(), "c removed");
    assert_eq!(a.peer("b").counters.established_transitions, 1);
    assert_eq!(b.peer("a").counters.established_transitions, 1);
}

#[test]
fn max_prefixes_teardown_sends_cease() {
    let dir = tempdir();
    let d = dir.path();
    let a = Daemon::start(
        d,
        "a",
        &(global(d, "a", 11, 1, 64512)
            + &peer(
                "b",
                11,
                2,
                1,
                64512,
                "max_prefixes = { limit = 1, action = \"teardown\" }",
            )),
    );
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 11, 2, 64512)
            + &peer("a", 11, 1, 2, 64512, "passive = true")
            + &originate("10.11.1.0/24")
            + &originate("10.11.2.0/24")),
    );
    b.wait_for(
        |b| {
            b.peer("a")
                .last_notification_received
                .is_some_and(|n| n.contains("6/1"))
        },
        "Cease/Maximum Number of Prefixes Reached at b",
    );
    let det = a.peer("b");
    assert!(
        det.last_notification_sent
            .is_some_and(|n| n.contains("Maximum Number of Prefixes")),
        "{:?}",
        a.peer("b")
    );
}

#[test]
fn ipv6_session_and_routes() {
    let dir = tempdir();
    let d = dir.path();
    let g = |name: &str, id: u8, port: u16| {
        format!(
            "[global]\nasn = 64512\nrouter_id = \"10.12.0.{id}\"\nlisten = [\"[::1]:{port}\"]\n[global.control]\nsocket = \"{}\"\n[global.graceful_restart]\nenabled = false\n[policies.all]\ndefault = \"accept\"\n",
            d.join(format!("{name}.sock")).display()
        )
    };
    let p = |name: &str, port: u16, extra: &str| {
        format!("\n[peers.{name}]\naddress = \"::1\"\nremote_as = 64512\nport = {port}\nhold_time = 9\nconnect_retry = 1\nimport = [\"all\"]\nexport = [\"all\"]\n{extra}\n")
    };
    let a = Daemon::start(
        d,
        "a",
        &(g("a", 1, 11181) + &p("b", 11182, "") + &originate("2001:db8:1::/48")),
    );
    let b = Daemon::start(
        d,
        "b",
        &(g("b", 2, 11182) + &p("a", 11181, "passive = true") + &originate("2001:db8:2::/48")),
    );
    a.wait_established("b");
    b.wait_for(|b| b.best("2001:db8:1::/48").is_some(), "v6 route at b");
    a.wait_for(|a| a.best("2001:db8:2::/48").is_some(), "v6 route at a");
    let r = a.best("2001:db8:2::/48").expect("route");
    assert_eq!(r.next_hop.as_deref(), Some("::1"));
    assert!(a.peer("b").families.iter().any(|f| f == "ipv6-unicast"));
}

#[test]
fn both_sides_active_end_with_one_session() {
    // Neither side is passive: both connect, and RFC 4271 6.8 keeps exactly one
    // connection (the one opened by the higher router id) on both ends.
    let dir = tempdir();
    let d = dir.path();
    let a = Daemon::start(
        d,
        "a",
        &(global(d, "a", 13, 1, 64512)
            + &peer("b", 13, 2, 1, 64512, "")
            + &originate("10.13.1.0/24")),
    );
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 13, 2, 64512)
            + &peer("a", 13, 1, 2, 64512, "")
            + &originate("10.13.2.0/24")),
    );
    a.wait_established("b");
    b.wait_established("a");
    a.wait_for(|a| a.best("10.13.2.0/24").is_some(), "route at a");
    b.wait_for(|b| b.best("10.13.1.0/24").is_some(), "route at b");
    let (pa, pb) = (a.peer("b"), b.peer("a"));
    // Both ends agree on the surviving connection.
    let la = pa.local_address.expect("a local");
    let lb = pb.local_address.expect("b local");
    assert_ne!(la, lb);
    assert!(la.starts_with("127.0.13.1:") && lb.starts_with("127.0.13.2:"));
    let one_is_listener = la.ends_with(&format!(":{PORT}")) ^ lb.ends_with(&format!(":{PORT}"));
    assert!(one_is_listener, "{la} {lb}");
}

#[test]
fn graceful_restart_keeps_routes_stale_and_restarting_speaker_sets_r_bit() {
    let dir = tempdir();
    let d = dir.path();
    let gr = "[global.graceful_restart]\nenabled = false\n";
    let with_gr = "[global.graceful_restart]\nenabled = true\nrestart_time = 120\n";
    let a_cfg = global(d, "a", 14, 1, 64512).replace(gr, with_gr)
        + &peer("b", 14, 2, 1, 64512, "")
        + &originate("10.14.1.0/24");
    let mut a = Daemon::start(d, "a", &a_cfg);
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 14, 2, 64512).replace(gr, with_gr)
            + &peer("a", 14, 1, 2, 64512, "passive = true")),
    );
    b.wait_for(|b| b.best("10.14.1.0/24").is_some(), "route at b");
    assert!(b
        .peer("a")
        .capabilities_received
        .iter()
        .any(|c| c.contains("GracefulRestart") && c.contains("restart_state: false")));

    // The daemon dies without a NOTIFICATION: b keeps its routes as stale (RFC 4724 4.2).
    a.signal(libc::SIGKILL);
    a.wait_exit();
    b.wait_for(
        |b| b.best("10.14.1.0/24").is_some_and(|r| r.stale),
        "stale route kept at b",
    );

    // It comes back as a restarting speaker: R bit set, routes refreshed, stale cleared.
    drop(a);
    let a = Daemon::start_with(d, "a", &a_cfg, &["--graceful-restart"]);
    a.wait_established("b");
    b.wait_for(
        |b| {
            b.peer("a")
                .capabilities_received
                .iter()
                .any(|c| c.contains("GracefulRestart") && c.contains("restart_state: true"))
        },
        "restart state bit at b",
    );
    b.wait_for(
        |b| b.best("10.14.1.0/24").is_some_and(|r| !r.stale),
        "route refreshed at b",
    );
    // RFC 4724 4.1: the restarting speaker deferred its advertisements until b's
    // End-of-RIB.
    assert!(a.log_text().contains("deferring advertisements"));
}

#[test]
fn gtsm_accepts_ttl_255_only() {
    let dir = tempdir();
    let d = dir.path();
    // a requires TTL 255 (RFC 5082) from both b and c; b sends 255, c sends the eBGP
    // default of 1.
    let a = Daemon::start(
        d,
        "a",
        &(global(d, "a", 15, 1, 64512)
            + &peer("b", 15, 2, 1, 64513, "ttl_security = true")
            + &peer("c", 15, 3, 1, 64514, "ttl_security = true\npassive = true")),
    );
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 15, 2, 64513)
            + &peer("a", 15, 1, 2, 64512, "ttl_security = true\npassive = true")),
    );
    let c = Daemon::start(
        d,
        "c",
        &(global(d, "c", 15, 3, 64514) + &peer("a", 15, 1, 3, 64512, "")),
    );
    a.wait_established("b");
    b.wait_established("a");
    // c connects once a second. a accepts the handshake (one listener serves every
    // peer, so the minimum TTL is set on the accepted socket) and from then on drops
    // c's segments, so a never reaches Established with c. (c itself may briefly see
    // a's OPEN and KEEPALIVE, which a sends with TTL 255.)
    std::thread::sleep(Duration::from_secs(4));
    assert_ne!(a.state("c").as_deref(), Some("Established"));
    assert_eq!(a.peer("c").counters.established_transitions, 0);
    assert_eq!(a.peer("c").summary.prefixes_received, 0);
    drop(c);
}

#[test]
fn drop_in_directory_adds_and_removes_peers() {
    // A renderer (confd) writes one file per peer into the drop-in directory.
    let dir = tempdir();
    let d = dir.path();
    let peers_d = d.join("peers.d");
    std::fs::create_dir(&peers_d).expect("mkdir");
    let a = Daemon::start(
        d,
        "a",
        &(global(d, "a", 16, 1, 64512).replace(
            "[global.control]",
            "include_dir = \"peers.d\"\n[global.control]",
        )),
    );
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 16, 2, 64512) + &peer("a", 16, 1, 2, 64512, "passive = true")),
    );
    let c = Daemon::start(
        d,
        "c",
        &(global(d, "c", 16, 3, 64512) + &peer("a", 16, 1, 3, 64512, "passive = true")),
    );
    std::fs::write(peers_d.join("b.toml"), peer("b", 16, 2, 1, 64512, "")).expect("write");
    a.wait_established("b");
    std::fs::write(peers_d.join("c.toml"), peer("c", 16, 3, 1, 64512, "")).expect("write");
    a.wait_established("c");
    std::fs::remove_file(peers_d.join("c.toml")).expect("rm");
    a.wait_for(|a| a.state("c").is_none(), "c removed");
    c.wait_for(
        |c| {
            c.peer("a")
                .last_notification_received
                .is_some_and(|n| n.contains("6/3"))
        },
        "Cease 6/3 at c",
    );
    assert_eq!(a.peer("b").counters.established_transitions, 1);
    assert_eq!(b.peer("a").counters.established_transitions, 1);
}

impl Daemon {
    fn status(&self) -> bgp_control::DaemonStatus {
        match self.request(Ctl::Status) {
            Reply::Status(s) => s,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    fn reload(&self) {
        match self.request(Ctl::Reload) {
            Reply::Done { .. } => {}
            other => panic!("unexpected reply {other:?}"),
        }
    }
}

#[test]
fn reload_applies_router_id_and_asn_by_restarting_sessions() {
    let dir = tempdir();
    let d = dir.path();
    let a_cfg = |asn: u32, rid: &str| {
        global(d, "a", 45, 1, asn).replace(
            "router_id = \"10.45.0.1\"",
            &format!("router_id = \"{rid}\""),
        ) + &peer("b", 45, 2, 1, 64512, "")
            + &originate("10.45.1.0/24")
    };
    let b_cfg = |remote_as: u32| {
        global(d, "b", 45, 2, 64512) + &peer("a", 45, 1, 2, remote_as, "passive = true")
    };
    let a = Daemon::start_with(d, "a", &a_cfg(64512, "10.45.0.1"), &["--no-watch"]);
    let b = Daemon::start_with(d, "b", &b_cfg(64512), &["--no-watch"]);
    b.wait_established("a");
    assert_eq!(b.peer("a").peer_id.as_deref(), Some("10.45.0.1"));

    // New router id: every session restarts with Cease 6/6 and comes back with it.
    std::fs::write(&a.config, a_cfg(64512, "10.45.0.99")).expect("write");
    a.reload();
    assert_eq!(a.status().router_id, "10.45.0.99");
    b.wait_for(
        |b| {
            let p = b.peer("a");
            p.summary.state == "Established" && p.peer_id.as_deref() == Some("10.45.0.99")
        },
        "session back with the new router id",
    );
    let p = b.peer("a");
    assert!(
        p.last_notification_received
            .as_deref()
            .is_some_and(|n| n.contains("6/6")),
        "{p:?}"
    );
    assert_eq!(p.counters.established_transitions, 2);

    // New AS (b follows with remote_as): the session turns eBGP, routes carry the new AS.
    std::fs::write(&a.config, a_cfg(64513, "10.45.0.99")).expect("write");
    a.reload();
    std::fs::write(&b.config, b_cfg(64513)).expect("write");
    b.reload();
    assert_eq!(a.status().asn, 64513);
    assert_eq!(a.peer("b").local_as, 64513);
    b.wait_for(
        |b| {
            b.state("a").as_deref() == Some("Established")
                && b.best("10.45.1.0/24").is_some_and(|r| r.as_path == "64513")
        },
        "route from a over eBGP with AS 64513",
    );
    let log = a.log_text();
    assert!(
        log.contains("AS or router id changed: restarting every session"),
        "{log}"
    );
}

#[test]
fn reload_moves_the_control_socket_and_changes_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let d = dir.path();
    let cfg = global(d, "a", 46, 1, 64512);
    let mut a = Daemon::start_with(d, "a", &cfg, &["--no-watch"]);
    let old = a.socket.clone();
    let new = d.join("run").join("a2.sock");
    std::fs::write(
        &a.config,
        cfg.replace(&old.display().to_string(), &new.display().to_string())
            .replace("mode = \"0600\"", "mode = \"0640\""),
    )
    .expect("write");
    a.reload();
    a.socket = new.clone();
    a.wait_for(
        |a| a.try_request(Ctl::Status).is_ok(),
        "control socket at the new path",
    );
    a.wait_for(|_| !old.exists(), "old socket file removed");
    let mode = |p: &Path| std::fs::metadata(p).expect("socket").permissions().mode() & 0o777;
    assert_eq!(mode(&new), 0o640);
    // Same path, other mode: applied to the socket file in place.
    std::fs::write(
        &a.config,
        cfg.replace(&old.display().to_string(), &new.display().to_string()),
    )
    .expect("write");
    a.reload();
    a.wait_for(|_| mode(&new) == 0o600, "mode 0600");
    assert_eq!(a.status().asn, 64512);
}

#[test]
fn include_dir_created_after_start_is_watched() {
    let dir = tempdir();
    let d = dir.path();
    let a = Daemon::start(
        d,
        "a",
        &(global(d, "a", 47, 1, 64512).replace(
            "[global.control]",
            "include_dir = \"later.d\"\n[global.control]",
        )),
    );
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 47, 2, 64512) + &peer("a", 47, 1, 2, 64512, "passive = true")),
    );
    let c = Daemon::start(
        d,
        "c",
        &(global(d, "c", 47, 3, 64512) + &peer("a", 47, 1, 3, 64512, "passive = true")),
    );
    a.wait_for(
        |a| {
            a.log_text()
                .contains("include_dir does not exist: watching for it")
        },
        "waiting for the directory",
    );
    // The directory appears with a file already in it (rename of a prepared one).
    let tmp = d.join("later.d.tmp");
    std::fs::create_dir(&tmp).expect("mkdir");
    std::fs::write(tmp.join("b.toml"), peer("b", 47, 2, 1, 64512, "")).expect("write");
    std::fs::rename(&tmp, d.join("later.d")).expect("rename");
    a.wait_established("b");
    // From now on the directory itself is watched.
    std::fs::write(
        d.join("later.d").join("c.toml"),
        peer("c", 47, 3, 1, 64512, ""),
    )
    .expect("write");
    a.wait_established("c");
    assert_eq!(b.peer("a").counters.established_transitions, 1);
    drop(c);
}
