//! BFD interop: our `bgp-bfd`, driven by the `bfd_peer` binary ([`peer`], [`spec`]),
//! against FRR's bfdd ([`frr`]) and BIRD 2's BFD protocol ([`bird`]) in namespaces, and
//! the scenario bodies `tests/bfd.rs` runs ([`scenarios`]); bgpd's own BFD against
//! them ([`bgpd`], run by `tests/bgpd_bfd.rs`).
//!
//! The real peers are configured from one [`PeerSession`] list, and both report what
//! they see as [`PeerView`]s through [`BfdSpeaker`], so a scenario is written once for
//! both.

pub mod bgpd;
pub mod bird;
pub mod cluster;
pub mod frr;
pub mod load;
pub mod peer;
pub mod scenarios;
pub mod spec;

use std::net::IpAddr;
use std::time::Duration;

use bgp_bfd::State;

use crate::error::Result;

/// One BFD session as a real peer (FRR or BIRD) should run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSession {
    /// Our address, as the peer sees it.
    pub neighbor: IpAddr,
    /// The peer's own address for the session.
    pub local: IpAddr,
    /// The peer's interface towards us (single hop).
    pub interface: String,
    pub multihop: bool,
    pub rx_ms: u64,
    pub tx_ms: u64,
    pub mult: u8,
    pub passive: bool,
    /// Simple password (key id 1), BIRD only.
    pub password: Option<String>,
}

impl PeerSession {
    /// A single-hop session at 300 ms x 3.
    pub fn new(neighbor: IpAddr, local: IpAddr, interface: &str) -> PeerSession {
        PeerSession {
            neighbor,
            local,
            interface: interface.to_string(),
            multihop: false,
            rx_ms: 300,
            tx_ms: 300,
            mult: 3,
            passive: false,
            password: None,
        }
    }
}

/// A BFD session as a real peer reports it. Fields a daemon does not show are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerView {
    pub neighbor: IpAddr,
    pub state: State,
    /// Its transmit interval in force (BIRD's `Interval`).
    pub transmit_interval: Option<Duration>,
    /// Its detection time (BIRD's `Timeout`).
    pub detection_time: Option<Duration>,
    /// What it received from us (FRR's `remote-*`): our Required Min RX, Desired Min TX
    /// and Detect Mult.
    pub remote_rx: Option<Duration>,
    pub remote_tx: Option<Duration>,
    pub remote_mult: Option<u8>,
    /// Its diagnostic and ours as it received it (FRR).
    pub diagnostic: Option<String>,
    pub remote_diagnostic: Option<String>,
    /// Times it saw the session go Up and Down (FRR counters).
    pub up_count: Option<u64>,
    pub down_count: Option<u64>,
}

/// A real BFD speaker in a namespace.
pub trait BfdSpeaker {
    /// Every session it runs.
    fn sessions(&self) -> Result<Vec<PeerView>>;

    /// The session towards `neighbor`.
    fn session(&self, neighbor: IpAddr) -> Result<Option<PeerView>> {
        Ok(self
            .sessions()?
            .into_iter()
            .find(|v| v.neighbor == neighbor))
    }

    /// Fails early if the daemon died.
    fn check_running(&self) -> Result<()>;
}
