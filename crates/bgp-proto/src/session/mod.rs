//! The per-peer BGP session finite-state machine (RFC 4271 section 8), sans-IO.
//!
//! A [`Session`] runs one peer over one transport connection. It never touches a socket
//! or a clock: the caller reports transport events (`handle_connected`, `handle_closed`,
//! ...), received bytes (`handle_data`) and timer expiry (`handle_timeout`), always with
//! the current [`std::time::Instant`], and issues commands (`start`, `stop`,
//! `send_update`). It then drains what the session wants: bytes to write
//! (`poll_transmit`), when to call back (`poll_timeout`) and [`SessionEvent`]s
//! (`poll_event`): open or close the connection, Established with the [`Negotiated`]
//! capabilities, received UPDATEs, Down with a [`DownReason`].
//!
//! - [`config`]: what we offer and how the timers run ([`SessionConfig`]).
//! - [`counts`]: messages received and sent, counted per session ([`MessageCounts`]).
//! - [`negotiate`]: OPEN validation and capability negotiation, as pure functions.
//! - [`fsm`]: the state machine itself.
//! - [`collision`]: the RFC 4271 6.8 decision between two connections to one peer,
//!   which only the caller (owning both sessions) can apply.
//! - [`event`]: states, events and down reasons.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use std::time::Instant;
//! use bgp_proto::session::{Session, SessionConfig, SessionEvent, State};
//!
//! let now = Instant::now();
//! let mut s = Session::new(SessionConfig::new(65001, Ipv4Addr::new(10, 0, 0, 1), None));
//! s.start(now);
//! assert_eq!(s.state(), State::Connect);
//! assert!(std::iter::from_fn(|| s.poll_event()).any(|e| e == SessionEvent::Connect));
//! s.handle_connected(now); // the caller's TCP connect succeeded
//! assert_eq!(s.state(), State::OpenSent);
//! let open = s.poll_transmit().expect("our OPEN");
//! assert_eq!(open[18], 1); // message type OPEN
//! ```

pub mod collision;
pub mod config;
pub mod counts;
pub mod event;
pub mod fsm;
pub mod negotiate;

pub use collision::{resolve_collision, CollisionOutcome};
pub use config::{ConfigError, LocalCapabilities, SessionConfig};
pub use counts::MessageCounts;
pub use event::{describe_notification, DownReason, SessionEvent, State};
pub use fsm::{SendError, Session};
pub use negotiate::Negotiated;
