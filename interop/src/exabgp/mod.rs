//! ExaBGP adapter. ExaBGP runs as root (`exabgp.daemon.user=root`, no
//! privilege drop) with its CLI pipes disabled; instead two API processes of
//! our own are configured:
//! - `ix-announce` relays lines written to a FIFO in the test directory to
//!   ExaBGP's command input ([`ExaBgp::command`]: `announce route ...`,
//!   including `attribute [0xTT 0xFLAGS 0xHEX]` for arbitrary attributes);
//! - `ix-receive` appends ExaBGP's JSON messages (state changes and parsed
//!   received UPDATEs) to a file, from which [`Speaker::peers`] and
//!   [`Speaker::routes`] rebuild the sessions and the Adj-RIB-In (`parse`).
//!
//! ExaBGP only connects out here (it does not listen: `exabgp.tcp.bind` is
//! empty), so its peers must accept connections. It cannot send framing
//! errors; [`crate::raw_peer`] sends those.

mod config;
mod parse;

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_json::Value;

use crate::cmd::require_binary;
use crate::context::Test;
use crate::error::{Error, Result};
use crate::model::{Announce, Family, PeerStatus, RouteView, SpeakerConfig};
use crate::netns::Node;
use crate::process::Process;
use crate::speaker::Speaker;
use crate::wait::{wait_until, TIMEOUT};
use parse::announced;

pub use config::{config, config_with_static, route_statement, route_statement_via};
pub use parse::{peers_from_messages, rib_from_messages};

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
        let conf = test.write_config(label, "exabgp.conf", &text)?;
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

    /// How many received UPDATEs announced `prefix` so far.
    pub fn announcements_of(&self, prefix: IpNet) -> Result<u64> {
        let n: usize = self
            .messages()?
            .iter()
            .filter(|m| m.get("type").and_then(Value::as_str) == Some("update"))
            .filter_map(|m| m.pointer("/neighbor/message/update"))
            .map(|u| announced(u).iter().filter(|(_, p)| *p == prefix).count())
            .sum();
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
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

    fn process(&self) -> &Process {
        &self.process
    }

    /// `neighbor ADDR announce route-refresh ipv4 unicast` through the API.
    fn request_refresh(&self, neighbor: IpAddr) -> Result<Option<String>> {
        let line = format!("neighbor {neighbor} announce route-refresh ipv4 unicast");
        self.command(&line)?;
        Ok(Some(line))
    }

    fn process_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}
