//! bgpctl: inspect and control a running bgpd, and work with MRT files.
//!
//! Subcommands are grouped by topic (`bgpctl mrt dump FILE`); each group lives in its own
//! module so control-socket commands can be added beside the MRT ones.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bfd;
mod control;
#[path = "../../bgpd/src/docs.rs"]
mod docs;
mod monitor;
mod mrt;

#[derive(Debug, Parser)]
#[command(
    name = "bgpctl",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BGPD_GIT_REVISION"), ")"),
    about = "Inspect and control bgpd; read MRT files"
)]
struct Cli {
    /// Control socket and output format for the daemon commands.
    #[command(flatten)]
    conn: control::Conn,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read MRT (RFC 6396) routing dumps and update logs; have bgpd write one.
    #[command(subcommand)]
    Mrt(mrt::MrtCommand),
    /// Show daemon state: peers, routes, BFD sessions (talks to bgpd's control socket).
    Show(control::ShowArgs),
    /// Re-read bgpd's configuration and apply the difference.
    Reload,
    /// Stop bgpd (as SIGTERM does); `--for-good` when the node leaves and will not come
    /// back: every peer is told to drop its routes at once (Hard Reset, RFC 8538).
    Shutdown(control::ShutdownArgs),
    /// Reset, disable or enable one peer's session.
    Peer(control::PeerArgs),
    /// Follow bgpd live: peer state changes, routes peers announce and withdraw, best-path
    /// changes, one line each as they happen (JSON lines with --json), until interrupted.
    Monitor(monitor::MonitorArgs),
    /// Change bgpd's logging while it runs.
    #[command(subcommand)]
    Log(control::LogCommand),
    /// Write the man page and shell completions (packaging; docs.rs).
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory (man/ and completions/ are made in it).
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Mrt(cmd) => mrt::run(&cli.conn, cmd),
        Command::Show(a) => control::show(&cli.conn, a),
        Command::Reload => control::reload(&cli.conn),
        Command::Shutdown(a) => control::shutdown(&cli.conn, a),
        Command::Peer(a) => control::peer(&cli.conn, a),
        Command::Log(c) => control::log(&cli.conn, c),
        Command::Monitor(a) => monitor::run(&cli.conn, a),
        Command::GenerateDocs { out } => {
            match docs::generate(<Cli as clap::CommandFactory>::command(), &out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bgpctl generate-docs: {}: {e}", out.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}
