//! FRR adapter: FRR's `bgpd` alone, as root (`-S`), without zebra (`-Z`),
//! with its own `--vty_socket` directory, inspected with
//! `vtysh --vty_socket DIR -c ...` (JSON output).
//!
//! Pure BGP tests need no zebra: without it FRR treats next hops as
//! reachable and installs nothing in the kernel. [`config`] renders the
//! configuration (and the pitfalls it avoids), the parsers of vtysh's JSON
//! are in `parse`; this file starts the daemon and answers the [`Speaker`]
//! questions with them.

mod config;
mod parse;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cmd::{self, require_binary};
use crate::context::Test;
use crate::error::{Error, Result};
use crate::model::{AddPathSeen, Family, PeerStatus, RouteView, SpeakerConfig};
use crate::netns::Node;
use crate::process::Process;
use crate::speaker::Speaker;

pub use config::config;
pub use parse::{
    parse_add_path, parse_prefix_detail, parse_refreshes_received, parse_summary, table_prefixes,
};

/// An FRR bgpd instance.
#[derive(Debug)]
pub struct Frr {
    label: String,
    vty_dir: PathBuf,
    process: Process,
}

impl Frr {
    /// Writes the configuration and starts FRR's bgpd in `node`.
    pub fn start(test: &Test, node: &Node, label: &str, cfg: &SpeakerConfig) -> Result<Frr> {
        Self::start_with_config(test, node, label, &config(label, cfg))
    }

    /// Starts FRR's bgpd with a hand-written configuration.
    pub fn start_with_config(test: &Test, node: &Node, label: &str, text: &str) -> Result<Frr> {
        let bgpd = require_binary("/usr/lib/frr/bgpd")?;
        require_binary("vtysh")?;
        let vty_dir = test.subdir(label)?;
        let conf = test.write_config(label, "bgpd.conf", text)?;
        let pid = vty_dir.join("bgpd.pid");
        let (c, p, v) = (
            conf.to_string_lossy().into_owned(),
            pid.to_string_lossy().into_owned(),
            vty_dir.to_string_lossy().into_owned(),
        );
        let process = Process::spawn(
            test,
            &node.ns,
            label,
            &bgpd,
            &[
                "-S",
                "-Z",
                "-f",
                &c,
                "-i",
                &p,
                "--vty_socket",
                &v,
                "-P",
                "0",
            ],
            &[],
        )?;
        Ok(Frr {
            label: label.to_string(),
            vty_dir,
            process,
        })
    }

    /// Runs `vtysh --vty_socket DIR -c command`.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        vtysh(&self.vty_dir, command)
    }

    /// Runs a vtysh command and parses its JSON answer.
    pub fn vtysh_json(&self, command: &str) -> Result<Value> {
        vtysh_json(&self.vty_dir, command)
    }
}

impl Speaker for Frr {
    fn label(&self) -> &str {
        &self.label
    }

    fn peers(&self) -> Result<Vec<PeerStatus>> {
        parse_summary(&self.vtysh_json("show bgp summary json")?)
    }

    fn routes(&self, family: Family) -> Result<Vec<RouteView>> {
        let af = family.name();
        let table = self.vtysh_json(&format!("show bgp {af} unicast json"))?;
        let prefixes = table_prefixes(&table)?;
        let mut out = Vec::new();
        for p in prefixes {
            let detail = self.vtysh_json(&format!("show bgp {af} unicast {p} json"))?;
            out.extend(parse_prefix_detail(p, &detail)?);
        }
        Ok(out)
    }

    fn process(&self) -> &Process {
        &self.process
    }

    fn add_path(&self, neighbor: IpAddr) -> Result<Option<(AddPathSeen, String)>> {
        let v = self.vtysh_json(&format!("show bgp neighbors {neighbor} json"))?;
        Ok(Some((parse_add_path(&v, neighbor), v.to_string())))
    }

    /// `clear bgp ipv4 unicast ADDR soft in`.
    fn request_refresh(&self, neighbor: IpAddr) -> Result<Option<String>> {
        self.vtysh(&format!("clear bgp ipv4 unicast {neighbor} soft in"))
            .map(Some)
    }

    /// `messageStats.routeRefreshRecv` of `show bgp neighbors ADDR json`.
    fn refreshes_received(&self, neighbor: IpAddr) -> Result<Option<u64>> {
        let cmd = format!("show bgp neighbors {neighbor} json");
        let v = self.vtysh_json(&cmd)?;
        parse_refreshes_received(&v, neighbor)
            .map(Some)
            .ok_or_else(|| Error::parse(cmd, v.to_string()))
    }

    fn process_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// Runs `vtysh --vty_socket VTY_DIR -c command` (any FRR daemon with that vty dir).
pub fn vtysh(vty_dir: &Path, command: &str) -> Result<String> {
    let v = vty_dir.to_string_lossy().into_owned();
    cmd::run("vtysh", &["--vty_socket", &v, "-c", command])
}

/// Runs a vtysh command and parses its JSON answer.
pub fn vtysh_json(vty_dir: &Path, command: &str) -> Result<Value> {
    let text = vtysh(vty_dir, command)?;
    serde_json::from_str(&text).map_err(|e| Error::parse(command, format!("{e}: {text}")))
}
