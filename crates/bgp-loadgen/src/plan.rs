//! The shape of a load: which clients exist, which prefixes each announces, and which
//! client a received prefix belongs to.
//!
//! Client `i` (0-based) connects from the loopback address `127.1.(i / 250).(i % 250 + 1)`
//! (so up to 64,000 clients stay clear of 127.0.0.0/16, where the device under test
//! listens) and announces `routes` prefixes of length `prefix_len`, numbered
//! `i * routes + j` from `base`: every prefix is distinct, and a prefix maps back to its
//! origin client by arithmetic alone, so counting what arrives needs no lookup table.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Most clients [`Plan::new`] accepts: the loopback addresses of `127.1.0.0/16` it uses.
pub const MAX_CLIENTS: u32 = 250 * 256;

/// Why a plan cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("clients must be between 1 and {MAX_CLIENTS}, not {0}")]
    Clients(u32),
    #[error("routes per client must be at least 1")]
    NoRoutes,
    #[error("prefix length must be between 8 and 32, not {0}")]
    PrefixLen(u8),
    #[error("base {base} is not aligned to /{len}")]
    Unaligned { base: Ipv4Addr, len: u8 },
    #[error("{total} prefixes of length /{len} from {base} run past 255.255.255.255")]
    TooMany { total: u64, base: Ipv4Addr, len: u8 },
}

/// Which prefix of which client.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub client: u32,
    pub route: u32,
}

/// N clients announcing K prefixes each (see the module documentation).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    clients: u32,
    routes: u32,
    prefix_len: u8,
    base: u32,
}

impl Plan {
    /// A plan, checked: every prefix must fit in the IPv4 space above `base`.
    pub fn new(
        clients: u32,
        routes: u32,
        prefix_len: u8,
        base: Ipv4Addr,
    ) -> Result<Plan, PlanError> {
        if clients == 0 || clients > MAX_CLIENTS {
            return Err(PlanError::Clients(clients));
        }
        if routes == 0 {
            return Err(PlanError::NoRoutes);
        }
        if !(8..=32).contains(&prefix_len) {
            return Err(PlanError::PrefixLen(prefix_len));
        }
        let step = 1u64 << (32 - prefix_len);
        let base_n = u32::from(base);
        if u64::from(base_n) % step != 0 {
            return Err(PlanError::Unaligned {
                base,
                len: prefix_len,
            });
        }
        let total = u64::from(clients) * u64::from(routes);
        if u64::from(base_n) + total * step > 1u64 << 32 {
            return Err(PlanError::TooMany {
                total,
                base,
                len: prefix_len,
            });
        }
        Ok(Plan {
            clients,
            routes,
            prefix_len,
            base: base_n,
        })
    }

    pub fn clients(&self) -> u32 {
        self.clients
    }

    pub fn routes(&self) -> u32 {
        self.routes
    }

    /// Every prefix of every client.
    pub fn total_routes(&self) -> u64 {
        u64::from(self.clients) * u64::from(self.routes)
    }

    /// What each client must end up holding: every other client's prefixes (a reflector
    /// does not send a client its own routes back, and a client would ignore them by
    /// ORIGINATOR_ID, RFC 4456 8).
    pub fn expected_per_client(&self) -> u64 {
        self.total_routes() - u64::from(self.routes)
    }

    /// The loopback address client `client` connects from, also its BGP Identifier and
    /// the NEXT_HOP of its routes.
    pub fn client_address(client: u32) -> Ipv4Addr {
        // Numbered by 250s, so the last octet is never 0 or 255. Out-of-range clients
        // wrap within 127.1.0.0/16 (Plan::new refuses more than MAX_CLIENTS).
        let third = (client / 250 % 256) as u8;
        let fourth = (client % 250) as u8 + 1;
        Ipv4Addr::new(127, 1, third, fourth)
    }

    /// Prefix `route` of client `client` (both in range, else `None`).
    pub fn prefix(&self, client: u32, route: u32) -> Option<Ipv4Net> {
        if client >= self.clients || route >= self.routes {
            return None;
        }
        let index = u64::from(client) * u64::from(self.routes) + u64::from(route);
        let addr = u64::from(self.base) + (index << (32 - self.prefix_len));
        let addr = u32::try_from(addr).ok()?;
        Ipv4Net::new(Ipv4Addr::from(addr), self.prefix_len).ok()
    }

    /// Every prefix of client `client`, in route order (empty when out of range).
    pub fn prefixes_of(&self, client: u32) -> Vec<Ipv4Net> {
        (0..self.routes)
            .filter_map(|route| self.prefix(client, route))
            .collect()
    }

    /// The position of `prefix` in the plan (`client * routes + route`), or `None` for a
    /// prefix the plan never announces.
    pub fn index_of(&self, prefix: &Ipv4Net) -> Option<u64> {
        if prefix.prefix_len() != self.prefix_len {
            return None;
        }
        let addr = u32::from(prefix.addr());
        let offset = addr.checked_sub(self.base)?;
        let index = u64::from(offset >> (32 - self.prefix_len));
        (index < self.total_routes()).then_some(index)
    }

    /// Which client announced `prefix`, and as which of its routes.
    pub fn origin_of(&self, prefix: &Ipv4Net) -> Option<Origin> {
        let index = self.index_of(prefix)?;
        let routes = u64::from(self.routes);
        Some(Origin {
            client: u32::try_from(index / routes).ok()?,
            route: u32::try_from(index % routes).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(clients: u32, routes: u32, len: u8) -> Plan {
        Plan::new(clients, routes, len, Ipv4Addr::new(10, 0, 0, 0)).expect("valid plan")
    }

    #[test]
    fn prefixes_are_distinct_and_map_back_to_their_origin() {
        let p = plan(7, 13, 24);
        let mut seen = std::collections::HashSet::new();
        for client in 0..7 {
            for (route, prefix) in p.prefixes_of(client).iter().enumerate() {
                assert!(seen.insert(*prefix), "{prefix} twice");
                assert_eq!(
                    p.origin_of(prefix),
                    Some(Origin {
                        client,
                        route: route as u32
                    })
                );
            }
        }
        assert_eq!(seen.len(), 7 * 13);
        assert_eq!(p.prefix(0, 0), Some("10.0.0.0/24".parse().expect("net")));
        assert_eq!(p.prefix(1, 0), Some("10.0.13.0/24".parse().expect("net")));
        assert_eq!(p.prefix(7, 0), None);
        assert_eq!(p.prefix(0, 13), None);
    }

    #[test]
    fn host_routes_count_one_address_each() {
        let p = plan(2, 300, 32);
        assert_eq!(p.prefix(1, 0), Some("10.0.1.44/32".parse().expect("net")));
        assert_eq!(p.expected_per_client(), 300);
    }

    #[test]
    fn foreign_prefixes_have_no_origin() {
        let p = plan(3, 10, 24);
        for foreign in [
            "9.255.255.0/24",
            "10.0.30.0/24",
            "10.0.0.0/23",
            "10.0.0.0/25",
        ] {
            assert_eq!(
                p.origin_of(&foreign.parse().expect("net")),
                None,
                "{foreign}"
            );
        }
    }

    #[test]
    fn a_thousand_clients_of_a_thousand_routes_fit() {
        let p = plan(1000, 1000, 24);
        assert_eq!(p.total_routes(), 1_000_000);
        assert_eq!(p.expected_per_client(), 999_000);
        let last = p.prefix(999, 999).expect("last prefix");
        assert_eq!(
            p.origin_of(&last),
            Some(Origin {
                client: 999,
                route: 999
            })
        );
    }

    #[test]
    fn impossible_plans_are_refused() {
        let base = Ipv4Addr::new(10, 0, 0, 0);
        assert_eq!(Plan::new(0, 1, 24, base), Err(PlanError::Clients(0)));
        assert_eq!(Plan::new(1, 0, 24, base), Err(PlanError::NoRoutes));
        assert_eq!(Plan::new(1, 1, 33, base), Err(PlanError::PrefixLen(33)));
        assert!(matches!(
            Plan::new(1, 1, 24, Ipv4Addr::new(10, 0, 0, 1)),
            Err(PlanError::Unaligned { .. })
        ));
        assert!(matches!(
            Plan::new(60_000, 60_000, 24, base),
            Err(PlanError::TooMany { .. })
        ));
    }

    #[test]
    fn client_addresses_stay_in_127_1_and_skip_zero() {
        assert_eq!(Plan::client_address(0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(Plan::client_address(249), Ipv4Addr::new(127, 1, 0, 250));
        assert_eq!(Plan::client_address(250), Ipv4Addr::new(127, 1, 1, 1));
        assert_eq!(
            Plan::client_address(MAX_CLIENTS - 1),
            Ipv4Addr::new(127, 1, 255, 250)
        );
    }
}
