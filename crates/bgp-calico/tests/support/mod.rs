//! Test support of the Calico mode tests: a model of BIRD 1.6's configuration and filters
//! ([`bird`]), the candidate routes of a scenario ([`candidates`]) and the comparison of
//! BIRD's and bgpd's treatment of them ([`compare`]).
#![allow(dead_code)]

pub mod bird;
pub mod candidates;
pub mod compare;
