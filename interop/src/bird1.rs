//! BIRD 1.6 as calico-node runs it: the IPv4 daemon (`bird`) started on a confd-rendered
//! configuration (`bird.cfg` with its `bird_aggr.cfg` and `bird_ipam.cfg`), and what the
//! twin tests need to know of such a configuration: its BGP sessions, listener, static
//! routes and the prefixes its filters name.
//!
//! Debian 12 ships BIRD 1.6.8 as package `bird`, which conflicts with `bird2`; the test
//! setup unpacks it (`apt-get download bird && dpkg-deb -x`) under
//! `target/bird1/` (`scripts/test.sh --setup`), or `BIRD1_BIN` names the binary.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use crate::context::Test;
use crate::error::{Error, Result};
use crate::netns::Node;
use crate::process::Process;

/// Where BIRD 1.6's IPv4 daemon is: `BIRD1_BIN`, or `target/bird1/usr/sbin/bird` of the
/// workspace.
pub fn bird1_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BIRD1_BIN") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bird1/usr/sbin/bird")
}

/// One `protocol bgp` of a confd configuration, as the peer on the other side needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Session name (`Mesh_10_192_0_3`).
    pub name: String,
    /// Neighbour address.
    pub neighbor: IpAddr,
    /// Neighbour port.
    pub port: Option<u16>,
    /// Neighbour AS.
    pub neighbor_as: u32,
    /// Our AS on the session.
    pub local_as: u32,
    /// We never connect.
    pub passive: bool,
    /// GTSM with this many hops.
    pub ttl_security: Option<u8>,
    /// TCP-MD5 key.
    pub password: Option<String>,
}

/// What the twin tests read from a confd configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Golden {
    /// BGP sessions of the IPv4 daemon.
    pub protocols: Vec<Protocol>,
    /// `listen bgp port`.
    pub listen_port: Option<u16>,
    /// Static blackholes (`route P blackhole`): the node's blocks and service ranges.
    pub blackholes: Vec<Ipv4Net>,
    /// Every IPv4 prefix the three files name.
    pub prefixes: Vec<Ipv4Net>,
    /// Every standard community `(a, b)` the files name.
    pub communities: Vec<(u16, u16)>,
}

fn words(line: &str) -> Vec<&str> {
    line.split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .collect()
}

/// Reads the sessions and prefixes of `dir/bird.cfg` and its includes.
pub fn read_golden(dir: &Path) -> Result<Golden> {
    let read = |f: &str| {
        let p = dir.join(f);
        std::fs::read_to_string(&p).map_err(|e| Error::io("reading", &p, e))
    };
    let main = read("bird.cfg")?;
    let aggr = read("bird_aggr.cfg")?;
    let ipam = read("bird_ipam.cfg")?;
    let bad = |m: String| Error::parse("confd BIRD configuration", m);
    let mut g = Golden::default();
    let mut template_as = None;
    let mut current: Option<Protocol> = None;
    let mut in_template = false;
    for raw in main.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let w = words(line);
        match w.as_slice() {
            ["template", "bgp", ..] => in_template = true,
            ["protocol", "bgp", name, ..] => {
                current = Some(Protocol {
                    name: (*name).to_owned(),
                    neighbor: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    port: None,
                    neighbor_as: 0,
                    local_as: template_as.unwrap_or(0),
                    passive: false,
                    ttl_security: None,
                    password: None,
                });
            }
            ["local", "as", n] => {
                let n: u32 = n.parse().map_err(|_| bad(format!("local as {n}")))?;
                match current.as_mut() {
                    Some(p) => p.local_as = n,
                    None if in_template => template_as = Some(n),
                    None => {}
                }
            }
            ["neighbor", a, rest @ ..] => {
                let p = current
                    .as_mut()
                    .ok_or_else(|| bad("neighbor outside a protocol".into()))?;
                p.neighbor = a.parse().map_err(|_| bad(format!("neighbor {a}")))?;
                match rest {
                    ["port", port, "as", n] => {
                        p.port = Some(port.parse().map_err(|_| bad(format!("port {port}")))?);
                        p.neighbor_as = n.parse().map_err(|_| bad(format!("as {n}")))?;
                    }
                    ["as", n] => p.neighbor_as = n.parse().map_err(|_| bad(format!("as {n}")))?,
                    _ => return Err(bad(format!("neighbor line {line:?}"))),
                }
            }
            ["passive", "on"] => {
                if let Some(p) = current.as_mut() {
                    p.passive = true;
                }
            }
            ["ttl", "security", "on"] => {
                if let Some(p) = current.as_mut() {
                    p.ttl_security = Some(1);
                }
            }
            ["multihop", n] => {
                if let Some(p) = current.as_mut() {
                    if p.ttl_security.is_some() {
                        p.ttl_security = Some(n.parse().map_err(|_| bad(format!("multihop {n}")))?);
                    }
                }
            }
            ["password", pw] => {
                if let Some(p) = current.as_mut() {
                    p.password = Some(pw.trim_matches('"').to_owned());
                }
            }
            ["listen", "bgp", rest @ ..] => {
                if let Some(i) = rest.iter().position(|x| *x == "port") {
                    let p = rest.get(i + 1).ok_or_else(|| bad("listen port".into()))?;
                    g.listen_port = Some(p.parse().map_err(|_| bad(format!("port {p}")))?);
                }
            }
            ["}"] if current.is_some() && raw.starts_with('}') => {
                if let Some(p) = current.take() {
                    g.protocols.push(p);
                }
            }
            ["}"] if raw.starts_with('}') => in_template = false,
            _ => {}
        }
    }
    for line in aggr.lines() {
        if let ["route", p, "blackhole"] = words(line.trim()).as_slice() {
            g.blackholes
                .push(p.parse().map_err(|_| bad(format!("route {p}")))?);
        }
    }
    for text in [&main, &aggr, &ipam] {
        for token in text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '/')) {
            if let Ok(n) = token.parse::<Ipv4Net>() {
                if !g.prefixes.contains(&n) {
                    g.prefixes.push(n);
                }
            }
        }
        for part in text.split('(').skip(1) {
            let inner = part.split(')').next().unwrap_or("");
            let nums: Vec<&str> = inner.split(',').map(str::trim).collect();
            if let [a, b] = nums.as_slice() {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    if !g.communities.contains(&(a, b)) {
                        g.communities.push((a, b));
                    }
                }
            }
        }
    }
    Ok(g)
}

/// Starts BIRD 1.6 on the confd files of `golden_dir` in `node` (files copied, a wrapper
/// adding `log stderr all` includes them unchanged).
pub fn start(test: &Test, node: &Node, label: &str, golden_dir: &Path) -> Result<Process> {
    let dir = test.subdir(label)?;
    for f in ["bird.cfg", "bird_aggr.cfg", "bird_ipam.cfg"] {
        let from = golden_dir.join(f);
        std::fs::copy(&from, dir.join(f)).map_err(|e| Error::io("copying", &from, e))?;
    }
    let wrapper = test.write(
        &format!("{label}/bird-run.cfg"),
        "log stderr all;\ninclude \"bird.cfg\";\n",
    )?;
    test.register_log(&format!("{label} config"), &dir.join("bird.cfg"));
    let socket = dir.join("bird.ctl");
    let pid = dir.join("bird.pid");
    let (c, s, p) = (
        wrapper.to_string_lossy().into_owned(),
        socket.to_string_lossy().into_owned(),
        pid.to_string_lossy().into_owned(),
    );
    Process::spawn(
        test,
        &node.ns,
        label,
        &bird1_binary(),
        &["-c", &c, "-s", &s, "-P", &p, "-f"],
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_confd_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/calico-confd/compiled_templates/explicit_peering/local-as");
        let g = read_golden(&dir).unwrap();
        assert_eq!(g.protocols.len(), 2);
        let p = &g.protocols[1];
        assert_eq!(p.name, "Node_10_192_0_4");
        assert_eq!(p.local_as, 65001);
        assert_eq!(p.neighbor_as, 64566);
        assert_eq!(g.protocols[0].local_as, 64512, "the template's");
        assert!(g
            .blackholes
            .contains(&"192.168.221.192/26".parse().unwrap()));
        assert!(g.prefixes.len() > 5);
    }
}
