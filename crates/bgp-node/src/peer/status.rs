//! What a peer driver reports about its peer: FSM state, errors, the negotiated session
//! and counters ([`PeerStatus`]), and the log lines for a session that went down.

use std::net::SocketAddr;
use std::time::Instant;

use bgp_proto::notification_code as nc;
use bgp_proto::session::{DownReason, Negotiated, State};
use tracing::{debug, info, warn};

/// Message counters of a peer.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerCounters {
    /// UPDATE messages received.
    pub updates_received: u64,
    /// UPDATE messages sent.
    pub updates_sent: u64,
    /// NOTIFICATIONs sent.
    pub notifications_sent: u64,
    /// NOTIFICATIONs received.
    pub notifications_received: u64,
    /// ROUTE-REFRESH messages received.
    pub route_refresh_received: u64,
    /// Times the session reached Established.
    pub established_transitions: u64,
    /// Messages received, every type.
    pub messages_received: u64,
    /// Messages sent (handed to the transport), every type.
    pub messages_sent: u64,
    /// KEEPALIVEs received.
    pub keepalives_received: u64,
    /// KEEPALIVEs sent.
    pub keepalives_sent: u64,
    /// Not a counter: bytes queued for the peer in the main session and not yet taken
    /// by the transport, the output queue's depth now.
    pub output_queue_bytes: u64,
}

/// NOTIFICATIONs of one error code and subcode (RFC 4271 4.5) sent to and received from a
/// peer, over every session with it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct NotificationCount {
    /// Error code.
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// How many we sent.
    pub sent: u64,
    /// How many the peer sent.
    pub received: u64,
}

/// Live state of a peer.
#[derive(Clone, Debug)]
pub struct PeerStatus {
    /// FSM state of the main connection.
    pub state: State,
    /// When `state` was entered.
    pub since: Instant,
    /// Administratively disabled.
    pub disabled: bool,
    /// The last reason the session went down.
    pub last_error: Option<String>,
    /// The last NOTIFICATION we sent, rendered.
    pub last_notification_sent: Option<String>,
    /// The last NOTIFICATION the peer sent, rendered.
    pub last_notification_received: Option<String>,
    /// Negotiated parameters while Established.
    pub negotiated: Option<Box<Negotiated>>,
    /// Our end of the current connection.
    pub local_addr: Option<SocketAddr>,
    /// The peer's end of the current connection.
    pub remote_addr: Option<SocketAddr>,
    /// Counters (they change with every message; everything else rarely).
    pub counters: PeerCounters,
    /// NOTIFICATIONs by code and subcode, sorted (rare: a change bumps `version`).
    pub notifications: Vec<NotificationCount>,
    /// Changes whenever a field other than `counters` changes, so a caller publishing the
    /// status elsewhere copies the rest only when needed.
    pub version: u64,
}

impl PeerStatus {
    /// A peer not started yet: Idle since `now`, nothing counted.
    pub fn new(disabled: bool, now: Instant) -> PeerStatus {
        PeerStatus {
            state: State::Idle,
            since: now,
            disabled,
            last_error: None,
            last_notification_sent: None,
            last_notification_received: None,
            negotiated: None,
            local_addr: None,
            remote_addr: None,
            counters: PeerCounters::default(),
            notifications: Vec::new(),
            version: 0,
        }
    }

    /// The fields besides the counters, for a change (bumps the version).
    pub(super) fn facts(&mut self) -> &mut PeerStatus {
        self.version = self.version.wrapping_add(1);
        self
    }

    /// Counts a NOTIFICATION of `code`/`subcode`, sent or received.
    fn count_notification(&mut self, code: u8, subcode: u8, sent: bool) {
        let list = &mut self.facts().notifications;
        let i = match list.binary_search_by_key(&(code, subcode), |n| (n.code, n.subcode)) {
            Ok(i) => i,
            Err(i) => {
                list.insert(
                    i,
                    NotificationCount {
                        code,
                        subcode,
                        ..NotificationCount::default()
                    },
                );
                i
            }
        };
        if let Some(n) = list.get_mut(i) {
            if sent {
                n.sent += 1;
            } else {
                n.received += 1;
            }
        }
    }

    /// Logs a session that went down and counts the NOTIFICATION it involved. `conn` says
    /// which connection ("main", or "collision" for a second one).
    pub(super) fn session_down(&mut self, peer: &str, conn: &str, reason: &DownReason) {
        match reason {
            DownReason::NotificationSent { notification, .. }
            | DownReason::AdminStop(Some(notification)) => {
                self.counters.notifications_sent += 1;
                self.count_notification(notification.code, notification.subcode, true);
                self.facts().last_notification_sent = Some(reason.to_string());
                warn!(
                    peer,
                    conn,
                    code = notification.code,
                    subcode = notification.subcode,
                    reason = %reason,
                    "NOTIFICATION sent"
                );
            }
            DownReason::NotificationReceived(n) => {
                self.counters.notifications_received += 1;
                self.count_notification(n.code, n.subcode, false);
                self.facts().last_notification_received = Some(reason.to_string());
                warn!(
                    peer,
                    conn,
                    code = n.code,
                    subcode = n.subcode,
                    reason = %reason,
                    "NOTIFICATION received"
                );
            }
            DownReason::HoldTimerExpired | DownReason::SendHoldTimerExpired => {
                let code = match reason {
                    DownReason::HoldTimerExpired => nc::HOLD_TIMER_EXPIRED,
                    _ => nc::SEND_HOLD_TIMER_EXPIRED,
                };
                self.counters.notifications_sent += 1;
                self.count_notification(code, 0, true);
                self.facts().last_notification_sent = Some(reason.to_string());
                warn!(peer, conn, code, subcode = 0u8, reason = %reason, "NOTIFICATION sent");
            }
            DownReason::CollisionDump => {
                self.counters.notifications_sent += 1;
                self.count_notification(nc::CEASE, nc::CEASE_CONNECTION_COLLISION, true);
                info!(peer, conn, code = nc::CEASE, subcode = nc::CEASE_CONNECTION_COLLISION, reason = %reason, "NOTIFICATION sent");
            }
            DownReason::ConnectionFailed => {
                debug!(peer, conn, reason = %reason, "session down");
            }
            _ => info!(peer, conn, reason = %reason, "session down"),
        }
    }
}
