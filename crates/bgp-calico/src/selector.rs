//! Calico's label selector language, as `BGPPeer.nodeSelector` and `peerSelector` use it.
//!
//! ```text
//! expr      := and ("||" and)*
//! and       := operation ("&&" operation)*
//! operation := "!"* ( "has(" label ")" | "all()" | "global()" | "(" expr ")"
//!                   | label ("==" | "!=" | "contains" | "starts with" | "ends with") string
//!                   | label ("in" | "not in") "{" [string ("," string)*] "}" )
//! string    := '"' chars '"' | "'" chars "'"
//! label     := [a-zA-Z0-9_./-]+
//! ```
//!
//! An empty selector matches everything. Semantics follow Calico's: `==`, `contains`,
//! `starts with`, `ends with` and `in` need the label to be present; `!=` and `not in` hold
//! when it is absent; `global()` holds for every node (nodes are not namespaced). Leading
//! `!`s apply to the whole operation that follows.

use std::collections::BTreeMap;
use std::fmt;

/// Longest label Calico accepts.
const MAX_LABEL_LEN: usize = 512;

/// A parsed selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    root: Node,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    All,
    Has(String),
    Eq(String, String),
    Ne(String, String),
    Contains(String, String),
    StartsWith(String, String),
    EndsWith(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

/// A selector that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("selector {selector:?}: {message}")]
pub struct SelectorError {
    /// The text.
    pub selector: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Label(String),
    Str(String),
    LBrace,
    RBrace,
    Comma,
    Eq,
    Ne,
    In,
    Not,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    All,
    Global,
    Has(String),
    LParen,
    RParen,
    And,
    Or,
    Eof,
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-')
}

fn cut_ident(s: &str) -> Result<(&str, &str), String> {
    let end = s.bytes().position(|c| !ident_char(c)).unwrap_or(s.len());
    if end == 0 {
        return Err("expected a label".into());
    }
    if end > MAX_LABEL_LEN {
        return Err("label too long".into());
    }
    Ok(s.split_at(end))
}

/// `word` followed by a word boundary.
fn cut_word<'a>(s: &'a str, words: &[&str]) -> Option<&'a str> {
    let mut rest = s;
    for w in words {
        rest = rest.strip_prefix(w)?;
        rest = rest.trim_start_matches([' ', '\t']);
    }
    match rest.bytes().next() {
        Some(c) if ident_char(c) => None,
        _ => Some(rest),
    }
}

fn tokenize(input: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut s = input;
    loop {
        s = s.trim_start_matches([' ', '\t']);
        let Some(c) = s.bytes().next() else {
            out.push(Tok::Eof);
            return Ok(out);
        };
        let after_label = matches!(out.last(), Some(Tok::Label(_)));
        let rest = match c {
            b'(' => {
                out.push(Tok::LParen);
                &s[1..]
            }
            b')' => {
                out.push(Tok::RParen);
                &s[1..]
            }
            b'{' => {
                out.push(Tok::LBrace);
                &s[1..]
            }
            b'}' => {
                out.push(Tok::RBrace);
                &s[1..]
            }
            b',' => {
                out.push(Tok::Comma);
                &s[1..]
            }
            b'"' | b'\'' => {
                let q = c as char;
                let body = &s[1..];
                let end = body.find(q).ok_or("unterminated string")?;
                out.push(Tok::Str(body[..end].to_owned()));
                &body[end + 1..]
            }
            b'=' => {
                let r = s.strip_prefix("==").ok_or("expected ==")?;
                out.push(Tok::Eq);
                r
            }
            b'!' => {
                if let Some(r) = s.strip_prefix("!=") {
                    out.push(Tok::Ne);
                    r
                } else {
                    out.push(Tok::Not);
                    &s[1..]
                }
            }
            b'&' => {
                let r = s.strip_prefix("&&").ok_or("expected &&")?;
                out.push(Tok::And);
                r
            }
            b'|' => {
                let r = s.strip_prefix("||").ok_or("expected ||")?;
                out.push(Tok::Or);
                r
            }
            _ if after_label => {
                if let Some(r) = cut_word(s, &["contains"]) {
                    out.push(Tok::Contains);
                    r
                } else if let Some(r) = cut_word(s, &["starts", "with"]) {
                    out.push(Tok::StartsWith);
                    r
                } else if let Some(r) = cut_word(s, &["ends", "with"]) {
                    out.push(Tok::EndsWith);
                    r
                } else if let Some(r) = cut_word(s, &["not", "in"]) {
                    out.push(Tok::NotIn);
                    r
                } else if let Some(r) = cut_word(s, &["in"]) {
                    out.push(Tok::In);
                    r
                } else {
                    return Err("expected an operator after a label".into());
                }
            }
            _ => {
                if let Some(r) = s.strip_prefix("has(") {
                    let r = r.trim_start_matches([' ', '\t']);
                    let (label, r) = cut_ident(r)?;
                    let r = r
                        .trim_start_matches([' ', '\t'])
                        .strip_prefix(')')
                        .ok_or("no closing ) after has(")?;
                    out.push(Tok::Has(label.to_owned()));
                    r
                } else if let Some(r) = s.strip_prefix("all(") {
                    let r = r
                        .trim_start_matches([' ', '\t'])
                        .strip_prefix(')')
                        .ok_or("no closing ) after all(")?;
                    out.push(Tok::All);
                    r
                } else if let Some(r) = s.strip_prefix("global(") {
                    let r = r
                        .trim_start_matches([' ', '\t'])
                        .strip_prefix(')')
                        .ok_or("no closing ) after global(")?;
                    out.push(Tok::Global);
                    r
                } else {
                    let (label, r) = cut_ident(s)?;
                    out.push(Tok::Label(label.to_owned()));
                    r
                }
            }
        };
        s = rest;
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).unwrap_or(&Tok::Eof)
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Node, String> {
        let mut v = vec![self.and()?];
        while *self.peek() == Tok::Or {
            self.pos += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Node::Or(v)
        })
    }

    fn and(&mut self) -> Result<Node, String> {
        let mut v = vec![self.operation()?];
        while *self.peek() == Tok::And {
            self.pos += 1;
            v.push(self.operation()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Node::And(v)
        })
    }

    fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Tok::Str(s) => Ok(s),
            _ => Err("expected a string".into()),
        }
    }

    fn operation(&mut self) -> Result<Node, String> {
        let mut negated = false;
        while *self.peek() == Tok::Not {
            negated = !negated;
            self.pos += 1;
        }
        let node = match self.next() {
            Tok::Has(l) => Node::Has(l),
            Tok::All | Tok::Global => Node::All,
            Tok::LParen => {
                let n = self.or()?;
                if self.next() != Tok::RParen {
                    return Err("expected )".into());
                }
                n
            }
            Tok::Label(l) => match self.next() {
                Tok::Eq => Node::Eq(l, self.string()?),
                Tok::Ne => Node::Ne(l, self.string()?),
                Tok::Contains => Node::Contains(l, self.string()?),
                Tok::StartsWith => Node::StartsWith(l, self.string()?),
                Tok::EndsWith => Node::EndsWith(l, self.string()?),
                op @ (Tok::In | Tok::NotIn) => {
                    if self.next() != Tok::LBrace {
                        return Err("expected a set literal {...}".into());
                    }
                    let mut values = Vec::new();
                    while let Tok::Str(s) = self.peek().clone() {
                        values.push(s);
                        self.pos += 1;
                        if *self.peek() == Tok::Comma {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                    if self.next() != Tok::RBrace {
                        return Err("expected }".into());
                    }
                    values.sort();
                    values.dedup();
                    if op == Tok::In {
                        Node::In(l, values)
                    } else {
                        Node::NotIn(l, values)
                    }
                }
                _ => return Err(format!("expected an operator after label {l:?}")),
            },
            Tok::Eof => return Err("unexpected end of selector".into()),
            t => return Err(format!("unexpected {t:?}")),
        };
        Ok(if negated {
            Node::Not(Box::new(node))
        } else {
            node
        })
    }
}

impl Selector {
    /// Parses a selector.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let err = |message: String| SelectorError {
            selector: text.to_owned(),
            message,
        };
        let toks = tokenize(text).map_err(err)?;
        if toks.first() == Some(&Tok::Eof) {
            return Ok(Selector {
                root: Node::All,
                text: text.to_owned(),
            });
        }
        let mut p = Parser { toks, pos: 0 };
        let root = p.or().map_err(err)?;
        if *p.peek() != Tok::Eof {
            return Err(err("unexpected content at the end".into()));
        }
        Ok(Selector {
            root,
            text: text.to_owned(),
        })
    }

    /// Whether `labels` match.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        eval(&self.root, labels)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn eval(n: &Node, labels: &BTreeMap<String, String>) -> bool {
    let get = |l: &String| labels.get(l);
    match n {
        Node::All => true,
        Node::Has(l) => get(l).is_some(),
        Node::Eq(l, v) => get(l) == Some(v),
        Node::Ne(l, v) => get(l) != Some(v),
        Node::Contains(l, v) => get(l).is_some_and(|x| x.contains(v.as_str())),
        Node::StartsWith(l, v) => get(l).is_some_and(|x| x.starts_with(v.as_str())),
        Node::EndsWith(l, v) => get(l).is_some_and(|x| x.ends_with(v.as_str())),
        Node::In(l, set) => get(l).is_some_and(|x| set.binary_search(x).is_ok()),
        Node::NotIn(l, set) => get(l).is_none_or(|x| set.binary_search(x).is_err()),
        Node::Not(inner) => !eval(inner, labels),
        Node::And(v) => v.iter().all(|x| eval(x, labels)),
        Node::Or(v) => v.iter().any(|x| eval(x, labels)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn m(sel: &str, l: &[(&str, &str)]) -> bool {
        Selector::parse(sel).unwrap().matches(&labels(l))
    }

    #[test]
    fn operators() {
        assert!(m("", &[]));
        assert!(m("all()", &[]));
        assert!(m("global()", &[]));
        assert!(m("group=='one'", &[("group", "one")]));
        assert!(!m("group == \"one\"", &[("group", "two")]));
        assert!(!m("group=='one'", &[]));
        assert!(m("group!='one'", &[]));
        assert!(m("has(node)", &[("node", "yes")]));
        assert!(!m("!has(node)", &[("node", "yes")]));
        assert!(m("!!has(node)", &[("node", "")]));
        assert!(m("x in {'a', 'b'}", &[("x", "b")]));
        assert!(!m("x in {}", &[("x", "b")]));
        assert!(m("x not in {'a'}", &[]));
        assert!(!m("x not in {'a'}", &[("x", "a")]));
        assert!(m("rack contains 'r1'", &[("rack", "xr1x")]));
        assert!(m("rack starts with 'r'", &[("rack", "r9")]));
        assert!(m("rack ends  with '9'", &[("rack", "r9")]));
        assert!(m(
            "kubernetes.io/hostname == 'n-1'",
            &[("kubernetes.io/hostname", "n-1")]
        ));
    }

    #[test]
    fn precedence_and_negation() {
        // && binds tighter than ||.
        let l = [("a", "1"), ("c", "1")];
        assert!(m("a == '1' || b == '1' && c == '2'", &l));
        assert!(!m("(a == '1' || b == '1') && c == '2'", &l));
        // ! applies to the whole parenthesised expression.
        assert!(!m("!(a == '1' || b == '1')", &l));
        assert!(m("!a == '2'", &l));
    }

    #[test]
    fn errors() {
        for bad in [
            "a = 'b'",
            "a == b",
            "has(a",
            "(a == 'b'",
            "a == 'b' c",
            "a in 'b'",
            "a in {'b'",
            "'unterminated",
            "a &",
            "a || ",
            "a",
            "x ===",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad:?} should not parse");
        }
        let e = Selector::parse("a ==").unwrap_err();
        assert!(e.to_string().contains("\"a ==\""), "{e}");
    }

    #[test]
    fn display_keeps_the_text() {
        assert_eq!(
            Selector::parse("has(x) && y=='1'").unwrap().to_string(),
            "has(x) && y=='1'"
        );
    }
}
