//! Twin worlds for the Calico mode side-by-side tests: the same Calico node twice, once
//! with BIRD 1.6 on the configuration calico-node's confd renders, once with bgpd in Calico
//! mode rendering its configuration from the same Calico resources (`bgpd calico render`).
//!
//! A world is a segment (10.192.0.0/16, the scenarios' node subnet), the node namespace at
//! 10.192.0.2 with Felix-like kernel state (pod routes on `cali*` devices, an elevated one,
//! a borrowed address, Felix's routes on `tunl0` and `vxlan.calico`), and one BIRD 2
//! neighbour per session of the confd configuration, configured as the other end (AS,
//! ports, TTL security, passwords), each announcing routes with communities, AS paths and
//! LOCAL_PREFs inside the prefixes the configuration's filters name. [`World::observe`]
//! reads what every neighbour received from the node and what the node installed in its
//! kernel; twins must observe the same.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::bgpd::bgpd_binary;
use crate::bird::{parse_routes, Bird};
use crate::bird1::{self, Golden, Protocol};
use crate::context::Test;
use crate::error::{Error, Result};
use crate::model::{Family, Origin, RouteView};
use crate::netns::{parse_ip_route_json, Netns, Node, Segment};
use crate::process::Process;

/// The node's address in every scenario (`kube-master`).
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 192, 0, 2);

/// Which daemon runs the node.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Daemon {
    /// BIRD 1.6 on confd's configuration.
    Bird1,
    /// bgpd on `bgpd calico render`'s configuration.
    Bgpd,
}

/// A route as a neighbour received it (what is compared between twins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub next_hop: Option<IpAddr>,
    pub as_path: Vec<u32>,
    pub origin: Option<Origin>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
}

impl From<&RouteView> for Received {
    fn from(r: &RouteView) -> Received {
        Received {
            next_hop: r.next_hop,
            as_path: r.as_path.clone(),
            origin: r.origin,
            med: r.med,
            local_pref: r.local_pref,
            communities: r.communities.clone(),
            large_communities: r.large_communities.clone(),
            originator_id: r.originator_id,
            cluster_list: r.cluster_list.clone(),
        }
    }
}

/// A route the node installed (protocol `bird`), normalised.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Installed {
    pub dst: IpNet,
    pub kind: String,
    pub gateways: Vec<IpAddr>,
    pub dev: Option<String>,
    pub metric: Option<u32>,
    pub onlink: bool,
}

/// What a world shows once converged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// Per neighbour session name: prefix → attributes.
    pub received: BTreeMap<String, BTreeMap<IpNet, Received>>,
    /// The node's kernel routes of protocol `bird`.
    pub installed: Vec<Installed>,
}

/// One scenario: confd's files and the resources they were rendered from.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// `compiled_templates/<name>` holds the confd files.
    pub golden: PathBuf,
    /// Calico resources (YAML files), in order.
    pub resources: Vec<PathBuf>,
    /// The Calico node name.
    pub node: String,
}

/// A route a neighbour announces, with what it sets on it.
#[derive(Clone, Debug)]
struct Announcement {
    prefix: Ipv4Net,
    communities: Vec<(u16, u16)>,
    large: Vec<(u32, u32, u32)>,
    prepend: Vec<u32>,
    local_pref: Option<u32>,
}

/// A running world.
pub struct World {
    /// The node.
    pub node: Node,
    _segment: Segment,
    neighbours: Vec<(Protocol, Bird, Node)>,
    daemon: Process,
}

fn nth_v4(net: Ipv4Net, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()).wrapping_add(n))
}

/// A /26 inside `net` (or `net` itself when it is longer), the `k`-th one.
fn block_in(net: Ipv4Net, k: u32) -> Ipv4Net {
    if net.prefix_len() >= 26 {
        return net;
    }
    let size = 1u32 << (32 - net.prefix_len());
    let off = (k.wrapping_mul(64).wrapping_add(128)) % size;
    Ipv4Net::new(nth_v4(net, off), 26)
        .map(|n| n.trunc())
        .unwrap_or(net)
}

/// The announcements of neighbour `k` of `n`: the prefixes the filters name, shared out,
/// with attributes varied by position.
fn announcements(g: &Golden, k: usize, n: usize, ibgp: bool) -> Vec<Announcement> {
    let mut prefixes: Vec<Ipv4Net> = g
        .prefixes
        .iter()
        .filter(|p| p.prefix_len() <= 30 && p.prefix_len() >= 8)
        .map(|p| block_in(*p, k as u32))
        .collect();
    prefixes.push("203.0.113.0/24".parse().unwrap_or(Ipv4Net::default()));
    prefixes.sort();
    prefixes.dedup();
    let mut comms = g.communities.clone();
    comms.extend([(65000, 100), (65000, 42)]);
    comms.dedup();
    prefixes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % n.max(1) == k)
        .map(|(i, prefix)| Announcement {
            prefix,
            communities: match i % 3 {
                0 => Vec::new(),
                1 => comms.iter().take(1).copied().collect(),
                _ => comms.clone(),
            },
            large: if i % 2 == 0 {
                vec![(65000, 1, 2)]
            } else {
                Vec::new()
            },
            prepend: match i % 4 {
                0 => Vec::new(),
                1 => vec![65000],
                2 => vec![65000, 65001],
                _ => vec![65001],
            },
            local_pref: ibgp
                .then_some(match i % 3 {
                    0 => None,
                    1 => Some(2_147_482_623),
                    _ => Some(2_147_483_135),
                })
                .flatten(),
        })
        .collect()
}

/// BIRD 2 configuration of the neighbour on the other end of `p`.
fn neighbour_config(p: &Protocol, node_port: Option<u16>, ann: &[Announcement]) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "router id {};", p.neighbor);
    let _ = writeln!(c, "log stderr all;");
    let _ = writeln!(c, "protocol device {{ scan time 1; }}");
    let _ = writeln!(c, "protocol direct {{ ipv4; interface \"*\"; }}");
    if !ann.is_empty() {
        let _ = writeln!(c, "protocol static ann {{\n  ipv4;");
        for a in ann {
            let _ = writeln!(c, "  route {} blackhole;", a.prefix);
        }
        let _ = writeln!(c, "}}");
    }
    let _ = writeln!(c, "filter to_node {{");
    for a in ann {
        let mut sets = String::new();
        for (x, y) in &a.communities {
            let _ = write!(sets, " bgp_community.add(({x},{y}));");
        }
        for (x, y, z) in &a.large {
            let _ = write!(sets, " bgp_large_community.add(({x},{y},{z}));");
        }
        for asn in a.prepend.iter().rev() {
            let _ = write!(sets, " bgp_path.prepend({asn});");
        }
        if let Some(lp) = a.local_pref {
            let _ = write!(sets, " bgp_local_pref = {lp};");
        }
        if !sets.is_empty() {
            let _ = writeln!(c, "  if net = {} then {{{sets} }}", a.prefix);
        }
    }
    let _ = writeln!(c, "  if source = RTS_STATIC then accept;\n  reject;\n}}");
    let _ = writeln!(c, "protocol bgp node {{");
    let local_port = p.port.map(|x| format!(" port {x}")).unwrap_or_default();
    let _ = writeln!(
        c,
        "  local {}{local_port} as {};",
        p.neighbor, p.neighbor_as
    );
    let node_port = node_port.map(|x| format!(" port {x}")).unwrap_or_default();
    let _ = writeln!(c, "  neighbor {NODE_IP}{node_port} as {};", p.local_as);
    match p.ttl_security {
        Some(h) => {
            let _ = writeln!(c, "  ttl security on;\n  multihop {h};");
        }
        None => {
            let _ = writeln!(c, "  multihop;");
        }
    }
    if !p.passive {
        // The node connects; this side waits (no connection collisions to resolve).
        let _ = writeln!(c, "  passive on;");
    }
    if let Some(pw) = &p.password {
        let _ = writeln!(c, "  password \"{pw}\";");
    }
    let _ = writeln!(
        c,
        "  connect delay time 1; connect retry time 2; error wait time 1, 5;"
    );
    let _ = writeln!(c, "  ipv4 {{ import all; export filter to_node; }};\n}}");
    c
}

/// Felix-like kernel state on the node: pod routes on `cali*` devices in every block (one
/// elevated, metric 512), a borrowed pod address in every pool, Felix's routes through
/// `tunl0` and `vxlan.calico`.
fn felix_state(ns: &Netns, g: &Golden) -> Result<()> {
    for (dev, peer) in [
        ("cali1", "cali1p"),
        ("cali2", "cali2p"),
        ("cali3", "cali3p"),
        ("tunl0", "tunl0p"),
        ("vxlan.calico", "vxlan.calip"),
    ] {
        ns.ip(&["link", "add", dev, "type", "veth", "peer", "name", peer])?;
        ns.ip(&["link", "set", dev, "up"])?;
        ns.ip(&["link", "set", peer, "up"])?;
    }
    let route = |args: &[&str]| ns.ip(args).map(|_| ());
    let first_big = g.blackholes.iter().find(|b| b.prefix_len() <= 28).copied();
    for b in g.blackholes.iter().filter(|b| b.prefix_len() <= 30) {
        let pod = nth_v4(*b, 2).to_string() + "/32";
        route(&[
            "route", "add", &pod, "dev", "cali1", "proto", "3", "metric", "1024",
        ])?;
        let elevated = nth_v4(*b, 3).to_string() + "/32";
        route(&[
            "route", "add", &elevated, "dev", "cali2", "proto", "3", "metric", "512",
        ])?;
        if Some(*b) == first_big {
            // Priorities BGPFilter rules match (priority 100 and 200).
            for (n, m) in [(5, "100"), (6, "200")] {
                let p = nth_v4(*b, n).to_string() + "/32";
                route(&[
                    "route", "add", &p, "dev", "cali2", "proto", "3", "metric", m,
                ])?;
            }
        }
    }
    let pools: Vec<Ipv4Net> = g
        .prefixes
        .iter()
        .filter(|p| p.prefix_len() <= 24 && !g.blackholes.contains(p))
        .copied()
        .collect();
    for (i, p) in pools.iter().enumerate().take(4) {
        let borrowed = nth_v4(*p, 200 + i as u32).to_string() + "/32";
        let _ = route(&["route", "add", &borrowed, "dev", "cali3", "proto", "3"]);
        let remote = block_in(*p, 7).to_string();
        let _ = route(&[
            "route",
            "add",
            &remote,
            "via",
            "10.192.0.3",
            "dev",
            "tunl0",
            "onlink",
            "proto",
            "80",
        ]);
        let vx = block_in(*p, 9).to_string();
        let _ = route(&["route", "add", &vx, "dev", "vxlan.calico", "proto", "80"]);
    }
    Ok(())
}

/// Renders bgpd's configuration with `bgpd calico render` (the command a deployment runs).
fn render_bgpd(test: &Test, label: &str, s: &Scenario) -> Result<(PathBuf, PathBuf)> {
    let bin = bgpd_binary().ok_or_else(|| Error::Invalid("bgpd not built".into()))?;
    let dir = test.subdir(label)?;
    let socket = dir.join("bgpd.sock");
    let bird_socket = dir.join("bird.ctl");
    let mut args: Vec<String> = vec!["calico".into(), "render".into()];
    for r in &s.resources {
        args.push("--resources".into());
        args.push(r.to_string_lossy().into_owned());
    }
    args.extend([
        "--node".into(),
        s.node.clone(),
        "--control-socket".into(),
        socket.to_string_lossy().into_owned(),
        "--bird-socket".into(),
        bird_socket.to_string_lossy().into_owned(),
        "--bird6-socket".into(),
        String::new(),
    ]);
    let out = std::process::Command::new(&bin)
        .args(&args)
        .output()
        .map_err(|e| Error::io("running", &bin, e))?;
    if !out.status.success() {
        return Err(Error::Check(format!(
            "bgpd calico render failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let config = test.write_config(label, "bgpd.toml", &String::from_utf8_lossy(&out.stdout))?;
    Ok((config, socket))
}

impl World {
    /// Builds a world for `s` with `daemon` on the node.
    pub fn start(test: &Test, label: &str, s: &Scenario, daemon: Daemon) -> Result<World> {
        let g = bird1::read_golden(&s.golden)?;
        let v4: Ipv4Net = "10.192.0.0/16"
            .parse()
            .map_err(|_| Error::Invalid("subnet".into()))?;
        let v6: Ipv6Net = Ipv6Net::new(Ipv6Addr::new(0xfd00, 0x192, 0, 0, 0, 0, 0, 0), 64)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let segment = Segment::with_subnets(test, v4, v6)?;
        let node = Node::new(test, &segment, &format!("{label}n"), 2)?;
        felix_state(&node.ns, &g)?;
        let n = g.protocols.len();
        let mut neighbours = Vec::new();
        // Sessions to one address on different ports: their BIRDs share a namespace.
        let mut by_address: BTreeMap<Ipv4Addr, Node> = BTreeMap::new();
        for (k, p) in g.protocols.iter().enumerate() {
            let IpAddr::V4(addr) = p.neighbor else {
                continue;
            };
            let nb = if let Some(nb) = by_address.get(&addr) {
                nb.clone()
            } else if v4.contains(&addr) {
                let host = u32::from(addr) - u32::from(v4.network());
                Node::new(test, &segment, &format!("{label}{k}"), host)?
            } else {
                // Outside the node subnet: an extra address on the segment, reached
                // through a host route on the node.
                let nb = Node::new(test, &segment, &format!("{label}{k}"), 100 + k as u32)?;
                nb.ns.add_address("eth0", IpNet::from(IpAddr::V4(addr)))?;
                let host = format!("{addr}/32");
                node.ns
                    .ip(&["route", "add", &host, "dev", "eth0", "proto", "static"])?;
                nb.ns
                    .ip(&["route", "add", "10.192.0.0/16", "dev", "eth0"])
                    .ok();
                nb
            };
            by_address.insert(addr, nb.clone());
            let ann = announcements(&g, k, n, p.neighbor_as == p.local_as);
            let cfg = neighbour_config(p, g.listen_port, &ann);
            let bird = Bird::start_with_config(
                test,
                &nb,
                &format!("{label}-{}", p.name),
                &cfg,
                vec![("node".to_string(), IpAddr::V4(NODE_IP))],
            )?;
            neighbours.push((p.clone(), bird, nb));
        }
        let daemon = match daemon {
            Daemon::Bird1 => bird1::start(test, &node, &format!("{label}-bird1"), &s.golden)?,
            Daemon::Bgpd => {
                let (config, _socket) = render_bgpd(test, &format!("{label}-bgpd"), s)?;
                let bin = bgpd_binary().ok_or_else(|| Error::Invalid("bgpd not built".into()))?;
                let c = config.to_string_lossy().into_owned();
                Process::spawn(
                    test,
                    &node.ns,
                    &format!("{label}-bgpd"),
                    &bin,
                    &["-c", &c],
                    &[("BGPD_LOG", "info"), ("NO_COLOR", "1")],
                )?
            }
        };
        Ok(World {
            node,
            _segment: segment,
            neighbours,
            daemon,
        })
    }

    /// Sessions the node should have (one per neighbour).
    pub fn sessions(&self) -> usize {
        self.neighbours.len()
    }

    /// Neighbours whose session to the node is Established.
    fn established(&self) -> Result<usize> {
        let mut up = 0;
        for (_, b, _) in &self.neighbours {
            let text = b.birdc("show protocols")?;
            if text
                .lines()
                .any(|l| l.starts_with("node ") && l.contains("Established"))
            {
                up += 1;
            }
        }
        Ok(up)
    }

    /// Reads what the neighbours received and what the node installed.
    pub fn observe(&self) -> Result<Observation> {
        self.daemon.check_running()?;
        let mut received = BTreeMap::new();
        for (p, b, _) in &self.neighbours {
            let text = b.birdc("show route all protocol node")?;
            let routes = parse_routes(&text)?;
            received.insert(
                p.name.clone(),
                routes
                    .iter()
                    .map(|r| (r.prefix, Received::from(r)))
                    .collect(),
            );
        }
        let mut installed = Vec::new();
        for (flag, fam) in [("-4", Family::Ipv4), ("-6", Family::Ipv6)] {
            let text = self.node.ns.ip(&[
                "-j", flag, "route", "show", "table", "main", "proto", "bird",
            ])?;
            for r in parse_ip_route_json(&text, fam)? {
                let mut gateways: Vec<IpAddr> = r.gateway.into_iter().collect();
                gateways.extend(r.nexthops);
                gateways.sort();
                installed.push(Installed {
                    dst: r.dst,
                    kind: r.kind,
                    gateways,
                    dev: r.dev,
                    metric: r.metric,
                    onlink: r.flags.iter().any(|f| f == "onlink"),
                });
            }
        }
        installed.sort();
        Ok(Observation {
            received,
            installed,
        })
    }

    /// Waits until every session is up and two readings `settle` apart agree.
    pub fn converge(&self, timeout: Duration, settle: Duration) -> Result<Observation> {
        let deadline = Instant::now() + timeout;
        let mut last: Option<Observation> = None;
        loop {
            let up = self.established()?;
            if up == self.sessions() {
                let now = self.observe()?;
                if last.as_ref() == Some(&now) {
                    return Ok(now);
                }
                last = Some(now);
            }
            if Instant::now() > deadline {
                return Err(Error::Check(format!(
                    "no stable state within {timeout:?}: {up}/{} sessions up; last reading {last:?}",
                    self.sessions()
                )));
            }
            std::thread::sleep(settle);
        }
    }
}

/// The differences between two observations, one line each.
pub fn differences(bird: &Observation, bgpd: &Observation) -> Vec<String> {
    let mut out = Vec::new();
    for (name, b) in &bird.received {
        let empty = BTreeMap::new();
        let g = bgpd.received.get(name).unwrap_or(&empty);
        for (p, r) in b {
            match g.get(p) {
                None => out.push(format!("{name}: BIRD announces {p} {r:?}; bgpd does not")),
                Some(x) if x != r => {
                    out.push(format!("{name}: {p}\n    BIRD {r:?}\n    bgpd {x:?}"))
                }
                Some(_) => {}
            }
        }
        for (p, r) in g {
            if !b.contains_key(p) {
                out.push(format!("{name}: bgpd announces {p} {r:?}; BIRD does not"));
            }
        }
    }
    for r in &bird.installed {
        if !bgpd.installed.contains(r) {
            out.push(format!("kernel: BIRD installed {r:?}; bgpd did not"));
        }
    }
    for r in &bgpd.installed {
        if !bird.installed.contains(r) {
            out.push(format!("kernel: bgpd installed {r:?}; BIRD did not"));
        }
    }
    out
}

/// The scenario `name` of the Calico confd test data, with kube-master's block affinities
/// when `affinities`.
pub fn confd_scenario(name: &str, inputs: &[&str], affinities: bool) -> Scenario {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/calico-confd");
    let mut resources: Vec<PathBuf> = inputs
        .iter()
        .map(|i| data.join("mock_data/calicoctl").join(i))
        .collect();
    if affinities {
        resources.push(data.join("block-affinities.yaml"));
    }
    Scenario {
        golden: data.join("compiled_templates").join(name),
        resources,
        node: "kube-master".into(),
    }
}
