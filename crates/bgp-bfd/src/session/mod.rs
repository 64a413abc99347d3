//! One BFD session's state machine (RFC 5880 6.8), sans-IO.
//!
//! - [`config`]: what the session asks of its peer ([`SessionConfig`]), single hop or
//!   multihop ([`Hops`]), ports and constants.
//! - [`fsm`]: the state machine itself ([`Session`]).
//! - [`event`]: state changes and their [`Reason`]s, [`Discard`] reasons, counters.
//!
//! ```
//! use std::num::NonZeroU32;
//! use std::time::Instant;
//! use bgp_bfd::{ControlPacket, Hops, Session, SessionConfig, State};
//!
//! let now = Instant::now();
//! let mut s = Session::new(SessionConfig::new(Hops::Single), NonZeroU32::MIN, now);
//! s.handle_timeout(now);
//! let first = s.poll_transmit().expect("the first packet goes out at once");
//! let p = ControlPacket::decode(first.as_bytes()).unwrap();
//! assert_eq!(p.state, State::Down);
//! assert_eq!(p.desired_min_tx_us, 1_000_000, "1 s while not Up (RFC 5880 6.8.3)");
//! ```

pub mod config;
pub mod event;
pub mod fsm;

pub use config::{ConfigError, Hops, SessionConfig};
pub use event::{Discard, Reason, SessionEvent, SessionStats};
pub use fsm::Session;
