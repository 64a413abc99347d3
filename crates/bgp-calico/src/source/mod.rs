//! Where resources come from. Every datastore gives a complete, consistent set of
//! resources first and, when it can be watched, the changes after it:
//!
//! - [`ResourceSource`]: a one-shot listing, loaded into a
//!   [`ResourceStore`](crate::store::ResourceStore) (the file source, [`file::FileSource`]:
//!   calicoctl-style YAML for `bgpd calico render`, tests and offline use);
//! - a watched source sends [`SyncEvent`]s: one batch of
//!   [`Update`](crate::store::Update)s holding every resource, [`SyncState::InSync`], then a
//!   batch per change. A lost history (a compacted revision) becomes a fresh listing that
//!   is delivered as the difference, so a consumer only ever applies diffs. [`sync`] is
//!   that logic without I/O; [`etcd`] the etcd v3 datastore (its client task behind the
//!   cargo feature `etcd`); [`status`] what a source says about itself.
//!   The Kubernetes API fits the same shape (list, then watch from a resourceVersion;
//!   410 Gone is the compaction case).
//!
//! The store and the derivation do not care which source fed them.

pub mod etcd;
pub mod file;
pub mod status;
pub mod sync;

pub use status::DatastoreStatus;
pub use sync::{SyncEvent, SyncState};

use std::path::PathBuf;

use crate::resource::Resource;

/// A complete listing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    /// The resources bgpd reads.
    pub resources: Vec<Resource>,
    /// Documents of other kinds, left aside (shown by `bgpd calico render --verbose`).
    pub ignored: Vec<Ignored>,
    /// The datastore revision the listing reflects, when the datastore has one (watches
    /// resume from it).
    pub revision: Option<i64>,
}

/// A document of a kind bgpd does not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// Where it was (file and document number, or a datastore key).
    pub origin: String,
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// Why a source could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A document could not be parsed or decoded.
    #[error("{origin}: {message}")]
    Invalid {
        /// File and document number, or key.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// A datastore bgpd derives its configuration from.
pub trait ResourceSource {
    /// What it reads (paths, endpoints), for logs and errors.
    fn describe(&self) -> String;
    /// Lists every resource.
    fn list(&mut self) -> Result<Listing, SourceError>;
}
