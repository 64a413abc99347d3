//! The per-peer BGP session finite-state machine (RFC 4271 section 8).
