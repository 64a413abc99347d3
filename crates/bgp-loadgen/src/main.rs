//! `bgp-loadgen`: N iBGP clients of a route reflector in one process (see the crate
//! documentation).
//!
//! - `bgp-loadgen run ...` connects the clients; when every client holds every other
//!   client's routes it prints one JSON object (the [`bgp_loadgen::run::Report`]) on
//!   stdout and exits 0; otherwise it exits 1 with the reason and the counts so far on
//!   stderr.
//! - `bgp-loadgen config bgpd|bird ...` prints the reflector's configuration for the
//!   same clients.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tokio::sync::Semaphore;

use bgp_loadgen::client::ClientSettings;
use bgp_loadgen::dut_config::{bgpd_config, bird_config, Reflector};
use bgp_loadgen::plan::Plan;
use bgp_loadgen::usage::raise_open_files_limit;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "BGP load generator: many route-reflector clients in one process"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the clients against the reflector.
    Run {
        #[command(flatten)]
        load: Load,
        /// Seconds before the run is abandoned.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// PID of the reflector: report its CPU time over the run and its peak RSS.
        #[arg(long)]
        dut_pid: Option<u32>,
        /// Connections opened and not yet Established at any time (at least 1).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
        connect_limit: u32,
    },
    /// Print the reflector's configuration for these clients.
    Config {
        daemon: Daemon,
        #[command(flatten)]
        load: Load,
        /// bgpd's control socket.
        #[arg(long, default_value = "/run/bgpd/bgpd.sock")]
        control_socket: PathBuf,
    },
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum Daemon {
    Bgpd,
    Bird,
}

/// The load, shared by both commands.
#[derive(Debug, clap::Args)]
struct Load {
    /// Address and port of the route reflector.
    #[arg(long, default_value = "127.0.0.1:179")]
    dut: SocketAddr,
    /// Client sessions (client i connects from 127.1.(i/250).(i%250+1)).
    #[arg(long, default_value_t = 10)]
    clients: u32,
    /// Prefixes each client announces.
    #[arg(long, default_value_t = 100)]
    routes: u32,
    /// Length of the announced prefixes.
    #[arg(long, default_value_t = 24)]
    prefix_len: u8,
    /// First prefix; client i's prefixes follow client i-1's.
    #[arg(long, default_value = "10.0.0.0")]
    base: Ipv4Addr,
    /// AS of the clients and the reflector (iBGP).
    #[arg(long, default_value_t = 64512)]
    asn: u32,
    /// Hold Time proposed, seconds.
    #[arg(long, default_value_t = 240)]
    hold_time: u16,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let load = match &cli.command {
        Command::Run { load, .. } | Command::Config { load, .. } => load,
    };
    let plan = match Plan::new(load.clients, load.routes, load.prefix_len, load.base) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("bgp-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    match &cli.command {
        Command::Config {
            daemon,
            control_socket,
            ..
        } => {
            let reflector = Reflector {
                plan,
                listen: load.dut,
                asn: load.asn,
                hold_time: load.hold_time,
                control_socket,
            };
            let text = match daemon {
                Daemon::Bgpd => bgpd_config(&reflector),
                Daemon::Bird => bird_config(&reflector),
            };
            print!("{text}");
            ExitCode::SUCCESS
        }
        Command::Run {
            timeout,
            dut_pid,
            connect_limit,
            ..
        } => {
            let settings = ClientSettings {
                plan,
                dut: load.dut,
                asn: load.asn,
                hold_time: load.hold_time,
                connect_slots: Arc::new(Semaphore::new(*connect_limit as usize)),
            };
            run(settings, Duration::from_secs(*timeout), *dut_pid)
        }
    }
}

fn run(settings: ClientSettings, timeout: Duration, dut_pid: Option<u32>) -> ExitCode {
    if let Err(e) = raise_open_files_limit() {
        eprintln!("bgp-loadgen: raising the open-file limit: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bgp-loadgen: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bgp_loadgen::run::run(settings, timeout, dut_pid)) {
        Ok(report) => match serde_json::to_string(&report) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bgp-loadgen: writing the report: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("bgp-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
