//! Network namespaces, a bridged L2 segment between them, kernel route
//! inspection and ping.
//!
//! Every namespace is created by the harness with a name unique to the test
//! and process (`ix-<test tag>-<role>-<pid>`) and deleted when its last
//! [`Arc<Netns>`] is dropped. Processes started in a namespace hold an `Arc`, so
//! a namespace always outlives the daemons inside it. The bridge of a
//! [`Segment`] lives in a namespace of its own, never in the root namespace;
//! veth pairs are created directly between the node and bridge namespaces, so
//! nothing — not even transiently — appears in the root namespace. Addresses
//! are only ever configured inside these namespaces.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::cmd;
use crate::context::{next_id, sanitize, Test};
use crate::error::{Error, Result};
use crate::model::Family;

/// A network namespace owned by the harness; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `ix-<test tag>-<role>-<pid>` with loopback up and IPv6
    /// duplicate address detection off (addresses are usable at once).
    pub fn new(test: &Test, role: &str) -> Result<Arc<Netns>> {
        let name = format!(
            "ix-{}-{}-{}",
            test.tag(),
            sanitize(role, 12),
            std::process::id()
        );
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
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = cmd::run("ip", &["netns", "del", &self.name]) {
            eprintln!("interop: could not delete namespace {}: {e}", self.name);
        }
    }
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
            metric: r
                .get("metric")
                .and_then(|m| m.as_u64())
                .and_then(|m| u32::try_from(m).ok()),
            nexthops,
            flags: r
                .get("flags")
                .and_then(|f| f.as_array())
                .map(|f| {
                    f.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
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
    fn default_v6_route_is_recognised() {
        let text = r#"[{"dst":"default","gateway":"fd00::1","dev":"eth0","flags":[]}]"#;
        let r = parse_ip_route_json(text, Family::Ipv6).unwrap();
        assert_eq!(r[0].dst, "::/0".parse::<IpNet>().unwrap());
    }
}
