//! Routing Information Bases: Adj-RIB-In, Loc-RIB with the BGP decision process, route
//! reflection, policy and Adj-RIB-Out.

#![forbid(unsafe_code)]

pub mod policy;
