//! Adapter for our own daemon: `bgpd -c bgp.toml` in a namespace, inspected
//! over its control socket (the JSON-lines protocol of
//! crate `bgp-control`, the same one `bgpctl -s SOCKET` speaks) and
//! with `bgpctl` for human-readable output.
//!
//! The binaries are found through `BGPD_BIN` / `BGPCTL_BIN`, else in the
//! workspace's `target/debug` then `target/release` (`cargo build --workspace`
//! builds them; `scripts/test.sh` does that before running tests).
//!
//! [`config`] is the single place that knows bgpd's configuration format;
//! the parsers of control-protocol answers are in `parse`.

mod config;
mod parse;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;

use crate::cmd;
use crate::context::Test;
use crate::error::{Error, Result};
use crate::json::strings;
use crate::model::{AddPathSeen, Family, PeerStatus, RouteView, SpeakerConfig};
use crate::netns::Node;
use crate::process::Process;
use crate::speaker::Speaker;

pub use config::{config, config_with, Options};
pub use parse::{is_best, parse_add_path, parse_all_routes, parse_peers, parse_routes};

/// A bgpd instance.
#[derive(Debug)]
pub struct Bgpd {
    label: String,
    socket: PathBuf,
    config: PathBuf,
    process: Process,
}

/// Finds a workspace binary: `$ENV_VAR`, else `target/{debug,release}/NAME`
/// (honouring `CARGO_TARGET_DIR`).
pub fn workspace_binary(name: &str, env_var: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    ["debug", "release"]
        .iter()
        .map(|profile| target.join(profile).join(name))
        .find(|p| p.is_file())
}

/// The bgpd binary, if built.
pub fn bgpd_binary() -> Option<PathBuf> {
    workspace_binary("bgpd", "BGPD_BIN")
}

/// The bgpctl binary, if built.
pub fn bgpctl_binary() -> Option<PathBuf> {
    workspace_binary("bgpctl", "BGPCTL_BIN")
}

/// The peer name used for a neighbor (Calico style: `Mesh_10_0_0_2`).
pub fn peer_name(addr: IpAddr) -> String {
    format!("Peer_{}", addr.to_string().replace(['.', ':'], "_"))
}

impl Bgpd {
    /// Writes the configuration for `cfg` and starts bgpd in `node`.
    pub fn start(test: &Test, node: &Node, label: &str, cfg: &SpeakerConfig) -> Result<Bgpd> {
        let dir = test.subdir(label)?;
        let socket = dir.join("bgpd.sock");
        Self::start_with_config(test, node, label, &config(cfg, &socket), &socket)
    }

    /// Starts bgpd with a hand-written configuration whose control socket is
    /// `socket`.
    pub fn start_with_config(
        test: &Test,
        node: &Node,
        label: &str,
        text: &str,
        socket: &Path,
    ) -> Result<Bgpd> {
        let bin = bgpd_binary().ok_or_else(|| {
            Error::Invalid("bgpd not built (cargo build -p bgpd, or set BGPD_BIN)".into())
        })?;
        let config = test.write_config(label, "bgp.toml", text)?;
        let c = config.to_string_lossy().into_owned();
        let process = Process::spawn(
            test,
            &node.ns,
            label,
            &bin,
            &["-c", &c],
            &[("BGPD_LOG", "info"), ("NO_COLOR", "1")],
        )?;
        Ok(Bgpd {
            label: label.to_string(),
            socket: socket.to_path_buf(),
            config,
            process,
        })
    }

    /// Sends one control request (a JSON object without `version`) and returns
    /// the `result` of an ok response.
    pub fn control(&self, request: Value) -> Result<Value> {
        control_at(&self.socket, request)
    }

    /// The control socket path.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// Runs `bgpctl args...` (e.g. `["show", "peers"]`) against this daemon's
    /// control socket (passed as `BGPCTL_SOCKET`) and returns its output.
    pub fn bgpctl(&self, args: &[&str]) -> Result<String> {
        let bin = bgpctl_binary().ok_or_else(|| {
            Error::Invalid("bgpctl not built (cargo build -p bgpctl, or set BGPCTL_BIN)".into())
        })?;
        let s = self.socket.to_string_lossy().into_owned();
        cmd::run_env(&bin.to_string_lossy(), args, &[("BGPCTL_SOCKET", &s)])
    }

    /// Runs `bgpctl --json args...` and returns the `result` of its ok answer
    /// (e.g. `["show", "peer", NAME]` → the peer detail object).
    pub fn bgpctl_json(&self, args: &[&str]) -> Result<Value> {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let text = self.bgpctl(&full)?;
        let what = format!("bgpctl --json {}", args.join(" "));
        let v: Value =
            serde_json::from_str(&text).map_err(|e| Error::parse(&what, format!("{e}: {text}")))?;
        match v.get("status").and_then(Value::as_str) {
            Some("ok") => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
            _ => Err(Error::Check(format!("{what}: {text}"))),
        }
    }

    /// The configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Replaces the configuration file with `text` and asks bgpd to reload it
    /// (`reload` on the control socket; bgpd also watches the file, so a
    /// second reload finds nothing left to change).
    pub fn reconfigure(&self, text: &str) -> Result<()> {
        std::fs::write(&self.config, text).map_err(|e| Error::io("writing", &self.config, e))?;
        self.control(serde_json::json!({"command": "reload"}))?;
        Ok(())
    }

    /// `show_peer` for the session to `address` (the peer named
    /// [`peer_name`]): summary, capabilities, counters.
    pub fn show_peer(&self, address: IpAddr) -> Result<Value> {
        self.control(serde_json::json!({"command": "show_peer", "name": peer_name(address)}))
    }

    /// The capabilities bgpd received from `address` (`show_peer`'s
    /// `capabilities_received`, as bgpd renders them, e.g.
    /// `FourOctetAs(4200000002)`), with the whole `show_peer` answer for
    /// error messages.
    pub fn capabilities_received(&self, address: IpAddr) -> Result<(Vec<String>, Value)> {
        let detail = self.show_peer(address)?;
        Ok((strings(detail.get("capabilities_received")), detail))
    }

    /// One counter of `show_peer`'s `counters` (e.g. `route_refresh_received`).
    pub fn peer_counter(&self, address: IpAddr, counter: &str) -> Result<u64> {
        let v = self.show_peer(address)?;
        v.pointer(&format!("/counters/{counter}"))
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::parse("bgpd show_peer", format!("no counter {counter} in {v}")))
    }

    /// What an operator sees with `bgpctl --json show routes PREFIX --peer
    /// NAME`: the route entries of `prefix` learned from `address` (with
    /// `path_id` when ADD-PATH applies).
    pub fn bgpctl_routes(&self, prefix: IpNet, address: IpAddr) -> Result<Vec<Value>> {
        let name = peer_name(address);
        let answer = self.bgpctl_json(&["show", "routes", &prefix.to_string(), "--peer", &name])?;
        answer
            .get("routes")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| Error::parse("bgpctl --json show routes", answer.to_string()))
    }

    /// The paths of `table` (`loc`, `in` or `out`) for `prefix`, as the
    /// control protocol's JSON route entries (with `path_id` when ADD-PATH
    /// applies).
    pub fn route_entries(&self, table: &str, prefix: IpNet) -> Result<Vec<Value>> {
        let v = self.control(serde_json::json!({
            "command": "show_routes", "table": table, "prefix": prefix.to_string()
        }))?;
        v.get("routes")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| Error::parse("bgpd show_routes", format!("no routes array in {v}")))
    }
}

/// Sends one control request (a JSON object without `version`) to the bgpd
/// control socket at `socket` and returns the `result` of an ok response.
pub fn control_at(socket: &Path, mut request: Value) -> Result<Value> {
    if let Some(o) = request.as_object_mut() {
        o.insert("version".into(), Value::from(1));
    }
    let what = format!("bgpd control {request}");
    let mut stream =
        UnixStream::connect(socket).map_err(|e| Error::io("connecting to", socket, e))?;

    let timeout = Some(Duration::from_secs(30));
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    let mut line = request.to_string();
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| Error::io("writing to", socket, e))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading from", socket, e))?;
    let v: Value =
        serde_json::from_str(&answer).map_err(|e| Error::parse(&what, format!("{e}: {answer}")))?;
    match v.get("status").and_then(Value::as_str) {
        Some("ok") => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
        _ => Err(Error::Check(format!("{what}: {answer}"))),
    }
}

impl Speaker for Bgpd {
    fn label(&self) -> &str {
        &self.label
    }

    fn peers(&self) -> Result<Vec<PeerStatus>> {
        parse_peers(&self.control(serde_json::json!({"command": "show_peers"}))?)
    }

    fn routes(&self, family: Family) -> Result<Vec<RouteView>> {
        let fam = family.name();
        parse_routes(&self.control(serde_json::json!({
            "command": "show_routes", "table": "loc", "family": fam
        }))?)
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

    /// The capabilities sent and received in `show_peer`.
    fn add_path(&self, neighbor: IpAddr) -> Result<Option<(AddPathSeen, String)>> {
        let detail = self.show_peer(neighbor)?;
        Ok(Some((parse_add_path(&detail), detail.to_string())))
    }

    /// The `route_refresh_received` counter of `show_peer`.
    fn refreshes_received(&self, neighbor: IpAddr) -> Result<Option<u64>> {
        self.peer_counter(neighbor, "route_refresh_received")
            .map(Some)
    }
}
