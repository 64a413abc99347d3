//! Calico mode: bgpd takes its configuration from Calico's own resources, as calico-node's
//! confd does for BIRD.
//!
//! The crate is sans-IO except for the file source:
//! - [`resource`]: the Calico v3 kinds that shape BGP, decoded from calicoctl YAML, etcd
//!   values or Kubernetes objects alike;
//! - [`selector`]: Calico's label selector language (`nodeSelector`, `peerSelector`);
//! - [`store`]: the resources known now, fed by [`Update`](store::Update)s;
//! - [`source`]: where resources come from ([`source::ResourceSource`]; files today);
//! - [`derive`]: one node's bgpd configuration from the store, session for session and
//!   filter for filter what confd renders for BIRD;
//! - [`render`]: that configuration as TOML (for `bgpd -c`) or fully resolved JSON.
//!
//! `docs/calico.md` maps every Calico field to bgpd and lists what differs.

pub mod derive;
pub mod render;
pub mod resource;
pub mod selector;
pub mod source;
pub mod store;
