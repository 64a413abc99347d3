//! Build script: embeds the git revision bgpd was built from (`bgpd --version`).

fn main() {
    bgp_build_info::emit_git_revision();
}
