//! `[global.control]`: the control socket, the BIRD-compatible status sockets, who may use
//! them and how much a client may hold (docs/config.md, docs/security.md).
//!
//! These are the daemon's settings: they are read and checked here with the rest of the
//! file, and bgpd opens the sockets; the library itself opens none.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::file::ControlFile;
use super::{ConfigError, Source};

use bgp_control::DEFAULT_CONTROL_SOCKET;
/// The default permission bits of the control socket.
pub const DEFAULT_MODE: u32 = 0o660;

/// Control socket settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlConfig {
    /// Path of the Unix socket; `None` disables it.
    pub socket: Option<PathBuf>,
    /// File mode of the socket.
    pub mode: u32,
    /// Group the sockets (and a socket directory bgpd creates) belong to, so its members
    /// may use them; `None`: bgpd's own group.
    pub group: Option<String>,
    /// The BIRD-compatible status sockets.
    pub bird: BirdSocketConfig,
    /// Connections, idle and write timeouts of every control socket.
    pub limits: ControlLimits,
}

/// What one local client may hold of a control socket (docs/security.md).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ControlLimits {
    /// Connections served at once; one more is told so and closed.
    pub max_connections: usize,
    /// A connection with no request for this long is closed.
    pub idle: Duration,
    /// A write to a client that makes no progress for this long drops the client.
    pub write: Duration,
}

impl Default for ControlLimits {
    /// 32 connections per socket, 60 s idle, 30 s for a client to take a write
    /// (`max_connections` and `timeout` change them).
    fn default() -> Self {
        ControlLimits {
            max_connections: 32,
            idle: Duration::from_secs(60),
            write: Duration::from_secs(30),
        }
    }
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: Some(PathBuf::from(DEFAULT_CONTROL_SOCKET)),
            mode: DEFAULT_MODE,
            group: None,
            bird: BirdSocketConfig::default(),
            limits: ControlLimits::default(),
        }
    }
}

/// The BIRD-compatible read-only status sockets calico-node's health checks talk to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BirdSocketConfig {
    /// Socket answering for IPv4 sessions (BIRD's `bird.ctl`); `None`: off.
    pub socket: Option<PathBuf>,
    /// Socket answering for IPv6 sessions (BIRD 1.x's separate `bird6.ctl`); `None`: off.
    pub socket6: Option<PathBuf>,
    /// Which BIRD's output layout to imitate.
    pub format: BirdFormat,
    /// File mode of these sockets (read-only answers: may be wider than the control
    /// socket's); the control socket's mode when unset.
    pub mode: u32,
}

impl Default for BirdSocketConfig {
    fn default() -> Self {
        BirdSocketConfig {
            socket: None,
            socket6: None,
            format: BirdFormat::default(),
            mode: DEFAULT_MODE,
        }
    }
}

/// Output layout of the BIRD-compatible sockets.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum BirdFormat {
    /// BIRD 1.6, as shipped in calico-node (`name     proto    table ...` headings, which
    /// calico-node compares word for word).
    #[default]
    Bird1,
    /// BIRD 2.0 (`Name       Proto      Table ...`, millisecond times, `Hostname is`).
    Bird2,
}

fn mode(src: &Source, m: &Spanned<String>, key: &str) -> Result<u32, ConfigError> {
    u32::from_str_radix(m.get_ref().trim_start_matches("0o"), 8)
        .ok()
        .filter(|v| *v <= 0o777)
        .ok_or_else(|| {
            ConfigError::at(
                src,
                m.span(),
                format!(
                    "{key} {:?} is not an octal permission like \"0660\"",
                    m.get_ref()
                ),
            )
        })
}

/// Resolves `[global.control]` (defaults when absent).
pub(super) fn resolve(src: &Source, c: Option<&ControlFile>) -> Result<ControlConfig, ConfigError> {
    let Some(c) = c else {
        return Ok(ControlConfig::default());
    };
    let control_mode = match &c.mode {
        None => DEFAULT_MODE,
        Some(m) => mode(src, m, "mode")?,
    };
    let bird_mode = match &c.bird_mode {
        None => control_mode,
        Some(m) => mode(src, m, "bird_mode")?,
    };
    let format = match &c.bird_format {
        None => BirdFormat::Bird1,
        Some(f) => match f.get_ref().as_str() {
            "bird1" => BirdFormat::Bird1,
            "bird2" => BirdFormat::Bird2,
            other => {
                return Err(ConfigError::at(
                    src,
                    f.span(),
                    format!("bird_format {other:?} is not \"bird1\" or \"bird2\""),
                ))
            }
        },
    };
    let defaults = ControlLimits::default();
    let limits = ControlLimits {
        max_connections: match &c.max_connections {
            Some(n) if *n.get_ref() == 0 => {
                return Err(ConfigError::at(
                    src,
                    n.span(),
                    "max_connections must be at least 1",
                ))
            }
            Some(n) => *n.get_ref(),
            None => defaults.max_connections,
        },
        idle: c
            .timeout
            .map_or(defaults.idle, |t| Duration::from_secs(t.max(1))),
        write: c
            .timeout
            .map_or(defaults.write, |t| Duration::from_secs(t.max(1))),
    };
    if let Some(g) = &c.group {
        if g.get_ref().is_empty() || g.get_ref().contains(['\0', ':', '/']) {
            return Err(ConfigError::at(
                src,
                g.span(),
                format!("group {:?} is not a group name", g.get_ref()),
            ));
        }
    }
    Ok(ControlConfig {
        socket: if c.enabled == Some(false) {
            None
        } else {
            Some(
                c.socket
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET)),
            )
        },
        mode: control_mode,
        group: c.group.as_ref().map(|g| g.get_ref().clone()),
        bird: BirdSocketConfig {
            socket: c.bird_socket.clone(),
            socket6: c.bird6_socket.clone(),
            format,
            mode: bird_mode,
        },
        limits,
    })
}
