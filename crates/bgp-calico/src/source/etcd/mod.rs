//! Calico's etcd v3 datastore: [`config`] says where it is and which keys bgpd reads
//! (always built, so a configuration can be checked anywhere); [`watch`] (cargo feature
//! `etcd`) is the client task that lists and watches them, feeding a
//! [`Syncer`](super::sync::Syncer).
//!
//! The key layout itself (keys and values to resources) is
//! [`crate::resource::etcd`].

pub mod config;
#[cfg(feature = "etcd")]
pub mod watch;

pub use config::{DatastoreFile, EtcdConfig, EtcdConfigError, TlsFiles};
#[cfg(feature = "etcd")]
pub use watch::EtcdSource;
