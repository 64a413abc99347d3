//! The BMP client state machine on a virtual clock: what a station receives on each
//! connection (Initiation first, the peers that are up, then what the caller offers), the
//! reconnection delays, the timers, the overflow rule, and a property test driving random
//! sequences of events and checking every stream a station would see.

mod common;

use std::time::{Duration, Instant};

use bgp_bmp::client::{
    Client, ClientConfig, ClientEvent, ClientState, DisconnectReason, Enqueued, MIN_QUEUE,
};
use bgp_bmp::wire::{
    decode_message, frame_len, BmpMessage, PeerDown, PeerDownReason, PeerFlags, RouteMonitoring,
    Stat, StatisticsReport, TerminationReason,
};
use bgp_proto::{CodecContext, Family};
use bytes::Bytes;
use common::{attrs, peer, peer_up, update};
use proptest::prelude::*;

/// A client and the station end of its connections, on a virtual clock.
struct Harness {
    client: Client,
    now: Instant,
    /// Messages received on each connection so far.
    streams: Vec<Vec<BmpMessage>>,
    events: Vec<ClientEvent>,
}

impl Harness {
    fn new(config: ClientConfig) -> Harness {
        Harness {
            client: Client::new(config).unwrap(),
            now: Instant::now(),
            streams: Vec::new(),
            events: Vec::new(),
        }
    }

    fn events(&mut self) -> Vec<ClientEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.client.poll_event() {
            out.push(e);
        }
        self.events.extend(out.iter().cloned());
        out
    }

    /// The station reads everything queued; returns the messages.
    fn deliver(&mut self) -> Vec<BmpMessage> {
        let mut got = Vec::new();
        while let Some(mut chunk) = self.client.poll_transmit() {
            while !chunk.is_empty() {
                let n = frame_len(&chunk, usize::MAX)
                    .unwrap()
                    .expect("whole messages");
                got.push(decode_message(chunk.split_to(n)).unwrap());
            }
        }
        if let Some(stream) = self.streams.last_mut() {
            stream.extend(got.iter().cloned());
        }
        got
    }

    fn connect(&mut self) {
        self.client.handle_connected(self.now);
        self.streams.push(Vec::new());
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
    }

    /// Run the clock to the next deadline.
    fn run_to_deadline(&mut self) -> Duration {
        let t = self.client.poll_timeout().expect("a deadline");
        let waited = t.saturating_duration_since(self.now);
        self.now = t;
        self.client.handle_timeout(self.now);
        waited
    }
}

fn config() -> ClientConfig {
    let mut c = ClientConfig::new("node-1", "bgpd test");
    c.stats_interval = Some(Duration::from_secs(30));
    c.jitter_seed = 42;
    c
}

fn route(last: u8, prefix: &str) -> RouteMonitoring {
    let ctx = CodecContext {
        four_octet_as: true,
        ..Default::default()
    };
    RouteMonitoring {
        peer: peer(last),
        update: update(&[(prefix, None)], &attrs(&[65000 + u32::from(last)]), &ctx),
    }
}

fn kinds(msgs: &[BmpMessage]) -> Vec<&'static str> {
    msgs.iter()
        .map(|m| match m {
            BmpMessage::Initiation(_) => "init",
            BmpMessage::PeerUp(_) => "up",
            BmpMessage::PeerDown(_) => "down",
            BmpMessage::RouteMonitoring(_) => "route",
            BmpMessage::StatisticsReport(_) => "stats",
            BmpMessage::Termination(_) => "term",
            BmpMessage::RouteMirroring(_) => "mirror",
        })
        .collect()
}

#[test]
fn a_connection_starts_with_initiation_then_the_peers_that_are_up() {
    let mut h = Harness::new(config());
    assert_eq!(h.client.state(), ClientState::Idle);
    // Peers come up before the station is reachable: kept, not sent.
    assert_eq!(
        h.client.peer_up(peer_up(1, &[])),
        Ok(Enqueued::NotConnected)
    );
    assert_eq!(
        h.client.peer_up(peer_up(2, &[])),
        Ok(Enqueued::NotConnected)
    );
    assert_eq!(
        h.client.route_monitoring(route(1, "10.1.0.0/16")),
        Ok(Enqueued::NotConnected)
    );
    h.client.start(h.now);
    assert_eq!(h.events(), [ClientEvent::Connect]);
    assert_eq!(h.client.state(), ClientState::Connecting);
    h.connect();
    assert_eq!(h.events(), [ClientEvent::ReplayRoutes { session: 1 }]);
    assert_eq!(h.client.session(), Some(1));
    let got = h.deliver();
    assert_eq!(kinds(&got), ["init", "up", "up"]);
    let BmpMessage::Initiation(init) = &got[0] else {
        unreachable!()
    };
    assert_eq!(init.sys_name().as_deref(), Some("node-1"));
    assert_eq!(init.sys_descr().as_deref(), Some("bgpd test"));
    assert_eq!(got[1], BmpMessage::PeerUp(peer_up(1, &[])));
    // The replay and live messages now flow.
    assert_eq!(
        h.client.route_monitoring(route(1, "10.1.0.0/16")),
        Ok(Enqueued::Queued)
    );
    let post = RouteMonitoring {
        peer: peer(2).with_flags(PeerFlags(PeerFlags::POST_POLICY)),
        ..route(2, "10.2.0.0/16")
    };
    assert_eq!(
        h.client.route_monitoring(post.clone()),
        Ok(Enqueued::Queued)
    );
    assert_eq!(
        h.deliver(),
        [
            BmpMessage::RouteMonitoring(route(1, "10.1.0.0/16")),
            BmpMessage::RouteMonitoring(post)
        ]
    );
    assert!(h.client.counters().bytes_sent > 0);
}

#[test]
fn messages_about_unknown_peers_are_refused_and_peer_down_forgets() {
    let mut h = Harness::new(config());
    h.client.start(h.now);
    h.connect();
    h.events();
    h.deliver();
    assert_eq!(
        h.client.route_monitoring(route(1, "10.1.0.0/16")),
        Ok(Enqueued::UnknownPeer)
    );
    let down = PeerDown {
        peer: peer(1),
        reason: PeerDownReason::RemoteNoData,
    };
    assert_eq!(h.client.peer_down(down.clone()), Ok(Enqueued::UnknownPeer));
    assert_eq!(h.client.peer_up(peer_up(1, &[])), Ok(Enqueued::Queued));
    let stats = StatisticsReport {
        peer: peer(1),
        stats: vec![Stat::counter(0, 1)],
    };
    assert_eq!(h.client.statistics(stats), Ok(Enqueued::Queued));
    assert_eq!(h.client.peer_down(down.clone()), Ok(Enqueued::Queued));
    assert_eq!(
        h.client.route_monitoring(route(1, "10.1.0.0/16")),
        Ok(Enqueued::UnknownPeer)
    );
    assert_eq!(kinds(&h.deliver()), ["up", "stats", "down"]);
    assert_eq!(h.client.peers().count(), 0);
    // A message the codec refuses is an error, and nothing is queued.
    let mut bad = route(1, "10.1.0.0/16");
    bad.update = common::notification(6, 2);
    h.client.peer_up(peer_up(1, &[])).unwrap();
    assert!(h.client.route_monitoring(bad).is_err());
    assert_eq!(kinds(&h.deliver()), ["up"]);
}

#[test]
fn statistics_fall_due_every_interval_while_connected() {
    let mut h = Harness::new(config());
    h.client.start(h.now);
    h.connect();
    h.events();
    h.deliver();
    assert_eq!(h.run_to_deadline(), Duration::from_secs(30));
    assert_eq!(h.events(), [ClientEvent::StatisticsDue]);
    assert_eq!(h.run_to_deadline(), Duration::from_secs(30));
    assert_eq!(h.events(), [ClientEvent::StatisticsDue]);
    let mut quiet = config();
    quiet.stats_interval = None;
    let mut h = Harness::new(quiet);
    h.client.start(h.now);
    h.connect();
    h.deliver();
    assert_eq!(h.client.poll_timeout(), None);
}

#[test]
fn reconnects_with_growing_delays_and_replays_on_each_connection() {
    let mut h = Harness::new(config());
    h.client.peer_up(peer_up(1, &[])).unwrap();
    h.client.start(h.now);
    h.events();
    // Three failed attempts: each delay in [base/2, base], base 1, 2, 4 s.
    for base in [1u64, 2, 4] {
        h.client.handle_connect_failed(h.now);
        assert_eq!(
            h.events(),
            [ClientEvent::Disconnected(DisconnectReason::ConnectFailed)]
        );
        assert_eq!(h.client.state(), ClientState::Waiting);
        let waited = h.run_to_deadline();
        let base = Duration::from_secs(base);
        assert!(
            waited >= base / 2 && waited <= base,
            "{waited:?} for {base:?}"
        );
        assert_eq!(h.events(), [ClientEvent::Connect]);
    }
    h.connect();
    assert_eq!(h.events(), [ClientEvent::ReplayRoutes { session: 1 }]);
    h.deliver();
    // The station goes away after 10 s: the delay goes on growing (8 s base) ...
    h.advance(Duration::from_secs(10));
    h.client.handle_closed(h.now);
    assert_eq!(
        h.events(),
        [ClientEvent::Disconnected(DisconnectReason::Closed)]
    );
    let waited = h.run_to_deadline();
    assert!(
        waited >= Duration::from_secs(4) && waited <= Duration::from_secs(8),
        "{waited:?}"
    );
    h.events();
    h.connect();
    assert_eq!(h.events(), [ClientEvent::ReplayRoutes { session: 2 }]);
    assert_eq!(kinds(&h.deliver()), ["init", "up"]);
    // ... and a connection that lasted `stable_after` resets it.
    h.advance(Duration::from_secs(61));
    h.events();
    h.client.handle_closed(h.now);
    let waited = h.run_to_deadline();
    assert!(waited <= Duration::from_secs(1), "{waited:?}");
    assert_eq!(h.streams.len(), 2);
    assert_eq!(h.client.counters().connections, 2);
}

#[test]
fn an_attempt_that_hangs_is_abandoned() {
    let mut h = Harness::new(config());
    h.client.start(h.now);
    h.events();
    assert_eq!(h.run_to_deadline(), Duration::from_secs(30));
    assert_eq!(
        h.events(),
        [
            ClientEvent::Close,
            ClientEvent::Disconnected(DisconnectReason::ConnectTimeout)
        ]
    );
    assert_eq!(h.client.state(), ClientState::Closing);
    h.client.handle_closed(h.now);
    assert_eq!(h.client.state(), ClientState::Waiting);
    // A late report of the abandoned attempt changes nothing.
    h.client.handle_connected(h.now);
    assert_eq!(h.client.state(), ClientState::Waiting);
}

#[test]
fn overflow_drops_the_queue_terminates_and_resynchronises() {
    let mut h = connected(MIN_QUEUE);
    h.events();
    // The station takes the first chunk, then stops reading.
    assert!(h.client.route_monitoring(route(1, "10.0.0.0/16")).is_ok());
    h.deliver();
    let mut queued = 0;
    let outcome = loop {
        match h.client.route_monitoring(route(1, "10.1.0.0/16")).unwrap() {
            Enqueued::Queued => queued += 1,
            other => break other,
        }
    };
    assert_eq!(outcome, Enqueued::Overflow);
    assert!(queued > 1000, "{queued} messages fit 256 KiB");
    assert_eq!(
        h.events(),
        [
            ClientEvent::Close,
            ClientEvent::Disconnected(DisconnectReason::QueueOverflow)
        ]
    );
    // What is left to write is the Termination alone: the stream stays framed.
    let got = h.deliver();
    assert_eq!(kinds(&got), ["term"]);
    let BmpMessage::Termination(t) = &got[0] else {
        unreachable!()
    };
    assert_eq!(t.reason(), Some(TerminationReason::OUT_OF_RESOURCES));
    assert_eq!(h.client.counters().overflows, 1);
    assert_eq!(h.client.counters().messages_dropped, queued);
    // Offers while closing are dropped, then the client reconnects and resynchronises.
    assert_eq!(
        h.client.route_monitoring(route(1, "10.1.0.0/16")),
        Ok(Enqueued::NotConnected)
    );
    h.client.handle_closed(h.now);
    h.run_to_deadline();
    assert_eq!(h.events(), [ClientEvent::Connect]);
    h.connect();
    assert_eq!(h.events(), [ClientEvent::ReplayRoutes { session: 2 }]);
    assert_eq!(kinds(&h.deliver()), ["init", "up"]);
}

#[test]
fn an_overflow_before_anything_was_written_still_opens_with_initiation() {
    let mut h = connected(MIN_QUEUE);
    while h.client.route_monitoring(route(1, "10.1.0.0/16")) == Ok(Enqueued::Queued) {}
    assert_eq!(kinds(&h.deliver()), ["init", "term"]);
}

#[test]
fn bulk_sending_stops_at_half_the_queue_and_resumes_on_writable() {
    let mut h = connected(MIN_QUEUE);
    h.events();
    let mut sent = 0;
    while h.client.has_room() {
        assert_eq!(
            h.client.route_monitoring(route(1, "10.1.0.0/16")),
            Ok(Enqueued::Queued)
        );
        sent += 1;
    }
    assert!(h.client.queued_bytes() >= MIN_QUEUE / 2);
    assert!(sent > 100);
    assert!(h.events().is_empty());
    h.deliver();
    assert_eq!(h.events(), [ClientEvent::Writable]);
    assert!(h.client.has_room());
    // Not connected: no room, whatever the queue.
    h.client.handle_closed(h.now);
    assert!(!h.client.has_room());
}

/// Connected with peer 1 up and everything delivered; the stall clock runs from `h.now`.
fn connected_and_idle() -> Harness {
    let mut h = connected(config().max_queue);
    h.events();
    h.deliver();
    h
}

/// Peer 1 up and connected with a queue of `max_queue` bytes; nothing delivered yet.
fn connected(max_queue: usize) -> Harness {
    let mut c = config();
    c.max_queue = max_queue;
    let mut h = Harness::new(c);
    h.client.peer_up(peer_up(1, &[])).unwrap();
    h.client.start(h.now);
    h.connect();
    h
}

/// Run the clock until the client gives up on the station; returns the time it took.
fn until_stalled(h: &mut Harness, start: Instant) -> Duration {
    while h.client.state() == ClientState::Connected {
        h.run_to_deadline();
    }
    let evs = h.events();
    assert!(evs.contains(&ClientEvent::Close), "{evs:?}");
    assert!(
        evs.contains(&ClientEvent::Disconnected(DisconnectReason::SendStalled)),
        "{evs:?}"
    );
    assert_eq!(h.client.queued_bytes(), 0);
    h.now - start
}

#[test]
fn a_station_that_stops_reading_is_dropped_after_the_send_timeout() {
    let mut h = connected_and_idle();
    let start = h.now;
    // Something is queued and the caller's writer never takes it. The first call with a
    // time (statistics at 30 s) starts the 120 s clock.
    h.client.route_monitoring(route(1, "10.1.0.0/16")).unwrap();
    assert_eq!(until_stalled(&mut h, start), Duration::from_secs(150));
    // Nothing queued: no send timeout at all, only statistics.
    let h = connected_and_idle();
    assert_eq!(
        h.client.poll_timeout(),
        Some(h.now + Duration::from_secs(30))
    );
}

#[test]
fn taking_bytes_restarts_the_send_timeout() {
    let mut h = connected_and_idle();
    let start = h.now;
    h.client.route_monitoring(route(1, "10.1.0.0/16")).unwrap();
    h.run_to_deadline(); // 30 s: the clock starts (150 s)
    h.run_to_deadline(); // 60 s
    h.run_to_deadline(); // 90 s
    h.advance(Duration::from_secs(10));
    assert!(
        h.client.poll_transmit().is_some(),
        "the writer takes the bytes at 100 s"
    );
    h.client.route_monitoring(route(1, "10.2.0.0/16")).unwrap();
    // Progress seen at 120 s restarts the clock: stalled at 240 s.
    assert_eq!(until_stalled(&mut h, start), Duration::from_secs(240));
}

#[test]
fn stop_terminates_and_stays_idle() {
    let mut h = connected_and_idle();
    h.client.route_monitoring(route(1, "10.1.0.0/16")).unwrap();
    h.client.stop();
    assert_eq!(
        h.events(),
        [
            ClientEvent::Close,
            ClientEvent::Disconnected(DisconnectReason::Stopped)
        ]
    );
    // What was queued goes first, then the Termination.
    let got = h.deliver();
    assert_eq!(kinds(&got), ["route", "term"]);
    let BmpMessage::Termination(t) = &got[1] else {
        panic!("{got:?}")
    };
    assert_eq!(t.reason(), Some(TerminationReason::ADMINISTRATIVELY_CLOSED));
    h.client.handle_closed(h.now);
    assert_eq!(h.client.state(), ClientState::Idle);
    assert_eq!(h.client.poll_timeout(), None);
    // Started again while the close is under way: it reconnects after it.
    h.client.start(h.now);
    h.connect();
    h.events();
    h.deliver();
    h.client.stop();
    h.client.start(h.now);
    h.events();
    h.client.handle_closed(h.now);
    assert_eq!(h.client.state(), ClientState::Waiting);
    // Stopping while waiting or idle just stays idle; start again connects.
    h.client.stop();
    h.client.start(h.now);
    assert_eq!(h.events(), [ClientEvent::Connect]);
    // Bytes from the station are counted and ignored.
    h.client.handle_data(b"hello");
    assert_eq!(h.client.counters().bytes_ignored, 5);
}

#[test]
fn configurations_that_cannot_run_are_refused() {
    let mut c = config();
    c.max_queue = 1000;
    assert!(Client::new(c).is_err());
    let mut c = config();
    c.backoff_initial = Duration::from_secs(100);
    assert!(Client::new(c).is_err());
    let mut c = config();
    c.stats_interval = Some(Duration::from_millis(10));
    assert!(Client::new(c).is_err());
    let mut c = config();
    c.send_timeout = Duration::ZERO;
    assert!(Client::new(c).is_err());
}

/// One step of the property test.
#[derive(Clone, Debug)]
enum Op {
    Start,
    Stop,
    PeerUp(u8),
    PeerDown(u8),
    Route(u8),
    Stats(u8),
    Flood(u8),
    Deliver,
    ConnectResult(bool),
    StationCloses,
    Advance(u16),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Start),
        Just(Op::Stop),
        (1u8..4).prop_map(Op::PeerUp),
        (1u8..4).prop_map(Op::PeerDown),
        (1u8..4).prop_map(Op::Route),
        (1u8..4).prop_map(Op::Stats),
        (1u8..4).prop_map(Op::Flood),
        Just(Op::Deliver),
        any::<bool>().prop_map(Op::ConnectResult),
        Just(Op::StationCloses),
        (0u16..5000).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever happens, every connection's stream is what a station expects: Initiation
    /// first; a message about a peer only between its Peer Up and Peer Down; nothing after
    /// a Termination; and the client never panics.
    #[test]
    fn every_stream_is_well_formed(ops in proptest::collection::vec(arb_op(), 1..80)) {
        let mut c = config();
        c.max_queue = MIN_QUEUE;
        let mut h = Harness::new(c);
        let mut connecting = false;
        let mut closing = false;
        for op in ops {
            match op {
                Op::Start => h.client.start(h.now),
                Op::Stop => h.client.stop(),
                Op::PeerUp(p) => { h.client.peer_up(peer_up(p, &[])).unwrap(); }
                Op::PeerDown(p) => {
                    let down = PeerDown { peer: peer(p), reason: PeerDownReason::PeerDeconfigured };
                    h.client.peer_down(down).unwrap();
                }
                Op::Route(p) => { h.client.route_monitoring(route(p, "10.9.0.0/16")).unwrap(); }
                Op::Stats(p) => {
                    let r = StatisticsReport { peer: peer(p), stats: vec![Stat::gauge(7, 1)] };
                    h.client.statistics(r).unwrap();
                }
                Op::Flood(p) => {
                    for _ in 0..600 {
                        h.client.route_monitoring(route(p, "10.9.0.0/16")).unwrap();
                    }
                }
                Op::Deliver => { h.deliver(); }
                Op::ConnectResult(ok) if connecting => {
                    connecting = false;
                    if ok { h.connect(); } else { h.client.handle_connect_failed(h.now); }
                }
                Op::ConnectResult(_) => {}
                Op::StationCloses => {
                    if h.client.session().is_some() || closing {
                        h.deliver();
                        closing = false;
                        h.client.handle_closed(h.now);
                    }
                }
                Op::Advance(ms) => h.advance(Duration::from_millis(u64::from(ms) * 10)),
            }
            for e in h.events() {
                match e {
                    ClientEvent::Connect => connecting = true,
                    ClientEvent::Close => {
                        // The caller writes what is left, then closes.
                        h.deliver();
                        connecting = false;
                        closing = true;
                    }
                    _ => {}
                }
            }
            if closing {
                closing = false;
                h.client.handle_closed(h.now);
            }
        }
        h.deliver();
        for stream in &h.streams {
            let mut up = std::collections::BTreeSet::new();
            for (i, m) in stream.iter().enumerate() {
                if i == 0 {
                    prop_assert!(matches!(m, BmpMessage::Initiation(_)), "{:?}", kinds(stream));
                    continue;
                }
                match m {
                    BmpMessage::Initiation(_) => prop_assert!(false, "second Initiation"),
                    BmpMessage::Termination(_) => prop_assert_eq!(i, stream.len() - 1),
                    BmpMessage::PeerUp(u) => { up.insert(u.peer.key()); }
                    BmpMessage::PeerDown(d) => prop_assert!(up.remove(&d.peer.key())),
                    other => {
                        let key = other.peer().map(|p| p.key());
                        prop_assert!(key.is_some_and(|k| up.contains(&k)), "{:?}", kinds(stream));
                    }
                }
            }
        }
    }
}

#[test]
fn route_monitoring_decodes_with_the_peer_up_context() {
    // What a station does with the stream: decode each UPDATE with the context of the
    // peer's Peer Up.
    let v4 = Family::IPV4_UNICAST;
    let mut h = Harness::new(config());
    let up = peer_up(1, &[(v4, bgp_proto::AddPathMode::Both)]);
    h.client.peer_up(up.clone()).unwrap();
    h.client.start(h.now);
    h.connect();
    let ctx = CodecContext {
        four_octet_as: true,
        add_path_receive: vec![v4],
        add_path_send: vec![v4],
        ..Default::default()
    };
    let rm = RouteMonitoring {
        peer: peer(1),
        update: update(&[("10.7.0.0/16", Some(3))], &attrs(&[65001]), &ctx),
    };
    h.client.route_monitoring(rm).unwrap();
    let got = h.deliver();
    let BmpMessage::RouteMonitoring(rm) = &got[2] else {
        panic!("{:?}", kinds(&got))
    };
    let decoded = rm
        .decode_update(&up.update_context(rm.peer.flags).unwrap())
        .unwrap();
    let ids: Vec<_> = decoded.update.announced().map(|(_, n)| n.path_id).collect();
    assert_eq!(ids, [Some(3)]);
    let _: Bytes = rm.update.clone();
}
