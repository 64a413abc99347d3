//! `bgpctl monitor` and the control socket's `monitor` stream against real bgpd processes
//! on loopback: a peer coming up, a route announced and withdrawn, the peer disabled, each
//! seen in the order it happened (JSON lines and human lines, the whole stream and one
//! peer's); a client that reads slowly loses events and is told how many, one that reads
//! nothing is disconnected, and neither slows the daemon down. Also the reason of a failed
//! connection: logged once while the attempts repeat, shown in `show peers` and in the
//! BIRD-compatible socket's info column as BIRD shows it.
//!
//! No root needed: 127.0.101.x, 127.0.102.x and 127.0.103.x, sockets in a temporary
//! directory.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bgp_control::{Command as Ctl, Event, MonitorEvent, Outcome, Reply, Request, Response};
use support::{global_toml, originate, peer_toml, Daemon, DEADLINE};

const PORT: u16 = 11179;

/// One session of a test speaker: the peer's name, host number (127.0.NET.HOST), AS and
/// extra lines.
type PeerOf<'a> = (&'a str, u8, u32, &'a str);

/// bgpd NAME at 127.0.NET.HOST (`at`), AS `asn`, with `control` lines, one peer, and
/// `rest` (routes) after it.
fn config(
    d: &Path,
    name: &str,
    at: (u8, u8),
    asn: u32,
    control: &str,
    peer: PeerOf,
    rest: &str,
) -> String {
    let (net, host) = at;
    let (peer_name, peer_host, peer_as, extra) = peer;
    global_toml(
        d,
        name,
        asn,
        &format!("10.{net}.0.{host}"),
        &format!("127.0.{net}.{host}:{PORT}"),
        control,
    ) + &peer_toml(
        peer_name,
        &format!("127.0.{net}.{peer_host}"),
        peer_as,
        PORT,
        Some(&format!("127.0.{net}.{host}")),
        extra,
    ) + rest
}

/// A bgpctl child whose stdout lines arrive on a channel; killed (by PID) when dropped.
struct Lines {
    child: Child,
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn bgpctl(d: &Daemon, args: &[&str]) -> Lines {
        let mut child = Command::new(support::bgpctl_bin())
            .arg("-s")
            .arg(&d.socket)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting bgpctl monitor");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Lines {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `f`; panics with what was seen after DEADLINE.
    fn until(&mut self, what: &str, f: impl Fn(&str) -> bool) {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            match self.rx.recv_timeout(Duration::from_millis(200)) {
                Ok(l) => {
                    let hit = f(&l);
                    self.seen.push(l);
                    if hit {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("no {what} in:\n{}", self.seen.join("\n"));
    }

    fn events(&self) -> Vec<MonitorEvent> {
        self.seen
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The position of the first event satisfying `f`.
fn position(events: &[MonitorEvent], what: &str, f: impl Fn(&Event) -> bool) -> usize {
    events
        .iter()
        .position(|e| f(&e.event))
        .unwrap_or_else(|| panic!("no {what} in {events:#?}"))
}

#[test]
fn monitor_shows_a_session_and_its_routes_in_order() {
    let dir = support::tempdir("bgpd-monitor");
    let d = dir.path();
    let net = 101;
    let a = Daemon::start(
        d,
        "a",
        &config(d, "a", (net, 1), 64512, "", ("b", 2, 64513, ""), ""),
    );
    // Both streams start before the peer exists: its whole life is in them.
    let mut all = Lines::bgpctl(&a, &["--json", "monitor"]);
    let mut only_b = Lines::bgpctl(&a, &["monitor", "--peer", "b"]);
    let b_cfg = |routes: &str| config(d, "b", (net, 2), 64513, "", ("a", 1, 64512, ""), routes);
    let b = Daemon::start(d, "b", &b_cfg(&originate("10.101.1.0/24")));
    a.wait_for(|a| a.best("10.101.1.0/24").is_some(), "b's route at a");
    all.until("the best path", |l| {
        l.contains("\"event\":\"best\"") && l.contains("10.101.1.0/24")
    });

    // b stops announcing the route: withdrawn, then unreachable at a.
    std::fs::write(&b.config, b_cfg("")).expect("b config");
    let out = b.bgpctl(&["reload"]);
    assert!(out.status.success(), "{out:?}");
    all.until("the route unreachable", |l| {
        l.contains("\"event\":\"unreachable\"")
    });
    // a disables b: the session goes down, with the reason.
    let out = a.bgpctl(&["peer", "b", "disable"]);
    assert!(out.status.success(), "{out:?}");
    all.until("b disabled", |l| l.contains("\"to\":\"Disabled\""));

    let ev = all.events();
    let up = position(
        &ev,
        "b Established",
        |e| matches!(e, Event::PeerState { peer, to, .. } if peer == "b" && to == "Established"),
    );
    let announced = position(
        &ev,
        "the announcement",
        |e| matches!(e, Event::Announced { peer, route } if peer == "b" && route.prefix == "10.101.1.0/24"),
    );
    let best = position(
        &ev,
        "the best path",
        |e| matches!(e, Event::Best { prefix, next_hops, source } if prefix == "10.101.1.0/24" && next_hops == &["127.0.101.2"] && source == "bgp"),
    );
    let withdrawn = position(
        &ev,
        "the withdrawal",
        |e| matches!(e, Event::Withdrawn { peer, prefix, .. } if peer == "b" && prefix == "10.101.1.0/24"),
    );
    let unreachable = position(
        &ev,
        "unreachable",
        |e| matches!(e, Event::Unreachable { prefix } if prefix == "10.101.1.0/24"),
    );
    let down = position(
        &ev,
        "b disabled",
        |e| matches!(e, Event::PeerState { peer, from, to, reason } if peer == "b" && from == "Established" && to == "Disabled" && reason.is_some()),
    );
    assert!(
        up < announced
            && announced < best
            && best < withdrawn
            && withdrawn < unreachable
            && unreachable < down,
        "out of order: {ev:#?}"
    );
    // b's states form one chain, each change leaving the state the last one entered
    // (states passed within one step of its task are not reported on their own).
    let chain: Vec<(&str, &str)> = ev
        .iter()
        .filter_map(|e| match &e.event {
            Event::PeerState { peer, from, to, .. } if peer == "b" => {
                Some((from.as_str(), to.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(chain.first().map(|c| c.0), Some("Idle"), "{chain:?}");
    assert!(chain.windows(2).all(|w| w[0].1 == w[1].0), "{chain:?}");
    // The announced path with its attributes; the AS path as segments (eBGP: b's AS).
    let Event::Announced { route, .. } = &ev[announced].event else {
        unreachable!()
    };
    assert_eq!(route.next_hop.as_deref(), Some("127.0.101.2"));
    assert_eq!(route.as_path, "64513");
    assert_eq!(route.as_path_segments.len(), 1);
    assert_eq!(route.as_path_segments[0].kind, "sequence");
    assert_eq!(route.as_path_segments[0].asns, [64513]);
    // Times never go backwards.
    assert!(ev.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "{ev:#?}");

    // The human stream of b alone: the same story, no best-path lines.
    only_b.until("b disabled (human)", |l| {
        l.contains("peer b: Established -> Disabled")
    });
    let text = only_b.seen.join("\n");
    let at = |s: &str| {
        only_b
            .seen
            .iter()
            .position(|l| l.contains(s))
            .unwrap_or_else(|| panic!("no {s:?} in:\n{text}"))
    };
    assert!(
        at(" -> Established")
            < at("peer b: announced 10.101.1.0/24 via 127.0.101.2 as-path [64513] origin IGP")
            && at("peer b: announced 10.101.1.0/24") < at("peer b: withdrew 10.101.1.0/24")
            && at("peer b: withdrew 10.101.1.0/24") < at("peer b: Established -> Disabled"),
        "{text}"
    );
    assert!(
        !text.contains(" best ") && !text.contains("unreachable"),
        "{text}"
    );

    // An unknown peer is an error answer, exit 1.
    let out = a.bgpctl(&["monitor", "--peer", "nope"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no peer named"),
        "{out:?}"
    );
}

/// Opens a raw monitoring connection and reads the answer to the request.
fn raw_monitor(sock: &Path, peer: Option<&str>) -> BufReader<UnixStream> {
    let mut s = UnixStream::connect(sock).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut line = serde_json::to_vec(&Request::new(Ctl::Monitor {
        peer: peer.map(str::to_owned),
    }))
    .expect("json");
    line.push(b'\n');
    s.write_all(&line).expect("request");
    let mut r = BufReader::new(s);
    let mut first = String::new();
    r.read_line(&mut first).expect("answer");
    let resp: Response = serde_json::from_str(&first).expect("a response");
    assert!(
        matches!(
            resp.outcome,
            Outcome::Ok {
                result: Reply::Done { .. }
            }
        ),
        "{first}"
    );
    r
}

fn next_event(r: &mut BufReader<UnixStream>) -> Option<MonitorEvent> {
    let mut l = String::new();
    if r.read_line(&mut l).ok()? == 0 {
        return None;
    }
    match serde_json::from_str::<Response>(&l)
        .expect("a response line")
        .outcome
    {
        Outcome::Ok {
            result: Reply::Event(e),
        } => Some(*e),
        other => panic!("{other:?}"),
    }
}

#[test]
fn slow_monitors_lose_events_and_stuck_ones_are_dropped() {
    const ROUTES: u32 = 6000;
    let dir = support::tempdir("bgpd-monitor-slow");
    let d = dir.path();
    let net = 102;
    // A short write timeout: a client that takes nothing for 3 s is dropped.
    let a = Daemon::start(
        d,
        "a",
        &config(
            d,
            "a",
            (net, 1),
            64512,
            "timeout = 3",
            ("b", 2, 64512, ""),
            "",
        ),
    );
    let mut slow = raw_monitor(&a.socket, None);
    let mut stuck = raw_monitor(&a.socket, None);
    let mut routes = String::new();
    for i in 0..ROUTES {
        routes.push_str(&originate(&format!("10.102.{}.{}/32", i / 256, i % 256)));
    }
    let b = config(d, "b", (net, 2), 64512, "", ("a", 1, 64512, ""), &routes);
    let _b = Daemon::start(d, "b", &b);

    // The slow client takes a line every 5 ms while two events per route pour in (the
    // announcement and the best path); meanwhile the daemon answers as usual.
    let mut seen = Vec::new();
    let mut lagged = 0u64;
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < DEADLINE * 2,
            "stream never caught up: {seen:?}"
        );
        let e = next_event(&mut slow).expect("the slow client is not disconnected");
        if let Event::Lagged { lost } = e.event {
            lagged += lost;
        }
        let last_best = matches!(&e.event, Event::Best { prefix, .. } if prefix == &format!("10.102.{}.{}/32", (ROUTES - 1) / 256, (ROUTES - 1) % 256));
        seen.push(e);
        if lagged > 0 && a.loc_rib().len() == ROUTES as usize {
            break;
        }
        if last_best && lagged == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        lagged > 0,
        "a reader this slow should have lost events: {} seen",
        seen.len()
    );
    let t = Instant::now();
    assert!(matches!(a.request(Ctl::Status), Reply::Status(_)));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "status took {:?}",
        t.elapsed()
    );
    // After the gap the stream goes on: a's peer disabled is seen.
    let out = a.bgpctl(&["peer", "b", "disable"]);
    assert!(out.status.success(), "{out:?}");
    loop {
        let e = next_event(&mut slow).expect("the slow client still served");
        if matches!(&e.event, Event::PeerState { to, .. } if to == "Disabled") {
            break;
        }
    }

    // The stuck client read nothing since its first line: the daemon closed it (its
    // socket buffer holds what was written before the write timed out, then the end).
    let start = Instant::now();
    let mut buf = [0u8; 65536];
    loop {
        assert!(
            start.elapsed() < DEADLINE,
            "the stuck client was never disconnected"
        );
        match stuck.get_mut().read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("reading the stuck client: {e}"),
        }
    }
    let log = a.log_text();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn connection_refused_is_logged_once_and_shown_as_bird_does() {
    let dir = support::tempdir("bgpd-refused");
    let d = dir.path();
    let net = 103;
    let bird_sock = d.join("bird.ctl");
    // Nobody listens on 127.0.103.9: every attempt is refused by the kernel at once.
    let control = format!(
        "bird_socket = \"{}\"\nbird_format = \"bird2\"",
        bird_sock.display()
    );
    let ghost = ("ghost", 9, 64512, "disabled = true");
    let a = Daemon::start(
        d,
        "a",
        &config(d, "a", (net, 1), 64512, &control, ghost, ""),
    );
    // Enabled once the stream runs, so it sees the first attempts (1, 2, 4 s apart).
    let mut states = raw_monitor(&a.socket, Some("ghost"));
    let out = a.bgpctl(&["peer", "ghost", "enable"]);
    assert!(out.status.success(), "{out:?}");
    // Three refused attempts in a row, each a fall with the system's reason.
    let mut seen = Vec::new();
    while seen
        .iter()
        .filter(|e: &&MonitorEvent| {
            matches!(&e.event, Event::PeerState { reason: Some(r), .. } if r == "connect: Connection refused")
        })
        .count()
        < 3
    {
        seen.push(next_event(&mut states).unwrap_or_else(|| panic!("stream ended: {seen:#?}")));
    }
    let p = a
        .peers()
        .into_iter()
        .find(|p| p.name == "ghost")
        .expect("ghost");
    assert_eq!(
        p.connect_error.as_deref(),
        Some("Connection refused"),
        "{p:?}"
    );
    assert_eq!(
        p.last_error.as_deref(),
        Some("connect: Connection refused"),
        "{p:?}"
    );
    let out = a.bgpctl(&["show", "peers"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("connect: Connection refused"), "{text}");
    // Logged once, at info, for all those attempts.
    let log = a.log_text();
    let logged = log
        .lines()
        .filter(|l| l.contains("cannot connect") && l.contains("ghost"))
        .count();
    assert_eq!(logged, 1, "{log}");
    assert!(log.contains("Connection refused"), "{log}");
    // BIRD 2's show protocols: `Active        Socket: Connection refused`.
    let lines = support::bird_raw(&bird_sock, "show protocols");
    let row = lines
        .iter()
        .find(|l| l.contains("ghost"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(row.contains(" start "), "{row}");
    assert!(
        row.ends_with("Active        Socket: Connection refused"),
        "{row}"
    );
    let lines = support::bird_raw(&bird_sock, "show protocols all ghost");
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("Last error:       Socket: Connection refused")),
        "{lines:?}"
    );
}
