//! Policy tests: parsing, compilation and evaluation.

use super::*;
use bgp_proto::{AsPath, Community, PathAttributes};
use ipnet::IpNet;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn view<'a>(prefix: &str, attrs: &'a PathAttributes) -> RouteView<'a> {
    RouteView {
        prefix: net(prefix),
        attrs,
        next_hop: None,
        next_hop_interface: None,
        source: RouteSource::Bgp,
        kernel: None,
        peer: None,
    }
}

#[test]
fn glob() {
    assert!(glob_match("cali*", "cali12345"));
    assert!(glob_match("*.cali", "bpfout.cali"));
    assert!(glob_match("bpf*.cali", "bpfin.cali"));
    assert!(!glob_match("bpf*.cali", "bpfin.calico"));
    assert!(glob_match("eth?", "eth0"));
    assert!(!glob_match("eth?", "eth10"));
    assert!(glob_match("*", ""));
    assert!(!glob_match("a", ""));
    assert!(glob_match("a*b*c", "aXXbYYc"));
    assert!(!glob_match("a*b*c", "aXXbYY"));
}

#[test]
fn prefix_ranges() {
    let exact = PrefixRange::exact(net("10.0.0.0/24"));
    assert!(exact.contains(&net("10.0.0.0/24")));
    assert!(!exact.contains(&net("10.0.0.0/25")));
    let ol = PrefixRange::orlonger(net("10.0.0.0/24"));
    assert!(ol.contains(&net("10.0.0.128/25")));
    assert!(ol.contains(&net("10.0.0.1/32")));
    assert!(!ol.contains(&net("10.0.0.0/23")));
    assert!(!ol.contains(&net("10.0.1.0/24")));
    let r = PrefixRange::range(net("10.0.0.0/8"), 16, 24);
    assert!(r.contains(&net("10.1.0.0/16")));
    assert!(!r.contains(&net("10.1.1.0/25")));
    assert!(!r.contains(&net("10.0.0.0/8")));
    assert!(!ol.contains(&net("::/0")));
    let bad = PrefixRange::range(net("10.0.0.0/24"), 16, 24);
    assert!(bad.validate().is_err());
}

#[test]
fn communities_parse() {
    assert_eq!(
        "65000:100".parse::<StdCommunity>().unwrap().0,
        Community::new(65000, 100)
    );
    assert_eq!(
        "no_export".parse::<StdCommunity>().unwrap().0,
        Community::NO_EXPORT
    );
    assert!("65536:1".parse::<StdCommunity>().is_err());
    assert!("x".parse::<StdCommunity>().is_err());
    let l: LargeCommunityValue = "4200000000:1:2".parse().unwrap();
    assert_eq!(l.0.global, 4_200_000_000);
    assert!("1:2".parse::<LargeCommunityValue>().is_err());
    assert!("1:2:3:4".parse::<LargeCommunityValue>().is_err());
}

#[test]
fn rule_order_continue_and_default() {
    let p = Policy {
        rules: vec![
            Rule {
                name: Some("tag".into()),
                matches: Match::default(),
                set: Modify {
                    add_community: vec!["65000:1".parse().unwrap()],
                    local_pref: Some(200),
                    ..Default::default()
                },
                action: RuleAction::Continue,
            },
            Rule {
                name: Some("drop-small".into()),
                matches: Match {
                    prefix_in: Some(vec![PrefixRange::range(net("0.0.0.0/0"), 25, 32)]),
                    ..Default::default()
                },
                set: Modify::default(),
                action: RuleAction::Reject,
            },
            Rule {
                name: None,
                matches: Match {
                    community: Some(vec!["65000:1".parse().unwrap()]),
                    ..Default::default()
                },
                set: Modify {
                    med: Some(5),
                    ..Default::default()
                },
                action: RuleAction::Accept,
            },
        ],
        default: Verdict::Reject,
    }
    .compile()
    .unwrap();
    let attrs = PathAttributes::default();
    assert!(p.evaluate(&view("10.0.0.0/26", &attrs)).is_none());
    let a = p.evaluate(&view("10.0.0.0/24", &attrs)).unwrap();
    assert_eq!(a.attrs.local_pref, Some(200));
    assert_eq!(a.attrs.med, Some(5));
    assert!(a.med_set);
    assert_eq!(a.attrs.communities, vec![Community::new(65000, 1)]);
    // Input untouched.
    assert_eq!(attrs, PathAttributes::default());
    assert!(CompiledPolicy::accept_all()
        .evaluate(&view("10.0.0.0/24", &attrs))
        .unwrap()
        .is_unmodified());
}

#[test]
fn as_path_matches() {
    let mut path = AsPath::default();
    path.prepend(64502, 1);
    path.prepend(64501, 1);
    path.prepend(64500, 1);
    let attrs = PathAttributes {
        as_path: Some(path),
        ..Default::default()
    };
    let rule = |m: Match| {
        Policy {
            rules: vec![Rule {
                name: None,
                matches: m,
                set: Modify::default(),
                action: RuleAction::Accept,
            }],
            default: Verdict::Reject,
        }
        .compile()
        .unwrap()
    };
    let v = view("10.0.0.0/24", &attrs);
    assert!(rule(Match {
        as_path_prefix: Some(vec![64500, 64501]),
        ..Default::default()
    })
    .evaluate(&v)
    .is_some());
    assert!(rule(Match {
        as_path_prefix: Some(vec![64501]),
        ..Default::default()
    })
    .evaluate(&v)
    .is_none());
    assert!(rule(Match {
        as_path_regex: Some("64502$".into()),
        ..Default::default()
    })
    .evaluate(&v)
    .is_some());
    assert!(rule(Match {
        as_path_regex: Some("^64501".into()),
        ..Default::default()
    })
    .evaluate(&v)
    .is_none());
    let bad = Policy {
        rules: vec![Rule {
            name: Some("r".into()),
            matches: Match {
                as_path_regex: Some("(".into()),
                ..Default::default()
            },
            set: Modify::default(),
            action: RuleAction::Accept,
        }],
        default: Verdict::Reject,
    };
    assert!(matches!(bad.compile(), Err(PolicyError::Regex { .. })));
}

#[test]
fn peer_next_hop_and_kernel_conditions() {
    let p: Policy = toml::from_str(
        r#"
        default = "accept"
        [[rules]]
        match = { peer_type = "ebgp", peer_name = ["Node_*"], next_hop_in = ["192.168.0.0/16"] }
        action = "reject"
        [[rules]]
        match = { kernel_protocol = [80], metric = { max = 100 } }
        action = "reject"
        "#,
    )
    .unwrap();
    let p = p.compile().unwrap();
    let attrs = PathAttributes::default();
    let mut v = view("10.0.0.0/24", &attrs);
    v.next_hop = Some("192.168.1.1".parse().unwrap());
    v.peer = Some(PeerView {
        name: "Node_10_0_0_1",
        peer_type: PeerType::Ebgp,
    });
    assert!(p.evaluate(&v).is_none());
    v.peer = Some(PeerView {
        name: "Mesh_10_0_0_1",
        peer_type: PeerType::Ebgp,
    });
    assert!(p.evaluate(&v).is_some());
    let k = KernelInfo {
        ifname: Some("tunl0".into()),
        metric: Some(50),
        protocol: Some(80),
    };
    v.kernel = Some(&k);
    assert!(p.evaluate(&v).is_none());
    let k2 = KernelInfo {
        metric: Some(500),
        ..k.clone()
    };
    v.kernel = Some(&k2);
    assert!(p.evaluate(&v).is_some());
}

#[test]
fn serde_round_trip_and_unknown_fields() {
    let text = r#"
        default = "reject"
        [[rules]]
        name = "x"
        match = { prefix_in = [{ prefix = "10.0.0.0/8", ge = 16, le = 24 }], community = ["no_export"], large_community = ["1:2:3"] }
        set = { local_pref = 10, next_hop = "self", prepend = { count = 2 }, install = "no_install", tunnel_device = "tunl0" }
        action = "continue"
        [[rules]]
        set = { next_hop = { address = "10.1.1.1" } }
        action = "accept"
    "#;
    let p: Policy = toml::from_str(text).unwrap();
    assert_eq!(p.rules[0].set.next_hop, Some(NextHopAction::SelfAddress));
    assert_eq!(
        p.rules[1].set.next_hop,
        Some(NextHopAction::Address("10.1.1.1".parse().unwrap()))
    );
    let back: Policy = toml::from_str(&toml::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
    let json: Policy = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(json, p);
    assert!(toml::from_str::<Policy>("bogus = 1").is_err());
    assert!(
        toml::from_str::<Policy>("[[rules]]\naction = \"accept\"\nmatch = { nope = 1 }").is_err()
    );
}

#[test]
fn origin_is_set() {
    let p: Policy = toml::from_str(
        "default = \"accept\"\n[[rules]]\nset = { origin = \"igp\" }\naction = \"accept\"",
    )
    .unwrap();
    let attrs = PathAttributes {
        origin: Some(bgp_proto::Origin::Incomplete),
        ..Default::default()
    };
    let a = p
        .compile()
        .unwrap()
        .evaluate(&view("10.0.0.0/24", &attrs))
        .unwrap();
    assert_eq!(a.attrs.origin, Some(bgp_proto::Origin::Igp));
}

#[test]
fn metric_local_pref_mapping() {
    let p: Policy = toml::from_str(
        r#"
        default = "accept"
        [[rules]]
        set = { local_pref_from_metric = true, metric_from_local_pref = true }
        action = "accept"
        "#,
    )
    .unwrap();
    let p = p.compile().unwrap();
    let attrs = PathAttributes::default();
    let k = KernelInfo {
        metric: Some(512),
        ..Default::default()
    };
    let mut v = view("10.0.0.1/32", &attrs);
    v.kernel = Some(&k);
    let a = p.evaluate(&v).unwrap();
    assert_eq!(a.attrs.local_pref, Some(2_147_483_647 - 512));
    assert_eq!(a.metric, Some(512));
}
