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
//!
//! Two endpoints, one single-hop session each, hand each other their packets until both
//! sessions are Up (the three-way handshake of RFC 5880 6.2):
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use std::time::{Duration, Instant};
//! use bgp_bfd::{Addresses, Endpoint, Hops, PacketInfo, SessionConfig, SessionEvent, State};
//!
//! let (ip_a, ip_b) = (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
//! let now = Instant::now();
//! let mut a = Endpoint::new(1);
//! let mut b = Endpoint::new(2);
//! let at = |peer| Addresses { peer, local: None, interface: None };
//! a.add_session(now, at(ip_b), SessionConfig::new(Hops::Single)).unwrap();
//! b.add_session(now, at(ip_a), SessionConfig::new(Hops::Single)).unwrap();
//!
//! // What the socket layer would do: send, and report each datagram with its TTL
//! // (single hop accepts only 255, RFC 5881 5).
//! let carry = |from: &mut Endpoint, to: &mut Endpoint, source: IpAddr, now: Instant| {
//!     from.handle_timeout(now);
//!     while let Some(t) = from.poll_transmit() {
//!         let info = PacketInfo { source, destination: None, interface: None, ttl: t.ttl, multihop: false };
//!         to.handle_datagram(now, &info, t.packet.as_bytes()).unwrap();
//!     }
//! };
//! // Four seconds in steps of 10 ms: not yet Up, a session sends once a second (RFC
//! // 5880 6.8.3); once Up, at the negotiated 300 ms, detecting a loss after 900 ms.
//! let mut up = 0;
//! for tick in 0..400 {
//!     let now = now + Duration::from_millis(10 * tick);
//!     carry(&mut a, &mut b, ip_a, now);
//!     carry(&mut b, &mut a, ip_b, now);
//!     for endpoint in [&mut a, &mut b] {
//!         while let Some((_, event)) = endpoint.poll_event() {
//!             if let SessionEvent::StateChanged { to: State::Up, .. } = event {
//!                 up += 1;
//!             }
//!         }
//!     }
//! }
//! assert_eq!(up, 2, "both came Up once and stayed Up");
//! assert!(a.sessions().chain(b.sessions()).all(|(_, _, s)| s.state() == State::Up));
//! ```

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
