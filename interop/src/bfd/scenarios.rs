//! BFD test bodies, written once for FRR's bfdd and BIRD, single hop or multihop, each
//! running an IPv4 and an IPv6 session at once (we are active on IPv4 and passive on
//! IPv6, so each side starts one of them).
//!
//! Topologies: single hop is our node and the peer on one bridge; multihop puts a
//! router between two bridges (packets arrive with TTL 254). A cut never changes a
//! link's carrier, so both sides can only find out through BFD: single hop disables the
//! peer's bridge port (`bridge link set ... state 0`), multihop turns forwarding off in
//! the router.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgp_bfd::State;
use ipnet::{Ipv4Net, Ipv6Net};

use super::bird::BirdBfd;
use super::frr::{Bfdd, BFDD};
use super::peer::BfdPeer;
use super::spec::{SessionSpec, SessionStatus};
use super::{BfdSpeaker, PeerSession, PeerView};
use crate::context::{say, Test};
use crate::cut::{bridge_port, Cut};
use crate::error::{Error, Result};
use crate::model::Family;
use crate::netns::{Node, Router, Segment};
use crate::wait::wait_for;

/// Bound for sessions to come Up or go Down; generous for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(30);
/// Allowance on top of the detection time for scheduling on a loaded machine when
/// checking how fast a cut was noticed.
const SCHEDULING_SLACK: Duration = Duration::from_millis(1000);

/// The real BFD peer to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    Frr,
    Bird,
}

impl PeerKind {
    /// Binaries the tests need, besides `ip` and `bridge`.
    pub fn binaries(self) -> Vec<String> {
        let v: &[&str] = match self {
            PeerKind::Frr => &[BFDD, "vtysh", "ip", "bridge"],
            PeerKind::Bird => &["bird", "birdc", "ip", "bridge"],
        };
        v.iter().map(|s| s.to_string()).collect()
    }

    /// The least TTL its multihop packets arrive with across our one router: FRR sends
    /// them with 255, BIRD with the system default of 64 (RFC 5883 does not ask for
    /// 255), so our multihop TTL filter allows for one hop from either.
    pub fn multihop_min_ttl(self) -> u8 {
        match self {
            PeerKind::Frr => 254,
            PeerKind::Bird => 63,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Frr => "frr",
            PeerKind::Bird => "bird",
        }
    }

    fn start(
        self,
        test: &Test,
        node: &Node,
        sessions: &[PeerSession],
    ) -> Result<Box<dyn BfdSpeaker>> {
        Ok(match self {
            PeerKind::Frr => Box::new(Bfdd::start(test, node, "bfdd", sessions)?),
            PeerKind::Bird => Box::new(BirdBfd::start(
                test,
                node,
                "bird",
                IpAddr::V4(node.v4),
                sessions,
            )?),
        })
    }
}

/// Our node, the peer's node, and the means to cut between them.
pub struct Topology {
    pub us: Node,
    pub peer: Node,
    pub multihop: bool,
    cut: Cut,
    _segments: Vec<Segment>,
    _router: Option<Router>,
}

impl Topology {
    pub fn single_hop(test: &Test) -> Result<Topology> {
        let segment = Segment::new(test)?;
        let us = Node::new(test, &segment, "us", 1)?;
        let peer = Node::new(test, &segment, "peer", 2)?;
        let cut = Cut::BridgePort {
            bridge: Arc::clone(segment.netns()),
            port: bridge_port(&segment, &peer)?,
        };
        Ok(Topology {
            us,
            peer,
            multihop: false,
            cut,
            _segments: vec![segment],
            _router: None,
        })
    }

    pub fn multihop(test: &Test) -> Result<Topology> {
        let net4 = |third: u8| {
            Ipv4Net::new(std::net::Ipv4Addr::new(10, 0, third, 0), 24)
                .map_err(|e| Error::Invalid(e.to_string()))
        };
        let net6 = |fourth: u16| {
            Ipv6Net::new(
                std::net::Ipv6Addr::new(0xfd00, 0, 0, fourth, 0, 0, 0, 0),
                64,
            )
            .map_err(|e| Error::Invalid(e.to_string()))
        };
        let ours = Segment::with_subnets(test, net4(1)?, net6(1)?)?;
        let theirs = Segment::with_subnets(test, net4(2)?, net6(2)?)?;
        let router = Router::new(test, "router", &[&ours, &theirs], 254)?;
        let us = Node::new(test, &ours, "us", 1)?;
        let peer = Node::new(test, &theirs, "peer", 1)?;
        us.route_via(&router, &ours)?;
        peer.route_via(&router, &theirs)?;
        let cut = Cut::Router {
            ns: Arc::clone(&router.ns),
        };
        Ok(Topology {
            us,
            peer,
            multihop: true,
            cut,
            _segments: vec![ours, theirs],
            _router: Some(router),
        })
    }

    /// Cuts (`false`) or restores (`true`) the path between us and the peer, without
    /// touching either node's link state.
    pub fn cut(&self, up: bool) -> Result<()> {
        self.cut.set(up)
    }

    /// Our session to the peer over `family`, 200 ms x 4 and 350 ms receive.
    pub fn our_session(&self, family: Family, kind: PeerKind) -> SessionSpec {
        let mut s = SessionSpec::new(self.peer.addr(family), self.us.addr(family));
        if self.multihop {
            s.multihop = Some(kind.multihop_min_ttl());
        } else {
            s.interface = Some(self.us.ifname.clone());
        }
        s.tx_ms = 200;
        s.rx_ms = 350;
        s.mult = 4;
        s.passive = family == Family::Ipv6;
        s
    }

    /// The peer's session to us over `family`, 300 ms x 3 and 250 ms receive.
    pub fn peer_session(&self, family: Family) -> PeerSession {
        let mut s = PeerSession::new(
            self.us.addr(family),
            self.peer.addr(family),
            &self.peer.ifname,
        );
        s.multihop = self.multihop;
        s.tx_ms = 300;
        s.rx_ms = 250;
        s.mult = 3;
        s
    }
}

const FAMILIES: [Family; 2] = [Family::Ipv4, Family::Ipv6];

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Waits until our sessions to `peers` and the peer's sessions to `us` are all in
/// `state`.
fn wait_both_sides(
    what: &str,
    ours: &BfdPeer,
    theirs: &dyn BfdSpeaker,
    sessions: &[(IpAddr, IpAddr)],
    multihop: bool,
    state: State,
) -> Result<()> {
    wait_for(what, WAIT, || {
        theirs.check_running()?;
        let mut seen = Vec::new();
        for (peer, us) in sessions {
            let mine = ours.state(*peer, multihop)?;
            let their = theirs.session(*us)?.map(|v| v.state);
            if mine != Some(state) || their != Some(state) {
                seen.push(format!("{peer}: ours {mine:?}, theirs {their:?}"));
            }
        }
        Ok(if seen.is_empty() {
            Ok(())
        } else {
            Err(seen.join("; "))
        })
    })
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Check(what()))
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Our status shows the negotiated timers: transmit at max(our tx, their rx), detect
/// after their mult x max(our rx, their tx).
fn check_our_timers(s: &SessionStatus, ours: &SessionSpec, theirs: &PeerSession) -> Result<()> {
    let tx = ms(ours.tx_ms.max(theirs.rx_ms));
    let detect = ms(ours.rx_ms.max(theirs.tx_ms) * u64::from(theirs.mult));
    check(
        s.transmit_interval == tx
            && s.detection_time == Some(detect)
            && s.remote_desired_min_tx == ms(theirs.tx_ms)
            && s.remote_required_min_rx == ms(theirs.rx_ms)
            && s.remote_detect_mult == theirs.mult,
        || {
            format!(
                "our view of {}: {s:?}, expected tx {tx:?}, detect {detect:?}",
                s.peer
            )
        },
    )
}

/// The peer's view shows what we sent: FRR our three values, BIRD the transmit
/// interval and detection time they imply.
fn peer_view_matches(v: &PeerView, ours: &SessionSpec, theirs: &PeerSession) -> bool {
    let frr = v.remote_rx == Some(ms(ours.rx_ms))
        && v.remote_tx == Some(ms(ours.tx_ms))
        && v.remote_mult == Some(ours.mult);
    let bird = v.transmit_interval == Some(ms(theirs.tx_ms.max(ours.rx_ms)))
        && v.detection_time == Some(ms(theirs.rx_ms.max(ours.tx_ms) * u64::from(ours.mult)));
    frr || bird
}

fn wait_peer_view(
    theirs: &dyn BfdSpeaker,
    ours: &[SessionSpec],
    peer_side: &[PeerSession],
) -> Result<()> {
    wait_for("the peer to see our timers", WAIT, || {
        for (o, t) in ours.iter().zip(peer_side) {
            match theirs.session(o.local)? {
                Some(v) if v.state == State::Up && peer_view_matches(&v, o, t) => {}
                other => return Ok(Err(format!("{}: {other:?}", o.local))),
            }
        }
        Ok(Ok(()))
    })
}

/// Bring-up both ways, timers as each side sees them, renegotiation while Up without a
/// flap, a cut detected within the detection time, recovery, and (single hop) an
/// administrative down that the peer sees as such.
pub fn interop(test: &Test, kind: PeerKind, multihop: bool, bfd_peer: &Path) -> Result<()> {
    let topo = if multihop {
        Topology::multihop(test)?
    } else {
        Topology::single_hop(test)?
    };
    let label = format!(
        "{} {}",
        kind.name(),
        if multihop { "multihop" } else { "single hop" }
    );
    let mut ours: Vec<SessionSpec> = FAMILIES
        .iter()
        .map(|f| topo.our_session(*f, kind))
        .collect();
    let theirs: Vec<PeerSession> = FAMILIES.iter().map(|f| topo.peer_session(*f)).collect();
    let pairs: Vec<(IpAddr, IpAddr)> = ours.iter().map(|s| (s.peer, s.local)).collect();

    let peer = kind.start(test, &topo.peer, &theirs)?;
    let started = unix_ms();
    let us = BfdPeer::start(test, &topo.us.ns, "bfd_peer", bfd_peer, &ours)?;
    wait_both_sides(
        "sessions Up",
        &us,
        peer.as_ref(),
        &pairs,
        multihop,
        State::Up,
    )?;
    say(&format!(
        "bfd {label}: IPv4 and IPv6 Up on both sides {} ms after start",
        unix_ms() - started
    ));

    // Timers, both views.
    for (o, t) in ours.iter().zip(&theirs) {
        let s = us
            .session(o.peer, multihop)?
            .ok_or_else(|| Error::Check(format!("no session to {}", o.peer)))?;
        check_our_timers(&s, o, t)?;
    }
    wait_peer_view(peer.as_ref(), &ours, &theirs)?;

    // Renegotiation while Up: a Poll Sequence, no flap on either side.
    for o in &mut ours {
        o.tx_ms = 100;
        o.rx_ms = 150;
        o.mult = 5;
    }
    us.reconfigure(&ours)?;
    wait_peer_view(peer.as_ref(), &ours, &theirs)?;
    wait_for("our side to apply the new timers", WAIT, || {
        for (o, t) in ours.iter().zip(&theirs) {
            match us.session(o.peer, multihop)? {
                Some(s) if check_our_timers(&s, o, t).is_ok() => {}
                other => return Ok(Err(format!("{other:?}"))),
            }
        }
        Ok(Ok(()))
    })?;
    let downs =
        |events: &[super::peer::StateEvent]| events.iter().filter(|e| e.from == "Up").count();
    check(downs(&us.events()?) == 0, || {
        "a session flapped while renegotiating".into()
    })?;
    for (_, local) in &pairs {
        let v = peer.session(*local)?;
        check(
            v.as_ref()
                .is_some_and(|v| v.state == State::Up && v.down_count.unwrap_or(0) == 0),
            || format!("peer's view after renegotiation: {v:?}"),
        )?;
    }

    // Cut: both sides time out.
    let cut_at = unix_ms();
    topo.cut.set(false)?;
    wait_both_sides(
        "sessions Down after the cut",
        &us,
        peer.as_ref(),
        &pairs,
        multihop,
        State::Down,
    )?;
    let events = us.events()?;
    for o in &ours {
        let status = us
            .session(o.peer, multihop)?
            .ok_or_else(|| Error::Check(format!("no session to {}", o.peer)))?;
        let detection = status
            .detection_time
            .ok_or_else(|| Error::Check(format!("no detection time: {status:?}")))?;
        let down = events
            .iter()
            .find(|e| e.peer == o.peer && e.unix_ms >= cut_at && e.from == "Up")
            .ok_or_else(|| Error::Check(format!("no Down event for {}", o.peer)))?;
        let took = Duration::from_millis(down.unix_ms - cut_at);
        say(&format!(
            "bfd {label}: {} Down {} ms after the cut (detection time {} ms)",
            o.peer,
            took.as_millis(),
            detection.as_millis()
        ));
        check(
            down.reason == "control detection time expired" && down.failure,
            || format!("{down:?}"),
        )?;
        check(took <= detection + SCHEDULING_SLACK, || {
            format!(
                "{}: Down after {took:?}, detection time {detection:?}",
                o.peer
            )
        })?;
    }

    // Recovery.
    topo.cut.set(true)?;
    let restored = unix_ms();
    wait_both_sides(
        "sessions Up after the repair",
        &us,
        peer.as_ref(),
        &pairs,
        multihop,
        State::Up,
    )?;
    say(&format!(
        "bfd {label}: Up again on both sides {} ms after the repair",
        unix_ms() - restored
    ));

    if !multihop {
        admin_down(&us, peer.as_ref(), &mut ours, kind)?;
    }
    Ok(())
}

/// RFC 5880 6.8.16: our AdminDown reaches the peer, which goes Down without a failure
/// of its own (FRR shows our diagnostic), then everything comes back.
fn admin_down(
    us: &BfdPeer,
    peer: &dyn BfdSpeaker,
    ours: &mut [SessionSpec],
    kind: PeerKind,
) -> Result<()> {
    for o in ours.iter_mut() {
        o.shutdown = true;
    }
    us.reconfigure(ours)?;
    wait_for("the peer to see our AdminDown", WAIT, || {
        for o in ours.iter() {
            let mine = us.state(o.peer, false)?;
            let v = peer.session(o.local)?;
            let ok = mine == Some(State::AdminDown)
                && v.as_ref().is_some_and(|v| {
                    v.state == State::Down
                        && (kind != PeerKind::Frr
                            || v.remote_diagnostic.as_deref() == Some("administratively down"))
                });
            if !ok {
                return Ok(Err(format!("{}: ours {mine:?}, theirs {v:?}", o.peer)));
            }
        }
        Ok(Ok(()))
    })?;
    for o in ours.iter_mut() {
        o.shutdown = false;
    }
    us.reconfigure(ours)?;
    let pairs: Vec<(IpAddr, IpAddr)> = ours.iter().map(|s| (s.peer, s.local)).collect();
    wait_both_sides(
        "sessions Up after AdminDown",
        us,
        peer,
        &pairs,
        false,
        State::Up,
    )
}

/// RFC 5881 5: a single-hop session across a router (TTL 254) never comes Up: we
/// discard the peer's packets, while the multihop sessions beside it are Up.
pub fn single_hop_across_a_router(test: &Test, bfd_peer: &Path) -> Result<()> {
    let topo = Topology::multihop(test)?;
    let mut ours = vec![topo.our_session(Family::Ipv4, PeerKind::Frr)];
    let mut theirs = vec![topo.peer_session(Family::Ipv4)];
    let mut single = SessionSpec::new(topo.peer.v4.into(), topo.us.v4.into());
    single.interface = None;
    ours.push(single);
    let mut their_single = topo.peer_session(Family::Ipv4);
    their_single.multihop = false;
    theirs.push(their_single);
    let peer = Bfdd::start(test, &topo.peer, "bfdd", &theirs)?;
    let us = BfdPeer::start(test, &topo.us.ns, "bfd_peer", bfd_peer, &ours)?;
    let peer_addr: IpAddr = topo.peer.v4.into();
    wait_for("multihop Up, single hop discarding", WAIT, || {
        peer.check_running()?;
        let mh = us.session(peer_addr, true)?;
        let sh = us.session(peer_addr, false)?;
        Ok(match (&mh, &sh) {
            (Some(m), Some(s)) if m.state == State::Up && s.discarded >= 3 => Ok(()),
            _ => Err(format!("multihop {mh:?}, single hop {sh:?}")),
        })
    })?;
    let sh = us.session(peer_addr, false)?;
    check(
        sh.as_ref()
            .is_some_and(|s| s.state == State::Down && s.received == 0 && s.up_count == 0),
        || format!("single hop across a router: {sh:?}"),
    )?;
    let stderr = std::fs::read_to_string(us.stderr_path()).unwrap_or_default();
    check(stderr.contains("TTL 254 below the required 255"), || {
        format!("no TTL discard logged: {stderr}")
    })
}

/// RFC 5880 6.7.2 against BIRD: the same simple password comes Up; a different one on
/// our side takes the session down (BIRD's packets fail our check and ours fail BIRD's).
pub fn simple_password_with_bird(test: &Test, bfd_peer: &Path) -> Result<()> {
    let topo = Topology::single_hop(test)?;
    let mut ours = vec![topo.our_session(Family::Ipv4, PeerKind::Bird)];
    let mut theirs = vec![topo.peer_session(Family::Ipv4)];
    ours[0].password = Some((1, "s3cret".into()));
    ours[0].passive = false;
    theirs[0].password = Some("s3cret".into());
    let peer = BirdBfd::start(test, &topo.peer, "bird", IpAddr::V4(topo.peer.v4), &theirs)?;
    let us = BfdPeer::start(test, &topo.us.ns, "bfd_peer", bfd_peer, &ours)?;
    let pairs = [(ours[0].peer, ours[0].local)];
    wait_both_sides(
        "authenticated session Up",
        &us,
        &peer,
        &pairs,
        false,
        State::Up,
    )?;
    ours[0].password = Some((1, "wrong".into()));
    us.reconfigure(&ours)?;
    wait_for("a wrong password to keep the session Down", WAIT, || {
        let s = us.session(ours[0].peer, false)?;
        let v = peer.session(ours[0].local)?;
        Ok(match (&s, &v) {
            (Some(s), Some(v))
                if s.state != State::Up && s.discarded >= 3 && v.state == State::Down =>
            {
                Ok(())
            }
            _ => Err(format!("ours {s:?}, BIRD {v:?}")),
        })
    })?;
    let stderr = std::fs::read_to_string(us.stderr_path()).unwrap_or_default();
    check(stderr.contains("wrong password"), || {
        format!("no authentication discard logged: {stderr}")
    })
}
