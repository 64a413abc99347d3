//! bgpd as a router on Calico nodes, end to end through the Linux kernel.
//!
//! Each test builds nodes in network namespaces it creates (192.0.2.0/24 on a bridge of
//! its own, through the `interop` harness), puts Felix-like state into their kernels
//! (blackhole blocks with protocol 80, /32 pod routes with protocol 3 on `cali*` veths),
//! runs the built `bgpd` in each with a `[kernel]` section, and checks the routing tables
//! with `ip -j route`. Namespaces and daemons are removed when a test ends.
//!
//! Needs root; without it the tests print SKIPPED, and fail when `CI=true`.
//! `INTEROP_KEEP=1` keeps the logs and configurations of a passing run.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use interop::{
    run_test, wait_for, Error, Family, KernelRoute, Node, Process, Result, Segment, Test,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use support::{bgpd_bin, spawn_in_ns, DEADLINE};

/// Calico's metric for LOCAL_PREF 100: 2147483647 − 100.
const METRIC_LP100: u32 = 2_147_483_547;
const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const C: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);

fn net(s: &str) -> IpNet {
    s.parse().expect("test prefix")
}

fn segment(test: &Test) -> Result<Segment> {
    let v4: Ipv4Net = "192.0.2.0/24"
        .parse()
        .map_err(|e| Error::Invalid(format!("{e}")))?;
    let v6: Ipv6Net = "2001:db8::/64"
        .parse()
        .map_err(|e| Error::Invalid(format!("{e}")))?;
    Segment::with_subnets(test, v4, v6)
}

/// `ip -n NS <args>` split on whitespace.
fn ip(node: &Node, args: &str) -> Result<String> {
    let v: Vec<&str> = args.split_whitespace().collect();
    node.ns.ip(&v)
}

/// A veth "pod" interface: `name` in the node, its peer end beside it (as Felix's cali*
/// devices, whose other end is in the pod).
fn pod_interface(node: &Node, name: &str) -> Result<()> {
    ip(
        node,
        &format!("link add {name} type veth peer name {name}p"),
    )?;
    ip(node, &format!("link set {name} up"))?;
    ip(node, &format!("link set {name}p up"))?;
    Ok(())
}

/// The tunnel device for IPIP forms: the real `ipip` fallback device when the kernel has
/// the module, else a veth named tunl0 (this kernel may have neither ipip nor dummy; routes
/// `via NH dev tunl0 onlink` install the same on any device).
fn tunnel_device(node: &Node) -> Result<&'static str> {
    if ip(node, "link show tunl0").is_err() && ip(node, "link add tunl0 type ipip").is_err() {
        pod_interface(node, "tunl0")?;
        return Ok("a veth (no ipip module in this kernel)");
    }
    ip(node, "link set tunl0 up")?;
    Ok("ipip")
}

fn mesh_name(peer: Ipv4Addr) -> String {
    format!("Mesh_{}", peer.to_string().replace('.', "_"))
}

/// A calico-node style configuration: iBGP mesh (Calico's passive rule: the lower address
/// waits), Felix's routes imported (protocols 3 and 80), Calico's export rules for the
/// node's own block, learned routes installed with protocol 12.
struct NodeConfig<'a> {
    me: Ipv4Addr,
    peers: &'a [Ipv4Addr],
    own_block: &'a str,
    graceful_restart: bool,
    /// Extra `[kernel.export]` lines.
    export: &'a str,
    /// Extra policies (TOML).
    policies: &'a str,
    /// Rules put before the pool rule of `calico-export` (TOML).
    export_rules: &'a str,
}

impl NodeConfig<'_> {
    fn render(&self, socket: &Path) -> String {
        let mut peers = String::new();
        for p in self.peers {
            peers.push_str(&format!(
                "\n[peers.{}]\ntemplate = \"mesh\"\naddress = \"{p}\"\npassive = {}\n",
                mesh_name(*p),
                self.me.to_string() < p.to_string()
            ));
        }
        format!(
            r#"# calico-node style bgpd configuration (kernel FIB test)
[global]
asn = 64512
router_id = "{me}"
listen = ["{me}"]
max_paths = 4

[global.control]
socket = "{socket}"

[global.graceful_restart]
enabled = {gr}
restart_time = 120

[templates.mesh]
remote_as = 64512
hold_time = 9
keepalive = 3
connect_retry = 1
import = ["mesh-import"]
export = ["calico-export"]
{peers}
[kernel.import]
ipv6 = false
protocols = [3, 80]
route_types = ["unicast", "blackhole"]
ipv4_prefix_len = {{ min = 26, max = 32 }}
interfaces = {{ exclude = ["kube-ipvs*", "*.calico", "bpf*.cali"] }}

[kernel.export]
protocol = 12
{export}

[policies.mesh-import]
default = "accept"

[policies.calico-export]
default = "reject"

[[policies.calico-export.rules]]
name = "own-block"
match = {{ prefix_in = [{{ prefix = "{block}" }}] }}
action = "accept"

[[policies.calico-export.rules]]
name = "elevated-host-route-in-own-block"
match = {{ prefix_in = [{{ prefix = "{block}", ge = 27, le = 32 }}], metric = {{ max = 1023 }} }}
action = "accept"

[[policies.calico-export.rules]]
name = "suppress-in-own-block"
match = {{ prefix_in = [{{ prefix = "{block}", ge = 27, le = 32 }}] }}
action = "reject"
{export_rules}
[[policies.calico-export.rules]]
name = "pool-blocks-and-borrowed-host-routes"
match = {{ prefix_in = [{{ prefix = "10.64.0.0/12", ge = 26, le = 32 }}], source = ["kernel"] }}
action = "accept"
{policies}
"#,
            me = self.me,
            socket = socket.display(),
            gr = self.graceful_restart,
            block = self.own_block,
            export = self.export,
            export_rules = self.export_rules,
            policies = self.policies,
        )
    }
}

/// Starts bgpd in `node` with `cfg` (and `extra` arguments, e.g. `-R`).
fn start_bgpd(
    test: &Test,
    node: &Node,
    label: &str,
    cfg: &NodeConfig<'_>,
    extra: &[&str],
) -> Result<Process> {
    let socket = test.subdir(label)?.join("bgpd.sock");
    spawn_in_ns(test, &node.ns, label, &cfg.render(&socket), extra)
}

fn routes(node: &Node) -> Result<Vec<KernelRoute>> {
    node.ns.routes(Family::Ipv4)
}

fn is_ours(r: &KernelRoute) -> bool {
    r.protocol == "bird" || r.protocol == "12"
}

fn ours<'a>(rs: &'a [KernelRoute], dst: &str) -> Option<&'a KernelRoute> {
    let d = net(dst);
    rs.iter().find(|r| r.dst == d && is_ours(r))
}

fn describe(rs: &[KernelRoute]) -> String {
    rs.iter()
        .map(|r| {
            format!(
                "{} {} gw={:?} nh={:?} dev={:?} proto={} metric={:?} flags={:?}",
                r.kind, r.dst, r.gateway, r.nexthops, r.dev, r.protocol, r.metric, r.flags
            )
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// Waits until `check` accepts the node's IPv4 table.
fn wait_table(
    node: &Node,
    what: &str,
    mut check: impl FnMut(&[KernelRoute]) -> bool,
) -> Result<Vec<KernelRoute>> {
    let mut last = Vec::new();
    wait_for(what, DEADLINE, || {
        let rs = routes(node)?;
        let ok = check(&rs);
        last = rs;
        Ok(if ok { Ok(()) } else { Err(describe(&last)) })
    })?;
    Ok(last)
}

/// `dst via gw` as one of our routes, in the direct form (no onlink), with Calico's metric.
fn direct_via(rs: &[KernelRoute], dst: &str, gw: Ipv4Addr) -> bool {
    ours(rs, dst).is_some_and(|r| {
        r.gateway == Some(IpAddr::V4(gw))
            && r.dev.as_deref() == Some("eth0")
            && !r.flags.iter().any(|f| f == "onlink")
            && r.metric == Some(METRIC_LP100)
    })
}

fn onlink_tunnel_via(rs: &[KernelRoute], dst: &str, gw: Ipv4Addr) -> bool {
    ours(rs, dst).is_some_and(|r| {
        r.gateway == Some(IpAddr::V4(gw))
            && r.dev.as_deref() == Some("tunl0")
            && r.flags.iter().any(|f| f == "onlink")
    })
}

fn check(cond: bool, what: &str, rs: &[KernelRoute]) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Check(format!("{what}; table:\n  {}", describe(rs))))
    }
}

/// The routes of other protocols a node holds, as `ip` prints them (compared before/after).
fn foreign(node: &Node) -> Result<Vec<String>> {
    let mut v: Vec<String> = routes(node)?
        .iter()
        .filter(|r| !is_ours(r))
        .map(|r| format!("{r:?}"))
        .collect();
    v.sort();
    Ok(v)
}

/// Felix-like state on node A: its block as a blackhole (protocol 80), pod routes on cali*
/// (protocol 3): one at the normal metric (suppressed), one elevated (announced), one
/// borrowed from another node's block (announced), one on an excluded device (never), and a
/// connected route on a cali device (never: not a selected protocol).
fn felix_node_a(a: &Node) -> Result<()> {
    pod_interface(a, "cali1")?;
    pod_interface(a, "cali2")?;
    pod_interface(a, "vx.calico")?;
    ip(a, "route add blackhole 10.65.1.0/26 proto 80")?;
    ip(a, "route add 10.65.1.5/32 dev cali1 proto 3 metric 1024")?;
    ip(a, "route add 10.65.1.6/32 dev cali1 proto 3 metric 512")?;
    ip(a, "route add 10.65.9.7/32 dev cali2 proto 3 metric 1024")?;
    ip(a, "route add 10.65.8.8/32 dev vx.calico proto 3")?;
    ip(a, "addr add 172.16.5.1/30 dev cali1")?;
    Ok(())
}

#[test]
fn kernel_calico_export_ecmp_withdraw_and_peer_loss() {
    run_test(
        "kernel_calico_export_ecmp_withdraw_and_peer_loss",
        &["ip"],
        |test| {
            let seg = segment(test)?;
            let a = Node::new(test, &seg, "a", 1)?;
            let b = Node::new(test, &seg, "b", 2)?;
            let c = Node::new(test, &seg, "c", 3)?;
            felix_node_a(&a)?;
            // A and C both announce 10.65.5.0/26: a multipath route on B. (A and C do not peer
            // with each other here: each would otherwise prefer the other's path over its own
            // local route at the router-id step and, being iBGP, not announce it to B.)
            ip(&a, "route add blackhole 10.65.5.0/26 proto 80")?;
            ip(&c, "route add blackhole 10.65.5.0/26 proto 80")?;
            ip(&c, "route add blackhole 10.65.3.0/26 proto 80")?;
            // A announces 10.65.7.0/26, whose key (prefix, metric) B's operator already holds
            // with a static route: it must be left alone.
            ip(&a, "route add blackhole 10.65.7.0/26 proto 80")?;
            // B's own Felix state and a static route of another protocol.
            ip(&b, "route add blackhole 10.65.2.0/26 proto 80")?;
            ip(
                &b,
                &format!("route add 10.65.7.0/26 via {C} proto static metric {METRIC_LP100}"),
            )?;
            ip(
                &b,
                &format!("route add 198.51.100.0/24 via {C} proto static"),
            )?;
            let b_foreign = foreign(&b)?;

            let cfg_a = NodeConfig {
                me: A,
                peers: &[B],
                own_block: "10.65.1.0/26",
                // Peer loss below is a real loss: nobody keeps A's routes as stale.
                graceful_restart: false,
                export: "",
                policies: "",
                export_rules: "",
            };
            let cfg_b = NodeConfig {
                me: B,
                peers: &[A, C],
                own_block: "10.65.2.0/26",
                graceful_restart: true,
                ..cfg_a
            };
            let cfg_c = NodeConfig {
                me: C,
                peers: &[B],
                own_block: "10.65.3.0/26",
                graceful_restart: true,
                ..cfg_a
            };
            let mut pa = start_bgpd(test, &a, "bgpd-a", &cfg_a, &[])?;
            let mut pb = start_bgpd(test, &b, "bgpd-b", &cfg_b, &[])?;
            let _pc = start_bgpd(test, &c, "bgpd-c", &cfg_c, &[])?;

            // What Calico's export policy lets through, installed on B in the direct form.
            let rs = wait_table(&b, "B installs A's and C's announcements", |rs| {
                direct_via(rs, "10.65.1.0/26", A)
                    && direct_via(rs, "10.65.1.6/32", A)
                    && direct_via(rs, "10.65.9.7/32", A)
                    && direct_via(rs, "10.65.3.0/26", C)
                    && ours(rs, "10.65.5.0/26").is_some_and(|r| r.nexthops.len() == 2)
            })?;
            let ecmp = ours(&rs, "10.65.5.0/26").map(|r| r.nexthops.clone());
            check(
                ecmp.as_ref()
                    .is_some_and(|n| n.contains(&IpAddr::V4(A)) && n.contains(&IpAddr::V4(C))),
                "10.65.5.0/26 is a multipath route via A and C",
                &rs,
            )?;
            for suppressed in [
                "10.65.1.5/32",
                "10.65.8.8/32",
                "172.16.5.0/30",
                "10.65.2.0/26",
            ] {
                check(
                    ours(&rs, suppressed).is_none(),
                    &format!("{suppressed} must not be installed on B"),
                    &rs,
                )?;
            }
            // The conflicting key stays the operator's: no route of ours beside it at its metric.
            check(
                ours(&rs, "10.65.7.0/26").is_none(),
                "10.65.7.0/26 conflicts with a static route and is not installed",
                &rs,
            )?;
            check(
                foreign(&b)? == b_foreign,
                "B's routes of other protocols are untouched",
                &rs,
            )?;
            // Felix's routes on A are not disturbed by what A learns from B and C.
            let ra = routes(&a)?;
            check(
                ra.iter()
                    .any(|r| r.dst == net("10.65.1.0/26") && r.kind == "blackhole" && !is_ours(r)),
                "A keeps its own Felix blackhole",
                &ra,
            )?;
            check(
                direct_via(&ra, "10.65.2.0/26", B) && ours(&ra, "10.65.1.0/26").is_none(),
                "A installs B's block, never its own",
                &ra,
            )?;

            // Withdraw: Felix removes A's block.
            ip(&a, "route del blackhole 10.65.1.0/26 proto 80")?;
            wait_table(&b, "B removes the withdrawn block", |rs| {
                ours(rs, "10.65.1.0/26").is_none() && direct_via(rs, "10.65.1.6/32", A)
            })?;

            // Peer loss: A dies without a word.
            pa.signal(libc::SIGKILL)?;
            let rs = wait_table(&b, "B removes A's routes after losing A", |rs| {
                ours(rs, "10.65.1.6/32").is_none()
                    && ours(rs, "10.65.9.7/32").is_none()
                    && direct_via(rs, "10.65.5.0/26", C)
                    && direct_via(rs, "10.65.3.0/26", C)
            })?;
            check(
                foreign(&b)? == b_foreign,
                "B's routes of other protocols are untouched after the peer loss",
                &rs,
            )?;
            let _ = pa.stop();

            // B stops with on_exit = persist: the routes stay for the next start.
            pb.stop()?;
            let rs = routes(&b)?;
            check(
                direct_via(&rs, "10.65.5.0/26", C) && foreign(&b)? == b_foreign,
                "after bgpd exits, its routes persist and the others are untouched",
                &rs,
            )?;
            Ok(())
        },
    );
}

#[test]
fn kernel_forms_ipip_cross_subnet_blackhole_then_flush() {
    run_test(
        "kernel_forms_ipip_cross_subnet_blackhole_then_flush",
        &["ip"],
        |test| {
            let seg = segment(test)?;
            let a = Node::new(test, &seg, "a", 1)?;
            let b = Node::new(test, &seg, "b", 2)?;
            let kind = tunnel_device(&b)?;
            eprintln!("kernel_forms_ipip_cross_subnet_blackhole_then_flush: tunl0 is {kind}");
            // Three pools: IPIP always, IPIP cross-subnet with a same-subnet next hop, and
            // cross-subnet with a next hop outside B's subnets (set by A's export policy).
            ip(&a, "route add blackhole 10.65.1.0/26 proto 80")?;
            ip(&a, "route add blackhole 10.66.1.0/26 proto 80")?;
            ip(&a, "route add blackhole 10.67.1.0/26 proto 80")?;
            ip(&b, "route add blackhole 10.65.2.0/26 proto 80")?;
            // B reaches nodes of other subnets through its default gateway, which is what
            // makes the far next hop resolvable (next-hop resolution through the kernel).
            ip(&b, &format!("route add default via {A}"))?;
            let b_foreign = foreign(&b)?;
            let cfg_a = NodeConfig {
                me: A,
                peers: &[B],
                own_block: "10.65.1.0/26",
                graceful_restart: true,
                export: "",
                policies: "",
                export_rules: r#"
[[policies.calico-export.rules]]
name = "far-next-hop"
match = { prefix_in = [{ prefix = "10.67.0.0/16", ge = 26, le = 26 }] }
set = { next_hop = { address = "198.51.100.1" } }
action = "accept"
"#,
            };
            let cfg_b = NodeConfig {
                me: B,
                peers: &[A],
                own_block: "10.65.2.0/26",
                graceful_restart: true,
                export: "tunnel_device = \"tunl0\"\non_exit = \"flush\"\npolicy = \"kernel-forms\"",
                policies: r#"
[policies.kernel-forms]
default = "accept"

[[policies.kernel-forms.rules]]
name = "ipip-always"
match = { prefix_in = [{ prefix = "10.65.0.0/16", orlonger = true }], source = ["bgp"] }
set = { install = "onlink", tunnel_device = "tunl0" }
action = "accept"

[[policies.kernel-forms.rules]]
name = "ipip-cross-subnet"
match = { prefix_in = [{ prefix = "10.66.0.0/15", orlonger = true }], source = ["bgp"] }
set = { install = "cross_subnet" }
action = "accept"

# An originated local block: installed as a blackhole. A service CIDR: announced only.
[[originate]]
prefix = "10.65.20.0/26"

[[originate]]
prefix = "10.96.0.0/12"
no_install = true
"#,
                export_rules: r#"
[[policies.calico-export.rules]]
name = "originated"
match = { source = ["static"] }
action = "accept"
"#,
            };
            let _pa = start_bgpd(test, &a, "bgpd-a", &cfg_a, &[])?;
            let mut pb = start_bgpd(test, &b, "bgpd-b", &cfg_b, &[])?;
            let far = Ipv4Addr::new(198, 51, 100, 1);
            wait_table(
                &b,
                "B installs IPIP, cross-subnet direct and cross-subnet tunnel forms",
                |rs| {
                    onlink_tunnel_via(rs, "10.65.1.0/26", A)
                        && direct_via(rs, "10.66.1.0/26", A)
                        && onlink_tunnel_via(rs, "10.67.1.0/26", far)
                },
            )?;
            // B's originated block is a blackhole of ours (no LOCAL_PREF: default_metric);
            // the advertise-only service CIDR reaches A but is not installed on B.
            wait_table(&a, "A installs B's originated routes", |rs| {
                direct_via(rs, "10.65.20.0/26", B) && direct_via(rs, "10.96.0.0/12", B)
            })?;
            let rs = routes(&b)?;
            check(
                ours(&rs, "10.65.20.0/26")
                    .is_some_and(|r| r.kind == "blackhole" && r.metric == Some(1024)),
                "B installs its originated block as a blackhole with the default metric",
                &rs,
            )?;
            check(
                ours(&rs, "10.96.0.0/12").is_none(),
                "the advertise-only route is not installed",
                &rs,
            )?;
            // on_exit = flush: every route of ours goes, nothing else.
            pb.stop()?;
            let rs = routes(&b)?;
            check(
                !rs.iter().any(is_ours),
                "on_exit = flush removes all our routes",
                &rs,
            )?;
            check(
                foreign(&b)? == b_foreign,
                "on_exit = flush leaves other protocols' routes",
                &rs,
            )?;
            Ok(())
        },
    );
}

#[test]
fn kernel_graceful_restart_keeps_routes_and_sweeps_only_stale() {
    run_test(
        "kernel_graceful_restart_keeps_routes_and_sweeps_only_stale",
        &["ip"],
        |test| {
            let seg = segment(test)?;
            let a = Node::new(test, &seg, "a", 1)?;
            let b = Node::new(test, &seg, "b", 2)?;
            ip(&a, "route add blackhole 10.65.1.0/26 proto 80")?;
            ip(&a, "route add blackhole 10.65.4.0/26 proto 80")?;
            ip(&b, "route add blackhole 10.65.2.0/26 proto 80")?;
            ip(
                &b,
                &format!("route add 198.51.100.0/24 via {A} proto static"),
            )?;
            let b_foreign = foreign(&b)?;
            let cfg_a = NodeConfig {
                me: A,
                peers: &[B],
                own_block: "10.65.1.0/26",
                graceful_restart: true,
                export: "",
                policies: "",
                export_rules: "",
            };
            let cfg_b = NodeConfig {
                me: B,
                peers: &[A],
                own_block: "10.65.2.0/26",
                ..cfg_a
            };
            let _pa = start_bgpd(test, &a, "bgpd-a", &cfg_a, &[])?;
            let mut pb = start_bgpd(test, &b, "bgpd-b", &cfg_b, &[])?;
            wait_table(&b, "B installs both of A's blocks", |rs| {
                direct_via(rs, "10.65.1.0/26", A) && direct_via(rs, "10.65.4.0/26", A)
            })?;
            let before = ours(&routes(&b)?, "10.65.1.0/26").cloned();

            // B stops (persist) and A's 10.65.4.0/26 goes away while B is down.
            pb.stop()?;
            ip(&a, "route del blackhole 10.65.4.0/26 proto 80")?;
            let rs = routes(&b)?;
            check(
                direct_via(&rs, "10.65.1.0/26", A) && direct_via(&rs, "10.65.4.0/26", A),
                "B's kernel routes persist while bgpd is down",
                &rs,
            )?;

            // B comes back as a restarting speaker: the live route must stay throughout,
            // the stale one must go once A has sent End-of-RIB.
            let pb2 = start_bgpd(test, &b, "bgpd-b-restarted", &cfg_b, &["-R"])?;
            let mut samples = 0u32;
            wait_for("B sweeps the stale block", DEADLINE, || {
                let rs = routes(&b)?;
                samples += 1;
                if ours(&rs, "10.65.1.0/26").cloned() != before {
                    return Err(Error::Check(format!(
                        "the live route changed or disappeared during the restart (sample {samples}):\n  {}",
                        describe(&rs)
                    )));
                }
                Ok(if ours(&rs, "10.65.4.0/26").is_none() {
                    Ok(())
                } else {
                    Err(describe(&rs))
                })
            })?;
            let rs = routes(&b)?;
            check(
                direct_via(&rs, "10.65.1.0/26", A) && foreign(&b)? == b_foreign,
                "after the sweep the live route and other protocols' routes are intact",
                &rs,
            )?;
            let log = pb2.output_so_far();
            check(
                log.contains("graceful restart recovery finished"),
                "the sweep followed End-of-RIB (not the recovery timer)",
                &rs,
            )?;
            eprintln!("graceful restart: the live route was present in all {samples} samples");
            Ok(())
        },
    );
}

/// The complete Calico node of docs/config.md ("A complete Calico node") is a valid bgpd
/// configuration, and a FIB policy name that does not exist is refused. No root needed.
#[test]
fn kernel_docs_calico_example_passes_check() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config.md"))
        .expect("docs/config.md");
    let section = docs
        .split("### A complete Calico node")
        .nth(1)
        .expect("docs/config.md has the complete Calico node example");
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a TOML block in the example");
    assert!(example.contains("policy = \"calico-kernel\""), "{example}");
    let dir = tempfile::tempdir().expect("temp dir");
    let check = |text: &str| {
        let path = dir.path().join("bgp.toml");
        std::fs::write(&path, text).expect("write config");
        std::process::Command::new(bgpd_bin())
            .arg("-c")
            .arg(&path)
            .arg("--check")
            .output()
            .expect("run bgpd --check")
    };
    let ok = check(example);
    assert!(
        ok.status.success(),
        "docs example refused: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = check(&example.replace("policy = \"calico-kernel\"", "policy = \"no-such-policy\""));
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("unknown policy \"no-such-policy\""), "{err}");
}

/// IPv6 Calico: a /122 block (blackhole, protocol 80) and /128 pod routes on a `cali*`
/// device, announced over an IPv6 session; the /122 is installed on the other node with
/// protocol 12 via the IPv6 next hop, the normal-metric /128 inside the block is not.
#[test]
fn kernel_ipv6_block_installed_over_ipv6_session() {
    run_test(
        "kernel_ipv6_block_installed_over_ipv6_session",
        &["ip"],
        |test| {
            let seg = segment(test)?;
            let a = Node::new(test, &seg, "a", 1)?;
            let b = Node::new(test, &seg, "b", 2)?;
            pod_interface(&a, "cali1")?;
            ip(&a, "-6 route add blackhole 2001:db8:65:1::/122 proto 80")?;
            ip(
                &a,
                "-6 route add 2001:db8:65:1::5/128 dev cali1 proto 3 metric 1024",
            )?;
            let config = |me: IpAddr, rid: Ipv4Addr, peer: IpAddr, block: &str, socket: &Path| {
                format!(
                    r#"[global]
asn = 64512
router_id = "{rid}"
listen = ["[{me}]:179"]

[global.control]
socket = "{socket}"

[peers.Mesh_{peer_name}]
address = "{peer}"
remote_as = 64512
passive = {passive}
hold_time = 9
connect_retry = 1
import = ["all"]
export = ["calico-export"]

[kernel.import]
ipv4 = false
protocols = [3, 80]
route_types = ["unicast", "blackhole"]
ipv6_prefix_len = {{ min = 122, max = 128 }}

[kernel.export]
protocol = 12

[policies.all]
default = "accept"

[policies.calico-export]
default = "reject"

[[policies.calico-export.rules]]
name = "own-block"
match = {{ prefix_in = [{{ prefix = "{block}" }}] }}
action = "accept"

[[policies.calico-export.rules]]
name = "suppress-in-own-block"
match = {{ prefix_in = [{{ prefix = "{block}", ge = 123, le = 128 }}] }}
action = "reject"
"#,
                    socket = socket.display(),
                    peer_name = peer.to_string().replace(':', "_"),
                    passive = me.to_string() < peer.to_string(),
                )
            };
            let (va, vb) = (a.addr(Family::Ipv6), b.addr(Family::Ipv6));
            let mut procs = Vec::new();
            for (node, label, me, rid, peer, block) in [
                (&a, "bgpd-a", va, A, vb, "2001:db8:65:1::/122"),
                (&b, "bgpd-b", vb, B, va, "2001:db8:65:2::/122"),
            ] {
                let socket = test.subdir(label)?.join("bgpd.sock");
                procs.push(spawn_in_ns(
                    test,
                    &node.ns,
                    label,
                    &config(me, rid, peer, block, &socket),
                    &[],
                )?);
            }
            let block = net("2001:db8:65:1::/122");
            let mut last = Vec::new();
            wait_for("B installs A's IPv6 block", DEADLINE, || {
                let rs = b.ns.routes(Family::Ipv6)?;
                let ok = rs.iter().any(|r| {
                    r.dst == block
                        && is_ours(r)
                        && r.gateway == Some(va)
                        && r.metric == Some(METRIC_LP100)
                });
                last = rs;
                Ok(if ok { Ok(()) } else { Err(describe(&last)) })
            })?;
            let pod = net("2001:db8:65:1::5/128");
            check(
                !last.iter().any(|r| r.dst == pod && is_ours(r)),
                "the normal-metric /128 inside A's block is suppressed",
                &last,
            )?;
            drop(procs);
            Ok(())
        },
    );
}

/// Next-hop resolution through the kernel (RFC 4271 9.1.2; BIRD's `gateway recursive`): A
/// announces a block with a third-party next hop outside every connected subnet of B. B
/// keeps it unresolvable and uninstalled until its kernel learns a route to that next hop.
#[test]
fn kernel_next_hop_resolution_follows_kernel_routes() {
    run_test(
        "kernel_next_hop_resolution_follows_kernel_routes",
        &["ip"],
        |test| {
            const THIRD_PARTY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
            let seg = segment(test)?;
            let a = Node::new(test, &seg, "a", 1)?;
            let b = Node::new(test, &seg, "b", 2)?;
            ip(&a, "route add blackhole 10.65.1.0/26 proto 80")?;
            ip(&a, "route add blackhole 10.65.4.0/26 proto 80")?;
            let rules = format!(
                r#"
[[policies.calico-export.rules]]
name = "third-party-next-hop"
match = {{ prefix_in = [{{ prefix = "10.65.4.0/26" }}] }}
set = {{ next_hop = {{ address = "{THIRD_PARTY}" }} }}
action = "accept"
"#
            );
            let cfg_a = NodeConfig {
                me: A,
                peers: &[B],
                own_block: "10.65.1.0/26",
                graceful_restart: false,
                export: "",
                policies: "",
                export_rules: &rules,
            };
            let cfg_b = NodeConfig {
                me: B,
                peers: &[A],
                own_block: "10.65.2.0/26",
                export_rules: "",
                ..cfg_a
            };
            let _pa = start_bgpd(test, &a, "bgpd-a", &cfg_a, &[])?;
            let _pb = start_bgpd(test, &b, "bgpd-b", &cfg_b, &[])?;
            let socket_b = test.subdir("bgpd-b")?.join("bgpd.sock");
            let paths = |prefix: &str| -> Result<Vec<interop::RouteView>> {
                let v = interop::bgpd::control_at(
                    &socket_b,
                    serde_json::json!({"command": "show_routes", "table": "loc", "prefix": prefix}),
                )?;
                interop::bgpd::parse_all_routes(&v)
            };
            let reason = |prefix: &str| -> Result<Option<String>> {
                let v = interop::bgpd::control_at(
                    &socket_b,
                    serde_json::json!({"command": "show_routes", "table": "loc", "prefix": prefix}),
                )?;
                Ok(v.get("routes")
                    .and_then(serde_json::Value::as_array)
                    .and_then(|r| r.first())
                    .and_then(|r| r.get("not_best_reason"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string))
            };

            // The block with A's own next hop (connected) is installed; the third-party one
            // is held by B, unresolvable, and not installed.
            wait_table(
                &b,
                "B installs A's block via the connected next hop",
                |rs| direct_via(rs, "10.65.1.0/26", A),
            )?;
            wait_for("B holds 10.65.4.0/26 as unresolvable", DEADLINE, || {
                let r = reason("10.65.4.0/26")?;
                let held = paths("10.65.4.0/26")?;
                Ok(
                    if r.as_deref() == Some("next hop unresolvable")
                        && held.iter().all(|p| !p.best)
                        && held
                            .iter()
                            .any(|p| p.next_hop == Some(IpAddr::V4(THIRD_PARTY)))
                    {
                        Ok(())
                    } else {
                        Err(format!("reason {r:?}, paths {held:?}"))
                    },
                )
            })?;
            let rs = routes(&b)?;
            check(
                ours(&rs, "10.65.4.0/26").is_none(),
                "10.65.4.0/26 is not installed while its next hop is unresolvable",
                &rs,
            )?;
            if let Some(bin) = interop::bgpd::bgpctl_binary() {
                let out = std::process::Command::new(&bin)
                    .args(["show", "routes", "10.65.4.0/26"])
                    .env("BGPCTL_SOCKET", &socket_b)
                    .output()
                    .map_err(|e| Error::Invalid(format!("running bgpctl: {e}")))?;
                let out = String::from_utf8_lossy(&out.stdout).into_owned();
                check(
                    out.contains("next hop unresolvable"),
                    &format!("bgpctl shows the path as unresolvable:\n{out}"),
                    &rs,
                )?;
            }

            // The kernel learns a (device) route to the next hop's subnet: now resolvable.
            ip(&b, "route add 203.0.113.0/24 dev eth0")?;
            wait_table(&b, "B installs 10.65.4.0/26 via the third party", |rs| {
                ours(rs, "10.65.4.0/26").is_some_and(|r| r.gateway == Some(IpAddr::V4(THIRD_PARTY)))
            })?;
            let held = paths("10.65.4.0/26")?;
            check(
                held.iter().any(|p| p.best),
                "the path is best once its next hop resolves",
                &routes(&b)?,
            )?;

            // And the route goes again when the kernel route does.
            ip(&b, "route del 203.0.113.0/24 dev eth0")?;
            wait_table(
                &b,
                "B removes 10.65.4.0/26 when its next hop is lost",
                |rs| ours(rs, "10.65.4.0/26").is_none() && direct_via(rs, "10.65.1.0/26", A),
            )?;
            Ok(())
        },
    );
}
