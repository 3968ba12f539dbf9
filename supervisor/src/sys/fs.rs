//! File system calls by descriptor: `openat2` with its resolve flags,
//! `openat` and `mkdirat` in a directory descriptor, `renameat2`,
//! `fstat`, `fchmod`, and the file status flags. Descriptor-returning calls
//! are retried on EINTR.

use std::ffi::{CStr, CString};
use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::FromRawFd;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::Mode;

fn c_path(p: &[u8]) -> io::Result<CString> {
    CString::new(p).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

/// Runs `call` again while it fails with EINTR.
fn retry<T>(mut call: impl FnMut() -> nix::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(Errno::EINTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

#[cfg(target_os = "linux")]
/// `openat2(2)` of `path` relative to `dirfd` (an open descriptor or
/// `AT_FDCWD`), with `open_how`'s flags, mode and resolve flags.
pub fn openat2(
    dirfd: libc::c_int,
    path: &[u8],
    flags: libc::c_int,
    mode: u64,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let c = c_path(path)?;
    // SAFETY: an all-zero open_how is valid; the fields are set below.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.mode = mode;
    how.resolve = resolve;
    // With `RESOLVE_IN_ROOT` or `RESOLVE_BENEATH`, a `..` resolved while
    // any rename or mount happens on the system gives `EAGAIN` (the kernel
    // cannot tell it stayed inside): asked again, as openat2(2) advises.
    // Under load (a busy build beside) it was seen on a symlink's target.
    let scoped = resolve & (libc::RESOLVE_IN_ROOT | libc::RESOLVE_BENEATH) != 0;
    let mut tries = 0;
    retry(|| loop {
        // SAFETY: c and how are valid for the call and `how`'s size is
        // passed; a bad dirfd is only EBADF. openat2 returns a new
        // descriptor or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        tries += 1;
        if fd < 0 && scoped && Errno::last() == Errno::EAGAIN && tries < 64 {
            continue;
        }
        // SAFETY: a non-negative return is a new descriptor owned here.
        break Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) });
    })
}

/// `open(2)` of `path` with `flags` (no `O_CREAT`).
pub fn open(path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    retry(|| nix::fcntl::open(path, OFlag::from_bits_retain(flags), Mode::empty()))
}

/// The file `fd` refers to (an `O_PATH` descriptor, say) opened anew with
/// `flags`, through its magic link in `/proc/self/fd`: ours, so a plain
/// open resolves it.
#[cfg(target_os = "linux")]
pub fn reopen(fd: impl AsFd, flags: libc::c_int) -> io::Result<OwnedFd> {
    let link = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    let link = CString::new(link).expect("no NUL in a formatted number");
    open(&link, flags)
}

/// `openat(2)` of `name` in `dir` with `flags` and, on creation, `perm`.
pub fn openat(dir: impl AsFd, name: &CStr, flags: libc::c_int, perm: u32) -> io::Result<OwnedFd> {
    let dir = dir.as_fd();
    let perm = Mode::from_bits_retain(perm as libc::mode_t);
    retry(|| nix::fcntl::openat(dir, name, OFlag::from_bits_retain(flags), perm))
}

/// `mkdirat(2)` of `name` in `dir` with `perm`.
pub fn mkdirat(dir: impl AsFd, name: &[u8], perm: libc::mode_t) -> io::Result<()> {
    let name = c_path(name)?;
    nix::sys::stat::mkdirat(dir, name.as_c_str(), Mode::from_bits_retain(perm))?;
    Ok(())
}

/// `fchmod(2)`: the permission bits of the file behind `fd`.
pub fn fchmod(fd: impl AsFd, perm: u32) -> io::Result<()> {
    nix::sys::stat::fchmod(fd, Mode::from_bits_retain(perm as libc::mode_t))?;
    Ok(())
}

/// `fstat(2)` of the file behind `fd`.
pub fn fstat(fd: impl AsFd) -> io::Result<libc::stat> {
    Ok(nix::sys::stat::fstat(fd)?)
}

/// Sets the file status flags of `fd` (`F_SETFL`) to `flags`.
pub fn set_status_flags(fd: impl AsFd, flags: libc::c_int) -> io::Result<()> {
    fcntl(fd, FcntlArg::F_SETFL(OFlag::from_bits_retain(flags)))?;
    Ok(())
}

/// `renameat2(RENAME_NOREPLACE)` of `from` to `to`, both relative to `dir`
/// (`AT_FDCWD` for paths): an existing `to` is `EEXIST`, never replaced.
/// On macOS `renameatx_np(RENAME_EXCL)`, the same.
pub fn rename_noreplace(dir: libc::c_int, from: &[u8], to: &[u8]) -> io::Result<()> {
    let (from, to) = (c_path(from)?, c_path(to)?);
    let (from, to) = (from.as_ptr(), to.as_ptr());
    #[cfg(target_os = "linux")]
    // SAFETY: both are NUL-terminated and outlive the call; a bad `dir` is
    // only EBADF.
    let rc = unsafe { libc::renameat2(dir, from, dir, to, libc::RENAME_NOREPLACE) };
    #[cfg(target_os = "macos")]
    // SAFETY: as above.
    let rc = unsafe { libc::renameatx_np(dir, from, dir, to, libc::RENAME_EXCL) };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// `flock(LOCK_EX)` on `fd`, waiting for another holder; released when the
/// file's last descriptor closes.
pub fn lock_exclusive(fd: impl AsFd) -> io::Result<()> {
    // SAFETY: flock takes integers; the descriptor is open for the borrow.
    if unsafe { libc::flock(fd.as_fd().as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `flock(LOCK_NB)` on `fd`, exclusive or shared, without waiting: whether
/// the lock was granted (every failure, a conflicting holder among them,
/// is `false`).
pub fn try_lock(fd: impl AsFd, exclusive: bool) -> bool {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    // SAFETY: flock takes integers; the descriptor is open for the borrow.
    unsafe { libc::flock(fd.as_fd().as_raw_fd(), op | libc::LOCK_NB) == 0 }
}

/// `fstatat(AT_SYMLINK_NOFOLLOW)` of `name` in `dir`: the entry itself,
/// a symlink not followed.
pub fn lstat_at(dir: impl AsFd, name: &CStr) -> io::Result<libc::stat> {
    let flags = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
    Ok(nix::sys::stat::fstatat(dir, name, flags)?)
}

#[cfg(target_os = "linux")]
/// A new memory file (`memfd_create`, close-on-exec) holding `bytes`.
pub fn memory_file(name: &CStr, bytes: &[u8]) -> io::Result<OwnedFd> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let file = std::fs::File::from(memfd_create(name, MFdFlags::MFD_CLOEXEC)?);
    io::Write::write_all(&mut &file, bytes)?;
    Ok(file.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lstat_at` describes a symlink itself, never where it points (a
    /// dangling one is found); the control: a regular file is a file.
    #[test]
    fn lstat_at_does_not_follow_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("missing", dir.path().join("link")).unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let fd = std::fs::File::open(dir.path()).unwrap();
        let st = lstat_at(&fd, c"link").unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
        let st = lstat_at(&fd, c"file").unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFREG);
        let e = lstat_at(&fd, c"absent").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }
}
