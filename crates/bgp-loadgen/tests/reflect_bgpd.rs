//! The load generator against a real bgpd route reflector on loopback: 10 clients of
//! 100 routes each; every client must end up with the other 900 routes, none of its own
//! and nothing outside the plan.
//!
//! bgpd is found in the workspace's target directory (or `BGPD_BIN`); the test starts it
//! on a free port, its control socket in a temporary directory, and kills it by PID when
//! it ends.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use bgp_loadgen::client::ClientSettings;
use bgp_loadgen::dut_config::{bgpd_config, Reflector};
use bgp_loadgen::plan::Plan;

/// Generous: bgpd on a busy shared machine. Nothing asserts on elapsed time.
const DEADLINE: Duration = Duration::from_secs(60);

/// The workspace's bgpd: `$BGPD_BIN`, else `target/debug/bgpd` then `target/release/bgpd`
/// (honouring `CARGO_TARGET_DIR`), as the interop harness finds it; `cargo build
/// --workspace` (which `scripts/test.sh` runs first) builds it. Missing is a failure.
fn bgpd_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BGPD_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    ["debug", "release"]
        .iter()
        .map(|profile| target.join(profile).join("bgpd"))
        .find(|p| p.is_file())
        .expect("bgpd not built: cargo build -p bgpd (or set BGPD_BIN)")
}

/// A bgpd we started; killed (by PID) on drop.
struct Bgpd(Child);

impl Drop for Bgpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn wait_listening(addr: SocketAddr, bgpd: &mut Bgpd, log: &Path) {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = bgpd.0.try_wait() {
            panic!(
                "bgpd exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(start.elapsed() < DEADLINE, "bgpd never listened on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ten_clients_each_receive_every_other_clients_routes_from_bgpd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = Plan::new(10, 100, 24, Ipv4Addr::new(10, 0, 0, 0)).expect("plan");
    let listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let socket = dir.path().join("bgpd.sock");
    let config = dir.path().join("bgpd.toml");
    let text = bgpd_config(&Reflector {
        plan,
        listen,
        asn: 64512,
        hold_time: 240,
        control_socket: &socket,
    });
    std::fs::write(&config, text).expect("writing bgpd.toml");
    let log = dir.path().join("bgpd.log");
    let child = Command::new(bgpd_binary())
        .arg("-c")
        .arg(&config)
        .env("BGPD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("bgpd.log"))
        .spawn()
        .expect("starting bgpd");
    let mut bgpd = Bgpd(child);
    wait_listening(listen, &mut bgpd, &log);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let settings = ClientSettings {
        plan,
        dut: listen,
        asn: 64512,
        hold_time: 240,
        connect_slots: Arc::new(Semaphore::new(8)),
    };
    let report = runtime
        .block_on(bgp_loadgen::run::run(settings, DEADLINE, Some(bgpd.0.id())))
        .unwrap_or_else(|e| {
            panic!(
                "{e}\nbgpd log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });

    assert_eq!(report.clients, 10);
    assert_eq!(report.expected_per_client, 900);
    assert_eq!(report.counts.established, 10);
    assert_eq!(report.counts.complete, 10);
    assert_eq!(report.counts.min_held, 900);
    assert!(report.counts.announced >= 10 * 900, "{:?}", report.counts);
    assert_eq!(report.counts.own, 0, "own routes reflected back");
    assert_eq!(report.counts.foreign, 0, "routes outside the plan");
    assert_eq!(report.counts.withdrawn, 0);
    assert!(report.established_s <= report.complete_s);
    assert!(
        report.dut_peak_rss_mib.is_some_and(|m| m > 0.0),
        "{report:?}"
    );
    assert!(report.dut_cpu_s.is_some(), "{report:?}");
}
