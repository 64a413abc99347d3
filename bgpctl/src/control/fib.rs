//! `bgpctl show fib`: the kernel FIB as bgpd's installer sees it, as text (the JSON form
//! is the protocol's own [`FibReport`]).

use std::fmt::Write;

use bgp_control::FibReport;

/// The report as text: the installed routes as `ip route` would list them, then the
/// refused ones with their reason and next retry, then the counters.
pub(super) fn render(f: &FibReport) -> String {
    let mut out = String::new();
    if let Some(why) = &f.recovering {
        let _ = writeln!(
            out,
            "RECOVERING: {why} (our routes are being read back and reconciled)"
        );
    }
    let _ = writeln!(out, "{} routes installed", f.installed.len());
    for r in &f.installed {
        let _ = writeln!(
            out,
            "  {} {} metric {}{}",
            r.prefix,
            r.route,
            r.metric,
            if r.stale {
                " (stale, from a previous run)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(out, "{} routes refused by the kernel", f.refused.len());
    for r in &f.refused {
        let retry = match r.retry_in_ms {
            Some(ms) => format!("retry in {:.1} s", ms as f64 / 1000.0),
            None => "retrying now".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {} {}, {} attempt{}, {retry}",
            r.prefix,
            r.reason,
            r.attempts,
            if r.attempts == 1 { "" } else { "s" }
        );
    }
    let refusals: Vec<String> = f
        .refused_total
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "since start: refusals {}, retries {}",
        if refusals.is_empty() {
            "0".to_owned()
        } else {
            refusals.join(", ")
        },
        f.retried_total
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_control::{FibInstalled, FibRefused};

    #[test]
    fn text_form() {
        let f = FibReport {
            installed: vec![FibInstalled {
                prefix: "10.1.0.0/24".into(),
                metric: 32,
                route: "via 10.0.0.2 dev eth0".into(),
                stale: false,
            }],
            refused: vec![FibRefused {
                prefix: "10.2.0.0/24".into(),
                reason: "ENETUNREACH".into(),
                attempts: 3,
                retry_in_ms: Some(1500),
            }],
            refused_total: [("ENETUNREACH".to_owned(), 3)].into_iter().collect(),
            retried_total: 2,
            recovering: None,
        };
        assert_eq!(
            render(&f),
            "1 routes installed\n  10.1.0.0/24 via 10.0.0.2 dev eth0 metric 32\n\
             1 routes refused by the kernel\n  10.2.0.0/24 ENETUNREACH, 3 attempts, retry in 1.5 s\n\
             since start: refusals ENETUNREACH 3, retries 2\n"
        );
    }
}
