//! Connections the peer opens to us: when one is accepted, when it is refused, and when it
//! replaces the running session.
//!
//! - **Error backoff.** After a session error (a NOTIFICATION we sent or an error one we
//!   received, a hold timer expiry) the session waits, with exponential backoff, before it
//!   starts again (RFC 4271 8.1.1, DampPeerOscillations). A connection from the peer does
//!   not cut that wait short: it is refused at once, as BIRD refuses incoming connections
//!   during its error wait. Otherwise a peer (or anyone who can send from its address)
//!   could make us negotiate, fail and start over as fast as it can connect. A Cease is an
//!   administrative end rather than an error (the peer reset or restarted on purpose), and
//!   a failed connect of ours is no error of the peer: neither delays its connection.
//! - **Restart wait.** A session torn down to start again later (a prefix limit exceeded,
//!   RFC 4486) stays down until then: a connection from the peer is refused meanwhile, or
//!   a peer that connects would be back at once and the wait would only hold our own
//!   connection attempts.
//! - **Graceful restart.** RFC 4724 section 4.2: a new connection from a peer whose
//!   Established session has graceful restart means the peer restarted. The new connection
//!   runs in its own session beside the old one, and replaces it only once the peer sent a
//!   valid OPEN there (the session reached OpenConfirm): a bare TCP connection, or one
//!   whose OPEN is refused, leaves the running session alone, so a stray or forged
//!   connection from the peer's address cannot tear down a healthy session.
//! - Anything else is a collision (RFC 4271 6.8), resolved in collision.rs.

use std::fmt;
use std::time::Instant;

use bgp_proto::notification_code as nc;
use bgp_proto::session::{DownReason, Session, State};
use tracing::{debug, info};

use super::conn::{Conn, Transport};
use super::PeerDriver;
use crate::ConnId;

/// Why a connection from the peer is not taken.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The peer is disabled, or being removed.
    Disabled,
    /// The session waits after an error (see the module docs).
    Backoff,
    /// The session was torn down to start again later (see the module docs).
    RestartWait,
    /// Two connections are already open: one session and one collision or restart.
    ThirdConnection,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Disabled => "peer is disabled",
            Refusal::Backoff => "waiting after a session error (backoff)",
            Refusal::RestartWait => "torn down, waiting to start again",
            Refusal::ThirdConnection => "third concurrent connection",
        })
    }
}

/// Whether a session that ended for `reason` waits out its backoff before accepting the
/// peer's next connection.
pub(super) fn counts_as_error(reason: &DownReason) -> bool {
    match reason {
        DownReason::NotificationSent { .. }
        | DownReason::HoldTimerExpired
        | DownReason::SendHoldTimerExpired => true,
        DownReason::NotificationReceived(n) => n.code != nc::CEASE,
        DownReason::ConnectionClosed
        | DownReason::ConnectionFailed
        | DownReason::AdminStop(_)
        | DownReason::CollisionDump => false,
    }
}

impl PeerDriver {
    /// Whether a connection from the peer would be taken now. The caller asks before it
    /// spends anything on the connection (socket options), then hands it over with
    /// [`PeerDriver::handle_accepted`].
    pub fn check_incoming(&self, now: Instant) -> Result<(), Refusal> {
        if self.settings.disabled || self.stopping || self.status.disabled {
            return Err(Refusal::Disabled);
        }
        if self.in_error_backoff(now) {
            return Err(Refusal::Backoff);
        }
        if self.restart_at.is_some_and(|t| t > now) {
            return Err(Refusal::RestartWait);
        }
        Ok(())
    }

    /// A connection the peer opened to us is up. Returns the identifier under which the
    /// caller reports its bytes, or why it must be closed.
    pub fn handle_accepted(
        &mut self,
        now: Instant,
        transport: Transport,
    ) -> Result<ConnId, Refusal> {
        self.check_incoming(now)?;
        let id = self.next_conn_id();
        if !self.main.has_transport() {
            debug!(peer = %self.settings.name, remote = %transport.remote, "accepted connection");
            if self.main.session.state() == State::Idle {
                self.main.session.start(now);
            }
            self.main.attach(id, transport, false, &mut self.events);
            self.main.session.handle_connected(now);
            self.after(now);
            return Ok(id);
        }
        if self.extra.is_some() {
            return Err(Refusal::ThirdConnection);
        }
        // A second connection runs in its own session: a collision to resolve (RFC 4271
        // 6.8), or the restarted peer's new session (RFC 4724 4.2).
        let remote = transport.remote;
        let mut c = Conn::new(
            id,
            Session::new(self.settings.session_config(&self.identity, true)),
        );
        c.session.start(now);
        c.attach(id, transport, false, &mut self.events);
        c.session.handle_connected(now);
        if self.main.session.state() == State::Established {
            if self.graceful_restart_peer() {
                info!(peer = %self.settings.name, %remote, "new connection from a graceful-restart peer while established: it replaces the session once it sent a valid OPEN (RFC 4724 4.2)");
                c.replaces_established = true;
            } else {
                // A collision with an Established connection closes the new one.
                info!(peer = %self.settings.name, %remote, "connection collision with established session: closing the new connection");
                c.session.collision_dump(now);
            }
        }
        self.extra = Some(c);
        self.after(now);
        Ok(id)
    }

    /// The main session is Established with graceful restart on both sides.
    fn graceful_restart_peer(&self) -> bool {
        self.settings.graceful_restart.enabled
            && self
                .main
                .session
                .negotiated()
                .is_some_and(|n| n.peer_graceful_restart.is_some())
    }

    /// The main session is down after an error and its restart timer still runs.
    fn in_error_backoff(&self, now: Instant) -> bool {
        self.down_after_error
            && self.main.session.state() == State::Idle
            && !self.main.has_transport()
            && self.main.session.poll_timeout().is_some_and(|t| t > now)
    }

    /// RFC 4724 4.2: once the restarted peer's new connection got a valid OPEN, the old
    /// session ends as if its TCP connection closed (the peer's routes become stale, to be
    /// refreshed by the new session) and the new connection becomes the session.
    pub(super) fn replace_restarted(&mut self, now: Instant) {
        let ready = self.extra.as_ref().is_some_and(|c| {
            c.replaces_established
                && matches!(c.session.state(), State::OpenConfirm | State::Established)
        });
        if !ready {
            return;
        }
        if self.main.session.state() == State::Established {
            info!(peer = %self.settings.name, "the restarted peer sent a valid OPEN: its old session is closed (RFC 4724 4.2)");
            self.main.close(&mut self.events, &mut self.status.counters);
            self.main.session.handle_closed(now);
            while let Some(ev) = self.main.session.poll_event() {
                self.event(true, ev, now);
            }
        }
        let Some(mut new) = self.extra.take() else {
            return;
        };
        new.replaces_established = false;
        let state = new.session.state();
        let mut old = std::mem::replace(&mut self.main, new);
        old.close(&mut self.events, &mut self.status.counters);
        let s = self.status.facts();
        s.state = state;
        s.since = now;
    }
}

#[cfg(test)]
mod tests {
    use bgp_proto::Notification;
    use bytes::Bytes;

    use super::*;

    #[test]
    fn errors_wait_administrative_ends_do_not() {
        let n = |code, subcode| Notification {
            code,
            subcode,
            data: Bytes::new(),
        };
        assert!(counts_as_error(&DownReason::NotificationSent {
            notification: n(2, 2),
            reason: String::new(),
        }));
        assert!(counts_as_error(&DownReason::HoldTimerExpired));
        assert!(counts_as_error(&DownReason::NotificationReceived(n(3, 1))));
        assert!(!counts_as_error(&DownReason::NotificationReceived(n(6, 4))));
        assert!(!counts_as_error(&DownReason::ConnectionClosed));
        assert!(!counts_as_error(&DownReason::ConnectionFailed));
        assert!(!counts_as_error(&DownReason::AdminStop(None)));
    }
}
