//! The BIRD-compatible status socket (`[global.control] bird_socket`), end to end: two
//! bgpd on 127.0.60.0/24 (no root needed) establish, and
//!
//! * the real `birdcl` of the bird2 package prints the session in BIRD's format
//!   (`show protocols`, `show protocols all NAME`, `show status`); without birdcl that
//!   part prints a SKIPPED line (and fails when CI=true);
//! * calico-node's own checks, re-implemented here from its sources, pass on the raw
//!   socket: the readiness check of `calico-node -bird-ready`
//!   (calico `node/pkg/health/health.go` checkBIRDReady with
//!   `node/pkg/health/bird/bird.go` GetPeers/scanBIRDPeers/unmarshalBIRD and
//!   GRInProgress) and the liveness check of `-bird-live` (health.go: the output of
//!   `birdcl -s /var/run/calico/bird.ctl show status` must start with "BIRD").
//!
//! Waits poll a condition with a generous deadline; nothing asserts on elapsed time.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{originate, peer_toml, Daemon};

const PORT: u16 = 11179;
const NET: u8 = 60;

fn config(dir: &Path, name: &str, host: u8, bird: &str, peers: &str) -> String {
    support::global_toml(
        dir,
        name,
        64512,
        &format!("10.{NET}.0.{host}"),
        &format!("127.0.{NET}.{host}:{PORT}"),
        bird,
    ) + peers
        + &originate(&format!("10.244.{host}.0/26"))
}

fn peer(name: &str, address: &str, port: u16, source: &str, extra: &str) -> String {
    peer_toml(name, address, 64512, port, Some(source), extra)
}

/// calico node/pkg/health/bird/bird.go bgpPeer.
#[derive(Debug, PartialEq, Eq)]
struct CalicoPeer {
    peer_ip: String,
    peer_type: String,
    state: String,
    since: String,
    bgp_state: String,
    info: String,
}

/// calico scanBIRDPeers + unmarshalBIRD, line for line: Err where calico errors.
fn calico_scan_peers(lines: &[String], ip_sep: &str) -> Result<Vec<CalicoPeer>, String> {
    let mut peers = Vec::new();
    let unmarshal = |line: &str| -> Option<CalicoPeer> {
        let columns: Vec<&str> = line.split_whitespace().collect();
        if columns.len() < 6 || columns[1] != "BGP" {
            return None;
        }
        // ^(Global|Node|Mesh)_(.+)$
        let (kind, rest) = columns[0].split_once('_')?;
        let peer_type = match kind {
            "Global" => "global",
            "Mesh" => "node-to-node mesh",
            "Node" => "node specific",
            _ => return None,
        };
        if rest.is_empty() {
            return None;
        }
        Some(CalicoPeer {
            peer_ip: rest.replace('_', ip_sep),
            peer_type: peer_type.to_string(),
            state: columns[3].to_string(),
            since: columns[4].to_string(),
            bgp_state: columns[5].to_string(),
            info: columns[6..].join(" "),
        })
    };
    for str in lines {
        if str.starts_with("0000") {
            break;
        } else if str.starts_with("0001") {
        } else if str.starts_with("2002") {
            let f: Vec<&str> = str[5..].split_whitespace().collect();
            if f != ["name", "proto", "table", "state", "since", "info"] {
                return Err("unknown BIRD table output format".into());
            }
        } else if let Some(row) = str.strip_prefix("1002") {
            peers.extend(unmarshal(&row[1..]));
        } else if let Some(row) = str.strip_prefix(' ') {
            peers.extend(unmarshal(row));
        } else {
            return Err(format!("unexpected output line from BIRD: '{str}'"));
        }
    }
    Ok(peers)
}

/// calico GRInProgress: Ok(true) on a 0024 line, Err on an unexpected one.
fn calico_gr_in_progress(lines: &[String]) -> Result<bool, String> {
    for str in lines {
        if str.starts_with("0013") {
            break;
        } else if str.starts_with("0001")
            || str.starts_with("1000")
            || str.starts_with("1011")
            || str.starts_with(' ')
        {
        } else if str.starts_with("0024") {
            return Ok(true);
        } else {
            return Err(format!("unexpected output line from BIRD: '{str}'"));
        }
    }
    Ok(false)
}

/// calico `node/pkg/status/populators/route.go` route.
#[derive(Debug, PartialEq, Eq)]
struct CalicoRoute {
    dest: String,
    gateway: String,
    iface: String,
    learned_from: String,
    primary: bool,
}

/// `(?P<dest>\S*)\s*KEYWORD...\s\[(?P<from>\S*)\s.*\].*` of route.go's regexes: the
/// destination, the text between the keyword and the protocol bracket (backtracking as
/// the greedy `.*` does), and the protocol.
fn calico_split<'a>(s: &'a str, keyword: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let dest_end = s.find(char::is_whitespace).unwrap_or(s.len());
    let dest = &s[..dest_end];
    let k = s.find(keyword)?;
    let after = &s[k + keyword.len()..];
    // The last " [" that is followed by a word, whitespace and, later, a "]".
    let mut cut = after.len();
    while let Some(i) = after[..cut].rfind(" [") {
        let rest = &after[i + 2..];
        let word_end = rest.find(char::is_whitespace);
        if let Some(w) = word_end {
            if rest[w..].contains(']') {
                return Some((dest, &after[..i], &rest[..w]));
            }
        }
        cut = i;
    }
    None
}

/// route.go's unmarshalBIRD and scanBIRDRoutes.
fn calico_scan_routes(lines: &[String]) -> Result<Vec<CalicoRoute>, String> {
    let mut out: Vec<CalicoRoute> = Vec::new();
    let mut prev = String::new();
    for line in lines {
        let text = if line.starts_with("0000") {
            break;
        } else if line.starts_with("0001") {
            continue;
        } else if let Some(t) = line.strip_prefix("1007-") {
            t
        } else if let Some(t) = line.strip_prefix(' ') {
            t
        } else {
            return Err(format!("unexpected output line from BIRD: {line}"));
        };
        let (dest, gateway, iface, from) = if text.contains(" via ") {
            let (d, mid, f) = calico_split(text, "via ").ok_or(format!("via: {text}"))?;
            let (gw, ifc) = mid.split_once(" on ").ok_or(format!("on: {text}"))?;
            (d, gw.trim().to_string(), ifc.trim().to_string(), f)
        } else if text.contains(" dev ") {
            let (d, ifc, f) = calico_split(text, "dev ").ok_or(format!("dev: {text}"))?;
            (d, "N/A".into(), ifc.trim().to_string(), f)
        } else if text.contains(" blackhole ") {
            let (d, _, f) = calico_split(text, "blackhole").ok_or(format!("bh: {text}"))?;
            (d, "N/A".into(), "blackhole".into(), f)
        } else {
            return Err(format!("unparsed route line: {text}"));
        };
        let dest = if dest.is_empty() {
            prev.clone()
        } else {
            dest.to_string()
        };
        if dest.is_empty() {
            return Err(format!("no destination: {text}"));
        }
        prev = dest.clone();
        out.push(CalicoRoute {
            dest,
            gateway,
            iface,
            learned_from: from.to_string(),
            primary: text.contains("] *"),
        });
    }
    Ok(out)
}

/// The birdcl binary of the bird2 package, if installed.
fn birdcl() -> Option<PathBuf> {
    [
        "/usr/sbin/birdcl",
        "/usr/bin/birdcl",
        "/sbin/birdcl",
        "/bin/birdcl",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

fn run_birdcl(bin: &Path, sock: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .arg("-s")
        .arg(sock)
        .args(args)
        .output()
        .expect("running birdcl");
    assert!(out.status.success(), "birdcl {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn calico_health_checks_and_birdcl_read_bgpd() {
    let dir = support::tempdir("bgpd-bird");
    let d = dir.path();
    let bird4 = d.join("calico/bird.ctl");
    let bird6 = d.join("calico/bird6.ctl");
    let a_peers = peer(
        &format!("Mesh_127_0_{NET}_2"),
        &format!("127.0.{NET}.2"),
        PORT,
        &format!("127.0.{NET}.1"),
        "",
    ) + &peer(
        &format!("Node_127_0_{NET}_3"),
        &format!("127.0.{NET}.3"),
        PORT,
        &format!("127.0.{NET}.1"),
        "",
    ) + &peer("Global_1", "::1", 9, "::1", "");
    let a = Daemon::start(
        d,
        "a",
        &config(
            d,
            "a",
            1,
            &format!(
                "bird_socket = \"{}\"\nbird6_socket = \"{}\"",
                bird4.display(),
                bird6.display()
            ),
            &a_peers,
        ),
    );
    let b_bird6 = d.join("b/bird6.ctl");
    let b = Daemon::start(
        d,
        "b",
        &config(
            d,
            "b",
            2,
            &format!("bird6_socket = \"{}\"", b_bird6.display()),
            &peer(
                &format!("Mesh_127_0_{NET}_1"),
                &format!("127.0.{NET}.1"),
                PORT,
                &format!("127.0.{NET}.2"),
                "passive = true",
            ),
        ),
    );
    let mesh = format!("Mesh_127_0_{NET}_2");
    a.wait_for(
        |a| a.state(&mesh).as_deref() == Some("Established"),
        "mesh session Established",
    );
    b.wait_for(
        |b| b.state(&format!("Mesh_127_0_{NET}_1")).as_deref() == Some("Established"),
        "mesh session Established at b",
    );

    // Both blocks in a's Loc-RIB (ours and b's).
    a.wait_for(
        |_| {
            support::bird_raw(&bird4, "show route count")
                .last()
                .map(String::as_str)
                == Some("0014 2 of 2 routes for 2 networks")
        },
        "two routes counted",
    );

    // The CalicoNodeStatus route reporter's `show route`, parsed as calico-node does: our
    // block from static1 (a blackhole), b's from the mesh session via b.
    let routes = support::bird_raw(&bird4, "show route");
    let parsed = calico_scan_routes(&routes).expect("calico parses show route");
    assert_eq!(parsed.len(), 2, "{routes:#?}");
    let ours = parsed
        .iter()
        .find(|r| r.dest == "10.244.1.0/26")
        .expect("our block");
    assert_eq!(
        (
            ours.iface.as_str(),
            ours.learned_from.as_str(),
            ours.primary
        ),
        ("blackhole", "static1", true),
        "{routes:#?}"
    );
    let theirs = parsed
        .iter()
        .find(|r| r.dest == "10.244.2.0/26")
        .expect("b's block");
    assert_eq!(theirs.gateway, format!("127.0.{NET}.2"), "{routes:#?}");
    assert_eq!(theirs.learned_from, mesh, "{routes:#?}");
    assert!(theirs.primary);
    let only = support::bird_raw(&bird4, &format!("show route protocol {mesh}"));
    assert_eq!(
        calico_scan_routes(&only).map(|r| r.len()),
        Ok(1),
        "{only:#?}"
    );

    // calico-node -bird-ready, on the raw socket.
    let lines = support::bird_raw(&bird4, "show protocols");
    let version = concat!("0001 BIRD v", env!("CARGO_PKG_VERSION"), "+bgpd ready.");
    assert_eq!(lines[0], version, "{lines:#?}");
    let peers = calico_scan_peers(&lines, ".").expect("calico parses show protocols");
    assert_eq!(peers.len(), 2, "IPv4 sessions only: {peers:#?}");
    let up = &peers[0];
    assert_eq!(up.peer_ip, format!("127.0.{NET}.2"));
    assert_eq!(up.peer_type, "node-to-node mesh");
    assert_eq!(
        (up.state.as_str(), up.bgp_state.as_str()),
        ("up", "Established")
    );
    assert_eq!(up.since.matches(':').count(), 2, "time of day: {up:?}");
    let down = &peers[1];
    assert_eq!(down.peer_ip, format!("127.0.{NET}.3"));
    assert_eq!(down.peer_type, "node specific");
    assert_eq!(down.state, "start");
    assert_ne!(down.bgp_state, "Established");
    // checkBIRDReady: at least one established peer, and no graceful restart running.
    let status = support::bird_raw(&bird4, "show status");
    assert_eq!(calico_gr_in_progress(&status), Ok(false), "{status:#?}");
    assert_eq!(
        status.last().map(String::as_str),
        Some("0013 Daemon is up and running")
    );

    // The IPv6 socket answers for the IPv6 session only (BIRD 1.x's bird6).
    let lines6 = support::bird_raw(&bird6, "show protocols");
    let peers6 = calico_scan_peers(&lines6, ":").expect("calico parses bird6");
    assert_eq!(peers6.len(), 1, "{lines6:#?}");
    assert_eq!(peers6[0].peer_type, "global");
    assert_eq!(peers6[0].state, "start");

    // No IPv6 sessions at all: an empty table, which calico-node takes as ready (no peers).
    let empty = support::bird_raw(&b_bird6, "show protocols");
    assert_eq!(calico_scan_peers(&empty, ":"), Ok(vec![]), "{empty:#?}");
    assert_eq!(empty.last().map(String::as_str), Some("0000 "));

    // The status reporter's `show protocols all NAME` (node/pkg/status/populators/peers.go).
    let all = support::bird_raw(&bird4, &format!("show protocols all {mesh}"));
    let value = |key: &str| {
        all.iter()
            .find(|l| l.contains(key))
            .map(|l| l.replace(key, " ").trim().to_string())
    };
    assert_eq!(
        value("BGP state:").as_deref(),
        Some("Established"),
        "{all:#?}"
    );
    assert_eq!(
        value("Neighbor address:"),
        Some(format!("127.0.{NET}.2")),
        "{all:#?}"
    );
    // Read-only: BIRD's restricted-mode answer, and the session stays.
    let denied = support::bird_raw(&bird4, &format!("disable {mesh}"));
    assert_eq!(
        denied.last().map(String::as_str),
        Some("8007 Access denied")
    );
    assert_eq!(a.state(&mesh).as_deref(), Some("Established"));
    let unknown = support::bird_raw(&bird4, "show protocols NoSuch_1");
    assert_eq!(
        unknown.last().map(String::as_str),
        Some("9001 syntax error")
    );

    // A reload moves the IPv4 socket and closes the IPv6 one; sessions stay.
    let moved = d.join("moved/bird.ctl");
    std::fs::write(
        d.join("a.toml"),
        config(
            d,
            "a",
            1,
            &format!("bird_socket = \"{}\"", moved.display()),
            &a_peers,
        ),
    )
    .expect("rewriting a's config");
    a.signal(libc::SIGHUP);
    a.wait_for(
        |_| moved.exists() && !bird4.exists() && !bird6.exists(),
        "BIRD sockets follow the reload",
    );
    let lines = support::bird_raw(&moved, "show protocols");
    let peers = calico_scan_peers(&lines, ".").expect("calico parses show protocols");
    assert_eq!(peers[0].bgp_state, "Established", "{lines:#?}");
    let bird4 = moved;

    // The real birdcl.
    let Some(bin) = birdcl() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("birdcl (package bird2) is required under CI");
        }
        println!("SKIPPED: birdcl not installed (package bird2); the birdcl half of this test did not run");
        return;
    };
    // calico-node -bird-live: `birdcl -s /var/run/calico/bird.ctl show status` output must
    // start with "BIRD".
    let out = run_birdcl(&bin, &bird4, &["show", "status"]);
    println!("birdcl show status:\n{out}");
    assert!(out.starts_with("BIRD"), "{out}");
    let mut ls = out.lines();
    assert_eq!(
        ls.next(),
        Some(concat!("BIRD v", env!("CARGO_PKG_VERSION"), "+bgpd ready."))
    );
    assert_eq!(
        ls.next(),
        Some(concat!("BIRD v", env!("CARGO_PKG_VERSION"), "+bgpd"))
    );
    assert_eq!(
        ls.next(),
        Some(format!("Router ID is 10.{NET}.0.1").as_str())
    );
    for prefix in [
        "Current server time is ",
        "Last reboot on ",
        "Last reconfiguration on ",
    ] {
        let l = ls.next().unwrap_or_default();
        assert!(l.starts_with(prefix), "{l:?} in\n{out}");
        // %F %T
        assert_eq!(l.len(), prefix.len() + "2026-11-26 15:36:59".len(), "{l:?}");
    }
    assert_eq!(ls.next(), Some("Daemon is up and running"));

    let out = run_birdcl(&bin, &bird4, &["show", "protocols"]);
    println!("birdcl show protocols:\n{out}");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(
        rows[1],
        "name     proto    table    state  since       info"
    );
    let row = rows
        .iter()
        .find(|l| l.starts_with(&mesh))
        .unwrap_or_else(|| panic!("no {mesh} row in\n{out}"));
    // %-8s %-8s %-8s %-5s  %-10s  %-14s
    assert!(
        row.starts_with(&format!("{mesh} BGP      master   up     ")),
        "{row:?}"
    );
    assert_eq!(
        row.split_whitespace().nth(5),
        Some("Established"),
        "{row:?}"
    );
    assert!(row.ends_with("  Established   "), "{row:?}");

    let out = run_birdcl(&bin, &bird4, &["show", "protocols", "all", &mesh]);
    println!("birdcl show protocols all {mesh}:\n{out}");
    for want in [
        "  BGP state:          Established".to_string(),
        format!("    Neighbor address: 127.0.{NET}.2"),
        "    Neighbor AS:      64512".to_string(),
        format!("    Neighbor ID:      10.{NET}.0.2"),
        format!("    Source address:   127.0.{NET}.1"),
        "  Routes:         1 imported, 1 exported, 1 preferred".to_string(),
    ] {
        assert!(out.lines().any(|l| l == want), "{want:?} not in\n{out}");
    }
    let out = run_birdcl(&bin, &bird4, &["show", "route", "count"]);
    assert_eq!(
        out.lines().nth(1),
        Some("2 of 2 routes for 2 networks"),
        "{out}"
    );
}

/// After `bgpd -R` (RFC 4724 restarting speaker), `show status` reports the graceful
/// restart recovery (0024, which fails calico-node's readiness check) until every peer sent
/// End-of-RIB, and no longer than the restart time: a peer that never comes back must not
/// keep the node "not ready" forever. 127.0.75.x, restart time 3 s.
#[test]
fn graceful_restart_recovery_ends_at_the_restart_time() {
    let dir = support::tempdir("bgpd-bird-gr");
    let d = dir.path();
    let bird4 = d.join("bird.ctl");
    let config = format!(
        r#"[global]
asn = 64512
router_id = "10.75.0.1"
listen = ["127.0.75.1:{PORT}"]
[global.control]
socket = "{}"
mode = "0600"
bird_socket = "{}"
[global.graceful_restart]
enabled = true
restart_time = 3
[policies.all]
default = "accept"
"#,
        d.join("a.sock").display(),
        bird4.display()
    ) + &peer("Mesh_127_0_75_2", "127.0.75.2", PORT, "127.0.75.1", "");
    let a = Daemon::start_with(d, "a", &config, &["-R"]);
    // The peer never comes up: recovery is in progress at first ...
    let lines = support::bird_raw(&bird4, "show status");
    assert_eq!(calico_gr_in_progress(&lines), Ok(true), "{lines:#?}");
    // ... and over once the restart time passed.
    a.wait_for(
        |_| calico_gr_in_progress(&support::bird_raw(&bird4, "show status")) == Ok(false),
        "graceful restart recovery over",
    );
    match a.request(bgp_control::Command::Status) {
        bgp_control::Reply::Status(s) => {
            assert!(!s.graceful_restart_in_progress, "{s:?}");
            assert!(s.uptime_secs >= 2, "ended by the deadline: {s:?}");
        }
        other => panic!("unexpected reply {other:?}"),
    }
}
