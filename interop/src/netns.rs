//! Network namespaces, a bridged L2 segment between them, kernel route
//! inspection and ping.
//!
//! Every namespace is created by the harness with a name unique to the test
//! and process (`ix-<test tag>-<role>.<pid>.<start>`, see [`Owner`]) and
//! deleted when its last [`Arc<Netns>`] is dropped. Processes started in a namespace hold an `Arc`, so
//! a namespace always outlives the daemons inside it. The bridge of a
//! [`Segment`] lives in a namespace of its own, never in the root namespace;
//! veth pairs are created directly between the node and bridge namespaces, so
//! nothing — not even transiently — appears in the root namespace. Addresses
//! are only ever configured inside these namespaces.
//!
//! A test binary killed from outside (a CI time limit, `kill -9`) never runs
//! its destructors, so its namespaces and daemons outlive it. Every namespace
//! name therefore ends with its owner, the creating test process's PID and
//! start time (so a recycled PID is not mistaken for the owner), and every
//! daemon the harness starts carries the same owner in its environment
//! ([`OWNER_ENV`]). [`sweep_leftovers`], run once at the start of each test
//! binary, deletes the `ix-*` namespaces whose owner is dead after killing,
//! by PID, the processes inside them that carry that owner's mark; a
//! namespace holding any other process is left in place and reported.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::cmd;
use crate::context::{next_id, sanitize, say, Test};
use crate::error::{Error, Result};
use crate::json::{as_u32, strings};
use crate::model::Family;
use crate::wait::wait_for;

/// A network namespace owned by the harness; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `ix-<test tag>-<role>.<pid>.<start>` with loopback up and IPv6
    /// duplicate address detection off (addresses are usable at once).
    pub fn new(test: &Test, role: &str) -> Result<Arc<Netns>> {
        sweep_leftovers_once();
        let name = netns_name(test.tag(), &sanitize(role, 12), Owner::current());
        cmd::run("ip", &["netns", "add", &name])?;
        // From here on Drop deletes it, even if the set-up below fails.
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        for key in [
            "net.ipv6.conf.all.accept_dad",
            "net.ipv6.conf.default.accept_dad",
        ] {
            ns.sysctl(key, "0")?;
        }
        for key in ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"] {
            ns.sysctl(key, "1")?;
        }
        Ok(Arc::new(ns))
    }

    /// The namespace name, as used with `ip netns exec` / `ip -n`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NS args...`, returning stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        cmd::run("ip", &full)
    }

    /// Runs `program args...` inside the namespace; fails unless it exits 0.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        cmd::run("ip", &full)
    }

    /// Runs `program args...` inside the namespace and returns its raw output.
    pub fn exec_output(&self, program: &str, args: &[&str]) -> Result<Output> {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        cmd::output("ip", &full)
    }

    /// Sets a sysctl inside the namespace by writing `/proc/sys` (no procps needed).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.exec(
            "sh",
            &["-c", "printf '%s\\n' \"$1\" > \"$2\"", "sh", value, &path],
        )?;
        Ok(())
    }

    /// Adds `addr` to `dev` (IPv6 without duplicate address detection).
    pub fn add_address(&self, dev: &str, addr: IpNet) -> Result<()> {
        let a = addr.to_string();
        match addr {
            IpNet::V4(_) => self.ip(&["addr", "add", &a, "dev", dev])?,
            IpNet::V6(_) => self.ip(&["addr", "add", &a, "dev", dev, "nodad"])?,
        };
        Ok(())
    }

    /// Adds a dummy interface (Felix-like node state, loopback-like addresses).
    pub fn add_dummy(&self, dev: &str) -> Result<()> {
        self.ip(&["link", "add", dev, "type", "dummy"])?;
        self.ip(&["link", "set", dev, "up"])?;
        Ok(())
    }

    /// The namespace's main-table routes of `family` (`ip -n NS -j route`).
    pub fn routes(&self, family: Family) -> Result<Vec<KernelRoute>> {
        let flag = match family {
            Family::Ipv4 => "-4",
            Family::Ipv6 => "-6",
        };
        let text = self.ip(&["-j", flag, "route", "show", "table", "main"])?;
        parse_ip_route_json(&text, family)
    }

    /// Packets received and sent by `dev` (`ip -s -j link show DEV`).
    pub fn link_packets(&self, dev: &str) -> Result<LinkPackets> {
        let text = self.ip(&["-s", "-j", "link", "show", dev])?;
        parse_link_packets(&text)
    }

    /// A counter of the namespace's `/proc/net/netstat` (e.g. `TcpExt`,
    /// `TCPMD5Failure`); `Ok(None)` if the kernel does not have it.
    pub fn netstat_counter(&self, group: &str, name: &str) -> Result<Option<u64>> {
        let text = self.exec("cat", &["/proc/net/netstat"])?;
        Ok(parse_netstat(&text, group, name))
    }

    /// Sends one ICMP echo (`ping -c 1 -W 2`, optionally from `src`); true if
    /// answered.
    pub fn ping(&self, dst: IpAddr, src: Option<IpAddr>) -> Result<bool> {
        let dst = dst.to_string();
        let src = src.map(|s| s.to_string());
        let mut args = vec!["-c", "1", "-W", "2"];
        if let Some(s) = &src {
            args.push("-I");
            args.push(s);
        }
        args.push(&dst);
        let out = self.exec_output("ping", &args)?;
        if out.status.code() == Some(2) && !out.stderr.is_empty() {
            // Exit 2 with a message is a usage/system error, not "no answer".
            return Err(Error::Command {
                cmd: format!("ip netns exec {} ping {}", self.name, args.join(" ")),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                stdout: String::new(),
            });
        }
        Ok(out.status.success())
    }

    /// Pings `dst` (from `src` when given) until it answers, up to `timeout`.
    pub fn wait_ping(&self, dst: IpAddr, src: Option<IpAddr>, timeout: Duration) -> Result<()> {
        let from = src.map_or_else(|| self.name.clone(), |s| s.to_string());
        wait_for(&format!("ping {from} -> {dst}"), timeout, || {
            Ok(if self.ping(dst, src)? {
                Ok(())
            } else {
                Err("no reply".into())
            })
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = cmd::run("ip", &["netns", "del", &self.name]) {
            eprintln!("interop: could not delete namespace {}: {e}", self.name);
        }
    }
}

/// Prefix of every namespace the harness creates.
pub const NETNS_PREFIX: &str = "ix-";

/// Environment variable carried by every daemon the harness starts: its
/// owning test process, written as [`Owner::mark`] (`PID.START`).
pub const OWNER_ENV: &str = "INTEROP_OWNER";

/// The test process that created a namespace or started a daemon: its PID
/// and its start time (clock ticks after boot, field 22 of
/// `/proc/PID/stat`), which together name one process even after the PID is
/// recycled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Start time; `None` for names of the older form `ix-…-<pid>`.
    pub start: Option<u64>,
}

impl Owner {
    /// This process.
    pub fn current() -> Owner {
        static CURRENT: OnceLock<Owner> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let pid = std::process::id();
            Owner {
                pid,
                start: process_start_time(pid),
            }
        })
    }

    /// The owner as written in namespace names and in [`OWNER_ENV`]:
    /// `PID.START` (just `PID` when the start time is unknown).
    pub fn mark(&self) -> String {
        match self.start {
            Some(start) => format!("{}.{start}", self.pid),
            None => self.pid.to_string(),
        }
    }

    /// True while the owning process runs: its PID exists and, when the start
    /// time is known, has that start time (a recycled PID does not count).
    pub fn is_alive(&self) -> bool {
        match self.start {
            Some(start) => process_start_time(self.pid) == Some(start),
            None => Path::new(&format!("/proc/{}", self.pid)).exists(),
        }
    }
}

/// The start time of process `pid`, if it exists.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_start_time(&stat)
}

/// Field 22 (`starttime`) of a `/proc/PID/stat` line. The command name
/// (field 2) is in parentheses and may itself contain spaces and `)`, so
/// fields are counted after the last `)`.
pub fn parse_stat_start_time(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // After the `)`: field 3 (state) is the first, so starttime is the 20th.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The namespace name for `tag` and `role` (both already sanitised to
/// `[a-z0-9-]`) owned by `owner`: `ix-<tag>-<role>.<pid>.<start>`.
pub fn netns_name(tag: &str, role: &str, owner: Owner) -> String {
    format!("{NETNS_PREFIX}{tag}-{role}.{}", owner.mark())
}

/// The owner encoded in a harness namespace name: `ix-….<pid>.<start>`, or
/// the older `ix-…-<pid>`; `None` for any other name (never ours to touch).
pub fn owner_of_netns(name: &str) -> Option<Owner> {
    let rest = name.strip_prefix(NETNS_PREFIX)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match rest.split_once('.') {
        Some((_, owner)) => {
            let (pid, start) = owner.split_once('.')?;
            if !digits(pid) || !digits(start) {
                return None;
            }
            Some(Owner {
                pid: pid.parse().ok()?,
                start: Some(start.parse().ok()?),
            })
        }
        None => {
            let (_, pid) = rest.rsplit_once('-')?;
            if !digits(pid) {
                return None;
            }
            Some(Owner {
                pid: pid.parse().ok()?,
                start: None,
            })
        }
    }
}

/// True if a process environment (`/proc/PID/environ`: NUL-separated
/// `KEY=VALUE`) carries [`OWNER_ENV`] set to `owner`'s mark.
pub fn environ_has_owner(environ: &[u8], owner: Owner) -> bool {
    let want = format!("{OWNER_ENV}={}", owner.mark());
    environ.split(|b| *b == 0).any(|kv| kv == want.as_bytes())
}

/// What [`sweep_leftovers`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// Namespaces deleted (their owner was dead).
    pub deleted: Vec<String>,
    /// Processes killed (PID, namespace): they carried the dead owner's mark.
    pub killed: Vec<(u32, String)>,
    /// Namespaces of dead owners kept because a process without the owner's
    /// mark (or one that could not be checked) runs inside (PID, namespace);
    /// never signalled.
    pub kept: Vec<(u32, String)>,
}

/// Removes the namespaces and daemons left behind by test processes that died
/// without cleaning up, e.g. killed by a time limit ([`sweep_leftovers`]), once per
/// test binary, before its first namespace is made, and says what it removed. A
/// failure to sweep is reported, not fatal: leftovers never collide with our own
/// names.
fn sweep_leftovers_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| match sweep_leftovers() {
        Ok(sweep) => {
            for (pid, ns) in &sweep.killed {
                say(&format!(
                    "interop: killed leftover process {pid} of a dead test in {ns}"
                ));
            }
            if !sweep.deleted.is_empty() {
                say(&format!(
                    "interop: deleted {} leftover namespace(s) of dead test processes: {}",
                    sweep.deleted.len(),
                    sweep.deleted.join(" ")
                ));
            }
            for (pid, ns) in &sweep.kept {
                say(&format!(
                    "interop: kept leftover namespace {ns}: process {pid} inside was not started by the harness"
                ));
            }
        }
        Err(e) => say(&format!("interop: could not sweep leftover namespaces: {e}")),
    });
}

/// Deletes leftovers of test processes that died without cleaning up: every
/// `ix-*` namespace whose [`Owner`] is dead. Processes inside it that carry
/// the owner's mark in their environment were started by that test and are
/// killed (SIGKILL through a pidfd, so a recycled PID is never hit); if
/// anything else runs inside, the namespace is kept and reported. Namespaces
/// of live owners (this process, concurrent test binaries) are not touched.
pub fn sweep_leftovers() -> Result<Sweep> {
    let mut sweep = Sweep::default();
    let dir = Path::new("/run/netns");
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(sweep),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    for name in names {
        let Some(owner) = owner_of_netns(&name) else {
            continue;
        };
        if owner.is_alive() {
            continue;
        }
        let pids = netns_pids(&name)?;
        let mut foreign = Vec::new();
        let mut ours = Vec::new();
        for pid in pids {
            match kill_if_owned(pid, owner) {
                Ok(true) => ours.push(pid),
                Ok(false) => foreign.push(pid),
                // Gone meanwhile: nothing left to do for it.
                Err(e)
                    if e.raw_os_error() == Some(libc::ESRCH)
                        || e.kind() == std::io::ErrorKind::NotFound => {}
                // Could not check or signal it (no pidfd support, no
                // permission): treat it as not ours, so the namespace stays.
                Err(_) => foreign.push(pid),
            }
        }
        // Killed processes leave the namespace when the kernel reaps them;
        // wait (bounded) so the deletion below really frees it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            let left = netns_pids(&name)?;
            if !left.iter().any(|p| ours.contains(p)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        sweep.killed.extend(ours.iter().map(|p| (*p, name.clone())));
        if !foreign.is_empty() {
            sweep
                .kept
                .extend(foreign.iter().map(|p| (*p, name.clone())));
            continue;
        }
        // A concurrent sweep (another test binary) may have deleted it first.
        if cmd::run("ip", &["netns", "del", &name]).is_ok() || !dir.join(&name).exists() {
            sweep.deleted.push(name);
        }
    }
    Ok(sweep)
}

/// PIDs of the processes in namespace `name` (`ip netns pids`).
fn netns_pids(name: &str) -> Result<Vec<u32>> {
    match cmd::run("ip", &["netns", "pids", name]) {
        Ok(text) => Ok(text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()),
        // Deleted by a concurrent sweep: empty.
        Err(_) if !Path::new("/run/netns").join(name).exists() => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// SIGKILLs `pid` if its environment carries `owner`'s mark: `Ok(true)` if
/// killed, `Ok(false)` if it is not ours. The process is pinned with a pidfd
/// before its environment is read, so the signal can only reach the process
/// that was checked.
fn kill_if_owned(pid: u32, owner: Owner) -> std::io::Result<bool> {
    let Ok(raw_pid) = libc::pid_t::try_from(pid) else {
        return Ok(false);
    };
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new file
    // descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw_pid, 0) };
    let Ok(fd) = libc::c_int::try_from(fd) else {
        return Err(std::io::Error::last_os_error());
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by pidfd_open and is owned here only.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let environ = std::fs::read(format!("/proc/{pid}/environ"))?;
    if !environ_has_owner(&environ, owner) {
        return Ok(false);
    }
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: pidfd_send_signal(2) with a valid pidfd, a signal number, a
    // null siginfo (as kill(2) would send) and no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            raw,
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(true)
}

/// Packet counters of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkPackets {
    /// Packets received.
    pub rx: u64,
    /// Packets sent.
    pub tx: u64,
}

/// Parses the packet counters of `ip -s -j link show DEV` output.
pub fn parse_link_packets(text: &str) -> Result<LinkPackets> {
    let what = "ip -s -j link show";
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::parse(what, e.to_string()))?;
    let stats = v
        .as_array()
        .and_then(|a| a.first())
        .and_then(|l| l.get("stats64").or_else(|| l.get("stats")))
        .ok_or_else(|| Error::parse(what, format!("no statistics in {text}")))?;
    let count = |dir: &str| {
        stats
            .get(dir)
            .and_then(|d| d.get("packets"))
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| Error::parse(what, format!("no {dir} packets in {text}")))
    };
    Ok(LinkPackets {
        rx: count("rx")?,
        tx: count("tx")?,
    })
}

/// Finds `group`/`name` in `/proc/net/netstat` text (pairs of header and
/// value lines, `TcpExt: A B C` then `TcpExt: 1 2 3`).
pub fn parse_netstat(text: &str, group: &str, name: &str) -> Option<u64> {
    let prefix = format!("{group}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let pos = names.split_whitespace().position(|n| n == name);
        if let Some(pos) = pos {
            return values
                .split_whitespace()
                .nth(pos)
                .and_then(|v| v.parse().ok());
        }
    }
    None
}

/// A route read from a namespace's kernel table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// Destination (`default` becomes 0.0.0.0/0 or ::/0; hosts get /32, /128).
    pub dst: IpNet,
    /// Route type: `unicast`, `blackhole`, `unreachable`, ...
    pub kind: String,
    /// Gateway of a single-path route.
    pub gateway: Option<IpAddr>,
    /// Output device.
    pub dev: Option<String>,
    /// Routing protocol as printed by `ip` (`kernel`, `bird`, `boot`, `80`, ...).
    pub protocol: String,
    /// Metric, if any.
    pub metric: Option<u32>,
    /// Gateways of a multipath (ECMP) route.
    pub nexthops: Vec<IpAddr>,
    /// Flags such as `onlink`.
    pub flags: Vec<String>,
}

/// Parses `ip -j route` output.
pub fn parse_ip_route_json(text: &str, family: Family) -> Result<Vec<KernelRoute>> {
    let what = "ip -j route";
    let v: serde_json::Value = if text.trim().is_empty() {
        serde_json::Value::Array(Vec::new())
    } else {
        serde_json::from_str(text).map_err(|e| Error::parse(what, e.to_string()))?
    };
    let arr = v
        .as_array()
        .ok_or_else(|| Error::parse(what, "not a JSON array"))?;
    let mut out = Vec::with_capacity(arr.len());
    for r in arr {
        let dst_s = r
            .get("dst")
            .and_then(|d| d.as_str())
            .ok_or_else(|| Error::parse(what, format!("route without dst: {r}")))?;
        let gateway = r.get("gateway").and_then(|g| g.as_str());
        let dst = parse_dst(dst_s, family)
            .ok_or_else(|| Error::parse(what, format!("bad dst {dst_s:?}")))?;
        let nexthops = r
            .get("nexthops")
            .and_then(|n| n.as_array())
            .map(|n| {
                n.iter()
                    .filter_map(|h| h.get("gateway").and_then(|g| g.as_str()))
                    .filter_map(|g| g.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        out.push(KernelRoute {
            dst,
            kind: r
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("unicast")
                .to_string(),
            gateway: gateway.and_then(|g| g.parse().ok()),
            dev: r.get("dev").and_then(|d| d.as_str()).map(str::to_string),
            protocol: match r.get("protocol") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => "boot".to_string(),
            },
            metric: r.get("metric").and_then(as_u32),
            nexthops,
            flags: strings(r.get("flags")),
        });
    }
    Ok(out)
}

fn parse_dst(dst: &str, family: Family) -> Option<IpNet> {
    if dst == "default" {
        return Some(match family {
            Family::Ipv4 => IpNet::V4(Ipv4Net::default()),
            Family::Ipv6 => IpNet::V6(Ipv6Net::default()),
        });
    }
    if let Ok(n) = dst.parse::<IpNet>() {
        return Some(n);
    }
    dst.parse::<IpAddr>().ok().map(IpNet::from)
}

/// A shared L2 segment: a bridge in its own namespace, with IPv4 and IPv6
/// subnets from which attached namespaces get addresses.
#[derive(Debug)]
pub struct Segment {
    ns: Arc<Netns>,
    v4: Ipv4Net,
    v6: Ipv6Net,
    ports: AtomicU32,
}

/// What [`Segment::attach`] configured in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Interface name inside the namespace.
    pub ifname: String,
    /// IPv4 address (prefix length of the segment).
    pub v4: Ipv4Addr,
    /// IPv6 address (prefix length of the segment).
    pub v6: Ipv6Addr,
}

impl Segment {
    /// A segment with subnets 10.0.0.0/24 and fd00::/64 (inside our namespaces
    /// only, so they never clash with anything outside the test).
    pub fn new(test: &Test) -> Result<Segment> {
        let v4 = Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 24)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let v6 = Ipv6Net::new(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0), 64)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        Self::with_subnets(test, v4, v6)
    }

    /// A segment with the given subnets.
    pub fn with_subnets(test: &Test, v4: Ipv4Net, v6: Ipv6Net) -> Result<Segment> {
        let ns = Netns::new(test, &format!("br{}", next_id()))?;
        ns.ip(&["link", "add", "br0", "type", "bridge"])?;
        // No STP and no multicast snooping: ports forward at once and IPv6
        // neighbour discovery is never filtered.
        ns.ip(&[
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        ns.ip(&["link", "set", "br0", "up"])?;
        Ok(Segment {
            ns,
            v4,
            v6,
            ports: AtomicU32::new(0),
        })
    }

    /// The namespace holding the bridge.
    pub fn netns(&self) -> &Arc<Netns> {
        &self.ns
    }

    /// The IPv4 subnet.
    pub fn v4(&self) -> Ipv4Net {
        self.v4
    }

    /// The IPv6 subnet.
    pub fn v6(&self) -> Ipv6Net {
        self.v6
    }

    /// Address number `host` of the IPv4 subnet.
    pub fn v4_host(&self, host: u32) -> Result<Ipv4Addr> {
        let a = u32::from(self.v4.network())
            .checked_add(host)
            .map(Ipv4Addr::from)
            .filter(|a| self.v4.contains(a) && *a != self.v4.broadcast() && host != 0)
            .ok_or_else(|| Error::Invalid(format!("host {host} outside {}", self.v4)))?;
        Ok(a)
    }

    /// Address number `host` of the IPv6 subnet.
    pub fn v6_host(&self, host: u32) -> Result<Ipv6Addr> {
        let a = u128::from(self.v6.network())
            .checked_add(u128::from(host))
            .map(Ipv6Addr::from)
            .filter(|a| self.v6.contains(a) && host != 0)
            .ok_or_else(|| Error::Invalid(format!("host {host} outside {}", self.v6)))?;
        Ok(a)
    }

    /// Connects `ns` to the bridge with a veth pair (`ifname` inside `ns`) and
    /// gives it host number `host` in both subnets.
    pub fn attach(&self, ns: &Netns, ifname: &str, host: u32) -> Result<Attachment> {
        let v4 = self.v4_host(host)?;
        let v6 = self.v6_host(host)?;
        let port = format!("p{}", self.ports.fetch_add(1, Ordering::Relaxed));
        ns.ip(&[
            "link",
            "add",
            ifname,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            self.ns.name(),
        ])?;
        self.ns.ip(&["link", "set", &port, "master", "br0", "up"])?;
        ns.ip(&["link", "set", ifname, "up"])?;
        let v4net =
            Ipv4Net::new(v4, self.v4.prefix_len()).map_err(|e| Error::Invalid(e.to_string()))?;
        let v6net =
            Ipv6Net::new(v6, self.v6.prefix_len()).map_err(|e| Error::Invalid(e.to_string()))?;
        ns.add_address(ifname, IpNet::V4(v4net))?;
        ns.add_address(ifname, IpNet::V6(v6net))?;
        Ok(Attachment {
            ifname: ifname.to_string(),
            v4,
            v6,
        })
    }
}

/// A node: a namespace attached to one segment as `eth0`.
#[derive(Debug, Clone)]
pub struct Node {
    /// Label used in logs and resource names.
    pub name: String,
    /// The node's namespace.
    pub ns: Arc<Netns>,
    /// Interface on the segment (`eth0`).
    pub ifname: String,
    /// IPv4 address on the segment.
    pub v4: Ipv4Addr,
    /// IPv6 address on the segment.
    pub v6: Ipv6Addr,
}

impl Node {
    /// Creates a namespace for `name` and attaches it to `segment` as host `host`.
    pub fn new(test: &Test, segment: &Segment, name: &str, host: u32) -> Result<Node> {
        let ns = Netns::new(test, name)?;
        let att = segment.attach(&ns, "eth0", host)?;
        Ok(Node {
            name: name.to_string(),
            ns,
            ifname: att.ifname,
            v4: att.v4,
            v6: att.v6,
        })
    }

    /// The node's segment address of `family`.
    pub fn addr(&self, family: Family) -> IpAddr {
        match family {
            Family::Ipv4 => IpAddr::V4(self.v4),
            Family::Ipv6 => IpAddr::V6(self.v6),
        }
    }

    /// Adds IPv4 and IPv6 default routes through `router`'s addresses on
    /// `segment`, the segment this node is attached to.
    pub fn route_via(&self, router: &Router, segment: &Segment) -> Result<()> {
        let att = router.attachment_on(segment)?;
        let (v4, v6) = (att.v4.to_string(), att.v6.to_string());
        self.ns.ip(&[
            "-4",
            "route",
            "add",
            "default",
            "via",
            &v4,
            "dev",
            &self.ifname,
        ])?;
        self.ns.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            &v6,
            "dev",
            &self.ifname,
        ])?;
        Ok(())
    }
}

/// A router joining several segments: one namespace attached to each (as
/// `eth0`, `eth1`, ...) with forwarding on. It knows only the segments'
/// connected subnets, nothing else — in particular no pod addresses, so pod
/// traffic between nodes on different segments only gets through
/// encapsulated between node addresses (IPIP), never as plain pod packets.
#[derive(Debug)]
pub struct Router {
    /// The router's namespace.
    pub ns: Arc<Netns>,
    attachments: Vec<(Ipv4Net, Attachment)>,
}

impl Router {
    /// Creates router `name` with host number `host` on every segment.
    pub fn new(test: &Test, name: &str, segments: &[&Segment], host: u32) -> Result<Router> {
        let ns = Netns::new(test, name)?;
        let mut attachments = Vec::with_capacity(segments.len());
        for (i, seg) in segments.iter().enumerate() {
            let att = seg.attach(&ns, &format!("eth{i}"), host)?;
            attachments.push((seg.v4(), att));
        }
        Ok(Router { ns, attachments })
    }

    /// The router's attachment to `segment`.
    pub fn attachment_on(&self, segment: &Segment) -> Result<&Attachment> {
        self.attachments
            .iter()
            .find(|(net, _)| *net == segment.v4())
            .map(|(_, a)| a)
            .ok_or_else(|| Error::Invalid(format!("router not attached to {}", segment.v4())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_route_json() {
        let text = r#"[{"dst":"default","gateway":"10.0.0.254","dev":"eth0","flags":[]},
            {"dst":"10.0.0.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"10.0.0.1","flags":[]},
            {"type":"blackhole","dst":"10.65.0.0/26","protocol":"80","flags":[]},
            {"dst":"10.65.1.0/26","gateway":"10.0.0.2","dev":"tunl0","protocol":"bird","metric":32,"flags":["onlink"]},
            {"dst":"10.9.9.9","protocol":"bird","flags":[],"nexthops":[{"gateway":"10.0.0.2","dev":"eth0","weight":1,"flags":[]},{"gateway":"10.0.0.3","dev":"eth0","weight":1,"flags":[]}]}]"#;
        let r = parse_ip_route_json(text, Family::Ipv4).unwrap();
        assert_eq!(r.len(), 5);
        assert_eq!(r[0].dst, "0.0.0.0/0".parse::<IpNet>().unwrap());
        assert_eq!(r[0].protocol, "boot");
        assert_eq!(r[1].protocol, "kernel");
        assert_eq!(r[2].kind, "blackhole");
        assert_eq!(r[2].protocol, "80");
        assert_eq!(r[3].gateway, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(r[3].flags, vec!["onlink".to_string()]);
        assert_eq!(r[3].metric, Some(32));
        assert_eq!(r[4].dst, "10.9.9.9/32".parse::<IpNet>().unwrap());
        assert_eq!(r[4].nexthops.len(), 2);
    }

    #[test]
    fn parses_empty_and_rejects_garbage() {
        let v4 = Family::Ipv4;
        assert!(parse_ip_route_json("", v4).unwrap().is_empty());
        assert!(parse_ip_route_json("[]", v4).unwrap().is_empty());
        assert!(parse_ip_route_json("{", v4).is_err());
        assert!(parse_ip_route_json(r#"[{"dst":"nonsense"}]"#, v4).is_err());
        assert!(parse_ip_route_json(r#"[{"dev":"eth0"}]"#, v4).is_err());
    }

    #[test]
    fn parses_netstat_counters() {
        let text = "TcpExt: SyncookiesSent TCPMD5NotFound TCPMD5Failure\nTcpExt: 0 2 5\nIpExt: InNoRoutes\nIpExt: 7\n";
        assert_eq!(parse_netstat(text, "TcpExt", "TCPMD5Failure"), Some(5));
        assert_eq!(parse_netstat(text, "IpExt", "InNoRoutes"), Some(7));
        assert_eq!(parse_netstat(text, "TcpExt", "Nope"), None);
        assert_eq!(parse_netstat("TcpExt: A\n", "TcpExt", "A"), None);
    }

    #[test]
    fn namespace_names_carry_their_owner() {
        let owner = Owner {
            pid: 4242,
            start: Some(987_654),
        };
        let name = netns_name("calico-ipip-3", "n1pod0", owner);
        assert_eq!(name, "ix-calico-ipip-3-n1pod0.4242.987654");
        assert_eq!(owner_of_netns(&name), Some(owner));
        // The form before owners had start times: the PID alone.
        assert_eq!(
            owner_of_netns("ix-bgpd-mesh-0-n1-4242"),
            Some(Owner {
                pid: 4242,
                start: None
            })
        );
    }

    #[test]
    fn foreign_or_malformed_names_have_no_owner() {
        for name in [
            "cni-1234",
            "ix",
            "ix-",
            "ix-noowner",
            "ix-a-b.12",
            "ix-a-b.12.x",
            "ix-a-b.12.3.4",
            "ix-a-b..3",
            "ix-a-b.99999999999999999999.1",
            "other-ix-a-1.2.3",
        ] {
            assert_eq!(owner_of_netns(name), None, "{name}");
        }
    }

    #[test]
    fn stat_start_time_is_field_22_even_with_odd_command_names() {
        let fields: String = (3..=52).map(|i| format!(" {i}")).collect();
        let stat = format!("77 (we ird) name){fields}\n");
        assert_eq!(parse_stat_start_time(&stat), Some(22));
        assert_eq!(parse_stat_start_time("77 (short) S 1 2"), None);
        assert_eq!(parse_stat_start_time("no parenthesis"), None);
    }

    #[test]
    fn current_process_is_alive_and_a_recycled_pid_is_not() {
        let me = Owner::current();
        assert_eq!(me.pid, std::process::id());
        let start = me.start.expect("own start time readable");
        assert!(me.is_alive());
        let recycled = Owner {
            pid: me.pid,
            start: Some(start + 1),
        };
        assert!(
            !recycled.is_alive(),
            "same PID, other start time: dead owner"
        );
        // A reaped child's PID (with its start time) is dead.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let owner = Owner {
            pid: child.id(),
            start: process_start_time(child.id()),
        };
        assert!(owner.start.is_some() && owner.is_alive());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!owner.is_alive());
    }

    #[test]
    fn environ_owner_mark_must_match_exactly() {
        let owner = Owner {
            pid: 10,
            start: Some(20),
        };
        let env = b"PATH=/bin\0INTEROP_OWNER=10.20\0HOME=/root\0";
        assert!(environ_has_owner(env, owner));
        assert!(!environ_has_owner(b"INTEROP_OWNER=10.200\0", owner));
        assert!(!environ_has_owner(b"INTEROP_OWNER=110.20\0", owner));
        assert!(!environ_has_owner(b"X_INTEROP_OWNER=10.20", owner));
        assert!(!environ_has_owner(b"", owner));
        assert!(environ_has_owner(b"INTEROP_OWNER=10.20", owner));
    }

    #[test]
    fn parses_link_packet_counters() {
        let text = r#"[{"ifname":"tunl0","stats64":{"rx":{"bytes":10,"packets":3,"errors":0},"tx":{"bytes":20,"packets":7,"errors":0}}}]"#;
        assert_eq!(
            parse_link_packets(text).unwrap(),
            LinkPackets { rx: 3, tx: 7 }
        );
        assert!(parse_link_packets("[]").is_err());
        assert!(parse_link_packets(r#"[{"ifname":"x"}]"#).is_err());
        assert!(parse_link_packets(r#"[{"stats64":{"rx":{"packets":1}}}]"#).is_err());
        assert!(parse_link_packets("nonsense").is_err());
    }

    #[test]
    fn default_v6_route_is_recognised() {
        let text = r#"[{"dst":"default","gateway":"fd00::1","dev":"eth0","flags":[]}]"#;
        let r = parse_ip_route_json(text, Family::Ipv6).unwrap();
        assert_eq!(r[0].dst, "::/0".parse::<IpNet>().unwrap());
    }
}
