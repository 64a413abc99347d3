//! Converge a route-reflector cluster in the simulator and print the figures that go into
//! docs/benchmarks.md ("Simulation").
//!
//! ```text
//! cargo run --release -p bgp-sim --example rr_cluster -- [--clients 1000] [--reflectors 2] [--seed 1]
//!     [--rx-ns 0] [--tx-ns 0]
//! ```
//!
//! Two route reflectors sharing one CLUSTER_ID, every other node a client of both; each
//! node originates one /26. Prints the virtual time to convergence, the wall time it took
//! to simulate, and the traffic, after checking every node holds every block via its
//! originator's address. `--rx-ns`/`--tx-ns` charge virtual time per UPDATE received and
//! sent ([`bgp_sim::CpuModel`]); without them the figure is the protocol's alone.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bgp_rib::policy::RouteSource;
use bgp_sim::{CpuModel, NodeId, Sim, SimConfig, Topology};

struct Args {
    clients: usize,
    reflectors: usize,
    seed: u64,
    rx_ns: u64,
    tx_ns: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        clients: 1000,
        reflectors: 2,
        seed: 1,
        rx_ns: 0,
        tx_ns: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--clients" => args.clients = number(&value)? as usize,
            "--reflectors" => args.reflectors = number(&value)? as usize,
            "--seed" => args.seed = number(&value)?,
            "--rx-ns" => args.rx_ns = number(&value)?,
            "--tx-ns" => args.tx_ns = number(&value)?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if args.reflectors == 0 {
        return Err("--reflectors must be at least 1".into());
    }
    Ok(args)
}

/// Every node holds every block, via the originator's address (its own as a local route).
fn verify(sim: &Sim) -> Result<(), String> {
    let t = sim.topology();
    for (i, _) in t.nodes.iter().enumerate() {
        let rib = sim.loc_rib(NodeId(i)).ok_or(format!("node{i} down"))?;
        if rib.len() != t.nodes.len() {
            return Err(format!(
                "node{i} holds {} of {} blocks",
                rib.len(),
                t.nodes.len()
            ));
        }
        for e in &rib {
            let origin = t
                .originators(match e.prefix {
                    ipnet::IpNet::V4(p) => p,
                    ipnet::IpNet::V6(_) => return Err(format!("node{i}: unexpected {}", e.prefix)),
                })
                .next()
                .ok_or(format!("node{i}: unknown prefix {}", e.prefix))?;
            let ok = if origin.0 == i {
                e.source == RouteSource::Static
            } else {
                e.next_hop == Some(IpAddr::V4(t.nodes[origin.0].address)) && !e.stale
            };
            if !ok {
                return Err(format!("node{i}: wrong route {e:?}"));
            }
        }
    }
    Ok(())
}

/// Peak resident set size of this process (Linux), for scale.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rr_cluster: {e}");
            eprintln!("usage: rr_cluster [--clients N] [--reflectors N] [--seed N] [--rx-ns N] [--tx-ns N]");
            return ExitCode::from(2);
        }
    };
    let cluster = Ipv4Addr::new(10, 255, 255, 1);
    let topology = Topology::route_reflection(args.reflectors, args.clients, cluster);
    let sessions = topology.sessions.len();
    let mut cfg = SimConfig::new(args.seed);
    cfg.cpu = CpuModel {
        per_update_received: Duration::from_nanos(args.rx_ns),
        per_update_sent: Duration::from_nanos(args.tx_ns),
    };
    println!(
        "{} reflectors (cluster {cluster}) + {} clients, {sessions} iBGP sessions, seed {}",
        args.reflectors, args.clients, args.seed
    );
    println!(
        "links {:?}..{:?} one way, {}% of writes split, batching {:?}, hold time {} s",
        cfg.link.min_latency,
        cfg.link.max_latency,
        cfg.link.split_percent,
        cfg.batch_delay,
        cfg.hold_time
    );
    println!(
        "RIB work per UPDATE: {:?} received, {:?} sent (virtual)",
        cfg.cpu.per_update_received, cfg.cpu.per_update_sent
    );
    let wall = Instant::now();
    let mut sim = match Sim::new(topology, cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rr_cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    let done = match sim.run_until_converged(Duration::from_secs(600)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("rr_cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    let wall = wall.elapsed();
    if let Err(e) = verify(&sim) {
        eprintln!("rr_cluster: converged to a wrong state: {e}");
        return ExitCode::FAILURE;
    }
    if !sim.anomalies().is_empty() {
        eprintln!("rr_cluster: anomalies: {:?}", sim.anomalies());
        return ExitCode::FAILURE;
    }
    let s = sim.stats();
    println!(
        "verified: every node holds all {} blocks via their originators",
        sim.topology().nodes.len()
    );
    println!(
        "simulated convergence: {:.3} ms (last best-path change {:.3} ms)",
        done.at.as_secs_f64() * 1e3,
        done.last_loc_rib_change.as_secs_f64() * 1e3
    );
    println!("wall time: {:.2} s", wall.as_secs_f64());
    println!(
        "events {}, segments {}, bytes {}, UPDATEs sent {} (End-of-RIB included), received {}, best-path changes {}",
        s.events, s.segments, s.bytes, s.updates_sent, s.updates_received, s.loc_rib_changes
    );
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS: {rss:.0} MiB");
    }
    ExitCode::SUCCESS
}
