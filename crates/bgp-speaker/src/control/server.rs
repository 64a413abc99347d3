//! The daemon side of the control socket: accepts connections on a Unix socket and answers
//! [`Request`]s by calling the [`Speaker`].

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::proto::{Command, Reply, Request, Response, PROTOCOL_VERSION};
use crate::speaker::{RouteQuery, Speaker};

/// A running control socket; removing the socket file when dropped.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl ControlServer {
    /// Binds `path` (creating its directory, replacing a stale socket file) with file mode
    /// `mode`, and serves requests for `speaker`.
    pub fn bind(path: &Path, mode: u32, speaker: Speaker) -> std::io::Result<ControlServer> {
        let listener = bind_unix(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        info!(path = %path.display(), mode = format!("{mode:o}"), "control socket listening");
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let sp = speaker.clone();
                        tokio::spawn(async move {
                            if let Err(e) = serve(stream, sp).await {
                                debug!(error = %e, "control connection ended");
                            }
                        });
                    }
                    Err(e) => {
                        warn!(error = %e, "control socket accept");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(ControlServer {
            path: path.to_owned(),
            task,
        })
    }
}

/// Binds a Unix socket at `path`: creates its directory, replaces a stale socket file
/// (one nobody answers on), refuses a live one or a file that is not a socket. Shared by
/// the JSON control socket and the BIRD-compatible one ([`super::bird`]).
pub(crate) fn bind_unix(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            // A live daemon answers a connect; a stale file does not.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{} is in use by another running daemon", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(_) => {}
    }
    UnixListener::bind(path)
}

impl ControlServer {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes the socket file's mode.
    pub fn set_mode(&self, mode: u32) -> std::io::Result<()> {
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode))
    }
}

/// Follows changed control socket settings (`[global.control]` after a reload): a new path
/// is bound first and the old socket closed (and its file removed) only once the new one
/// listens; a new mode on the same path is applied to the file; no path closes the socket.
/// On an error the running socket stays and the error is returned.
pub fn follow(
    server: &mut Option<ControlServer>,
    socket: Option<&Path>,
    mode: u32,
    speaker: &Speaker,
) -> std::io::Result<()> {
    match (server.as_ref(), socket) {
        (Some(s), Some(p)) if s.path() == p => {
            s.set_mode(mode)?;
            info!(path = %p.display(), mode = format!("{mode:o}"), "control socket mode changed");
        }
        (_, Some(p)) => {
            let new = ControlServer::bind(p, mode, speaker.clone())?;
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

async fn serve(stream: UnixStream, speaker: Speaker) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut rd)
            .take(MAX_REQUEST as u64)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let resp = match serde_json::from_str::<Request>(line.trim_end()) {
            Err(e) => Response::error(format!("invalid request: {e}")),
            Ok(r) if r.version != PROTOCOL_VERSION => Response::error(format!(
                "protocol version {} is not supported (this daemon speaks {PROTOCOL_VERSION})",
                r.version
            )),
            Ok(r) => handle(r.command, &speaker).await,
        };
        let mut out = serde_json::to_vec(&resp).unwrap_or_else(|e| {
            format!("{{\"version\":{PROTOCOL_VERSION},\"status\":\"error\",\"message\":\"{e}\"}}")
                .into_bytes()
        });
        out.push(b'\n');
        wr.write_all(&out).await?;
    }
}

use tokio::io::AsyncReadExt;

/// Executes one command.
pub async fn handle(cmd: Command, speaker: &Speaker) -> Response {
    let r: Result<Reply, String> = match cmd {
        Command::Status => speaker
            .status()
            .await
            .map(Reply::Status)
            .map_err(|e| e.to_string()),
        Command::ShowPeers => speaker
            .peers()
            .await
            .map(|v| Reply::Peers {
                peers: v.iter().map(|p| p.summary()).collect(),
            })
            .map_err(|e| e.to_string()),
        Command::ShowPeer { name } => speaker
            .peer(&name)
            .await
            .map(|d| Reply::Peer(Box::new(d)))
            .map_err(|e| e.to_string()),
        Command::ShowRoutes {
            prefix,
            peer,
            table,
            family,
        } => speaker
            .routes(RouteQuery {
                prefix,
                peer,
                table,
                family,
            })
            .await
            .map(|routes| Reply::Routes { routes })
            .map_err(|e| e.to_string()),
        Command::ShowRoute { address } => speaker
            .lookup(address)
            .await
            .map(|routes| Reply::Routes { routes })
            .map_err(|e| e.to_string()),
        Command::Reload => match speaker.reload().await {
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
        Command::Peer { name, action } => speaker
            .peer_action(&name, action)
            .await
            .map(|()| Reply::Done {
                message: format!("peer {name}: {action:?} done").to_lowercase(),
            })
            .map_err(|e| e.to_string()),
    };
    match r {
        Ok(r) => Response::ok(r),
        Err(e) => Response::error(e),
    }
}
