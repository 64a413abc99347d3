//! The simulator: every node's sessions and RIB driven by one event queue over a virtual
//! clock, with an in-memory TCP model between them.
//!
//! Each node runs the node layer's drivers (`bgp-node`), as the daemon does: a
//! [`RibDriver`](bgp_node::RibDriver) and a [`PeerDriver`](bgp_node::PeerDriver) per
//! neighbour. The driving loop is the one the daemon's tasks run (and the one
//! `quinn-proto`'s test `Pair` runs for two endpoints): feed a driver its input with the
//! current time, then drain `poll_transmit` onto the connection, `poll_event` into the
//! RIB driver, and re-arm the timer from `poll_timeout`. Only the sockets and the clock
//! are simulated:
//!
//! * A connection is two ends with an attached flag each. A write becomes one or more
//!   segment events with seeded random latency, never earlier than the previous segment
//!   in the same direction (TCP is in order), so different connections interleave
//!   differently per seed. Closing an end (a `Disconnect` from the session, or a crash)
//!   sends a close event behind the data already in flight.
//! * Connection set-up is SYN → accept (if the peer's driver takes it) → SYN-ACK, or a
//!   refusal. One end of every session is passive (see
//!   [`SessionSpec::active_end`](crate::SessionSpec::active_end)), unless
//!   [`SimConfig::both_active`] makes both ends connect and their connections collide
//!   (resolved by the peer drivers, RFC 4271 6.8).
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

use bgp_node::PeerStatus;
use bgp_proto::session::{DownReason, State};
use bgp_rib::Rib;
use bytes::Bytes;
use ipnet::IpNet;

use crate::config::SimConfig;
pub use crate::error::SimError;
use crate::node::{neighbor_specs, Neighbor, NeighborSpec, Running};
use crate::queue::EventQueue;
use crate::rng::Rng;
use crate::snapshot::{self, LocRibEntry};
use crate::topology::{NodeId, Topology};

mod driving;
mod network;

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
    /// Connections set up (accepted by the peer), colliding ones included.
    pub connections: u64,
    /// Output slices the RIBs handed to their peers (see
    /// [`SimConfig::out_slice_bytes`](crate::SimConfig::out_slice_bytes)).
    pub output_slices: u64,
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
    /// While a flush runs: how far the node's RIB worker is past `now` (what it sends
    /// leaves that much later).
    cpu_offset: Duration,
}

impl Sim {
    /// Set up `topology`; every node starts at a random offset within
    /// [`SimConfig::start_jitter`].
    pub fn new(topology: Topology, cfg: SimConfig) -> Result<Sim, SimError> {
        topology.validate()?;
        let specs = neighbor_specs(&topology, cfg.both_active);
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
        self.running(node.0).map(|r| r.rib.rib())
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
        self.neighbor(node, peer).map(|n| n.driver.state())
    }

    /// What `node`'s peer driver for `peer` reports: counters, last NOTIFICATIONs, the
    /// negotiated session.
    pub fn peer_status(&self, node: NodeId, peer: NodeId) -> Option<&PeerStatus> {
        self.neighbor(node, peer).map(|n| n.driver.status())
    }

    /// Which of the two opened the connection `node` has with `peer`, while there is
    /// exactly one (after a collision, the connection that was kept).
    pub fn connection_opener(&self, node: NodeId, peer: NodeId) -> Option<NodeId> {
        match self.neighbor(node, peer)?.conns.as_slice() {
            // End 0 of a connection opened it.
            [(_, _, side)] => Some(if *side == 0 { node } else { peer }),
            _ => None,
        }
    }

    fn neighbor(&self, node: NodeId, peer: NodeId) -> Option<&Neighbor> {
        let run = self.running(node.0)?;
        let slot = self
            .specs
            .get(node.0)?
            .iter()
            .position(|s| s.peer == peer)?;
        run.neighbors.get(slot)
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
            let rib = run.rib.rib();
            if rib.is_deferring() {
                return format!("node{i} defers its routes (graceful restart)");
            }
            if let Some(at) = rib.next_deadline() {
                return format!("node{i} holds stale routes until {:?}", self.at_of(at));
            }
            if !rib.peers_with_output().is_empty() {
                return format!("node{i} has output queued");
            }
            let specs = self.specs.get(i).map_or(&[][..], Vec::as_slice);
            for (nb, spec) in run.neighbors.iter().zip(specs) {
                let peer_up = self.running(spec.peer.0).is_some();
                if peer_up && nb.driver.state() != State::Established {
                    return format!(
                        "node{i} session with {} is {}",
                        spec.peer,
                        nb.driver.state()
                    );
                }
            }
        }
        String::new()
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
            for &(_, c, side) in &nb.conns {
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
        let now = self.instant();
        let mut run = Running::build(spec, specs, &self.topology, &self.cfg, restarting, now)?;
        let slots = run.neighbors.len();
        if restarting {
            if let Some(gr) = &self.cfg.graceful_restart {
                // RFC 4724 4.1: the RIB holds our routes back until every neighbour sent
                // End-of-RIB, or the selection deferral timer (a RIB deadline) runs out.
                run.rib
                    .start_recovery(now + gr.selection_deferral, true, now);
            }
        }
        match self.nodes.get_mut(node) {
            Some(n) => n.running = Some(run),
            None => return Err(SimError::UnknownNode(NodeId(node))),
        }
        for slot in 0..slots {
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
                nb.driver.handle_timeout(now, false);
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
                let remote = self.peer_address(end);
                let connected = self.running_epoch(end.node, end.epoch).and_then(|run| {
                    let transport = run.transport(remote?);
                    let nb = run.neighbors.get_mut(end.slot)?;
                    let i = nb.attempts.iter().position(|(_, a)| *a == attempt)?;
                    let (id, _) = nb.attempts.swap_remove(i);
                    nb.driver
                        .handle_connected(now, id, transport)
                        .then(|| nb.conns.push((id, conn, 0)))
                });
                if connected.is_none() {
                    // Abandoned attempt (or a crashed node): reset the connection.
                    self.close(conn, 0);
                    return;
                }
                self.drive(end.node, end.slot);
            }
            Event::Refused { to, attempt, .. } => {
                let Some(nb) = self.neighbor_mut(to) else {
                    return;
                };
                let Some(i) = nb.attempts.iter().position(|(_, a)| *a == attempt) else {
                    return;
                };
                let (id, _) = nb.attempts.swap_remove(i);
                nb.driver
                    .handle_connect_failed(now, id, "connection refused");
                self.drive(to.node, to.slot);
            }
            Event::Segment { conn, to, data } => {
                self.stats.segments += 1;
                let end = self
                    .conns
                    .get(&conn)
                    .filter(|c| c.attached.get(to).copied().unwrap_or(false))
                    .and_then(|c| c.ends.get(to).copied());
                let delivered = end.is_some_and(|end| match self.neighbor_mut(end) {
                    Some(nb) => match nb.conn_id(conn, to) {
                        Some(id) => {
                            nb.driver.handle_data(now, id, &data);
                            true
                        }
                        None => false,
                    },
                    None => false,
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
                    Some(nb) => match nb.conn_id(conn, to) {
                        Some(id) => {
                            nb.conns.retain(|(c, _, _)| *c != id);
                            nb.driver.handle_closed(now, id, None);
                            true
                        }
                        None => false,
                    },
                    None => false,
                };
                if ours {
                    self.drive(end.node, end.slot);
                }
            }
        }
    }

    /// The session address of the peer at the other end of neighbour slot `end`.
    fn peer_address(&self, end: End) -> Option<std::net::IpAddr> {
        let spec = self.specs.get(end.node)?.get(end.slot)?;
        let peer = self.topology.nodes.get(spec.peer.0)?;
        Some(crate::node::session_address(peer.address, &self.cfg))
    }
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
