//! A BGP peer played by the test itself, for inputs no real daemon sends: sessions
//! brought up by hand, a flood of UPDATEs, a 64 KiB NOTIFICATION, an OPEN at the moment
//! the test wants, bytes that break the framing, a peer that stops reading; and what the
//! daemon under test uses meanwhile.
//!
//! - `connect`: sockets opened from inside a network namespace ([`Netns::enter`],
//!   [`Netns::tcp_connect`]);
//! - [`RawPeer`] (`open`): what the peer says in its OPEN;
//! - [`RawSession`] (`session`): one connection, writing what the test chooses and
//!   reading continuously or only when asked ([`Reading`]);
//! - [`wire`]: messages built byte by byte, independently of the codec under test
//!   (UPDATEs, path attributes, NLRI, ROUTE-REFRESH, framing);
//! - `usage`: the daemon's memory and CPU from `/proc` ([`usage()`]), and its peak
//!   RSS ([`PeakRss`]).
//!
//! [`Netns::enter`]: crate::Netns::enter
//! [`Netns::tcp_connect`]: crate::Netns::tcp_connect

mod connect;
mod open;
mod session;
mod usage;
pub mod wire;

pub use open::RawPeer;
pub use session::{Frame, RawSender, RawSession, Reading};
pub use usage::{usage, PeakRss, Usage};
