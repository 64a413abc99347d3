//! The simulated network: in-memory TCP connections between nodes, connection set-up
//! (SYN, accept or refusal, SYN-ACK), segments with seeded latency delivered in order per
//! direction, closes behind the data in flight, and partitions that hold everything back
//! until healed.

use std::time::Duration;

use bytes::Bytes;

use super::{Conn, End, Event, Sim, SimError};
use crate::node::session_address;
use crate::topology::NodeId;

impl Sim {
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
    pub(super) fn pair_of(&self, ev: &Event) -> Option<(usize, usize)> {
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

    /// A connection attempt of `from` reaches `to_node`: its peer driver takes it (a
    /// listener is always open; the driver refuses while the peer is disabled or in its
    /// error backoff), or it is refused (a TCP reset).
    pub(super) fn accept(&mut self, from: End, to_node: usize, to_slot: usize, attempt: u64) {
        let now = self.instant();
        let end = self.end(to_node, to_slot);
        let from_addr = self
            .topology
            .nodes
            .get(from.node)
            .map(|n| session_address(n.address, &self.cfg));
        let accepted = match (from_addr, self.running_epoch(to_node, end.epoch)) {
            (Some(addr), Some(run)) => {
                let transport = run.transport(addr);
                run.neighbors
                    .get_mut(to_slot)
                    .map(|nb| nb.driver.handle_accepted(now, transport))
            }
            _ => None,
        };
        let Some(Ok(id)) = accepted else {
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
        };
        let conn = self.next_conn;
        self.next_conn += 1;
        self.stats.connections += 1;
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
            nb.conns.push((id, conn, 1));
        }
        self.drive(to_node, to_slot);
    }

    /// Delivery time of the next thing sent towards end `to` of `conn`: random latency, but
    /// not before what was sent earlier in that direction.
    pub(super) fn ordered_at(&mut self, conn: u64, to: usize) -> Duration {
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
    pub(super) fn transmit(&mut self, conn: u64, from: usize, data: Bytes) {
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
    pub(super) fn close(&mut self, conn: u64, side: usize) {
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
}
