//! Files that hold TCP-MD5 (or BFD) passwords must be safe from other local users (OpenBGPD's rule,
//! `check_file_secrecy`): a file anyone but root or bgpd's own user owns, or that its group
//! or everyone may write, could change a password or add a peer, so bgpd refuses it; one
//! everyone may read leaks the passwords, so bgpd warns.
//!
//! The checks use the metadata of the descriptor the file was read through, so a file
//! swapped between the check and the read is the one checked.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

use tracing::warn;

use super::file::FileConfig;
use super::{ConfigError, Source};

/// Whether a parsed file holds a password (a peer or template with `password`).
pub(super) fn holds_passwords(f: &FileConfig) -> bool {
    f.peers.values().chain(f.templates.values()).any(|p| {
        p.password.as_ref().is_some_and(|pw| !pw.is_empty())
            || p.bfd
                .as_ref()
                .and_then(|b| b.get_ref().password.as_ref())
                .is_some_and(|pw| !pw.is_empty())
    })
}

/// Refuses `src` (described by `meta`) when it holds passwords and others may change it;
/// warns when everyone may read it.
pub(super) fn check(src: &Source, meta: &Metadata) -> Result<(), ConfigError> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let refuse = |why: String| {
        ConfigError::File {
        path: src.path.clone(),
        message: format!("{why}; it holds passwords: refusing it (make it owned by root or bgpd's user, and writable only by its owner)"),
    }
    };
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(refuse(format!("owned by uid {}", meta.uid())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "writable by its group or by everyone (mode {:o})",
            meta.mode() & 0o777
        )));
    }
    if meta.mode() & 0o004 != 0 {
        warn!(
            file = %src.path.display(),
            mode = format!("{:o}", meta.mode() & 0o777),
            "configuration file with passwords is readable by everyone"
        );
    }
    Ok(())
}
