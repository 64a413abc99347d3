//! `bgpd calico run` against real etcd (Debian's etcd-server): several bgpd processes in
//! Calico mode, each its own node (`NODENAME`), its own loopback address (127.0.0.1x)
//! and control socket, configured only by calico-node's variables and the datastore, all
//! in one namespace the test creates with the etcd member.
//!
//! The datastore holds `Node` resources and the `default` BGPConfiguration with
//! `bindMode: NodeIP` (every node listens on its own address, as they share one
//! namespace). The nodes form a full mesh; a node added gives exactly one new session on
//! each other node while the existing ones stay up (their Established transitions and
//! uptimes show it); a node deleted loses its session everywhere, its own bgpd keeping its
//! last configuration; etcd stopped leaves every session up (`show status` says the
//! datastore is down), and once etcd is back a later change still applies; a BGPPeer with
//! a BGPFilter for one node, then the filter changed, touch that node's new session only.
//!
//! Start-up: with etcd unreachable, `bgpd calico run -R` configures nothing (no socket, no
//! session) and leaves the kernel alone; once etcd answers it starts with the derived
//! sessions, restarting, and keeps the route a previous run left until its peers sent
//! End-of-RIB.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use interop::bgpd::{bgpctl_binary, bgpd_binary, control_at};
use interop::calico_datastore::{
    sessions_at, spawn_calico_run, wait_datastore_down, wait_sessions_at,
};
use interop::etcd::{EtcdCluster, ETCD_BINARIES};
use interop::{run_test, wait_for, Error, Family, Netns, Process, Result, Test};
use serde_json::{json, Value};

const NODES: &str = "/calico/resources/v3/projectcalico.org/nodes/";
const PEERS: &str = "/calico/resources/v3/projectcalico.org/bgppeers/";
const FILTERS: &str = "/calico/resources/v3/projectcalico.org/bgpfilters/";
const BGP_CONFIGURATIONS: &str = "/calico/resources/v3/projectcalico.org/bgpconfigurations/";
/// Generous bound for sessions to come up or go (a broken setup must not hang).
const CONVERGE: Duration = Duration::from_secs(60);

fn address(i: u8) -> String {
    format!("127.0.0.{}", 10 + i)
}

fn mesh_name(i: u8) -> String {
    format!("Mesh_{}", address(i).replace('.', "_"))
}

fn put_defaults(c: &EtcdCluster) -> Result<i64> {
    c.put(
        &format!("{BGP_CONFIGURATIONS}default"),
        r#"{"kind":"BGPConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"default"},"spec":{"bindMode":"NodeIP"}}"#,
    )
}

fn put_node(c: &EtcdCluster, i: u8) -> Result<i64> {
    let name = format!("n{i}");
    c.put(
        &format!("{NODES}{name}"),
        &format!(
            r#"{{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{{"name":"{name}"}},"spec":{{"bgp":{{"ipv4Address":"{}/8"}}}}}}"#,
            address(i)
        ),
    )
}

/// One bgpd in Calico mode.
struct Node {
    i: u8,
    socket: PathBuf,
    _process: Process,
}

impl Node {
    fn start(t: &Test, ns: &Arc<Netns>, c: &EtcdCluster, i: u8) -> Result<Node> {
        Node::start_with(t, ns, c, i, &[])
    }

    /// Starts `bgpd calico run EXTRA...`.
    fn start_with(
        t: &Test,
        ns: &Arc<Netns>,
        c: &EtcdCluster,
        i: u8,
        extra: &[&str],
    ) -> Result<Node> {
        let name = format!("n{i}");
        let (process, socket) = spawn_calico_run(t, ns, &name, &name, &c.endpoints(), extra)?;
        Ok(Node {
            i,
            socket,
            _process: process,
        })
    }

    fn control(&self, command: &str) -> Result<Value> {
        control_at(&self.socket, json!({ "command": command }))
    }

    /// Session name → (state, Established transitions).
    fn sessions(&self) -> Result<BTreeMap<String, (String, u64)>> {
        Ok(sessions_at(&self.socket)?
            .into_iter()
            .map(|(name, s)| (name, (s.state, s.established)))
            .collect())
    }

    /// Session name → uptime in seconds.
    fn uptimes(&self) -> Result<BTreeMap<String, u64>> {
        let peers = self.control("show_peers")?;
        Ok(peers["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or_default().to_owned(),
                    p["uptime_secs"].as_u64().unwrap_or(0),
                )
            })
            .collect())
    }

    /// Waits until the sessions are exactly the mesh towards `others`, all Established.
    fn wait_mesh(&self, others: &[u8]) -> Result<BTreeMap<String, (String, u64)>> {
        let want: Vec<String> = others
            .iter()
            .filter(|o| **o != self.i)
            .map(|o| mesh_name(*o))
            .collect();
        Ok(
            wait_sessions_at(&format!("n{}", self.i), &self.socket, &want, CONVERGE)?
                .into_iter()
                .map(|(name, s)| (name, (s.state, s.established)))
                .collect(),
        )
    }
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Check(what()))
    }
}

/// The sessions of `before` still there in `after` were not reset: one Established
/// transition each, uptime not gone back.
fn not_reset(
    node: &Node,
    before: &BTreeMap<String, (String, u64)>,
    uptimes_before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, (String, u64)>,
    uptimes_after: &BTreeMap<String, u64>,
) -> Result<()> {
    for (name, (_, transitions)) in before {
        let Some((state, now)) = after.get(name) else {
            continue;
        };
        check(
            *transitions == 1 && *now == 1 && state == "Established",
            || format!("n{}: {name} was reset: {before:?} -> {after:?}", node.i),
        )?;
        let (u0, u1) = (uptimes_before.get(name), uptimes_after.get(name));
        check(u1 >= u0, || {
            format!("n{}: {name} uptime went back: {u0:?} -> {u1:?}", node.i)
        })?;
    }
    Ok(())
}

fn binaries() -> Vec<String> {
    let mut v: Vec<String> = ETCD_BINARIES.iter().map(|s| s.to_string()).collect();
    for (bin, missing) in [
        (bgpd_binary(), "bgpd (cargo build -p bgpd)"),
        (bgpctl_binary(), "bgpctl (cargo build -p bgpctl)"),
    ] {
        v.push(bin.map_or_else(|| missing.to_owned(), |p| p.display().to_string()));
    }
    v
}

fn bgpctl(socket: &Path, args: &[&str]) -> Result<String> {
    let bin = bgpctl_binary().ok_or_else(|| Error::Invalid("bgpctl not built".into()))?;
    let mut full = vec!["-s".to_owned(), socket.display().to_string()];
    full.extend(args.iter().map(|a| a.to_string()));
    let out = std::process::Command::new(&bin)
        .args(&full)
        .output()
        .map_err(|e| Error::Invalid(format!("running {}: {e}", bin.display())))?;
    check(out.status.success(), || {
        format!("bgpctl {args:?}: {}", String::from_utf8_lossy(&out.stderr))
    })?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn calico_run_mesh_follows_the_datastore() {
    run_test("calico_run_mesh", &binaries(), |t: &Test| {
        let ns = Netns::new(t, "calico-run")?;
        let mut c = EtcdCluster::start(t, &ns, 1, None)?;
        put_defaults(&c)?;
        for i in 1..=3 {
            put_node(&c, i)?;
        }
        let mut nodes: Vec<Node> = (1..=3)
            .map(|i| Node::start(t, &ns, &c, i))
            .collect::<Result<_>>()?;

        // A full mesh from the datastore alone.
        let mut before = BTreeMap::new();
        for n in &nodes {
            before.insert(n.i, n.wait_mesh(&[1, 2, 3])?);
        }
        let uptimes: BTreeMap<u8, _> = nodes
            .iter()
            .map(|n| Ok((n.i, n.uptimes()?)))
            .collect::<Result<_>>()?;
        let first = nodes
            .first()
            .ok_or_else(|| Error::Invalid("no node".into()))?;
        let report = first.control("show_datastore")?;
        check(
            report["state"] == "in-sync"
                && report["connected"] == true
                && report["synced"] == true
                && report["nodes"] == 3
                && report["peers"] == json!([mesh_name(2), mesh_name(3)]),
            || format!("show_datastore: {report}"),
        )?;
        let text = bgpctl(&first.socket, &["show", "datastore"])?;
        check(
            text.contains("in-sync") && text.contains("3 nodes, 2 peers"),
            || text.clone(),
        )?;

        // A node joins: exactly one new session on each other node, the others untouched.
        put_node(&c, 4)?;
        nodes.push(Node::start(t, &ns, &c, 4)?);
        for n in &nodes {
            let after = n.wait_mesh(&[1, 2, 3, 4])?;
            if let (Some(b), Some(u)) = (before.get(&n.i), uptimes.get(&n.i)) {
                check(after.len() == b.len() + 1, || {
                    format!("n{}: {b:?} -> {after:?}", n.i)
                })?;
                not_reset(n, b, u, &after, &n.uptimes()?)?;
            }
        }

        // A node leaves: its session goes everywhere, nothing else changes. Its own bgpd
        // no longer derives a configuration and keeps running on the last one.
        let before: BTreeMap<u8, _> = nodes
            .iter()
            .map(|n| Ok((n.i, n.sessions()?)))
            .collect::<Result<_>>()?;
        let uptimes: BTreeMap<u8, _> = nodes
            .iter()
            .map(|n| Ok((n.i, n.uptimes()?)))
            .collect::<Result<_>>()?;
        c.delete(&format!("{NODES}n2"))?;
        for n in nodes.iter().filter(|n| n.i != 2) {
            let after = n.wait_mesh(&[1, 3, 4])?;
            if let (Some(b), Some(u)) = (before.get(&n.i), uptimes.get(&n.i)) {
                not_reset(n, b, u, &after, &n.uptimes()?)?;
            }
        }
        let n2 = nodes
            .iter()
            .find(|n| n.i == 2)
            .ok_or_else(|| Error::Invalid("no n2".into()))?;
        let report = n2.control("show_datastore")?;
        check(
            report["last_derive_error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("n2")),
            || format!("n2 without its Node: {report}"),
        )?;
        check(n2.sessions()?.len() == 3, || {
            "n2 keeps its last configuration".into()
        })?;

        // etcd stops: every session stays up, the status says the datastore is down.
        let before: BTreeMap<u8, _> = nodes
            .iter()
            .filter(|n| n.i != 2)
            .map(|n| Ok((n.i, n.sessions()?)))
            .collect::<Result<_>>()?;
        c.stop_member(0)?;
        for n in nodes.iter().filter(|n| n.i != 2) {
            wait_datastore_down(&format!("n{}", n.i), &n.socket, CONVERGE)?;
            let now = n.sessions()?;
            check(before.get(&n.i) == Some(&now), || {
                format!("n{}: sessions changed while etcd was down: {now:?}", n.i)
            })?;
        }
        // Back: a later change still applies (n4 leaves).
        c.start_member(t, 0)?;
        c.wait_healthy()?;
        c.delete(&format!("{NODES}n4"))?;
        for n in nodes.iter().filter(|n| n.i == 1 || n.i == 3) {
            let after = n.wait_mesh(&[1, 3])?;
            let mut want = before.get(&n.i).cloned().unwrap_or_default();
            want.remove(&mesh_name(4));
            check(after == want, || {
                format!("n{}: {after:?}, want {want:?}", n.i)
            })?;
        }

        // A BGPPeer of n1 with a BGPFilter, then the filter changed: n1 gets the session
        // with the filter's policies, then the new policies, its mesh session untouched;
        // n3 is not concerned.
        let (n1, n3) = match (
            nodes.iter().find(|n| n.i == 1),
            nodes.iter().find(|n| n.i == 3),
        ) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err(Error::Invalid("no n1 or n3".into())),
        };
        let (mesh1, mesh3) = (n1.sessions()?, n3.sessions()?);
        let filter = |cidr: &str| {
            format!(
                r#"{{"kind":"BGPFilter","apiVersion":"projectcalico.org/v3","metadata":{{"name":"tor-out"}},"spec":{{"exportV4":[{{"action":"Reject","matchOperator":"In","cidr":"{cidr}"}}]}}}}"#
            )
        };
        c.put(&format!("{FILTERS}tor-out"), &filter("10.0.0.0/8"))?;
        c.put(
            &format!("{PEERS}tor"),
            r#"{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"tor"},"spec":{"node":"n1","peerIP":"127.0.0.99","asNumber":65000,"filters":["tor-out"]}}"#,
        )?;
        let tor = "Node_127_0_0_99";
        let applied = |n: &Node| -> Result<u64> {
            Ok(n.control("show_datastore")?["applied"]
                .as_u64()
                .unwrap_or_default())
        };
        wait_for("n1: the BGPPeer's session", CONVERGE, || {
            let names: Vec<String> = n1.sessions()?.into_keys().collect();
            Ok(if names.iter().any(|n| n == tor) {
                Ok(())
            } else {
                Err(format!("{names:?}"))
            })
        })?;
        let detail = control_at(&n1.socket, json!({"command": "show_peer", "name": tor}))?;
        let exports: Vec<&str> = detail["export"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        check(exports.iter().any(|p| p.contains("tor-out")), || {
            format!("the filter's policy in the export chain: {detail}")
        })?;
        let (applied1, applied3) = (applied(n1)?, applied(n3)?);
        c.put(&format!("{FILTERS}tor-out"), &filter("10.96.0.0/12"))?;
        wait_for("n1: the changed filter applied", CONVERGE, || {
            let a = applied(n1)?;
            Ok(if a > applied1 {
                Ok(())
            } else {
                Err(format!("applied {a}"))
            })
        })?;
        let after1 = n1.sessions()?;
        check(mesh1.iter().all(|(k, v)| after1.get(k) == Some(v)), || {
            format!("n1 mesh touched: {mesh1:?} -> {after1:?}")
        })?;
        check(n3.sessions()? == mesh3 && applied(n3)? == applied3, || {
            "n3 touched by n1's BGPPeer".into()
        })?;
        Ok(())
    });
}

/// A route a previous run of bgpd left in the kernel (protocol `bird`, 12).
const STALE: &str = "10.65.0.0/26";

fn stale_route_present(ns: &Netns) -> Result<bool> {
    Ok(ns
        .routes(Family::Ipv4)?
        .iter()
        .any(|r| r.dst.to_string() == STALE && r.protocol == "bird"))
}

#[test]
fn calico_run_waits_for_the_datastore_and_keeps_kernel_routes_with_r() {
    run_test("calico_run_start", &binaries(), |t: &Test| {
        let ns = Netns::new(t, "calico-start")?;
        let mut c = EtcdCluster::start(t, &ns, 1, None)?;
        put_defaults(&c)?;
        put_node(&c, 1)?;
        put_node(&c, 2)?;
        ns.ip(&["route", "add", "blackhole", STALE, "proto", "bird"])?;
        // etcd unreachable at start: nothing is configured, nothing is touched.
        c.stop_member(0)?;
        let n1 = Node::start_with(t, &ns, &c, 1, &["-R"])?;
        std::thread::sleep(Duration::from_secs(2));
        check(!n1.socket.exists(), || {
            "the control socket exists before the first listing".into()
        })?;
        check(stale_route_present(&ns)?, || {
            "the kernel route went before the first listing".into()
        })?;
        // etcd back: the speaker starts with the mesh session towards n2 (which does not
        // run), restarting: the kernel keeps the route until n2 sent End-of-RIB.
        c.start_member(t, 0)?;
        wait_for("n1 started from the datastore", CONVERGE, || {
            Ok(match n1.sessions() {
                Ok(s) if s.keys().eq([mesh_name(2)].iter()) => Ok(()),
                Ok(s) => Err(format!("{s:?}")),
                Err(e) => Err(e.to_string()),
            })
        })?;
        let status = n1.control("status")?;
        check(status["graceful_restart_in_progress"] == true, || {
            format!("status: {status}")
        })?;
        check(stale_route_present(&ns)?, || {
            "the kernel route went before the peers sent End-of-RIB".into()
        })?;
        let report = n1.control("show_datastore")?;
        check(
            report["failures"].as_u64().is_some_and(|f| f >= 1)
                && report["last_error"]["message"].is_string()
                && report["state"] == "in-sync",
            || format!("show_datastore: {report}"),
        )?;
        Ok(())
    });
}
