//! Calico mode: bgpd takes its configuration from Calico's own resources, as calico-node's
//! confd does for BIRD.
//!
//! The crate is sans-IO except for the file source and the etcd client task:
//! - [`resource`]: the Calico v3 kinds that shape BGP, decoded from calicoctl YAML, etcd
//!   values or Kubernetes objects alike;
//! - [`selector`]: Calico's label selector language (`nodeSelector`, `peerSelector`);
//! - [`store`]: the resources known now, fed by [`Update`](store::Update)s;
//! - [`source`]: where resources come from: files ([`source::ResourceSource`]) and
//!   watched datastores (etcd v3: a sans-IO syncer, and its client task behind the cargo
//!   feature `etcd`);
//! - [`derive`]: one node's bgpd configuration from the store, session for session and
//!   filter for filter what confd renders for BIRD;
//! - [`follow`]: one node following a watched datastore: the store kept current, the
//!   derivation redone only as far as each change reaches;
//! - [`render`]: that configuration as TOML (for `bgpd -c`) or fully resolved JSON.
//!
//! `docs/calico.md` maps every Calico field to bgpd and lists what differs.

pub mod derive;
pub mod follow;
pub mod render;
pub mod resource;
pub mod selector;
pub mod source;
pub mod store;
