//! Calico cluster convergence, BIRD 2 against bgpd, side by side (a benchmark, not a test).
//!
//! A namespace cluster of N nodes on one bridge, each with Felix-like kernel state (a
//! blackhole /26 block, a pod behind a `cali*` veth), runs calico-node style BIRD 2 or
//! bgpd in an iBGP full mesh (`interop::calico`'s configurations, the ones the cluster
//! tests use: BIRD with `connect delay time 1; connect retry time 2; error wait time 1, 5;`
//! and graceful restart, bgpd with `bgpd_config`: bgpd's default timers and graceful restart). Two
//! figures per run:
//!
//! - `cluster-start-N`: every daemon started at once (one after the other without
//!   waiting, as a cluster booting together); the time from the first start until every
//!   node's kernel holds every other node's block via that node (protocol 12, "bird").
//! - `cluster-restart-N`: node 1's daemon stopped (SIGTERM) and started again at once, as
//!   kubelet restarts calico-node; the time from the stop until every kernel holds every
//!   block again (the others keep node 1's block when graceful restart keeps it; node 1
//!   must relearn all of theirs).
//!
//! CPU is the sum over the cluster's daemons (utime + stime) when the figure is taken,
//! RSS the largest peak (VmHWM) of them. Runs alternate BIRD and bgpd. Each run appends
//! one JSON line per figure to the results file, in the format of `bench/report`.
//!
//! ```text
//! cargo build --release -p bgpd
//! BGPD_BIN=target/release/bgpd cargo run --release -p interop --example cluster_convergence -- \
//!     --nodes 4 --runs 3 --out target/bench/cluster.jsonl
//! ```
//!
//! Needs root (network namespaces), BIRD 2 (`bird`, `birdc`) and iproute2; traffic stays
//! inside the namespaces it creates, which are deleted with every daemon on every exit.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bgp_loadgen::usage::process_usage;
use interop::calico::FelixState;
use interop::calico::{bgpd_config, bird_config_timers, has_route_via, mesh_name, setup_felix};
use interop::{run_test, Bgpd, Bird, Error, Family, Node, Result, Segment, Speaker, Test};

const ASN: u32 = 64512;
/// How long one convergence may take before the run fails.
const LIMIT: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Daemon {
    Bird,
    Bgpd,
}

impl Daemon {
    fn name(self) -> &'static str {
        match self {
            Daemon::Bird => "bird",
            Daemon::Bgpd => "bgpd",
        }
    }
}

struct Args {
    nodes: u32,
    runs: u32,
    out: PathBuf,
}

fn args() -> std::result::Result<Args, String> {
    let mut a = Args {
        nodes: 4,
        runs: 3,
        out: PathBuf::from("target/bench/cluster.jsonl"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--nodes" => a.nodes = value.parse().map_err(|e| format!("--nodes: {e}"))?,
            "--runs" => a.runs = value.parse().map_err(|e| format!("--runs: {e}"))?,
            "--out" => a.out = PathBuf::from(value),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if a.nodes < 2 || a.nodes > 50 {
        return Err("--nodes: 2 to 50".into());
    }
    Ok(a)
}

/// One node's daemon, started in the calico-node style for `daemon`.
fn start_node(
    t: &Test,
    daemon: Daemon,
    node: &Node,
    felix: &FelixState,
    mesh: &[Ipv4Addr],
    label: &str,
) -> Result<Box<dyn Speaker>> {
    let pool: ipnet::Ipv4Net = "10.244.0.0/16"
        .parse()
        .map_err(|_| Error::Invalid("pool".into()))?;
    Ok(match daemon {
        Daemon::Bird => {
            let text = bird_config_timers(node.v4, ASN, felix.block, pool, mesh, None);
            let protocols = mesh
                .iter()
                .map(|p| (mesh_name(IpAddr::V4(*p)), IpAddr::V4(*p)))
                .collect();
            Box::new(Bird::start_with_config(t, node, label, &text, protocols)?)
        }
        Daemon::Bgpd => {
            let socket = t.subdir(label)?.join("bgpd.sock");
            let text = bgpd_config(node.v4, ASN, mesh, &socket);
            Box::new(Bgpd::start_with_config(t, node, label, &text, &socket)?)
        }
    })
}

/// Waits until every node's kernel holds every other node's block via that node, polling
/// every 20 ms (the harness's `wait_for` backs off to seconds, too coarse for this).
fn wait_converged(nodes: &[(Node, FelixState)]) -> Result<()> {
    let start = Instant::now();
    loop {
        let mut missing = None;
        'nodes: for (node, _) in nodes {
            let routes = node.ns.routes(Family::Ipv4)?;
            for (peer, felix) in nodes.iter().filter(|(n, _)| n.v4 != node.v4) {
                let want = ipnet::IpNet::V4(felix.block);
                if !has_route_via(&routes, want, peer.addr(Family::Ipv4), "bird") {
                    missing = Some(format!("{want} not yet on {}", node.name));
                    break 'nodes;
                }
            }
        }
        let Some(missing) = missing else {
            return Ok(());
        };
        if start.elapsed() > LIMIT {
            return Err(Error::Check(format!(
                "not converged after {} s: {missing}",
                LIMIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CPU seconds (utime + stime) of `pid` and its peak RSS (VmHWM) in MiB.
fn usage(pid: u32) -> Result<(f64, f64)> {
    let u = process_usage(pid)
        .ok_or_else(|| Error::Invalid(format!("no usage readable for pid {pid}")))?;
    Ok((u.cpu.as_secs_f64(), u.peak_rss_kib as f64 / 1024.0))
}

/// Summed CPU and largest peak RSS over the cluster's daemons.
fn cluster_usage(speakers: &[Box<dyn Speaker>]) -> Result<(f64, f64)> {
    let mut cpu = 0.0;
    let mut rss: f64 = 0.0;
    for s in speakers {
        let (c, r) = usage(s.process().pid())?;
        cpu += c;
        rss = rss.max(r);
    }
    Ok((cpu, rss))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn line(workload: &str, daemon: Daemon, run: u32, time: Duration, usage: (f64, f64)) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\"workload\":\"{workload}\",\"daemon\":\"{}\",\"run\":{run},\"time_s\":{:.3},\
         \"cpu_s\":{:.2},\"rss_mib\":{:.1},\"note\":\"load {}\"}}",
        daemon.name(),
        time.as_secs_f64(),
        usage.0,
        usage.1,
        load_average()
    );
    s
}

/// One run for `daemon`: the cluster's start, then node 1's restart.
fn run_once(t: &Test, daemon: Daemon, n: u32, run: u32) -> Result<Vec<String>> {
    let seg = Segment::new(t)?;
    let mut nodes: Vec<(Node, FelixState)> = Vec::new();
    for i in 1..=n {
        let node = Node::new(t, &seg, &format!("n{i}"), i)?;
        let block = format!("10.244.{i}.0/26")
            .parse()
            .map_err(|_| Error::Invalid("block".into()))?;
        let felix = setup_felix(t, &node, block, 1)?;
        nodes.push((node, felix));
    }
    let all: Vec<Ipv4Addr> = nodes.iter().map(|(n, _)| n.v4).collect();
    let mesh_of =
        |me: Ipv4Addr| -> Vec<Ipv4Addr> { all.iter().copied().filter(|p| *p != me).collect() };

    let started = Instant::now();
    let mut speakers = Vec::new();
    for (node, felix) in &nodes {
        let label = format!("{}-{}", daemon.name(), node.name);
        speakers.push(start_node(
            t,
            daemon,
            node,
            felix,
            &mesh_of(node.v4),
            &label,
        )?);
    }
    wait_converged(&nodes)?;
    let start_time = started.elapsed();
    let mut lines = vec![line(
        &format!("cluster-start-{n}"),
        daemon,
        run,
        start_time,
        cluster_usage(&speakers)?,
    )];

    // Node 1 restarts: stopped (SIGTERM, then waited for) and started again at once.
    let (first, felix) = nodes
        .first()
        .ok_or_else(|| Error::Invalid("no node".into()))?;
    let before: f64 = speakers
        .iter()
        .skip(1)
        .map(|s| usage(s.process().pid()).map_or(0.0, |u| u.0))
        .sum();
    let stopped = Instant::now();
    speakers.remove(0);
    let label = format!("{}-{}-restarted", daemon.name(), first.name);
    speakers.insert(
        0,
        start_node(t, daemon, first, felix, &mesh_of(first.v4), &label)?,
    );
    wait_converged(&nodes)?;
    let restart_time = stopped.elapsed();
    let (cpu_all, rss) = cluster_usage(&speakers)?;
    let others_after: f64 = speakers
        .iter()
        .skip(1)
        .map(|s| usage(s.process().pid()).map_or(0.0, |u| u.0))
        .sum();
    let restarted_cpu = cpu_all - others_after;
    // The restart's CPU: what the others spent meanwhile plus all of the new daemon's.
    let cpu = (others_after - before) + restarted_cpu;
    lines.push(line(
        &format!("cluster-restart-{n}"),
        daemon,
        run,
        restart_time,
        (cpu, rss),
    ));
    Ok(lines)
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cluster_convergence: {e}");
            std::process::exit(2);
        }
    };
    if let Some(dir) = a.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    for run in 1..=a.runs {
        for daemon in [Daemon::Bird, Daemon::Bgpd] {
            let name = format!("cluster_convergence_{}_{run}", daemon.name());
            let binaries: &[&str] = match daemon {
                Daemon::Bird => &["ip", "bird", "birdc"],
                Daemon::Bgpd => &["ip"],
            };
            let out = a.out.clone();
            let nodes = a.nodes;
            run_test(&name, binaries, |t| {
                let lines = run_once(t, daemon, nodes, run)?;
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&out)
                    .map_err(|e| Error::Invalid(format!("{}: {e}", out.display())))?;
                for l in &lines {
                    println!("{l}");
                    writeln!(f, "{l}").map_err(|e| Error::Invalid(e.to_string()))?;
                }
                Ok(())
            });
        }
    }
}
