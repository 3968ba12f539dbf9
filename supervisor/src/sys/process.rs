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

/// Starts the sandboxed child in new user, mount and PID namespaces
/// (`sandbox_child::clone_child`): the sandbox's init. Its pid, or why it
/// was not started (clone's error: nothing was started).
pub fn clone_sandbox_child(plan: &sandbox_child::Prepared) -> io::Result<libc::pid_t> {
    single_threaded()?;
    // SAFETY: the process is single-threaded (checked just above; only
    // this thread could start another, and it is here); a `Prepared` is
    // made only by `sandbox_child::prepare`.
    unsafe { sandbox_child::clone_child(plan) }.map_err(io::Error::from_raw_os_error)
}

/// [`clone_sandbox_child`] in sluice's own PID namespace
/// (`sandbox_child::fork_child`), where one cannot be made.
pub fn fork_sandbox_child(plan: &sandbox_child::Prepared) -> io::Result<libc::pid_t> {
    single_threaded()?;
    // SAFETY: as in `clone_sandbox_child`.
    unsafe { sandbox_child::fork_child(plan) }.map_err(io::Error::from_raw_os_error)
}

/// Fails unless this process runs one thread: the sandboxed child is
/// started before any other (the broker's runtime, the prompts) exists.
fn single_threaded() -> io::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse::<u64>().ok());
    match threads {
        Some(1) => Ok(()),
        Some(n) => Err(io::Error::other(format!(
            "sluice runs {n} threads where it starts the sandbox, which it does only \
             single-threaded (a bug in sluice: please report it)"
        ))),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "/proc/self/status has no thread count",
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_thread_is_seen() {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || wait.recv());
        let err = super::single_threaded().unwrap_err();
        assert!(err.to_string().contains("threads"), "{err}");
        release.send(()).unwrap();
        other.join().unwrap().unwrap();
    }
}
