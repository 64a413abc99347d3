//! Kernel FIB install benchmark, in a network namespace it creates and deletes.
//!
//! `cargo run --release -p bgp-kernel --example fib_bench -- [COUNT...] [--no-ip-batch] [--with-watcher]`
//! (root; default counts 100000 and 1000000). For each count: install COUNT /24 routes via a
//! veth next hop with the installer, delete them, then (unless `--no-ip-batch`) install the
//! same routes with `ip -batch` (one request per route) for comparison. `--with-watcher` runs
//! a `KernelWatcher` in the same runtime during the install and delete, as the daemon does.
//! Prints a Markdown table.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Instant;

use bgp_kernel::{
    ExportConfig, FibAction, FibNextHop, FibOp, FibRoute, KernelInstaller, NextHopMode,
};
use ipnet::{IpNet, Ipv4Net};

fn ip(ns: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .arg("-n")
        .arg(ns)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn prefix(i: u32) -> IpNet {
    // 11.0.0.0/24, 11.0.1.0/24, ...: distinct /24s, never leaving the namespace.
    let addr = std::net::Ipv4Addr::from(0x0B00_0000u32 + (i << 8));
    IpNet::V4(Ipv4Net::new(addr, 24).unwrap_or_default())
}

/// Routes currently in the namespace's main table with the given protocol.
fn count_routes(ns: &str, proto: &str) -> usize {
    Command::new("ip")
        .args(["-n", ns, "route", "show", "proto", proto])
        .output()
        .map(|o| o.stdout.iter().filter(|&&b| b == b'\n').count())
        .unwrap_or(0)
}

/// (user, system) CPU seconds of this process (`who` = RUSAGE_SELF) or of waited-for
/// children (RUSAGE_CHILDREN). Kernel route insertion runs inside our send() calls, so it is
/// counted as our system time: CPU time is the load-independent figure on a shared machine.
fn cpu(who: libc::c_int) -> (f64, f64) {
    // SAFETY: getrusage fills the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (s(ru.ru_utime), s(ru.ru_stime))
}

/// Resident set size of this process in MiB (from /proc/self/statm, 4 KiB pages).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |pages| pages * 4096.0 / (1024.0 * 1024.0))
}

fn main() {
    let mut counts: Vec<u32> = Vec::new();
    let mut ip_batch = true;
    let mut with_watcher = false;
    for a in std::env::args().skip(1) {
        if a == "--no-ip-batch" {
            ip_batch = false;
        } else if a == "--with-watcher" {
            with_watcher = true;
        } else if let Ok(n) = a.parse() {
            counts.push(n);
        } else {
            eprintln!("usage: fib_bench [COUNT...] [--no-ip-batch] [--with-watcher]");
            std::process::exit(2);
        }
    }
    if counts.is_empty() {
        counts = vec![100_000, 1_000_000];
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("fib_bench needs root (it creates a network namespace)");
        std::process::exit(1);
    }
    let ns = Netns(format!("bgpk-bench-{}", std::process::id()));
    let setup = || -> Result<(), String> {
        let st = Command::new("ip")
            .args(["netns", "add", &ns.0])
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("ip netns add failed".into());
        }
        ip(
            &ns.0,
            &[
                "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
            ],
        )?;
        ip(&ns.0, &["addr", "add", "10.0.0.1/24", "dev", "eth0"])?;
        ip(&ns.0, &["link", "set", "eth0", "up"])?;
        ip(&ns.0, &["link", "set", "eth0p", "up"])?;
        Ok(())
    };
    if let Err(e) = setup() {
        eprintln!("setup: {e}");
        std::process::exit(1);
    }
    let path = format!("/run/netns/{}", ns.0);
    let name = ns.0.clone();
    let rows = std::thread::scope(|s| {
        s.spawn(move || -> Result<Vec<String>, String> {
            let f = std::fs::File::open(&path).map_err(|e| e.to_string())?;
            // SAFETY: setns with a valid namespace fd changes only this thread's namespace.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error().to_string());
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut rows = Vec::new();
                for &n in &counts {
                    rows.push(bench_one(&name, n, ip_batch, with_watcher).await?);
                }
                Ok(rows)
            })
        })
        .join()
        .unwrap_or_else(|_| Err("bench thread panicked".into()))
    });
    match rows {
        Ok(rows) => {
            println!("| routes | install s (wall) | routes/s | install CPU s (user + sys) | RSS growth MiB | delete s | `ip -batch` install s | BIRD 2.0.12 install s |");
            println!("|---|---|---|---|---|---|---|---|");
            for r in rows {
                println!("{r}");
            }
        }
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}

async fn bench_one(ns: &str, n: u32, ip_batch: bool, with_watcher: bool) -> Result<String, String> {
    // Production-like: a watcher in the same runtime receives the kernel's notifications
    // (its BPF filter drops the announcements of our own routes).
    let watcher = if with_watcher {
        let mut w =
            bgp_kernel::KernelWatcher::spawn(bgp_kernel::KernelConfig::default().import_config())
                .map_err(|e| e.to_string())?;
        Some(tokio::spawn(
            async move { while w.next().await.is_some() {} },
        ))
    } else {
        None
    };
    let rss0 = rss_mib();
    let ops: Vec<FibOp> = (0..n)
        .map(|i| {
            FibOp::Install(FibRoute {
                prefix: prefix(i),
                action: FibAction::Forward(vec![FibNextHop {
                    gateway: std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                        10,
                        0,
                        0,
                        2 + (i % 2) as u8,
                    )),
                    mode: NextHopMode::Direct,
                    device: None,
                }]),
                local_pref: Some(100),
            })
        })
        .collect();
    let mut inst = KernelInstaller::open(ExportConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let c0 = cpu(libc::RUSAGE_SELF);
    let t = Instant::now();
    let rep = inst.apply(ops).await.map_err(|e| e.to_string())?;
    let install = t.elapsed().as_secs_f64();
    let c1 = cpu(libc::RUSAGE_SELF);
    let (user, sys) = (c1.0 - c0.0, c1.1 - c0.1);
    if rep.added != n as usize || rep.failed != 0 {
        return Err(format!("install incomplete: {rep:?}"));
    }
    let state_mib = rss_mib() - rss0;
    let in_kernel = count_routes(ns, "12");
    if in_kernel != n as usize {
        return Err(format!("kernel holds {in_kernel} of {n} routes"));
    }
    let t = Instant::now();
    let rep = inst
        .apply((0..n).map(|i| FibOp::Withdraw(prefix(i))))
        .await
        .map_err(|e| e.to_string())?;
    let delete = t.elapsed().as_secs_f64();
    if rep.deleted != n as usize {
        return Err(format!("delete incomplete: {rep:?}"));
    }
    drop(inst);
    if let Some(w) = watcher {
        w.abort();
    }

    let ipb = if ip_batch {
        let file = std::env::temp_dir().join(format!("{ns}-{n}.batch"));
        {
            let mut w =
                std::io::BufWriter::new(std::fs::File::create(&file).map_err(|e| e.to_string())?);
            for i in 0..n {
                writeln!(
                    w,
                    "route add {} via 10.0.0.{} proto 13 metric 2147483547",
                    prefix(i),
                    2 + i % 2
                )
                .map_err(|e| e.to_string())?;
            }
        }
        let file_s = file.to_string_lossy().into_owned();
        let c0 = cpu(libc::RUSAGE_CHILDREN);
        let t = Instant::now();
        ip(ns, &["-batch", &file_s])?;
        let secs = t.elapsed().as_secs_f64();
        let c1 = cpu(libc::RUSAGE_CHILDREN);
        let _ = std::fs::remove_file(&file);
        ip(ns, &["route", "flush", "proto", "13"])?;
        format!(
            "{secs:.2} ({:.0}/s), CPU {:.2} user + {:.2} sys",
            f64::from(n) / secs,
            c1.0 - c0.0,
            c1.1 - c0.1
        )
    } else {
        "–".to_string()
    };
    let bird = match n {
        100_000 => "0.65",
        1_000_000 => "7.3",
        _ => "–",
    };
    Ok(format!(
        "| {n} | {install:.2} | {:.0} | {user:.2} + {sys:.2} | {state_mib:.0} | {delete:.2} | {ipb} | {bird} |",
        f64::from(n) / install
    ))
}
