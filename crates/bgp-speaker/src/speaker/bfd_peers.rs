//! The speaker's side of BFD: telling the BFD task (crate::bfd) which peers want a
//! session after every change of the peers, and reading its sessions back.

use super::{Speaker, SpeakerError, State};
use crate::bfd::{BfdPeer, BfdSession};

impl Speaker {
    /// Hands the BFD task the peers with a `bfd` table that are not disabled, with the
    /// channels of their current peer tasks. A speaker shutting down has no task left
    /// to tell: nothing to do then.
    pub(super) async fn sync_bfd(&self, st: &State) {
        let peers: Vec<BfdPeer> = st
            .peers
            .values()
            .filter(|h| !h.config.disabled)
            .filter_map(|h| {
                let config = h.config.bfd.clone()?;
                Some(BfdPeer {
                    name: h.config.name.clone(),
                    address: h.config.address.clone(),
                    source: h.config.source_address,
                    min_ttl: h.config.min_ttl(),
                    config,
                    cmd: h.cmd.clone(),
                    status: h.shared.clone(),
                })
            })
            .collect();
        let _ = self.inner.bfd.sync(peers).await;
    }

    /// The BFD sessions (`bgpctl show bfd`), by peer name; a peer whose session cannot
    /// run is listed with the reason in [`BfdSession::error`].
    pub async fn bfd_sessions(&self) -> Result<Vec<BfdSession>, SpeakerError> {
        self.inner.bfd.sessions().await.ok_or(SpeakerError::Stopped)
    }
}
