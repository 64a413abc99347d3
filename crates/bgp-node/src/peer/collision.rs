//! Connection collisions (RFC 4271 6.8): two connections with one peer, each with its own
//! session; one is kept.
//!
//! - Both reach OpenConfirm (each side has the other's BGP Identifier): the connection
//!   opened by the speaker with the higher identifier is kept, with the AS number as tie
//!   breaker when the identifiers are equal (RFC 6286 2.3, `resolve_collision`); the other
//!   is closed with Cease / Connection Collision Resolution.
//! - The second connection reaches Established first (the peer completed it without
//!   answering our OPEN on the first): it becomes the session and the first is closed.
//! - A connection arriving while a session is Established is closed at once (incoming.rs),
//!   unless it is the restarted peer's new session (RFC 4724 4.2, incoming.rs).

use std::time::Instant;

use bgp_proto::session::{resolve_collision, CollisionOutcome, DownReason, State};
use tracing::info;

use super::PeerDriver;

impl PeerDriver {
    /// RFC 4271 6.8: once both connections know the peer's BGP Identifier, keep one.
    pub(super) fn resolve_collision(&mut self, now: Instant) {
        let Some(extra) = &mut self.extra else { return };
        let (ms, es) = (self.main.session.state(), extra.session.state());
        if ms != State::OpenConfirm || es != State::OpenConfirm {
            return;
        }
        let Some(remote_id) = extra.session.peer_bgp_id() else {
            return;
        };
        let remote_as = extra.session.peer_as().unwrap_or(self.settings.remote_as);
        let outcome = resolve_collision(
            self.identity.router_id,
            self.settings.local_as(&self.identity),
            remote_id,
            remote_as,
        );
        let main_is_local = self.main.outbound;
        let keep_main = match outcome {
            CollisionOutcome::KeepLocallyInitiated => main_is_local,
            CollisionOutcome::KeepRemotelyInitiated => !main_is_local,
        };
        info!(peer = %self.settings.name, ?outcome, "connection collision resolved");
        if keep_main {
            extra.session.collision_dump(now);
        } else {
            self.main.session.collision_dump(now);
            if let Some(new_main) = self.extra.take() {
                let old = std::mem::replace(&mut self.main, new_main);
                self.extra = Some(old);
            }
        }
    }

    /// The second connection reached Established while the first did not: it becomes the
    /// session, and the first, if still open, is closed as the loser of a collision.
    pub(super) fn promote_extra(&mut self, now: Instant) {
        let Some(c) = self.extra.take() else {
            return;
        };
        let mut old = std::mem::replace(&mut self.main, c);
        if old.has_transport() {
            // RFC 4271 6.8: a connection colliding with an Established one is closed with
            // Cease / Connection Collision Resolution.
            old.session.collision_dump(now);
            self.status
                .session_down(&self.settings.name, "collision", &DownReason::CollisionDump);
        }
        old.close(&mut self.events, &mut self.status.counters);
        let s = self.status.facts();
        s.state = State::Established;
        s.since = now;
    }
}
