//! Declarative routing policy: ordered rules of matches and actions, serde-serializable so the
//! daemon reads it from TOML, compiled once ([`Policy::compile`]) and evaluated per route.
//!
//! # Model
//! A [`Policy`] is a list of [`Rule`]s tried in order, then a default verdict. A rule matches
//! when *every* condition set in its [`Match`] holds (conditions left out do not constrain;
//! list-valued conditions hold when *any* element matches). A matching rule first applies its
//! modifications ([`Modify`]), then its [`RuleAction`]: `accept` and `reject` end evaluation,
//! `continue` goes on to the next rule, which sees the modified route. When no rule ends
//! evaluation the policy's `default` verdict applies (reject unless configured, in the spirit of
//! RFC 8212 for eBGP).
//!
//! The same policy language serves three attachment points in the RIB: a peer's import policy
//! (the peer conditions name the peer the route came from), a peer's export policy (they name
//! the peer the route is going to) and the FIB policy (no peer; chooses tunnel device, install
//! mode and kernel metric).
//!
//! # TOML example
//! ```toml
//! default = "reject"
//! [[rules]]
//! name = "pod-interfaces"
//! match = { interface = ["cali*", "kube-ipvs*"] }
//! action = "reject"
//! [[rules]]
//! name = "blocks"
//! match = { prefix_in = [{ prefix = "10.65.0.0/26" }], source = ["static"] }
//! set = { add_community = ["65000:100"] }
//! action = "accept"
//! ```
//!
//! # Files
//! * `model` — the rules as written (serde types).
//! * `values` — values inside rules with their textual forms (prefix ranges, communities).
//! * `eval` — compilation and evaluation.

mod eval;
mod model;
#[cfg(test)]
mod tests;
mod values;

pub use eval::{
    glob_match, Accepted, CompiledPolicy, KernelInfo, PeerView, PolicyError, RouteView,
};
pub use model::{
    InstallMode, IpFamily, Match, Modify, NextHopAction, OriginValue, PeerType, Policy, Prepend,
    RouteSource, Rule, RuleAction, Verdict, METRIC_LOCAL_PREF_BASE,
};
pub use values::{LargeCommunityValue, MetricRange, PrefixRange, StdCommunity};
