//! What `bgpctl` shows of a running bgpd that learned real routes: the message and output
//! queue columns of `show peers`, timers and policies in words in `show peer`, the detail
//! view of `show route` (every attribute, extended and large communities included, why a
//! path lost, its age), `show routes --longer` and `--community`, and AS paths as typed
//! segments in JSON.
//!
//! The peers are played by the test over raw TCP (interop::raw_peer), so the UPDATEs carry
//! exactly the attributes asserted. No root needed: 127.0.104.x.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp_proto::{
    AsPath, AsSegment, Community, ExtendedCommunity, LargeCommunity, Origin, PathAttributes,
    SegmentType,
};
use interop::raw_peer::{RawPeer, RawSession};
use support::{announce_with, peer_toml, Daemon};

const PORT: u16 = 11179;
const WAIT: Duration = Duration::from_secs(30);

fn ip(host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 104, host))
}

/// The test's peer at 127.0.104.HOST, established with bgpd at .1.
fn session(host: u8) -> RawSession {
    let me = RawPeer::new(64512, Ipv4Addr::new(10, 104, 0, host), 90);
    let mut s =
        RawSession::connect(None, Some(ip(host)), SocketAddr::new(ip(1), PORT)).expect("connect");
    s.establish(&me, WAIT).expect("established");
    // bgpd's hold time is 9 s: a slow run must not lose the session.
    s.keepalives(Duration::from_secs(3));
    s
}

fn stdout(d: &Daemon, args: &[&str]) -> String {
    let out = d.bgpctl(args);
    assert!(out.status.success(), "bgpctl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The prefixes of a `--json show routes` answer.
fn prefixes(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON");
    v["result"]["routes"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|r| r["prefix"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn bgpctl_shows_peers_routes_and_attributes_in_detail() {
    let dir = support::tempdir("bgpd-views");
    let d = dir.path();
    let passive = "passive = true";
    let config = support::global_toml(d, "a", 64512, "10.104.0.1", "127.0.104.1:11179", "")
        + &peer_toml(
            "x",
            "127.0.104.2",
            64512,
            PORT,
            Some("127.0.104.1"),
            passive,
        )
        + &peer_toml(
            "y",
            "127.0.104.3",
            64512,
            PORT,
            Some("127.0.104.1"),
            passive,
        );
    let a = Daemon::start(d, "a", &config);
    let x = session(2);
    let y = session(3);
    // x: a covering /16 and more specific prefixes, with every kind of community.
    let rich = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![64600],
                },
                AsSegment {
                    kind: SegmentType::Set,
                    asns: vec![64601, 64602],
                },
            ],
        }),
        next_hop: Some(Ipv4Addr::new(127, 0, 104, 2)),
        local_pref: Some(200),
        med: Some(5),
        communities: vec![Community::new(65000, 1)],
        large_communities: vec![LargeCommunity {
            global: 64512,
            local1: 1,
            local2: 2,
        }],
        // Route target 64512:100 (RFC 4360 4: 2-octet AS specific, subtype 2).
        extended_communities: vec![ExtendedCommunity([0x00, 0x02, 0xfc, 0x00, 0, 0, 0, 100])],
        ..PathAttributes::default()
    };
    announce_with(
        &x,
        rich.clone(),
        &[
            "10.104.0.0/16",
            "10.104.1.0/24",
            "10.104.1.128/25",
            "10.105.0.0/24",
        ],
    );
    // y: the same /24, plain and with a lower LOCAL_PREF: it loses.
    let plain = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        next_hop: Some(Ipv4Addr::new(127, 0, 104, 3)),
        local_pref: Some(100),
        ..PathAttributes::default()
    };
    announce_with(&y, plain, &["10.104.1.0/24"]);
    a.wait_for(|a| a.loc_rib().len() == 5, "five paths in the Loc-RIB");

    // show routes PREFIX --longer: the prefix and its more specific ones, nothing else.
    let json = stdout(
        &a,
        &["--json", "show", "routes", "10.104.0.0/16", "--longer"],
    );
    assert_eq!(
        prefixes(&json),
        [
            "10.104.0.0/16",
            "10.104.1.0/24",
            "10.104.1.0/24",
            "10.104.1.128/25"
        ],
        "{json}"
    );
    let json = stdout(
        &a,
        &["--json", "show", "routes", "10.104.1.0/24", "--longer"],
    );
    assert_eq!(
        prefixes(&json),
        ["10.104.1.0/24", "10.104.1.0/24", "10.104.1.128/25"],
        "{json}"
    );
    // Without --longer: exactly the prefix.
    let json = stdout(&a, &["--json", "show", "routes", "10.104.0.0/16"]);
    assert_eq!(prefixes(&json), ["10.104.0.0/16"], "{json}");
    // --community: standard and large; y's path carries neither.
    for c in ["65000:1", "64512:1:2"] {
        let json = stdout(&a, &["--json", "show", "routes", "--community", c]);
        let p = prefixes(&json);
        assert_eq!(p.len(), 4, "{c}: {json}");
        assert!(!json.contains("\"peer\":\"y\""), "{c}: {json}");
    }
    let json = stdout(&a, &["--json", "show", "routes", "--community", "65000:2"]);
    assert!(prefixes(&json).is_empty(), "{json}");
    let out = a.bgpctl(&["show", "routes", "--community", "65000"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid community"),
        "{out:?}"
    );
    // The filters page like the rest: --longer with the text table too.
    let text = stdout(&a, &["show", "routes", "10.104.1.0/24", "--longer"]);
    assert_eq!(
        text.lines().filter(|l| l.contains("10.104.1.")).count(),
        3,
        "{text}"
    );

    // show route PREFIX: every path in detail, the loser with its reason.
    let text = stdout(&a, &["show", "route", "10.104.1.0/24"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"10.104.1.0/24 from x * best"), "{text}");
    // The paths come in the RIB's order, not best first: look at x's block.
    let x_block: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.starts_with("10.104.1.0/24 from x"))
        .skip(1)
        .take_while(|l| l.starts_with('\t'))
        .copied()
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("10.104.1.0/24 from y (lost: ") && l.contains("LOCAL_PREF")),
        "{text}"
    );
    for want in [
        "\tvia:                  127.0.104.2",
        "\tBGP.origin:           IGP",
        "\tBGP.as_path:          64600 {64601,64602}",
        "\tBGP.next_hop:         127.0.104.2",
        "\tBGP.med:              5",
        "\tBGP.local_pref:       200",
        "\tBGP.community:        65000:1",
        "\tBGP.ext_community:    (rt, 64512, 100)",
        "\tBGP.large_community:  64512:1:2",
    ] {
        assert!(x_block.contains(&want), "no {want:?} in\n{text}");
    }
    // An address: the longest match (the /25), in the same view.
    let text = stdout(&a, &["show", "route", "10.104.1.130"]);
    assert!(
        text.starts_with("10.104.1.128/25 from x * best\n"),
        "{text}"
    );

    // JSON: the AS path as typed segments beside its text.
    let json = stdout(&a, &["--json", "show", "route", "10.104.1.0/24"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let best = v["result"]["routes"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["best"] == true))
        .unwrap_or_else(|| panic!("no best path in {v}"));
    assert_eq!(best["as_path"], "64600 {64601,64602}", "{v}");
    assert_eq!(
        best["as_path_segments"],
        serde_json::json!([
            {"type": "sequence", "asns": [64600]},
            {"type": "set", "asns": [64601, 64602]}
        ]),
        "{v}"
    );
    assert_eq!(
        best["extended_communities"],
        serde_json::json!(["(rt, 64512, 100)"]),
        "{v}"
    );

    // The age of a path: when it last changed. Shown in the detail view, it grows while the
    // path stays as it is, also when the peer announces it again unchanged (as BIRD and
    // FRR keep it), and starts again when the path changes.
    let text = stdout(&a, &["show", "route", "10.104.0.0/16"]);
    let shown = text
        .lines()
        .find_map(|l| l.strip_prefix("\tage:"))
        .unwrap_or_else(|| panic!("no age in\n{text}"));
    // HH:MM:SS (under a day).
    let hms: Vec<&str> = shown.trim().split(':').collect();
    assert!(
        hms.len() == 3 && hms.iter().all(|f| f.len() == 2 && f.parse::<u8>().is_ok()),
        "{text}"
    );
    let age = |a: &Daemon| {
        a.best("10.104.0.0/16")
            .and_then(|r| r.age_secs)
            .expect("the /16 has an age")
    };
    a.wait_for(|a| age(a) >= 2, "the /16 two seconds old");
    let old = age(&a);
    // The same path again; the prefix after it in the same session shows it was applied.
    announce_with(&x, rich.clone(), &["10.104.0.0/16"]);
    announce_with(&x, rich.clone(), &["10.106.0.0/24"]);
    a.wait_for(|a| a.best("10.106.0.0/24").is_some(), "the marker prefix");
    assert!(age(&a) >= old, "unchanged path kept its age {old}");
    let mut changed = rich.clone();
    changed.med = Some(6);
    announce_with(&x, changed, &["10.104.0.0/16"]);
    a.wait_for(
        |a| a.best("10.104.0.0/16").and_then(|r| r.med) == Some(6),
        "the new MED",
    );
    assert!(age(&a) < old, "changed path younger than {old}");
    let json = stdout(&a, &["--json", "show", "route", "10.104.0.0/16"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert!(v["result"]["routes"][0]["age_secs"].is_u64(), "{v}");

    // show peers: messages received and sent, output queue.
    let text = stdout(&a, &["show", "peers"]);
    let mut lines = text.lines();
    let head = lines.next().expect("header");
    assert!(head.contains("Sent  MsgRcvd  MsgSent  OutQ"), "{head}");
    let row: Vec<&str> = lines
        .find(|l| l.starts_with("x "))
        .expect("x")
        .split_whitespace()
        .collect();
    // OPEN, KEEPALIVE and the UPDATE at least; OPEN and KEEPALIVE sent at least.
    let n = |i: usize| row[i].parse::<u64>().unwrap_or_else(|_| panic!("{row:?}"));
    assert!(n(8) >= 3 && n(9) >= 2, "{row:?}");
    assert_eq!(n(10), 0, "nothing waits for x: {row:?}");
    let p = a.peers().into_iter().find(|p| p.name == "x").expect("x");
    assert_eq!(p.messages_received, n(8));

    // show peer: timers and policies in words, one aligned column.
    let text = stdout(&a, &["show", "peer", "x"]);
    for want in [
        "  Hold time:                    9 seconds (negotiated)",
        "  Import policy:                all",
        "  Export policy:                all",
        "  Mode:                         passive",
    ] {
        assert!(text.lines().any(|l| l == want), "no {want:?} in\n{text}");
    }
    // Every value starts in the same column, after at least two spaces.
    for l in text.lines() {
        let (key, value) = l.split_at(l.len().min(32));
        assert!(
            key.ends_with("  ") && !value.starts_with(' '),
            "not aligned: {l:?}\n{text}"
        );
    }
}
