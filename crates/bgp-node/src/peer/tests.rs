//! Two peer drivers wired back to back through in-memory connections on a virtual clock
//! (`quinn-proto`'s test `Pair`): connection set-up, collisions, the restarted peer's new
//! connection, error backoff, teardown and restart, Hard Reset, and output slices larger
//! than a session's queue.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bgp_proto::session::{DownReason, State};
use bgp_proto::wire::encode_message;
use bgp_proto::{notification_code as nc, CodecContext, Message, Nlri, Notification, Update};
use bytes::{Bytes, BytesMut};

use super::*;
use crate::settings::GracefulRestartSettings;
use crate::PeerIds;

const A: usize = 0;
const B: usize = 1;

fn addr(side: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 1 + side as u8)
}

/// What one side's driver told the RIB, in order.
#[derive(Debug, PartialEq)]
enum Told {
    Up(u64),
    Update(usize),
    Down(bool),
}

struct Pair {
    now: Instant,
    drivers: [PeerDriver; 2],
    /// Connections by (side, conn) → the other end.
    links: HashMap<(usize, ConnId), (usize, ConnId)>,
    /// Which side opened each connection, by (side, conn).
    opened_by: HashMap<(usize, ConnId), usize>,
    told: [Vec<Told>; 2],
    /// Slices taken, per side.
    taken: [Vec<u64>; 2],
    /// Connections refused, per side.
    refused: [Vec<Refusal>; 2],
}

fn settings(side: usize, passive: bool) -> PeerSettings {
    let mut s = PeerSettings::new(format!("to{}", 1 - side), IpAddr::V4(addr(1 - side)), 64512);
    s.passive = passive;
    s.hold_time = 9;
    s
}

impl Pair {
    fn new(a: PeerSettings, b: PeerSettings) -> Pair {
        let now = Instant::now();
        let mut ids = PeerIds::default();
        let driver = |side: usize, s: PeerSettings, id| {
            PeerDriver::new(id, s, Identity::new(64512, addr(side)), now)
        };
        let da = driver(A, a, ids.allocate());
        let db = driver(B, b, ids.allocate());
        Pair {
            now,
            drivers: [da, db],
            links: HashMap::new(),
            opened_by: HashMap::new(),
            told: [Vec::new(), Vec::new()],
            taken: [Vec::new(), Vec::new()],
            refused: [Vec::new(), Vec::new()],
        }
    }

    fn transport(side: usize, outbound: bool) -> Transport {
        let port = |s: usize| if outbound == (s == side) { 40000 } else { 179 };
        Transport {
            local: SocketAddr::new(IpAddr::V4(addr(side)), port(side)),
            remote: SocketAddr::new(IpAddr::V4(addr(1 - side)), port(1 - side)),
            link_global_v6: None,
        }
    }

    /// Delivers everything until nothing moves (no time passes).
    fn settle(&mut self) {
        for _ in 0..10_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the pair never settled");
    }

    /// One round of events and bytes; whether anything moved. Connection attempts of
    /// both sides made in one round cross, as SYNs do: each completes at its own end
    /// before the other end accepts it, so both sides can hold two connections and
    /// resolve the collision.
    fn step(&mut self) -> bool {
        let mut moved = false;
        let mut attempts = Vec::new();
        for side in [A, B] {
            while let Some(ev) = self.drivers[side].poll_event() {
                moved = true;
                match ev {
                    PeerEvent::Connect(conn) => attempts.push((side, conn)),
                    ev => self.event(side, ev),
                }
            }
        }
        // Each attempt completes at its end, then each reaches the other end.
        let now = self.now;
        let completed: Vec<(usize, ConnId)> = attempts
            .into_iter()
            .filter(|&(side, conn)| {
                self.drivers[side].handle_connected(now, conn, Self::transport(side, true))
            })
            .collect();
        for (side, conn) in completed {
            self.arrive(side, conn);
        }
        // Both sides write, then both read: messages sent in one round cross.
        let mut delivered = Vec::new();
        for side in [A, B] {
            let conns: Vec<ConnId> = self
                .links
                .keys()
                .filter(|(s, _)| *s == side)
                .map(|(_, c)| *c)
                .collect();
            for conn in conns {
                while let Some(bytes) = self.drivers[side].poll_transmit(conn) {
                    if let Some(&to) = self.links.get(&(side, conn)) {
                        delivered.push((to, bytes));
                    }
                }
            }
        }
        for ((other, oc), bytes) in delivered {
            moved = true;
            let now = self.now;
            self.drivers[other].handle_data(now, oc, &bytes);
        }
        moved
    }

    /// `side`'s connection `conn`, up at its end, reaches the other side.
    fn arrive(&mut self, side: usize, conn: ConnId) {
        let now = self.now;
        let other = 1 - side;
        match self.drivers[other].handle_accepted(now, Self::transport(other, false)) {
            Ok(oc) => {
                self.links.insert((side, conn), (other, oc));
                self.links.insert((other, oc), (side, conn));
                self.opened_by.insert((side, conn), side);
                self.opened_by.insert((other, oc), side);
            }
            Err(r) => {
                self.refused[other].push(r);
                self.drivers[side].handle_closed(now, conn, Some("refused"));
            }
        }
    }

    fn event(&mut self, side: usize, ev: PeerEvent) {
        let now = self.now;
        match ev {
            PeerEvent::Connect(conn) => {
                if self.drivers[side].handle_connected(now, conn, Self::transport(side, true)) {
                    self.arrive(side, conn);
                }
            }
            PeerEvent::Close { conn, last } => {
                if let Some((other, oc)) = self.links.remove(&(side, conn)) {
                    self.links.remove(&(other, oc));
                    for b in last {
                        self.drivers[other].handle_data(now, oc, &b);
                    }
                    self.drivers[other].handle_closed(now, oc, None);
                }
            }
            PeerEvent::Rib(RibInput::Up { session, .. }) => self.told[side].push(Told::Up(session)),
            PeerEvent::Rib(RibInput::Update(u)) => {
                self.told[side].push(Told::Update(u.update.withdrawn.len()))
            }
            PeerEvent::Rib(RibInput::Down { graceful, .. }) => {
                self.told[side].push(Told::Down(graceful))
            }
            PeerEvent::Rib(RibInput::RouteRefresh(_)) => {}
            PeerEvent::OutputTaken { session } => self.taken[side].push(session),
        }
    }

    /// Moves the clock to the earliest timer (at most `max` ahead) and fires it.
    fn advance(&mut self, max: Duration) {
        let limit = self.now + max;
        let next = self
            .drivers
            .iter()
            .filter_map(|d| d.poll_timeout())
            .min()
            .map_or(limit, |t| t.min(limit));
        self.now = self.now.max(next);
        let now = self.now;
        for d in &mut self.drivers {
            d.handle_timeout(now, false);
        }
        self.settle();
    }

    /// Runs the clock until `f` holds, for at most `max` of virtual time.
    fn run_until(&mut self, max: Duration, f: impl Fn(&Pair) -> bool) {
        let end = self.now + max;
        self.settle();
        while !f(self) {
            assert!(self.now < end, "condition not reached by {max:?}");
            self.advance(end - self.now);
        }
    }

    fn established(&self) -> bool {
        self.drivers.iter().all(|d| d.state() == State::Established)
    }

    /// The connection each side's main session runs on was opened by this side.
    fn main_opened_by(&self, side: usize) -> Option<usize> {
        let conn = self.drivers[side].main.id;
        self.opened_by.get(&(side, conn)).copied()
    }
}

fn gr(notification: bool) -> GracefulRestartSettings {
    GracefulRestartSettings {
        enabled: true,
        notification,
        ..GracefulRestartSettings::default()
    }
}

#[test]
fn one_active_side_establishes_and_tells_the_rib_once() {
    let mut p = Pair::new(settings(A, false), settings(B, true));
    p.run_until(Duration::from_secs(10), Pair::established);
    assert_eq!(p.told, [vec![Told::Up(1)], vec![Told::Up(1)]]);
    for d in &p.drivers {
        assert_eq!(d.status().counters.established_transitions, 1);
        assert!(d.status().negotiated.is_some());
        assert!(d.can_take_output());
    }
    assert_eq!(p.main_opened_by(A), Some(A));
}

/// RFC 4271 6.8: both sides connect at once; the connection opened by the higher BGP
/// Identifier (B) is kept on both sides and the other closed with Cease 6/7.
#[test]
fn a_collision_keeps_the_connection_of_the_higher_identifier() {
    let mut p = Pair::new(settings(A, false), settings(B, false));
    p.run_until(Duration::from_secs(10), Pair::established);
    p.settle();
    assert_eq!(p.main_opened_by(A), Some(B));
    assert_eq!(p.main_opened_by(B), Some(B));
    assert_eq!(p.links.len(), 2, "one connection left");
    for (side, d) in p.drivers.iter().enumerate() {
        assert_eq!(p.told[side], vec![Told::Up(1)], "side {side}");
        assert_eq!(d.status().counters.established_transitions, 1);
        assert_eq!(d.status().counters.notifications_received, 0);
    }
    // Only the side that resolved the collision sent the Cease.
    let sent: u64 = p
        .drivers
        .iter()
        .map(|d| d.status().counters.notifications_sent)
        .sum();
    assert!(sent >= 1);
}

/// A connection arriving while the session is Established (no graceful restart) is a
/// collision with an Established session: the new one is closed, the session stays.
#[test]
fn a_second_connection_to_an_established_session_is_closed() {
    let mut p = Pair::new(settings(A, false), settings(B, true));
    p.run_until(Duration::from_secs(10), Pair::established);
    let now = p.now;
    let extra = p.drivers[B]
        .handle_accepted(now, Pair::transport(B, false))
        .expect("taken, then closed");
    p.settle();
    assert!(p.drivers[B].extra.is_none(), "{extra} closed");
    assert_eq!(p.drivers[B].state(), State::Established);
    assert_eq!(p.told[B], vec![Told::Up(1)]);
}

/// While a second connection waits for its OPEN, a third is refused.
#[test]
fn a_third_connection_is_refused() {
    let now = Instant::now();
    let mut ids = PeerIds::default();
    let mut b = PeerDriver::new(
        ids.allocate(),
        settings(B, true),
        Identity::new(64512, addr(B)),
        now,
    );
    let first = b.handle_accepted(now, Pair::transport(B, false));
    let second = b.handle_accepted(now, Pair::transport(B, false));
    assert!(first.is_ok() && second.is_ok() && first != second);
    assert_eq!(
        b.handle_accepted(now, Pair::transport(B, false)),
        Err(Refusal::ThirdConnection)
    );
    assert_eq!(b.state(), State::OpenSent);
}

/// RFC 4724 4.2: the restarted peer's new connection replaces the session once its OPEN
/// was accepted; the old session's routes are kept as stale.
#[test]
fn the_restarted_peers_new_connection_replaces_the_session() {
    let mut a = settings(A, false);
    a.graceful_restart = gr(true);
    let mut b = settings(B, true);
    b.graceful_restart = gr(true);
    let mut p = Pair::new(a.clone(), b);
    p.run_until(Duration::from_secs(10), Pair::established);
    // A restarts: its old connection vanishes silently, a new driver connects again.
    let now = p.now;
    let old: Vec<_> = p.links.keys().filter(|(s, _)| *s == A).copied().collect();
    for k in old {
        if let Some(other) = p.links.remove(&k) {
            p.links.remove(&other);
        }
    }
    let mut ids = PeerIds::default();
    let mut restarted = Identity::new(64512, addr(A));
    restarted.restarting = true;
    p.drivers[A] = PeerDriver::new(ids.allocate(), a, restarted, now);
    p.told[A].clear();
    p.run_until(Duration::from_secs(10), |p| {
        p.established() && p.told[B].len() == 3
    });
    assert_eq!(
        p.told[B],
        vec![Told::Up(1), Told::Down(true), Told::Up(2)],
        "routes kept as stale over the restart"
    );
    assert_eq!(p.drivers[B].status().counters.established_transitions, 2);
}

/// After a session error the peer's next connection waits out the backoff (RFC 4271
/// 8.1.1); a Cease does not delay it.
#[test]
fn a_session_error_refuses_incoming_connections_during_the_backoff() {
    let mut p = Pair::new(settings(A, false), settings(B, true));
    p.run_until(Duration::from_secs(10), Pair::established);
    // A sends B an FSM error: B received an error NOTIFICATION, so B backs off.
    let now = p.now;
    let error = Notification {
        code: nc::FSM,
        subcode: 0,
        data: Bytes::new(),
    };
    p.drivers[A].teardown(now, error, Some(Duration::ZERO), false);
    p.settle();
    assert_eq!(p.drivers[B].check_incoming(p.now), Err(Refusal::Backoff));
    // A starts again at once and connects: refused.
    p.advance(Duration::from_millis(1));
    assert_eq!(p.refused[B].first(), Some(&Refusal::Backoff));
    // Once the backoff is over the session comes back.
    p.run_until(Duration::from_secs(130), Pair::established);
    assert_eq!(p.drivers[B].status().counters.established_transitions, 2);
    // A Cease is no error: no backoff.
    let now = p.now;
    p.drivers[A].teardown(now, Notification::admin_reset("test"), None, false);
    p.settle();
    assert_eq!(p.drivers[B].check_incoming(p.now), Ok(()));
    assert_eq!(p.drivers[A].check_incoming(p.now), Err(Refusal::Disabled));
}

/// Side `side` of an Established pair (A passive, B active) tears the session down for a
/// minute over a prefix limit; returns when.
fn torn_down_for_a_minute(side: usize) -> (Pair, Instant) {
    let mut p = Pair::new(settings(A, true), settings(B, false));
    p.run_until(Duration::from_secs(10), Pair::established);
    let at = p.now;
    let n = Notification {
        code: nc::CEASE,
        subcode: nc::CEASE_MAX_PREFIXES,
        data: Bytes::new(),
    };
    p.drivers[side].teardown(at, n, Some(Duration::from_secs(60)), true);
    p.settle();
    assert!(p.drivers[side].status().last_notification_sent.is_some());
    (p, at)
}

/// A teardown with a restart delay closes the session and starts it again after the
/// delay (max-prefix: a minute).
#[test]
fn teardown_restarts_after_its_delay() {
    let (mut p, at) = torn_down_for_a_minute(B);
    assert_ne!(p.drivers[A].state(), State::Established);
    assert_eq!(
        p.drivers[B].poll_timeout(),
        Some(at + Duration::from_secs(60))
    );
    p.run_until(Duration::from_secs(200), Pair::established);
    assert!(p.now >= at + Duration::from_secs(60));
    assert_eq!(p.told[A], vec![Told::Up(1), Told::Down(false), Told::Up(2)]);
}

/// A passive side's teardown holds too: the peer's connections are refused until the
/// restart time, instead of bringing the session back at the peer's next connect retry.
#[test]
fn a_torn_down_session_refuses_the_peer_until_its_restart() {
    let (mut p, at) = torn_down_for_a_minute(A);
    assert_eq!(
        p.drivers[A].check_incoming(p.now),
        Err(Refusal::RestartWait)
    );
    p.run_until(Duration::from_secs(200), Pair::established);
    assert!(p.now >= at + Duration::from_secs(60));
    assert!(
        p.refused[A].contains(&Refusal::RestartWait),
        "{:?}",
        p.refused[A]
    );
    assert_eq!(p.told[A], vec![Told::Up(1), Told::Down(false), Told::Up(2)]);
}

/// RFC 8538: with the N bit on both sides a NOTIFICATION keeps the routes, except a
/// Hard Reset, which is what stop sends when asked to.
#[test]
fn stop_with_hard_reset_makes_the_peer_drop_our_routes() {
    let mut a = settings(A, false);
    a.graceful_restart = gr(true);
    let mut b = settings(B, true);
    b.graceful_restart = gr(true);
    let mut p = Pair::new(a, b);
    p.run_until(Duration::from_secs(10), Pair::established);
    let now = p.now;
    p.drivers[A].teardown(
        now,
        Notification::admin_reset("graceful"),
        Some(Duration::ZERO),
        false,
    );
    p.settle();
    assert_eq!(p.told[B].last(), Some(&Told::Down(true)), "kept as stale");
    p.run_until(Duration::from_secs(130), Pair::established);
    let now = p.now;
    p.drivers[A].stop(
        now,
        Notification::admin_shutdown("removed"),
        Farewell::HardReset,
    );
    p.settle();
    assert_eq!(p.told[B].last(), Some(&Told::Down(false)), "dropped");
    let received = p.drivers[B]
        .status()
        .last_notification_received
        .clone()
        .unwrap_or_default();
    assert!(received.contains("6/9"), "{received}");
    assert!(p.drivers[A].is_finished());
}

/// A restart's farewell: a peer with graceful restart but without the N bit keeps our
/// routes only if the session ends without a NOTIFICATION (RFC 4724 4.2), which is how
/// it ends; with the N bit the NOTIFICATION is sent and the routes are kept (RFC 8538).
#[test]
fn stop_for_a_restart_leaves_every_graceful_peer_keeping_our_routes() {
    for n_bit in [false, true] {
        let mut a = settings(A, false);
        a.graceful_restart = gr(n_bit);
        let mut b = settings(B, true);
        b.graceful_restart = gr(true);
        let mut p = Pair::new(a, b);
        p.run_until(Duration::from_secs(10), Pair::established);
        let now = p.now;
        p.drivers[A].stop(
            now,
            Notification::admin_shutdown("restart"),
            Farewell::Restart,
        );
        p.settle();
        assert_eq!(
            p.told[B].last(),
            Some(&Told::Down(true)),
            "n_bit {n_bit}: kept as stale"
        );
        let received = p.drivers[B].status().last_notification_received.clone();
        assert_eq!(
            received.is_some(),
            n_bit,
            "n_bit {n_bit}: NOTIFICATION {received:?}"
        );
        assert!(p.drivers[A].is_finished());
    }
}

/// A frame withdrawing `n` prefixes.
fn withdrawal(n: usize, first: u32) -> Bytes {
    let withdrawn = (0..n as u32)
        .map(|i| {
            Nlri::new(ipnet::IpNet::V4(
                ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + ((first + i) << 8)), 24)
                    .expect("prefix"),
            ))
        })
        .collect();
    let ctx = CodecContext {
        four_octet_as: true,
        ..CodecContext::default()
    };
    let mut buf = BytesMut::new();
    encode_message(
        &Message::Update(Update {
            withdrawn,
            ..Update::default()
        }),
        &ctx,
        &mut buf,
    )
    .expect("encode");
    buf.freeze()
}

/// A slice larger than the session's whole queue goes in as the queue drains: the rest
/// waits in the driver (no new slice is taken meanwhile), nothing is lost.
#[test]
fn an_output_slice_larger_than_the_queue_flows_through_in_parts() {
    let mut a = settings(A, false);
    a.max_queued_bytes = 4096;
    let mut p = Pair::new(a, settings(B, true));
    p.run_until(Duration::from_secs(10), Pair::established);
    // 20 frames of 200 withdrawn /24s (~800 bytes each): ~16 KB for a 4 KB queue.
    let frames: Vec<Bytes> = (0..20).map(|i| withdrawal(200, i * 200)).collect();
    let now = p.now;
    let slice = OutputSlice { session: 1, frames };
    assert_eq!(p.drivers[A].handle_output(now, slice.clone()), Ok(()));
    assert!(!p.drivers[A].can_take_output(), "part of it waits");
    assert_eq!(
        p.drivers[A].handle_output(now, slice),
        Err(OutputSlice {
            session: 1,
            frames: (0..20).map(|i| withdrawal(200, i * 200)).collect()
        }),
        "handed back while the last one waits"
    );
    p.settle();
    assert!(p.drivers[A].can_take_output());
    assert_eq!(p.taken[A], vec![1]);
    let received: Vec<&Told> = p.told[B]
        .iter()
        .filter(|t| matches!(t, Told::Update(_)))
        .collect();
    assert_eq!(received.len(), 20);
    assert!(received.iter().all(|t| **t == Told::Update(200)));
    assert_eq!(p.drivers[A].status().counters.updates_sent, 20);
    // A slice for an earlier session is dropped without a word.
    let now = p.now;
    let stale = OutputSlice {
        session: 0,
        frames: vec![withdrawal(1, 0)],
    };
    assert_eq!(p.drivers[A].handle_output(now, stale), Ok(()));
    p.settle();
    assert_eq!(p.taken[A], vec![1]);
}

/// The hold timer is not judged over input the caller holds back: the peer is sending,
/// we are the ones not reading.
#[test]
fn held_input_keeps_the_hold_timer_from_expiring() {
    let mut p = Pair::new(settings(A, false), settings(B, true));
    p.run_until(Duration::from_secs(10), Pair::established);
    // Nothing from A reaches B for three hold times, but B is told input is held.
    let end = p.now + Duration::from_secs(27);
    while p.now < end {
        let next = p.drivers[B].poll_timeout().expect("timers run");
        p.now = p.now.max(next);
        let now = p.now;
        p.drivers[B].handle_timeout(now, true);
        while p.drivers[B].poll_event().is_some() {}
    }
    assert_eq!(p.drivers[B].state(), State::Established);
    assert_eq!(p.told[B], vec![Told::Up(1)]);
    // Without held input the same silence ends the session.
    let end = p.now + Duration::from_secs(27);
    while p.now < end && p.drivers[B].state() == State::Established {
        let next = p.drivers[B].poll_timeout().expect("timers run");
        p.now = p.now.max(next);
        let now = p.now;
        p.drivers[B].handle_timeout(now, false);
    }
    assert_eq!(
        p.drivers[B].status().last_error.as_deref(),
        Some(DownReason::HoldTimerExpired.to_string().as_str())
    );
}
