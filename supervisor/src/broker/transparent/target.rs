//! The calling thread's state, read from outside: its memory (the path and
//! `open_how` arguments) and its `/proc` links (working directory, the
//! directory descriptor, executable, umask).
//!
//! The thread is paused in its system call, but its other threads are not:
//! they may rewrite the path buffer at any time. So whatever is read is read
//! once, into the supervisor's memory, and only that copy is used. Every
//! read is followed by `SECCOMP_IOCTL_NOTIF_ID_VALID`: if the notification
//! is gone, the thread may be gone and its pid reused, and what was read may
//! belong to another process: the caller then drops the notification.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::notif::Listener;

/// Longest path the kernel accepts, NUL included.
pub const PATH_MAX: usize = libc::PATH_MAX as usize;

/// Why the thread's state could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// The notification is no longer pending: nothing to answer.
    Gone,
    /// The arguments cannot be read or used as asked (a bad pointer, no NUL
    /// within `PATH_MAX`, a directory descriptor that is not a directory
    /// with a path): the kernel is left to give its own error.
    Kernel,
}

/// One notified thread.
pub struct Target<'a> {
    pub listener: &'a Listener,
    pub id: u64,
    /// The thread id, in the supervisor's pid namespace.
    pub tid: libc::pid_t,
}

impl Target<'_> {
    fn valid(&self) -> Result<(), Unreadable> {
        if self.listener.is_valid(self.id) {
            Ok(())
        } else {
            Err(Unreadable::Gone)
        }
    }

    /// Copies up to `buf.len()` bytes at `addr`; returns how many were read
    /// (fewer at the end of a mapping).
    fn read_memory(&self, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: `local` describes `buf`, which is writable for its length;
        // the remote iovec is only interpreted in the target's address space.
        let n = unsafe { libc::process_vm_readv(self.tid, &local, 1, &remote, 1, 0) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// The NUL-terminated string at `addr`, read a page at a time (a read
    /// never crosses into a page the string does not reach, which may be
    /// unmapped) and at most `PATH_MAX` bytes in all.
    pub fn read_path(&self, addr: u64) -> Result<Vec<u8>, Unreadable> {
        let page = page_size();
        let mut out = Vec::new();
        let mut chunk = vec![0u8; page];
        let mut at = addr;
        while out.len() < PATH_MAX {
            let to_page_end = page - (at as usize & (page - 1));
            let want = to_page_end.min(PATH_MAX - out.len());
            let n = match self.read_memory(at, &mut chunk[..want]) {
                Ok(0) | Err(_) => {
                    // EFAULT from the kernel, unless the thread is gone.
                    self.valid()?;
                    return Err(Unreadable::Kernel);
                }
                Ok(n) => n,
            };
            if let Some(nul) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                self.valid()?;
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
            at = at.wrapping_add(n as u64);
        }
        // No NUL within PATH_MAX: ENAMETOOLONG from the kernel.
        self.valid()?;
        Err(Unreadable::Kernel)
    }

    /// Exactly `len` bytes at `addr` (an `open_how`).
    pub fn read_struct(&self, addr: u64, len: usize) -> Result<Vec<u8>, Unreadable> {
        let mut buf = vec![0u8; len];
        let n = self.read_memory(addr, &mut buf);
        self.valid()?;
        match n {
            Ok(n) if n == len => Ok(buf),
            _ => Err(Unreadable::Kernel),
        }
    }

    /// `/proc/<tid>/<name>` read as a link, for the directory a relative
    /// path starts from: `cwd` or `fd/N`. Only an absolute path of an
    /// existing file will do (not `pipe:[...]`, not `... (deleted)`).
    pub fn directory(&self, name: &str) -> Result<PathBuf, Unreadable> {
        let link = std::fs::read_link(format!("/proc/{}/{name}", self.tid));
        self.valid()?;
        let link = link.map_err(|_| Unreadable::Kernel)?;
        let bytes = link.as_os_str().as_bytes();
        if !link.is_absolute() || bytes.ends_with(b" (deleted)") {
            return Err(Unreadable::Kernel);
        }
        Ok(link)
    }

    /// The executable, for the approver and the record (best effort).
    pub fn exe(&self) -> Option<PathBuf> {
        let link = std::fs::read_link(format!("/proc/{}/exe", self.tid)).ok()?;
        self.valid().ok()?;
        let bytes = link.as_os_str().as_bytes();
        let bytes = bytes.strip_suffix(b" (deleted)").unwrap_or(bytes);
        Some(PathBuf::from(OsStr::from_bytes(bytes)))
    }

    /// The thread's umask (for files created on its behalf).
    pub fn umask(&self) -> Result<u32, Unreadable> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.tid));
        self.valid()?;
        status
            .ok()
            .as_deref()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Umask:")))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            .ok_or(Unreadable::Kernel)
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no side effects.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 && (n as usize).is_power_of_two() {
        n as usize
    } else {
        4096
    }
}
