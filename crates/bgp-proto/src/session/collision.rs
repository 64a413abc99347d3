//! Connection collision detection (RFC 4271 6.8, RFC 6286 2.3).
//!
//! A [`Session`](super::Session) owns exactly one transport connection, so a collision
//! (both speakers connecting to each other at once) involves two sessions, and only the
//! caller sees both. Once it holds the peer's BGP Identifier (from the OPEN received on
//! either connection, see [`Session::peer_bgp_id`](super::Session::peer_bgp_id)), it asks
//! [`resolve_collision`] which connection survives and closes the other with
//! [`Session::collision_dump`](super::Session::collision_dump) (Cease, subcode 7).

use std::net::Ipv4Addr;

/// Which of two colliding connections to keep.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CollisionOutcome {
    /// Keep the connection we opened; dump the one the peer opened.
    KeepLocallyInitiated,
    /// Keep the connection the peer opened; dump the one we opened.
    KeepRemotelyInitiated,
}

/// RFC 4271 6.8: the connection opened by the speaker with the higher BGP Identifier
/// (compared as a 4-octet unsigned integer in host byte order) survives. RFC 6286 2.3:
/// when the identifiers are equal (only possible on eBGP), the connection opened by the
/// speaker with the larger AS survives. Identical identifier and AS cannot pass OPEN
/// validation; that case keeps the locally initiated connection.
pub fn resolve_collision(
    local_id: Ipv4Addr,
    local_as: u32,
    remote_id: Ipv4Addr,
    remote_as: u32,
) -> CollisionOutcome {
    let local = (u32::from(local_id), local_as);
    let remote = (u32::from(remote_id), remote_as);
    if local >= remote {
        CollisionOutcome::KeepLocallyInitiated
    } else {
        CollisionOutcome::KeepRemotelyInitiated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_identifier_keeps_its_own_connection() {
        let low = Ipv4Addr::new(10, 0, 0, 2);
        let high = Ipv4Addr::new(10, 0, 0, 10);
        assert_eq!(
            resolve_collision(high, 65000, low, 65000),
            CollisionOutcome::KeepLocallyInitiated
        );
        assert_eq!(
            resolve_collision(low, 65000, high, 65000),
            CollisionOutcome::KeepRemotelyInitiated
        );
    }

    #[test]
    fn identifiers_compare_as_integers_not_strings() {
        // "10.0.0.9" > "10.0.0.10" as strings, but not as integers.
        let nine = Ipv4Addr::new(10, 0, 0, 9);
        let ten = Ipv4Addr::new(10, 0, 0, 10);
        assert_eq!(
            resolve_collision(nine, 1, ten, 1),
            CollisionOutcome::KeepRemotelyInitiated
        );
        let a = Ipv4Addr::new(9, 255, 255, 255);
        let b = Ipv4Addr::new(10, 0, 0, 0);
        assert_eq!(
            resolve_collision(b, 1, a, 1),
            CollisionOutcome::KeepLocallyInitiated
        );
    }

    #[test]
    fn equal_identifiers_fall_back_to_as_number() {
        let id = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(
            resolve_collision(id, 65001, id, 65002),
            CollisionOutcome::KeepRemotelyInitiated
        );
        assert_eq!(
            resolve_collision(id, 65002, id, 65001),
            CollisionOutcome::KeepLocallyInitiated
        );
    }
}
