//! Calico's resources as bgpd reads them: the `projectcalico.org/v3` kinds that shape BGP
//! (`BGPConfiguration`, `Node`, `BGPPeer`, `IPPool`, `BGPFilter`), IPAM block affinities
//! and the Kubernetes `Secret`s BGP passwords live in.
//!
//! Every datastore hands over the same JSON objects (`{kind, apiVersion, metadata, spec}`):
//! calicoctl's YAML files, etcd's values (see [`etcd`] for its key layout) and the
//! Kubernetes API. [`decode`] turns one such object into typed [`Resource`]s; kinds that do
//! not affect BGP (policies, profiles, workload endpoints, ...) come back as
//! [`Decoded::Ignored`] so a full `calicoctl get -o yaml` dump can be fed in whole.

pub mod etcd;
pub mod spec;
pub mod values;

use std::fmt;

use serde_json::Value;

pub use spec::{
    BgpConfigurationSpec, BgpFilterSpec, BgpPeerSpec, BlockAffinitySpec, FilterRule, IpPoolSpec,
    Metadata, NodeSpec, SecretData,
};
pub use values::{AsNumber, Duration};

/// Calico's API group and version.
pub const API_VERSION: &str = "projectcalico.org/v3";
/// The CRD group the Kubernetes datastore stores the same kinds under.
pub const CRD_API_VERSION: &str = "crd.projectcalico.org/v1";

/// The kinds bgpd reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `BGPConfiguration`.
    BgpConfiguration,
    /// `Node`.
    Node,
    /// `BGPPeer`.
    BgpPeer,
    /// `IPPool`.
    IpPool,
    /// `BGPFilter`.
    BgpFilter,
    /// `BlockAffinity` (IPAM).
    BlockAffinity,
    /// Kubernetes `Secret`.
    Secret,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 7] = [
        Kind::BgpConfiguration,
        Kind::Node,
        Kind::BgpPeer,
        Kind::IpPool,
        Kind::BgpFilter,
        Kind::BlockAffinity,
        Kind::Secret,
    ];

    /// The API's `kind` string.
    pub fn api_name(self) -> &'static str {
        match self {
            Kind::BgpConfiguration => "BGPConfiguration",
            Kind::Node => "Node",
            Kind::BgpPeer => "BGPPeer",
            Kind::IpPool => "IPPool",
            Kind::BgpFilter => "BGPFilter",
            Kind::BlockAffinity => "BlockAffinity",
            Kind::Secret => "Secret",
        }
    }

    fn from_api_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.api_name() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_name())
    }
}

/// Identity of a resource in a datastore.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// Its kind.
    pub kind: Kind,
    /// Namespace of namespaced kinds (Secrets), else `None`.
    pub namespace: Option<String>,
    /// Its name. Block affinities are named `NODE:CIDR`, whatever the datastore calls them,
    /// so every source names one affinity alike.
    pub name: String,
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A resource's metadata and spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Object<S> {
    /// Name, namespace, labels.
    pub metadata: Metadata,
    /// The kind's settings.
    pub spec: S,
}

/// One resource.
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    /// `BGPConfiguration`.
    BgpConfiguration(Object<BgpConfigurationSpec>),
    /// `Node`.
    Node(Object<NodeSpec>),
    /// `BGPPeer`.
    BgpPeer(Object<BgpPeerSpec>),
    /// `IPPool`.
    IpPool(Object<IpPoolSpec>),
    /// `BGPFilter`.
    BgpFilter(Object<BgpFilterSpec>),
    /// An IPAM block affinity.
    BlockAffinity(Object<BlockAffinitySpec>),
    /// A Kubernetes Secret.
    Secret(Object<SecretData>),
}

impl Resource {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Resource::BgpConfiguration(_) => Kind::BgpConfiguration,
            Resource::Node(_) => Kind::Node,
            Resource::BgpPeer(_) => Kind::BgpPeer,
            Resource::IpPool(_) => Kind::IpPool,
            Resource::BgpFilter(_) => Kind::BgpFilter,
            Resource::BlockAffinity(_) => Kind::BlockAffinity,
            Resource::Secret(_) => Kind::Secret,
        }
    }

    /// Its metadata.
    pub fn metadata(&self) -> &Metadata {
        match self {
            Resource::BgpConfiguration(o) => &o.metadata,
            Resource::Node(o) => &o.metadata,
            Resource::BgpPeer(o) => &o.metadata,
            Resource::IpPool(o) => &o.metadata,
            Resource::BgpFilter(o) => &o.metadata,
            Resource::BlockAffinity(o) => &o.metadata,
            Resource::Secret(o) => &o.metadata,
        }
    }

    /// Its identity.
    pub fn key(&self) -> ResourceKey {
        let m = self.metadata();
        let name = match self {
            Resource::BlockAffinity(o) => affinity_name(&o.spec.node, &o.spec.cidr),
            _ => m.name.clone(),
        };
        ResourceKey {
            kind: self.kind(),
            namespace: match self {
                Resource::Secret(_) => Some(m.namespace.clone().unwrap_or_default()),
                _ => None,
            },
            name,
        }
    }
}

/// The store name of a block affinity.
pub fn affinity_name(node: &str, cidr: &str) -> String {
    format!("{node}:{cidr}")
}

/// What one JSON/YAML document holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// Resources bgpd reads (a `List` gives several).
    Resources(Vec<Resource>),
    /// A kind that does not affect BGP, left aside.
    Ignored {
        /// Its `apiVersion`.
        api_version: String,
        /// Its `kind`.
        kind: String,
        /// Its name, when it has one.
        name: String,
    },
}

/// Why a document could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct DecodeError {
    /// `Kind name` of the offending object (or "document").
    pub what: String,
    /// What is wrong.
    pub message: String,
}

fn str_field<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Decodes one object (`{kind, apiVersion, metadata, spec}`), or a `List` of them.
pub fn decode(doc: Value) -> Result<Decoded, DecodeError> {
    let kind_s = str_field(&doc, "kind").to_owned();
    let api_version = str_field(&doc, "apiVersion").to_owned();
    let name = doc
        .get("metadata")
        .map(|m| str_field(m, "name").to_owned())
        .unwrap_or_default();
    let what = if name.is_empty() {
        kind_s.clone()
    } else {
        format!("{kind_s} {name}")
    };
    let err = |message: String| DecodeError {
        what: if what.is_empty() {
            "document".to_owned()
        } else {
            what.clone()
        },
        message,
    };
    if kind_s.is_empty() {
        return Err(err("no kind".into()));
    }
    if kind_s == "List" || (kind_s.ends_with("List") && doc.get("items").is_some()) {
        let items = match doc.get("items") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(err("items is not a list".into())),
        };
        let mut out = Vec::new();
        for item in items {
            if let Decoded::Resources(r) = decode(item)? {
                out.extend(r);
            }
        }
        return Ok(Decoded::Resources(out));
    }
    let Some(kind) = Kind::from_api_name(&kind_s) else {
        return Ok(Decoded::Ignored {
            api_version,
            kind: kind_s,
            name,
        });
    };
    if api_version.is_empty() {
        return Err(err("no apiVersion".into()));
    }
    let calico_api = api_version == API_VERSION || api_version == CRD_API_VERSION;
    let ours = match kind {
        Kind::Secret => api_version == "v1",
        // A Kubernetes v1 Node is the node object itself, not Calico's view of it.
        _ => calico_api,
    };
    if !ours {
        return Ok(Decoded::Ignored {
            api_version,
            kind: kind_s,
            name,
        });
    }
    let metadata: Metadata = match doc.get("metadata") {
        Some(m) => serde_json::from_value(m.clone()).map_err(|e| err(format!("metadata: {e}")))?,
        None => return Err(err("no metadata".into())),
    };
    if metadata.name.is_empty() && kind != Kind::BlockAffinity {
        return Err(err("metadata.name is empty".into()));
    }
    // A Secret keeps its data at the top level; every other kind in `spec`.
    let body = match kind {
        Kind::Secret => doc.clone(),
        _ => match doc.get("spec") {
            Some(Value::Null) | None => Value::Object(Default::default()),
            Some(s) => s.clone(),
        },
    };
    fn spec<S: serde::de::DeserializeOwned>(
        body: Value,
        err: &dyn Fn(String) -> DecodeError,
    ) -> Result<S, DecodeError> {
        serde_json::from_value(body).map_err(|e| err(format!("spec: {e}")))
    }
    let r = match kind {
        Kind::BgpConfiguration => Resource::BgpConfiguration(Object {
            metadata,
            spec: spec(body, &err)?,
        }),
        Kind::Node => Resource::Node(Object {
            metadata,
            spec: spec(body, &err)?,
        }),
        Kind::BgpPeer => Resource::BgpPeer(Object {
            metadata,
            spec: spec(body, &err)?,
        }),
        Kind::IpPool => Resource::IpPool(Object {
            metadata,
            spec: spec(body, &err)?,
        }),
        Kind::BgpFilter => Resource::BgpFilter(Object {
            metadata,
            spec: spec(body, &err)?,
        }),
        Kind::BlockAffinity => {
            let s: BlockAffinitySpec = spec(body, &err)?;
            if s.node.is_empty() || s.cidr.is_empty() {
                return Err(err("a block affinity needs spec.node and spec.cidr".into()));
            }
            Resource::BlockAffinity(Object { metadata, spec: s })
        }
        Kind::Secret => Resource::Secret(Object {
            metadata,
            spec: spec(body, &err)?,
        }),
    };
    Ok(Decoded::Resources(vec![r]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_kinds_lists_and_ignores_others() {
        let d = decode(json!({
            "kind": "NodeList", "apiVersion": "projectcalico.org/v3",
            "items": [
                {"kind": "Node", "apiVersion": "projectcalico.org/v3",
                 "metadata": {"name": "a", "labels": {"x": "v", "rr": true, "yes": "yes", "n": 1}},
                 "spec": {"bgp": {"ipv4Address": "10.0.0.1/24", "asNumber": "65001"}}},
                {"kind": "GlobalNetworkPolicy", "apiVersion": "projectcalico.org/v3",
                 "metadata": {"name": "p"}}
            ]
        }))
        .unwrap();
        let Decoded::Resources(r) = d else {
            panic!("not resources")
        };
        assert_eq!(r.len(), 1);
        let Resource::Node(n) = &r[0] else {
            panic!("not a node")
        };
        let label = |k: &str| n.metadata.labels.get(k).map(String::as_str);
        assert_eq!(label("x"), Some("v"));
        // Booleans and numbers as text, as Kubernetes reads them into string fields; words
        // verbatim (YAML 1.1's `yes` is the YAML reader's business).
        assert_eq!(label("rr"), Some("true"));
        assert_eq!(label("yes"), Some("yes"));
        assert_eq!(label("n"), Some("1"));
        assert_eq!(
            n.spec.bgp.as_ref().and_then(|b| b.as_number),
            Some(AsNumber(65001))
        );
        assert!(matches!(
            decode(json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "s"}}))
                .unwrap(),
            Decoded::Ignored { .. }
        ));
        assert!(matches!(
            decode(json!({"kind": "Node", "apiVersion": "v1", "metadata": {"name": "k"}})).unwrap(),
            Decoded::Ignored { .. }
        ));
    }

    #[test]
    fn errors_name_the_object() {
        let e = decode(
            json!({"kind": "BGPPeer", "apiVersion": "projectcalico.org/v3",
            "metadata": {"name": "p"}, "spec": {"asNumber": "abc"}}),
        )
        .unwrap_err();
        assert_eq!(e.what, "BGPPeer p");
        assert!(e.message.contains("AS number"), "{e}");
        assert!(decode(json!({"apiVersion": "v1"})).is_err());
        assert!(decode(
            json!({"kind": "IPPool", "apiVersion": "projectcalico.org/v3",
            "metadata": {}})
        )
        .is_err());
    }

    #[test]
    fn keys() {
        let Decoded::Resources(r) = decode(json!({"kind": "BlockAffinity",
            "apiVersion": "projectcalico.org/v3", "metadata": {"name": "whatever"},
            "spec": {"node": "n1", "cidr": "10.0.0.0/26", "state": "confirmed"}}))
        .unwrap() else {
            panic!()
        };
        assert_eq!(r[0].key().name, "n1:10.0.0.0/26");
        let Decoded::Resources(s) = decode(json!({"kind": "Secret", "apiVersion": "v1",
            "metadata": {"name": "pw", "namespace": "kube-system"},
            "stringData": {"a": "b"}}))
        .unwrap() else {
            panic!()
        };
        assert_eq!(s[0].key().namespace.as_deref(), Some("kube-system"));
        assert_eq!(s[0].key().to_string(), "Secret kube-system/pw");
    }
}
