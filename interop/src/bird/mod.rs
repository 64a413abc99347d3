//! BIRD 2 adapter: `bird -c CONF -s SOCK -P PID -f` in a namespace, inspected
//! with `birdc -s SOCK` (the control socket is a file, so `birdc` needs no
//! namespace).
//!
//! [`config`] renders the configuration (and the pitfalls it avoids), the
//! parsers of `birdc`'s answers are in `parse`; this file starts the daemon
//! and answers the [`Speaker`] questions with them.

mod config;
mod parse;

use std::net::IpAddr;
use std::path::PathBuf;

use crate::cmd::{self, require_binary};
use crate::context::Test;
use crate::error::{Error, Result};
use crate::model::{AddPathSeen, Family, PeerStatus, RouteView, SpeakerConfig};
use crate::netns::Node;
use crate::process::Process;
use crate::speaker::Speaker;

pub use config::config;
pub use parse::{parse_add_path, parse_count, parse_protocols, parse_routes};

/// A BIRD 2 instance.
#[derive(Debug)]
pub struct Bird {
    label: String,
    socket: PathBuf,
    config: PathBuf,
    protocols: Vec<(String, IpAddr)>,
    process: Process,
}

/// The BIRD protocol name used for a neighbor (`p_10_0_0_2`, `p_fd00__2`).
pub fn protocol_name(addr: IpAddr) -> String {
    format!("p_{}", addr.to_string().replace(['.', ':'], "_"))
}

impl Bird {
    /// Writes the configuration for `cfg` and starts BIRD in `node`.
    pub fn start(test: &Test, node: &Node, label: &str, cfg: &SpeakerConfig) -> Result<Bird> {
        let text = config(cfg);
        let protocols = cfg
            .neighbors
            .iter()
            .map(|n| (protocol_name(n.address), n.address))
            .collect();
        Self::start_with_config(test, node, label, &text, protocols)
    }

    /// Starts BIRD with a hand-written configuration; `protocols` maps BGP
    /// protocol names to neighbor addresses for [`Speaker::peers`].
    pub fn start_with_config(
        test: &Test,
        node: &Node,
        label: &str,
        text: &str,
        protocols: Vec<(String, IpAddr)>,
    ) -> Result<Bird> {
        let bird = require_binary("bird")?;
        require_binary("birdc")?;
        let dir = test.subdir(label)?;
        let config = test.write_config(label, "bird.conf", text)?;
        let socket = dir.join("bird.ctl");
        let pid = dir.join("bird.pid");
        let (c, s, p) = (
            config.to_string_lossy().into_owned(),
            socket.to_string_lossy().into_owned(),
            pid.to_string_lossy().into_owned(),
        );
        let process = Process::spawn(
            test,
            &node.ns,
            label,
            &bird,
            &["-c", &c, "-s", &s, "-P", &p, "-f"],
            &[],
        )?;
        Ok(Bird {
            label: label.to_string(),
            socket,
            config,
            protocols,
            process,
        })
    }

    /// Runs `birdc -s SOCK words...` and returns its output.
    pub fn birdc(&self, command: &str) -> Result<String> {
        let s = self.socket.to_string_lossy().into_owned();
        let mut args = vec!["-s", s.as_str()];
        args.extend(command.split_whitespace());
        cmd::run("birdc", &args)
    }

    /// Number of routes in BIRD's tables, optionally only those of one
    /// protocol (`show route count [protocol NAME]`).
    pub fn count_routes(&self, protocol: Option<&str>) -> Result<u64> {
        let cmd = match protocol {
            Some(p) => format!("show route count protocol {p}"),
            None => "show route count".to_string(),
        };
        let text = self.birdc(&cmd)?;
        parse_count(&text).ok_or_else(|| Error::parse(cmd, text))
    }

    /// The configuration file path.
    pub fn config_path(&self) -> &std::path::Path {
        &self.config
    }
}

impl Speaker for Bird {
    fn label(&self) -> &str {
        &self.label
    }

    fn peers(&self) -> Result<Vec<PeerStatus>> {
        let text = self.birdc("show protocols")?;
        Ok(parse_protocols(&text, &self.protocols))
    }

    fn routes(&self, family: Family) -> Result<Vec<RouteView>> {
        let table = match family {
            Family::Ipv4 => "master4",
            Family::Ipv6 => "master6",
        };
        let text = self.birdc(&format!("show route all table {table}"))?;
        parse_routes(&text)
    }

    fn process(&self) -> &Process {
        &self.process
    }

    fn add_path(&self, neighbor: IpAddr) -> Result<Option<(AddPathSeen, String)>> {
        let text = self.birdc(&format!("show protocols all {}", protocol_name(neighbor)))?;
        Ok(Some((parse_add_path(&text), text)))
    }

    /// `birdc reload in NAME`. BIRD shows no message counters, so
    /// [`Speaker::refreshes_received`] stays `None`.
    fn request_refresh(&self, neighbor: IpAddr) -> Result<Option<String>> {
        self.birdc(&format!("reload in {}", protocol_name(neighbor)))
            .map(Some)
    }

    fn process_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}
