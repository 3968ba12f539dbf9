//! Supervising a running child: signals in, exit status out.
//!
//! The supervisor blocks the signals it handles before forking (the child
//! unblocks them before exec) and reads them from a signalfd, so no signal
//! handler runs and none is lost. It is the child subreaper: orphans of the
//! program are reparented to it, and when the program exits, whatever it left
//! behind is killed and reaped.

use std::io;

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{siginfo, SfdFlags, SignalFd};
use nix::unistd::{getpid, Pid};

use crate::cgroup::SessionCgroup;
use crate::exit;
use crate::sys;

/// Signals the supervisor forwards to the program when another process sends
/// them to sluice (to the sandbox's init, which passes them on).
const FORWARDED: [libc::c_int; 5] = sandbox_child::FORWARDED_SIGNALS;

fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for sig in FORWARDED.into_iter().chain([libc::SIGCHLD]) {
        set.add(Signal::try_from(sig).expect("a forwarded signal is a signal"));
    }
    set
}

/// Blocks the handled signals in this thread (and threads created later), and
/// makes sluice a subreaper that cannot be inspected by the program.
pub fn prepare_supervisor() -> io::Result<()> {
    handled_set().thread_block()?;
    // Non-dumpable: /proc/<sluice>/{mem,environ,root,...} and ptrace are
    // closed to processes without CAP_SYS_PTRACE, whatever else holds.
    prctl::set_dumpable(false)?;
    prctl::set_child_subreaper(true)?;
    Ok(())
}

/// Waits for `child` to exit while forwarding signals; then kills and reaps
/// everything it left behind. Returns the shell-style exit status.
pub fn supervise(child: libc::pid_t, cgroup: Option<&SessionCgroup>) -> io::Result<i32> {
    supervise_except(child, cgroup, &[])
}

/// [`supervise`], leaving the signals in `others` to another thread's
/// signalfd (the terminal relay reads SIGWINCH itself).
pub fn supervise_except(
    child: libc::pid_t,
    cgroup: Option<&SessionCgroup>,
    others: &[libc::c_int],
) -> io::Result<i32> {
    let mut set = handled_set();
    for sig in others {
        set.remove(Signal::try_from(*sig)?);
    }
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)?;
    let status = loop {
        if let Some(status) = reap(child)? {
            break status;
        }
        let info = read_signal(&sfd)?;
        let sig = info.ssi_signo as libc::c_int;
        // A signal the terminal generated (SI_KERNEL) already reached the
        // program, which shares our process group; forward only those that
        // another process sent to sluice itself.
        if sig != libc::SIGCHLD && info.ssi_code <= 0 {
            // Every handled signal is a `Signal`; an error means the child
            // is gone, which the next reap reports.
            if let Ok(sig) = Signal::try_from(sig) {
                let _ = kill(Pid::from_raw(child), sig);
            }
        }
    };
    kill_leftovers(cgroup);
    Ok(exit::from_wait_status(status))
}

/// The next signal from a blocking signalfd.
fn read_signal(sfd: &SignalFd) -> io::Result<siginfo> {
    loop {
        match sfd.read_signal() {
            Ok(Some(info)) => return Ok(info),
            // Only a non-blocking signalfd has nothing to read.
            Ok(None) => return Err(io::ErrorKind::WouldBlock.into()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reaps every exited child; returns the main child's status once it exits.
fn reap(child: libc::pid_t) -> io::Result<Option<libc::c_int>> {
    let mut main = None;
    loop {
        match sys::process::wait_any(false) {
            Ok(None) => return Ok(main),
            Ok(Some((p, status))) if p == child => main = Some(status),
            Ok(Some(_)) => {}
            Err(e) => {
                return match e.raw_os_error() {
                    Some(libc::ECHILD) => Ok(main),
                    Some(libc::EINTR) => continue,
                    _ => Err(e),
                };
            }
        }
    }
}

/// Kills what the program left running and reaps it. With a session cgroup
/// the cgroup is emptied; otherwise our remaining children (orphans are
/// reparented to us as subreaper) are killed until none is left.
fn kill_leftovers(cgroup: Option<&SessionCgroup>) {
    if let Some(cg) = cgroup {
        cg.kill_all();
    }
    loop {
        match sys::process::wait_any(false) {
            Ok(Some(_)) => continue,
            Err(_) => return, // ECHILD: nothing left
            Ok(None) => {}
        }
        for child in children_of(getpid().as_raw()) {
            // A process whose parent is sluice; gone already is fine.
            let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
        }
        // Blocking wait for any child; an error (ECHILD) when none.
        if sys::process::wait_any(true).is_err() {
            return;
        }
    }
}

/// Processes whose parent is `parent`, from /proc.
fn children_of(parent: libc::pid_t) -> Vec<libc::pid_t> {
    let me = parent;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    // The command name may hold spaces and parentheses: skip past the last ')'.
                    let rest = &s[s.rfind(')')? + 2..];
                    rest.split(' ').nth(1)?.parse::<libc::pid_t>().ok()
                })
                == Some(me)
        })
        .collect()
}
