//! Where resources come from: every datastore is a [`ResourceSource`] that lists a complete,
//! consistent set of resources, which the caller loads into a
//! [`ResourceStore`](crate::store::ResourceStore).
//!
//! The file source ([`file::FileSource`]) reads calicoctl-style YAML for `bgpd calico render`,
//! tests and offline use. A datastore that can be watched (etcd v3, the Kubernetes API) lists
//! the same way and then delivers [`Update`](crate::store::Update)s from the revision of its
//! listing on; the store and the derivation do not care which source fed them.

pub mod file;

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
