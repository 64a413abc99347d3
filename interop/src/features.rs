//! Per-feature interop scenarios: bgpd against one real peer (BIRD 2, GoBGP
//! or FRR) for the capabilities issue 6 lists besides plain route exchange.
//!
//! - [`add_path`]: ADD-PATH (RFC 7911) both ways. Two upstream BIRDs
//!   announce the same prefix to both bgpd and the peer; bgpd and the peer
//!   send each other every path they have over an ADD-PATH session. bgpd's
//!   Loc-RIB must hold both of the peer's paths, each with its own path
//!   identifier, and the peer's own CLI both of bgpd's; each side's view of
//!   the negotiated capability is checked too (bgpd's `show_peer`
//!   capabilities, `birdc show protocols all`, `gobgp neighbor`, FRR's
//!   `show bgp neighbors json`).
//! - [`route_refresh`]: bgpd's import policy first rejects one of the peer's
//!   prefixes (it stays in the Adj-RIB-In, not in the Loc-RIB); a reloaded
//!   policy accepting it makes it appear without resetting the session
//!   (RFC 2918 section 1: from stored routes or by ROUTE-REFRESH). Then the
//!   peer asks bgpd for a refresh with its own CLI (`birdc reload in`,
//!   `clear bgp X soft in`; GoBGP's CLI cannot send one): bgpd must count
//!   the ROUTE-REFRESH, send its routes again (UPDATE counter grows), and the
//!   peer must still hold them with their attributes once a later UPDATE has
//!   arrived (so an RFC 7313 End-of-RIB-Refresh did not purge them). Last,
//!   bgpd sends a ROUTE-REFRESH (a `next_hop` setting change) and the peer
//!   must answer it.
//! - [`four_octet_as`]: the pair exchange (IPv4 + IPv6, attributes intact)
//!   with AS numbers above 65535 on both sides (RFC 6793); each side's CLI
//!   must show the other's 4-octet AS in the AS_PATH, and bgpd must have
//!   received the peer's AS in the 4-octet AS capability.
//! - [`extended_next_hop`]: one IPv6 session carrying IPv4 and IPv6 unicast
//!   with the extended next hop capability (RFC 8950): each side's IPv4
//!   routes reach the other with the sender's IPv6 address as next hop.
//!
//! - [`extended_next_hop_with_exabgp`]: the same with ExaBGP, whose JSON
//!   API shows what bgpd sent it.
//! - [`add_path_from_exabgp`]: ExaBGP sends two paths with path ids it
//!   chooses (1 and 2); bgpd must show exactly those ids.
//! - [`route_refresh_from_exabgp`]: ExaBGP's API sends the ROUTE-REFRESH
//!   and must get bgpd's routes again.
//!
//! MD5 with GoBGP and ExaBGP reuses [`crate::scenarios::md5`].

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use serde_json::Value;

use crate::bgpd::{config, config_with, Bgpd, Options};
use crate::scenarios::{announcements, check_received, check_received_via, speaker_config};
use crate::{
    wait_established, wait_for, wait_route, AddPath, Announce, Bird, Error, Family, Frr, GoBgp,
    Kind, Neighbor, Node, Result, Segment, Speaker, SpeakerConfig, Test, TIMEOUT,
};

/// A real peer of bgpd, with the daemon-specific CLI the feature checks need.
pub enum Peer {
    /// BIRD 2.
    Bird(Bird),
    /// GoBGP.
    GoBgp(GoBgp),
    /// FRR.
    Frr(Frr),
}

/// ADD-PATH for IPv4 unicast on one session as a speaker's CLI shows it:
/// negotiated means both sides announced the matching directions (RFC 7911
/// section 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPathSeen {
    /// This speaker may send several paths (it announced send, the neighbor
    /// receive).
    pub sends: bool,
    /// This speaker may receive several paths.
    pub receives: bool,
}

impl Peer {
    /// Starts a `kind` speaker (BIRD, GoBGP or FRR).
    pub fn start(
        kind: Kind,
        test: &Test,
        node: &Node,
        label: &str,
        cfg: &SpeakerConfig,
    ) -> Result<Peer> {
        Ok(match kind {
            Kind::Bird => Peer::Bird(Bird::start(test, node, label, cfg)?),
            Kind::GoBgp => Peer::GoBgp(GoBgp::start(test, node, label, cfg)?),
            Kind::Frr => Peer::Frr(Frr::start(test, node, label, cfg)?),
            other => {
                return Err(Error::Invalid(format!(
                    "{} is not a feature-test peer (BIRD, GoBGP, FRR)",
                    other.name()
                )))
            }
        })
    }

    /// The peer as a generic [`Speaker`].
    pub fn speaker(&self) -> &dyn Speaker {
        match self {
            Peer::Bird(s) => s,
            Peer::GoBgp(s) => s,
            Peer::Frr(s) => s,
        }
    }

    /// What the peer's CLI says about ADD-PATH (IPv4 unicast) on its session
    /// to `neighbor`, with the raw CLI text for error messages.
    pub fn add_path(&self, neighbor: IpAddr) -> Result<(AddPathSeen, String)> {
        match self {
            Peer::Bird(b) => {
                let text = b.birdc(&format!(
                    "show protocols all {}",
                    crate::bird::protocol_name(neighbor)
                ))?;
                Ok((bird_add_path(&text), text))
            }
            Peer::GoBgp(g) => {
                let text = g.gobgp(&["neighbor", &neighbor.to_string()])?;
                Ok((gobgp_add_path(&text), text))
            }
            Peer::Frr(f) => {
                let v = f.vtysh_json(&format!("show bgp neighbors {neighbor} json"))?;
                Ok((frr_add_path(&v, neighbor), v.to_string()))
            }
        }
    }

    /// Makes the peer send a ROUTE-REFRESH (RFC 2918) for IPv4 unicast to
    /// `neighbor` with its own CLI; returns the CLI's answer, or `None` when
    /// the peer's CLI cannot: GoBGP's `neighbor X softresetin` re-applies
    /// import policy to the Adj-RIB-In GoBGP always keeps and sends nothing
    /// (GoBGP 3.10 has no command that sends a ROUTE-REFRESH).
    pub fn request_refresh(&self, neighbor: IpAddr) -> Result<Option<String>> {
        match self {
            Peer::Bird(b) => b
                .birdc(&format!(
                    "reload in {}",
                    crate::bird::protocol_name(neighbor)
                ))
                .map(Some),
            Peer::GoBgp(_) => Ok(None),
            Peer::Frr(f) => f
                .vtysh(&format!("clear bgp ipv4 unicast {neighbor} soft in"))
                .map(Some),
        }
    }

    /// ROUTE-REFRESH messages received from `neighbor`, where the peer's CLI
    /// counts them (GoBGP's `gobgp neighbor X` message statistics, FRR's
    /// `messageStats.routeRefreshRecv`); `None` for BIRD, which shows no
    /// message counters.
    pub fn refreshes_received(&self, neighbor: IpAddr) -> Result<Option<u64>> {
        match self {
            Peer::Bird(_) => Ok(None),
            Peer::GoBgp(g) => {
                let text = g.gobgp(&["neighbor", &neighbor.to_string()])?;
                gobgp_refresh_received(&text)
                    .map(Some)
                    .ok_or_else(|| Error::parse("gobgp neighbor", text))
            }
            Peer::Frr(f) => {
                let cmd = format!("show bgp neighbors {neighbor} json");
                let v = f.vtysh_json(&cmd)?;
                v.get(neighbor.to_string())
                    .and_then(|n| n.pointer("/messageStats/routeRefreshRecv"))
                    .and_then(Value::as_u64)
                    .map(Some)
                    .ok_or_else(|| Error::parse(cmd, v.to_string()))
            }
        }
    }
}

/// The received column of `Route Refresh:` in `gobgp neighbor ADDR`'s
/// message statistics (`Route Refresh:  SENT  RCVD`).
pub fn gobgp_refresh_received(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("Route Refresh:")?;
        rest.split_whitespace().nth(1)?.parse().ok()
    })
}

/// The address families listed after `label` (e.g. `RX:`) in the ADD-PATH
/// block of one capability section of `birdc show protocols all`.
fn bird_add_path_afis(section: &str, label: &str) -> Vec<String> {
    let mut in_add_path = false;
    let mut add_path_indent = 0;
    for line in section.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if t == "ADD-PATH" {
            in_add_path = true;
            add_path_indent = indent;
            continue;
        }
        if in_add_path {
            if indent <= add_path_indent {
                in_add_path = false;
                continue;
            }
            if let Some(rest) = t.strip_prefix(label) {
                return rest.split_whitespace().map(str::to_string).collect();
            }
        }
    }
    Vec::new()
}

/// Parses `birdc show protocols all NAME`: BIRD sends several paths when its
/// local capabilities have `TX: ipv4` and the neighbor's `RX: ipv4` in their
/// ADD-PATH blocks, and the other way round for receiving.
pub fn bird_add_path(text: &str) -> AddPathSeen {
    let local_start = text.find("Local capabilities");
    let neighbor_start = text.find("Neighbor capabilities");
    let (local, neighbor) = match (local_start, neighbor_start) {
        (Some(l), Some(n)) if l < n => (
            text.get(l..n).unwrap_or_default(),
            text.get(n..).unwrap_or_default(),
        ),
        _ => {
            return AddPathSeen {
                sends: false,
                receives: false,
            }
        }
    };
    // The neighbor section ends where the session details begin.
    let neighbor = neighbor.split("Session:").next().unwrap_or_default();
    let has = |section: &str, label: &str| {
        bird_add_path_afis(section, label)
            .iter()
            .any(|a| a == "ipv4")
    };
    AddPathSeen {
        sends: has(local, "TX:") && has(neighbor, "RX:"),
        receives: has(local, "RX:") && has(neighbor, "TX:"),
    }
}

/// Parses `gobgp neighbor ADDR`: the `add-path:` capability lists `Local:`
/// and `Remote:` modes per family (`receive`, `send`, `receive/send`).
pub fn gobgp_add_path(text: &str) -> AddPathSeen {
    let mut local = String::new();
    let mut remote = String::new();
    let mut block: Option<bool> = None; // Some(true): Local, Some(false): Remote
    let mut in_add_path = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("add-path:") {
            in_add_path = true;
            continue;
        }
        if !in_add_path {
            continue;
        }
        match t {
            "Local:" => block = Some(true),
            "Remote:" => block = Some(false),
            _ => {
                if let Some(mode) = t.strip_prefix("ipv4-unicast:") {
                    match block {
                        Some(true) => local = mode.trim().to_string(),
                        Some(false) => remote = mode.trim().to_string(),
                        None => {}
                    }
                } else if !t.contains("-unicast:") {
                    // Any other line ends the add-path capability.
                    in_add_path = false;
                }
            }
        }
    }
    AddPathSeen {
        sends: local.contains("send") && remote.contains("receive"),
        receives: local.contains("receive") && remote.contains("send"),
    }
}

/// Parses FRR's `show bgp neighbors ADDR json`: `neighborCapabilities.addPath
/// .ipv4Unicast` has `txAdvertisedAndReceived` / `rxAdvertisedAndReceived`.
pub fn frr_add_path(v: &Value, neighbor: IpAddr) -> AddPathSeen {
    let ap = v
        .get(neighbor.to_string())
        .and_then(|n| n.pointer("/neighborCapabilities/addPath/ipv4Unicast"));
    let flag = |k: &str| {
        ap.and_then(|a| a.get(k))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    AddPathSeen {
        sends: flag("txAdvertisedAndReceived"),
        receives: flag("rxAdvertisedAndReceived"),
    }
}

/// bgpd's view of ADD-PATH (IPv4 unicast) on its session to `neighbor`, from
/// the capabilities of `show_peer` (sent and received, as rendered by bgpd:
/// `AddPath([(Family { afi: Afi(1), safi: Safi(1) }, Both)])`).
pub fn bgpd_add_path(detail: &Value) -> AddPathSeen {
    let modes = |key: &str| -> Vec<String> {
        detail
            .get(key)
            .and_then(Value::as_array)
            .map(|caps| {
                caps.iter()
                    .filter_map(Value::as_str)
                    .filter(|c| c.starts_with("AddPath"))
                    .flat_map(|c| {
                        // One "(Family { .. }, Mode)" tuple per family.
                        c.split("), (Family")
                            .filter(|t| t.contains("afi: Afi(1), safi: Safi(1)"))
                            .map(str::to_string)
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let can =
        |tuples: &[String], dir: &str| tuples.iter().any(|t| t.contains(dir) || t.contains("Both"));
    let (sent, received) = (modes("capabilities_sent"), modes("capabilities_received"));
    AddPathSeen {
        sends: can(&sent, "Send") && can(&received, "Receive"),
        receives: can(&sent, "Receive") && can(&received, "Send"),
    }
}

/// A Loc-RIB entry of bgpd's control protocol that is the best path (not a
/// path listed with `not_best_reason` such as "rejected by import policy").
fn usable(entry: &Value) -> bool {
    entry.get("best").and_then(Value::as_bool) == Some(true)
}

fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new(Ipv4Addr::new(a, b, c, d), len).unwrap_or_default())
}

/// ADD-PATH both ways between bgpd (node b, AS 65010) and `kind` (node p,
/// AS 65020), IPv4. Two upstream BIRDs (u1 AS 65001, u2 AS 65002) announce
/// 192.0.2.0/24 to both. bgpd and the peer announce and accept ADD-PATH in
/// both directions on their session, so:
/// - bgpd's Loc-RIB holds two paths from the peer, AS paths `65020 65001`
///   and `65020 65002`, each with a path identifier, the two different;
/// - the peer's CLI shows two paths from bgpd, `65010 65001` and
///   `65010 65002`;
/// - both bgpd's `show_peer` and the peer's CLI say ADD-PATH was negotiated
///   in both directions.
pub fn add_path(t: &Test, kind: Kind) -> Result<()> {
    const AS_B: u32 = 65010;
    const AS_P: u32 = 65020;
    const UPSTREAMS: [u32; 2] = [65001, 65002];
    let fam = Family::Ipv4;
    let prefix = v4(192, 0, 2, 0, 24);
    let seg = Segment::new(t)?;
    let nb = Node::new(t, &seg, "b", 1)?;
    let np = Node::new(t, &seg, "p", 2)?;
    let nu = [Node::new(t, &seg, "u1", 3)?, Node::new(t, &seg, "u2", 4)?];

    let mut cb = SpeakerConfig::new(nb.v4, AS_B);
    let mut cp = SpeakerConfig::new(np.v4, AS_P);
    let mut to_p = Neighbor::new(np.addr(fam), nb.addr(fam), AS_P);
    to_p.add_path = AddPath::Both;
    cb.neighbors.push(to_p);
    let mut to_b = Neighbor::new(nb.addr(fam), np.addr(fam), AS_B);
    to_b.add_path = AddPath::Both;
    cp.neighbors.push(to_b);
    for (u, asn) in nu.iter().zip(UPSTREAMS) {
        cb.neighbors
            .push(Neighbor::new(u.addr(fam), nb.addr(fam), asn));
        cp.neighbors
            .push(Neighbor::new(u.addr(fam), np.addr(fam), asn));
    }
    let mut upstreams = Vec::new();
    for (i, (u, asn)) in nu.iter().zip(UPSTREAMS).enumerate() {
        let mut cu = SpeakerConfig::new(u.v4, asn);
        cu.neighbors
            .push(Neighbor::new(nb.addr(fam), u.addr(fam), AS_B));
        cu.neighbors
            .push(Neighbor::new(np.addr(fam), u.addr(fam), AS_P));
        cu.announce.push(Announce::new(prefix));
        upstreams.push(Bird::start(t, u, &format!("bird-u{}", i + 1), &cu)?);
    }
    let bgpd = Bgpd::start(t, &nb, "bgpd-b", &cb)?;
    let peer = Peer::start(kind, t, &np, &format!("{}-p", kind.name()), &cp)?;
    let ps = peer.speaker();
    for (u, up) in nu.iter().zip(&upstreams) {
        wait_established(&bgpd, u.addr(fam), TIMEOUT)?;
        wait_established(ps, u.addr(fam), TIMEOUT)?;
        wait_established(up, nb.addr(fam), TIMEOUT)?;
    }
    wait_established(&bgpd, np.addr(fam), TIMEOUT)?;
    wait_established(ps, nb.addr(fam), TIMEOUT)?;

    // Capabilities, each side's own view.
    let detail = bgpd.show_peer(np.addr(fam))?;
    let seen = bgpd_add_path(&detail);
    if !(seen.sends && seen.receives) {
        return Err(Error::Check(format!(
            "bgpd does not show ADD-PATH negotiated both ways with {}: {seen:?}; show_peer: {detail}",
            ps.label()
        )));
    }
    let (seen, text) = peer.add_path(nb.addr(fam))?;
    if !(seen.sends && seen.receives) {
        return Err(Error::Check(format!(
            "{} does not show ADD-PATH negotiated both ways with bgpd: {seen:?}; CLI:\n{text}",
            ps.label()
        )));
    }

    // bgpd receives both of the peer's paths, each with its path id.
    let peer_name = crate::bgpd::peer_name(np.addr(fam));
    let want_at_b: Vec<Vec<u32>> = UPSTREAMS.iter().map(|u| vec![AS_P, *u]).collect();
    let mut ids: Vec<(Vec<u32>, u64)> = Vec::new();
    wait_for(
        &format!("bgpd to hold both paths of {prefix} from {}", ps.label()),
        TIMEOUT,
        || {
            bgpd.check_running()?;
            // What an operator sees: `bgpctl --json show routes PREFIX --peer NAME`.
            let answer =
                bgpd.bgpctl_json(&["show", "routes", &prefix.to_string(), "--peer", &peer_name])?;
            let entries: Vec<Value> = answer
                .get("routes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let from_p: Vec<&Value> = entries
                .iter()
                .filter(|e| e.get("peer").and_then(Value::as_str) == Some(peer_name.as_str()))
                .collect();
            ids.clear();
            for e in &from_p {
                let path: Vec<u32> = e
                    .get("as_path")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|a| a.parse().ok())
                    .collect();
                if let Some(id) = e.get("path_id").and_then(Value::as_u64) {
                    ids.push((path, id));
                }
            }
            let all = want_at_b.iter().all(|w| ids.iter().any(|(p, _)| p == w));
            Ok(if all {
                Ok(())
            } else {
                Err(format!(
                    "paths from {peer_name} with a path id: {ids:?}; all entries: {}",
                    Value::from(entries.clone())
                ))
            })
        },
    )?;
    let chosen: Vec<u64> = want_at_b
        .iter()
        .filter_map(|w| ids.iter().find(|(p, _)| p == w).map(|(_, id)| *id))
        .collect();
    if chosen.len() != 2 || chosen.first() == chosen.get(1) {
        return Err(Error::Check(format!(
            "bgpd's two paths of {prefix} from {} do not have distinct path ids: {ids:?}",
            ps.label()
        )));
    }

    // Paths the peer passes back with bgpd's own AS in them (the peer sends
    // every path it has) must be ineligible (RFC 4271 section 9.1.2).
    let entries = bgpd.route_entries("loc", prefix)?;
    for e in &entries {
        let path = e.get("as_path").and_then(Value::as_str).unwrap_or_default();
        let looped = path.split_whitespace().any(|a| a == AS_B.to_string());
        let reason = e.get("not_best_reason").and_then(Value::as_str);
        if looped && (usable(e) || reason != Some("routing loop")) {
            return Err(Error::Check(format!(
                "bgpd accepts a path of {prefix} with its own AS {AS_B}: {e}"
            )));
        }
    }
    crate::say(&format!(
        "add_path: bgpd holds {prefix} from {} as (AS path, path id) {ids:?}",
        ps.label()
    ));

    // The peer receives both of bgpd's paths.
    let want_at_p: Vec<Vec<u32>> = UPSTREAMS.iter().map(|u| vec![AS_B, *u]).collect();
    let mut shown = Vec::new();
    wait_for(
        &format!("{} to hold both of bgpd's paths of {prefix}", ps.label()),
        TIMEOUT,
        || {
            ps.check_running()?;
            let routes = ps.routes(fam)?;
            let paths: Vec<&Vec<u32>> = routes
                .iter()
                .filter(|r| r.prefix == prefix && r.learned)
                .map(|r| &r.as_path)
                .collect();
            Ok(if want_at_p.iter().all(|w| paths.contains(&w)) {
                shown = paths.into_iter().cloned().collect();
                Ok(())
            } else {
                Err(format!("paths of {prefix}: {paths:?}"))
            })
        },
    )?;
    crate::say(&format!(
        "add_path: {} holds {prefix} with AS paths {shown:?}",
        ps.label()
    ));
    bgpd.check_running()
}

/// Route refresh between bgpd (node b, AS 65010) and `kind` (node p, AS
/// 65020), IPv4. The peer announces side 1's IPv4 route (203.0.113.0/24) and
/// 192.0.2.0/24; bgpd announces side 0's (198.51.100.0/24) and starts with
/// an import policy rejecting 192.0.2.0/24.
///
/// 1. bgpd has 203.0.113.0/24, and 192.0.2.0/24 only in its Adj-RIB-In.
/// 2. A reload whose import policy accepts everything makes 192.0.2.0/24
///    appear in the Loc-RIB, with the session never reset
///    (`established_transitions` unchanged).
/// 3. The peer's CLI asks bgpd for a refresh (where it can, see
///    [`Peer::request_refresh`]): bgpd counts a ROUTE-REFRESH received and
///    sends UPDATEs again; a route bgpd announces afterwards
///    (198.51.100.128/25, by reload) reaches the peer, and then the peer
///    still holds 198.51.100.0/24 with its attributes.
/// 4. bgpd asks the peer for a refresh (reload with `next_hop = "self"`,
///    which for eBGP changes nothing sent): bgpd receives UPDATEs again,
///    the peer counts the ROUTE-REFRESH where its CLI shows counters (GoBGP,
///    FRR), and bgpd holds all of the peer's routes; the session was never
///    reset.
pub fn route_refresh(t: &Test, kind: Kind) -> Result<()> {
    const AS_B: u32 = 65010;
    const AS_P: u32 = 65020;
    let fam = Family::Ipv4;
    let rejected = v4(192, 0, 2, 0, 24);
    let later = v4(198, 51, 100, 128, 25);
    let seg = Segment::new(t)?;
    let nb = Node::new(t, &seg, "b", 1)?;
    let np = Node::new(t, &seg, "p", 2)?;
    let v4_only = |side: u8| -> Vec<Announce> {
        announcements(side, false)
            .into_iter()
            .filter(|a| Family::of_net(&a.prefix) == fam)
            .collect()
    };
    let (ann_b, mut ann_p) = (v4_only(0), v4_only(1));
    // A MED of its own: FRR sends MED 0 for a `network` without route-map.
    let mut r = Announce::new(rejected);
    r.med = Some(5);
    ann_p.push(r);
    let mut cb = SpeakerConfig::new(nb.v4, AS_B);
    cb.neighbors
        .push(Neighbor::new(np.addr(fam), nb.addr(fam), AS_P));
    cb.announce = ann_b.clone();
    let mut cp = SpeakerConfig::new(np.v4, AS_P);
    cp.neighbors
        .push(Neighbor::new(nb.addr(fam), np.addr(fam), AS_B));
    cp.announce = ann_p.clone();

    let socket = t.subdir("bgpd-b")?.join("bgpd.sock");
    let bgpd = Bgpd::start_with_config(
        t,
        &nb,
        "bgpd-b",
        &config_with(
            &cb,
            &socket,
            &Options {
                import_reject: vec![rejected],
                ..Options::default()
            },
        ),
        &socket,
    )?;
    let peer = Peer::start(kind, t, &np, &format!("{}-p", kind.name()), &cp)?;
    let ps = peer.speaker();
    wait_established(&bgpd, np.addr(fam), TIMEOUT)?;
    wait_established(ps, nb.addr(fam), TIMEOUT)?;
    let accepted: Vec<Announce> = ann_p
        .iter()
        .filter(|a| a.prefix != rejected)
        .cloned()
        .collect();
    check_received(&bgpd, &accepted, &np, AS_P, false)?;
    check_received(ps, &ann_b, &nb, AS_B, false)?;

    // 1. Rejected by import policy: in the Adj-RIB-In, not in the Loc-RIB.
    wait_for(
        &format!("bgpd's Adj-RIB-In to hold {rejected}"),
        TIMEOUT,
        || {
            let n = bgpd.route_entries("in", rejected)?.len();
            Ok(if n > 0 {
                Ok(())
            } else {
                Err("absent".to_string())
            })
        },
    )?;
    // bgpd's Loc-RIB view lists rejected paths too, marked as such.
    let loc = bgpd.route_entries("loc", rejected)?;
    if loc.iter().any(usable) {
        return Err(Error::Check(format!(
            "bgpd's import policy rejects {rejected}, yet its Loc-RIB uses it: {}",
            Value::from(loc)
        )));
    }

    // 2. The policy changes: the route is taken without a session reset.
    let transitions = bgpd.peer_counter(np.addr(fam), "established_transitions")?;
    bgpd.reconfigure(&config(&cb, &socket))?;
    wait_for(
        &format!("bgpd to use {rejected} after the policy change"),
        TIMEOUT,
        || {
            bgpd.check_running()?;
            let loc = bgpd.route_entries("loc", rejected)?;
            let want = Some(AS_P.to_string());
            Ok(
                if loc.iter().any(|e| {
                    usable(e)
                        && e.get("as_path").and_then(Value::as_str).map(str::to_string) == want
                }) {
                    Ok(())
                } else {
                    Err(format!("Loc-RIB entries: {}", Value::from(loc)))
                },
            )
        },
    )?;
    let now = bgpd.peer_counter(np.addr(fam), "established_transitions")?;
    if now != transitions {
        return Err(Error::Check(format!(
            "the import policy change reset the session to {} (established {transitions} -> {now} times)",
            ps.label()
        )));
    }

    // 3. The peer asks bgpd to send its routes again.
    let refreshes = bgpd.peer_counter(np.addr(fam), "route_refresh_received")?;
    let updates = bgpd.peer_counter(np.addr(fam), "updates_sent")?;
    let said = peer.request_refresh(nb.addr(fam))?;
    let peer_sent = said.is_some();
    if let Some(said) = said {
        refresh_answered(&bgpd, ps, np.addr(fam), refreshes, updates, &said)?;
    }
    // A route announced now: once it is at the peer, every message bgpd sent
    // before it (a refresh answer, an End-of-RIB-Refresh) has been processed.
    let mut cb2 = cb.clone();
    cb2.announce.push(Announce::new(later));
    bgpd.reconfigure(&config(&cb2, &socket))?;
    wait_route(ps, later, TIMEOUT)?;
    check_received(ps, &ann_b, &nb, AS_B, false)?;

    // 4. bgpd asks the peer: a changed `next_hop` setting re-adds the peer
    //    to the RIB and sends it a ROUTE-REFRESH (docs/config.md, Reloading).
    //    The peer must answer: bgpd's UPDATE counter grows, the peer counts
    //    the ROUTE-REFRESH where its CLI shows counters, and bgpd holds all
    //    of the peer's routes again.
    let received = bgpd.peer_counter(np.addr(fam), "updates_received")?;
    let peer_refreshes = peer.refreshes_received(nb.addr(fam))?;
    let options = Options {
        next_hop: Some("self".to_string()),
        ..Options::default()
    };
    bgpd.reconfigure(&config_with(&cb2, &socket, &options))?;
    wait_for(
        &format!("{} to answer bgpd's ROUTE-REFRESH with UPDATEs", ps.label()),
        TIMEOUT,
        || {
            bgpd.check_running()?;
            let n = bgpd.peer_counter(np.addr(fam), "updates_received")?;
            Ok(if n > received {
                Ok(())
            } else {
                Err(format!("updates_received still {n}"))
            })
        },
    )?;
    if let Some(before) = peer_refreshes {
        wait_for(
            &format!("{} to count bgpd's ROUTE-REFRESH", ps.label()),
            TIMEOUT,
            || {
                let n = peer.refreshes_received(nb.addr(fam))?.unwrap_or(0);
                Ok(if n > before {
                    Ok(())
                } else {
                    Err(format!("still {n}"))
                })
            },
        )?;
    }
    check_received(&bgpd, &ann_p, &np, AS_P, false)?;
    // The operator's view of the counters agrees.
    let detail = bgpd.bgpctl_json(&["show", "peer", &crate::bgpd::peer_name(np.addr(fam))])?;
    let counted = detail
        .pointer("/counters/route_refresh_received")
        .and_then(Value::as_u64);
    if counted < Some(refreshes) || (peer_sent && counted <= Some(refreshes)) {
        return Err(Error::Check(format!(
            "bgpctl show peer counts {counted:?} ROUTE-REFRESH from {} (before its request: {refreshes}): {detail}",
            ps.label()
        )));
    }
    let peers = bgpd.peers()?;
    if !peers
        .iter()
        .any(|p| p.address == np.addr(fam) && p.established)
    {
        return Err(Error::Check(format!(
            "bgpd's session to {} is not Established after the refreshes: {peers:?}",
            ps.label()
        )));
    }
    let now = bgpd.peer_counter(np.addr(fam), "established_transitions")?;
    if now != transitions {
        return Err(Error::Check(format!(
            "the session to {} was reset during the refreshes (established {transitions} -> {now} times)",
            ps.label()
        )));
    }
    bgpd.check_running()
}

/// Waits until bgpd counted a ROUTE-REFRESH from `peer` beyond `refreshes`
/// and sent UPDATEs beyond `updates` (its answer).
fn refresh_answered(
    bgpd: &Bgpd,
    ps: &dyn Speaker,
    peer: IpAddr,
    refreshes: u64,
    updates: u64,
    said: &str,
) -> Result<()> {
    wait_for(
        &format!("bgpd to count a ROUTE-REFRESH from {}", ps.label()),
        TIMEOUT,
        || {
            bgpd.check_running()?;
            let n = bgpd.peer_counter(peer, "route_refresh_received")?;
            Ok(if n > refreshes {
                Ok(())
            } else {
                Err(format!(
                    "route_refresh_received still {n}; the peer's CLI said: {said}"
                ))
            })
        },
    )?;
    wait_for(
        &format!("bgpd to answer {}'s ROUTE-REFRESH with UPDATEs", ps.label()),
        TIMEOUT,
        || {
            let n = bgpd.peer_counter(peer, "updates_sent")?;
            Ok(if n > updates {
                Ok(())
            } else {
                Err(format!("updates_sent still {n}"))
            })
        },
    )
}

/// The pair exchange (IPv4 and IPv6 sessions, routes with attributes both
/// ways) between bgpd (AS 4200000001) and `kind` (AS 4200000002), eBGP:
/// each side's CLI must show the other's routes with AS path `[its 4-octet
/// AS]`, and bgpd must have received the peer's AS in the 4-octet AS
/// capability (RFC 6793 section 3).
pub fn four_octet_as(t: &Test, kind: Kind) -> Result<()> {
    const AS_B: u32 = 4_200_000_001;
    const AS_P: u32 = 4_200_000_002;
    let seg = Segment::new(t)?;
    let nb = Node::new(t, &seg, "b", 1)?;
    let np = Node::new(t, &seg, "p", 2)?;
    let (ann_b, ann_p) = (announcements(0, false), announcements(1, false));
    let bgpd = Bgpd::start(
        t,
        &nb,
        "bgpd-b",
        &speaker_config(&nb, &np, AS_B, AS_P, ann_b.clone()),
    )?;
    let peer = Peer::start(
        kind,
        t,
        &np,
        &format!("{}-p", kind.name()),
        &speaker_config(&np, &nb, AS_P, AS_B, ann_p.clone()),
    )?;
    let ps = peer.speaker();
    for fam in [Family::Ipv4, Family::Ipv6] {
        wait_established(&bgpd, np.addr(fam), TIMEOUT)?;
        wait_established(ps, nb.addr(fam), TIMEOUT)?;
        let detail = bgpd.show_peer(np.addr(fam))?;
        let want = format!("FourOctetAs({AS_P})");
        let received = detail
            .get("capabilities_received")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|x| x.as_str() == Some(want.as_str())));
        if !received {
            return Err(Error::Check(format!(
                "bgpd did not receive {want} from {}: {detail}",
                ps.label()
            )));
        }
    }
    check_received(ps, &ann_b, &nb, AS_B, false)?;
    check_received(&bgpd, &ann_p, &np, AS_P, false)?;
    Ok(())
}

/// Extended next hop (RFC 8950) between bgpd (node b, AS 65010) and `kind`
/// (node p, AS 65020): one eBGP session over IPv6 carrying IPv6 unicast and,
/// with the capability on both sides, IPv4 unicast. Each side originates
/// its pair routes (one IPv4, one IPv6 prefix with MED and communities):
/// - bgpd's `show_peer` has the peer's capability for IPv4 unicast with IPv6
///   next hops, and IPv4 unicast among the negotiated families;
/// - each side's CLI shows the other's IPv4 route with the other's IPv6
///   address as next hop (RFC 8950 section 3) and the attributes intact, and
///   its IPv6 route as usual.
pub fn extended_next_hop(t: &Test, kind: Kind) -> Result<()> {
    const AS_B: u32 = 65010;
    const AS_P: u32 = 65020;
    let seg = Segment::new(t)?;
    let nb = Node::new(t, &seg, "b", 1)?;
    let np = Node::new(t, &seg, "p", 2)?;
    let fam = Family::Ipv6;
    let (ann_b, ann_p) = (announcements(0, false), announcements(1, false));
    let config_for = |me: &Node, peer: &Node, asn: u32, peer_asn: u32, ann: &[Announce]| {
        let mut c = SpeakerConfig::new(me.v4, asn);
        let mut n = Neighbor::new(peer.addr(fam), me.addr(fam), peer_asn);
        n.extended_next_hop = true;
        c.neighbors.push(n);
        c.announce = ann.to_vec();
        c
    };
    let bgpd = Bgpd::start(t, &nb, "bgpd-b", &config_for(&nb, &np, AS_B, AS_P, &ann_b))?;
    let peer = Peer::start(
        kind,
        t,
        &np,
        &format!("{}-p", kind.name()),
        &config_for(&np, &nb, AS_P, AS_B, &ann_p),
    )?;
    let ps = peer.speaker();
    wait_established(&bgpd, np.addr(fam), TIMEOUT)?;
    wait_established(ps, nb.addr(fam), TIMEOUT)?;
    check_extended_next_hop(&bgpd, np.addr(fam), ps.label())?;
    let v4 = |ann: &[Announce]| -> Vec<Announce> {
        ann.iter()
            .filter(|a| Family::of_net(&a.prefix) == Family::Ipv4)
            .cloned()
            .collect()
    };
    let v6 = |ann: &[Announce]| -> Vec<Announce> {
        ann.iter()
            .filter(|a| Family::of_net(&a.prefix) == Family::Ipv6)
            .cloned()
            .collect()
    };
    check_received_via(&bgpd, &v4(&ann_p), &np, Some(fam), AS_P, false)?;
    check_received_via(ps, &v4(&ann_b), &nb, Some(fam), AS_B, false)?;
    check_received(&bgpd, &v6(&ann_p), &np, AS_P, false)?;
    check_received(ps, &v6(&ann_b), &nb, AS_B, false)?;
    for (who, ann) in [(&bgpd as &dyn Speaker, &ann_p), (ps, &ann_b)] {
        for a in v4(ann) {
            let r = wait_route(who, a.prefix, TIMEOUT)?;
            crate::say(&format!(
                "extended_next_hop: {} has {} via {:?}",
                who.label(),
                a.prefix,
                r.next_hop
            ));
        }
    }
    bgpd.check_running()
}

/// Extended next hop (RFC 8950) between bgpd (node b, AS 65010) and ExaBGP
/// (node p, AS 65020) over one IPv6 eBGP session carrying IPv4 and IPv6
/// unicast; ExaBGP announces its IPv4 route with its IPv6 session address as
/// next hop (`capability { nexthop true; }`, `nexthop { ipv4 unicast ipv6;
/// }`). Each side originates its pair routes (one IPv4, one IPv6 prefix with
/// MED and communities):
/// - bgpd's `show_peer` has ExaBGP's capability for IPv4 unicast with IPv6
///   next hops, and IPv4 unicast among the negotiated families;
/// - bgpd shows ExaBGP's IPv4 route with ExaBGP's IPv6 address as next hop
///   and the attributes intact, and selects it (usable: the next hop is on
///   the shared segment);
/// - bgpd (with a `[kernel.export]` section) installs that route in its
///   node's kernel as `PREFIX via inet6 ADDR proto bird` (RTA_VIA);
/// - ExaBGP's received UPDATEs (its JSON API) carry bgpd's IPv4 route in
///   IPv4 unicast with bgpd's IPv6 address as next hop (RFC 8950 section 3),
///   attributes intact; the IPv6 routes cross as usual.
pub fn extended_next_hop_with_exabgp(t: &Test) -> Result<()> {
    const AS_B: u32 = 65010;
    const AS_P: u32 = 65020;
    let seg = Segment::new(t)?;
    let nb = Node::new(t, &seg, "b", 1)?;
    let np = Node::new(t, &seg, "p", 2)?;
    let fam = Family::Ipv6;
    let (ann_b, ann_p) = (announcements(0, false), announcements(1, false));
    let config_for = |me: &Node, peer: &Node, asn: u32, peer_asn: u32, ann: &[Announce]| {
        let mut c = SpeakerConfig::new(me.v4, asn);
        let mut n = Neighbor::new(peer.addr(fam), me.addr(fam), peer_asn);
        n.extended_next_hop = true;
        c.neighbors.push(n);
        c.announce = ann.to_vec();
        c
    };
    // bgpd installs what it selects in its node's kernel (protocol 12).
    let socket = t.subdir("bgpd-b")?.join("bgpd.sock");
    let text = format!(
        "{}\n[kernel.export]\nprotocol = 12\n",
        config(&config_for(&nb, &np, AS_B, AS_P, &ann_b), &socket)
    );
    let bgpd = Bgpd::start_with_config(t, &nb, "bgpd-b", &text, &socket)?;
    let exa = crate::ExaBgp::start(
        t,
        &np,
        "exabgp-p",
        &config_for(&np, &nb, AS_P, AS_B, &ann_p),
    )?;
    wait_established(&bgpd, np.addr(fam), TIMEOUT)?;
    wait_established(&exa, nb.addr(fam), TIMEOUT)?;
    check_extended_next_hop(&bgpd, np.addr(fam), "exabgp-p")?;
    let of = |ann: &[Announce], f: Family| -> Vec<Announce> {
        ann.iter()
            .filter(|a| Family::of_net(&a.prefix) == f)
            .cloned()
            .collect()
    };
    check_received_via(
        &bgpd,
        &of(&ann_p, Family::Ipv4),
        &np,
        Some(fam),
        AS_P,
        false,
    )?;
    check_received_via(&exa, &of(&ann_b, Family::Ipv4), &nb, Some(fam), AS_B, false)?;
    check_received(&bgpd, &of(&ann_p, Family::Ipv6), &np, AS_P, false)?;
    check_received(&exa, &of(&ann_b, Family::Ipv6), &nb, AS_B, false)?;
    for a in of(&ann_p, Family::Ipv4) {
        let entries = bgpd.route_entries("loc", a.prefix)?;
        if !entries.iter().any(usable) {
            return Err(Error::Check(format!(
                "bgpd holds {} from exabgp-p but not as a usable path: {entries:?}",
                a.prefix
            )));
        }
    }
    // The kernel route: IPv4 prefix, IPv6 gateway (RTA_VIA, `via inet6`).
    let gw = np.addr(fam).to_string();
    for a in of(&ann_p, Family::Ipv4) {
        let dst = a.prefix.to_string();
        wait_for(
            &format!("{dst} via inet6 {gw} in b's kernel"),
            TIMEOUT,
            || {
                let text = nb.ns.ip(&["-j", "-4", "route", "show", &dst])?;
                let routes: Value = serde_json::from_str(&text)
                    .map_err(|e| Error::parse("ip -j route", format!("{e}: {text}")))?;
                let found = routes.as_array().is_some_and(|rs| {
                    rs.iter().any(|r| {
                        r.pointer("/via/family").and_then(Value::as_str) == Some("inet6")
                            && r.pointer("/via/host").and_then(Value::as_str) == Some(gw.as_str())
                            && matches!(
                                r.get("protocol").and_then(Value::as_str),
                                Some("bird" | "12")
                            )
                    })
                });
                Ok(if found { Ok(()) } else { Err(text) })
            },
        )?;
    }
    for (who, ann) in [(&bgpd as &dyn Speaker, &ann_p), (&exa, &ann_b)] {
        for a in of(ann, Family::Ipv4) {
            let r = wait_route(who, a.prefix, TIMEOUT)?;
            crate::say(&format!(
                "extended_next_hop_with_exabgp: {} has {} via {:?}",
                who.label(),
                a.prefix,
                r.next_hop
            ));
        }
    }
    exa.check_running()?;
    bgpd.check_running()
}

/// ADD-PATH with path identifiers chosen by the sender: ExaBGP (node a, AS
/// 65020, ADD-PATH send) announces 192.0.2.0/24 twice, with path ids 1 and
/// 2 and MEDs 10 and 20, to bgpd (node b, AS 65010, ADD-PATH receive).
/// bgpd must show ADD-PATH negotiated for receiving only, and both paths
/// with exactly those ids and MEDs (`bgpctl --json show routes`), the MED 10
/// one best (RFC 4271 section 9.1.2.2 c, same neighbor AS).
pub fn add_path_from_exabgp(t: &Test) -> Result<()> {
    const AS_B: u32 = 65010;
    const AS_A: u32 = 65020;
    let fam = Family::Ipv4;
    let prefix = v4(192, 0, 2, 0, 24);
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let mut cb = SpeakerConfig::new(nb.v4, AS_B);
    let mut n = Neighbor::new(na.addr(fam), nb.addr(fam), AS_A);
    n.add_path = AddPath::Receive;
    cb.neighbors.push(n);
    let mut ca = SpeakerConfig::new(na.v4, AS_A);
    let mut n = Neighbor::new(nb.addr(fam), na.addr(fam), AS_B);
    n.add_path = AddPath::Send;
    ca.neighbors.push(n);
    let want: [(u64, u64); 2] = [(1, 10), (2, 20)];
    let statements: Vec<String> = want
        .iter()
        .map(|(id, med)| {
            format!("route {prefix} next-hop self origin igp med {med} path-information 0.0.0.{id}")
        })
        .collect();
    let bgpd = Bgpd::start(t, &nb, "bgpd-b", &cb)?;
    let exa = crate::ExaBgp::start_with_static(t, &na, "exabgp-a", &ca, &statements)?;
    wait_established(&exa, nb.addr(fam), TIMEOUT)?;
    wait_established(&bgpd, na.addr(fam), TIMEOUT)?;
    let detail = bgpd.show_peer(na.addr(fam))?;
    let seen = bgpd_add_path(&detail);
    if !seen.receives || seen.sends {
        return Err(Error::Check(format!(
            "bgpd should receive but not send several paths with exabgp-a: {seen:?}; show_peer: {detail}"
        )));
    }
    let name = crate::bgpd::peer_name(na.addr(fam));
    let mut got: Vec<(u64, u64, bool)> = Vec::new();
    wait_for(
        &format!("bgpd to hold {prefix} with path ids 1 and 2"),
        TIMEOUT,
        || {
            exa.check_running()?;
            let answer =
                bgpd.bgpctl_json(&["show", "routes", &prefix.to_string(), "--peer", &name])?;
            got = answer
                .get("routes")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|e| {
                    Some((
                        e.get("path_id")?.as_u64()?,
                        e.get("med")?.as_u64()?,
                        usable(e),
                    ))
                })
                .collect();
            got.sort_unstable();
            let ids: Vec<(u64, u64)> = got.iter().map(|(i, m, _)| (*i, *m)).collect();
            Ok(if ids == want {
                Ok(())
            } else {
                Err(format!("(path id, MED, best): {got:?}; answer: {answer}"))
            })
        },
    )?;
    if got.iter().map(|(_, _, best)| *best).collect::<Vec<_>>() != [true, false] {
        return Err(Error::Check(format!(
            "bgpd should prefer the MED 10 path of {prefix}: (path id, MED, best) {got:?}"
        )));
    }
    crate::say(&format!(
        "add_path_from_exabgp: bgpd holds {prefix} as (path id, MED, best) {got:?}"
    ));
    bgpd.check_running()
}

/// ExaBGP (node a, AS 65020) asks bgpd (node b, AS 65010) for a refresh of
/// IPv4 unicast with `announce route-refresh ipv4 unicast` (for the
/// peer-sent direction GoBGP's CLI cannot exercise): bgpd must count the
/// ROUTE-REFRESH, send UPDATEs again, and ExaBGP must receive
/// 198.51.100.0/24 once more, with its attributes intact.
pub fn route_refresh_from_exabgp(t: &Test) -> Result<()> {
    const AS_B: u32 = 65010;
    const AS_A: u32 = 65020;
    let fam = Family::Ipv4;
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let ann_b: Vec<Announce> = announcements(0, false)
        .into_iter()
        .filter(|a| Family::of_net(&a.prefix) == fam)
        .collect();
    let mut cb = SpeakerConfig::new(nb.v4, AS_B);
    cb.neighbors
        .push(Neighbor::new(na.addr(fam), nb.addr(fam), AS_A));
    cb.announce = ann_b.clone();
    let mut ca = SpeakerConfig::new(na.v4, AS_A);
    ca.neighbors
        .push(Neighbor::new(nb.addr(fam), na.addr(fam), AS_B));
    let bgpd = Bgpd::start(t, &nb, "bgpd-b", &cb)?;
    let exa = crate::ExaBgp::start(t, &na, "exabgp-a", &ca)?;
    wait_established(&exa, nb.addr(fam), TIMEOUT)?;
    wait_established(&bgpd, na.addr(fam), TIMEOUT)?;
    check_received(&exa, &ann_b, &nb, AS_B, false)?;
    let mut before = Vec::new();
    for a in &ann_b {
        before.push(exa.announcements_of(a.prefix)?);
    }
    let refreshes = bgpd.peer_counter(na.addr(fam), "route_refresh_received")?;
    let updates = bgpd.peer_counter(na.addr(fam), "updates_sent")?;
    exa.request_refresh()?;
    refresh_answered(
        &bgpd,
        &exa,
        na.addr(fam),
        refreshes,
        updates,
        "announce route-refresh ipv4 unicast",
    )?;
    for (a, n) in ann_b.iter().zip(before) {
        wait_for(
            &format!("exabgp-a to receive {} again", a.prefix),
            TIMEOUT,
            || {
                let now = exa.announcements_of(a.prefix)?;
                Ok(if now > n {
                    Ok(())
                } else {
                    Err(format!("announced {now} times"))
                })
            },
        )?;
    }
    check_received(&exa, &ann_b, &nb, AS_B, false)?;
    bgpd.check_running()
}

/// bgpd received the peer's extended next hop capability for IPv4 unicast over
/// IPv6 (RFC 8950 4) and negotiated IPv4 unicast on that session.
fn check_extended_next_hop(bgpd: &Bgpd, peer: IpAddr, label: &str) -> Result<()> {
    let detail = bgpd.show_peer(peer)?;
    let strings = |key: &str| -> Vec<String> {
        detail
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let enhe = "(Family { afi: Afi(1), safi: Safi(1) }, Afi(2))";
    let received = strings("capabilities_received")
        .iter()
        .any(|c| c.starts_with("ExtendedNextHop") && c.contains(enhe));
    let families = strings("families");
    if !received || !families.iter().any(|f| f == "ipv4-unicast") {
        return Err(Error::Check(format!(
            "bgpd shows no extended next hop for IPv4 unicast with {label}: {detail}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A speaker on 10.0.0.1/fd00::1 with an ADD-PATH IPv4 session and an
    /// IPv6 session carrying IPv4 by extended next hop.
    fn feature_config() -> SpeakerConfig {
        let mut cfg = SpeakerConfig::new("10.0.0.1".parse().unwrap(), 65010);
        let mut a = Neighbor::new(
            "10.0.0.2".parse().unwrap(),
            "10.0.0.1".parse().unwrap(),
            65020,
        );
        a.add_path = AddPath::Both;
        cfg.neighbors.push(a);
        let mut b = Neighbor::new(
            "fd00::2".parse().unwrap(),
            "fd00::1".parse().unwrap(),
            65020,
        );
        b.extended_next_hop = true;
        cfg.neighbors.push(b);
        cfg
    }

    #[test]
    fn launchers_render_add_path_and_extended_next_hop() {
        let cfg = feature_config();
        let options = Options {
            import_reject: vec!["192.0.2.0/24".parse().unwrap()],
            next_hop: Some("self".into()),
        };
        let b = config_with(&cfg, std::path::Path::new("/tmp/s"), &options);
        let doc: toml::Value = toml::from_str(&b).unwrap_or_else(|e| panic!("{e}\n{b}"));
        let p4 = &doc["peers"]["Peer_10_0_0_2"];
        assert_eq!(p4["add_path"].as_str(), Some("both"), "{b}");
        assert_eq!(p4["next_hop"].as_str(), Some("self"), "{b}");
        assert_eq!(p4["import"][0].as_str(), Some("ix-import"), "{b}");
        let p6 = &doc["peers"]["Peer_fd00__2"];
        assert_eq!(p6["extended_next_hop"].as_bool(), Some(true), "{b}");
        assert_eq!(p6["families"].as_array().map(Vec::len), Some(2), "{b}");
        let rules = &doc["policies"]["ix-import"]["rules"][0];
        assert_eq!(rules["action"].as_str(), Some("reject"), "{b}");
        assert_eq!(
            rules["match"]["prefix_in"][0]["prefix"].as_str(),
            Some("192.0.2.0/24"),
            "{b}"
        );
        assert!(!config(&cfg, std::path::Path::new("/tmp/s")).contains("ix-import"));

        let bird = crate::bird::config(&cfg);
        assert!(
            bird.contains("export filter ix_export; add paths on; }"),
            "{bird}"
        );
        assert!(bird.contains("extended next hop on;"), "{bird}");

        let frr = crate::frr::config("frr", &cfg);
        assert!(
            frr.contains("neighbor 10.0.0.2 addpath-tx-all-paths"),
            "{frr}"
        );
        assert!(
            frr.contains("neighbor fd00::2 capability extended-nexthop"),
            "{frr}"
        );
        let v4 = frr
            .split(" address-family ipv4 unicast")
            .nth(1)
            .and_then(|s| s.split("exit-address-family").next())
            .unwrap_or_default();
        assert!(v4.contains("neighbor fd00::2 activate"), "{frr}");

        let gobgp = crate::gobgp::config(&cfg);
        let doc: toml::Value = toml::from_str(&gobgp).unwrap_or_else(|e| panic!("{e}\n{gobgp}"));
        let n = &doc["neighbors"][0];
        assert_eq!(n["add-paths"]["config"]["receive"].as_bool(), Some(true));
        assert_eq!(n["add-paths"]["config"]["send-max"].as_integer(), Some(8));
        assert_eq!(
            doc["neighbors"][1]["afi-safis"].as_array().map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn parses_gobgp_refresh_counter() {
        let text = "  Message statistics:
                         Sent       Rcvd
    Opens:                  1          1
    Route Refresh:          0          2
";
        assert_eq!(gobgp_refresh_received(text), Some(2));
        assert_eq!(gobgp_refresh_received("nothing"), None);
    }

    #[test]
    fn parses_bird_add_path() {
        let text = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
p_10_0_0_1 BGP        ---        up     15:10:00.000  Established
  BGP state:          Established
    Neighbor address: 10.0.0.1
    Local capabilities
      Multiprotocol
        AF announced: ipv4
      Route refresh
      ADD-PATH
        RX: ipv4
        TX: ipv4
      Enhanced refresh
    Neighbor capabilities
      Multiprotocol
        AF announced: ipv4
      ADD-PATH
        RX: ipv4
        TX:
      Enhanced refresh
    Session:          external AS4
  Channel ipv4
    State:          UP
";
        assert_eq!(
            bird_add_path(text),
            AddPathSeen {
                sends: true,
                receives: false
            }
        );
        assert_eq!(
            bird_add_path("no capabilities"),
            AddPathSeen {
                sends: false,
                receives: false
            }
        );
    }

    #[test]
    fn parses_gobgp_add_path() {
        let text = "BGP neighbor is 10.0.0.1, remote AS 65010
  Neighbor capabilities:
    multiprotocol:
        ipv4-unicast:\tadvertised and received
    route-refresh:\tadvertised and received
    add-path:\tadvertised and received
      Local:
         ipv4-unicast:\treceive/send
      Remote:
         ipv4-unicast:\treceive
    enhanced-route-refresh:\tadvertised and received
";
        assert_eq!(
            gobgp_add_path(text),
            AddPathSeen {
                sends: true,
                receives: false
            }
        );
    }

    #[test]
    fn parses_frr_add_path() {
        let v: Value = serde_json::from_str(
            r#"{"10.0.0.1":{"neighborCapabilities":{"addPath":{"ipv4Unicast":
            {"txAdvertisedAndReceived":true,"rxAdvertisedAndReceived":true}}}}}"#,
        )
        .unwrap();
        let a = frr_add_path(&v, "10.0.0.1".parse().unwrap());
        assert!(a.sends && a.receives);
        let none = frr_add_path(&v, "10.0.0.9".parse().unwrap());
        assert!(!none.sends && !none.receives);
    }

    #[test]
    fn parses_bgpd_add_path() {
        let v = serde_json::json!({
            "capabilities_sent": ["RouteRefresh",
                "AddPath([(Family { afi: Afi(1), safi: Safi(1) }, Both)])"],
            "capabilities_received": ["AddPath([(Family { afi: Afi(2), safi: Safi(1) }, Both), (Family { afi: Afi(1), safi: Safi(1) }, Send)])"],
        });
        let a = bgpd_add_path(&v);
        assert!(!a.sends && a.receives);
    }
}
