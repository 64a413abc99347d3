//! The contract between the harness and `bfd_peer` (the UDP driver of `bgp-bfd` built
//! from `src/bin/bfd_peer.rs`): the session lines of its configuration file and the JSON
//! status file it keeps up to date. Writer and reader of each live here, side by side.
//!
//! A session line is `peer=ADDR local=ADDR` followed by any of `interface=NAME`,
//! `multihop=MIN_TTL`, `tx=MS`, `rx=MS`, `mult=N`, `passive`, `password=KEYID:SECRET`,
//! `shutdown`; `#` starts a comment. The status file is
//! `{"sessions": [SessionStatus...], "discarded": N}` (see [`session_status`]).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::num::NonZeroU8;
use std::time::Duration;

use bgp_bfd::{Addresses, Hops, Password, Session, SessionConfig, SimplePassword, State};
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// One BFD session of `bfd_peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    pub peer: IpAddr,
    pub local: IpAddr,
    /// Single hop: the interface packets must arrive on.
    pub interface: Option<String>,
    /// Multihop with this minimum received TTL; `None` is single hop.
    pub multihop: Option<u8>,
    pub tx_ms: u64,
    pub rx_ms: u64,
    pub mult: u8,
    pub passive: bool,
    pub password: Option<(u8, String)>,
    /// Administratively down.
    pub shutdown: bool,
}

impl SessionSpec {
    /// A single-hop session with 300 ms x 3.
    pub fn new(peer: IpAddr, local: IpAddr) -> SessionSpec {
        SessionSpec {
            peer,
            local,
            interface: None,
            multihop: None,
            tx_ms: 300,
            rx_ms: 300,
            mult: 3,
            passive: false,
            password: None,
            shutdown: false,
        }
    }

    pub fn to_line(&self) -> String {
        let mut s = format!(
            "peer={} local={} tx={} rx={} mult={}",
            self.peer, self.local, self.tx_ms, self.rx_ms, self.mult
        );
        if let Some(i) = &self.interface {
            let _ = write!(s, " interface={i}");
        }
        if let Some(t) = self.multihop {
            let _ = write!(s, " multihop={t}");
        }
        if let Some((id, pw)) = &self.password {
            let _ = write!(s, " password={id}:{pw}");
        }
        if self.passive {
            s.push_str(" passive");
        }
        if self.shutdown {
            s.push_str(" shutdown");
        }
        s
    }

    /// Parses one line; `Ok(None)` for blank lines and comments.
    pub fn parse_line(line: &str) -> Result<Option<SessionSpec>> {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            return Ok(None);
        }
        let bad = |detail: String| Error::parse("bfd_peer session line", detail);
        let (mut peer, mut local) = (None, None);
        let mut spec = SessionSpec::new(IpAddr::from([0, 0, 0, 0]), IpAddr::from([0, 0, 0, 0]));
        for word in line.split_whitespace() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            let num = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("{key}={v}: not a number")))
            };
            match key {
                "peer" => peer = Some(value.parse().map_err(|_| bad(format!("peer={value}")))?),
                "local" => local = Some(value.parse().map_err(|_| bad(format!("local={value}")))?),
                "interface" => spec.interface = Some(value.to_string()),
                "multihop" => {
                    spec.multihop = Some(
                        u8::try_from(num(value)?).map_err(|_| bad(format!("multihop={value}")))?,
                    )
                }
                "tx" => spec.tx_ms = num(value)?,
                "rx" => spec.rx_ms = num(value)?,
                "mult" => {
                    spec.mult =
                        u8::try_from(num(value)?).map_err(|_| bad(format!("mult={value}")))?
                }
                "passive" => spec.passive = true,
                "shutdown" => spec.shutdown = true,
                "password" => {
                    let (id, pw) = value
                        .split_once(':')
                        .ok_or_else(|| bad(format!("password={value}: KEYID:SECRET")))?;
                    let id = u8::try_from(num(id)?).map_err(|_| bad(format!("key id {id}")))?;
                    spec.password = Some((id, pw.to_string()));
                }
                _ => return Err(bad(format!("unknown word {word:?}"))),
            }
        }
        spec.peer = peer.ok_or_else(|| bad(format!("no peer= in {line:?}")))?;
        spec.local = local.ok_or_else(|| bad(format!("no local= in {line:?}")))?;
        Ok(Some(spec))
    }

    /// Every session of a configuration file.
    pub fn parse_file(text: &str) -> Result<Vec<SessionSpec>> {
        let mut out = Vec::new();
        for line in text.lines() {
            out.extend(Self::parse_line(line)?);
        }
        Ok(out)
    }

    pub fn hops(&self) -> Hops {
        match self.multihop {
            Some(min_ttl) => Hops::Multi { min_ttl },
            None => Hops::Single,
        }
    }

    /// The session configuration; `jitter_seed` makes runs distinct.
    pub fn config(&self, jitter_seed: u64) -> Result<SessionConfig> {
        let mut c = SessionConfig::new(self.hops());
        c.desired_min_tx = Duration::from_millis(self.tx_ms);
        c.required_min_rx = Duration::from_millis(self.rx_ms);
        c.detect_mult = self.mult;
        c.passive = self.passive;
        c.jitter_seed = Some(jitter_seed);
        if let Some((key_id, pw)) = &self.password {
            let password = Password::new(pw.as_bytes())
                .map_err(|e| Error::Invalid(format!("password: {e}")))?;
            c.authentication = Some(SimplePassword {
                key_id: *key_id,
                password,
            });
        }
        c.validate()
            .map_err(|e| Error::Invalid(format!("{}: {e}", self.to_line())))?;
        Ok(c)
    }

    /// The multiplier as the session wants it.
    pub fn detect_mult(&self) -> NonZeroU8 {
        NonZeroU8::new(self.mult).unwrap_or(NonZeroU8::MIN)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One session's entry in the status file.
pub fn session_status(addresses: &Addresses, session: &Session) -> Value {
    let (remote_tx, remote_rx, remote_mult) = session.remote_intervals();
    let stats = session.stats();
    json!({
        "peer": addresses.peer.to_string(),
        "local": addresses.local.map(|a| a.to_string()),
        "multihop": session.config().hops.is_multihop(),
        "state": session.state().as_str(),
        "remote_state": session.remote_state().as_str(),
        "local_discriminator": session.local_discriminator().get(),
        "remote_discriminator": session.remote_discriminator(),
        "local_diagnostic": session.local_diagnostic().to_string(),
        "remote_diagnostic": session.remote_diagnostic().to_string(),
        "last_down": session.last_down_reason().map(|r| r.to_string()),
        "transmit_interval_ms": ms(session.transmit_interval()),
        "detection_time_ms": session.detection_time().map(ms),
        "remote_desired_min_tx_ms": ms(remote_tx),
        "remote_required_min_rx_ms": ms(remote_rx),
        "remote_detect_mult": remote_mult,
        "poll": session.poll_in_progress(),
        "received": stats.received,
        "sent": stats.sent,
        "discarded": stats.discarded,
        "up_count": stats.up_count,
        "failures": stats.failures,
    })
}

/// A session as `bfd_peer`'s status file shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionStatus {
    pub peer: IpAddr,
    pub multihop: bool,
    pub state: State,
    pub remote_diagnostic: String,
    pub last_down: Option<String>,
    pub transmit_interval: Duration,
    pub detection_time: Option<Duration>,
    pub remote_desired_min_tx: Duration,
    pub remote_required_min_rx: Duration,
    pub remote_detect_mult: u8,
    pub received: u64,
    pub discarded: u64,
    pub up_count: u64,
    pub failures: u64,
}

fn state_named(s: &str) -> Option<State> {
    [State::AdminDown, State::Down, State::Init, State::Up]
        .into_iter()
        .find(|st| st.as_str() == s)
}

/// Parses the status file.
pub fn parse_status(text: &str) -> Result<Vec<SessionStatus>> {
    let what = "bfd_peer status";
    let v: Value = serde_json::from_str(text).map_err(|e| Error::parse(what, e.to_string()))?;
    let sessions = v
        .get("sessions")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::parse(what, "no sessions array"))?;
    sessions
        .iter()
        .map(|s| {
            let str_of = |k: &str| s.get(k).and_then(Value::as_str);
            let num = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
            let dur = |k: &str| {
                s.get(k)
                    .and_then(Value::as_f64)
                    .map(|m| Duration::from_secs_f64(m / 1000.0))
            };
            Ok(SessionStatus {
                peer: str_of("peer")
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| Error::parse(what, format!("bad peer in {s}")))?,
                multihop: s.get("multihop").and_then(Value::as_bool).unwrap_or(false),
                state: str_of("state")
                    .and_then(state_named)
                    .ok_or_else(|| Error::parse(what, format!("bad state in {s}")))?,
                remote_diagnostic: str_of("remote_diagnostic").unwrap_or_default().to_string(),
                last_down: str_of("last_down").map(str::to_string),
                transmit_interval: dur("transmit_interval_ms").unwrap_or_default(),
                detection_time: dur("detection_time_ms"),
                remote_desired_min_tx: dur("remote_desired_min_tx_ms").unwrap_or_default(),
                remote_required_min_rx: dur("remote_required_min_rx_ms").unwrap_or_default(),
                remote_detect_mult: u8::try_from(num("remote_detect_mult")).unwrap_or(0),
                received: num("received"),
                discarded: num("discarded"),
                up_count: num("up_count"),
                failures: num("failures"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;
    use std::time::Instant;

    #[test]
    fn session_lines_round_trip() {
        let mut s = SessionSpec::new("fd00::2".parse().unwrap(), "fd00::1".parse().unwrap());
        s.interface = Some("eth0".into());
        s.multihop = Some(254);
        s.password = Some((3, "pw".into()));
        s.passive = true;
        s.shutdown = true;
        s.tx_ms = 100;
        let line = s.to_line();
        assert_eq!(SessionSpec::parse_line(&line).unwrap(), Some(s.clone()));
        let file = format!("# comment\n\n{line}  # trailing\n");
        assert_eq!(SessionSpec::parse_file(&file).unwrap(), vec![s]);
        assert!(SessionSpec::parse_line("peer=10.0.0.1").is_err());
        assert!(SessionSpec::parse_line("peer=10.0.0.1 local=10.0.0.2 bogus").is_err());
        assert!(SessionSpec::parse_line("peer=x local=10.0.0.2").is_err());
    }

    #[test]
    fn status_written_is_status_read() {
        let spec = SessionSpec::new("10.0.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap());
        let session = Session::new(
            spec.config(1).unwrap(),
            NonZeroU32::new(9).unwrap(),
            Instant::now(),
        );
        let addresses = Addresses {
            peer: spec.peer,
            local: Some(spec.local),
            interface: None,
        };
        let text = json!({ "sessions": [session_status(&addresses, &session)], "discarded": 0 })
            .to_string();
        let st = parse_status(&text).unwrap();
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].peer, spec.peer);
        assert_eq!(st[0].state, State::Down);
        assert_eq!(st[0].transmit_interval, Duration::from_secs(1));
        assert_eq!(st[0].detection_time, None);
        assert!(parse_status("{}").is_err());
    }
}
