//! The metrics themselves, in the Prometheus text exposition format (version 0.0.4), read
//! from the speaker's read models at each scrape: [`bgp_speaker::Status`] (uptime, Loc-RIB
//! size, the health of the components that can fail on their own: the kernel FIB writer
//! among them) and [`bgp_speaker::Peer`] (state, message and prefix counters), and the
//! daemon's own reload counters. docs/monitoring.md lists every metric.
//!
//! Counters are named `*_total`; a peer is labelled `peer` (its configured name) and
//! `neighbor` (its configured address); its state is an enum gauge (one sample per state,
//! 1 for the current one), as the Prometheus conventions ask.

use std::fmt::Write;

use bgp_speaker::{Peer, PeerState, Status};

use crate::handle::Daemon;
use crate::reloads::ReloadCounts;

mod bfd;

/// A per-peer metric read from [`Peer`]: its name, type, help text and how to read it.
type PeerMetric = (&'static str, &'static str, &'static str, fn(&Peer) -> u64);

/// Every state a peer can be in, in the order the samples are written.
const STATES: [PeerState; 7] = [
    PeerState::Disabled,
    PeerState::Idle,
    PeerState::Connect,
    PeerState::Active,
    PeerState::OpenSent,
    PeerState::OpenConfirm,
    PeerState::Established,
];

/// The exposition of everything `daemon` reports now. A read model the speaker cannot give
/// (it is stopping) is left out, and `bgpd_up` says so.
pub(super) async fn render(daemon: &Daemon) -> String {
    let status = daemon.speaker.status().await.ok();
    let peers = daemon.speaker.peers().await.ok();
    let mut out = Exposition::default();
    out.write(status.as_ref(), peers.as_deref(), daemon.reloads.snapshot());
    // BFD sessions (exposition/bfd.rs).
    out.bfd(&daemon.speaker.bfd_sessions().await.unwrap_or_default());
    out.text
}

/// The text being written, family by family.
#[derive(Default)]
struct Exposition {
    text: String,
}

/// A label value escaped as the format asks (backslash, double quote, line feed).
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

impl Exposition {
    /// Starts a metric family.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A family with one sample per peer.
    fn per_peer<V: std::fmt::Display>(
        &mut self,
        peers: &[Peer],
        name: &str,
        kind: &str,
        help: &str,
        value: impl Fn(&Peer) -> V,
    ) {
        self.family(name, kind, help);
        for p in peers {
            let neighbor = p.config.address.to_string();
            self.sample(
                name,
                &[("peer", &p.config.name), ("neighbor", &neighbor)],
                value(p),
            );
        }
    }

    fn write(&mut self, status: Option<&Status>, peers: Option<&[Peer]>, reloads: ReloadCounts) {
        self.family(
            "bgpd_build_info",
            "gauge",
            "The bgpd version running (always 1).",
        );
        self.sample(
            "bgpd_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );
        self.family(
            "bgpd_up",
            "gauge",
            "1 when the speaker answered this scrape, 0 when it is stopping.",
        );
        self.sample(
            "bgpd_up",
            &[],
            u8::from(status.is_some() && peers.is_some()),
        );
        self.family(
            "bgpd_config_reloads_total",
            "counter",
            "Configuration reloads (SIGHUP, file change, bgpctl reload) by result: applied or refused.",
        );
        self.sample(
            "bgpd_config_reloads_total",
            &[("result", "applied")],
            reloads.applied,
        );
        self.sample(
            "bgpd_config_reloads_total",
            &[("result", "refused")],
            reloads.refused,
        );
        self.family(
            "bgpd_config_last_reload_successful",
            "gauge",
            "1 when the last reload was applied (or none was tried), 0 when it was refused.",
        );
        self.sample(
            "bgpd_config_last_reload_successful",
            &[],
            u8::from(reloads.last_applied),
        );
        self.family(
            "bgpd_config_last_reload_timestamp_seconds",
            "gauge",
            "Unix time of the last reload attempt; 0 before the first.",
        );
        self.sample(
            "bgpd_config_last_reload_timestamp_seconds",
            &[],
            reloads.last,
        );
        if let Some(st) = status {
            self.speaker(st);
        }
        if let Some(peers) = peers {
            self.peers(peers);
        }
    }

    fn speaker(&mut self, st: &Status) {
        self.family(
            "bgpd_uptime_seconds",
            "gauge",
            "Seconds since the speaker started.",
        );
        self.sample("bgpd_uptime_seconds", &[], st.uptime.as_secs_f64());
        self.family(
            "bgpd_config_age_seconds",
            "gauge",
            "Seconds since the running configuration was applied.",
        );
        self.sample("bgpd_config_age_seconds", &[], st.config_age.as_secs_f64());
        self.family(
            "bgpd_loc_rib_prefixes",
            "gauge",
            "Prefixes in the Loc-RIB (every family).",
        );
        self.sample("bgpd_loc_rib_prefixes", &[], st.loc_rib_prefixes);
        self.family(
            "bgpd_selection_deferral_remaining_seconds",
            "gauge",
            "A restarting speaker (RFC 4724): seconds left before route selection runs without waiting for End-of-RIB; 0 when not deferred.",
        );
        self.sample(
            "bgpd_selection_deferral_remaining_seconds",
            &[],
            st.selection_deferral
                .map_or(0.0, |d| d.remaining.as_secs_f64()),
        );
        self.family(
            "bgpd_component_up",
            "gauge",
            "1 when the component (kernel-fib, kernel-import, next-hop-watcher, rib) works, 0 while it is down and retrying.",
        );
        for c in &st.components {
            self.sample(
                "bgpd_component_up",
                &[("component", c.name)],
                u8::from(c.down.is_none()),
            );
        }
        self.family(
            "bgpd_component_state_seconds",
            "gauge",
            "Seconds the component has been in its current state (up or down).",
        );
        for c in &st.components {
            self.sample(
                "bgpd_component_state_seconds",
                &[("component", c.name)],
                c.for_how_long().as_secs_f64(),
            );
        }
    }

    fn peers(&mut self, peers: &[Peer]) {
        self.family(
            "bgpd_peer_state",
            "gauge",
            "The peer's state (RFC 4271 8.2.2, or Disabled): 1 for the current one.",
        );
        for p in peers {
            let neighbor = p.config.address.to_string();
            for s in STATES {
                self.sample(
                    "bgpd_peer_state",
                    &[
                        ("peer", &p.config.name),
                        ("neighbor", &neighbor),
                        ("state", s.as_str()),
                    ],
                    u8::from(p.state == s),
                );
            }
        }
        self.per_peer(
            peers,
            "bgpd_peer_up",
            "gauge",
            "1 when the session is Established.",
            |p| u8::from(p.state == PeerState::Established),
        );
        self.per_peer(
            peers,
            "bgpd_peer_state_seconds",
            "gauge",
            "Seconds in the current state (when Established: the session's uptime).",
            |p| p.since.elapsed().as_secs_f64(),
        );
        let counted: [PeerMetric; 9] = [
            (
                "bgpd_peer_established_transitions_total",
                "counter",
                "Times the session reached Established.",
                |p| p.counters.established_transitions,
            ),
            (
                "bgpd_peer_updates_received_total",
                "counter",
                "UPDATE messages received, over every session with the peer.",
                |p| p.counters.updates_received,
            ),
            (
                "bgpd_peer_updates_sent_total",
                "counter",
                "UPDATE messages sent, over every session with the peer.",
                |p| p.counters.updates_sent,
            ),
            (
                "bgpd_peer_notifications_received_total",
                "counter",
                "NOTIFICATION messages received.",
                |p| p.counters.notifications_received,
            ),
            (
                "bgpd_peer_notifications_sent_total",
                "counter",
                "NOTIFICATION messages sent.",
                |p| p.counters.notifications_sent,
            ),
            (
                "bgpd_peer_route_refresh_received_total",
                "counter",
                "ROUTE-REFRESH messages received (RFC 2918).",
                |p| p.counters.route_refresh_received,
            ),
            (
                "bgpd_peer_prefixes_received",
                "gauge",
                "Prefixes received from the peer (Adj-RIB-In).",
                |p| p.prefixes.received,
            ),
            (
                "bgpd_peer_prefixes_accepted",
                "gauge",
                "Of the prefixes received, those import policy accepted.",
                |p| p.prefixes.accepted,
            ),
            (
                "bgpd_peer_prefixes_sent",
                "gauge",
                "Prefixes announced to the peer (Adj-RIB-Out).",
                |p| p.prefixes.sent,
            ),
        ];
        for (name, kind, help, value) in counted {
            self.per_peer(peers, name, kind, help, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
        let mut e = Exposition::default();
        e.sample("m", &[("peer", "q\"")], 1);
        assert_eq!(e.text, "m{peer=\"q\\\"\"} 1\n");
    }
}
