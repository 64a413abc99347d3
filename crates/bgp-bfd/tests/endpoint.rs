//! The endpoint's demultiplexing (RFC 5880 6.3, 6.8.6 steps 7-9; RFC 5881 3; RFC 5883
//! 3), discriminator allocation and its shared timer and transmit queue.

mod support;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use bgp_bfd::{
    Addresses, ControlPacket, Discard, Endpoint, EndpointError, Hops, PacketInfo, SessionConfig,
    State,
};
use support::*;

const PEER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
const LOCAL6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));

fn single(peer: IpAddr, interface: Option<u32>) -> Addresses {
    Addresses {
        peer,
        local: None,
        interface,
    }
}

fn info(source: IpAddr, interface: Option<u32>, multihop: bool) -> PacketInfo {
    PacketInfo {
        source,
        destination: None,
        interface,
        ttl: 255,
        multihop,
    }
}

fn multihop_config() -> SessionConfig {
    let mut c = config();
    c.hops = Hops::Multi { min_ttl: 254 };
    c
}

#[test]
fn discriminators_are_unique_non_zero_and_seeded() {
    let now = Instant::now();
    let ids = |seed| {
        let mut e = Endpoint::new(seed);
        (0..200u32)
            .map(|i| {
                let peer = IpAddr::from([10, 1, (i >> 8) as u8, i as u8]);
                e.add_session(now, single(peer, None), config()).unwrap()
            })
            .collect::<Vec<_>>()
    };
    let a = ids(5);
    let mut unique = a.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 200);
    assert_eq!(a, ids(5), "same seed, same discriminators");
    assert_ne!(a, ids(6));
}

#[test]
fn adding_checks_config_duplicates_and_multihop_local() {
    let now = Instant::now();
    let mut e = Endpoint::new(1);
    let id = e
        .add_session(now, single(ADDR_B, Some(2)), config())
        .unwrap();
    assert_eq!(
        e.add_session(now, single(ADDR_B, Some(2)), config()),
        Err(EndpointError::Duplicate(id))
    );
    // Another interface, or multihop, is another session.
    e.add_session(now, single(ADDR_B, Some(3)), config())
        .unwrap();
    assert_eq!(
        e.add_session(now, single(ADDR_B, None), multihop_config()),
        Err(EndpointError::MultihopWithoutLocal)
    );
    let mh = Addresses {
        peer: ADDR_B,
        local: Some(ADDR_A),
        interface: None,
    };
    e.add_session(now, mh, multihop_config()).unwrap();
    let mut bad = config();
    bad.detect_mult = 0;
    assert!(matches!(
        e.add_session(now, single(PEER6, None), bad),
        Err(EndpointError::Config(_))
    ));
    assert_eq!(e.len(), 3);
    assert!(e.remove_session(id).is_some());
    assert!(e.remove_session(id).is_none());
    assert_eq!(e.len(), 2);
    e.add_session(now, single(ADDR_B, Some(2)), config())
        .expect("the key is free again");
}

/// With Your Discriminator zero: single hop by source and interface (RFC 5881 3),
/// multihop by source and destination (RFC 5883 3), never across the two ports.
#[test]
fn zero_discriminator_is_matched_by_addresses() {
    let now = Instant::now();
    let mut e = Endpoint::new(1);
    let on2 = e
        .add_session(now, single(ADDR_B, Some(2)), config())
        .unwrap();
    let any = e.add_session(now, single(PEER6, None), config()).unwrap();
    let mh = e
        .add_session(
            now,
            Addresses {
                peer: ADDR_B,
                local: Some(ADDR_A),
                interface: None,
            },
            multihop_config(),
        )
        .unwrap();
    let down = peer_packet(State::Down, 0).encode();
    let bytes = down.as_bytes();
    assert_eq!(
        e.handle_datagram(now, &info(ADDR_B, Some(2), false), bytes),
        Ok(on2)
    );
    assert_eq!(
        e.handle_datagram(now, &info(ADDR_B, Some(3), false), bytes),
        Err(Discard::NoSession),
        "wrong interface"
    );
    assert_eq!(
        e.handle_datagram(now, &info(PEER6, Some(9), false), bytes),
        Ok(any)
    );
    let mut mh_info = info(ADDR_B, Some(2), true);
    mh_info.destination = Some(ADDR_A);
    assert_eq!(e.handle_datagram(now, &mh_info, bytes), Ok(mh));
    mh_info.destination = Some(LOCAL6);
    assert_eq!(
        e.handle_datagram(now, &mh_info, bytes),
        Err(Discard::NoSession),
        "wrong destination"
    );
    assert_eq!(
        e.handle_datagram(now, &info(PEER6, None, true), bytes),
        Err(Discard::NoSession),
        "single-hop peer on the multihop port"
    );
    assert_eq!(e.discarded(), 3);
}

/// With Your Discriminator set: that session, if the packet comes from its peer.
#[test]
fn discriminator_selects_the_session() {
    let now = Instant::now();
    let mut e = Endpoint::new(1);
    let a = e.add_session(now, single(ADDR_B, None), config()).unwrap();
    let b = e.add_session(now, single(PEER6, None), config()).unwrap();
    let up_to_b = peer_packet(State::Init, b.0.get()).encode();
    assert_eq!(
        e.handle_datagram(now, &info(PEER6, None, false), up_to_b.as_bytes()),
        Ok(b)
    );
    assert_eq!(e.session(b).map(|s| s.state()), Some(State::Up));
    assert_eq!(e.session(a).map(|s| s.state()), Some(State::Down));
    assert_eq!(
        e.handle_datagram(now, &info(ADDR_B, None, false), up_to_b.as_bytes()),
        Err(Discard::WrongPeer)
    );
    let unknown = peer_packet(State::Init, 0xdead).encode();
    assert_eq!(
        e.handle_datagram(now, &info(ADDR_B, None, false), unknown.as_bytes()),
        Err(Discard::UnknownDiscriminator(0xdead))
    );
    assert!(matches!(
        e.handle_datagram(now, &info(ADDR_B, None, false), &[0x20; 10]),
        Err(Discard::Malformed(_))
    ));
    // A session-level discard is reported and counted by the session.
    let mut low_ttl = info(PEER6, None, false);
    low_ttl.ttl = 1;
    assert_eq!(
        e.handle_datagram(now, &low_ttl, up_to_b.as_bytes()),
        Err(Discard::Ttl { ttl: 1, min: 255 })
    );
    assert_eq!(e.session(b).map(|s| s.stats().discarded), Some(1));
    assert_eq!(e.discarded(), 3, "wrong peer, unknown, malformed");
}

/// One timer and one transmit queue for every session; each packet carries the peer,
/// the port of its kind of hop and TTL 255.
#[test]
fn shared_timer_and_transmit_queue() {
    let now = Instant::now();
    let mut e = Endpoint::new(3);
    let s1 = e.add_session(now, single(ADDR_B, None), config()).unwrap();
    let s2 = e
        .add_session(
            now,
            Addresses {
                peer: PEER6,
                local: Some(LOCAL6),
                interface: None,
            },
            multihop_config(),
        )
        .unwrap();
    assert_eq!(e.poll_timeout(), Some(now));
    e.handle_timeout(now);
    let mut out = Vec::new();
    while let Some(t) = e.poll_transmit() {
        out.push(t);
    }
    assert_eq!(out.len(), 2);
    let t1 = out.iter().find(|t| t.session == s1).unwrap();
    assert_eq!(t1.destination, SocketAddr::new(ADDR_B, 3784));
    assert_eq!(t1.ttl, 255);
    let t2 = out.iter().find(|t| t.session == s2).unwrap();
    assert_eq!(t2.destination, SocketAddr::new(PEER6, 4784));
    assert_eq!(t2.source, Some(LOCAL6));
    let p = ControlPacket::decode(t2.packet.as_bytes()).unwrap();
    assert_eq!(p.my_discriminator, s2.0);
    assert_eq!(e.poll_timeout(), Some(now + ms(1000)));
    // Nothing is due before then.
    e.handle_timeout(now + ms(999));
    assert!(e.poll_transmit().is_none());
    // Commands go through `with_session` and their events come out of the endpoint.
    e.with_session(s1, |s| s.admin_down(now)).unwrap();
    let (id, ev) = e.poll_event().expect("state change");
    assert_eq!(id, s1);
    assert!(matches!(
        ev,
        bgp_bfd::SessionEvent::StateChanged {
            to: State::AdminDown,
            ..
        }
    ));
    // A removed session's timer and queue entries go with it.
    e.remove_session(s1);
    e.remove_session(s2);
    assert_eq!(e.poll_timeout(), None);
    assert!(e.poll_transmit().is_none());
    assert!(e.is_empty());
}
