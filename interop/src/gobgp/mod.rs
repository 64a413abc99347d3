//! GoBGP adapter: `gobgpd -f CONF.toml --api-hosts 127.0.0.1:50051` in a
//! namespace; the `gobgp` client runs through `ip netns exec` because the gRPC
//! port is per namespace. Routes are originated after start with
//! `gobgp global rib add` (GoBGP's TOML has no static routes).
//!
//! [`config`] renders the configuration, the parsers of `gobgp`'s answers
//! are in `parse`; this file starts the daemon and answers the [`Speaker`]
//! questions with them.

mod config;
mod parse;

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::cmd::require_binary;
use crate::context::Test;
use crate::error::{Error, Result};
use crate::model::{AddPathSeen, Announce, Family, PeerStatus, RouteView, SpeakerConfig};
use crate::netns::{Netns, Node};
use crate::process::Process;
use crate::speaker::Speaker;
use crate::wait::{wait_until, TIMEOUT};

pub use config::{config, rib_add_args};
pub use parse::{parse_add_path, parse_neighbors, parse_refresh_received, parse_rib};

/// The gRPC API address inside the namespace.
const API: &str = "127.0.0.1:50051";

/// A GoBGP instance.
#[derive(Debug)]
pub struct GoBgp {
    label: String,
    ns: Arc<Netns>,
    process: Process,
}

impl GoBgp {
    /// Writes the configuration, starts gobgpd in `node`, waits for its API
    /// and originates `cfg.announce` (next hop: our session address of the
    /// prefix's family).
    pub fn start(test: &Test, node: &Node, label: &str, cfg: &SpeakerConfig) -> Result<GoBgp> {
        let gobgpd = require_binary("gobgpd")?;
        require_binary("gobgp")?;
        let conf = test.write_config(label, "gobgpd.toml", &config(cfg))?;
        let c = conf.to_string_lossy().into_owned();
        let process = Process::spawn(
            test,
            &node.ns,
            label,
            &gobgpd,
            &[
                "-f",
                &c,
                "-t",
                "toml",
                "--api-hosts",
                API,
                "--pprof-disable",
                "-p",
            ],
            &[],
        )?;
        let g = GoBgp {
            label: label.to_string(),
            ns: Arc::clone(&node.ns),
            process,
        };
        wait_until(&format!("{label} API up"), TIMEOUT, || {
            g.process.check_running()?;
            g.gobgp(&["global"]).map(Some)
        })?;
        for a in &cfg.announce {
            g.announce(a, cfg.local_address(Family::of_net(&a.prefix)))?;
        }
        Ok(g)
    }

    /// Runs `gobgp -u 127.0.0.1 -p 50051 args...` in the namespace.
    pub fn gobgp(&self, args: &[&str]) -> Result<String> {
        let (host, port) = API.split_once(':').unwrap_or((API, "50051"));
        let mut full = vec!["-u", host, "-p", port];
        full.extend_from_slice(args);
        self.ns.exec("gobgp", &full)
    }

    /// Originates `a` with next hop `nh` (GoBGP picks one when `None`).
    pub fn announce(&self, a: &Announce, nh: Option<IpAddr>) -> Result<()> {
        let args = rib_add_args(a, nh);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.gobgp(&refs)?;
        Ok(())
    }

    /// Withdraws a route originated with [`GoBgp::announce`].
    pub fn withdraw(&self, prefix: IpNet) -> Result<()> {
        let fam = Family::of_net(&prefix).name();
        self.gobgp(&["global", "rib", "del", "-a", fam, &prefix.to_string()])?;
        Ok(())
    }
}

impl Speaker for GoBgp {
    fn label(&self) -> &str {
        &self.label
    }

    fn peers(&self) -> Result<Vec<PeerStatus>> {
        parse_neighbors(&self.gobgp(&["neighbor", "-j"])?)
    }

    fn routes(&self, family: Family) -> Result<Vec<RouteView>> {
        let fam = family.name();
        parse_rib(&self.gobgp(&["global", "rib", "-a", fam, "-j"])?)
    }

    fn process(&self) -> &Process {
        &self.process
    }

    fn process_mut(&mut self) -> &mut Process {
        &mut self.process
    }

    fn reports_stale(&self) -> bool {
        true
    }

    fn add_path(&self, neighbor: IpAddr) -> Result<Option<(AddPathSeen, String)>> {
        let text = self.gobgp(&["neighbor", &neighbor.to_string()])?;
        Ok(Some((parse_add_path(&text), text)))
    }

    /// `None`: GoBGP's `neighbor X softresetin` re-applies import policy to
    /// the Adj-RIB-In GoBGP always keeps and sends nothing (GoBGP 3.10 has
    /// no command that sends a ROUTE-REFRESH).
    fn request_refresh(&self, _neighbor: IpAddr) -> Result<Option<String>> {
        Ok(None)
    }

    /// The message statistics of `gobgp neighbor ADDR`.
    fn refreshes_received(&self, neighbor: IpAddr) -> Result<Option<u64>> {
        let text = self.gobgp(&["neighbor", &neighbor.to_string()])?;
        parse_refresh_received(&text)
            .map(Some)
            .ok_or_else(|| Error::parse("gobgp neighbor", text))
    }
}
