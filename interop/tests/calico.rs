//! Calico end to end: node namespaces on one bridge with Felix-like state
//! (blackhole /26 block, protocol 80; a pod behind a cali* veth with a /32
//! route, protocol 3) and an iBGP full mesh using Calico's rule for which side
//! connects. Each node runs calico-node style BIRD 2 or bgpd. Every node must
//! install every other node's block via that node (protocol 12, "bird") and
//! every pod must reach every pod on the other nodes; before BGP runs they
//! cannot.
//!
//! The IPIP scenarios put the nodes on two subnets joined by a router that
//! knows only the node subnets, and check the kernel route form per pair
//! (`via NODE dev tunl0 onlink` or direct) as well as pod-to-pod pings, which
//! can only cross the router encapsulated. `tunl0` is the kernel's real ipip
//! device when the kernel has one, otherwise a VXLAN device named `tunl0`
//! standing in for it (see `interop::calico::setup_tunl0`); the test prints
//! which one ran.
//!
//! `harness_sweeps_leftovers_of_dead_test_processes` checks the harness's
//! clean-up of namespaces and daemons left behind by a killed test binary.

use std::net::{IpAddr, Ipv4Addr};

use interop::calico::{
    bgpd_config, bgpd_config_pool, has_direct_route, has_tunnel_route, mesh_name, setup_felix,
    setup_tunl0, CalicoPeer, FelixState, IpPool, IpipMode, SessionTimers,
};
use interop::calico_cluster::{n_bit_negotiated, Cluster, ClusterOptions, Pinger};
use interop::{
    binaries_for, run_test, wait_established, wait_for, Bgpd, Error, Family, Kind, Node, Result,
    Router, Segment, Speaker, Test, TIMEOUT,
};

const ASN: u32 = 64512;

/// A running cluster ([`interop::calico_cluster`]).
type Mesh = Cluster;

/// Node `i` (1-based) runs `kinds[i - 1]` in a full mesh; checks sessions,
/// kernel routes and pod-to-pod pings, and returns the running cluster.
fn calico_mesh(t: &Test, kinds: &[Kind]) -> Result<Mesh> {
    calico_cluster(t, kinds, 0, None)
}

/// Like [`calico_mesh`], but when `reflectors > 0` the first `reflectors`
/// nodes are route reflectors (one cluster id, meshed among themselves) and
/// every other node peers with them only (Calico with RRs; bgpd nodes only).
///
/// `timers`: the session timers of every node (hold time, keepalive, graceful
/// restart time; mesh only); `None` keeps the usual configuration.
fn calico_cluster(
    t: &Test,
    kinds: &[Kind],
    reflectors: usize,
    timers: Option<SessionTimers>,
) -> Result<Mesh> {
    interop::calico_cluster::start(
        t,
        kinds,
        ClusterOptions {
            reflectors,
            timers,
            calico_mode: false,
            bfd: None,
        },
    )
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
        let ping = Pinger::start(t, &mesh.nodes[0].1.pods[0], &mesh.nodes[1].1.pods[0], 200)?;
        let before = ping.replies();
        mesh.speakers[1].process_mut().restart_with(t, &["-R"])?;
        for (peer, _) in mesh
            .nodes
            .iter()
            .filter(|(n, _)| n.v4 != mesh.nodes[1].0.v4)
        {
            wait_established(&*mesh.speakers[1], peer.addr(Family::Ipv4), TIMEOUT)?;
        }
        if ping.replies() <= before {
            return Err(Error::Check("ping ended before bgpd was back".into()));
        }
        let count = ping.finish()?;
        interop::say(&format!(
            "bgpd_restart_under_ping_loses_nothing: {} echoes sent, {} answered, {} lost across the bgpd restart",
            count.sent,
            count.received,
            count.lost()
        ));
        if count.lost() > 0 {
            return Err(Error::Check(format!(
                "lost {} of {} echoes",
                count.lost(),
                count.sent
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
            a.ns.wait_ping(std::net::IpAddr::V4(b.ip), None, TIMEOUT)
        },
    );
}

/// Failure-detection timers of the vanishing-node tests: hold 9 s, keepalive
/// 3 s, graceful restart time 6 s.
const FAST: SessionTimers = SessionTimers {
    hold_time: 9,
    keepalive: 3,
    restart_time: Some(6),
};

/// What one surviving node saw after the vanishing node was cut off,
/// measured from the cut.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    /// The session to the vanished node left Established.
    down: Option<std::time::Duration>,
    /// The vanished node's block left the kernel.
    gone: Option<std::time::Duration>,
}

/// A node vanishes without any configuration change: the cluster (`kinds`,
/// [`FAST`] timers) is up and every pod reaches every pod, then node
/// `gone`'s link is set down inside its namespace, so no FIN or RST reaches
/// the others and only their hold timers can notice.
///
/// Every other node must see its session to the vanished node leave
/// Established, and a bgpd survivor must have sent the hold timer expired
/// NOTIFICATION (4/0, RFC 4271 6.5) by its log and `show peer`; a BIRD
/// survivor must log the hold timer expiry. The vanished node's block must
/// leave every surviving kernel. Graceful restart decides when (RFC 4724
/// 4.2, RFC 8538 4): a bgpd survivor that negotiated the N bit with the
/// vanished node keeps its routes stale for the restart time it announced
/// (logged as such, `stale_for_secs=6`) and drops them when it ends; the
/// block must be gone within 3 x (hold + restart time) of the cut, a
/// generous bound on a shared 2-core machine, and the measured times are
/// printed. The surviving pods keep reaching each other.
fn node_vanishes(t: &Test, kinds: &[Kind], gone: usize) -> Result<()> {
    let mut mesh = calico_cluster(t, kinds, 0, Some(FAST))?;
    let (gone_node, gone_felix) = mesh
        .nodes
        .get(gone)
        .ok_or_else(|| Error::Invalid(format!("no node {gone}")))?;
    let block = ipnet::IpNet::V4(gone_felix.block);
    let gone_addr = gone_node.addr(Family::Ipv4);
    let gone_name = mesh_name(gone_addr);
    let survivors: Vec<usize> = (0..mesh.nodes.len()).filter(|i| *i != gone).collect();
    // Per bgpd survivor: its control socket and whether the N bit applies.
    let mut n_bit = vec![None; mesh.nodes.len()];
    for &i in &survivors {
        if kinds[i] == Kind::Bgpd {
            let socket = t
                .subdir(&format!("bgpd-{}", mesh.nodes[i].0.name))?
                .join("bgpd.sock");
            n_bit[i] = Some((n_bit_negotiated(&socket, &gone_name)?, socket));
        }
    }
    let log_len: Vec<usize> = mesh
        .speakers
        .iter_mut()
        .map(|s| s.process_mut().output_so_far().len())
        .collect();

    let cut = std::time::Instant::now();
    gone_node
        .ns
        .ip(&["link", "set", &gone_node.ifname, "down"])?;

    let hold = u64::from(FAST.hold_time);
    let restart = FAST.restart_time.map_or(0, u64::from);
    let bound = std::time::Duration::from_secs(3 * (hold + restart));
    let mut seen = vec![Seen::default(); mesh.nodes.len()];
    wait_for(
        &format!("{block} to leave every other node's kernel after the cut"),
        bound,
        || {
            for &i in &survivors {
                let at = cut.elapsed();
                let s = &mut seen[i];
                if s.down.is_none() {
                    mesh.speakers[i].check_running()?;
                    let peers = mesh.speakers[i].peers()?;
                    if peers
                        .iter()
                        .any(|p| p.address == gone_addr && !p.established)
                    {
                        s.down = Some(at);
                    }
                }
                if s.gone.is_none() {
                    let routes = mesh.nodes[i].0.ns.routes(Family::Ipv4)?;
                    if !routes.iter().any(|r| r.dst == block) {
                        s.gone = Some(at);
                    }
                }
            }
            let pending: Vec<_> = survivors
                .iter()
                .filter(|i| seen[**i].down.is_none() || seen[**i].gone.is_none())
                .map(|i| format!("{}: {:?}", mesh.nodes[*i].0.name, seen[*i]))
                .collect();
            Ok(if pending.is_empty() {
                Ok(())
            } else {
                Err(pending.join("; "))
            })
        },
    )?;
    let mut lines = Vec::new();
    for &i in &survivors {
        let name = &mesh.nodes[i].0.name;
        let (down, gone_at) = match (seen[i].down, seen[i].gone) {
            (Some(d), Some(g)) => (d, g),
            other => return Err(Error::Check(format!("{name}: {other:?}"))),
        };
        if gone_at < down {
            return Err(Error::Check(format!(
                "{name}: {block} left the kernel ({gone_at:?}) before the session went down ({down:?})"
            )));
        }
        let log = mesh.speakers[i].process_mut().output_so_far();
        // What it logged since the cut (all of it if the offset were to
        // split a character).
        let after = log.get(log_len[i]..).unwrap_or(&log);
        let mut rule = "its own rules";
        match &n_bit[i] {
            Some((n, socket)) => {
                if !after.lines().any(|l| {
                    l.contains("NOTIFICATION sent")
                        && l.contains("hold timer expired")
                        && l.contains(&gone_name)
                }) {
                    return Err(Error::Check(format!(
                        "{name}: no hold timer NOTIFICATION to {gone_name} logged: {after}"
                    )));
                }
                let v = interop::bgpd::control_at(
                    socket,
                    serde_json::json!({"command": "show_peer", "name": gone_name}),
                )?;
                let last = v
                    .get("last_notification_sent")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                if !last.contains("hold timer expired") {
                    return Err(Error::Check(format!(
                        "{name}: last NOTIFICATION sent to {gone_name} is {last:?}"
                    )));
                }
                let stale = after.lines().any(|l| {
                    l.contains("keeping routes as stale")
                        && l.contains(&gone_name)
                        && l.contains(&format!("stale_for_secs={restart}"))
                });
                if *n && !stale {
                    return Err(Error::Check(format!(
                        "{name}: N bit negotiated with {gone_name}, but its routes were not kept stale for {restart} s (RFC 8538 4): {after}"
                    )));
                }
                // Without the N bit, hold expiry is a NOTIFICATION-ended session,
                // which RFC 4724 does not cover: the routes go at once.
                let any_stale = after
                    .lines()
                    .any(|l| l.contains("keeping routes as stale") && l.contains(&gone_name));
                if !*n && any_stale {
                    return Err(Error::Check(format!(
                        "{name}: no N bit with {gone_name}, yet its routes were kept stale after hold timer expiry (RFC 4724/8538): {after}"
                    )));
                }
                rule = if *n {
                    "N bit: stale for the restart time (RFC 8538 4)"
                } else {
                    "no N bit"
                };
            }
            None => {
                if !after.to_lowercase().contains("hold timer expired") {
                    return Err(Error::Check(format!(
                        "{name}: no hold timer expiry logged: {after}"
                    )));
                }
            }
        }
        lines.push(format!(
            "{name} ({}) saw the session down after {:.1} s and {block} gone after {:.1} s ({rule})",
            kinds[i].name(),
            down.as_secs_f64(),
            gone_at.as_secs_f64()
        ));
    }
    interop::say(&format!(
        "{}: {} ({}) cut off with hold {hold} s, restart time {restart} s: {}",
        t.name(),
        gone_node.name,
        kinds[gone].name(),
        lines.join("; ")
    ));
    // The survivors still reach each other.
    for &i in &survivors {
        for &j in survivors.iter().filter(|j| **j != i) {
            let (a, b) = (&mesh.nodes[i].1.pods[0], &mesh.nodes[j].1.pods[0]);
            a.ns.wait_ping(IpAddr::V4(b.ip), None, TIMEOUT)?;
        }
    }
    Ok(())
}

/// Calico item 5, failure case: a bgpd node of a bgpd mesh loses its link
/// (no configuration change, no FIN/RST). See [`node_vanishes`].
#[test]
fn bgpd_node_vanishing_is_removed_after_hold_time() {
    let kinds = [Kind::Bgpd, Kind::Bgpd, Kind::Bgpd];
    run_test(
        "bgpd_node_vanishing_is_removed_after_hold_time",
        &binaries_for(&kinds),
        |t| node_vanishes(t, &kinds, 2),
    );
}

/// Mixed cluster, failure case: a bgpd node vanishes from a mesh of bgpd and
/// calico-node style BIRD; both the bgpd and the BIRD survivor drop its
/// block. See [`node_vanishes`].
#[test]
fn mixed_bgpd_node_vanishing_is_removed_by_bird_and_bgpd() {
    let kinds = [Kind::Bgpd, Kind::Bird, Kind::Bgpd];
    run_test(
        "mixed_bgpd_node_vanishing_is_removed_by_bird_and_bgpd",
        &binaries_for(&kinds),
        |t| node_vanishes(t, &kinds, 2),
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
        |t| calico_cluster(t, &kinds, 2, None).map(|_| ()),
    );
}

/// Which form a learned block must take in a node's kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `BLOCK via NODE dev eth0 proto bird`.
    Direct,
    /// `BLOCK via NODE dev tunl0 proto bird onlink`.
    Tunnel,
}

/// Calico on two subnets: `on_a` nodes on 10.0.0.0/24 and `on_b` on
/// 10.0.1.0/24, joined by a router (host .254 on both) that knows only those
/// two subnets; every node's default route points at it. Each node has
/// Felix-like state (block 10.244.N.0/26, one pod), a `tunl0` with the
/// block's first address, and bgpd in a full mesh with the pool
/// 10.244.0.0/16 in IPIP mode `mode`.
///
/// Checks, in order: the underlay crosses the router and pods cannot reach
/// each other before BGP; every session establishes; every node installs
/// every other node's block in the form `mode` prescribes for that pair
/// (`Always`: tunnel; `CrossSubnet`: direct on the same subnet, tunnel across
/// the router); the router still knows no pool address; every pod pings every
/// pod on every other node.
fn calico_two_subnets(t: &Test, on_a: u32, on_b: u32, mode: IpipMode) -> Result<()> {
    let net4 = |s: &str| {
        s.parse::<ipnet::Ipv4Net>()
            .map_err(|e| Error::Invalid(format!("{s}: {e}")))
    };
    let net6 = |s: &str| {
        s.parse::<ipnet::Ipv6Net>()
            .map_err(|e| Error::Invalid(format!("{s}: {e}")))
    };
    let seg_a = Segment::with_subnets(t, net4("10.0.0.0/24")?, net6("fd00::/64")?)?;
    let seg_b = Segment::with_subnets(t, net4("10.0.1.0/24")?, net6("fd00:0:0:1::/64")?)?;
    let router = Router::new(t, "router", &[&seg_a, &seg_b], 254)?;
    let pool = IpPool {
        cidr: net4("10.244.0.0/16")?,
        ipip: mode,
    };
    // (node, its Felix state, index of its subnet)
    let mut nodes: Vec<(Node, FelixState, usize)> = Vec::new();
    for (subnet, (seg, count, prefix)) in [(&seg_a, on_a, "a"), (&seg_b, on_b, "b")]
        .into_iter()
        .enumerate()
    {
        for host in 1..=count {
            let node = Node::new(t, seg, &format!("{prefix}{host}"), host)?;
            node.route_via(&router, seg)?;
            let block = net4(&format!("10.244.{}.0/26", nodes.len() + 1))?;
            let felix = setup_felix(t, &node, block, 1)?;
            nodes.push((node, felix, subnet));
        }
    }
    let underlay: Vec<Ipv4Addr> = nodes.iter().map(|(n, _, _)| n.v4).collect();
    let mut kind = None;
    for (node, felix, _) in &nodes {
        let tunnel_ip = felix.block.network();
        let k = setup_tunl0(node, tunnel_ip, &underlay)?;
        if kind.is_some_and(|first| first != k) {
            return Err(Error::Check(format!(
                "{}: tunl0 is {k:?}, other nodes {kind:?}",
                node.name
            )));
        }
        kind = Some(k);
    }
    if let Some(k) = kind {
        interop::say(&format!("{}: {}", t.name(), k.describe()));
    }
    // The underlay is routed between the subnets; the pods are not.
    let (a1, b1) = match (nodes.first(), nodes.last()) {
        (Some(a), Some(b)) if a.2 != b.2 => (a, b),
        _ => return Err(Error::Invalid("need nodes on both subnets".into())),
    };
    a1.0.ns.wait_ping(IpAddr::V4(b1.0.v4), None, TIMEOUT)?;
    if a1.1.pods[0].ns.ping(IpAddr::V4(b1.1.pods[0].ip), None)? {
        return Err(Error::Check("pods reachable before BGP ran".into()));
    }
    let mut speakers: Vec<Box<dyn Speaker>> = Vec::new();
    for (node, _, _) in &nodes {
        let label = format!("bgpd-{}", node.name);
        let socket = t.subdir(&label)?.join("bgpd.sock");
        let peers: Vec<CalicoPeer> = underlay
            .iter()
            .filter(|p| **p != node.v4)
            .map(|p| CalicoPeer {
                address: *p,
                name: mesh_name(IpAddr::V4(*p)),
                rr_client: false,
            })
            .collect();
        let text = bgpd_config_pool(node.v4, ASN, &peers, None, pool, &socket);
        speakers.push(Box::new(Bgpd::start_with_config(
            t, node, &label, &text, &socket,
        )?));
    }
    for ((node, _, _), speaker) in nodes.iter().zip(&speakers) {
        for peer in underlay.iter().filter(|p| **p != node.v4) {
            wait_established(&**speaker, IpAddr::V4(*peer), TIMEOUT)?;
        }
    }
    for (node, _, subnet) in &nodes {
        for (peer, felix, peer_subnet) in nodes.iter().filter(|(n, _, _)| n.v4 != node.v4) {
            let form = match mode {
                IpipMode::Always => Form::Tunnel,
                IpipMode::CrossSubnet if subnet != peer_subnet => Form::Tunnel,
                IpipMode::CrossSubnet | IpipMode::Never => Form::Direct,
            };
            let dst = ipnet::IpNet::V4(felix.block);
            let gw = IpAddr::V4(peer.v4);
            wait_for(
                &format!("{dst} {form:?} via {gw} on {}", node.name),
                TIMEOUT,
                || {
                    let routes = node.ns.routes(Family::Ipv4)?;
                    let ok = match form {
                        Form::Tunnel => has_tunnel_route(&routes, dst, gw, "bird"),
                        Form::Direct => has_direct_route(&routes, dst, gw, &node.ifname, "bird"),
                    };
                    Ok(if ok {
                        Ok(())
                    } else {
                        Err(format!("kernel routes: {routes:?}"))
                    })
                },
            )?;
        }
    }
    let router_routes = router.ns.routes(Family::Ipv4)?;
    if let Some(r) = router_routes.iter().find(|r| match r.dst {
        ipnet::IpNet::V4(d) => pool.cidr.contains(&d) || d.contains(&pool.cidr.network()),
        ipnet::IpNet::V6(_) => false,
    }) {
        return Err(Error::Check(format!(
            "the router knows a pool route: {r:?}"
        )));
    }
    let pods: Vec<_> = nodes
        .iter()
        .flat_map(|(n, f, _)| f.pods.iter().map(move |p| (n.v4, p)))
        .collect();
    let mut pings = 0;
    for (src_node, src) in &pods {
        for (dst_node, dst) in &pods {
            if src_node == dst_node {
                continue;
            }
            src.ns.wait_ping(IpAddr::V4(dst.ip), None, TIMEOUT)?;
            pings += 1;
        }
    }
    // Each node's pod sent at least one echo request through the node's
    // tunl0 to every pod the tunnel form leads to.
    for (node, _, subnet) in &nodes {
        let tunnelled = nodes
            .iter()
            .filter(|(n, _, s)| n.v4 != node.v4 && (mode == IpipMode::Always || s != subnet))
            .map(|(_, f, _)| f.pods.len())
            .sum::<usize>();
        let sent = node.ns.link_packets(interop::calico::TUNNEL_DEVICE)?.tx;
        if sent < u64::try_from(tunnelled).unwrap_or(u64::MAX) {
            return Err(Error::Check(format!(
                "{}: tunl0 sent {sent} packets, fewer than the {tunnelled} pods it tunnels to",
                node.name
            )));
        }
    }
    interop::say(&format!(
        "{}: {} nodes ({on_a} + {on_b} on two subnets), {pings} pod-to-pod pings answered",
        t.name(),
        nodes.len()
    ));
    Ok(())
}

/// Calico IPIP `Always`: four nodes on one subnet and one on another. Every
/// node installs every other block as `via NODE dev tunl0 onlink`, even on
/// its own subnet, and every pod reaches every pod across the router, which
/// knows no pod address.
#[test]
fn bgpd_calico_ipip_always_tunnels_every_block() {
    let mut bins = binaries_for(&[Kind::Bgpd]);
    bins.extend(["bridge".to_string(), "ping".to_string()]);
    run_test("bgpd_calico_ipip_always_tunnels_every_block", &bins, |t| {
        calico_two_subnets(t, 4, 1, IpipMode::Always)
    });
}

/// Calico IPIP `CrossSubnet`: four nodes on one subnet and two on another.
/// Blocks of same-subnet nodes are direct (`via NODE dev eth0`), blocks of
/// the other subnet's nodes go through `tunl0` onlink, and every pod reaches
/// every pod.
#[test]
fn bgpd_calico_cross_subnet_tunnels_only_across_subnets() {
    let mut bins = binaries_for(&[Kind::Bgpd]);
    bins.extend(["bridge".to_string(), "ping".to_string()]);
    run_test(
        "bgpd_calico_cross_subnet_tunnels_only_across_subnets",
        &bins,
        |t| calico_two_subnets(t, 4, 2, IpipMode::CrossSubnet),
    );
}

/// Leftovers of a test process that died without cleaning up (killed by a
/// time limit) are swept: a namespace named after a dead owner is deleted
/// and the daemon inside it carrying that owner's mark is killed; a
/// namespace of a dead owner holding a process without the mark is kept and
/// the process left alone; namespaces of live owners (ours) are untouched.
#[test]
fn harness_sweeps_leftovers_of_dead_test_processes() {
    use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
    use std::process::{Child, Command, Stdio};

    /// Kills what this test spawned and deletes what it created, whatever
    /// the outcome (children by PID; namespaces by name).
    struct Cleanup {
        children: Vec<Child>,
        names: Vec<String>,
    }
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for c in &mut self.children {
                let _ = c.kill();
                let _ = c.wait();
            }
            for n in &self.names {
                if std::path::Path::new("/run/netns").join(n).exists() {
                    let _ = Command::new("ip").args(["netns", "del", n]).status();
                }
            }
        }
    }
    let in_netns = |ns: &str, owner: Option<&interop::Owner>| -> Result<Child> {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, "sleep", "600"])
            .stdin(Stdio::null())
            .env_remove(interop::OWNER_ENV)
            .process_group(0);
        if let Some(o) = owner {
            c.env(interop::OWNER_ENV, o.mark());
        }
        c.spawn().map_err(|source| Error::Spawn {
            cmd: format!("ip netns exec {ns} sleep 600"),
            source,
        })
    };
    run_test(
        "harness_sweeps_leftovers_of_dead_test_processes",
        &["ip", "sleep"],
        |t| {
            let exists = |n: &str| std::path::Path::new("/run/netns").join(n).exists();
            let mut cleanup = Cleanup {
                children: Vec::new(),
                names: Vec::new(),
            };
            // A dead owner: a process that ran and was reaped.
            let mut gone =
                Command::new("sleep")
                    .arg("600")
                    .spawn()
                    .map_err(|source| Error::Spawn {
                        cmd: "sleep 600".into(),
                        source,
                    })?;
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", gone.id()))
                .map_err(|e| Error::Check(format!("stat of sleep: {e}")))?;
            let dead = interop::Owner {
                pid: gone.id(),
                start: interop::parse_stat_start_time(&stat),
            };
            let _ = gone.kill();
            let _ = gone.wait();
            if dead.start.is_none() || dead.is_alive() {
                return Err(Error::Check(format!("{dead:?} should be a dead owner")));
            }
            let tag = format!("sweep{}", std::process::id());
            let marked_ns = interop::netns_name(&tag, "marked", dead);
            let foreign_ns = interop::netns_name(&tag, "foreign", dead);
            for n in [&marked_ns, &foreign_ns] {
                Command::new("ip")
                    .args(["netns", "add", n])
                    .status()
                    .ok()
                    .filter(|s| s.success())
                    .ok_or_else(|| Error::Check(format!("ip netns add {n} failed")))?;
                cleanup.names.push(n.clone());
            }
            cleanup.children.push(in_netns(&marked_ns, Some(&dead))?);
            cleanup.children.push(in_netns(&foreign_ns, None)?);
            let (marked_pid, foreign_pid) = (cleanup.children[0].id(), cleanup.children[1].id());
            // Both are inside their namespace once `ip netns exec` has run.
            for (n, pid) in [(&marked_ns, marked_pid), (&foreign_ns, foreign_pid)] {
                wait_for(&format!("{pid} in {n}"), TIMEOUT, || {
                    let out = Command::new("ip")
                        .args(["netns", "pids", n])
                        .output()
                        .map_err(|source| Error::Spawn {
                            cmd: "ip netns pids".into(),
                            source,
                        })?;
                    let text = String::from_utf8_lossy(&out.stdout).into_owned();
                    Ok(if text.split_whitespace().any(|p| p == pid.to_string()) {
                        Ok(())
                    } else {
                        Err(format!("pids: {text:?}"))
                    })
                })?;
            }
            // A namespace of a live owner (this test process).
            let live = interop::Netns::new(t, "live")?;

            let sweep = interop::sweep_leftovers()?;

            // (A concurrent test binary's own sweep may have removed the
            // marked leftovers first: the end state is what must hold.)
            if exists(&marked_ns) {
                return Err(Error::Check(format!(
                    "{marked_ns} still exists after {sweep:?}"
                )));
            }
            let status = cleanup.children[0]
                .wait()
                .map_err(|e| Error::Check(format!("wait: {e}")))?;
            if status.signal() != Some(libc::SIGKILL) {
                return Err(Error::Check(format!(
                    "marked leftover daemon ended with {status}, not SIGKILL"
                )));
            }
            if !sweep.kept.contains(&(foreign_pid, foreign_ns.clone())) || !exists(&foreign_ns) {
                return Err(Error::Check(format!(
                    "{foreign_ns} with an unmarked process must be kept: {sweep:?}"
                )));
            }
            if cleanup.children[1]
                .try_wait()
                .map_err(|e| Error::Check(format!("try_wait: {e}")))?
                .is_some()
            {
                return Err(Error::Check("the unmarked process was signalled".into()));
            }
            if !exists(live.name()) || sweep.deleted.iter().any(|n| n == live.name()) {
                return Err(Error::Check(format!(
                    "live namespace {} touched: {sweep:?}",
                    live.name()
                )));
            }
            interop::say(&format!(
                "harness_sweeps_leftovers_of_dead_test_processes: deleted {:?}, killed {:?}, kept {:?}",
                sweep.deleted, sweep.killed, sweep.kept
            ));
            Ok(())
        },
    );
}

/// Mixed cluster, failure case: a calico-node style BIRD node (graceful
/// restart without the RFC 8538 N bit) vanishes from a bgpd mesh. Its bgpd
/// survivors must drop its block at hold timer expiry rather than keep it
/// stale for BIRD's restart time. See [`node_vanishes`].
#[test]
fn bird_node_vanishing_is_removed_by_bgpd_at_hold_expiry() {
    let kinds = [Kind::Bgpd, Kind::Bgpd, Kind::Bird];
    run_test(
        "bird_node_vanishing_is_removed_by_bgpd_at_hold_expiry",
        &binaries_for(&kinds),
        |t| node_vanishes(t, &kinds, 2),
    );
}
