//! Calico end to end: node namespaces on one bridge with Felix-like state
//! (blackhole /26 block, protocol 80; a pod behind a cali* veth with a /32
//! route, protocol 3) and an iBGP full mesh using Calico's rule for which side
//! connects. Each node runs calico-node style BIRD 2 or bgpd. Every node must
//! install every other node's block via that node (protocol 12, "bird") and
//! every pod must reach every pod on the other nodes; before BGP runs they
//! cannot.

use std::net::IpAddr;

use interop::calico::{
    bgpd_config, bgpd_config_with, bird_config, has_route_via, mesh_name, setup_felix, CalicoPeer,
    FelixState,
};
use interop::{
    binaries_for, run_test, wait_established, wait_for, Bgpd, Bird, Error, Family, Kind, Node,
    Process, Result, Segment, Speaker, Test, TIMEOUT,
};

const ASN: u32 = 64512;

/// A running cluster: nodes with their Felix state and speakers.
struct Mesh {
    nodes: Vec<(Node, FelixState)>,
    speakers: Vec<Box<dyn Speaker>>,
    _seg: Segment,
}

/// Node `i` (1-based) runs `kinds[i - 1]` in a full mesh; checks sessions,
/// kernel routes and pod-to-pod pings, and returns the running cluster.
fn calico_mesh(t: &Test, kinds: &[Kind]) -> Result<Mesh> {
    calico_cluster(t, kinds, 0)
}

/// Like [`calico_mesh`], but when `reflectors > 0` the first `reflectors`
/// nodes are route reflectors (one cluster id, meshed among themselves) and
/// every other node peers with them only (Calico with RRs; bgpd nodes only).
fn calico_cluster(t: &Test, kinds: &[Kind], reflectors: usize) -> Result<Mesh> {
    let seg = Segment::new(t)?;
    let pool: ipnet::Ipv4Net = "10.244.0.0/16"
        .parse()
        .map_err(|_| Error::Invalid("pool".into()))?;
    let mut nodes: Vec<(Node, FelixState)> = Vec::new();
    for i in 1..=u32::try_from(kinds.len()).unwrap_or(0) {
        let node = Node::new(t, &seg, &format!("n{i}"), i)?;
        let block = format!("10.244.{i}.0/26")
            .parse()
            .map_err(|_| Error::Invalid("block".into()))?;
        let felix = setup_felix(t, &node, block, 1)?;
        nodes.push((node, felix));
    }
    // Before BGP runs, pods on different nodes cannot reach each other.
    let (first, second) = (&nodes[0].1.pods[0], &nodes[1].1.pods[0]);
    if matches!(first.ns.ping(IpAddr::V4(second.ip), None), Ok(true)) {
        return Err(Error::Check("pods reachable before BGP ran".into()));
    }
    let mut speakers: Vec<Box<dyn Speaker>> = Vec::new();
    let all: Vec<_> = nodes.iter().map(|(n, _)| n.v4).collect();
    let is_rr =
        |a: &std::net::Ipv4Addr| reflectors > 0 && all.iter().take(reflectors).any(|r| r == a);
    // The sessions of a node: everyone in a mesh; with reflectors, an RR
    // talks to everyone (clients marked), a client to the RRs only.
    let sessions_of = |me: std::net::Ipv4Addr| -> Vec<std::net::Ipv4Addr> {
        all.iter()
            .copied()
            .filter(|p| *p != me && (reflectors == 0 || is_rr(&me) || is_rr(p)))
            .collect()
    };
    let cluster_id: std::net::Ipv4Addr = "192.0.2.1"
        .parse()
        .map_err(|_| Error::Invalid("id".into()))?;
    for ((node, felix), kind) in nodes.iter().zip(kinds) {
        let mesh = sessions_of(node.v4);
        let label = format!("{}-{}", kind.name(), node.name);
        speakers.push(match kind {
            Kind::Bird => {
                let text = bird_config(node.v4, ASN, felix.block, pool, &mesh);
                let protocols = mesh
                    .iter()
                    .map(|p| (mesh_name(IpAddr::V4(*p)), IpAddr::V4(*p)))
                    .collect();
                Box::new(Bird::start_with_config(t, node, &label, &text, protocols)?)
            }
            Kind::Bgpd if reflectors > 0 => {
                let socket = t.subdir(&label)?.join("bgpd.sock");
                let peers: Vec<CalicoPeer> = mesh
                    .iter()
                    .map(|p| CalicoPeer {
                        address: *p,
                        name: format!("Node_{}", p.to_string().replace('.', "_")),
                        rr_client: is_rr(&node.v4) && !is_rr(p),
                    })
                    .collect();
                let id = is_rr(&node.v4).then_some(cluster_id);
                let text = bgpd_config_with(node.v4, ASN, &peers, id, &socket);
                Box::new(Bgpd::start_with_config(t, node, &label, &text, &socket)?)
            }
            Kind::Bgpd => {
                let socket = t.subdir(&label)?.join("bgpd.sock");
                let text = bgpd_config(node.v4, ASN, &mesh, &socket);
                Box::new(Bgpd::start_with_config(t, node, &label, &text, &socket)?)
            }
            other => return Err(Error::Invalid(format!("{other:?} has no Calico config"))),
        });
    }
    for ((node, _), speaker) in nodes.iter().zip(&speakers) {
        for peer in sessions_of(node.v4) {
            wait_established(&**speaker, std::net::IpAddr::V4(peer), TIMEOUT)?;
        }
    }
    // Kernel: every other node's block via that node, protocol bird (12).
    for (node, _) in &nodes {
        for (peer, felix) in nodes.iter().filter(|(n, _)| n.v4 != node.v4) {
            let want = ipnet::IpNet::V4(felix.block);
            let gw = peer.addr(Family::Ipv4);
            wait_for(
                &format!("{want} via {gw} on {}", node.name),
                TIMEOUT,
                || {
                    let routes = node.ns.routes(Family::Ipv4)?;
                    Ok(if has_route_via(&routes, want, gw, "bird") {
                        Ok(())
                    } else {
                        Err(format!("kernel routes: {routes:?}"))
                    })
                },
            )?;
        }
    }
    // Data plane: every pod pings every pod on the other nodes.
    let pods: Vec<_> = nodes
        .iter()
        .flat_map(|(n, f)| f.pods.iter().map(move |p| (n.v4, p)))
        .collect();
    for (src_node, src) in &pods {
        for (dst_node, dst) in &pods {
            if src_node == dst_node {
                continue;
            }
            wait_for(&format!("ping {} -> {}", src.ip, dst.ip), TIMEOUT, || {
                Ok(if src.ns.ping(IpAddr::V4(dst.ip), None)? {
                    Ok(())
                } else {
                    Err("no reply".into())
                })
            })?;
        }
    }
    Ok(Mesh {
        nodes,
        speakers,
        _seg: seg,
    })
}

#[test]
fn bird_calico_mesh_pods_reach_each_other() {
    let kinds = [Kind::Bird, Kind::Bird, Kind::Bird];
    run_test(
        "bird_calico_mesh_pods_reach_each_other",
        &binaries_for(&kinds),
        |t| calico_mesh(t, &kinds).map(|_| ()),
    );
}
#[test]
fn bgpd_calico_mesh_pods_reach_each_other() {
    let kinds = [Kind::Bgpd, Kind::Bgpd, Kind::Bgpd, Kind::Bgpd];
    run_test(
        "bgpd_calico_mesh_pods_reach_each_other",
        &binaries_for(&kinds),
        |t| calico_mesh(t, &kinds).map(|_| ()),
    );
}

#[test]
fn mixed_bgpd_and_bird_calico_mesh() {
    let kinds = [Kind::Bgpd, Kind::Bird, Kind::Bgpd];
    run_test(
        "mixed_bgpd_and_bird_calico_mesh",
        &binaries_for(&kinds),
        |t| calico_mesh(t, &kinds).map(|_| ()),
    );
}

/// Graceful restart on a Calico node under traffic: a pod on node 1 pings a
/// pod on node 2 ten times a second while bgpd on node 2 is stopped and
/// started again as a restarting speaker (`-R`). Kernel routes persist across
/// the restart (`on_exit = "persist"`) and peers keep node 2's block during
/// it, so not one echo may be lost.
#[test]
fn bgpd_restart_under_ping_loses_nothing() {
    let kinds = [Kind::Bgpd, Kind::Bgpd, Kind::Bgpd];
    let mut bins = binaries_for(&kinds);
    bins.push("ping".into());
    run_test("bgpd_restart_under_ping_loses_nothing", &bins, |t| {
        let mut mesh = calico_mesh(t, &kinds)?;
        let src = mesh.nodes[0].1.pods[0].clone();
        let dst = mesh.nodes[1].1.pods[0].clone();
        let ping_bin = interop::require_binary("ping")?;
        let dst_ip = dst.ip.to_string();
        let mut ping = Process::spawn(
            t,
            &src.ns,
            "ping-10-per-s",
            &ping_bin,
            &["-n", "-c", "200", "-i", "0.1", "-W", "1", &dst_ip],
            &[],
        )?;
        let replies = |p: &Process| {
            std::fs::read_to_string(p.stdout_path())
                .unwrap_or_default()
                .matches("bytes from")
                .count()
        };
        wait_for("ping to get 10 replies", TIMEOUT, || {
            ping.check_running()?;
            Ok(if replies(&ping) >= 10 {
                Ok(())
            } else {
                Err(format!("{} replies", replies(&ping)))
            })
        })?;
        let before = replies(&ping);
        mesh.speakers[1].process_mut().restart_with(t, &["-R"])?;
        for (peer, _) in mesh
            .nodes
            .iter()
            .filter(|(n, _)| n.v4 != mesh.nodes[1].0.v4)
        {
            wait_established(&*mesh.speakers[1], peer.addr(Family::Ipv4), TIMEOUT)?;
        }
        if replies(&ping) <= before {
            return Err(Error::Check("ping ended before bgpd was back".into()));
        }
        ping.wait_exit(std::time::Duration::from_secs(120))?;
        let out = std::fs::read_to_string(ping.stdout_path())
            .map_err(|e| Error::Check(format!("ping output: {e}")))?;
        let summary = out
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .ok_or_else(|| Error::Check(format!("no ping summary in {out}")))?;
        let nums: Vec<u64> = summary
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        let (sent, received) = match nums.as_slice() {
            [s, r, ..] => (*s, *r),
            _ => return Err(Error::Check(format!("bad ping summary {summary:?}"))),
        };
        interop::say(&format!(
            "bgpd_restart_under_ping_loses_nothing: {sent} echoes sent, {received} answered, {} lost across the bgpd restart",
            sent - received.min(sent)
        ));
        if received != sent {
            return Err(Error::Check(format!(
                "lost {} of {sent} echoes: {summary}",
                sent - received.min(sent)
            )));
        }
        Ok(())
    });
}

/// A node leaves the cluster: its bgpd stops and, as Calico's confd does,
/// the other nodes' configurations are regenerated without it and reloaded.
/// Its block must disappear from every other node's kernel while the other
/// nodes keep reaching each other. (Stopping the node alone is not enough:
/// with graceful restart its peers rightly keep its block, stale, for the
/// restart time.)
#[test]
fn bgpd_node_leaving_is_removed_everywhere() {
    let kinds = [Kind::Bgpd, Kind::Bgpd, Kind::Bgpd];
    run_test(
        "bgpd_node_leaving_is_removed_everywhere",
        &binaries_for(&kinds),
        |t| {
            let mut mesh = calico_mesh(t, &kinds)?;
            let gone = ipnet::IpNet::V4(mesh.nodes[2].1.block);
            mesh.speakers[2].process_mut().stop()?;
            let remaining: Vec<_> = mesh.nodes.iter().take(2).map(|(n, _)| n.v4).collect();
            for (node, _) in mesh.nodes.iter().take(2) {
                let label = format!("bgpd-{}", node.name);
                let socket = t.subdir(&label)?.join("bgpd.sock");
                let others: Vec<_> = remaining
                    .iter()
                    .copied()
                    .filter(|a| *a != node.v4)
                    .collect();
                t.write(
                    &format!("{label}/bgp.toml"),
                    &bgpd_config(node.v4, ASN, &others, &socket),
                )?;
                interop::bgpd::control_at(&socket, serde_json::json!({"command": "reload"}))?;
            }
            for (node, _) in mesh.nodes.iter().take(2) {
                wait_for(
                    &format!("{gone} to leave {}'s kernel", node.name),
                    TIMEOUT,
                    || {
                        let routes = node.ns.routes(Family::Ipv4)?;
                        Ok(match routes.iter().find(|r| r.dst == gone) {
                            Some(r) => Err(format!("still there: {r:?}")),
                            None => Ok(()),
                        })
                    },
                )?;
            }
            let (a, b) = (&mesh.nodes[0].1.pods[0], &mesh.nodes[1].1.pods[0]);
            wait_for("remaining pods still reach each other", TIMEOUT, || {
                Ok(if a.ns.ping(std::net::IpAddr::V4(b.ip), None)? {
                    Ok(())
                } else {
                    Err("no reply".into())
                })
            })
        },
    );
}

/// Calico with two route reflectors instead of a mesh: nodes 1 and 2 reflect
/// (one cluster id), nodes 3 to 5 peer with them only. Every block still
/// reaches every kernel via its own node and every pod reaches every pod.
#[test]
fn bgpd_calico_two_route_reflectors_pods_reach_each_other() {
    let kinds = [Kind::Bgpd; 5];
    run_test(
        "bgpd_calico_two_route_reflectors_pods_reach_each_other",
        &binaries_for(&kinds),
        |t| calico_cluster(t, &kinds, 2).map(|_| ()),
    );
}
