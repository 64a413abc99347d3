//! A Calico namespace cluster fed from etcd only: node namespaces on one bridge, each
//! with Felix-like state ([`setup_felix`]: a blackhole /26 block, a pod behind a `cali*`
//! veth) and `bgpd calico run` configured by calico-node's variables alone
//! (`DATASTORE_TYPE=etcdv3`, `ETCD_ENDPOINTS`, `NODENAME`), and real etcd members in
//! namespaces of their own on the same bridge ([`EtcdCluster::start_on`]). Nothing but
//! Calico resources in calico-node's key layout tells bgpd what to do: the `default`
//! BGPConfiguration, an IPPool, one `Node` per node and each node's block affinity under
//! `/calico/ipam/v2/host/NODE/ipv4/block/`.
//!
//! [`start`] returns the cluster once every node has its mesh sessions up, every
//! other node's block in its kernel (protocol 12, "bird") and its pod reaching every
//! other pod; the methods change the datastore as an operator (or calico-node) would and
//! wait for what the nodes should do about it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::bgpd::{bgpd_binary, control_at};
use crate::calico::{has_route_via, mesh_name, setup_felix, FelixState, Pod};
use crate::calico_cluster::ASN;
use crate::etcd::{EtcdCluster, Placement};
use crate::process::Process;
use crate::{wait_for, Error, Family, Netns, Node, Result, Segment, Test, TIMEOUT};

/// Where calico-node keeps the v3 resources in etcd.
pub const RESOURCES: &str = "/calico/resources/v3/projectcalico.org";
/// The IP pool the blocks come from.
pub const POOL: &str = "10.244.0.0/16";
/// Host number of etcd member `i` on the segment: `ETCD_HOST + i`.
const ETCD_HOST: u32 = 200;

/// One Calico node: its namespace, Felix state and bgpd.
pub struct CalicoNode {
    /// The node namespace (`nI`, host I on the segment).
    pub node: Node,
    /// Its block and pod.
    pub felix: FelixState,
    /// bgpd's control socket.
    pub socket: PathBuf,
    process: Process,
}

impl CalicoNode {
    /// The node's name in the datastore (`NODENAME`).
    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// Its first pod.
    pub fn pod(&self) -> Result<&Pod> {
        self.felix
            .pods
            .first()
            .ok_or_else(|| Error::Invalid(format!("{} has no pod", self.node.name)))
    }

    /// Its bgpd process.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// A control command without arguments (`show_peers`, `show_datastore`, `status`).
    pub fn control(&self, command: &str) -> Result<Value> {
        control_at(&self.socket, json!({ "command": command }))
    }

    /// Session name → state, Established transitions, uptime.
    pub fn sessions(&self) -> Result<BTreeMap<String, Session>> {
        sessions_at(&self.socket)
    }

    /// Waits until the sessions are exactly `want`, all Established; returns them.
    pub fn wait_sessions(&self, want: &[String]) -> Result<BTreeMap<String, Session>> {
        wait_sessions_at(&self.node.name, &self.socket, want, TIMEOUT)
    }

    /// Whether the kernel holds `other`'s block via `other`'s address (protocol bird).
    pub fn has_block_of(&self, other: &CalicoNode) -> Result<bool> {
        let routes = self.node.ns.routes(Family::Ipv4)?;
        Ok(has_route_via(
            &routes,
            ipnet::IpNet::V4(other.felix.block),
            IpAddr::V4(other.node.v4),
            "bird",
        ))
    }

    /// Whether the kernel has any route for `other`'s block.
    pub fn has_any_route_to(&self, other: &CalicoNode) -> Result<bool> {
        let block = ipnet::IpNet::V4(other.felix.block);
        Ok(self
            .node
            .ns
            .routes(Family::Ipv4)?
            .iter()
            .any(|r| r.dst == block))
    }
}

/// Starts `bgpd calico run EXTRA...` in `ns` as node `node_name` with calico-node's
/// variables only (`DATASTORE_TYPE=etcdv3`, `ETCD_ENDPOINTS`, `NODENAME`), its control
/// socket and `bird.ctl` in the test sub-directory `label`; returns the process and the
/// control socket.
pub fn spawn_calico_run(
    t: &Test,
    ns: &Arc<Netns>,
    label: &str,
    node_name: &str,
    endpoints: &[String],
    extra: &[&str],
) -> Result<(Process, PathBuf)> {
    let bin = bgpd_binary().ok_or_else(|| Error::Invalid("bgpd not built".into()))?;
    let dir = t.subdir(label)?;
    let socket = dir.join("bgpd.sock");
    let bird = dir.join("bird.ctl");
    let (s, b) = (socket.display().to_string(), bird.display().to_string());
    let mut args = vec![
        "calico",
        "run",
        "--control-socket",
        &s,
        "--bird-socket",
        &b,
        "--bird6-socket",
        "",
    ];
    args.extend_from_slice(extra);
    let endpoints = endpoints.join(",");
    let log = std::env::var("BGPD_LOG").unwrap_or_else(|_| "info".into());
    let process = Process::spawn(
        t,
        ns,
        label,
        &bin,
        &args,
        &[
            ("DATASTORE_TYPE", "etcdv3"),
            ("ETCD_ENDPOINTS", &endpoints),
            ("NODENAME", node_name),
            ("BGPD_LOG", &log),
            ("NO_COLOR", "1"),
        ],
    )?;
    Ok((process, socket))
}

/// The sessions of the bgpd at `socket`: name → state, Established transitions, uptime.
pub fn sessions_at(socket: &Path) -> Result<BTreeMap<String, Session>> {
    let peers = control_at(socket, json!({ "command": "show_peers" }))?;
    let mut out = BTreeMap::new();
    for p in peers["peers"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        let detail = control_at(socket, json!({"command": "show_peer", "name": name}))?;
        out.insert(
            name,
            Session {
                state: p["state"].as_str().unwrap_or_default().to_owned(),
                established: detail["counters"]["established_transitions"]
                    .as_u64()
                    .unwrap_or(u64::MAX),
                uptime_secs: p["uptime_secs"].as_u64().unwrap_or(0),
            },
        );
    }
    Ok(out)
}

/// Waits until the bgpd at `socket` has exactly the sessions `want`, all Established;
/// returns them.
pub fn wait_sessions_at(
    who: &str,
    socket: &Path,
    want: &[String],
    bound: Duration,
) -> Result<BTreeMap<String, Session>> {
    let mut want: Vec<String> = want.to_vec();
    want.sort();
    let mut last = BTreeMap::new();
    wait_for(
        &format!("{who}: sessions {want:?} established"),
        bound,
        || {
            last = sessions_at(socket)?;
            let up = last.values().all(|s| s.state == "Established");
            Ok(if up && last.keys().eq(want.iter()) {
                Ok(())
            } else {
                Err(format!("{last:?}"))
            })
        },
    )?;
    Ok(last)
}

/// Waits until the bgpd at `socket` reports its datastore down in `show status` (not
/// connected or not in sync).
pub fn wait_datastore_down(who: &str, socket: &Path, bound: Duration) -> Result<()> {
    wait_for(&format!("{who}: datastore down in status"), bound, || {
        let s = control_at(socket, json!({ "command": "status" }))?;
        let ds = s["components"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == "datastore")
            .cloned();
        Ok(match ds {
            Some(d) if d["up"] == false => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })
}

/// One session as bgpd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// FSM state.
    pub state: String,
    /// Established transitions so far (1: never reset).
    pub established: u64,
    /// Seconds since it came up.
    pub uptime_secs: u64,
}

/// The running cluster: etcd members, nodes (`nodes[i]` is `n{i+1}`).
pub struct DatastoreCluster {
    /// The nodes, in order.
    pub nodes: Vec<CalicoNode>,
    /// The etcd members (in namespaces of their own on the segment).
    pub etcd: EtcdCluster,
    _etcd_nodes: Vec<Node>,
    _seg: Segment,
}

/// A `Node` resource: address `ip/24`, `labels`, and a route reflector cluster id.
pub fn node_resource(name: &str, ip: Ipv4Addr, labels: &[(&str, &str)], rr: Option<&str>) -> Value {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let mut bgp = json!({ "ipv4Address": format!("{ip}/24") });
    if let Some(id) = rr {
        bgp["routeReflectorClusterID"] = Value::String(id.into());
    }
    json!({
        "kind": "Node",
        "apiVersion": "projectcalico.org/v3",
        "metadata": { "name": name, "labels": labels },
        "spec": { "bgp": bgp },
    })
}

/// The `default` BGPConfiguration: the cluster AS, the mesh on or off.
pub fn bgp_configuration(mesh: bool) -> Value {
    json!({
        "kind": "BGPConfiguration",
        "apiVersion": "projectcalico.org/v3",
        "metadata": { "name": "default" },
        "spec": { "asNumber": ASN, "nodeToNodeMeshEnabled": mesh },
    })
}

/// A BGPPeer between the nodes `node_selector` picks and those `peer_selector` picks
/// (Calico's route reflector recipe: `all()` to `route-reflector == 'true'`).
pub fn bgp_peer(name: &str, node_selector: &str, peer_selector: &str) -> Value {
    json!({
        "kind": "BGPPeer",
        "apiVersion": "projectcalico.org/v3",
        "metadata": { "name": name },
        "spec": { "nodeSelector": node_selector, "peerSelector": peer_selector },
    })
}

/// The etcd key of a resource: `RESOURCES/KINDS/NAME`.
pub fn resource_key(kinds: &str, name: &str) -> String {
    format!("{RESOURCES}/{kinds}/{name}")
}

/// The etcd key of `node`'s affinity to `block` (calico-node's IPAM layout).
pub fn block_key(node: &str, block: ipnet::Ipv4Net) -> String {
    format!(
        "/calico/ipam/v2/host/{node}/ipv4/block/{}",
        block.to_string().replace('/', "-")
    )
}

impl DatastoreCluster {
    /// Writes `value` at `key`.
    pub fn put(&self, key: &str, value: &Value) -> Result<i64> {
        self.etcd.put(key, &value.to_string())
    }

    /// Node `i` (0-based).
    pub fn node(&self, i: usize) -> Result<&CalicoNode> {
        self.nodes
            .get(i)
            .ok_or_else(|| Error::Invalid(format!("no node {i}")))
    }

    /// Writes node `i`'s `Node` resource with `labels` and route reflector cluster id.
    pub fn put_node(&self, i: usize, labels: &[(&str, &str)], rr: Option<&str>) -> Result<i64> {
        let n = self.node(i)?;
        self.put(
            &resource_key("nodes", n.name()),
            &node_resource(n.name(), n.node.v4, labels, rr),
        )
    }

    /// Deletes node `i`'s `Node` resource (the node leaves the cluster).
    pub fn delete_node(&self, i: usize) -> Result<i64> {
        let n = self.node(i)?;
        self.etcd.delete(&resource_key("nodes", n.name()))
    }

    /// Mesh session names of node `i` towards `others` (0-based, `i` left out).
    pub fn mesh_of(&self, i: usize, others: &[usize]) -> Result<Vec<String>> {
        others
            .iter()
            .filter(|o| **o != i)
            .map(|o| Ok(mesh_name(IpAddr::V4(self.node(*o)?.node.v4))))
            .collect()
    }

    /// Waits until node `i`'s kernel holds the blocks of `present` (via their nodes)
    /// and no route for the blocks of `absent`.
    pub fn wait_blocks(&self, i: usize, present: &[usize], absent: &[usize]) -> Result<()> {
        let me = self.node(i)?;
        wait_for(
            &format!("{}: blocks of {present:?} in, of {absent:?} out", me.name()),
            TIMEOUT,
            || {
                for p in present.iter().filter(|p| **p != i) {
                    if !me.has_block_of(self.node(*p)?)? {
                        return Ok(Err(format!("no block of n{}", p + 1)));
                    }
                }
                for a in absent.iter().filter(|a| **a != i) {
                    if me.has_any_route_to(self.node(*a)?)? {
                        return Ok(Err(format!("still a route to n{}'s block", a + 1)));
                    }
                }
                Ok(Ok(()))
            },
        )
    }

    /// Waits until every pod of `among` reaches every pod of the others in `among`.
    pub fn wait_pings(&self, among: &[usize]) -> Result<()> {
        for &a in among {
            for &b in among.iter().filter(|b| **b != a) {
                let (src, dst) = (self.node(a)?.pod()?, self.node(b)?.pod()?);
                src.ns.wait_ping(IpAddr::V4(dst.ip), None, TIMEOUT)?;
            }
        }
        Ok(())
    }
}

/// Starts `etcd_members` etcd members (hosts 200, 201, ... of the segment) and `nodes`
/// Calico nodes (`n1` at host 1, ...), writes the datastore (mesh on, one pool, each
/// node's `Node` and block affinity), starts each node's bgpd in Calico mode and waits
/// for the full mesh, the blocks in every kernel and pod-to-pod pings.
pub fn start(t: &Test, nodes: usize, etcd_members: usize) -> Result<DatastoreCluster> {
    let seg = Segment::new(t)?;
    let mut etcd_nodes = Vec::new();
    let mut placements = Vec::new();
    for m in 0..u32::try_from(etcd_members).unwrap_or(0) {
        let en = Node::new(t, &seg, &format!("etcd{m}"), ETCD_HOST + m)?;
        placements.push(Placement {
            ns: Arc::clone(&en.ns),
            address: IpAddr::V4(en.v4),
        });
        etcd_nodes.push(en);
    }
    let etcd = EtcdCluster::start_on(t, &placements, None)?;
    etcd.put(
        &resource_key("bgpconfigurations", "default"),
        &bgp_configuration(true).to_string(),
    )?;
    etcd.put(
        &resource_key("ippools", "default-ipv4-ippool"),
        &json!({
            "kind": "IPPool",
            "apiVersion": "projectcalico.org/v3",
            "metadata": { "name": "default-ipv4-ippool" },
            "spec": { "cidr": POOL, "ipipMode": "Never", "vxlanMode": "Never", "natOutgoing": true },
        })
        .to_string(),
    )?;
    let endpoints = etcd.endpoints();
    let mut prepared: Vec<(Node, FelixState)> = Vec::new();
    for i in 1..=u32::try_from(nodes).unwrap_or(0) {
        let node = Node::new(t, &seg, &format!("n{i}"), i)?;
        let block: ipnet::Ipv4Net = format!("10.244.{i}.0/26")
            .parse()
            .map_err(|_| Error::Invalid("block".into()))?;
        let felix = setup_felix(t, &node, block, 1)?;
        etcd.put(
            &resource_key("nodes", &node.name),
            &node_resource(&node.name, node.v4, &[], None).to_string(),
        )?;
        etcd.put(
            &block_key(&node.name, block),
            r#"{"state":"confirmed","deleted":false}"#,
        )?;
        prepared.push((node, felix));
    }
    // Before BGP runs, pods on different nodes cannot reach each other.
    if let [(_, a), (_, b), ..] = prepared.as_slice() {
        if let (Some(a), Some(b)) = (a.pods.first(), b.pods.first()) {
            if matches!(a.ns.ping(IpAddr::V4(b.ip), None), Ok(true)) {
                return Err(Error::Check("pods reachable before BGP ran".into()));
            }
        }
    }
    let mut out: Vec<CalicoNode> = Vec::new();
    for (node, felix) in prepared {
        let (process, socket) = spawn_calico_run(
            t,
            &node.ns,
            &format!("bgpd-{}", node.name),
            &node.name,
            &endpoints,
            &[],
        )?;
        out.push(CalicoNode {
            node,
            felix,
            socket,
            process,
        });
    }
    let c = DatastoreCluster {
        nodes: out,
        etcd,
        _etcd_nodes: etcd_nodes,
        _seg: seg,
    };
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    for (i, n) in c.nodes.iter().enumerate() {
        n.wait_sessions(&c.mesh_of(i, &all)?)?;
    }
    for i in &all {
        c.wait_blocks(*i, &all, &[])?;
    }
    c.wait_pings(&all)?;
    Ok(c)
}
