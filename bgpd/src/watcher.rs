//! Configuration watcher (confd-like): reloads when the configuration file or a file in
//! its drop-in directory changes (inotify through the `notify` crate), debounced so a
//! renderer writing many files triggers one reload. An invalid new configuration is
//! logged with file:line:column and the running configuration stays in force.
//!
//! Directories are watched rather than files, because renderers and editors replace files
//! by renaming a new one over them, which ends a watch on the old inode. A drop-in
//! directory that does not exist (yet) is waited for by watching its parent: when it is
//! created it is watched and the configuration reloaded; when it is removed, the watcher
//! falls back to its parent again. The directory follows `include_dir` across reloads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::handle::Daemon;

/// Quiet period after the last change before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// A running watcher; dropping it stops watching.
pub struct ConfigWatcher {
    task: JoinHandle<()>,
}

impl std::fmt::Debug for ConfigWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigWatcher").finish_non_exhaustive()
    }
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn relevant(ev: &notify::Event, file: &Path, dir: Option<&Path>) -> bool {
    use notify::EventKind;
    if matches!(ev.kind, EventKind::Access(_)) {
        return false;
    }
    ev.paths.iter().any(|p| {
        p == file
            || dir.is_some_and(|d| {
                p == d || (p.parent() == Some(d) && p.extension().is_some_and(|e| e == "toml"))
            })
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// What is watched for the drop-in directory.
#[derive(Debug, Default, PartialEq, Eq)]
enum DirWatch {
    /// No drop-in directory, or neither it nor its parent exists.
    #[default]
    None,
    /// The directory itself.
    Dir(PathBuf),
    /// Its parent, waiting for the directory to appear (`None` when the parent is the
    /// configuration file's directory, which is watched anyway).
    Parent(Option<PathBuf>),
}

/// The notify watcher and what it watches.
struct Watches {
    watcher: notify::RecommendedWatcher,
    /// The configuration file's directory (always watched).
    file_dir: Option<PathBuf>,
    dir: DirWatch,
}

impl Watches {
    fn unwatch_dir(&mut self) {
        match std::mem::take(&mut self.dir) {
            DirWatch::Dir(d) | DirWatch::Parent(Some(d)) => {
                // Fails when the directory is gone (the kernel dropped the watch): fine.
                let _ = self.watcher.unwatch(&d);
            }
            DirWatch::Parent(None) | DirWatch::None => {}
        }
    }

    /// Watches `dir` if it exists, else its parent. Returns true when the directory
    /// itself became watched (its files may be new to us: reload).
    fn ensure(&mut self, dir: Option<&Path>) -> bool {
        let Some(dir) = dir else {
            self.unwatch_dir();
            return false;
        };
        if dir.is_dir() {
            if self.dir == DirWatch::Dir(dir.to_owned()) {
                return false;
            }
            self.unwatch_dir();
            return match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    info!(dir = %dir.display(), "watching drop-in directory");
                    self.dir = DirWatch::Dir(dir.to_owned());
                    true
                }
                Err(e) => {
                    warn!(dir = %dir.display(), error = %e, "cannot watch drop-in directory");
                    false
                }
            };
        }
        let parent = dir.parent().map(Path::to_owned);
        let want = match &parent {
            Some(p) if self.file_dir.as_ref() == Some(p) => DirWatch::Parent(None),
            Some(p) => DirWatch::Parent(Some(p.clone())),
            None => DirWatch::None,
        };
        if self.dir == want {
            return false;
        }
        self.unwatch_dir();
        match &want {
            DirWatch::Parent(Some(p)) => {
                if let Err(e) = self.watcher.watch(p, RecursiveMode::NonRecursive) {
                    warn!(dir = %dir.display(), error = %e, "include_dir and its parent do not exist: not watched (SIGHUP reloads)");
                    return false;
                }
            }
            DirWatch::Parent(None) | DirWatch::None | DirWatch::Dir(_) => {}
        }
        info!(dir = %dir.display(), "include_dir does not exist: watching for it to be created");
        self.dir = want;
        false
    }
}

/// Watches `file` and, if given, `include_dir`, calling [`Daemon::reload`] after changes.
/// The drop-in directory is taken from the configuration in force after each reload.
pub fn watch(
    daemon: Daemon,
    file: &Path,
    include_dir: Option<&Path>,
) -> notify::Result<ConfigWatcher> {
    let file = absolute(file);
    let dir: Arc<Mutex<Option<PathBuf>>> = Arc::new(Mutex::new(include_dir.map(absolute)));
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let (f2, d2) = (file.clone(), dir.clone());
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        match res {
            Ok(ev) => {
                let d = d2.lock().map(|d| d.clone()).unwrap_or_default();
                if relevant(&ev, &f2, d.as_deref()) {
                    // A full channel already means "reload pending".
                    let _ = tx.try_send(());
                }
            }
            Err(e) => warn!(error = %e, "config watcher"),
        }
    })?;
    let mut w = Watches {
        watcher,
        file_dir: file.parent().map(Path::to_owned),
        dir: DirWatch::None,
    };
    if let Some(parent) = &w.file_dir {
        w.watcher.watch(parent, RecursiveMode::NonRecursive)?;
    }
    let current = dir.lock().map(|d| d.clone()).unwrap_or_default();
    w.ensure(current.as_deref());
    info!(file = %file.display(), "watching configuration");
    let mut updates = daemon.speaker.config_updates();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                r = rx.recv() => if r.is_none() { return },
                r = updates.changed() => {
                    if r.is_err() {
                        return;
                    }
                    // include_dir may have changed with the reload.
                    let new = updates.borrow_and_update().global.include_dir.as_deref().map(absolute);
                    if let Ok(mut d) = dir.lock() {
                        *d = new.clone();
                    }
                    if w.ensure(new.as_deref()) {
                        debug!("drop-in directory changed with the configuration: reloading");
                        reload(&daemon).await;
                    }
                    continue;
                }
            }
            // Debounce: wait until changes stop arriving.
            loop {
                match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let current = dir.lock().map(|d| d.clone()).unwrap_or_default();
            // The directory may have appeared or gone; its files are read by the reload.
            w.ensure(current.as_deref());
            info!("configuration changed on disk: reloading");
            reload(&daemon).await;
        }
    });
    Ok(ConfigWatcher { task })
}

async fn reload(daemon: &Daemon) {
    if let Err(e) = daemon.reload().await {
        warn!(error = %e, "new configuration refused; running configuration unchanged");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, EventKind};

    fn ev(p: &str) -> notify::Event {
        notify::Event::new(EventKind::Create(CreateKind::Any)).add_path(PathBuf::from(p))
    }

    #[test]
    fn relevant_paths() {
        let file = Path::new("/etc/bgpd/bgpd.toml");
        let dir = Some(Path::new("/etc/bgpd/bgpd.d"));
        assert!(relevant(&ev("/etc/bgpd/bgpd.toml"), file, dir));
        assert!(relevant(&ev("/etc/bgpd/bgpd.d/peer.toml"), file, dir));
        // The directory itself appearing or going.
        assert!(relevant(&ev("/etc/bgpd/bgpd.d"), file, dir));
        assert!(!relevant(&ev("/etc/bgpd/bgpd.d/peer.toml.swp"), file, dir));
        assert!(!relevant(&ev("/etc/bgpd/other.toml"), file, dir));
        assert!(!relevant(&ev("/etc/bgpd/bgpd.d"), file, None));
    }
}
