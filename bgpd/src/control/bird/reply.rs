//! BIRD's reply framing (`nest/cli.c`): every line starts with a four-digit code, `CODE-`
//! opens a group, a line starting with a space continues the previous line's code, and
//! `CODE ` (a space after the code) ends the reply.

/// Longest reply line; BIRD writes `<line overflow>` past 512 bytes, we cut the text.
const MAX_LINE: usize = 500;

/// One reply, built line by line with BIRD's continuation rule: a continued line whose
/// code equals the previous line's is written with a leading space instead of the code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    out: String,
    last: Option<u16>,
}

impl Reply {
    /// An empty reply.
    pub fn new() -> Reply {
        Reply::default()
    }

    /// A line that more lines follow (`CODE-text` or ` text`).
    pub fn more(&mut self, code: u16, text: &str) -> &mut Reply {
        if self.last == Some(code) {
            self.out.push(' ');
        } else {
            self.out.push_str(&format!("{code:04}-"));
        }
        self.text(code, text)
    }

    /// The final line (`CODE text`).
    pub fn end(&mut self, code: u16, text: &str) -> &mut Reply {
        self.out.push_str(&format!("{code:04} "));
        self.text(code, text)
    }

    fn text(&mut self, code: u16, text: &str) -> &mut Reply {
        // Names, error texts and peer-supplied strings must not break the framing.
        let mut n = 0;
        for c in text.chars() {
            if n + c.len_utf8() > MAX_LINE {
                break;
            }
            n += c.len_utf8();
            // BIRD 2 starts next-hop lines of `show route` with a tab.
            self.out
                .push(if c.is_control() && c != '\t' { ' ' } else { c });
        }
        self.out.push('\n');
        self.last = Some(code);
        self
    }

    /// The reply as written to the socket.
    pub fn as_str(&self) -> &str {
        &self.out
    }
}

/// The greeting sent on connect.
pub fn hello(version: &str) -> Reply {
    let mut r = Reply::new();
    r.end(1, &format!("BIRD {version} ready."));
    r
}
