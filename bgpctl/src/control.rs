//! Control-socket commands: `show`, `reload`, `peer NAME reset|disable|enable`,
//! `log level LEVEL`.
//!
//! Each command sends one JSON-lines request ([`bgp_control`]) to bgpd's
//! control socket and prints the answer as a table, or as JSON with `--json`. Exit code 0
//! on success, 1 when the daemon answered with an error, 2 when it could not be reached.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bgp_control::{
    Command, DatastoreReport, FamilyFilter, Outcome, PeerAction, PeerDetail, PeerSummary, Reply,
    Request, Response, RouteEntry, Table, DEFAULT_CONTROL_SOCKET, MAX_LINE,
};
use clap::{Args, Subcommand, ValueEnum};
use ipnet::IpNet;

mod detail;
mod fib;

/// How long to wait for the daemon's answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where the daemon is and how to print.
#[derive(Debug, Args)]
pub struct Conn {
    /// Control socket of bgpd.
    #[arg(
        short = 's',
        long = "socket",
        env = "BGPCTL_SOCKET",
        default_value = DEFAULT_CONTROL_SOCKET,
        global = true
    )]
    socket: PathBuf,
    /// Print the daemon's answer as JSON.
    #[arg(long, global = true)]
    json: bool,
}

impl Conn {
    /// The control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Whether to print JSON.
    pub fn json(&self) -> bool {
        self.json
    }
}

/// `bgpctl show ...`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(subcommand)]
    what: Show,
}

#[derive(Debug, Subcommand)]
enum Show {
    /// Daemon identity and counters.
    Status,
    /// Every peer: name, address, AS, state, uptime, prefixes, last error.
    Peers,
    /// One peer in detail: capabilities, timers, counters, last NOTIFICATION.
    Peer { name: String },
    /// Routes of a table.
    Routes {
        /// Only this prefix (with --longer: and its more specific prefixes).
        prefix: Option<IpNet>,
        /// With PREFIX: the prefix and every more specific one (BIRD's `show route in`).
        #[arg(long, requires = "prefix")]
        longer: bool,
        /// Only paths carrying this community: ASN:VALUE (or a well-known name such as
        /// no-export) or a large community GLOBAL:LOCAL1:LOCAL2.
        #[arg(long)]
        community: Option<String>,
        /// Only paths from (loc, in) or to (out) this peer.
        #[arg(long)]
        peer: Option<String>,
        #[arg(long, value_enum, default_value_t = TableArg::Loc)]
        table: TableArg,
        #[arg(long, value_enum)]
        family: Option<FamilyArg>,
        /// Show at most this many routes (the table is read in pages either way).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Every path of a prefix, or of the longest prefix matching an address, in detail:
    /// all attributes, the best marked, why the others lost.
    Route {
        /// A prefix (10.0.0.0/24) or an address (10.0.0.1: longest-prefix match).
        target: String,
    },
    /// Calico mode: the datastore followed, its sync state, what was derived from it.
    Datastore,
    /// The kernel FIB: routes bgpd installed, those the kernel refused and why, retries.
    Fib,
    /// BFD sessions: peer, addresses, local/remote state, negotiated intervals,
    /// multipliers, last diagnostics, uptime.
    Bfd,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum TableArg {
    Loc,
    In,
    Out,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum FamilyArg {
    Ipv4,
    Ipv6,
}

/// `bgpctl peer NAME ACTION`.
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// Peer name.
    name: String,
    #[arg(value_enum)]
    action: ActionArg,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum ActionArg {
    /// Close with Cease/Administrative Reset and re-establish.
    Reset,
    /// Close with Cease/Administrative Shutdown and keep down.
    Disable,
    /// Start a disabled session.
    Enable,
}

/// Why a request failed.
pub(crate) enum Failure {
    /// The daemon could not be reached.
    Unreachable(String),
    /// The daemon answered with an error.
    Daemon(String),
}

pub(crate) fn unreachable_message(path: &Path, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => format!(
            "bgpd is not running: no control socket at {} (use -s to choose another)",
            path.display()
        ),
        ErrorKind::ConnectionRefused => format!(
            "bgpd is not running: {} exists but nobody is listening",
            path.display()
        ),
        ErrorKind::PermissionDenied => format!(
            "permission denied on {}: run as root or as a member of the socket's group",
            path.display()
        ),
        _ => format!("cannot connect to {}: {e}", path.display()),
    }
}

/// One connection to the daemon, for one or more requests.
struct Client {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    fn connect(socket: &Path) -> Result<Client, Failure> {
        let s = UnixStream::connect(socket)
            .map_err(|e| Failure::Unreachable(unreachable_message(socket, &e)))?;
        s.set_read_timeout(Some(TIMEOUT)).map_err(io_failure)?;
        let reader = BufReader::new(s.try_clone().map_err(io_failure)?);
        Ok(Client { writer: s, reader })
    }

    fn request(&mut self, command: Command) -> Result<Response, Failure> {
        let mut line = serde_json::to_vec(&Request::new(command))
            .map_err(|e| Failure::Daemon(e.to_string()))?;
        line.push(b'\n');
        self.writer.write_all(&line).map_err(io_failure)?;
        // Bounded: answers are pages, or whole tables from daemons without paging.
        let mut answer = String::new();
        (&mut self.reader)
            .take(MAX_LINE as u64)
            .read_line(&mut answer)
            .map_err(io_failure)?;
        if answer.is_empty() {
            return Err(Failure::Unreachable(
                "bgpd closed the connection without answering".into(),
            ));
        }
        serde_json::from_str(&answer)
            .map_err(|e| Failure::Daemon(format!("unreadable answer from bgpd: {e}")))
    }
}

pub(crate) fn io_failure(e: std::io::Error) -> Failure {
    Failure::Unreachable(format!("talking to bgpd: {e}"))
}

fn request(socket: &Path, command: Command) -> Result<Response, Failure> {
    Client::connect(socket)?.request(command)
}

fn run(conn: &Conn, command: Command, print: impl FnOnce(&Reply)) -> ExitCode {
    match request(&conn.socket, command) {
        Ok(resp) => {
            if conn.json {
                match serde_json::to_string_pretty(&resp) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("bgpctl: {e}"),
                }
            }
            match resp.outcome {
                Outcome::Ok { result } => {
                    if !conn.json {
                        print(&result);
                    }
                    ExitCode::SUCCESS
                }
                Outcome::Error { message } => {
                    eprintln!("bgpctl: {message}");
                    ExitCode::from(1)
                }
            }
        }
        Err(Failure::Unreachable(m)) => {
            eprintln!("bgpctl: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Daemon(m)) => {
            eprintln!("bgpctl: {m}");
            ExitCode::from(1)
        }
    }
}

/// `bgpctl show ...`.
pub fn show(conn: &Conn, args: ShowArgs) -> ExitCode {
    let command = match args.what {
        Show::Status => Command::Status,
        Show::Peers => Command::ShowPeers,
        Show::Peer { name } => Command::ShowPeer { name },
        Show::Datastore => Command::ShowDatastore,
        Show::Fib => Command::ShowFib,
        Show::Bfd => Command::ShowBfd,
        Show::Routes {
            prefix,
            longer,
            community,
            peer,
            table,
            family,
            limit,
        } => {
            let filter = Command::ShowRoutes {
                prefix,
                longer,
                community,
                peer,
                table: match table {
                    TableArg::Loc => Table::Loc,
                    TableArg::In => Table::In,
                    TableArg::Out => Table::Out,
                },
                family: family.map(|f| match f {
                    FamilyArg::Ipv4 => FamilyFilter::Ipv4,
                    FamilyArg::Ipv6 => FamilyFilter::Ipv6,
                }),
                limit: None,
                after: None,
            };
            return show_routes(conn, filter, limit.unwrap_or(usize::MAX));
        }
        Show::Route { target } => {
            let command = if target.contains('/') {
                match target.parse::<IpNet>() {
                    Ok(prefix) => Command::ShowRoutes {
                        prefix: Some(prefix),
                        peer: None,
                        table: Table::Loc,
                        family: None,
                        limit: None,
                        after: None,
                        longer: false,
                        community: None,
                    },
                    Err(e) => return fail(Failure::Daemon(format!("{target}: {e}"))),
                }
            } else {
                match target.parse::<IpAddr>() {
                    Ok(address) => Command::ShowRoute { address },
                    Err(e) => return fail(Failure::Daemon(format!("{target}: {e}"))),
                }
            };
            return run(conn, command, |r| match r {
                Reply::Routes { routes, .. } => print!("{}", detail::routes(routes)),
                other => print!("{}", render(other)),
            });
        }
    };
    run(conn, command, |r| print!("{}", render(r)))
}

/// Routes asked per page.
const PAGE: usize = 5000;

/// `bgpctl show routes`: the table a page at a time over one connection, each page printed
/// as it arrives (text: one table, the header once; `--json`: one protocol answer whose
/// routes array is written entry by entry), so neither side holds the whole table.
fn show_routes(conn: &Conn, filter: Command, max: usize) -> ExitCode {
    let Command::ShowRoutes {
        prefix,
        peer,
        table,
        family,
        longer,
        community,
        ..
    } = filter
    else {
        return ExitCode::from(1);
    };
    let mut client = match Client::connect(&conn.socket) {
        Ok(c) => c,
        Err(f) => return fail(f),
    };
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let mut printer = RoutesPrinter::new(conn.json);
    let mut after = None;
    let mut shown = 0usize;
    loop {
        let want = PAGE.min(max - shown);
        let command = Command::ShowRoutes {
            prefix,
            peer: peer.clone(),
            table,
            family,
            limit: u32::try_from(want).ok(),
            after: after.take(),
            longer,
            community: community.clone(),
        };
        let resp = match client.request(command) {
            Ok(r) => r,
            Err(f) => return fail(f),
        };
        match resp.outcome {
            Outcome::Ok {
                result: Reply::Routes { routes, next },
            } => {
                shown += routes.len();
                if printer.page(&mut out, &routes).is_err() {
                    return ExitCode::from(2);
                }
                match next {
                    Some(n) if shown < max => after = Some(n),
                    _ => break,
                }
            }
            Outcome::Ok { result } => {
                return fail(Failure::Daemon(format!("unexpected answer {result:?}")));
            }
            Outcome::Error { message } if !printer.started() => {
                if conn.json {
                    let resp = Response::error(message.clone());
                    if let Ok(s) = serde_json::to_string_pretty(&resp) {
                        let _ = writeln!(out, "{s}");
                    }
                }
                let _ = out.flush();
                eprintln!("bgpctl: {message}");
                return ExitCode::from(1);
            }
            Outcome::Error { message } => return fail(Failure::Daemon(message)),
        }
    }
    if printer.finish(&mut out).and_then(|()| out.flush()).is_err() {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

pub(crate) fn fail(f: Failure) -> ExitCode {
    match f {
        Failure::Unreachable(m) => {
            eprintln!("bgpctl: {m}");
            ExitCode::from(2)
        }
        Failure::Daemon(m) => {
            eprintln!("bgpctl: {m}");
            ExitCode::from(1)
        }
    }
}

/// Prints route pages as they come.
struct RoutesPrinter {
    json: bool,
    pages: usize,
    any: bool,
}

impl RoutesPrinter {
    fn new(json: bool) -> RoutesPrinter {
        RoutesPrinter {
            json,
            pages: 0,
            any: false,
        }
    }

    fn started(&self) -> bool {
        self.pages > 0
    }

    fn page(&mut self, out: &mut impl Write, routes: &[RouteEntry]) -> std::io::Result<()> {
        if self.json {
            if self.pages == 0 {
                write!(out, "{}", json_frame().0)?;
            }
            for r in routes {
                if self.any {
                    out.write_all(b",")?;
                }
                out.write_all(b"\n")?;
                serde_json::to_writer(&mut *out, r)?;
                self.any = true;
            }
        } else if !routes.is_empty() {
            let t = routes_table(routes);
            // The header once: later pages print their rows only.
            let body = if self.any {
                t.split_once('\n').map_or("", |(_, rest)| rest)
            } else {
                t.as_str()
            };
            // The flags legend once, at the end.
            let body = body.strip_suffix(FLAGS_LEGEND).unwrap_or(body);
            out.write_all(body.as_bytes())?;
            self.any = true;
        }
        self.pages += 1;
        Ok(())
    }

    fn finish(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if self.json {
            if self.pages == 0 {
                write!(out, "{}", json_frame().0)?;
            }
            writeln!(out, "\n{}", json_frame().1)
        } else if self.any {
            out.write_all(FLAGS_LEGEND.as_bytes())
        } else {
            out.write_all(b"no routes\n")
        }
    }
}

/// The JSON around the routes array of a `show_routes` answer (what the daemon itself
/// writes), split where the entries go.
fn json_frame() -> (String, String) {
    let empty = serde_json::to_string(&Response::ok(Reply::Routes {
        routes: Vec::new(),
        next: None,
    }))
    .unwrap_or_default();
    match empty.split_once("[]") {
        Some((head, tail)) => (format!("{head}["), format!("]{tail}")),
        None => (String::new(), String::new()),
    }
}

/// `bgpctl reload`.
pub fn reload(conn: &Conn) -> ExitCode {
    run(conn, Command::Reload, |r| print!("{}", render(r)))
}

/// `bgpctl shutdown [--for-good]`.
#[derive(Debug, Args)]
pub struct ShutdownArgs {
    /// The node leaves for good: peers drop its routes at once instead of keeping them
    /// for a restart (Cease / Hard Reset with the RFC 8538 N bit, plain Cease without).
    #[arg(long)]
    for_good: bool,
}

/// `bgpctl shutdown [--for-good]`.
pub fn shutdown(conn: &Conn, args: ShutdownArgs) -> ExitCode {
    run(
        conn,
        Command::Shutdown {
            for_good: args.for_good,
        },
        |r| print!("{}", render(r)),
    )
}

/// `bgpctl peer NAME ACTION`.
pub fn peer(conn: &Conn, args: PeerArgs) -> ExitCode {
    let action = match args.action {
        ActionArg::Reset => PeerAction::Reset,
        ActionArg::Disable => PeerAction::Disable,
        ActionArg::Enable => PeerAction::Enable,
    };
    run(
        conn,
        Command::Peer {
            name: args.name,
            action,
        },
        |r| print!("{}", render(r)),
    )
}

/// `bgpctl mrt save FILE`: bgpd writes the table dump; a relative `file` is taken from
/// bgpctl's working directory.
pub fn mrt_save(conn: &Conn, file: &std::path::Path) -> ExitCode {
    let path = match std::path::absolute(file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bgpctl: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let command = Command::MrtSave {
        path: path.to_string_lossy().into_owned(),
    };
    run(conn, command, |r| print!("{}", render(r)))
}

/// `bgpctl log ...`.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Replace bgpd's log filter until it restarts (or until the next change): a level
    /// (off, error, warn, info, debug, trace) or directives such as
    /// `info,bgp_speaker::fib=trace` (the syntax of BGPD_LOG and RUST_LOG).
    Level {
        /// The new filter.
        level: String,
    },
}

/// `bgpctl log level LEVEL`.
pub fn log(conn: &Conn, cmd: LogCommand) -> ExitCode {
    match cmd {
        LogCommand::Level { level } => run(conn, Command::LogLevel { level }, |r| {
            print!("{}", render(r))
        }),
    }
}

/// `1d02h03m`, `02:03:04`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h{m:02}m")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// Left-aligned columns, two spaces apart.
pub(crate) fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            if i + 1 == n {
                s.push_str(&c);
            } else {
                let pad = w.get(i).copied().unwrap_or(0);
                s.push_str(&format!("{c:<pad$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

fn peers_table(peers: &[PeerSummary]) -> String {
    let rows: Vec<Vec<String>> = peers
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.address.clone(),
                p.remote_as.to_string(),
                p.state.clone(),
                duration(p.uptime_secs),
                p.prefixes_received.to_string(),
                p.prefixes_accepted.to_string(),
                p.prefixes_sent.to_string(),
                p.messages_received.to_string(),
                p.messages_sent.to_string(),
                p.output_queue_bytes.to_string(),
                p.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "Name",
            "Address",
            "AS",
            "State",
            "Uptime",
            "Received",
            "Accepted",
            "Sent",
            "MsgRcvd",
            "MsgSent",
            "OutQ",
            "Last error",
        ],
        &rows,
    )
}

/// RFC 4456 reflection attributes of a path: `10.0.0.2 [10.0.0.9 10.0.0.8]` (ORIGINATOR_ID,
/// then the CLUSTER_LIST, most recent reflector first), `-` when it has neither.
fn reflection(r: &RouteEntry) -> String {
    let mut s = r.originator_id.clone().unwrap_or_else(|| "-".into());
    if !r.cluster_list.is_empty() {
        s.push_str(&format!(" [{}]", r.cluster_list.join(" ")));
    }
    s
}

fn routes_table(routes: &[RouteEntry]) -> String {
    if routes.is_empty() {
        return "no routes\n".into();
    }
    // The reflection column only when some path was reflected.
    let reflected = routes
        .iter()
        .any(|r| r.originator_id.is_some() || !r.cluster_list.is_empty());
    let rows: Vec<Vec<String>> = routes
        .iter()
        .map(|r| {
            let mut flags = String::new();
            flags.push(if r.best { '*' } else { ' ' });
            flags.push(if r.multipath { '=' } else { ' ' });
            flags.push(if r.stale { 'S' } else { ' ' });
            let mut row = vec![
                flags,
                r.prefix.clone(),
                r.peer.clone(),
                r.next_hop.clone().unwrap_or_else(|| "-".into()),
                if r.as_path.is_empty() {
                    "-".into()
                } else {
                    r.as_path.clone()
                },
                r.local_pref.map_or("-".into(), |v| v.to_string()),
                r.med.map_or("-".into(), |v| v.to_string()),
                r.origin.clone(),
                r.communities
                    .iter()
                    .chain(&r.large_communities)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" "),
            ];
            if reflected {
                row.push(reflection(r));
            }
            row.push(
                r.not_best_reason
                    .as_ref()
                    .map(|s| format!("lost: {s}"))
                    .unwrap_or_default(),
            );
            row
        })
        .collect();
    let mut head = vec![
        "",
        "Prefix",
        "From",
        "Next hop",
        "AS path",
        "LocPref",
        "MED",
        "Origin",
        "Communities",
    ];
    if reflected {
        head.push("Originator [cluster list]");
    }
    head.push("");
    table(&head, &rows) + FLAGS_LEGEND
}

/// The legend under a routes table.
const FLAGS_LEGEND: &str = "flags: * best, = multipath, S stale\n";

fn peer_detail(d: &PeerDetail) -> String {
    let s = &d.summary;
    let mut out = String::new();
    let mut kv = |k: &str, v: String| out.push_str(&format!("  {k:<30}{v}\n"));
    kv("Name:", s.name.clone());
    if let Some(desc) = &d.description {
        kv("Description:", desc.clone());
    }
    kv("Address:", format!("{} port {}", s.address, d.port));
    kv(
        "Remote AS / local AS:",
        format!("{} / {}", s.remote_as, d.local_as),
    );
    kv(
        "State:",
        format!("{} for {}", s.state, duration(s.uptime_secs)),
    );
    kv(
        "Peer router id:",
        d.peer_id.clone().unwrap_or_else(|| "-".into()),
    );
    kv(
        "Local address:",
        d.local_address.clone().unwrap_or_else(|| "-".into()),
    );
    kv(
        "Mode:",
        format!(
            "{}{}",
            if d.passive { "passive" } else { "active" },
            if d.route_reflector_client {
                ", route reflector client"
            } else {
                ""
            }
        ),
    );
    let timer = |configured: u16, in_use: Option<u16>| match in_use {
        Some(n) if n != configured => {
            format!("{} (configured {})", seconds(n), seconds(configured))
        }
        Some(n) => format!("{} (negotiated)", seconds(n)),
        None => format!("{} (configured)", seconds(configured)),
    };
    kv("Hold time:", timer(d.hold_time, d.negotiated_hold_time));
    kv(
        "Keepalive time:",
        timer(d.keepalive, d.negotiated_keepalive),
    );
    kv("Families:", d.families.join(", "));
    kv("Import policy:", policy_chain(&d.import));
    kv("Export policy:", policy_chain(&d.export));
    kv(
        "Prefixes recv/accepted/sent:",
        format!(
            "{} / {} / {}",
            s.prefixes_received, s.prefixes_accepted, s.prefixes_sent
        ),
    );
    let c = &d.counters;
    kv(
        "Messages received / sent:",
        format!("{} / {}", s.messages_received, s.messages_sent),
    );
    kv("Output queue:", format!("{} bytes", s.output_queue_bytes));
    kv(
        "UPDATEs received / sent:",
        format!("{} / {}", c.updates_received, c.updates_sent),
    );
    kv(
        "NOTIFICATIONs recv / sent:",
        format!("{} / {}", c.notifications_received, c.notifications_sent),
    );
    kv(
        "Established transitions:",
        c.established_transitions.to_string(),
    );
    kv(
        "Last error:",
        s.last_error.clone().unwrap_or_else(|| "-".into()),
    );
    kv(
        "Last NOTIFICATION sent:",
        d.last_notification_sent
            .clone()
            .unwrap_or_else(|| "-".into()),
    );
    kv(
        "Last NOTIFICATION received:",
        d.last_notification_received
            .clone()
            .unwrap_or_else(|| "-".into()),
    );
    for (k, caps) in [
        ("Capabilities sent:", &d.capabilities_sent),
        ("Capabilities received:", &d.capabilities_received),
    ] {
        kv(k, caps.first().cloned().unwrap_or_else(|| "-".into()));
        for cap in caps.iter().skip(1) {
            kv("", cap.clone());
        }
    }
    out
}

/// A time in seconds as words: `90 seconds`, `1 second`, `disabled` for 0 (a hold time
/// of 0 turns the keepalive and hold timers off, RFC 4271 4.2).
fn seconds(n: u16) -> String {
    match n {
        0 => "disabled".into(),
        1 => "1 second".into(),
        n => format!("{n} seconds"),
    }
}

/// A policy chain as words: `a, then b`, or what an empty chain means.
fn policy_chain(chain: &[String]) -> String {
    if chain.is_empty() {
        "none (the default: accept iBGP, reject eBGP, RFC 8212)".into()
    } else {
        chain.join(", then ")
    }
}

/// `show datastore`.
fn datastore(d: &DatastoreReport) -> String {
    let mut out = format!(
        "datastore {}\nnode {}: {}, {}, revision {}\n",
        d.datastore,
        d.node,
        d.state,
        if d.connected {
            "connected"
        } else {
            "not connected"
        },
        d.revision
    );
    out.push_str(&format!(
        "{} resources, {} listings, {} change batches, {} failures\n",
        d.resources, d.listings, d.batches, d.failures
    ));
    if let Some(e) = &d.last_error {
        out.push_str(&format!(
            "last error {} ago: {}\n",
            duration(e.age_secs),
            e.message
        ));
    }
    for b in &d.bad_values {
        out.push_str(&format!("undecodable: {b}\n"));
    }
    if !d.synced {
        out.push_str("no complete listing yet: no session configured\n");
    }
    out.push_str(&format!(
        "derived: {} nodes, {} peers, {} configurations applied\n",
        d.nodes,
        d.peers.len(),
        d.applied
    ));
    if let Some(e) = &d.last_derive_error {
        out.push_str(&format!(
            "last derivation error {} ago (running configuration kept): {}\n",
            duration(e.age_secs),
            e.message
        ));
    }
    for p in &d.peers {
        out.push_str(&format!("  {p}\n"));
    }
    out
}

/// Human rendering of a reply.
pub fn render(r: &Reply) -> String {
    match r {
        Reply::Status(s) => {
            let mut out = format!(
                "bgpd {} AS {} router id {}\nup {}, {} peers ({} established), {} prefixes\nconfig {} (loaded {} ago){}\n",
                s.version,
                s.asn,
                s.router_id,
                duration(s.uptime_secs),
                s.peers,
                s.peers_established,
                s.loc_rib_prefixes,
                s.config_file.as_deref().unwrap_or("-"),
                duration(s.config_age_secs),
                if s.graceful_restart_in_progress { "\ngraceful restart in progress" } else { "" }
            );
            for c in &s.components {
                out.push_str(&match &c.reason {
                    None => format!("{}: up for {}\n", c.name, duration(c.since_secs)),
                    Some(why) => {
                        format!("{}: DOWN for {}: {why}\n", c.name, duration(c.since_secs))
                    }
                });
            }
            out
        }
        Reply::Peers { peers } => peers_table(peers),
        Reply::Peer(d) => peer_detail(d),
        Reply::Routes { routes, .. } => routes_table(routes),
        Reply::Datastore(d) => datastore(d),
        Reply::Fib(f) => fib::render(f),
        Reply::Bfd { sessions } => crate::bfd::sessions_table(sessions),
        Reply::Event(e) => crate::monitor::line_of(e) + "\n",
        Reply::Done { message } => format!("{message}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(0), "00:00:00");
        assert_eq!(duration(3723), "01:02:03");
        assert_eq!(duration(90000), "1d01h00m");
    }

    #[test]
    fn peers_table_aligns() {
        let p = PeerSummary {
            name: "Mesh_10_0_0_2".into(),
            address: "10.0.0.2".into(),
            remote_as: 64512,
            state: "Established".into(),
            uptime_secs: 61,
            prefixes_received: 3,
            prefixes_accepted: 2,
            prefixes_sent: 1,
            last_error: None,
            messages_received: 12,
            messages_sent: 10,
            output_queue_bytes: 0,
            connect_error: None,
        };
        let t = peers_table(&[p]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("Name           Address   AS     State"));
        assert!(lines[1].starts_with("Mesh_10_0_0_2  10.0.0.2  64512  Established  00:01:01  3"));
        assert!(
            lines[0].contains("Sent  MsgRcvd  MsgSent  OutQ  Last error"),
            "{t}"
        );
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(&row[5..11], &["3", "2", "1", "12", "10", "0"]);
    }

    fn route(originator: Option<&str>, clusters: &[&str]) -> RouteEntry {
        RouteEntry {
            prefix: "10.2.2.0/24".into(),
            path_id: None,
            peer: "rr".into(),
            next_hop: Some("127.0.2.2".into()),
            as_path: String::new(),
            as_path_segments: Vec::new(),
            origin: "IGP".into(),
            local_pref: Some(100),
            med: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
            best: true,
            multipath: false,
            not_best_reason: None,
            age_secs: None,
            stale: false,
            originator_id: originator.map(str::to_owned),
            cluster_list: clusters.iter().map(|c| c.to_string()).collect(),
            interface: None,
            extended_communities: Vec::new(),
            atomic_aggregate: false,
            aggregator: None,
            otc: None,
            unknown_attributes: Vec::new(),
        }
    }

    #[test]
    fn routes_table_shows_reflection_only_when_present() {
        let plain = routes_table(&[route(None, &[])]);
        assert!(!plain.contains("Originator"), "{plain}");
        let t = routes_table(&[
            route(Some("10.2.0.2"), &["10.2.0.1", "10.9.0.1"]),
            route(None, &[]),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("Originator [cluster list]"), "{t}");
        assert!(lines[1].contains("10.2.0.2 [10.2.0.1 10.9.0.1]"), "{t}");
        assert!(lines[2].trim_end().ends_with('-'), "{t}");
    }

    #[test]
    fn unreachable_messages() {
        let p = Path::new("/nonexistent/bgpd.sock");
        let e = UnixStream::connect(p).unwrap_err();
        assert!(unreachable_message(p, &e).contains("bgpd is not running"));
    }
}
