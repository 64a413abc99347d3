//! `show protocols [all]`: one `BGP` row per session with BIRD's state, since and info
//! columns, and the detail block of `all` (BIRD 1.6's `proto_show_basic_info` and
//! `bgp_show_proto_info`, or BIRD 2.0's), as calico-node parses them.

use std::time::{SystemTime, UNIX_EPOCH};

use bgp_proto::Capability;
use bgp_speaker::config::BirdFormat;
use bgp_speaker::{Peer, PeerState};

use super::command::Select;
use super::reply::Reply;
use super::time::{local_or_epoch, proto_time};

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
        // Waiting to retry after a failed connection: BIRD's outgoing connection is
        // Active then (calico's `Active        Socket: Connection refused`).
        PeerState::Idle
            if p.last_error
                .as_deref()
                .and_then(bgp_speaker::connect_failure)
                .is_some() =>
        {
            (ProtoState::Start, "Active")
        }
        other => (ProtoState::Start, other.as_str()),
    };
    // bgp_last_errmsg: a failed connection is BIRD's socket error class, `Socket: ` and
    // the system's words (`Socket: Connection refused`).
    let error = match (state, &p.last_error) {
        (ProtoState::Start, Some(e)) => match bgp_speaker::connect_failure(e) {
            Some(why) => format!("Socket: {why}"),
            None => e.clone(),
        },
        _ => String::new(),
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
    if state == ProtoState::Start && !error.is_empty() {
        detail.push(format!("    Last error:       {error}"));
    }
    Protocol {
        name: c.name.clone(),
        state,
        since,
        info,
        detail,
    }
}
