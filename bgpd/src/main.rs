//! bgpd: the BGP daemon.
//!
//! A binary over [`bgp_speaker`]: reads the TOML configuration, gives up privileges, and
//! runs the speaker with what a daemon adds around it ([`daemon`]): the control socket and
//! the BIRD-compatible status sockets ([`control`]), the configuration watcher (inotify
//! and SIGHUP, [`watcher`]), the Prometheus metrics endpoint when configured ([`metrics`]),
//! a log filter that can change at run time ([`logging`]), and on SIGTERM or SIGINT a shutdown that closes every session
//! with Cease / Administrative Shutdown and an RFC 8203 message. A panic in any task aborts
//! the process (the kernel keeps our routes; a restart with `-R` adopts them): see
//! docs/security.md.
//!
//! ```text
//! bgpd -c /etc/bgpd/bgpd.toml            # run
//! bgpd -c /etc/bgpd/bgpd.toml --check    # validate: every error, warnings; exit 0 or 1
//! bgpd calico render --resources DIR --node NAME   # Calico mode (calico.rs)
//! bgpd calico run [-R]                   # Calico mode following etcd (datastore.rs)
//! ```

mod accounts;
mod calico;
mod check;
mod control;
mod daemon;
mod datastore;
mod docs;
mod handle;
mod logging;
mod metrics;
mod notify;
mod privileges;
mod reloads;
mod watcher;

use std::path::PathBuf;
use std::process::ExitCode;

use bgp_speaker::config;
use clap::{Parser, Subcommand};
use tracing::{error, info};

/// The version and the git revision it was built from (build.rs).
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BGPD_GIT_REVISION"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "bgpd",
    version = VERSION,
    about = "BGP speaker and route reflector",
    after_help = "Logging: to stderr, filtered by BGPD_LOG, else RUST_LOG (tracing's EnvFilter \
syntax: a level such as `debug`, or `info,bgp_speaker::fib=trace`); `info` when neither is set. \
`bgpctl log level LEVEL` changes the filter while bgpd runs."
)]
struct Cli {
    /// Configuration file (TOML; see docs/config.md).
    #[arg(short = 'c', long = "config", default_value = "/etc/bgpd/bgpd.toml")]
    config: PathBuf,
    /// Validate the configuration and exit: 0 when valid (warnings about settings that do
    /// nothing on stderr), 1 with every error as file:line:column: reason otherwise.
    #[arg(long)]
    check: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = logging::Format::Text)]
    log_format: logging::Format,
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
    /// Write the man page and shell completions (packaging; docs.rs).
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory (man/ and completions/ are made in it).
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    match cli.command.take() {
        Some(Command::Calico(c)) => return calico::run(c, cli.log_format),
        Some(Command::GenerateDocs { out }) => {
            return match docs::generate(<Cli as clap::CommandFactory>::command(), &out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bgpd generate-docs: {}: {e}", out.display());
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    if cli.check {
        return check::run(&cli.config);
    }
    logging::init(cli.log_format);
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
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let opts = daemon::Options {
        source: daemon::Source::File {
            path: cli.config.clone(),
            watch: !cli.no_watch,
        },
        socket: cli.socket.clone(),
        metrics: None,
        graceful_restart: cli.graceful_restart,
    };
    rt.block_on(daemon::run(opts, cfg))
}

/// The daemon's runtime (started once privileges are dropped: it spawns threads).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            error!(error = %e, "cannot start the runtime");
            ExitCode::FAILURE
        })
}

/// Prepares what the daemon will need once it no longer is root (the directories of its
/// sockets), then switches user and group if configured and keeps only the capabilities
/// it needs.
fn give_up_privileges(cli: &Cli, cfg: &config::Config) -> std::io::Result<()> {
    let g = &cfg.global;
    let user = g.user.as_deref().map(accounts::user_ids).transpose()?;
    if user.is_some() || g.group.is_some() {
        let gid = match g.control.group.as_deref().or(g.group.as_deref()) {
            Some(name) => Some(accounts::group_id(name)?),
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
