//! What peers' sessions tell the RIB driver ([`RibInput`]): sessions up and down, UPDATEs
//! (End-of-RIB among them), ROUTE-REFRESH; and the prefix limit checked on every UPDATE.

use std::time::{Duration, Instant};

use bgp_proto::wire::DecodedUpdate;
use bgp_proto::{notification_code as nc, Family, Notification, RefreshSubtype};
use bytes::Bytes;
use tracing::{debug, info, warn};

use super::{RibDriver, RibEvent};
use crate::graceful::limit_peer_times;
use crate::message::RibInput;
use crate::session_info::session_info;
use crate::settings::MaxPrefixAction;
use crate::PeerId;

/// Restart delay after a max-prefix teardown.
pub const MAX_PREFIX_RESTART: Duration = Duration::from_secs(60);

impl<L, R: bgp_rib::NextHopResolver> RibDriver<L, R> {
    /// An input from the peer `peer`'s driver, in the order it produced them. Handed back
    /// when no such peer is registered (a caller whose registrations travel on another
    /// channel than inputs applies those and tries again).
    pub fn handle_input(
        &mut self,
        now: Instant,
        peer: PeerId,
        input: RibInput,
    ) -> Result<(), RibInput> {
        if self.peers.get(peer).is_none() {
            return Err(input);
        }
        // Paths changed by this input are stamped with `now` (their age in `show route`).
        self.rib.set_time(now);
        match input {
            RibInput::Up {
                session,
                negotiated,
                local,
                link_global_v6,
            } => self.peer_up(now, peer, session, &negotiated, local, link_global_v6),
            RibInput::Down { graceful, .. } => self.peer_down(now, peer, graceful),
            RibInput::Update(update) => self.update(peer, &update),
            RibInput::RouteRefresh(refresh) => {
                // RFC 7313: BoRR/EoRR markers from the peer need no action here.
                if refresh.subtype == RefreshSubtype::Normal {
                    self.route_refresh(peer, refresh.family);
                }
            }
        }
        self.changed();
        Ok(())
    }

    fn peer_up(
        &mut self,
        now: Instant,
        peer: PeerId,
        session: u64,
        negotiated: &bgp_proto::session::Negotiated,
        local: std::net::IpAddr,
        link_global_v6: Option<std::net::Ipv6Addr>,
    ) {
        let window = self.config.out_window;
        let Some(entry) = self.peers.get_mut(peer) else {
            return;
        };
        let mut info = session_info(negotiated, local, link_global_v6);
        limit_peer_times(&mut info, negotiated, &entry.settings.graceful_restart);
        entry.session = Some(info.clone());
        entry.session_seq = session;
        entry.credit = window;
        entry.estimate = 0;
        entry.warned = false;
        entry.unsendable_logged = false;
        entry.path_limit_logged = false;
        let (rib_id, name) = (entry.rib_id, entry.settings.name.clone());
        if let Err(e) = self.rib.peer_up(rib_id, info, now) {
            warn!(peer = %name, error = %e, "RIB peer up");
        }
        self.recovery_ended(&[]);
    }

    fn peer_down(&mut self, now: Instant, peer: PeerId, graceful: bool) {
        let Some(entry) = self.peers.get_mut(peer) else {
            return;
        };
        entry.session = None;
        entry.credit = 0;
        let (rib_id, name) = (entry.rib_id, entry.settings.name.clone());
        match self.rib.peer_down(rib_id, graceful, now) {
            Ok(Some(until)) => info!(
                peer = %name,
                stale_for_secs = until.saturating_duration_since(now).as_secs(),
                "keeping routes as stale (graceful restart)"
            ),
            Ok(None) => {}
            Err(e) => warn!(peer = %name, error = %e, "RIB peer down"),
        }
    }

    fn route_refresh(&mut self, peer: PeerId, family: Family) {
        let Some(entry) = self.peers.get(peer) else {
            return;
        };
        match self.rib.route_refresh(entry.rib_id, family) {
            Ok(true) => {}
            Ok(false) => debug!(
                peer = %entry.settings.name,
                %family,
                "route refresh ignored: the previous one is still being sent"
            ),
            Err(e) => debug!(peer = %entry.settings.name, error = %e, "route refresh"),
        }
    }

    fn update(&mut self, peer: PeerId, update: &DecodedUpdate) {
        let Some(rib_id) = self.peers.get(peer).map(|e| e.rib_id) else {
            return;
        };
        if let Some(f) = update.update.end_of_rib() {
            debug!(peer = %self.name_of(peer), family = %f, "End-of-RIB received");
            if let Err(e) = self.rib.end_of_rib(rib_id, f) {
                debug!(peer = %self.name_of(peer), error = %e, "End-of-RIB");
            }
            self.recovery_ended(&[]);
            return;
        }
        let result = self.rib.apply_update_resolved(
            rib_id,
            &update.update,
            update.treat_as_withdraw.is_some(),
            &self.resolver,
        );
        let Some(entry) = self.peers.get_mut(peer) else {
            return;
        };
        match result {
            Ok(stats) => {
                entry.estimate = entry
                    .estimate
                    .saturating_add(stats.announced as u64)
                    .saturating_sub(stats.withdrawn as u64);
                if stats.over_add_path_limit > 0 && !entry.path_limit_logged {
                    entry.path_limit_logged = true;
                    warn!(
                        peer = %entry.settings.name,
                        limit = entry.settings.add_path_receive_limit,
                        ignored = stats.over_add_path_limit,
                        "ADD-PATH paths past add_path_receive_limit for a prefix ignored; \
                         logged once per session"
                    );
                }
            }
            Err(e) => {
                debug!(peer = %entry.settings.name, error = %e, "UPDATE not applied");
                return;
            }
        }
        self.check_max_prefixes(peer);
    }

    /// The peer's name, for logs.
    fn name_of(&self, peer: PeerId) -> &str {
        self.peers
            .get(peer)
            .map_or("", |e| e.settings.name.as_str())
    }

    /// RFC 4486 / RFC 4271 8.1.2 (max prefix): warn once, or ask for the session to be
    /// torn down with Cease / Maximum Number of Prefixes Reached carrying AFI, SAFI and
    /// the limit ([`RibEvent::Teardown`]).
    fn check_max_prefixes(&mut self, peer: PeerId) {
        let Some(entry) = self.peers.get(peer) else {
            return;
        };
        let Some(mp) = entry.settings.max_prefixes else {
            return;
        };
        if entry.estimate <= u64::from(mp.limit) {
            return;
        }
        // The estimate over-counts re-announcements; count exactly (the RIB's counters,
        // constant time) before acting.
        let (v4, v6) = self
            .rib
            .peer_info(entry.rib_id)
            .map(|i| (i.received_v4 as u64, i.received_v6 as u64))
            .unwrap_or_default();
        let Some(entry) = self.peers.get_mut(peer) else {
            return;
        };
        let name = entry.settings.name.as_str();
        let family = if v6 > 0 && v6 >= v4 {
            Family::IPV6_UNICAST
        } else {
            Family::IPV4_UNICAST
        };
        let exact = v4 + v6;
        entry.estimate = exact;
        if exact <= u64::from(mp.limit) {
            entry.warned = false;
            return;
        }
        match mp.action {
            MaxPrefixAction::Warn => {
                if !entry.warned {
                    warn!(
                        peer = %name,
                        received = exact,
                        limit = mp.limit,
                        "prefix limit exceeded"
                    );
                    entry.warned = true;
                }
            }
            MaxPrefixAction::Teardown => {
                warn!(
                    peer = %name,
                    received = exact,
                    limit = mp.limit,
                    "prefix limit exceeded: closing session"
                );
                entry.estimate = 0;
                let mut data = Vec::with_capacity(7);
                data.extend_from_slice(&family.afi.0.to_be_bytes());
                data.push(family.safi.0);
                data.extend_from_slice(&mp.limit.to_be_bytes());
                self.events.push_back(RibEvent::Teardown {
                    peer,
                    notification: Notification {
                        code: nc::CEASE,
                        subcode: nc::CEASE_MAX_PREFIXES,
                        data: Bytes::from(data),
                    },
                    restart_after: MAX_PREFIX_RESTART,
                    // RFC 8538 5: the peer must not keep our routes as stale.
                    hard_reset: true,
                });
            }
        }
    }
}
