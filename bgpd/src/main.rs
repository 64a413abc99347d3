//! bgpd: the BGP daemon.
//!
//! A thin binary over [`bgp_speaker`]: reads the TOML configuration, starts the speaker,
//! serves the control socket, watches the configuration (inotify and SIGHUP) and on SIGTERM
//! or SIGINT closes every session with Cease / Administrative Shutdown and an RFC 8203
//! message before exiting. A panic in any task aborts the process (the kernel keeps our
//! routes; a restart with `-R` adopts them): see docs/security.md.
//!
//! ```text
//! bgpd -c /etc/bgpd/bgpd.toml            # run
//! bgpd -c /etc/bgpd/bgpd.toml --check    # validate, exit 0 or 1
//! bgpd calico render --resources DIR --node NAME   # Calico mode (calico.rs)
//! ```

mod calico;

use std::path::PathBuf;
use std::process::ExitCode;

use bgp_speaker::control::server::ControlServer;
use bgp_speaker::{config, control, watcher, Speaker, SpeakerOptions};
use clap::{Parser, Subcommand, ValueEnum};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

mod privileges;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Parser)]
#[command(name = "bgpd", version, about = "BGP speaker and route reflector")]
struct Cli {
    /// Configuration file (TOML; see docs/config.md).
    #[arg(short = 'c', long = "config", default_value = "/etc/bgpd/bgpd.toml")]
    config: PathBuf,
    /// Validate the configuration and exit: 0 when valid, 1 with file:line:column otherwise.
    #[arg(long)]
    check: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Control socket path, overriding the configuration.
    #[arg(short = 's', long = "socket")]
    socket: Option<PathBuf>,
    /// Start as a restarting speaker (RFC 4724): announce the restart state so peers keep
    /// our routes, with forwarding state preserved.
    #[arg(short = 'R', long = "graceful-restart")]
    graceful_restart: bool,
    /// Do not watch the configuration files (SIGHUP still reloads).
    #[arg(long)]
    no_watch: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Calico mode: derive the configuration from Calico's resources.
    #[command(subcommand)]
    Calico(calico::CalicoCommand),
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BGPD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().flatten_event(true).init(),
    }
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if let Some(Command::Calico(c)) = cli.command.take() {
        return calico::run(c);
    }
    if cli.check {
        return match config::load(&cli.config) {
            Ok(c) => {
                println!(
                    "{}: OK ({} peers, {} policies, {} originated routes)",
                    cli.config.display(),
                    c.peers.len(),
                    c.policies.len(),
                    c.originate.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging(cli.log_format);
    // A panicking task must not leave a half-alive daemon: abort (bgp_speaker::fatal).
    bgp_speaker::abort_on_panic();
    let cfg = match config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            error!("invalid configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Least privilege, while the process has one thread (privileges.rs).
    if let Err(e) = give_up_privileges(&cli, &cfg) {
        error!("cannot drop privileges: {e}");
        return ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(cli, cfg))
}

/// Prepares what the daemon will need once it no longer is root (the directories of its
/// sockets), then switches user and group if configured and keeps only the capabilities
/// it needs.
fn give_up_privileges(cli: &Cli, cfg: &config::Config) -> std::io::Result<()> {
    let g = &cfg.global;
    let user = g
        .user
        .as_deref()
        .map(bgp_speaker::accounts::user_ids)
        .transpose()?;
    if user.is_some() || g.group.is_some() {
        let gid = match g.control.group.as_deref().or(g.group.as_deref()) {
            Some(name) => Some(bgp_speaker::accounts::group_id(name)?),
            None => user.map(|(_, gid)| gid),
        };
        let control_socket = cli.socket.as_deref().or(g.control.socket.as_deref());
        for socket in [
            control_socket,
            g.control.bird.socket.as_deref(),
            g.control.bird.socket6.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            control::socket::prepare_dir(socket, user.map(|(uid, _)| uid), gid)?;
        }
    }
    let done = privileges::drop_privileges(g.user.as_deref(), g.group.as_deref())?;
    info!(
        kept = "CAP_NET_ADMIN, CAP_NET_BIND_SERVICE",
        bounding_set_reduced = done.bounding_set,
        uid_gid = ?done.switched_to,
        "privileges dropped"
    );
    Ok(())
}

async fn run(cli: Cli, cfg: config::Config) -> ExitCode {
    let include_dir = cfg.global.include_dir.clone();
    let control = cfg.global.control.clone();
    let mut sigterm = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot handle SIGTERM");
            return ExitCode::FAILURE;
        }
    };
    let mut sigint = match signal(SignalKind::interrupt()) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot handle SIGINT");
            return ExitCode::FAILURE;
        }
    };
    let mut sighup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot handle SIGHUP");
            return ExitCode::FAILURE;
        }
    };
    let options = SpeakerOptions {
        config_path: Some(cli.config.clone()),
        graceful_restart: cli.graceful_restart,
        forwarding_preserved: cli.graceful_restart,
        fib: None,
    };
    let speaker = match Speaker::start(cfg, options).await {
        Ok(s) => s,
        Err(e) => {
            error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let socket = cli.socket.clone().or(control.socket.clone());
    let mut control_server = match &socket {
        Some(path) => match ControlServer::bind(path, &control, speaker.clone()) {
            Ok(s) => Some(s),
            Err(e) => {
                error!(path = %path.display(), error = %e, "cannot open the control socket");
                speaker.shutdown("bgpd failed to start").await;
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let _watcher = if cli.no_watch {
        None
    } else {
        match watcher::watch(speaker.clone(), &cli.config, include_dir.as_deref()) {
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
                if cfg.global.control != control_cfg {
                    let want = cfg.global.control.clone();
                    if cli.socket.is_some() {
                        info!("control socket settings changed; -s on the command line keeps the socket where it is");
                        control_cfg = want;
                    } else {
                        match control::server::follow(
                            &mut control_server,
                            want.socket.as_deref(),
                            &want,
                            &speaker,
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
                if let Err(e) = speaker.reload().await {
                    warn!("new configuration refused, running configuration unchanged: {e}");
                }
            }
        }
    }
    // RFC 8203: tell peers why.
    speaker.shutdown("bgpd shutting down").await;
    info!("bye");
    ExitCode::SUCCESS
}
