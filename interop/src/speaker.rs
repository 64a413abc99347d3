//! The [`Speaker`] trait every daemon adapter implements, so one test body
//! can drive BIRD, GoBGP, FRR, ExaBGP or bgpd, and the waits written on it.
//!
//! Besides sessions and routes, the trait asks about what only some CLIs
//! show or can do (ADD-PATH negotiation, sending a ROUTE-REFRESH, counting
//! the ones received, staleness, reflection attributes): each such method
//! answers `None` or `false` where the daemon's CLI cannot, so scenarios
//! skip that check instead of matching on the daemon's kind.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::model::{AddPathSeen, Family, PeerStatus, RouteView};
use crate::process::Process;
use crate::wait::wait_for;

/// A running BGP speaker that can be inspected through its CLI.
pub trait Speaker {
    /// Short label (`bird-a`, `gobgp-b`, ...).
    fn label(&self) -> &str;

    /// Sessions and their states.
    fn peers(&self) -> Result<Vec<PeerStatus>>;

    /// The routes of `family` in the speaker's main table (all paths).
    fn routes(&self, family: Family) -> Result<Vec<RouteView>>;

    /// The daemon process.
    fn process(&self) -> &Process;

    /// The daemon process, to stop, kill or restart it.
    fn process_mut(&mut self) -> &mut Process;

    /// Errors if the daemon process has exited.
    fn check_running(&self) -> Result<()> {
        self.process().check_running()
    }

    /// Whether [`RouteView::stale`] reflects graceful-restart staleness.
    fn reports_stale(&self) -> bool {
        false
    }

    /// What the CLI says about ADD-PATH (IPv4 unicast) on the session to
    /// `neighbor`, with the CLI's own text for error messages; `None` where
    /// the CLI does not show it.
    fn add_path(&self, neighbor: IpAddr) -> Result<Option<(AddPathSeen, String)>> {
        let _ = neighbor;
        Ok(None)
    }

    /// Makes the speaker send a ROUTE-REFRESH (RFC 2918) for IPv4 unicast to
    /// `neighbor` with its own CLI; returns the CLI's answer, or `None` where
    /// the CLI cannot send one.
    fn request_refresh(&self, neighbor: IpAddr) -> Result<Option<String>> {
        let _ = neighbor;
        Ok(None)
    }

    /// ROUTE-REFRESH messages received from `neighbor`, where the CLI counts
    /// them; `None` where it shows no such counter.
    fn refreshes_received(&self, neighbor: IpAddr) -> Result<Option<u64>> {
        let _ = neighbor;
        Ok(None)
    }
}

/// Waits until `speaker` shows its session to `peer` Established.
pub fn wait_established(speaker: &dyn Speaker, peer: IpAddr, timeout: Duration) -> Result<()> {
    wait_for(
        &format!("{} session to {peer} Established", speaker.label()),
        timeout,
        || {
            speaker.check_running()?;
            let peers = speaker.peers()?;
            match peers.iter().find(|p| p.address == peer) {
                Some(p) if p.established => Ok(Ok(())),
                Some(p) => Ok(Err(format!("state {}", p.state))),
                None => Ok(Err(format!("no such peer; peers: {peers:?}"))),
            }
        },
    )
}

/// Waits until `speaker` has a BGP-learned route for `prefix`; returns the best
/// learned path (or the first learned one if none is marked best).
pub fn wait_route(speaker: &dyn Speaker, prefix: IpNet, timeout: Duration) -> Result<RouteView> {
    let mut found = None;
    wait_for(
        &format!("{} to learn {prefix}", speaker.label()),
        timeout,
        || {
            speaker.check_running()?;
            let routes = speaker.routes(Family::of_net(&prefix))?;
            let mut learned = routes.iter().filter(|r| r.prefix == prefix && r.learned);
            let first = learned.clone().next().cloned();
            match learned.find(|r| r.best).cloned().or(first) {
                Some(r) => {
                    found = Some(r);
                    Ok(Ok(()))
                }
                None => Ok(Err(format!(
                    "table has {} routes: {:?}",
                    routes.len(),
                    routes.iter().map(|r| r.prefix).collect::<Vec<_>>()
                ))),
            }
        },
    )?;
    found.ok_or_else(|| Error::Check("route vanished".into()))
}

/// Waits until `speaker` has no BGP-learned route for `prefix` (withdrawals).
pub fn wait_no_route(speaker: &dyn Speaker, prefix: IpNet, timeout: Duration) -> Result<()> {
    wait_for(
        &format!("{} to drop {prefix}", speaker.label()),
        timeout,
        || {
            speaker.check_running()?;
            let routes = speaker.routes(Family::of_net(&prefix))?;
            if routes.iter().any(|r| r.prefix == prefix && r.learned) {
                Ok(Err("still present".into()))
            } else {
                Ok(Ok(()))
            }
        },
    )
}
