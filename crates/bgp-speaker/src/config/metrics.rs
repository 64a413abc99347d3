//! `[global.metrics]`: the Prometheus / OpenMetrics endpoint bgpd serves (docs/config.md,
//! docs/monitoring.md).
//!
//! A daemon setting like `[global.control]`: read and checked here with the rest of the
//! file so a bad address is an error with its line and column; bgpd opens the socket, the
//! library opens none. Off unless the table is present.

use std::net::SocketAddr;

use super::file::MetricsFile;
use super::{ConfigError, Source};

/// Metrics endpoint settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Address and port of the HTTP endpoint serving `GET /metrics`.
    pub listen: SocketAddr,
}

/// Resolves `[global.metrics]` (`None` when absent: no endpoint).
pub(super) fn resolve(
    src: &Source,
    m: Option<&MetricsFile>,
) -> Result<Option<MetricsConfig>, ConfigError> {
    let Some(m) = m else {
        return Ok(None);
    };
    let listen = m.listen.get_ref().parse::<SocketAddr>().map_err(|_| {
        ConfigError::at(
            src,
            m.listen.span(),
            format!(
                "metrics listen {:?} is not an address and port like \"127.0.0.1:9179\" or \"[::1]:9179\"",
                m.listen.get_ref()
            ),
        )
    })?;
    Ok(Some(MetricsConfig { listen }))
}
