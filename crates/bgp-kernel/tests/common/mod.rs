//! Test harness: a network namespace per test, created with `ip netns add` and deleted on drop
//! (also when the test fails). The test body runs in a scoped thread that enters the namespace
//! with setns(2) before creating its tokio runtime, so every netlink socket it opens belongs to
//! the namespace.

#![allow(dead_code)]

use std::future::Future;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// True (after printing why) when the tests cannot run here.
pub fn skip_unless_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED {test}: needs root (network namespaces); run as root, as CI does");
        return true;
    }
    false
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Ns {
    pub name: String,
}

impl Ns {
    pub fn new(tag: &str) -> Ns {
        let name = format!(
            "bgpk-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name]);
        let ns = Ns { name };
        ns.ip("link set lo up");
        ns
    }

    /// `ip -n NAME <args>`; panics with stderr on failure.
    pub fn ip(&self, args: &str) -> String {
        let mut v = vec!["-n", &self.name];
        v.extend(args.split_whitespace());
        run("ip", &v)
    }

    /// Like [`Ns::ip`] but returns whether it succeeded.
    pub fn try_ip(&self, args: &str) -> bool {
        let mut v = vec!["-n", &self.name];
        v.extend(args.split_whitespace());
        Command::new("ip")
            .args(&v)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Run `ip -n NAME -batch FILE` over the given command lines.
    pub fn batch(&self, lines: &[String]) {
        let path = std::env::temp_dir().join(format!("{}.batch", self.name));
        std::fs::write(&path, lines.join("\n") + "\n").expect("write batch file");
        let p = path.to_string_lossy().into_owned();
        run("ip", &["-n", &self.name, "-batch", &p]);
        let _ = std::fs::remove_file(&path);
    }

    /// `ip -n NAME -j <args>` parsed.
    pub fn ip_json(&self, args: &str) -> serde_json::Value {
        let mut v = vec!["-n", &self.name, "-j"];
        v.extend(args.split_whitespace());
        let out = run("ip", &v);
        if out.trim().is_empty() {
            return serde_json::Value::Array(vec![]);
        }
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {args}: {e}: {out}"))
    }

    /// Routes of `ip [-6] route show proto P` as JSON objects.
    pub fn routes(&self, v6: bool, filter: &str) -> Vec<serde_json::Value> {
        let fam = if v6 { "-6 " } else { "" };
        match self.ip_json(&format!("{fam}route show {filter}")) {
            serde_json::Value::Array(a) => a,
            other => panic!("unexpected ip output {other}"),
        }
    }

    /// The route for `dst` in the output of `routes()`.
    pub fn route<'a>(routes: &'a [serde_json::Value], dst: &str) -> Option<&'a serde_json::Value> {
        routes.iter().find(|r| r["dst"] == dst)
    }

    /// A tunnel device named `tunl0`: the IPIP fallback device when the kernel has IPIP
    /// (created by the module in every namespace), else a veth named tunl0 so the onlink
    /// forms can still be checked. Returns the kind used.
    pub fn tunnel_device(&self) -> &'static str {
        let kind = if self.try_ip("link show tunl0") || self.try_ip("link add tunl0 type ipip") {
            "ipip"
        } else {
            self.ip("link add tunl0 type veth peer name tunl0p");
            self.ip("link set tunl0p up");
            "veth (no ipip in this kernel)"
        };
        self.ip("link set tunl0 up");
        kind
    }

    /// A veth `eth0` (peer `eth0p`) with 10.0.0.1/24 and fd00::1/64, up.
    pub fn uplink(&self) {
        self.ip("link add eth0 type veth peer name eth0p");
        self.ip("addr add 10.0.0.1/24 dev eth0");
        self.ip("addr add fd00::1/64 dev eth0 nodad");
        self.ip("link set eth0 up");
        self.ip("link set eth0p up");
    }

    /// Run `f` on a thread inside the namespace with a current-thread tokio runtime.
    pub fn run<F, Fut>(&self, f: F) -> Fut::Output
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future,
        Fut::Output: Send,
    {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(move || {
                let file = std::fs::File::open(&path).expect("open netns");
                use std::os::fd::AsRawFd;
                // SAFETY: setns with a valid namespace fd affects only this thread.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
