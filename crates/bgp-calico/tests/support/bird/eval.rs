//! BIRD 1.6's filter semantics for the subset calico-node uses (filter/filter.c):
//! - static attributes (`net`, `source`, `ifname`, `preference`) are always defined, `ifname`
//!   is `""` without an interface; extended ones (`krt_metric`, `bgp_local_pref`,
//!   `bgp_next_hop`, `krt_tunnel`, `bgp_path`) may be undefined, an undefined community list
//!   reads as empty;
//! - `=`/`!=` compare values of the same type, values of different types are never the
//!   same; `<`/`>` on different types are a runtime error, except that an undefined value
//!   sorts first (BIRD's "hack for else"); `a > b` is `b < a`;
//! - `&&` and `||` short-circuit; `accept`/`reject` end the whole filter, also inside a
//!   function; a runtime error rejects the route.
//!
//! Anything outside this subset is an [`Outcome::Unsupported`], which the oracle reports as
//! a failure: the checker never guesses.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

use super::parse::{BirdConfig, Expr, MaskItem, Stmt};

/// A route as BIRD's filters see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub net: IpNet,
    /// `RTS_BGP`, `RTS_INHERIT` (kernel), `RTS_STATIC`, `RTS_DEVICE`.
    pub source: &'static str,
    pub ifname: String,
    pub preference: i64,
    pub krt_metric: Option<i64>,
    pub local_pref: Option<i64>,
    pub next_hop: Option<IpAddr>,
    pub krt_tunnel: Option<String>,
    /// `None`: no AS_PATH attribute.
    pub path: Option<Vec<u32>>,
    pub communities: BTreeSet<(u32, u32)>,
    pub large_communities: BTreeSet<(u32, u32, u32)>,
}

/// How a filter ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accept,
    Reject,
    /// A BIRD runtime error (the route is rejected).
    Error(String),
    /// Something this checker does not implement.
    Unsupported(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Val {
    Void,
    Bool(bool),
    Int(i64),
    Ip(IpAddr),
    Prefix(IpNet),
    Str(String),
    Enum(String),
    Pair(u32, u32),
    Lc(u32, u32, u32),
    PrefixSet(Vec<(IpNet, u8, u8)>),
    EnumSet(Vec<String>),
    PathMask(Vec<MaskItem>),
    Clist(BTreeSet<(u32, u32)>),
    Lclist(BTreeSet<(u32, u32, u32)>),
    Path(Vec<u32>),
}

enum Stop {
    Accept,
    Reject,
    Error(String),
    Unsupported(String),
}

type E<T> = Result<T, Stop>;

fn runtime<T>(m: impl Into<String>) -> E<T> {
    Err(Stop::Error(m.into()))
}

fn unsupported<T>(m: impl Into<String>) -> E<T> {
    Err(Stop::Unsupported(m.into()))
}

struct Ctx<'a> {
    cfg: &'a BirdConfig,
    route: &'a mut Route,
    vars: Vec<(String, Val)>,
    depth: usize,
}

/// Runs `stmts` (a filter body) on `route`, modifying it.
pub fn run(cfg: &BirdConfig, stmts: &[Stmt], route: &mut Route) -> Outcome {
    let mut c = Ctx {
        cfg,
        route,
        vars: Vec::new(),
        depth: 0,
    };
    match c.block(stmts) {
        Ok(()) => Outcome::Error("filter did not accept or reject".into()),
        Err(Stop::Accept) => Outcome::Accept,
        Err(Stop::Reject) => Outcome::Reject,
        Err(Stop::Error(m)) => Outcome::Error(m),
        Err(Stop::Unsupported(m)) => Outcome::Unsupported(m),
    }
}

fn u32_of(v: &Val) -> E<u32> {
    match v {
        Val::Int(n) => u32::try_from(*n).or_else(|_| runtime("value out of range")),
        _ => runtime(format!("expected a number, got {v:?}")),
    }
}

/// BIRD's shell-like pattern match (`*`, `?`).
fn patmatch(p: &str, s: &str) -> bool {
    bgp_rib::policy::glob_match(p, s)
}

fn mask_match(mask: &[MaskItem], path: &[u32]) -> bool {
    match mask.split_first() {
        None => path.is_empty(),
        Some((MaskItem::Any, rest)) => (0..=path.len()).any(|i| mask_match(rest, &path[i..])),
        Some((MaskItem::One, rest)) => !path.is_empty() && mask_match(rest, &path[1..]),
        Some((MaskItem::Asn(a), rest)) => path.first() == Some(a) && mask_match(rest, &path[1..]),
    }
}

fn net_in(inner: &IpNet, outer: &IpNet) -> bool {
    outer.contains(inner) || inner == outer
}

impl Ctx<'_> {
    fn block(&mut self, stmts: &[Stmt]) -> E<()> {
        for s in stmts {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> E<()> {
        match s {
            Stmt::Accept => Err(Stop::Accept),
            Stmt::Reject => Err(Stop::Reject),
            Stmt::If(c, t, e) => match self.expr(c)? {
                Val::Bool(true) => self.block(t),
                Val::Bool(false) => self.block(e),
                v => runtime(format!("if on a non-boolean {v:?}")),
            },
            Stmt::Assign(name, e) => {
                let v = self.expr(e)?;
                self.assign(name, v)
            }
            Stmt::Method(attr, m, e) => {
                let v = self.expr(e)?;
                match (attr.as_str(), m.as_str(), v) {
                    ("bgp_community", "add", Val::Pair(a, b)) => {
                        self.route.communities.insert((a, b));
                    }
                    ("bgp_large_community", "add", Val::Lc(a, b, c)) => {
                        self.route.large_communities.insert((a, b, c));
                    }
                    ("bgp_path", "prepend", Val::Int(n)) => {
                        let n = u32::try_from(n).or_else(|_| runtime("bad ASN"))?;
                        self.route.path.get_or_insert_with(Vec::new).insert(0, n);
                    }
                    (a, m, v) => return unsupported(format!("{a}.{m}({v:?})")),
                }
                Ok(())
            }
            Stmt::Call(name, args) => {
                let Some(f) = self.cfg.functions.get(name) else {
                    return unsupported(format!("unknown function {name}"));
                };
                if f.params.len() != args.len() {
                    return runtime(format!("{name}: wrong number of arguments"));
                }
                if self.depth > 32 {
                    return unsupported("recursion");
                }
                let mut vals = Vec::new();
                for (p, a) in f.params.iter().zip(args) {
                    vals.push((p.clone(), self.expr(a)?));
                }
                let saved = std::mem::replace(&mut self.vars, vals);
                self.depth += 1;
                let r = self.block(&f.body);
                self.depth -= 1;
                self.vars = saved;
                r
            }
        }
    }

    fn assign(&mut self, name: &str, v: Val) -> E<()> {
        let r = &mut *self.route;
        match (name, v) {
            ("krt_metric", Val::Int(n)) => r.krt_metric = Some(n),
            ("bgp_local_pref", Val::Int(n)) => r.local_pref = Some(n),
            ("preference", Val::Int(n)) => r.preference = n,
            ("krt_tunnel", Val::Str(s)) => r.krt_tunnel = Some(s),
            (n, v) => return unsupported(format!("assignment {n} = {v:?}")),
        }
        Ok(())
    }

    fn name(&self, n: &str) -> E<Val> {
        if let Some((_, v)) = self.vars.iter().find(|(k, _)| k == n) {
            return Ok(v.clone());
        }
        let r = &*self.route;
        let opt = |o: Option<i64>| o.map_or(Val::Void, Val::Int);
        Ok(match n {
            "net" => Val::Prefix(r.net),
            "source" => Val::Enum(r.source.to_owned()),
            "ifname" => Val::Str(r.ifname.clone()),
            "preference" => Val::Int(r.preference),
            "krt_metric" => opt(r.krt_metric),
            "bgp_local_pref" => opt(r.local_pref),
            "bgp_next_hop" => r.next_hop.map_or(Val::Void, Val::Ip),
            "krt_tunnel" => r.krt_tunnel.clone().map_or(Val::Void, Val::Str),
            "bgp_path" => r.path.clone().map_or(Val::Void, Val::Path),
            "bgp_community" => Val::Clist(r.communities.clone()),
            "bgp_large_community" => Val::Lclist(r.large_communities.clone()),
            other => return unsupported(format!("unknown attribute or variable {other}")),
        })
    }

    fn expr(&mut self, e: &Expr) -> E<Val> {
        Ok(match e {
            Expr::Int(n) => Val::Int(*n),
            Expr::Bool(b) => Val::Bool(*b),
            Expr::Ip(a) => Val::Ip(*a),
            Expr::Prefix(p) => Val::Prefix(*p),
            Expr::Str(s) => Val::Str(s.clone()),
            Expr::Enum(s) => Val::Enum(s.clone()),
            Expr::PrefixSet(s) => Val::PrefixSet(s.clone()),
            Expr::EnumSet(s) => Val::EnumSet(s.clone()),
            Expr::PathMask(m) => Val::PathMask(m.clone()),
            Expr::Tuple(items) => {
                let v: Vec<Val> = items.iter().map(|i| self.expr(i)).collect::<E<_>>()?;
                match v.as_slice() {
                    [a, b] => Val::Pair(u32_of(a)?, u32_of(b)?),
                    [a, b, c] => Val::Lc(u32_of(a)?, u32_of(b)?, u32_of(c)?),
                    _ => return unsupported("tuple"),
                }
            }
            Expr::Name(n) => self.name(n)?,
            Expr::Defined(inner) => Val::Bool(self.expr(inner)? != Val::Void),
            Expr::Not(inner) => match self.expr(inner)? {
                Val::Bool(b) => Val::Bool(!b),
                v => return runtime(format!("! on {v:?}")),
            },
            Expr::Bin(op, l, r) => self.bin(op, l, r)?,
        })
    }

    fn bin(&mut self, op: &str, l: &Expr, r: &Expr) -> E<Val> {
        if op == "&&" || op == "||" {
            let a = match self.expr(l)? {
                Val::Bool(b) => b,
                v => return runtime(format!("{op} on {v:?}")),
            };
            if (op == "&&" && !a) || (op == "||" && a) {
                return Ok(Val::Bool(a));
            }
            return match self.expr(r)? {
                Val::Bool(b) => Ok(Val::Bool(b)),
                v => runtime(format!("{op} on {v:?}")),
            };
        }
        let (a, b) = (self.expr(l)?, self.expr(r)?);
        Ok(match op {
            "+" | "-" => match (a, b) {
                (Val::Int(x), Val::Int(y)) => Val::Int(if op == "+" { x + y } else { x - y }),
                (x, y) => return runtime(format!("{x:?} {op} {y:?}")),
            },
            "=" => Val::Bool(same(&a, &b)),
            "!=" => Val::Bool(!same(&a, &b)),
            "<" => Val::Bool(compare(&a, &b)? < 0),
            ">" => Val::Bool(compare(&b, &a)? < 0),
            "<=" => Val::Bool(compare(&a, &b)? <= 0),
            ">=" => Val::Bool(compare(&b, &a)? <= 0),
            "~" => Val::Bool(in_range(&a, &b)?),
            "!~" => Val::Bool(!in_range(&a, &b)?),
            other => return unsupported(format!("operator {other}")),
        })
    }
}

fn same(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Void, Val::Void) => true,
        (Val::Void, _) | (_, Val::Void) => false,
        _ => a == b,
    }
}

fn compare(a: &Val, b: &Val) -> E<i32> {
    Ok(match (a, b) {
        (Val::Void, Val::Void) => 0,
        (Val::Void, _) => -1,
        (_, Val::Void) => 1,
        (Val::Int(x), Val::Int(y)) => x.cmp(y) as i32,
        (x, y) => return runtime(format!("cannot compare {x:?} and {y:?}")),
    })
}

fn in_range(a: &Val, b: &Val) -> E<bool> {
    Ok(match (a, b) {
        (Val::Path(p), Val::PathMask(m)) => mask_match(m, p),
        (Val::Pair(x, y), Val::Clist(c)) => c.contains(&(*x, *y)),
        (Val::Lc(x, y, z), Val::Lclist(c)) => c.contains(&(*x, *y, *z)),
        (Val::Str(s), Val::Str(p)) => patmatch(p, s),
        (Val::Ip(ip), Val::Prefix(n)) => n.contains(ip),
        (Val::Prefix(x), Val::Prefix(y)) => net_in(x, y),
        (Val::Prefix(x), Val::PrefixSet(set)) => set
            .iter()
            .any(|(p, lo, hi)| net_in(x, p) && (*lo..=*hi).contains(&x.prefix_len())),
        (Val::Enum(e), Val::EnumSet(set)) => set.contains(e),
        (x, y) => return runtime(format!("~ applied on {x:?} and {y:?}")),
    })
}
