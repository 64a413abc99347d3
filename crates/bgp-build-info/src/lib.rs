//! The git revision a binary was built from, for `--version` (bgpd: also the
//! `bgpd_build_info` metric): `git rev-parse --short=12 HEAD`, with `-dirty` when the work
//! tree has changes. Outside a git tree (a source tarball, a crate download) or without
//! git, it is "unknown"; `BGPD_GIT_REVISION` in the build environment overrides both
//! (packagers). A build dependency of bgpd and bgpctl, called from their build.rs:
//!
//! ```no_run
//! // In build.rs's main; the binary then reads env!("BGPD_GIT_REVISION").
//! bgp_build_info::emit_git_revision();
//! ```

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    Some(s.trim().to_owned())
}

/// Sets `BGPD_GIT_REVISION` for the crate being built (call it from a build script).
pub fn emit_git_revision() {
    println!("cargo:rerun-if-env-changed=BGPD_GIT_REVISION");
    let revision = std::env::var("BGPD_GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let rev = git(&["rev-parse", "--short=12", "HEAD"])?;
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            Some(if dirty { format!("{rev}-dirty") } else { rev })
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=BGPD_GIT_REVISION={revision}");
    // Rebuild when HEAD moves (a commit, a checkout) or the index changes; --git-path
    // finds each file in a linked work tree too.
    let mut watched = vec!["HEAD".to_owned(), "index".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for f in watched {
        // A packed ref has no file of its own (a missing file would rerun every build).
        let path = git(&["rev-parse", "--path-format=absolute", "--git-path", &f]);
        if let Some(path) = path.filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
