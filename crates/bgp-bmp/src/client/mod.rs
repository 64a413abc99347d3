//! The router's side of a BMP session with one monitoring station, sans-IO.
//!
//! A [`Client`] has the four kinds of methods of the house model (`bgp_proto`'s
//! `Session`, after quinn-proto): getters; commands from the daemon (`start`, `stop`,
//! `peer_up`, `peer_down`, `route_monitoring`, `statistics`, `route_mirroring`);
//! `handle_*` for what happened on the transport and the clock; and `poll_*` for what the
//! caller must do next: bytes to write (`poll_transmit`), when to call back
//! (`poll_timeout`), and [`ClientEvent`]s (`poll_event`). Time is always a parameter.
//!
//! # Session life (RFC 7854 3.3)
//! `start` asks for a connection ([`ClientEvent::Connect`]). Once the caller reports it up,
//! the client queues the Initiation (RFC 7854 4.3, sysName and sysDescr), then a Peer Up
//! for every BGP session it holds as up, and emits [`ClientEvent::ReplayRoutes`]: the
//! caller then sends every up peer's routes as Route Monitoring (the initial table dump),
//! flow-controlled by [`Client::has_room`] and [`ClientEvent::Writable`], ending each
//! peer and family with End-of-RIB if it likes. Live events are offered as they happen;
//! while not connected they are dropped ([`Enqueued::NotConnected`]), since the replay on
//! the next connection covers them. Statistics reports go out on
//! [`ClientEvent::StatisticsDue`]. `stop` ends with a Termination.
//!
//! The client holds no routes: only the Peer Up of each session that is up (a few hundred
//! bytes per peer), so the replay of routes comes from the caller's RIB, walked in place.
//! Replay and live events may interleave: a live UPDATE for a prefix not yet replayed is
//! followed by the replay of its then current state, which the station applies over it.
//!
//! # Reconnection
//! A failed attempt, a closed connection, a connection attempt over `connect_timeout` and
//! a station that stops reading for `send_timeout` all lead to a new attempt after an
//! exponential backoff with jitter (`backoff_initial` doubling up to `backoff_max`,
//! reset once a connection has lasted `stable_after`).
//!
//! # The queue and its overflow rule
//! Messages wait in one buffer bounded by `max_queue` bytes. When a message would go
//! over the bound, the client does not grow and does not drop messages silently (the
//! station's view would quietly diverge): it drops everything still queued, queues a
//! Termination with reason "out of resources" (RFC 7854 4.5), asks the caller to close,
//! and after the backoff reconnects and resynchronises through the normal replay. The
//! offered message gets [`Enqueued::Overflow`]. Bulk sending stays clear of the bound by
//! itself: `has_room` is false from half the bound on.
//!
//! # Driving it (what the daemon does)
//! ```text
//! loop {
//!     for each event of client.poll_event():
//!         Connect        => open TCP (from the configured source) to the station
//!         Close          => write out client.poll_transmit()..., then close
//!         ReplayRoutes   => start a walk of the RIB: per peer up, its routes
//!         Writable       => resume the walk
//!         StatisticsDue  => client.statistics(report) for each peer up
//!         Disconnected(r)=> log r, count it
//!     while socket writable: client.poll_transmit() -> write (never block the loop on a
//!                            write: a stuck station must let the send timeout run)
//!     sleep until client.poll_timeout(), a socket event, or a RIB event
//!     socket connected / failed / closed / readable => client.handle_*(now)
//!     timer => client.handle_timeout(now)
//!     RIB: session Established => client.peer_up(..); down => client.peer_down(..);
//!          UPDATE in => client.route_monitoring(pre-policy, as received);
//!          route accepted/changed => client.route_monitoring(post-policy)
//! }
//! ```

mod backoff;
mod config;
mod event;
mod fsm;
mod queue;

pub use backoff::Backoff;
pub use config::{ClientConfig, ConfigError, MIN_QUEUE};
pub use event::{ClientCounters, ClientEvent, ClientState, DisconnectReason, Enqueued};
pub use fsm::Client;
