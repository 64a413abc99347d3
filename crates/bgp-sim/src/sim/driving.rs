//! Driving a node the way the daemon's tasks drive it: feed a peer driver its input with
//! the current time, then drain its polls (bytes onto its connections, events for the
//! RIB and the network, its timer); batch the RIB's work into flushes that run the
//! decision process once and hand each peer its UPDATEs a slice at a time.

use std::time::Duration;

use bgp_node::{PeerEvent, RibEvent, RibInput};
use bgp_rib::FibChange;
use bytes::Bytes;

use super::{running_in, End, Event, FibRemoval, SessionDown, Sim};
use crate::topology::NodeId;

/// A message count as a [`Duration`] multiplier.
fn count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Sim {
    /// Drain a neighbour's driver after input: output slices into it as it takes them,
    /// bytes onto its connections, its events into the node, then re-arm its timer.
    pub(super) fn drive(&mut self, node: usize, slot: usize) {
        let end = self.end(node, slot);
        let now = self.instant();
        let mut chunks: Vec<(u64, usize, Bytes)> = Vec::new();
        loop {
            let Some(nb) = self.neighbor_mut(end) else {
                return;
            };
            while nb.driver.can_take_output() {
                let Some(slice) = nb.out.pop_front() else {
                    break;
                };
                if let Err(back) = nb.driver.handle_output(now, slice) {
                    nb.out.push_front(back);
                    break;
                }
            }
            for &(id, conn, side) in &nb.conns {
                while let Some(b) = nb.driver.poll_transmit(id) {
                    chunks.push((conn, side, b));
                }
            }
            let event = nb.driver.poll_event();
            for (conn, side, b) in chunks.drain(..) {
                self.transmit(conn, side, b);
            }
            match event {
                Some(e) => self.on_peer_event(end, e),
                None => break,
            }
        }
        let Some(nb) = self.neighbor_mut(end) else {
            return;
        };
        let deadline = nb.driver.poll_timeout();
        if deadline != nb.timer {
            nb.timer = deadline;
            if let Some(at) = deadline {
                let when = self.at_of(at);
                self.push(when, Event::SessionTimer { end, at });
            }
        }
    }

    fn on_peer_event(&mut self, end: End, event: PeerEvent) {
        let Some(spec) = self
            .specs
            .get(end.node)
            .and_then(|s| s.get(end.slot))
            .cloned()
        else {
            return;
        };
        match event {
            PeerEvent::Connect(id) => {
                let attempt = self.next_attempt;
                self.next_attempt += 1;
                if let Some(nb) = self.neighbor_mut(end) {
                    nb.attempts.push((id, attempt));
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
            PeerEvent::Close { conn: id, last } => {
                let Some(nb) = self.neighbor_mut(end) else {
                    return;
                };
                // An attempt abandoned: its SYN-ACK, if any, finds no one and resets.
                nb.attempts.retain(|(a, _)| *a != id);
                let Some(i) = nb.conns.iter().position(|(c, _, _)| *c == id) else {
                    return;
                };
                let (_, conn, side) = nb.conns.swap_remove(i);
                for b in last {
                    self.transmit(conn, side, b);
                }
                self.close(conn, side);
            }
            PeerEvent::Rib(input) => self.rib_input(end, spec.peer, input),
            PeerEvent::OutputTaken { session } => {
                let Some(run) = running_in(&mut self.nodes, end.node, end.epoch) else {
                    return;
                };
                let Some(id) = run.neighbors.get(end.slot).map(|n| n.driver.id()) else {
                    return;
                };
                run.rib.handle_output_taken(id, session);
                // A flush under way hands out what is left; otherwise one is due.
                if !run.flushing {
                    self.schedule_flush(end.node);
                }
            }
        }
    }

    /// What a session tells the RIB, counted and checked on the way.
    fn rib_input(&mut self, end: End, peer: NodeId, input: RibInput) {
        let now = self.instant();
        match &input {
            RibInput::Up { .. } => self.stats.sessions_established += 1,
            RibInput::Update(d) => {
                if let Some(why) = &d.treat_as_withdraw {
                    self.anomaly(end.node, format!("treat-as-withdraw from {peer}: {why}"));
                }
                if !d.discarded.is_empty() {
                    self.anomaly(
                        end.node,
                        format!("attributes discarded from {peer}: {:?}", d.discarded),
                    );
                }
                if d.update.end_of_rib().is_some() {
                    self.stats.end_of_ribs_received += 1;
                } else {
                    self.stats.updates_received += 1;
                    if let Some(run) = running_in(&mut self.nodes, end.node, end.epoch) {
                        run.received_since_flush += 1;
                    }
                }
            }
            RibInput::RouteRefresh(_) => {}
            RibInput::Down { reason, .. } => {
                self.stats.sessions_down += 1;
                self.downs.push(SessionDown {
                    at: self.now,
                    node: NodeId(end.node),
                    peer,
                    reason: reason.clone(),
                });
            }
        }
        let Some(run) = running_in(&mut self.nodes, end.node, end.epoch) else {
            return;
        };
        let Some(id) = run.neighbors.get(end.slot).map(|n| n.driver.id()) else {
            return;
        };
        if run.rib.handle_input(now, id, input).is_err() {
            self.anomaly(end.node, format!("input for an unknown peer {id}"));
        }
        self.schedule_flush(end.node);
        self.rearm_rib_timer(end.node);
    }

    /// The peer driver of `peer` on incarnation `epoch` of `node`, with its slot.
    fn driver_of(
        &mut self,
        node: usize,
        epoch: u32,
        peer: bgp_node::PeerId,
    ) -> Option<(usize, &mut bgp_node::PeerDriver)> {
        let run = running_in(&mut self.nodes, node, epoch)?;
        let slot = run.slot(peer)?;
        run.neighbors.get_mut(slot).map(|n| (slot, &mut n.driver))
    }

    pub(super) fn schedule_flush(&mut self, node: usize) {
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

    pub(super) fn rearm_rib_timer(&mut self, node: usize) {
        let Some(run) = self.running_mut(node) else {
            return;
        };
        let deadline = run.rib.poll_timeout();
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

    /// Run the node's decision process and hand every peer its UPDATEs, a slice at a
    /// time, peers taking turns (what the daemon's RIB task does after each batch).
    pub(super) fn flush(&mut self, node: usize, epoch: u32) {
        let now = self.now;
        let instant = self.instant();
        let Some(run) = running_in(&mut self.nodes, node, epoch) else {
            return;
        };
        run.flush_pending = false;
        run.flushing = true;
        // The decision process has run once the received UPDATEs were paid for.
        let cpu = self.cfg.cpu.clone();
        let received = std::mem::take(&mut run.received_since_flush);
        let mut clock = now + cpu.per_update_received.saturating_mul(count(received));
        // The first poll runs the decision process.
        let mut changes = 0u64;
        while let Some(batch) = run.rib.poll_fib() {
            for change in batch.changes {
                changes += 1;
                if let FibChange::Remove(prefix) = change {
                    self.removals.push(FibRemoval {
                        at: clock,
                        node: NodeId(node),
                        prefix,
                    });
                }
            }
        }
        if changes > 0 {
            self.stats.loc_rib_changes += changes;
            self.stats.last_loc_rib_change = clock;
        }
        // Requests for peers: a session over its prefix limit is closed.
        while let Some(ev) =
            running_in(&mut self.nodes, node, epoch).and_then(|r| r.rib.poll_event())
        {
            match ev {
                RibEvent::Teardown {
                    peer,
                    notification,
                    restart_after,
                    hard_reset,
                } => {
                    if let Some((slot, d)) = self.driver_of(node, epoch, peer) {
                        d.teardown(instant, notification, Some(restart_after), hard_reset);
                        self.drive(node, slot);
                    }
                }
                RibEvent::RouteRefresh { peer, family } => {
                    if let Some((slot, d)) = self.driver_of(node, epoch, peer) {
                        d.route_refresh(instant, family);
                        self.drive(node, slot);
                    }
                }
                // Route events are off: nobody subscribes in the simulator.
                RibEvent::RouteChanges(_) => {}
            }
        }
        // Empty while the RIB defers selection after a graceful restart.
        while let Some(run) = running_in(&mut self.nodes, node, epoch) {
            let Some((peer, slice)) = run.rib.poll_output() else {
                break;
            };
            let Some(slot) = run.slot(peer) else {
                continue;
            };
            let sent = slice.frames.len() as u64;
            clock += cpu.per_update_sent.saturating_mul(count(sent));
            if let Some(nb) = run.neighbors.get_mut(slot) {
                nb.out.push_back(slice);
            }
            self.stats.updates_sent += sent;
            self.stats.output_slices += 1;
            self.cpu_offset = clock - now;
            self.drive(node, slot);
            self.cpu_offset = Duration::ZERO;
        }
        if let Some(run) = running_in(&mut self.nodes, node, epoch) {
            run.busy_until = clock;
            run.flushing = false;
        }
        self.rearm_rib_timer(node);
    }
}
