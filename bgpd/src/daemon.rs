//! The running daemon: the library's [`Speaker`] and what bgpd adds around it — where its
//! configuration comes from ([`Source`]: the configuration file, read again on SIGHUP, on a
//! change on disk and on `bgpctl reload`; or in Calico mode the datastore, followed by
//! [`crate::datastore`]), the control socket, the BIRD-compatible status sockets, the
//! signals and the shutdown.
//!
//! The order matters: the sockets are bound before the speaker starts, so a socket that
//! cannot be opened fails the start before any session begins; they are served once the
//! speaker runs; on SIGTERM or SIGINT every session is closed with Cease / Administrative
//! Shutdown and an RFC 8203 message, as each peer's `graceful_restart.on_stop` says (a
//! restart leaves every peer keeping our routes as far as it can); on `bgpctl shutdown
//! --for-good` with Hard Reset, so that every peer drops our routes at once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use bgp_speaker::config::Config;
use bgp_speaker::{Speaker, SpeakerOptions};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{error, info, warn};

use crate::control::{bird, server};
use crate::datastore::Feed;
use crate::handle::{ConfigSource, Daemon};
use crate::metrics;
use crate::reloads::Reloads;
use crate::watcher;

/// Where the configuration comes from (the command line).
#[derive(Debug)]
pub enum Source {
    /// The main configuration file, watched unless `--no-watch`.
    File {
        /// The file.
        path: PathBuf,
        /// Watch it (and its drop-in directory) for changes.
        watch: bool,
    },
    /// Calico mode: the datastore's follower, its first configuration already derived.
    Datastore(Box<Feed>),
}

/// How bgpd was started (the command line).
#[derive(Debug)]
pub struct Options {
    /// Where the configuration comes from.
    pub source: Source,
    /// The control socket given with `-s`: it stays there whatever the configuration says.
    pub socket: Option<PathBuf>,
    /// `-R`: restarting with forwarding state kept (RFC 4724).
    pub graceful_restart: bool,
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
    let reloads = Arc::<Reloads>::default();
    let (stop, mut stop_asked) = tokio::sync::mpsc::unbounded_channel();
    // The configuration's source: the file and its watcher, or the datastore's follower.
    let (daemon, _watcher, follower) = match opts.source {
        Source::File { path, watch } => {
            let daemon = Daemon {
                speaker: speaker.clone(),
                source: ConfigSource::File(Arc::from(path.as_path())),
                reloads,
                stop,
            };
            let w = if watch {
                watcher::watch(daemon.clone(), &path, include_dir.as_deref())
                    .map_err(|e| {
                        warn!(error = %e, "cannot watch the configuration; reload with SIGHUP");
                    })
                    .ok()
            } else {
                None
            };
            (daemon, w, None)
        }
        Source::Datastore(feed) => {
            let daemon = Daemon {
                speaker: speaker.clone(),
                source: ConfigSource::Datastore(feed.view()),
                reloads,
                stop,
            };
            (daemon, None, Some(feed.follow(speaker.clone())))
        }
    };
    let mut metrics_server = metrics_listener
        .zip(metrics_cfg)
        .map(|(b, c)| metrics::serve(b, c, daemon.clone()));
    let mut control_server = control_socket.map(|b| server::serve(b, &control, daemon.clone()));
    let bird_task = bird::start(bird_sockets, &speaker);
    // A reload may move the control socket (unless -s fixed it) or change its mode.
    let mut updates = speaker.config_updates();
    let mut control_cfg = control;
    let mut for_good = false;
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
            Some(leave) = stop_asked.recv() => {
                for_good = leave;
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
    if let Some(f) = follower {
        f.abort();
    }
    // RFC 8203: tell peers why.
    if for_good {
        speaker.shutdown_for_good("bgpd leaving for good").await;
    } else {
        speaker.shutdown("bgpd shutting down").await;
    }
    info!("bye");
    Ok(())
}
