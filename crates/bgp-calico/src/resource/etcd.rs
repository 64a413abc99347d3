//! The etcd v3 datastore's key layout (what calico-node's syncer lists and watches), as
//! pure functions from a key and its value to a [`Resource`], so an etcd source only moves
//! bytes.
//!
//! - Resources: `/calico/resources/v3/projectcalico.org/<plural>/<name>` (namespaced kinds
//!   add `/<namespace>` before the name), the value being the resource's JSON.
//! - Block affinities: `/calico/ipam/v2/host/<node>/ipv4/block/<cidr with "/" as "-">` (and
//!   `ipv6`), the value `{"state": "confirmed", "deleted": false}`.

use serde_json::Value;

use super::{
    affinity_name, decode, BlockAffinitySpec, DecodeError, Decoded, Kind, Metadata, Object,
    Resource, ResourceKey,
};

/// Prefix of Calico's v3 resources.
pub const RESOURCES_PREFIX: &str = "/calico/resources/v3/projectcalico.org/";
/// Prefix of IPAM block affinities (per host).
pub const AFFINITY_PREFIX: &str = "/calico/ipam/v2/host/";

/// The plural path segment of a kind stored under [`RESOURCES_PREFIX`].
pub fn plural(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::BgpConfiguration => "bgpconfigurations",
        Kind::Node => "nodes",
        Kind::BgpPeer => "bgppeers",
        Kind::IpPool => "ippools",
        Kind::BgpFilter => "bgpfilters",
        Kind::BlockAffinity | Kind::Secret => return None,
    })
}

/// The resource a key names, if it is one bgpd reads.
pub fn parse_key(key: &str) -> Option<ResourceKey> {
    if let Some(rest) = key.strip_prefix(RESOURCES_PREFIX) {
        let mut parts = rest.split('/');
        let plural_s = parts.next()?;
        let kind = Kind::ALL
            .into_iter()
            .find(|k| plural(*k) == Some(plural_s))?;
        let name = parts.next()?;
        if parts.next().is_some() || name.is_empty() {
            return None;
        }
        return Some(ResourceKey {
            kind,
            namespace: None,
            name: name.to_owned(),
        });
    }
    let (node, cidr) = parse_affinity_key(key)?;
    Some(ResourceKey {
        kind: Kind::BlockAffinity,
        namespace: None,
        name: affinity_name(&node, &cidr),
    })
}

/// `(node, cidr)` of a block affinity key.
fn parse_affinity_key(key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix(AFFINITY_PREFIX)?;
    let mut parts = rest.split('/');
    let node = parts.next()?;
    let family = parts.next()?;
    let block = parts.next()?;
    let cidr = parts.next()?;
    if parts.next().is_some() || node.is_empty() || block != "block" {
        return None;
    }
    if family != "ipv4" && family != "ipv6" {
        return None;
    }
    // Only the last "-" separates the prefix length ("fd00:1::-122" has none before).
    let (addr, len) = cidr.rsplit_once('-')?;
    Some((node.to_owned(), format!("{addr}/{len}")))
}

/// The key a resource is stored under (`None` for Secrets, which live in Kubernetes).
pub fn key_for(r: &Resource) -> Option<String> {
    match r {
        Resource::BlockAffinity(o) => {
            let family = if o.spec.cidr.contains(':') {
                "ipv6"
            } else {
                "ipv4"
            };
            Some(format!(
                "{AFFINITY_PREFIX}{}/{family}/block/{}",
                o.spec.node,
                o.spec.cidr.replacen('/', "-", 1)
            ))
        }
        _ => Some(format!(
            "{RESOURCES_PREFIX}{}/{}",
            plural(r.kind())?,
            r.metadata().name
        )),
    }
}

/// Decodes a key and its value. `Ok(None)`: not a key bgpd reads.
pub fn decode_kv(key: &str, value: &[u8]) -> Result<Option<Resource>, DecodeError> {
    let err = |message: String| DecodeError {
        what: key.to_owned(),
        message,
    };
    let Some(rk) = parse_key(key) else {
        return Ok(None);
    };
    let json: Value = serde_json::from_slice(value).map_err(|e| err(e.to_string()))?;
    if rk.kind == Kind::BlockAffinity {
        let Some((node, cidr)) = parse_affinity_key(key) else {
            return Ok(None);
        };
        let mut spec: BlockAffinitySpec =
            serde_json::from_value(json).map_err(|e| err(e.to_string()))?;
        spec.node = node;
        spec.cidr = cidr;
        return Ok(Some(Resource::BlockAffinity(Object {
            metadata: Metadata::default(),
            spec,
        })));
    }
    match decode(json)? {
        Decoded::Resources(mut r) if r.len() == 1 => {
            let res = r.remove(0);
            if res.kind() != rk.kind || res.metadata().name != rk.name {
                return Err(err(format!(
                    "the value is {} {}, not what the key names",
                    res.kind(),
                    res.metadata().name
                )));
            }
            Ok(Some(res))
        }
        _ => Err(err(format!("the value is not a {}", rk.kind))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_keys_round_trip() {
        let v = br#"{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3",
            "metadata":{"name":"p1"},"spec":{"peerIP":"10.0.0.9","asNumber":65001}}"#;
        let key = "/calico/resources/v3/projectcalico.org/bgppeers/p1";
        let r = decode_kv(key, v).unwrap().unwrap();
        assert_eq!(r.kind(), Kind::BgpPeer);
        assert_eq!(key_for(&r).as_deref(), Some(key));
        assert_eq!(parse_key(key), Some(r.key()));
        assert!(decode_kv("/calico/resources/v3/projectcalico.org/bgppeers/other", v).is_err());
        assert_eq!(
            decode_kv("/calico/felix/v2/x", b"{}").unwrap(),
            None,
            "unrelated keys are not ours"
        );
    }

    #[test]
    fn affinity_keys() {
        let key = "/calico/ipam/v2/host/kube-master/ipv4/block/192.168.221.64-26";
        let r = decode_kv(key, br#"{"state":"confirmed","deleted":false}"#)
            .unwrap()
            .unwrap();
        let Resource::BlockAffinity(a) = &r else {
            panic!("not an affinity")
        };
        assert_eq!(a.spec.node, "kube-master");
        assert_eq!(a.spec.cidr, "192.168.221.64/26");
        assert_eq!(a.spec.state, "confirmed");
        assert_eq!(key_for(&r).as_deref(), Some(key));
        let v6 = "/calico/ipam/v2/host/n/ipv6/block/fd00:1::-122";
        let r6 = decode_kv(v6, br#"{"state":""}"#).unwrap().unwrap();
        assert_eq!(r6.key().name, "n:fd00:1::/122");
        assert_eq!(key_for(&r6).as_deref(), Some(v6));
        assert_eq!(parse_key("/calico/ipam/v2/host/n/ipv5/block/x-1"), None);
    }
}
