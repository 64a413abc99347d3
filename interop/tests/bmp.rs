//! The sans-IO BMP client (`bgp-bmp`) against a real collector: pmacct's `pmbmpd` in a
//! network namespace, logging what it receives as JSON, checked message by message.
//!
//! The test drives the client over a real TCP connection from inside the namespace to
//! pmbmpd on its loopback, with a small blocking driver standing in for the daemon: it
//! opens and closes the connection when the client asks, writes what the client hands
//! out, reports closes and timers, and plays the RIB (routes replayed on
//! `ReplayRoutes`, statistics on `StatisticsDue`).
//!
//! Needs root (namespaces) and pmbmpd (`apt-get install pmacct`): skipped with a message
//! otherwise, failed instead when CI=true.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bgp_bmp::client::{Client, ClientConfig, ClientEvent, DisconnectReason, Enqueued};
use bgp_bmp::wire::{
    stat_type, PeerDown, PeerDownReason, PeerFlags, PeerHeader, PeerUp, RouteMonitoring, Stat,
    StatisticsReport, Tlv,
};
use bgp_proto::wire::{encode_announcements, encode_message, encode_withdrawals};
use bgp_proto::{
    AddPathMode, AsPath, AsSegment, Capability, CodecContext, Community, Family, LargeCommunity,
    Message, MpNextHop, Nlri, Notification, Open, Origin, PathAttributes, SegmentType,
};
use bytes::{Bytes, BytesMut};
use interop::pmbmpd::Pmbmpd;
use interop::{run_test, Error, Netns, Result, Test, TIMEOUT};
use serde_json::{json, Value};

/// The daemon's part, as a blocking loop over one client and one socket.
struct Driver {
    client: Client,
    ns: Arc<Netns>,
    station: SocketAddr,
    sock: Option<TcpStream>,
    /// Every event the client emitted, in order.
    events: Vec<ClientEvent>,
    /// The "RIB": what is replayed on every connection, and the statistics sent.
    routes: Vec<RouteMonitoring>,
    stats: Vec<StatisticsReport>,
}

impl Driver {
    fn new(config: ClientConfig, ns: &Arc<Netns>, station: SocketAddr) -> Driver {
        Driver {
            client: Client::new(config).expect("valid client configuration"),
            ns: Arc::clone(ns),
            station,
            sock: None,
            events: Vec::new(),
            routes: Vec::new(),
            stats: Vec::new(),
        }
    }

    /// One round: timers, events, writes, and a look at the socket.
    fn step(&mut self) {
        let now = Instant::now();
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        while let Some(event) = self.client.poll_event() {
            match &event {
                ClientEvent::Connect => match self.ns.tcp_connect(self.station) {
                    Ok(sock) => {
                        self.sock = Some(sock);
                        self.client.handle_connected(Instant::now());
                    }
                    Err(_) => self.client.handle_connect_failed(Instant::now()),
                },
                ClientEvent::Close => {
                    self.flush();
                    self.sock = None;
                    self.client.handle_closed(Instant::now());
                }
                ClientEvent::ReplayRoutes { .. } => {
                    for r in self.routes.clone() {
                        let outcome = self.client.route_monitoring(r).expect("encodable");
                        assert_eq!(outcome, Enqueued::Queued);
                    }
                }
                ClientEvent::StatisticsDue => {
                    for s in self.stats.clone() {
                        self.client.statistics(s).expect("encodable");
                    }
                }
                ClientEvent::Writable | ClientEvent::Disconnected(_) => {}
            }
            self.events.push(event);
        }
        self.flush();
        self.read();
    }

    /// Write what the client hands out; a failed write is a closed connection.
    fn flush(&mut self) {
        let Some(sock) = self.sock.as_mut() else {
            return;
        };
        while let Some(bytes) = self.client.poll_transmit() {
            if sock.write_all(&bytes).is_err() {
                self.sock = None;
                self.client.handle_closed(Instant::now());
                return;
            }
        }
    }

    /// Notice the station closing (BMP stations send nothing else).
    fn read(&mut self) {
        let Some(sock) = self.sock.as_mut() else {
            return;
        };
        let mut buf = [0u8; 1024];
        let _ = sock.set_nonblocking(true);
        let closed = match sock.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                self.client.handle_data(&buf[..n]);
                false
            }
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        let _ = sock.set_nonblocking(false);
        if closed {
            self.sock = None;
            self.client.handle_closed(Instant::now());
        }
    }

    /// Step until `done` holds (bounded by [`TIMEOUT`]).
    fn run_until(&mut self, what: &str, mut done: impl FnMut(&mut Driver) -> bool) -> Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            self.step();
            if done(self) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: what.to_string(),
                    secs: TIMEOUT.as_secs(),
                    last: format!("client {:?}, events {:?}", self.client.state(), self.events),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn config() -> ClientConfig {
    let mut c = ClientConfig::new("bmp-test-node", "bgpd BMP interop test");
    c.stats_interval = Some(Duration::from_secs(1));
    c.backoff_initial = Duration::from_millis(200);
    c.backoff_max = Duration::from_secs(1);
    c
}

fn framed(msg: Message) -> Bytes {
    let mut out = BytesMut::new();
    encode_message(&msg, &CodecContext::default(), &mut out).expect("encodable");
    out.freeze()
}

fn open(asn: u32, id: Ipv4Addr, add_path: bool) -> Bytes {
    let mut capabilities = vec![
        Capability::MultiProtocol(Family::IPV4_UNICAST),
        Capability::MultiProtocol(Family::IPV6_UNICAST),
        Capability::FourOctetAs(asn),
    ];
    if add_path {
        capabilities.push(Capability::AddPath(vec![(
            Family::IPV4_UNICAST,
            AddPathMode::Both,
        )]));
    }
    framed(Message::Open(Open {
        version: 4,
        my_as: Open::my_as_field(asn),
        hold_time: 90,
        bgp_id: id,
        capabilities,
        other_params: vec![],
    }))
}

const LOCAL_AS: u32 = 64512;

/// Peer A: IPv4, AS 65001, ADD-PATH for IPv4 unicast. Peer B: IPv6, 4-octet AS.
fn peer_a() -> PeerHeader {
    PeerHeader::new(
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        65001,
        Ipv4Addr::new(10, 0, 0, 1),
    )
}

fn peer_b() -> PeerHeader {
    PeerHeader::new(
        "2001:db8::2".parse().expect("address"),
        4_200_000_000,
        Ipv4Addr::new(10, 0, 0, 2),
    )
}

fn peer_up(peer: &PeerHeader, add_path: bool) -> PeerUp {
    let local_address = match peer.address {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254)),
        IpAddr::V6(_) => "2001:db8::fe".parse().expect("address"),
    };
    PeerUp {
        peer: peer.clone().at(SystemTime::now()),
        local_address,
        local_port: 179,
        remote_port: 50_000,
        sent_open: open(LOCAL_AS, Ipv4Addr::new(10, 0, 0, 254), add_path),
        received_open: open(peer.asn, peer.bgp_id, add_path),
        information: vec![Tlv::text(0, "peer up from the interop test")],
    }
}

fn attrs(asns: &[u32], local_pref: u32) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: asns.to_vec(),
            }],
        }),
        med: Some(20),
        local_pref: Some(local_pref),
        communities: vec![Community::new(65001, 100)],
        large_communities: vec![LargeCommunity {
            global: 4_200_000_000,
            local1: 7,
            local2: 8,
        }],
        ..Default::default()
    }
}

fn announce(
    family: Family,
    nh: MpNextHop,
    nlri: &[Nlri],
    attrs: &PathAttributes,
    add_path: bool,
) -> Bytes {
    let fams = if add_path { vec![family] } else { vec![] };
    let ctx = CodecContext {
        four_octet_as: true,
        extended_message: false,
        add_path_receive: fams.clone(),
        add_path_send: fams,
        external: false,
    };
    let mut out = Vec::new();
    encode_announcements(family, attrs, Some(&nh), nlri, &ctx, &mut out).expect("encodable");
    out.remove(0)
}

/// Pre-policy (as received, with path ids) and post-policy (local pref raised) routes of
/// peer A, and a pre-policy IPv6 route of peer B.
fn routes() -> Vec<RouteMonitoring> {
    let nh4 = MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
    let nh6 = MpNextHop::V6 {
        global: "2001:db8::2".parse().expect("address"),
        link_local: None,
    };
    let p = |s: &str, id| Nlri {
        path_id: id,
        prefix: s.parse().expect("prefix"),
    };
    let a_pre = announce(
        Family::IPV4_UNICAST,
        nh4.clone(),
        &[p("10.1.0.0/16", Some(1)), p("10.2.0.0/24", Some(2))],
        &attrs(&[65001, 64496], 100),
        true,
    );
    let a_post = announce(
        Family::IPV4_UNICAST,
        nh4,
        &[p("10.1.0.0/16", Some(1))],
        &attrs(&[65001, 64496], 300),
        true,
    );
    let b_pre = announce(
        Family::IPV6_UNICAST,
        nh6,
        &[p("2001:db8:100::/48", None)],
        &attrs(&[4_200_000_000, 64497], 100),
        false,
    );
    let now = SystemTime::now();
    vec![
        RouteMonitoring {
            peer: peer_a().at(now),
            update: a_pre,
        },
        RouteMonitoring {
            peer: peer_a()
                .with_flags(PeerFlags(PeerFlags::POST_POLICY))
                .at(now),
            update: a_post,
        },
        RouteMonitoring {
            peer: peer_b().at(now),
            update: b_pre,
        },
    ]
}

fn stats() -> Vec<StatisticsReport> {
    vec![StatisticsReport {
        peer: peer_a(),
        stats: vec![
            Stat::counter(stat_type::REJECTED_PREFIXES, 3),
            Stat::gauge(stat_type::ADJ_RIB_IN_ROUTES, 2),
            Stat::family_gauge(stat_type::ADJ_RIB_IN_FAMILY_ROUTES, Family::IPV4_UNICAST, 2),
        ],
    }]
}

/// `msg` has `bmp_msg_type` `kind` and every field of `fields` with that value.
fn check(msg: &Value, kind: &str, fields: &Value) -> std::result::Result<(), String> {
    let mut want = fields.clone();
    if let Some(map) = want.as_object_mut() {
        map.insert("bmp_msg_type".into(), Value::from(kind));
    }
    let Some(want) = want.as_object() else {
        return Err("expectation is not an object".into());
    };
    for (key, value) in want {
        if msg.get(key) != Some(value) {
            return Err(format!(
                "{key}: expected {value}, got {:?} in {msg}",
                msg.get(key)
            ));
        }
    }
    Ok(())
}

/// pmbmpd logged exactly `want`, message by message.
fn check_all(got: &[Value], want: &[(&str, Value)]) -> Result<()> {
    let problems: Vec<String> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter_map(|(i, (msg, (kind, fields)))| {
            check(msg, kind, fields)
                .err()
                .map(|e| format!("message {}: {e}", i + 1))
        })
        .collect();
    if got.len() != want.len() || !problems.is_empty() {
        return Err(Error::Check(format!(
            "pmbmpd logged {} messages, expected {}; {}\n{}",
            got.len(),
            want.len(),
            problems.join("; "),
            dump(got)
        )));
    }
    Ok(())
}

fn dump(msgs: &[Value]) -> String {
    msgs.iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn pmbmpd_logs_every_message_type() {
    run_test("pmbmpd_logs_every_message_type", &["pmbmpd"], |t: &Test| {
        let ns = Netns::new(t, "bmp")?;
        let station = Pmbmpd::start(t, &ns, "pmbmpd")?;
        let mut d = Driver::new(config(), &ns, station.address());
        d.routes = routes();
        d.stats = stats();
        d.client
            .peer_up(peer_up(&peer_a(), true))
            .expect("encodable");
        d.client
            .peer_up(peer_up(&peer_b(), false))
            .expect("encodable");
        d.client.start(Instant::now());
        d.run_until("statistics sent", |d| {
            d.events.contains(&ClientEvent::StatisticsDue) && d.client.queued_bytes() == 0
        })?;
        // Peer A withdraws a prefix (pre-policy), then both sessions go down.
        let mut w = Vec::new();
        let ctx = CodecContext {
            four_octet_as: true,
            add_path_send: vec![Family::IPV4_UNICAST],
            ..Default::default()
        };
        let gone = [Nlri {
            path_id: Some(2),
            prefix: "10.2.0.0/24".parse().expect("prefix"),
        }];
        encode_withdrawals(Family::IPV4_UNICAST, &gone, &ctx, &mut w).expect("encodable");
        let withdraw = RouteMonitoring {
            peer: peer_a().at(SystemTime::now()),
            update: w.remove(0),
        };
        assert_eq!(d.client.route_monitoring(withdraw), Ok(Enqueued::Queued));
        let cease = framed(Message::Notification(Notification {
            code: 6,
            subcode: 2,
            data: Bytes::new(),
        }));
        let down_a = PeerDown {
            peer: peer_a().at(SystemTime::now()),
            reason: PeerDownReason::RemoteNotification(cease),
        };
        let down_b = PeerDown {
            peer: peer_b().at(SystemTime::now()),
            reason: PeerDownReason::LocalNoNotification(0),
        };
        assert_eq!(d.client.peer_down(down_a), Ok(Enqueued::Queued));
        assert_eq!(d.client.peer_down(down_b), Ok(Enqueued::Queued));
        d.client.stop();
        d.run_until("the session to end", |d| d.sock.is_none())?;

        let msgs = station.wait_messages(14)?;
        let route = |prefix: &str, path_id: u32, is_post: u32, local_pref: u32| {
            json!({
                "peer_ip": "192.0.2.1", "afi": 1, "safi": 1, "log_type": "update",
                "ip_prefix": prefix, "as_path_id": path_id, "is_post": is_post,
                "as_path": "65001 64496", "bgp_nexthop": "192.0.2.1", "origin": "i",
                "local_pref": local_pref, "med": 20, "comms": "65001:100",
                "lcomms": "4200000000:7:8",
            })
        };
        let stat = |counter: u32, value: u64| json!({"peer_ip": "192.0.2.1", "peer_asn": 65001, "counter_type": counter, "counter_value": value});
        check_all(
            &msgs,
            &[
                (
                    "init",
                    json!({"bmp_init_info_sysname": "bmp-test-node",
                                "bmp_init_info_sysdescr": "bgpd BMP interop test"}),
                ),
                (
                    "peer_up",
                    json!({"peer_ip": "192.0.2.1", "peer_asn": 65001, "bgp_id": "10.0.0.1",
                                   "local_ip": "192.0.2.254", "local_port": 179, "remote_port": 50000,
                                   "peer_type": 0, "is_in": 1, "is_post": 0,
                                   "bmp_peer_up_info_string": "peer up from the interop test"}),
                ),
                (
                    "peer_up",
                    json!({"peer_ip": "2001:db8::2", "peer_asn": 4_200_000_000u32,
                                   "bgp_id": "10.0.0.2", "local_ip": "2001:db8::fe"}),
                ),
                // Pre-policy, two prefixes of one UPDATE with their ADD-PATH path ids.
                ("route_monitor", route("10.1.0.0/16", 1, 0, 100)),
                ("route_monitor", route("10.2.0.0/24", 2, 0, 100)),
                // Post-policy: LOCAL_PREF set by import policy.
                ("route_monitor", route("10.1.0.0/16", 1, 1, 300)),
                (
                    "route_monitor",
                    json!({"peer_ip": "2001:db8::2", "afi": 2, "safi": 1,
                                         "log_type": "update", "ip_prefix": "2001:db8:100::/48",
                                         "as_path": "4200000000 64497",
                                         "bgp_nexthop": "2001:db8::2", "is_post": 0}),
                ),
                ("stats", stat(0, 3)),
                ("stats", stat(7, 2)),
                (
                    "stats",
                    json!({"peer_ip": "192.0.2.1", "counter_type": 9, "counter_value": 2,
                                 "afi": 1, "safi": 1}),
                ),
                (
                    "route_monitor",
                    json!({"peer_ip": "192.0.2.1", "log_type": "withdraw",
                                         "ip_prefix": "10.2.0.0/24", "as_path_id": 2}),
                ),
                (
                    "peer_down",
                    json!({"peer_ip": "192.0.2.1", "reason_type": 3}),
                ),
                (
                    "peer_down",
                    json!({"peer_ip": "2001:db8::2", "reason_type": 2,
                                     "reason_loc_code": 0}),
                ),
                (
                    "term",
                    json!({"bmp_term_info_reason": "Session administratively closed"}),
                ),
            ],
        )?;
        Ok(())
    });
}

#[test]
fn client_reconnects_and_resynchronises_after_pmbmpd_restarts() {
    run_test(
        "client_reconnects_and_resynchronises_after_pmbmpd_restarts",
        &["pmbmpd"],
        |t: &Test| {
            let ns = Netns::new(t, "bmp")?;
            let mut station = Pmbmpd::start(t, &ns, "pmbmpd")?;
            let mut cfg = config();
            cfg.stats_interval = None;
            let mut d = Driver::new(cfg, &ns, station.address());
            d.routes = routes()
                .into_iter()
                .filter(|r| r.peer.key() == peer_a().key())
                .collect();
            d.client
                .peer_up(peer_up(&peer_a(), true))
                .expect("encodable");
            d.client.start(Instant::now());
            d.run_until("the first session to be written out", |d| {
                d.client.session() == Some(1) && d.client.queued_bytes() == 0
            })?;
            // init, peer up, three routes (pre-policy: two prefixes; post-policy: one).
            let first = station.wait_messages(5)?;
            let kinds: Vec<&str> = first
                .iter()
                .filter_map(|m| m["bmp_msg_type"].as_str())
                .collect();
            assert_eq!(
                kinds,
                [
                    "init",
                    "peer_up",
                    "route_monitor",
                    "route_monitor",
                    "route_monitor"
                ],
                "{}",
                dump(&first)
            );

            // The station goes away: the client notices, retries and is refused meanwhile.
            station.stop()?;
            d.run_until("the close and a refused attempt", |d| {
                d.events
                    .contains(&ClientEvent::Disconnected(DisconnectReason::Closed))
                    && d.events
                        .contains(&ClientEvent::Disconnected(DisconnectReason::ConnectFailed))
            })?;
            // It comes back: the client reconnects and replays everything.
            station.start_again(t)?;
            d.run_until("the second session to be written out", |d| {
                d.client.session() == Some(2) && d.client.queued_bytes() == 0
            })?;
            let second = station.wait_messages(5)?;
            check_all(
                &second,
                &[
                    ("init", json!({"bmp_init_info_sysname": "bmp-test-node"})),
                    (
                        "peer_up",
                        json!({"peer_ip": "192.0.2.1", "peer_asn": 65001}),
                    ),
                    (
                        "route_monitor",
                        json!({"ip_prefix": "10.1.0.0/16", "as_path_id": 1, "is_post": 0}),
                    ),
                    (
                        "route_monitor",
                        json!({"ip_prefix": "10.2.0.0/24", "as_path_id": 2, "is_post": 0}),
                    ),
                    (
                        "route_monitor",
                        json!({"ip_prefix": "10.1.0.0/16", "local_pref": 300, "is_post": 1}),
                    ),
                ],
            )?;
            assert!(d.events.contains(&ClientEvent::ReplayRoutes { session: 2 }));
            assert_eq!(d.client.counters().connections, 2);
            Ok(())
        },
    );
}
