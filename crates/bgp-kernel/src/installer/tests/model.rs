//! A model of the kernel FIB and a driver that plays the executor, so the reconciler's rules
//! are tested without root, deterministically, with a virtual clock.
//!
//! The model follows the kernel's rules for the three writes the installer sends: a route is
//! keyed by (prefix, metric) in our table; `NLM_F_EXCL` refuses an occupied key whoever owns
//! it; `NLM_F_REPLACE` replaces whatever holds the key (or creates it); a delete carrying our
//! protocol and a metric removes only our route at that key (`ESRCH` otherwise). A next hop
//! written without a device gets the kernel's choice (ifindex [`KERNEL_DEVICE`]), as Linux
//! picks one from the connected route.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::super::{
    FibAction, FibNextHop, FibOp, FibRoute, NextHopMode, Reconciler, RequestId, ResolvedHop,
    RouteForm, RouteOp, RouteRequest,
};
use crate::config::ExportConfig;
use crate::types::{Errno, KernelEvent, KernelNextHop, KernelRoute, Link, RouteKind};

/// Our protocol (the default export protocol).
pub const OURS: u8 = 12;
/// Another protocol (Felix's).
pub const FELIX: u8 = 80;
/// The device the kernel picks for a next hop written without one.
pub const KERNEL_DEVICE: u32 = 2;
/// ifindex of `tunl0` once it exists.
pub const TUNNEL_IFINDEX: u32 = 7;

/// The main table of a model kernel: (prefix, metric) → (protocol, form).
#[derive(Debug, Default, Clone)]
pub struct ModelKernel {
    pub routes: BTreeMap<(IpNet, u32), (u8, RouteForm)>,
    /// The next request processed is refused with this errno (a refusal of the moment:
    /// unreachable gateway, memory pressure).
    pub refuse_next: Option<Errno>,
}

impl ModelKernel {
    /// Process one request as the kernel does inside `sendmsg()`: 0 or the errno.
    pub fn execute(&mut self, req: &RouteRequest) -> Errno {
        if let Some(errno) = self.refuse_next.take() {
            return errno;
        }
        let p = req.prefix;
        match &req.op {
            RouteOp::Add(f) => {
                if self.routes.contains_key(&(p, f.metric())) {
                    return libc::EEXIST;
                }
                self.routes
                    .insert((p, f.metric()), (OURS, kernel_choice(f)));
                0
            }
            RouteOp::Replace(f) => {
                self.routes
                    .insert((p, f.metric()), (OURS, kernel_choice(f)));
                0
            }
            RouteOp::Delete { metric } => match self.routes.get(&(p, *metric)) {
                Some((OURS, _)) => {
                    self.routes.remove(&(p, *metric));
                    0
                }
                _ => libc::ESRCH,
            },
        }
    }

    /// A route of another protocol (placed by hand, as Felix does).
    pub fn add_foreign(&mut self, prefix: &str, metric: u32) {
        let form = RouteForm::from_parts(metric, true, Vec::new());
        self.routes
            .insert((prefix.parse().expect("prefix"), metric), (FELIX, form));
    }

    /// Our route as a previous run left it.
    pub fn add_ours(&mut self, prefix: IpNet, form: RouteForm) {
        self.routes.insert((prefix, form.metric()), (OURS, form));
    }

    /// The dump of our protocol in our table, as the executor reads it.
    pub fn dump(&self) -> Vec<KernelRoute> {
        self.routes
            .iter()
            .filter(|(_, (proto, _))| *proto == OURS)
            .map(|((prefix, metric), (proto, f))| KernelRoute {
                prefix: *prefix,
                kind: if f.is_blackhole() {
                    RouteKind::Blackhole
                } else {
                    RouteKind::Unicast
                },
                protocol: *proto,
                metric: *metric,
                table: crate::config::RT_TABLE_MAIN,
                ifname: None,
                gateway: f.hops().first().map(|h| h.gateway),
                nexthops: f
                    .hops()
                    .iter()
                    .map(|h| KernelNextHop {
                        gateway: Some(h.gateway),
                        ifindex: h.ifindex,
                        ifname: None,
                        onlink: h.onlink,
                        weight: 1,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Our routes per prefix.
    pub fn ours(&self) -> BTreeMap<IpNet, Vec<RouteForm>> {
        let mut out: BTreeMap<IpNet, Vec<RouteForm>> = BTreeMap::new();
        for ((p, _), (proto, f)) in &self.routes {
            if *proto == OURS {
                out.entry(*p).or_default().push(f.clone());
            }
        }
        out
    }

    /// Routes of other protocols.
    pub fn foreign(&self) -> BTreeMap<(IpNet, u32), RouteForm> {
        self.routes
            .iter()
            .filter(|(_, (proto, _))| *proto != OURS)
            .map(|(k, (_, f))| (*k, f.clone()))
            .collect()
    }

    /// Someone deletes our route for `prefix` (every metric): the watcher's events for it.
    pub fn delete_ours_behind_our_back(&mut self, prefix: IpNet) -> Vec<KernelEvent> {
        let keys: Vec<(IpNet, u32)> = self
            .routes
            .iter()
            .filter(|((p, _), (proto, _))| *p == prefix && *proto == OURS)
            .map(|(k, _)| *k)
            .collect();
        keys.into_iter()
            .filter_map(|k| self.routes.remove(&k).map(|_| k))
            .map(|(p, metric)| {
                KernelEvent::OwnRouteRemoved(KernelRoute {
                    prefix: p,
                    kind: RouteKind::Unicast,
                    protocol: OURS,
                    metric,
                    table: crate::config::RT_TABLE_MAIN,
                    ifname: None,
                    gateway: None,
                    nexthops: Vec::new(),
                })
            })
            .collect()
    }
}

/// The form as the kernel stores it: a hop written without a device gets one.
fn kernel_choice(f: &RouteForm) -> RouteForm {
    let hops = f
        .hops()
        .iter()
        .map(|h| ResolvedHop {
            ifindex: if h.ifindex == 0 {
                KERNEL_DEVICE
            } else {
                h.ifindex
            },
            ..h.clone()
        })
        .collect();
    RouteForm::from_parts(f.metric(), f.is_blackhole(), hops)
}

/// The reconciler, a model kernel, the links, a virtual clock and the requests sent whose
/// answers have not been given back yet: the executor's part, played by the test.
pub struct Harness {
    pub rec: Reconciler,
    pub kernel: ModelKernel,
    pub links: Vec<Link>,
    pub now: Instant,
    /// Sent and processed by the kernel; the answer is held until delivered.
    pub held: VecDeque<(RequestId, Errno)>,
    /// Every request sent, in order.
    pub sent: Vec<RouteRequest>,
}

impl Harness {
    /// A reconciler opened on `kernel` (links read, our routes adopted).
    pub fn open(cfg: ExportConfig, kernel: ModelKernel) -> Self {
        let now = Instant::now();
        let mut h = Harness {
            rec: Reconciler::new(cfg),
            kernel,
            links: vec![Link {
                index: KERNEL_DEVICE,
                name: "eth0".into(),
                up: true,
            }],
            now,
            held: VecDeque::new(),
            sent: Vec::new(),
        };
        h.rec.handle_links(h.links.clone(), now);
        assert!(h.rec.poll_dump(), "a new reconciler asks for a dump");
        h.rec.handle_dump(h.kernel.dump());
        h
    }

    /// Answer what the reconciler asks to read (links, a dump).
    pub fn serve_reads(&mut self) {
        if self.rec.poll_links() {
            self.rec.handle_links(self.links.clone(), self.now);
        }
        if self.rec.poll_dump() {
            self.rec.handle_dump(self.kernel.dump());
        }
    }

    /// Send up to `max` requests; the kernel processes them now, answers are held.
    pub fn send(&mut self, max: usize) -> usize {
        self.serve_reads();
        let mut n = 0;
        while n < max {
            let Some(req) = self.rec.poll_transmit(self.now) else {
                break;
            };
            let errno = self.kernel.execute(&req);
            self.held.push_back((req.id, errno));
            self.sent.push(req);
            n += 1;
        }
        n
    }

    /// Give back the first `n` held answers.
    pub fn deliver(&mut self, n: usize) {
        for _ in 0..n {
            let Some((id, errno)) = self.held.pop_front() else {
                return;
            };
            if errno == 0 {
                self.rec.handle_ack(id, self.now);
            } else {
                self.rec.handle_error(id, errno, self.now);
            }
        }
    }

    /// Send and answer until the reconciler has nothing to do now.
    pub fn run(&mut self) {
        for _ in 0..10_000 {
            let sent = self.send(usize::MAX);
            let held = self.held.len();
            self.deliver(held);
            if sent == 0 && held == 0 && !self.rec.poll_dump() && !self.rec.poll_links() {
                return;
            }
        }
        panic!("the reconciler never settled");
    }

    /// Apply and run.
    pub fn apply(&mut self, ops: Vec<FibOp>) -> crate::installer::ApplyReport {
        self.rec.take_report();
        self.rec.apply(ops);
        self.run();
        self.rec.take_report()
    }

    /// Move the clock and run what is due.
    pub fn advance(&mut self, by: Duration) -> crate::installer::ApplyReport {
        self.rec.take_report();
        self.now += by;
        self.rec.handle_timeout(self.now);
        self.run();
        self.rec.take_report()
    }

    /// Jump to each retry time in turn until none is left (bounded).
    pub fn until_no_retry(&mut self, max_rounds: usize) {
        for _ in 0..max_rounds {
            let Some(at) = self.rec.poll_retry_at() else {
                return;
            };
            let by = at.saturating_duration_since(self.now);
            self.advance(by);
        }
    }

    /// A link appears (the watcher's event, and the next link dump shows it).
    pub fn link_up(&mut self, index: u32, name: &str) {
        let l = Link {
            index,
            name: name.into(),
            up: true,
        };
        self.links.push(l.clone());
        self.rec.handle_event(&KernelEvent::LinkUp(l), self.now);
    }

    /// The requests sent since the last call.
    pub fn take_sent(&mut self) -> Vec<RouteRequest> {
        std::mem::take(&mut self.sent)
    }
}

/// `FibOp::Install` of a forward route through `gateways` (direct), LOCAL_PREF `lp`.
pub fn fwd(prefix: &str, gateways: &[&str], lp: Option<u32>) -> FibOp {
    FibOp::Install(FibRoute {
        prefix: prefix.parse().expect("prefix"),
        action: FibAction::Forward(
            gateways
                .iter()
                .map(|g| FibNextHop {
                    gateway: g.parse().expect("gateway"),
                    mode: NextHopMode::Direct,
                    device: None,
                })
                .collect(),
        ),
        local_pref: lp,
    })
}

/// `FibOp::Install` of a blackhole.
pub fn blackhole(prefix: &str) -> FibOp {
    FibOp::Install(FibRoute {
        prefix: prefix.parse().expect("prefix"),
        action: FibAction::Blackhole,
        local_pref: None,
    })
}

/// `FibOp::Withdraw`.
pub fn withdraw(prefix: &str) -> FibOp {
    FibOp::Withdraw(prefix.parse().expect("prefix"))
}

pub fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

/// Calico's metric for a LOCAL_PREF.
pub fn metric(lp: u32) -> u32 {
    2_147_483_647 - lp
}
