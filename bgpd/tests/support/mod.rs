//! The harness shared by bgpd's integration tests: a [`Daemon`] (bgpd started on a
//! config written to a temporary directory, driven through its control socket, killed
//! on drop), polling with a generous [`DEADLINE`], and TOML builders for the parts of a
//! config every test writes the same way.
//!
//! Each test binary compiles this module on its own and uses a different subset of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_control::{
    Command as Ctl, FamilyFilter, Outcome, PeerDetail, PeerSummary, Reply, Request, Response,
    RouteEntry, Table,
};

/// Longest wait for a condition (sessions come up in well under a second normally; the
/// shared build machine can be slow). Nothing asserts on elapsed time.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How long one control request may take to be answered.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

pub fn bgpd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bgpd"))
}

/// bgpctl lives next to bgpd in the target directory. `cargo test -p bgpd` does not
/// build it, and a binary left from an earlier build may be stale: build it once per run
/// (a no-op when it is up to date).
pub fn bgpctl_bin() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-p", "bgpctl"])
            .status()
            .expect("running cargo to build bgpctl");
        assert!(st.success(), "building bgpctl failed");
    });
    bgpd_bin().with_file_name("bgpctl")
}

/// A temporary directory named PREFIX…, removed when dropped.
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

/// A bgpd process we started, with its control socket; killed (by PID) when dropped.
pub struct Daemon {
    pub name: String,
    child: Option<Child>,
    /// DIR/NAME.toml, rewritten by the reload tests.
    pub config: PathBuf,
    /// DIR/NAME.sock unless a test moves it.
    pub socket: PathBuf,
    /// bgpd's stderr.
    pub log: PathBuf,
}

impl Daemon {
    /// Starts bgpd with `config` written to DIR/NAME.toml; the control socket is
    /// DIR/NAME.sock (the config must use it).
    pub fn start(dir: &Path, name: &str, config: &str) -> Daemon {
        Daemon::start_with(dir, name, config, &[])
    }

    /// As [`Daemon::start`], with extra bgpd arguments.
    pub fn start_with(dir: &Path, name: &str, config: &str, args: &[&str]) -> Daemon {
        Daemon::launch(dir, name, config, args, "info")
    }

    /// As [`Daemon::start_with`], logging at `level` (`BGPD_LOG`) to DIR/NAME.log.
    /// Returns once the control socket answers.
    pub fn launch(dir: &Path, name: &str, config: &str, args: &[&str], level: &str) -> Daemon {
        let socket = dir.join(format!("{name}.sock"));
        Daemon::launch_at(dir, name, config, args, level, socket)
    }

    /// As [`Daemon::launch`], with the control socket at `socket` (the config must use it).
    pub fn launch_at(
        dir: &Path,
        name: &str,
        config: &str,
        args: &[&str],
        level: &str,
        socket: PathBuf,
    ) -> Daemon {
        let cfg = dir.join(format!("{name}.toml"));
        std::fs::write(&cfg, config).expect("writing config");
        let log = dir.join(format!("{name}.log"));
        let logf = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bgpd_bin())
            .arg("-c")
            .arg(&cfg)
            .args(args)
            .env("BGPD_LOG", level)
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("starting bgpd");
        let d = Daemon {
            name: name.to_string(),
            child: Some(child),
            config: cfg,
            socket,
            log,
        };
        d.wait_for(|d| d.try_request(Ctl::Status).is_ok(), "control socket up");
        d
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One request on a fresh control connection (one JSON line each way).
    pub fn try_request(&self, c: Ctl) -> std::io::Result<Response> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(CONTROL_TIMEOUT))?;
        let mut line = serde_json::to_vec(&Request::new(c))?;
        line.push(b'\n');
        s.write_all(&line)?;
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer)?;
        Ok(serde_json::from_str(&answer)?)
    }

    pub fn request(&self, c: Ctl) -> Reply {
        match self.try_request(c).expect("control request").outcome {
            Outcome::Ok { result } => result,
            Outcome::Error { message } => panic!("{}: daemon error: {message}", self.name),
        }
    }

    pub fn peers(&self) -> Vec<PeerSummary> {
        match self.request(Ctl::ShowPeers) {
            Reply::Peers { peers } => peers,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    pub fn peer(&self, name: &str) -> PeerDetail {
        match self.request(Ctl::ShowPeer {
            name: name.to_string(),
        }) {
            Reply::Peer(d) => *d,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    pub fn state(&self, peer: &str) -> Option<String> {
        self.peers()
            .into_iter()
            .find(|p| p.name == peer)
            .map(|p| p.state)
    }

    /// `table` of `peer` (all peers if `None`), one family or all.
    pub fn routes(
        &self,
        table: Table,
        peer: Option<&str>,
        family: impl Into<Option<FamilyFilter>>,
    ) -> Vec<RouteEntry> {
        match self.request(Ctl::ShowRoutes {
            prefix: None,
            peer: peer.map(str::to_string),
            table,
            family: family.into(),
            limit: None,
            after: None,
            longer: false,
            community: None,
        }) {
            Reply::Routes { routes, .. } => routes,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    pub fn loc_rib(&self) -> Vec<RouteEntry> {
        self.routes(Table::Loc, None, None)
    }

    pub fn best(&self, prefix: &str) -> Option<RouteEntry> {
        self.loc_rib()
            .into_iter()
            .find(|r| r.prefix == prefix && r.best)
    }

    /// Polls `cond` until it holds; panics with the log after [`DEADLINE`].
    pub fn wait_for(&self, mut cond: impl FnMut(&Daemon) -> bool, what: &str) {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if cond(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{}: timed out waiting for {what}\n--- log ---\n{}",
            self.name,
            self.log_text()
        );
    }

    pub fn wait_established(&self, peer: &str) {
        self.wait_for(
            |d| d.state(peer).as_deref() == Some("Established"),
            &format!("{peer} Established"),
        );
    }

    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: plain kill(2) on the pid of a child we started.
            unsafe {
                libc::kill(c.id() as i32, sig);
            }
        }
    }

    /// Waits for the process to exit and returns its status code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        panic!("{}: did not exit", self.name);
    }

    /// Runs bgpctl against this daemon's control socket.
    pub fn bgpctl(&self, args: &[&str]) -> Output {
        Command::new(bgpctl_bin())
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running bgpctl")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `[global]` of speaker NAME: control socket DIR/NAME.sock (mode 0600, plus the lines
/// `control_extra`), graceful restart off, and an accept-all policy `all`.
pub fn global_toml(
    dir: &Path,
    name: &str,
    asn: u32,
    router_id: &str,
    listen: &str,
    control_extra: &str,
) -> String {
    let control_extra = if control_extra.is_empty() {
        String::new()
    } else {
        format!("{control_extra}\n")
    };
    format!(
        r#"[global]
asn = {asn}
router_id = "{router_id}"
listen = ["{listen}"]
[global.control]
socket = "{}"
mode = "0600"
{control_extra}[global.graceful_restart]
enabled = false
[policies.all]
default = "accept"
"#,
        dir.join(format!("{name}.sock")).display()
    )
}

/// `[peers.NAME]` with hold time 9, connect retry 1 and policy `all` both ways, plus
/// the lines `extra`.
pub fn peer_toml(
    name: &str,
    address: &str,
    remote_as: u32,
    port: u16,
    source: Option<&str>,
    extra: &str,
) -> String {
    let source = source
        .map(|s| format!("source_address = \"{s}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[peers.{name}]
address = "{address}"
remote_as = {remote_as}
port = {port}
{source}hold_time = 9
connect_retry = 1
import = ["all"]
export = ["all"]
{extra}
"#
    )
}

/// An `[[originate]]` entry for `prefix`.
pub fn originate(prefix: &str) -> String {
    format!("\n[[originate]]\nprefix = \"{prefix}\"\n")
}

/// Writes `config` to LABEL/bgp.toml in the test's directory (registered as a log, so
/// a failing run shows it) and starts bgpd on it inside `ns`, with `--no-watch` and the
/// arguments `extra`, logging the FIB at trace level.
pub fn spawn_in_ns(
    test: &interop::Test,
    ns: &Arc<interop::Netns>,
    label: &str,
    config: &str,
    extra: &[&str],
) -> interop::Result<interop::Process> {
    let path = test.write(&format!("{label}/bgp.toml"), config)?;
    test.register_log(&format!("{label} config"), &path);
    let p = path.to_string_lossy().into_owned();
    let mut args = vec!["-c", p.as_str(), "--no-watch"];
    args.extend_from_slice(extra);
    interop::Process::spawn(
        test,
        ns,
        label,
        &bgpd_bin(),
        &args,
        &[
            ("BGPD_LOG", "info,bgp_speaker::fib=trace"),
            ("NO_COLOR", "1"),
        ],
    )
}

/// Sends on the test's raw session `s` an iBGP UPDATE announcing `prefixes` (ORIGIN IGP,
/// empty AS_PATH, LOCAL_PREF 100, NEXT_HOP `next_hop`).
pub fn announce(
    s: &interop::raw_peer::RawSession,
    next_hop: std::net::Ipv4Addr,
    prefixes: &[&str],
) {
    use bgp_proto::{AsPath, Origin, PathAttributes};
    let attributes = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        next_hop: Some(next_hop),
        local_pref: Some(100),
        ..PathAttributes::default()
    };
    announce_with(s, attributes, prefixes);
}

/// Sends on the test's raw session `s` an UPDATE announcing `prefixes` with `attributes`.
pub fn announce_with(
    s: &interop::raw_peer::RawSession,
    attributes: bgp_proto::PathAttributes,
    prefixes: &[&str],
) {
    use bgp_proto::{Message, Nlri, Update};
    let nlri = prefixes
        .iter()
        .map(|p| Nlri::new(p.parse().expect("prefix")))
        .collect();
    s.send(&Message::Update(Update {
        attributes,
        nlri,
        ..Update::default()
    }))
    .expect("UPDATE");
}

/// Sends `command` on a fresh connection and returns the reply lines, greeting included,
/// up to the final line (a code followed by a space).
pub fn bird_raw(sock: &Path, command: &str) -> Vec<String> {
    let mut s = UnixStream::connect(sock).expect("connecting to the BIRD socket");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(format!("{command}\n").as_bytes())
        .expect("writing");
    let mut lines = Vec::new();
    let mut rd = BufReader::new(s);
    let mut finals = 0;
    // The greeting is one final line, the reply ends with another.
    while finals < 2 {
        let mut l = String::new();
        if rd.read_line(&mut l).expect("reading") == 0 {
            break;
        }
        let l = l.trim_end_matches('\n').to_string();
        if l.len() >= 5
            && l.as_bytes()[..4].iter().all(u8::is_ascii_digit)
            && l.as_bytes()[4] == b' '
        {
            finals += 1;
        }
        lines.push(l);
    }
    lines
}
