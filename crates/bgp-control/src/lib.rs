//! The control protocol of bgpd: JSON lines over a Unix socket, spoken by `bgpctl` and by
//! anything else that inspects or drives a running bgpd.
//!
//! The client writes one [`Request`] as a single line of JSON, the daemon answers with one
//! [`Response`] line, then either side may close or the client may send another request.
//! Every message carries [`PROTOCOL_VERSION`]; a daemon refuses requests of a version it
//! does not speak with an error response, so old clients fail clearly instead of
//! misreading fields. New optional fields may be added within a version.
//!
//! ```text
//! > {"version":1,"command":"show_peers"}
//! < {"version":1,"status":"ok","result":{"kind":"peers","peers":[...]}}
//! > {"version":1,"command":"peer","name":"Mesh_10_0_0_2","action":"reset"}
//! < {"version":1,"status":"error","message":"no peer named \"Mesh_10_0_0_2\""}
//! ```
//!
//! Large tables are read a page at a time (`show_routes` with `limit` and `after`, each
//! answer telling where the next page starts) or, without `limit`, streamed by the daemon
//! as one answer line built page by page.
//!
//! `monitor` is the one request answered by a stream: one `done` answer, then an `event`
//! answer per line as things happen ([`MonitorEvent`]: peer state changes, routes
//! announced and withdrawn, best-path changes, `lagged` when the client read too slowly
//! and events were dropped) until the client closes the connection.
//!
//! A client builds a request and reads the answer with any JSON library:
//!
//! ```
//! use bgp_control::{Command, Outcome, Request, Response};
//!
//! let line = serde_json::to_string(&Request::new(Command::ShowPeers)).unwrap();
//! assert_eq!(line, r#"{"version":1,"command":"show_peers"}"#);
//!
//! let answer = r#"{"version":1,"status":"error","message":"no peer named \"x\""}"#;
//! let response: Response = serde_json::from_str(answer).unwrap();
//! assert!(matches!(response.outcome, Outcome::Error { message } if message == "no peer named \"x\""));
//! ```
//!
//! This crate holds only the wire types (serde, no I/O), so a client links nothing of the
//! daemon: [`request`] what a client sends, [`response`] what the daemon answers.

#![warn(missing_docs)]

pub mod request;
pub mod response;

pub use request::{Command, FamilyFilter, PeerAction, Request, RouteCursor, Table};
pub use response::{
    AgedMessage, AsPathSegment, BfdSessionInfo, ComponentStatus, DaemonStatus, DatastoreReport,
    Event, FibInstalled, FibRefused, FibReport, MonitorEvent, Outcome, PeerCounters, PeerDetail,
    PeerSummary, Reply, Response, RouteEntry,
};

/// Version of this protocol.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest response line a client accepts, in bytes. A page of [`MAX_PAGE`] routes is a
/// few MiB; a whole table is read a page at a time (`show_routes` with `limit`).
pub const MAX_LINE: usize = 256 * 1024 * 1024;

/// Most entries one page of `show_routes` returns.
pub const MAX_PAGE: u32 = 10_000;

/// Where bgpd listens and bgpctl connects unless told otherwise.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/bgpd/bgpd.sock";
