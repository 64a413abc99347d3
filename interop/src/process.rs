//! A guard for a daemon started inside a namespace.
//!
//! The daemon is started as `ip netns exec NS program args...` in a new
//! process group (`ip netns exec` execs the program, so the group id is the
//! daemon's PID). Standard output and error go to files in the test directory,
//! registered with the [`Test`] so they are printed if the test fails. On drop
//! the group is sent SIGTERM, then SIGKILL if it has not exited within a grace
//! period: only processes we started (the daemon and its own helpers, such as
//! ExaBGP's API scripts) are ever signalled, and always by id. Every daemon
//! carries its owner (this test process) in the environment variable
//! [`OWNER_ENV`], so that the leftovers of a killed test binary can be
//! recognised and removed by the next one ([`crate::sweep_leftovers`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cmd::render;
use crate::context::Test;
use crate::error::{Error, Result};
use crate::netns::{Netns, Owner, OWNER_ENV};

/// How long a daemon gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// A running daemon; stopped (by process group id) on drop.
#[derive(Debug)]
pub struct Process {
    label: String,
    child: Option<Child>,
    pid: u32,
    stdout: PathBuf,
    stderr: PathBuf,
    command: String,
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    restarts: u32,
    // Keeps the namespace alive while the daemon runs in it.
    _ns: Arc<Netns>,
}

impl Process {
    /// Starts `program args...` in `ns` with extra environment `envs`; output
    /// goes to `<test dir>/<label>.stdout` and `.stderr`.
    pub fn spawn(
        test: &Test,
        ns: &Arc<Netns>,
        label: &str,
        program: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<Process> {
        use std::os::unix::process::CommandExt as _;
        let stdout = test.dir().join(format!("{label}.stdout"));
        let stderr = test.dir().join(format!("{label}.stderr"));
        let out = File::create(&stdout).map_err(|e| Error::io("creating", &stdout, e))?;
        let err = File::create(&stderr).map_err(|e| Error::io("creating", &stderr, e))?;
        let program_s = program.to_string_lossy().into_owned();
        let mut full = vec!["netns", "exec", ns.name(), program_s.as_str()];
        full.extend_from_slice(args);
        let command = render("ip", &full);
        let child = Command::new("ip")
            .args(&full)
            // The owner mark lets a later test binary recognise (and kill)
            // this daemon if we die without stopping it (netns::sweep_leftovers).
            .env(OWNER_ENV, Owner::current().mark())
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .current_dir(test.dir())
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                cmd: command.clone(),
                source,
            })?;
        test.register_log(&format!("{label} stdout"), &stdout);
        test.register_log(&format!("{label} stderr"), &stderr);
        Ok(Process {
            label: label.to_string(),
            pid: child.id(),
            child: Some(child),
            stdout,
            stderr,
            command,
            program: program.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            restarts: 0,
            _ns: Arc::clone(ns),
        })
    }

    /// The daemon's PID (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The label given at spawn time.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The full command line used.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Path of the captured standard output.
    pub fn stdout_path(&self) -> &Path {
        &self.stdout
    }

    /// Path of the captured standard error.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr
    }

    /// Captured stdout and stderr so far.
    pub fn output_so_far(&self) -> String {
        let o = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let e = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        format!("{o}{e}")
    }

    /// `Ok(())` while running; [`Error::Exited`] once it has exited.
    pub fn check_running(&self) -> Result<()> {
        if self.child.is_some() && !self.exited_unreaped() {
            Ok(())
        } else {
            Err(Error::Exited {
                name: self.label.clone(),
                status: "not running".into(),
            })
        }
    }

    /// Sends `signal` to the daemon's process group.
    pub fn signal(&self, signal: i32) -> Result<()> {
        let Ok(pgid) = libc::pid_t::try_from(self.pid) else {
            return Err(Error::Invalid(format!("pid {} out of range", self.pid)));
        };
        // SAFETY: kill(2) with a negative pid signals exactly the process group
        // we created at spawn (process_group(0) makes pgid == pid).
        let rc = unsafe { libc::kill(-pgid, signal) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "kill(-{pgid}, {signal}): {}",
                std::io::Error::last_os_error()
            )))
        }
    }

    /// True once the daemon has exited, without reaping it: while it is an
    /// unreaped zombie its PID (our group id) cannot be reused, so signalling
    /// the group stays safe.
    fn exited_unreaped(&self) -> bool {
        let pid: libc::id_t = self.pid;
        // SAFETY: waitid writes only into `info`, a properly sized siginfo_t;
        // WNOWAIT leaves the child waitable for Child::wait.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let rc = libc::waitid(
                libc::P_PID,
                pid,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            rc != 0 || info.si_pid() != 0
        }
    }

    /// Stops the daemon: SIGTERM to its group, SIGKILL after a grace period.
    /// Returns the exit status text.
    pub fn stop(&mut self) -> Result<String> {
        let Some(mut child) = self.child.take() else {
            return Ok("already stopped".into());
        };
        let mut killed = false;
        if !self.exited_unreaped() {
            let _ = self.signal(libc::SIGTERM);
            let deadline = Instant::now() + GRACE;
            while !self.exited_unreaped() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            killed = !self.exited_unreaped();
        }
        // The leader is dead or dying but not reaped, so the group id is still
        // ours: finish off helpers sharing the group (ExaBGP API scripts).
        let _ = self.signal(libc::SIGKILL);
        let status = child.wait().map_err(|source| Error::Spawn {
            cmd: format!("wait {}", self.pid),
            source,
        })?;
        Ok(if killed {
            format!("{status} (after SIGKILL)")
        } else {
            status.to_string()
        })
    }

    /// Stops the daemon (if running) and starts the same command again, with
    /// logs going to `<label>-restartN.stdout`/`.stderr` (restart tests).
    pub fn restart(&mut self, test: &Test) -> Result<()> {
        self.restart_with(test, &[])
    }

    /// Like [`Process::restart`], appending `extra` arguments to the original
    /// ones for the new instance only (e.g. bgpd's `-R`, restarting speaker).
    pub fn restart_with(&mut self, test: &Test, extra: &[&str]) -> Result<()> {
        self.stop()?;
        self.restarts += 1;
        let label = format!("{}-restart{}", self.label, self.restarts);
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        let envs: Vec<(&str, &str)> = self
            .envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut again = Process::spawn(test, &self._ns, &label, &self.program, &args, &envs)?;
        again.label = self.label.clone();
        again.restarts = self.restarts;
        again.args = self.args.clone();
        *self = again;
        Ok(())
    }

    /// Waits (up to `timeout`) for the process to exit on its own, for
    /// commands that end by themselves (`ping -c N`); returns the exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        while !self.exited_unreaped() {
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("{} to exit", self.label),
                    secs: timeout.as_secs(),
                    last: "still running".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("interop: stopping {} (pid {}): {e}", self.label, self.pid);
        }
    }
}
