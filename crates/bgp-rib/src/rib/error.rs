//! Errors of RIB operations.

use super::config::PeerId;

/// Errors of RIB operations. None of them is caused by route contents; they report API
/// misuse (unknown or down peer, bad local route) and encoder failures.
#[derive(Debug, thiserror::Error)]
pub enum RibError {
    #[error("unknown peer {0:?}")]
    UnknownPeer(PeerId),
    #[error("peer {0:?} is not established")]
    PeerDown(PeerId),
    #[error("too many peers")]
    TooManyPeers,
    #[error("local routes must have source static, kernel or connected")]
    BadLocalSource,
    #[error("encoding updates: {0}")]
    Encode(#[from] bgp_proto::wire::EncodeError),
    #[error("our AS or router id can only change while no peer is configured")]
    PeersConfigured,
}
