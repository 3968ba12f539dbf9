//! Processes by pidfd.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `pidfd_open(2)` of `pid` (`flags`: `PIDFD_THREAD` for a thread).
pub fn pidfd_open(pid: libc::pid_t, flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes integers and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(2)` of `signal` (0: only whether the process still
/// exists) to the process `pidfd` refers to.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: the pidfd is open for the borrow; the null siginfo is allowed
    // (the kernel fills one in as for kill(2)); no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `waitpid(-1, ...)`: any child's change, as (pid, raw wait status);
/// `Ok(None)` when `hang` is false and no child has changed yet. The error
/// is the call's (`ECHILD` when no child is left, `EINTR`), not retried.
pub fn wait_any(hang: bool) -> io::Result<Option<(libc::pid_t, libc::c_int)>> {
    let mut status = 0;
    let flags = if hang { 0 } else { libc::WNOHANG };
    // SAFETY: status is a valid out-pointer.
    match unsafe { libc::waitpid(-1, &mut status, flags) } {
        0 => Ok(None),
        pid if pid > 0 => Ok(Some((pid, status))),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Kills our child `pid` (SIGKILL) and reaps it: for a child sluice cannot
/// go on with. Errors (the child already reaped) are nothing to act on.
pub fn kill_and_reap(pid: libc::pid_t) {
    use nix::errno::Errno;
    use nix::sys::signal::{kill, Signal};
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = kill(pid, Signal::SIGKILL);
    while nix::sys::wait::waitpid(pid, None) == Err(Errno::EINTR) {}
}
