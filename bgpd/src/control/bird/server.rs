//! The socket itself: answering each command from the speaker's state ([`respond`]), one
//! connection's greeting and command loop, and the sockets kept in line with the
//! configuration across reloads ([`start`]).

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgp_speaker::config::{BirdFormat, ControlConfig, ControlLimits};
use bgp_speaker::{RouteQuery, Speaker, SpeakerError, Table};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;
use tracing::{debug, error, info};

use super::command::{parse, pattern_match, refusal, BirdCommand, Select};
use super::protocols::{protocol, show_protocols};
use super::reply::{hello, Reply};
use super::route;
use super::status::{show_route_count, show_status, RouteCount, Status};
use super::time::{base_time, local_or_epoch};
use super::{SocketFamily, BIRD_VERSION};
use crate::control::limits;
use crate::control::socket::{self, Access, Bound, Serving};

/// Routes asked of the speaker at a time while counting.
const ROUTES_PAGE: usize = 10_000;
/// Longest command line accepted; BIRD's CLI buffer (`CLI_LINE_SIZE`) is 512 bytes.
const MAX_COMMAND: usize = 512;

/// Answers one command from the speaker's state.
pub async fn respond(
    cmd: BirdCommand,
    speaker: &Speaker,
    family: SocketFamily,
    format: BirdFormat,
) -> Reply {
    if let Some(r) = refusal(&cmd) {
        return r;
    }
    let mut r = Reply::new();
    match cmd {
        BirdCommand::SyntaxError | BirdCommand::Denied => {}
        BirdCommand::ShowStatus => match speaker.status().await {
            Err(e) => {
                r.end(8000, &e.to_string());
            }
            Ok(st) => {
                let now = SystemTime::now();
                let ago = |secs: u64| {
                    local_or_epoch(
                        now.checked_sub(Duration::from_secs(secs))
                            .unwrap_or(UNIX_EPOCH),
                    )
                };
                // Selection is deferred for the restart time from our start (RFC 4724
                // section 4.1).
                let graceful_restart = st
                    .selection_deferral
                    .map(|d| (d.remaining.as_secs(), d.total.as_secs()));
                let status = Status {
                    version: BIRD_VERSION.to_string(),
                    router_id: st.router_id.to_string(),
                    hostname: hostname(),
                    now: base_time(&local_or_epoch(now), format),
                    boot: base_time(&ago(st.uptime.as_secs()), format),
                    reconfigured: base_time(&ago(st.config_age.as_secs()), format),
                    graceful_restart,
                    down: st
                        .components
                        .into_iter()
                        .filter_map(|c| Some((c.name.to_string(), c.down?)))
                        .collect(),
                };
                r = show_status(&status, format);
            }
        },
        BirdCommand::ShowProtocols { all, select } => match speaker.peers().await {
            Err(e) => {
                r.end(8000, &e.to_string());
            }
            Ok(peers) => {
                let now = SystemTime::now();
                let mut protocols = Vec::new();
                // BIRD 1.x runs one daemon per family; BIRD 2 one for both.
                let shown = |a: IpAddr| format == BirdFormat::Bird2 || family.matches(a);
                for p in peers.iter().filter(|p| shown(p.config.address.addr)) {
                    let chosen = match &select {
                        Select::All => true,
                        Select::Name(n) => *n == p.config.name,
                        Select::Pattern(pat) => pattern_match(pat, &p.config.name),
                    };
                    if !chosen {
                        continue;
                    }
                    let preferred = if all {
                        preferred(speaker, &p.config.name).await
                    } else {
                        None
                    };
                    protocols.push(protocol(p, now, preferred, format));
                }
                r = match (&select, protocols.is_empty()) {
                    // BIRD's grammar rejects an unknown bare name (an undefined symbol).
                    (Select::Name(_), true) => {
                        let mut e = Reply::new();
                        e.end(9001, "syntax error");
                        e
                    }
                    _ => show_protocols(&protocols, all, &select, format),
                };
            }
        },
        BirdCommand::ShowRoute { protocol } => {
            r = route::respond(speaker, protocol.as_deref(), family, format).await;
        }
        BirdCommand::ShowRouteCount => {
            match (
                route_count(speaker, SocketFamily::Ipv4).await,
                route_count(speaker, SocketFamily::Ipv6).await,
            ) {
                (Ok(v4), Ok(v6)) => r = show_route_count(v4, v6, family, format),
                (Err(e), _) | (_, Err(e)) => {
                    r.end(8000, &e.to_string());
                }
            }
        }
    }
    r
}

/// Paths and prefixes of one family's Loc-RIB, counted a page at a time (a full table is
/// never held at once).
async fn route_count(speaker: &Speaker, family: SocketFamily) -> Result<RouteCount, SpeakerError> {
    let q = RouteQuery {
        table: Table::Loc,
        family: Some(family.filter()),
        ..RouteQuery::default()
    };
    let mut count = RouteCount::default();
    let mut after = None;
    let mut last_prefix = None;
    loop {
        let (routes, next) = speaker.routes_page(q.clone(), after, ROUTES_PAGE).await?;
        for r in &routes {
            count.paths += 1;
            // Pages are in prefix order: a new prefix is one that differs from the last.
            if last_prefix != Some(r.prefix) {
                count.prefixes += 1;
                last_prefix = Some(r.prefix);
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok(count),
        }
    }
}

/// Paths from `peer` that are best in the Loc-RIB.
async fn preferred(speaker: &Speaker, peer: &str) -> Option<usize> {
    let q = RouteQuery {
        peer: Some(peer.to_string()),
        table: Table::Loc,
        ..RouteQuery::default()
    };
    let routes = speaker.routes(q).await.ok()?;
    Some(routes.iter().filter(|r| r.best).count())
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

/// One client connection: greeting, then one reply per command line, until the client
/// leaves or stays idle for `limits.idle` (limits.rs).
async fn connection(
    stream: UnixStream,
    speaker: Speaker,
    family: SocketFamily,
    format: BirdFormat,
    limits: ControlLimits,
) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let hello = hello(BIRD_VERSION);
    limits::write_all(&mut wr, hello.as_str().as_bytes(), limits.write).await?;
    let mut rd = BufReader::new(rd);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let mut bounded = (&mut rd).take(MAX_COMMAND as u64 + 1);
        let n = match tokio::time::timeout(limits.idle, bounded.read_until(b'\n', &mut buf)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()), // idle: close
        };
        if n == 0 {
            return Ok(());
        }
        if buf.last() != Some(&b'\n') && buf.len() > MAX_COMMAND {
            let mut r = Reply::new();
            r.end(9000, "Command too long");
            return limits::write_all(&mut wr, r.as_str().as_bytes(), limits.write).await;
        }
        let line = String::from_utf8_lossy(&buf);
        let cmd = parse(line.trim_end_matches(['\n', '\r']));
        debug!(command = %line.trim_end(), ?cmd, "BIRD socket command");
        let r = respond(cmd, &speaker, family, format).await;
        limits::write_all(&mut wr, r.as_str().as_bytes(), limits.write).await?;
    }
}

/// The answer to a connection over the limit: BIRD's `8000` run-time error class.
const REFUSAL: &[u8] = b"8000 Too many connections\n";

/// A BIRD-compatible socket being served, and what it answers.
#[derive(Debug)]
struct BirdServer {
    socket: Serving,
    family: SocketFamily,
    format: BirdFormat,
}

/// Answers for `speaker`'s peers of `family` on a bound socket.
fn serve(
    bound: Bound,
    config: &ControlConfig,
    family: SocketFamily,
    speaker: Speaker,
) -> BirdServer {
    let format = config.bird.format;
    let limits = config.limits;
    info!(path = %bound.path().display(), ?family, ?format, mode = format!("{:o}", config.bird.mode), "BIRD-compatible status socket listening");
    let socket = bound.serve(limits, "bird", REFUSAL, move |stream| {
        connection(stream, speaker.clone(), family, format, limits)
    });
    BirdServer {
        socket,
        family,
        format,
    }
}

/// Makes `slot` match the wanted socket: rebinds on a new path or format, applies a new
/// mode or group, closes when unset. On an error the running socket stays.
fn follow(
    slot: &mut Option<BirdServer>,
    want: Option<&Path>,
    config: &ControlConfig,
    family: SocketFamily,
    speaker: &Speaker,
) -> std::io::Result<()> {
    let format = config.bird.format;
    let access = Access::bird(config);
    match (slot.as_ref(), want) {
        (Some(s), Some(p)) if s.socket.path() == p && s.format == format && s.family == family => {
            socket::change(p, &access)?;
        }
        (Some(s), Some(p)) if s.socket.path() == p => {
            // Same path, new format: the old listener must go before the path is free.
            *slot = None;
            *slot = Some(serve(
                Bound::new(p, &access)?,
                config,
                family,
                speaker.clone(),
            ));
        }
        (_, Some(p)) => {
            *slot = Some(serve(
                Bound::new(p, &access)?,
                config,
                family,
                speaker.clone(),
            ));
        }
        (Some(old), None) => {
            info!(path = %old.socket.path().display(), "BIRD-compatible socket disabled in the configuration: closed");
            *slot = None;
        }
        (None, None) => {}
    }
    Ok(())
}

/// The configured BIRD-compatible sockets, bound and not served yet.
#[derive(Debug)]
pub struct Sockets {
    v4: Option<Bound>,
    v6: Option<Bound>,
    config: ControlConfig,
}

/// Binds the BIRD-compatible sockets `config` asks for (bgpd does this before the speaker
/// starts: a socket that cannot be opened fails the start).
pub fn bind(config: &ControlConfig) -> std::io::Result<Sockets> {
    let access = Access::bird(config);
    let bind = |p: Option<&Path>| p.map(|p| Bound::new(p, &access)).transpose();
    Ok(Sockets {
        v4: bind(config.bird.socket.as_deref())?,
        v6: bind(config.bird.socket6.as_deref())?,
        config: config.clone(),
    })
}

/// Serves `sockets` for `speaker` and keeps them in line with the configuration after
/// every reload; the returned task owns them (aborting it closes them and removes their
/// files). Errors after a reload are logged and the previous socket stays.
pub fn start(sockets: Sockets, speaker: &Speaker) -> JoinHandle<()> {
    let Sockets { v4, v6, config } = sockets;
    let mut v4 = v4.map(|b| serve(b, &config, SocketFamily::Ipv4, speaker.clone()));
    let mut v6 = v6.map(|b| serve(b, &config, SocketFamily::Ipv6, speaker.clone()));
    let mut updates = speaker.config_updates();
    let speaker = speaker.clone();
    let mut current = config;
    tokio::spawn(async move {
        while updates.changed().await.is_ok() {
            let want = updates.borrow_and_update().global.control.clone();
            if (&want.bird, &want.group) == (&current.bird, &current.group) {
                continue;
            }
            let mut all = true;
            for (slot, path, family) in [
                (&mut v4, want.bird.socket.as_deref(), SocketFamily::Ipv4),
                (&mut v6, want.bird.socket6.as_deref(), SocketFamily::Ipv6),
            ] {
                if let Err(e) = follow(slot, path, &want, family, &speaker) {
                    error!(error = %e, ?family, "cannot apply the BIRD socket settings; the old socket stays");
                    all = false;
                }
            }
            // Recorded only once applied: the next reload tries again.
            if all {
                current = want;
            }
        }
        // Keep the sockets until the task is aborted (the daemon shuts down).
        let _keep = (v4, v6);
        std::future::pending::<()>().await;
    })
}
