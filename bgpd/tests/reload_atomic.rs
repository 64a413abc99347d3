//! A reload is all or nothing: a configuration that cannot be applied whole (here a new
//! listen address that cannot be bound) is refused, nothing of it is applied (the peer it
//! adds does not appear), and the same configuration is refused again on the next try
//! instead of being recorded as running. No root needed: 127.0.76.x.

mod support;

use bgp_control::{Command as Ctl, Outcome, Reply};
use support::{peer_toml, Daemon};

const PORT: u16 = 11179;

fn peer(name: &str, host: u8) -> String {
    peer_toml(
        name,
        &format!("127.0.76.{host}"),
        64512,
        PORT,
        Some("127.0.76.1"),
        "passive = true",
    )
}

fn config(dir: &std::path::Path, listen: &str) -> String {
    support::global_toml(dir, "a", 64512, "10.76.0.1", "127.0.76.1:11179", "").replace(
        "listen = [\"127.0.76.1:11179\"]",
        &format!("listen = [\"127.0.76.1:11179\"{listen}]"),
    )
}

fn names(a: &Daemon) -> Vec<String> {
    a.peers().into_iter().map(|p| p.name).collect()
}

#[test]
fn a_reload_that_cannot_be_applied_whole_changes_nothing() {
    let dir = support::tempdir("bgpd-reload");
    let d = dir.path();
    let a = Daemon::start(d, "a", &(config(d, "") + &peer("old", 2)));
    assert_eq!(names(&a), vec!["old"]);
    // 192.0.2.1 (TEST-NET-1) is on no interface here: the bind fails.
    let bad = config(d, ", \"192.0.2.1:11179\"") + &peer("old", 2) + &peer("new", 3);
    std::fs::write(&a.config, &bad).expect("config");
    for attempt in 0..2 {
        match a.try_request(Ctl::Reload).expect("control").outcome {
            Outcome::Error { message } => assert!(
                message.contains("192.0.2.1"),
                "attempt {attempt}: {message}"
            ),
            Outcome::Ok { result } => panic!("attempt {attempt}: reload accepted: {result:?}"),
        }
        assert_eq!(names(&a), vec!["old"], "attempt {attempt}: nothing applied");
    }
    let out = a.bgpctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "bgpctl reports the refusal");
    // Without the address the rest applies.
    let good = config(d, "") + &peer("old", 2) + &peer("new", 3);
    std::fs::write(&a.config, &good).expect("config");
    assert!(matches!(a.request(Ctl::Reload), Reply::Done { .. }));
    assert_eq!(names(&a), vec!["new", "old"]);
}
