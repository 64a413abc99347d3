//! Configuration watcher (confd-like): reloads when the configuration file or a file in
//! its drop-in directory changes (inotify through the `notify` crate), debounced so a
//! renderer writing many files triggers one reload. An invalid new configuration is
//! logged with file:line:column and the running configuration stays in force.
//!
//! Directories are watched rather than files, because renderers and editors replace files
//! by renaming a new one over them, which ends a watch on the old inode.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::speaker::Speaker;

/// Quiet period after the last change before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// A running watcher; dropping it stops watching.
pub struct ConfigWatcher {
    _watcher: notify::RecommendedWatcher,
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
                p.parent() == Some(d) && p.extension().is_some_and(|e| e == "toml")
            })
    })
}

/// Watches `file` and, if given, `include_dir`, calling [`Speaker::reload`] after changes.
pub fn watch(
    speaker: Speaker,
    file: &Path,
    include_dir: Option<&Path>,
) -> notify::Result<ConfigWatcher> {
    let file: PathBuf = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
    let dir = include_dir.map(|d| std::path::absolute(d).unwrap_or_else(|_| d.to_owned()));
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let (f2, d2) = (file.clone(), dir.clone());
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        match res {
            Ok(ev) if relevant(&ev, &f2, d2.as_deref()) => {
                // A full channel already means "reload pending".
                let _ = tx.try_send(());
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "config watcher"),
        }
    })?;
    if let Some(parent) = file.parent() {
        watcher.watch(parent, RecursiveMode::NonRecursive)?;
    }
    if let Some(d) = &dir {
        if d.is_dir() {
            watcher.watch(d, RecursiveMode::NonRecursive)?;
        } else {
            warn!(dir = %d.display(), "include_dir does not exist; not watched until restart");
        }
    }
    info!(file = %file.display(), "watching configuration");
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait until changes stop arriving.
            loop {
                match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            info!("configuration changed on disk: reloading");
            if let Err(e) = speaker.reload().await {
                warn!(error = %e, "new configuration refused; running configuration unchanged");
            }
        }
    });
    Ok(ConfigWatcher {
        _watcher: watcher,
        task,
    })
}
