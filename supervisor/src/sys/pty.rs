//! The system calls behind terminal ownership: a new pseudo-terminal, the
//! person's terminal modes and size, a guard that puts the modes back, and
//! the window's size changes as a descriptor to poll.
//!
//! The same on Linux and macOS but for three calls, each one function with
//! a body per OS: how the pty's slave is opened ([`open_pty`]), how the
//! slave's session is learnt ([`group_and_session`]) and how SIGWINCH is
//! read ([`WindowChanges`]: a signalfd, a kqueue). And the stop of
//! sluice's own process group for a suspend ([`stop_own_group`]).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::pty;
use nix::sys::termios::{cfmakeraw, Termios};

use super::check;

pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty takes an integer and only reports.
    unsafe { libc::isatty(fd) == 1 }
}

/// Whether descriptors `a` and `b` are the same device (stdout and stderr
/// on one terminal).
#[cfg(target_os = "linux")]
pub fn same_terminal(a: RawFd, b: RawFd) -> bool {
    let rdev = |fd: RawFd| {
        // SAFETY: fstat writes only into the zeroed struct it is given.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above; an integer descriptor and a valid pointer.
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st.st_rdev)
    };
    matches!((rdev(a), rdev(b)), (Some(a), Some(b)) if a == b)
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
    #[cfg(target_os = "linux")]
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    // macOS's posix_openpt is not said to take O_CLOEXEC: it is set at
    // once (a fork of another thread in between could inherit the master;
    // a sandboxed child closes every descriptor it is not handed).
    #[cfg(not(target_os = "linux"))]
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY;
    let master = pty::posix_openpt(flags)?;
    fcntl(&master, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    pty::grantpt(&master)?;
    pty::unlockpt(&master)?;
    let master = OwnedFd::from(master);
    let slave = open_slave(&master)?;
    Ok((master, slave))
}

/// The slave of `master`, close-on-exec, not made a controlling terminal.
#[cfg(target_os = "linux")]
fn open_slave(master: &OwnedFd) -> io::Result<OwnedFd> {
    // TIOCGPTPEER opens the slave through the master itself: no path lookup
    // in /dev/pts that another process could race.
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags as an integer, returns a new fd.
    let slave = check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) })?;
    // SAFETY: a new descriptor owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(slave) })
}

/// The slave of `master` by its name (`TIOCPTYGNAME`, what `ptsname_r`
/// asks), close-on-exec, not made a controlling terminal. macOS has no
/// TIOCGPTPEER; its `/dev` is devfs, whose nodes only the kernel makes.
#[cfg(target_os = "macos")]
fn open_slave(master: &OwnedFd) -> io::Result<OwnedFd> {
    let mut name = [0u8; 128];
    // SAFETY: TIOCPTYGNAME writes a NUL-terminated name of at most 128
    // bytes into `name`.
    check(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCPTYGNAME.into(),
            name.as_mut_ptr(),
        )
    })?;
    let name = std::ffi::CStr::from_bytes_until_nul(&name)
        .map_err(|_| io::Error::other("the pty's name (TIOCPTYGNAME) is not terminated"))?;
    open_slave_path(name)
}

/// Opens the slave at `path` and checks it is a terminal: the part of
/// macOS's [`open_slave`] that Linux runs too (its tests open a pty's
/// slave by name).
#[cfg(any(test, target_os = "macos"))]
fn open_slave_path(path: &std::ffi::CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    // SAFETY: path is NUL-terminated; open returns a new descriptor.
    let slave = check(unsafe { libc::open(path.as_ptr(), flags) })?;
    // SAFETY: a new descriptor owned here.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    if !is_terminal(slave.as_raw_fd()) {
        return Err(io::Error::other(format!(
            "{} is not a terminal",
            path.to_string_lossy()
        )));
    }
    Ok(slave)
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

    /// The suspend character of the person's own modes (`VSUSP`; 0: none).
    pub fn suspend_char(&self) -> u8 {
        self.saved.c_cc[libc::VSUSP]
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
    #[cfg(target_os = "linux")]
    const TIOCSIG: libc::c_ulong = libc::TIOCSIG;
    // Darwin's is an `_IO` request: the signal is the argument's value.
    #[cfg(not(target_os = "linux"))]
    const TIOCSIG: libc::c_ulong = libc::TIOCSIG as libc::c_ulong;
    // SAFETY: TIOCSIG takes a signal number; it signals the foreground
    // group of the pty's slave.
    unsafe { libc::ioctl(master.as_raw_fd(), TIOCSIG, signal) };
}

/// The pty slave's foreground process group and session, asked of the
/// master; 0 for either the kernel would not say.
pub fn group_and_session(master: RawFd) -> (libc::pid_t, libc::pid_t) {
    let mut group: libc::pid_t = 0;
    // SAFETY: TIOCGPGRP writes one pid_t into a valid out-pointer (on
    // macOS too from the master, which need not be our terminal).
    unsafe { libc::ioctl(master, libc::TIOCGPGRP, &mut group) };
    (group, session_of(master, group))
}

/// The slave's session: `TIOCGSID` on the master.
#[cfg(target_os = "linux")]
fn session_of(master: RawFd, _group: libc::pid_t) -> libc::pid_t {
    let mut session: libc::pid_t = 0;
    // SAFETY: TIOCGSID writes one pid_t into a valid out-pointer.
    unsafe { libc::ioctl(master, libc::TIOCGSID, &mut session) };
    session
}

/// The slave's session: macOS has no `TIOCGSID`; the session of the
/// foreground group's leader (`getsid`) is the terminal's, for a group of
/// the terminal's session only can be its foreground. A group whose
/// leader has exited has no session by this lookup (0), as for no group.
#[cfg(any(test, not(target_os = "linux")))]
fn session_of_group(group: libc::pid_t) -> libc::pid_t {
    if group <= 0 {
        return 0;
    }
    // SAFETY: integer argument only.
    unsafe { libc::getsid(group) }.max(0)
}

#[cfg(not(target_os = "linux"))]
fn session_of(_master: RawFd, group: libc::pid_t) -> libc::pid_t {
    session_of_group(group)
}

/// The window size changes of the person's terminal (SIGWINCH) as a
/// descriptor the relay polls, readable after a change until drained.
///
/// Linux: a signalfd; SIGWINCH is blocked in every thread
/// (`supervise::prepare_supervisor`), so only it reads the signal. macOS:
/// a kqueue with `EVFILT_SIGNAL` for SIGWINCH, which records the signal
/// whatever its disposition (the supervisor's kqueue, which forwards
/// signals, leaves SIGWINCH to this one); a kqueue descriptor is readable
/// while events wait.
pub struct WindowChanges {
    #[cfg(target_os = "linux")]
    fd: nix::sys::signalfd::SignalFd,
    #[cfg(not(target_os = "linux"))]
    fd: OwnedFd,
}

impl WindowChanges {
    #[cfg(target_os = "linux")]
    pub fn new() -> io::Result<WindowChanges> {
        use nix::sys::signal::{SigSet, Signal};
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        Ok(WindowChanges {
            fd: SignalFd::with_flags(
                &SigSet::from(Signal::SIGWINCH),
                SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
            )?,
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new() -> io::Result<WindowChanges> {
        // SAFETY: kqueue takes no arguments and returns a new descriptor
        // (not inherited across fork).
        let kq = check(unsafe { libc::kqueue() })?;
        // SAFETY: a new descriptor owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(kq) };
        fcntl(&fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        let change = libc::kevent {
            ident: libc::SIGWINCH as usize,
            filter: libc::EVFILT_SIGNAL,
            flags: libc::EV_ADD | libc::EV_CLEAR,
            fflags: 0,
            data: 0,
            udata: std::ptr::null_mut(),
        };
        // SAFETY: one valid change; no event is read back.
        check(unsafe {
            libc::kevent(
                fd.as_raw_fd(),
                &change,
                1,
                std::ptr::null_mut(),
                0,
                std::ptr::null(),
            )
        })?;
        Ok(WindowChanges { fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads every change so far (the relay then asks the size once).
    #[cfg(target_os = "linux")]
    pub fn drain(&self) {
        super::io::drain(self.fd.as_fd());
    }

    #[cfg(not(target_os = "linux"))]
    pub fn drain(&self) {
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            // SAFETY: an all-zero kevent is a valid out-buffer.
            let mut out: [libc::kevent; 4] = unsafe { std::mem::zeroed() };
            // SAFETY: out is valid for its length; no changes; no waiting.
            let n = unsafe {
                libc::kevent(
                    self.fd.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    out.as_mut_ptr(),
                    out.len() as libc::c_int,
                    &zero,
                )
            };
            let interrupted =
                n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted;
            if n <= 0 && !interrupted {
                return;
            }
        }
    }
}

/// How many times sluice was continued (`SIGCONT`) since the first
/// [`stop_own_group`] counted them.
static CONTINUES: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_continue(_: libc::c_int) {
    CONTINUES.fetch_add(1, Ordering::SeqCst);
}

/// Stops sluice's own process group (`SIGTSTP`, as a terminal's suspend
/// key would) and returns once sluice has been continued, or after `wait`
/// (an orphaned group is not stopped: the kernel discards the signal). The
/// group's stop takes the calling thread whenever it next leaves the
/// kernel, possibly well after `kill` returned: without the wait, what is
/// meant for after the `fg` (raw mode, the program's screen settings)
/// could reach the terminal before the stop, and the shell get it.
pub fn stop_own_group(wait: std::time::Duration) {
    static COUNTING: Once = Once::new();
    COUNTING.call_once(|| {
        // SAFETY: a zeroed sigaction with a handler that only increments an
        // atomic (async-signal-safe) is valid; `sa_mask` is emptied before
        // use; `SA_RESTART` keeps the other threads' calls going.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction =
                count_continue as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGCONT, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            tracing::debug!("counting continues: {}", io::Error::last_os_error());
        }
    });
    let before = CONTINUES.load(Ordering::SeqCst);
    let own_group = nix::unistd::Pid::from_raw(0);
    let _ = nix::sys::signal::kill(own_group, nix::sys::signal::Signal::SIGTSTP);
    let until = std::time::Instant::now() + wait;
    while CONTINUES.load(Ordering::SeqCst) == before && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slave opened by its name (macOS's way) is the master's own
    /// peer: what one side writes the other reads. The control: another
    /// pty's slave is not. (nix has `ptsname_r` on Linux only.)
    #[cfg(target_os = "linux")]
    #[test]
    fn the_slave_opened_by_name_is_the_masters_peer() {
        use crate::sys::io as fdio;
        let (master, _slave) = open_pty().unwrap();
        let (other, _other_slave) = open_pty().unwrap();
        let name = std::ffi::CString::new(nix::pty::ptsname_r(&own(&master)).unwrap()).unwrap();
        let slave = open_slave_path(&name).unwrap();
        fdio::write_all(slave.as_raw_fd(), b"peer").unwrap();
        for m in [&master, &other] {
            fdio::set_nonblocking(m.as_fd()).unwrap();
        }
        let mut buf = [0u8; 16];
        let mut fds = [libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        fdio::poll(&mut fds, 5000).unwrap();
        let n = fdio::read(master.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"peer");
        let e = fdio::read(other.as_raw_fd(), &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        // Not a terminal: refused.
        let e = open_slave_path(c"/dev/null").unwrap_err();
        assert!(e.to_string().contains("not a terminal"), "{e}");
    }

    /// A PtyMaster for nix's ptsname_r over a copy of `master`.
    #[cfg(target_os = "linux")]
    fn own(master: &OwnedFd) -> nix::pty::PtyMaster {
        let copy = master.try_clone().unwrap();
        // SAFETY: `copy` is a pty master, owned by the PtyMaster from here.
        unsafe { nix::pty::PtyMaster::from_owned_fd(copy) }
    }

    /// macOS's session lookup (`getsid` of the group's leader) names our
    /// session for a group we lead into it (a child in a group of its own:
    /// the test's own group may have lost its leader, as under a CI
    /// runner, so it is not used); a group that does not exist has none (0).
    #[test]
    fn the_session_of_a_group_is_its_leaders() {
        use std::os::unix::process::CommandExt;
        let mut leader = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        // SAFETY: an integer call on our own process.
        let sid = unsafe { libc::getsid(0) };
        assert_eq!(session_of_group(leader.id() as libc::pid_t), sid);
        let _ = leader.kill();
        let _ = leader.wait();
        assert_eq!(session_of_group(leader.id() as libc::pid_t), 0);
        assert_eq!(session_of_group(0), 0);
        assert_eq!(session_of_group(libc::pid_t::MAX), 0);
    }
}
