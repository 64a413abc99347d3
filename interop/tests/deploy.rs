//! The deployment files under `deploy/` are well formed: the runit run scripts pass
//! `shellcheck` and are executable, the systemd units pass `systemd-analyze verify`
//! (with its binaries pointed at stand-ins), and every source the Dockerfile copies from
//! the build context exists. No image is built: CI has no container engine.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use interop::{prerequisites, require_binary};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    let bin = require_binary(program).expect("checked by prerequisites");
    std::process::Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

#[test]
fn calico_node_run_scripts_pass_shellcheck() {
    if !prerequisites("deploy_run_scripts", &["shellcheck"]) {
        return;
    }
    let dir = deploy().join("calico-node/etc/service/available");
    for service in ["bird", "bird6", "confd"] {
        let script = dir.join(service).join("run");
        let mode = std::fs::metadata(&script)
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()))
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "{} is not executable", script.display());
        let out = run("shellcheck", &[&script.to_string_lossy()]);
        assert!(
            out.status.success(),
            "{}:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(dir.join("confd/down").exists(), "confd must start down");
    let bird = std::fs::read_to_string(dir.join("bird/run")).unwrap_or_default();
    assert!(
        bird.contains("exec -a bird "),
        "bgpd runs under the name bird"
    );
}

#[test]
fn systemd_units_verify() {
    if !prerequisites("deploy_systemd_unit", &["systemd-analyze"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for bin in ["bgpd", "bgpctl"] {
        let stand_in = tmp.path().join(bin);
        std::fs::copy("/bin/true", &stand_in).unwrap_or_else(|e| panic!("{e}"));
    }
    let dir = format!("{}/", tmp.path().display());
    for name in ["bgpd-calico.service", "bgpd.service"] {
        let unit = deploy().join("systemd").join(name);
        let text = std::fs::read_to_string(&unit).unwrap_or_else(|e| panic!("{e}"));
        // Type=notify (READY=1 from bgpd itself) and a reload by SIGHUP.
        assert!(text.contains("\nType=notify\n"), "{name}: Type=notify");
        assert!(
            text.contains("\nExecReload=/bin/kill -HUP $MAINPID\n"),
            "{name}: reload by SIGHUP"
        );
        let copy = tmp.path().join(name);
        let text = text
            .replace("/usr/local/bin/", &dir)
            .replace("/usr/bin/bgpd", &format!("{dir}bgpd"));
        std::fs::write(&copy, text).unwrap_or_else(|e| panic!("{e}"));
        // man:bgpd(8) is only there once the package is installed: --man=no.
        let out = run(
            "systemd-analyze",
            &["verify", "--man=no", &copy.to_string_lossy()],
        );
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{name}: {said}"
        );
    }
}

#[test]
fn dockerfile_copies_what_exists() {
    let root = deploy().join("..");
    let text = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap_or_default();
    let mut stages = Vec::new();
    let mut copied = 0;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first() {
            Some(&"FROM") => {
                if let Some(i) = words.iter().position(|w| w.eq_ignore_ascii_case("AS")) {
                    stages.push(words.get(i + 1).copied().unwrap_or_default().to_owned());
                }
            }
            Some(&"COPY") => {
                let args: Vec<&str> = words[1..]
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with("--chmod"))
                    .collect();
                if let Some(from) = args.first().and_then(|a| a.strip_prefix("--from=")) {
                    assert!(
                        stages.iter().any(|s| s == from),
                        "COPY from unknown stage {from}"
                    );
                    continue;
                }
                let (Some((_dest, sources)), true) = (args.split_last(), args.len() >= 2) else {
                    panic!("COPY without source and destination: {line}");
                };
                for s in sources.iter().filter(|s| **s != ".") {
                    assert!(
                        root.join(s).exists(),
                        "the Dockerfile copies {s}, which is missing"
                    );
                    copied += 1;
                }
            }
            _ => {}
        }
    }
    assert_eq!(stages, ["build", "runtime", "calico-node"]);
    assert!(copied >= 1, "the service scripts are copied");
}
