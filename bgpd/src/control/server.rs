//! The daemon side of the control socket: accepts connections on a Unix socket and answers
//! [`Request`]s from the running daemon ([`Daemon`]: the speaker and its configuration
//! file).

use std::path::Path;

use bgp_control::{Command, Reply, Request, Response, MAX_PAGE, PROTOCOL_VERSION};
use bgp_speaker::config::{ControlConfig, ControlLimits};
use bgp_speaker::{Route, RouteCursor, RouteQuery, Speaker};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tracing::{info, warn};

use super::answer;
use super::limits;
use super::socket::{self, Access, Bound, Serving};
use crate::handle::Daemon;

/// Binds the control socket at `path` (see [`super::socket`]: its directory created 0750,
/// a stale socket replaced, mode and group applied without following symlinks) with the
/// settings of `config`.
pub fn bind(path: &Path, config: &ControlConfig) -> std::io::Result<Bound> {
    Bound::new(path, &Access::control(config))
}

/// Serves requests on a bound control socket for `daemon`.
pub fn serve(bound: Bound, config: &ControlConfig, daemon: Daemon) -> Serving {
    let limits = config.limits;
    info!(path = %bound.path().display(), mode = format!("{:o}", config.mode), group = ?config.group, "control socket listening");
    bound.serve(limits, "control", REFUSAL, move |stream| {
        connection(stream, daemon.clone(), limits)
    })
}

/// Follows changed control socket settings (`[global.control]` after a reload): a new path
/// is bound first and the old socket closed (and its file removed) only once the new one
/// listens; a new mode or group on the same path is applied to the file; no path closes
/// the socket. On an error the running socket stays and the error is returned.
pub fn follow(
    server: &mut Option<Serving>,
    socket: Option<&Path>,
    config: &ControlConfig,
    daemon: &Daemon,
) -> std::io::Result<()> {
    match (server.as_ref(), socket) {
        (Some(s), Some(p)) if s.path() == p => {
            socket::change(p, &Access::control(config))?;
            info!(path = %p.display(), mode = format!("{:o}", config.mode), group = ?config.group, "control socket access changed");
        }
        (_, Some(p)) => {
            let new = serve(bind(p, config)?, config, daemon.clone());
            if let Some(old) = server.replace(new) {
                info!(old = %old.path().display(), new = %p.display(), "control socket moved");
            }
        }
        (Some(old), None) => {
            info!(path = %old.path().display(), "control socket disabled in the configuration: closed");
            *server = None;
        }
        (None, None) => {}
    }
    Ok(())
}

/// Largest request line; requests are small.
const MAX_REQUEST: usize = 64 * 1024;
/// Routes per page when an answer is streamed.
const STREAM_PAGE: usize = 4096;
/// Bytes gathered before a write while streaming.
const STREAM_CHUNK: usize = 64 * 1024;
/// The answer to a connection over the limit.
const REFUSAL: &[u8] =
    b"{\"version\":1,\"status\":\"error\",\"message\":\"too many control connections\"}\n";

/// One connection: a request per line, an answer per line, until the client closes or
/// stays idle for `limits.idle`.
async fn connection(
    stream: UnixStream,
    daemon: Daemon,
    limits: ControlLimits,
) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = String::new();
    loop {
        line.clear();
        let mut bounded = (&mut rd).take(MAX_REQUEST as u64);
        let n = match tokio::time::timeout(limits.idle, bounded.read_line(&mut line)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()), // idle: close
        };
        if n == 0 {
            return Ok(());
        }
        if !line.ends_with('\n') && n >= MAX_REQUEST {
            let resp = Response::error(format!("request longer than {MAX_REQUEST} bytes"));
            return limits::write_all(&mut wr, &answer(&resp), limits.write).await;
        }
        let req = match serde_json::from_str::<Request>(line.trim_end()) {
            Err(e) => Err(Response::error(format!("invalid request: {e}"))),
            Ok(r) if r.version != PROTOCOL_VERSION => Err(Response::error(format!(
                "protocol version {} is not supported (this daemon speaks {PROTOCOL_VERSION})",
                r.version
            ))),
            Ok(r) => Ok(r.command),
        };
        match req {
            Err(resp) => limits::write_all(&mut wr, &answer(&resp), limits.write).await?,
            Ok(Command::ShowRoutes {
                prefix,
                peer,
                table,
                family,
                limit: None,
                after,
                longer,
                community,
            }) => match answer::query(prefix, peer, table, family, longer, community) {
                Ok(q) => {
                    let after = after.map(answer::cursor_in);
                    stream_routes(&mut wr, &daemon.speaker, q, after, limits).await?;
                }
                Err(e) => {
                    let resp = Response::error(e);
                    limits::write_all(&mut wr, &answer(&resp), limits.write).await?;
                }
            },
            // The connection is the stream's from now on.
            Ok(Command::Monitor { peer }) => {
                return super::monitor::stream(&mut rd, &mut wr, &daemon.speaker, peer, limits)
                    .await;
            }
            Ok(cmd) => {
                let resp = handle(cmd, &daemon).await;
                limits::write_all(&mut wr, &answer(&resp), limits.write).await?;
            }
        }
    }
}

/// A response as one line.
pub(super) fn answer(resp: &Response) -> Vec<u8> {
    let mut out = serde_json::to_vec(resp).unwrap_or_else(|e| {
        format!("{{\"version\":{PROTOCOL_VERSION},\"status\":\"error\",\"message\":\"{e}\"}}")
            .into_bytes()
    });
    out.push(b'\n');
    out
}

/// Writes a whole `show_routes` answer (one line, exactly what serializing it at once
/// would give) while taking it from the RIB a page at a time: memory for one page however
/// large the table. An error on the first page is an ordinary error answer; one after
/// the answer began ends the connection (the client sees a truncated line).
async fn stream_routes<W: AsyncWriteExt + Unpin>(
    wr: &mut W,
    speaker: &Speaker,
    q: RouteQuery,
    after: Option<RouteCursor>,
    limits: ControlLimits,
) -> std::io::Result<()> {
    let (mut page, mut next) = match speaker.routes_page(q.clone(), after, STREAM_PAGE).await {
        Ok(p) => p,
        Err(e) => {
            let resp = Response::error(e.to_string());
            return limits::write_all(wr, &answer(&resp), limits.write).await;
        }
    };
    // The frame around the routes array, from the serializer itself.
    let empty = answer(&Response::ok(Reply::Routes {
        routes: Vec::new(),
        next: None,
    }));
    let text = String::from_utf8_lossy(&empty);
    let (head, tail) = text
        .split_once("[]")
        .ok_or_else(|| std::io::Error::other("unexpected routes answer layout"))?;
    let mut buf = Vec::with_capacity(STREAM_CHUNK + 4096);
    buf.extend_from_slice(head.as_bytes());
    buf.push(b'[');
    let mut first = true;
    loop {
        for e in &page {
            if !first {
                buf.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut buf, &answer::route(e)).map_err(std::io::Error::other)?;
            if buf.len() >= STREAM_CHUNK {
                limits::write_all(wr, &buf, limits.write).await?;
                buf.clear();
            }
        }
        let Some(after) = next.take() else {
            break;
        };
        (page, next) = speaker
            .routes_page(q.clone(), Some(after), STREAM_PAGE)
            .await
            .map_err(std::io::Error::other)?;
    }
    buf.push(b']');
    buf.extend_from_slice(tail.as_bytes());
    limits::write_all(wr, &buf, limits.write).await
}

/// Executes one command.
async fn handle(cmd: Command, daemon: &Daemon) -> Response {
    let speaker = &daemon.speaker;
    let routes = |v: Vec<Route>| v.iter().map(answer::route).collect();
    let r: Result<Reply, String> = match cmd {
        Command::Status => speaker
            .status()
            .await
            .map(|s| {
                let mut status = answer::status(s, daemon.config_file());
                if let Some(d) = daemon.datastore() {
                    status.components.push(d.component());
                }
                Reply::Status(status)
            })
            .map_err(|e| e.to_string()),
        Command::ShowDatastore => daemon
            .datastore()
            .map(|d| Reply::Datastore(Box::new(d.report())))
            .ok_or_else(|| "not in Calico mode: the configuration comes from a file".to_string()),
        Command::ShowFib => match speaker.fib(true).await {
            Ok(Some(f)) => Ok(Reply::Fib(Box::new(answer::fib(f)))),
            Ok(None) => Err("no kernel FIB: the configuration has no [kernel] section".to_string()),
            Err(e) => Err(e.to_string()),
        },
        Command::ShowPeers => speaker
            .peers()
            .await
            .map(|v| Reply::Peers {
                peers: v.iter().map(answer::summary).collect(),
            })
            .map_err(|e| e.to_string()),
        Command::ShowPeer { name } => speaker
            .peer(&name)
            .await
            .map(|p| Reply::Peer(Box::new(answer::detail(&p))))
            .map_err(|e| e.to_string()),
        Command::ShowRoutes {
            prefix,
            peer,
            table,
            family,
            limit,
            after,
            longer,
            community,
        } => match answer::query(prefix, peer, table, family, longer, community) {
            Err(e) => Err(e),
            Ok(q) => match limit {
                // One page, and where the next starts.
                Some(limit) => speaker
                    .routes_page(
                        q,
                        after.map(answer::cursor_in),
                        limit.min(MAX_PAGE) as usize,
                    )
                    .await
                    .map(|(v, next)| Reply::Routes {
                        routes: routes(v),
                        next: next.map(answer::cursor_out),
                    }),
                // Everything (the socket streams this case page by page instead).
                None => speaker.routes(q).await.map(|v| Reply::Routes {
                    routes: routes(v),
                    next: None,
                }),
            }
            .map_err(|e| e.to_string()),
        },
        Command::Monitor { .. } => Err("monitor streams: it is served on its own".to_string()),
        Command::ShowRoute { address } => speaker
            .lookup(address)
            .await
            .map(|v| Reply::Routes {
                routes: routes(v),
                next: None,
            })
            .map_err(|e| e.to_string()),
        Command::Reload => match daemon.reload().await {
            Ok(d) => Ok(Reply::Done {
                message: format!("configuration reloaded: {d}"),
            }),
            Err(e) => {
                warn!(error = %e, "reload refused; running configuration unchanged");
                Err(format!(
                    "reload refused, running configuration unchanged: {e}"
                ))
            }
        },
        Command::Shutdown { for_good } => daemon
            .stop
            .send(for_good)
            .map(|()| {
                info!(for_good, "shutdown asked through the control socket");
                Reply::Done {
                    message: if for_good {
                        "shutting down for good: peers drop our routes now".into()
                    } else {
                        "shutting down".into()
                    },
                }
            })
            .map_err(|_| "already shutting down".to_string()),
        Command::Peer { name, action } => {
            let action = answer::action(action);
            speaker
                .peer_action(&name, action)
                .await
                .map(|()| Reply::Done {
                    message: format!("peer {name}: {action:?} done").to_lowercase(),
                })
                .map_err(|e| e.to_string())
        }
        Command::MrtSave { path } => speaker
            .write_table_dump(std::path::Path::new(&path))
            .await
            .map(|s| Reply::Done {
                message: format!(
                    "table dump written to {}: {} prefixes, {} paths",
                    s.path.display(),
                    s.records,
                    s.entries
                ),
            })
            .map_err(|e| e.to_string()),
        Command::ShowBfd => speaker
            .bfd_sessions()
            .await
            .map(|v| Reply::Bfd {
                sessions: v.iter().map(answer::bfd).collect(),
            })
            .map_err(|e| e.to_string()),
        Command::LogLevel { level } => crate::logging::set_filter(&level).map(|now| {
            info!(filter = %now, "log filter changed through the control socket");
            Reply::Done {
                message: format!("log filter now {now}"),
            }
        }),
    };
    match r {
        Ok(r) => Response::ok(r),
        Err(e) => Response::error(e),
    }
}
