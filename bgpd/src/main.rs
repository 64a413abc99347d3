//! bgpd: the BGP daemon.

fn main() {}
