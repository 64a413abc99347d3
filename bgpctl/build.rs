//! Build script: embeds the git revision bgpctl was built from (`bgpctl --version`), see
//! build/git_revision.rs.

include!("../build/git_revision.rs");

fn main() {
    emit_git_revision();
}
