//! The Calico datastore at scale (a benchmark, not a test): a real etcd member and one
//! `bgpd calico run` in a namespace this program creates, the datastore filled with
//! 1,000 `Node` resources (and their block affinities, an IPPool, the `default`
//! BGPConfiguration, a BGPPeer of bgpd's node with a BGPFilter), then a stream of changes,
//! each measured on its own: the time from the etcd put (an in-process etcd client, so no
//! `etcdctl` start-up is counted) until bgpd logs the configuration diff applied ("datastore
//! change applied: ..."; the log is read as it grows, which costs bgpd nothing), and the
//! CPU time bgpd spent meanwhile (every thread, from `/proc/PID/task/*/schedstat`,
//! nanoseconds).
//!
//! ```text
//! cargo build --release -p bgpd -p bgpctl
//! BGPD_BIN=target/release/bgpd cargo run -p interop --example calico_scale -- [NODES] [ROUNDS]
//! ```
//!
//! bgpd's node has the address that sorts first as a string, so by Calico's rule it is
//! the passive side of every mesh session: the 999 sessions are configured but nothing
//! connects (their addresses lead nowhere inside the namespace), and what is measured is
//! the datastore path alone: watch, incremental derivation, rendering, the configuration
//! diff and the speaker applying it. The changes: a node added, the same node deleted
//! (one mesh session each), the BGPPeer's AS changed (one session), its BGPFilter's
//! prefix changed (one policy), and for contrast the mesh restart time changed
//! (`nodeMeshMaxRestartTime`: every mesh session). Needs root (namespaces), Debian's
//! etcd-server and etcd-client.

use std::path::Path;
use std::time::{Duration, Instant};

use interop::bgpd::{bgpd_binary, control_at};
use interop::calico_datastore::spawn_calico_run;
use interop::etcd::{EtcdCluster, ETCD_BINARIES};
use interop::{run_test, say, Error, Netns, Result, Test};
use serde_json::{json, Value};

const RESOURCES: &str = "/calico/resources/v3/projectcalico.org";
/// The node bgpd runs as; its address sorts before every other node's.
const ME: &str = "n0";
const MY_IP: &str = "10.100.0.1";

fn node_ip(i: usize) -> String {
    format!("10.200.{}.{}", i / 250, i % 250 + 1)
}

fn node(name: &str, ip: &str) -> Value {
    json!({"kind": "Node", "apiVersion": "projectcalico.org/v3",
           "metadata": {"name": name}, "spec": {"bgp": {"ipv4Address": format!("{ip}/16")}}})
}

fn bgp_configuration(restart_secs: u32) -> Value {
    json!({"kind": "BGPConfiguration", "apiVersion": "projectcalico.org/v3",
           "metadata": {"name": "default"},
           "spec": {"asNumber": 64512, "nodeToNodeMeshEnabled": true,
                    "nodeMeshMaxRestartTime": format!("{restart_secs}s")}})
}

fn bgp_peer(asn: u32) -> Value {
    json!({"kind": "BGPPeer", "apiVersion": "projectcalico.org/v3", "metadata": {"name": "tor"},
           "spec": {"node": ME, "peerIP": "10.100.0.254", "asNumber": asn, "filters": ["tor-out"]}})
}

fn bgp_filter(cidr: &str) -> Value {
    json!({"kind": "BGPFilter", "apiVersion": "projectcalico.org/v3", "metadata": {"name": "tor-out"},
           "spec": {"exportV4": [{"action": "Reject", "matchOperator": "In", "cidr": cidr}]}})
}

fn key(kinds: &str, name: &str) -> String {
    format!("{RESOURCES}/{kinds}/{name}")
}

/// CPU time of every thread of `pid`, nanoseconds.
fn cpu_ns(pid: u32) -> Result<u64> {
    let dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&dir).map_err(|e| Error::Invalid(format!("{dir}: {e}")))?;
    let mut total = 0u64;
    for t in tasks.flatten() {
        let s = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        total += s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| {
            v.split_whitespace()
                .next()
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// bgpd's stderr, read as it grows: each configuration the datastore path applies is
/// one "datastore change applied: DIFF" line (info level). Watching the log costs bgpd
/// nothing, where polling its control socket would add to the CPU measured.
struct AppliedLog {
    file: std::fs::File,
    pending: String,
}

impl AppliedLog {
    fn open(path: &Path) -> Result<AppliedLog> {
        let file = std::fs::File::open(path)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        Ok(AppliedLog {
            file,
            pending: String::new(),
        })
    }

    /// The diffs applied since the last call.
    fn take(&mut self) -> Vec<String> {
        use std::io::Read as _;
        let mut buf = String::new();
        let _ = self.file.read_to_string(&mut buf);
        self.pending.push_str(&buf);
        let mut out = Vec::new();
        while let Some(end) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=end).collect();
            if let Some((_, diff)) = line.split_once("datastore change applied: ") {
                out.push(diff.trim().to_owned());
            }
        }
        out
    }

    /// Polls every millisecond until a configuration is applied; returns its diff.
    fn wait(&mut self, bound: Duration) -> Result<String> {
        let start = Instant::now();
        loop {
            if let Some(d) = self.take().into_iter().last() {
                return Ok(d);
            }
            if start.elapsed() > bound {
                return Err(Error::Timeout {
                    what: "a datastore change applied".into(),
                    secs: bound.as_secs(),
                    last: "no \"datastore change applied\" line".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Polls `show_datastore` until the first configuration is applied (the start-up).
fn wait_first(socket: &Path, bound: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let applied = control_at(socket, json!({"command": "show_datastore"}))
            .ok()
            .and_then(|r| r["applied"].as_u64())
            .unwrap_or(0);
        if applied > 0 {
            return Ok(());
        }
        if start.elapsed() > bound {
            return Err(Error::Timeout {
                what: "bgpd's first configuration".into(),
                secs: bound.as_secs(),
                last: "nothing applied".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One measured change.
struct Sample {
    kind: &'static str,
    diff: String,
    time: Duration,
    cpu: Duration,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let nodes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let mut bins: Vec<String> = ETCD_BINARIES.iter().map(|s| s.to_string()).collect();
    bins.push(bgpd_binary().map_or_else(
        || "bgpd (cargo build --release -p bgpd)".to_owned(),
        |p| p.display().to_string(),
    ));
    run_test("calico_scale", &bins, |t| bench(t, nodes, rounds));
}

fn bench(t: &Test, nodes: usize, rounds: usize) -> Result<()> {
    let ns = Netns::new(t, "scale")?;
    ns.ip(&["addr", "add", &format!("{MY_IP}/32"), "dev", "lo"])?;
    let etcd = EtcdCluster::start(t, &ns, 1, None)?;
    let endpoints = etcd.endpoints();
    // Everything below runs inside the namespace: the etcd client's connections (and
    // its reconnections) must be made there.
    ns.enter(|| measure(t, &ns, &endpoints, nodes, rounds))?
}

fn measure(
    t: &Test,
    ns: &std::sync::Arc<Netns>,
    endpoints: &[String],
    nodes: usize,
    rounds: usize,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("tokio: {e}")))?;
    let mut client = rt
        .block_on(etcd_client::Client::connect(endpoints, None))
        .map_err(|e| Error::Invalid(format!("etcd client: {e}")))?;
    let mut put = |k: String, v: Option<&Value>| -> Result<()> {
        match v {
            Some(v) => rt.block_on(client.put(k, v.to_string(), None)).map(|_| ()),
            None => rt.block_on(client.delete(k, None)).map(|_| ()),
        }
        .map_err(|e| Error::Invalid(format!("etcd write: {e}")))
    };
    let filled = Instant::now();
    put(
        key("bgpconfigurations", "default"),
        Some(&bgp_configuration(120)),
    )?;
    put(
        key("ippools", "default-ipv4-ippool"),
        Some(
            &json!({"kind": "IPPool", "apiVersion": "projectcalico.org/v3",
                "metadata": {"name": "default-ipv4-ippool"},
                "spec": {"cidr": "10.64.0.0/10", "ipipMode": "Never", "vxlanMode": "Never"}}),
        ),
    )?;
    put(
        key("bgpfilters", "tor-out"),
        Some(&bgp_filter("10.0.0.0/8")),
    )?;
    put(key("bgppeers", "tor"), Some(&bgp_peer(65000)))?;
    put(key("nodes", ME), Some(&node(ME, MY_IP)))?;
    for i in 0..nodes {
        let name = if i == 0 {
            ME.to_owned()
        } else {
            format!("n{i}")
        };
        if i > 0 {
            put(key("nodes", &name), Some(&node(&name, &node_ip(i))))?;
        }
        put(
            format!(
                "/calico/ipam/v2/host/{name}/ipv4/block/10.{}.{}.0-26",
                64 + i / 256,
                i % 256
            ),
            Some(&json!({"state": "confirmed", "deleted": false})),
        )?;
    }
    say(&format!(
        "etcd filled with {nodes} nodes and their blocks in {:.1} s",
        filled.elapsed().as_secs_f64()
    ));

    let started = Instant::now();
    let (bgpd, socket) = spawn_calico_run(t, ns, "bgpd", ME, endpoints, &[])?;
    let pid = bgpd.pid();
    let mut log = AppliedLog::open(bgpd.stderr_path())?;
    wait_first(&socket, Duration::from_secs(120))?;
    let first = started.elapsed();
    let report = control_at(&socket, json!({"command": "show_datastore"}))?;
    let sessions = report["peers"].as_array().map_or(0, Vec::len);
    if sessions != nodes {
        return Err(Error::Check(format!(
            "{sessions} sessions derived, want {nodes} ({} mesh + the BGPPeer): {report}",
            nodes - 1
        )));
    }
    // Let the start-up settle before measuring changes.
    std::thread::sleep(Duration::from_secs(2));
    log.take();
    say(&format!(
        "bgpd started on {nodes} nodes ({sessions} sessions) in {:.2} s, CPU {:.2} s, RSS {:.1} MiB",
        first.as_secs_f64(),
        Duration::from_nanos(cpu_ns(pid)?).as_secs_f64(),
        rss_mib(pid)
    ));

    let mut samples: Vec<Sample> = Vec::new();
    let bound = Duration::from_secs(30);
    for r in 0..rounds {
        let extra = format!("n{}", nodes + r);
        let changes: Vec<(&'static str, String, Option<Value>)> = vec![
            (
                "node added (1 mesh session)",
                key("nodes", &extra),
                Some(node(&extra, &node_ip(nodes + r))),
            ),
            ("node deleted (1 mesh session)", key("nodes", &extra), None),
            (
                "BGPPeer AS changed (1 session)",
                key("bgppeers", "tor"),
                Some(bgp_peer(65001 + u32::try_from(r).unwrap_or(0))),
            ),
            (
                "BGPFilter changed (1 policy)",
                key("bgpfilters", "tor-out"),
                Some(bgp_filter(&format!("10.{}.0.0/16", r % 200))),
            ),
            (
                "mesh restart time changed (every mesh session)",
                key("bgpconfigurations", "default"),
                Some(bgp_configuration(121 + u32::try_from(r).unwrap_or(0))),
            ),
        ];
        for (kind, k, v) in changes {
            let cpu0 = cpu_ns(pid)?;
            let t0 = Instant::now();
            put(k, v.as_ref())?;
            let diff = log.wait(bound)?;
            let time = t0.elapsed();
            let cpu = Duration::from_nanos(cpu_ns(pid)?.saturating_sub(cpu0));
            samples.push(Sample {
                kind,
                diff,
                time,
                cpu,
            });
            // Quiet between changes, so one's work does not spill into the next.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "Calico datastore at scale: {nodes} nodes, {rounds} rounds, load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("| change | put to applied, median | max | bgpd CPU per change, median | max | diff applied |");
    println!("|---|---|---|---|---|---|");
    let mut kinds: Vec<&str> = samples.iter().map(|s| s.kind).collect();
    kinds.dedup();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let of: Vec<&Sample> = samples.iter().filter(|s| s.kind == kind).collect();
        let times: Vec<Duration> = of.iter().map(|s| s.time).collect();
        let cpus: Vec<Duration> = of.iter().map(|s| s.cpu).collect();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let diff = of.first().map_or(String::new(), |s| {
            let peers = s.diff.matches("peer ").count();
            match s.diff.char_indices().nth(90) {
                Some((cut, _)) => format!("{}... ({peers} peers)", &s.diff[..cut]),
                None => s.diff.clone(),
            }
        });
        println!(
            "| {kind} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {diff} |",
            ms(median(times.clone())),
            ms(times.iter().max().copied().unwrap_or_default()),
            ms(median(cpus.clone())),
            ms(cpus.iter().max().copied().unwrap_or_default()),
        );
    }
    println!("bgpd RSS at the end: {:.1} MiB", rss_mib(pid));
    drop(bgpd);
    Ok(())
}
