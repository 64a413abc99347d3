//! Tokens of BIRD 1.6's configuration language, as far as calico-node's templates use it.
//! Anything else is an error naming the line, never silently skipped.

use std::fmt;

/// One token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// Keyword, identifier, number, address or prefix (`[A-Za-z0-9_.:/]+`).
    Word(String),
    /// `"..."`.
    Str(String),
    /// `'...'` (a quoted symbol such as a BGPFilter function name).
    Sym(String),
    /// Punctuation and operators: `{ } ( ) [ ] ; , = ~ < > ! + - * && || != !~ <= >=`.
    P(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "{w}"),
            Tok::Str(s) => write!(f, "\"{s}\""),
            Tok::Sym(s) => write!(f, "'{s}'"),
            Tok::P(p) => write!(f, "{p}"),
        }
    }
}

/// A token and the line it starts on.
#[derive(Clone, Debug)]
pub struct Spanned {
    pub tok: Tok,
    pub line: usize,
}

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/')
}

const TWO: [&str; 6] = ["&&", "||", "!=", "!~", "<=", ">="];
const ONE: [&str; 15] = [
    "{", "}", "(", ")", "[", "]", ";", ",", "=", "~", "<", ">", "!", "+", "-",
];

/// Splits `text` into tokens; `#` comments run to the end of the line.
pub fn lex(text: &str, file: &str) -> Result<Vec<Spanned>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line = 1;
    while let Some(&c) = chars.get(i) {
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '#' => {
                while chars.get(i).is_some_and(|&c| c != '\n') {
                    i += 1;
                }
            }
            '"' | '\'' => {
                let start = i + 1;
                let end = chars[start..]
                    .iter()
                    .position(|&x| x == c)
                    .map(|p| start + p)
                    .ok_or_else(|| format!("{file}:{line}: unterminated {c}"))?;
                let s: String = chars[start..end].iter().collect();
                out.push(Spanned {
                    tok: if c == '"' { Tok::Str(s) } else { Tok::Sym(s) },
                    line,
                });
                i = end + 1;
            }
            c if word_char(c) => {
                let start = i;
                while chars.get(i).is_some_and(|&c| word_char(c)) {
                    i += 1;
                }
                out.push(Spanned {
                    tok: Tok::Word(chars[start..i].iter().collect()),
                    line,
                });
            }
            '*' => {
                out.push(Spanned {
                    tok: Tok::P("*"),
                    line,
                });
                i += 1;
            }
            _ => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                if let Some(p) = TWO.iter().find(|p| **p == two) {
                    out.push(Spanned {
                        tok: Tok::P(p),
                        line,
                    });
                    i += 2;
                } else if let Some(p) = ONE.iter().find(|p| p.starts_with(c)) {
                    out.push(Spanned {
                        tok: Tok::P(p),
                        line,
                    });
                    i += 1;
                } else {
                    return Err(format!("{file}:{line}: unexpected character {c:?}"));
                }
            }
        }
    }
    Ok(out)
}
