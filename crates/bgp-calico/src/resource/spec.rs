//! The specs of the resources bgpd reads, with the JSON field names of Calico's
//! `projectcalico.org/v3` API (and Kubernetes' `v1` Secret).
//!
//! Only the fields that shape BGP are modelled; other fields are accepted and ignored, so
//! a resource written for a newer Calico still decodes. Every field is optional as in the
//! API, and defaults are applied by the derivation, not here, so "unset" stays visible.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::values::{AsNumber, Duration};

/// `metadata` of every resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The resource's name.
    #[serde(default)]
    pub name: String,
    /// Namespace of namespaced kinds (Secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels, which selectors match. Boolean and number values are taken as their text,
    /// as Kubernetes' decoding does for string fields (YAML 1.1 words like `yes` are the
    /// YAML reader's business: [`crate::source::file`]).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "scalar_strings"
    )]
    pub labels: BTreeMap<String, String>,
}

fn scalar_strings<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    m.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            serde_json::Value::Bool(b) => Ok((k, b.to_string())),
            serde_json::Value::Number(n) => Ok((k, n.to_string())),
            serde_json::Value::Null => Ok((k, String::new())),
            other => Err(serde::de::Error::custom(format!(
                "label {k}: {other} is not a string"
            ))),
        })
        .collect()
}

/// A `{ secretKeyRef: { name, key } }` password reference.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordRef {
    /// The Secret and key holding the password.
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// A key of a Secret in calico-node's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretKeyRef {
    /// Secret name.
    #[serde(default)]
    pub name: String,
    /// Key inside the Secret's data.
    #[serde(default)]
    pub key: String,
}

/// `{ cidr }` entries of the service advertisement lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CidrEntry {
    /// The CIDR; empty entries are allowed by the API and ignored.
    #[serde(default)]
    pub cidr: String,
}

/// A named community (`communities: [{ name, value }]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCommunity {
    /// Name used in `prefixAdvertisements`.
    #[serde(default)]
    pub name: String,
    /// `"AA:NN"` or `"AA:NN:MM"`.
    #[serde(default)]
    pub value: String,
}

/// `prefixAdvertisements: [{ cidr, communities }]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixAdvertisement {
    /// Routes inside this CIDR get the communities.
    #[serde(default)]
    pub cidr: String,
    /// Community values or names of `communities` entries.
    #[serde(default)]
    pub communities: Vec<String>,
}

/// `BGPConfiguration` (`default` for the cluster, `node.<name>` for one node).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpConfigurationSpec {
    /// BIRD's log level (`Debug`, `Info`, anything else is none).
    pub log_severity_screen: Option<String>,
    /// The node-to-node mesh (default on).
    pub node_to_node_mesh_enabled: Option<bool>,
    /// The cluster's AS (default 64512).
    pub as_number: Option<AsNumber>,
    /// Service LoadBalancer ranges to advertise.
    #[serde(default, rename = "serviceLoadBalancerIPs")]
    pub service_load_balancer_ips: Vec<CidrEntry>,
    /// Service external IP ranges to advertise.
    #[serde(default, rename = "serviceExternalIPs")]
    pub service_external_ips: Vec<CidrEntry>,
    /// Service cluster IP ranges to advertise.
    #[serde(default, rename = "serviceClusterIPs")]
    pub service_cluster_ips: Vec<CidrEntry>,
    /// `Enabled` (default): advertise LoadBalancer ranges whole.
    pub service_load_balancer_aggregation: Option<String>,
    /// Named communities.
    #[serde(default)]
    pub communities: Vec<NamedCommunity>,
    /// Communities to add to routes by CIDR (a node's list, even empty, replaces the
    /// default one).
    pub prefix_advertisements: Option<Vec<PrefixAdvertisement>>,
    /// BGP port (default 179).
    pub listen_port: Option<u16>,
    /// Password of the node-to-node mesh sessions.
    pub node_mesh_password: Option<PasswordRef>,
    /// Graceful restart time of mesh sessions.
    pub node_mesh_max_restart_time: Option<Duration>,
    /// `None` (listen on every address) or `NodeIP`.
    pub bind_mode: Option<String>,
    /// Interfaces whose addresses BIRD must not import.
    #[serde(default)]
    pub ignored_interfaces: Vec<String>,
    /// Which component programs cluster routes: `Enabled`, `Disabled`, `EnabledIPIPOnly`,
    /// `EnabledNoEncapOnly` (default).
    pub program_cluster_routes: Option<String>,
    /// Kernel metric of normal routes (default 1024).
    pub ipv4_normal_route_priority: Option<i64>,
    /// Kernel metric of normal IPv6 routes (default 1024).
    pub ipv6_normal_route_priority: Option<i64>,
}

/// `spec.bgp` of a Node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeBgpSpec {
    /// `IP/prefix` (the prefix gives the node's subnet).
    pub ipv4_address: Option<String>,
    /// `IP/prefix` for IPv6.
    pub ipv6_address: Option<String>,
    /// The node's own AS.
    pub as_number: Option<AsNumber>,
    /// Set: this node is a route reflector of this cluster.
    #[serde(rename = "routeReflectorClusterID")]
    pub route_reflector_cluster_id: Option<String>,
}

/// `spec.wireguard` of a Node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeWireguardSpec {
    /// The node's WireGuard IPv4 address.
    #[serde(rename = "interfaceIPv4Address")]
    pub interface_ipv4_address: Option<String>,
    /// The node's WireGuard IPv6 address.
    #[serde(rename = "interfaceIPv6Address")]
    pub interface_ipv6_address: Option<String>,
}

/// `Node` (Calico's view of a node).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// BGP settings; a node without them takes part in no peering.
    pub bgp: Option<NodeBgpSpec>,
    /// WireGuard addresses.
    pub wireguard: Option<NodeWireguardSpec>,
}

/// `BGPPeer`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeerSpec {
    /// The one node this peering applies to.
    pub node: Option<String>,
    /// Nodes this peering applies to.
    pub node_selector: Option<String>,
    /// `IP` or `IP:port` / `[IPv6]:port`.
    #[serde(rename = "peerIP")]
    pub peer_ip: Option<String>,
    /// The peer's AS.
    pub as_number: Option<AsNumber>,
    /// Our AS on this session.
    #[serde(rename = "localASNumber")]
    pub local_as_number: Option<AsNumber>,
    /// Peer with the Calico nodes matching this selector.
    pub peer_selector: Option<String>,
    /// Keep the next hop towards eBGP peers (superseded by `nextHopMode`).
    #[serde(default)]
    pub keep_original_next_hop: bool,
    /// `Auto`, `Self` or `Keep`.
    pub next_hop_mode: Option<String>,
    /// TCP-MD5 password.
    pub password: Option<PasswordRef>,
    /// `UseNodeIP` (default) or `None`.
    pub source_address: Option<String>,
    /// Graceful restart time.
    pub max_restart_time: Option<Duration>,
    /// Keepalive interval.
    pub keepalive_time: Option<Duration>,
    /// Accept this many occurrences of our AS in paths.
    #[serde(rename = "numAllowedLocalASNumbers")]
    pub num_allowed_local_as_numbers: Option<i64>,
    /// GTSM with this many hops.
    pub ttl_security: Option<u8>,
    /// Gateway to reach the peer through (a static route is added).
    pub reachable_by: Option<String>,
    /// BGPFilter names, applied in order.
    #[serde(default)]
    pub filters: Vec<String>,
    /// Peer with workloads of this node (endpoint status files; not supported).
    pub local_workload_selector: Option<String>,
    /// `Auto` (default) or `Manual`.
    pub reverse_peering: Option<String>,
}

/// `IPPool`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpPoolSpec {
    /// The pool.
    #[serde(default)]
    pub cidr: String,
    /// `Always`, `CrossSubnet` or `Never` (default).
    pub ipip_mode: Option<String>,
    /// `Always`, `CrossSubnet` or `Never` (default).
    pub vxlan_mode: Option<String>,
    /// No new allocations (still routed).
    #[serde(default)]
    pub disabled: bool,
    /// Never announce routes of this pool.
    #[serde(default, rename = "disableBGPExport")]
    pub disable_bgp_export: bool,
}

/// `prefixLength: { min, max }` of a filter rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixLength {
    /// Shortest length matched.
    pub min: Option<i32>,
    /// Longest length matched.
    pub max: Option<i32>,
}

/// `communities: { values: [...] }` of a filter rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityMatch {
    /// Community values (Calico allows one).
    #[serde(default)]
    pub values: Vec<String>,
}

/// `{ value }` of `addCommunity`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddCommunity {
    /// The community.
    pub value: Option<String>,
}

/// `{ prefix: [...] }` of `prependASPath`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrependAsPath {
    /// ASNs, first one ends up first in the path.
    #[serde(default)]
    pub prefix: Vec<AsNumber>,
}

/// `{ value }` of `setPriority`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetPriority {
    /// Route priority (kernel metric).
    pub value: Option<i64>,
}

/// One operation of a filter rule (exactly one field set).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterOperation {
    /// Add a community.
    pub add_community: Option<AddCommunity>,
    /// Prepend ASNs.
    #[serde(rename = "prependASPath")]
    pub prepend_as_path: Option<PrependAsPath>,
    /// Set the priority (LOCAL_PREF).
    pub set_priority: Option<SetPriority>,
}

/// A rule of a BGPFilter (the V4 and V6 forms have the same fields).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterRule {
    /// Prefix to compare with.
    pub cidr: Option<String>,
    /// Length range for `In`/`NotIn`.
    pub prefix_length: Option<PrefixLength>,
    /// `RemotePeers`: routes learned over BGP.
    pub source: Option<String>,
    /// Interface pattern.
    pub interface: Option<String>,
    /// `Equal`, `NotEqual`, `In`, `NotIn`.
    pub match_operator: Option<String>,
    /// `iBGP` or `eBGP`.
    pub peer_type: Option<String>,
    /// Community the route must carry.
    pub communities: Option<CommunityMatch>,
    /// AS path prefix the route must start with.
    #[serde(default, rename = "asPathPrefix")]
    pub as_path_prefix: Vec<AsNumber>,
    /// Priority (LOCAL_PREF) the route must have.
    pub priority: Option<i64>,
    /// `Accept` or `Reject`.
    #[serde(default)]
    pub action: String,
    /// Modifications before accepting.
    #[serde(default)]
    pub operations: Vec<FilterOperation>,
}

/// `BGPFilter`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpFilterSpec {
    /// Rules for IPv4 routes sent.
    #[serde(default, rename = "exportV4")]
    pub export_v4: Vec<FilterRule>,
    /// Rules for IPv4 routes received.
    #[serde(default, rename = "importV4")]
    pub import_v4: Vec<FilterRule>,
    /// Rules for IPv6 routes sent.
    #[serde(default, rename = "exportV6")]
    pub export_v6: Vec<FilterRule>,
    /// Rules for IPv6 routes received.
    #[serde(default, rename = "importV6")]
    pub import_v6: Vec<FilterRule>,
}

/// An IPAM block affinity (`BlockAffinity`, or the etcd key
/// `/calico/ipam/v2/host/<node>/ipv4/block/<cidr>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockAffinitySpec {
    /// The node the block is affine to.
    #[serde(default)]
    pub node: String,
    /// The block.
    #[serde(default)]
    pub cidr: String,
    /// `""` (implicitly confirmed), `confirmed`, `pending`, `pendingDeletion`.
    #[serde(default)]
    pub state: String,
    /// Marked for deletion (KDD writes it as a string).
    #[serde(default, deserialize_with = "bool_or_string")]
    pub deleted: bool,
}

fn bool_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Str(String),
    }
    match B::deserialize(d)? {
        B::Bool(b) => Ok(b),
        B::Str(s) => match s.as_str() {
            "true" => Ok(true),
            "false" | "" => Ok(false),
            other => Err(serde::de::Error::custom(format!(
                "expected true or false, got {other:?}"
            ))),
        },
    }
}

/// Kubernetes `Secret` data (`data` base64, `stringData` plain; `stringData` wins).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretData {
    /// Base64-encoded values.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// Plain values.
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
}

impl SecretData {
    /// The value of `key`, decoded; `None` when absent or not valid base64/UTF-8.
    pub fn get(&self, key: &str) -> Option<String> {
        if let Some(v) = self.string_data.get(key) {
            return Some(v.clone());
        }
        self.data
            .get(key)
            .and_then(|b| base64_decode(b))
            .and_then(|v| String::from_utf8(v).ok())
    }
}

/// Standard base64 (RFC 4648 section 4), padding optional, whitespace ignored.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values() {
        let mut s = SecretData::default();
        s.data.insert("a".into(), "cGFzc3dvcmQtYQ==".into());
        s.data.insert("bad".into(), "!!".into());
        s.string_data.insert("b".into(), "plain".into());
        assert_eq!(s.get("a").as_deref(), Some("password-a"));
        assert_eq!(s.get("b").as_deref(), Some("plain"));
        assert_eq!(s.get("bad"), None);
        assert_eq!(s.get("missing"), None);
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode("YWI").unwrap(), b"ab");
    }

    #[test]
    fn affinity_deleted_forms() {
        let a: BlockAffinitySpec =
            serde_json::from_str(r#"{"node":"n","cidr":"10.0.0.0/26","deleted":"true"}"#).unwrap();
        assert!(a.deleted);
        let b: BlockAffinitySpec =
            serde_json::from_str(r#"{"state":"confirmed","deleted":false}"#).unwrap();
        assert!(!b.deleted);
        assert!(serde_json::from_str::<BlockAffinitySpec>(r#"{"deleted":"maybe"}"#).is_err());
    }
}
