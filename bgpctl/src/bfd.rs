//! `bgpctl show bfd`: one row per BFD session, as the daemon reports it
//! ([`bgp_control::BfdSessionInfo`]).

use bgp_control::BfdSessionInfo;

use crate::control::{duration, table};

/// The sessions as a table; a session that cannot run shows why in the last column.
pub fn sessions_table(sessions: &[BfdSessionInfo]) -> String {
    let ms = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| format!("{v}ms"));
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                s.peer.clone(),
                s.address.clone(),
                s.local_address.clone().unwrap_or_else(|| "-".into()),
                if s.multihop { "multi" } else { "single" }.into(),
                s.state.clone(),
                s.remote_state.clone(),
                ms(Some(s.tx_interval_ms)),
                ms(s.rx_interval_ms),
                format!("{}/{}", s.multiplier, s.remote_multiplier),
                duration(s.uptime_secs),
                s.bgp_downs.to_string(),
                match &s.error {
                    Some(e) => e.clone(),
                    None => format!("{} / {}", s.local_diagnostic, s.remote_diagnostic),
                },
            ]
        })
        .collect();
    table(
        &[
            "Peer",
            "Address",
            "Local",
            "Hops",
            "State",
            "Remote",
            "TX",
            "RX",
            "Mult",
            "Uptime",
            "BGP downs",
            "Diagnostic (local / remote)",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_align_and_show_negotiated_values() {
        let s = BfdSessionInfo {
            peer: "frr".into(),
            address: "10.0.0.2".into(),
            local_address: Some("10.0.0.1".into()),
            multihop: false,
            state: "Up".into(),
            remote_state: "Up".into(),
            tx_interval_ms: 300,
            rx_interval_ms: Some(300),
            multiplier: 3,
            remote_multiplier: 3,
            detection_time_ms: Some(900),
            local_diagnostic: "No Diagnostic".into(),
            remote_diagnostic: "No Diagnostic".into(),
            uptime_secs: 61,
            up_count: 1,
            bgp_downs: 0,
            error: None,
        };
        let t = sessions_table(&[s]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("Peer  Address   Local     Hops    State  Remote  TX"));
        assert!(lines[1].starts_with(
            "frr   10.0.0.2  10.0.0.1  single  Up     Up      300ms  300ms  3/3   00:01:01  0"
        ));
    }
}
