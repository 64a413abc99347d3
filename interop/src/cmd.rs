//! Running short helper commands (`ip`, `birdc`, `gobgp`, `vtysh`, `ping`) and
//! finding binaries. Long-running daemons go through [`crate::Process`] instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::{Error, Result};

/// Renders a command line for error messages.
pub(crate) fn render(program: &str, args: &[&str]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        if a.is_empty() || a.contains(char::is_whitespace) {
            s.push('\'');
            s.push_str(a);
            s.push('\'');
        } else {
            s.push_str(a);
        }
    }
    s
}

/// Runs `program args...` to completion and returns its output whatever the status.
pub fn output(program: &str, args: &[&str]) -> Result<Output> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            cmd: render(program, args),
            source,
        })
}

/// Runs `program args...`, fails unless it exits 0, returns its stdout as text.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    run_env(program, args, &[])
}

/// Like [`run`] with extra environment variables.
pub fn run_env(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            cmd: render(program, args),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command {
            cmd: render(program, args),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            stdout: {
                let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if s.is_empty() {
                    s
                } else {
                    format!(" | stdout: {s}")
                }
            },
        })
    }
}

/// Looks `name` up in `$PATH` plus the sbin directories (which a non-root
/// `$PATH` often lacks) and FRR's daemon directory.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = Path::new(name);
        return is_executable(p).then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = [
        "/usr/local/sbin",
        "/usr/sbin",
        "/sbin",
        "/usr/local/bin",
        "/usr/bin",
        "/bin",
        "/usr/lib/frr",
    ];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Like [`find_binary`] but an error naming the binary when it is missing.
pub fn require_binary(name: &str) -> Result<PathBuf> {
    find_binary(name).ok_or_else(|| Error::Invalid(format!("binary `{name}` not found")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_quotes_arguments_with_spaces() {
        assert_eq!(
            render("birdc", &["-s", "/x", "show route"]),
            "birdc -s /x 'show route'"
        );
    }

    #[test]
    fn run_reports_failure_with_command_line() {
        let err = run("sh", &["-c", "echo oops >&2; exit 3"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("oops"), "{text}");
    }

    #[test]
    fn run_returns_stdout() {
        assert_eq!(run("sh", &["-c", "echo hi"]).unwrap(), "hi\n");
    }

    #[test]
    fn find_binary_finds_sh_and_not_nonsense() {
        assert!(find_binary("sh").is_some());
        assert!(find_binary("definitely-not-a-binary-xyz").is_none());
    }
}
