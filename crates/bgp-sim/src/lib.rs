//! Deterministic in-memory simulation of whole BGP clusters over the sans-IO core and the
//! RIB.
//!
//! Many speakers, each the node layer's drivers ([`bgp_node::RibDriver`] over a
//! [`bgp_rib::Rib`], a [`bgp_node::PeerDriver`] per neighbour over
//! [`bgp_proto::session::Session`]s, the same code the daemon runs), are wired together
//! through an in-memory network and a virtual clock: no sockets, no tokio, no wall
//! clock. Every random choice (link latency, segment boundaries, start offsets) comes
//! from one seeded generator, so a run is a pure function of its [`Topology`] and
//! [`SimConfig`]: a failing seed reproduces exactly. This is `quinn-proto`'s
//! two-endpoint test `Pair` grown to cluster scale; the drivers, sessions and RIBs are
//! the production code, driven the way the daemon drives them (handle, then drain the
//! polls).
//!
//! * [`topology`]: nodes, sessions, the full-mesh and route-reflector layouts.
//! * [`config`]: seed, link behaviour, timers, graceful restart, virtual cost of RIB work,
//!   IPv6-only sessions carrying IPv4 routes (RFC 8950, [`SimConfig::with_extended_next_hop`]),
//!   colliding connections, output slice and queue sizes, prefix limits.
//! * [`sim`]: the event loop, in-memory TCP, crash and restart, partitions, convergence
//!   detection.
//! * [`snapshot`]: Loc-RIB views for assertions and run-to-run comparison.
//!
//! ```
//! use std::time::Duration;
//! use bgp_sim::{NodeId, Sim, SimConfig, Topology};
//!
//! let mut sim = Sim::new(Topology::full_mesh(4), SimConfig::new(42)).unwrap();
//! let done = sim.run_until_converged(Duration::from_secs(60)).unwrap();
//! assert!(done.at < Duration::from_secs(1));
//! let rib = sim.loc_rib(NodeId(0)).unwrap();
//! assert_eq!(rib.len(), 4); // its own block and the three others
//! assert_eq!(rib[1].next_hop, Some(Topology::node_address(1).into()));
//! ```

#![forbid(unsafe_code)]

pub mod config;
mod error;
mod node;
mod queue;
mod rng;
pub mod sim;
pub mod snapshot;
pub mod topology;

pub use bgp_node::{MaxPrefixAction, MaxPrefixes, PeerStatus};
pub use config::{CpuModel, GracefulRestartConfig, LinkConfig, SimConfig};
pub use rng::Rng;
pub use sim::{Convergence, FibRemoval, SessionDown, Sim, SimError, Stats};
pub use snapshot::LocRibEntry;
pub use topology::{
    NodeId, NodeSpec, SessionKind, SessionSpec, Topology, TopologyError, CLUSTER_AS,
};
