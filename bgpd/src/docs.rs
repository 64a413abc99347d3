//! `bgpd generate-docs --out DIR` and `bgpctl generate-docs --out DIR` (hidden): the man
//! page and shell completions, made from the command line's own definition so they never
//! disagree with `--help`. Packaging runs them (scripts/build-deb.sh); nothing generated is
//! committed. bgpctl compiles this same file.
//!
//! Writes `DIR/man/NAME.8` and `DIR/completions/` (`NAME.bash`, `_NAME` for zsh,
//! `NAME.fish`).

use std::path::Path;

use clap_complete::Shell;

/// Writes the man page (section 8) and the completions of `cmd` under `out`.
pub fn generate(mut cmd: clap::Command, out: &Path) -> std::io::Result<()> {
    let name = cmd.get_name().to_owned();
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .render(&mut page)?;
    std::fs::write(man.join(format!("{name}.8")), page)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, &name, &completions)?;
    }
    Ok(())
}
