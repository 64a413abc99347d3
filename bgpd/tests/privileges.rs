//! Least privilege: bgpd keeps only CAP_NET_ADMIN and CAP_NET_BIND_SERVICE (effective,
//! permitted and bounding sets, in every thread), nothing inheritable or ambient, with
//! no_new_privs set; with `[global] user` it runs as that user, its socket directory
//! created for it (0750).
//!
//! Needs root (prints SKIPPED without it, fails under CI=true). 127.0.79.x loopback.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use bgp_control::Command as Ctl;
use support::Daemon;

/// CAP_NET_BIND_SERVICE (10) and CAP_NET_ADMIN (12).
const KEPT: u64 = (1 << 10) | (1 << 12);

/// The fields of /proc/PID[/task/TID]/status as (name, value).
fn status(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .expect("status")
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn field<'a>(s: &'a [(String, String)], name: &str) -> &'a str {
    s.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in status"))
}

fn caps(s: &[(String, String)], name: &str) -> u64 {
    u64::from_str_radix(field(s, name), 16).expect("hex capability set")
}

/// Every thread of `pid` holds exactly the kept capabilities.
fn check_threads(pid: u32) {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
    let mut n = 0;
    for t in tasks.flatten() {
        let s = status(&t.path().join("status"));
        assert_eq!(
            caps(&s, "CapEff"),
            KEPT,
            "effective, thread {:?}",
            t.file_name()
        );
        assert_eq!(
            caps(&s, "CapPrm"),
            KEPT,
            "permitted, thread {:?}",
            t.file_name()
        );
        assert_eq!(
            caps(&s, "CapBnd"),
            KEPT,
            "bounding, thread {:?}",
            t.file_name()
        );
        assert_eq!(caps(&s, "CapInh"), 0);
        assert_eq!(caps(&s, "CapAmb"), 0);
        assert_eq!(field(&s, "NoNewPrivs"), "1");
        n += 1;
    }
    assert!(n > 1, "a multi-threaded daemon");
}

fn config(dir: &Path, host: u8, socket: &Path, extra_global: &str) -> String {
    format!(
        r#"[global]
asn = 64512
router_id = "10.79.0.{host}"
listen = ["127.0.79.{host}:11179"]
{extra_global}
[global.control]
socket = "{}"
[global.graceful_restart]
enabled = false
"#,
        socket.display()
    ) + &format!("# {}\n", dir.display())
}

#[test]
fn bgpd_keeps_only_the_capabilities_it_needs() {
    if !interop::prerequisites("bgpd_keeps_only_the_capabilities_it_needs", &[] as &[&str]) {
        return;
    }
    let dir = support::tempdir("bgpd-priv");
    let d = dir.path();
    let socket = d.join("a.sock");
    let a = Daemon::launch_at(d, "a", &config(d, 1, &socket, ""), &[], "info", socket);
    check_threads(a.pid().expect("running"));
    assert!(a.try_request(Ctl::Status).is_ok());
    assert!(a.log_text().contains("privileges dropped"));
}

#[test]
fn bgpd_runs_as_the_configured_user() {
    if !interop::prerequisites("bgpd_runs_as_the_configured_user", &[] as &[&str]) {
        return;
    }
    let dir = support::tempdir("bgpd-priv");
    let d = dir.path();
    // The unprivileged daemon must reach its socket directory.
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = d.join("run/bgpd/a.sock");
    let cfg = config(d, 2, &socket, "user = \"nobody\"\ngroup = \"nogroup\"");
    let a = Daemon::launch_at(d, "a", &cfg, &[], "info", socket.clone());
    let pid = a.pid().expect("running");
    let s = status(Path::new(&format!("/proc/{pid}/status")));
    let nobody = "65534\t65534\t65534\t65534";
    assert_eq!(field(&s, "Uid"), nobody);
    assert_eq!(field(&s, "Gid"), nobody);
    assert_eq!(field(&s, "Groups"), "65534");
    check_threads(pid);
    // The directory it could not have created itself: made before the switch, 0750.
    let dirm = std::fs::metadata(socket.parent().expect("dir")).expect("dir");
    assert_eq!(dirm.permissions().mode() & 0o777, 0o750);
    assert_eq!((dirm.uid(), dirm.gid()), (65534, 65534));
    let sockm = std::fs::symlink_metadata(&socket).expect("socket");
    assert_eq!(sockm.uid(), 65534);
    assert!(a.try_request(Ctl::Status).is_ok());
}

#[test]
fn a_password_file_owned_by_another_user_is_refused() {
    if !interop::prerequisites(
        "a_password_file_owned_by_another_user_is_refused",
        &[] as &[&str],
    ) {
        return;
    }
    let dir = support::tempdir("bgpd-priv");
    let d = dir.path();
    let socket = d.join("a.sock");
    let main = d.join("a.toml");
    std::fs::write(&main, config(d, 3, &socket, "include_dir = \"peers.d\"")).expect("config");
    std::fs::create_dir(d.join("peers.d")).expect("dir");
    let drop_in = d.join("peers.d/p.toml");
    std::fs::write(
        &drop_in,
        "[peers.p]\naddress = \"127.0.79.9\"\nremote_as = 64512\npassword = \"s3cret\"\n",
    )
    .expect("drop-in");
    std::fs::set_permissions(&drop_in, std::fs::Permissions::from_mode(0o600)).expect("mode");
    let check = || {
        std::process::Command::new(support::bgpd_bin())
            .arg("-c")
            .arg(&main)
            .arg("--check")
            .output()
            .expect("bgpd --check")
    };
    assert!(check().status.success(), "root's own private file is fine");
    std::os::unix::fs::chown(&drop_in, Some(65534), Some(65534)).expect("chown");
    let out = check();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("owned by uid 65534"), "{err}");
}
