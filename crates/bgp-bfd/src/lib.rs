//! Sans-IO Bidirectional Forwarding Detection (BFD) for BGP sessions.
//!
//! BFD (RFC 5880) tells two systems within a fraction of a second that the forwarding
//! path between them stopped working, long before a BGP hold timer would. This crate
//! holds the parts of BFD that need no operating system, built like `bgp-proto`:
//!
//! - [`packet`]: the BFD Control packet codec (RFC 5880 4.1), with simple password
//!   authentication (4.2, 6.7.2); the keyed MD5/SHA1 types are recognised and refused.
//! - [`session`]: one session's state machine in asynchronous mode (RFC 5880 6.2, 6.8):
//!   AdminDown/Down/Init/Up, timer negotiation with the Poll/Final sequence (6.5, 6.8.3),
//!   detection time, the slow 1 s rate while not Up, jitter (6.8.7), diagnostics. Single
//!   hop (RFC 5881) and multihop (RFC 5883) differ only in configuration ([`Hops`]).
//! - [`endpoint`]: many sessions behind one pair of UDP ports: discriminator allocation
//!   and the demultiplexing of received packets (RFC 5880 6.3, RFC 5881 3, RFC 5883 3).
//!
//! Nothing here opens a socket or reads a clock. The caller feeds received datagrams
//! (with the TTL and addresses the socket reported), commands and the current
//! [`std::time::Instant`], then drains what to send (`poll_transmit`), when to call back
//! (`poll_timeout`) and state changes (`poll_event`), in the manner of `quinn-proto`.
//! The optional `udp` feature adds [`udp`], the Linux socket set-up a driver needs
//! (TTL 255 on send, the received TTL and destination address from `recvmsg`).
//!
//! Demand mode and the Echo function are not implemented: we never ask for demand mode,
//! advertise a Required Min Echo RX Interval of zero, and honour a peer's demand mode by
//! ceasing periodic transmission as RFC 5880 6.8.7 requires.

pub mod endpoint;
pub mod packet;
mod rng;
pub mod session;
#[cfg(feature = "udp")]
pub mod udp;

pub use endpoint::{Addresses, Endpoint, EndpointError, PacketInfo, SessionId, Transmit};
pub use packet::{
    AuthType, ControlPacket, DecodeError, Diagnostic, EncodedPacket, Password, SimplePassword,
    State,
};
pub use session::{
    ConfigError, Discard, Hops, Reason, Session, SessionConfig, SessionEvent, SessionStats,
};
