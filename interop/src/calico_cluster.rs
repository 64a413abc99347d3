//! A Calico namespace cluster: node namespaces on one bridge, each with Felix-like state
//! ([`setup_felix`]: a blackhole /26 block, a pod behind a `cali*` veth) and calico-node
//! style BIRD 2 or bgpd, in an iBGP full mesh using Calico's rule for which side connects,
//! or with route reflectors. [`start`] returns it once every session is up, every node
//! holds every other node's block via that node (protocol 12, "bird") and every pod
//! reaches every pod on the other nodes (before BGP runs they cannot).
//!
//! [`Pinger`] sends echoes from one pod to another ten times a second and counts what
//! came back, for the restart tests' "nothing lost" figures.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::calico::{
    bgpd_config, bgpd_config_calico_mode, bgpd_config_timers, bgpd_config_with, bird_config_timers,
    has_route_via, mesh_name, setup_felix, CalicoPeer, FelixState, Pod, SessionTimers,
};
use crate::process::Process;
use crate::{
    require_binary, wait_established, wait_for, Bgpd, Bird, Error, Family, Kind, Node, Result,
    Segment, Speaker, Test, TIMEOUT,
};

/// The cluster's AS.
pub const ASN: u32 = 64512;

/// A running cluster: nodes with their Felix state and speakers (`speakers[i]` runs on
/// `nodes[i]`).
pub struct Cluster {
    /// The nodes, in order (`n1`, `n2`, ...), with their Felix state.
    pub nodes: Vec<(Node, FelixState)>,
    /// The speaker of each node.
    pub speakers: Vec<Box<dyn Speaker>>,
    seg: Segment,
}

/// How [`start`] builds the cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterOptions {
    /// When above 0, the first `reflectors` nodes are route reflectors (one cluster id,
    /// meshed among themselves) and every other node peers with them only (bgpd nodes
    /// only); 0: a full mesh.
    pub reflectors: usize,
    /// The session timers of every node (mesh only); `None`: the usual ones.
    pub timers: Option<SessionTimers>,
    /// bgpd nodes run Calico mode's graceful restart rules
    /// ([`RestartRules::CalicoMode`](crate::calico::RestartRules::CalicoMode); mesh with
    /// `timers` only).
    pub calico_mode: bool,
    /// BFD (RFC 5882) on every bgpd mesh session (mesh only); `None`: without.
    pub bfd: Option<MeshBfd>,
}

/// The BFD settings of the bgpd mesh sessions (docs/config.md, "BFD").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeshBfd {
    /// Desired Min TX and Required Min RX, milliseconds.
    pub interval_ms: u32,
    /// Detect Mult.
    pub multiplier: u8,
}

/// `config` (a mesh configuration from [`crate::calico`]) with `bfd` in its mesh
/// template, so every mesh peer runs BFD.
fn with_mesh_bfd(config: &str, bfd: MeshBfd) -> Result<String> {
    const TEMPLATE: &str = "[templates.mesh]\n";
    if !config.contains(TEMPLATE) {
        return Err(Error::Invalid(
            "a bgpd mesh config without [templates.mesh]".into(),
        ));
    }
    Ok(config.replacen(
        TEMPLATE,
        &format!(
            "{TEMPLATE}bfd = {{ min_rx_ms = {0}, min_tx_ms = {0}, multiplier = {1} }}\n",
            bfd.interval_ms, bfd.multiplier
        ),
        1,
    ))
}

/// Node `i` (1-based) runs `kinds[i - 1]`; checks sessions, kernel routes and pod-to-pod
/// pings, and returns the running cluster.
pub fn start(t: &Test, kinds: &[Kind], o: ClusterOptions) -> Result<Cluster> {
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
    let (Some((_, first)), Some((_, second))) = (nodes.first(), nodes.get(1)) else {
        return Err(Error::Invalid("a cluster needs two nodes".into()));
    };
    let (Some(first), Some(second)) = (first.pods.first(), second.pods.first()) else {
        return Err(Error::Invalid("a node without pods".into()));
    };
    if matches!(first.ns.ping(IpAddr::V4(second.ip), None), Ok(true)) {
        return Err(Error::Check("pods reachable before BGP ran".into()));
    }
    let reflectors = o.reflectors;
    let mut speakers: Vec<Box<dyn Speaker>> = Vec::new();
    let all: Vec<_> = nodes.iter().map(|(n, _)| n.v4).collect();
    let is_rr = |a: &Ipv4Addr| reflectors > 0 && all.iter().take(reflectors).any(|r| r == a);
    // The sessions of a node: everyone in a mesh; with reflectors, an RR
    // talks to everyone (clients marked), a client to the RRs only.
    let sessions_of = |me: Ipv4Addr| -> Vec<Ipv4Addr> {
        all.iter()
            .copied()
            .filter(|p| *p != me && (reflectors == 0 || is_rr(&me) || is_rr(p)))
            .collect()
    };
    let cluster_id: Ipv4Addr = "192.0.2.1"
        .parse()
        .map_err(|_| Error::Invalid("id".into()))?;
    for ((node, felix), kind) in nodes.iter().zip(kinds) {
        let mesh = sessions_of(node.v4);
        let label = format!("{}-{}", kind.name(), node.name);
        speakers.push(match kind {
            Kind::Bird => {
                let text = bird_config_timers(node.v4, ASN, felix.block, pool, &mesh, o.timers);
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
                let text = match (o.timers, o.calico_mode) {
                    (Some(timers), true) => {
                        bgpd_config_calico_mode(node.v4, ASN, &mesh, timers, &socket)
                    }
                    (Some(timers), false) => {
                        bgpd_config_timers(node.v4, ASN, &mesh, timers, &socket)
                    }
                    (None, _) => bgpd_config(node.v4, ASN, &mesh, &socket),
                };
                let text = match o.bfd {
                    Some(bfd) => with_mesh_bfd(&text, bfd)?,
                    None => text,
                };
                Box::new(Bgpd::start_with_config(t, node, &label, &text, &socket)?)
            }
            other => return Err(Error::Invalid(format!("{other:?} has no Calico config"))),
        });
    }
    for ((node, _), speaker) in nodes.iter().zip(&speakers) {
        for peer in sessions_of(node.v4) {
            wait_established(&**speaker, IpAddr::V4(peer), TIMEOUT)?;
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
            src.ns.wait_ping(IpAddr::V4(dst.ip), None, TIMEOUT)?;
        }
    }
    Ok(Cluster {
        nodes,
        speakers,
        seg,
    })
}

impl Cluster {
    /// Cuts node `i` off the others (`up` false) or restores it (`up` true) by the state
    /// of its bridge port: its own link stays up, so only BFD or the hold timer can tell.
    pub fn cut(&self, i: usize, up: bool) -> Result<()> {
        let (node, _) = self
            .nodes
            .get(i)
            .ok_or_else(|| Error::Invalid(format!("no node {i}")))?;
        let cut = crate::cut::Cut::BridgePort {
            bridge: std::sync::Arc::clone(self.seg.netns()),
            port: crate::cut::bridge_port(&self.seg, node)?,
        };
        cut.set(up)
    }

    /// The control socket of node `i`'s bgpd (as [`start`] placed it).
    pub fn bgpd_socket(&self, t: &Test, i: usize) -> Result<std::path::PathBuf> {
        let (node, _) = self
            .nodes
            .get(i)
            .ok_or_else(|| Error::Invalid(format!("no node {i}")))?;
        Ok(t.subdir(&format!("bgpd-{}", node.name))?.join("bgpd.sock"))
    }

    /// When node `gone`'s block left the kernel of every node in `watchers`, measured
    /// from `since`, polling every 20 ms for at most `bound`: one figure per watcher.
    pub fn block_gone_times(
        &self,
        gone: usize,
        watchers: &[usize],
        since: std::time::Instant,
        bound: Duration,
    ) -> Result<Vec<Duration>> {
        let (_, felix) = self
            .nodes
            .get(gone)
            .ok_or_else(|| Error::Invalid(format!("no node {gone}")))?;
        let block = ipnet::IpNet::V4(felix.block);
        let mut seen: Vec<Option<Duration>> = vec![None; watchers.len()];
        loop {
            for (slot, &w) in seen.iter_mut().zip(watchers) {
                if slot.is_some() {
                    continue;
                }
                let (node, _) = self
                    .nodes
                    .get(w)
                    .ok_or_else(|| Error::Invalid(format!("no node {w}")))?;
                let at = since.elapsed();
                if !node.ns.routes(Family::Ipv4)?.iter().any(|r| r.dst == block) {
                    *slot = Some(at);
                }
            }
            if seen.iter().all(Option::is_some) {
                return Ok(seen.into_iter().flatten().collect());
            }
            if since.elapsed() > bound {
                return Err(Error::Timeout {
                    what: format!("{block} to leave the kernels of nodes {watchers:?}"),
                    secs: bound.as_secs(),
                    last: format!("gone after: {seen:?}"),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether bgpd's session `peer` (on the bgpd with control socket `socket`)
/// negotiated the RFC 8538 N bit: both OPENs carried the graceful restart
/// capability with N set.
pub fn n_bit_negotiated(socket: &std::path::Path, peer: &str) -> Result<bool> {
    let v = crate::bgpd::control_at(
        socket,
        serde_json::json!({"command": "show_peer", "name": peer}),
    )?;
    let has_n = |key: &str| {
        v.get(key)
            .and_then(serde_json::Value::as_array)
            .is_some_and(|caps| {
                caps.iter()
                    .filter_map(serde_json::Value::as_str)
                    .any(|c| c.starts_with("GracefulRestart(") && c.contains("notification: true"))
            })
    };
    Ok(has_n("capabilities_sent") && has_n("capabilities_received"))
}

/// Echoes from one pod to another, ten a second, counted (`ping -i 0.1 -W 1`).
pub struct Pinger {
    process: Process,
}

/// What a [`Pinger`] counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingCount {
    /// Echoes sent.
    pub sent: u64,
    /// Answers received.
    pub received: u64,
}

impl PingCount {
    /// Echoes without an answer.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

impl Pinger {
    /// Starts `count` echoes from `src` to `dst` and waits for the first 10 answers.
    pub fn start(t: &Test, src: &Pod, dst: &Pod, count: u32) -> Result<Pinger> {
        let ping_bin = require_binary("ping")?;
        let dst_ip = dst.ip.to_string();
        let count = count.to_string();
        let process = Process::spawn(
            t,
            &src.ns,
            &format!("ping-{dst_ip}"),
            &ping_bin,
            &["-n", "-c", &count, "-i", "0.1", "-W", "1", &dst_ip],
            &[],
        )?;
        let p = Pinger { process };
        wait_for("ping to get 10 replies", TIMEOUT, || {
            p.process.check_running()?;
            Ok(if p.replies() >= 10 {
                Ok(())
            } else {
                Err(format!("{} replies", p.replies()))
            })
        })?;
        Ok(p)
    }

    /// Answers so far.
    pub fn replies(&self) -> usize {
        std::fs::read_to_string(self.process.stdout_path())
            .unwrap_or_default()
            .matches("bytes from")
            .count()
    }

    /// Waits for the last echo and returns ping's own count.
    pub fn finish(mut self) -> Result<PingCount> {
        self.process.wait_exit(Duration::from_secs(300))?;
        self.count()
    }

    /// Stops the echoes now (SIGINT: ping prints its summary) and returns ping's count.
    pub fn stop(mut self) -> Result<PingCount> {
        self.process.signal(libc::SIGINT)?;
        self.process.wait_exit(Duration::from_secs(10))?;
        self.count()
    }

    fn count(&self) -> Result<PingCount> {
        let out = std::fs::read_to_string(self.process.stdout_path())
            .map_err(|e| Error::Check(format!("ping output: {e}")))?;
        let summary = out
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .ok_or_else(|| Error::Check(format!("no ping summary in {out}")))?;
        let nums: Vec<u64> = summary
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        match nums.as_slice() {
            [sent, received, ..] => Ok(PingCount {
                sent: *sent,
                received: *received,
            }),
            _ => Err(Error::Check(format!("bad ping summary {summary:?}"))),
        }
    }
}
