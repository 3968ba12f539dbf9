//! Supervising the program on macOS: one kqueue for its exit
//! (`EVFILT_PROC`, `NOTE_EXIT | NOTE_EXITSTATUS`), the signals sluice
//! passes on (`EVFILT_SIGNAL`, their dispositions set to ignore so only
//! the kqueue sees them) and a stop request from another thread
//! (`EVFILT_USER`). What each event means is `platform::kevents`
//! (portable, tested on Linux).
//!
//! The end: the program's process group (the child made it with `setsid`)
//! is killed with SIGKILL once the program has exited or a stop was asked,
//! and the program is reaped. What macOS does not give, so what does not
//! hold of "no process outlives the session": a process that left the
//! group (`setsid`, `setpgid`, which the profile cannot forbid) is not
//! found (no subreaper, no cgroup, no PID namespace); orphans are
//! reparented to launchd, not to sluice; and a supervisor killed with
//! SIGKILL leaves the program running (no parent-death signal).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::exit;
use crate::platform::kevents::{self, Action, KEvent, STOP_IDENT};

// The portable module's constants are Darwin's: checked at compile time.
const _: () = assert!(kevents::EVFILT_PROC == libc::EVFILT_PROC);
const _: () = assert!(kevents::EVFILT_SIGNAL == libc::EVFILT_SIGNAL);
const _: () = assert!(kevents::EVFILT_USER == libc::EVFILT_USER);
const _: () = assert!(kevents::EV_ERROR == libc::EV_ERROR);
const _: () = assert!(kevents::NOTE_EXIT == libc::NOTE_EXIT);
const _: () = assert!(kevents::NOTE_EXITSTATUS == libc::NOTE_EXITSTATUS);
const _: () = assert!(kevents::NOTE_TRIGGER == libc::NOTE_TRIGGER);

/// The kqueue of one session.
pub struct Supervisor {
    kq: OwnedFd,
    child: libc::pid_t,
    /// The forwarded signals this kqueue reads.
    forwarded: Vec<libc::c_int>,
}

fn change(ident: usize, filter: i16, flags: u16, fflags: u32) -> libc::kevent {
    libc::kevent {
        ident,
        filter,
        flags,
        fflags,
        data: 0,
        udata: std::ptr::null_mut(),
    }
}

fn submit(kq: &OwnedFd, changes: &[libc::kevent]) -> io::Result<()> {
    // SAFETY: changes is valid for its length; no events are read back.
    let rc = unsafe {
        libc::kevent(
            kq.as_raw_fd(),
            changes.as_ptr(),
            changes.len() as libc::c_int,
            std::ptr::null_mut(),
            0,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Supervisor {
    /// Before the fork: the kqueue, the forwarded signals registered and
    /// ignored (so the child, which resets every disposition, is not
    /// affected) but for those in `relayed` (SIGWINCH, read by the terminal
    /// relay's own kqueue), and the stop event.
    pub fn new(relayed: &[libc::c_int]) -> io::Result<Supervisor> {
        // SAFETY: kqueue takes no arguments.
        let kq = unsafe { libc::kqueue() };
        if kq < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: kq was just made and is owned by nothing else.
        let kq = unsafe { OwnedFd::from_raw_fd(kq) };
        let forwarded = kevents::forwarded(relayed);
        let mut changes: Vec<libc::kevent> = forwarded
            .iter()
            .map(|&sig| change(sig as usize, libc::EVFILT_SIGNAL, libc::EV_ADD, 0))
            .collect();
        changes.push(change(
            STOP_IDENT,
            libc::EVFILT_USER,
            libc::EV_ADD | libc::EV_CLEAR,
            0,
        ));
        submit(&kq, &changes)?;
        for &sig in &forwarded {
            // SAFETY: setting a disposition to ignore; no handler runs.
            if unsafe { libc::signal(sig, libc::SIG_IGN) } == libc::SIG_ERR {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Supervisor {
            kq,
            child: 0,
            forwarded,
        })
    }

    /// Watches the forked program.
    pub fn watch(&mut self, child: libc::pid_t) -> io::Result<()> {
        self.child = child;
        let fflags = libc::NOTE_EXIT | libc::NOTE_EXITSTATUS;
        match submit(
            &self.kq,
            &[change(
                child as usize,
                libc::EVFILT_PROC,
                libc::EV_ADD,
                fflags,
            )],
        ) {
            // Already gone: the loop reaps it at once.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => self.stop(),
            other => other,
        }
    }

    /// Asks the loop to end (from another thread).
    pub fn stop(&self) -> io::Result<()> {
        submit(
            &self.kq,
            &[change(STOP_IDENT, libc::EVFILT_USER, 0, libc::NOTE_TRIGGER)],
        )
    }

    /// Waits for the program to exit while forwarding signals; then kills
    /// its process group and reaps it. Returns the shell-style status.
    pub fn run(&self) -> io::Result<i32> {
        loop {
            let mut out = change(0, 0, 0, 0);
            // SAFETY: out is valid for one event; no changes are submitted.
            let n = unsafe {
                libc::kevent(
                    self.kq.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    &mut out,
                    1,
                    std::ptr::null(),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                continue;
            }
            let event = kevents::decode(&KEvent {
                ident: out.ident,
                filter: out.filter,
                flags: out.flags,
                fflags: out.fflags,
                data: out.data as i64,
            });
            match kevents::action(event, self.child, &self.forwarded) {
                Action::Forward(sig) => {
                    // SAFETY: a signal to the program's own process group.
                    unsafe { libc::kill(-self.child, sig) };
                }
                Action::Ignore => {}
                Action::Reap | Action::Stop => return Ok(self.finish()),
            }
        }
    }

    /// Kills what is left of the program's process group and reaps the
    /// program.
    fn finish(&self) -> i32 {
        // SAFETY: SIGKILL to the program's own process group (it may be
        // gone: ESRCH is fine).
        unsafe { libc::kill(-self.child, libc::SIGKILL) };
        let mut status = 0;
        loop {
            // SAFETY: status is a valid out-pointer.
            let rc = unsafe { libc::waitpid(self.child, &mut status, 0) };
            if rc == self.child {
                return exit::from_wait_status(status);
            }
            if rc < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return exit::ERROR;
            }
        }
    }
}
