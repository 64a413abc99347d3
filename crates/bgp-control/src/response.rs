//! What the daemon answers: a [`Response`] line, success with a [`Reply`] or an error.

use serde::{Deserialize, Serialize};

use crate::request::RouteCursor;
use crate::PROTOCOL_VERSION;

/// A response line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version ([`PROTOCOL_VERSION`]).
    pub version: u32,
    #[serde(flatten)]
    /// Success or error.
    pub outcome: Outcome,
}

impl Response {
    /// A success response.
    pub fn ok(result: Reply) -> Response {
        Response {
            version: PROTOCOL_VERSION,
            outcome: Outcome::Ok { result },
        }
    }

    /// An error response.
    pub fn error(message: impl Into<String>) -> Response {
        Response {
            version: PROTOCOL_VERSION,
            outcome: Outcome::Error {
                message: message.into(),
            },
        }
    }
}

/// Success or failure of a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The request succeeded.
    Ok {
        /// The answer.
        result: Reply,
    },
    /// The request failed.
    Error {
        /// Why the request failed.
        message: String,
    },
}

/// The result of a successful request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// Answer to `status`.
    Status(DaemonStatus),
    /// Answer to `show_peers`.
    Peers {
        /// One row per peer.
        peers: Vec<PeerSummary>,
    },
    /// Answer to `show_peer`.
    Peer(Box<PeerDetail>),
    /// Answer to `show_routes` and `show_route`.
    Routes {
        /// The matching paths.
        routes: Vec<RouteEntry>,
        /// A page of `show_routes` with `limit` that filled up: where the next one starts
        /// (pass it as `after`). Absent on the last page. Added within version 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<RouteCursor>,
    },
    /// Answer to `show_datastore`.
    Datastore(Box<DatastoreReport>),
    /// Answer to `show_fib`.
    Fib(Box<FibReport>),
    /// Answer to `show_bfd`. Added within version 1.
    Bfd {
        /// One row per session, by peer name.
        sessions: Vec<BfdSessionInfo>,
    },
    /// One event of a `monitor` stream. Added within version 1.
    Event(Box<MonitorEvent>),
    /// A command that only reports what it did.
    Done {
        /// What was done.
        message: String,
    },
}

/// One line of a `monitor` stream: when, and what happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorEvent {
    /// When the daemon sent it, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// What a `monitor` stream reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A peer's session changed state (RFC 4271 8.2.2 names, or `Disabled`).
    PeerState {
        /// The peer.
        peer: String,
        /// The state it left.
        from: String,
        /// The state it entered.
        to: String,
        /// Why it went down or could not connect.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A peer announced a path (as received, before import policy).
    Announced {
        /// The peer.
        peer: String,
        /// The path (`best` and the other Loc-RIB marks unset).
        route: Box<RouteEntry>,
    },
    /// A peer withdrew a path.
    Withdrawn {
        /// The peer.
        peer: String,
        /// The prefix.
        prefix: String,
        /// ADD-PATH path identifier, where the session carries them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path_id: Option<u32>,
    },
    /// The Loc-RIB's best path of a prefix changed.
    Best {
        /// The prefix.
        prefix: String,
        /// Next hops of the multipath set, best first (empty: a local route without one).
        next_hops: Vec<String>,
        /// Where the best path came from (`bgp`, `static`, `kernel`, ...).
        source: String,
    },
    /// A prefix has no usable path any more.
    Unreachable {
        /// The prefix.
        prefix: String,
    },
    /// The client read too slowly: this many events were dropped before this one.
    Lagged {
        /// Events lost.
        lost: u64,
    },
}

/// `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// bgpd version.
    pub version: String,
    /// Our autonomous system number.
    pub asn: u32,
    /// Our BGP identifier.
    pub router_id: String,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Configured peers.
    pub peers: usize,
    /// Peers in Established.
    pub peers_established: usize,
    /// Prefixes in the Loc-RIB.
    pub loc_rib_prefixes: usize,
    /// Started as a restarting speaker (RFC 4724) and still waiting for End-of-RIB from
    /// some peers.
    pub graceful_restart_in_progress: bool,
    /// Path of the configuration file, when loaded from one.
    pub config_file: Option<String>,
    /// When the configuration was last (re)loaded, seconds ago.
    pub config_age_secs: u64,
    /// The components that can fail on their own (kernel FIB writer, kernel import,
    /// next-hop watcher) and their state. Added within version 1 (absent reads as empty).
    #[serde(default)]
    pub components: Vec<ComponentStatus>,
}

/// The state of one component in `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentStatus {
    /// Its name (`kernel-fib`, `kernel-import`, `next-hop-watcher`).
    pub name: String,
    /// Working.
    pub up: bool,
    /// Seconds in this state.
    pub since_secs: u64,
    /// Why it is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `show_fib`: the kernel FIB as bgpd's installer sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibReport {
    /// The routes bgpd holds in the kernel, by prefix.
    pub installed: Vec<FibInstalled>,
    /// The routes the kernel refused, waiting for a retry, by prefix.
    pub refused: Vec<FibRefused>,
    /// Route writes refused since the start, by reason (errno name such as `EEXIST`).
    pub refused_total: std::collections::BTreeMap<String, u64>,
    /// Route writes retried since the start.
    pub retried_total: u64,
    /// Why the kernel's state is unknown and being reconciled, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovering: Option<String>,
}

/// One route bgpd installed in the kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibInstalled {
    /// The destination.
    pub prefix: String,
    /// `RTA_PRIORITY`.
    pub metric: u32,
    /// How it forwards, as `ip route` writes it (`blackhole`, `via GW dev IF onlink`).
    pub route: String,
    /// Adopted from a previous run and not refreshed by the RIB yet.
    pub stale: bool,
}

/// One route the kernel refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibRefused {
    /// The destination.
    pub prefix: String,
    /// Why (errno name, e.g. `ENETUNREACH`).
    pub reason: String,
    /// Refusals in a row.
    pub attempts: u32,
    /// Milliseconds until the next try; absent while it is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
}

/// `show_datastore`: the datastore a Calico-mode bgpd follows, and what it derived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatastoreReport {
    /// What is read (`etcdv3 https://...`), without secrets.
    pub datastore: String,
    /// The node whose configuration is derived.
    pub node: String,
    /// `waiting-for-datastore`, `resyncing` or `in-sync`.
    pub state: String,
    /// Whether a connection to the datastore is up now.
    pub connected: bool,
    /// The datastore revision delivered so far.
    pub revision: i64,
    /// Resources bgpd reads, as held now.
    pub resources: usize,
    /// Complete listings taken (more than one after a lost history).
    pub listings: u64,
    /// Change batches received.
    pub batches: u64,
    /// Connection or watch failures so far.
    pub failures: u64,
    /// The source's last failure, and how long ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<AgedMessage>,
    /// Keys whose value did not decode (taken as absent).
    #[serde(default)]
    pub bad_values: Vec<String>,
    /// Whether a complete listing has been received (sessions are configured only then).
    pub synced: bool,
    /// Calico nodes in the datastore.
    pub nodes: usize,
    /// The sessions derived for this node, by name.
    pub peers: Vec<String>,
    /// Configurations derived and applied.
    pub applied: u64,
    /// Why the last derivation or application failed (the running configuration stayed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_derive_error: Option<AgedMessage>,
}

/// A message with its age.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgedMessage {
    /// What happened.
    pub message: String,
    /// Seconds ago.
    pub age_secs: u64,
}

/// One BFD session in `show bfd`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BfdSessionInfo {
    /// The BGP peer it serves.
    pub peer: String,
    /// The peer's address.
    pub address: String,
    /// Our address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_address: Option<String>,
    /// Multihop (RFC 5883) rather than single hop (RFC 5881).
    pub multihop: bool,
    /// Our state: `AdminDown`, `Down`, `Init` or `Up`.
    pub state: String,
    /// The state in the peer's last packet.
    pub remote_state: String,
    /// Transmit interval in force (negotiated), in milliseconds.
    pub tx_interval_ms: u64,
    /// Receive interval in force (negotiated), in milliseconds; absent before the
    /// peer's first packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_interval_ms: Option<u64>,
    /// Our detection multiplier.
    pub multiplier: u8,
    /// The peer's (0 before its first packet).
    pub remote_multiplier: u8,
    /// Detection time in force, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_time_ms: Option<u64>,
    /// The diagnostic we send: why our session last changed state.
    pub local_diagnostic: String,
    /// The diagnostic of the peer's last packet.
    pub remote_diagnostic: String,
    /// Seconds in the current state (Up: the session's uptime).
    pub uptime_secs: u64,
    /// Times the session came Up.
    pub up_count: u64,
    /// BGP sessions it closed (Cease / BFD Down).
    pub bgp_downs: u64,
    /// Why the session cannot run, if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One row of `show peers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSummary {
    /// Peer name (logs, bgpctl, policy `peer_name`).
    pub name: String,
    /// The peer's address.
    pub address: String,
    /// The peer's AS.
    pub remote_as: u32,
    /// RFC 4271 state name, or "Disabled".
    pub state: String,
    /// Seconds in the current state (Established: session uptime).
    pub uptime_secs: u64,
    /// Prefixes in the Adj-RIB-In.
    pub prefixes_received: u64,
    /// Of those, accepted by import policy.
    pub prefixes_accepted: u64,
    /// Prefixes in the Adj-RIB-Out.
    pub prefixes_sent: u64,
    /// Why the session last went down.
    pub last_error: Option<String>,
    /// BGP messages received, every type. Added within version 1 (absent reads as 0).
    #[serde(default)]
    pub messages_received: u64,
    /// BGP messages sent, every type. Added within version 1.
    #[serde(default)]
    pub messages_sent: u64,
    /// Bytes queued for the peer and not yet taken by the connection: the output queue.
    /// Added within version 1.
    #[serde(default)]
    pub output_queue_bytes: u64,
    /// Why the last connection attempt failed, as the operating system says it
    /// (`Connection refused`), while that is the peer's last error. Added within
    /// version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_error: Option<String>,
}

/// `show peer NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerDetail {
    /// The `show peers` row.
    pub summary: PeerSummary,
    /// Free text shown by `bgpctl show peer`.
    pub description: Option<String>,
    /// Our AS on this session.
    pub local_as: u32,
    /// The peer's TCP port.
    pub port: u16,
    /// Never connects, only accepts.
    pub passive: bool,
    /// Route reflector client (RFC 4456).
    pub route_reflector_client: bool,
    /// Import policy chain.
    pub import: Vec<String>,
    /// Export policy chain.
    pub export: Vec<String>,
    /// The peer's BGP identifier once known.
    pub peer_id: Option<String>,
    /// Our end of the connection.
    pub local_address: Option<String>,
    /// Configured hold time / keepalive.
    pub hold_time: u16,
    /// Keepalive interval in seconds.
    pub keepalive: u16,
    /// Negotiated values while established.
    pub negotiated_hold_time: Option<u16>,
    /// Keepalive interval in use.
    pub negotiated_keepalive: Option<u16>,
    /// Negotiated (or configured) families.
    pub families: Vec<String>,
    /// Capabilities we sent, rendered.
    pub capabilities_sent: Vec<String>,
    /// Capabilities the peer sent, rendered.
    pub capabilities_received: Vec<String>,
    /// Message counters.
    pub counters: PeerCounters,
    /// The last NOTIFICATION we sent.
    pub last_notification_sent: Option<String>,
    /// The last NOTIFICATION the peer sent.
    pub last_notification_received: Option<String>,
}

/// Message counters of a peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerCounters {
    /// UPDATE messages received.
    pub updates_received: u64,
    /// UPDATE messages sent.
    pub updates_sent: u64,
    /// NOTIFICATIONs received.
    pub notifications_received: u64,
    /// NOTIFICATIONs sent.
    pub notifications_sent: u64,
    /// ROUTE-REFRESH messages received.
    pub route_refresh_received: u64,
    /// Times the session reached Established.
    pub established_transitions: u64,
}

/// One path in a routing table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    /// The prefix.
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// ADD-PATH path identifier.
    pub path_id: Option<u32>,
    /// Peer name the path came from / goes to, or "local" for originated routes,
    /// "kernel" for kernel-learned ones.
    pub peer: String,
    /// Next hop.
    pub next_hop: Option<String>,
    /// AS_PATH, bgpdump style.
    pub as_path: String,
    /// AS_PATH as its segments, each with its type and ASNs. Added within version 1
    /// (absent reads as empty).
    #[serde(default)]
    pub as_path_segments: Vec<AsPathSegment>,
    /// ORIGIN.
    pub origin: String,
    /// LOCAL_PREF to set.
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC to set.
    pub med: Option<u32>,
    /// Standard communities.
    pub communities: Vec<String>,
    /// Large communities.
    pub large_communities: Vec<String>,
    /// Loc-RIB: the best path for this prefix.
    pub best: bool,
    /// Loc-RIB: part of the multipath (ECMP) set.
    pub multipath: bool,
    /// Loc-RIB: why this path is not the best (the decision step it lost at).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_best_reason: Option<String>,
    /// Seconds since the path was learned or last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_secs: Option<u64>,
    /// Marked stale by graceful restart.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
    /// ORIGINATOR_ID (RFC 4456 8), dotted quad; `null` when the path has none. Added
    /// within version 1: absent in answers of older daemons, read as `null`.
    #[serde(default)]
    pub originator_id: Option<String>,
    /// CLUSTER_LIST (RFC 4456 8), dotted quads, the most recent reflector first; empty
    /// when the path has none. Added within version 1 (absent reads as empty).
    #[serde(default)]
    pub cluster_list: Vec<String>,
    /// Interface of a kernel route, or the one a BGP path's next hop is reached through
    /// (Loc-RIB, with a kernel view). Added within version 1 (absent reads as `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Extended communities (RFC 4360), as BIRD writes them: `(rt, 64512, 100)`. Added
    /// within version 1 (absent reads as empty).
    #[serde(default)]
    pub extended_communities: Vec<String>,
    /// ATOMIC_AGGREGATE present. Added within version 1.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub atomic_aggregate: bool,
    /// AGGREGATOR as `ASN ADDRESS`. Added within version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregator: Option<String>,
    /// Only To Customer (RFC 9234). Added within version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otc: Option<u32>,
    /// Attributes bgpd passes on without interpreting them: `type T flags 0xF, N octets`.
    /// Added within version 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_attributes: Vec<String>,
}

/// One AS_PATH segment (RFC 4271 4.3, RFC 5065).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsPathSegment {
    /// `sequence`, `set`, `confed_sequence` or `confed_set`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its ASNs, in order.
    pub asns: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_round_trip() {
        let r = Response::ok(Reply::Done {
            message: "reloaded".into(),
        });
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"version":1,"status":"ok","result":{"kind":"done","message":"reloaded"}}"#
        );
        assert_eq!(serde_json::from_str::<Response>(&s).unwrap(), r);
        let e = Response::error("nope");
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(s, r#"{"version":1,"status":"error","message":"nope"}"#);
        assert_eq!(serde_json::from_str::<Response>(&s).unwrap(), e);
    }

    #[test]
    fn datastore_report_round_trip() {
        let r = Response::ok(Reply::Datastore(Box::new(DatastoreReport {
            datastore: "etcdv3 http://127.0.0.1:2379".into(),
            node: "n1".into(),
            state: "in-sync".into(),
            connected: true,
            revision: 7,
            resources: 3,
            listings: 1,
            batches: 2,
            failures: 0,
            last_error: None,
            bad_values: Vec::new(),
            synced: true,
            nodes: 3,
            peers: vec!["Mesh_10_0_0_2".into()],
            applied: 2,
            last_derive_error: Some(AgedMessage {
                message: "node \"n1\" has no usable Node resource".into(),
                age_secs: 4,
            }),
        })));
        let s = serde_json::to_string(&r).unwrap();
        assert!(
            s.contains(r#""kind":"datastore""#) && !s.contains("last_error\":"),
            "{s}"
        );
        assert_eq!(serde_json::from_str::<Response>(&s).unwrap(), r);
        let q = crate::Request::new(crate::Command::ShowDatastore);
        assert_eq!(
            serde_json::to_string(&q).unwrap(),
            r#"{"version":1,"command":"show_datastore"}"#
        );
    }

    #[test]
    fn monitor_events_are_flat_lines() {
        let r = Response::ok(Reply::Event(Box::new(MonitorEvent {
            at_ms: 1_700_000_000_123,
            event: Event::PeerState {
                peer: "b".into(),
                from: "OpenConfirm".into(),
                to: "Established".into(),
                reason: None,
            },
        })));
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"version":1,"status":"ok","result":{"kind":"event","at_ms":1700000000123,"event":"peer_state","peer":"b","from":"OpenConfirm","to":"Established"}}"#
        );
        assert_eq!(serde_json::from_str::<Response>(&s).unwrap(), r);
        let lagged = MonitorEvent {
            at_ms: 1,
            event: Event::Lagged { lost: 7 },
        };
        let s = serde_json::to_string(&lagged).unwrap();
        assert_eq!(s, r#"{"at_ms":1,"event":"lagged","lost":7}"#);
        assert_eq!(serde_json::from_str::<MonitorEvent>(&s).unwrap(), lagged);
    }

    #[test]
    fn route_entry_reflection_fields() {
        let old = r#"{"prefix":"10.0.0.0/24","peer":"a","next_hop":null,"as_path":"","origin":"IGP","local_pref":null,"med":null,"communities":[],"large_communities":[],"best":true,"multipath":false}"#;
        // An answer of a daemon before these fields: null and empty.
        let mut e: RouteEntry = serde_json::from_str(old).unwrap();
        assert_eq!(e.originator_id, None);
        assert!(e.cluster_list.is_empty());
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["originator_id"], serde_json::Value::Null);
        assert_eq!(v["cluster_list"], serde_json::json!([]));
        e.originator_id = Some("10.0.0.2".into());
        e.cluster_list = vec!["10.0.0.9".into(), "10.0.0.8".into()];
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["originator_id"], "10.0.0.2");
        assert_eq!(
            v["cluster_list"],
            serde_json::json!(["10.0.0.9", "10.0.0.8"])
        );
        assert_eq!(serde_json::from_value::<RouteEntry>(v).unwrap(), e);
    }
}
