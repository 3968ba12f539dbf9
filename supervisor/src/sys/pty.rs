//! The system calls behind terminal ownership: a new pseudo-terminal, the
//! person's terminal modes and size, and a guard that puts the modes back.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::pty;
use nix::sys::termios::{cfmakeraw, Termios};

use super::check;

pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty takes an integer and only reports.
    unsafe { libc::isatty(fd) == 1 }
}

/// Whether this process's group is the terminal's foreground group: a
/// background `sluice run &` must not take the terminal (changing its modes
/// would stop it with SIGTTOU).
pub fn in_foreground(fd: RawFd) -> bool {
    // SAFETY: integer arguments only.
    unsafe { libc::tcgetpgrp(fd) == libc::getpgrp() }
}

/// A new pseudo-terminal: (master, slave), both close-on-exec, the slave
/// opened without becoming anyone's controlling terminal.
pub fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let master = pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    pty::grantpt(&master)?;
    pty::unlockpt(&master)?;
    let master = OwnedFd::from(master);
    // TIOCGPTPEER opens the slave through the master itself: no path lookup
    // in /dev/pts that another process could race.
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags as an integer, returns a new fd.
    let slave = check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) })?;
    // SAFETY: a new descriptor owned here.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

pub fn get_termios(fd: RawFd) -> io::Result<libc::termios> {
    // SAFETY: an all-zero termios is valid; tcgetattr fills it.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: t is a valid out-pointer.
    check(unsafe { libc::tcgetattr(fd, &mut t) })?;
    Ok(t)
}

pub fn set_termios(fd: RawFd, t: &libc::termios) -> io::Result<()> {
    // SAFETY: t is a valid termios.
    check(unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, t) }).map(drop)
}

pub fn get_size(fd: RawFd) -> io::Result<libc::winsize> {
    // SAFETY: an all-zero winsize is valid; the ioctl fills it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize.
    check(unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) })?;
    Ok(ws)
}

pub fn set_size(fd: RawFd, ws: &libc::winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, ws) }).map(drop)
}

/// The person's terminal in raw mode until dropped, when the modes it had
/// are put back (on every way out of `sluice run`, a panic included).
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
    raw: libc::termios,
}

impl RawMode {
    pub fn enter(fd: RawFd, saved: libc::termios) -> io::Result<RawMode> {
        let mut raw = Termios::from(saved);
        cfmakeraw(&mut raw);
        let raw = libc::termios::from(raw);
        set_termios(fd, &raw)?;
        Ok(RawMode { fd, saved, raw })
    }

    /// The modes the terminal had, while sluice is stopped.
    pub fn pause(&self) -> io::Result<()> {
        set_termios(self.fd, &self.saved)
    }

    /// Raw mode again after [`RawMode::pause`].
    pub fn resume(&self) -> io::Result<()> {
        set_termios(self.fd, &self.raw)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Err(e) = set_termios(self.fd, &self.saved) {
            eprintln!("sluice: could not restore the terminal's modes: {e} (try `stty sane`)");
        }
    }
}

/// Sends `signal` to the foreground process group of the pty whose master
/// is `master` (`TIOCSIG`); errors are ignored, as when the slave is gone.
pub fn signal_foreground(master: BorrowedFd<'_>, signal: libc::c_int) {
    // SAFETY: TIOCSIG takes a signal number; it signals the foreground
    // group of the pty's slave.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSIG, signal) };
}

/// The pty slave's foreground process group and session (`TIOCGPGRP`,
/// `TIOCGSID` on the master); 0 for either the kernel would not say.
pub fn group_and_session(master: RawFd) -> (libc::pid_t, libc::pid_t) {
    let (mut group, mut session): (libc::pid_t, libc::pid_t) = (0, 0);
    // SAFETY: both ioctls write one pid_t into a valid out-pointer.
    unsafe {
        libc::ioctl(master, libc::TIOCGPGRP, &mut group);
        libc::ioctl(master, libc::TIOCGSID, &mut session);
    }
    (group, session)
}
