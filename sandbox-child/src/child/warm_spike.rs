//! Issue #19's spike, built only with the `warm-spike` feature (never in a
//! release of sluice): the floor of a launch whose sandbox was prepared
//! ahead. The cold path's own child builds the sandbox (namespaces, mounts,
//! the policy-built root, capabilities dropped, no_new_privs, rlimits,
//! Landlock); then, instead of starting the one program, its init serves
//! requests on a listening Unix socket the supervisor bound
//! (`SLUICE_WARM_SPIKE_FD`): a request is one byte with the client's three
//! standard descriptors (`SCM_RIGHTS`); the init starts the plan's program
//! with them (`clone(CLONE_VM | CLONE_VFORK)`, as the cold init does), waits
//! for it and writes its shell-style status back (4 bytes).
//!
//! With the guard (or transparent brokering, or `[network] mode = "none"`),
//! each program installs its one filter itself and its listener goes to the
//! client, before the status ('L' and the descriptor); the spike's clients
//! read without a control buffer, so the kernel closes it and a notified
//! call fails with `ENOSYS`. The client reads to the end of the connection;
//! the status is the last 4 bytes.
//!
//! It measures the floor only and is not a sandbox one may rely on: the
//! program is the plan's (argv and environment fixed at preparation), every
//! request shares one session, one PID namespace and one writable view, no
//! notification is served, and anyone who can reach the socket's path is
//! served.

use std::os::fd::AsRawFd;
use std::os::raw::c_int;

use super::Runner;
use crate::listener::Notify;
use crate::report::Step;
use crate::{seccomp, sys};

/// The listening socket the supervisor handed over, if this is the spike.
pub(super) fn listening_fd() -> Option<c_int> {
    // SAFETY: the name is NUL-terminated; the environment is this process's
    // copy of the supervisor's, which no other thread changes.
    let value = unsafe { libc::getenv(c"SLUICE_WARM_SPIKE_FD".as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: getenv returns a NUL-terminated string.
    let bytes = unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes();
    let mut n: c_int = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(c_int::from(b - b'0'))?;
    }
    Some(n)
}

/// With `SLUICE_WARM_SPIKE_FILTER=program`, each program installs the deny
/// filter itself (as one with the guard's listener would have to) instead of
/// inheriting the init's.
fn filter_per_program() -> bool {
    // SAFETY: as in `listening_fd`.
    let value = unsafe { libc::getenv(c"SLUICE_WARM_SPIKE_FILTER".as_ptr()) };
    // SAFETY: getenv returns a NUL-terminated string or null.
    !value.is_null() && unsafe { std::ffi::CStr::from_ptr(value) } == c"program"
}

/// What the program's side runs with.
struct Request<'a> {
    plan: &'a crate::plan::Prepared,
    signals: &'a crate::init::Signals,
    stdio: [c_int; 3],
    /// The filter the program installs, when it does not inherit the init's.
    deny: Option<&'a libc::sock_fprog>,
    /// The request's connection: where the guard's listener goes.
    conn: c_int,
}

/// Serves requests until the supervisor kills the init. Never returns.
pub(super) fn serve(
    run: &mut Runner,
    signals: &crate::init::Signals,
    deny: &libc::sock_fprog,
    listen: c_int,
) -> ! {
    let plan = run.plan;
    // The guard's filter (the deny filter in it) is each program's own, its
    // listener sent to the client; the init stays without a filter here.
    let per_program = filter_per_program() || plan.notify.is_some();
    if !per_program {
        // Once, for the init and every program it starts (inherited).
        run.step(Step::Seccomp, 0, || seccomp::install(deny, 0));
    }
    let deny = per_program.then_some(deny);
    if let Some(notify) = &plan.notify {
        // The supervisor waits for a listener once the launch pipe is
        // closed: a throwaway process's, which never notifies.
        // SAFETY: `hand_over` runs raw system calls only and exits; the
        // plan outlives the call.
        let made = unsafe {
            super::spawn_on_own_stack(hand_over, (notify as *const Notify).cast_mut().cast())
        };
        if made.is_err() {
            sys::exit(super::EXIT_SETUP_FAILED);
        }
    }
    // The launch pipe reaches EOF: the supervisor goes on to supervise.
    // SAFETY: close_range takes integers only.
    unsafe {
        libc::syscall(libc::SYS_close_range, 0u32, (listen - 1) as u32, 0u32);
        libc::syscall(libc::SYS_close_range, (listen + 1) as u32, u32::MAX, 0u32);
        libc::fcntl(listen, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    loop {
        // SAFETY: accept4 with no address to fill.
        let conn = unsafe {
            libc::accept4(
                listen,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if conn < 0 {
            continue;
        }
        let status = answer(plan, signals, deny, conn);
        // The client reads to the end: the status is the last 4 bytes.
        let _ = sys::write_all(conn, &status.to_ne_bytes());
        // SAFETY: the connection accepted above.
        unsafe { libc::close(conn) };
    }
}

/// Starts the program for one request and returns its status (-1: none).
fn answer(
    plan: &crate::plan::Prepared,
    signals: &crate::init::Signals,
    deny: Option<&libc::sock_fprog>,
    conn: c_int,
) -> c_int {
    let mut fds = [-1; sys::MAX_FDS];
    let mut byte = [0u8; 1];
    let got = sys::recv_fds(conn, &mut byte, &mut fds);
    let mut status = -1;
    if matches!(got, Ok(1)) && fds.iter().all(|&fd| fd >= 0) {
        let mut request = Request {
            plan,
            signals,
            stdio: [fds[0], fds[1], fds[2]],
            deny,
            conn,
        };
        // SAFETY: `program` runs raw system calls only and execs or exits;
        // `request` outlives the call.
        let pid =
            unsafe { super::spawn_on_own_stack(program, (&mut request as *mut Request).cast()) };
        if let Ok(pid) = pid {
            status = wait_for(pid);
        }
    }
    for fd in fds.into_iter().filter(|&fd| fd >= 0) {
        // SAFETY: descriptors received above, ours to close.
        unsafe { libc::close(fd) };
    }
    status
}

/// Reaps until `pid` has exited; returns its shell-style status.
fn wait_for(pid: libc::pid_t) -> c_int {
    loop {
        let mut raw = 0;
        // SAFETY: raw is a valid out-pointer.
        let got = unsafe { libc::waitpid(-1, &mut raw, 0) };
        if got == pid {
            return match libc::WIFSIGNALED(raw) {
                true => 128 + libc::WTERMSIG(raw),
                false => libc::WEXITSTATUS(raw),
            };
        }
        if got < 0 && sys::errno() != libc::EINTR {
            return -1;
        }
    }
}

/// The program's side: its filter (the guard's listener to the client), the
/// client's descriptors as 0, 1 and 2, the init's blocked signals unblocked,
/// `execve`.
extern "C" fn program(arg: *mut libc::c_void) -> c_int {
    // SAFETY: the `Request` that `answer` gave, untouched while this runs.
    let request = unsafe { &*arg.cast::<Request>() };
    let plan = request.plan;
    let filtered = match (&plan.notify, request.deny) {
        (Some(notify), _) => {
            let fprog = notify.program.as_fprog();
            crate::listener::install_and_hand_over(&fprog, request.conn)
        }
        (None, Some(deny)) => seccomp::install(deny, 0),
        (None, None) => Ok(()),
    };
    if filtered.is_err() {
        sys::exit(super::EXIT_SETUP_FAILED);
    }
    // After the hand-over: the connection may be one of 0, 1 and 2.
    for (target, &fd) in request.stdio.iter().enumerate() {
        // SAFETY: dup2 on descriptors the init holds; it clears close-on-exec.
        unsafe { libc::dup2(fd, target as c_int) };
    }
    let _ = request.signals.unblock();
    // SAFETY: program, argv and envp are NUL-terminated arrays prepared before fork.
    unsafe {
        libc::execve(
            plan.program.as_ptr(),
            plan.argv_ptrs.as_ptr(),
            plan.envp_ptrs.as_ptr(),
        )
    };
    sys::exit(127)
}

/// The throwaway process of `serve`: a listener for the supervisor.
extern "C" fn hand_over(arg: *mut libc::c_void) -> c_int {
    // SAFETY: the plan's `Notify` that `serve` gave, alive meanwhile.
    let notify = unsafe { &*arg.cast::<Notify>() };
    let fprog = notify.program.as_fprog();
    let sent = crate::listener::install_and_hand_over(&fprog, notify.socket.as_raw_fd());
    sys::exit(if sent.is_ok() {
        0
    } else {
        super::EXIT_SETUP_FAILED
    })
}
