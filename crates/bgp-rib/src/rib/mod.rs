//! The [`Rib`]: a folder of concerns, each file owning one part of the state or one
//! group of operations. See the crate documentation for the life cycle.
//!
//! # State owners (no [`Rib`] operations of their own)
//! | file | owns |
//! |---|---|
//! | `config` | the caller's settings: [`RibConfig`], [`PeerConfig`], [`SessionInfo`]; the [`PeerId`] handle |
//! | `peers` | the peer table: each peer's facts and current session |
//! | `store` | route tables, interned attribute sets, per-peer prefix logs, and every path operation |
//! | `accepted` | the journal of accepted-route changes the store keeps when asked (post-policy monitoring) |
//! | `outbound` | per-peer Adj-RIB-Out, End-of-RIB due, export cache; the encode cache; the selection-deferral hold |
//! | `fib` | the lossless FIB queue and how a best route becomes a FIB entry |
//! | `restart` | graceful-restart state: stale routes of peers, our own recovery and its End-of-RIB tracker |
//! | `local` | facts of local routes (kernel interface, metric, protocol; no-install) |
//! | `clock` | the time handed in ([`Rib::set_time`]), to stamp when paths change |
//! | `resolve` | next-hop resolution (the caller's) and the interfaces of next hops in use |
//! | `view` | what a policy sees of a stored path |
//! | `decide` | the decision process applied to a stored prefix |
//!
//! # Operations
//! | file | does |
//! |---|---|
//! | `state` | the [`Rib`] struct: one field per owner |
//! | `output` | the two drains: [`Rib::take_encoded`] (Adj-RIB-Out) and [`Rib::take_fib`] (FIB) |
//! | `export` | what each peer should hold for a prefix (rules, policy, attributes), through an export context |
//! | `import` | UPDATEs into the Adj-RIB-In, local routes, soft reconfiguration |
//! | `process` | the decision run: decide, feed the FIB, export |
//! | `lifecycle` | peers added, up, down, End-of-RIB, route refresh, policies, removed |
//! | `recovery` | graceful restart applied: our recovery's end ([`Rib::poll_recovery_done`]), timers ([`Rib::handle_timeout`]) |
//! | `query`, `pages` | read-only views for `show` commands |
//! | `audit` | consistency checks for tests |
//!
//! Per-peer state is split by owner, in tables indexed alike by peer index (`lifecycle`
//! is the only place that adds and removes peers): the export of one prefix reads every
//! peer's facts in the peer table while it writes one peer's Adj-RIB-Out in the
//! outbound state, so neither has to be taken out of the other.
//!
//! Imports between these files go one way: the state owners import none of the
//! operation files nor `state`; `state` imports the owners; the operation files import
//! `state` and the owners, and `process` and `import` also `export`. Among the
//! operations, `lifecycle` and `recovery` call into `export` and `import`; `import` calls
//! `process` (eager decisions); `process` calls `export` and `decide` and feeds `fib`.

mod accepted;
mod audit;
mod clock;
mod config;
mod decide;
mod error;
mod export;
mod fib;
mod import;
mod lifecycle;
mod local;
mod outbound;
mod output;
mod pages;
mod peers;
mod process;
mod query;
mod recovery;
mod resolve;
mod restart;
mod state;
mod store;
mod view;

pub use accepted::AcceptedChange;
pub use config::{
    AddPathSend, NextHopMode, PeerConfig, PeerId, RibConfig, SessionInfo,
    DEFAULT_ADD_PATH_RECEIVE_LIMIT,
};
pub use error::RibError;
pub use fib::{FibChange, FibRoute};
pub use import::UpdateStats;
pub use local::LocalRoute;
pub use outbound::{Encoded, Unsendable};
pub use query::{PathInfo, PeerInfo, RouteDetail};
pub use resolve::{AllReachable, NextHopResolver};
pub use restart::{RecoveryDone, RecoveryStatus};
pub use state::{Counters, Rib};
