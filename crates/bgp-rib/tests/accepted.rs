//! The accepted-route journal (post-policy Adj-RIB-In changes for monitoring): what the
//! import policy left of each route as it is received, withdrawn, refused, and re-judged
//! after a policy change; nothing when not watched.

mod common;

use std::sync::Arc;

use bgp_proto::Community;
use bgp_rib::policy::{CompiledPolicy, Policy};
use bgp_rib::AcceptedChange;
use common::*;

/// Import policy: refuse 10.9.0.0/24, set local-pref 300 and community 65000:7 on
/// 10.2.0.0/24, accept the rest unchanged.
fn import_policy() -> Arc<CompiledPolicy> {
    let p: Policy = toml::from_str(
        r#"
        default = "accept"
        [[rules]]
        match = { prefix_in = [{ prefix = "10.9.0.0/24" }] }
        action = "reject"
        [[rules]]
        match = { prefix_in = [{ prefix = "10.2.0.0/24" }] }
        set = { local_pref = 300, add_community = ["65000:7"] }
        action = "accept"
        "#,
    )
    .unwrap();
    Arc::new(p.compile().unwrap())
}

/// A route's local-pref and whether 65000:7 is attached; `None`: withdrawn.
type Seen = Option<(Option<u32>, bool)>;

/// Each change as (prefix, what it says).
fn summary(c: &[AcceptedChange]) -> Vec<(String, Seen)> {
    c.iter()
        .map(|c| {
            let a = c.attrs.as_ref().map(|a| {
                (
                    a.attrs.local_pref,
                    a.attrs.communities.contains(&Community::new(65000, 7)),
                )
            });
            (c.nlri.prefix.to_string(), a)
        })
        .collect()
}

#[test]
fn the_journal_records_routes_as_the_import_policy_left_them() {
    let mut rib = rib();
    let p = peer(&mut rib, 2, 65000, false);
    let accept = Arc::new(CompiledPolicy::accept_all());
    rib.set_policies(p, import_policy(), accept.clone())
        .unwrap();
    let routes = ["10.1.0.0/24", "10.2.0.0/24", "10.9.0.0/24"];
    // Not watched: nothing recorded.
    rib.apply_update(p, &announce(&routes, attrs(&[], "192.0.2.2")), false)
        .unwrap();
    assert!(rib.take_accepted().is_empty());

    rib.watch_accepted(true);
    // Again: the refused route records nothing, the modified one its new attributes.
    rib.apply_update(p, &announce(&routes, attrs(&[], "192.0.2.2")), false)
        .unwrap();
    let c = rib.take_accepted();
    assert!(c.iter().all(|c| c.peer == p));
    assert_eq!(
        summary(&c),
        [
            ("10.1.0.0/24".into(), Some((None, false))),
            ("10.2.0.0/24".into(), Some((Some(300), true))),
        ]
    );
    assert!(rib.take_accepted().is_empty(), "taken once");

    // The table as accepted: the same two, modified as they are stored.
    let table: Vec<_> = rib
        .accepted_routes(p)
        .into_iter()
        .map(|(n, a)| (n.prefix.to_string(), a.attrs.local_pref))
        .collect();
    assert_eq!(
        table,
        [
            ("10.1.0.0/24".into(), None),
            ("10.2.0.0/24".into(), Some(300))
        ]
    );

    // Withdrawals: of an accepted route recorded, of a refused one not.
    rib.apply_update(p, &withdraw(&["10.1.0.0/24", "10.9.0.0/24"]), false)
        .unwrap();
    assert_eq!(
        summary(&rib.take_accepted()),
        [("10.1.0.0/24".into(), None)]
    );

    // A policy change: what it changes is recorded (10.2 accepted unmodified now, 10.9
    // accepted), nothing else.
    rib.apply_update(
        p,
        &announce(&["10.9.0.0/24"], attrs(&[], "192.0.2.2")),
        false,
    )
    .unwrap();
    assert!(rib.take_accepted().is_empty());
    rib.set_policies(p, accept.clone(), accept.clone()).unwrap();
    let mut c = summary(&rib.take_accepted());
    c.sort();
    assert_eq!(
        c,
        [
            ("10.2.0.0/24".into(), Some((None, false))),
            ("10.9.0.0/24".into(), Some((None, false))),
        ]
    );
    // And back: 10.9 refused again is withdrawn.
    rib.set_policies(p, import_policy(), accept).unwrap();
    let mut c = summary(&rib.take_accepted());
    c.sort();
    assert_eq!(
        c,
        [
            ("10.2.0.0/24".into(), Some((Some(300), true))),
            ("10.9.0.0/24".into(), None),
        ]
    );

    // Stopped: nothing more.
    rib.watch_accepted(false);
    rib.apply_update(p, &withdraw(&["10.2.0.0/24"]), false)
        .unwrap();
    assert!(rib.take_accepted().is_empty());
}
