//! A checker's model of BIRD 1.6 (test support): the configuration subset calico-node's
//! confd renders, parsed ([`parse`]) and its filters evaluated ([`eval`]) with BIRD's
//! semantics, so the oracle can ask "what would BIRD do with this route" without running
//! BIRD. Anything outside the subset is an error, never a guess.

pub mod eval;
pub mod lexer;
pub mod parse;
