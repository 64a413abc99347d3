//! The per-test context: prerequisites (root, binaries), skip-or-fail policy,
//! a private temporary directory for configs/sockets/logs, and log dumping on
//! failure.
//!
//! Policy: interop tests need root (they create network namespaces) and real
//! daemons. Outside CI a test whose prerequisites are missing prints
//! `SKIPPED (needs root): NAME` (or the missing binaries) straight to stderr,
//! bypassing the test harness's output capture, and passes. With `CI=true`
//! the same situation is a test failure: CI must never go green by skipping.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once};

use crate::error::{Error, Result};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A process-wide unique small number, used to make names unique.
pub(crate) fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Keeps `[a-z0-9]`, maps everything else to `-`, truncates to `max` chars.
pub(crate) fn sanitize(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    out.truncate(max);
    out
}

/// True when running under CI (`CI=true` or `CI=1`): skips become failures.
pub fn in_ci() -> bool {
    matches!(
        std::env::var("CI")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Ok("true") | Ok("1") | Ok("yes")
    )
}

/// True when the effective user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Writes a line to the real stderr, not the test harness's capture buffer
/// (for results a test must show even when it passes, e.g. a loss count).
pub fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Checks root and `binaries`; `Ok(true)` to run, `Ok(false)` to skip (message
/// printed), panics in CI when something is missing.
pub fn prerequisites<B: AsRef<str>>(name: &str, binaries: &[B]) -> bool {
    let mut missing_reason = None;
    if !is_root() {
        missing_reason = Some("needs root".to_string());
    } else {
        let missing: Vec<&str> = binaries
            .iter()
            .map(AsRef::as_ref)
            .filter(|b| crate::cmd::find_binary(b).is_none())
            .collect();
        if !missing.is_empty() {
            missing_reason = Some(format!("missing binaries: {}", missing.join(", ")));
        }
    }
    match missing_reason {
        None => true,
        Some(reason) if in_ci() => {
            panic!("{name}: cannot run in CI ({reason}); CI=true turns skips into failures")
        }
        Some(reason) => {
            say(&format!("SKIPPED ({reason}): {name}"));
            false
        }
    }
}

/// Warns (once per test binary) if a routing daemon runs in the root network
/// namespace. It cannot disturb tests (they live in their own namespaces) and
/// the harness never kills processes it did not start, but a stray packaged
/// service usually means an `apt-get install` started it.
fn warn_about_root_namespace_daemons() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(own) = std::fs::read_link("/proc/self/ns/net") else {
            return;
        };
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        let names = [
            "bird", "bird6", "gobgpd", "bgpd", "zebra", "watchfrr", "exabgp",
        ];
        for e in entries.flatten() {
            let pid = e.file_name();
            let Some(pid) = pid
                .to_str()
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let comm = comm.trim();
            if !names.contains(&comm) {
                continue;
            }
            if std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .ok()
                .as_ref()
                == Some(&own)
            {
                say(&format!(
                    "WARNING: `{comm}` (pid {pid}) runs in the root network namespace; \
                     not started by this harness, left alone"
                ));
            }
        }
    });
}

/// One running interop test: its name, private directory and registered logs.
#[derive(Debug)]
pub struct Test {
    name: String,
    tag: String,
    dir: PathBuf,
    logs: Mutex<Vec<(String, PathBuf)>>,
}

impl Test {
    fn create(name: &str) -> Result<Test> {
        let tag = format!("{}-{}", sanitize(name, 20), next_id());
        let dir = std::env::temp_dir().join(format!("interop-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
        Ok(Test {
            name: name.to_string(),
            tag,
            dir,
            logs: Mutex::new(Vec::new()),
        })
    }

    /// The test's name as given to [`run_test`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A short string unique within this test binary, for resource names.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The private directory (removed on success, kept on failure).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates (if needed) and returns a sub-directory of [`Test::dir`].
    pub fn subdir(&self, name: &str) -> Result<PathBuf> {
        let p = self.dir.join(name);
        std::fs::create_dir_all(&p).map_err(|e| Error::io("creating", &p, e))?;
        Ok(p)
    }

    /// Writes `contents` to `dir/relative` and returns the full path.
    pub fn write(&self, relative: &str, contents: &str) -> Result<PathBuf> {
        let p = self.dir.join(relative);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
        }
        std::fs::write(&p, contents).map_err(|e| Error::io("writing", &p, e))?;
        Ok(p)
    }

    /// Writes `label`'s configuration `file` (in the `label` sub-directory)
    /// and registers it to be printed if the test fails.
    pub fn write_config(&self, label: &str, file: &str, contents: &str) -> Result<PathBuf> {
        let path = self.write(&format!("{label}/{file}"), contents)?;
        self.register_log(&format!("{label} config"), &path);
        Ok(path)
    }

    /// Registers a file to be printed if the test fails (daemon logs, configs).
    pub fn register_log(&self, label: &str, path: &Path) {
        if let Ok(mut logs) = self.logs.lock() {
            logs.push((label.to_string(), path.to_path_buf()));
        }
    }

    fn dump_logs(&self) {
        let logs = match self.logs.lock() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        };
        for (label, path) in logs {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| format!("<{e}>"));
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(200);
            eprintln!(
                "===== {label} ({}, last {} of {} lines) =====",
                path.display(),
                lines.len() - start,
                lines.len()
            );
            for l in lines.iter().skip(start) {
                eprintln!("{l}");
            }
        }
        eprintln!("===== test directory kept: {} =====", self.dir.display());
    }
}

/// Runs an interop test body with prerequisites checked, a private [`Test`]
/// context, and logs dumped on failure.
///
/// Resources created inside `body` (namespaces, processes) are dropped when the
/// body returns, so they are cleaned up before the verdict; their log files
/// stay in the test directory, which is kept on failure and removed on
/// success (kept too when `INTEROP_KEEP` is set). An `Err` from the body
/// fails the test with the error printed.
pub fn run_test<B: AsRef<str>>(name: &str, binaries: &[B], body: impl FnOnce(&Test) -> Result<()>) {
    if !prerequisites(name, binaries) {
        return;
    }
    warn_about_root_namespace_daemons();
    let test = match Test::create(name) {
        Ok(t) => t,
        Err(e) => panic!("{name}: cannot create test directory: {e}"),
    };
    run_in(test, body);
}

/// The part of [`run_test`] after the prerequisites: run, clean up or dump logs.
fn run_in(test: Test, body: impl FnOnce(&Test) -> Result<()>) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&test)));
    match outcome {
        Ok(Ok(())) if std::env::var_os("INTEROP_KEEP").is_some() => {
            say(&format!(
                "{}: passed; INTEROP_KEEP set, kept {}",
                test.name,
                test.dir.display()
            ));
        }
        Ok(Ok(())) => {
            let _ = std::fs::remove_dir_all(&test.dir);
        }
        Ok(Err(e)) => {
            test.dump_logs();
            panic!("{} failed: {e}", test.name);
        }
        Err(panic) => {
            test.dump_logs();
            std::panic::resume_unwind(panic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_safe_chars_and_truncates() {
        assert_eq!(sanitize("Bird<->GoBGP eBGP", 10), "bird---gob");
        assert_eq!(sanitize("ab", 10), "ab");
    }

    #[test]
    fn test_dir_is_created_written_and_removed_on_success() {
        let t = Test::create("context-self-test").unwrap();
        let dir = t.dir().to_path_buf();
        run_in(t, |t| {
            let p = t.write("a/b.txt", "x")?;
            assert_eq!(std::fs::read_to_string(&p).unwrap(), "x");
            Ok(())
        });
        assert!(!dir.exists(), "directory removed after success");
    }

    #[test]
    fn failing_body_panics_with_error_and_keeps_dir() {
        let t = Test::create("context-fail-test").unwrap();
        let dir = t.dir().to_path_buf();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_in(t, |_| Err(Error::Check("boom".into())))
        }));
        let msg = r.unwrap_err();
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("boom"), "{msg}");
        assert!(dir.exists(), "directory kept after failure");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
