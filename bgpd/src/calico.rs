//! `bgpd calico ...`: Calico mode from the command line.
//!
//! ```text
//! bgpd calico render --resources resources.yaml [--resources DIR ...] --node NAME \
//!     [--format toml|json] [--bird-socket PATH] [--bird6-socket PATH] [--control-socket PATH]
//!     [--hold-time SECONDS] [--verbose]
//! bgpd calico run [-R] [-c FILE] [--node NAME] [--bird-socket PATH] [--bird6-socket PATH]
//!     [--control-socket PATH] [--hold-time SECONDS]
//! ```
//!
//! `run` is the daemon following Calico's etcd v3 datastore, configured as calico-node is
//! (`DATASTORE_TYPE`, `ETCD_ENDPOINTS`, `ETCD_CA_CERT_FILE`, `ETCD_CERT_FILE`,
//! `ETCD_KEY_FILE`, `ETCD_USERNAME`/`ETCD_PASSWORD`, `NODENAME`) or by the `[datastore]`
//! table of `-c FILE`. No session is configured before the datastore's first complete
//! listing: the speaker starts with the first derived configuration (so that with `-R`
//! the restart recovery waits for the real peers and the kernel keeps our routes until
//! then), and every later change is applied as a difference ([`crate::datastore`]).
//!
//! `render` reads calicoctl-style YAML (files or directories), derives node NAME's BGP
//! configuration as calico-node's confd does for BIRD, and prints it: TOML that `bgpd -c`
//! runs unchanged, or JSON with every peer fully resolved (docs/calico.md). calico-node's
//! environment is honoured: `NODENAME` when `--node` is not given, `CALICO_ROUTER_ID`
//! (an address or `hash`), `NAMESPACE` (where password Secrets live),
//! `CALICO_ADVERTISE_CLUSTER_IPS`. What calico-node would skip (and log) is printed on
//! stderr as a warning and left out.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bgp_calico::derive::config::RenderOptions;
use bgp_calico::derive::NodeEnv;
use bgp_calico::render::{render, Format};
use bgp_calico::source::etcd::EtcdConfig;
use bgp_calico::source::file::FileSource;
use bgp_calico::source::ResourceSource;
use bgp_calico::store::ResourceStore;
use bgp_speaker::config::MetricsConfig;
use clap::{Args, Subcommand, ValueEnum};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info};

use crate::daemon::{self, Source};
use crate::datastore::Feed;
use crate::{logging, privileges, runtime};

/// `bgpd calico` subcommands.
#[derive(Debug, Subcommand)]
pub enum CalicoCommand {
    /// Print a node's bgpd configuration derived from Calico resources.
    Render(RenderArgs),
    /// Run the daemon on the configuration derived from Calico's etcd datastore, following
    /// its changes (calico-node's environment, or `[datastore]` in `-c FILE`).
    Run(RunArgs),
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
    #[command(flatten)]
    output: OutputArgs,
    /// Also list, on stderr, the documents of kinds Calico mode does not read.
    #[arg(long)]
    verbose: bool,
}

/// Arguments of `bgpd calico run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Start as a restarting speaker (RFC 4724), as calico-node starts BIRD: peers keep
    /// our routes, and the kernel keeps them until the peers sent End-of-RIB.
    #[arg(short = 'R', long = "graceful-restart")]
    graceful_restart: bool,
    /// A TOML file whose `[datastore]` table says where the datastore is (instead of
    /// calico-node's variables).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// This node (default: the `[datastore]` table's `node_name`, else $NODENAME).
    #[arg(long)]
    node: Option<String>,
    /// Serve the Prometheus metrics endpoint on this address and port (default: the
    /// `--config` file's `[metrics] listen`, else none). The datastore says nothing of it.
    #[arg(
        long = "metrics-listen",
        env = "BGPD_METRICS_LISTEN",
        value_name = "ADDR:PORT"
    )]
    metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    output: OutputArgs,
}

/// Settings of the derived configuration that do not come from the datastore.
#[derive(Debug, Args)]
struct OutputArgs {
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
}

fn socket(s: &str) -> Option<PathBuf> {
    (!s.is_empty()).then(|| PathBuf::from(s))
}

impl OutputArgs {
    fn options(&self) -> RenderOptions {
        RenderOptions {
            control_socket: self.control_socket.clone(),
            bird_socket: socket(&self.bird_socket),
            bird6_socket: socket(&self.bird6_socket),
            hold_time: self.hold_time,
        }
    }
}

/// Runs a `bgpd calico` subcommand.
pub fn run(cmd: CalicoCommand, log_format: logging::Format) -> ExitCode {
    match cmd {
        CalicoCommand::Run(a) => {
            logging::init(log_format);
            run_daemon(&a)
        }
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
    let rendered = render(&store, &env, &a.output.options()).map_err(|e| e.to_string())?;
    for w in &rendered.node.warnings {
        eprintln!("warning: {w}");
    }
    let format = match a.format {
        OutputFormat::Toml => Format::Toml,
        OutputFormat::Json => Format::Json,
    };
    rendered.text(format).map_err(|e| e.to_string())
}

/// What Calico mode reads from its `--config` file (or the environment without one).
#[derive(Debug)]
struct ModeConfig {
    etcd: EtcdConfig,
    /// `[metrics] listen`: the metrics endpoint.
    metrics: Option<MetricsConfig>,
}

/// `[metrics]` of a Calico mode file: `listen = "ADDR:PORT"`, nothing else.
fn metrics_table(v: toml::Value) -> Result<MetricsConfig, String> {
    let toml::Value::Table(mut t) = v else {
        return Err("[metrics] must be a table".into());
    };
    let listen = match t.remove("listen") {
        Some(toml::Value::String(s)) => s
            .parse::<SocketAddr>()
            .map_err(|e| format!("[metrics] listen {s:?}: {e} (ADDR:PORT)"))?,
        Some(_) => return Err("[metrics] listen must be a string \"ADDR:PORT\"".into()),
        None => return Err("[metrics] needs listen = \"ADDR:PORT\"".into()),
    };
    if let Some(k) = t.keys().next() {
        return Err(format!("[metrics]: unknown key {k:?} (only listen)"));
    }
    Ok(MetricsConfig { listen })
}

/// The etcd configuration: `[datastore]` of `file` when given, else calico-node's
/// variables; `node` wins over both for the node name. The file may also have a
/// `[metrics]` table (`listen = "ADDR:PORT"`), and nothing else.
fn etcd_config(file: Option<&Path>, node: Option<String>) -> Result<ModeConfig, String> {
    let env = |k: &str| std::env::var(k).ok();
    let Some(path) = file else {
        let etcd = EtcdConfig::from_vars(node, env).map_err(|e| e.to_string())?;
        return Ok(ModeConfig {
            etcd,
            metrics: None,
        });
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut doc: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    let table = doc
        .remove("datastore")
        .ok_or_else(|| format!("{}: no [datastore] table", path.display()))?;
    let metrics = match doc.remove("metrics") {
        Some(m) => Some(metrics_table(m).map_err(|e| format!("{}: {e}", path.display()))?),
        None => None,
    };
    if let Some(other) = doc.keys().next() {
        return Err(format!(
            "{}: only [datastore] and [metrics] are read in Calico mode, not {other:?}",
            path.display()
        ));
    }
    let table = toml::to_string(&table).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut cfg = EtcdConfig::from_file(&table, env, |p: &Path| std::fs::read_to_string(p))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(n) = node {
        cfg.node_name = n;
    }
    Ok(ModeConfig { etcd: cfg, metrics })
}

/// `bgpd calico run`.
fn run_daemon(a: &RunArgs) -> ExitCode {
    // A panicking task must not leave a half-alive daemon: abort (bgp_speaker::fatal).
    bgp_speaker::abort_on_panic();
    let (etcd, metrics) = match etcd_config(a.config.as_deref(), a.node.clone()) {
        // The command line (or BGPD_METRICS_LISTEN) wins over the file.
        Ok(c) => (
            c.etcd,
            a.metrics_listen
                .map(|listen| MetricsConfig { listen })
                .or(c.metrics),
        ),
        Err(e) => {
            error!("Calico mode: {e}");
            return ExitCode::FAILURE;
        }
    };
    let env = match NodeEnv::from_vars(Some(etcd.node_name.clone()), |k| std::env::var(k).ok()) {
        Ok(e) => e,
        Err(e) => {
            error!("Calico mode: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Least privilege, while the process has one thread. A derived configuration names no
    // user or group to switch to: only the capabilities go.
    match privileges::drop_privileges(None, None) {
        Ok(done) => info!(
            kept = "CAP_NET_ADMIN, CAP_NET_BIND_SERVICE",
            bounding_set_reduced = done.bounding_set,
            "privileges dropped"
        ),
        Err(e) => {
            error!("cannot drop privileges: {e}");
            return ExitCode::FAILURE;
        }
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let options = a.output.options();
    let graceful_restart = a.graceful_restart;
    rt.block_on(async move {
        let (Ok(mut sigterm), Ok(mut sigint)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            error!("cannot handle SIGTERM and SIGINT");
            return ExitCode::FAILURE;
        };
        let mut feed = Feed::start(etcd, env, options);
        // Nothing runs before the first complete listing: no session, no socket, and the
        // kernel keeps what a previous run installed.
        let first = tokio::select! {
            c = feed.first_config() => c,
            _ = sigterm.recv() => return ExitCode::SUCCESS,
            _ = sigint.recv() => return ExitCode::SUCCESS,
        };
        let Some(cfg) = first else {
            error!("the datastore source stopped before a configuration was derived");
            return ExitCode::FAILURE;
        };
        info!(
            peers = cfg.peers.len(),
            "first configuration derived from the datastore; starting the speaker"
        );
        feed.applied(&cfg);
        let opts = daemon::Options {
            source: Source::Datastore(Box::new(feed)),
            socket: None,
            metrics,
            graceful_restart,
        };
        daemon::run(opts, cfg).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datastore_table_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bgpd.toml");
        std::fs::write(
            &path,
            "[datastore]\nendpoints = [\"https://10.0.0.1:2379\"]\nca_cert_file = \"/c/ca\"\n\
             cert_file = \"/c/cert\"\nkey_file = \"/c/key\"\nnode_name = \"node-a\"\n",
        )
        .unwrap();
        let c = etcd_config(Some(&path), None).unwrap();
        assert_eq!(c.etcd.endpoints, ["https://10.0.0.1:2379"]);
        assert_eq!(c.etcd.node_name, "node-a");
        assert!(c.etcd.tls.is_some());
        assert_eq!(c.metrics, None, "no [metrics]: no endpoint");
        let c = etcd_config(Some(&path), Some("node-b".into())).unwrap();
        assert_eq!(c.etcd.node_name, "node-b", "--node wins");

        std::fs::write(&path, "[datastore]\nnode_name = \"n\"\n[global]\nasn = 1\n").unwrap();
        let e = etcd_config(Some(&path), None).unwrap_err();
        assert!(
            e.contains("only [datastore]") && e.contains("global"),
            "{e}"
        );
        std::fs::write(&path, "[global]\nasn = 1\n").unwrap();
        let e = etcd_config(Some(&path), None).unwrap_err();
        assert!(e.contains("no [datastore] table"), "{e}");
        std::fs::write(
            &path,
            "[datastore]\ntype = \"kubernetes\"\nnode_name = \"n\"\n",
        )
        .unwrap();
        let e = etcd_config(Some(&path), None).unwrap_err();
        assert!(e.contains("only etcdv3"), "{e}");
    }

    #[test]
    fn metrics_table_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bgpd.toml");
        let datastore = "[datastore]\nendpoints = [\"http://127.0.0.1:2379\"]\nnode_name = \"n\"\n";
        std::fs::write(
            &path,
            format!("{datastore}[metrics]\nlisten = \"127.0.0.1:9179\"\n"),
        )
        .unwrap();
        let c = etcd_config(Some(&path), None).unwrap();
        assert_eq!(
            c.metrics,
            Some(MetricsConfig {
                listen: "127.0.0.1:9179".parse().unwrap()
            })
        );
        for (bad, says) in [
            ("[metrics]\nlisten = \"localhost\"\n", "ADDR:PORT"),
            ("[metrics]\nlisten = 9179\n", "must be a string"),
            ("[metrics]\n", "needs listen"),
            (
                "[metrics]\nlisten = \"[::1]:9179\"\npath = \"/m\"\n",
                "unknown key \"path\"",
            ),
        ] {
            std::fs::write(&path, format!("{datastore}{bad}")).unwrap();
            let e = etcd_config(Some(&path), None).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
