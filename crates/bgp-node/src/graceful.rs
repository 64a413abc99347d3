//! Graceful restart at the end of a session: whether the peer's routes are kept as stale
//! (RFC 4724 section 4.2, RFC 8538), and the Hard Reset we send when they must not be
//! (RFC 8538 section 3).
//!
//! With the N bit negotiated on both sides, a NOTIFICATION no longer ends graceful restart:
//! the receiver keeps the sender's routes as stale. That is right for a daemon restart
//! (SIGTERM sends Cease / Administrative Shutdown and the restarted daemon comes back with
//! the restart state bit), but wrong when the session goes away for good: an operator
//! disabling the peer, the peer removed from the configuration, or the prefix limit
//! exceeded. Those are sent as Cease / Hard Reset (6/9) wrapping the real cause, so the
//! peer drops our routes at once instead of forwarding to us until its stale timer ends.
//! RFC 8538 section 5 suggests Hard Reset for subcodes 1 (maximum prefixes), 2
//! (administrative shutdown) and 3 (peer de-configured) and leaves subcode 4
//! (administrative reset) to the operator: `bgpctl peer NAME reset` stays graceful.
//!
//! When the daemon itself stops, what a peer is told ([`Farewell`]) depends on why: a
//! restart leaves every peer keeping our routes as far as its capabilities allow (the N bit
//! where negotiated, otherwise a close without NOTIFICATION, RFC 4724 4.2), a departure for
//! good sends Hard Reset (or a plain Cease to a peer without the N bit) so that every peer
//! drops our routes at once.

use bgp_proto::session::{DownReason, Negotiated};
use bgp_proto::{notification_code as nc, Capability, Notification};
use bytes::{BufMut, BytesMut};

use crate::settings::GracefulRestartSettings;

/// How a session we stop ends for the peer.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Farewell {
    /// The NOTIFICATION as given: with the N bit on both sides the peer keeps our routes
    /// (RFC 8538), without it drops them.
    #[default]
    Notify,
    /// The peer must drop our routes: Cease / Hard Reset wrapping the NOTIFICATION where
    /// the N bit was negotiated (RFC 8538 3), the NOTIFICATION itself otherwise.
    HardReset,
    /// We are restarting: the peer is left keeping our routes wherever graceful restart
    /// allows. The NOTIFICATION where the N bit was negotiated (RFC 8538: not a Hard
    /// Reset, so graceful); no NOTIFICATION at all where graceful restart was negotiated
    /// without it (RFC 4724 4.2: the TCP session just ends, as in a crash, and the peer
    /// keeps our routes for our restart time; a NOTIFICATION would make it drop them); the
    /// NOTIFICATION where there is no graceful restart (the peer drops our routes
    /// whatever we do, and learns why).
    Restart,
}

impl Farewell {
    /// [`Farewell::HardReset`] when `hard_reset`, else [`Farewell::Notify`].
    pub fn hard_reset_if(hard_reset: bool) -> Farewell {
        if hard_reset {
            Farewell::HardReset
        } else {
            Farewell::Notify
        }
    }
}

/// What ends a session stopped with `farewell`: the NOTIFICATION to send, or `None` to
/// close the connection without one. `negotiated`: the session's, if it is established.
pub fn farewell_notification(
    n: Notification,
    farewell: Farewell,
    negotiated: Option<&Negotiated>,
) -> Option<Notification> {
    match farewell {
        Farewell::Notify => Some(n),
        Farewell::HardReset => Some(hard_reset(n, negotiated)),
        Farewell::Restart => match negotiated {
            Some(neg) if !notification_bit(neg) && graceful_restart_negotiated(neg) => None,
            _ => Some(n),
        },
    }
}

/// Both sides announced graceful restart on this session (RFC 4724 3).
pub fn graceful_restart_negotiated(neg: &Negotiated) -> bool {
    neg.peer_graceful_restart.is_some()
        && neg
            .local_open
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::GracefulRestart(_)))
}

/// Both sides announced the RFC 8538 N bit on this session.
pub fn notification_bit(neg: &Negotiated) -> bool {
    let ours = neg.local_open.capabilities.iter().any(|c| match c {
        Capability::GracefulRestart(g) => g.notification,
        _ => false,
    });
    ours && neg
        .peer_graceful_restart
        .as_ref()
        .is_some_and(|g| g.notification)
}

/// RFC 8538 section 3: `n` as the data of a Cease / Hard Reset, when the N bit was
/// negotiated (without it a NOTIFICATION already ends graceful restart, and a peer that
/// does not know Hard Reset would only see an unknown subcode). A Hard Reset is never
/// wrapped twice.
pub fn hard_reset(n: Notification, negotiated: Option<&Negotiated>) -> Notification {
    let is_hard_reset = n.code == nc::CEASE && n.subcode == nc::CEASE_HARD_RESET;
    if is_hard_reset || !negotiated.is_some_and(notification_bit) {
        return n;
    }
    let mut data = BytesMut::with_capacity(2 + n.data.len());
    data.put_u8(n.code);
    data.put_u8(n.subcode);
    data.put_slice(&n.data);
    Notification {
        code: nc::CEASE,
        subcode: nc::CEASE_HARD_RESET,
        data: data.freeze(),
    }
}

/// RFC 4724 section 4.2 / RFC 8538: whether the routes of a peer whose session ended for
/// `reason` are retained as stale, given our graceful restart settings for it.
pub fn retains_routes(
    ours: &GracefulRestartSettings,
    negotiated: &Negotiated,
    reason: &DownReason,
) -> bool {
    if !ours.enabled || negotiated.peer_graceful_restart.is_none() {
        return false;
    }
    let n_bit = notification_bit(negotiated);
    match reason {
        // RFC 4724 4.2: the TCP session ended without a NOTIFICATION.
        DownReason::ConnectionClosed => true,
        // Hold timer expiry ends the session with a NOTIFICATION we send (RFC 4271 6.5,
        // RFC 9687), which RFC 4724 alone does not cover: only with the RFC 8538 N bit on
        // both sides are the routes kept (BIRD, FRR do the same; RFC 8538 4 allows it),
        // unless the operator wants a peer that went silent treated as gone
        // (`retain_on_hold_expiry` off: a crashed or cut-off node is removed at hold
        // expiry rather than a restart time later).
        DownReason::HoldTimerExpired | DownReason::SendHoldTimerExpired => {
            n_bit && ours.retain_on_hold_expiry
        }
        // RFC 8538: with the N bit on both sides, any NOTIFICATION except Hard Reset
        // (Cease subcode 9) is graceful.
        DownReason::NotificationReceived(n)
        | DownReason::NotificationSent {
            notification: n, ..
        } => n_bit && !(n.code == nc::CEASE && n.subcode == nc::CEASE_HARD_RESET),
        _ => false,
    }
}

/// Holds what the peer announced to our limits before the RIB relies on it: its restart
/// time (how long its routes stay stale after its session drops, RFC 4724 section 4.2) to
/// `max_restart_time`, its LLGR stale times to `max_long_lived_stale_time`, and its LLGR
/// families only when we announced LLGR ourselves (RFC 9494: long-lived retention is
/// something both sides agreed to, not something a peer imposes). Without these caps a
/// peer announcing a 4095 s restart time or a months-long stale time would make us
/// forward to it long after it is gone.
pub fn limit_peer_times(
    info: &mut bgp_rib::SessionInfo,
    negotiated: &Negotiated,
    ours: &GracefulRestartSettings,
) {
    if let Some(gr) = &mut info.graceful_restart {
        gr.restart_time = gr.restart_time.min(ours.max_restart_time);
    }
    let offered_llgr = negotiated
        .local_open
        .capabilities
        .iter()
        .any(|c| matches!(c, Capability::LongLivedGracefulRestart(f) if !f.is_empty()));
    if !offered_llgr {
        info.llgr.clear();
    }
    for f in &mut info.llgr {
        f.stale_time = f.stale_time.min(ours.max_long_lived_stale_time);
    }
}

#[cfg(test)]
mod tests {
    use bgp_proto::{Family, GracefulRestart, GracefulRestartFamily, Open};
    use bytes::Bytes;

    use super::*;

    fn graceful_restart(notification: bool) -> GracefulRestart {
        GracefulRestart {
            restart_state: false,
            notification,
            restart_time: 120,
            families: vec![GracefulRestartFamily {
                family: Family::IPV4_UNICAST,
                forwarding_preserved: true,
            }],
        }
    }

    fn gr(notification: bool) -> Capability {
        Capability::GracefulRestart(graceful_restart(notification))
    }

    fn open(capabilities: Vec<Capability>) -> Open {
        Open {
            version: 4,
            my_as: 64512,
            hold_time: 90,
            bgp_id: "10.0.0.2".parse().expect("id"),
            capabilities,
            other_params: Vec::new(),
        }
    }

    /// A session where we announced the N bit `ours` and the peer `theirs` (`None`: no
    /// graceful restart capability from the peer).
    fn negotiated(ours: bool, theirs: Option<bool>) -> Negotiated {
        Negotiated {
            local_as: 64512,
            peer_as: 64512,
            peer_id: "10.0.0.2".parse().expect("id"),
            hold_time: 90,
            keepalive_time: 30,
            families: vec![Family::IPV4_UNICAST],
            codec: Default::default(),
            route_refresh: true,
            enhanced_route_refresh: false,
            peer_graceful_restart: theirs.map(graceful_restart),
            peer_llgr: Vec::new(),
            extended_next_hop: Vec::new(),
            peer_role: None,
            peer_fqdn: None,
            local_open: open(vec![gr(ours)]),
            peer_open: open(theirs.map(gr).into_iter().collect()),
        }
    }

    fn cease(subcode: u8, data: &'static [u8]) -> Notification {
        Notification {
            code: nc::CEASE,
            subcode,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn hard_reset_wraps_the_cause_only_with_the_n_bit_on_both_sides() {
        let shutdown = Notification::admin_shutdown("maintenance");
        let both = negotiated(true, Some(true));
        let h = hard_reset(shutdown.clone(), Some(&both));
        assert_eq!((h.code, h.subcode), (nc::CEASE, nc::CEASE_HARD_RESET));
        assert_eq!(&h.data[..2], &[nc::CEASE, nc::CEASE_ADMIN_SHUTDOWN]);
        assert_eq!(&h.data[2..], &shutdown.data[..]);
        // Never twice.
        assert_eq!(hard_reset(h.clone(), Some(&both)), h);
        for neg in [
            negotiated(false, Some(true)),
            negotiated(true, Some(false)),
            negotiated(true, None),
        ] {
            assert_eq!(hard_reset(shutdown.clone(), Some(&neg)), shutdown);
        }
        assert_eq!(hard_reset(shutdown.clone(), None), shutdown);
    }

    #[test]
    fn peer_times_are_held_to_our_caps_and_llgr_needs_our_offer() {
        use bgp_proto::LlgrFamily;
        let llgr = |stale_time| LlgrFamily {
            family: Family::IPV4_UNICAST,
            forwarding_preserved: true,
            stale_time,
        };
        let mut neg = negotiated(true, Some(true));
        let mut info = bgp_rib::SessionInfo::new("10.0.0.2".parse().expect("id"), None);
        let mut peer_gr = graceful_restart(true);
        peer_gr.restart_time = 4095;
        info.graceful_restart = Some(peer_gr);
        info.llgr = vec![llgr(0xFF_FFFF)];
        let ours = GracefulRestartSettings {
            enabled: true,
            max_restart_time: 300,
            max_long_lived_stale_time: 3600,
            ..GracefulRestartSettings::default()
        };
        // We did not offer LLGR: the peer's is ignored.
        let mut without = info.clone();
        limit_peer_times(&mut without, &neg, &ours);
        assert_eq!(
            without.graceful_restart.as_ref().map(|g| g.restart_time),
            Some(300)
        );
        assert!(without.llgr.is_empty());
        // We offered it: kept, capped.
        neg.local_open
            .capabilities
            .push(Capability::LongLivedGracefulRestart(vec![llgr(600)]));
        limit_peer_times(&mut info, &neg, &ours);
        assert_eq!(info.llgr, vec![llgr(3600)]);
        // Values under the caps are untouched.
        let mut short = bgp_rib::SessionInfo::new("10.0.0.2".parse().expect("id"), None);
        short.graceful_restart = Some(graceful_restart(true));
        short.llgr = vec![llgr(60)];
        limit_peer_times(&mut short, &neg, &ours);
        assert_eq!(short.graceful_restart.map(|g| g.restart_time), Some(120));
        assert_eq!(short.llgr, vec![llgr(60)]);
    }

    #[test]
    fn routes_are_kept_per_rfc_4724_and_8538() {
        let on = GracefulRestartSettings {
            enabled: true,
            ..GracefulRestartSettings::default()
        };
        let both = negotiated(true, Some(true));
        let no_n = negotiated(false, Some(true));
        let no_gr = negotiated(true, None);
        let sent = |n: Notification| DownReason::NotificationSent {
            notification: n,
            reason: String::new(),
        };
        assert!(retains_routes(&on, &both, &DownReason::ConnectionClosed));
        assert!(retains_routes(&on, &no_n, &DownReason::ConnectionClosed));
        assert!(!retains_routes(&on, &no_gr, &DownReason::ConnectionClosed));
        assert!(retains_routes(&on, &both, &DownReason::HoldTimerExpired));
        assert!(!retains_routes(&on, &no_n, &DownReason::HoldTimerExpired));
        let shutdown = cease(nc::CEASE_ADMIN_SHUTDOWN, b"");
        assert!(retains_routes(
            &on,
            &both,
            &DownReason::NotificationReceived(shutdown.clone())
        ));
        assert!(!retains_routes(
            &on,
            &no_n,
            &DownReason::NotificationReceived(shutdown.clone())
        ));
        let hard = hard_reset(shutdown, Some(&both));
        assert!(!retains_routes(
            &on,
            &both,
            &DownReason::NotificationReceived(hard.clone())
        ));
        assert!(!retains_routes(&on, &both, &sent(hard)));
        let off = GracefulRestartSettings {
            enabled: false,
            ..GracefulRestartSettings::default()
        };
        assert!(!retains_routes(&off, &both, &DownReason::ConnectionClosed));
        let no_hold = GracefulRestartSettings {
            enabled: true,
            retain_on_hold_expiry: false,
            ..GracefulRestartSettings::default()
        };
        assert!(!retains_routes(
            &no_hold,
            &both,
            &DownReason::HoldTimerExpired
        ));
        assert!(!retains_routes(
            &no_hold,
            &both,
            &DownReason::SendHoldTimerExpired
        ));
        assert!(retains_routes(
            &no_hold,
            &both,
            &DownReason::ConnectionClosed
        ));
    }

    #[test]
    fn farewells_leave_the_peer_keeping_or_dropping_our_routes() {
        let shutdown = Notification::admin_shutdown("bye");
        let both = negotiated(true, Some(true));
        let no_n = negotiated(false, Some(true));
        let no_gr = negotiated(true, None);
        let f = |farewell, neg: Option<&Negotiated>| {
            farewell_notification(shutdown.clone(), farewell, neg)
        };
        // Notify: as given, whatever was negotiated.
        for neg in [Some(&both), Some(&no_n), Some(&no_gr), None] {
            assert_eq!(f(Farewell::Notify, neg), Some(shutdown.clone()));
        }
        // Restart: graceful for the N bit, silent for GR without it, told otherwise.
        assert_eq!(f(Farewell::Restart, Some(&both)), Some(shutdown.clone()));
        assert_eq!(f(Farewell::Restart, Some(&no_n)), None);
        assert_eq!(f(Farewell::Restart, Some(&no_gr)), Some(shutdown.clone()));
        assert_eq!(f(Farewell::Restart, None), Some(shutdown.clone()));
        // Hard Reset: Cease/9 with the N bit, plain Cease otherwise (which a peer
        // without RFC 8538 never takes as graceful).
        let hard = f(Farewell::HardReset, Some(&both)).expect("sent");
        assert_eq!((hard.code, hard.subcode), (nc::CEASE, nc::CEASE_HARD_RESET));
        assert!(!retains_routes(
            &GracefulRestartSettings {
                enabled: true,
                ..GracefulRestartSettings::default()
            },
            &both,
            &DownReason::NotificationReceived(hard)
        ));
        assert_eq!(f(Farewell::HardReset, Some(&no_n)), Some(shutdown.clone()));
        assert_eq!(f(Farewell::HardReset, None), Some(shutdown));
    }
}
