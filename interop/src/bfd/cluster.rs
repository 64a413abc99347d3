//! BFD (RFC 5882) on the iBGP mesh of the Calico namespace cluster
//! ([`crate::calico_cluster`]): three bgpd nodes in Calico mode with
//! `bfd = { 300 ms x 3 }` on every mesh session and a 90 s hold time, pods pinging
//! across nodes ten times a second. A node cut off at its bridge port (its own link
//! stays up) must leave every other node's kernel within the detection time (900 ms)
//! and a scheduling allowance — only BFD can tell so soon — while the pods of the
//! remaining nodes lose no echo and a pod pinging the cut node's pod is told "Net
//! Unreachable"; restored, BFD and BGP come back, the block returns and its pod answers
//! again. Test body for `tests/bgpd_bfd_cluster.rs`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bgpd::control_at;
use crate::calico::SessionTimers;
use crate::calico_cluster::{start, Cluster, ClusterOptions, MeshBfd, Pinger};
use crate::context::{say, Test};
use crate::error::{Error, Result};
use crate::model::Family;
use crate::wait::{wait_for, TIMEOUT};
use crate::Kind;

/// Hold 90 s: a reaction within a second can only come from BFD.
const LONG: SessionTimers = SessionTimers {
    hold_time: 90,
    keepalive: 30,
    restart_time: None,
};

const BFD: MeshBfd = MeshBfd {
    interval_ms: 300,
    multiplier: 3,
};

/// How soon the cut node's block must leave the other kernels: the detection time
/// (900 ms) plus 600 ms for the RIB, the kernel and the 20 ms polling on a loaded 2-core
/// machine (measured: 728-918 ms). The hold time (90 s) is two orders of magnitude away,
/// so only BFD passes.
const GONE_BOUND: Duration = Duration::from_millis(1500);

/// The node cut off (0-based) and the nodes that watch it go.
const CUT: usize = 2;
const WATCHERS: [usize; 2] = [0, 1];

/// The BFD sessions of node `i`'s bgpd (`show bfd`).
fn bfd_sessions(cluster: &Cluster, t: &Test, i: usize) -> Result<Vec<Value>> {
    let v = control_at(
        &cluster.bgpd_socket(t, i)?,
        serde_json::json!({"command": "show_bfd"}),
    )?;
    Ok(v.get("sessions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

fn state(s: &Value) -> &str {
    s.get("state").and_then(Value::as_str).unwrap_or("")
}

/// Waits until every node's bgpd has `peers` BFD sessions, all Up.
fn wait_all_up(cluster: &Cluster, t: &Test, peers: usize) -> Result<()> {
    wait_for("BFD Up on every mesh session", TIMEOUT, || {
        let mut not_up = Vec::new();
        for i in 0..cluster.nodes.len() {
            let s = bfd_sessions(cluster, t, i)?;
            let up = s.iter().filter(|s| state(s) == "Up").count();
            if up != peers || s.len() != peers {
                not_up.push(format!("n{}: {up}/{} Up", i + 1, s.len()));
            }
        }
        Ok(if not_up.is_empty() {
            Ok(())
        } else {
            Err(not_up.join(", "))
        })
    })
}

fn node_pod(cluster: &Cluster, i: usize) -> Result<&crate::calico::Pod> {
    cluster
        .nodes
        .get(i)
        .and_then(|(_, f)| f.pods.first())
        .ok_or_else(|| Error::Invalid(format!("no pod on node {i}")))
}

/// The scenario described in the module documentation.
pub fn cut_node(t: &Test) -> Result<()> {
    let kinds = [Kind::Bgpd, Kind::Bgpd, Kind::Bgpd];
    let cluster = start(
        t,
        &kinds,
        ClusterOptions {
            reflectors: 0,
            timers: Some(LONG),
            calico_mode: true,
            bfd: Some(BFD),
        },
    )?;
    let peers = kinds.len() - 1;
    wait_all_up(&cluster, t, peers)?;
    say("bgpd bfd cluster: 3 nodes, every mesh session BFD Up (300 ms x 3, hold 90 s)");

    let (p1, p2, p3) = (
        node_pod(&cluster, 0)?,
        node_pod(&cluster, 1)?,
        node_pod(&cluster, 2)?,
    );
    // Between the remaining nodes, both ways, through the cut and the restore.
    let survivors = [
        Pinger::start(t, p1, p2, 150)?,
        Pinger::start(t, p2, p1, 150)?,
    ];

    let cut_at = Instant::now();
    cluster.cut(CUT, false)?;
    let gone = cluster.block_gone_times(CUT, &WATCHERS, cut_at, Duration::from_secs(20))?;
    let millis: Vec<u128> = gone.iter().map(Duration::as_millis).collect();
    say(&format!(
        "bgpd bfd cluster: n3's block gone from the kernels of n1, n2 {millis:?} ms after the cut"
    ));
    if gone.iter().any(|d| *d > GONE_BOUND) {
        return Err(Error::Check(format!(
            "n3's block left n1, n2 after {millis:?} ms, more than {} ms",
            GONE_BOUND.as_millis()
        )));
    }
    for w in WATCHERS {
        let s = bfd_sessions(&cluster, t, w)?;
        let down = s.iter().filter(|s| state(s) == "Down").count();
        if down != 1 {
            return Err(Error::Check(format!(
                "n{} after the cut: {down} BFD sessions Down, want 1: {s:?}",
                w + 1
            )));
        }
    }
    // The cut node's pod is unreachable from the others: n1 has no route left to it and
    // answers its own pod's echo with ICMP Destination Net Unreachable.
    let dst = p3.ip.to_string();
    let out = p1
        .ns
        .exec_output("ping", &["-n", "-c", "1", "-W", "2", &dst])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() || !stdout.contains("Unreachable") {
        return Err(Error::Check(format!(
            "ping from n1's pod to n3's pod after the cut, not unreachable: {stdout}"
        )));
    }
    say(&format!(
        "bgpd bfd cluster: n1's pod to n3's pod after the cut: {}",
        stdout
            .lines()
            .find(|l| l.contains("Unreachable"))
            .unwrap_or_default()
            .trim()
    ));

    cluster.cut(CUT, true)?;
    let restored_at = Instant::now();
    wait_all_up(&cluster, t, peers)?;
    let bfd_back = restored_at.elapsed();
    for (node, _) in cluster.nodes.iter().take(2) {
        let (cut_node, felix) = cluster
            .nodes
            .get(CUT)
            .ok_or_else(|| Error::Invalid("no cut node".into()))?;
        let want = ipnet::IpNet::V4(felix.block);
        let gw = cut_node.addr(Family::Ipv4);
        wait_for(&format!("{want} back on {}", node.name), TIMEOUT, || {
            let routes = node.ns.routes(Family::Ipv4)?;
            Ok(if crate::calico::has_route_via(&routes, want, gw, "bird") {
                Ok(())
            } else {
                Err(format!("kernel routes: {routes:?}"))
            })
        })?;
    }
    let block_back = restored_at.elapsed();
    p1.ns.wait_ping(IpAddr::V4(p3.ip), None, TIMEOUT)?;
    p2.ns.wait_ping(IpAddr::V4(p3.ip), None, TIMEOUT)?;
    say(&format!(
        "bgpd bfd cluster: restored: BFD Up everywhere after {} ms, n3's block back on n1, n2 after {} ms, its pod answers again",
        bfd_back.as_millis(),
        block_back.as_millis()
    ));

    for (name, pinger) in ["n1 -> n2", "n2 -> n1"].into_iter().zip(survivors) {
        let count = pinger.finish()?;
        say(&format!(
            "bgpd bfd cluster: pod pings {name} across the cut and the restore: {} sent, {} lost",
            count.sent,
            count.lost()
        ));
        if count.lost() != 0 {
            return Err(Error::Check(format!("{name}: {count:?}")));
        }
    }
    Ok(())
}
