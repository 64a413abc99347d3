//! A read-only, BIRD-compatible status socket.
//!
//! calico-node's health checks and status reports talk to BIRD's control socket
//! (`/var/run/calico/bird.ctl`, and `bird6.ctl` for the separate IPv6 daemon of BIRD 1.x):
//! `calico-node -bird-ready` sends `show protocols` (and `show status` for graceful
//! restart) itself, `-bird-live` runs `birdcl -s /var/run/calico/bird.ctl show status`,
//! and `calicoctl node status` / the CalicoNodeStatus reporter read `show protocols`,
//! `show protocols all NAME` and `show status`. With bgpd in BIRD's place this module
//! answers those commands from the speaker's own peer and status data, so the checks work
//! unchanged.
//!
//! # The protocol (as BIRD's `nest/cli.c` speaks it)
//!
//! On connect the daemon sends `0001 BIRD <version> ready.`. The client then writes one
//! command per line; every reply is a series of lines each starting with a four-digit code:
//! `CODE-text` opens a group of lines with that code, a line starting with a space
//! continues the previous line's code, and `CODE text` (a space after the code) is the
//! last line of the reply. `0000 ` ends a table; codes 8xxx are run-time errors
//! (`8003 No protocols match`, `8007 Access denied`), 9xxx parse errors
//! (`9001 syntax error`).
//!
//! # What is answered
//!
//! * `show status`: version, router id, server/boot/reconfiguration times, the graceful
//!   restart block (code 0024, which `-bird-ready` looks for) while we restart, and
//!   `0013 Daemon is up and running`.
//! * `show protocols [all] [NAME | "PATTERN"]`: one `BGP` row per configured peer of the
//!   socket's address family (IPv4 peers on `bird_socket`, IPv6 peers on `bird6_socket`,
//!   as BIRD 1.x's two daemons did); `all` adds BIRD's `BGP state:` block. Calico parses
//!   the row's columns (name, proto, table, state, since, info) and, from the detail,
//!   `BGP state:` and `Neighbor address:`.
//! * `show route count`: paths and prefixes of the Loc-RIB of the socket's family.
//! * `show route [protocol NAME]`: the Loc-RIB of the socket's family in BIRD's route
//!   layout, which calico-node's CalicoNodeStatus route reporter parses ([`route`]).
//! * Commands that change state (`configure`, `enable`, `disable`, `restart`, `reload`,
//!   `down`, ...) get `8007 Access denied`, as BIRD's restricted CLI answers them: the
//!   socket is read-only (bgpctl is the way to act on the daemon). Anything else gets
//!   `9001 syntax error`.
//!
//! # Layout
//!
//! calico-node compares the heading of `show protocols` word for word with BIRD 1.6's
//! (`name proto table state since info`, lower case; calico `node/pkg/health/bird/bird.go`
//! `birdExpectedHeadings`), so the default layout is BIRD 1.6's (column widths of
//! `proto_cmd_show`, times `%T` within 20 hours and `%F` after, `master` table).
//! [`BirdFormat::Bird2`] imitates BIRD 2.0 instead (wider columns, `---` table,
//! millisecond times, `Hostname is`), which the unit tests compare byte for byte with
//! captures of a real BIRD 2.0.12. Only BGP sessions exist here: BIRD's `device1`,
//! `kernel1` and `direct1` rows are not invented. Lines BIRD prints from state we do not
//! keep (preference, hold timer remaining, per-route change statistics) are left out
//! rather than filled with made-up numbers.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgp_proto::Capability;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;
use tracing::{debug, error, info};

pub use crate::config::BirdFormat;
use crate::config::ControlConfig;
use crate::control::limits::{self, Limits};
use crate::control::socket;
use crate::{FamilyFilter, Peer, PeerState, RouteQuery, Speaker, Table};

/// The version we announce: `BIRD v0.1.0+bgpd`. calico-node's status reporter reads the
/// version from a `BIRD v...` line, so it starts with `v` like Calico's BIRD builds
/// (`v0.3.3+birdv1.6.8`), and says what it is.
pub const BIRD_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"), "+bgpd");

/// BIRD's reply code `8005 Protocol is down`, used for a component that is down.
pub const PROTOCOL_DOWN: u16 = 8005;
/// Routes asked of the speaker at a time while counting.
const ROUTES_PAGE: usize = 10_000;
/// Longest command line accepted; BIRD's CLI buffer (`CLI_LINE_SIZE`) is 512 bytes.
const MAX_COMMAND: usize = 512;
/// Longest reply line; BIRD writes `<line overflow>` past 512 bytes, we cut the text.
const MAX_LINE: usize = 500;
/// Protocol times younger than this are shown as a time of day, older ones as a date
/// (BIRD's default `timeformat protocol`, 20 hours).
const SHORT_TIME: Duration = Duration::from_secs(20 * 3600);

/// Which sessions a socket reports.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SocketFamily {
    /// Peers with an IPv4 address (`bird.ctl`).
    Ipv4,
    /// Peers with an IPv6 address (`bird6.ctl`).
    Ipv6,
}

impl SocketFamily {
    fn matches(self, a: IpAddr) -> bool {
        match self {
            SocketFamily::Ipv4 => a.is_ipv4(),
            SocketFamily::Ipv6 => a.is_ipv6(),
        }
    }

    fn filter(self) -> FamilyFilter {
        match self {
            SocketFamily::Ipv4 => FamilyFilter::Ipv4,
            SocketFamily::Ipv6 => FamilyFilter::Ipv6,
        }
    }

    /// BIRD 2's table name.
    fn table(self) -> &'static str {
        match self {
            SocketFamily::Ipv4 => "master4",
            SocketFamily::Ipv6 => "master6",
        }
    }
}

/// One reply, built line by line with BIRD's continuation rule: a continued line whose
/// code equals the previous line's is written with a leading space instead of the code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    out: String,
    last: Option<u16>,
}

impl Reply {
    /// An empty reply.
    pub fn new() -> Reply {
        Reply::default()
    }

    /// A line that more lines follow (`CODE-text` or ` text`).
    pub fn more(&mut self, code: u16, text: &str) -> &mut Reply {
        if self.last == Some(code) {
            self.out.push(' ');
        } else {
            self.out.push_str(&format!("{code:04}-"));
        }
        self.text(code, text)
    }

    /// The final line (`CODE text`).
    pub fn end(&mut self, code: u16, text: &str) -> &mut Reply {
        self.out.push_str(&format!("{code:04} "));
        self.text(code, text)
    }

    fn text(&mut self, code: u16, text: &str) -> &mut Reply {
        // Names, error texts and peer-supplied strings must not break the framing.
        let mut n = 0;
        for c in text.chars() {
            if n + c.len_utf8() > MAX_LINE {
                break;
            }
            n += c.len_utf8();
            // BIRD 2 starts next-hop lines of `show route` with a tab.
            self.out
                .push(if c.is_control() && c != '\t' { ' ' } else { c });
        }
        self.out.push('\n');
        self.last = Some(code);
        self
    }

    /// The reply as written to the socket.
    pub fn as_str(&self) -> &str {
        &self.out
    }
}

/// The greeting sent on connect.
pub fn hello(version: &str) -> Reply {
    let mut r = Reply::new();
    r.end(1, &format!("BIRD {version} ready."));
    r
}

/// Which protocols `show protocols` lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Select {
    /// Every protocol.
    All,
    /// The protocol of this name (a bare symbol in BIRD's grammar).
    Name(String),
    /// Names matching a shell pattern with `*` and `?` (a quoted string).
    Pattern(String),
}

/// A command of the subset we answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BirdCommand {
    /// `show status`.
    ShowStatus,
    /// `show protocols [all] [NAME|"PATTERN"]`.
    ShowProtocols {
        /// With the detail block.
        all: bool,
        /// Which protocols.
        select: Select,
    },
    /// `show route count`.
    ShowRouteCount,
    /// `show route [protocol NAME]`.
    ShowRoute {
        /// Only routes of this protocol (session name, `kernel1`, `static1`).
        protocol: Option<String>,
    },
    /// A command that would change state: refused.
    Denied,
    /// Anything else.
    SyntaxError,
}

/// Commands of BIRD's CLI that act on the daemon; refused on this read-only socket.
const WRITE_COMMANDS: &[&str] = &[
    "configure",
    "enable",
    "disable",
    "restart",
    "reload",
    "down",
    "graceful",
    "debug",
    "mrtdump",
    "dump",
    "echo",
];

/// Splits a command line into words; a `"quoted string"` is one word, returned with a
/// flag saying it was quoted. `None` for an unterminated quote.
fn words(line: &str) -> Option<Vec<(String, bool)>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut w = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => w.push(c),
                    None => return None,
                }
            }
            out.push((w, true));
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' {
                    break;
                }
                w.push(c);
                chars.next();
            }
            out.push((w, false));
        }
    }
    Some(out)
}

/// Parses one command line.
pub fn parse(line: &str) -> BirdCommand {
    let Some(w) = words(line) else {
        return BirdCommand::SyntaxError;
    };
    let kw: Vec<&str> = w
        .iter()
        .map(|(s, quoted)| if *quoted { "" } else { s.as_str() })
        .collect();
    match kw.as_slice() {
        ["show", "status"] => BirdCommand::ShowStatus,
        ["show", "route", "count"] => BirdCommand::ShowRouteCount,
        ["show", "route"] => BirdCommand::ShowRoute { protocol: None },
        ["show", "route", "protocol", name] => BirdCommand::ShowRoute {
            protocol: Some((*name).to_owned()),
        },
        ["show", "protocols", rest @ ..] => {
            let (all, rest) = match rest {
                ["all", r @ ..] => (true, r),
                r => (false, r),
            };
            let select = match (rest, w.last()) {
                ([], _) => Select::All,
                ([_], Some((s, true))) => Select::Pattern(s.clone()),
                ([_], Some((s, false))) => Select::Name(s.clone()),
                _ => return BirdCommand::SyntaxError,
            };
            BirdCommand::ShowProtocols { all, select }
        }
        [first, ..] if WRITE_COMMANDS.contains(first) => BirdCommand::Denied,
        _ => BirdCommand::SyntaxError,
    }
}

/// BIRD's `patmatch`: `*` matches any run of characters, `?` any one.
pub fn pattern_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(&c) if c == '?' || c == n[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i.min(p.len())..].iter().all(|c| *c == '*')
}

/// BIRD's protocol state column.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProtoState {
    /// Disabled.
    Down,
    /// Trying to establish.
    Start,
    /// Established.
    Up,
}

impl ProtoState {
    fn as_str(self) -> &'static str {
        match self {
            ProtoState::Down => "down",
            ProtoState::Start => "start",
            ProtoState::Up => "up",
        }
    }
}

/// One row of `show protocols`, with the lines `show protocols all` adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protocol {
    /// Protocol (peer) name.
    pub name: String,
    /// State column.
    pub state: ProtoState,
    /// Since column, already formatted ([`proto_time`]).
    pub since: String,
    /// Info column: the BGP state padded to 14 and the last error.
    pub info: String,
    /// Detail lines (without the final empty line), indented as BIRD indents them.
    pub detail: Vec<String>,
}

/// `show protocols [all]` over `protocols` (already selected). `select` decides the
/// answer when nothing is selected: `8003 No protocols match` for a name or pattern, an
/// empty table for a plain `show protocols`. (BIRD always has its device and kernel
/// protocols, so its plain listing is never empty; calico-node reads an empty table as "no
/// BGP peers: ready" but the 8003 line as an error, which would fail a single-node
/// cluster's readiness check.)
pub fn show_protocols(
    protocols: &[Protocol],
    all: bool,
    select: &Select,
    format: BirdFormat,
) -> Reply {
    let mut r = Reply::new();
    if protocols.is_empty() && *select != Select::All {
        r.end(8003, "No protocols match");
        return r;
    }
    r.more(
        2002,
        match format {
            BirdFormat::Bird1 => "name     proto    table    state  since       info",
            BirdFormat::Bird2 => "Name       Proto      Table      State  Since         Info",
        },
    );
    for p in protocols {
        let row = match format {
            BirdFormat::Bird1 => format!(
                "{:<8} {:<8} {:<8} {:<5}  {:<10}  {}",
                p.name,
                "BGP",
                "master",
                p.state.as_str(),
                p.since,
                p.info
            ),
            BirdFormat::Bird2 => format!(
                "{:<10} {:<10} {:<10} {:<5}  {:<12}  {}",
                p.name,
                "BGP",
                "---",
                p.state.as_str(),
                p.since,
                p.info
            ),
        };
        r.more(1002, &row);
        if all {
            for d in &p.detail {
                r.more(1006, d);
            }
            r.more(1006, "");
        }
    }
    r.end(0, "");
    r
}

/// Inputs of `show status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Version after `BIRD `.
    pub version: String,
    /// Router id.
    pub router_id: String,
    /// Host name (BIRD 2 only).
    pub hostname: Option<String>,
    /// Formatted current time.
    pub now: String,
    /// Formatted start time.
    pub boot: String,
    /// Formatted last (re)configuration time.
    pub reconfigured: String,
    /// While we restart gracefully (RFC 4724): seconds left of / total selection deferral.
    pub graceful_restart: Option<(u64, u64)>,
    /// Components that are down (name, why): the daemon is not fully working.
    pub down: Vec<(String, String)>,
}

/// `show status` (BIRD's `cmd_show_status`).
pub fn show_status(s: &Status, format: BirdFormat) -> Reply {
    let mut r = Reply::new();
    r.more(1000, &format!("BIRD {}", s.version));
    r.more(1011, &format!("Router ID is {}", s.router_id));
    if let (BirdFormat::Bird2, Some(h)) = (format, &s.hostname) {
        r.more(1011, &format!("Hostname is {h}"));
    }
    r.more(1011, &format!("Current server time is {}", s.now));
    r.more(1011, &format!("Last reboot on {}", s.boot));
    r.more(1011, &format!("Last reconfiguration on {}", s.reconfigured));
    if let Some((left, total)) = s.graceful_restart {
        // calico-node's readiness check fails while it sees code 0024.
        r.more(24, "Graceful restart recovery in progress");
        r.more(24, &format!("  Wait timer is {left}/{total}"));
    }
    // A component down (the kernel FIB not following the RIB, say): BIRD's run-time
    // error class, which calico-node's readiness check does not accept, so the node is
    // reported not ready with this line as the reason; `-bird-live` (output starting with
    // "BIRD") still passes, since the daemon repairs it by itself.
    for (name, why) in &s.down {
        r.more(PROTOCOL_DOWN, &format!("{name} is down: {why}"));
    }
    r.end(13, "Daemon is up and running");
    r
}

/// Paths and prefixes of one Loc-RIB table.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteCount {
    /// Paths (BIRD's routes).
    pub paths: usize,
    /// Prefixes (BIRD's networks).
    pub prefixes: usize,
}

/// `show route count`. BIRD 1.x (one table per daemon): the socket's family only; BIRD 2
/// (one daemon, tables `master4` and `master6`): both, then the total.
pub fn show_route_count(
    v4: RouteCount,
    v6: RouteCount,
    family: SocketFamily,
    format: BirdFormat,
) -> Reply {
    let mut r = Reply::new();
    match format {
        BirdFormat::Bird1 => {
            let c = match family {
                SocketFamily::Ipv4 => v4,
                SocketFamily::Ipv6 => v6,
            };
            r.end(
                14,
                &format!(
                    "{} of {} routes for {} networks",
                    c.paths, c.paths, c.prefixes
                ),
            );
        }
        BirdFormat::Bird2 => {
            for (c, f) in [(v4, SocketFamily::Ipv4), (v6, SocketFamily::Ipv6)] {
                r.more(
                    1007,
                    &format!(
                        "{} of {} routes for {} networks in table {}",
                        c.paths,
                        c.paths,
                        c.prefixes,
                        f.table()
                    ),
                );
            }
            let (paths, prefixes) = (v4.paths + v6.paths, v4.prefixes + v6.prefixes);
            r.end(
                14,
                &format!("Total: {paths} of {paths} routes for {prefixes} networks in 2 tables"),
            );
        }
    }
    r
}

/// A broken-down local time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i32,
    /// Month 1..=12.
    pub month: u32,
    /// Day 1..=31.
    pub day: u32,
    /// Hour.
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second.
    pub second: u32,
    /// Milliseconds.
    pub millis: u32,
}

impl Civil {
    /// `t` in the local time zone, as BIRD formats times (`localtime`).
    pub fn local(t: SystemTime) -> Option<Civil> {
        let d = t.duration_since(UNIX_EPOCH).ok()?;
        let secs = libc::time_t::try_from(d.as_secs()).ok()?;
        // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: localtime_r reads `secs` and writes only `tm`, both live locals; it is
        // the thread-safe variant.
        let r = unsafe { libc::localtime_r(&secs, &mut tm) };
        if r.is_null() {
            return None;
        }
        Some(Civil {
            year: tm.tm_year.checked_add(1900)?,
            month: u32::try_from(tm.tm_mon).ok()? + 1,
            day: u32::try_from(tm.tm_mday).ok()?,
            hour: u32::try_from(tm.tm_hour).ok()?,
            minute: u32::try_from(tm.tm_min).ok()?,
            second: u32::try_from(tm.tm_sec).ok()?,
            millis: d.subsec_millis(),
        })
    }

    fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    fn time(&self, format: BirdFormat) -> String {
        match format {
            BirdFormat::Bird1 => format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second),
            BirdFormat::Bird2 => format!(
                "{:02}:{:02}:{:02}.{:03}",
                self.hour, self.minute, self.second, self.millis
            ),
        }
    }
}

/// A protocol time: the time of day if `age` is under 20 hours, else the date (BIRD's
/// default `timeformat protocol`).
pub fn proto_time(t: &Civil, age: Duration, format: BirdFormat) -> String {
    if age < SHORT_TIME {
        t.time(format)
    } else {
        t.date()
    }
}

/// A full date and time (BIRD's `timeformat base`).
pub fn base_time(t: &Civil, format: BirdFormat) -> String {
    format!("{} {}", t.date(), t.time(format))
}

fn local_or_epoch(t: SystemTime) -> Civil {
    Civil::local(t).unwrap_or(Civil {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        millis: 0,
    })
}

/// The row and detail BIRD would show for a BGP protocol of this peer. `preferred`: the
/// peer's paths that are best in the Loc-RIB (for the `Routes:` line).
pub fn protocol(
    p: &Peer,
    now: SystemTime,
    preferred: Option<usize>,
    format: BirdFormat,
) -> Protocol {
    let c = &p.config;
    let age = p.since.elapsed();
    let since_wall = now.checked_sub(age).unwrap_or(UNIX_EPOCH);
    let since = proto_time(&local_or_epoch(since_wall), age, format);
    // BIRD's bgp_state_dsc: Down when disabled, Passive while a passive session waits.
    let (state, dsc) = match p.state {
        PeerState::Disabled => (ProtoState::Down, "Down"),
        PeerState::Established => (ProtoState::Up, "Established"),
        PeerState::Idle | PeerState::Active if c.passive => (ProtoState::Start, "Passive"),
        other => (ProtoState::Start, other.as_str()),
    };
    let error = match (state, &p.last_error) {
        (ProtoState::Start, Some(e)) => e.as_str(),
        _ => "",
    };
    // bgp_get_status: the error alone when down, else the state padded to 14.
    let info = match state {
        ProtoState::Down => String::new(),
        _ => format!("{dsc:<14}{error}"),
    };
    let mut detail = Vec::new();
    if let Some(d) = &c.description {
        detail.push(format!("  Description:    {d}"));
    }
    // BIRD 1.6's proto_show_basic_info; BIRD 2 moved these lines into a per-channel
    // block, which is not imitated.
    if state != ProtoState::Down && format == BirdFormat::Bird1 {
        if let Some(pref) = preferred {
            detail.push(format!(
                "  Routes:         {} imported, {} exported, {} preferred",
                p.prefixes.accepted, p.prefixes.sent, pref
            ));
        }
    }
    detail.push(format!("  BGP state:          {dsc}"));
    detail.push(format!("    Neighbor address: {}", c.address));
    detail.push(format!("    Neighbor AS:      {}", c.remote_as));
    let local_as = p.local_as;
    if matches!(format, BirdFormat::Bird2) {
        detail.push(format!("    Local AS:         {local_as}"));
    }
    if let (ProtoState::Up, Some(n)) = (state, p.negotiated.as_deref()) {
        detail.push(format!("    Neighbor ID:      {}", n.peer_id));
        let mut caps = String::new();
        let peer_caps = &n.peer_open.capabilities;
        let has = |f: &dyn Fn(&Capability) -> bool| peer_caps.iter().any(f);
        if has(&|c| matches!(c, Capability::RouteRefresh)) {
            caps.push_str(" refresh");
        }
        if has(&|c| matches!(c, Capability::EnhancedRouteRefresh)) {
            caps.push_str(" enhanced-refresh");
        }
        for cap in peer_caps {
            if let Capability::GracefulRestart(g) = cap {
                caps.push_str(if g.families.is_empty() {
                    " restart-aware"
                } else {
                    " restart-able"
                });
            }
        }
        for cap in peer_caps {
            if let Capability::LongLivedGracefulRestart(f) = cap {
                caps.push_str(if f.is_empty() {
                    " llgr-aware"
                } else {
                    " llgr-able"
                });
            }
        }
        if has(&|c| matches!(c, Capability::FourOctetAs(_))) {
            caps.push_str(" AS4");
        }
        let add_path = |rx: bool| {
            has(&|c| match c {
                Capability::AddPath(v) => {
                    v.iter()
                        .any(|(_, m)| if rx { m.can_receive() } else { m.can_send() })
                }
                _ => false,
            })
        };
        if add_path(true) {
            caps.push_str(" add-path-rx");
        }
        if add_path(false) {
            caps.push_str(" add-path-tx");
        }
        if has(&|c| matches!(c, Capability::ExtendedMessage)) {
            caps.push_str(" ext-messages");
        }
        if format == BirdFormat::Bird1 {
            detail.push(format!("    Neighbor caps:   {caps}"));
        }
        let mut session = String::from(if c.remote_as == local_as {
            "internal"
        } else {
            "external"
        });
        if c.multihop.is_some() {
            session.push_str(" multihop");
        }
        if c.route_reflector_client {
            session.push_str(" route-reflector");
        }
        if n.codec.four_octet_as {
            session.push_str(" AS4");
        }
        if !n.codec.add_path_receive.is_empty() {
            session.push_str(" add-path-rx");
        }
        if !n.codec.add_path_send.is_empty() {
            session.push_str(" add-path-tx");
        }
        if n.codec.extended_message {
            session.push_str(" ext-messages");
        }
        detail.push(format!("    Session:          {session}"));
        if let Some(l) = p.local_address {
            detail.push(format!("    Source address:   {}", l.ip()));
        }
    }
    if let (ProtoState::Start, Some(e)) = (state, &p.last_error) {
        detail.push(format!("    Last error:       {e}"));
    }
    Protocol {
        name: c.name.clone(),
        state,
        since,
        info,
        detail,
    }
}

/// The answer to a command that is refused without looking at any state: BIRD's
/// `9001 syntax error` (BIRD adds the parser's detail, such as `, unexpected
/// CF_SYM_UNDEFINED`) and its restricted-mode `8007 Access denied`.
pub fn refusal(cmd: &BirdCommand) -> Option<Reply> {
    let mut r = Reply::new();
    match cmd {
        BirdCommand::SyntaxError => r.end(9001, "syntax error"),
        BirdCommand::Denied => r.end(8007, "Access denied"),
        _ => return None,
    };
    Some(r)
}

/// Answers one command from the speaker's state.
pub async fn respond(
    cmd: BirdCommand,
    speaker: &Speaker,
    family: SocketFamily,
    format: BirdFormat,
) -> Reply {
    if let Some(r) = refusal(&cmd) {
        return r;
    }
    let mut r = Reply::new();
    match cmd {
        BirdCommand::SyntaxError | BirdCommand::Denied => {}
        BirdCommand::ShowStatus => match speaker.status().await {
            Err(e) => {
                r.end(8000, &e.to_string());
            }
            Ok(st) => {
                let cfg = speaker.config().await;
                let now = SystemTime::now();
                let ago = |secs: u64| {
                    local_or_epoch(
                        now.checked_sub(Duration::from_secs(secs))
                            .unwrap_or(UNIX_EPOCH),
                    )
                };
                let graceful_restart = st.graceful_restart_in_progress.then(|| {
                    // Selection is deferred for the restart time from our start (RFC 4724
                    // section 4.1; Speaker::start).
                    let total = u64::from(cfg.global.graceful_restart.restart_time.max(1));
                    (total.saturating_sub(st.uptime.as_secs()), total)
                });
                let status = Status {
                    version: BIRD_VERSION.to_string(),
                    router_id: st.router_id.to_string(),
                    hostname: hostname(),
                    now: base_time(&local_or_epoch(now), format),
                    boot: base_time(&ago(st.uptime.as_secs()), format),
                    reconfigured: base_time(&ago(st.config_age.as_secs()), format),
                    graceful_restart,
                    down: st
                        .components
                        .into_iter()
                        .filter_map(|c| Some((c.name.to_string(), c.down?)))
                        .collect(),
                };
                r = show_status(&status, format);
            }
        },
        BirdCommand::ShowProtocols { all, select } => match speaker.peers().await {
            Err(e) => {
                r.end(8000, &e.to_string());
            }
            Ok(peers) => {
                let now = SystemTime::now();
                let mut protocols = Vec::new();
                // BIRD 1.x runs one daemon per family; BIRD 2 one for both.
                let shown = |a: IpAddr| format == BirdFormat::Bird2 || family.matches(a);
                for p in peers.iter().filter(|p| shown(p.config.address.addr)) {
                    let chosen = match &select {
                        Select::All => true,
                        Select::Name(n) => *n == p.config.name,
                        Select::Pattern(pat) => pattern_match(pat, &p.config.name),
                    };
                    if !chosen {
                        continue;
                    }
                    let preferred = if all {
                        preferred(speaker, &p.config.name).await
                    } else {
                        None
                    };
                    protocols.push(protocol(p, now, preferred, format));
                }
                r = match (&select, protocols.is_empty()) {
                    // BIRD's grammar rejects an unknown bare name (an undefined symbol).
                    (Select::Name(_), true) => {
                        let mut e = Reply::new();
                        e.end(9001, "syntax error");
                        e
                    }
                    _ => show_protocols(&protocols, all, &select, format),
                };
            }
        },
        BirdCommand::ShowRoute { protocol } => {
            r = route::respond(speaker, protocol.as_deref(), family, format).await;
        }
        BirdCommand::ShowRouteCount => {
            match (
                route_count(speaker, SocketFamily::Ipv4).await,
                route_count(speaker, SocketFamily::Ipv6).await,
            ) {
                (Ok(v4), Ok(v6)) => r = show_route_count(v4, v6, family, format),
                (Err(e), _) | (_, Err(e)) => {
                    r.end(8000, &e.to_string());
                }
            }
        }
    }
    r
}

/// Paths and prefixes of one family's Loc-RIB, counted a page at a time (a full table is
/// never held at once).
async fn route_count(
    speaker: &Speaker,
    family: SocketFamily,
) -> Result<RouteCount, crate::speaker::SpeakerError> {
    let q = RouteQuery {
        table: Table::Loc,
        family: Some(family.filter()),
        ..RouteQuery::default()
    };
    let mut count = RouteCount::default();
    let mut after = None;
    let mut last_prefix = None;
    loop {
        let (routes, next) = speaker.routes_page(q.clone(), after, ROUTES_PAGE).await?;
        for r in &routes {
            count.paths += 1;
            // Pages are in prefix order: a new prefix is one that differs from the last.
            if last_prefix != Some(r.prefix) {
                count.prefixes += 1;
                last_prefix = Some(r.prefix);
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok(count),
        }
    }
}

/// Paths from `peer` that are best in the Loc-RIB.
async fn preferred(speaker: &Speaker, peer: &str) -> Option<usize> {
    let q = RouteQuery {
        peer: Some(peer.to_string()),
        table: Table::Loc,
        ..RouteQuery::default()
    };
    let routes = speaker.routes(q).await.ok()?;
    Some(routes.iter().filter(|r| r.best).count())
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

/// One client connection: greeting, then one reply per command line, until the client
/// leaves or stays idle for `limits.idle` (limits.rs).
async fn serve(
    stream: UnixStream,
    speaker: Speaker,
    family: SocketFamily,
    format: BirdFormat,
    limits: Limits,
) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let hello = hello(BIRD_VERSION);
    limits::write_all(&mut wr, hello.as_str().as_bytes(), limits.write).await?;
    let mut rd = BufReader::new(rd);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let mut bounded = (&mut rd).take(MAX_COMMAND as u64 + 1);
        let n = match tokio::time::timeout(limits.idle, bounded.read_until(b'\n', &mut buf)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()), // idle: close
        };
        if n == 0 {
            return Ok(());
        }
        if buf.last() != Some(&b'\n') && buf.len() > MAX_COMMAND {
            let mut r = Reply::new();
            r.end(9000, "Command too long");
            return limits::write_all(&mut wr, r.as_str().as_bytes(), limits.write).await;
        }
        let line = String::from_utf8_lossy(&buf);
        let cmd = parse(line.trim_end_matches(['\n', '\r']));
        debug!(command = %line.trim_end(), ?cmd, "BIRD socket command");
        let r = respond(cmd, &speaker, family, format).await;
        limits::write_all(&mut wr, r.as_str().as_bytes(), limits.write).await?;
    }
}

/// The answer to a connection over the limit: BIRD's `8000` run-time error class.
const REFUSAL: &[u8] = b"8000 Too many connections\n";

/// A listening BIRD-compatible socket; the socket file is removed when dropped.
#[derive(Debug)]
pub struct BirdServer {
    path: PathBuf,
    family: SocketFamily,
    format: BirdFormat,
    task: JoinHandle<()>,
}

impl Drop for BirdServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl BirdServer {
    /// Binds `path` (see [`super::socket`]) with the BIRD sockets' mode and group of
    /// `config` and answers for `speaker`'s peers of `family`.
    pub fn bind(
        path: &Path,
        config: &ControlConfig,
        family: SocketFamily,
        speaker: Speaker,
    ) -> std::io::Result<BirdServer> {
        let format = config.bird.format;
        let listener = socket::bind(path, &config.bird_access())?;
        let limits = config.limits;
        info!(path = %path.display(), ?family, ?format, mode = format!("{:o}", config.bird.mode), "BIRD-compatible status socket listening");
        let task = limits::accept_loop(listener, limits, "bird", REFUSAL, move |stream| {
            serve(stream, speaker.clone(), family, format, limits)
        });
        Ok(BirdServer {
            path: path.to_owned(),
            family,
            format,
            task,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Makes `slot` match the wanted socket: rebinds on a new path or format, applies a new
/// mode or group, closes when unset. On an error the running socket stays.
fn follow(
    slot: &mut Option<BirdServer>,
    want: Option<&Path>,
    config: &ControlConfig,
    family: SocketFamily,
    speaker: &Speaker,
) -> std::io::Result<()> {
    let format = config.bird.format;
    match (slot.as_ref(), want) {
        (Some(s), Some(p)) if s.path == p && s.format == format && s.family == family => {
            socket::change(p, &config.bird_access())?;
        }
        (Some(s), Some(p)) if s.path == p => {
            // Same path, new format: the old listener must go before the path is free.
            *slot = None;
            *slot = Some(BirdServer::bind(p, config, family, speaker.clone())?);
        }
        (_, Some(p)) => {
            let new = BirdServer::bind(p, config, family, speaker.clone())?;
            *slot = Some(new);
        }
        (Some(old), None) => {
            info!(path = %old.path.display(), "BIRD-compatible socket disabled in the configuration: closed");
            *slot = None;
        }
        (None, None) => {}
    }
    Ok(())
}

/// Opens the configured BIRD-compatible sockets and keeps them in line with the
/// configuration after every reload; the returned task owns them (aborting it closes
/// them and removes their files). Errors binding at start are returned; errors after a
/// reload are logged and the previous socket stays.
pub fn start(speaker: &Speaker, config: &ControlConfig) -> std::io::Result<JoinHandle<()>> {
    let mut v4 = None;
    let mut v6 = None;
    follow(
        &mut v4,
        config.bird.socket.as_deref(),
        config,
        SocketFamily::Ipv4,
        speaker,
    )?;
    follow(
        &mut v6,
        config.bird.socket6.as_deref(),
        config,
        SocketFamily::Ipv6,
        speaker,
    )?;
    let mut updates = speaker.config_updates();
    let speaker = speaker.clone();
    let mut current = config.clone();
    Ok(tokio::spawn(async move {
        while updates.changed().await.is_ok() {
            let want = updates.borrow_and_update().global.control.clone();
            if (&want.bird, &want.group) == (&current.bird, &current.group) {
                continue;
            }
            let mut all = true;
            for (slot, path, family) in [
                (&mut v4, want.bird.socket.as_deref(), SocketFamily::Ipv4),
                (&mut v6, want.bird.socket6.as_deref(), SocketFamily::Ipv6),
            ] {
                if let Err(e) = follow(slot, path, &want, family, &speaker) {
                    error!(error = %e, ?family, "cannot apply the BIRD socket settings; the old socket stays");
                    all = false;
                }
            }
            // Recorded only once applied: the next reload tries again.
            if all {
                current = want;
            }
        }
        // Keep the sockets until the task is aborted (the speaker shuts down).
        let _keep = (v4, v6);
        std::future::pending::<()>().await;
    }))
}

pub mod route;

#[cfg(test)]
mod tests;
