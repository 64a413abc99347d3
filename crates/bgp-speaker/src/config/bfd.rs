//! Per-peer BFD settings (`bfd = { ... }` on a peer or template): the resolved
//! [`BfdConfig`], how the keys of a template chain combine, and the rules they follow.
//!
//! BFD (RFC 5880) detects a broken forwarding path in a fraction of a second; with it a
//! BGP session is closed as soon as its BFD session fails (RFC 5882 3.2, the speaker's
//! bfd.rs), instead of after the hold time. Off unless a `bfd` table is present. Changing
//! it never restarts the BGP session: only the BFD session is added, removed or given new
//! timers.

use std::time::Duration;

use super::file::BfdFile;

/// Default Desired Min TX and Required Min RX interval (BIRD's and FRR's 300 ms).
pub const DEFAULT_BFD_INTERVAL_MS: u32 = 300;
/// Default detection multiplier (detection in 900 ms with the default intervals).
pub const DEFAULT_BFD_MULTIPLIER: u8 = 3;
/// Shortest interval accepted: below it the timers of a busy host are not that precise.
pub const MIN_BFD_INTERVAL_MS: u32 = 10;
/// Longest interval accepted (BIRD and FRR stop at one minute as well).
pub const MAX_BFD_INTERVAL_MS: u32 = 60_000;
/// RFC 5880 4.2: a simple password has 1 to 16 bytes.
pub const MAX_BFD_PASSWORD_LEN: usize = 16;

/// Single hop, multihop, or decided from the addresses.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum BfdHops {
    /// Single hop (RFC 5881, UDP 3784, TTL 255 sent and required) when the peer's
    /// address is on a subnet of one of our interfaces (or link-local), multihop
    /// otherwise.
    #[default]
    Auto,
    /// Always single hop (RFC 5881).
    Single,
    /// Always multihop (RFC 5883, UDP 4784).
    Multi,
}

/// The BFD session of one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdConfig {
    /// bfd.RequiredMinRxInterval.
    pub min_rx: Duration,
    /// bfd.DesiredMinTxInterval (while Up; 1 s before, RFC 5880 6.8.3).
    pub min_tx: Duration,
    /// bfd.DetectMult.
    pub multiplier: u8,
    /// Single hop or multihop.
    pub hops: BfdHops,
    /// Simple password (RFC 5880 6.7.2), sent and required.
    pub password: Option<String>,
}

impl Default for BfdConfig {
    fn default() -> Self {
        BfdConfig {
            min_rx: Duration::from_millis(DEFAULT_BFD_INTERVAL_MS.into()),
            min_tx: Duration::from_millis(DEFAULT_BFD_INTERVAL_MS.into()),
            multiplier: DEFAULT_BFD_MULTIPLIER,
            hops: BfdHops::Auto,
            password: None,
        }
    }
}

impl BfdConfig {
    /// The rules of a BFD table; messages start with `bfd` so the loader can point at
    /// the table.
    pub(super) fn check(&self) -> Result<(), String> {
        let range = MIN_BFD_INTERVAL_MS..=MAX_BFD_INTERVAL_MS;
        for (name, d) in [("min_rx_ms", self.min_rx), ("min_tx_ms", self.min_tx)] {
            let ms = u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
            if !range.contains(&ms) || d.subsec_micros() % 1000 != 0 {
                return Err(format!(
                    "bfd {name} {ms} is outside {MIN_BFD_INTERVAL_MS}..={MAX_BFD_INTERVAL_MS} ms"
                ));
            }
        }
        if self.multiplier == 0 {
            return Err("bfd multiplier must be between 1 and 255 (RFC 5880 6.8.1)".into());
        }
        if let Some(pw) = &self.password {
            if pw.is_empty() || pw.len() > MAX_BFD_PASSWORD_LEN {
                return Err(format!(
                    "bfd password has {} bytes; a simple password has 1 to {MAX_BFD_PASSWORD_LEN} (RFC 5880 4.2)",
                    pw.len()
                ));
            }
        }
        Ok(())
    }
}

impl BfdConfig {
    /// The table that resolves to this, every key given.
    pub(super) fn to_file(&self) -> BfdFile {
        let ms = |d: Duration| Some(u32::try_from(d.as_millis()).unwrap_or(u32::MAX));
        BfdFile {
            enabled: Some(true),
            min_rx_ms: ms(self.min_rx),
            min_tx_ms: ms(self.min_tx),
            multiplier: Some(self.multiplier),
            multihop: match self.hops {
                BfdHops::Auto => None,
                BfdHops::Single => Some(false),
                BfdHops::Multi => Some(true),
            },
            password: self.password.clone(),
        }
    }
}

/// The BFD settings of a peer from its `bfd` tables, nearest first (the peer's own, then
/// its templates'). `None` when no table is present or the nearest `enabled` is false.
pub(super) fn resolve(layers: &[&BfdFile]) -> Option<BfdConfig> {
    if layers.is_empty() || layers.iter().find_map(|b| b.enabled) == Some(false) {
        return None;
    }
    let ms = |f: &dyn Fn(&BfdFile) -> Option<u32>| {
        Duration::from_millis(
            layers
                .iter()
                .find_map(|b| f(b))
                .unwrap_or(DEFAULT_BFD_INTERVAL_MS)
                .into(),
        )
    };
    Some(BfdConfig {
        min_rx: ms(&|b| b.min_rx_ms),
        min_tx: ms(&|b| b.min_tx_ms),
        multiplier: layers
            .iter()
            .find_map(|b| b.multiplier)
            .unwrap_or(DEFAULT_BFD_MULTIPLIER),
        hops: match layers.iter().find_map(|b| b.multihop) {
            None => BfdHops::Auto,
            Some(true) => BfdHops::Multi,
            Some(false) => BfdHops::Single,
        },
        password: layers.iter().find_map(|b| b.password.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_layer_wins_key_by_key() {
        let template = BfdFile {
            min_rx_ms: Some(100),
            multiplier: Some(5),
            multihop: Some(true),
            ..Default::default()
        };
        let peer = BfdFile {
            min_rx_ms: Some(200),
            ..Default::default()
        };
        let c = resolve(&[&peer, &template]).unwrap();
        assert_eq!(c.min_rx, Duration::from_millis(200));
        assert_eq!(c.min_tx, Duration::from_millis(300));
        assert_eq!(c.multiplier, 5);
        assert_eq!(c.hops, BfdHops::Multi);
        assert_eq!(c.check(), Ok(()));
        let off = BfdFile {
            enabled: Some(false),
            ..Default::default()
        };
        assert_eq!(resolve(&[&off, &template]), None);
        assert_eq!(resolve(&[]), None);
    }

    const BASE: &str = "[global]\nasn = 64512\nrouter_id = \"10.0.0.1\"\n";

    fn load(text: &str) -> Result<super::super::Config, super::super::ConfigError> {
        super::super::from_str(text, std::path::Path::new("bgpd.toml"))
    }

    #[test]
    fn templates_carry_bfd_and_a_peer_can_turn_it_off() {
        let text = format!(
            "{BASE}\n[templates.t]\nremote_as = 64512\nbfd = {{ min_rx_ms = 100, multihop = true }}\n\
             \n[peers.a]\ntemplate = \"t\"\naddress = \"10.0.0.2\"\nbfd = {{ multiplier = 5 }}\n\
             \n[peers.b]\ntemplate = \"t\"\naddress = \"10.0.0.3\"\nbfd = {{ enabled = false }}\n\
             \n[peers.c]\nremote_as = 1\naddress = \"10.0.0.4\"\n"
        );
        let c = load(&text).unwrap();
        let a = c.peers["a"].bfd.clone().unwrap();
        assert_eq!(a.min_rx, Duration::from_millis(100));
        assert_eq!(a.min_tx, Duration::from_millis(300));
        assert_eq!(a.multiplier, 5);
        assert_eq!(a.hops, BfdHops::Multi);
        assert_eq!(c.peers["b"].bfd, None);
        assert_eq!(c.peers["c"].bfd, None, "off by default");
        // Written back explicitly, it loads the same.
        assert_eq!(resolve(&[&a.to_file()]), Some(a));
    }

    #[test]
    fn errors_point_at_the_bfd_table() {
        let text = format!(
            "{BASE}\n[peers.a]\nremote_as = 1\naddress = \"10.0.0.2\"\nbfd = {{ min_tx_ms = 2 }}\n"
        );
        let e = load(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("bgpd.toml:8:7: peer \"a\": bfd min_tx_ms 2"),
            "{e}"
        );
        let text = format!(
            "{BASE}\n[peers.a]\nremote_as = 1\naddress = \"10.0.0.2\"\nbfd = {{ min_rx = 2 }}\n"
        );
        let e = load(&text).unwrap_err().to_string();
        assert!(e.starts_with("bgpd.toml:8:"), "{e}");
        assert!(e.contains("unknown field `min_rx`"), "{e}");
    }

    #[test]
    fn a_bfd_change_does_not_restart_the_session() {
        let old = super::super::PeerConfig::new("a", "10.0.0.2".parse().unwrap(), 1);
        let mut new = old.clone();
        new.bfd = Some(BfdConfig::default());
        let c = super::super::diff::diff_peer(&old, &new, &Default::default());
        assert!(!c.needs_restart());
        assert_eq!(c.runtime, vec!["bfd"]);
    }

    #[test]
    fn rules() {
        let mut c = BfdConfig {
            min_tx: Duration::from_millis(5),
            ..Default::default()
        };
        assert!(c.check().unwrap_err().starts_with("bfd min_tx_ms 5"));
        c.min_tx = Duration::from_millis(60_001);
        assert!(c.check().is_err());
        c.min_tx = Duration::from_millis(100);
        c.multiplier = 0;
        assert!(c.check().unwrap_err().contains("multiplier"));
        c.multiplier = 3;
        c.password = Some("x".repeat(17));
        assert!(c.check().unwrap_err().contains("17 bytes"));
        c.password = Some("secret".into());
        assert_eq!(c.check(), Ok(()));
    }
}
