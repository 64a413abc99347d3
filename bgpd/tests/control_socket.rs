//! What a local client can hold of the control sockets: a bounded number of connections
//! (the next one is told so and closed), a bounded idle time, a bounded time to read an
//! answer; and large tables read a page at a time (`show_routes` with `limit`/`after`,
//! `bgpctl show routes`) or streamed, never built whole.
//!
//! No root needed: 127.0.77.x and 127.0.78.x, sockets in a temporary directory.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use bgp_control::{
    Command as Ctl, Outcome, Reply, Request, Response, RouteCursor, RouteEntry, Table,
};
use support::Daemon;

const ROUTES: u32 = 12_000;

/// bgpd at 127.0.NET.1 with `ROUTES` originated /32s, the control settings `control`.
fn config(dir: &Path, net: u8, control: &str) -> String {
    let mut c = support::global_toml(
        dir,
        "a",
        64512,
        &format!("10.{net}.0.1"),
        &format!("127.0.{net}.1:11179"),
        control,
    );
    for i in 0..ROUTES {
        c.push_str(&format!(
            "[[originate]]\nprefix = \"10.{net}.{}.{}/32\"\n",
            i / 256,
            i % 256
        ));
    }
    c
}

fn connect(path: &Path) -> UnixStream {
    let s = UnixStream::connect(path).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s
}

fn send(s: &mut UnixStream, c: Ctl) {
    let mut line = serde_json::to_vec(&Request::new(c)).expect("json");
    line.push(b'\n');
    s.write_all(&line).expect("write");
}

fn read_response(r: &mut BufReader<UnixStream>) -> Response {
    let mut line = String::new();
    r.read_line(&mut line).expect("read");
    serde_json::from_str(&line).expect("a response line")
}

fn routes_request(limit: Option<u32>, after: Option<RouteCursor>) -> Ctl {
    Ctl::ShowRoutes {
        prefix: None,
        peer: None,
        table: Table::Loc,
        family: None,
        limit,
        after,
        longer: false,
        community: None,
    }
}

/// Whether the daemon closed `s` (end of stream) within `wait`.
fn closed_within(s: &mut UnixStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
        if start.elapsed() > wait {
            return false;
        }
    }
}

#[test]
fn connections_are_limited_and_idle_or_stuck_clients_dropped() {
    let dir = support::tempdir("bgpd-control");
    let d = dir.path();
    let bird = d.join("bird.ctl");
    let control = format!(
        "max_connections = 3\ntimeout = 2\nbird_socket = \"{}\"",
        bird.display()
    );
    let a = Daemon::start(d, "a", &config(d, 77, &control));
    a.wait_for(
        |a| a.loc_rib().len() == ROUTES as usize,
        "originated routes in the Loc-RIB",
    );

    // Three clients that never send anything hold every slot: the fourth is told so.
    let mut idle: Vec<UnixStream> = (0..3).map(|_| connect(&a.socket)).collect();
    let mut extra = BufReader::new(connect(&a.socket));
    match read_response(&mut extra).outcome {
        Outcome::Error { message } => assert!(message.contains("too many"), "{message}"),
        other => panic!("a connection over the limit was served: {other:?}"),
    }
    // The BIRD-compatible socket has its own slots and says the same in its own way.
    let bird_idle: Vec<UnixStream> = (0..3).map(|_| connect(&bird)).collect();
    let mut line = String::new();
    BufReader::new(connect(&bird))
        .read_line(&mut line)
        .expect("read");
    assert!(line.starts_with("8000 "), "{line:?}");
    // Idle clients are disconnected after the timeout, and the slots come back.
    for s in &mut idle {
        assert!(
            closed_within(s, Duration::from_secs(10)),
            "idle client kept"
        );
    }
    drop(bird_idle);
    a.wait_for(|a| a.try_request(Ctl::Status).is_ok(), "a slot free again");

    // Clients that ask for the whole table and never read it: each is dropped once a
    // write made no progress for the timeout, so they cannot hold the slots either.
    let stuck: Vec<UnixStream> = (0..3)
        .map(|_| {
            let mut s = connect(&a.socket);
            send(&mut s, routes_request(None, None));
            s
        })
        .collect();
    a.wait_for(
        |a| matches!(a.try_request(Ctl::Status), Ok(r) if matches!(r.outcome, Outcome::Ok { .. })),
        "stuck readers dropped",
    );
    // Their slots come back once the daemon sees them closed (a moment after the drop:
    // until then a new client can still be told "too many").
    drop(stuck);
    a.wait_for(
        |a| a.bgpctl(&["show", "status"]).status.success(),
        "bgpctl served once the stuck clients are gone",
    );
}

/// `r` without its age, which grows between two answers.
fn ageless(mut r: RouteEntry) -> RouteEntry {
    r.age_secs = None;
    r
}

#[test]
fn show_routes_pages_through_a_large_table() {
    let dir = support::tempdir("bgpd-control");
    let d = dir.path();
    let a = Daemon::start(d, "a", &config(d, 78, ""));
    a.wait_for(
        |a| a.loc_rib().len() == ROUTES as usize,
        "originated routes in the Loc-RIB",
    );

    // Pages of 5000 on one connection until `next` is absent.
    let mut s = connect(&a.socket);
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut pages: Vec<Vec<RouteEntry>> = Vec::new();
    let mut after = None;
    loop {
        send(&mut s, routes_request(Some(5000), after.take()));
        match read_response(&mut r).outcome {
            Outcome::Ok {
                result: Reply::Routes { routes, next },
            } => {
                assert!(routes.len() <= 5000, "a page holds at most its limit");
                pages.push(routes);
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(pages.first().map(Vec::len), Some(5000));
    let paged: Vec<RouteEntry> = pages.into_iter().flatten().map(ageless).collect();
    assert_eq!(paged.len(), ROUTES as usize);
    let prefixes: Vec<ipnet::IpNet> = paged
        .iter()
        .map(|e| e.prefix.parse().expect("prefix"))
        .collect();
    let mut sorted = prefixes.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(prefixes, sorted, "in order, each once");

    // Without a limit the whole table comes as one answer, streamed: the same routes.
    send(&mut s, routes_request(None, None));
    match read_response(&mut r).outcome {
        Outcome::Ok {
            result: Reply::Routes { routes, next },
        } => {
            assert_eq!(next, None);
            // The same routes, older by the time between the two answers.
            let routes: Vec<RouteEntry> = routes.into_iter().map(ageless).collect();
            assert_eq!(routes, paged);
        }
        other => panic!("{other:?}"),
    }

    // bgpctl pages through it: one header, every route, the legend once.
    let out = a.bgpctl(&["show", "routes"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), ROUTES as usize + 2, "header + routes + legend");
    assert!(lines[0].contains("Prefix"));
    assert_eq!(text.matches("Prefix").count(), 1);
    assert!(lines[ROUTES as usize + 1].starts_with("flags:"));
    let out = a.bgpctl(&["--json", "show", "routes"]);
    assert!(out.status.success(), "{out:?}");
    let resp: Response = serde_json::from_slice(&out.stdout).expect("one JSON answer");
    match resp.outcome {
        Outcome::Ok {
            result: Reply::Routes { routes, .. },
        } => assert_eq!(routes.into_iter().map(ageless).collect::<Vec<_>>(), paged),
        other => panic!("{other:?}"),
    }
    let out = a.bgpctl(&["show", "routes", "--limit", "7"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 7 + 2);
}
