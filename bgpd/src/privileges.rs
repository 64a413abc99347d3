//! Least privilege, as BIRD, FRR and OpenBGPD do it: bgpd starts as root (or with the
//! capabilities below) and, before it starts any thread or opens any socket, keeps only
//! what it needs:
//!
//! | capability | what for |
//! |---|---|
//! | `CAP_NET_ADMIN` | writing routes to the kernel FIB (rtnetlink), `SO_RCVBUFFORCE` on netlink sockets, TCP-MD5 keys on listening sockets |
//! | `CAP_NET_BIND_SERVICE` | listening on port 179 (also for listeners added by a reload) |
//!
//! Everything else (`CAP_SYS_ADMIN`, `CAP_DAC_OVERRIDE`, `CAP_NET_RAW`: bgpd opens no raw
//! socket, ...) is dropped from the effective, permitted, inheritable and ambient sets and
//! from the bounding set, so nothing bgpd runs can get it back, and `no_new_privs` is set
//! (no setuid binary regains privileges). With `[global] user`/`group`, bgpd switches to
//! that user and group first, keeping the two capabilities across the switch
//! (`PR_SET_KEEPCAPS`).
//!
//! Capabilities are per thread on Linux: this must run while the process has one thread,
//! which is why `main` calls it before building the tokio runtime.

use std::io;

use crate::accounts;

/// `CAP_NET_BIND_SERVICE` (linux/capability.h).
pub const CAP_NET_BIND_SERVICE: u32 = 10;
/// `CAP_NET_ADMIN`.
pub const CAP_NET_ADMIN: u32 = 12;
/// `CAP_SETPCAP`: needed to drop from the bounding set.
const CAP_SETPCAP: u32 = 8;
/// What bgpd keeps.
pub const KEEP: [u32; 2] = [CAP_NET_ADMIN, CAP_NET_BIND_SERVICE];

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// What [`drop_privileges`] did, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// The user and group now in effect, when switched.
    pub switched_to: Option<(u32, u32)>,
    /// The bounding set was reduced (needs `CAP_SETPCAP`, which an unprivileged start
    /// does not have: nothing to drop then either).
    pub bounding_set: bool,
}

fn errno(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn capget() -> io::Result<[CapData; 2]> {
    let mut hdr = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget with a valid header and room for two data words (version 3).
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(errno("capget"));
    }
    Ok(data)
}

fn capset(data: &[CapData; 2]) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset with a valid header and two data words; it only reads them.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if rc != 0 {
        return Err(errno("capset"));
    }
    Ok(())
}

fn has(data: &[CapData; 2], cap: u32, set: impl Fn(&CapData) -> u32) -> bool {
    data.get((cap / 32) as usize)
        .is_some_and(|d| set(d) & (1 << (cap % 32)) != 0)
}

/// The highest capability number the kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}

fn prctl(op: libc::c_int, arg: libc::c_ulong, what: &str) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(op, arg, 0, 0, 0) } != 0 {
        return Err(errno(what));
    }
    Ok(())
}

/// Switches to `user`/`group` when given and keeps only [`KEEP`] (see the module docs).
/// Must run while the process is single-threaded.
pub fn drop_privileges(user: Option<&str>, group: Option<&str>) -> io::Result<Dropped> {
    let mut done = Dropped::default();
    let ids = user.map(accounts::user_ids).transpose()?;
    let gid = match group {
        Some(g) => Some(accounts::group_id(g)?),
        None => ids.map(|(_, gid)| gid),
    };
    let before = capget()?;
    // The bounding set first, while CAP_SETPCAP is still effective.
    if has(&before, CAP_SETPCAP, |d| d.effective) {
        for cap in 0..=last_cap() {
            if !KEEP.contains(&cap) {
                prctl(
                    libc::PR_CAPBSET_DROP,
                    libc::c_ulong::from(cap),
                    "dropping from the bounding set",
                )?;
            }
        }
        done.bounding_set = true;
    }
    if ids.is_some() || gid.is_some() {
        // Keep the permitted set across the uid change (the effective set is cleared by
        // it and raised again below).
        prctl(libc::PR_SET_KEEPCAPS, 1, "PR_SET_KEEPCAPS")?;
        if let Some(gid) = gid {
            // SAFETY: setgroups with one valid gid; setresgid with plain integers. glibc
            // applies both to every thread (there is only one here).
            if unsafe { libc::setgroups(1, &gid) } != 0 {
                return Err(errno("setgroups"));
            }
            if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
                return Err(errno("setresgid"));
            }
        }
        if let Some((uid, _)) = ids {
            // SAFETY: setresuid with plain integers.
            if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
                return Err(errno("setresuid"));
            }
        }
        prctl(libc::PR_SET_KEEPCAPS, 0, "PR_SET_KEEPCAPS")?;
        // SAFETY: getuid/getgid have no preconditions.
        done.switched_to = Some(unsafe { (libc::getuid(), libc::getgid()) });
    }
    // What we keep and still have; nothing inheritable.
    let mut keep = [CapData::default(); 2];
    for cap in KEEP {
        if has(&before, cap, |d| d.permitted) {
            if let Some(d) = keep.get_mut((cap / 32) as usize) {
                d.permitted |= 1 << (cap % 32);
                d.effective |= 1 << (cap % 32);
            }
        }
    }
    capset(&keep)?;
    // Ambient capabilities would survive an exec: none.
    // SAFETY: prctl with integer arguments only.
    let _ = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")?;
    Ok(done)
}
