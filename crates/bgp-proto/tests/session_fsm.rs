//! RFC 4271 8.2.2, state by state: every event the RFC defines for a state, applied to a
//! session driven into that state by a scripted peer, with the resulting state, the
//! messages sent, the connection requests and the down reason checked.
//!
//! Timer events are only injected where the timer runs (elsewhere the public API cannot
//! produce them). Where we deliberately go beyond the RFC (NOTIFICATION also before our
//! OPEN was sent, FSM error 5/0 in Connect/Active, no NOTIFICATION in answer to one), the
//! row says so.

mod session_support;

use std::time::{Duration, Instant};

use bgp_proto::session::{DownReason, Session, SessionConfig, SessionEvent, State};
use bgp_proto::{Family, Notification};
use bgp_proto::{Message, RefreshSubtype, RouteRefresh};
use bytes::Bytes;
use session_support::*;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Setup {
    Idle,
    IdlePassive,
    /// Connecting; no connection yet.
    Connect,
    /// Connect with the connection up and DelayOpen running.
    ConnectDelayOpen,
    /// Passive, waiting.
    Active,
    /// Active (not passive) after losing the connection in OpenSent.
    ActiveRetry,
    /// Passive, connection up, DelayOpen running.
    ActiveDelayOpen,
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Ev {
    ManualStart,
    ManualStop,
    ConnectRetryExpires,
    HoldExpires,
    KeepaliveExpires,
    DelayOpenExpires,
    TcpConnected,
    TcpConnectFails,
    TcpClosed,
    OpenValid,
    OpenBadPeerAs,
    HeaderError,
    NotifVersionError,
    Notification,
    Keepalive,
    Update,
    UpdateError,
    RouteRefresh,
}

/// What a message sent should be.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Out {
    Open,
    Keepalive,
    Notif(u8, u8),
    /// A NOTIFICATION with this code, any subcode.
    NotifCode(u8),
}

/// Connection requests and the kind of down reason.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Down {
    No,
    Sent,
    Received,
    Hold,
    Closed,
    Failed,
    Admin,
}

struct Row {
    setup: Setup,
    ev: Ev,
    to: State,
    out: &'static [Out],
    /// "connect" / "disconnect" requests, in order.
    conn: &'static [&'static str],
    down: Down,
}

const DELAY_OPEN: Duration = Duration::from_secs(5);

fn setup(which: Setup) -> (Session, Instant) {
    let now = Instant::now();
    let mut cfg: SessionConfig = config_a();
    match which {
        Setup::IdlePassive | Setup::Active | Setup::ActiveDelayOpen => cfg.passive = true,
        _ => {}
    }
    if matches!(which, Setup::ConnectDelayOpen | Setup::ActiveDelayOpen) {
        cfg.delay_open = Some(DELAY_OPEN);
    }
    let mut s = Session::new(cfg);
    match which {
        Setup::Idle | Setup::IdlePassive => {}
        Setup::Connect | Setup::Active => s.start(now),
        Setup::ConnectDelayOpen | Setup::ActiveDelayOpen => {
            s.start(now);
            s.handle_connected(now);
        }
        Setup::ActiveRetry => {
            s.start(now);
            s.handle_connected(now);
            s.handle_closed(now);
        }
        Setup::OpenSent => {
            s.start(now);
            s.handle_connected(now);
        }
        Setup::OpenConfirm | Setup::Established => {
            s.start(now);
            s.handle_connected(now);
            s.handle_data(now, &open_bytes_from_b());
            if which == Setup::Established {
                s.handle_data(now, &keepalive_bytes());
            }
        }
    }
    let expected = match which {
        Setup::Idle | Setup::IdlePassive => State::Idle,
        Setup::Connect | Setup::ConnectDelayOpen => State::Connect,
        Setup::Active | Setup::ActiveRetry | Setup::ActiveDelayOpen => State::Active,
        Setup::OpenSent => State::OpenSent,
        Setup::OpenConfirm => State::OpenConfirm,
        Setup::Established => State::Established,
    };
    assert_eq!(s.state(), expected, "setup {which:?}");
    events(&mut s);
    sent(&mut s);
    (s, now)
}

fn apply(s: &mut Session, now: Instant, ev: Ev) {
    let open_hold = Duration::from_secs(240);
    let negotiated_hold = Duration::from_secs(90);
    let keepalive = Duration::from_secs(30);
    let retry = config_a().connect_retry;
    match ev {
        Ev::ManualStart => s.start(now),
        Ev::ManualStop => s.stop(now, None),
        // The only timer running in Connect/Active; its value depends on the backoff (at
        // least 1 s after a connection closed before the peer's OPEN, else ConnectRetryTime).
        Ev::ConnectRetryExpires => {
            let at = s.poll_timeout().expect("ConnectRetryTimer runs");
            assert!(at >= now + retry.min(Duration::from_secs(1)));
            s.handle_timeout(at)
        }
        Ev::HoldExpires => {
            let hold = if s.state() == State::OpenSent {
                open_hold
            } else {
                negotiated_hold
            };
            s.handle_timeout(now + hold)
        }
        Ev::KeepaliveExpires => s.handle_timeout(now + keepalive),
        Ev::DelayOpenExpires => s.handle_timeout(now + DELAY_OPEN),
        Ev::TcpConnected => s.handle_connected(now),
        Ev::TcpConnectFails => s.handle_connect_failed(now),
        Ev::TcpClosed => s.handle_closed(now),
        Ev::OpenValid => s.handle_data(now, &open_bytes_from_b()),
        Ev::OpenBadPeerAs => {
            let mut open = open_from_b();
            open.my_as = 65099;
            open.capabilities
                .retain(|c| !matches!(c, bgp_proto::Capability::FourOctetAs(_)));
            s.handle_data(now, &encode_default(&Message::Open(open)));
        }
        Ev::HeaderError => {
            let mut bad = keepalive_bytes().to_vec();
            bad[0] = 0; // marker not all ones
            s.handle_data(now, &bad);
        }
        Ev::NotifVersionError => s.handle_data(now, &notification_bytes(2, 1)),
        Ev::Notification => s.handle_data(now, &notification_bytes(6, 2)),
        Ev::Keepalive => s.handle_data(now, &keepalive_bytes()),
        Ev::Update => {
            let ctx = s.negotiated().map(|n| n.codec.clone()).unwrap_or_default();
            s.handle_data(
                now,
                &encode(&Message::Update(update(AS_B, "10.1.0.0/16")), &ctx),
            );
        }
        Ev::UpdateError => {
            // Withdrawn Routes Length (5) overruns the 4-octet body: RFC 7606 3 (a)
            // makes this a session reset.
            let mut bad = vec![0xFF; 16];
            bad.extend_from_slice(&[0, 23, 2, 0, 5, 0, 0]);
            s.handle_data(now, &bad);
        }
        Ev::RouteRefresh => s.handle_data(
            now,
            &encode_default(&Message::RouteRefresh(RouteRefresh {
                family: Family::IPV4_UNICAST,
                subtype: RefreshSubtype::Normal,
            })),
        ),
    }
}

fn out_matches(out: &Out, msg: &bgp_proto::wire::Inbound) -> bool {
    use bgp_proto::wire::Inbound;
    match (out, msg) {
        (Out::Open, Inbound::Open(_)) | (Out::Keepalive, Inbound::Keepalive) => true,
        (Out::Notif(c, s), Inbound::Notification(n)) => n.code == *c && n.subcode == *s,
        (Out::NotifCode(c), Inbound::Notification(n)) => n.code == *c,
        _ => false,
    }
}

fn down_kind(r: &DownReason) -> Down {
    match r {
        DownReason::NotificationSent { .. } => Down::Sent,
        DownReason::NotificationReceived(_) => Down::Received,
        DownReason::HoldTimerExpired => Down::Hold,
        DownReason::ConnectionClosed => Down::Closed,
        DownReason::ConnectionFailed => Down::Failed,
        DownReason::AdminStop(_) => Down::Admin,
        other => panic!("unexpected down reason {other:?}"),
    }
}

use Down as D;
use Ev as E;
use Out as O;
use Setup as S;
use State as St;

const NONE: &[&str] = &[];
const DISC: &[&str] = &["disconnect"];

macro_rules! row {
    ($setup:expr, $ev:expr => $to:expr, $out:expr, $conn:expr, $down:expr) => {
        Row {
            setup: $setup,
            ev: $ev,
            to: $to,
            out: $out,
            conn: $conn,
            down: $down,
        }
    };
}

fn table() -> Vec<Row> {
    vec![
        // ---- Idle ----
        row!(S::Idle, E::ManualStart => St::Connect, &[], &["connect"], D::No),
        row!(S::IdlePassive, E::ManualStart => St::Active, &[], NONE, D::No),
        row!(S::Idle, E::ManualStop => St::Idle, &[], NONE, D::No),
        // A connection reported while Idle is refused.
        row!(S::Idle, E::TcpConnected => St::Idle, &[], DISC, D::No),
        row!(S::Idle, E::TcpClosed => St::Idle, &[], NONE, D::No),
        row!(S::Idle, E::OpenValid => St::Idle, &[], NONE, D::No),
        row!(S::Idle, E::Keepalive => St::Idle, &[], NONE, D::No),
        // ---- Connect (no connection yet) ----
        row!(S::Connect, E::ManualStart => St::Connect, &[], NONE, D::No),
        row!(S::Connect, E::ManualStop => St::Idle, &[], DISC, D::Admin),
        row!(S::Connect, E::ConnectRetryExpires => St::Connect, &[], &["disconnect", "connect"], D::No),
        row!(S::Connect, E::TcpConnected => St::OpenSent, &[O::Open], NONE, D::No),
        row!(S::Connect, E::TcpConnectFails => St::Idle, &[], NONE, D::Failed),
        // ---- Connect with DelayOpen running ----
        // RFC: no NOTIFICATION here; we send one (SendNOTIFICATIONwithoutOPEN).
        row!(S::ConnectDelayOpen, E::ManualStop => St::Idle, &[O::Notif(6, 2)], DISC, D::Admin),
        row!(S::ConnectDelayOpen, E::DelayOpenExpires => St::OpenSent, &[O::Open], NONE, D::No),
        row!(S::ConnectDelayOpen, E::TcpClosed => St::Active, &[], NONE, D::Closed),
        row!(S::ConnectDelayOpen, E::OpenValid => St::OpenConfirm, &[O::Open, O::Keepalive], NONE, D::No),
        row!(S::ConnectDelayOpen, E::OpenBadPeerAs => St::Idle, &[O::Notif(2, 2)], DISC, D::Sent),
        row!(S::ConnectDelayOpen, E::HeaderError => St::Idle, &[O::Notif(1, 1)], DISC, D::Sent),
        row!(S::ConnectDelayOpen, E::NotifVersionError => St::Idle, &[], DISC, D::Received),
        row!(S::ConnectDelayOpen, E::Notification => St::Idle, &[], DISC, D::Received),
        // RFC: Idle without NOTIFICATION; we send FSM error 5/0.
        row!(S::ConnectDelayOpen, E::Keepalive => St::Idle, &[O::Notif(5, 0)], DISC, D::Sent),
        row!(S::ConnectDelayOpen, E::Update => St::Idle, &[O::Notif(5, 0)], DISC, D::Sent),
        // ---- Active ----
        row!(S::Active, E::ManualStart => St::Active, &[], NONE, D::No),
        row!(S::Active, E::ManualStop => St::Idle, &[], NONE, D::Admin),
        row!(S::Active, E::TcpConnected => St::OpenSent, &[O::Open], NONE, D::No),
        row!(S::Active, E::TcpConnectFails => St::Idle, &[], NONE, D::Failed),
        row!(S::ActiveRetry, E::ConnectRetryExpires => St::Connect, &[], &["connect"], D::No),
        row!(S::ActiveRetry, E::TcpConnected => St::OpenSent, &[O::Open], NONE, D::No),
        // ---- Active with DelayOpen running ----
        row!(S::ActiveDelayOpen, E::ManualStop => St::Idle, &[O::Notif(6, 2)], DISC, D::Admin),
        row!(S::ActiveDelayOpen, E::DelayOpenExpires => St::OpenSent, &[O::Open], NONE, D::No),
        row!(S::ActiveDelayOpen, E::TcpClosed => St::Idle, &[], NONE, D::Closed),
        row!(S::ActiveDelayOpen, E::OpenValid => St::OpenConfirm, &[O::Open, O::Keepalive], NONE, D::No),
        row!(S::ActiveDelayOpen, E::OpenBadPeerAs => St::Idle, &[O::Notif(2, 2)], DISC, D::Sent),
        row!(S::ActiveDelayOpen, E::HeaderError => St::Idle, &[O::Notif(1, 1)], DISC, D::Sent),
        row!(S::ActiveDelayOpen, E::NotifVersionError => St::Idle, &[], DISC, D::Received),
        row!(S::ActiveDelayOpen, E::Notification => St::Idle, &[], DISC, D::Received),
        row!(S::ActiveDelayOpen, E::Keepalive => St::Idle, &[O::Notif(5, 0)], DISC, D::Sent),
        // ---- OpenSent ----
        row!(S::OpenSent, E::ManualStart => St::OpenSent, &[], NONE, D::No),
        row!(S::OpenSent, E::ManualStop => St::Idle, &[O::Notif(6, 2)], DISC, D::Admin),
        row!(S::OpenSent, E::HoldExpires => St::Idle, &[O::Notif(4, 0)], DISC, D::Hold),
        // A second connection is the caller's (collision detection), not this session's.
        row!(S::OpenSent, E::TcpConnected => St::OpenSent, &[], NONE, D::No),
        row!(S::OpenSent, E::TcpClosed => St::Active, &[], NONE, D::Closed),
        row!(S::OpenSent, E::OpenValid => St::OpenConfirm, &[O::Keepalive], NONE, D::No),
        row!(S::OpenSent, E::OpenBadPeerAs => St::Idle, &[O::Notif(2, 2)], DISC, D::Sent),
        row!(S::OpenSent, E::HeaderError => St::Idle, &[O::Notif(1, 1)], DISC, D::Sent),
        row!(S::OpenSent, E::NotifVersionError => St::Idle, &[], DISC, D::Received),
        // RFC lists event 25 among those answered with FSM error; we never answer a
        // NOTIFICATION.
        row!(S::OpenSent, E::Notification => St::Idle, &[], DISC, D::Received),
        row!(S::OpenSent, E::Keepalive => St::Idle, &[O::Notif(5, 1)], DISC, D::Sent),
        row!(S::OpenSent, E::Update => St::Idle, &[O::Notif(5, 1)], DISC, D::Sent),
        row!(S::OpenSent, E::RouteRefresh => St::Idle, &[O::Notif(5, 1)], DISC, D::Sent),
        // ---- OpenConfirm ----
        row!(S::OpenConfirm, E::ManualStart => St::OpenConfirm, &[], NONE, D::No),
        row!(S::OpenConfirm, E::ManualStop => St::Idle, &[O::Notif(6, 2)], DISC, D::Admin),
        row!(S::OpenConfirm, E::HoldExpires => St::Idle, &[O::Notif(4, 0)], DISC, D::Hold),
        row!(S::OpenConfirm, E::KeepaliveExpires => St::OpenConfirm, &[O::Keepalive], NONE, D::No),
        row!(S::OpenConfirm, E::TcpConnected => St::OpenConfirm, &[], NONE, D::No),
        row!(S::OpenConfirm, E::TcpClosed => St::Idle, &[], NONE, D::Closed),
        // An OPEN on the same connection (a colliding connection has its own session).
        row!(S::OpenConfirm, E::OpenValid => St::Idle, &[O::Notif(5, 2)], DISC, D::Sent),
        row!(S::OpenConfirm, E::HeaderError => St::Idle, &[O::Notif(1, 1)], DISC, D::Sent),
        row!(S::OpenConfirm, E::NotifVersionError => St::Idle, &[], DISC, D::Received),
        row!(S::OpenConfirm, E::Notification => St::Idle, &[], DISC, D::Received),
        row!(S::OpenConfirm, E::Keepalive => St::Established, &[], NONE, D::No),
        row!(S::OpenConfirm, E::Update => St::Idle, &[O::Notif(5, 2)], DISC, D::Sent),
        row!(S::OpenConfirm, E::RouteRefresh => St::Idle, &[O::Notif(5, 2)], DISC, D::Sent),
        // ---- Established ----
        row!(S::Established, E::ManualStart => St::Established, &[], NONE, D::No),
        row!(S::Established, E::ManualStop => St::Idle, &[O::Notif(6, 2)], DISC, D::Admin),
        row!(S::Established, E::HoldExpires => St::Idle, &[O::Notif(4, 0)], DISC, D::Hold),
        row!(S::Established, E::KeepaliveExpires => St::Established, &[O::Keepalive], NONE, D::No),
        row!(S::Established, E::TcpConnected => St::Established, &[], NONE, D::No),
        row!(S::Established, E::TcpClosed => St::Idle, &[], NONE, D::Closed),
        row!(S::Established, E::OpenValid => St::Idle, &[O::Notif(5, 3)], DISC, D::Sent),
        // RFC 4271 6.1 header error rather than FSM error.
        row!(S::Established, E::HeaderError => St::Idle, &[O::Notif(1, 1)], DISC, D::Sent),
        row!(S::Established, E::NotifVersionError => St::Idle, &[], DISC, D::Received),
        row!(S::Established, E::Notification => St::Idle, &[], DISC, D::Received),
        row!(S::Established, E::Keepalive => St::Established, &[], NONE, D::No),
        row!(S::Established, E::Update => St::Established, &[], NONE, D::No),
        row!(S::Established, E::UpdateError => St::Idle, &[O::NotifCode(3)], DISC, D::Sent),
        row!(S::Established, E::RouteRefresh => St::Established, &[], NONE, D::No),
    ]
}

#[test]
fn every_state_event_pair_of_rfc4271_8_2_2() {
    let rows = table();
    for row in &rows {
        let ctx = format!("{:?} + {:?}", row.setup, row.ev);
        let (mut s, now) = setup(row.setup);
        apply(&mut s, now, row.ev);
        let evs = events(&mut s);
        let msgs = sent(&mut s);

        assert_eq!(s.state(), row.to, "{ctx}: state; events {evs:?}");
        assert_eq!(msgs.len(), row.out.len(), "{ctx}: sent {:?}", kinds(&msgs));
        for (want, got) in row.out.iter().zip(&msgs) {
            assert!(out_matches(want, got), "{ctx}: want {want:?}, sent {got:?}");
        }
        let conn: Vec<&str> = evs
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Connect => Some("connect"),
                SessionEvent::Disconnect => Some("disconnect"),
                _ => None,
            })
            .collect();
        assert_eq!(conn, row.conn, "{ctx}: connection requests; events {evs:?}");
        let down: Vec<Down> = downs(&evs).iter().map(down_kind).collect();
        match row.down {
            Down::No => assert!(down.is_empty(), "{ctx}: unexpected down {down:?}"),
            want => assert_eq!(down, vec![want], "{ctx}: down"),
        }
        // Specific payloads.
        match row.ev {
            Ev::Update if row.to == State::Established => assert!(
                evs.iter().any(|e| matches!(e, SessionEvent::Update(_))),
                "{ctx}: Update event"
            ),
            Ev::RouteRefresh if row.to == State::Established => assert!(
                evs.iter()
                    .any(|e| matches!(e, SessionEvent::RouteRefresh(_))),
                "{ctx}: RouteRefresh event"
            ),
            Ev::Keepalive if row.setup == Setup::OpenConfirm => assert!(
                evs.iter()
                    .any(|e| matches!(e, SessionEvent::Established(_))),
                "{ctx}: Established event"
            ),
            _ => {}
        }
        // A session that went down lost its negotiated parameters and connection.
        if row.to == State::Idle {
            assert!(s.negotiated().is_none(), "{ctx}");
            assert_eq!(s.queued_bytes(), 0, "{ctx}: queue drained");
        }
    }
    assert!(rows.len() >= 75, "table has {} rows", rows.len());
}

#[test]
fn state_changes_are_reported_in_order() {
    let (mut s, now) = setup(Setup::Idle);
    s.start(now);
    s.handle_connected(now);
    s.handle_data(now, &open_bytes_from_b());
    s.handle_data(now, &keepalive_bytes());
    let changes: Vec<(State, State)> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::StateChanged { from, to } => Some((from, to)),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (State::Idle, State::Connect),
            (State::Connect, State::OpenSent),
            (State::OpenSent, State::OpenConfirm),
            (State::OpenConfirm, State::Established),
        ]
    );
}

#[test]
fn open_and_keepalive_in_one_read_establish() {
    let (mut s, now) = setup(Setup::OpenSent);
    let mut both = open_bytes_from_b().to_vec();
    both.extend_from_slice(&keepalive_bytes());
    s.handle_data(now, &both);
    assert_eq!(s.state(), State::Established);
}

#[test]
fn messages_split_across_reads_are_reassembled() {
    let (mut s, now) = setup(Setup::OpenSent);
    let mut both = open_bytes_from_b().to_vec();
    both.extend_from_slice(&keepalive_bytes());
    for byte in &both {
        s.handle_data(now, std::slice::from_ref(byte));
    }
    assert_eq!(s.state(), State::Established);
}

#[test]
fn notification_received_is_reported_with_its_shutdown_message() {
    let (mut s, now) = setup(Setup::Established);
    let n = Notification::admin_shutdown("maintenance window");
    s.handle_data(now, &encode_default(&Message::Notification(n.clone())));
    let d = downs(&events(&mut s));
    assert_eq!(d, vec![DownReason::NotificationReceived(n)]);
    assert!(d[0].to_string().contains("maintenance window"), "{}", d[0]);
    assert!(sent(&mut s).is_empty(), "a NOTIFICATION is never answered");
}

#[test]
fn bytes_after_a_fatal_error_are_ignored() {
    let (mut s, now) = setup(Setup::Established);
    let mut data = notification_bytes(6, 2).to_vec();
    data.extend_from_slice(&keepalive_bytes());
    data.extend_from_slice(&[0u8; 40]); // garbage
    s.handle_data(now, &data);
    assert_eq!(s.state(), State::Idle);
    assert!(sent(&mut s).is_empty());
    s.handle_data(now, &[0u8; 40]);
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn data_field_of_a_codec_error_reaches_the_peer() {
    // Bad message type 9: RFC 4271 6.1, data is the type.
    let (mut s, now) = setup(Setup::Established);
    let mut bad = keepalive_bytes().to_vec();
    bad[18] = 9;
    s.handle_data(now, &bad);
    let msgs = sent(&mut s);
    match msgs.as_slice() {
        [bgp_proto::wire::Inbound::Notification(n)] => {
            assert_eq!((n.code, n.subcode), (1, 3));
            assert_eq!(n.data, Bytes::from_static(&[9]));
        }
        other => panic!("sent {other:?}"),
    }
}

#[test]
fn a_silent_stop_closes_without_a_notification_and_stays_idle() {
    let (mut s, now) = setup(Setup::Established);
    s.stop_silently(now);
    assert_eq!(s.state(), State::Idle);
    let evs = events(&mut s);
    assert_eq!(downs(&evs), vec![DownReason::AdminStop(None)]);
    assert!(
        evs.iter().any(|e| matches!(e, SessionEvent::Disconnect)),
        "the connection is closed: {evs:?}"
    );
    assert!(sent(&mut s).is_empty(), "nothing is sent");
    // No automatic restart: a later timeout does nothing.
    s.handle_timeout(now + Duration::from_secs(600));
    assert_eq!(s.state(), State::Idle);
    assert!(events(&mut s).is_empty());
}
