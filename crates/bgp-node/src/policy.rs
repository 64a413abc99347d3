//! Policy chains: a peer's import or export list of named policies compiled into one.

use std::collections::BTreeMap;
use std::sync::Arc;

use bgp_rib::policy::{CompiledPolicy, Policy, Verdict};
use tracing::warn;

/// An import or export chain compiled into one policy: the rules of every named policy in
/// order, with the default of the last one. An empty chain accepts everything on iBGP and
/// nothing on eBGP (RFC 8212). A name without a policy contributes nothing (configuration
/// validation refuses such names before they get here).
pub fn chain_policy(
    names: &[String],
    policies: &BTreeMap<String, Policy>,
    ebgp: bool,
) -> Arc<CompiledPolicy> {
    if names.is_empty() {
        return Arc::new(if ebgp {
            CompiledPolicy::reject_all()
        } else {
            CompiledPolicy::accept_all()
        });
    }
    let mut merged = Policy::all(Verdict::Reject);
    for n in names {
        if let Some(p) = policies.get(n) {
            merged.rules.extend(p.rules.iter().cloned());
            merged.default = p.default;
        }
    }
    match merged.compile() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            // Each policy compiled when the configuration was loaded; a merged chain of
            // valid policies is valid. Refuse everything rather than leak routes.
            warn!(error = %e, "policy chain does not compile; rejecting all routes");
            Arc::new(CompiledPolicy::reject_all())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_chain_follows_rfc8212() {
        let p = BTreeMap::new();
        assert!(chain_policy(&[], &p, false).is_accept_all());
        assert!(!chain_policy(&[], &p, true).is_accept_all());
    }

    #[test]
    fn chain_concatenates_rules_and_takes_last_default() {
        let mut p = BTreeMap::new();
        p.insert("a".to_string(), Policy::all(Verdict::Reject));
        p.insert("b".to_string(), Policy::all(Verdict::Accept));
        let c = chain_policy(&["a".into(), "b".into()], &p, true);
        assert_eq!(c.source().default, Verdict::Accept);
    }
}
