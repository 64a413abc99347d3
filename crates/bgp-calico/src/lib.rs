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
//!
//! Three nodes and the default full mesh: node-1's sessions, as confd would render them
//! for its BIRD:
//!
//! ```
//! use bgp_calico::derive::{derive, NodeEnv};
//! use bgp_calico::resource::{decode, Decoded};
//! use bgp_calico::store::ResourceStore;
//!
//! let node = |name: &str, ip: &str| serde_json::json!({
//!     "apiVersion": "projectcalico.org/v3", "kind": "Node",
//!     "metadata": { "name": name },
//!     "spec": { "bgp": { "ipv4Address": ip } },
//! });
//! let mut resources = Vec::new();
//! for doc in [node("node-1", "10.0.0.1/24"), node("node-2", "10.0.0.2/24"), node("node-3", "10.0.0.3/24")] {
//!     match decode(doc).unwrap() {
//!         Decoded::Resources(r) => resources.extend(r),
//!         other => panic!("not a BGP resource: {other:?}"),
//!     }
//! }
//! let store = ResourceStore::from_resources(resources);
//! let bgp = derive(&store, &NodeEnv::new("node-1")).unwrap();
//! assert_eq!(bgp.asn, 64512); // Calico's default AS
//! let names: Vec<&str> = bgp.peerings.iter().map(|p| p.name.as_str()).collect();
//! assert_eq!(names, ["Mesh_10_0_0_2", "Mesh_10_0_0_3"]);
//! ```

pub mod derive;
pub mod follow;
pub mod render;
pub mod resource;
pub mod selector;
pub mod source;
pub mod store;
