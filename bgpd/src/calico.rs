//! `bgpd calico ...`: Calico mode from the command line.
//!
//! ```text
//! bgpd calico render --resources resources.yaml [--resources DIR ...] --node NAME \
//!     [--format toml|json] [--bird-socket PATH] [--bird6-socket PATH] [--control-socket PATH]
//!     [--hold-time SECONDS] [--verbose]
//! ```
//!
//! `render` reads calicoctl-style YAML (files or directories), derives node NAME's BGP
//! configuration as calico-node's confd does for BIRD, and prints it: TOML that `bgpd -c`
//! runs unchanged, or JSON with every peer fully resolved (docs/calico.md). calico-node's
//! environment is honoured: `NODENAME` when `--node` is not given, `CALICO_ROUTER_ID`
//! (an address or `hash`), `NAMESPACE` (where password Secrets live),
//! `CALICO_ADVERTISE_CLUSTER_IPS`. What calico-node would skip (and log) is printed on
//! stderr as a warning and left out.

use std::path::PathBuf;
use std::process::ExitCode;

use bgp_calico::derive::config::RenderOptions;
use bgp_calico::derive::NodeEnv;
use bgp_calico::render::{render, Format};
use bgp_calico::source::file::FileSource;
use bgp_calico::source::ResourceSource;
use bgp_calico::store::ResourceStore;
use clap::{Args, Subcommand, ValueEnum};

/// `bgpd calico` subcommands.
#[derive(Debug, Subcommand)]
pub enum CalicoCommand {
    /// Print a node's bgpd configuration derived from Calico resources.
    Render(RenderArgs),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// bgpd's TOML (runs under `bgpd -c`).
    Toml,
    /// JSON with the same keys, every peer fully resolved.
    Json,
}

/// Arguments of `bgpd calico render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Calico resources: a calicoctl-style YAML/JSON file or a directory of them; repeat
    /// for more (a resource given twice is taken from the later one).
    #[arg(long = "resources", required = true)]
    resources: Vec<PathBuf>,
    /// The node to render for (default: $NODENAME).
    #[arg(long)]
    node: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Toml)]
    format: OutputFormat,
    /// BIRD-compatible status socket for IPv4 ("" for none).
    #[arg(long, default_value = "/var/run/calico/bird.ctl")]
    bird_socket: String,
    /// BIRD-compatible status socket for IPv6 ("" for none).
    #[arg(long, default_value = "/var/run/calico/bird6.ctl")]
    bird6_socket: String,
    /// bgpd's control socket (default: bgpd's own default).
    #[arg(long)]
    control_socket: Option<PathBuf>,
    /// Hold time of every session (BIRD's default, which calico-node keeps, is 240).
    #[arg(long, default_value_t = bgp_calico::derive::config::BIRD_HOLD_TIME)]
    hold_time: u16,
    /// Also list, on stderr, the documents of kinds Calico mode does not read.
    #[arg(long)]
    verbose: bool,
}

fn socket(s: &str) -> Option<PathBuf> {
    (!s.is_empty()).then(|| PathBuf::from(s))
}

/// Runs a `bgpd calico` subcommand.
pub fn run(cmd: CalicoCommand) -> ExitCode {
    match cmd {
        CalicoCommand::Render(a) => match render_cmd(&a) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bgpd calico render: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn render_cmd(a: &RenderArgs) -> Result<String, String> {
    let env =
        NodeEnv::from_vars(a.node.clone(), |k| std::env::var(k).ok()).map_err(|e| e.to_string())?;
    let mut source = FileSource::new(a.resources.iter().cloned());
    let listing = source.list().map_err(|e| e.to_string())?;
    if a.verbose {
        for i in &listing.ignored {
            eprintln!(
                "note: {}: {} {} {:?} is not read in Calico mode",
                i.origin, i.api_version, i.kind, i.name
            );
        }
    }
    let store = ResourceStore::from_resources(listing.resources);
    let options = RenderOptions {
        control_socket: a.control_socket.clone(),
        bird_socket: socket(&a.bird_socket),
        bird6_socket: socket(&a.bird6_socket),
        hold_time: a.hold_time,
    };
    let rendered = render(&store, &env, &options).map_err(|e| e.to_string())?;
    for w in &rendered.node.warnings {
        eprintln!("warning: {w}");
    }
    let format = match a.format {
        OutputFormat::Toml => Format::Toml,
        OutputFormat::Json => Format::Json,
    };
    rendered.text(format).map_err(|e| e.to_string())
}
