//! What a [`Session`](super::Session) tells its caller: its [`State`], the
//! [`SessionEvent`]s drained with `poll_event`, and why a session went down.

use std::fmt;

use crate::wire::types::{Notification, RouteRefresh};
use crate::wire::DecodedUpdate;

use super::negotiate::Negotiated;

/// The RFC 4271 8.2.2 session states.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something the caller must act on or may want to know, drained with
/// [`Session::poll_event`](super::Session::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// Open a TCP connection to the peer, then report the outcome with
    /// [`handle_connected`](super::Session::handle_connected) or
    /// [`handle_connect_failed`](super::Session::handle_connect_failed).
    Connect,
    /// Close the connection (or abandon the connection attempt). Write out what
    /// [`poll_transmit`](super::Session::poll_transmit) still returns first (best effort,
    /// it may hold a NOTIFICATION), then close.
    Disconnect,
    /// The FSM moved between states.
    StateChanged { from: State, to: State },
    /// The session reached Established with these parameters.
    Established(Box<Negotiated>),
    /// An UPDATE arrived in Established. RFC 7606 outcomes short of a session reset
    /// (treat-as-withdraw, attribute discard) are carried inside. Boxed once where it is
    /// decoded: a `DecodedUpdate` is ~420 bytes, and the box moves on to the caller's
    /// queues (the node layer's RIB input) as a pointer instead of being copied at every
    /// step.
    Update(Box<DecodedUpdate>),
    /// A ROUTE-REFRESH (or BoRR/EoRR) arrived for a negotiated family.
    RouteRefresh(RouteRefresh),
    /// The connection ended; the FSM is back in Idle (or Active after a connection lost in
    /// OpenSent). Routes learned from the peer are no longer valid.
    Down(DownReason),
}

/// Why a session went down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// We detected an error and sent this NOTIFICATION.
    NotificationSent {
        notification: Notification,
        reason: String,
    },
    /// The peer sent a NOTIFICATION.
    NotificationReceived(Notification),
    /// No message from the peer within the Hold Time; we sent NOTIFICATION 4/0.
    HoldTimerExpired,
    /// The peer did not read what we sent for the SendHoldTime (RFC 9687); we sent
    /// NOTIFICATION 8/0.
    SendHoldTimerExpired,
    /// The transport connection closed or broke.
    ConnectionClosed,
    /// The transport connection could not be established.
    ConnectionFailed,
    /// [`stop`](super::Session::stop) was called; the NOTIFICATION sent, if connected.
    AdminStop(Option<Notification>),
    /// The connection lost a collision (RFC 4271 6.8); we sent Cease 6/7.
    CollisionDump,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::NotificationSent {
                notification,
                reason,
            } => write!(
                f,
                "sent NOTIFICATION {}: {reason}",
                describe_notification(notification)
            ),
            DownReason::NotificationReceived(n) => {
                write!(f, "received NOTIFICATION {}", describe_notification(n))
            }
            DownReason::HoldTimerExpired => f.write_str("hold timer expired"),
            DownReason::SendHoldTimerExpired => {
                f.write_str("send hold timer expired: peer is not reading")
            }
            DownReason::ConnectionClosed => f.write_str("connection closed"),
            DownReason::ConnectionFailed => f.write_str("connection failed"),
            DownReason::AdminStop(Some(n)) => {
                write!(
                    f,
                    "administratively stopped, sent {}",
                    describe_notification(n)
                )
            }
            DownReason::AdminStop(None) => f.write_str("administratively stopped"),
            DownReason::CollisionDump => f.write_str("connection collision, sent Cease"),
        }
    }
}

/// `4/0 Hold Timer Expired`: numbers for grepping, then the registry names and any
/// shutdown communication (see the `Display` of [`Notification`]).
pub fn describe_notification(n: &Notification) -> String {
    format!("{}/{} {n}", n.code, n.subcode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn down_reasons_read_well_in_logs() {
        let n = Notification {
            code: 4,
            subcode: 0,
            data: Bytes::new(),
        };
        assert_eq!(
            DownReason::NotificationReceived(n).to_string(),
            "received NOTIFICATION 4/0 Hold Timer Expired"
        );
        assert_eq!(
            DownReason::HoldTimerExpired.to_string(),
            "hold timer expired"
        );
        let sent = DownReason::NotificationSent {
            notification: Notification {
                code: 2,
                subcode: 2,
                data: Bytes::new(),
            },
            reason: "peer announced AS 1, expected AS 2".into(),
        };
        assert_eq!(
            sent.to_string(),
            "sent NOTIFICATION 2/2 OPEN Message Error/Bad Peer AS: peer announced AS 1, expected AS 2"
        );
    }

    #[test]
    fn state_names_are_the_rfc_names() {
        assert_eq!(State::OpenConfirm.to_string(), "OpenConfirm");
        assert_eq!(State::Established.as_str(), "Established");
    }
}
