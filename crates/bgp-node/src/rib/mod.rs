//! The RIB driver: the node's [`Rib`] and what it needs to know of the peers, sans IO.
//!
//! A [`RibDriver`] owns the RIB and a registry of peers keyed by [`PeerId`] (peers.rs).
//! Peer drivers' [`RibInput`](crate::RibInput)s go in ([`RibDriver::handle_input`],
//! input.rs: sessions up and down, UPDATEs and End-of-RIB, max-prefix); configuration
//! changes go in through its commands (peers added, removed and changed, policies, local
//! routes, selection deferral, recovery). After any of them the caller drains:
//!
//! - [`RibDriver::poll_output`]: UPDATEs for peers, a bounded slice at a time, to peers
//!   with credit (output.rs);
//! - [`RibDriver::poll_fib`]: best-path changes for the FIB, when the FIB consumer has
//!   room; nothing is dropped meanwhile (fib.rs), and the end of graceful-restart recovery
//!   comes the same way, after what was learned before it;
//! - [`RibDriver::poll_event`]: best-path changes for subscribers, and requests for peer
//!   drivers (close a session over its prefix limit, send a ROUTE-REFRESH);
//! - [`RibDriver::poll_timeout`], then [`RibDriver::handle_timeout`]: graceful-restart
//!   timers, selection deferral, the recovery deadline.
//!
//! The decision process runs once per batch of input: at the first poll after a change,
//! so a caller bounds the work of a round by what it hands in before polling
//! ([`INPUT_PREFIX_BUDGET`](crate::message::INPUT_PREFIX_BUDGET)).
//!
//! Graceful-restart recovery (RFC 4724 4.1: has every peer that should sent End-of-RIB,
//! or is the time over?) is tracked by the [`Rib`] alone ([`Rib::start_recovery`],
//! [`Rib::defer_selection`]); the driver is its client as the FIB is: it tells the RIB
//! which peers are disabled, takes the end from [`Rib::poll_recovery_done`] and hands it
//! to the FIB with the batch that carries everything learned before it.
//!
//! Next hops resolve through `R` ([`NextHopResolver`]): the daemon's view of the kernel,
//! or [`AllReachable`].

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp_proto::{Family, Notification};
use bgp_rib::policy::{Policy, RouteSource};
use bgp_rib::{
    AllReachable, FibChange, LocalRoute, NextHopResolver, RecoveryDone, Rib, RibConfig, RibError,
};
use ipnet::IpNet;
use tracing::{info, warn};

use crate::PeerId;

mod fib;
mod input;
mod output;
mod peers;
#[cfg(test)]
mod tests;

pub use fib::FibBatch;
pub use input::MAX_PREFIX_RESTART;
pub use peers::PeerEntry;

/// Which peers graceful-restart recovery still expects to send their whole table
/// ([`RibDriver::recovery_status`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryStatus {
    /// Enabled peers that sent their whole initial table (or need not).
    pub complete: usize,
    /// Names of the peers still expected to, sorted.
    pub waiting: Vec<String>,
}

/// How the RIB driver hands out its output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RibDriverConfig {
    /// NLRI octets encoded per output slice (`Rib::take_encoded`). 256 KiB is
    /// about 50,000 IPv4 /32s, so a window of slices (~1 MiB of frames) waits per peer
    /// where a 1M-route table encoded at once made ~95 MiB of transient memory.
    pub out_slice_bytes: usize,
    /// Slices a peer may hold that it has not taken yet.
    pub out_window: u32,
    /// There is a FIB consumer: keep best-path changes for [`RibDriver::poll_fib`].
    pub fib: bool,
}

impl Default for RibDriverConfig {
    fn default() -> Self {
        RibDriverConfig {
            out_slice_bytes: 256 * 1024,
            out_window: 4,
            fib: false,
        }
    }
}

/// A request of the RIB driver for its caller (see [`RibDriver::poll_event`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RibEvent {
    /// Best-path changes, for subscribers (only while [`RibDriver::set_route_events`] is
    /// on).
    RouteChanges(Vec<FibChange>),
    /// Close the peer's session with `notification` and start it again after
    /// `restart_after` ([`PeerDriver::teardown`](crate::PeerDriver::teardown)).
    Teardown {
        /// The peer.
        peer: PeerId,
        /// Why (Cease / Maximum Number of Prefixes Reached).
        notification: Notification,
        /// When to start the session again.
        restart_after: Duration,
        /// Send it as a Hard Reset (RFC 8538 3).
        hard_reset: bool,
    },
    /// Ask the peer to send its routes again
    /// ([`PeerDriver::route_refresh`](crate::PeerDriver::route_refresh)).
    RouteRefresh {
        /// The peer.
        peer: PeerId,
        /// The family.
        family: Family,
    },
}

/// The RIB and its peers (see the module docs). `L` is whatever the caller keeps to
/// reach a peer; `R` resolves next hops.
#[derive(Debug)]
pub struct RibDriver<L, R = AllReachable> {
    rib: Rib,
    resolver: R,
    config: RibDriverConfig,
    peers: peers::Registry<L>,
    policies: BTreeMap<String, Policy>,
    fib: fib::FibQueue,
    turns: output::Turns,
    events: VecDeque<RibEvent>,
    route_events: bool,
    /// Input arrived since the decision process last ran.
    dirty: bool,
}

impl<L, R: NextHopResolver> RibDriver<L, R> {
    /// A RIB with `rib` settings, no peers.
    pub fn new(rib: RibConfig, resolver: R, config: RibDriverConfig) -> Self {
        let mut rib = Rib::new(rib);
        // Best-path changes nobody takes are not computed.
        rib.set_fib_output(config.fib);
        RibDriver {
            rib,
            resolver,
            config,
            peers: Default::default(),
            policies: BTreeMap::new(),
            fib: Default::default(),
            turns: Default::default(),
            events: VecDeque::new(),
            route_events: false,
            dirty: false,
        }
    }

    // ---- getters ----

    /// The RIB, for queries.
    pub fn rib(&self) -> &Rib {
        &self.rib
    }

    /// The next-hop resolver.
    pub fn resolver(&self) -> &R {
        &self.resolver
    }

    /// Graceful-restart recovery: which peers are still expected to send their table
    /// ([`Rib::recovery`]). While no recovery runs nobody is waited for.
    pub fn recovery_status(&self) -> RecoveryStatus {
        let Some(s) = self.rib.recovery() else {
            return RecoveryStatus {
                complete: self.peers.iter().filter(|e| !e.settings.disabled).count(),
                waiting: Vec::new(),
            };
        };
        let mut waiting: Vec<String> = s
            .waiting
            .iter()
            .filter_map(|&id| self.peer_by_rib(id))
            .map(|e| e.settings.name.clone())
            .collect();
        waiting.sort();
        RecoveryStatus {
            complete: s.complete,
            waiting,
        }
    }

    /// Graceful-restart recovery was started and is not over.
    pub fn is_recovering(&self) -> bool {
        self.rib.recovery().is_some()
    }

    /// Best-path changes wait for the FIB consumer.
    pub fn fib_pending(&self) -> bool {
        !self.fib.is_empty() || (self.dirty && self.config.fib)
    }

    /// Best-path changes waiting (the FIB consumer lags by this many prefixes at most).
    pub fn fib_backlog(&self) -> usize {
        self.fib.len()
    }

    // ---- commands ----

    /// Whether best-path changes are also handed out as [`RibEvent::RouteChanges`] (the
    /// copies are made only while someone listens).
    pub fn set_route_events(&mut self, on: bool) {
        self.route_events = on;
        self.rib.set_fib_output(self.config.fib || on);
    }

    /// Whether changes of peers' accepted routes (the post-policy Adj-RIB-In) are
    /// recorded for [`RibDriver::take_accepted`] ([`Rib::watch_accepted`]; off, they cost
    /// nothing).
    pub fn watch_accepted(&mut self, on: bool) {
        self.rib.watch_accepted(on);
    }

    /// The changes of accepted routes since the last call, oldest first
    /// ([`Rib::take_accepted`]).
    pub fn take_accepted(&mut self) -> Vec<bgp_rib::AcceptedChange> {
        self.rib.take_accepted()
    }

    /// Changes our AS and router id; only while no peer is configured.
    pub fn set_identity(&mut self, local_as: u32, router_id: Ipv4Addr) -> Result<(), RibError> {
        self.rib.set_identity(local_as, router_id)
    }

    /// Originates (or replaces) a local route, changed at `now` unless it is the same.
    pub fn originate(&mut self, route: LocalRoute, now: Instant) -> Result<(), RibError> {
        self.changed();
        self.rib.set_time(now);
        self.rib.originate(route)
    }

    /// Withdraws a local route.
    pub fn withdraw_local(&mut self, prefix: IpNet, source: RouteSource) {
        self.changed();
        self.rib.withdraw_local(prefix, source);
    }

    /// Starts graceful-restart recovery ([`Rib::start_recovery`]): call once the
    /// configured peers are added. It ends when every enabled peer sent End-of-RIB, or at
    /// `deadline`; once over it stays over. With `defer_selection` we are the restarting
    /// speaker (RFC 4724 4.1): advertisements are held back until then too
    /// ([`Rib::defer_selection`]).
    pub fn start_recovery(&mut self, deadline: Instant, defer_selection: bool, now: Instant) {
        if defer_selection {
            info!(
                wait_secs = deadline.saturating_duration_since(now).as_secs(),
                "restarting: deferring advertisements until peers sent End-of-RIB (RFC 4724 4.1)"
            );
            self.rib.defer_selection(deadline);
        } else {
            self.rib.start_recovery(deadline);
        }
        // A deadline already past ends it now.
        self.handle_timeout(now);
    }

    /// Peers whose session has not come up by `at` are no longer waited for by the
    /// recovery in progress ([`Rib::bound_absent_peers`]).
    pub fn bound_absent_peers(&mut self, at: Instant, now: Instant) {
        let waiting = self.recovery_status().waiting;
        self.rib.bound_absent_peers(at);
        self.rib.handle_timeout(now);
        self.recovery_ended(&waiting);
        self.changed();
    }

    /// Changes the next-hop resolver's view: `f` applies the change and says whether any
    /// answer in use may differ, in which case every prefix goes through the decision
    /// again (RFC 4271 9.1.2: eligibility and IGP cost).
    pub fn update_resolver(&mut self, f: impl FnOnce(&mut R) -> bool) {
        if f(&mut self.resolver) {
            self.rib.resolver_changed(&self.resolver);
            self.changed();
        }
    }

    // ---- input from the clock ----

    /// The time from [`RibDriver::poll_timeout`] came.
    pub fn handle_timeout(&mut self, now: Instant) {
        let waiting = self.recovery_status().waiting;
        self.rib.handle_timeout(now);
        self.recovery_ended(&waiting);
        self.changed();
    }

    // ---- output ----

    /// When [`RibDriver::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rib.next_deadline()
    }

    /// The next request for the caller.
    pub fn poll_event(&mut self) -> Option<RibEvent> {
        self.decide();
        self.events.pop_front()
    }

    /// Everything waiting for the FIB consumer, as one batch; call when it has room.
    pub fn poll_fib(&mut self) -> Option<FibBatch> {
        self.decide();
        self.fib.take()
    }

    // ---- internals ----

    /// Something changed: decide at the next poll, and look for output again.
    fn changed(&mut self) {
        self.dirty = true;
        self.turns.stale = true;
    }

    /// Runs the decision process if anything changed, and moves its best-path changes
    /// towards subscribers and the FIB.
    fn decide(&mut self) {
        if !std::mem::take(&mut self.dirty) {
            return;
        }
        self.rib.process(&self.resolver);
        // The batch and the RIB's queue memory move on together.
        let changes = self.rib.take_fib(usize::MAX);
        if changes.is_empty() {
            return;
        }
        if self.route_events {
            self.events
                .push_back(RibEvent::RouteChanges(changes.clone()));
        }
        if self.config.fib {
            self.fib.push(changes);
        }
    }

    /// Takes the end of recovery from the RIB, if it ended, and tells the FIB (with the
    /// next batch, after everything learned before it). `waiting`: who was still waited
    /// for before the change that ended it, for the log.
    fn recovery_ended(&mut self, waiting: &[String]) {
        let Some(done) = self.rib.poll_recovery_done() else {
            return;
        };
        match done {
            RecoveryDone::Deadline => warn!(
                ?waiting,
                "graceful restart recovery time over before every peer sent End-of-RIB"
            ),
            RecoveryDone::EndOfRib => info!(
                peers = self.recovery_status().complete,
                "graceful restart recovery: every peer sent End-of-RIB"
            ),
        }
        if self.config.fib {
            self.fib.recovery_done();
        }
    }
}
