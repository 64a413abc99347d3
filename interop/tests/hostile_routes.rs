//! Hostile routes end to end: a scripted peer over raw TCP (`interop::raw_peer`, UPDATEs
//! built byte by byte, reading only when asked so it can stop reading) sends
//! bgpd inputs that exhausted its memory, froze its RIB or lost routes, with a real
//! BIRD 2 downstream, each in its own network namespace on one segment:
//!
//! ```text
//!   hostile (raw, AS 65001, .1) ─┐
//!   feeder  (raw, AS 65010, .4) ─┼─ bgpd (AS 65002, .2) ── BIRD 2 (AS 65003, .3)
//! ```
//!
//! Each test asserts that bgpd stays alive, that the BIRD session stays Established
//! throughout (never re-established: bgpd's established-transition counter stays at 1),
//! that `status` on the control socket answers within 2 s at every poll, that RSS
//! growth and CPU time stay under the bounds written in the test (generous: a 2-core
//! CI machine shared with other jobs), and that BIRD's table is right afterwards, a
//! final withdrawal included.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bgp_proto::{AddPathMode, Capability};
use interop::bird::protocol_name;
use interop::raw_peer::wire::{
    announcements, attr, base_attributes, communities, flags, med, nlri, route_refresh_ipv4,
    slash24, update, withdrawals,
};
use interop::raw_peer::{usage, RawPeer, RawSession, Reading, Usage};
use interop::{
    binaries_for, run_test, wait_established, wait_for, AddPath, Bgpd, Bird, Error, Family, Kind,
    Neighbor, Node, Result, Segment, Speaker, SpeakerConfig, Test, TIMEOUT,
};
use ipnet::{IpNet, Ipv4Net};

/// KiB in a MiB ([`Usage::rss_kib`] is in KiB).
const MIB: u64 = 1024;
/// `status` must answer within this at every poll (calico-node's liveness probe).
const STATUS_BOUND: Duration = Duration::from_secs(2);

struct Lab {
    hostile: Node,
    feeder: Node,
    bgpd_node: Node,
    bird_node: Node,
    bgpd: Bgpd,
    bird: Bird,
    /// bgpd's established-transition count towards BIRD once up (must not move).
    bird_transitions: u64,
    /// bgpd's resource use once the lab is up.
    start: Usage,
    status_polls: u32,
    /// RSS growth over `start` that fails the test at once (so a regression is caught
    /// before it takes the machine's memory).
    rss_limit_mib: u64,
    /// bgpd's BIRD-compatible status socket.
    bird_socket: std::path::PathBuf,
}

fn bgpd_usage(bgpd: &Bgpd) -> Result<Usage> {
    usage(bgpd.process().pid(), "bgpd")
}

impl Lab {
    /// The segment, bgpd with the hostile peer (ADD-PATH receive when `add_path`), the
    /// feeder and BIRD, BIRD's session Established.
    fn up(t: &Test, seg: &Segment, add_path: bool) -> Result<Lab> {
        Self::up_with(t, seg, add_path, "")
    }

    /// [`Lab::up`] with `feeder_settings` (TOML lines) added to bgpd's feeder peer.
    fn up_with(t: &Test, seg: &Segment, add_path: bool, feeder_settings: &str) -> Result<Lab> {
        let hostile = Node::new(t, seg, "hostile", 1)?;
        let bgpd_node = Node::new(t, seg, "bgpd", 2)?;
        let bird_node = Node::new(t, seg, "bird", 3)?;
        let feeder = Node::new(t, seg, "feeder", 4)?;
        let me = bgpd_node.addr(Family::Ipv4);
        let mut cfg = SpeakerConfig::new(bgpd_node.v4, 65002);
        for (n, asn) in [(&hostile, 65001), (&feeder, 65010)] {
            let mut nb = Neighbor::new(n.addr(Family::Ipv4), me, asn);
            nb.passive = true;
            if add_path {
                nb.add_path = AddPath::Receive;
            }
            cfg.neighbors.push(nb);
        }
        cfg.neighbors
            .push(Neighbor::new(bird_node.addr(Family::Ipv4), me, 65003));
        let dir = t.subdir("bgpd")?;
        let socket = dir.join("bgpd.sock");
        let bird_socket = dir.join("bird.ctl");
        let mut text = interop::bgpd::config(&cfg, &socket);
        // The BIRD-compatible status socket calico-node's probes read.
        let control = format!("socket = \"{}\"\n", socket.display());
        text = text.replace(
            &control,
            &format!("{control}bird_socket = \"{}\"\n", bird_socket.display()),
        );
        let feeder_address = format!("address = \"{}\"\n", feeder.v4);
        text = text.replace(
            &feeder_address,
            &format!("{feeder_address}{feeder_settings}\n"),
        );
        let bgpd = Bgpd::start_with_config(t, &bgpd_node, "bgpd", &text, &socket)?;
        let mut bcfg = SpeakerConfig::new(bird_node.v4, 65003);
        bcfg.neighbors
            .push(Neighbor::new(me, bird_node.addr(Family::Ipv4), 65002));
        let bird = Bird::start(t, &bird_node, "bird", &bcfg)?;
        wait_established(&bgpd, bird_node.addr(Family::Ipv4), TIMEOUT)?;
        wait_established(&bird, me, TIMEOUT)?;
        let bird_transitions =
            bgpd.peer_counter(bird_node.addr(Family::Ipv4), "established_transitions")?;
        let start = bgpd_usage(&bgpd)?;
        Ok(Lab {
            hostile,
            feeder,
            bird_node,
            bgpd_node,
            bgpd,
            bird,
            bird_transitions,
            start,
            status_polls: 0,
            rss_limit_mib: 256,
            bird_socket,
        })
    }

    fn bgpd_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bgpd_node.addr(Family::Ipv4), 179)
    }

    /// A raw session from `node` as `asn`, Established, announcing IPv4 unicast, 4-octet
    /// AS and `capabilities`, hold time 0 (no keepalives, RFC 4271 4.2: the script may
    /// stop reading for as long as it likes), reading only when asked.
    fn connect(&self, node: &Node, asn: u32, capabilities: &[Capability]) -> Result<RawSession> {
        let mut me = RawPeer::bare(asn, node.v4, 0);
        me.capabilities.extend_from_slice(capabilities);
        let mut s =
            RawSession::connect_with(Some(&node.ns), None, self.bgpd_addr(), Reading::OnDemand)?;
        s.establish(&me, TIMEOUT)?;
        Ok(s)
    }

    /// Everything that must hold at any moment: bgpd running and answering `status`
    /// within [`STATUS_BOUND`], the BIRD session Established on both sides and never
    /// re-established.
    fn check(&mut self, during: &str) -> Result<Usage> {
        self.bgpd.check_running()?;
        let t0 = Instant::now();
        self.bgpd
            .control(serde_json::json!({"command": "status"}))?;
        let took = t0.elapsed();
        self.status_polls += 1;
        if took > STATUS_BOUND {
            return Err(Error::Check(format!(
                "{during}: status took {took:?} (poll {})",
                self.status_polls
            )));
        }
        let bird = self.bird_node.addr(Family::Ipv4);
        let n = self.bgpd.peer_counter(bird, "established_transitions")?;
        let up = self
            .bgpd
            .peers()?
            .iter()
            .any(|p| p.address == bird && p.established);
        let bird_up = self
            .bird
            .peers()?
            .iter()
            .any(|p| p.address == self.bgpd_node.addr(Family::Ipv4) && p.established);
        if n != self.bird_transitions || !up || !bird_up {
            return Err(Error::Check(format!(
                "{during}: the BIRD session dropped (transitions {} -> {n}, bgpd sees it \
                 established: {up}, BIRD: {bird_up})",
                self.bird_transitions
            )));
        }
        let u = bgpd_usage(&self.bgpd)?;
        if u.rss_kib.saturating_sub(self.start.rss_kib) > self.rss_limit_mib * MIB {
            return Err(Error::Check(format!(
                "{during}: bgpd RSS {} MiB, {} MiB over its start (bound {})",
                u.rss_kib / MIB,
                u.rss_kib.saturating_sub(self.start.rss_kib) / MIB,
                self.rss_limit_mib
            )));
        }
        Ok(u)
    }

    /// Checks at every poll while `busy` is true, then once more.
    fn watch(&mut self, during: &str, mut busy: impl FnMut() -> bool) -> Result<Usage> {
        while busy() {
            self.check(during)?;
            std::thread::sleep(Duration::from_millis(250));
        }
        self.check(during)
    }

    /// RSS growth and CPU time since the lab came up, against the bounds.
    fn bounded(&self, now: Usage, rss_mib: u64, cpu_secs: f64) -> Result<()> {
        let grew = now.rss_kib.saturating_sub(self.start.rss_kib);
        let cpu = now.cpu.saturating_sub(self.start.cpu).as_secs_f64();
        interop::say(&format!(
            "bgpd RSS {} -> {} MiB (+{:.1}), CPU {cpu:.2} s, {} status polls",
            self.start.rss_kib / MIB,
            now.rss_kib / MIB,
            grew as f64 / MIB as f64,
            self.status_polls
        ));
        if grew > rss_mib * MIB || cpu > cpu_secs {
            return Err(Error::Check(format!(
                "bgpd grew {} MiB (bound {rss_mib}) and used {cpu:.1} CPU-s (bound {cpu_secs})",
                grew / MIB
            )));
        }
        Ok(())
    }

    /// Waits (checking) until BIRD holds `want` routes from bgpd.
    fn bird_holds(&mut self, want: u64) -> Result<()> {
        let proto = protocol_name(self.bgpd_node.addr(Family::Ipv4));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            self.check("waiting for BIRD's table")?;
            let n = self.bird.count_routes(Some(&proto))?;
            if n == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Check(format!(
                    "BIRD holds {n} routes from bgpd, want {want}"
                )));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `command` on bgpd's BIRD-compatible socket (one connection, BIRD's CLI protocol:
    /// a greeting, then lines `CODE-...` / ` ...` ending with one `CODE ...`).
    fn bird_cli(&self, command: &str) -> Result<String> {
        use std::io::{BufRead as _, Write as _};
        let path = &self.bird_socket;
        let io = |what| move |e| Error::Check(format!("{what} {}: {e}", path.display()));
        let mut stream =
            std::os::unix::net::UnixStream::connect(path).map_err(io("connecting to"))?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let mut reader = std::io::BufReader::new(stream.try_clone().map_err(io("cloning"))?);
        let mut greeting = String::new();
        reader.read_line(&mut greeting).map_err(io("reading"))?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(io("writing to"))?;
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).map_err(io("reading"))? == 0 {
                return Err(Error::Check(format!("{command}: reply cut short: {reply}")));
            }
            reply.push_str(&line);
            let last = line.len() > 4
                && line.as_bytes()[..4].iter().all(u8::is_ascii_digit)
                && line.as_bytes()[4] == b' ';
            if last {
                return Ok(reply);
            }
        }
    }

    /// The bgpd log lines containing `text`.
    fn log_lines(&self, text: &str) -> usize {
        self.bgpd
            .process()
            .output_so_far()
            .lines()
            .filter(|l| l.contains(text))
            .count()
    }
}

fn kinds() -> Vec<String> {
    binaries_for(&[Kind::Bgpd, Kind::Bird])
}

/// A peer that stops reading and loops 20,000 ROUTE-REFRESH requests while bgpd has
/// 50,000 routes to send it. Each request used to queue a copy of the whole
/// Adj-RIB-Out (RSS 21 MiB -> 2.07 GiB); now one refresh is answered at a time, per
/// prefix, and the others are ignored while it is pending.
#[test]
fn route_refresh_loop_from_a_peer_that_does_not_read() {
    run_test(
        "route_refresh_loop_from_a_peer_that_does_not_read",
        &kinds(),
        |t| {
            let seg = Segment::new(t)?;
            let mut lab = Lab::up(t, &seg, false)?;
            let table: Vec<(Ipv4Net, Option<u32>)> =
                (0..50_000).map(|i| (slash24(i), None)).collect();
            let feeder = lab.connect(&lab.feeder, 65010, &[])?;
            let attrs = base_attributes(&[65010], lab.feeder.v4);
            feeder.send_all(&announcements(&attrs, table.iter().copied(), 4096))?;
            lab.bird_holds(50_000)?;
            let before = lab.check("before the refreshes")?;

            let hostile = lab.connect(&lab.hostile, 65001, &[Capability::RouteRefresh])?;
            // From here on nothing is read from this session: bgpd's initial table and
            // every answer pile up in the sockets.
            // A write bgpd does not take within a minute fails instead of blocking.
            hostile.set_write_timeout(Some(Duration::from_secs(60)))?;
            let writer = hostile.sender();
            let sender = std::thread::spawn(move || -> std::result::Result<(), (u32, Error)> {
                let rr = route_refresh_ipv4();
                for i in 0..20_000u32 {
                    writer.send_bytes(&rr).map_err(|e| (i, e))?;
                }
                Ok(())
            });
            let t0 = Instant::now();
            let after = lab.watch("during the refresh flood", || !sender.is_finished())?;
            sender
                .join()
                .map_err(|_| Error::Check("refresh sender panicked".into()))?
                .map_err(|(sent, e)| {
                    Error::Check(format!(
                        "bgpd stopped reading the refreshes after {sent}: {e}"
                    ))
                })?;
            interop::say(&format!("20000 ROUTE-REFRESH sent in {:?}", t0.elapsed()));
            let hostile_addr = lab.hostile.addr(Family::Ipv4);
            let bgpd = &lab.bgpd;
            wait_for("bgpd to count the 20,000 refreshes", TIMEOUT, || {
                let n = bgpd.peer_counter(hostile_addr, "route_refresh_received")?;
                Ok(if n == 20_000 {
                    Ok(())
                } else {
                    Err(format!("{n} counted"))
                })
            })?;
            let after = lab.check("after the refresh flood").unwrap_or(after);
            interop::say(&format!(
                "RSS before the flood {} MiB, after {} MiB",
                before.rss_kib / MIB,
                after.rss_kib / MIB
            ));
            lab.bounded(after, 64, 30.0)?;
            let grew = after.rss_kib.saturating_sub(before.rss_kib);
            if grew > 32 * MIB {
                return Err(Error::Check(format!(
                    "bgpd grew {} MiB during the refresh flood (bound 32)",
                    grew / MIB
                )));
            }
            // Every route withdrawn at the source: BIRD ends up empty.
            feeder.send_all(&withdrawals(table.iter().copied(), 4096))?;
            lab.bird_holds(0)?;
            drop(hostile);
            lab.check("at the end")?;
            Ok(())
        },
    )
}

/// 1,000 /24s plus one /24 with 1,100 communities (an UPDATE over 4,096 octets, fine
/// between bgpd and the extended-message peer) in one burst, towards BIRD, which has
/// no extended messages. The big route cannot be sent to BIRD: it used to fail the
/// whole export slice, so BIRD got none of the 1,000 and later withdrawals were lost.
/// Now BIRD gets the 1,000 (not the big one), a warning is logged once, and a
/// withdrawal of everything reaches it.
#[test]
fn a_route_too_large_for_the_downstream_is_withdrawn_towards_it_only() {
    run_test(
        "a_route_too_large_for_the_downstream_is_withdrawn_towards_it_only",
        &kinds(),
        |t| {
            let seg = Segment::new(t)?;
            let mut lab = Lab::up(t, &seg, false)?;
            let hostile = lab.connect(&lab.hostile, 65001, &[Capability::ExtendedMessage])?;
            let base = base_attributes(&[65001], lab.hostile.v4);
            let small: Vec<(Ipv4Net, Option<u32>)> =
                (0..1000).map(|i| (slash24(i), None)).collect();
            let big: Ipv4Net = "10.200.0.0/24".parse().unwrap_or_default();
            let big_attrs = [
                base.clone(),
                communities((0..1100).map(|i| 65001 << 16 | i)),
            ]
            .concat();
            let big_update = update(&[], &big_attrs, &nlri(big, None));
            if big_update.len() <= 4096 {
                return Err(Error::Invalid("the large route fits 4,096 octets".into()));
            }
            let mut burst: Vec<u8> = announcements(&base, small.iter().copied(), 4096).concat();
            burst.extend(big_update);
            hostile.send_bytes(&burst)?;
            lab.bird_holds(1000)?;
            let bgpd = &lab.bgpd;
            wait_for("bgpd to hold all 1,001 routes", TIMEOUT, || {
                let v = bgpd.route_entries("loc", big.into())?;
                Ok(if v.len() == 1 {
                    Ok(())
                } else {
                    Err(format!("{v:?}"))
                })
            })?;
            let at_bird = lab.bird.routes(Family::Ipv4)?;
            if at_bird.iter().any(|r| r.prefix == IpNet::V4(big)) {
                return Err(Error::Check(
                    "BIRD got the route that cannot fit its messages".into(),
                ));
            }
            let warned = lab.log_lines("routes cannot be sent to this peer");
            if warned != 1 {
                return Err(Error::Check(format!("{warned} warnings logged, want 1")));
            }
            // The big route changes (still too large): no second warning, BIRD unchanged.
            let bigger = [big_attrs.clone(), med(5)].concat();
            hostile.send_bytes(&update(&[], &bigger, &nlri(big, None)))?;
            lab.check("after the second large route")?;
            // Everything withdrawn in one go: BIRD ends up empty.
            let mut all = small.clone();
            all.push((big, None));
            hostile.send_all(&withdrawals(all.iter().copied(), 4096))?;
            lab.bird_holds(0)?;
            let warned = lab.log_lines("routes cannot be sent to this peer");
            if warned != 1 {
                return Err(Error::Check(format!("{warned} warnings logged, want 1")));
            }
            let now = lab.check("at the end")?;
            lab.bounded(now, 64, 20.0)
        },
    )
}

/// One /32 with 200,000 ADD-PATH path ids, then 20 changes. Storing them used to scan
/// the prefix's paths for each one and compare MEDs pairwise: 398 CPU-s, `status`
/// answered 3 times of 203 within 2 s. Now the peer keeps its first 1,024 paths
/// (`add_path_receive_limit`'s default, logged once), the rest is ignored, `status`
/// answers every time, and BIRD follows the best path and its withdrawal.
#[test]
fn add_path_flood_for_one_prefix() {
    run_test("add_path_flood_for_one_prefix", &kinds(), |t| {
        let seg = Segment::new(t)?;
        let mut lab = Lab::up(t, &seg, true)?;
        let caps = [
            Capability::ExtendedMessage,
            Capability::AddPath(vec![(bgp_proto::Family::IPV4_UNICAST, AddPathMode::Send)]),
        ];
        let hostile = lab.connect(&lab.hostile, 65001, &caps)?;
        let host: Ipv4Net = "10.99.0.1/32".parse().unwrap_or_default();
        let long = base_attributes(&[65001, 64600], lab.hostile.v4);
        let flood = announcements(&long, (0..200_000).map(|id| (host, Some(id))), 65535);
        // The 20 changes: ids 0..20 with a shorter AS_PATH and falling MED, so the best
        // path ends as id 19 ("65001", MED 81).
        let changes: Vec<Vec<u8>> = (0..20u32)
            .map(|k| {
                let a = [base_attributes(&[65001], lab.hostile.v4), med(100 - k)].concat();
                update(&[], &a, &nlri(host, Some(k)))
            })
            .collect();
        hostile.set_write_timeout(Some(Duration::from_secs(60)))?;
        let writer = hostile.sender();
        let sender = std::thread::spawn(move || -> Result<()> {
            for m in flood.iter().chain(&changes) {
                writer.send_bytes(m)?;
            }
            Ok(())
        });
        lab.watch("during the ADD-PATH flood", || !sender.is_finished())?;
        sender
            .join()
            .map_err(|_| Error::Check("flood sender panicked".into()))?
            .map_err(|e| Error::Check(format!("sending the flood: {e}")))?;
        let hostile_addr = lab.hostile.addr(Family::Ipv4);
        let bgpd = &lab.bgpd;
        wait_for("bgpd to hold the limit's 1,024 paths", TIMEOUT, || {
            let v = bgpd.show_peer(hostile_addr)?;
            let n = v
                .pointer("/summary/prefixes_received")
                .and_then(serde_json::Value::as_u64);
            Ok(if n == Some(1024) {
                Ok(())
            } else {
                Err(format!("{n:?}"))
            })
        })?;
        let bird_route = wait_best(&mut lab, host, &[65002, 65001])?;
        interop::say(&format!("BIRD's route: {bird_route:?}"));
        let warned = lab.log_lines("paths past add_path_receive_limit");
        if warned != 1 {
            return Err(Error::Check(format!(
                "{warned} limit warnings logged, want 1"
            )));
        }
        let now = lab.check("after the flood")?;
        lab.bounded(now, 96, 40.0)?;
        // Every path id withdrawn: BIRD loses the route.
        hostile.send_all(&withdrawals((0..200_000).map(|id| (host, Some(id))), 65535))?;
        lab.bird_holds(0)?;
        lab.check("at the end")?;
        Ok(())
    })
}

/// Waits (checking) until BIRD's best route for `prefix` has AS_PATH `path`.
fn wait_best(lab: &mut Lab, prefix: Ipv4Net, path: &[u32]) -> Result<interop::RouteView> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        lab.check("waiting for BIRD's best path")?;
        let routes = lab.bird.routes(Family::Ipv4)?;
        let r = routes
            .iter()
            .find(|r| r.prefix == IpNet::V4(prefix) && r.best)
            .cloned();
        match r {
            Some(r) if r.as_path == path => return Ok(r),
            other if Instant::now() > deadline => {
                return Err(Error::Check(format!(
                    "BIRD's route for {prefix}: {other:?}"
                )))
            }
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// RFC 4271 6.3: an UPDATE with a well-known attribute bgpd does not know (flags 0x40,
/// type 99) closes that session with UPDATE Message Error / Unrecognized Well-known
/// Attribute, the attribute as data (it used to be treated as withdraw). RFC 7606 7.9,
/// 7.10: ORIGINATOR_ID and CLUSTER_LIST from an external peer are discarded, so a
/// route carrying bgpd's own cluster id in them is accepted and passed on without
/// them (it used to be refused as a reflection loop).
#[test]
fn protocol_details_of_hostile_attributes() {
    run_test("protocol_details_of_hostile_attributes", &kinds(), |t| {
        let seg = Segment::new(t)?;
        let mut lab = Lab::up(t, &seg, false)?;
        // ORIGINATOR_ID and CLUSTER_LIST from the eBGP feeder, naming bgpd itself.
        let feeder = lab.connect(&lab.feeder, 65010, &[])?;
        let bgpd_id = lab.bgpd_node.v4.octets();
        let reflected = [
            base_attributes(&[65010], lab.feeder.v4),
            attr(flags::OPTIONAL, 9, &bgpd_id),
            attr(flags::OPTIONAL, 10, &[bgpd_id, [192, 0, 2, 99]].concat()),
        ]
        .concat();
        let p: Ipv4Net = "10.77.0.0/24".parse().unwrap_or_default();
        feeder.send_bytes(&update(&[], &reflected, &nlri(p, None)))?;
        lab.bird_holds(1)?;
        let entries = lab.bgpd.route_entries("loc", p.into())?;
        let clean = entries.len() == 1
            && entries.iter().all(|e| {
                e.get("originator_id")
                    .is_none_or(serde_json::Value::is_null)
                    && e.get("cluster_list")
                        .and_then(serde_json::Value::as_array)
                        .is_none_or(Vec::is_empty)
            });
        if !clean {
            return Err(Error::Check(format!(
                "bgpd kept reflection attributes from an external peer: {entries:?}"
            )));
        }
        // An unrecognized well-known attribute from the hostile peer.
        let hostile = lab.connect(&lab.hostile, 65001, &[])?;
        let unknown = attr(flags::TRANSITIVE, 99, &[1, 2, 3]);
        let bad = [base_attributes(&[65001], lab.hostile.v4), unknown.clone()].concat();
        hostile.send_bytes(&update(&[], &bad, &nlri(slash24(5), None)))?;
        let n = hostile
            .notification(TIMEOUT)?
            .ok_or_else(|| Error::Check("session closed without a NOTIFICATION".into()))?;
        if (n.code, n.subcode) != (3, 2) || n.data[..] != unknown[..] {
            return Err(Error::Check(format!(
                "NOTIFICATION {}/{} with data {:02x?}, want 3/2 with {unknown:02x?}",
                n.code,
                n.subcode,
                &n.data[..]
            )));
        }
        lab.bird_holds(1)?;
        feeder.send_all(&withdrawals([(p, None)], 4096))?;
        lab.bird_holds(0)?;
        let now = lab.check("at the end")?;
        lab.bounded(now, 64, 20.0)
    })
}

/// `show peers`, `show peer` and the BIRD-compatible socket's `show protocols` (what
/// calico-node's readiness probe sends) while a peer has sent 100,000 routes: the
/// counts used to be made by building and sorting every peer's Adj-RIB-In at each
/// query; now they come from counters the RIB keeps.
#[test]
fn status_queries_next_to_a_large_table() {
    run_test("status_queries_next_to_a_large_table", &kinds(), |t| {
        let seg = Segment::new(t)?;
        let mut lab = Lab::up(t, &seg, false)?;
        let table: Vec<(Ipv4Net, Option<u32>)> = (0..100_000).map(|i| (slash24(i), None)).collect();
        let feeder = lab.connect(&lab.feeder, 65010, &[])?;
        let attrs = base_attributes(&[65010], lab.feeder.v4);
        feeder.send_all(&announcements(&attrs, table.iter().copied(), 4096))?;
        lab.bird_holds(100_000)?;
        let before = lab.check("with the table")?;
        let feeder_addr = lab.feeder.addr(Family::Ipv4);
        for _ in 0..100 {
            let t0 = Instant::now();
            let peers = lab
                .bgpd
                .control(serde_json::json!({"command": "show_peers"}))?;
            let one = lab.bgpd.show_peer(feeder_addr)?;
            let protocols = lab.bird_cli("show protocols")?;
            if t0.elapsed() > STATUS_BOUND {
                return Err(Error::Check(format!(
                    "show peers, show peer and show protocols took {:?}",
                    t0.elapsed()
                )));
            }
            let established = protocols
                .lines()
                .filter(|l| l.contains("BGP") && l.contains("Established"))
                .count();
            if established < 2 {
                return Err(Error::Check(format!("show protocols: {protocols}")));
            }
            let received = one
                .pointer("/summary/prefixes_received")
                .and_then(serde_json::Value::as_u64);
            let sent_to_bird = peers
                .get("peers")
                .and_then(serde_json::Value::as_array)
                .and_then(|v| {
                    v.iter().find(|p| {
                        p.get("remote_as").and_then(serde_json::Value::as_u64) == Some(65003)
                    })
                })
                .and_then(|p| p.get("prefixes_sent"))
                .and_then(serde_json::Value::as_u64);
            if received != Some(100_000) || sent_to_bird != Some(100_000) {
                return Err(Error::Check(format!(
                    "counts: received {received:?}, sent to BIRD {sent_to_bird:?}"
                )));
            }
        }
        let after = lab.check("after 300 queries")?;
        let cpu = after.cpu.saturating_sub(before.cpu).as_secs_f64();
        interop::say(&format!("300 peer queries: {cpu:.2} CPU-s"));
        if cpu > 5.0 {
            return Err(Error::Check(format!(
                "300 peer queries cost bgpd {cpu:.1} CPU-s (bound 5)"
            )));
        }
        feeder.send_all(&withdrawals(table.iter().copied(), 4096))?;
        lab.bird_holds(0)?;
        let now = lab.check("at the end")?;
        lab.bounded(now, 200, 60.0)
    })
}

/// A peer over its `max_prefixes` limit with `action = "warn"` keeps its session and
/// keeps sending: the exact count taken before acting used to build and sort its whole
/// Adj-RIB-In at every UPDATE past the limit; now it reads the RIB's counters. One
/// warning, BIRD gets every route, bgpd's CPU stays low.
#[test]
fn max_prefixes_warn_with_a_peer_far_over_its_limit() {
    run_test(
        "max_prefixes_warn_with_a_peer_far_over_its_limit",
        &kinds(),
        |t| {
            let seg = Segment::new(t)?;
            let limit = "max_prefixes = { limit = 10000, action = \"warn\" }";
            let mut lab = Lab::up_with(t, &seg, false, limit)?;
            let table: Vec<(Ipv4Net, Option<u32>)> =
                (0..100_000).map(|i| (slash24(i), None)).collect();
            let feeder = lab.connect(&lab.feeder, 65010, &[])?;
            let attrs = base_attributes(&[65010], lab.feeder.v4);
            let batches = announcements(&attrs, table.iter().copied(), 4096);
            feeder.send_all(&batches)?;
            lab.bird_holds(100_000)?;
            // Twice more (every UPDATE re-announces what is held, still over the limit).
            let bgpd = &lab.bgpd;
            for pass in [2, 3] {
                let again = base_attributes(&vec![65010; pass], lab.feeder.v4);
                feeder.send_all(&announcements(&again, table.iter().copied(), 4096))?;
                let want = vec!["65010"; pass].join(" ");
                wait_for(
                    "the re-announcements to reach bgpd's table",
                    TIMEOUT,
                    || {
                        let v = bgpd.route_entries("loc", slash24(99_999).into())?;
                        let path = v
                            .first()
                            .and_then(|e| e.get("as_path"))
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        Ok(if path == want { Ok(()) } else { Err(path) })
                    },
                )?;
            }
            let warned = lab.log_lines("prefix limit exceeded");
            if warned != 1 {
                return Err(Error::Check(format!(
                    "{warned} prefix limit warnings, want 1"
                )));
            }
            // Measured in a debug build: 1.3 CPU-s for the three passes; 9.1 with the
            // exact count by building and sorting the Adj-RIB-In.
            let now = lab.check("after 300 UPDATEs over the limit")?;
            lab.bounded(now, 200, 4.0)?;
            feeder.send_all(&withdrawals(table.iter().copied(), 4096))?;
            lab.bird_holds(0)?;
            lab.check("at the end")?;
            Ok(())
        },
    )
}
