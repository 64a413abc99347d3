//! Property: whatever the sequence of RIB changes, kernel answers, refusals, lost answers,
//! channel failures, removals behind our back and clock ticks, once the kernel finally
//! accepts (conflicting routes gone, no more refusals or failures) the kernel holds exactly
//! the RIB's routes, one of ours per prefix in the wanted form, and the reconciler is idle.
//! Along the way, another protocol's route is never deleted or changed.

use std::collections::BTreeMap;

use ipnet::IpNet;
use proptest::prelude::*;

use super::super::{FibAction, FibNextHop, FibOp, FibRoute, NextHopMode, RouteForm};
use super::model::*;
use crate::config::ExportConfig;
use crate::installer::form::form_for_tests;

const PREFIXES: [&str; 6] = [
    "10.0.0.0/24",
    "10.0.1.0/24",
    "10.0.2.0/26",
    "10.0.3.0/32",
    "2001:db8::/64",
    "2001:db8:1::/64",
];
const GATEWAYS_V4: [&str; 3] = ["10.0.0.2", "10.0.0.3", "10.0.0.4"];
const GATEWAYS_V6: [&str; 3] = ["fd00::2", "fd00::3", "fd00::4"];
const LOCAL_PREFS: [Option<u32>; 3] = [None, Some(100), Some(200)];
const REFUSALS: [i32; 3] = [libc::ENETUNREACH, libc::EBUSY, libc::ENOMEM];

#[derive(Debug, Clone)]
enum Change {
    /// `hops`: a bit mask over the gateways (0: a blackhole); `tunnel`: IPIP mode.
    Install {
        prefix: usize,
        lp: usize,
        hops: u8,
        tunnel: bool,
    },
    Withdraw(usize),
}

#[derive(Debug, Clone)]
enum Step {
    Apply(Vec<Change>),
    /// Send up to n requests (the kernel processes them; answers are held).
    Send(usize),
    /// Give back the first n held answers.
    Deliver(usize),
    /// The first n held answers are lost (acknowledgements overran).
    Lose(usize),
    /// The next request is refused.
    Refuse(usize),
    /// Up to `unsent` more requests are taken but never reach the kernel, then the channel
    /// fails: every held answer is lost.
    ChannelFailure {
        unsent: usize,
    },
    /// Time passes (ms).
    Tick(u64),
    /// Someone deletes our route for this prefix; the watcher reports it.
    Tamper(usize),
    /// `tunl0` appears.
    TunnelAppears,
    /// Graceful restart is over: sweep what is still stale.
    Sweep,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (0..PREFIXES.len(), 0..LOCAL_PREFS.len(), 0u8..8, prop::bool::weighted(0.2)).prop_map(
            |(prefix, lp, hops, tunnel)| Change::Install { prefix, lp, hops, tunnel }
        ),
        1 => (0..PREFIXES.len()).prop_map(Change::Withdraw),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::collection::vec(change(), 1..6).prop_map(Step::Apply),
        4 => (1usize..6).prop_map(Step::Send),
        4 => (1usize..6).prop_map(Step::Deliver),
        1 => (1usize..3).prop_map(Step::Lose),
        1 => (0..REFUSALS.len()).prop_map(Step::Refuse),
        1 => (0usize..3).prop_map(|unsent| Step::ChannelFailure { unsent }),
        2 => prop::sample::select(vec![0u64, 50, 1_000, 5_000]).prop_map(Step::Tick),
        1 => (0..PREFIXES.len()).prop_map(Step::Tamper),
        1 => Just(Step::TunnelAppears),
        1 => Just(Step::Sweep),
    ]
}

/// Routes in the kernel at the start, as (prefix, LOCAL_PREF) indexes.
type Start = Vec<(usize, usize)>;

/// Routes of a previous run, and other protocols' routes (at the metric of a LOCAL_PREF),
/// in the kernel at the start.
fn start() -> impl Strategy<Value = (Start, Start)> {
    (
        prop::collection::vec((0..PREFIXES.len(), 0..LOCAL_PREFS.len()), 0..4),
        prop::collection::vec((0..PREFIXES.len(), 0..LOCAL_PREFS.len()), 0..3),
    )
}

fn route(c: &Change) -> FibOp {
    match *c {
        Change::Withdraw(i) => FibOp::Withdraw(net(PREFIXES[i])),
        Change::Install {
            prefix,
            lp,
            hops,
            tunnel,
        } => {
            let p = net(PREFIXES[prefix]);
            let gateways = if matches!(p, IpNet::V4(_)) {
                GATEWAYS_V4
            } else {
                GATEWAYS_V6
            };
            let action = if hops == 0 {
                FibAction::Blackhole
            } else {
                FibAction::Forward(
                    (0..3)
                        .filter(|b| hops & (1 << b) != 0)
                        .map(|b| FibNextHop {
                            gateway: gateways[b].parse().expect("gateway"),
                            mode: if tunnel {
                                NextHopMode::Tunnel
                            } else {
                                NextHopMode::Direct
                            },
                            device: None,
                        })
                        .collect(),
                )
            };
            FibOp::Install(FibRoute {
                prefix: p,
                action,
                local_pref: LOCAL_PREFS[lp],
            })
        }
    }
}

/// What the kernel must hold for a RIB route, worked out apart from the resolver: metric
/// from LOCAL_PREF, the kernel's device for direct hops, `tunl0` onlink for tunnel hops.
fn expected(cfg: &ExportConfig, r: &FibRoute) -> (u32, bool, Vec<(String, u32, bool)>) {
    let mut hops: Vec<(String, u32, bool)> = match &r.action {
        FibAction::Blackhole => Vec::new(),
        FibAction::Forward(nhs) => nhs
            .iter()
            .map(|h| match h.mode {
                NextHopMode::Tunnel => (h.gateway.to_string(), TUNNEL_IFINDEX, true),
                _ => (h.gateway.to_string(), KERNEL_DEVICE, false),
            })
            .collect(),
    };
    hops.sort();
    hops.dedup();
    (
        cfg.metric_for(r.local_pref),
        matches!(r.action, FibAction::Blackhole),
        hops,
    )
}

fn held_form(f: &RouteForm) -> (u32, bool, Vec<(String, u32, bool)>) {
    let mut hops: Vec<(String, u32, bool)> = f
        .hops()
        .iter()
        .map(|h| (h.gateway.to_string(), h.ifindex, h.onlink))
        .collect();
    hops.sort();
    (f.metric(), f.is_blackhole(), hops)
}

fn run_case(adopted: Start, foreign: Start, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let cfg = ExportConfig {
        retry_initial_ms: 100,
        retry_max_ms: 2_000,
        ..ExportConfig::default()
    };
    let mut kernel = ModelKernel::default();
    for (p, lp) in adopted {
        let m = cfg.metric_for(LOCAL_PREFS[lp]);
        kernel.add_ours(net(PREFIXES[p]), form_for_tests(m, &[]));
    }
    for (p, lp) in foreign {
        let m = cfg.metric_for(LOCAL_PREFS[lp]);
        if !kernel.routes.contains_key(&(net(PREFIXES[p]), m)) {
            kernel.add_foreign(PREFIXES[p], m);
        }
    }
    let theirs = kernel.foreign();
    let mut h = Harness::open(cfg.clone(), kernel);
    let mut desired: BTreeMap<IpNet, FibRoute> = BTreeMap::new();
    let mut tunnel = false;

    for s in &steps {
        match s {
            Step::Apply(changes) => {
                let ops: Vec<FibOp> = changes.iter().map(route).collect();
                for op in &ops {
                    match op {
                        FibOp::Install(r) => {
                            desired.insert(r.prefix, r.clone());
                        }
                        FibOp::Withdraw(p) => {
                            desired.remove(p);
                        }
                    }
                }
                h.rec.apply(ops);
            }
            Step::Send(n) => {
                h.send(*n);
            }
            Step::Deliver(n) => h.deliver(*n),
            Step::Lose(n) => {
                for _ in 0..*n {
                    if let Some((id, _)) = h.held.pop_front() {
                        h.rec.handle_lost(id);
                    }
                }
            }
            Step::Refuse(i) => h.kernel.refuse_next = Some(REFUSALS[*i]),
            Step::ChannelFailure { unsent } => {
                for _ in 0..*unsent {
                    if h.rec.poll_transmit(h.now).is_none() {
                        break;
                    }
                }
                h.held.clear();
                h.rec.handle_channel_error("channel failed".into(), h.now);
            }
            Step::Tick(ms) => {
                h.now += std::time::Duration::from_millis(*ms);
                h.rec.handle_timeout(h.now);
            }
            Step::Tamper(i) => {
                for ev in h.kernel.delete_ours_behind_our_back(net(PREFIXES[*i])) {
                    h.rec.handle_event(&ev, h.now);
                }
            }
            Step::TunnelAppears => {
                if !tunnel {
                    tunnel = true;
                    h.link_up(TUNNEL_IFINDEX, "tunl0");
                }
            }
            Step::Sweep => h.rec.sweep_stale(),
        }
        prop_assert_eq!(
            &h.kernel.foreign(),
            &theirs,
            "another protocol's route changed"
        );
    }

    // The kernel finally accepts: no refusals, no conflicting routes, the tunnel device is
    // there; the answers still held arrive; graceful restart ends.
    h.kernel.refuse_next = None;
    h.kernel.routes.retain(|_, (proto, _)| *proto == OURS);
    if !tunnel {
        h.link_up(TUNNEL_IFINDEX, "tunl0");
    }
    let held = h.held.len();
    h.deliver(held);
    h.rec.sweep_stale();
    h.run();
    h.until_no_retry(200);

    let held: BTreeMap<IpNet, Vec<_>> = h
        .kernel
        .ours()
        .into_iter()
        .map(|(p, forms)| (p, forms.iter().map(held_form).collect()))
        .collect();
    let want: BTreeMap<IpNet, Vec<_>> = desired
        .iter()
        .map(|(p, r)| (*p, vec![expected(&cfg, r)]))
        .collect();
    prop_assert_eq!(held, want);
    prop_assert_eq!(h.rec.poll_retry_at(), None);
    prop_assert_eq!(h.rec.pending_count(), 0);
    prop_assert_eq!(h.rec.is_recovering(), None);
    prop_assert_eq!(h.rec.in_flight_count(), 0);
    prop_assert_eq!(h.rec.stale_count(), 0);
    prop_assert_eq!(h.rec.len(), desired.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_history_converges_once_the_kernel_accepts(
        (adopted, foreign) in start(),
        steps in prop::collection::vec(step(), 1..60),
    ) {
        run_case(adopted, foreign, steps)?;
    }
}
