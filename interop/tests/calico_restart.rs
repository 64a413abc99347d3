//! Calico mode's restart and departure rules (docs/calico.md, "Restarts and departures")
//! in the namespace cluster (`interop::calico_cluster`), with pods pinging ten times a
//! second, bgpd nodes running the rules `bgpd calico render` derives and BIRD 2 nodes
//! configured as calico-node configures BIRD. Hold times of 6 or 9 s, so each test takes
//! seconds.
//!
//! - A restart (SIGTERM, then bgpd started again with `-R`, as kubelet and calico-node
//!   do) loses no echo, with bgpd peers (RFC 8538 N bit: Cease, graceful) and with BIRD 2
//!   peers (graceful restart without the N bit: the connection closes without a
//!   NOTIFICATION, so BIRD keeps the node's block, RFC 4724 4.2).
//! - A departure for good (`bgpctl shutdown --for-good`): the node's block leaves every
//!   other kernel within 1 s (Hard Reset to bgpd, a plain Cease to BIRD).
//! - A crash (SIGKILL): the block leaves every other bgpd's kernel within the hold time
//!   + 1 s (restart times are bounded by the hold time), BIRD's a moment later.
//! - A node gone silent (its link down): the block leaves at hold expiry, not a restart
//!   time later (no routes kept at hold expiry in Calico mode).
//! - A restart with a configured peer gone: the selection deferral stops waiting for that
//!   peer after the absent-peer wait, well before the restart time.
//!
//! Every figure measured is printed.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use interop::bgpd::control_at;
use interop::calico::{mesh_name, SessionTimers};
use interop::calico_cluster::{n_bit_negotiated, start, Cluster, ClusterOptions, Pinger};
use interop::{
    binaries_for, run_test, say, wait_established, wait_for, Error, Family, Kind, Result, Test,
    TIMEOUT,
};
use serde_json::json;

/// Hold 6 s, keepalive 2 s; BIRD announces a 6 s restart time, bgpd's Calico rules
/// bound theirs by the hold time. For the crash and departure tests.
const SHORT: SessionTimers = SessionTimers {
    hold_time: 6,
    keepalive: 2,
    restart_time: Some(6),
};

/// Hold 9 s for the restart tests: the restart time (9 s) leaves room for a peer whose
/// first connection attempt found the restarting bgpd not yet listening to try again
/// (after 2 s, then 4 s with the harness's 2 s connect retry).
const RESTART: SessionTimers = SessionTimers {
    hold_time: 9,
    keepalive: 3,
    restart_time: Some(9),
};

/// BIRD's own delay between its restart timer ending and the block leaving its kernel
/// (measured about 1.2 s), on top of the hold time + 1 s a bgpd node is held to.
const BIRD_SLACK: Duration = Duration::from_secs(1);

fn calico_mode(t: &Test, kinds: &[Kind], timers: SessionTimers) -> Result<Cluster> {
    start(
        t,
        kinds,
        ClusterOptions {
            reflectors: 0,
            timers: Some(timers),
            calico_mode: true,
            bfd: None,
        },
    )
}

fn binaries(kinds: &[Kind]) -> Vec<String> {
    let mut bins = binaries_for(kinds);
    bins.push("ping".into());
    bins
}

/// Every node other than `i`.
fn others(c: &Cluster, i: usize) -> Vec<usize> {
    (0..c.nodes.len()).filter(|j| *j != i).collect()
}

/// Node `restarted`'s bgpd is stopped (SIGTERM) and started again with `-R` while the
/// pods of every other node ping its pod; not one echo may be lost.
fn restart_loses_nothing(t: &Test, kinds: &[Kind], restarted: usize) -> Result<()> {
    let mut c = calico_mode(t, kinds, RESTART)?;
    // What the restart's farewell will be, per peer (RFC 8538 N bit or not).
    let socket = c.bgpd_socket(t, restarted)?;
    let mut farewells = Vec::new();
    for i in others(&c, restarted) {
        let name = mesh_name(c.nodes[i].0.addr(Family::Ipv4));
        let n_bit = n_bit_negotiated(&socket, &name)?;
        farewells.push(format!(
            "{} ({}): {}",
            c.nodes[i].0.name,
            kinds[i].name(),
            if n_bit {
                "N bit, Cease"
            } else {
                "no N bit, closed without NOTIFICATION"
            }
        ));
    }
    let dst = c.nodes[restarted].1.pods[0].clone();
    let pingers = others(&c, restarted)
        .into_iter()
        .map(|i| Pinger::start(t, &c.nodes[i].1.pods[0], &dst, 120))
        .collect::<Result<Vec<_>>>()?;
    let before: Vec<usize> = pingers.iter().map(Pinger::replies).collect();
    let stopped = Instant::now();
    c.speakers[restarted]
        .process_mut()
        .restart_with(t, &["-R"])?;
    for i in others(&c, restarted) {
        let peer = c.nodes[i].0.addr(Family::Ipv4);
        wait_established(&*c.speakers[restarted], peer, TIMEOUT)?;
        let back = c.nodes[restarted].0.addr(Family::Ipv4);
        wait_established(&*c.speakers[i], back, TIMEOUT)?;
    }
    let sessions_back = stopped.elapsed();
    for (p, b) in pingers.iter().zip(&before) {
        if p.replies() <= *b {
            return Err(Error::Check("a ping ended before bgpd was back".into()));
        }
    }
    let mut lines = Vec::new();
    let mut lost = 0;
    for (p, i) in pingers.into_iter().zip(others(&c, restarted)) {
        let count = p.finish()?;
        lost += count.lost();
        lines.push(format!(
            "from {} ({}): {} sent, {} lost",
            c.nodes[i].0.name,
            kinds[i].name(),
            count.sent,
            count.lost()
        ));
    }
    say(&format!(
        "{}: {}'s bgpd restarted ({}), every session back after {:.1} s; {}",
        t.name(),
        c.nodes[restarted].0.name,
        farewells.join(", "),
        sessions_back.as_secs_f64(),
        lines.join("; ")
    ));
    if lost > 0 {
        return Err(Error::Check(format!(
            "{lost} echoes lost across the restart: {}",
            lines.join("; ")
        )));
    }
    Ok(())
}

#[test]
fn calico_mode_restart_with_bgpd_peers_loses_nothing() {
    let kinds = [Kind::Bgpd, Kind::Bgpd, Kind::Bgpd];
    run_test(
        "calico_mode_restart_with_bgpd_peers_loses_nothing",
        &binaries(&kinds),
        |t| restart_loses_nothing(t, &kinds, 1),
    );
}

#[test]
fn calico_mode_restart_with_bird_peers_loses_nothing() {
    let kinds = [Kind::Bird, Kind::Bgpd, Kind::Bird];
    run_test(
        "calico_mode_restart_with_bird_peers_loses_nothing",
        &binaries(&kinds),
        |t| restart_loses_nothing(t, &kinds, 1),
    );
}

/// Node 0 leaves for good with `bgpctl shutdown --for-good` (the control command): its
/// block must leave the kernel of the bgpd node and of the BIRD node within 1 s, and
/// its bgpd exits.
#[test]
fn calico_mode_departure_for_good_is_seen_at_once() {
    let kinds = [Kind::Bgpd, Kind::Bgpd, Kind::Bird];
    run_test(
        "calico_mode_departure_for_good_is_seen_at_once",
        &binaries(&kinds),
        |t| {
            let mut c = calico_mode(t, &kinds, SHORT)?;
            let socket = c.bgpd_socket(t, 0)?;
            let asked = Instant::now();
            let answer = control_at(&socket, json!({"command": "shutdown", "for_good": true}))?;
            if answer.get("error").is_some() {
                return Err(Error::Check(format!("shutdown refused: {answer}")));
            }
            let gone = c.block_gone_times(0, &[1, 2], asked, Duration::from_secs(30))?;
            c.speakers[0]
                .process_mut()
                .wait_exit(Duration::from_secs(30))?;
            say(&format!(
                "{}: n1 left for good; its block left n2 (bgpd) after {:.2} s, n3 (BIRD) after {:.2} s",
                t.name(),
                gone[0].as_secs_f64(),
                gone[1].as_secs_f64()
            ));
            if let Some(slow) = gone.iter().find(|g| **g > Duration::from_secs(1)) {
                return Err(Error::Check(format!(
                    "a departed node's block stayed {slow:?} (at most 1 s): {gone:?}"
                )));
            }
            // The others still reach each other.
            let (a, b) = (&c.nodes[1].1.pods[0], &c.nodes[2].1.pods[0]);
            a.ns.wait_ping(IpAddr::V4(b.ip), None, TIMEOUT)
        },
    );
}

/// Node 0's bgpd is killed (SIGKILL): the kernel closes its connections without a
/// NOTIFICATION, which graceful restart takes for a restart; the restart times of
/// Calico mode are bounded by the hold time, so the block must leave the bgpd node's
/// kernel within hold time + 1 s, and the BIRD node's within that and BIRD's own delay
/// after its restart timer ([`BIRD_SLACK`]).
#[test]
fn calico_mode_crashed_node_is_gone_within_the_hold_time() {
    let kinds = [Kind::Bgpd, Kind::Bgpd, Kind::Bird];
    run_test(
        "calico_mode_crashed_node_is_gone_within_the_hold_time",
        &binaries(&kinds),
        |t| {
            let c = calico_mode(t, &kinds, SHORT)?;
            let killed = Instant::now();
            c.speakers[0].process().signal(libc::SIGKILL)?;
            let bound = Duration::from_secs(u64::from(SHORT.hold_time) + 1);
            let gone = c.block_gone_times(0, &[1, 2], killed, 3 * bound)?;
            say(&format!(
                "{}: n1's bgpd killed (hold {} s); its block left n2 (bgpd) after {:.2} s, n3 (BIRD) after {:.2} s",
                t.name(),
                SHORT.hold_time,
                gone[0].as_secs_f64(),
                gone[1].as_secs_f64()
            ));
            if gone[0] > bound || gone[1] > bound + BIRD_SLACK {
                return Err(Error::Check(format!(
                    "a crashed node's block stayed too long (bgpd at most {bound:?}, BIRD {:?}): {gone:?}",
                    bound + BIRD_SLACK
                )));
            }
            Ok(())
        },
    );
}

/// Node 0's link goes down (power off, partition: no FIN, no RST): only hold timers can
/// tell. Calico mode does not keep routes at hold expiry, N bit or not, so the block must
/// leave the bgpd node's kernel within hold time + 1 s (BIRD, without the N bit, drops
/// at its own hold expiry).
#[test]
fn calico_mode_silent_node_is_gone_at_hold_expiry() {
    let kinds = [Kind::Bgpd, Kind::Bgpd, Kind::Bird];
    run_test(
        "calico_mode_silent_node_is_gone_at_hold_expiry",
        &binaries(&kinds),
        |t| {
            let c = calico_mode(t, &kinds, SHORT)?;
            let (node, _) = &c.nodes[0];
            let cut = Instant::now();
            node.ns.ip(&["link", "set", &node.ifname, "down"])?;
            let bound = Duration::from_secs(u64::from(SHORT.hold_time) + 1);
            let gone = c.block_gone_times(0, &[1, 2], cut, 3 * bound)?;
            say(&format!(
                "{}: n1 cut off (hold {} s); its block left n2 (bgpd) after {:.2} s, n3 (BIRD) after {:.2} s",
                t.name(),
                SHORT.hold_time,
                gone[0].as_secs_f64(),
                gone[1].as_secs_f64()
            ));
            if gone[0] > bound || gone[1] > bound + BIRD_SLACK {
                return Err(Error::Check(format!(
                    "a silent node's block stayed too long (bgpd at most {bound:?}, BIRD {:?}): {gone:?}",
                    bound + BIRD_SLACK
                )));
            }
            Ok(())
        },
    );
}

/// Three bgpd nodes, hold 60 s: Calico mode's restart time is then 60 s and the
/// absent-peer wait 20 s (four connect retries). Node 2's bgpd is killed and stays
/// down, then node 1 restarts with `-R`: its selection deferral ends once node 0 sent
/// End-of-RIB and the wait for node 2 is over, well before the 60 s restart time; node
/// 0's pod keeps reaching node 1's meanwhile.
#[test]
fn calico_mode_restart_does_not_wait_for_a_peer_that_is_gone() {
    let kinds = [Kind::Bgpd, Kind::Bgpd, Kind::Bgpd];
    let timers = SessionTimers {
        hold_time: 60,
        keepalive: 20,
        restart_time: None,
    };
    run_test(
        "calico_mode_restart_does_not_wait_for_a_peer_that_is_gone",
        &binaries(&kinds),
        |t| {
            let mut c = calico_mode(t, &kinds, timers)?;
            c.speakers[2].process().signal(libc::SIGKILL)?;
            c.speakers[2].process_mut().stop()?;
            let ping = Pinger::start(t, &c.nodes[0].1.pods[0], &c.nodes[1].1.pods[0], 300)?;
            let restarted = Instant::now();
            c.speakers[1].process_mut().restart_with(t, &["-R"])?;
            let socket = c.bgpd_socket(t, 1)?;
            let mut seen_deferring = false;
            wait_for("node 2's selection deferral to end", TIMEOUT, || {
                c.speakers[1].check_running()?;
                let in_progress = match control_at(&socket, json!({"command": "status"})) {
                    Ok(v) => v
                        .get("graceful_restart_in_progress")
                        .and_then(serde_json::Value::as_bool),
                    // Not listening yet.
                    Err(_) => None,
                };
                Ok(match in_progress {
                    Some(false) => Ok(()),
                    Some(true) => {
                        seen_deferring = true;
                        Err("deferring".into())
                    }
                    None => Err("no status yet".into()),
                })
            })?;
            let deferral = restarted.elapsed();
            let count = ping.finish()?;
            say(&format!(
                "{}: n2 restarted with n3 gone; selection deferral over after {:.1} s (restart time 60 s, absent-peer wait 20 s); {} echoes from n1, {} lost",
                t.name(),
                deferral.as_secs_f64(),
                count.sent,
                count.lost()
            ));
            if !seen_deferring {
                return Err(Error::Check(
                    "the restarted bgpd never reported its selection deferral".into(),
                ));
            }
            if deferral >= Duration::from_secs(40) {
                return Err(Error::Check(format!(
                    "the deferral waited {deferral:?} for a peer that is gone (absent-peer wait 20 s)"
                )));
            }
            if count.lost() > 0 {
                return Err(Error::Check(format!(
                    "{} of {} echoes lost across the restart",
                    count.lost(),
                    count.sent
                )));
            }
            Ok(())
        },
    );
}
