//! `bfd_peer`: a small standalone BFD speaker over real UDP sockets, the driver that
//! proves `bgp-bfd` against FRR's bfdd and BIRD in the interop tests.
//!
//! ```text
//! bfd_peer --config FILE --status FILE [--seed N]
//! ```
//!
//! FILE holds one session per line (format: `interop::bfd::spec`). SIGHUP re-reads it:
//! changed timers go to the running session (a Poll Sequence when Up), `shutdown` sets
//! AdminDown, removed lines end their sessions, new lines start sessions. SIGTERM or
//! SIGINT sets every session AdminDown, sends that once, and exits. Every state or
//! timer change is printed to stdout as one JSON line (`{"ms": UNIX_MS, "peer": ...,
//! "event": "state", "from", "to", "reason", "failure"}`); the status file is rewritten
//! atomically at least every 200 ms.
//!
//! The loop is what a daemon's BFD task does: sockets from `bgp_bfd::udp`, one
//! `bgp_bfd::Endpoint`, `poll(2)` until a socket is readable or the endpoint's timer is
//! due, then drain transmits and events.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::ffi::CString;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bgp_bfd::udp::{Listener, Sender};
use bgp_bfd::{Addresses, Endpoint, SessionEvent, SessionId};
use interop::bfd::spec::{session_status, SessionSpec};
use serde_json::json;

static RELOAD: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGHUP {
        RELOAD.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
}

/// How often the status file is rewritten without any change.
const STATUS_EVERY: Duration = Duration::from_millis(200);

struct Driver {
    config: PathBuf,
    status: PathBuf,
    seed: u64,
    endpoint: Endpoint,
    sessions: Vec<(SessionSpec, SessionId)>,
    /// (IPv6, multihop) -> listener.
    listeners: HashMap<(bool, bool), Listener>,
    senders: HashMap<IpAddr, Sender>,
    status_written: Option<Instant>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn interface_index(name: &str) -> Result<u32, String> {
    let c = CString::new(name).map_err(|_| format!("bad interface name {name:?}"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(format!("no interface {name}")),
        i => Ok(i),
    }
}

fn addresses(spec: &SessionSpec) -> Result<Addresses, String> {
    Ok(Addresses {
        peer: spec.peer,
        local: Some(spec.local),
        interface: spec.interface.as_deref().map(interface_index).transpose()?,
    })
}

impl Driver {
    fn load(&mut self, now: Instant) -> Result<(), String> {
        let text = std::fs::read_to_string(&self.config)
            .map_err(|e| format!("{}: {e}", self.config.display()))?;
        let specs = SessionSpec::parse_file(&text).map_err(|e| e.to_string())?;
        let key = |s: &SessionSpec| (s.peer, s.local, s.interface.clone(), s.multihop);
        // Sessions no longer configured end.
        let (kept, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sessions)
            .into_iter()
            .partition(|(old, _)| specs.iter().any(|s| key(s) == key(old)));
        for (_, id) in gone {
            self.endpoint.remove_session(id);
        }
        self.sessions = kept;
        for (i, spec) in specs.into_iter().enumerate() {
            let family_v6 = spec.peer.is_ipv6();
            let multihop = spec.multihop.is_some();
            if let Entry::Vacant(slot) = self.listeners.entry((family_v6, multihop)) {
                let any = if family_v6 {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                };
                let l = Listener::bind(any, multihop)
                    .map_err(|e| format!("listening on {any} (multihop {multihop}): {e}"))?;
                slot.insert(l);
            }
            if let Entry::Vacant(slot) = self.senders.entry(spec.local) {
                let first_port = 49152 + (self.seed % 10_000) as u16;
                let s = Sender::bind(spec.local, first_port)
                    .map_err(|e| format!("sending from {}: {e}", spec.local))?;
                slot.insert(s);
            }
            // Timers and shutdown change a running session; anything else (password,
            // passive role) starts a new one.
            let same =
                |old: &SessionSpec| old.password == spec.password && old.passive == spec.passive;
            if let Some(at) = self
                .sessions
                .iter()
                .position(|(old, _)| key(old) == key(&spec) && !same(old))
            {
                let (_, id) = self.sessions.remove(at);
                self.endpoint.remove_session(id);
            }
            let existing = self
                .sessions
                .iter()
                .position(|(old, _)| key(old) == key(&spec));
            let id = match existing {
                Some(at) => {
                    let id = self.sessions[at].1;
                    let (tx, rx) = (
                        Duration::from_millis(spec.tx_ms),
                        Duration::from_millis(spec.rx_ms),
                    );
                    let mult = spec.detect_mult();
                    self.endpoint
                        .with_session(id, |s| s.set_timers(now, tx, rx, mult));
                    self.sessions[at].0 = spec.clone();
                    id
                }
                None => {
                    let config = spec
                        .config(self.seed.wrapping_add(i as u64))
                        .map_err(|e| e.to_string())?;
                    let id = self
                        .endpoint
                        .add_session(now, addresses(&spec)?, config)
                        .map_err(|e| format!("{}: {e}", spec.to_line()))?;
                    self.sessions.push((spec.clone(), id));
                    id
                }
            };
            self.endpoint.with_session(id, |s| {
                if spec.shutdown {
                    s.admin_down(now)
                } else {
                    s.admin_up(now)
                }
            });
        }
        Ok(())
    }

    /// Sends what the endpoint queued, prints its events, refreshes the status file.
    fn flush(&mut self, now: Instant) {
        while let Some(t) = self.endpoint.poll_transmit() {
            let sender = t.source.and_then(|s| self.senders.get(&s));
            match sender.map(|s| s.send(&t)) {
                Some(Ok(())) => {}
                // The link may be down in a test: that is what BFD is for.
                Some(Err(e)) => eprintln!("bfd_peer: send to {}: {e}", t.destination),
                None => eprintln!("bfd_peer: no socket for {:?}", t.source),
            }
        }
        let mut changed = false;
        let mut out = std::io::stdout().lock();
        while let Some((id, event)) = self.endpoint.poll_event() {
            changed = true;
            let Some(a) = self.endpoint.addresses(id).copied() else {
                continue;
            };
            let multihop = self
                .endpoint
                .session(id)
                .is_some_and(|s| s.config().hops.is_multihop());
            let line = match &event {
                SessionEvent::StateChanged { from, to, reason } => json!({
                    "ms": unix_ms(), "peer": a.peer.to_string(), "multihop": multihop,
                    "event": "state", "from": from.as_str(), "to": to.as_str(),
                    "reason": reason.to_string(), "failure": event.is_failure(),
                }),
                SessionEvent::TimersChanged {
                    transmit_interval,
                    detection_time,
                } => json!({
                    "ms": unix_ms(), "peer": a.peer.to_string(), "multihop": multihop,
                    "event": "timers",
                    "transmit_ms": transmit_interval.as_secs_f64() * 1000.0,
                    "detection_ms": detection_time.map(|d| d.as_secs_f64() * 1000.0),
                }),
            };
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
        if changed || self.status_written.is_none_or(|t| now >= t + STATUS_EVERY) {
            if let Err(e) = self.write_status() {
                eprintln!("bfd_peer: status: {e}");
            }
            self.status_written = Some(now);
        }
    }

    fn write_status(&self) -> std::io::Result<()> {
        let sessions: Vec<_> = self
            .endpoint
            .sessions()
            .map(|(_, a, s)| session_status(a, s))
            .collect();
        let text = json!({ "sessions": sessions, "discarded": self.endpoint.discarded() });
        let tmp = self.status.with_extension("tmp");
        std::fs::write(&tmp, text.to_string())?;
        std::fs::rename(&tmp, &self.status)
    }

    fn receive(&mut self, listener: (bool, bool), now: Instant) {
        let mut buf = [0u8; 512];
        loop {
            let Some(l) = self.listeners.get(&listener) else {
                return;
            };
            match l.recv(&mut buf) {
                Ok((n, info)) => {
                    let payload = buf.get(..n).unwrap_or_default();
                    if let Err(e) = self.endpoint.handle_datagram(now, &info, payload) {
                        eprintln!("bfd_peer: discarded from {}: {e}", info.source);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    eprintln!("bfd_peer: receive: {e}");
                    return;
                }
            }
        }
    }

    fn run(&mut self) -> Result<(), String> {
        self.load(Instant::now())?;
        let mut stopping: Option<(Instant, Vec<(SessionId, u64)>)> = None;
        loop {
            let now = Instant::now();
            if STOP.load(Ordering::SeqCst) {
                match &stopping {
                    None => {
                        // AdminDown everywhere, then run until each session sent it
                        // once (within its slow 1 s interval), so the peers learn it
                        // was not a failure (RFC 5882 3.2).
                        let mut sent = Vec::new();
                        for (_, id) in &self.sessions {
                            self.endpoint.with_session(*id, |s| s.admin_down(now));
                            let n = self.endpoint.session(*id).map_or(0, |s| s.stats().sent);
                            sent.push((*id, n));
                        }
                        stopping = Some((now + Duration::from_secs(2), sent));
                    }
                    Some((deadline, sent)) => {
                        let told = sent.iter().all(|(id, n)| {
                            self.endpoint
                                .session(*id)
                                .is_none_or(|s| s.stats().sent > *n)
                        });
                        if told || now >= *deadline {
                            self.flush(now);
                            return Ok(());
                        }
                    }
                }
            }
            if RELOAD.swap(false, Ordering::SeqCst) {
                if let Err(e) = self.load(now) {
                    eprintln!("bfd_peer: reload: {e}");
                }
            }
            self.endpoint.handle_timeout(now);
            self.flush(now);
            let wait = self
                .endpoint
                .poll_timeout()
                .map_or(STATUS_EVERY, |t| t.saturating_duration_since(now))
                .min(STATUS_EVERY);
            let keys: Vec<(bool, bool)> = self.listeners.keys().copied().collect();
            let mut fds: Vec<libc::pollfd> = keys
                .iter()
                .filter_map(|k| self.listeners.get(k))
                .map(|l| libc::pollfd {
                    fd: l.as_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            let timeout_ms = wait.as_millis().min(i32::MAX as u128) as libc::c_int;
            // SAFETY: `fds` is a live array of `fds.len()` pollfd structures.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
            if rc < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(format!("poll: {e}"));
                }
                continue;
            }
            let now = Instant::now();
            for (k, fd) in keys.iter().zip(&fds) {
                if fd.revents & libc::POLLIN != 0 {
                    self.receive(*k, now);
                }
            }
            self.flush(now);
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: bfd_peer --config FILE --status FILE [--seed N]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut config, mut status, mut seed) = (None, None, None);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--config", Some(v)) => config = Some(PathBuf::from(v)),
            ("--status", Some(v)) => status = Some(PathBuf::from(v)),
            ("--seed", Some(v)) => match v.parse::<u64>() {
                Ok(s) => seed = Some(s),
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
    }
    let (Some(config), Some(status)) = (config, status) else {
        return usage();
    };
    for sig in [libc::SIGHUP, libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to atomics, which is async-signal-safe.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
    let seed = seed.unwrap_or_else(|| unix_ms() ^ u64::from(std::process::id()));
    let mut driver = Driver {
        config,
        status,
        seed,
        endpoint: Endpoint::new(seed),
        sessions: Vec::new(),
        listeners: HashMap::new(),
        senders: HashMap::new(),
        status_written: None,
    };
    match driver.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bfd_peer: {e}");
            ExitCode::FAILURE
        }
    }
}
