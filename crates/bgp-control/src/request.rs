//! What a client sends: a [`Request`] line carrying one [`Command`].

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::PROTOCOL_VERSION;

/// Where a page of `show_routes` ended: its last entry. Order: Loc-RIB by prefix (IPv4
/// first) then the prefix's paths; Adj-RIB-In/Out by peer name, prefix, path identifier.
/// Pages are not a snapshot: routes that change between two pages may be missed or seen
/// twice, as in BIRD's `show route`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteCursor {
    /// Adj-RIB-In/Out: the peer of the last entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The prefix of the last entry.
    pub prefix: IpNet,
    /// Loc-RIB: the last entry's index among its prefix's paths; Adj-RIB-In/Out: its
    /// path identifier.
    pub path: u32,
}

/// A request line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version ([`PROTOCOL_VERSION`]).
    pub version: u32,
    #[serde(flatten)]
    /// What to do.
    pub command: Command,
}

impl Request {
    /// A request of the current version.
    pub fn new(command: Command) -> Request {
        Request {
            version: PROTOCOL_VERSION,
            command,
        }
    }
}

/// Which table `show routes` reads.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Loc-RIB: every candidate path, best ones marked.
    #[default]
    Loc,
    /// Adj-RIB-In: what peers sent, before import policy.
    In,
    /// Adj-RIB-Out: what we announce to peers.
    Out,
}

/// Address family filter.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FamilyFilter {
    /// IPv4 unicast.
    Ipv4,
    /// IPv6 unicast.
    Ipv6,
}

/// Administrative action on a peer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerAction {
    /// Close the session with Cease/Administrative Reset (RFC 4486) and let it
    /// re-establish.
    Reset,
    /// Close with Cease/Administrative Shutdown and keep it down.
    Disable,
    /// Start a disabled session again.
    Enable,
}

/// The commands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Daemon identity and counters.
    Status,
    /// Every peer, one summary row each.
    ShowPeers,
    /// One peer in detail.
    ShowPeer {
        /// The peer.
        name: String,
    },
    /// Routes, filtered.
    ShowRoutes {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        /// Only this prefix.
        prefix: Option<IpNet>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        /// Only paths from (loc, in) or to (out) this peer.
        peer: Option<String>,
        #[serde(default)]
        /// Which table.
        table: Table,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        /// Only this address family.
        family: Option<FamilyFilter>,
        /// At most this many entries (capped at [`MAX_PAGE`](crate::MAX_PAGE)), the
        /// answer's `next` telling where the next page starts. Without it the whole table
        /// is streamed in one answer. Added within version 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        /// Start after this entry (the `next` of the previous page).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<RouteCursor>,
        /// With `prefix`: that prefix and every more specific one (BIRD's `show route in
        /// PREFIX`) instead of exactly it. Added within version 1.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        longer: bool,
        /// Only paths carrying this community: standard `ASN:VALUE` (RFC 1997) or large
        /// `ASN:DATA1:DATA2` (RFC 8092). Added within version 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        community: Option<String>,
    },
    /// Longest-prefix match of an address: all paths, the best marked.
    ShowRoute {
        /// The address to look up.
        address: IpAddr,
    },
    /// Re-read the configuration files and apply the difference.
    Reload,
    /// Stop the daemon, as SIGTERM does; with `for_good` the node leaves: every session
    /// ends with Cease / Hard Reset where the RFC 8538 N bit was negotiated, with a plain
    /// Cease elsewhere, so every peer drops our routes at once (instead of keeping them
    /// for a restart). Answered before the sessions close. Added within version 1.
    Shutdown {
        /// The node leaves for good (otherwise: as SIGTERM).
        #[serde(default)]
        for_good: bool,
    },
    /// Calico mode: the datastore bgpd follows, its sync state and what was derived from
    /// it. Added within version 1 (a daemon not in Calico mode answers with an error).
    ShowDatastore,
    /// The kernel FIB as bgpd's installer sees it: the routes it installed, those the
    /// kernel refused and why, the retries pending. Added within version 1 (a daemon
    /// without a `[kernel]` section answers with an error).
    ShowFib,
    /// Administrative action on one peer.
    Peer {
        /// The peer.
        name: String,
        /// What to do.
        action: PeerAction,
    },
    /// The BFD sessions (RFC 5880) of the peers with `bfd` configured. Added within
    /// version 1.
    ShowBfd,
    /// Replace the daemon's log filter: a level (`off`, `error`, `warn`, `info`, `debug`,
    /// `trace`) or comma-separated directives such as `info,bgp_speaker::fib=trace`.
    /// Added within version 1.
    LogLevel {
        /// The new filter.
        level: String,
    },
    /// Write a TABLE_DUMP_V2 MRT file of the Loc-RIB (RFC 6396; `.gz` or `.bz2`
    /// compresses) at `path`, an absolute path in an existing directory, as bgpd sees the
    /// file system. Added within version 1.
    MrtSave {
        /// Where to write it.
        path: String,
    },
    /// A live stream of peer state changes, routes peers announce and withdraw, and
    /// best-path changes. The daemon answers once (`done`, or an error for an unknown
    /// peer), then sends one `event` answer per line as things happen until the client
    /// closes the connection. A client that reads too slowly loses events and is told how
    /// many (a `lagged` event); one that reads nothing for the control socket's `timeout`
    /// is disconnected. Added within version 1.
    Monitor {
        /// Only this peer's state changes and routes (no best-path changes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_form() {
        let r = Request::new(Command::ShowPeers);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"version":1,"command":"show_peers"}"#
        );
        let r = Request::new(Command::Peer {
            name: "a".into(),
            action: PeerAction::Reset,
        });
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"version":1,"command":"peer","name":"a","action":"reset"}"#
        );
        let r = Request::new(Command::LogLevel {
            level: "debug".into(),
        });
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"version":1,"command":"log_level","level":"debug"}"#
        );
        let parsed: Request = serde_json::from_str(
            r#"{"version":1,"command":"show_routes","prefix":"10.0.0.0/24","table":"in"}"#,
        )
        .unwrap();
        assert_eq!(
            parsed.command,
            Command::ShowRoutes {
                prefix: Some("10.0.0.0/24".parse().unwrap()),
                peer: None,
                table: Table::In,
                family: None,
                limit: None,
                after: None,
                longer: false,
                community: None,
            }
        );
        let r = Request::new(Command::Monitor {
            peer: Some("b".into()),
        });
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"version":1,"command":"monitor","peer":"b"}"#
        );
    }

    #[test]
    fn show_bfd_wire_form() {
        let r = Request::new(Command::ShowBfd);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"version":1,"command":"show_bfd"}"#
        );
    }

    #[test]
    fn unknown_command_is_an_error() {
        assert!(serde_json::from_str::<Request>(r#"{"version":1,"command":"rm_rf"}"#).is_err());
    }
}
