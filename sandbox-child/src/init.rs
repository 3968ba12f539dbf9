//! The sandbox's init: pid 1 of the program's PID namespace.
//!
//! The child that [`crate::child::clone_child`] made is pid 1 of a new PID
//! namespace. It runs every step of the sandbox on itself, then starts the
//! program (which execs; `clone(CLONE_VM | CLONE_VFORK)`, see
//! `child::spawn_program`) and stays as this loop: it reaps every process of
//! the namespace (orphans are reparented to it), passes on the signals the
//! supervisor forwards, and when the program exits, exits with its status.
//! The kernel then kills whatever is left in the namespace: nothing outlives
//! the program.
//!
//! The program is not pid 1 because the kernel protects an init from every
//! signal it has no handler for, sent from inside its namespace, and from all
//! but SIGKILL and SIGSTOP sent from outside: a program that counts on
//! SIGTERM's default action would not die of it.
//!
//! Signals: the supervisor sends what it forwards to this process, which
//! passes each on when it came from outside the namespace (a sender there is
//! pid 0 here). Signals the terminal generates reach the program's process
//! group directly: with a pty of its own the program leads that terminal's
//! session, and init is not in it; without one, init and the program share
//! sluice's process group, and init sees the kernel's code on such a signal
//! and does not pass it on a second time. Nor does it pass on what a process
//! of the sandbox sends it.
//!
//! A program killed by signal N makes init exit with 128 + N (an init cannot
//! re-raise a signal on itself): the supervisor reports a shell-style status,
//! which is the same number either way.
//!
//! Raw system calls only, like everything between fork and exec.

use std::os::raw::c_int;

use crate::sys;

/// The signals init blocks and reads: those the supervisor forwards, and
/// SIGCHLD.
pub(crate) struct Signals(libc::sigset_t);

impl Signals {
    pub(crate) fn empty() -> Signals {
        // SAFETY: an all-zero sigset_t is a valid (empty) set.
        Signals(unsafe { std::mem::zeroed() })
    }

    /// Blocks the set, so that its signals wait to be read.
    pub(crate) fn block() -> Result<Signals, i32> {
        let mut set = Signals::empty();
        for sig in crate::FORWARDED_SIGNALS.into_iter().chain([libc::SIGCHLD]) {
            // SAFETY: set is a valid signal set; sigaddset writes only to it.
            sys::check(unsafe { libc::sigaddset(&mut set.0, sig) } as _)?;
        }
        sys::check(
            // SAFETY: set is a valid signal set.
            unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set.0, std::ptr::null_mut()) } as _,
        )?;
        Ok(set)
    }

    /// Unblocks the set again (in the program, before exec).
    pub(crate) fn unblock(&self) -> Result<(), i32> {
        // SAFETY: self.0 is a valid signal set.
        sys::check(
            unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &self.0, std::ptr::null_mut()) } as _,
        )
        .map(drop)
    }
}

/// The loop of init, whose child `program` is the program. Never returns.
pub(crate) fn run(program: libc::pid_t, signals: &Signals) -> ! {
    // Nothing of the supervisor's is needed here: the launch pipe must
    // reach EOF when the program execs, and the terminal and the broker
    // socket are the program's.
    // SAFETY: close_range takes integers only.
    unsafe { libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) };
    loop {
        if let Some(status) = reap(program) {
            sys::exit(status);
        }
        // SAFETY: an all-zero siginfo_t is valid; sigwaitinfo fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: the set and info are valid for the call.
        let sig = unsafe { libc::sigwaitinfo(&signals.0, &mut info) };
        if sig > 0 && sig != libc::SIGCHLD && from_outside(&info) {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(program, sig) };
        }
    }
}

/// Sent by a process (not the kernel) outside the namespace: the supervisor.
fn from_outside(info: &libc::siginfo_t) -> bool {
    // SAFETY: si_pid is valid for the user-sent codes (<= 0) checked first.
    info.si_code <= 0 && unsafe { info.si_pid() } == 0
}

/// Reaps every exited child; returns the shell-style status of `program`
/// once it has exited.
fn reap(program: libc::pid_t) -> Option<c_int> {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid == program {
            return Some(shell_status(status));
        }
        if pid > 0 || (pid < 0 && sys::errno() == libc::EINTR) {
            continue;
        }
        return None; // none exited yet (0), or no child at all (ECHILD)
    }
}

/// The exit code, or 128 + N for a program killed by signal N.
fn shell_status(status: c_int) -> c_int {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_deaths_become_shell_statuses() {
        assert_eq!(shell_status(3 << 8), 3);
        assert_eq!(shell_status(libc::SIGTERM), 128 + libc::SIGTERM);
        assert_eq!(shell_status(libc::SIGKILL | 0x80), 128 + libc::SIGKILL);
    }
}
