//! The monitoring feeds: BMP stations (`[[bmp]]`, bmp.rs) and MRT files (`[mrt]`,
//! mrt.rs), fed by a tap on the peers' sessions (tap.rs) and by questions to the RIB
//! (rib.rs).
//!
//! [`Feeds`] keeps what runs: one task per BMP station and at most one task each for the
//! periodic table dumps and the update log. A reload compares the configured feeds with
//! the running ones and stops, starts or restarts only those that changed; BGP sessions
//! are never touched. Every feed task ends with the speaker (its cancellation token is a
//! child of the speaker's).

use std::collections::BTreeMap;

use tokio_util::sync::CancellationToken;

use crate::config::{BmpConfig, MrtConfig};

pub(crate) mod bmp;
pub(crate) mod mrt;
pub(crate) mod rib;
pub(crate) mod tap;

pub use mrt::TableDumpSummary;

/// The feeds running, with the configuration each was started with.
#[derive(Debug, Default)]
pub(crate) struct Feeds {
    pub stations: BTreeMap<String, (BmpConfig, CancellationToken)>,
    pub mrt: Option<(MrtConfig, CancellationToken)>,
}

impl Feeds {
    /// Stops every station not configured as it runs in `bmp`; returns the configured
    /// ones to start.
    pub(crate) fn reconcile_bmp(&mut self, bmp: &[BmpConfig]) -> Vec<BmpConfig> {
        self.stations.retain(|_, (running, cancel)| {
            let keep = bmp.contains(running);
            if !keep {
                cancel.cancel();
            }
            keep
        });
        bmp.iter()
            .filter(|b| !self.stations.contains_key(&b.name))
            .cloned()
            .collect()
    }

    /// Stops the MRT feeds unless configured as they run; returns the configuration to
    /// start, if any.
    pub(crate) fn reconcile_mrt(&mut self, mrt: Option<&MrtConfig>) -> Option<MrtConfig> {
        if self.mrt.as_ref().map(|(c, _)| c) == mrt {
            return None;
        }
        if let Some((_, cancel)) = self.mrt.take() {
            cancel.cancel();
        }
        mrt.cloned()
    }
}
