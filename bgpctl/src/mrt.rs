//! `bgpctl mrt ...`: MRT file commands.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum MrtCommand {
    /// Print every route and event of an MRT file (plain, .gz or .bz2) in the one-line
    /// format of `bgpdump -m`.
    Dump {
        /// The MRT file; `-` reads standard input.
        file: PathBuf,
        /// Do not report unreadable records on standard error.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Have bgpd write a TABLE_DUMP_V2 file of its Loc-RIB now (`.gz` or `.bz2`
    /// compresses); the file appears complete or not at all.
    Save {
        /// Where bgpd writes it (its directory must exist).
        file: PathBuf,
    },
}

pub fn run(conn: &crate::control::Conn, cmd: MrtCommand) -> ExitCode {
    match cmd {
        MrtCommand::Dump { file, quiet } => dump(&file, quiet),
        MrtCommand::Save { file } => crate::control::mrt_save(conn, &file),
    }
}

fn dump(file: &PathBuf, quiet: bool) -> ExitCode {
    let reader = if file.as_os_str() == "-" {
        bgp_mrt::MrtReader::decompressed(io::stdin())
    } else {
        bgp_mrt::open(file)
    };
    let reader = match reader {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bgpctl: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let stdout = io::stdout().lock();
    let stderr = io::stderr();
    let result = bgp_mrt::bgpdump::dump(reader, stdout, |e| {
        if !quiet {
            // Best effort: a closed stderr must not stop the dump.
            let _ = writeln!(stderr.lock(), "bgpctl: {}: {e}", file.display());
        }
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        // A closed pipe (`bgpctl mrt dump f | head`) is a normal way to stop reading.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bgpctl: writing output: {e}");
            ExitCode::FAILURE
        }
    }
}
