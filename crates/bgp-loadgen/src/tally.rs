//! What one client holds of the other clients' routes, counted as UPDATEs arrive.
//!
//! One bit per prefix of the [`Plan`]: an announcement sets the bit, a withdrawal clears
//! it, so a prefix announced twice (an implicit replacement, RFC 4271 3.1) counts once
//! and the count is exact whatever order the reflector sends in. A client's own prefixes
//! and prefixes outside the plan are counted apart: neither should arrive.

use ipnet::IpNet;

use crate::plan::Plan;

/// The routes one client holds (see the module documentation).
#[derive(Clone, Debug)]
pub struct RouteTally {
    plan: Plan,
    client: u32,
    held: Vec<u64>,
    /// Other clients' prefixes currently held.
    held_others: u64,
    /// Announcements received (every NLRI, replacements included).
    pub announced: u64,
    /// Withdrawals received.
    pub withdrawn: u64,
    /// Announcements of this client's own prefixes (reflected back to their origin).
    pub own: u64,
    /// Announcements of prefixes the plan does not contain.
    pub foreign: u64,
}

impl RouteTally {
    /// An empty tally for client `client` of `plan`.
    pub fn new(plan: Plan, client: u32) -> RouteTally {
        let words = plan.total_routes().div_ceil(64);
        RouteTally {
            plan,
            client,
            held: vec![0; usize::try_from(words).unwrap_or(0)],
            held_others: 0,
            announced: 0,
            withdrawn: 0,
            own: 0,
            foreign: 0,
        }
    }

    /// Other clients' prefixes held now.
    pub fn held_others(&self) -> u64 {
        self.held_others
    }

    /// Every other client's prefixes are held.
    pub fn is_complete(&self) -> bool {
        self.held_others == self.plan.expected_per_client()
    }

    /// Records an announcement of `prefix`.
    pub fn announce(&mut self, prefix: &IpNet) {
        self.announced += 1;
        match self.slot(prefix) {
            Slot::Foreign => self.foreign += 1,
            Slot::Own => self.own += 1,
            Slot::Other { word, bit } => {
                if let Some(w) = self.held.get_mut(word) {
                    if *w & bit == 0 {
                        *w |= bit;
                        self.held_others += 1;
                    }
                }
            }
        }
    }

    /// Records a withdrawal of `prefix`.
    pub fn withdraw(&mut self, prefix: &IpNet) {
        self.withdrawn += 1;
        if let Slot::Other { word, bit } = self.slot(prefix) {
            if let Some(w) = self.held.get_mut(word) {
                if *w & bit != 0 {
                    *w &= !bit;
                    self.held_others -= 1;
                }
            }
        }
    }

    fn slot(&self, prefix: &IpNet) -> Slot {
        let IpNet::V4(v4) = prefix else {
            return Slot::Foreign;
        };
        let Some(index) = self.plan.index_of(v4) else {
            return Slot::Foreign;
        };
        if index / u64::from(self.plan.routes()) == u64::from(self.client) {
            return Slot::Own;
        }
        match usize::try_from(index / 64) {
            Ok(word) => Slot::Other {
                word,
                bit: 1 << (index % 64),
            },
            Err(_) => Slot::Foreign,
        }
    }
}

enum Slot {
    Foreign,
    Own,
    Other { word: usize, bit: u64 },
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn plan() -> Plan {
        Plan::new(3, 100, 24, Ipv4Addr::new(10, 0, 0, 0)).expect("plan")
    }

    fn net(plan: &Plan, client: u32, route: u32) -> IpNet {
        IpNet::V4(plan.prefix(client, route).expect("in plan"))
    }

    #[test]
    fn completes_once_every_other_clients_route_is_held() {
        let p = plan();
        let mut t = RouteTally::new(p, 1);
        for client in [0, 2] {
            for route in 0..100 {
                assert!(!t.is_complete());
                t.announce(&net(&p, client, route));
            }
        }
        assert!(t.is_complete());
        assert_eq!(t.held_others(), 200);
        assert_eq!((t.announced, t.own, t.foreign), (200, 0, 0));
    }

    #[test]
    fn replacements_count_once_and_withdrawals_uncount() {
        let p = plan();
        let mut t = RouteTally::new(p, 0);
        let r = net(&p, 2, 99);
        t.announce(&r);
        t.announce(&r);
        assert_eq!((t.held_others(), t.announced), (1, 2));
        t.withdraw(&r);
        t.withdraw(&r);
        assert_eq!((t.held_others(), t.withdrawn), (0, 2));
    }

    #[test]
    fn own_and_foreign_prefixes_are_counted_apart() {
        let p = plan();
        let mut t = RouteTally::new(p, 2);
        t.announce(&net(&p, 2, 5));
        t.announce(&"192.0.2.0/24".parse().expect("net"));
        t.announce(&"2001:db8::/32".parse().expect("net"));
        t.withdraw(&net(&p, 2, 5));
        assert_eq!((t.own, t.foreign, t.held_others()), (1, 2, 0));
    }
}
