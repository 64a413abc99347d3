//! The operator's stream of what happens ([`Speaker::events`]): peer state changes (every
//! RFC 4271 8.2.2 transition, with the reason of a failure), the routes each peer
//! announces and withdraws (its UPDATEs as received, before import policy), and the
//! Loc-RIB's best-path changes, in the order they happened.
//!
//! A peer's state changes are reported as its task sees them after each step: states
//! passed within one step (OpenSent, OpenConfirm and Established on messages that arrived
//! together) show as one change, but each change starts from the state the last one
//! entered.
//!
//! Three bounded broadcast channels feed it, none of them new memory per subscriber: the
//! peers' state changes ([`Transitions`], published by each peer task when its status
//! changes), the monitoring tap of the BMP and MRT feeds (monitor/tap.rs: the UPDATEs) and
//! the best-path changes of [`Speaker::subscribe`]. A reader that falls behind does not
//! hold anyone back: it is told how many events it lost ([`EventError::Lagged`]) and goes
//! on with the newest. A peer task publishes its state before it hands what the session
//! produced to the tap and the RIB, and [`Events::recv`] reads the channels in that order
//! (states, then UPDATEs, then best paths), so a peer's Established comes before its
//! first route and a route before the best-path change it caused.
//!
//! Connection failures are logged here too, at info, once per change of reason: a peer
//! nobody answers is retried every few seconds, and the log says so once, not at every
//! attempt (the reason stays visible in `show peers`).
//!
//! [`Speaker::events`]: crate::Speaker::events
//! [`Speaker::subscribe`]: crate::Speaker::subscribe

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use bgp_node::PeerStatus;
use bgp_proto::session::State;
use bgp_proto::wire::{decode_message, Inbound};
use bgp_proto::{MpNlri, PathAttributes, Update};
use ipnet::IpNet;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tracing::info;

use crate::monitor::tap::MonitorEvent;
use crate::rib_task::RouteChange;
use crate::routes::Route;
use crate::speaker::PeerState;

/// State changes the channel holds for readers (they are rare; a flapping peer makes a
/// few per second).
const TRANSITIONS: usize = 1024;

/// One thing that happened, as [`Events::recv`] returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpeakerEvent {
    /// A peer's session changed state.
    PeerState {
        /// The peer.
        peer: String,
        /// The state it left.
        from: PeerState,
        /// The state it entered.
        to: PeerState,
        /// Why, when it went down or could not connect (the peer's `last_error`).
        reason: Option<String>,
    },
    /// A peer announced a path (its UPDATE as received, before import policy).
    Announced {
        /// The peer.
        peer: String,
        /// The path (prefix, path identifier, attributes; `best` and the like unset).
        route: Box<Route>,
    },
    /// A peer withdrew a path.
    Withdrawn {
        /// The peer.
        peer: String,
        /// The prefix.
        prefix: IpNet,
        /// The ADD-PATH path identifier (RFC 7911), where the session carries them.
        path_id: Option<u32>,
    },
    /// The Loc-RIB's best path of a prefix changed, or the prefix became unreachable.
    Best(RouteChange),
}

/// Why [`Events::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The reader fell behind: this many events were lost; the next ones follow.
    #[error("{0} events lost")]
    Lagged(u64),
    /// The speaker has shut down.
    #[error("the speaker has shut down")]
    Closed,
}

/// A peer's state change, as peer tasks publish it.
#[derive(Clone, Debug)]
pub(crate) struct Transition {
    peer: String,
    from: PeerState,
    to: PeerState,
    reason: Option<String>,
}

/// The sending side of the state changes, one clone per peer task.
#[derive(Clone, Debug)]
pub(crate) struct Transitions(broadcast::Sender<Arc<Transition>>);

impl Default for Transitions {
    fn default() -> Transitions {
        Transitions(broadcast::channel(TRANSITIONS).0)
    }
}

/// What one peer task keeps to publish its state changes and log connection failures.
#[derive(Debug)]
pub(crate) struct PeerStates {
    tx: Transitions,
    name: String,
    /// The state last published.
    state: PeerState,
    /// The connection failure last logged; cleared once a connection succeeds.
    connect_failure: Option<String>,
}

impl PeerStates {
    pub(crate) fn new(tx: Transitions, name: &str, disabled: bool) -> PeerStates {
        PeerStates {
            tx,
            name: name.to_owned(),
            state: if disabled {
                PeerState::Disabled
            } else {
                PeerState::Idle
            },
            connect_failure: None,
        }
    }

    /// Looks at the peer's status after a change (its `version` moved): publishes a new
    /// state, logs a new reason of connection failure.
    pub(crate) fn observe(&mut self, st: &PeerStatus) {
        let failure = st.last_error.as_deref().and_then(connect_failure);
        match failure {
            Some(why) if self.connect_failure.as_deref() != Some(why) => {
                info!(peer = %self.name, reason = why, "cannot connect (retrying; logged again when the reason changes)");
                self.connect_failure = Some(why.to_owned());
            }
            Some(_) => {}
            // A connection made it: the next failure is news again.
            None if matches!(
                st.state,
                State::OpenSent | State::OpenConfirm | State::Established
            ) =>
            {
                self.connect_failure = None
            }
            None => {}
        }
        let to = PeerState::of(st.state, st.disabled);
        if to == self.state {
            return;
        }
        let from = std::mem::replace(&mut self.state, to);
        // A reason for a fall (a session down, an attempt failed), not for a climb.
        let fell = matches!(
            to,
            PeerState::Idle | PeerState::Active | PeerState::Disabled
        ) && !matches!(from, PeerState::Idle | PeerState::Disabled);
        let reason = match (&st.last_error, failure) {
            _ if !fell => None,
            (_, Some(why)) => Some(format!("connect: {why}")),
            (e, None) => e.clone(),
        };
        // No reader: nothing to do (the error only says so).
        let _ = self.tx.0.send(Arc::new(Transition {
            peer: self.name.clone(),
            from,
            to,
            reason,
        }));
    }
}

/// The reason of a failed connection attempt in a peer's `last_error`, as the operating
/// system words it (`Connection refused`), without Rust's `(os error N)`: the form BIRD
/// prints after `Socket:`.
pub fn connect_failure(last_error: &str) -> Option<&str> {
    let why = last_error.strip_prefix("connect: ")?;
    Some(match why.rsplit_once(" (os error ") {
        Some((text, code)) if code.ends_with(')') => text,
        _ => why,
    })
}

/// A reader of the event stream ([`crate::Speaker::events`]).
#[derive(Debug)]
pub struct Events {
    states: broadcast::Receiver<Arc<Transition>>,
    tap: broadcast::Receiver<Arc<MonitorEvent>>,
    routes: broadcast::Receiver<RouteChange>,
    /// Events of one UPDATE not returned yet.
    pending: VecDeque<SpeakerEvent>,
}

impl Events {
    pub(crate) fn new(
        states: &Transitions,
        tap: broadcast::Receiver<Arc<MonitorEvent>>,
        routes: broadcast::Receiver<RouteChange>,
    ) -> Events {
        Events {
            states: states.0.subscribe(),
            tap,
            routes,
            pending: VecDeque::new(),
        }
    }

    /// The next event, waiting for one (cancel-safe: dropping the future loses nothing).
    pub async fn recv(&mut self) -> Result<SpeakerEvent, EventError> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(e);
            }
            tokio::select! {
                biased;
                t = self.states.recv() => {
                    let t = t.map_err(lost)?;
                    return Ok(SpeakerEvent::PeerState {
                        peer: t.peer.clone(),
                        from: t.from,
                        to: t.to,
                        reason: t.reason.clone(),
                    });
                }
                m = self.tap.recv() => {
                    let m = m.map_err(lost)?;
                    self.pending.extend(received(&m));
                }
                r = self.routes.recv() => return r.map(SpeakerEvent::Best).map_err(lost),
            }
        }
    }
}

fn lost(e: RecvError) -> EventError {
    match e {
        RecvError::Lagged(n) => EventError::Lagged(n),
        RecvError::Closed => EventError::Closed,
    }
}

/// The announcements and withdrawals of one UPDATE copied to the tap.
fn received(m: &MonitorEvent) -> Vec<SpeakerEvent> {
    let MonitorEvent::Update {
        peer,
        session,
        message,
        ..
    } = m
    else {
        return Vec::new();
    };
    // Encoded under the session's context (monitor/tap.rs): decoded under it again.
    let Ok(Inbound::Update(d)) = decode_message(message, &session.negotiated.codec) else {
        return Vec::new();
    };
    update_events(peer, &d.update, d.treat_as_withdraw.is_some())
}

/// What an UPDATE says, prefix by prefix: withdrawals first, as RFC 4271 4.3 orders them.
fn update_events(peer: &str, u: &Update, treat_as_withdraw: bool) -> Vec<SpeakerEvent> {
    let unicast = |n: &MpNlri| match n {
        MpNlri::Unicast(v) => v.clone(),
        MpNlri::Opaque(_) => Vec::new(),
    };
    let mut withdrawn = u.withdrawn.clone();
    if let Some(w) = &u.mp_unreach {
        withdrawn.extend(unicast(&w.nlri));
    }
    let mut announced: Vec<(bgp_proto::Nlri, Option<IpAddr>)> = u
        .nlri
        .iter()
        .map(|n| (*n, u.attributes.next_hop.map(IpAddr::V4)))
        .collect();
    if let Some(r) = &u.mp_reach {
        let nh = r.next_hop.addr();
        announced.extend(unicast(&r.nlri).into_iter().map(|n| (n, nh)));
    }
    if treat_as_withdraw {
        // RFC 7606 2: every prefix of the UPDATE is withdrawn.
        withdrawn.extend(announced.drain(..).map(|(n, _)| n));
    }
    let mut out: Vec<SpeakerEvent> = withdrawn
        .into_iter()
        .map(|n| SpeakerEvent::Withdrawn {
            peer: peer.to_owned(),
            prefix: n.prefix,
            path_id: n.path_id,
        })
        .collect();
    out.extend(
        announced
            .into_iter()
            .map(|(n, nh)| SpeakerEvent::Announced {
                peer: peer.to_owned(),
                route: Box::new(received_route(peer, n, nh, &u.attributes)),
            }),
    );
    out
}

fn received_route(
    peer: &str,
    n: bgp_proto::Nlri,
    next_hop: Option<IpAddr>,
    a: &PathAttributes,
) -> Route {
    Route::with_attributes(n.prefix, n.path_id, Some(peer.to_owned()), a, next_hop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::{Community, Nlri, Origin};

    #[test]
    fn connect_failures_lose_the_os_error_number() {
        assert_eq!(
            connect_failure("connect: Connection refused (os error 111)"),
            Some("Connection refused")
        );
        assert_eq!(connect_failure("connect: timed out"), Some("timed out"));
        assert_eq!(connect_failure("hold timer expired"), None);
    }

    #[test]
    fn an_update_is_withdrawals_then_announcements() {
        let u = Update {
            withdrawn: vec![Nlri::new("10.9.0.0/24".parse().unwrap())],
            attributes: PathAttributes {
                origin: Some(Origin::Igp),
                next_hop: Some("192.0.2.1".parse().unwrap()),
                communities: vec![Community(0xfde8_0001)],
                ..PathAttributes::default()
            },
            nlri: vec![Nlri::new("10.1.0.0/24".parse().unwrap())],
            ..Update::default()
        };
        let ev = update_events("p", &u, false);
        assert_eq!(ev.len(), 2);
        assert!(
            matches!(&ev[0], SpeakerEvent::Withdrawn { prefix, .. } if prefix.to_string() == "10.9.0.0/24")
        );
        let SpeakerEvent::Announced { peer, route } = &ev[1] else {
            panic!("{ev:?}")
        };
        assert_eq!(peer, "p");
        assert_eq!(route.next_hop, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(route.communities, vec![Community(0xfde8_0001)]);
        // RFC 7606 treat-as-withdraw: both prefixes withdrawn.
        let ev = update_events("p", &u, true);
        assert!(ev
            .iter()
            .all(|e| matches!(e, SpeakerEvent::Withdrawn { .. })));
        assert_eq!(ev.len(), 2);
    }
}
