//! What a [`Session`](super::Session) reports: state changes with their [`Reason`],
//! changes of the timers in force, why a received packet was discarded ([`Discard`]),
//! and counters.

use std::fmt;
use std::time::Duration;

use crate::packet::{DecodeError, Diagnostic, State};

/// Drained with [`Session::poll_event`](super::Session::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// bfd.SessionState changed.
    StateChanged {
        from: State,
        to: State,
        reason: Reason,
    },
    /// The transmit interval or detection time in force changed (negotiation, a Poll
    /// Sequence ending, the peer changing its intervals). Before jitter.
    TimersChanged {
        transmit_interval: Duration,
        detection_time: Option<Duration>,
    },
}

impl SessionEvent {
    /// RFC 5882 3.2: a session that was Up went Down because the path failed (detection
    /// time expired, or the peer says its session is Down). A peer signalling AdminDown,
    /// or our own administrative action, is not a failure and clients such as BGP must
    /// not act on it as one.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            SessionEvent::StateChanged {
                from: State::Up,
                to: State::Down,
                reason: Reason::DetectionTimeExpired | Reason::PeerState(State::Down),
            }
        )
    }
}

/// Why the state changed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The state field of the peer's packet moved us (RFC 5880 6.8.6): Down to Init on
    /// Down; to Up on Init or Up; Init/Up to Down on Down or AdminDown.
    PeerState(State),
    /// No valid packet for a Detection Time (RFC 5880 6.8.4).
    DetectionTimeExpired,
    /// [`Session::admin_down`](super::Session::admin_down).
    AdminDown,
    /// [`Session::admin_up`](super::Session::admin_up).
    AdminUp,
}

impl Reason {
    /// The diagnostic we send after this change (RFC 5880 4.1, 6.8.6, 6.8.16).
    pub fn diagnostic(self, to: State) -> Diagnostic {
        match (self, to) {
            (Reason::DetectionTimeExpired, _) => Diagnostic::ControlDetectionTimeExpired,
            (Reason::AdminDown, _) => Diagnostic::AdministrativelyDown,
            (Reason::PeerState(_), State::Down) => Diagnostic::NeighborSignaledSessionDown,
            _ => Diagnostic::NoDiagnostic,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::PeerState(State::AdminDown) => f.write_str("peer is administratively down"),
            Reason::PeerState(s) => write!(f, "peer state {s}"),
            Reason::DetectionTimeExpired => f.write_str("control detection time expired"),
            Reason::AdminDown => f.write_str("administratively down"),
            Reason::AdminUp => f.write_str("administratively enabled"),
        }
    }
}

/// Why a received datagram was discarded (RFC 5880 6.8.6). Errors are values: the
/// caller counts or logs them, nothing else happens.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    #[error("malformed: {0}")]
    Malformed(#[from] DecodeError),
    #[error("TTL {ttl} below the required {min}")]
    Ttl { ttl: u8, min: u8 },
    #[error("Your Discriminator {0:#x} matches no session")]
    UnknownDiscriminator(u32),
    #[error("Your Discriminator {got:#x} is not ours ({ours:#x})")]
    WrongDiscriminator { got: u32, ours: u32 },
    #[error("Your Discriminator is zero in a packet with state {0}")]
    ZeroDiscriminatorInState(State),
    #[error("no session for this source address")]
    NoSession,
    #[error("the session with this discriminator belongs to another peer")]
    WrongPeer,
    #[error("authentication required but the packet has none")]
    AuthenticationMissing,
    #[error("authenticated packet but no authentication configured")]
    AuthenticationUnexpected,
    #[error("authentication key id {0} is not configured")]
    AuthenticationKeyId(u8),
    #[error("wrong password")]
    AuthenticationFailed,
}

/// Counters for `show bfd`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Control packets accepted.
    pub received: u64,
    /// Control packets handed to the caller to send.
    pub sent: u64,
    /// Packets demultiplexed to this session but discarded.
    pub discarded: u64,
    /// Transitions to Up.
    pub up_count: u64,
    /// Transitions from Up to Down that were failures ([`SessionEvent::is_failure`]).
    pub failures: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_path_failures_count_as_failures() {
        let ev = |from, to, reason| SessionEvent::StateChanged { from, to, reason };
        assert!(ev(State::Up, State::Down, Reason::DetectionTimeExpired).is_failure());
        assert!(ev(State::Up, State::Down, Reason::PeerState(State::Down)).is_failure());
        // RFC 5882 3.2: the peer going AdminDown is not a path failure.
        assert!(!ev(State::Up, State::Down, Reason::PeerState(State::AdminDown)).is_failure());
        assert!(!ev(State::Up, State::AdminDown, Reason::AdminDown).is_failure());
        // Never Up: no client relied on it.
        assert!(!ev(State::Init, State::Down, Reason::DetectionTimeExpired).is_failure());
    }

    #[test]
    fn reasons_map_to_rfc_diagnostics() {
        assert_eq!(
            Reason::DetectionTimeExpired.diagnostic(State::Down),
            Diagnostic::ControlDetectionTimeExpired
        );
        assert_eq!(
            Reason::PeerState(State::AdminDown).diagnostic(State::Down),
            Diagnostic::NeighborSignaledSessionDown
        );
        assert_eq!(
            Reason::PeerState(State::Init).diagnostic(State::Up),
            Diagnostic::NoDiagnostic
        );
        assert_eq!(
            Reason::AdminDown.diagnostic(State::AdminDown),
            Diagnostic::AdministrativelyDown
        );
        assert_eq!(
            Reason::PeerState(State::AdminDown).to_string(),
            "peer is administratively down"
        );
    }
}
