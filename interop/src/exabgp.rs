//! ExaBGP launcher. ExaBGP runs as root (`exabgp.daemon.user=root`, no
//! privilege drop) with its CLI pipes disabled; instead two API processes of
//! our own are configured:
//! - `ix-announce` relays lines written to a FIFO in the test directory to
//!   ExaBGP's command input ([`ExaBgp::command`]: `announce route ...`,
//!   including `attribute [0xTT 0xFLAGS 0xHEX]` for arbitrary attributes);
//! - `ix-receive` appends ExaBGP's JSON messages (state changes and parsed
//!   received UPDATEs) to a file, from which [`Speaker::peers`] and
//!   [`Speaker::routes`] rebuild the sessions and the Adj-RIB-In.
//!
//! ExaBGP only connects out here (it does not listen: `exabgp.tcp.bind` is
//! empty), so its peers must accept connections. It cannot send framing
//! errors; use a raw TCP sender for those (REFERENCE.md section 2).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_json::Value;

use crate::cmd::require_binary;
use crate::context::Test;
use crate::error::{Error, Result};
use crate::model::{
    AddPath, Announce, Family, Origin, PeerStatus, RouteView, Speaker, SpeakerConfig,
};
use crate::netns::Node;
use crate::process::Process;
use crate::wait::{wait_until, TIMEOUT};

/// An ExaBGP instance.
#[derive(Debug)]
pub struct ExaBgp {
    label: String,
    fifo: PathBuf,
    received: PathBuf,
    /// This instance's directory (configuration, scripts, FIFO).
    dir: PathBuf,
    process: Process,
}

/// PIDs of processes whose command line mentions `dir` (the helper scripts
/// and the `cat` they run: paths under a per-test directory, so nothing else
/// can match).
fn helper_pids(dir: &Path) -> Vec<libc::pid_t> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| *pid > 1)
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(&needle)
        })
        .collect()
}

/// SIGKILLs the helpers of `dir`, rescanning until none is left (a helper
/// loop may start a new `cat` between two kills); gives up after 50 rounds.
fn stop_helpers(dir: &Path) {
    for _ in 0..50 {
        let pids = helper_pids(dir);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: kill(2) on a process running one of this test's helpers.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Drop for ExaBgp {
    fn drop(&mut self) {
        if let Err(e) = self.process.stop() {
            eprintln!("interop: stopping {}: {e}", self.label);
        }
        stop_helpers(&self.dir);
    }
}

// ExaBGP starts API processes in process groups of their own, so stopping
// ExaBGP's group does not reach them; the harness stops them on drop (see
// `stop_helpers`).
const ANNOUNCE_SCRIPT: &str = "#!/bin/sh
# Relays commands written to the FIFO \"$1\" to ExaBGP (our stdout) while
# ExaBGP (our parent) lives.
while kill -0 \"$PPID\" 2>/dev/null; do cat \"$1\" || exit 0; done
";

const RECEIVE_SCRIPT: &str = "#!/bin/sh
# Appends ExaBGP's JSON messages (our stdin) to \"$1\", one per line.
while IFS= read -r line; do printf '%s\\n' \"$line\" >> \"$1\"; done
";

/// The ExaBGP `route` statement (static section or API command) for `a`.
pub fn route_statement(a: &Announce) -> String {
    route_statement_via(a, None)
}

/// Like [`route_statement`] with an explicit next hop instead of `self`
/// (an IPv4 route with an IPv6 next hop over an extended next hop session,
/// RFC 8950).
pub fn route_statement_via(a: &Announce, next_hop: Option<IpAddr>) -> String {
    let nh = next_hop.map_or_else(|| "self".to_string(), |ip| ip.to_string());
    let mut s = format!("route {} next-hop {nh} origin igp", a.prefix);
    if let Some(m) = a.med {
        let _ = write!(s, " med {m}");
    }
    if let Some(lp) = a.local_pref {
        let _ = write!(s, " local-preference {lp}");
    }
    if !a.communities.is_empty() {
        let c: Vec<String> = a
            .communities
            .iter()
            .map(|x| crate::model::community(*x))
            .collect();
        let _ = write!(s, " community [ {} ]", c.join(" "));
    }
    if !a.large_communities.is_empty() {
        let c: Vec<String> = a
            .large_communities
            .iter()
            .map(|x| crate::model::large_community(*x))
            .collect();
        let _ = write!(s, " large-community [ {} ]", c.join(" "));
    }
    s
}

/// Renders an ExaBGP 4.2 configuration for `cfg`, with the API helper
/// scripts at `announce` (reading `fifo`) and `receive` (writing `received`).
pub fn config(
    cfg: &SpeakerConfig,
    announce: &Path,
    fifo: &Path,
    receive: &Path,
    received: &Path,
) -> String {
    config_with_static(cfg, announce, fifo, receive, received, &[])
}

/// The family of a `route PREFIX ...` statement.
fn statement_family(line: &str) -> Option<Family> {
    let mut words = line.split_whitespace();
    if words.next() != Some("route") {
        return None;
    }
    words
        .next()
        .and_then(|p| p.parse::<IpNet>().ok())
        .map(|p| Family::of_net(&p))
}

/// Like [`config`], with extra hand-written static `route ...` statements
/// (without the trailing `;`), each given to the sessions of its family.
pub fn config_with_static(
    cfg: &SpeakerConfig,
    announce: &Path,
    fifo: &Path,
    receive: &Path,
    received: &Path,
    extra: &[String],
) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "# Generated by the interop harness.");
    let _ = writeln!(
        c,
        "process ix-announce {{\n  run {} {};\n  encoder text;\n}}",
        announce.display(),
        fifo.display()
    );
    let _ = writeln!(
        c,
        "process ix-receive {{\n  run {} {};\n  encoder json;\n}}",
        receive.display(),
        received.display()
    );
    for n in &cfg.neighbors {
        let fam = match n.family() {
            Family::Ipv4 => "ipv4 unicast",
            Family::Ipv6 => "ipv6 unicast",
        };
        let _ = writeln!(c, "neighbor {} {{", n.address);
        let _ = writeln!(c, "  router-id {};", cfg.router_id);
        let _ = writeln!(c, "  local-address {};", n.local_address);
        let _ = writeln!(c, "  local-as {};", cfg.asn);
        let _ = writeln!(c, "  peer-as {};", n.remote_as);
        if let Some(p) = &n.password {
            let _ = writeln!(c, "  md5-password '{}';", p.replace(['\'', '\\'], ""));
        }
        // Extended next hop (RFC 8950): an IPv6 session also carries IPv4
        // unicast with IPv6 next hops (`capability { nexthop true; }` plus
        // the `nexthop` section naming the family pair).
        let enhe = n.family() == Family::Ipv6 && n.carries(Family::Ipv4);
        if enhe {
            let _ = writeln!(c, "  family {{ ipv4 unicast; ipv6 unicast; }}");
            let _ = writeln!(c, "  nexthop {{ ipv4 unicast ipv6; }}");
        } else {
            let _ = writeln!(c, "  family {{ {fam}; }}");
        }
        let add_path = match n.add_path {
            AddPath::Off => None,
            AddPath::Receive => Some("receive"),
            AddPath::Send => Some("send"),
            AddPath::Both => Some("send/receive"),
        };
        // Route refresh (RFC 2918) announced so `announce route-refresh`
        // can ask the peer for its routes.
        let mut caps = String::from("route-refresh;");
        if enhe {
            caps.push_str(" nexthop true;");
        }
        if let Some(mode) = add_path {
            let _ = write!(caps, " add-path {mode};");
        }
        let _ = writeln!(c, "  capability {{ {caps} }}");
        let _ = writeln!(c, "  api {{ processes [ ix-announce ]; }}");
        let _ = writeln!(
            c,
            "  api {{ processes [ ix-receive ]; neighbor-changes; receive {{ parsed; update; }} }}"
        );
        let routes: Vec<&Announce> = cfg
            .announce
            .iter()
            .filter(|a| n.carries(Family::of_net(&a.prefix)))
            .collect();
        let extra: Vec<&String> = extra
            .iter()
            .filter(|l| statement_family(l).is_some_and(|f| n.carries(f)))
            .collect();
        if !routes.is_empty() || !extra.is_empty() {
            let _ = writeln!(c, "  static {{");
            for a in routes {
                // `self` is the session's own (IPv6) address only for routes
                // of the session's family: name it for the others.
                let nh = (Family::of_net(&a.prefix) != n.family()).then_some(n.local_address);
                let _ = writeln!(c, "    {};", route_statement_via(a, nh));
            }
            for l in extra {
                let _ = writeln!(c, "    {l};");
            }
            let _ = writeln!(c, "  }}");
        }
        let _ = writeln!(c, "}}");
    }
    c
}

fn mkfifo(path: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| Error::Invalid(e.to_string()))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::io("mkfifo", path, std::io::Error::last_os_error()))
    }
}

fn write_script(test: &Test, relative: &str, text: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let p = test.write(relative, text)?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io("chmod", &p, e))?;
    Ok(p)
}

impl ExaBgp {
    /// Writes the configuration and helper scripts and starts ExaBGP in `node`.
    pub fn start(test: &Test, node: &Node, label: &str, cfg: &SpeakerConfig) -> Result<ExaBgp> {
        Self::start_with_static(test, node, label, cfg, &[])
    }

    /// Like [`ExaBgp::start`] with extra static `route ...` statements (e.g. a
    /// whole table; see [`config_with_static`]).
    pub fn start_with_static(
        test: &Test,
        node: &Node,
        label: &str,
        cfg: &SpeakerConfig,
        extra: &[String],
    ) -> Result<ExaBgp> {
        let exabgp = require_binary("exabgp")?;
        let dir = test.subdir(label)?;
        let fifo = dir.join("commands.fifo");
        mkfifo(&fifo)?;
        let received = dir.join("received.jsonl");
        std::fs::write(&received, "").map_err(|e| Error::io("creating", &received, e))?;
        let announce = write_script(test, &format!("{label}/announce.sh"), ANNOUNCE_SCRIPT)?;
        let receive = write_script(test, &format!("{label}/receive.sh"), RECEIVE_SCRIPT)?;
        let text = config_with_static(cfg, &announce, &fifo, &receive, &received, extra);
        let conf = test.write(&format!("{label}/exabgp.conf"), &text)?;
        test.register_log(&format!("{label} config"), &conf);
        test.register_log(&format!("{label} received"), &received);
        let c = conf.to_string_lossy().into_owned();
        let process = Process::spawn(
            test,
            &node.ns,
            label,
            &exabgp,
            &[&c],
            &[
                ("exabgp_daemon_user", "root"),
                ("exabgp_daemon_drop", "false"),
                ("exabgp_daemon_daemonize", "false"),
                ("exabgp_api_cli", "false"),
                ("exabgp_tcp_bind", ""),
                ("exabgp_log_destination", "stdout"),
            ],
        )?;
        Ok(ExaBgp {
            label: label.to_string(),
            fifo,
            received,
            dir,
            process,
        })
    }

    /// Sends one API command line (e.g. `announce route 192.0.2.0/24
    /// next-hop self attribute [0xf0 0xc0 0x0102]`). Retries until the relay
    /// script has the FIFO open for reading.
    pub fn command(&self, line: &str) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut text = line.trim_end().to_string();
        text.push('\n');
        wait_until(
            &format!("{} to accept command", self.label),
            TIMEOUT,
            || {
                self.process.check_running()?;
                // Non-blocking open fails (ENXIO) while no reader has the FIFO open.
                match std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&self.fifo)
                {
                    Ok(mut f) => {
                        f.write_all(text.as_bytes())
                            .map_err(|e| Error::io("writing", &self.fifo, e))?;
                        Ok(Some(()))
                    }
                    Err(e) => Err(Error::io("opening", &self.fifo, e)),
                }
            },
        )
    }

    /// Announces `a` through the API.
    pub fn announce(&self, a: &Announce) -> Result<()> {
        self.command(&format!("announce {}", route_statement(a)))
    }

    /// Withdraws `prefix` through the API.
    pub fn withdraw(&self, prefix: IpNet) -> Result<()> {
        self.command(&format!("withdraw route {prefix} next-hop self"))
    }

    /// Asks the peers for their IPv4 unicast routes again (ROUTE-REFRESH,
    /// RFC 2918) through the API.
    pub fn request_refresh(&self) -> Result<()> {
        self.command("announce route-refresh ipv4 unicast")
    }

    /// How many received UPDATEs announced `prefix` so far.
    pub fn announcements_of(&self, prefix: IpNet) -> Result<usize> {
        Ok(self
            .messages()?
            .iter()
            .filter(|m| m.get("type").and_then(Value::as_str) == Some("update"))
            .filter_map(|m| m.pointer("/neighbor/message/update"))
            .map(|u| announced(u).iter().filter(|(_, p)| *p == prefix).count())
            .sum())
    }

    /// The raw JSON messages received so far.
    pub fn messages(&self) -> Result<Vec<Value>> {
        let text = std::fs::read_to_string(&self.received)
            .map_err(|e| Error::io("reading", &self.received, e))?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// The daemon process.
    pub fn process(&self) -> &Process {
        &self.process
    }
}

impl Speaker for ExaBgp {
    fn label(&self) -> &str {
        &self.label
    }

    fn peers(&self) -> Result<Vec<PeerStatus>> {
        Ok(peers_from_messages(&self.messages()?))
    }

    fn routes(&self, family: Family) -> Result<Vec<RouteView>> {
        Ok(rib_from_messages(&self.messages()?)
            .into_iter()
            .filter(|r| Family::of_net(&r.prefix) == family)
            .collect())
    }

    fn check_running(&self) -> Result<()> {
        self.process.check_running()
    }

    fn process_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

fn peer_of(m: &Value) -> Option<IpAddr> {
    m.pointer("/neighbor/address/peer")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

/// Session states from ExaBGP `state` messages (the last one per peer wins).
pub fn peers_from_messages(msgs: &[Value]) -> Vec<PeerStatus> {
    let mut states: BTreeMap<IpAddr, String> = BTreeMap::new();
    for m in msgs {
        if m.get("type").and_then(Value::as_str) != Some("state") {
            continue;
        }
        let (Some(peer), Some(state)) = (
            peer_of(m),
            m.pointer("/neighbor/state").and_then(Value::as_str),
        ) else {
            continue;
        };
        states.insert(peer, state.to_string());
    }
    states
        .into_iter()
        .map(|(address, state)| PeerStatus {
            address,
            established: state == "up",
            state,
        })
        .collect()
}

/// Rebuilds the Adj-RIB-In (per peer and prefix) from ExaBGP `update`
/// messages; a session going down clears that peer's routes.
pub fn rib_from_messages(msgs: &[Value]) -> Vec<RouteView> {
    let mut rib: BTreeMap<(IpAddr, IpNet), RouteView> = BTreeMap::new();
    for m in msgs {
        let Some(peer) = peer_of(m) else { continue };
        match m.get("type").and_then(Value::as_str) {
            Some("state")
                if m.pointer("/neighbor/state").and_then(Value::as_str) == Some("down") =>
            {
                rib.retain(|(p, _), _| *p != peer);
            }
            Some("update") => {
                let Some(update) = m.pointer("/neighbor/message/update") else {
                    continue;
                };
                for prefix in withdrawn(update) {
                    rib.remove(&(peer, prefix));
                }
                let attrs = update.get("attribute");
                for (next_hop, prefix) in announced(update) {
                    let mut r = RouteView::new(prefix);
                    r.learned = true;
                    r.best = true;
                    r.next_hop = next_hop;
                    if let Some(a) = attrs {
                        apply_attributes(&mut r, a);
                    }
                    rib.insert((peer, prefix), r.normalise());
                }
            }
            _ => {}
        }
    }
    rib.into_values().collect()
}

fn nlri_prefixes(v: &Value) -> Vec<IpNet> {
    let parse = |s: &str| s.parse::<IpNet>().ok();
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => parse(s),
                Value::Object(o) => o.get("nlri").and_then(Value::as_str).and_then(parse),
                _ => None,
            })
            .collect(),
        Value::Object(o) => o.keys().filter_map(|k| parse(k)).collect(),
        _ => Vec::new(),
    }
}

fn withdrawn(update: &Value) -> Vec<IpNet> {
    update
        .get("withdraw")
        .and_then(Value::as_object)
        .map(|fams| fams.values().flat_map(nlri_prefixes).collect())
        .unwrap_or_default()
}

fn announced(update: &Value) -> Vec<(Option<IpAddr>, IpNet)> {
    let mut out = Vec::new();
    let Some(fams) = update.get("announce").and_then(Value::as_object) else {
        return out;
    };
    for by_nh in fams.values() {
        let Some(by_nh) = by_nh.as_object() else {
            continue;
        };
        for (nh, nlris) in by_nh {
            for p in nlri_prefixes(nlris) {
                out.push((nh.parse().ok(), p));
            }
        }
    }
    out
}

fn apply_attributes(r: &mut RouteView, a: &Value) {
    let num = |k: &str| {
        a.get(k)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    r.origin = match a.get("origin").and_then(Value::as_str) {
        Some("igp") => Some(Origin::Igp),
        Some("egp") => Some(Origin::Egp),
        Some("incomplete") => Some(Origin::Incomplete),
        _ => None,
    };
    r.med = num("med");
    r.local_pref = num("local-preference");
    fn flatten(v: &Value, out: &mut Vec<u32>) {
        match v {
            Value::Number(n) => {
                if let Some(n) = n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                    out.push(n);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
            Value::Object(o) => o.values().for_each(|x| flatten(x, out)),
            _ => {}
        }
    }
    if let Some(p) = a.get("as-path") {
        flatten(p, &mut r.as_path);
    }
    let tuples = |k: &str| -> Vec<String> {
        a.get(k)
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_array)
                    .map(|t| {
                        t.iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join(":")
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    r.originator_id = a
        .get("originator-id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok());
    r.cluster_list = a
        .get("cluster-list")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|x| x.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    r.communities = tuples("community");
    r.large_communities = tuples("large-community");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(text: &str) -> Vec<Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn rebuilds_sessions_and_rib() {
        let m = msgs(concat!(
            r#"{"type":"state","neighbor":{"address":{"local":"10.0.0.1","peer":"10.0.0.2"},"state":"up"}}"#,
            "\n",
            r#"{"type":"update","neighbor":{"address":{"local":"10.0.0.1","peer":"10.0.0.2"},"message":{"update":{"attribute":{"origin":"igp","as-path":[65002,65003],"med":10,"community":[[65002,200]],"large-community":[[65002,1,2]]},"announce":{"ipv4 unicast":{"10.0.0.2":[{"nlri":"203.0.113.0/24"},{"nlri":"203.0.113.128/25"}]}}}}}}"#,
            "\n",
            r#"{"type":"update","neighbor":{"address":{"local":"10.0.0.1","peer":"10.0.0.2"},"message":{"update":{"withdraw":{"ipv4 unicast":[{"nlri":"203.0.113.128/25"}]}}}}}"#
        ));
        let p = peers_from_messages(&m);
        assert_eq!(p.len(), 1);
        assert!(p[0].established);
        let r = rib_from_messages(&m);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].prefix, "203.0.113.0/24".parse::<IpNet>().unwrap());
        assert_eq!(r[0].as_path, vec![65002, 65003]);
        assert_eq!(r[0].med, Some(10));
        assert_eq!(r[0].origin, Some(Origin::Igp));
        assert_eq!(r[0].next_hop, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(r[0].communities, vec!["65002:200"]);
        assert_eq!(r[0].large_communities, vec!["65002:1:2"]);
    }

    #[test]
    fn session_down_clears_routes() {
        let m = msgs(concat!(
            r#"{"type":"update","neighbor":{"address":{"peer":"10.0.0.2"},"message":{"update":{"announce":{"ipv4 unicast":{"10.0.0.2":["203.0.113.0/24"]}}}}}}"#,
            "\n",
            r#"{"type":"state","neighbor":{"address":{"peer":"10.0.0.2"},"state":"down"}}"#
        ));
        assert!(rib_from_messages(&m).is_empty());
        assert!(!peers_from_messages(&m)[0].established);
    }

    #[test]
    fn extended_next_hop_session_carries_ipv4_with_the_ipv6_next_hop() {
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut cfg = SpeakerConfig::new("10.0.0.2".parse().unwrap(), 65020);
        let mut n = crate::model::Neighbor::new(v6("fd00::1"), v6("fd00::2"), 65010);
        n.extended_next_hop = true;
        cfg.neighbors.push(n);
        cfg.announce = vec![
            Announce::new("203.0.113.0/24".parse().unwrap()),
            Announce::new("2001:db8:b::/48".parse().unwrap()),
        ];
        let p = Path::new("/x");
        let c = config(&cfg, p, p, p, p);
        assert!(
            c.contains("  family { ipv4 unicast; ipv6 unicast; }"),
            "{c}"
        );
        assert!(c.contains("  nexthop { ipv4 unicast ipv6; }"), "{c}");
        assert!(
            c.contains("capability { route-refresh; nexthop true; }"),
            "{c}"
        );
        assert!(
            c.contains("    route 203.0.113.0/24 next-hop fd00::2 origin igp;"),
            "{c}"
        );
        assert!(
            c.contains("    route 2001:db8:b::/48 next-hop self origin igp;"),
            "{c}"
        );
        // Without the capability an IPv6 session carries IPv6 only.
        cfg.neighbors[0].extended_next_hop = false;
        let plain = config(&cfg, p, p, p, p);
        assert!(plain.contains("  family { ipv6 unicast; }"), "{plain}");
        assert!(
            !plain.contains("nexthop") && !plain.contains("203.0.113.0"),
            "{plain}"
        );
    }

    #[test]
    fn route_statement_has_attributes() {
        let mut a = Announce::new("192.0.2.0/24".parse().unwrap());
        a.med = Some(5);
        a.communities.push((65001, 7));
        a.large_communities.push((65001, 1, 2));
        assert_eq!(
            route_statement(&a),
            "route 192.0.2.0/24 next-hop self origin igp med 5 community [ 65001:7 ] large-community [ 65001:1:2 ]"
        );
    }
}
