//! Routing Information Bases: Adj-RIB-In, Loc-RIB with the BGP decision process, route
//! reflection, policy and Adj-RIB-Out.
//!
//! Sans-IO like the rest of the stack: no sockets, no tasks, no clock. The caller passes
//! decoded UPDATEs ([`bgp_proto::Update`]), session facts, local routes and the current
//! [`std::time::Instant`] where timers matter, and drains what the RIB wants done: UPDATEs
//! per peer, FIB changes, timer deadlines.
//!
//! # Life cycle
//! ```text
//! let mut rib = Rib::new(RibConfig::new(local_as, router_id));
//! let p = rib.add_peer(PeerConfig::new("Mesh_10_0_0_2", addr, 64512))?;
//! rib.peer_up(p, SessionInfo { .. negotiated .. }, now)?;   // queues the full table + EoR
//! rib.apply_update(p, &update, treat_as_withdraw)?;         // Adj-RIB-In + import policy
//! rib.originate(LocalRoute::new(block, RouteSource::Static))?;
//! rib.process(&resolver);                                   // decision, FIB, Adj-RIB-Out
//! for peer in rib.peers_with_output() {                     // one drain, bounded slices
//!     rib.take_encoded(peer, SLICE_BYTES, &mut frames)?;
//! }
//! let batch = rib.take_fib(room);                           // one drain, lossless
//! rib.peer_down(p, graceful, now)?;                         // GR: stale + deadline
//! rib.end_of_rib(p, family)?; rib.handle_timeout(now);      // sweep
//! if let Some(done) = rib.poll_recovery_done() { /* our restart: sweep the kernel */ }
//! ```
//!
//! A route reflector with two clients: one announces a prefix, the RIB selects it, queues it
//! for the kernel and reflects it to the other client:
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use std::time::Instant;
//! use bgp_proto::wire::{decode_message, Inbound};
//! use bgp_proto::{AsPath, Nlri, Origin, PathAttributes, Update};
//! use bgp_rib::{AllReachable, FibChange, PeerConfig, Rib, RibConfig, SessionInfo};
//!
//! let now = Instant::now();
//! let mut rib = Rib::new(RibConfig::new(65000, Ipv4Addr::new(10, 0, 0, 1)));
//! let mut clients = Vec::new();
//! for n in [2u8, 3] {
//!     let mut cfg = PeerConfig::new(format!("client{n}"), IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)), 65000);
//!     cfg.rr_client = true;
//!     let id = rib.add_peer(cfg).unwrap();
//!     let session = SessionInfo::new(Ipv4Addr::new(10, 0, 0, n), Some(Ipv4Addr::new(192, 0, 2, 1)));
//!     rib.peer_up(id, session, now).unwrap();
//!     clients.push(id);
//! }
//! let update = Update {
//!     attributes: PathAttributes {
//!         origin: Some(Origin::Igp),
//!         as_path: Some(AsPath { segments: vec![] }),
//!         next_hop: Some("192.0.2.2".parse().unwrap()),
//!         local_pref: Some(100),
//!         ..Default::default()
//!     },
//!     nlri: vec![Nlri::new("10.244.1.0/26".parse().unwrap())],
//!     ..Default::default()
//! };
//! rib.apply_update(clients[0], &update, false).unwrap();
//! rib.process(&AllReachable);
//!
//! // The kernel gets the route...
//! let fib = rib.take_fib(usize::MAX);
//! assert!(matches!(&fib[..], [FibChange::Upsert(r)] if r.prefix == "10.244.1.0/26".parse().unwrap()));
//! // ...and the other client an UPDATE carrying it (after the End-of-RIBs queued at peer_up).
//! let mut frames = Vec::new();
//! rib.take_encoded(clients[1], 64 * 1024, &mut frames).unwrap();
//! let ctx = bgp_proto::CodecContext { four_octet_as: true, ..Default::default() };
//! let reflected = frames.iter().find_map(|f| match decode_message(f, &ctx) {
//!     Ok(Inbound::Update(u)) if !u.update.nlri.is_empty() => Some(u.update),
//!     _ => None,
//! });
//! let reflected = reflected.expect("the route was reflected");
//! assert_eq!(reflected.nlri[0].prefix, "10.244.1.0/26".parse().unwrap());
//! assert_eq!(reflected.attributes.originator_id, Some(Ipv4Addr::new(10, 0, 0, 2))); // RFC 4456 8
//! ```
//!
//! Mutations only record which prefixes changed; [`Rib::process`] runs the decision
//! process for those prefixes once, in the order they were first touched, so a caller can
//! batch a whole UPDATE (or many). Everything is deterministic for a given sequence of
//! calls (the simulator relies on it).
//!
//! # Storage design
//! * One table per family keyed by the compact prefix type (see the `table` module). Each
//!   prefix holds its candidate paths from all peers and local sources: that list is at
//!   once every peer's Adj-RIB-In (attributes as received are kept, plus the
//!   post-import-policy set when policy changed them, and rejected paths stay with a flag)
//!   and the Loc-RIB (selected paths are flagged). Soft reconfiguration after an import
//!   policy change re-evaluates from the stored received attributes
//!   ([`Rib::set_policies`]); graceful restart flags paths stale in place.
//! * Attribute sets are interned ([`attrs`]) in an arena with plain (non-atomic) reference
//!   counts: a path is 20 bytes (peer index + flags, path id, two 4-byte handles, when it
//!   last changed in seconds, [`Rib::set_time`]); a prefix
//!   with one path needs no allocation beyond its hash-table slot.
//! * The route tables and the Adj-RIB-Outs hash prefixes so that consecutive prefixes of
//!   one length land in neighbouring slots (`table::PrefixHasher`): a full table, which
//!   arrives in address order, is stored and decided with a few cache misses per run of
//!   16 prefixes instead of one or two per prefix.
//! * Each peer keeps an Adj-RIB-Out (a hash table from prefix, or a B-tree from prefix +
//!   outgoing path id under ADD-PATH): per NLRI what the peer was sent and the state
//!   queued for it, so only differences are sent, whatever caused the recomputation. The
//!   queue is a dirty set (one entry per NLRI, its latest state), not a log of changes:
//!   bounded by the table however fast routes change or a peer that does not read asks
//!   for refreshes. What was sent is recorded as UPDATEs are encoded; a route that cannot
//!   be encoded for a peer is withdrawn towards it (RFC 8654 3) and recorded as such.
//!   Policy changes ([`Rib::set_policies`]) and route refresh ([`Rib::route_refresh`])
//!   work from these tables without asking the peer again.
//! * Per peer and family the RIB counts paths received, accepted and announced as they
//!   change ([`Rib::peer_info`]), so status queries never walk a table.
//! * Each peer keeps a compact log of the prefixes where it has paths, so a session loss,
//!   a graceful-restart sweep, soft reconfiguration or `peer_info` costs O(that peer's
//!   paths), not O(table): 16 µs instead of 19.6 ms for a client of a reflector holding
//!   a 1M-prefix table (`examples/peer_flap.rs`).
//! * Measured (docs/benchmarks.md "## RIB"): ~58 bytes of heap per path at 1M paths from
//!   one peer; ~28 more per prefix advertised to a peer; 390-415 ns of CPU per prefix
//!   (best / median run on a loaded machine) for decode → RIB → encode at 1M prefixes.
//!
//! # Graceful restart (receiving side)
//! [`Rib::peer_down`] with `graceful` marks the peer's routes stale (RFC 4724) and returns
//! the restart deadline; stale paths stay usable. [`Rib::peer_up`] keeps them only for
//! families the new session still covers with forwarding state preserved; they go on
//! [`Rib::end_of_rib`] or at [`Rib::handle_timeout`]. With long-lived GR (RFC 9494) the
//! timeout moves them to the LLGR phase instead: LLGR_STALE attached, NO_LLGR routes
//! dropped, least preferred, advertised only to LLGR-capable peers.
//!
//! # Graceful restart (restarting side)
//! After our own restart, [`Rib::defer_selection`] holds back all advertisement (RFC 4724
//! 4.1) until every graceful-restart peer has sent End-of-RIB or the deferral deadline
//! passes; routes are decided and the FIB fed meanwhile. Then each established peer gets
//! the whole table and End-of-RIB. The RIB is the one tracker of that wait: the end is
//! reported once by [`Rib::poll_recovery_done`] (the kernel side then removes the routes
//! of its previous run not learned again), and [`Rib::start_recovery`] tracks it without
//! holding advertisement back.
//!
//! # Output
//! Each kind of output has one drain, which the daemon and the simulator both call:
//! [`Rib::take_encoded`] takes a bounded slice of a peer's queue as UPDATE frames (the
//! Adj-RIB-Out records what was sent, and what could not be encoded is withdrawn,
//! RFC 8654 3), [`Rib::take_fib`] a batch of best-path changes. Both queues hold at most
//! one entry per prefix once compacted, whatever the consumer's pace: nothing is lost
//! and memory stays bounded by the table.
//!
//! # Outbound rules
//! iBGP split horizon and RFC 4456 reflection (client → all, non-client → clients only,
//! ORIGINATOR_ID and CLUSTER_LIST set, never back to the originator); eBGP: own AS
//! prepended, next hop self, LOCAL_PREF stripped, MED from other ASes not propagated
//! unless policy set it; NO_EXPORT / NO_ADVERTISE / NO_EXPORT_SUBCONFED honoured (no
//! confederations, so NO_EXPORT_SUBCONFED acts as NO_EXPORT); export policy; ADD-PATH
//! send of all paths or the ECMP set where negotiated.
//!
//! # IPv4 routes with IPv6 next hops (RFC 8950)
//! When a session negotiated the extended next hop capability for IPv4 unicast
//! ([`SessionInfo::extended_next_hop_v4`]) an IPv4 path may hold an IPv6 next hop
//! (global, optionally link-local). It is resolved, decided on (IGP cost) and handed to
//! the FIB by its global address; reflection keeps the global address and drops the
//! link-local one, like for IPv6 routes. Outbound, towards such a peer an IPv6 next hop
//! (kept, or next-hop-self on a session where we have only an IPv6 address) is sent in
//! MP_REACH_NLRI with AFI 1 (RFC 8950 3). Towards a peer without it (RFC 8950 4) the route
//! goes with our IPv4 address on that session as next hop, or is not advertised when
//! there is none. Received IPv4 routes with an IPv6 next hop on a session without the
//! capability are treated as withdrawn ([`UpdateStats::next_hop_refused`]).
//!
//! # Not implemented
//! Confederations (RFC 5065), Only To Customer (RFC 9234) handling, families other than
//! IPv4/IPv6 unicast (ignored and counted); RFC 8950 for IPv6 or VPN families.
//!
//! # Modules
//! * [`policy`] — declarative, serde-serializable policy.
//! * [`decision`] — the decision process with loser reasons.
//! * [`attrs`] — interning.
//! * `table` — per-family route tables (Adj-RIB-In and Loc-RIB in one), prefix logs.
//! * `adj_out` — one peer's Adj-RIB-Out and its queue.
//! * `pack` — UPDATE generation.
//! * `rib` — the [`Rib`], a folder of concerns (its module documentation maps it).

#![forbid(unsafe_code)]

mod adj_out;
pub mod attrs;
pub mod decision;
mod pack;
mod path_index;
pub mod policy;
mod rib;
mod table;

pub use attrs::{Attrs, RouteAttrs};
pub use decision::{Ineligible, Step};
pub use rib::{
    AcceptedChange, AddPathSend, AllReachable, Counters, Encoded, FibChange, FibRoute, LocalRoute,
    NextHopMode, NextHopResolver, PathInfo, PeerConfig, PeerId, PeerInfo, RecoveryDone,
    RecoveryStatus, Rib, RibConfig, RibError, RouteDetail, SessionInfo, Unsendable, UpdateStats,
    DEFAULT_ADD_PATH_RECEIVE_LIMIT,
};
