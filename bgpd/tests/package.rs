//! The Debian package: scripts/build-deb.sh builds it (from the test build's binaries,
//! so the test needs no release build), `dpkg-deb -x` installs it into a temporary root,
//! and the installed binaries run: `bgpd --version` names the git revision, `bgpd
//! --check` accepts the installed examples, the man pages and completions are there and
//! the package's metadata is what dpkg expects.
//!
//! Needs dpkg-deb; without it the test prints SKIPPED, and fails when `CI=true`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(program: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn debian_package_installs_and_runs() {
    if !interop::prerequisites("debian_package", &["dpkg-deb", "dpkg"]) {
        return;
    }
    let bin_dir = support::bgpctl_bin()
        .parent()
        .map(Path::to_path_buf)
        .expect("the binaries' directory");
    let tmp = support::tempdir("bgpd-deb");
    let out_dir = tmp.path().join("out");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-deb.sh");
    let (ok, said) = run(
        &script,
        &[
            "--bin-dir",
            &bin_dir.to_string_lossy(),
            "--out",
            &out_dir.to_string_lossy(),
            "--fast",
        ],
    );
    assert!(ok, "build-deb.sh: {said}");
    let deb = PathBuf::from(said.trim());
    assert!(
        deb.file_name().is_some_and(|n| n
            .to_string_lossy()
            .starts_with(&format!("bgpd_{}_", env!("CARGO_PKG_VERSION")))),
        "{said}"
    );
    let dpkg_deb = Path::new("dpkg-deb");
    let (ok, fields) = run(
        dpkg_deb,
        &[
            "-f",
            &deb.to_string_lossy(),
            "Package",
            "Version",
            "Depends",
        ],
    );
    assert!(ok, "{fields}");
    assert!(fields.contains("Package: bgpd"), "{fields}");
    assert!(
        fields.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))),
        "{fields}"
    );

    let root = tmp.path().join("root");
    let (ok, said) = run(
        dpkg_deb,
        &["-x", &deb.to_string_lossy(), &root.to_string_lossy()],
    );
    assert!(ok, "dpkg-deb -x: {said}");
    for f in [
        "usr/bin/bgpd",
        "usr/bin/bgpctl",
        "lib/systemd/system/bgpd.service",
        "lib/systemd/system/bgpd-calico.service",
        "usr/share/man/man8/bgpd.8.gz",
        "usr/share/man/man8/bgpctl.8.gz",
        "usr/share/bash-completion/completions/bgpd",
        "usr/share/bash-completion/completions/bgpctl",
        "usr/share/zsh/vendor-completions/_bgpd",
        "usr/share/fish/vendor_completions.d/bgpctl.fish",
    ] {
        assert!(root.join(f).is_file(), "{f} installed");
    }
    let unit =
        std::fs::read_to_string(root.join("lib/systemd/system/bgpd-calico.service")).expect("unit");
    assert!(
        !unit.contains("/usr/local/"),
        "the packaged unit runs /usr/bin/bgpd"
    );

    let bgpd = root.join("usr/bin/bgpd");
    let (ok, version) = run(&bgpd, &["--version"]);
    assert!(ok, "{version}");
    // "bgpd 0.1.0 (REVISION)": the revision of this tree, or "unknown" outside git.
    let revision = version
        .trim()
        .strip_prefix(&format!("bgpd {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("version line: {version}"));
    assert!(!revision.is_empty(), "{version}");
    let examples = root.join("usr/share/doc/bgpd/examples");
    for example in ["calico-node-mesh.toml", "route-reflector.toml"] {
        let (ok, said) = run(
            &bgpd,
            &["--check", "-c", &examples.join(example).to_string_lossy()],
        );
        assert!(ok && said.contains(": OK ("), "{example}: {said}");
    }
    let (ok, said) = run(&root.join("usr/bin/bgpctl"), &["--version"]);
    assert!(ok && said.starts_with("bgpctl "), "{said}");
}
