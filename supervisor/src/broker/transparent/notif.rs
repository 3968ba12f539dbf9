//! The seccomp user-notification listener: receive, check, answer.
//!
//! Thin wrappers over the `SECCOMP_IOCTL_NOTIF_*` ioctls (seccomp_unotify(2)).
//! Every answer names the notification by its id; the kernel refuses an
//! answer to a notification that is no longer pending (`ENOENT`: the thread
//! was killed, or its call interrupted), so a late answer never reaches
//! another call.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// From linux/seccomp.h (`libc` has the ioctl but not its flag).
const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: libc::c_ulong = 1;

/// A notification as received: which thread, which call, which arguments.
pub type Notif = libc::seccomp_notif;

/// The supervisor's end of the program's notification filter.
#[derive(Debug)]
pub struct Listener(OwnedFd);

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Listener {
    /// Wraps a listener descriptor, after checking that the kernel's
    /// structures are no larger than this build's (the kernel writes its
    /// own size into the buffer it is given).
    pub fn new(fd: OwnedFd) -> io::Result<Listener> {
        let mut sizes = libc::seccomp_notif_sizes {
            seccomp_notif: 0,
            seccomp_notif_resp: 0,
            seccomp_data: 0,
        };
        // SAFETY: SECCOMP_GET_NOTIF_SIZES writes one seccomp_notif_sizes.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_GET_NOTIF_SIZES,
                0,
                &mut sizes as *mut libc::seccomp_notif_sizes,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let ours = (
            std::mem::size_of::<Notif>(),
            std::mem::size_of::<libc::seccomp_notif_resp>(),
        );
        if usize::from(sizes.seccomp_notif) > ours.0
            || usize::from(sizes.seccomp_notif_resp) > ours.1
        {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the kernel's notification structures {sizes:?} outgrew this build's {ours:?}"
                ),
            ));
        }
        let listener = Listener(fd);
        if let Err(e) = listener.wake_on_current_cpu() {
            // Correct without it, only slower (Linux < 6.6).
            tracing::debug!("transparent: no synchronous wake-ups: {e}");
        }
        Ok(listener)
    }

    /// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6): the program's
    /// thread and the thread serving it hand the CPU to each other instead
    /// of waking one another on different CPUs. Both sides of a
    /// notification wait for the other, so nothing runs less in parallel;
    /// the round trip costs a fraction (see `benches/transparent/`).
    fn wake_on_current_cpu(&self) -> io::Result<()> {
        // SAFETY: SET_FLAGS takes its flags by value and touches no memory.
        let rc = unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
                SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Waits for the next notification. `ENOENT` means the call it was for
    /// went away before it could be received (the thread was interrupted or
    /// killed), or that no thread is left to notify ([`Listener::hung_up`]
    /// tells which). `EINTR`: a signal interrupted the wait.
    pub fn recv(&self) -> io::Result<Notif> {
        // SAFETY: the kernel requires a zeroed buffer; all-zero is valid.
        let mut notif: Notif = unsafe { std::mem::zeroed() };
        // SAFETY: RECV writes one seccomp_notif into `notif`.
        let rc = unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut notif as *mut Notif,
            )
        };
        if rc == 0 {
            Ok(notif)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Whether every thread the filter could notify has exited (`POLLHUP`).
    pub fn hung_up(&self) -> bool {
        let mut fd = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a zero timeout never waits.
        let n = unsafe { libc::poll(&mut fd, 1, 0) };
        n == 1 && fd.revents & (libc::POLLHUP | libc::POLLERR) != 0
    }

    /// Whether notification `id` is still pending: after this returns true,
    /// whatever was read about its thread before the call (memory, `/proc`
    /// links) was read from that thread, not from a reused pid.
    pub fn is_valid(&self, id: u64) -> bool {
        let mut id = id;
        // SAFETY: ID_VALID reads one u64.
        let rc = unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
                &mut id as *mut u64,
            )
        };
        rc == 0
    }

    /// Lets the call run in the kernel as if it had not been intercepted;
    /// the program's other layers (Landlock, the mount view) decide.
    pub fn allow_kernel(&self, id: u64) -> io::Result<()> {
        self.send(id, 0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32)
    }

    /// Answers the call with success (0) without running it.
    pub fn succeed(&self, id: u64) -> io::Result<()> {
        self.send(id, 0, 0, 0)
    }

    /// Answers the call with `val` without running it (a watch descriptor
    /// the supervisor made for it).
    pub fn succeed_with(&self, id: u64, val: i64) -> io::Result<()> {
        self.send(id, val, 0, 0)
    }

    /// Fails the call with `errno`.
    pub fn fail(&self, id: u64, errno: i32) -> io::Result<()> {
        self.send(id, 0, -errno, 0)
    }

    fn send(&self, id: u64, val: i64, error: i32, flags: u32) -> io::Result<()> {
        let mut resp = libc::seccomp_notif_resp {
            id,
            val,
            error,
            flags,
        };
        // SAFETY: SEND reads one seccomp_notif_resp.
        let rc = unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp as *mut libc::seccomp_notif_resp,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Places a copy of `fd` in the program and answers the call with its
    /// number: the program gets the descriptor as the result of its own
    /// `open`. Our copy stays ours.
    ///
    /// Two steps (`ADDFD`, then `SEND` with the number) rather than one
    /// (`SECCOMP_ADDFD_FLAG_SEND`). `ADDFD` wakes the thread to install the
    /// descriptor without the synchronous hint, so the scheduler may move
    /// it to an idle CPU; with the flag it then returns to user space
    /// there, and its next call wakes the supervisor across CPUs. The
    /// final `SEND` wakes it on the supervisor's CPU instead. Reading every
    /// file of a 10,000-file brokered tree took 0.28 s this way and 0.45 s
    /// with the flag (a virtual machine without halt polling, where waking
    /// an idle CPU costs ~25 us). A single thread calling in a loop alone
    /// favours the flag (8.7 against 9.9 us a call, `benches/transparent/`):
    /// the whole workload decides. What the flag protects against, a
    /// signal restarting the call between the two steps and leaving the
    /// descriptor behind, cannot happen here: the filter is installed with
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`, so once received, the call
    /// waits for our answer through every signal but a fatal one (after
    /// which nothing of the process is left to leak into).
    pub fn add_fd_and_answer(&self, id: u64, fd: BorrowedFd<'_>, cloexec: bool) -> io::Result<i32> {
        let number = self.add_fd(id, fd, None, cloexec, 0)?;
        self.send(id, i64::from(number), 0, 0)?;
        Ok(number)
    }

    /// Places a copy of `fd` in the program as the call's result, in one
    /// step (`SECCOMP_ADDFD_FLAG_SEND`): two wake-ups (the thread installs
    /// it, then tells the supervisor) rather than [`Listener::add_fd_and_answer`]'s
    /// three. The guard answers this way: its calls are writes, each
    /// already a connector round trip, and a 3,000-open loop of `O_CREAT`
    /// opens under `default` took 171 to 186 us an open against 225 to 240
    /// with the two steps (CPU 15% less; load ~16, 2026-12-06), 2 to 6%
    /// less with every process on one CPU.
    pub fn add_fd_as_result(&self, id: u64, fd: BorrowedFd<'_>, cloexec: bool) -> io::Result<i32> {
        let flags = libc::SECCOMP_ADDFD_FLAG_SEND as u32;
        self.add_fd(id, fd, None, cloexec, flags)
    }

    /// Puts a copy of `fd` on the program's descriptor `number`
    /// (`SECCOMP_ADDFD_FLAG_SETFD`: what the number named is closed, as
    /// `dup2` does), without answering the call: the number the program
    /// holds names our file from then on. Our copy stays ours.
    pub fn replace_fd(
        &self,
        id: u64,
        fd: BorrowedFd<'_>,
        number: RawFd,
        cloexec: bool,
    ) -> io::Result<()> {
        let flags = libc::SECCOMP_ADDFD_FLAG_SETFD as u32;
        self.add_fd(id, fd, Some(number), cloexec, flags).map(drop)
    }

    /// `SECCOMP_IOCTL_NOTIF_ADDFD` with `flags`, at the lowest free number
    /// or on `number` (with `SECCOMP_ADDFD_FLAG_SETFD`): the number `fd`
    /// got in the program.
    fn add_fd(
        &self,
        id: u64,
        fd: BorrowedFd<'_>,
        number: Option<RawFd>,
        cloexec: bool,
        flags: u32,
    ) -> io::Result<i32> {
        let mut addfd = libc::seccomp_notif_addfd {
            id,
            flags,
            srcfd: fd.as_raw_fd() as u32,
            newfd: number.map_or(0, |n| n as u32),
            newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        // SAFETY: ADDFD reads one seccomp_notif_addfd; srcfd is open.
        let rc = unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ADDFD,
                &mut addfd as *mut libc::seccomp_notif_addfd,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc)
    }
}
