//! User and group names for tar headers, as `tarfile.gettarinfo` fills them
//! (`pwd.getpwuid(uid)[0]`, `grp.getgrgid(gid)[0]`, empty when unknown),
//! cached per archive.

use std::collections::HashMap;
use std::ffi::CStr;

#[derive(Debug, Default)]
pub(crate) struct NameCache {
    users: HashMap<u32, Vec<u8>>,
    groups: HashMap<u32, Vec<u8>>,
}

impl NameCache {
    pub(crate) fn user(&mut self, uid: u32) -> Vec<u8> {
        self.users
            .entry(uid)
            .or_insert_with(|| lookup_user(uid).unwrap_or_default())
            .clone()
    }

    pub(crate) fn group(&mut self, gid: u32) -> Vec<u8> {
        self.groups
            .entry(gid)
            .or_insert_with(|| lookup_group(gid).unwrap_or_default())
            .clone()
    }
}

/// Calls a reentrant `get*_r` lookup, growing the buffer on `ERANGE`.
fn with_buffer(
    mut call: impl FnMut(&mut [libc::c_char]) -> Option<Option<Vec<u8>>>,
) -> Option<Vec<u8>> {
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        match call(&mut buf) {
            Some(found) => return found,
            None if buf.len() < 1 << 20 => {
                let n = buf.len() * 2;
                buf.resize(n, 0);
            }
            None => return None,
        }
    }
}

fn lookup_user(uid: u32) -> Option<Vec<u8>> {
    with_buffer(|buf| {
        // SAFETY: `pwd` and `result` are valid out-pointers, `buf` is a live
        // buffer of the given length; on success `pw_name` points into `buf`,
        // which outlives the CStr read below.
        unsafe {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
            if rc == libc::ERANGE {
                return None;
            }
            if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
                return Some(None);
            }
            Some(Some(CStr::from_ptr(pwd.pw_name).to_bytes().to_vec()))
        }
    })
}

fn lookup_group(gid: u32) -> Option<Vec<u8>> {
    with_buffer(|buf| {
        // SAFETY: as in `lookup_user`, for `getgrgid_r`.
        unsafe {
            let mut grp: libc::group = std::mem::zeroed();
            let mut result: *mut libc::group = std::ptr::null_mut();
            let rc = libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result);
            if rc == libc::ERANGE {
                return None;
            }
            if rc != 0 || result.is_null() || grp.gr_name.is_null() {
                return Some(None);
            }
            Some(Some(CStr::from_ptr(grp.gr_name).to_bytes().to_vec()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_known_and_unknown_ids_are_empty() {
        let mut c = NameCache::default();
        assert_eq!(c.user(0), b"root");
        assert_eq!(c.group(0), b"root");
        assert!(c.user(3_999_999_999).is_empty());
    }
}
