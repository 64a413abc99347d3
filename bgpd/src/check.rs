//! `bgpd --check`: every error of a configuration, each as `file:line:column: reason`,
//! and warnings about configurations that run but do nothing useful.
//!
//! Errors (exit 1) are the loader's ([`config::load_all`]): all of them, not only the
//! first, so one run of `--check` fixes a file. Warnings (exit 0, on stderr) are
//! configurations bgpd accepts but that are most likely mistakes:
//!
//! - an eBGP peer without an import or an export policy: RFC 8212 makes bgpd accept
//!   nothing from it and announce nothing to it (an empty chain accepts everything on
//!   iBGP only);
//! - policies that match kernel routes (`source = ["kernel"]`, or `interface`, which only
//!   kernel routes have) without a `[kernel]` section: nothing is imported from the kernel
//!   then, and nothing learned is installed in it, which on a Calico node means no pod
//!   route is announced and no route to other nodes' blocks is programmed.

use std::path::Path;
use std::process::ExitCode;

use bgp_speaker::config::{self, Config};
use bgp_speaker::RouteSource;

/// Runs the check of `path`: prints a summary on stdout, errors and warnings on stderr.
pub fn run(path: &Path) -> ExitCode {
    match config::load_all(path) {
        Ok(c) => {
            for w in warnings(&c) {
                eprintln!("{}: warning: {w}", path.display());
            }
            println!(
                "{}: OK ({} peers, {} policies, {} originated routes)",
                path.display(),
                c.peers.len(),
                c.policies.len(),
                c.originate.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "{}: {} error{}",
                path.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        }
    }
}

/// What in `c` runs but does nothing (see the module docs), one sentence each.
pub fn warnings(c: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for p in c.peers.values() {
        if p.is_ibgp(&c.global) {
            continue;
        }
        if p.import.is_empty() {
            out.push(format!(
                "peer {:?} is eBGP and has no import policy: every route it sends is rejected (RFC 8212); set import = [\"...\"]",
                p.name
            ));
        }
        if p.export.is_empty() {
            out.push(format!(
                "peer {:?} is eBGP and has no export policy: nothing is announced to it (RFC 8212); set export = [\"...\"]",
                p.name
            ));
        }
    }
    if c.kernel.is_none() {
        for (name, policy) in &c.policies {
            let kernel_rule = policy.rules.iter().find(|r| {
                r.matches.interface.is_some()
                    || r.matches
                        .source
                        .as_ref()
                        .is_some_and(|s| s.contains(&RouteSource::Kernel))
            });
            if let Some(rule) = kernel_rule {
                let rule = rule
                    .name
                    .as_deref()
                    .map_or_else(String::new, |n| format!(" (rule {n:?})"));
                out.push(format!(
                    "policy {name:?}{rule} matches kernel routes, but there is no [kernel] section: no kernel route is imported and nothing is installed in the kernel (a Calico node needs [kernel.import] for its blocks and [kernel.export] for the routes it learns)"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        config::from_str(text, Path::new("t.toml")).expect("valid")
    }

    const GLOBAL: &str =
        "[global]\nasn = 64512\nrouter_id = \"10.0.0.1\"\n[policies.all]\ndefault = \"accept\"\n";

    #[test]
    fn ebgp_without_policies_is_warned_about_ibgp_is_not() {
        let c = config(&format!(
            "{GLOBAL}[peers.up]\naddress = \"10.0.0.2\"\nremote_as = 65000\nimport = [\"all\"]\n\
             [peers.mesh]\naddress = \"10.0.0.3\"\nremote_as = 64512\n"
        ));
        let w = warnings(&c);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("\"up\"")
                && w[0].contains("no export policy")
                && w[0].contains("RFC 8212")
        );
    }

    #[test]
    fn kernel_rules_without_kernel_section() {
        let text = format!(
            "{GLOBAL}[policies.calico-export]\n[[policies.calico-export.rules]]\nname = \"pods\"\n\
             match = {{ source = [\"kernel\"] }}\naction = \"accept\"\n"
        );
        let w = warnings(&config(&text));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("\"calico-export\" (rule \"pods\")") && w[0].contains("[kernel]"));
        let with_kernel = format!("{text}[kernel.export]\nprotocol = 12\n");
        assert_eq!(warnings(&config(&with_kernel)), Vec::<String>::new());
    }
}
