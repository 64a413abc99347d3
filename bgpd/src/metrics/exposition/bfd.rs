//! The BFD metrics (docs/monitoring.md): each session's state as an enum gauge and how
//! many BGP sessions it took down, labelled like the peer metrics (`peer`, `neighbor`).

use bgp_speaker::BfdSession;

use super::Exposition;

/// bfd.SessionState values (RFC 5880 4.1), in the order the samples are written.
const STATES: [&str; 4] = ["AdminDown", "Down", "Init", "Up"];

impl Exposition {
    /// The BFD families; nothing when no peer has BFD.
    pub(super) fn bfd(&mut self, sessions: &[BfdSession]) {
        if sessions.is_empty() {
            return;
        }
        self.family(
            "bgpd_bfd_session_state",
            "gauge",
            "State of the peer's BFD session (RFC 5880): 1 for the current state.",
        );
        for s in sessions {
            let neighbor = s.address.to_string();
            for state in STATES {
                self.sample(
                    "bgpd_bfd_session_state",
                    &[("peer", &s.peer), ("neighbor", &neighbor), ("state", state)],
                    u8::from(s.state == state),
                );
            }
        }
        self.family(
            "bgpd_bfd_bgp_downs_total",
            "counter",
            "BGP sessions closed because their BFD session went down (RFC 5882).",
        );
        for s in sessions {
            let neighbor = s.address.to_string();
            self.sample(
                "bgpd_bfd_bgp_downs_total",
                &[("peer", &s.peer), ("neighbor", &neighbor)],
                s.bgp_downs,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn state_is_an_enum_gauge_and_downs_a_counter() {
        let s = BfdSession {
            peer: "frr".into(),
            address: "10.0.0.2".parse().unwrap(),
            local: None,
            multihop: false,
            state: "Up",
            remote_state: "Up",
            tx_interval: Duration::from_millis(300),
            rx_interval: Some(Duration::from_millis(300)),
            multiplier: 3,
            remote_multiplier: 3,
            detection_time: Some(Duration::from_millis(900)),
            local_diagnostic: String::new(),
            remote_diagnostic: String::new(),
            since: Duration::ZERO,
            up_count: 1,
            bgp_downs: 2,
            error: None,
        };
        let mut e = Exposition::default();
        e.bfd(&[s]);
        assert!(e.text.contains(
            "bgpd_bfd_session_state{peer=\"frr\",neighbor=\"10.0.0.2\",state=\"Up\"} 1\n"
        ));
        assert!(e.text.contains(
            "bgpd_bfd_session_state{peer=\"frr\",neighbor=\"10.0.0.2\",state=\"Down\"} 0\n"
        ));
        assert!(e
            .text
            .contains("bgpd_bfd_bgp_downs_total{peer=\"frr\",neighbor=\"10.0.0.2\"} 2\n"));
        let mut none = Exposition::default();
        none.bfd(&[]);
        assert!(none.text.is_empty());
    }
}
