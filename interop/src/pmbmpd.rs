//! pmacct's BMP collector `pmbmpd` (Debian package `pmacct`) in a namespace, as the
//! monitoring station of BMP tests.
//!
//! It listens on 127.0.0.1:1790 inside the namespace (so a client must connect from
//! there, e.g. with [`Netns::tcp_connect`]) and logs every message it receives as one
//! line of JSON (`bmp_daemon_msglog_output: json`), which [`Pmbmpd::messages`] reads back.
//! Each run logs to its own files, so a test can tell what arrived before and after
//! a restart ([`Pmbmpd::stop`], [`Pmbmpd::start_again`]). pmbmpd blocks SIGTERM and ends on SIGINT (pmacct's
//! docs/SIGNALS), which is what stopping it sends first.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::cmd::require_binary;
use crate::context::Test;
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::process::Process;
use crate::wait::{wait_until, TIMEOUT};

/// The BMP port (RFC 7854 has none assigned; 1790 is pmacct's default and common use).
pub const PORT: u16 = 1790;

/// A running pmbmpd.
#[derive(Debug)]
pub struct Pmbmpd {
    label: String,
    ns: Arc<Netns>,
    process: Option<Process>,
    /// The message log of each run, the current one last.
    logs: Vec<PathBuf>,
}

impl Pmbmpd {
    /// Starts pmbmpd in `ns` and waits until it listens.
    pub fn start(test: &Test, ns: &Arc<Netns>, label: &str) -> Result<Pmbmpd> {
        let mut p = Pmbmpd {
            label: label.to_string(),
            ns: Arc::clone(ns),
            process: None,
            logs: Vec::new(),
        };
        p.start_again(test)?;
        Ok(p)
    }

    /// Where it listens, inside its namespace.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), PORT)
    }

    /// Starts a new run (after [`Pmbmpd::stop`]), logging to new files; waits until it
    /// listens.
    pub fn start_again(&mut self, test: &Test) -> Result<()> {
        if self.process.is_some() {
            return Err(Error::Invalid(format!("{} is already running", self.label)));
        }
        let bin = require_binary("pmbmpd")?;
        let n = self.logs.len();
        let dir = test.subdir(&self.label)?;
        let msglog = dir.join(format!("bmp-{n}.json"));
        let logfile = dir.join(format!("pmbmpd-{n}.log"));
        let config = format!(
            "bmp_daemon_ip: 127.0.0.1\n\
             bmp_daemon_port: {PORT}\n\
             bmp_daemon_msglog_file: {}\n\
             bmp_daemon_msglog_output: json\n\
             logfile: {}\n",
            msglog.display(),
            logfile.display()
        );
        let conf = test.write(&format!("{}/pmbmpd-{n}.conf", self.label), &config)?;
        test.register_log(&format!("{} log {n}", self.label), &logfile);
        test.register_log(&format!("{} messages {n}", self.label), &msglog);
        let c = conf.to_string_lossy().into_owned();
        let label = format!("{}-{n}", self.label);
        self.process = Some(Process::spawn(
            test,
            &self.ns,
            &label,
            &bin,
            &["-f", &c],
            &[],
        )?);
        self.logs.push(msglog);
        let process = self.process.as_ref();
        wait_until(&format!("{label} to listen"), TIMEOUT, || {
            if let Some(p) = process {
                p.check_running()?;
            }
            let text = std::fs::read_to_string(&logfile).unwrap_or_default();
            Ok(text.contains("waiting for BMP data").then_some(()))
        })
    }

    /// Stops pmbmpd (SIGINT, as it ignores SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut p) = self.process.take() else {
            return Ok(());
        };
        p.signal(libc::SIGINT)?;
        // Still running after that: dropping `p` escalates to SIGKILL.
        p.wait_exit(Duration::from_secs(30)).map(|_| ())
    }

    /// The BMP messages the current run logged: the JSON objects with `bmp_msg_type`
    /// (pmbmpd's own `log_init`/`log_close` lines left out), in order.
    pub fn messages(&self) -> Result<Vec<Value>> {
        let Some(path) = self.logs.last() else {
            return Ok(Vec::new());
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).map_err(|e| Error::Parse {
                what: format!("{} message log", self.label),
                detail: format!("{e}: {line}"),
            })?;
            if v.get("bmp_msg_type").is_some() {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Waits until the current run has logged at least `n` messages and returns them.
    pub fn wait_messages(&self, n: usize) -> Result<Vec<Value>> {
        wait_until(
            &format!("{} to log {n} BMP messages", self.label),
            TIMEOUT,
            || {
                if let Some(p) = &self.process {
                    p.check_running()?;
                }
                let msgs = self.messages()?;
                Ok((msgs.len() >= n).then_some(msgs))
            },
        )
    }
}

impl Drop for Pmbmpd {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("interop: stopping {}: {e}", self.label);
        }
    }
}
