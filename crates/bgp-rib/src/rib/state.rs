//! The [`Rib`] value: one field per owner of state, each in its own module, so that an
//! operation borrows exactly the owners it touches (the export of a prefix reads the
//! peer table while it writes the outbound state and interns in the store) instead of
//! the whole RIB.

use std::net::Ipv4Addr;

use super::clock::Clock;
use super::config::RibConfig;
use super::error::RibError;
use super::fib::FibQueue;
use super::local::LocalRoutes;
use super::outbound::Outbound;
use super::peers::PeerTable;
use super::resolve::NextHopInterfaces;
use super::restart::Restart;
use super::store::Store;
use crate::decision::DecisionConfig;

/// The routing information base. See the crate documentation.
#[derive(Debug)]
pub struct Rib {
    pub(super) cfg: RibConfig,
    /// The decision process's settings, derived from `cfg`.
    pub(super) decision: DecisionConfig,
    /// Configured peers: their facts and sessions.
    pub(super) peers: PeerTable,
    /// Route tables, attribute sets, per-peer prefix logs.
    pub(super) store: Store,
    /// Facts of local routes.
    pub(super) locals: LocalRoutes,
    /// Interfaces of the BGP next hops in use (for policy `interface` conditions).
    pub(super) nh: NextHopInterfaces,
    /// Per-peer Adj-RIB-Out, encode cache, selection-deferral hold.
    pub(super) out: Outbound,
    /// Graceful-restart state of peers' routes and of our own recovery.
    pub(super) restart: Restart,
    /// Best-path changes for the FIB.
    pub(super) fib: FibQueue,
    pub(super) counters: Counters,
    /// The time handed in last, to stamp changed paths.
    pub(super) clock: Clock,
}

/// Work counters (for benchmarks and tests of what a change costs).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Prefixes run through the decision process.
    pub prefixes_decided: u64,
    /// Per-prefix, per-peer export computations (export rules, policy, Adj-RIB-Out diff).
    pub peer_exports: u64,
    /// Slices of a peer's queue whose UPDATEs were copied from the slice encoded just
    /// before (the same changes for the same codec parameters) instead of encoded again.
    pub encodings_shared: u64,
    /// Import policy evaluations of received routes (once per UPDATE and attribute set
    /// when the policy does not look at prefixes).
    pub import_evaluations: u64,
}

impl Rib {
    pub fn new(cfg: RibConfig) -> Rib {
        let decision = DecisionConfig {
            local_as: cfg.local_as,
            always_compare_med: cfg.always_compare_med,
            max_paths: cfg.max_paths.max(1),
        };
        Rib {
            cfg,
            decision,
            peers: PeerTable::default(),
            store: Store::default(),
            locals: LocalRoutes::default(),
            nh: NextHopInterfaces::default(),
            out: Outbound::default(),
            restart: Restart::default(),
            fib: FibQueue::default(),
            counters: Counters::default(),
            clock: Clock::default(),
        }
    }

    pub fn config(&self) -> &RibConfig {
        &self.cfg
    }

    /// Changes our AS and router id (a daemon reconfigured at run time). Every peer's
    /// iBGP/eBGP class, loop checks and exports depend on them, so this is only allowed
    /// while no peer is configured: remove them all, change, add them again. Local routes
    /// stay; nothing in them depends on either value.
    pub fn set_identity(&mut self, local_as: u32, router_id: Ipv4Addr) -> Result<(), RibError> {
        if self.peers.any() {
            return Err(RibError::PeersConfigured);
        }
        self.cfg.local_as = local_as;
        self.cfg.router_id = router_id;
        self.decision.local_as = local_as;
        Ok(())
    }

    /// Work done so far (decisions, per-peer exports).
    pub fn counters(&self) -> Counters {
        Counters {
            encodings_shared: self.out.encodings_shared,
            ..self.counters
        }
    }

    /// Distinct attribute sets currently interned.
    pub fn attribute_sets(&self) -> usize {
        self.store.attrs.len()
    }

    /// Number of prefixes (IPv4, IPv6) with at least one path.
    pub fn prefix_count(&self) -> (usize, usize) {
        (
            self.store.tables.v4.routes.len(),
            self.store.tables.v6.routes.len(),
        )
    }

    /// Number of paths (IPv4, IPv6), every peer's and the local ones. Walks every
    /// destination: for occasional reports (a metrics scrape), not for a hot path.
    pub fn path_count(&self) -> (usize, usize) {
        (
            self.store.tables.v4.routes.values().map(|d| d.len()).sum(),
            self.store.tables.v6.routes.values().map(|d| d.len()).sum(),
        )
    }
}
