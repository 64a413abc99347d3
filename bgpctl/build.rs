//! Build script: embeds the git revision bgpctl was built from (`bgpctl --version`).

fn main() {
    bgp_build_info::emit_git_revision();
}
