//! One transport connection of a peer and the [`Session`] running over it, as the peer
//! driver sees them: an identifier, which side opened it, its addresses once it is up.
//! The bytes themselves are the caller's (a socket, a simulated link).

use std::collections::VecDeque;
use std::net::{Ipv6Addr, SocketAddr};

use bgp_proto::session::Session;

use super::{PeerCounters, PeerEvent};
use crate::ConnId;

/// The addresses of a connection that is up.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Transport {
    /// Our end.
    pub local: SocketAddr,
    /// The peer's end.
    pub remote: SocketAddr,
    /// For a connection over IPv6 link-local addresses: the global IPv6 address of its
    /// interface, for next hop self (RFC 2545 3). The caller looks it up; `None` otherwise.
    pub link_global_v6: Option<Ipv6Addr>,
}

/// A connection and its session.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) id: ConnId,
    pub(super) session: Session,
    /// We opened it (collision resolution, RFC 4271 6.8).
    pub(super) outbound: bool,
    /// Up, with these addresses.
    pub(super) transport: Option<Transport>,
    /// Our connection attempt for it is under way.
    pub(super) connecting: bool,
    /// This session reported Established to the RIB.
    pub(super) up: bool,
    /// A new connection of a graceful-restart peer that replaces the Established session
    /// once it got a valid OPEN (incoming.rs).
    pub(super) replaces_established: bool,
}

impl Conn {
    pub(super) fn new(id: ConnId, session: Session) -> Conn {
        Conn {
            id,
            session,
            outbound: false,
            transport: None,
            connecting: false,
            up: false,
            replaces_established: false,
        }
    }

    /// Adds the messages its session counted since the last call to `counters`.
    pub(super) fn count(&mut self, counters: &mut PeerCounters) {
        let m = self.session.take_message_counts();
        counters.messages_received += m.received;
        counters.messages_sent += m.sent;
        counters.keepalives_received += m.keepalives_received;
        counters.keepalives_sent += m.keepalives_sent;
    }

    pub(super) fn has_transport(&self) -> bool {
        self.transport.is_some()
    }

    /// Takes the connection `id` (accepted or connected) with these addresses; a
    /// connection attempt of ours under way is abandoned.
    pub(super) fn attach(
        &mut self,
        id: ConnId,
        transport: Transport,
        outbound: bool,
        events: &mut VecDeque<PeerEvent>,
    ) {
        if self.connecting && self.id != id {
            self.connecting = false;
            events.push_back(PeerEvent::Close {
                conn: self.id,
                last: Vec::new(),
            });
        }
        self.connecting = false;
        self.id = id;
        self.outbound = outbound;
        self.transport = Some(transport);
    }

    /// Closes the transport (or abandons the attempt): the caller writes what the
    /// session still has queued (a NOTIFICATION), best effort, then closes.
    /// The messages are counted in `counters` first: the session may be dropped next.
    pub(super) fn close(&mut self, events: &mut VecDeque<PeerEvent>, counters: &mut PeerCounters) {
        let attempt = std::mem::take(&mut self.connecting);
        if self.transport.take().is_some() {
            let mut last = Vec::new();
            while let Some(b) = self.session.poll_transmit() {
                last.push(b);
            }
            self.count(counters);
            events.push_back(PeerEvent::Close {
                conn: self.id,
                last,
            });
        } else if attempt {
            events.push_back(PeerEvent::Close {
                conn: self.id,
                last: Vec::new(),
            });
        }
    }
}
