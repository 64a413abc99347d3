//! The running daemon: the library's [`Speaker`] and what bgpd adds around it — the
//! configuration file (read again on SIGHUP, on a change on disk and on `bgpctl reload`),
//! the control socket, the BIRD-compatible status sockets, the signals and the shutdown.
//!
//! The order matters: the sockets are bound before the speaker starts, so a socket that
//! cannot be opened fails the start before any session begins; they are served once the
//! speaker runs; on SIGTERM or SIGINT every session is closed with Cease / Administrative
//! Shutdown and an RFC 8203 message.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use bgp_speaker::config::{self, Config, ConfigDiff, ConfigError};
use bgp_speaker::{Speaker, SpeakerError, SpeakerOptions};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{error, info, warn};

use crate::control::{bird, server};
use crate::metrics;
use crate::watcher;

/// The speaker and the configuration file it runs from, as the control socket and the
/// watcher act on them. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Daemon {
    /// The speaker.
    pub speaker: Speaker,
    /// The main configuration file.
    pub config_file: Arc<Path>,
    /// Reloads and their results, for the metrics endpoint.
    pub reloads: Arc<metrics::Reloads>,
}

/// Why a reload was refused (the running configuration stays in force either way).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The files do not load.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The speaker refused the new configuration.
    #[error(transparent)]
    Speaker(#[from] SpeakerError),
}

impl Daemon {
    /// Reads the configuration files again and applies the difference.
    pub async fn reload(&self) -> Result<ConfigDiff, ReloadError> {
        let result = self.reload_files().await;
        self.reloads.record(result.is_ok());
        result
    }

    async fn reload_files(&self) -> Result<ConfigDiff, ReloadError> {
        let path = self.config_file.clone();
        let cfg = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .map_err(|_| SpeakerError::Stopped)??;
        Ok(self.speaker.apply_config(cfg).await?)
    }
}

/// How bgpd was started (the command line).
#[derive(Debug)]
pub struct Options {
    /// The main configuration file.
    pub config_file: PathBuf,
    /// The control socket given with `-s`: it stays there whatever the configuration says.
    pub socket: Option<PathBuf>,
    /// `-R`: restarting with forwarding state kept (RFC 4724).
    pub graceful_restart: bool,
    /// `--no-watch`: reload on SIGHUP and `bgpctl reload` only.
    pub no_watch: bool,
}

fn handle(kind: SignalKind, name: &str) -> Result<Signal, ExitCode> {
    signal(kind).map_err(|e| {
        error!(error = %e, "cannot handle {name}");
        ExitCode::FAILURE
    })
}

/// Runs the daemon with the loaded configuration until SIGTERM or SIGINT.
pub async fn run(opts: Options, cfg: Config) -> ExitCode {
    match serve(opts, cfg).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

async fn serve(opts: Options, cfg: Config) -> Result<(), ExitCode> {
    let include_dir = cfg.global.include_dir.clone();
    let control = cfg.global.control.clone();
    let mut sigterm = handle(SignalKind::terminate(), "SIGTERM")?;
    let mut sigint = handle(SignalKind::interrupt(), "SIGINT")?;
    let mut sighup = handle(SignalKind::hangup(), "SIGHUP")?;
    // Every socket before the speaker: one that cannot be opened fails the start.
    let socket = opts.socket.clone().or(control.socket.clone());
    let control_socket = match &socket {
        Some(path) => Some(server::bind(path, &control).map_err(|e| {
            error!(path = %path.display(), error = %e, "cannot open the control socket");
            ExitCode::FAILURE
        })?),
        None => None,
    };
    let bird_sockets = bird::bind(&control).map_err(|e| {
        error!(error = %e, "cannot open the BIRD-compatible status socket");
        ExitCode::FAILURE
    })?;
    let mut metrics_cfg = cfg.global.metrics;
    let metrics_listener = metrics::bind(metrics_cfg).await.map_err(|e| {
        error!(address = ?metrics_cfg.map(|m| m.listen), error = %e, "cannot open the metrics endpoint");
        ExitCode::FAILURE
    })?;
    let options = SpeakerOptions {
        graceful_restart: opts.graceful_restart,
        forwarding_preserved: opts.graceful_restart,
        fib: None,
    };
    let speaker = Speaker::start(cfg, options).await.map_err(|e| {
        error!("cannot start: {e}");
        ExitCode::FAILURE
    })?;
    let daemon = Daemon {
        speaker: speaker.clone(),
        config_file: Arc::from(opts.config_file.as_path()),
        reloads: Arc::default(),
    };
    let mut metrics_server = metrics_listener
        .zip(metrics_cfg)
        .map(|(b, c)| metrics::serve(b, c, daemon.clone()));
    let mut control_server = control_socket.map(|b| server::serve(b, &control, daemon.clone()));
    let bird_task = bird::start(bird_sockets, &speaker);
    let _watcher = if opts.no_watch {
        None
    } else {
        match watcher::watch(daemon.clone(), &opts.config_file, include_dir.as_deref()) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(error = %e, "cannot watch the configuration; reload with SIGHUP");
                None
            }
        }
    };
    // A reload may move the control socket (unless -s fixed it) or change its mode.
    let mut updates = speaker.config_updates();
    let mut control_cfg = control;
    loop {
        tokio::select! {
            Ok(()) = updates.changed() => {
                let cfg = updates.borrow_and_update().clone();
                if cfg.global.metrics != metrics_cfg {
                    match metrics::follow(&mut metrics_server, cfg.global.metrics, &daemon).await {
                        Ok(()) => metrics_cfg = cfg.global.metrics,
                        Err(e) => error!(error = %e, "cannot move the metrics endpoint; the old one stays"),
                    }
                }
                if cfg.global.control != control_cfg {
                    let want = cfg.global.control.clone();
                    if opts.socket.is_some() {
                        info!("control socket settings changed; -s on the command line keeps the socket where it is");
                        control_cfg = want;
                    } else {
                        match server::follow(
                            &mut control_server,
                            want.socket.as_deref(),
                            &want,
                            &daemon,
                        ) {
                            // Recorded only once applied: the next reload tries again.
                            Ok(()) => control_cfg = want,
                            Err(e) => error!(error = %e, "cannot move the control socket; the old one stays open"),
                        }
                    }
                }
            }
            _ = sigterm.recv() => {
                info!("SIGTERM received");
                break;
            }
            _ = sigint.recv() => {
                info!("SIGINT received");
                break;
            }
            _ = sighup.recv() => {
                info!("SIGHUP received: reloading configuration");
                if let Err(e) = daemon.reload().await {
                    warn!("new configuration refused, running configuration unchanged: {e}");
                }
            }
        }
    }
    bird_task.abort();
    // RFC 8203: tell peers why.
    speaker.shutdown("bgpd shutting down").await;
    info!("bye");
    Ok(())
}
