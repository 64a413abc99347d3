//! The rules a configuration must follow that need no file positions, shared by the
//! file loader (which adds the file, line and column to the message) and
//! [`ConfigBuilder`](super::ConfigBuilder).

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::{GlobalConfig, PeerConfig};

/// Our own AS number and BGP identifier.
pub(super) fn identity(asn: u32, router_id: Ipv4Addr) -> Result<(), String> {
    if asn == 0 {
        return Err("asn 0 is reserved (RFC 7607)".into());
    }
    if router_id.is_unspecified() {
        return Err("router_id must not be 0.0.0.0 (RFC 6286)".into());
    }
    Ok(())
}

/// A route reflector client is an iBGP peer (RFC 4456).
pub(super) fn reflection(p: &PeerConfig, global: &GlobalConfig) -> Result<(), String> {
    if p.route_reflector_client && !p.is_ibgp(global) {
        return Err(format!(
            "peer {:?} is eBGP; route_reflector_client needs an iBGP peer (RFC 4456)",
            p.name
        ));
    }
    Ok(())
}

/// An originated route: a prefix without host bits, a next hop of its family. Returns the
/// prefix.
pub(super) fn originate(prefix: IpNet, next_hop: Option<IpAddr>) -> Result<IpNet, String> {
    let net = prefix.trunc();
    if net != prefix {
        return Err(format!(
            "prefix {prefix} has host bits set; did you mean {net}?"
        ));
    }
    if next_hop.is_some_and(|nh| nh.is_ipv4() != net.addr().is_ipv4()) {
        return Err(format!(
            "next_hop of {net} is not of the prefix's address family"
        ));
    }
    Ok(net)
}

/// Two peers at one endpoint ([`PeerConfig::endpoint`]).
pub(super) fn same_endpoint(p: &PeerConfig, other: &str) -> String {
    format!(
        "peer {:?} has the same address {} and port {} as peer {other:?}",
        p.name, p.address, p.port
    )
}

/// Semantic checks on a resolved peer that do not need the rest of the configuration.
pub(super) fn peer(p: &PeerConfig) -> Result<(), String> {
    if p.name.is_empty() {
        return Err("peer name must not be empty".into());
    }
    if p.hold_time != 0 && p.hold_time < 3 {
        // RFC 4271 section 4.2: zero or at least three seconds.
        return Err(format!(
            "hold_time {} is invalid: it must be 0 or at least 3 seconds (RFC 4271 4.2)",
            p.hold_time
        ));
    }
    if p.hold_time != 0 && p.keepalive >= p.hold_time {
        return Err(format!(
            "keepalive {} must be smaller than hold_time {}",
            p.keepalive, p.hold_time
        ));
    }
    if p.connect_retry == 0 {
        return Err("connect_retry must be at least 1 second".into());
    }
    if let Some(b) = &p.bfd {
        b.check()?;
    }
    if p.multihop == Some(0) {
        return Err("multihop must be between 1 and 255".into());
    }
    if let Some(src) = p.source_address {
        if src.is_ipv4() != p.address.addr.is_ipv4() {
            return Err(format!(
                "source_address {src} is not of the same family as the peer address {}",
                p.address
            ));
        }
    }
    if p.families.is_empty() {
        return Err("families must not be empty".into());
    }
    if p.remote_as == 0 || p.local_as == Some(0) {
        return Err("AS number 0 is reserved (RFC 7607)".into());
    }
    if p.password.as_ref().is_some_and(|pw| pw.len() > 80) {
        // TCP_MD5SIG_MAXKEYLEN on Linux.
        return Err("password is longer than 80 bytes (Linux TCP-MD5 limit)".into());
    }
    if p.max_prefixes.is_some_and(|m| m.limit == 0) {
        return Err("max_prefixes.limit must be at least 1".into());
    }
    if p.add_path_receive_limit == 0 {
        return Err("add_path_receive_limit must be at least 1".into());
    }
    Ok(())
}
