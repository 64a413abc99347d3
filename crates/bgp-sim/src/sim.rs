//! The simulator: every node's sessions and RIB driven by one event queue over a virtual
//! clock, with an in-memory TCP model between them.
//!
//! The driving loop is the one a real speaker runs (and the one `quinn-proto`'s test
//! `Pair` runs for two endpoints): feed a session its input with the current time, then
//! drain `poll_transmit` onto the connection, `poll_event` into the RIB, and re-arm the
//! timer from `poll_timeout`. Only the sockets and the clock are simulated:
//!
//! * A connection is two ends with an attached flag each. A write becomes one or more
//!   segment events with seeded random latency, never earlier than the previous segment
//!   in the same direction (TCP is in order), so different connections interleave
//!   differently per seed. Closing an end (a `Disconnect` from the session, or a crash)
//!   sends a close event behind the data already in flight.
//! * Connection set-up is SYN → accept (if the peer's session is listening) → SYN-ACK, or
//!   a refusal; one end of every session is passive (see
//!   [`SessionSpec::active_end`](crate::SessionSpec::active_end)), so there are no
//!   collisions to resolve.
//! * A node batches its RIB work: inputs mark it dirty and one flush, `batch_delay`
//!   later, runs the decision process and hands each peer its UPDATEs.
//! * [`Sim::crash`] drops a node's whole state (peers see their connections close);
//!   [`Sim::restart`] rebuilds it from the topology, gracefully when configured (Restart
//!   State bit, and the routes held back until every neighbour sent End-of-RIB, RFC 4724
//!   4.1, by the RIB's selection deferral). [`Sim::partition`] holds back everything between two nodes, as TCP would keep
//!   retransmitting it, until [`Sim::heal`].
//! * Timers (session timers, graceful-restart deadlines, selection deferral) are events
//!   too; a superseded timer event is recognised by its deadline and ignored.
//!
//! A node is converged, and [`Sim::run_until_converged`] returns, when nothing is in flight
//! or scheduled except timers, every session between two running nodes is Established, no
//! RIB holds stale routes or pending output and no node defers its routes: from then on
//! only keepalives move and the Loc-RIBs cannot change.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bgp_proto::session::{DownReason, SessionEvent, State};
use bgp_rib::{AllReachable, FibChange, Rib, RibError};
use bytes::Bytes;
use ipnet::IpNet;

use crate::config::SimConfig;
use crate::node::{
    gr_notification, graceful_down, neighbor_specs, session_info, Neighbor, NeighborSpec, Running,
};
use crate::queue::EventQueue;
use crate::rng::Rng;
use crate::snapshot::{self, LocRibEntry};
use crate::topology::{NodeId, Topology, TopologyError};

/// Why a simulation could not be set up or did not converge.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid topology: {0}")]
    Topology(#[from] TopologyError),
    #[error("building a node's RIB: {0}")]
    Rib(#[from] RibError),
    #[error("{0} does not exist")]
    UnknownNode(NodeId),
    #[error("{0} is not running")]
    NodeDown(NodeId),
    #[error("{0} is already running")]
    NodeUp(NodeId),
    #[error("not converged after {waited:?} of virtual time (now {now:?}): {why}")]
    NotConverged {
        now: Duration,
        waited: Duration,
        why: String,
    },
}

/// Counters of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// TCP segments delivered or dropped, and the bytes written.
    pub segments: u64,
    pub bytes: u64,
    /// Segments that arrived at a closed end.
    pub dropped_segments: u64,
    /// UPDATE messages sent (End-of-RIB markers included) and received (without them).
    pub updates_sent: u64,
    pub updates_received: u64,
    pub end_of_ribs_received: u64,
    pub sessions_established: u64,
    /// Established sessions that went down.
    pub sessions_down: u64,
    /// Best-path changes over all nodes (FIB upserts and removals), and when the last one
    /// happened.
    pub loc_rib_changes: u64,
    pub last_loc_rib_change: Duration,
}

/// What [`Sim::run_until_converged`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Convergence {
    /// Virtual time at which the cluster became quiet: the last delivery, or the end of the
    /// last RIB work if that is later.
    pub at: Duration,
    /// Virtual time of the last best-path change anywhere.
    pub last_loc_rib_change: Duration,
    /// Events processed during the call.
    pub events: u64,
}

/// An Established session that went down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDown {
    pub at: Duration,
    pub node: NodeId,
    pub peer: NodeId,
    pub reason: DownReason,
}

/// A prefix that left a node's forwarding table (no usable route any more).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibRemoval {
    pub at: Duration,
    pub node: NodeId,
    pub prefix: IpNet,
}

/// One end of a connection: a neighbour slot of one incarnation of a node.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct End {
    node: usize,
    epoch: u32,
    slot: usize,
}

/// An in-memory TCP connection; end 0 opened it.
struct Conn {
    ends: [End; 2],
    attached: [bool; 2],
    /// Latest delivery time scheduled towards each end (TCP delivers in order).
    last: [Duration; 2],
}

enum Event {
    Start {
        node: usize,
        epoch: u32,
    },
    SessionTimer {
        end: End,
        at: Instant,
    },
    RibTimer {
        node: usize,
        epoch: u32,
        at: Instant,
    },
    Flush {
        node: usize,
        epoch: u32,
    },
    Syn {
        from: End,
        to_node: usize,
        to_slot: usize,
        attempt: u64,
    },
    SynAck {
        conn: u64,
        attempt: u64,
    },
    Refused {
        to: End,
        attempt: u64,
        by: usize,
    },
    Segment {
        conn: u64,
        to: usize,
        data: Bytes,
    },
    Close {
        conn: u64,
        to: usize,
    },
}

impl Event {
    fn is_network(&self) -> bool {
        matches!(
            self,
            Event::Syn { .. }
                | Event::SynAck { .. }
                | Event::Refused { .. }
                | Event::Segment { .. }
                | Event::Close { .. }
        )
    }
}

struct Node {
    /// Incremented by every crash, so events for an earlier incarnation are ignored.
    epoch: u32,
    running: Option<Running>,
}

/// A whole simulated cluster. See the module documentation.
pub struct Sim {
    cfg: SimConfig,
    topology: Topology,
    specs: Vec<Vec<NeighborSpec>>,
    nodes: Vec<Node>,
    rng: Rng,
    base: Instant,
    now: Duration,
    queue: EventQueue<Event>,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    next_attempt: u64,
    /// Network events queued.
    in_flight: usize,
    /// Flush and start events queued.
    work_queued: usize,
    stats: Stats,
    /// Node pairs that cannot reach each other, (lower, higher) index.
    partitions: BTreeSet<(usize, usize)>,
    /// Network events between partitioned nodes (with the pair), in the order they were
    /// sent.
    held: Vec<((usize, usize), Event)>,
    downs: Vec<SessionDown>,
    removals: Vec<FibRemoval>,
    anomalies: Vec<String>,
    frames: Vec<Bytes>,
    /// While a flush runs: how far the node's RIB worker is past `now` (what it sends
    /// leaves that much later).
    cpu_offset: Duration,
}

impl Sim {
    /// Set up `topology`; every node starts at a random offset within
    /// [`SimConfig::start_jitter`].
    pub fn new(topology: Topology, cfg: SimConfig) -> Result<Sim, SimError> {
        topology.validate()?;
        let specs = neighbor_specs(&topology);
        let nodes = (0..topology.nodes.len())
            .map(|_| Node {
                epoch: 0,
                running: None,
            })
            .collect();
        let mut sim = Sim {
            rng: Rng::new(cfg.seed),
            cfg,
            topology,
            specs,
            nodes,
            base: Instant::now(),
            now: Duration::ZERO,
            queue: EventQueue::new(),
            conns: HashMap::new(),
            next_conn: 0,
            next_attempt: 0,
            in_flight: 0,
            work_queued: 0,
            stats: Stats::default(),
            partitions: BTreeSet::new(),
            held: Vec::new(),
            downs: Vec::new(),
            removals: Vec::new(),
            anomalies: Vec::new(),
            frames: Vec::new(),
            cpu_offset: Duration::ZERO,
        };
        for node in 0..sim.nodes.len() {
            let at = sim.rng.duration(Duration::ZERO, sim.cfg.start_jitter);
            sim.push(at, Event::Start { node, epoch: 0 });
        }
        Ok(sim)
    }

    // ------------------------------------------------------------------ getters

    /// Virtual time since the start of the run.
    pub fn now(&self) -> Duration {
        self.now
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Established sessions that went down, in order.
    pub fn session_downs(&self) -> &[SessionDown] {
        &self.downs
    }

    /// Every prefix that left a node's forwarding table, in order (a crashed node's table
    /// is simply gone and not listed).
    pub fn fib_removals(&self) -> &[FibRemoval] {
        &self.removals
    }

    /// Things a correct cluster never does (RIB or send errors, malformed UPDATEs
    /// received); empty in a healthy run.
    pub fn anomalies(&self) -> &[String] {
        &self.anomalies
    }

    /// Events in the queue (timers included, superseded ones not yet discarded).
    pub fn queued_events(&self) -> usize {
        self.queue.len()
    }

    pub fn is_running(&self, node: NodeId) -> bool {
        self.running(node.0).is_some()
    }

    /// The node's RIB, for detailed queries; `None` while it is down.
    pub fn rib(&self, node: NodeId) -> Option<&Rib> {
        self.running(node.0).map(|r| &r.rib)
    }

    /// The node's Loc-RIB; `None` while it is down.
    pub fn loc_rib(&self, node: NodeId) -> Option<Vec<LocRibEntry>> {
        self.rib(node).map(snapshot::loc_rib)
    }

    /// Every node's Loc-RIB, in node order.
    pub fn loc_ribs(&self) -> Vec<Option<Vec<LocRibEntry>>> {
        (0..self.nodes.len())
            .map(|i| self.loc_rib(NodeId(i)))
            .collect()
    }

    /// A digest of every node's Loc-RIB (see [`snapshot::digest`]).
    pub fn loc_rib_digests(&self) -> Vec<Option<u64>> {
        (0..self.nodes.len())
            .map(|i| self.loc_rib(NodeId(i)).map(|r| snapshot::digest(&r)))
            .collect()
    }

    /// State of `node`'s session with `peer`.
    pub fn session_state(&self, node: NodeId, peer: NodeId) -> Option<State> {
        let run = self.running(node.0)?;
        let slot = self
            .specs
            .get(node.0)?
            .iter()
            .position(|s| s.peer == peer)?;
        run.neighbors.get(slot).map(|n| n.session.state())
    }

    // ------------------------------------------------------------------ running

    /// Process the next event. False when the queue is empty.
    pub fn step(&mut self) -> bool {
        let Some((at, ev)) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(at);
        self.stats.events += 1;
        if ev.is_network() {
            self.in_flight -= 1;
        } else if matches!(ev, Event::Flush { .. } | Event::Start { .. }) {
            self.work_queued -= 1;
        }
        self.handle(ev);
        true
    }

    /// Run every event due within the next `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.queue.peek_time().is_some_and(|t| t <= until) {
            self.step();
        }
        self.now = until;
    }

    /// Run until the cluster is converged (see the module documentation), for at most
    /// `limit` of virtual time.
    pub fn run_until_converged(&mut self, limit: Duration) -> Result<Convergence, SimError> {
        let start = self.now;
        let events = self.stats.events;
        let until = start + limit;
        loop {
            if self.in_flight == 0 && self.work_queued == 0 && self.is_converged() {
                // A RIB worker may still be busy with the last batch it received
                // (CpuModel): it settles when that work is done.
                let busy = self
                    .nodes
                    .iter()
                    .filter_map(|n| n.running.as_ref().map(|r| r.busy_until))
                    .max()
                    .unwrap_or_default();
                return Ok(Convergence {
                    at: self.now.max(busy),
                    last_loc_rib_change: self.stats.last_loc_rib_change,
                    events: self.stats.events - events,
                });
            }
            match self.queue.peek_time() {
                Some(t) if t <= until => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(until);
                    return Err(SimError::NotConverged {
                        now: self.now,
                        waited: limit,
                        why: self.why_not_converged(),
                    });
                }
            }
        }
    }

    /// Whether the cluster is quiet: see the module documentation.
    pub fn is_converged(&self) -> bool {
        self.why_not_converged().is_empty()
    }

    /// What keeps the cluster from being converged; empty when it is.
    pub fn why_not_converged(&self) -> String {
        if self.in_flight > 0 {
            return format!("{} network events in flight", self.in_flight);
        }
        if self.work_queued > 0 {
            return format!("{} node starts or flushes queued", self.work_queued);
        }
        if !self.held.is_empty() {
            return format!("{} network events held by a partition", self.held.len());
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let Some(run) = &node.running else {
                continue;
            };
            if run.rib.is_deferring() {
                return format!("node{i} defers its routes (graceful restart)");
            }
            if let Some(at) = run.rib.next_deadline() {
                return format!("node{i} holds stale routes until {:?}", self.at_of(at));
            }
            if !run.rib.peers_with_output().is_empty() {
                return format!("node{i} has output queued");
            }
            let specs = self.specs.get(i).map_or(&[][..], Vec::as_slice);
            for (nb, spec) in run.neighbors.iter().zip(specs) {
                let peer_up = self.running(spec.peer.0).is_some();
                if peer_up && nb.session.state() != State::Established {
                    return format!(
                        "node{i} session with {} is {}",
                        spec.peer,
                        nb.session.state()
                    );
                }
            }
        }
        String::new()
    }

    /// Cut the network between `a` and `b`: from now on everything either sends the other
    /// (segments, connection set-up and close) is held back, as TCP would keep
    /// retransmitting it, until [`Sim::heal`]. What is already on the wire still arrives.
    /// Sessions between them end when their hold timers expire.
    pub fn partition(&mut self, a: NodeId, b: NodeId) -> Result<(), SimError> {
        for n in [a, b] {
            if n.0 >= self.nodes.len() {
                return Err(SimError::UnknownNode(n));
            }
        }
        self.partitions.insert((a.0.min(b.0), a.0.max(b.0)));
        Ok(())
    }

    /// Reconnect `a` and `b`: what was held back is delivered, in order, after fresh
    /// latencies.
    pub fn heal(&mut self, a: NodeId, b: NodeId) {
        let pair = (a.0.min(b.0), a.0.max(b.0));
        if !self.partitions.remove(&pair) {
            return;
        }
        let (release, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(p, _)| *p == pair);
        self.held = keep;
        for (_, ev) in release {
            let at = match &ev {
                Event::Segment { conn, to, .. } | Event::Close { conn, to } => {
                    self.ordered_at(*conn, *to)
                }
                Event::SynAck { conn, .. } => self.ordered_at(*conn, 0),
                _ => self.now + self.latency(),
            };
            self.push(at, ev);
        }
    }

    /// The two nodes a network event travels between, (lower, higher) index.
    fn pair_of(&self, ev: &Event) -> Option<(usize, usize)> {
        let (x, y) = match ev {
            Event::Syn { from, to_node, .. } => (from.node, *to_node),
            Event::Refused { to, by, .. } => (to.node, *by),
            Event::SynAck { conn, .. }
            | Event::Segment { conn, .. }
            | Event::Close { conn, .. } => {
                let c = self.conns.get(conn)?;
                (c.ends[0].node, c.ends[1].node)
            }
            _ => return None,
        };
        Some((x.min(y), x.max(y)))
    }

    /// Crash `node`: all its state is lost, its peers see their connections close.
    pub fn crash(&mut self, node: NodeId) -> Result<(), SimError> {
        let n = self
            .nodes
            .get_mut(node.0)
            .ok_or(SimError::UnknownNode(node))?;
        let run = n.running.take().ok_or(SimError::NodeDown(node))?;
        n.epoch += 1;
        for nb in &run.neighbors {
            if let Some((c, side)) = nb.conn {
                self.close(c, side);
            }
        }
        Ok(())
    }

    /// Restart a crashed `node` from its configuration. With graceful restart configured
    /// it announces the Restart State bit and defers its routes until its neighbours sent
    /// End-of-RIB (RFC 4724 4.1).
    pub fn restart(&mut self, node: NodeId) -> Result<(), SimError> {
        let n = self.nodes.get(node.0).ok_or(SimError::UnknownNode(node))?;
        if n.running.is_some() {
            return Err(SimError::NodeUp(node));
        }
        self.boot(node.0, true)
    }

    // ------------------------------------------------------------------ internals

    fn instant(&self) -> Instant {
        self.base + self.now
    }

    fn at_of(&self, i: Instant) -> Duration {
        i.saturating_duration_since(self.base).max(self.now)
    }

    fn push(&mut self, at: Duration, ev: Event) {
        if let Some(pair) = self.pair_of(&ev).filter(|p| self.partitions.contains(p)) {
            self.held.push((pair, ev));
            return;
        }
        if ev.is_network() {
            self.in_flight += 1;
        } else if matches!(ev, Event::Flush { .. } | Event::Start { .. }) {
            self.work_queued += 1;
        }
        self.queue.push(at, ev);
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = (self.cfg.link.min_latency, self.cfg.link.max_latency);
        self.rng.duration(lo, hi)
    }

    fn running(&self, node: usize) -> Option<&Running> {
        self.nodes.get(node).and_then(|n| n.running.as_ref())
    }

    fn running_mut(&mut self, node: usize) -> Option<&mut Running> {
        self.nodes.get_mut(node).and_then(|n| n.running.as_mut())
    }

    fn running_epoch(&mut self, node: usize, epoch: u32) -> Option<&mut Running> {
        running_in(&mut self.nodes, node, epoch)
    }

    fn neighbor_mut(&mut self, end: End) -> Option<&mut Neighbor> {
        self.running_epoch(end.node, end.epoch)?
            .neighbors
            .get_mut(end.slot)
    }

    fn end(&self, node: usize, slot: usize) -> End {
        End {
            node,
            epoch: self.nodes.get(node).map_or(0, |n| n.epoch),
            slot,
        }
    }

    fn anomaly(&mut self, node: usize, what: String) {
        self.anomalies
            .push(format!("{:?} node{node}: {what}", self.now));
    }

    fn boot(&mut self, node: usize, restarting: bool) -> Result<(), SimError> {
        let (Some(spec), Some(specs)) = (self.topology.nodes.get(node), self.specs.get(node))
        else {
            return Err(SimError::UnknownNode(NodeId(node)));
        };
        let mut run = Running::build(spec, specs, &self.topology, &self.cfg, restarting)?;
        let slots = run.neighbors.len();
        if restarting {
            if let Some(gr) = &self.cfg.graceful_restart {
                // RFC 4724 4.1: the RIB holds our routes back until every neighbour sent
                // End-of-RIB, or the selection deferral timer (a RIB deadline) runs out.
                run.rib
                    .defer_selection(self.instant() + gr.selection_deferral);
            }
        }
        let epoch = match self.nodes.get_mut(node) {
            Some(n) => {
                n.running = Some(run);
                n.epoch
            }
            None => return Err(SimError::UnknownNode(NodeId(node))),
        };
        let now = self.instant();
        for slot in 0..slots {
            if let Some(nb) = self.neighbor_mut(End { node, epoch, slot }) {
                nb.session.start(now);
            }
            self.drive(node, slot);
        }
        self.schedule_flush(node);
        self.rearm_rib_timer(node);
        Ok(())
    }

    fn handle(&mut self, ev: Event) {
        let now = self.instant();
        match ev {
            Event::Start { node, epoch } => {
                let idle = self
                    .nodes
                    .get(node)
                    .is_some_and(|n| n.epoch == epoch && n.running.is_none());
                if idle {
                    if let Err(e) = self.boot(node, false) {
                        self.anomaly(node, format!("cannot start: {e}"));
                    }
                }
            }
            Event::SessionTimer { end, at } => {
                let Some(nb) = self.neighbor_mut(end) else {
                    return;
                };
                if nb.timer != Some(at) {
                    return;
                }
                nb.timer = None;
                nb.session.handle_timeout(now);
                self.drive(end.node, end.slot);
            }
            Event::RibTimer { node, epoch, at } => {
                let Some(run) = self.running_epoch(node, epoch) else {
                    return;
                };
                if run.rib_timer != Some(at) {
                    return;
                }
                run.rib_timer = None;
                run.rib.handle_timeout(now);
                self.schedule_flush(node);
                self.rearm_rib_timer(node);
            }
            Event::Flush { node, epoch } => self.flush(node, epoch),
            Event::Syn {
                from,
                to_node,
                to_slot,
                attempt,
            } => self.accept(from, to_node, to_slot, attempt),
            Event::SynAck { conn, attempt } => {
                let Some(end) = self.conns.get(&conn).map(|c| c.ends[0]) else {
                    return;
                };
                let wanted = self
                    .neighbor_mut(end)
                    .is_some_and(|nb| nb.attempt == Some(attempt) && nb.conn.is_none());
                if !wanted {
                    // Abandoned attempt (or a crashed node): reset the connection.
                    self.close(conn, 0);
                    return;
                }
                if let Some(nb) = self.neighbor_mut(end) {
                    nb.attempt = None;
                    nb.conn = Some((conn, 0));
                    nb.session.handle_connected(now);
                }
                self.drive(end.node, end.slot);
            }
            Event::Refused { to, attempt, .. } => {
                let Some(nb) = self.neighbor_mut(to) else {
                    return;
                };
                if nb.attempt == Some(attempt) {
                    nb.attempt = None;
                    nb.session.handle_connect_failed(now);
                    self.drive(to.node, to.slot);
                }
            }
            Event::Segment { conn, to, data } => {
                self.stats.segments += 1;
                let end = self
                    .conns
                    .get(&conn)
                    .filter(|c| c.attached.get(to).copied().unwrap_or(false))
                    .and_then(|c| c.ends.get(to).copied());
                let delivered = end.is_some_and(|end| match self.neighbor_mut(end) {
                    Some(nb) if nb.conn == Some((conn, to)) => {
                        nb.session.handle_data(now, &data);
                        true
                    }
                    _ => false,
                });
                match end {
                    Some(end) if delivered => self.drive(end.node, end.slot),
                    _ => self.stats.dropped_segments += 1,
                }
            }
            Event::Close { conn, to } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                let (Some(attached), Some(&end)) = (c.attached.get_mut(to), c.ends.get(to)) else {
                    return;
                };
                if !std::mem::replace(attached, false) {
                    return;
                }
                if !c.attached.iter().any(|&a| a) {
                    self.conns.remove(&conn);
                }
                let ours = match self.neighbor_mut(end) {
                    Some(nb) if nb.conn == Some((conn, to)) => {
                        nb.conn = None;
                        nb.session.handle_closed(now);
                        true
                    }
                    _ => false,
                };
                if ours {
                    self.drive(end.node, end.slot);
                }
            }
        }
    }

    /// A connection attempt reaches `to_node`: accept it if the session there listens.
    fn accept(&mut self, from: End, to_node: usize, to_slot: usize, attempt: u64) {
        let now = self.instant();
        let listening = self
            .running(to_node)
            .and_then(|r| r.neighbors.get(to_slot))
            .is_some_and(|nb| {
                nb.conn.is_none() && matches!(nb.session.state(), State::Active | State::Connect)
            });
        if !listening {
            let at = self.now + self.latency();
            self.push(
                at,
                Event::Refused {
                    to: from,
                    attempt,
                    by: to_node,
                },
            );
            return;
        }
        let end = self.end(to_node, to_slot);
        let conn = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            conn,
            Conn {
                ends: [from, end],
                attached: [true, true],
                last: [Duration::ZERO; 2],
            },
        );
        // The SYN-ACK travels first on the connection, ahead of the acceptor's OPEN.
        let at = self.ordered_at(conn, 0);
        self.push(at, Event::SynAck { conn, attempt });
        if let Some(nb) = self.neighbor_mut(end) {
            nb.conn = Some((conn, 1));
            nb.session.handle_connected(now);
        }
        self.drive(to_node, to_slot);
    }

    /// Delivery time of the next thing sent towards end `to` of `conn`: random latency, but
    /// not before what was sent earlier in that direction.
    fn ordered_at(&mut self, conn: u64, to: usize) -> Duration {
        let at = self.now + self.cpu_offset + self.latency();
        match self.conns.get_mut(&conn).and_then(|c| c.last.get_mut(to)) {
            Some(last) => {
                *last = (*last).max(at);
                *last
            }
            None => at,
        }
    }

    /// Write `data` from end `from` of `conn`, maybe cut into several segments.
    fn transmit(&mut self, conn: u64, from: usize, data: Bytes) {
        let to = 1 - from;
        self.stats.bytes += data.len() as u64;
        let mut cuts: Vec<usize> = Vec::new();
        if data.len() > 1 && self.rng.chance(self.cfg.link.split_percent) {
            let pieces = 2 + self.rng.below(3);
            for _ in 1..pieces {
                cuts.push(1 + self.rng.below(data.len() as u64 - 1) as usize);
            }
            cuts.sort_unstable();
            cuts.dedup();
        }
        let mut rest = data;
        let mut taken = 0;
        for cut in cuts {
            let piece = rest.split_to(cut - taken);
            taken = cut;
            let at = self.ordered_at(conn, to);
            self.push(
                at,
                Event::Segment {
                    conn,
                    to,
                    data: piece,
                },
            );
        }
        let at = self.ordered_at(conn, to);
        self.push(
            at,
            Event::Segment {
                conn,
                to,
                data: rest,
            },
        );
    }

    /// Detach end `side` of `conn`; the other end sees the close after what is in flight.
    fn close(&mut self, conn: u64, side: usize) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(a) = c.attached.get_mut(side) {
            *a = false;
        }
        let other = 1 - side;
        if c.attached.get(other).copied().unwrap_or(false) {
            let at = self.ordered_at(conn, other);
            self.push(at, Event::Close { conn, to: other });
        } else {
            self.conns.remove(&conn);
        }
    }

    /// Drain a session after input: bytes onto its connection, events into the node, then
    /// re-arm its timer.
    fn drive(&mut self, node: usize, slot: usize) {
        let end = self.end(node, slot);
        let mut chunks: Vec<Bytes> = Vec::new();
        loop {
            let Some(nb) = self.neighbor_mut(end) else {
                return;
            };
            while let Some(b) = nb.session.poll_transmit() {
                chunks.push(b);
            }
            let conn = nb.conn;
            let event = nb.session.poll_event();
            if let Some((c, side)) = conn {
                for b in chunks.drain(..) {
                    self.transmit(c, side, b);
                }
            }
            chunks.clear();
            match event {
                Some(e) => self.on_session_event(end, e),
                None => break,
            }
        }
        let Some(nb) = self.neighbor_mut(end) else {
            return;
        };
        let deadline = nb.session.poll_timeout();
        if deadline != nb.timer {
            nb.timer = deadline;
            if let Some(at) = deadline {
                let when = self.at_of(at);
                self.push(when, Event::SessionTimer { end, at });
            }
        }
    }

    fn on_session_event(&mut self, end: End, event: SessionEvent) {
        let now = self.instant();
        let Some(spec) = self
            .specs
            .get(end.node)
            .and_then(|s| s.get(end.slot))
            .cloned()
        else {
            return;
        };
        match event {
            SessionEvent::Connect => {
                let attempt = self.next_attempt;
                self.next_attempt += 1;
                if let Some(nb) = self.neighbor_mut(end) {
                    nb.attempt = Some(attempt);
                }
                let at = self.now + self.latency();
                self.push(
                    at,
                    Event::Syn {
                        from: end,
                        to_node: spec.peer.0,
                        to_slot: spec.peer_slot,
                        attempt,
                    },
                );
            }
            SessionEvent::Disconnect => {
                let conn = self.neighbor_mut(end).and_then(|nb| {
                    nb.attempt = None;
                    nb.conn.take()
                });
                if let Some((c, side)) = conn {
                    self.close(c, side);
                }
            }
            SessionEvent::StateChanged { .. } => {}
            SessionEvent::Established(n) => {
                self.stats.sessions_established += 1;
                let Some(run) = running_in(&mut self.nodes, end.node, end.epoch) else {
                    return;
                };
                let info = session_info(&n, run.address, self.cfg.extended_next_hop);
                let Some(nb) = run.neighbors.get_mut(end.slot) else {
                    return;
                };
                nb.gr_notification = gr_notification(&n, nb.session.config());
                let peer = nb.peer;
                if let Err(e) = run.rib.peer_up(peer, info, now) {
                    self.anomaly(end.node, format!("peer_up: {e}"));
                }
                self.schedule_flush(end.node);
                self.rearm_rib_timer(end.node);
            }
            SessionEvent::Update(d) => {
                if let Some(why) = &d.treat_as_withdraw {
                    self.anomaly(
                        end.node,
                        format!("treat-as-withdraw from {}: {why}", spec.peer),
                    );
                }
                if !d.discarded.is_empty() {
                    self.anomaly(
                        end.node,
                        format!("attributes discarded from {}: {:?}", spec.peer, d.discarded),
                    );
                }
                let Some(run) = running_in(&mut self.nodes, end.node, end.epoch) else {
                    return;
                };
                let Some(nb) = run.neighbors.get_mut(end.slot) else {
                    return;
                };
                let peer = nb.peer;
                let result = match d.update.end_of_rib() {
                    Some(family) => {
                        self.stats.end_of_ribs_received += 1;
                        run.rib.end_of_rib(peer, family)
                    }
                    None => {
                        self.stats.updates_received += 1;
                        run.received_since_flush += 1;
                        run.rib
                            .apply_update(peer, &d.update, d.treat_as_withdraw.is_some())
                            .map(|_| ())
                    }
                };
                if let Err(e) = result {
                    self.anomaly(end.node, format!("UPDATE from {}: {e}", spec.peer));
                }
                self.schedule_flush(end.node);
                self.rearm_rib_timer(end.node);
            }
            SessionEvent::RouteRefresh(rr) => {
                let Some(run) = running_in(&mut self.nodes, end.node, end.epoch) else {
                    return;
                };
                let Some(peer) = run.neighbors.get(end.slot).map(|n| n.peer) else {
                    return;
                };
                if let Err(e) = run.rib.route_refresh(peer, rr.family) {
                    self.anomaly(end.node, format!("route refresh: {e}"));
                }
                self.schedule_flush(end.node);
            }
            SessionEvent::Down(reason) => {
                let Some(run) = running_in(&mut self.nodes, end.node, end.epoch) else {
                    return;
                };
                let Some(nb) = run.neighbors.get_mut(end.slot) else {
                    return;
                };
                let graceful = graceful_down(&reason, nb.gr_notification);
                let peer = nb.peer;
                let was_up = run.rib.is_up(peer);
                if let Err(e) = run.rib.peer_down(peer, graceful, now) {
                    self.anomaly(end.node, format!("peer_down: {e}"));
                }
                if was_up {
                    self.stats.sessions_down += 1;
                    self.downs.push(SessionDown {
                        at: self.now,
                        node: NodeId(end.node),
                        peer: spec.peer,
                        reason,
                    });
                    self.schedule_flush(end.node);
                }
                self.rearm_rib_timer(end.node);
            }
        }
    }

    fn schedule_flush(&mut self, node: usize) {
        let Some(run) = self.running_mut(node) else {
            return;
        };
        if run.flush_pending {
            return;
        }
        run.flush_pending = true;
        let busy_until = run.busy_until;
        let at = (self.now + self.cfg.batch_delay).max(busy_until);
        let epoch = self.end(node, 0).epoch;
        self.push(at, Event::Flush { node, epoch });
    }

    fn rearm_rib_timer(&mut self, node: usize) {
        let Some(run) = self.running_mut(node) else {
            return;
        };
        let deadline = run.rib.next_deadline();
        if deadline == run.rib_timer {
            return;
        }
        run.rib_timer = deadline;
        if let Some(at) = deadline {
            let epoch = self.end(node, 0).epoch;
            let when = self.at_of(at);
            self.push(when, Event::RibTimer { node, epoch, at });
        }
    }

    /// Run the node's decision process and hand every peer its UPDATEs.
    fn flush(&mut self, node: usize, epoch: u32) {
        let now = self.now;
        let Some(run) = running_in(&mut self.nodes, node, epoch) else {
            return;
        };
        run.flush_pending = false;
        // The decision process has run once the received UPDATEs were paid for.
        let cpu = self.cfg.cpu.clone();
        let received = std::mem::take(&mut run.received_since_flush);
        let mut clock = now + cpu.per_update_received.saturating_mul(count(received));
        run.rib.process(&AllReachable);
        let mut changes = 0u64;
        for change in run.rib.take_fib(usize::MAX) {
            changes += 1;
            if let FibChange::Remove(prefix) = change {
                self.removals.push(FibRemoval {
                    at: clock,
                    node: NodeId(node),
                    prefix,
                });
            }
        }
        // Empty while the RIB defers selection after a graceful restart.
        let peers = run.rib.peers_with_output();
        if changes > 0 {
            self.stats.loc_rib_changes += changes;
            self.stats.last_loc_rib_change = clock;
        }
        let mut frames = std::mem::take(&mut self.frames);
        for peer in peers {
            let Some(run) = running_in(&mut self.nodes, node, epoch) else {
                break;
            };
            let Some(slot) = run.slot(peer) else {
                continue;
            };
            frames.clear();
            if let Err(e) = run.rib.take_encoded(peer, usize::MAX, &mut frames) {
                self.anomaly(node, format!("encoding for slot {slot}: {e}"));
                continue;
            }
            let sent = frames.len() as u64;
            clock += cpu.per_update_sent.saturating_mul(count(sent));
            let Some(nb) = run.neighbors.get_mut(slot) else {
                continue;
            };
            if let Err(e) = nb.session.send_encoded(frames.drain(..)) {
                self.anomaly(node, format!("send to slot {slot}: {e}"));
                continue;
            }
            self.stats.updates_sent += sent;
            self.cpu_offset = clock - now;
            self.drive(node, slot);
            self.cpu_offset = Duration::ZERO;
        }
        self.frames = frames;
        if let Some(run) = running_in(&mut self.nodes, node, epoch) {
            run.busy_until = clock;
        }
        self.rearm_rib_timer(node);
    }
}

/// A message count as a [`Duration`] multiplier.
fn count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The running incarnation `epoch` of `node` (a free function so callers can borrow other
/// fields of the simulator at the same time).
fn running_in(nodes: &mut [Node], node: usize, epoch: u32) -> Option<&mut Running> {
    nodes
        .get_mut(node)
        .filter(|n| n.epoch == epoch)
        .and_then(|n| n.running.as_mut())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_nodes(seed: u64) -> Sim {
        let mut cfg = SimConfig::new(seed);
        cfg.link.split_percent = 60;
        cfg.link.max_latency = Duration::from_millis(50);
        match Sim::new(Topology::full_mesh(2), cfg) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn one_connection_delivers_its_bytes_in_order_whatever_the_latencies() {
        let mut sim = two_nodes(5);
        let end = |node| End {
            node,
            epoch: 0,
            slot: 0,
        };
        let conn = 1000;
        sim.conns.insert(
            conn,
            Conn {
                ends: [end(0), end(1)],
                attached: [true, true],
                last: [Duration::ZERO; 2],
            },
        );
        let mut sent = Vec::new();
        for i in 0..200u32 {
            let chunk: Vec<u8> = (0..(i % 17 + 1)).map(|j| (i + j) as u8).collect();
            sent.extend_from_slice(&chunk);
            sim.transmit(conn, 0, Bytes::from(chunk));
            sim.now += Duration::from_micros(10);
        }
        let mut received = Vec::new();
        let mut last_at = Duration::ZERO;
        let mut segments = 0;
        while let Some((at, ev)) = sim.queue.pop() {
            if let Event::Segment { conn: c, to, data } = ev {
                assert_eq!((c, to), (conn, 1));
                assert!(at >= last_at);
                last_at = at;
                received.extend_from_slice(&data);
                segments += 1;
            }
        }
        assert_eq!(received, sent);
        assert!(segments > 200, "some writes were split: {segments}");
    }

    #[test]
    fn crash_and_restart_check_the_node_state() {
        let mut sim = two_nodes(6);
        assert!(matches!(sim.crash(NodeId(0)), Err(SimError::NodeDown(_))));
        sim.run_for(Duration::from_millis(1));
        assert!(sim.is_running(NodeId(0)));
        assert!(matches!(sim.restart(NodeId(0)), Err(SimError::NodeUp(_))));
        assert!(matches!(
            sim.crash(NodeId(7)),
            Err(SimError::UnknownNode(_))
        ));
        assert!(sim.crash(NodeId(0)).is_ok());
        assert!(!sim.is_running(NodeId(0)));
        assert!(sim.rib(NodeId(0)).is_none());
        assert!(sim.restart(NodeId(0)).is_ok());
        assert!(sim.run_until_converged(Duration::from_secs(300)).is_ok());
    }

    #[test]
    fn not_converged_reports_why() {
        let mut sim = two_nodes(7);
        assert!(!sim.is_converged());
        assert!(sim.why_not_converged().contains("queued"));
        // Too little virtual time to even connect.
        match sim.run_until_converged(Duration::from_micros(1)) {
            Err(SimError::NotConverged { why, .. }) => assert!(!why.is_empty()),
            other => panic!("{other:?}"),
        }
    }
}
