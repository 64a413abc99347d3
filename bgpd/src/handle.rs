//! The running daemon's handle, shared by everything that acts on it (the control socket,
//! the file watcher, the metrics endpoint): the speaker, where its configuration comes from,
//! and the reload that reads that source again. Starting the daemon and its servers is
//! the `daemon` module's business; this module spawns nothing.

use std::path::Path;
use std::sync::Arc;

use bgp_speaker::config::{self, ConfigDiff, ConfigError};
use bgp_speaker::{Speaker, SpeakerError};
use tokio::sync::mpsc;

use crate::datastore::DatastoreView;
use crate::reloads::Reloads;

/// Where the running configuration comes from, as the control socket sees it.
#[derive(Clone, Debug)]
pub enum ConfigSource {
    /// The main configuration file.
    File(Arc<Path>),
    /// Calico mode: derived from the datastore.
    Datastore(DatastoreView),
}

/// The speaker and where its configuration comes from, as the control socket and the
/// watcher act on them. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Daemon {
    /// The speaker.
    pub speaker: Speaker,
    /// Its configuration's source.
    pub source: ConfigSource,
    /// Reloads and their results, for the metrics endpoint.
    pub reloads: Arc<Reloads>,
    /// Asks the daemon to stop (`true`: for good), as `bgpctl shutdown` does.
    pub stop: mpsc::UnboundedSender<bool>,
}

/// Why a reload was refused (the running configuration stays in force either way).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The files do not load.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The speaker refused the new configuration.
    #[error(transparent)]
    Speaker(#[from] SpeakerError),
    /// Calico mode before the first complete listing: nothing derived yet.
    #[error("nothing derived from the datastore yet")]
    NotDerived,
}

impl Daemon {
    /// Reads the configuration files again and applies the difference. In Calico mode the
    /// configuration follows the datastore by itself: the last derived one is applied
    /// again (what an operator's reload can mean there; normally an empty difference).
    pub async fn reload(&self) -> Result<ConfigDiff, ReloadError> {
        let result = self.reload_now().await;
        self.reloads.record(result.is_ok());
        result
    }

    async fn reload_now(&self) -> Result<ConfigDiff, ReloadError> {
        let cfg = match &self.source {
            ConfigSource::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || config::load(&path))
                    .await
                    .map_err(|_| SpeakerError::Stopped)??
            }
            ConfigSource::Datastore(view) => view.config().ok_or(ReloadError::NotDerived)?,
        };
        Ok(self.speaker.apply_config(cfg).await?)
    }

    /// The configuration file, when the configuration comes from one.
    pub fn config_file(&self) -> Option<&Path> {
        match &self.source {
            ConfigSource::File(p) => Some(p),
            ConfigSource::Datastore(_) => None,
        }
    }

    /// The datastore, in Calico mode.
    pub fn datastore(&self) -> Option<&DatastoreView> {
        match &self.source {
            ConfigSource::File(_) => None,
            ConfigSource::Datastore(v) => Some(v),
        }
    }
}
