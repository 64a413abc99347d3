//! Sockets opened from inside a network namespace: [`Netns::enter`] runs a
//! closure on a fresh thread moved into the namespace with `setns(2)`;
//! sockets created there stay in that namespace and can be used from any
//! thread afterwards. The scripted peer connects this way; so does anything
//! else a test runs over TCP in a namespace (a BMP client, a probe).

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::netns::Netns;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Netns {
    /// Runs `f` on a new thread inside this namespace and returns its result. `f` may
    /// borrow from the caller (a scoped thread): a test body can drive a client inside
    /// the namespace while using the harness objects it owns.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let path = format!("/run/netns/{}", self.name());
        let file = std::fs::File::open(&path).map_err(|e| Error::io("opening", &path, e))?;
        let joined = std::thread::scope(|scope| {
            scope
                .spawn(move || -> std::result::Result<T, std::io::Error> {
                    // SAFETY: setns on a valid namespace fd; it only changes this
                    // (freshly spawned, soon finished) thread's network namespace.
                    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    if rc != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(f())
                })
                .join()
        });
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::io("setns into", path, e)),
            Err(_) => Err(Error::Invalid(format!(
                "thread in {} panicked",
                self.name()
            ))),
        }
    }

    /// Opens a TCP connection from inside this namespace (10 s connect
    /// timeout, 30 s read/write timeouts).
    pub fn tcp_connect(&self, to: SocketAddr) -> Result<TcpStream> {
        let stream = connect(Some(self), None, to)?;
        let t = Some(Duration::from_secs(30));
        let _ = stream.set_read_timeout(t);
        let _ = stream.set_write_timeout(t);
        Ok(stream)
    }
}

/// Connects to `to`, from `from` when given, inside `ns` when given (10 s
/// timeout; no read or write timeout).
pub fn connect(ns: Option<&Netns>, from: Option<IpAddr>, to: SocketAddr) -> Result<TcpStream> {
    let open = move || -> std::io::Result<TcpStream> {
        let domain = if to.is_ipv4() {
            socket2::Domain::IPV4
        } else {
            socket2::Domain::IPV6
        };
        let s = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
        if let Some(ip) = from {
            s.bind(&SocketAddr::new(ip, 0).into())?;
        }
        s.connect_timeout(&to.into(), CONNECT_TIMEOUT)?;
        Ok(s.into())
    };
    let what = match ns {
        Some(ns) => format!("connect to {to} from {}", ns.name()),
        None => format!("connect to {to}"),
    };
    match ns {
        Some(ns) => ns.enter(open)?,
        None => open(),
    }
    .map_err(|source| Error::Spawn { cmd: what, source })
}

/// Waits up to `timeout` for one connection on `listener`.
pub fn accept(listener: &TcpListener, timeout: Duration) -> Result<TcpStream> {
    let io = |e| Error::io("accepting on", "TCP listener", e);
    listener.set_nonblocking(true).map_err(io)?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).map_err(io)?;
                return Ok(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(Error::Check("no connection to accept in time".into()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(io(e)),
        }
    }
}
