//! Users and groups by name (`[global] user`/`group`, `[global.control] group`), through
//! the reentrant NSS lookups (`getpwnam_r`, `getgrnam_r`), so names resolve as everywhere
//! else on the host (files, LDAP, ...).

use std::ffi::{c_char, CString};
use std::io;

/// Runs a `get*nam_r`-style lookup of `name` with a buffer that grows while the call says
/// it is too small (`ERANGE`). `call(name, buf, len, found)` returns the call's status and
/// sets `found` when the entry exists.
fn lookup<T>(
    what: &str,
    name: &str,
    mut call: impl FnMut(*const c_char, *mut c_char, usize, &mut Option<T>) -> libc::c_int,
) -> io::Result<T> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{what} name has NUL")))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let mut found = None;
        let rc = call(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len(), &mut found);
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        return found.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no {what} named {name:?}"))
        });
    }
}

/// The id of group `name`.
pub fn group_id(name: &str) -> io::Result<libc::gid_t> {
    lookup("group", name, |c, buf, len, found| {
        // SAFETY: an all-zero `group` is a valid value of this plain C struct.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: `c` is a NUL-terminated name, `buf` holds `len` bytes, `grp` and
        // `result` are live locals; getgrnam_r writes only into them.
        let rc = unsafe { libc::getgrnam_r(c, &mut grp, buf, len, &mut result) };
        if rc == 0 && !result.is_null() {
            *found = Some(grp.gr_gid);
        }
        rc
    })
}

/// The uid and primary gid of user `name`.
pub fn user_ids(name: &str) -> io::Result<(libc::uid_t, libc::gid_t)> {
    lookup("user", name, |c, buf, len, found| {
        // SAFETY: an all-zero `passwd` is a valid value of this plain C struct.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: as for getgrnam_r above.
        let rc = unsafe { libc::getpwnam_r(c, &mut pw, buf, len, &mut result) };
        if rc == 0 && !result.is_null() {
            *found = Some((pw.pw_uid, pw.pw_gid));
        }
        rc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_groups_resolve_by_name() {
        assert_eq!(group_id("root").expect("root group"), 0);
        assert_eq!(user_ids("root").expect("root user"), (0, 0));
        assert!(group_id("no-such-group-bgpd-test").is_err());
        assert!(user_ids("no-such-user-bgpd-test").is_err());
        assert!(group_id("a\0b").is_err());
    }
}
