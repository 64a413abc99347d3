//! Build script: embeds the git revision bgpd was built from (`bgpd --version`), see
//! build/git_revision.rs.

include!("../build/git_revision.rs");

fn main() {
    emit_git_revision();
}
