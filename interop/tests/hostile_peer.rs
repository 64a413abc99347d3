//! bgpd against a hostile peer: a raw TCP peer in its own namespace (the test itself, with
//! the bgp-proto codec: interop::raw_peer) sends what no real daemon would, while
//! a real BIRD 2 peers with bgpd beside it.
//!
//! Every case checks that bgpd is still running, that its session with BIRD stayed
//! Established throughout (one transition), that its memory and CPU stayed within
//! generous bounds (peak RSS sampled every 50 ms), what the hostile session got, and that
//! the routes BIRD and bgpd exchange are still there afterwards.
//!
//! Node a (10.0.0.1, AS 65001): the raw peer, passive on bgpd's side. Node b (10.0.0.2,
//! AS 65002): bgpd, originating 198.51.100.0/24. Node c (10.0.0.3, AS 65003): BIRD,
//! originating 203.0.113.0/24.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bgp_proto::wire::Inbound;
use bgp_proto::{AsPath, AsSegment, Message, Nlri, Origin, PathAttributes, SegmentType, Update};
use interop::raw_peer::wire::message;
use interop::raw_peer::{usage, PeakRss, RawPeer, RawSession, Usage};
use interop::{
    binaries_for, run_test, wait_established, wait_route, wait_until, Announce, Bgpd, Bird, Error,
    Family, Kind, Neighbor, Node, Result, Segment, Speaker, SpeakerConfig, Test, TIMEOUT,
};
use ipnet::IpNet;

const OURS: &str = "198.51.100.0/24";
const BIRDS: &str = "203.0.113.0/24";

/// bgpd between the raw peer and BIRD, everything Established and exchanged.
struct Bench {
    _seg: Segment,
    a: Node,
    b: Node,
    c: Node,
    bgpd: Bgpd,
    bird: Bird,
}

fn net(s: &str) -> Result<IpNet> {
    s.parse()
        .map_err(|e| Error::Invalid(format!("prefix {s}: {e}")))
}

fn bench(t: &Test) -> Result<Bench> {
    let seg = Segment::new(t)?;
    let a = Node::new(t, &seg, "raw", 1)?;
    let b = Node::new(t, &seg, "bgpd", 2)?;
    let c = Node::new(t, &seg, "bird", 3)?;
    let fam = Family::Ipv4;
    let mut cb = SpeakerConfig::new(b.v4, 65002);
    let mut raw = Neighbor::new(a.addr(fam), b.addr(fam), 65001);
    raw.passive = true;
    cb.neighbors.push(raw);
    cb.neighbors
        .push(Neighbor::new(c.addr(fam), b.addr(fam), 65003));
    cb.announce = vec![Announce::new(net(OURS)?)];
    let mut cc = SpeakerConfig::new(c.v4, 65003);
    cc.neighbors
        .push(Neighbor::new(b.addr(fam), c.addr(fam), 65002));
    cc.announce = vec![Announce::new(net(BIRDS)?)];
    let bgpd = Bgpd::start(t, &b, "bgpd", &cb)?;
    let bird = Bird::start(t, &c, "bird", &cc)?;
    wait_established(&bgpd, c.addr(fam), TIMEOUT)?;
    wait_route(&bgpd, net(BIRDS)?, TIMEOUT)?;
    wait_route(&bird, net(OURS)?, TIMEOUT)?;
    Ok(Bench {
        _seg: seg,
        a,
        b,
        c,
        bgpd,
        bird,
    })
}

impl Bench {
    fn pid(&self) -> u32 {
        self.bgpd.process().pid()
    }

    /// The raw peer's session with bgpd, Established, sending KEEPALIVEs.
    fn raw_session(&self) -> Result<RawSession> {
        let mut s = self.connect()?;
        let me = RawPeer::new(65001, Ipv4Addr::new(10, 0, 0, 1), 90);
        s.establish(&me, TIMEOUT)?;
        s.keepalives(Duration::from_secs(20));
        Ok(s)
    }

    /// A bare TCP connection from the raw peer's namespace and address to bgpd.
    fn connect(&self) -> Result<RawSession> {
        RawSession::connect(
            Some(&self.a.ns),
            Some(self.a.addr(Family::Ipv4)),
            SocketAddr::new(self.b.addr(Family::Ipv4), 179),
        )
    }

    /// bgpd's count of Established transitions with BIRD.
    fn bird_transitions(&self) -> Result<u64> {
        self.bgpd
            .peer_counter(self.c.addr(Family::Ipv4), "established_transitions")
    }

    /// What every case checks at the end: bgpd alive, the BIRD session never dropped,
    /// memory and CPU within the bounds, the exchanged routes still in place.
    fn check_after(
        &self,
        before: Usage,
        peak: PeakRss,
        max_rss_growth_mib: u64,
        max_cpu: Duration,
    ) -> Result<()> {
        self.bgpd.check_running()?;
        let after = usage(self.pid(), "bgpd")?;
        let peak_kib = peak.stop().max(after.rss_kib);
        let growth_mib = peak_kib.saturating_sub(before.rss_kib) / 1024;
        let cpu = after.cpu.saturating_sub(before.cpu);
        interop::say(&format!(
            "bgpd: RSS {} -> peak {} KiB (+{growth_mib} MiB), CPU {:.2} s",
            before.rss_kib,
            peak_kib,
            cpu.as_secs_f64()
        ));
        if growth_mib >= max_rss_growth_mib {
            return Err(Error::Check(format!(
                "bgpd's RSS grew by {growth_mib} MiB (bound {max_rss_growth_mib} MiB)"
            )));
        }
        if cpu >= max_cpu {
            return Err(Error::Check(format!(
                "bgpd used {:.1} s of CPU (bound {:.0} s)",
                cpu.as_secs_f64(),
                max_cpu.as_secs_f64()
            )));
        }
        let transitions = self.bird_transitions()?;
        if transitions != 1 {
            return Err(Error::Check(format!(
                "the BIRD session went down meanwhile ({transitions} transitions)"
            )));
        }
        wait_established(&self.bgpd, self.c.addr(Family::Ipv4), TIMEOUT)?;
        wait_route(&self.bgpd, net(BIRDS)?, TIMEOUT)?;
        wait_route(&self.bird, net(OURS)?, TIMEOUT)?;
        Ok(())
    }
}

fn kinds() -> Vec<String> {
    binaries_for(&[Kind::Bgpd, Kind::Bird])
}

/// Reads until the connection closes; the NOTIFICATION seen on the way, if any.
fn until_closed(s: &RawSession) -> Result<Option<(u8, u8)>> {
    let deadline = Instant::now() + TIMEOUT;
    let mut notification = None;
    loop {
        match s.next(TIMEOUT)? {
            None => return Ok(notification),
            Some(Inbound::Notification(n)) => notification = Some((n.code, n.subcode)),
            Some(_) => {}
        }
        if Instant::now() > deadline {
            return Err(Error::Check("the connection stayed open".into()));
        }
    }
}

/// RFC 8538 defines one level of Hard Reset; a peer sends a 65,535-byte NOTIFICATION
/// 6/9 whose data is `06 09` over and over (formatting it recursively overflowed the
/// stack). bgpd closes that session without answering and carries on.
#[test]
fn nested_hard_reset_notification_of_64_kib() {
    run_test("nested_hard_reset_notification_of_64_kib", &kinds(), |t| {
        let b = bench(t)?;
        let before = usage(b.pid(), "bgpd")?;
        let peak = PeakRss::start(b.pid());
        let s = b.raw_session()?;
        if !s.ctx().extended_message {
            return Err(Error::Check("extended messages not negotiated".into()));
        }
        let mut body = Vec::with_capacity(65_535 - 19);
        while body.len() + 2 <= 65_535 - 19 {
            body.extend_from_slice(&[6, 9]);
        }
        s.send_bytes(&message(bgp_proto::message_type::NOTIFICATION, &body))?;
        // bgpd never answers a NOTIFICATION; it closes the connection.
        if let Some(n) = until_closed(&s)? {
            return Err(Error::Check(format!(
                "bgpd answered with NOTIFICATION {n:?}"
            )));
        }
        // The peer's status is published after the connection is closed: wait for it.
        let got = wait_until(
            "the NOTIFICATION in show peer",
            Duration::from_secs(10),
            || {
                let detail = b.bgpd.show_peer(b.a.addr(Family::Ipv4))?;
                Ok(detail
                    .get("last_notification_received")
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string))
            },
        )?;
        if !got.contains("Hard Reset") || got.len() > 4096 {
            return Err(Error::Check(format!(
                "the NOTIFICATION is not reported as one bounded Hard Reset: {} bytes: {}",
                got.len(),
                got.chars().take(200).collect::<String>()
            )));
        }
        b.check_after(before, peak, 32, Duration::from_secs(10))
    });
}

/// AS_PATH 65001, NEXT_HOP the raw peer, MED `med`: one UPDATE filled (up to the
/// extended message limit) with the 64 /16s of 100.64.0.0/10 repeated, 21,760 NLRI.
fn flood_update(med: u32) -> Result<Update> {
    let attributes = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: vec![65001],
            }],
        }),
        next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
        med: Some(med),
        ..PathAttributes::default()
    };
    let mut nlri = Vec::with_capacity(21_760);
    for _ in 0..340 {
        for i in 0..64u8 {
            nlri.push(Nlri::new(net(&format!("100.{}.0.0/16", 64 + i))?));
        }
    }
    Ok(Update {
        attributes,
        nlri,
        ..Update::default()
    })
}

/// A peer sends UPDATEs as fast as TCP lets it, each of 65,535 bytes decoding to 21,760
/// NLRI. What waits between the session and the RIB is bounded by the memory it holds
/// (a peer's share of the RIB's input budget), not by a message count that let ~600 MB
/// pile up (600 such UPDATEs: +15 MiB measured, +249 MiB with the budget lifted);
/// the BIRD session keeps its keepalives; the last UPDATE wins.
#[test]
fn flood_of_maximum_size_updates_stays_bounded() {
    run_test(
        "flood_of_maximum_size_updates_stays_bounded",
        &kinds(),
        |t| {
            let b = bench(t)?;
            let before = usage(b.pid(), "bgpd")?;
            let peak = PeakRss::start(b.pid());
            let s = b.raw_session()?;
            const MESSAGES: u32 = 600;
            let sender = s.sender();
            let updates: Vec<Update> = (0..MESSAGES).map(flood_update).collect::<Result<_>>()?;
            let flood = std::thread::spawn(move || -> Result<()> {
                for u in updates {
                    sender.send(&Message::Update(u))?;
                }
                Ok(())
            });
            flood
                .join()
                .map_err(|_| Error::Check("flood thread panicked".into()))??;
            // The RIB took it all: every /16 with the last MED, and BIRD has them.
            wait_until(
                "the flood's last UPDATE applied",
                Duration::from_secs(120),
                || {
                    b.bgpd.check_running()?;
                    let entries = b.bgpd.route_entries("in", net("100.64.0.0/16")?)?;
                    let med = entries
                        .iter()
                        .find(|e| e.get("peer").and_then(|p| p.as_str()).is_some())
                        .and_then(|e| e.get("med"))
                        .and_then(|m| m.as_u64());
                    Ok((med == Some(u64::from(MESSAGES - 1))).then_some(()))
                },
            )?;
            wait_route(&b.bird, net("100.127.0.0/16")?, TIMEOUT)?;
            // The flooding session itself is still up (a KEEPALIVE, or nothing for a second,
            // but not the end of the connection).
            if let Ok(None) = s.next(Duration::from_secs(1)) {
                return Err(Error::Check("bgpd closed the flooding session".into()));
            }
            b.check_after(before, peak, 48, Duration::from_secs(120))
        },
    );
}

/// Connections by the hundred: from an address that is no peer, and from the peer's own
/// address with OPENs bgpd refuses (wrong AS). bgpd refuses them cheaply (the peer's
/// session waits out its error backoff instead of negotiating each one), logs a bounded
/// number of lines, and its other session never notices.
#[test]
fn connection_storm_from_strangers_and_a_misbehaving_peer() {
    run_test("connection_storm", &kinds(), |t| {
        let b = bench(t)?;
        b.a.ns.add_address(&b.a.ifname, net("10.0.0.9/24")?)?;
        let before = usage(b.pid(), "bgpd")?;
        let peak = PeakRss::start(b.pid());
        let log_before = b.bgpd.process().output_so_far().lines().count();
        let dst = SocketAddr::new(b.b.addr(Family::Ipv4), 179);
        let stranger = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));
        for _ in 0..300 {
            if let Ok(s) = RawSession::connect(Some(&b.a.ns), Some(stranger), dst) {
                drop(s);
            }
        }
        let wrong = RawPeer::new(65099, Ipv4Addr::new(10, 0, 0, 1), 90);
        let mut answered = 0;
        for _ in 0..300 {
            let s = b.connect()?;
            s.send(&Message::Open(wrong.open()))?;
            // Either bgpd negotiated and refused the OPEN (2/2) or, during the backoff,
            // closed the connection without a word.
            match until_closed(&s)? {
                Some((2, 2)) => answered += 1,
                None => {}
                Some(other) => {
                    return Err(Error::Check(format!("unexpected NOTIFICATION {other:?}")))
                }
            }
        }
        interop::say(&format!("{answered} of 300 bad OPENs were negotiated"));
        if answered == 0 || answered > 60 {
            return Err(Error::Check(format!(
                "{answered} of 300 bad OPENs negotiated: the error backoff is not applied"
            )));
        }
        let logged = b
            .bgpd
            .process()
            .output_so_far()
            .lines()
            .count()
            .saturating_sub(log_before);
        if logged > 200 {
            return Err(Error::Check(format!(
                "{logged} log lines for 600 connections: not rate limited"
            )));
        }
        // The peer is welcome again once the backoff ran out.
        wait_until("the raw peer's session after the backoff", TIMEOUT, || {
            let mut s = b.connect()?;
            match s.establish(
                &RawPeer::new(65001, Ipv4Addr::new(10, 0, 0, 1), 90),
                TIMEOUT,
            ) {
                Ok(_) => Ok(Some(())),
                Err(_) => Ok(None),
            }
        })?;
        b.check_after(before, peak, 32, Duration::from_secs(30))
    });
}
