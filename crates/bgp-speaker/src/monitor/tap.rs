//! The tap peer tasks feed for the monitoring feeds: a copy of every session event that
//! goes to the RIB (Established, each UPDATE received, down), on one bounded broadcast
//! channel.
//!
//! Bounded memory: the channel holds at most [`TAP_EVENTS`] events, shared by every
//! reader; a reader that falls behind (a slow BMP station, a slow disk) does not hold
//! the peers back nor grow anything: it is told how many events it missed
//! (`RecvError::Lagged`) and resynchronises from the RIB (a BMP station is reconnected
//! and gets the table again, RFC 7854 5; the MRT update log records the gap). With no
//! reader, peers skip the copy entirely.
//!
//! UPDATEs are re-encoded from what the session decoded, under the session's own codec
//! context (4-octet AS, ADD-PATH receive), so they are the message as received with RFC
//! 7606's treat-as-withdraw and attribute-discard applied: the pre-policy Adj-RIB-In.
//!
//! The RIB task adds the post-policy Adj-RIB-In ([`MonitorEvent::Accepted`]: routes as
//! the import policy left them) and the post-policy Adj-RIB-Out ([`MonitorEvent::Sent`]:
//! the UPDATEs each peer is sent), each only while a reader asked for it ([`Tap::want`]).
//! All go through the one channel, so a reader sees them in
//! the order they happened: a peer task copies each input here before the RIB gets it,
//! so a session's Up precedes the RIB's changes for it. Changes carry the number of the
//! session they belong to: those of a session already down are recognised and dropped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bgp_node::message::RibInput;
use bgp_node::PeerStatus;
use bgp_proto::session::{DownReason, Negotiated};
use bgp_proto::wire::encode_message;
use bgp_proto::{CodecContext, Family, Message, Nlri};
use bgp_rib::Attrs;
use bytes::{Bytes, BytesMut};
use tokio::sync::broadcast;
use tracing::debug;

/// Events the tap holds at most (each an UPDATE of up to 4 KiB, or 64 KiB with extended
/// messages; a few MiB in practice).
pub(crate) const TAP_EVENTS: usize = 4096;

/// An established session, as the feeds need it (BMP Peer Up, MRT state changes).
#[derive(Debug)]
pub(crate) struct SessionFacts {
    /// What it negotiated, both OPENs included.
    pub negotiated: Box<Negotiated>,
    /// Our end of the connection.
    pub local: SocketAddr,
    /// The peer's end.
    pub remote: SocketAddr,
    /// When it reached Established.
    pub at: SystemTime,
    /// Its number among the peer's sessions (`RibInput::Up`'s), which the RIB's
    /// [`MonitorEvent::Accepted`] and [`MonitorEvent::Sent`] carry.
    pub seq: u64,
}

impl SessionFacts {
    /// The codec context of the UPDATEs as the peer sent them: its path identifiers
    /// where we receive ADD-PATH (the session's own context encodes what we send).
    pub(crate) fn received_codec(&self) -> CodecContext {
        let c = &self.negotiated.codec;
        CodecContext {
            add_path_send: c.add_path_receive.clone(),
            ..c.clone()
        }
    }

    /// The peer's address and ours, of one family as BMP and MRT records need them: an
    /// IPv4-mapped address (a dual-stack socket) as IPv4, and ours mapped into IPv6 when
    /// the peer's is IPv6 and ours is not.
    pub(crate) fn addresses(&self) -> (IpAddr, IpAddr) {
        let unmapped = |ip: IpAddr| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let peer = unmapped(self.remote.ip());
        let local = match unmapped(self.local.ip()) {
            IpAddr::V4(a) if peer.is_ipv6() => IpAddr::V6(a.to_ipv6_mapped()),
            IpAddr::V6(a) if peer.is_ipv4() => {
                IpAddr::V4(a.to_ipv4().unwrap_or(Ipv4Addr::UNSPECIFIED))
            }
            l => l,
        };
        (peer, local)
    }
}

/// What a peer's session did, for the feeds.
#[derive(Debug)]
pub(crate) enum MonitorEvent {
    /// The session reached Established.
    Up {
        peer: String,
        session: Arc<SessionFacts>,
    },
    /// An UPDATE received, encoded as the session carries it.
    Update {
        peer: String,
        session: Arc<SessionFacts>,
        message: Bytes,
        /// Its NLRI carry ADD-PATH path identifiers (RFC 7911).
        add_path: bool,
        at: SystemTime,
    },
    /// The session left Established.
    Down {
        peer: String,
        session: Arc<SessionFacts>,
        reason: DownReason,
        at: SystemTime,
    },
    /// Changes of the peer's routes as its import policy left them (the post-policy
    /// Adj-RIB-In), from the RIB: attributes after policy, `None` for a route withdrawn
    /// or now refused. Path identifiers as received where the session carries them.
    Accepted {
        peer: String,
        /// The session they belong to ([`SessionFacts::seq`]).
        seq: u64,
        changes: Vec<(Nlri, Option<Attrs>)>,
        at: SystemTime,
    },
    /// UPDATEs the RIB handed the peer's session to send (the post-policy Adj-RIB-Out of
    /// RFC 8671), encoded under the session's own codec context.
    Sent {
        peer: String,
        /// The session they are for ([`SessionFacts::seq`]).
        seq: u64,
        updates: Vec<Bytes>,
        at: SystemTime,
    },
}

/// What the RIB task adds to the tap on demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RibFeed {
    /// [`MonitorEvent::Accepted`].
    Accepted,
    /// [`MonitorEvent::Sent`].
    Sent,
}

/// The sending side, one clone per peer task and one for the RIB task.
#[derive(Clone, Debug)]
pub(crate) struct Tap(broadcast::Sender<Arc<MonitorEvent>>, Arc<[AtomicUsize; 2]>);

impl Default for Tap {
    fn default() -> Tap {
        Tap(broadcast::channel(TAP_EVENTS).0, Arc::default())
    }
}

/// A reader's wish for one [`RibFeed`], for as long as it is held.
#[derive(Debug)]
pub(crate) struct Want(Arc<[AtomicUsize; 2]>, RibFeed);

impl Drop for Want {
    fn drop(&mut self) {
        self.0[self.1 as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Tap {
    /// Asks the RIB task for `feed` while the result is held.
    pub(crate) fn want(&self, feed: RibFeed) -> Want {
        self.1[feed as usize].fetch_add(1, Ordering::Relaxed);
        Want(self.1.clone(), feed)
    }

    /// Some reader wants `feed`.
    pub(crate) fn wanted(&self, feed: RibFeed) -> bool {
        self.1[feed as usize].load(Ordering::Relaxed) > 0 && self.0.receiver_count() > 0
    }

    /// Sends `ev` (nothing happens without a reader).
    pub(crate) fn send(&self, ev: MonitorEvent) {
        let _ = self.0.send(Arc::new(ev));
    }

    /// Sends `ev` as a peer task would.
    #[cfg(test)]
    pub(crate) fn send_for_test(&self, ev: MonitorEvent) {
        let _ = self.0.send(Arc::new(ev));
    }

    /// A reader of every event from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<MonitorEvent>> {
        self.0.subscribe()
    }
}

/// What one peer task keeps to feed the tap: the current session, so UPDATEs and the
/// down event name it.
#[derive(Debug)]
pub(crate) struct PeerTap {
    tap: Tap,
    session: Option<Arc<SessionFacts>>,
}

impl PeerTap {
    pub(crate) fn new(tap: Tap) -> PeerTap {
        PeerTap { tap, session: None }
    }

    /// Copies `input` of peer `name` to the tap (nothing without a reader). `status` is
    /// the driver's, for the connection's addresses.
    pub(crate) fn observe(&mut self, name: &str, status: &PeerStatus, input: &RibInput) {
        match input {
            RibInput::Up {
                negotiated,
                session,
                ..
            } => {
                let (Some(local), Some(remote)) = (status.local_addr, status.remote_addr) else {
                    self.session = None;
                    return;
                };
                let s = Arc::new(SessionFacts {
                    negotiated: negotiated.clone(),
                    local,
                    remote,
                    at: SystemTime::now(),
                    seq: *session,
                });
                self.session = Some(s.clone());
                self.send(MonitorEvent::Up {
                    peer: name.to_owned(),
                    session: s,
                });
            }
            RibInput::Update(u) => {
                let Some(s) = &self.session else { return };
                if self.tap.0.receiver_count() == 0 {
                    return;
                }
                let mut out = BytesMut::new();
                let msg = Message::Update(u.update.clone());
                if let Err(e) = encode_message(&msg, &s.received_codec(), &mut out) {
                    debug!(peer = name, error = %e, "UPDATE not re-encodable for monitoring");
                    return;
                }
                let family = match (&u.update.mp_reach, &u.update.mp_unreach) {
                    _ if !u.update.nlri.is_empty() || !u.update.withdrawn.is_empty() => {
                        Family::IPV4_UNICAST
                    }
                    (Some(r), _) => r.family,
                    (None, Some(w)) => w.family,
                    (None, None) => Family::IPV4_UNICAST,
                };
                let ev = MonitorEvent::Update {
                    peer: name.to_owned(),
                    session: s.clone(),
                    message: out.freeze(),
                    add_path: s.negotiated.codec.add_path_receive.contains(&family),
                    at: SystemTime::now(),
                };
                self.send(ev);
            }
            RibInput::Down { reason, .. } => {
                let Some(s) = self.session.take() else { return };
                self.send(MonitorEvent::Down {
                    peer: name.to_owned(),
                    session: s,
                    reason: reason.clone(),
                    at: SystemTime::now(),
                });
            }
            RibInput::RouteRefresh(_) => {}
        }
    }

    fn send(&self, ev: MonitorEvent) {
        self.tap.send(ev);
    }
}
