//! The harness error type: every failure is a value carrying enough context
//! (command line, exit status, stderr, last observed state) to debug a CI log.

use std::path::PathBuf;

/// Result alias used throughout the harness.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while driving namespaces and daemons.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A helper command (`ip`, `birdc`, `vtysh`, ...) could not be started.
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A helper command ran but exited unsuccessfully.
    #[error("`{cmd}` failed ({status}): {stderr}{stdout}")]
    Command {
        /// The command line.
        cmd: String,
        /// Exit status as printed by the OS.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
        /// Its standard output, trimmed (often where CLIs put their errors).
        stdout: String,
    },
    /// File system trouble (temp dirs, configs, logs).
    #[error("{what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A daemon's CLI answered something we could not understand.
    #[error("cannot parse {what}: {detail}")]
    Parse {
        /// What was being parsed (e.g. `birdc show route`).
        what: String,
        /// The offending input or the reason.
        detail: String,
    },
    /// A condition polled by [`crate::wait_until`] did not become true in time.
    #[error("timed out after {secs} s waiting for {what}; last observation: {last}")]
    Timeout {
        /// The condition.
        what: String,
        /// The timeout.
        secs: u64,
        /// The last state or error seen while polling.
        last: String,
    },
    /// A managed daemon exited while it should be running.
    #[error("{name} exited unexpectedly ({status})")]
    Exited {
        /// The process label.
        name: String,
        /// Its exit status.
        status: String,
    },
    /// A check made by a test did not hold.
    #[error("check failed: {0}")]
    Check(String),
    /// Bad input to the harness itself (e.g. an address family mismatch).
    #[error("invalid harness use: {0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Parse {
            what: what.into(),
            detail: detail.into(),
        }
    }
}
