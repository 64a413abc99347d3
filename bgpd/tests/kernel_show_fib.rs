//! `bgpctl show fib` (and `--json`) and the kernel FIB metrics against a real kernel: what
//! bgpd installed, what the kernel refused and why, the retries pending.
//!
//! One bgpd in a network namespace the test creates, with a veth (192.0.2.1/24) and a
//! kernel route 10.99.0.0/24 via 192.0.2.2. It originates three routes: a blackhole, one
//! via 192.0.2.2 (on the veth's subnet: installed) and one via 10.99.0.1, a next hop
//! reachable only through another gateway, which the kernel refuses for a route (Linux
//! wants a gateway on a connected subnet unless `onlink`). The refused route is reported
//! with its reason and retried with backoff; `ip route` agrees with what bgpd says it
//! installed.
//!
//! Needs root; without it the test prints SKIPPED, and fails when `CI=true`.

mod support;

use std::process::Command;

use interop::{run_test, wait_for, Error, Family, Netns, Process, Result, Test};
use serde_json::Value;
use support::{bgpctl_bin, spawn_in_ns, DEADLINE};

/// The configuration: the control socket in the test's directory, the metrics endpoint
/// inside the namespace, three originated routes, installed with protocol 12.
fn config(socket: &str) -> String {
    format!(
        r#"[global]
asn = 64512
router_id = "192.0.2.1"
listen = ["192.0.2.1"]

[global.control]
socket = "{socket}"

[global.metrics]
listen = "192.0.2.1:9179"

[kernel.export]
protocol = 12
retry_initial_ms = 200
retry_max_ms = 1000

[[originate]]
prefix = "10.70.0.0/24"

[[originate]]
prefix = "10.71.0.0/24"
next_hop = "192.0.2.2"

[[originate]]
prefix = "10.72.0.0/24"
next_hop = "10.99.0.1"
"#
    )
}

/// `bgpctl -s SOCKET ARGS...`: exit code and stdout.
fn bgpctl(socket: &str, args: &[&str]) -> Result<(Option<i32>, String)> {
    let out = Command::new(bgpctl_bin())
        .arg("-s")
        .arg(socket)
        .args(args)
        .output()
        .map_err(|e| Error::Invalid(format!("running bgpctl: {e}")))?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    ))
}

/// `bgpctl show fib --json`, the answer's `result`.
fn show_fib(socket: &str) -> Result<Value> {
    let (code, text) = bgpctl(socket, &["--json", "show", "fib"])?;
    if code != Some(0) {
        return Err(Error::Check(format!("bgpctl show fib: {code:?} {text}")));
    }
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Invalid(format!("show fib --json: {e}: {text}")))?;
    Ok(v["result"].clone())
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Check(what()))
    }
}

fn setup(test: &Test) -> Result<(std::sync::Arc<Netns>, Process, String)> {
    let ns = Netns::new(test, "show-fib")?;
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v0p"])?;
    ns.ip(&["link", "set", "v0", "up"])?;
    ns.ip(&["link", "set", "v0p", "up"])?;
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "v0"])?;
    ns.ip(&["route", "add", "10.99.0.0/24", "via", "192.0.2.2"])?;
    let socket = test.subdir("bgpd")?.join("bgpd.sock");
    let socket = socket.display().to_string();
    let p = spawn_in_ns(test, &ns, "bgpd", &config(&socket), &[])?;
    Ok((ns, p, socket))
}

#[test]
fn kernel_show_fib_lists_installed_and_refused_routes() {
    run_test(
        "kernel_show_fib_lists_installed_and_refused_routes",
        &["ip", "curl"],
        |test| {
            let (ns, _bgpd, socket) = setup(test)?;
            // Two installed, one refused and retried at least once.
            let mut fib = Value::Null;
            wait_for(
                "show fib: 2 installed, 1 refused and retried",
                DEADLINE,
                || {
                    fib = match show_fib(&socket) {
                        Ok(v) => v,
                        Err(e) => return Ok(Err(e.to_string())),
                    };
                    let ok = fib["installed"].as_array().is_some_and(|a| a.len() == 2)
                        && fib["refused"].as_array().is_some_and(|a| a.len() == 1)
                        && fib["retried_total"].as_u64().is_some_and(|n| n >= 1);
                    Ok(if ok { Ok(()) } else { Err(fib.to_string()) })
                },
            )?;
            let installed = &fib["installed"];
            check(
                installed[0]["prefix"] == "10.70.0.0/24"
                    && installed[0]["route"] == "blackhole"
                    && installed[1]["prefix"] == "10.71.0.0/24"
                    && installed[1]["route"] == "via 192.0.2.2",
                || format!("installed: {installed}"),
            )?;
            let refused = &fib["refused"][0];
            let reason = refused["reason"].as_str().unwrap_or_default().to_owned();
            check(
                refused["prefix"] == "10.72.0.0/24"
                    && reason == "ENETUNREACH"
                    && refused["attempts"].as_u64().is_some_and(|n| n >= 1),
                || format!("refused: {refused}"),
            )?;
            check(
                fib["refused_total"][reason.as_str()]
                    .as_u64()
                    .is_some_and(|n| n >= 2),
                || format!("refusals counted by reason: {fib}"),
            )?;

            // The kernel agrees: ours are there (protocol 12, which iproute2 names "bird"),
            // the refused one is not.
            let rs = ns.routes(Family::Ipv4)?;
            let ours = |dst: &str| {
                rs.iter().any(|r| {
                    r.dst.to_string() == dst && (r.protocol == "12" || r.protocol == "bird")
                })
            };
            check(
                ours("10.70.0.0/24") && ours("10.71.0.0/24") && !ours("10.72.0.0/24"),
                || format!("kernel table: {rs:?}"),
            )?;

            // The text form says the same.
            let (code, text) = bgpctl(&socket, &["show", "fib"])?;
            check(
                code == Some(0)
                    && text.contains("2 routes installed")
                    && text.contains("10.71.0.0/24 via 192.0.2.2 metric")
                    && text.contains("1 routes refused by the kernel")
                    && text.contains("10.72.0.0/24 ENETUNREACH"),
                || text.clone(),
            )?;

            // And the metrics endpoint.
            let m = ns.exec(
                "curl",
                &["-sS", "--max-time", "10", "http://192.0.2.1:9179/metrics"],
            )?;
            let sample = |series: &str| {
                m.lines()
                    .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
                    .and_then(|v| v.parse::<f64>().ok())
            };
            check(
                sample("bgpd_kernel_fib_routes_installed") == Some(2.0)
                    && sample("bgpd_kernel_fib_retries_pending") == Some(1.0)
                    && sample("bgpd_kernel_fib_retries_total").is_some_and(|v| v >= 1.0)
                    && sample("bgpd_kernel_fib_refused_total{reason=\"ENETUNREACH\"}")
                        .is_some_and(|v| v >= 2.0),
                || m.clone(),
            )?;
            Ok(())
        },
    );
}

#[test]
fn show_fib_without_kernel_section_is_an_error() {
    let dir = support::tempdir("bgpd-fib");
    let d = dir.path();
    let config = support::global_toml(d, "n", 64512, "10.93.0.1", "127.0.93.1:11180", "");
    let n = support::Daemon::start(d, "n", &config);
    let out = n.bgpctl(&["show", "fib"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no [kernel] section"),
        "{out:?}"
    );
}
