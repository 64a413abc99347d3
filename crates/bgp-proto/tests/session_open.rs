//! Bad OPENs over the wire: each is refused with the RFC 4271 6.2 (and RFC 5492, 6286,
//! 7607, 9234) NOTIFICATION, the session goes down, and the down reason says why.

mod session_support;

use std::net::Ipv4Addr;
use std::time::Instant;

use bgp_proto::session::{DownReason, Session, SessionConfig, State};
use bgp_proto::{capability_code, BgpRole, Capability, Message, Open};
use bytes::Bytes;
use session_support::*;

/// Feed `open` to a session in OpenSent built from `config`; return the NOTIFICATION
/// (code, subcode, data) it sent.
fn refuse(config: SessionConfig, open: Open) -> (u8, u8, Bytes) {
    let now = Instant::now();
    let mut s = Session::new(config);
    s.start(now);
    s.handle_connected(now);
    sent(&mut s);
    events(&mut s);
    s.handle_data(now, &encode_default(&Message::Open(open)));
    assert_eq!(s.state(), State::Idle);
    let msgs = sent(&mut s);
    let evs = events(&mut s);
    let n = match msgs.as_slice() {
        [bgp_proto::wire::Inbound::Notification(n)] => n.clone(),
        other => panic!("sent {other:?}"),
    };
    match downs(&evs).as_slice() {
        [DownReason::NotificationSent {
            notification,
            reason,
        }] => {
            assert_eq!(notification, &n);
            assert!(!reason.is_empty());
        }
        other => panic!("down {other:?}"),
    }
    (n.code, n.subcode, n.data)
}

fn code(r: (u8, u8, Bytes)) -> (u8, u8) {
    (r.0, r.1)
}

#[test]
fn unsupported_version_is_2_1() {
    let mut open = open_from_b();
    open.version = 5;
    let (c, s, data) = refuse(config_a(), open);
    assert_eq!((c, s), (2, 1));
    assert_eq!(&data[..], &[0, 4], "largest version we support");
}

#[test]
fn wrong_peer_as_is_2_2() {
    let mut open = open_from_b();
    open.capabilities = vec![Capability::FourOctetAs(65003)];
    assert_eq!(code(refuse(config_a(), open)), (2, 2));
}

#[test]
fn wrong_4_octet_peer_as_is_2_2() {
    let mut cfg = config_a();
    cfg.remote_as = Some(4_200_000_000);
    let mut open = open_from_b();
    open.my_as = bgp_proto::AS_TRANS;
    open.capabilities = vec![Capability::FourOctetAs(4_200_000_001)];
    assert_eq!(code(refuse(cfg, open)), (2, 2));
}

#[test]
fn peer_as_zero_is_2_2() {
    let mut cfg = config_a();
    cfg.remote_as = None;
    let mut open = open_from_b();
    open.my_as = 0;
    open.capabilities = vec![Capability::FourOctetAs(0)];
    assert_eq!(code(refuse(cfg, open)), (2, 2));
}

#[test]
fn bgp_identifier_zero_is_2_3() {
    let mut open = open_from_b();
    open.bgp_id = Ipv4Addr::UNSPECIFIED;
    assert_eq!(code(refuse(config_a(), open)), (2, 3));
}

#[test]
fn our_own_identifier_on_ibgp_is_2_3() {
    let mut cfg = config_a();
    cfg.remote_as = Some(AS_A);
    let mut open = open_from_b();
    open.my_as = AS_A as u16;
    open.capabilities = vec![Capability::FourOctetAs(AS_A)];
    open.bgp_id = ID_A;
    assert_eq!(code(refuse(cfg, open)), (2, 3));
}

#[test]
fn unsupported_optional_parameter_is_2_4() {
    let mut open = open_from_b();
    open.other_params = vec![(1, Bytes::from_static(&[0, 0]))];
    assert_eq!(code(refuse(config_a(), open)), (2, 4));
}

#[test]
fn hold_time_of_one_or_two_seconds_is_2_6() {
    for hold in [1, 2] {
        let mut open = open_from_b();
        open.hold_time = hold;
        assert_eq!(code(refuse(config_a(), open)), (2, 6));
    }
}

#[test]
fn missing_required_capability_is_2_7() {
    let mut cfg = config_a();
    cfg.capabilities.required = vec![capability_code::ADD_PATH];
    let (c, s, data) = refuse(cfg, open_from_b());
    assert_eq!((c, s), (2, 7));
    assert_eq!(&data[..], &[capability_code::ADD_PATH, 0]);
}

#[test]
fn role_mismatch_is_2_11() {
    let mut cfg = config_a();
    cfg.capabilities.role = Some(BgpRole::CUSTOMER);
    let mut open = open_from_b();
    open.capabilities.push(Capability::Role(BgpRole::CUSTOMER));
    assert_eq!(code(refuse(cfg.clone(), open)), (2, 11));

    // Strict mode: no role at all is refused too.
    cfg.capabilities.strict_role = true;
    assert_eq!(code(refuse(cfg, open_from_b())), (2, 11));
}

#[test]
fn matching_roles_are_accepted() {
    let now = Instant::now();
    let mut cfg = config_a();
    cfg.capabilities.role = Some(BgpRole::CUSTOMER);
    cfg.capabilities.strict_role = true;
    let mut open = open_from_b();
    open.capabilities.push(Capability::Role(BgpRole::PROVIDER));
    let mut s = Session::new(cfg);
    s.start(now);
    s.handle_connected(now);
    s.handle_data(now, &encode_default(&Message::Open(open)));
    assert_eq!(s.state(), State::OpenConfirm);
    assert_eq!(s.negotiated().unwrap().peer_role, Some(BgpRole::PROVIDER));
}

#[test]
fn any_peer_as_is_accepted_when_none_is_configured() {
    let now = Instant::now();
    let mut cfg = config_a();
    cfg.remote_as = None;
    let mut open = open_from_b();
    open.my_as = 64999;
    open.capabilities = vec![Capability::FourOctetAs(64999)];
    let mut s = Session::new(cfg);
    s.start(now);
    s.handle_connected(now);
    s.handle_data(now, &encode_default(&Message::Open(open)));
    assert_eq!(s.state(), State::OpenConfirm);
    assert_eq!(s.peer_as(), Some(64999));
}
