//! The metrics endpoint (`[global.metrics]`) scraped over real HTTP from a running bgpd
//! with a real peer (a second bgpd), and `bgpctl log level` changing what bgpd logs.
//!
//! Speakers live on 127.0.91.0/24 and 127.0.92.0/24 (no root needed). The exposition is
//! parsed as a scraper would (every sample after its `# TYPE`), and values are checked
//! against what the peers did: state, prefixes announced, UPDATEs, KEEPALIVEs, a
//! NOTIFICATION by code and subcode, the RIB per family, reloads.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use support::{originate, peer_toml, Daemon};

const PORT: u16 = 11179;

/// One sample: its labels and value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format, checking that every sample follows the `# TYPE` of
/// its family and that no family is declared twice.
fn parse(text: &str) -> Vec<Sample> {
    let mut declared: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split(' ');
            let (name, kind) = (w.next().expect("name"), w.next().expect("type"));
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            assert!(
                !declared.iter().any(|d| d == name),
                "declared twice: {name}"
            );
            declared.push(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
        let value: f64 = value.parse().expect("a numeric value");
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                (name.to_string(), labels(body))
            }
        };
        assert_eq!(
            declared.last().map(String::as_str),
            Some(name.as_str()),
            "sample outside its family: {line}"
        );
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

/// `k="v",k2="v2"` with `\\`, `\"` and `\n` escapes.
fn labels(body: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label value quoted");
        let mut value = String::new();
        loop {
            match chars.next().expect("closing quote") {
                '\\' => match chars.next().expect("escape") {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key, value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    out
}

/// Sends `request` and returns the status code and the body.
fn http(addr: SocketAddr, request: &[u8]) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(request)?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_string()))
}

fn scrape(addr: SocketAddr) -> Vec<Sample> {
    let (code, body) =
        http(addr, b"GET /metrics HTTP/1.1\r\nHost: bgpd\r\n\r\n").expect("scrape over HTTP");
    assert_eq!(code, 200, "{body}");
    parse(&body)
}

/// The value of `name` with the labels `want` (among others).
fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && want
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

fn global(dir: &Path, name: &str, net: u8, host: u8) -> String {
    support::global_toml(
        dir,
        name,
        64512,
        &format!("10.{net}.0.{host}"),
        &format!("127.0.{net}.{host}:{PORT}"),
        "",
    )
}

fn metrics(listen: &str) -> String {
    format!("[global.metrics]\nlisten = \"{listen}\"\n")
}

fn peer(name: &str, net: u8, host: u8, local_host: u8, extra: &str) -> String {
    peer_toml(
        name,
        &format!("127.0.{net}.{host}"),
        64512,
        PORT,
        Some(&format!("127.0.{net}.{local_host}")),
        extra,
    )
}

#[test]
fn metrics_endpoint_reports_peers_routes_and_reloads() {
    let dir = support::tempdir("bgpd-metrics");
    let d = dir.path();
    let endpoint: SocketAddr = "127.0.91.1:9179".parse().expect("addr");
    // Metrics go in the [global] part, before the policies the helper appends.
    let a_config = |listen: &str| {
        global(d, "a", 91, 1).replacen(
            "[global.graceful_restart]",
            &format!("{}[global.graceful_restart]", metrics(listen)),
            1,
        ) + &peer("b", 91, 2, 1, "")
    };
    let a = Daemon::start(d, "a", &a_config("127.0.91.1:9179"));
    let b_routes = ["10.91.1.0/24", "10.91.2.0/24", "10.91.3.0/24"];
    let b_config = |routes: &[&str]| {
        routes.iter().fold(
            global(d, "b", 91, 2) + &peer("a", 91, 1, 2, "passive = true"),
            |c, r| c + &originate(r),
        )
    };
    let b = Daemon::start(d, "b", &b_config(&b_routes));
    a.wait_established("b");
    let peer_b = [("peer", "b"), ("neighbor", "127.0.91.2")];
    a.wait_for(
        |_| value(&scrape(endpoint), "bgpd_peer_prefixes_received", &peer_b) == Some(3.0),
        "3 prefixes received from b in the metrics",
    );
    let m = scrape(endpoint);
    let established = [("peer", "b"), ("state", "Established")];
    assert_eq!(value(&m, "bgpd_peer_state", &established), Some(1.0));
    assert_eq!(
        value(&m, "bgpd_peer_state", &[("peer", "b"), ("state", "Idle")]),
        Some(0.0)
    );
    assert_eq!(value(&m, "bgpd_peer_up", &peer_b), Some(1.0));
    assert_eq!(value(&m, "bgpd_peer_prefixes_accepted", &peer_b), Some(3.0));
    assert_eq!(
        value(&m, "bgpd_peer_established_transitions_total", &peer_b),
        Some(1.0)
    );
    assert_eq!(value(&m, "bgpd_loc_rib_prefixes", &[]), Some(3.0));
    assert_eq!(value(&m, "bgpd_up", &[]), Some(1.0));
    assert!(
        value(
            &m,
            "bgpd_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ) == Some(1.0)
    );
    assert!(value(&m, "bgpd_uptime_seconds", &[]).is_some_and(|v| v >= 0.0));
    assert!(value(&m, "bgpd_peer_state_seconds", &peer_b).is_some_and(|v| v >= 0.0));
    assert_eq!(
        value(&m, "bgpd_peer_notifications_received_total", &peer_b),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "bgpd_config_reloads_total", &[("result", "applied")]),
        Some(0.0)
    );
    let updates = value(&m, "bgpd_peer_updates_received_total", &peer_b).expect("updates in");
    assert!(updates >= 1.0, "{updates}");
    // a's only routes are b's own: nothing goes back.
    assert_eq!(value(&m, "bgpd_peer_prefixes_sent", &peer_b), Some(0.0));
    // The RIB per family: b's three paths, one per prefix; no IPv6.
    let v4 = [("family", "ipv4-unicast")];
    assert_eq!(value(&m, "bgpd_rib_prefixes", &v4), Some(3.0));
    assert_eq!(value(&m, "bgpd_rib_paths", &v4), Some(3.0));
    let v6 = [("family", "ipv6-unicast")];
    assert_eq!(value(&m, "bgpd_rib_prefixes", &v6), Some(0.0));
    // Nothing waits for b once the routes are exchanged; no [kernel], no FIB series.
    assert_eq!(
        value(&m, "bgpd_peer_output_queue_bytes", &peer_b),
        Some(0.0)
    );
    assert_eq!(value(&m, "bgpd_kernel_fib_routes_installed", &[]), None);

    // KEEPALIVEs (hold time 9: one every 3 s each way) and every message counted.
    a.wait_for(
        |_| {
            let m = scrape(endpoint);
            value(&m, "bgpd_peer_keepalives_received_total", &peer_b).is_some_and(|v| v >= 2.0)
                && value(&m, "bgpd_peer_keepalives_sent_total", &peer_b).is_some_and(|v| v >= 2.0)
        },
        "KEEPALIVEs counted both ways",
    );
    let m = scrape(endpoint);
    let count = |name: &str| value(&m, name, &peer_b).expect(name);
    // Received: b's OPEN, its KEEPALIVEs (the first confirms the OPEN) and UPDATEs.
    assert!(
        count("bgpd_peer_messages_received_total")
            >= 1.0
                + count("bgpd_peer_keepalives_received_total")
                + count("bgpd_peer_updates_received_total"),
        "{:?}",
        (
            count("bgpd_peer_messages_received_total"),
            count("bgpd_peer_keepalives_received_total"),
            count("bgpd_peer_updates_received_total")
        )
    );
    assert!(
        count("bgpd_peer_messages_sent_total") >= 1.0 + count("bgpd_peer_keepalives_sent_total")
    );

    // b announces one more prefix: counters move.
    std::fs::write(
        &b.config,
        b_config(&[&b_routes[..], &["10.91.4.0/24"]].concat()),
    )
    .expect("config");
    assert_eq!(b.bgpctl(&["reload"]).status.code(), Some(0));
    a.wait_for(
        |_| value(&scrape(endpoint), "bgpd_peer_prefixes_received", &peer_b) == Some(4.0),
        "the new prefix counted",
    );
    let m = scrape(endpoint);
    let more = value(&m, "bgpd_peer_updates_received_total", &peer_b).expect("updates in");
    assert!(more > updates, "{more} > {updates}");

    // b resets the session: a receives Cease / Administrative Reset (6/4), counted by
    // code and subcode; the session comes back.
    assert_eq!(b.bgpctl(&["peer", "a", "reset"]).status.code(), Some(0));
    let reset = [
        ("peer", "b"),
        ("direction", "received"),
        ("code", "6"),
        ("subcode", "4"),
    ];
    a.wait_for(
        |_| value(&scrape(endpoint), "bgpd_peer_notifications_total", &reset) == Some(1.0),
        "the NOTIFICATION counted by code and subcode",
    );
    let m = scrape(endpoint);
    assert_eq!(
        value(&m, "bgpd_peer_notifications_received_total", &peer_b),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "bgpd_peer_notifications_total",
            &[("peer", "b"), ("direction", "sent")]
        ),
        None,
        "a sent none"
    );
    a.wait_for(
        |_| {
            value(
                &scrape(endpoint),
                "bgpd_peer_established_transitions_total",
                &peer_b,
            ) == Some(2.0)
        },
        "the session re-established",
    );

    // Reloads are counted by result; a bad metrics address is refused with its line.
    assert_eq!(a.bgpctl(&["reload"]).status.code(), Some(0));
    let m = scrape(endpoint);
    assert_eq!(
        value(&m, "bgpd_config_reloads_total", &[("result", "applied")]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "bgpd_config_last_reload_successful", &[]),
        Some(1.0)
    );
    let bad = a_config("127.0.91.1");
    let line = 1 + bad
        .lines()
        .position(|l| l == "listen = \"127.0.91.1\"")
        .expect("the bad line");
    std::fs::write(&a.config, &bad).expect("config");
    let out = a.bgpctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(err.contains(&format!("a.toml:{line}:")), "{err}");
    let m = scrape(endpoint);
    assert_eq!(
        value(&m, "bgpd_config_reloads_total", &[("result", "refused")]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "bgpd_config_last_reload_successful", &[]),
        Some(0.0)
    );

    // Another path is 404, another method 405.
    let (code, _) = http(endpoint, b"GET / HTTP/1.1\r\n\r\n").expect("GET /");
    assert_eq!(code, 404);
    let (code, _) = http(endpoint, b"GET /metrics/x HTTP/1.0\r\n\r\n").expect("GET");
    assert_eq!(code, 404);
    let (code, _) = http(endpoint, b"POST /metrics HTTP/1.1\r\n\r\n").expect("POST");
    assert_eq!(code, 405);

    // An oversized request is refused; a flood of idle connections holds slots only
    // until they time out, and bgpd keeps answering on its control socket meanwhile.
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    match http(endpoint, huge.as_bytes()) {
        Ok((code, _)) => assert_eq!(code, 431),
        // The server may close before reading all we send: a reset is a refusal too.
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        ),
    }
    let idle: Vec<TcpStream> = (0..64)
        .filter_map(|_| TcpStream::connect(endpoint).ok())
        .collect();
    assert!(!idle.is_empty());
    a.wait_established("b");
    a.wait_for(
        |_| http(endpoint, b"GET /metrics HTTP/1.1\r\n\r\n").is_ok_and(|(c, _)| c == 200),
        "a scrape served again once the idle connections timed out",
    );
    for s in &idle {
        let _ = s.shutdown(Shutdown::Both);
    }
    drop(idle);

    // A reload moves the endpoint: the new address answers, the old one is closed. The
    // daemon follows the applied configuration just after answering the reload: wait.
    std::fs::write(&a.config, a_config("127.0.91.1:9180")).expect("config");
    assert_eq!(a.bgpctl(&["reload"]).status.code(), Some(0));
    let moved: SocketAddr = "127.0.91.1:9180".parse().expect("addr");
    a.wait_for(
        |_| TcpStream::connect(endpoint).is_err(),
        "the old endpoint closed",
    );
    let m = scrape(moved);
    assert_eq!(
        value(&m, "bgpd_config_reloads_total", &[("result", "applied")]),
        Some(2.0)
    );
    // And removing the table closes it.
    std::fs::write(&a.config, global(d, "a", 91, 1) + &peer("b", 91, 2, 1, "")).expect("config");
    assert_eq!(a.bgpctl(&["reload"]).status.code(), Some(0));
    a.wait_for(
        |_| TcpStream::connect(moved).is_err(),
        "no endpoint without [global.metrics]",
    );
    drop(b);
}

#[test]
fn endpoint_that_cannot_be_bound_fails_the_start() {
    let dir = support::tempdir("bgpd-metrics");
    let d = dir.path();
    let taken = std::net::TcpListener::bind("127.0.91.9:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let config = global(d, "c", 91, 9).replacen(
        "[global.graceful_restart]",
        &format!("{}[global.graceful_restart]", metrics(&addr.to_string())),
        1,
    );
    let path = d.join("c.toml");
    std::fs::write(&path, config).expect("config");
    let out = std::process::Command::new(support::bgpd_bin())
        .arg("-c")
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .expect("bgpd");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the metrics endpoint"), "{err}");
}

#[test]
fn bgpctl_log_level_changes_what_is_logged() {
    let dir = support::tempdir("bgpd-log");
    let d = dir.path();
    // A peer nobody listens for: a connection attempt (logged at debug) every second.
    let config = global(d, "l", 92, 1) + &peer("nobody", 92, 9, 1, "");
    let l = Daemon::start(d, "l", &config);
    let count = |what: &str| l.log_text().matches(what).count();
    assert_eq!(count("connect failed"), 0, "no debug lines at info");
    let out = l.bgpctl(&["log", "level", "debug"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("debug"));
    l.wait_for(
        |_| count("connect failed") > 0,
        "debug lines once asked for",
    );

    // At warn, a reload's info line is no longer written; back at info it is.
    assert_eq!(l.bgpctl(&["log", "level", "warn"]).status.code(), Some(0));
    let applied = count("configuration applied");
    assert_eq!(l.bgpctl(&["reload"]).status.code(), Some(0));
    assert_eq!(
        count("configuration applied"),
        applied,
        "no info line at warn"
    );
    assert_eq!(
        l.bgpctl(&["log", "level", "info,bgp_speaker=info"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(l.bgpctl(&["reload"]).status.code(), Some(0));
    assert_eq!(count("configuration applied"), applied + 1, "info again");

    // A misspelt level is refused and changes nothing.
    let out = l.bgpctl(&["log", "level", "debgu"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a level"),
        "{out:?}"
    );
}

#[test]
fn rust_log_is_honoured_and_help_says_so() {
    let out = std::process::Command::new(support::bgpd_bin())
        .arg("--help")
        .output()
        .expect("bgpd --help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("RUST_LOG") && help.contains("BGPD_LOG"),
        "{help}"
    );
    assert!(help.contains("bgpctl log level"), "{help}");

    let dir = support::tempdir("bgpd-log");
    let d = dir.path();
    let config = global(d, "r", 92, 2) + &peer("nobody", 92, 9, 2, "");
    let path = d.join("r.toml");
    std::fs::write(&path, config).expect("config");
    let log = d.join("r.log");
    let mut child = std::process::Command::new(support::bgpd_bin())
        .arg("-c")
        .arg(&path)
        .env_remove("BGPD_LOG")
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("bgpd");
    let deadline = std::time::Instant::now() + support::DEADLINE;
    let mut seen = false;
    while std::time::Instant::now() < deadline && !seen {
        seen = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("connect failed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "RUST_LOG=debug gives debug lines");
}
