//! The calling thread's state, read from outside: its memory (the path and
//! `open_how` arguments) and its `/proc` links (working directory, the
//! directory descriptor, executable, umask).
//!
//! The thread is paused in its system call, but its other threads are not:
//! they may rewrite the path buffer at any time. So whatever is read is read
//! once, into the supervisor's memory, and only that copy is used.
//!
//! If the notification is gone, the thread may be gone and its pid reused,
//! and what was read may belong to another process. So before anything read
//! here is acted on, [`Target::valid`] (`SECCOMP_IOCTL_NOTIF_ID_VALID`)
//! confirms the notification is still pending: one check after the last
//! read covers every read before it. A read that fails is checked at once,
//! to tell a vanished thread from a bad argument. A call answered with
//! `CONTINUE` needs no check: what was read only chose who answers, and the
//! kernel answers a `CONTINUE` for whichever thread is really waiting.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::notif::Listener;

/// `PIDFD_THREAD` (Linux 6.9): a pidfd for a thread, not only a process.
const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;

/// Longest path the kernel accepts, NUL included.
pub const PATH_MAX: usize = libc::PATH_MAX as usize;

/// How much of a path the first read takes.
const FIRST_READ: usize = 256;

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
    /// Whether the notification is still pending: everything read before
    /// this returned `Ok` was read from the notifying thread.
    pub fn valid(&self) -> Result<(), Unreadable> {
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
    /// unmapped) and at most `PATH_MAX` bytes in all. Not yet validated.
    pub fn read_path(&self, addr: u64) -> Result<Vec<u8>, Unreadable> {
        let page = page_size();
        let mut out = Vec::new();
        // Most paths are short: a first read of a few hundred bytes (into a
        // small buffer) copies less than one to the end of the page.
        let mut first = [0u8; FIRST_READ];
        let mut rest = Vec::new();
        let mut at = addr;
        while out.len() < PATH_MAX {
            let to_page_end = page - (at as usize & (page - 1));
            let chunk: &mut [u8] = if out.is_empty() {
                &mut first
            } else {
                rest.resize(PATH_MAX, 0);
                &mut rest
            };
            let want = to_page_end.min(PATH_MAX - out.len()).min(chunk.len());
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
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
            at = at.wrapping_add(n as u64);
        }
        // No NUL within PATH_MAX: ENAMETOOLONG from the kernel.
        self.valid()?;
        Err(Unreadable::Kernel)
    }

    /// Exactly `len` bytes at `addr` (an `open_how`). Not yet validated.
    pub fn read_struct(&self, addr: u64, len: usize) -> Result<Vec<u8>, Unreadable> {
        let mut buf = vec![0u8; len];
        match self.read_memory(addr, &mut buf) {
            Ok(n) if n == len => Ok(buf),
            _ => {
                self.valid()?;
                Err(Unreadable::Kernel)
            }
        }
    }

    /// `/proc/<tid>/<name>` read as a link, for the directory a relative
    /// path starts from: `cwd` or `fd/N`. Only an absolute path of an
    /// existing file will do (not `pipe:[...]`, not `... (deleted)`). Not
    /// yet validated.
    pub fn directory(&self, name: &str) -> Result<Vec<u8>, Unreadable> {
        let mut buf = [0u8; PATH_MAX];
        let link = match readlink(&format!("/proc/{}/{name}\0", self.tid), &mut buf) {
            Some(link) => link,
            None => {
                self.valid()?;
                return Err(Unreadable::Kernel);
            }
        };
        if !link.starts_with(b"/") || link.ends_with(b" (deleted)") {
            return Err(Unreadable::Kernel);
        }
        Ok(link.to_vec())
    }

    /// The executable, for the approver and the record (best effort). Not
    /// yet validated.
    pub fn exe(&self) -> Option<PathBuf> {
        let mut buf = [0u8; PATH_MAX];
        let bytes = readlink(&format!("/proc/{}/exe\0", self.tid), &mut buf)?;
        let bytes = bytes.strip_suffix(b" (deleted)").unwrap_or(bytes);
        Some(PathBuf::from(OsStr::from_bytes(bytes)))
    }

    /// What the broker needs from `/proc/<tid>/status`, read once: the
    /// umask (for files created on the thread's behalf) and how many seccomp
    /// filters it runs under (to tell a process of a sandbox stacked inside
    /// the program's: see [`super::stacked`]). Not yet validated.
    pub fn status(&self) -> Result<Status, Unreadable> {
        let status = read_status(self.tid);
        match status.as_deref().and_then(Status::parse) {
            Some(status) => Ok(status),
            None => {
                self.valid()?;
                Err(Unreadable::Kernel)
            }
        }
    }
}

/// The parts of a thread's `/proc/<tid>/status` the broker uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// `Umask:` (octal); `None` where the kernel does not show it.
    pub umask: Option<u32>,
    /// `Seccomp_filters:` (Linux 5.9+, older than transparent brokering).
    pub filters: u32,
    /// `PPid:`: the thread group's parent (0 where there is none in view).
    pub ppid: libc::pid_t,
}

impl Status {
    /// `None` without a readable `Seccomp_filters:` line: a thread whose
    /// filters cannot be counted cannot be told from a stacked one. Each
    /// field is taken from its first line, in one pass over the text.
    pub fn parse(text: &str) -> Option<Status> {
        let (mut umask, mut filters, mut ppid) = (None, None, None);
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("Umask:") {
                umask = umask.or(Some(u32::from_str_radix(v.trim(), 8).ok()));
            } else if let Some(v) = line.strip_prefix("Seccomp_filters:") {
                filters = filters.or(Some(v.trim().parse().ok()));
            } else if let Some(v) = line.strip_prefix("PPid:") {
                ppid = ppid.or(Some(v.trim().parse().ok()));
            }
        }
        Some(Status {
            umask: umask.flatten(),
            filters: filters??,
            ppid: ppid.flatten().unwrap_or(0),
        })
    }
}

/// How much of `/proc/<tid>/status` one read takes: all of it, but for a
/// thread in hundreds of groups (then the buffer doubles).
const STATUS_READ: usize = 4096;

/// The text of `/proc/<tid>/status`, in one read and the one that finds
/// its end. (`std::fs::read_to_string` took a `statx` and eight reads, from
/// 32 bytes up: with the text's making, a quarter of the guard's time for
/// a call, `benches/launch.rs`'s workloads.)
fn read_status(tid: libc::pid_t) -> Option<String> {
    let path = std::ffi::CString::new(format!("/proc/{tid}/status")).ok()?;
    let file = crate::sys::fs::open(&path, libc::O_RDONLY | libc::O_CLOEXEC).ok()?;
    let mut text = vec![0u8; STATUS_READ];
    let mut len = 0;
    loop {
        if len == text.len() {
            text.resize(2 * len, 0);
        }
        match crate::sys::io::read(file.as_raw_fd(), &mut text[len..]).ok()? {
            0 => break,
            n => len += n,
        }
    }
    text.truncate(len);
    String::from_utf8(text).ok()
}

/// `readlink` of `path` (NUL-terminated) into `buf`; `None` on an error or
/// a link that does not fit.
fn readlink<'b>(path: &str, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    debug_assert!(path.ends_with('\0'));
    // SAFETY: `path` is NUL-terminated; readlink writes at most `buf.len()`
    // bytes into `buf`.
    let n = unsafe { libc::readlink(path.as_ptr().cast(), buf.as_mut_ptr().cast(), buf.len()) };
    match usize::try_from(n) {
        Ok(n) if n < buf.len() => Some(&buf[..n]),
        _ => None,
    }
}

fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no side effects.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 && (n as usize).is_power_of_two() {
            n as usize
        } else {
            4096
        }
    })
}

/// The supervisor's own copy of the thread's descriptor `fd`.
pub(crate) fn take_descriptor(tid: libc::pid_t, fd: i32) -> io::Result<OwnedFd> {
    let pidfd = crate::sys::process::pidfd_open(tid, PIDFD_THREAD)?;
    // SAFETY: pidfd_getfd takes integers and returns a new descriptor.
    let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(got as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process as the "thread": its memory is read with
    /// `process_vm_readv` like a program's. The listener is not a real one,
    /// so a failed read reports `Gone` (the notification cannot be
    /// confirmed) where a real one would say `Kernel`.
    fn with_self<T>(f: impl FnOnce(&Target<'_>) -> T) -> T {
        let null = std::fs::File::open("/dev/null").unwrap();
        let listener = Listener::new(null.into()).unwrap();
        let target = Target {
            listener: &listener,
            id: 1,
            // SAFETY: getpid has no side effects.
            tid: unsafe { libc::getpid() },
        };
        f(&target)
    }

    /// Two pages, the second inaccessible, for strings that end at the
    /// boundary. (A read that runs into it copies up to the fault on this
    /// kernel, but is not relied on to: reads stop at page ends.)
    struct Pages {
        base: *mut u8,
        page: usize,
    }

    impl Pages {
        fn new() -> Pages {
            let page = page_size();
            // SAFETY: an anonymous private mapping of two pages; the second
            // is then made inaccessible.
            let base = unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    2 * page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(p, libc::MAP_FAILED);
                assert_eq!(libc::mprotect(p.add(page), page, libc::PROT_NONE), 0);
                p.cast::<u8>()
            };
            Pages { base, page }
        }

        /// Writes `bytes` so that they end at the end of the first page.
        fn at_end(&self, bytes: &[u8]) -> u64 {
            let start = self.page - bytes.len();
            // SAFETY: [start, page) lies in the first, writable page.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(start), bytes.len())
            };
            self.base as u64 + start as u64
        }
    }

    impl Drop for Pages {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`.
            unsafe { libc::munmap(self.base.cast(), 2 * self.page) };
        }
    }

    #[test]
    fn status_gives_the_umask_and_the_filter_count_or_nothing() {
        let text = "Name:\tcat\nUmask:\t0022\nPPid:\t41\nSeccomp:\t2\nSeccomp_filters:\t3\n";
        assert_eq!(
            Status::parse(text),
            Some(Status {
                umask: Some(0o022),
                filters: 3,
                ppid: 41,
            })
        );
        // No count, or a count that is not a number: unusable.
        assert_eq!(Status::parse("Umask:\t0022\nSeccomp:\t2\n"), None);
        assert_eq!(Status::parse("Seccomp_filters:\tmany\n"), None);
        // This very thread, as the kernel writes it.
        let ours = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        assert!(Status::parse(&ours).is_some(), "{ours}");
        // The first line of each field decides.
        let twice = "Umask:\t0022\nUmask:\t0077\nSeccomp_filters:\t1\nSeccomp_filters:\t5\n";
        assert_eq!(
            Status::parse(twice).map(|s| (s.umask, s.filters)),
            Some((Some(0o022), 1))
        );
    }

    /// Read in one go, the text is the kernel's whole text: the same
    /// fields, to the last, as a read to the end gives.
    #[test]
    fn the_status_text_is_read_whole() {
        // SAFETY: gettid has no side effects.
        let tid = unsafe { libc::gettid() };
        let fields = |text: &str| -> Vec<String> {
            text.lines()
                .map(|l| l.split(':').next().unwrap_or_default().to_owned())
                .collect()
        };
        let whole = std::fs::read_to_string(format!("/proc/{tid}/status")).unwrap();
        let read = read_status(tid).unwrap();
        assert_eq!(fields(&read), fields(&whole));
        assert!(read.ends_with('\n'));
        assert_eq!(Status::parse(&read), Status::parse(&whole));
    }

    #[test]
    fn paths_end_at_their_nul_even_against_an_inaccessible_page() {
        let pages = Pages::new();
        with_self(|t| {
            // Ends exactly at the boundary.
            let short = pages.at_end(b"/etc/hosts\0");
            assert_eq!(t.read_path(short).unwrap(), b"/etc/hosts");
            // Longer than the first read, still ending at the boundary.
            let mut long = vec![b'a'; 1000];
            long[0] = b'/';
            long.push(0);
            let addr = pages.at_end(&long);
            assert_eq!(t.read_path(addr).unwrap(), &long[..1000]);
            // No NUL before the unmapped page: refused, not read past.
            let unterminated = pages.at_end(b"/no/nul/here");
            assert_eq!(t.read_path(unterminated), Err(Unreadable::Gone));
        });
    }

    #[test]
    fn paths_cross_pages_and_stop_at_path_max() {
        with_self(|t| {
            // A path spanning pages of ordinary memory.
            let mut path = vec![b'x'; 3 * page_size()];
            path[0] = b'/';
            let n = PATH_MAX - 1;
            path[n] = 0;
            assert_eq!(t.read_path(path.as_ptr() as u64).unwrap().len(), n);
            // One byte more and there is no NUL within PATH_MAX.
            path[n] = b'x';
            path[n + 1] = 0;
            assert_eq!(t.read_path(path.as_ptr() as u64), Err(Unreadable::Gone));
            // An open_how-sized struct: exactly its length, or nothing.
            let how = [7u8; 24];
            assert_eq!(t.read_struct(how.as_ptr() as u64, 24).unwrap(), how);
        });
    }
}
