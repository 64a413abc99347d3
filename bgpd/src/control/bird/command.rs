//! The commands the socket answers, parsed as BIRD's CLI grammar reads them (a bare word
//! is a symbol, a quoted string a pattern), and the refusals that need no state: `8007
//! Access denied` for commands that would change the daemon, `9001 syntax error` for the
//! rest.

use super::reply::Reply;

/// Which protocols `show protocols` lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Select {
    /// Every protocol.
    All,
    /// The protocol of this name (a bare symbol in BIRD's grammar).
    Name(String),
    /// Names matching a shell pattern with `*` and `?` (a quoted string).
    Pattern(String),
}

/// A command of the subset we answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BirdCommand {
    /// `show status`.
    ShowStatus,
    /// `show protocols [all] [NAME|"PATTERN"]`.
    ShowProtocols {
        /// With the detail block.
        all: bool,
        /// Which protocols.
        select: Select,
    },
    /// `show route count`.
    ShowRouteCount,
    /// `show route [protocol NAME]`.
    ShowRoute {
        /// Only routes of this protocol (session name, `kernel1`, `static1`).
        protocol: Option<String>,
    },
    /// A command that would change state: refused.
    Denied,
    /// Anything else.
    SyntaxError,
}

/// Commands of BIRD's CLI that act on the daemon; refused on this read-only socket.
const WRITE_COMMANDS: &[&str] = &[
    "configure",
    "enable",
    "disable",
    "restart",
    "reload",
    "down",
    "graceful",
    "debug",
    "mrtdump",
    "dump",
    "echo",
];

/// Splits a command line into words; a `"quoted string"` is one word, returned with a
/// flag saying it was quoted. `None` for an unterminated quote.
fn words(line: &str) -> Option<Vec<(String, bool)>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut w = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => w.push(c),
                    None => return None,
                }
            }
            out.push((w, true));
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' {
                    break;
                }
                w.push(c);
                chars.next();
            }
            out.push((w, false));
        }
    }
    Some(out)
}

/// Parses one command line.
pub fn parse(line: &str) -> BirdCommand {
    let Some(w) = words(line) else {
        return BirdCommand::SyntaxError;
    };
    let kw: Vec<&str> = w
        .iter()
        .map(|(s, quoted)| if *quoted { "" } else { s.as_str() })
        .collect();
    match kw.as_slice() {
        ["show", "status"] => BirdCommand::ShowStatus,
        ["show", "route", "count"] => BirdCommand::ShowRouteCount,
        ["show", "route"] => BirdCommand::ShowRoute { protocol: None },
        ["show", "route", "protocol", name] => BirdCommand::ShowRoute {
            protocol: Some((*name).to_owned()),
        },
        ["show", "protocols", rest @ ..] => {
            let (all, rest) = match rest {
                ["all", r @ ..] => (true, r),
                r => (false, r),
            };
            let select = match (rest, w.last()) {
                ([], _) => Select::All,
                ([_], Some((s, true))) => Select::Pattern(s.clone()),
                ([_], Some((s, false))) => Select::Name(s.clone()),
                _ => return BirdCommand::SyntaxError,
            };
            BirdCommand::ShowProtocols { all, select }
        }
        [first, ..] if WRITE_COMMANDS.contains(first) => BirdCommand::Denied,
        _ => BirdCommand::SyntaxError,
    }
}

/// BIRD's `patmatch`: `*` matches any run of characters, `?` any one.
pub fn pattern_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(&c) if c == '?' || c == n[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i.min(p.len())..].iter().all(|c| *c == '*')
}

/// The answer to a command that is refused without looking at any state: BIRD's
/// `9001 syntax error` (BIRD adds the parser's detail, such as `, unexpected
/// CF_SYM_UNDEFINED`) and its restricted-mode `8007 Access denied`.
pub fn refusal(cmd: &BirdCommand) -> Option<Reply> {
    let mut r = Reply::new();
    match cmd {
        BirdCommand::SyntaxError => r.end(9001, "syntax error"),
        BirdCommand::Denied => r.end(8007, "Access denied"),
        _ => return None,
    };
    Some(r)
}
