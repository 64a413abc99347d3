//! `bgpctl monitor [--peer NAME]`: bgpd's live stream of peer state changes, routes peers
//! announce and withdraw, and best-path changes, one line per event as it happens (a
//! human line, or with `--json` the event's JSON object), until interrupted.
//!
//! bgpd drops events for a client that reads too slowly and says how many (`lagged`);
//! bgpctl reads as fast as its output is taken, so that happens only when its own output
//! is stuck (a paused pager) or the daemon produces more than a terminal can show.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use bgp_control::{Command, Event, MonitorEvent, Outcome, Reply, Request, Response, MAX_LINE};
use clap::Args;

use crate::control::{fail, Conn, Failure};

/// `bgpctl monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Only this peer's state changes and the routes it announces and withdraws (best-path
    /// changes are left out).
    #[arg(long)]
    peer: Option<String>,
}

/// `bgpctl monitor [--peer NAME]`.
pub fn run(conn: &Conn, args: MonitorArgs) -> ExitCode {
    match stream(conn, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(f),
    }
}

fn stream(conn: &Conn, args: MonitorArgs) -> Result<(), Failure> {
    let socket = conn.socket();
    let mut s = UnixStream::connect(socket)
        .map_err(|e| Failure::Unreachable(crate::control::unreachable_message(socket, &e)))?;
    let mut line = serde_json::to_vec(&Request::new(Command::Monitor { peer: args.peer }))
        .map_err(|e| Failure::Daemon(e.to_string()))?;
    line.push(b'\n');
    s.write_all(&line).map_err(crate::control::io_failure)?;
    let mut reader = BufReader::new(s);
    let out = std::io::stdout();
    let mut out = out.lock();
    let mut first = true;
    loop {
        let mut answer = String::new();
        let n = (&mut reader)
            .take(MAX_LINE as u64)
            .read_line(&mut answer)
            .map_err(crate::control::io_failure)?;
        if n == 0 {
            return Err(Failure::Unreachable(
                "bgpd closed the monitoring connection".into(),
            ));
        }
        let resp: Response = serde_json::from_str(&answer)
            .map_err(|e| Failure::Daemon(format!("unreadable answer from bgpd: {e}")))?;
        let printed = match resp.outcome {
            Outcome::Error { message } => return Err(Failure::Daemon(message)),
            Outcome::Ok {
                result: Reply::Event(e),
            } => {
                if conn.json() {
                    serde_json::to_string(&e).map_err(|e| Failure::Daemon(e.to_string()))?
                } else {
                    line_of(&e)
                }
            }
            // The answer to the request itself: nothing to print.
            Outcome::Ok {
                result: Reply::Done { .. },
            } if first => {
                first = false;
                continue;
            }
            Outcome::Ok { result } => {
                return Err(Failure::Daemon(format!("unexpected answer {result:?}")))
            }
        };
        // Flushed line by line: a reader on a pipe sees each event as it happens. A
        // closed output (`| head`) ends bgpctl quietly.
        if writeln!(out, "{printed}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return Ok(());
        }
    }
}

/// `HH:MM:SS.mmm` (UTC) of a time in milliseconds since the Unix epoch.
fn clock(at_ms: u64) -> String {
    let (s, ms) = (at_ms / 1000, at_ms % 1000);
    format!(
        "{:02}:{:02}:{:02}.{ms:03}",
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

/// One event as a human line: the time, then what happened.
pub fn line_of(e: &MonitorEvent) -> String {
    let what = match &e.event {
        Event::PeerState {
            peer,
            from,
            to,
            reason,
        } => {
            let mut s = format!("peer {peer}: {from} -> {to}");
            if let Some(r) = reason {
                s.push_str(&format!(" ({r})"));
            }
            s
        }
        Event::Announced { peer, route: r } => {
            let mut s = format!("peer {peer}: announced {}", r.prefix);
            if let Some(id) = r.path_id {
                s.push_str(&format!(" path-id {id}"));
            }
            if let Some(nh) = &r.next_hop {
                s.push_str(&format!(" via {nh}"));
            }
            s.push_str(&format!(
                " as-path [{}] origin {}",
                r.as_path,
                if r.origin.is_empty() { "-" } else { &r.origin }
            ));
            if let Some(lp) = r.local_pref {
                s.push_str(&format!(" local-pref {lp}"));
            }
            if let Some(med) = r.med {
                s.push_str(&format!(" med {med}"));
            }
            let communities: Vec<&str> = r
                .communities
                .iter()
                .chain(&r.large_communities)
                .chain(&r.extended_communities)
                .map(String::as_str)
                .collect();
            if !communities.is_empty() {
                s.push_str(&format!(" communities {}", communities.join(" ")));
            }
            s
        }
        Event::Withdrawn {
            peer,
            prefix,
            path_id,
        } => match path_id {
            Some(id) => format!("peer {peer}: withdrew {prefix} path-id {id}"),
            None => format!("peer {peer}: withdrew {prefix}"),
        },
        Event::Best {
            prefix,
            next_hops,
            source,
        } => {
            if next_hops.is_empty() {
                format!("best {prefix} ({source})")
            } else {
                format!("best {prefix} via {} ({source})", next_hops.join(", "))
            }
        }
        Event::Unreachable { prefix } => format!("unreachable {prefix}"),
        Event::Lagged { lost } => {
            format!("lagged: {lost} events lost (bgpctl read too slowly)")
        }
    };
    format!("{} {what}", clock(e.at_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_lines() {
        let e = MonitorEvent {
            at_ms: 3_723_004,
            event: Event::PeerState {
                peer: "b".into(),
                from: "Established".into(),
                to: "Idle".into(),
                reason: Some("hold timer expired".into()),
            },
        };
        assert_eq!(
            line_of(&e),
            "01:02:03.004 peer b: Established -> Idle (hold timer expired)"
        );
        let e = MonitorEvent {
            at_ms: 0,
            event: Event::Best {
                prefix: "10.0.0.0/24".into(),
                next_hops: vec!["192.0.2.1".into(), "192.0.2.2".into()],
                source: "bgp".into(),
            },
        };
        assert_eq!(
            line_of(&e),
            "00:00:00.000 best 10.0.0.0/24 via 192.0.2.1, 192.0.2.2 (bgp)"
        );
        let e = MonitorEvent {
            at_ms: 0,
            event: Event::Lagged { lost: 12 },
        };
        assert!(line_of(&e).contains("lagged: 12 events lost"));
    }
}
