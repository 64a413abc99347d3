//! The Prometheus / OpenMetrics endpoint (`[global.metrics]`, docs/monitoring.md): an HTTP
//! server answering `GET /metrics` with the speaker's read models in the Prometheus text
//! exposition format.
//!
//! Off unless configured. The listener is bound before the speaker starts (an address that
//! cannot be bound fails the start, as the control sockets do) and follows a reload: a new
//! address is bound first and the old listener closed only once the new one listens; no
//! `[global.metrics]` closes it. Every scrape reads the speaker afresh ([`exposition`]);
//! nothing is sampled in the background. The server is bounded ([`http`]): anyone on the
//! node may connect to it.

mod exposition;
mod http;

use std::net::SocketAddr;

use bgp_speaker::config::MetricsConfig;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::info;

use crate::handle::Daemon;

/// A bound metrics listener, not yet served.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

/// Binds the endpoint of `config`, or nothing when it is `None`.
pub async fn bind(config: Option<MetricsConfig>) -> std::io::Result<Option<Bound>> {
    let Some(c) = config else {
        return Ok(None);
    };
    let listener = TcpListener::bind(c.listen).await?;
    let addr = listener.local_addr()?;
    Ok(Some(Bound { listener, addr }))
}

/// A serving endpoint; dropping it closes the listener and its connections.
#[derive(Debug)]
pub struct Serving {
    addr: SocketAddr,
    config: MetricsConfig,
    task: JoinHandle<()>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `bound` for `daemon`.
pub fn serve(bound: Bound, config: MetricsConfig, daemon: Daemon) -> Serving {
    info!(address = %bound.addr, "metrics endpoint listening");
    Serving {
        addr: bound.addr,
        config,
        task: http::serve(bound.listener, daemon),
    }
}

/// Follows changed `[global.metrics]` settings after a reload (see the module docs). On an
/// error the running endpoint stays and the error is returned.
pub async fn follow(
    server: &mut Option<Serving>,
    want: Option<MetricsConfig>,
    daemon: &Daemon,
) -> std::io::Result<()> {
    if server.as_ref().map(|s| s.config) == want {
        return Ok(());
    }
    let Some(want) = want else {
        if let Some(old) = server.take() {
            info!(address = %old.addr, "metrics endpoint removed from the configuration: closed");
        }
        return Ok(());
    };
    let bound = match bind(Some(want)).await {
        Ok(b) => b,
        // The new address overlaps the old one (the same port on a wider address): the
        // old listener must go first. Should the new one still fail, the old one comes
        // back.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && server.is_some() => {
            let old = server.take().map(|s| (s.config, s.addr));
            match bind(Some(want)).await {
                Ok(b) => b,
                Err(e) => {
                    if let Some((config, addr)) = old {
                        if let Ok(Some(b)) = bind(Some(MetricsConfig { listen: addr })).await {
                            *server = Some(serve(b, config, daemon.clone()));
                        }
                    }
                    return Err(e);
                }
            }
        }
        Err(e) => return Err(e),
    };
    if let Some(b) = bound {
        if let Some(old) = server.replace(serve(b, want, daemon.clone())) {
            info!(old = %old.addr, "metrics endpoint moved");
        }
    }
    Ok(())
}
