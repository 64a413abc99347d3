//! Creating a control socket so that only those meant to use it can, with no help from
//! anyone who can write to its directory.
//!
//! - A missing directory is created mode 0750 (owned by the configured group when there
//!   is one), not 0755: the socket's own mode is then not the only guard.
//! - A socket file left by a daemon that is gone is replaced; a live one, or anything that
//!   is not a socket (a symlink planted there included), is refused.
//! - The mode and group are applied to the socket we bound without following a symlink:
//!   the path is opened with `O_PATH | O_NOFOLLOW` and must be a socket owned by us, and
//!   the change is made through that descriptor. A plain `chmod(path)` would follow a
//!   symlink swapped in after the bind and open up whatever it points to.
//!
//! Group names are resolved with `getgrnam_r` when the socket is bound, so a reload picks
//! up a group created meanwhile.
//!
//! A socket goes from [`Bound`] (created, not served yet: bgpd binds its sockets before the
//! speaker starts, so one that cannot be opened fails the start before any session) to
//! [`Serving`] (its accept loop running); either removes its file when dropped.

use std::ffi::CString;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::path::{Path, PathBuf};

use bgp_speaker::config::{ControlConfig, ControlLimits};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tracing::warn;

use super::limits;
use crate::accounts;

/// A socket bound at its path, its mode and group applied, not served yet.
#[derive(Debug)]
pub struct Bound {
    path: PathBuf,
    /// Taken by [`Bound::serve`]; still here, the file is ours to remove.
    listener: Option<UnixListener>,
}

impl Bound {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Binds `path` as the module docs describe and applies `access`.
    pub fn new(path: &Path, access: &Access) -> io::Result<Bound> {
        Ok(Bound {
            path: path.to_owned(),
            listener: Some(bind(path, access)?),
        })
    }

    /// Accepts connections within `limits` and runs `serve` for each (see
    /// `limits::accept_loop`; `what` names the socket in logs, `refusal` is the line a
    /// connection over the limit gets).
    pub fn serve<F, Fut>(
        mut self,
        limits: ControlLimits,
        what: &'static str,
        refusal: &'static [u8],
        serve: F,
    ) -> Serving
    where
        F: Fn(UnixStream) -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        let path = std::mem::take(&mut self.path);
        let task = self
            .listener
            .take()
            .map(|l| limits::accept_loop(l, limits, what, refusal, serve));
        Serving { path, task }
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        if self.listener.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A socket being served: aborting its accept loop and removing its file when dropped.
#[derive(Debug)]
pub struct Serving {
    path: PathBuf,
    task: Option<JoinHandle<()>>,
}

impl Serving {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Permission bits and group of a control socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// Permission bits of the socket file.
    pub mode: u32,
    /// Group of the socket file (and of a directory we create); `None`: ours.
    pub group: Option<String>,
}

impl Access {
    /// Mode and group of the control socket.
    pub fn control(config: &ControlConfig) -> Access {
        Access {
            mode: config.mode,
            group: config.group.clone(),
        }
    }

    /// Mode and group of the BIRD-compatible sockets.
    pub fn bird(config: &ControlConfig) -> Access {
        Access {
            mode: config.bird.mode,
            group: config.group.clone(),
        }
    }
}

/// Prepares the directory of a socket that will be bound after bgpd gave up root
/// (`[global] user`): a missing one is created 0750 and given to `uid` and `gid`, so the
/// daemon can create and replace its socket there. An existing directory is left alone.
pub fn prepare_dir(
    socket: &Path,
    uid: Option<libc::uid_t>,
    gid: Option<libc::gid_t>,
) -> io::Result<()> {
    let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    create_dir(dir, uid, gid)
}

/// Creates the socket directory `dir` 0750, owned by `uid`/`gid` where given; missing
/// directories above it are created as `mkdir -p` would (0755 under the usual umask), so
/// the socket's users can reach it.
fn create_dir(dir: &Path, uid: Option<libc::uid_t>, gid: Option<libc::gid_t>) -> io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::DirBuilder::new().mode(0o750).create(dir)?;
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    let fd = open_nofollow(dir)?;
    chown_fd(&fd, uid, gid)
}

/// Binds a Unix socket at `path` as described in the module docs and applies `access`.
fn bind(path: &Path, access: &Access) -> io::Result<UnixListener> {
    let gid = access
        .group
        .as_deref()
        .map(accounts::group_id)
        .transpose()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            create_dir(dir, None, gid)?;
        } else if let Ok(m) = std::fs::metadata(dir) {
            use std::os::unix::fs::MetadataExt;
            // World-writable without the sticky bit: anyone could replace the socket.
            if m.mode() & 0o1002 == 0o002 {
                warn!(dir = %dir.display(), "the control socket's directory is writable by everyone");
            }
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            // A live daemon answers a connect; a stale file does not.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by another running daemon", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path)?;
    if let Err(e) = apply(path, access.mode, gid) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(listener)
}

/// Applies `mode` and group `gid` to the socket file at `path`, which must be a socket
/// owned by us (never following a symlink).
pub(crate) fn apply(path: &Path, mode: u32, gid: Option<libc::gid_t>) -> io::Result<()> {
    let fd = open_nofollow(path)?;
    // SAFETY: an all-zero `stat` is a valid value; fstat writes into it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is an open descriptor, `st` a live local.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK || st.st_uid != euid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is no longer the socket we bound (replaced by someone else?)",
                path.display()
            ),
        ));
    }
    if gid.is_some() {
        chown_fd(&fd, None, gid)?;
    }
    // chmod through the descriptor: /proc/self/fd/N names the socket inode itself (what
    // glibc's fchmodat(AT_SYMLINK_NOFOLLOW) does); an O_PATH descriptor has no fchmod.
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    std::fs::set_permissions(
        &proc_path,
        std::os::unix::fs::PermissionsExt::from_mode(mode),
    )
}

/// Changes the mode and group of an existing socket (a reload changed them).
pub(crate) fn change(path: &Path, access: &Access) -> io::Result<()> {
    let gid = access
        .group
        .as_deref()
        .map(accounts::group_id)
        .transpose()?;
    apply(path, access.mode, gid)
}

fn open_nofollow(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Changes the owner and group of what `fd` refers to (`None` keeps that value).
fn chown_fd(fd: &OwnedFd, uid: Option<libc::uid_t>, gid: Option<libc::gid_t>) -> io::Result<()> {
    let empty = c"";
    // SAFETY: AT_EMPTY_PATH with an empty path changes the file `fd` refers to (an O_PATH
    // descriptor is allowed since Linux 2.6.39); -1 leaves a value unchanged.
    let rc = unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            empty.as_ptr(),
            uid.unwrap_or(libc::uid_t::MAX),
            gid.unwrap_or(libc::gid_t::MAX),
            libc::AT_EMPTY_PATH,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn access(mode: u32) -> Access {
        Access { mode, group: None }
    }

    #[tokio::test]
    async fn creates_the_directory_0750_and_applies_the_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run/bgpd/ctl.sock");
        let _l = bind(&path, &access(0o600)).expect("bind");
        let d = std::fs::metadata(dir.path().join("run/bgpd")).expect("dir");
        assert_eq!(d.permissions().mode() & 0o777, 0o750);
        // Directories above it stay reachable.
        let up = std::fs::metadata(dir.path().join("run")).expect("dir");
        assert_eq!(up.permissions().mode() & 0o755, 0o755);
        let m = std::fs::symlink_metadata(&path).expect("socket");
        assert!(m.file_type().is_socket());
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        change(&path, &access(0o660)).expect("change");
        let m = std::fs::symlink_metadata(&path).expect("socket");
        assert_eq!(m.mode() & 0o777, 0o660);
    }

    #[tokio::test]
    async fn a_symlink_is_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("precious");
        std::fs::write(&target, "secret").expect("target");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).expect("mode");
        let path = dir.path().join("ctl.sock");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        // Planted before the bind: refused, the target untouched.
        assert!(bind(&path, &access(0o666)).is_err());
        // Swapped in after the bind, before the mode is applied: refused too.
        assert!(apply(&path, 0o666, None).is_err());
        let t = std::fs::metadata(&target).expect("target");
        assert_eq!(t.permissions().mode() & 0o777, 0o600);
    }
}
