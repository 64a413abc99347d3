//! `bgpd --check`: every error of a configuration (main file and drop-ins), each as
//! file:line:column: reason, and warnings (exit 0, on stderr) about configurations that
//! run but do nothing: eBGP peers without policies (RFC 8212), kernel-route policies
//! without a `[kernel]` section. The shipped examples check clean, without warnings.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::bgpd_bin;

fn check(path: &Path) -> Output {
    Command::new(bgpd_bin())
        .arg("-c")
        .arg(path)
        .arg("--check")
        .output()
        .expect("run bgpd --check")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_error_is_reported_with_its_line() {
    let dir = support::tempdir("bgpd-check");
    let d = dir.path();
    std::fs::create_dir(d.join("bgpd.d")).expect("drop-in dir");
    // Main file: a duplicated listen address (line 5), a peer with an unknown policy
    // (line 10) and a hold time of 2 (line 11), an originated prefix with host bits
    // (line 14).
    let main = "[global]\n\
                asn = 64512\n\
                router_id = \"10.0.0.1\"\n\
                include_dir = \"bgpd.d\"\n\
                listen = [\"127.0.0.1:1790\", \"127.0.0.1:1790\"]\n\
                [policies.all]\n\
                default = \"accept\"\n\
                [peers.a]\n\
                address = \"10.0.0.2\"\n\
                import = [\"nope\"]\n\
                hold_time = 2\n\
                remote_as = 64512\n\
                [[originate]]\n\
                prefix = \"10.1.0.1/24\"\n";
    std::fs::write(d.join("bgpd.toml"), main).expect("main");
    // A drop-in: the same policy defined again (line 1) and a peer without remote_as
    // (line 3); another drop-in that does not parse (line 2).
    std::fs::write(
        d.join("bgpd.d/10-peers.toml"),
        "[policies.all]\ndefault = \"reject\"\n[peers.b]\naddress = \"10.0.0.3\"\n",
    )
    .expect("drop-in");
    std::fs::write(d.join("bgpd.d/20-broken.toml"), "[peers.c]\naddress = \n").expect("drop-in");
    let out = check(&d.join("bgpd.toml"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    for (file, line, reason) in [
        (
            "bgpd.toml",
            5,
            "listen address 127.0.0.1:1790 is given twice",
        ),
        ("bgpd.toml", 10, "unknown policy \"nope\""),
        ("bgpd.toml", 11, "hold_time 2 is invalid"),
        ("bgpd.toml", 14, "host bits set"),
        ("10-peers.toml", 1, "policy \"all\" is defined twice"),
        ("10-peers.toml", 3, "peer \"b\" has no remote_as"),
        ("20-broken.toml", 2, ""),
    ] {
        let at = format!("{file}:{line}:");
        assert!(
            err.lines().any(|l| l.contains(&at) && l.contains(reason)),
            "no {at} {reason:?} in:\n{err}"
        );
    }
    assert!(err.contains("7 errors"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout for an invalid file"
    );
}

#[test]
fn configurations_that_do_nothing_are_warned_about() {
    let dir = support::tempdir("bgpd-check");
    let path = dir.path().join("w.toml");
    // An eBGP peer without policies, and Calico's export of kernel routes without [kernel].
    std::fs::write(
        &path,
        "[global]\nasn = 64512\nrouter_id = \"10.0.0.1\"\n\
         [peers.upstream]\naddress = \"10.0.0.2\"\nremote_as = 65000\n\
         [policies.calico-export]\n\
         [[policies.calico-export.rules]]\nname = \"borrowed\"\n\
         match = { source = [\"kernel\"] }\naction = \"accept\"\n",
    )
    .expect("config");
    let out = check(&path);
    assert_eq!(out.status.code(), Some(0), "warnings do not fail the check");
    let err = stderr(&out);
    assert!(
        err.contains("warning: peer \"upstream\" is eBGP and has no import policy: every route it sends is rejected (RFC 8212)"),
        "{err}"
    );
    assert!(
        err.contains("warning: peer \"upstream\" is eBGP and has no export policy: nothing is announced to it (RFC 8212)"),
        "{err}"
    );
    assert!(
        err.contains("policy \"calico-export\" (rule \"borrowed\") matches kernel routes, but there is no [kernel] section"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK (1 peers"));
}

#[test]
fn shipped_examples_check_clean() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = 0;
    let quickstart = std::fs::read_dir(examples.join("quickstart")).expect("quickstart");
    for entry in std::fs::read_dir(&examples)
        .expect("examples")
        .chain(quickstart)
    {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let out = check(&path);
        assert_eq!(out.status.code(), Some(0), "{}: {out:?}", path.display());
        assert_eq!(stderr(&out), "", "{}: no warning", path.display());
        seen += 1;
    }
    assert!(seen >= 5, "the examples were found");
}
