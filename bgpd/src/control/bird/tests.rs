//! Formatting tests (compiled only under `#[cfg(test)]`, from `control/bird.rs`). The
//! `fixtures/bird2_*.txt` files are byte captures of a real BIRD 2.0.12 (see
//! `fixtures/README.md`); the BIRD 1.6 layout is checked against the samples
//! in calico-node's own sources, which is what parses it.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bgp_speaker::config::PeerConfig;
use bgp_speaker::{Owner, Peer, PeerCounters, PeerState, PrefixCounts};

use bgp_speaker::config::BirdFormat;

use super::command::*;
use super::protocols::*;
use super::reply::*;
use super::status::*;
use super::time::*;
use super::*;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/control/bird/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A peer of a speaker in AS 64512.
fn peer(name: &str, addr: &str, remote_as: u32, state: PeerState) -> Peer {
    Peer {
        config: PeerConfig::new(name, addr.parse().unwrap(), remote_as),
        owner: Owner::Config,
        local_as: 64512,
        state,
        since: Instant::now(),
        last_error: None,
        last_notification_sent: None,
        last_notification_received: None,
        negotiated: None,
        local_address: None,
        remote_address: None,
        counters: PeerCounters::default(),
        notifications: Vec::new(),
        prefixes: PrefixCounts::default(),
    }
}

/// The four sessions of the BIRD capture: established, connecting (refused), passive,
/// disabled; with the capture's Since column.
fn capture_peers() -> Vec<(Peer, &'static str)> {
    let established = peer("Mesh_127_0_9_1", "127.0.9.1", 64512, PeerState::Established);
    let mut active = peer("Mesh_127_0_9_6", "127.0.9.6", 64512, PeerState::Active);
    active.last_error = Some("Socket: Connection refused".into());
    let mut passive = peer("Node_127_0_9_4", "127.0.9.4", 64513, PeerState::Active);
    passive.config.passive = true;
    passive.config.multihop = Some(64);
    let mut disabled = peer("Global_127_0_9_5", "127.0.9.5", 64512, PeerState::Disabled);
    disabled.config.disabled = true;
    vec![
        (established, "15:36:43.966"),
        (active, "15:36:43.780"),
        (passive, "15:36:43.780"),
        (disabled, "15:36:43.780"),
    ]
}

fn capture_protocols(preferred: Option<usize>, format: BirdFormat) -> Vec<Protocol> {
    capture_peers()
        .into_iter()
        .map(|(p, since)| {
            let mut proto = protocol(&p, SystemTime::now(), preferred, format);
            // BIRD 1.6 shows whole seconds.
            proto.since = match format {
                BirdFormat::Bird1 => since[..8].to_string(),
                BirdFormat::Bird2 => since.to_string(),
            };
            proto
        })
        .collect()
}

#[test]
fn hello_is_birds() {
    assert_eq!(hello("2.0.12").as_str(), fixture("bird2_hello.txt"));
    assert!(hello(BIRD_VERSION)
        .as_str()
        .starts_with(concat!("0001 BIRD v", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn bird2_show_protocols_is_byte_identical_to_the_capture() {
    let protos = capture_protocols(None, BirdFormat::Bird2);
    assert_eq!(
        show_protocols(&protos, false, &Select::All, BirdFormat::Bird2).as_str(),
        fixture("bird2_show_protocols.txt")
    );
}

#[test]
fn bird2_pattern_selection_and_no_match() {
    let protos: Vec<Protocol> = capture_protocols(None, BirdFormat::Bird2)
        .into_iter()
        .filter(|p| pattern_match("Node*", &p.name))
        .collect();
    let node = Select::Pattern("Node*".into());
    assert_eq!(
        show_protocols(&protos, false, &node, BirdFormat::Bird2).as_str(),
        fixture("bird2_show_protocols_pattern.txt")
    );
    assert_eq!(
        show_protocols(
            &[],
            false,
            &Select::Pattern("zz*".into()),
            BirdFormat::Bird2
        )
        .as_str(),
        fixture("bird2_no_protocols_match.txt")
    );
    // No peers at all: an empty table, which calico-node reads as ready.
    assert_eq!(
        show_protocols(&[], false, &Select::All, BirdFormat::Bird1).as_str(),
        "2002-name     proto    table    state  since       info\n0000 \n"
    );
}

#[test]
fn bird2_detail_lines_appear_in_birds_order() {
    // Every line we print for `show protocols all` is one BIRD printed, in the same order
    // (BIRD prints more: the channel block and timers we do not keep).
    let protos = capture_protocols(None, BirdFormat::Bird2);
    for (proto, file) in [
        (&protos[0], "bird2_show_protocols_all_established.txt"),
        (&protos[2], "bird2_show_protocols_all_passive.txt"),
        (&protos[3], "bird2_show_protocols_all_disabled.txt"),
    ] {
        let ours = show_protocols(
            std::slice::from_ref(proto),
            true,
            &Select::All,
            BirdFormat::Bird2,
        );
        let theirs = fixture(file);
        let mut theirs_lines = theirs.lines();
        for line in ours.as_str().lines() {
            assert!(
                theirs_lines.any(|t| t == line),
                "{file}: {line:?} is not in BIRD's output (in order):\n{theirs}\nours:\n{}",
                ours.as_str()
            );
        }
    }
    // The capture's established session, with what BIRD adds removed, is our detail.
    assert_eq!(
        protos[0].detail,
        [
            "  BGP state:          Established",
            "    Neighbor address: 127.0.9.1",
            "    Neighbor AS:      64512",
            "    Local AS:         64512",
        ]
    );
}

#[test]
fn bird2_show_status_is_byte_identical_to_the_capture() {
    let st = Status {
        version: "2.0.12".into(),
        router_id: "10.0.0.3".into(),
        hostname: Some("vm".into()),
        now: "2026-11-26 15:36:59.777".into(),
        boot: "2026-11-26 15:36:43.780".into(),
        reconfigured: "2026-11-26 15:36:43.780".into(),
        graceful_restart: None,
        down: Vec::new(),
    };
    assert_eq!(
        show_status(&st, BirdFormat::Bird2).as_str(),
        fixture("bird2_show_status.txt")
    );
}

#[test]
fn bird2_route_count_is_byte_identical_to_the_capture() {
    let v4 = RouteCount {
        paths: 2,
        prefixes: 2,
    };
    assert_eq!(
        show_route_count(
            v4,
            RouteCount::default(),
            SocketFamily::Ipv4,
            BirdFormat::Bird2
        )
        .as_str(),
        fixture("bird2_show_route_count_a.txt")
    );
}

#[test]
fn refusals_use_birds_codes() {
    let denied = refusal(&parse("disable Mesh_127_0_9_1")).unwrap();
    assert_eq!(denied.as_str(), fixture("bird2_access_denied.txt"));
    for cmd in [
        "configure",
        "restart all",
        "reload in x",
        "down",
        "enable x",
    ] {
        assert_eq!(parse(cmd), BirdCommand::Denied, "{cmd}");
    }
    // BIRD appends the parser's detail to the message; code and text start alike.
    let syntax = refusal(&parse("show foo")).unwrap();
    assert_eq!(syntax.as_str(), "9001 syntax error\n");
    assert!(fixture("bird2_syntax_error.txt").starts_with("9001 syntax error"));
    assert!(refusal(&parse("show status")).is_none());
}

#[test]
fn bird1_layout_is_what_calico_parses() {
    let protos = capture_protocols(Some(1), BirdFormat::Bird1);
    let r = show_protocols(&protos, false, &Select::All, BirdFormat::Bird1);
    let text = r.as_str();
    let mut lines = text.lines();
    // nest/proto.c proto_cmd_show of BIRD 1.6; calico node/pkg/health/bird/bird.go
    // birdExpectedHeadings compares these words exactly.
    let head = lines.next().unwrap();
    assert_eq!(
        head,
        "2002-name     proto    table    state  since       info"
    );
    assert_eq!(
        head[5..].split_whitespace().collect::<Vec<_>>(),
        ["name", "proto", "table", "state", "since", "info"]
    );
    assert_eq!(
        lines.next().unwrap(),
        "1002-Mesh_127_0_9_1 BGP      master   up     15:36:43    Established   "
    );
    assert_eq!(
        lines.next().unwrap(),
        " Mesh_127_0_9_6 BGP      master   start  15:36:43    Active        Socket: Connection refused"
    );
    assert_eq!(
        lines.next().unwrap(),
        " Node_127_0_9_4 BGP      master   start  15:36:43    Passive       "
    );
    assert_eq!(
        lines.next().unwrap(),
        " Global_127_0_9_5 BGP      master   down   15:36:43    "
    );
    assert_eq!(lines.next().unwrap(), "0000 ");
    assert_eq!(lines.next(), None);
    // The sample row in calico's calicoctl/commands/node/status_test.go (a BIRD 1.5
    // capture, trailing padding trimmed there).
    let mut p = protos[0].clone();
    p.name = "Mesh_172_17_8_102".into();
    p.since = "2016-11-21".into();
    let r = show_protocols(&[p], false, &Select::All, BirdFormat::Bird1);
    assert_eq!(
        r.as_str().lines().nth(1).unwrap().trim_end(),
        "1002-Mesh_172_17_8_102 BGP      master   up     2016-11-21  Established"
    );
}

#[test]
fn bird1_detail_has_the_lines_calico_reads() {
    let protos = capture_protocols(Some(1), BirdFormat::Bird1);
    let r = show_protocols(&protos[1..2], true, &Select::All, BirdFormat::Bird1);
    let expected = [
        "2002-name     proto    table    state  since       info",
        "1002-Mesh_127_0_9_6 BGP      master   start  15:36:43    Active        Socket: Connection refused",
        "1006-  Routes:         0 imported, 0 exported, 1 preferred",
        "   BGP state:          Active",
        "     Neighbor address: 127.0.9.6",
        "     Neighbor AS:      64512",
        "     Last error:       Socket: Connection refused",
        " ",
        "0000 ",
    ];
    assert_eq!(r.as_str(), expected.join("\n") + "\n");
    // calico node/pkg/status/populators/peers.go getValue: text after the key, trimmed.
    let value = |key: &str| {
        r.as_str()
            .lines()
            .find(|l| l.contains(key))
            .map(|l| l.replace(key, " ").trim().to_string())
    };
    assert_eq!(value("BGP state:").as_deref(), Some("Active"));
    assert_eq!(value("Neighbor address:").as_deref(), Some("127.0.9.6"));
}

#[test]
fn bird1_status_and_graceful_restart_block() {
    let st = Status {
        version: BIRD_VERSION.into(),
        router_id: "172.18.0.4".into(),
        hostname: Some("vm".into()),
        now: "2018-04-03 22:59:51".into(),
        boot: "2018-04-03 22:59:26".into(),
        reconfigured: "2018-04-03 22:59:26".into(),
        graceful_restart: Some((215, 240)),
        down: Vec::new(),
    };
    // The sample in calico node/pkg/health/bird/bird.go GRInProgress (BIRD 1.6), without
    // the "Waiting for N protocols" line we cannot fill.
    assert_eq!(
        show_status(&st, BirdFormat::Bird1).as_str(),
        format!(
            "1000-BIRD {BIRD_VERSION}\n\
             1011-Router ID is 172.18.0.4\n\
             \x20Current server time is 2018-04-03 22:59:51\n\
             \x20Last reboot on 2018-04-03 22:59:26\n\
             \x20Last reconfiguration on 2018-04-03 22:59:26\n\
             0024-Graceful restart recovery in progress\n\
             \x20  Wait timer is 215/240\n\
             0013 Daemon is up and running\n"
        )
    );
}

#[test]
fn continuation_and_sanitising() {
    let mut r = Reply::new();
    r.more(1002, "a").more(1002, "b").more(1006, "c").end(0, "");
    assert_eq!(r.as_str(), "1002-a\n b\n1006-c\n0000 \n");
    let mut r = Reply::new();
    r.end(8000, "bad\nname\r\u{7f}x");
    assert_eq!(r.as_str(), "8000 bad name  x\n");
    let mut r = Reply::new();
    r.end(8000, &"é".repeat(400));
    assert_eq!(r.as_str().len(), 5 + 500 + 1);
    assert!(r.as_str().ends_with("é\n"));
}

#[test]
fn parsing() {
    assert_eq!(parse("show status"), BirdCommand::ShowStatus);
    assert_eq!(parse("  show   status  "), BirdCommand::ShowStatus);
    assert_eq!(parse("show route count"), BirdCommand::ShowRouteCount);
    assert_eq!(
        parse("show protocols"),
        BirdCommand::ShowProtocols {
            all: false,
            select: Select::All
        }
    );
    assert_eq!(
        parse("show protocols all Mesh_10_0_0_2"),
        BirdCommand::ShowProtocols {
            all: true,
            select: Select::Name("Mesh_10_0_0_2".into())
        }
    );
    assert_eq!(
        parse("show protocols \"Mesh_*\""),
        BirdCommand::ShowProtocols {
            all: false,
            select: Select::Pattern("Mesh_*".into())
        }
    );
    assert_eq!(
        parse("show protocols all"),
        BirdCommand::ShowProtocols {
            all: true,
            select: Select::All
        }
    );
    for bad in [
        "",
        "show",
        "show protocols a b",
        "show protocols \"open",
        "show memory",
        "\"show\" status",
        "show statusx",
    ] {
        assert_eq!(parse(bad), BirdCommand::SyntaxError, "{bad:?}");
    }
}

#[test]
fn patterns() {
    assert!(pattern_match("*", ""));
    assert!(pattern_match("Mesh_*", "Mesh_10_0_0_2"));
    assert!(pattern_match("*_2", "Mesh_10_0_0_2"));
    assert!(pattern_match("M?sh*0*2", "Mesh_10_0_0_2"));
    assert!(pattern_match("Mesh_10_0_0_2", "Mesh_10_0_0_2"));
    assert!(!pattern_match("Mesh_", "Mesh_10"));
    assert!(!pattern_match("Node*", "Mesh_10"));
    assert!(!pattern_match("?", ""));
    assert!(pattern_match("a*b*c", "axxbyyc"));
    assert!(!pattern_match("a*b*c", "axxbyy"));
}

#[test]
fn time_formats() {
    let t = Civil {
        year: 2026,
        month: 11,
        day: 6,
        hour: 7,
        minute: 5,
        second: 3,
        millis: 42,
    };
    let hour = Duration::from_secs(3600);
    assert_eq!(proto_time(&t, hour, BirdFormat::Bird1), "07:05:03");
    assert_eq!(proto_time(&t, hour, BirdFormat::Bird2), "07:05:03.042");
    assert_eq!(proto_time(&t, 20 * hour, BirdFormat::Bird1), "2026-11-06");
    assert_eq!(proto_time(&t, 30 * hour, BirdFormat::Bird2), "2026-11-06");
    assert_eq!(base_time(&t, BirdFormat::Bird1), "2026-11-06 07:05:03");
    assert_eq!(base_time(&t, BirdFormat::Bird2), "2026-11-06 07:05:03.042");
    // 1971-07-15 12:00:00.250 UTC is July 14..16 in every time zone.
    let t = UNIX_EPOCH + Duration::from_millis(48_427_200_250);
    let c = Civil::local(t).unwrap();
    assert_eq!((c.year, c.month, c.millis), (1971, 7, 250));
    assert!((14..=16).contains(&c.day), "{c:?}");
}

#[test]
fn states_map_like_birds_bgp_get_status() {
    let now = SystemTime::now();
    let info = |p: &Peer| {
        let x = protocol(p, now, None, BirdFormat::Bird1);
        (x.state, x.info)
    };
    let mut p = peer("Mesh_10_0_0_2", "10.0.0.2", 64512, PeerState::Connect);
    assert_eq!(info(&p), (ProtoState::Start, "Connect       ".to_string()));
    p.state = PeerState::OpenSent;
    assert_eq!(info(&p), (ProtoState::Start, "OpenSent      ".to_string()));
    // A passive session that has not started is Passive, once it runs it is not.
    p.config.passive = true;
    p.state = PeerState::Idle;
    assert_eq!(info(&p), (ProtoState::Start, "Passive       ".to_string()));
    p.state = PeerState::OpenConfirm;
    assert_eq!(info(&p), (ProtoState::Start, "OpenConfirm   ".to_string()));
    // An old error is not shown on an established session.
    p.state = PeerState::Established;
    p.last_error = Some("hold timer expired".into());
    assert_eq!(info(&p), (ProtoState::Up, "Established   ".to_string()));
    // The since column is the time of day for a fresh state.
    let x = protocol(&p, now, None, BirdFormat::Bird1);
    assert_eq!(x.since.len(), "07:05:03".len());
    assert_eq!(x.since.matches(':').count(), 2);
}

#[test]
fn a_component_down_shows_as_a_run_time_error_line() {
    let st = Status {
        version: BIRD_VERSION.into(),
        router_id: "172.18.0.4".into(),
        hostname: None,
        now: "2018-04-03 22:59:51".into(),
        boot: "2018-04-03 22:59:26".into(),
        reconfigured: "2018-04-03 22:59:26".into(),
        graceful_restart: None,
        down: vec![("kernel-fib".into(), "netlink I/O: broken pipe".into())],
    };
    let out = show_status(&st, BirdFormat::Bird1);
    let lines: Vec<&str> = out.as_str().lines().collect();
    // Still "BIRD ..." first (the liveness check), the daemon still up, and between them a
    // line calico-node's readiness check does not accept, saying what is wrong.
    assert!(lines[0].starts_with("1000-BIRD "));
    assert_eq!(
        lines[lines.len() - 2],
        "8005-kernel-fib is down: netlink I/O: broken pipe"
    );
    assert_eq!(lines[lines.len() - 1], "0013 Daemon is up and running");
}
