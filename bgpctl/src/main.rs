//! bgpctl: inspect and control a running bgpd.

fn main() {}
