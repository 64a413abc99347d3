//! bgpd's monitoring feeds against real readers: BMP to pmacct's `pmbmpd` (RFC 7854),
//! MRT files read back by `bgpdump -m` and by bgpctl's own reader (RFC 6396).
//!
//! bgpd ("a") has one IPv4 and one IPv6 session to a second bgpd ("b") that originates
//! an IPv4 and an IPv6 prefix (with ADD-PATH identifiers in the BMP and MRT tests). The BMP test checks what pmbmpd logs message by message:
//! Initiation, a Peer Up per session, Route Monitoring of both prefixes, Statistics,
//! a withdrawal when b stops originating one, the whole table again for a collector
//! restarted mid-run, and Peer Down when b goes away. The MRT test has bgpd write a
//! table dump on demand (`bgpctl mrt save`, with the RFC 8050 ADD-PATH records of paths
//! received with identifiers) and an update log, and compares each reader's view with
//! the routes `bgpctl show routes --json` reports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use interop::bgpd::{config, peer_name};
use interop::pmbmpd::Pmbmpd;
use interop::scenarios::{announcements, speaker_config};
use interop::{
    require_binary, run_test, wait_established, wait_for, wait_until, AddPath, Announce, Bgpd,
    Error, Family, Node, Result, Segment, Speaker, Test, TIMEOUT,
};
use serde_json::Value;

const ASN_A: u32 = 65001;
const ASN_B: u32 = 65002;

/// bgpd on `na` (with `extra` appended to its configuration) and bgpd on `nb`
/// originating side 1's IPv4 and IPv6 prefixes, both sessions established; with
/// `add_path`, b sends path identifiers (RFC 7911) and a receives them.
fn pair(t: &Test, na: &Node, nb: &Node, extra: &str, add_path: bool) -> Result<(Bgpd, Bgpd)> {
    let mut cfg_a = speaker_config(na, nb, ASN_A, ASN_B, Vec::new());
    let mut cfg_b = speaker_config(nb, na, ASN_B, ASN_A, announcements(1, false));
    if add_path {
        cfg_a
            .neighbors
            .iter_mut()
            .for_each(|n| n.add_path = AddPath::Receive);
        cfg_b
            .neighbors
            .iter_mut()
            .for_each(|n| n.add_path = AddPath::Send);
    }
    let socket = t.subdir("bgpd-a")?.join("bgpd.sock");
    let text = format!("{}\n{extra}", config(&cfg_a, &socket));
    let a = Bgpd::start_with_config(t, na, "bgpd-a", &text, &socket)?;
    let b = Bgpd::start(t, nb, "bgpd-b", &cfg_b)?;
    for fam in [Family::Ipv4, Family::Ipv6] {
        wait_established(&a, nb.addr(fam), TIMEOUT)?;
    }
    Ok((a, b))
}

/// The prefixes b originates (IPv4 first).
fn originated() -> Vec<String> {
    announcements(1, false)
        .iter()
        .map(|a| a.prefix.to_string())
        .collect()
}

/// Messages of type `kind` in `msgs`.
fn of<'a>(msgs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    msgs.iter()
        .filter(|m| m["bmp_msg_type"].as_str() == Some(kind))
        .collect()
}

/// The prefixes of route_monitor messages of `log_type` ("update" or "withdraw").
fn monitored(msgs: &[Value], log_type: &str) -> BTreeSet<String> {
    of(msgs, "route_monitor")
        .into_iter()
        .filter(|m| m["log_type"].as_str() == Some(log_type))
        .filter_map(|m| m["ip_prefix"].as_str().map(str::to_string))
        .collect()
}

/// The peer addresses of messages of type `kind`.
fn peers_of(msgs: &[Value], kind: &str) -> BTreeSet<String> {
    of(msgs, kind)
        .into_iter()
        .filter_map(|m| m["peer_ip"].as_str().map(str::to_string))
        .collect()
}

/// Waits until pmbmpd's current run logged messages `done` accepts.
fn wait_logged(
    station: &Pmbmpd,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Result<Vec<Value>> {
    wait_until(what, TIMEOUT, || {
        let msgs = station.messages()?;
        Ok(done(&msgs).then_some(msgs))
    })
}

#[test]
fn bgpd_feeds_pmbmpd_its_sessions_and_routes() {
    run_test(
        "bgpd_feeds_pmbmpd_its_sessions_and_routes",
        &["ip", "pmbmpd"],
        |t| {
            let seg = Segment::new(t)?;
            let na = Node::new(t, &seg, "a", 1)?;
            let nb = Node::new(t, &seg, "b", 2)?;
            // pmbmpd listens on 127.0.0.1 inside a's namespace.
            let mut station = Pmbmpd::start(t, &na.ns, "pmbmpd")?;
            let bmp = format!(
                "[[bmp]]\nname = \"pmbmpd\"\naddress = \"{}\"\nstatistics_interval = 1\n\
                 sys_name = \"node-a\"\nsys_descr = \"bgpd under test\"\n",
                station.address()
            );
            let (a, b) = pair(t, &na, &nb, &bmp, true)?;
            let peer_ips: BTreeSet<String> = [nb.v4.to_string(), nb.v6.to_string()].into();
            let prefixes: BTreeSet<String> = originated().into_iter().collect();

            // Initiation, both Peer Ups with the OPENs' identities, both prefixes as
            // Route Monitoring, then statistics counting them.
            let msgs = wait_logged(&station, "peer ups, routes and statistics", |m| {
                peers_of(m, "peer_up") == peer_ips
                    && monitored(m, "update") == prefixes
                    && of(m, "stats")
                        .iter()
                        .filter(|s| s["counter_type"] == 9 && s["counter_value"] == 1)
                        .count()
                        >= 2
            })?;
            // Per family (types 9 and 10, RFC 7854 4.8) and the post-policy Adj-RIB-Out
            // (types 15 and 17, RFC 8671 5), in the same reports: each session carries one
            // family, AFI 1 or 2, one route of it received and accepted.
            let stats = of(&msgs, "stats");
            for (peer, afi) in [(nb.v4.to_string(), 1), (nb.v6.to_string(), 2)] {
                for kind in [9, 10] {
                    assert!(
                        stats.iter().any(|s| s["peer_ip"] == peer.as_str()
                            && s["counter_type"] == kind
                            && s["afi"] == afi
                            && s["counter_value"] == 1),
                        "no type {kind} statistic for {peer} AFI {afi}: {stats:?}"
                    );
                }
                for kind in [7, 8] {
                    assert!(
                        stats.iter().any(|s| s["peer_ip"] == peer.as_str()
                            && s["counter_type"] == kind
                            && s["counter_value"] == 1),
                        "no type {kind} statistic for {peer}: {stats:?}"
                    );
                }
                for kind in [15, 17] {
                    assert!(
                        stats
                            .iter()
                            .any(|s| s["peer_ip"] == peer.as_str() && s["counter_type"] == kind),
                        "no type {kind} statistic for {peer}: {stats:?}"
                    );
                }
            }
            let first = msgs.first().and_then(|m| m["bmp_msg_type"].as_str());
            assert_eq!(first, Some("init"), "Initiation comes first");
            let init = of(&msgs, "init");
            assert_eq!(init[0]["bmp_init_info_sysname"], "node-a");
            assert_eq!(init[0]["bmp_init_info_sysdescr"], "bgpd under test");
            for up in of(&msgs, "peer_up") {
                assert_eq!(up["peer_asn"], ASN_B, "{up}");
                assert_eq!(up["bgp_id"], nb.v4.to_string(), "{up}");
                let local = if up["peer_ip"] == nb.v4.to_string() {
                    na.v4.to_string()
                } else {
                    na.v6.to_string()
                };
                assert_eq!(up["local_ip"], local, "{up}");
                let ports = (up["local_port"].as_u64(), up["remote_port"].as_u64());
                assert!(
                    matches!(ports, (Some(179), Some(_)) | (Some(_), Some(179))),
                    "{up}"
                );
            }
            for rm in of(&msgs, "route_monitor") {
                assert_eq!(rm["is_post"], 0, "pre-policy: {rm}");
                // b sends ADD-PATH identifiers: pmbmpd decodes them as the OPENs say.
                assert!(rm["as_path_id"].as_u64().is_some_and(|id| id > 0), "{rm}");
                assert_eq!(rm["as_path"], ASN_B.to_string(), "{rm}");
            }

            // b stops originating its IPv4 prefix: a withdrawal follows.
            let v4 = originated()[0].clone();
            let mut only_v6 = speaker_config(&nb, &na, ASN_B, ASN_A, announcements(1, false));
            only_v6.announce.retain(|x| x.prefix.to_string() != v4);
            // As in `pair`: the sessions stay up, only the route goes.
            only_v6
                .neighbors
                .iter_mut()
                .for_each(|n| n.add_path = AddPath::Send);
            b.reconfigure(&config(&only_v6, b.socket_path()))?;
            wait_logged(&station, "the withdrawal", |m| {
                monitored(m, "withdraw").contains(&v4)
            })?;

            // A collector restarted mid-run gets the current table again.
            station.stop()?;
            station.start_again(t)?;
            let v6 = originated()[1].clone();
            let again = wait_logged(&station, "the table after the restart", |m| {
                peers_of(m, "peer_up") == peer_ips && monitored(m, "update").contains(&v6)
            })?;
            assert_eq!(
                again.first().and_then(|m| m["bmp_msg_type"].as_str()),
                Some("init")
            );
            assert!(
                !monitored(&again, "update").contains(&v4),
                "the withdrawn prefix is not in the table sent again"
            );

            // b goes away: both sessions end with a Peer Down.
            drop(b);
            let down = wait_logged(&station, "the peer downs", |m| {
                peers_of(m, "peer_down") == peer_ips
            })?;
            for d in of(&down, "peer_down") {
                // 3: the peer closed with a NOTIFICATION; 4: without one.
                let r = d["reason_type"].as_u64();
                assert!(matches!(r, Some(3 | 4)), "{d}");
            }
            a.process().check_running()?;
            Ok(())
        },
    );
}

/// The routes b originates for the post-policy test: a's import policy accepts the
/// first as it is, modifies the second (local preference and a community) and refuses
/// the third.
const POLICY_ROUTES: [&str; 3] = ["198.18.1.0/24", "198.18.2.0/24", "198.18.9.0/24"];

/// a's configuration for the post-policy test: b's sessions (those in `cfg`) imported
/// through `bmp-import`, refusing `refused`, and one station asking for both the
/// pre-policy and the post-policy Adj-RIB-In.
fn post_policy_config(
    cfg: &interop::SpeakerConfig,
    socket: &Path,
    refused: &[&str],
    station: &Pmbmpd,
) -> String {
    let base = config(cfg, socket).replace("import = [\"ix-all\"]", "import = [\"bmp-import\"]");
    let refused: Vec<String> = refused
        .iter()
        .map(|p| format!("{{ prefix = \"{p}\" }}"))
        .collect();
    format!(
        "{base}\n[policies.bmp-import]\ndefault = \"accept\"\n\
         [[policies.bmp-import.rules]]\nmatch = {{ prefix_in = [{}] }}\naction = \"reject\"\n\
         [[policies.bmp-import.rules]]\nmatch = {{ prefix_in = [{{ prefix = \"{}\" }}] }}\n\
         set = {{ local_pref = 300, add_community = [\"65001:42\"] }}\naction = \"accept\"\n\
         \n[[bmp]]\nname = \"pmbmpd\"\naddress = \"{}\"\npre_policy = true\npost_policy = true\n\
         adj_rib_out = true\n",
        refused.join(", "),
        POLICY_ROUTES[1],
        station.address()
    )
}

/// The route_monitor messages of `peer`'s Adj-RIB-In (`is_in`) of `log_type`, pre-policy
/// (`is_post` 0) or post-policy (1), by prefix (the last one logged of each).
fn rib_in<'a>(
    msgs: &'a [Value],
    peer: &str,
    log_type: &str,
    is_post: u64,
) -> std::collections::BTreeMap<String, &'a Value> {
    of(msgs, "route_monitor")
        .into_iter()
        .filter(|m| {
            m["peer_ip"] == peer
                && m["is_in"] == 1
                && m["log_type"] == log_type
                && m["is_post"] == is_post
        })
        .filter_map(|m| Some((m["ip_prefix"].as_str()?.to_string(), m)))
        .collect()
}

/// The communities pmbmpd logged for a route.
fn communities(m: &Value) -> BTreeSet<String> {
    m["comms"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The route_monitor messages of the Adj-RIB-Out (`is_out`, RFC 8671) of `peer`, by
/// prefix (the last one logged of each).
fn adj_rib_out<'a>(msgs: &'a [Value], peer: &str) -> std::collections::BTreeMap<String, &'a Value> {
    of(msgs, "route_monitor")
        .into_iter()
        .filter(|m| m["peer_ip"] == peer && m["is_out"] == 1 && m["log_type"] == "update")
        .filter_map(|m| Some((m["ip_prefix"].as_str()?.to_string(), m)))
        .collect()
}

fn keys(m: &std::collections::BTreeMap<String, &Value>) -> BTreeSet<String> {
    m.keys().cloned().collect()
}

fn set(prefixes: &[&str]) -> BTreeSet<String> {
    prefixes.iter().map(|p| p.to_string()).collect()
}

#[test]
fn bgpd_feeds_pmbmpd_its_post_policy_routes() {
    run_test(
        "bgpd_feeds_pmbmpd_its_post_policy_routes",
        &["ip", "pmbmpd"],
        |t| {
            let seg = Segment::new(t)?;
            let na = Node::new(t, &seg, "a", 1)?;
            let nb = Node::new(t, &seg, "b", 2)?;
            let mut station = Pmbmpd::start(t, &na.ns, "pmbmpd")?;
            let routes: Vec<Announce> = POLICY_ROUTES
                .iter()
                .map(|p| {
                    let mut a = Announce::new(p.parse().expect("a prefix"));
                    a.communities = vec![(65002, 100)];
                    a
                })
                .collect();
            // a originates one route, which it sends b (its Adj-RIB-Out).
            let own = "198.18.100.0/24";
            let cfg_a = speaker_config(
                &na,
                &nb,
                ASN_A,
                ASN_B,
                vec![Announce::new(own.parse().expect("a prefix"))],
            );
            let cfg_b = speaker_config(&nb, &na, ASN_B, ASN_A, routes);
            let socket = t.subdir("bgpd-a")?.join("bgpd.sock");
            let text = post_policy_config(&cfg_a, &socket, &[POLICY_ROUTES[2]], &station);
            let a = Bgpd::start_with_config(t, &na, "bgpd-a", &text, &socket)?;
            let _b = Bgpd::start(t, &nb, "bgpd-b", &cfg_b)?;
            wait_established(&a, nb.addr(Family::Ipv4), TIMEOUT)?;
            let peer = nb.v4.to_string();
            let all = set(&POLICY_ROUTES);
            let accepted = set(&POLICY_ROUTES[..2]);

            // Pre-policy: the three routes as received; post-policy: the two accepted,
            // the second as the policy modified it.
            let msgs = wait_logged(&station, "pre- and post-policy routes", |m| {
                keys(&rib_in(m, &peer, "update", 0)) == all
                    && keys(&rib_in(m, &peer, "update", 1)) == accepted
            })?;
            let pre = rib_in(&msgs, &peer, "update", 0);
            let post = rib_in(&msgs, &peer, "update", 1);
            assert_eq!(
                keys(&post),
                accepted,
                "the refused route is not post-policy"
            );
            for m in pre.values().chain(post.values()) {
                assert_eq!(m["is_in"], 1, "Adj-RIB-In: {m}");
                assert_eq!(m["as_path"], ASN_B.to_string(), "{m}");
            }
            let modified = POLICY_ROUTES[1];
            assert_eq!(post[modified]["local_pref"], 300, "{}", post[modified]);
            assert_eq!(
                communities(post[modified]),
                set(&["65001:42", "65002:100"]),
                "{}",
                post[modified]
            );
            assert_ne!(pre[modified]["local_pref"], 300, "{}", pre[modified]);
            assert_eq!(pre[modified]["comms"], "65002:100", "as received");
            let plain = POLICY_ROUTES[0];
            assert_eq!(post[plain]["comms"], "65002:100", "accepted unchanged");
            assert_ne!(post[plain]["local_pref"], 300, "{}", post[plain]);

            // The Adj-RIB-Out (RFC 8671): the route a sends b, as sent (a's AS prepended).
            let msgs = wait_logged(&station, "the route a sends b", |m| {
                adj_rib_out(m, &peer).contains_key(own)
            })?;
            let sent = adj_rib_out(&msgs, &peer)[own];
            assert_eq!(sent["as_path"], ASN_A.to_string(), "{sent}");
            assert_eq!(sent["is_post"], 1, "{sent}");

            // A new policy refusing the first route as well: it is withdrawn from the
            // post-policy Adj-RIB-In only (b still sends it).
            let text = post_policy_config(
                &cfg_a,
                &socket,
                &[POLICY_ROUTES[0], POLICY_ROUTES[2]],
                &station,
            );
            a.reconfigure(&text)?;
            let msgs = wait_logged(&station, "the post-policy withdrawal", |m| {
                rib_in(m, &peer, "withdraw", 1).contains_key(plain)
            })?;
            assert!(
                rib_in(&msgs, &peer, "withdraw", 0).is_empty(),
                "nothing withdrawn pre-policy"
            );

            // A collector restarted gets the three tables again from the RIB: the current
            // post-policy one holds the modified route only.
            station.stop()?;
            station.start_again(t)?;
            let again = wait_logged(&station, "the three tables after the restart", |m| {
                keys(&rib_in(m, &peer, "update", 0)) == all
                    && rib_in(m, &peer, "update", 1).contains_key(modified)
                    && adj_rib_out(m, &peer).contains_key(own)
            })?;
            let post = rib_in(&again, &peer, "update", 1);
            assert_eq!(keys(&post), set(&[modified]), "{}", dump(&again));
            assert_eq!(post[modified]["local_pref"], 300, "{}", post[modified]);

            // The IPv4 peer removed from a's configuration: Peer Down reason 5 (RFC 7854
            // 4.9: no longer monitored for configuration reasons).
            let mut only_v6 = cfg_a.clone();
            only_v6
                .neighbors
                .retain(|n| n.address != nb.addr(Family::Ipv4));
            let text = post_policy_config(
                &only_v6,
                &socket,
                &[POLICY_ROUTES[0], POLICY_ROUTES[2]],
                &station,
            );
            a.reconfigure(&text)?;
            let down = wait_logged(&station, "the peer down", |m| {
                peers_of(m, "peer_down").contains(&peer)
            })?;
            for d in of(&down, "peer_down") {
                assert_eq!(d["reason_type"], 5, "{d}");
            }
            a.process().check_running()?;
            Ok(())
        },
    );
}

/// The messages in `msgs`, one a line, for a failure message.
fn dump(msgs: &[Value]) -> String {
    msgs.iter().map(|m| format!("{m}\n")).collect()
}

/// What `bgpdump -m FILE` prints.
fn bgpdump(file: &Path) -> Result<String> {
    bgpdump_with(file, &[])
}

/// What `bgpdump -m EXTRA.. FILE` prints.
fn bgpdump_with(file: &Path, extra: &[&str]) -> Result<String> {
    let out = std::process::Command::new(require_binary("bgpdump")?)
        .arg("-m")
        .args(extra)
        .arg(file)
        .output()
        .map_err(|e| Error::Check(format!("running bgpdump: {e}")))?;
    if !out.status.success() {
        return Err(Error::Check(format!(
            "bgpdump -m {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn bgpd_reload_adds_and_removes_a_bmp_station_without_touching_sessions() {
    run_test(
        "bgpd_reload_adds_and_removes_a_bmp_station_without_touching_sessions",
        &["ip", "pmbmpd"],
        |t| {
            let seg = Segment::new(t)?;
            let na = Node::new(t, &seg, "a", 1)?;
            let nb = Node::new(t, &seg, "b", 2)?;
            let station = Pmbmpd::start(t, &na.ns, "pmbmpd")?;
            let (a, _b) = pair(t, &na, &nb, "", false)?;
            let addrs = [nb.addr(Family::Ipv4), nb.addr(Family::Ipv6)];
            let transitions = |a: &Bgpd| -> Result<Vec<u64>> {
                addrs
                    .iter()
                    .map(|x| a.peer_counter(*x, "established_transitions"))
                    .collect()
            };
            let before = transitions(&a)?;
            let base = config(
                &speaker_config(&na, &nb, ASN_A, ASN_B, Vec::new()),
                a.socket_path(),
            );
            // Added by a reload: the station gets the sessions already up and their
            // routes.
            let bmp = format!("[[bmp]]\naddress = \"{}\"\n", station.address());
            a.reconfigure(&format!("{base}\n{bmp}"))?;
            let peer_ips: BTreeSet<String> = [nb.v4.to_string(), nb.v6.to_string()].into();
            let prefixes: BTreeSet<String> = originated().into_iter().collect();
            wait_logged(
                &station,
                "the sessions and routes up before the reload",
                |m| peers_of(m, "peer_up") == peer_ips && monitored(m, "update") == prefixes,
            )?;
            // Removed by a reload: the connection ends with a Termination.
            a.reconfigure(&base)?;
            wait_logged(&station, "the termination", |m| !of(m, "term").is_empty())?;
            assert_eq!(transitions(&a)?, before, "no session was restarted");
            for x in addrs {
                wait_established(&a, x, TIMEOUT)?;
            }
            Ok(())
        },
    );
}

/// The RIB entries `bgpdump -m` reads in `file`.
fn bgpdump_rib(file: &Path) -> Result<BTreeSet<Path4>> {
    Ok(rib_lines(&bgpdump(file)?))
}

/// A path as both readers and `show routes` give it: prefix, peer address, ADD-PATH
/// path identifier, AS path.
type Path4 = (String, String, Option<u64>, String);

/// The paths of the TABLE_DUMP2 (and TABLE_DUMP2_AP, with a path id) lines of
/// `bgpdump -m` output.
fn rib_lines(text: &str) -> BTreeSet<Path4> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let (path_id, as_path) = match f.first() {
                Some(&"TABLE_DUMP2") => (None, f.get(6)?),
                Some(&"TABLE_DUMP2_AP") => (Some(f.get(6)?.parse().ok()?), f.get(7)?),
                _ => return None,
            };
            Some((
                f.get(5)?.to_string(),
                f.get(3)?.to_string(),
                path_id,
                as_path.to_string(),
            ))
        })
        .collect()
}

/// (prefix, peer address) → the time of each TABLE_DUMP2 line of `bgpdump -m` output:
/// the dump's time, or with `-t change` the route's originated time (RFC 6396 4.3.4).
fn rib_times(text: &str) -> BTreeMap<(String, String), u64> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            f.first()?.starts_with("TABLE_DUMP2").then_some(())?;
            let time = f.get(1)?.parse().ok()?;
            Some(((f.get(5)?.to_string(), f.get(3)?.to_string()), time))
        })
        .collect()
}

/// Every path `bgpctl show routes --json` reports from a peer.
fn shown_routes(a: &Bgpd, nb: &Node) -> Result<BTreeSet<Path4>> {
    let v = a.bgpctl_json(&["show", "routes"])?;
    let mut out = BTreeSet::new();
    for r in v["routes"].as_array().into_iter().flatten() {
        let Some(peer) = r["peer"].as_str() else {
            continue;
        };
        let addr = if peer == peer_name(nb.v4.into()) {
            nb.v4.to_string()
        } else if peer == peer_name(nb.v6.into()) {
            nb.v6.to_string()
        } else {
            continue;
        };
        let path = r["as_path"].as_str().unwrap_or_default().to_string();
        let prefix = r["prefix"].as_str().unwrap_or_default().to_string();
        out.insert((prefix, addr, r["path_id"].as_u64(), path));
    }
    Ok(out)
}

#[test]
fn bgpd_writes_mrt_files_bgpdump_reads() {
    run_test(
        "bgpd_writes_mrt_files_bgpdump_reads",
        &["ip", "bgpdump"],
        |t| {
            require_binary("bgpdump")?;
            let seg = Segment::new(t)?;
            let na = Node::new(t, &seg, "a", 1)?;
            let nb = Node::new(t, &seg, "b", 2)?;
            let dir = t.subdir("mrt")?;
            let mrt = format!(
                "[mrt]\ntable_dump = \"{0}/bview.%Y%m%d.%H%M%S\"\ntable_dump_interval = 60\n\
             update_log = \"{0}/updates.%Y%m%d.%H%M%S.gz\"\nupdate_log_interval = 60\n",
                dir.display()
            );
            let (a, b) = pair(t, &na, &nb, &mrt, true)?;
            let want: BTreeSet<Path4> = wait_until("both routes in the Loc-RIB", TIMEOUT, || {
                let r = shown_routes(&a, &nb)?;
                Ok((r.len() == 2).then_some(r))
            })?;

            assert!(
                want.iter().all(|p| p.2.is_some()),
                "paths carry ADD-PATH identifiers: {want:?}"
            );
            // Routes at least a second old, so that their originated time differs from
            // the dump's.
            wait_until("routes a second old", TIMEOUT, || {
                let v = a.bgpctl_json(&["show", "routes"])?;
                let ages: Vec<u64> = v["routes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["age_secs"].as_u64())
                    .collect();
                Ok((ages.len() >= 2 && ages.iter().all(|s| *s >= 1)).then_some(()))
            })?;
            // On demand, compressed by its name; relative to bgpctl's working directory.
            let file = dir.join("now.mrt.gz");
            let said = a.bgpctl(&["mrt", "save", &file.to_string_lossy()])?;
            assert!(said.contains("2 prefixes, 2 paths"), "{said}");
            assert_eq!(
                bgpdump_rib(&file)?,
                want,
                "bgpdump -m reads what bgpd holds"
            );
            // Each entry's originated time is when the route arrived, before the dump.
            let dumped = rib_times(&bgpdump(&file)?);
            let changed = rib_times(&bgpdump_with(&file, &["-t", "change"])?);
            assert_eq!(dumped.len(), 2, "{dumped:?}");
            assert_eq!(changed.len(), 2, "{changed:?}");
            for (path, at) in &changed {
                let dump = dumped.get(path).copied().unwrap_or_default();
                assert!(
                    *at < dump,
                    "{path:?} originated at {at}, not at the dump's time {dump}"
                );
            }
            let ours = a.bgpctl(&["mrt", "dump", &file.to_string_lossy()])?;
            assert_eq!(rib_lines(&ours), want, "bgpctl's reader agrees");
            // A path bgpd cannot write to is refused with the reason.
            let refused = a.bgpctl(&["mrt", "save", "/nonexistent-dir/x.mrt"]);
            assert!(refused.is_err(), "{refused:?}");

            // The session changes and the UPDATEs are in the update log once its file is
            // complete (at shutdown at the latest).
            drop(b);
            wait_for("a's sessions to go down", TIMEOUT, || {
                let v = a.bgpctl_json(&["show", "peers"])?;
                let up = v["peers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["state"] == "established")
                    .count();
                Ok(if up == 0 {
                    Ok(())
                } else {
                    Err(format!("{up} up"))
                })
            })?;
            let mut a = a;
            a.process_mut().stop()?;
            let logs: Vec<_> = std::fs::read_dir(&dir)
                .map_err(|e| Error::Check(format!("listing {}: {e}", dir.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().contains("updates."))
                .collect();
            assert!(!logs.is_empty(), "an update log file in {}", dir.display());
            let mut text = String::new();
            for l in &logs {
                text.push_str(&bgpdump(l)?);
            }
            for prefix in originated() {
                assert!(
                    text.lines().any(|l| l.starts_with("BGP4MP_ET_AP|")
                        && l.contains("|A|")
                        && l.contains(&prefix)),
                    "announcement of {prefix} logged:\n{text}"
                );
            }
            let states = text.lines().filter(|l| l.contains("|STATE|")).count();
            assert!(states >= 4, "up and down of both sessions:\n{text}");
            Ok(())
        },
    );
}
