//! Parser of the BIRD 1.6 configuration subset calico-node renders: `include`, `router id`,
//! `listen bgp`, templates and protocols (`kernel`, `device`, `direct`, `static`, `bgp`),
//! `function` and `filter` definitions with BIRD's statement and expression grammar.
//! Every protocol option is either understood or an error.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use ipnet::IpNet;

use super::lexer::{lex, Spanned, Tok};

/// A path mask element (`[= 65000 * =]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MaskItem {
    Asn(u32),
    /// `*`: any number of ASNs.
    Any,
    /// `?`: exactly one ASN.
    One,
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Int(i64),
    Bool(bool),
    Ip(IpAddr),
    Prefix(IpNet),
    Str(String),
    /// `RTS_BGP` and the like.
    Enum(String),
    /// `[ P{a,b}, ... ]`.
    PrefixSet(Vec<(IpNet, u8, u8)>),
    /// `[ RTS_BGP, ... ]`.
    EnumSet(Vec<String>),
    /// `[= ... =]`.
    PathMask(Vec<MaskItem>),
    /// `(a, b)` or `(a, b, c)`.
    Tuple(Vec<Expr>),
    /// An attribute or a variable.
    Name(String),
    Defined(Box<Expr>),
    Not(Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Accept,
    Reject,
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    Assign(String, Expr),
    /// `ATTR.add(x)` / `ATTR.prepend(x)`.
    Method(String, String, Expr),
    Call(String, Vec<Expr>),
}

/// A function.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub params: Vec<String>,
    pub body: Vec<Stmt>,
}

/// An import or export filter of a protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum FilterRef {
    All,
    None,
    Inline(Vec<Stmt>),
    Named(String),
}

/// `protocol bgp` with its template applied.
#[derive(Clone, Debug, PartialEq)]
pub struct BgpProtocol {
    pub name: String,
    pub local_as: Option<u32>,
    pub neighbor: Option<IpAddr>,
    pub port: Option<u16>,
    pub remote_as: Option<u32>,
    pub source_address: Option<IpAddr>,
    pub ttl_security: bool,
    /// `multihop` (Some(None)) or `multihop N`.
    pub multihop: Option<Option<u8>>,
    pub import: FilterRef,
    pub export: FilterRef,
    pub passive: bool,
    pub graceful_restart: bool,
    pub graceful_restart_time: Option<u32>,
    pub keepalive: Option<u32>,
    pub rr_client: bool,
    pub rr_cluster_id: Option<Ipv4Addr>,
    pub password: Option<String>,
    pub next_hop_keep: bool,
    pub next_hop_self: bool,
    pub allow_local_as: Option<u32>,
    pub add_paths: bool,
    pub gateway_recursive: bool,
}

impl BgpProtocol {
    fn new(name: &str) -> BgpProtocol {
        BgpProtocol {
            name: name.to_owned(),
            local_as: None,
            neighbor: None,
            port: None,
            remote_as: None,
            source_address: None,
            ttl_security: false,
            multihop: None,
            import: FilterRef::All,
            export: FilterRef::None,
            passive: false,
            graceful_restart: false,
            graceful_restart_time: None,
            keepalive: None,
            rr_client: false,
            rr_cluster_id: None,
            password: None,
            next_hop_keep: false,
            next_hop_self: false,
            allow_local_as: None,
            add_paths: false,
            gateway_recursive: false,
        }
    }
}

/// A static route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    pub prefix: IpNet,
    /// `via GW`; `None`: `blackhole`.
    pub via: Option<IpAddr>,
}

/// A parsed configuration (main file and its includes).
#[derive(Clone, Debug, Default)]
pub struct BirdConfig {
    pub router_id: Option<Ipv4Addr>,
    pub listen_address: Option<IpAddr>,
    pub listen_port: Option<u16>,
    pub functions: HashMap<String, Function>,
    pub filters: HashMap<String, Vec<Stmt>>,
    pub bgp: Vec<BgpProtocol>,
    pub static_routes: Vec<StaticRoute>,
    /// The kernel protocol's export filter.
    pub kernel_export: Option<FilterRef>,
}

struct Parser<'a> {
    toks: Vec<Spanned>,
    pos: usize,
    file: &'a str,
}

type R<T> = Result<T, String>;

impl Parser<'_> {
    fn err<T>(&self, msg: impl std::fmt::Display) -> R<T> {
        let line = self
            .toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(0, |t| t.line);
        Err(format!("{}:{line}: {msg}", self.file))
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.tok)
    }

    fn next(&mut self) -> R<Tok> {
        match self.toks.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.tok.clone())
            }
            None => self.err("unexpected end of file"),
        }
    }

    fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::P(x)) if *x == p)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn expect(&mut self, p: &str) -> R<()> {
        if self.is(p) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(format!("expected {p}, found {:?}", self.peek()))
        }
    }

    fn word(&mut self) -> R<String> {
        match self.next()? {
            Tok::Word(w) => Ok(w),
            t => self.err(format!("expected a word, found {t}")),
        }
    }

    fn keyword(&mut self, w: &str) -> R<()> {
        if self.is_word(w) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(format!("expected {w}, found {:?}", self.peek()))
        }
    }

    // ---------------------------------------------------------------- statements

    fn block(&mut self) -> R<Vec<Stmt>> {
        self.expect("{")?;
        let mut v = Vec::new();
        while !self.is("}") {
            v.push(self.stmt()?);
        }
        self.expect("}")?;
        Ok(v)
    }

    fn stmt_or_block(&mut self) -> R<Vec<Stmt>> {
        if self.is("{") {
            self.block()
        } else {
            Ok(vec![self.stmt()?])
        }
    }

    fn stmt(&mut self) -> R<Stmt> {
        match self.next()? {
            Tok::Word(w) if w == "if" => {
                let cond = self.expr()?;
                self.keyword("then")?;
                let then = self.stmt_or_block()?;
                let els = if self.is_word("else") {
                    self.pos += 1;
                    self.stmt_or_block()?
                } else {
                    Vec::new()
                };
                Ok(Stmt::If(cond, then, els))
            }
            Tok::Word(w) if w == "accept" => {
                self.expect(";")?;
                Ok(Stmt::Accept)
            }
            Tok::Word(w) if w == "reject" => {
                self.expect(";")?;
                Ok(Stmt::Reject)
            }
            Tok::Word(w) if w.contains('.') => {
                let (attr, method) = w.split_once('.').unwrap_or((&w, ""));
                if method != "add" && method != "prepend" {
                    return self.err(format!("unknown method {w}"));
                }
                self.expect("(")?;
                let arg = self.expr()?;
                self.expect(")")?;
                self.expect(";")?;
                Ok(Stmt::Method(attr.to_owned(), method.to_owned(), arg))
            }
            Tok::Word(w) if self.is("=") => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect(";")?;
                Ok(Stmt::Assign(w, e))
            }
            Tok::Word(w) | Tok::Sym(w) if self.is("(") => {
                self.pos += 1;
                let mut args = Vec::new();
                while !self.is(")") {
                    args.push(self.expr()?);
                    if self.is(",") {
                        self.pos += 1;
                    }
                }
                self.expect(")")?;
                self.expect(";")?;
                Ok(Stmt::Call(w, args))
            }
            t => self.err(format!("unknown statement starting with {t}")),
        }
    }

    // ---------------------------------------------------------------- expressions
    // BIRD 1.6: && and || share one precedence level (left associative), comparisons bind
    // tighter, then + and -, then unary !.

    fn expr(&mut self) -> R<Expr> {
        let mut l = self.cmp()?;
        loop {
            let op = match self.peek() {
                Some(Tok::P("&&")) => "&&",
                Some(Tok::P("||")) => "||",
                _ => return Ok(l),
            };
            self.pos += 1;
            let r = self.cmp()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn cmp(&mut self) -> R<Expr> {
        let l = self.add()?;
        let op = match self.peek() {
            Some(Tok::P(p @ ("=" | "!=" | "<" | ">" | "<=" | ">=" | "~" | "!~"))) => *p,
            _ => return Ok(l),
        };
        self.pos += 1;
        let r = self.add()?;
        Ok(Expr::Bin(op, Box::new(l), Box::new(r)))
    }

    fn add(&mut self) -> R<Expr> {
        let mut l = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::P("+")) => "+",
                Some(Tok::P("-")) => "-",
                _ => return Ok(l),
            };
            self.pos += 1;
            let r = self.unary()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn unary(&mut self) -> R<Expr> {
        if self.is("!") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> R<Expr> {
        match self.next()? {
            Tok::P("(") => {
                let first = self.expr()?;
                if self.is(",") {
                    let mut items = vec![first];
                    while self.is(",") {
                        self.pos += 1;
                        items.push(self.expr()?);
                    }
                    self.expect(")")?;
                    return Ok(Expr::Tuple(items));
                }
                self.expect(")")?;
                Ok(first)
            }
            Tok::P("[") => self.set(),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Word(w) if w == "defined" => {
                self.expect("(")?;
                let e = self.expr()?;
                self.expect(")")?;
                Ok(Expr::Defined(Box::new(e)))
            }
            Tok::Word(w) => Ok(word_value(&w)),
            t => self.err(format!("unexpected {t} in an expression")),
        }
    }

    fn set(&mut self) -> R<Expr> {
        if self.is("=") {
            self.pos += 1;
            let mut items = Vec::new();
            loop {
                match self.next()? {
                    Tok::P("=") => break,
                    Tok::P("*") => items.push(MaskItem::Any),
                    Tok::Word(w) if w == "?" => items.push(MaskItem::One),
                    Tok::Word(w) => match w.parse() {
                        Ok(n) => items.push(MaskItem::Asn(n)),
                        Err(_) => return self.err(format!("bad path mask item {w}")),
                    },
                    t => return self.err(format!("bad path mask item {t}")),
                }
            }
            self.expect("]")?;
            return Ok(Expr::PathMask(items));
        }
        let mut prefixes = Vec::new();
        let mut enums = Vec::new();
        loop {
            let w = self.word()?;
            match word_value(&w) {
                Expr::Prefix(p) => {
                    let (lo, hi) = if self.is("{") {
                        self.pos += 1;
                        let a: u8 = self.word()?.parse().map_err(|e| format!("{e}"))?;
                        self.expect(",")?;
                        let b: u8 = self.word()?.parse().map_err(|e| format!("{e}"))?;
                        self.expect("}")?;
                        if a > b || b > p.max_prefix_len() {
                            return self.err(format!("invalid prefix pattern range {{{a}, {b}}}"));
                        }
                        (a, b)
                    } else if self.is("+") {
                        self.pos += 1;
                        (p.prefix_len(), p.max_prefix_len())
                    } else {
                        (p.prefix_len(), p.prefix_len())
                    };
                    prefixes.push((p, lo, hi));
                }
                Expr::Enum(e) => enums.push(e),
                other => return self.err(format!("unsupported set element {other:?}")),
            }
            if self.is(",") {
                self.pos += 1;
                continue;
            }
            self.expect("]")?;
            break;
        }
        match (prefixes.is_empty(), enums.is_empty()) {
            (false, true) => Ok(Expr::PrefixSet(prefixes)),
            (true, false) => Ok(Expr::EnumSet(enums)),
            _ => self.err("mixed or empty set"),
        }
    }

    // ---------------------------------------------------------------- top level

    /// The tokens of one option up to its `;` (braces kept balanced).
    fn option_tokens(&mut self) -> R<Vec<Tok>> {
        let mut v = Vec::new();
        let mut depth = 0usize;
        loop {
            let t = self.next()?;
            match &t {
                Tok::P("{") => depth += 1,
                Tok::P("}") => depth = depth.saturating_sub(1),
                Tok::P(";") if depth == 0 => return Ok(v),
                _ => {}
            }
            v.push(t);
        }
    }

    /// The options of a template or protocol body, with `import/export filter { ... }`
    /// parsed as statements.
    fn options(&mut self) -> R<Vec<Opt>> {
        self.expect("{")?;
        let mut v = Vec::new();
        while !self.is("}") {
            let dir = match self.peek() {
                Some(Tok::Word(w)) if w == "import" || w == "export" => Some(w.clone()),
                _ => None,
            };
            if let Some(d) = dir {
                if matches!(self.peek_at(1), Some(Tok::Word(w)) if w == "filter")
                    && matches!(self.peek_at(2), Some(Tok::P("{")))
                {
                    self.pos += 2;
                    let body = self.block()?;
                    self.expect(";")?;
                    v.push(Opt::Filter(d, FilterRef::Inline(body)));
                    continue;
                }
            }
            v.push(Opt::Tokens(self.option_tokens()?));
        }
        self.expect("}")?;
        Ok(v)
    }
}

/// One option of a protocol body.
#[derive(Clone, Debug)]
enum Opt {
    Filter(String, FilterRef),
    Tokens(Vec<Tok>),
}

/// What a bare word means in an expression.
fn word_value(w: &str) -> Expr {
    if let Ok(n) = w.parse::<i64>() {
        return Expr::Int(n);
    }
    if let Ok(p) = w.parse::<IpNet>() {
        return Expr::Prefix(p);
    }
    if let Ok(a) = w.parse::<IpAddr>() {
        return Expr::Ip(a);
    }
    match w {
        "true" => Expr::Bool(true),
        "false" => Expr::Bool(false),
        _ if w.starts_with("RTS_") => Expr::Enum(w.to_owned()),
        _ => Expr::Name(w.to_owned()),
    }
}

fn words(toks: &[Tok]) -> Vec<String> {
    toks.iter().map(ToString::to_string).collect()
}

/// Applies one option to a BGP protocol; unknown options are errors.
fn bgp_option(p: &mut BgpProtocol, o: &Opt) -> R<()> {
    let toks = match o {
        Opt::Filter(d, f) => {
            if d == "import" {
                p.import = f.clone();
            } else {
                p.export = f.clone();
            }
            return Ok(());
        }
        Opt::Tokens(t) => t,
    };
    let w = words(toks);
    let ws: Vec<&str> = w.iter().map(String::as_str).collect();
    let num = |s: &str| s.parse::<u32>().map_err(|e| format!("{s}: {e}"));
    let ip = |s: &str| s.parse::<IpAddr>().map_err(|e| format!("{s}: {e}"));
    match ws.as_slice() {
        ["debug", ..] | ["description", _] | ["connect", "delay", "time", _] => {}
        ["connect", "retry", "time", _] | ["error", "wait", "time", _, ",", _] => {}
        ["local", "as", n] => p.local_as = Some(num(n)?),
        ["neighbor", a, "as", n] => {
            p.neighbor = Some(ip(a)?);
            p.remote_as = Some(num(n)?);
        }
        ["neighbor", a, "port", port, "as", n] => {
            p.neighbor = Some(ip(a)?);
            p.port = Some(num(port)? as u16);
            p.remote_as = Some(num(n)?);
        }
        ["gateway", "recursive"] => p.gateway_recursive = true,
        ["add", "paths", "on"] => p.add_paths = true,
        ["graceful", "restart"] => p.graceful_restart = true,
        ["graceful", "restart", "time", n] => p.graceful_restart_time = Some(num(n)?),
        ["source", "address", a] => p.source_address = Some(ip(a)?),
        ["ttl", "security", "on"] => p.ttl_security = true,
        ["ttl", "security", "off"] => p.ttl_security = false,
        ["multihop"] => p.multihop = Some(None),
        ["multihop", n] => p.multihop = Some(Some(num(n)? as u8)),
        ["import", "all"] => p.import = FilterRef::All,
        ["import", "none"] => p.import = FilterRef::None,
        ["export", "all"] => p.export = FilterRef::All,
        ["export", "none"] => p.export = FilterRef::None,
        ["import", "filter", n] => p.import = FilterRef::Named(n.to_string()),
        ["export", "filter", n] => p.export = FilterRef::Named(n.to_string()),
        ["passive", "on"] => p.passive = true,
        ["keepalive", "time", n] => p.keepalive = Some(num(n)?),
        ["rr", "client"] => p.rr_client = true,
        ["rr", "cluster", "id", a] => {
            p.rr_cluster_id = Some(a.parse().map_err(|e| format!("{a}: {e}"))?)
        }
        ["password", pw] => p.password = Some(pw.trim_matches('"').to_owned()),
        ["next", "hop", "keep"] => p.next_hop_keep = true,
        ["next", "hop", "self"] => p.next_hop_self = true,
        ["allow", "local", "as", n] => p.allow_local_as = Some(num(n)?),
        ["allow", "local", "as"] => p.allow_local_as = Some(1),
        _ => return Err(format!("unknown bgp option: {}", w.join(" "))),
    }
    Ok(())
}

/// Options of the other protocols this checker knows (and ignores, or keeps).
fn other_option(kind: &str, o: &Opt, cfg: &mut BirdConfig) -> R<()> {
    let toks = match o {
        Opt::Filter(d, f) if kind == "kernel" && d == "export" => {
            cfg.kernel_export = Some(f.clone());
            return Ok(());
        }
        Opt::Filter(d, _) => return Err(format!("unexpected {d} filter in {kind}")),
        Opt::Tokens(t) => t,
    };
    let w = words(toks);
    let ws: Vec<&str> = w.iter().map(String::as_str).collect();
    match (kind, ws.as_slice()) {
        (_, ["debug", ..]) => {}
        ("kernel", ["learn"] | ["persist"] | ["scan", "time", _] | ["import", "all"]) => {}
        ("kernel", ["graceful", "restart"] | ["merge", "paths", "on"]) => {}
        ("kernel", ["export", "filter", n]) => {
            cfg.kernel_export = Some(FilterRef::Named(n.to_string()))
        }
        ("device", ["scan", "time", _]) => {}
        ("direct", ["interface", ..]) => {}
        ("static", ["route", p, "blackhole"]) => cfg.static_routes.push(StaticRoute {
            prefix: p.parse().map_err(|e| format!("{p}: {e}"))?,
            via: None,
        }),
        ("static", ["route", p, "via", gw]) => cfg.static_routes.push(StaticRoute {
            prefix: p.parse().map_err(|e| format!("{p}: {e}"))?,
            via: Some(gw.parse().map_err(|e| format!("{gw}: {e}"))?),
        }),
        _ => return Err(format!("unknown {kind} option: {}", w.join(" "))),
    }
    Ok(())
}

fn parse_into(
    path: &Path,
    cfg: &mut BirdConfig,
    templates: &mut HashMap<String, (String, Vec<Opt>)>,
) -> R<()> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = path.display().to_string();
    let mut p = Parser {
        toks: lex(&text, &file)?,
        pos: 0,
        file: &file,
    };
    while p.peek().is_some() {
        let kw = p.word()?;
        match kw.as_str() {
            "include" => {
                let Tok::Str(name) = p.next()? else {
                    return p.err("include needs a file name");
                };
                p.expect(";")?;
                let dir = path.parent().unwrap_or(Path::new("."));
                parse_into(&dir.join(name), cfg, templates)?;
            }
            "router" => {
                p.keyword("id")?;
                let a = p.word()?;
                cfg.router_id = Some(a.parse().map_err(|e| format!("{a}: {e}"))?);
                p.expect(";")?;
            }
            "listen" => {
                p.keyword("bgp")?;
                let toks = p.option_tokens()?;
                let w = words(&toks);
                let mut it = w.iter();
                while let Some(k) = it.next() {
                    let v = it.next().ok_or("listen bgp: missing value")?;
                    match k.as_str() {
                        "address" => {
                            cfg.listen_address = Some(v.parse().map_err(|e| format!("{v}: {e}"))?)
                        }
                        "port" => {
                            cfg.listen_port = Some(v.parse().map_err(|e| format!("{v}: {e}"))?)
                        }
                        other => return Err(format!("listen bgp: unknown {other}")),
                    }
                }
            }
            "template" => {
                let kind = p.word()?;
                let name = p.word()?;
                let opts = p.options()?;
                templates.insert(name, (kind, opts));
            }
            "protocol" => {
                let kind = p.word()?;
                let mut name = kind.clone();
                if let Some(Tok::Word(w)) = p.peek() {
                    if w != "from" {
                        name = w.clone();
                        p.pos += 1;
                    }
                }
                let mut opts = Vec::new();
                if p.is_word("from") {
                    p.pos += 1;
                    let t = p.word()?;
                    let (tk, topts) = templates
                        .get(&t)
                        .ok_or_else(|| format!("{file}: unknown template {t}"))?;
                    if *tk != kind {
                        return Err(format!("{file}: template {t} is a {tk}, not a {kind}"));
                    }
                    opts.extend(topts.iter().cloned());
                }
                opts.extend(p.options()?);
                if kind == "bgp" {
                    let mut b = BgpProtocol::new(&name);
                    for o in &opts {
                        bgp_option(&mut b, o)
                            .map_err(|e| format!("{file}: protocol {name}: {e}"))?;
                    }
                    cfg.bgp.push(b);
                } else {
                    for o in &opts {
                        other_option(&kind, o, cfg)
                            .map_err(|e| format!("{file}: protocol {name}: {e}"))?;
                    }
                }
            }
            "function" => {
                let name = match p.next()? {
                    Tok::Word(w) | Tok::Sym(w) => w,
                    t => return p.err(format!("bad function name {t}")),
                };
                p.expect("(")?;
                let mut params = Vec::new();
                while !p.is(")") {
                    p.keyword("bool")?;
                    params.push(p.word()?);
                    if p.is(",") {
                        p.pos += 1;
                    }
                }
                p.expect(")")?;
                let body = p.block()?;
                cfg.functions.insert(name, Function { params, body });
            }
            "filter" => {
                let name = p.word()?;
                let body = p.block()?;
                cfg.filters.insert(name, body);
            }
            other => return p.err(format!("unknown top-level item {other}")),
        }
    }
    Ok(())
}

/// Parses a BIRD 1.6 configuration file and its includes.
pub fn parse_file(path: &Path) -> R<BirdConfig> {
    let mut cfg = BirdConfig::default();
    let mut templates = HashMap::new();
    parse_into(path, &mut cfg, &mut templates)?;
    Ok(cfg)
}
