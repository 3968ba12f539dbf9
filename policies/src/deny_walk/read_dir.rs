//! Reading one directory for the walk: opening it by name without
//! following a symlink, listing its entries with their types in one
//! buffer, and the type of an entry whose file system does not give it.

use std::ffi::{CStr, CString};
use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::FromRawFd;
use std::os::fd::{AsRawFd, OwnedFd};

/// `name` beneath `at`, a directory, opened only to name it (`O_PATH`),
/// not following a symlink.
#[cfg(target_os = "linux")]
pub(super) fn open_path(at: libc::c_int, name: &CStr) -> Option<OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `name` is NUL-terminated; `at` is AT_FDCWD or a directory
    // descriptor the walk holds open.
    let fd = unsafe { libc::openat(at, name.as_ptr(), flags) };
    // SAFETY: a descriptor openat just returned, owned by nobody else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// No cache elsewhere, so never called.
#[cfg(not(target_os = "linux"))]
pub(super) fn open_path(_: libc::c_int, _: &CStr) -> Option<OwnedFd> {
    None
}

/// Calls `each(name, d_type)` for every entry of `dir` until it fails;
/// the outer error is the listing's own. Linux: `getdents64` into `buf`.
#[cfg(target_os = "linux")]
pub(super) fn list<E>(
    dir: &OwnedFd,
    buf: &mut [u8],
    mut each: impl FnMut(&[u8], u8) -> Result<(), E>,
) -> io::Result<Result<(), E>> {
    loop {
        // SAFETY: `buf` is writable for its length; `dir` is open.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if n < 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(error);
        }
        if n == 0 {
            return Ok(Ok(()));
        }
        let records = &buf[..n as usize];
        let mut at = 0usize;
        while at < records.len() {
            // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type,
            // then the NUL-terminated name, padded.
            let record = &records[at..];
            let reclen = u16::from_ne_bytes([record[16], record[17]]) as usize;
            let name = &record[19..reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if let Err(e) = each(name, record[18]) {
                return Ok(Err(e));
            }
            at += reclen;
        }
    }
}

/// [`list`] elsewhere (macOS): `readdir` on a duplicate of `dir`.
#[cfg(not(target_os = "linux"))]
pub(super) fn list<E>(
    dir: &OwnedFd,
    _buf: &mut [u8],
    mut each: impl FnMut(&[u8], u8) -> Result<(), E>,
) -> io::Result<Result<(), E>> {
    let copy = dir.try_clone()?;
    // SAFETY: `copy` is an open directory descriptor whose ownership passes
    // to the stream (closedir closes it).
    let stream = unsafe { libc::fdopendir(copy.as_raw_fd()) };
    if stream.is_null() {
        return Err(io::Error::last_os_error());
    }
    std::mem::forget(copy);
    let result = loop {
        // SAFETY: `stream` is a valid stream until closedir below.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            break Ok(());
        }
        // SAFETY: readdir returned a valid entry with a NUL-terminated name.
        let (name, d_type) = unsafe { (CStr::from_ptr((*entry).d_name.as_ptr()), (*entry).d_type) };
        if let Err(e) = each(name.to_bytes(), d_type) {
            break Err(e);
        }
    };
    // SAFETY: `stream` came from fdopendir and is closed once.
    unsafe { libc::closedir(stream) };
    Ok(result)
}

/// The type of `name` in `dir` by `fstatat`, for file systems whose
/// listings leave it out (`DT_UNKNOWN`); unknown if it is gone.
pub(super) fn type_of(dir: &OwnedFd, name: &[u8]) -> u8 {
    let Ok(name) = CString::new(name) else {
        return libc::DT_UNKNOWN;
    };
    // SAFETY: plain data; all zeroes is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated, `dir` open and `st` a valid out-pointer.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return libc::DT_UNKNOWN;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => libc::DT_DIR,
        libc::S_IFLNK => libc::DT_LNK,
        _ => libc::DT_REG,
    }
}
