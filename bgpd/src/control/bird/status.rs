//! `show status` and `show route count`.

use bgp_speaker::config::BirdFormat;

use super::reply::Reply;
use super::SocketFamily;

/// BIRD's reply code `8005 Protocol is down`, used for a component that is down.
pub const PROTOCOL_DOWN: u16 = 8005;

/// Inputs of `show status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Version after `BIRD `.
    pub version: String,
    /// Router id.
    pub router_id: String,
    /// Host name (BIRD 2 only).
    pub hostname: Option<String>,
    /// Formatted current time.
    pub now: String,
    /// Formatted start time.
    pub boot: String,
    /// Formatted last (re)configuration time.
    pub reconfigured: String,
    /// While we restart gracefully (RFC 4724): seconds left of / total selection deferral.
    pub graceful_restart: Option<(u64, u64)>,
    /// Components that are down (name, why): the daemon is not fully working.
    pub down: Vec<(String, String)>,
}

/// `show status` (BIRD's `cmd_show_status`).
pub fn show_status(s: &Status, format: BirdFormat) -> Reply {
    let mut r = Reply::new();
    r.more(1000, &format!("BIRD {}", s.version));
    r.more(1011, &format!("Router ID is {}", s.router_id));
    if let (BirdFormat::Bird2, Some(h)) = (format, &s.hostname) {
        r.more(1011, &format!("Hostname is {h}"));
    }
    r.more(1011, &format!("Current server time is {}", s.now));
    r.more(1011, &format!("Last reboot on {}", s.boot));
    r.more(1011, &format!("Last reconfiguration on {}", s.reconfigured));
    if let Some((left, total)) = s.graceful_restart {
        // calico-node's readiness check fails while it sees code 0024.
        r.more(24, "Graceful restart recovery in progress");
        r.more(24, &format!("  Wait timer is {left}/{total}"));
    }
    // A component down (the kernel FIB not following the RIB, say): BIRD's run-time
    // error class, which calico-node's readiness check does not accept, so the node is
    // reported not ready with this line as the reason; `-bird-live` (output starting with
    // "BIRD") still passes, since the daemon repairs it by itself.
    for (name, why) in &s.down {
        r.more(PROTOCOL_DOWN, &format!("{name} is down: {why}"));
    }
    r.end(13, "Daemon is up and running");
    r
}

/// Paths and prefixes of one Loc-RIB table.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteCount {
    /// Paths (BIRD's routes).
    pub paths: usize,
    /// Prefixes (BIRD's networks).
    pub prefixes: usize,
}

/// `show route count`. BIRD 1.x (one table per daemon): the socket's family only; BIRD 2
/// (one daemon, tables `master4` and `master6`): both, then the total.
pub fn show_route_count(
    v4: RouteCount,
    v6: RouteCount,
    family: SocketFamily,
    format: BirdFormat,
) -> Reply {
    let mut r = Reply::new();
    match format {
        BirdFormat::Bird1 => {
            let c = match family {
                SocketFamily::Ipv4 => v4,
                SocketFamily::Ipv6 => v6,
            };
            r.end(
                14,
                &format!(
                    "{} of {} routes for {} networks",
                    c.paths, c.paths, c.prefixes
                ),
            );
        }
        BirdFormat::Bird2 => {
            for (c, f) in [(v4, SocketFamily::Ipv4), (v6, SocketFamily::Ipv6)] {
                r.more(
                    1007,
                    &format!(
                        "{} of {} routes for {} networks in table {}",
                        c.paths,
                        c.paths,
                        c.prefixes,
                        f.table()
                    ),
                );
            }
            let (paths, prefixes) = (v4.paths + v6.paths, v4.prefixes + v6.prefixes);
            r.end(
                14,
                &format!("Total: {paths} of {paths} routes for {prefixes} networks in 2 tables"),
            );
        }
    }
    r
}
