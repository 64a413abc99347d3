//! Calico end to end with real peers: node namespaces with Felix-like state
//! (blackhole /26 block, protocol 80; pods behind cali* veths with /32 routes,
//! protocol 3) running calico-node style BIRD 2 in an iBGP full mesh. Every
//! node must install every other node's block via that node (protocol bird)
//! and every pod must reach every pod on the other nodes.
//!
//! This is the template for the bgpd cluster tests: replace the BIRD of some
//! or all nodes by bgpd (`interop::Bgpd`) and keep the checks.

use std::net::IpAddr;

use interop::calico::{bird_config, has_route_via, setup_felix, FelixState};
use interop::{
    binaries_for, run_test, wait_established, wait_for, Bird, Family, Kind, Node, Segment, TIMEOUT,
};

const NODES: u32 = 3;
const ASN: u32 = 64512;

#[test]
fn bird_calico_mesh_pods_reach_each_other() {
    run_test(
        "bird_calico_mesh_pods_reach_each_other",
        &binaries_for(&[Kind::Bird]),
        |t| {
            let seg = Segment::new(t)?;
            let pool: ipnet::Ipv4Net = "10.244.0.0/16".parse().expect("literal");
            let mut nodes: Vec<(Node, FelixState)> = Vec::new();
            for i in 1..=NODES {
                let node = Node::new(t, &seg, &format!("n{i}"), i)?;
                let block = format!("10.244.{i}.0/26").parse().expect("literal");
                let felix = setup_felix(t, &node, block, 1)?;
                nodes.push((node, felix));
            }
            // Before BGP runs, pods on different nodes cannot reach each other.
            let (first, second) = (&nodes[0].1.pods[0], &nodes[1].1.pods[0]);
            if matches!(first.ns.ping(IpAddr::V4(second.ip), None), Ok(true)) {
                return Err(interop::Error::Check(
                    "pods reachable before BGP ran".into(),
                ));
            }
            let mut birds = Vec::new();
            for (node, felix) in &nodes {
                let mesh: Vec<_> = nodes
                    .iter()
                    .filter(|(n, _)| n.v4 != node.v4)
                    .map(|(n, _)| n.v4)
                    .collect();
                let text = bird_config(node.v4, ASN, felix.block, pool, &mesh);
                let protocols = mesh
                    .iter()
                    .map(|p| (interop::calico::mesh_name(IpAddr::V4(*p)), IpAddr::V4(*p)))
                    .collect();
                birds.push(Bird::start_with_config(
                    t,
                    node,
                    &format!("bird-{}", node.name),
                    &text,
                    protocols,
                )?);
            }
            for ((node, _), bird) in nodes.iter().zip(&birds) {
                for (peer, _) in nodes.iter().filter(|(n, _)| n.v4 != node.v4) {
                    wait_established(bird, peer.addr(Family::Ipv4), TIMEOUT)?;
                }
            }
            // Kernel: every other node's block via that node, protocol bird.
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
            Ok(())
        },
    );
}
