//! bgpd's log: `tracing` events to stderr, as text or JSON lines, through a filter read
//! from `BGPD_LOG` or else `RUST_LOG` (default `info`) that an operator can replace while
//! bgpd runs (`bgpctl log level LEVEL`, through the control socket).
//!
//! The filter sits in a `tracing_subscriber` reload layer; its handle is kept here, set
//! once when logging starts, so the control server can swap the filter without the
//! daemon's state carrying it around.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

/// The filter used when neither variable is set (or the one set does not parse).
const DEFAULT_FILTER: &str = "info";

/// Levels a directive may name.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The running filter's handle, once logging started.
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The output format.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The filter from the environment: `BGPD_LOG`, else `RUST_LOG`, else `info`.
fn from_env() -> EnvFilter {
    ["BGPD_LOG", "RUST_LOG"]
        .into_iter()
        .find(|v| std::env::var_os(v).is_some())
        .and_then(|v| EnvFilter::try_from_env(v).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER))
}

/// Starts logging to stderr in `format`.
pub fn init(format: Format) {
    let (filter, handle) = reload::Layer::new(from_env());
    let out = fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        Format::Text => registry.with(out).init(),
        Format::Json => registry.with(out.json().flatten_event(true)).init(),
    }
    let _ = FILTER.set(handle);
}

/// Checks `spec`: comma-separated directives, each a level (`debug`) or `TARGET=LEVEL`
/// (`bgp_speaker::fib=trace`), levels among [`LEVELS`]. Stricter than `EnvFilter`, which
/// would take a misspelt level for a target name and silently log nothing more.
fn parse(spec: &str) -> Result<EnvFilter, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("no level given".into());
    }
    for directive in spec.split(',') {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.is_empty() => level,
            Some(_) => return Err(format!("{directive:?} names no target")),
            None => directive,
        };
        if !LEVELS.contains(&level.trim().to_ascii_lowercase().as_str()) {
            return Err(format!("{level:?} is not a level ({})", LEVELS.join(", ")));
        }
    }
    EnvFilter::try_new(spec).map_err(|e| format!("{spec:?}: {e}"))
}

/// Replaces the running filter with `spec` (see [`parse`]); returns the filter now in
/// force.
pub fn set_filter(spec: &str) -> Result<String, String> {
    let filter = parse(spec)?;
    let handle = FILTER
        .get()
        .ok_or_else(|| "logging is not started".to_owned())?;
    let shown = filter.to_string();
    handle
        .reload(filter)
        .map_err(|e| format!("cannot change the log filter: {e}"))?;
    Ok(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_specs() {
        for good in ["debug", "INFO", "warn,bgp_speaker::fib=trace", "bgpd=off"] {
            assert!(parse(good).is_ok(), "{good}");
        }
        for bad in ["", "debgu", "info,bgp_speaker=loud", "=debug"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
