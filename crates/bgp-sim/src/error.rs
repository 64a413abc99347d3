//! Why a simulation could not be set up or did not converge: one error type for the
//! simulator and the nodes it runs, kept apart so that neither depends on the other for it.

use std::time::Duration;

use bgp_rib::RibError;

use crate::topology::{NodeId, TopologyError};

/// Why a simulation could not be set up or did not converge.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid topology: {0}")]
    Topology(#[from] TopologyError),
    #[error("building a node's RIB: {0}")]
    Rib(#[from] RibError),
    #[error("{0} does not exist")]
    UnknownNode(NodeId),
    #[error("{0} is not running")]
    NodeDown(NodeId),
    #[error("{0} is already running")]
    NodeUp(NodeId),
    #[error("not converged after {waited:?} of virtual time (now {now:?}): {why}")]
    NotConverged {
        now: Duration,
        waited: Duration,
        why: String,
    },
}
