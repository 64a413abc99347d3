//! The installer's reconciliation, tested without root against a model kernel: scenarios
//! for each rule, and a property test that any history converges.

mod convergence;
mod model;
mod scenarios;
