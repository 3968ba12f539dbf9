//! Plain descriptor I/O: reads and writes retried on EINTR, `poll`,
//! non-blocking mode, and a [`Waker`] one thread makes readable for
//! another. The same on Linux and macOS but for `poll` (see there).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};

use super::check;

/// Sets `O_NONBLOCK` on `fd`, keeping its other status flags.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Clears `O_NONBLOCK` on `fd`, keeping its other status flags.
#[cfg(target_os = "linux")]
pub fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    Ok(())
}

/// `read(2)` into `buf`, retried on EINTR.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `write(2)` once, retried on EINTR; returns how much was written.
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Writes all of `buf` to a blocking descriptor (the person's terminal).
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write(fd, buf)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => buf = &buf[n..],
        }
    }
    Ok(())
}

/// Empties a non-blocking pipe, eventfd or signalfd.
pub fn drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 128];
    while matches!(read(fd.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
}

/// `poll(2)` on `fds`, retried on EINTR; the results are in each `revents`.
#[cfg_attr(target_os = "macos", allow(dead_code))]
pub fn poll(fds: &mut [libc::pollfd], timeout: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: fds is a valid array of pollfd for its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// [`poll`] for `POLLIN` and `POLLOUT` on descriptors that may be
/// terminals (the relay's wait; a descriptor of -1 is skipped).
///
/// On macOS the same contract is kept over `select(2)`: its `poll(2)` does
/// not support devices (its manual's BUGS), and the terminal relay waits on
/// two terminals. There a descriptor is reported only for what was asked
/// of it (a hung-up one as readable or writable, never as `POLLHUP` alone).
/// Linux does the same with the `select-poll` feature, so the relay is
/// tested there in macOS's configuration.
pub fn poll_terminals(fds: &mut [libc::pollfd], timeout: libc::c_int) -> io::Result<()> {
    #[cfg(all(target_os = "linux", not(feature = "select-poll")))]
    return poll(fds, timeout);
    #[cfg(any(not(target_os = "linux"), feature = "select-poll"))]
    return poll_by_select(fds, timeout);
}

/// [`poll_terminals`] over `select(2)` (macOS); compiled on Linux for its
/// tests, which hold it to `poll(2)`'s answers.
#[cfg(any(test, not(target_os = "linux"), feature = "select-poll"))]
fn poll_by_select(fds: &mut [libc::pollfd], timeout: libc::c_int) -> io::Result<()> {
    let empty = || {
        // SAFETY: an all-zero fd_set is a valid, empty one (FD_ZERO).
        unsafe { std::mem::zeroed::<libc::fd_set>() }
    };
    let (mut want_read, mut want_write) = (empty(), empty());
    let mut nfds = 0;
    for p in fds.iter_mut() {
        p.revents = 0;
        if p.fd < 0 {
            continue;
        }
        if p.fd as usize >= libc::FD_SETSIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "descriptor {} is beyond select(2)'s FD_SETSIZE ({})",
                    p.fd,
                    libc::FD_SETSIZE
                ),
            ));
        }
        // SAFETY: p.fd is within 0..FD_SETSIZE (checked above), and the
        // sets are valid fd_sets owned here.
        unsafe {
            if p.events & libc::POLLIN != 0 {
                libc::FD_SET(p.fd, &mut want_read);
            }
            if p.events & libc::POLLOUT != 0 {
                libc::FD_SET(p.fd, &mut want_write);
            }
        }
        nfds = nfds.max(p.fd + 1);
    }
    let (read, write) = loop {
        let (mut read, mut write) = (want_read, want_write);
        let mut tv = libc::timeval {
            tv_sec: (timeout / 1000) as libc::time_t,
            tv_usec: ((timeout % 1000) * 1000) as libc::suseconds_t,
        };
        let tv_ptr: *mut libc::timeval = if timeout < 0 {
            std::ptr::null_mut()
        } else {
            &mut tv
        };
        // SAFETY: the sets and the timeval (or null: no timeout) are valid
        // for the call; nfds bounds the descriptors in the sets.
        let n = unsafe { libc::select(nfds, &mut read, &mut write, std::ptr::null_mut(), tv_ptr) };
        if n >= 0 {
            break (read, write);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    for p in fds.iter_mut().filter(|p| p.fd >= 0) {
        // SAFETY: p.fd is within 0..FD_SETSIZE (checked above); the sets
        // are valid.
        unsafe {
            if libc::FD_ISSET(p.fd, &read) {
                p.revents |= libc::POLLIN;
            }
            if libc::FD_ISSET(p.fd, &write) {
                p.revents |= libc::POLLOUT;
            }
        }
    }
    Ok(())
}

/// Both ends of a new pipe, close-on-exec and non-blocking.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(target_os = "linux")]
    {
        Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?)
    }
    // macOS has no pipe2: the flags follow at once. A fork of another
    // thread in between could inherit the ends, which no sandboxed child
    // keeps (it closes every descriptor it is not handed).
    #[cfg(not(target_os = "linux"))]
    {
        use nix::fcntl::FdFlag;
        let (read, write) = nix::unistd::pipe()?;
        for end in [&read, &write] {
            fcntl(end, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
            set_nonblocking(end.as_fd())?;
        }
        Ok((read, write))
    }
}

/// A descriptor one thread makes readable for another that polls it (the
/// prompter's queue changed, the relay is to stop): a pipe, both ends
/// non-blocking, the same on Linux and macOS (which has no eventfd).
#[derive(Debug)]
pub struct Waker {
    read: OwnedFd,
    write: OwnedFd,
}

impl Waker {
    pub fn new() -> io::Result<Waker> {
        let (read, write) = pipe()?;
        Ok(Waker { read, write })
    }

    /// Makes [`Waker::fd`] readable. Never blocks: a full pipe is readable
    /// already, and wakes the same.
    pub fn wake(&self) {
        let _ = write(self.write.as_raw_fd(), &[1]);
    }

    /// Readable after [`Waker::wake`], until [`Waker::clear`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Reads every wake-up so far.
    pub fn clear(&self) {
        drain(self.read.as_fd());
    }
}

/// Takes ownership of descriptor `fd`, inherited from the process that
/// started sluice and named on its command line for sluice to consume (as
/// bubblewrap's `--args FD`): `EBADF` when it is not open. The caller must
/// name only a descriptor nothing else in this process owns: one inherited
/// at exec and handed over for this use alone.
#[cfg_attr(target_os = "macos", allow(dead_code))]
pub fn adopt_inherited(fd: RawFd) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: F_GETFD only asks whether `fd` is open.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: `fd` is open (checked above) and, by this function's
    // contract, inherited and handed to us for this alone: no other owner
    // closes it.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Registers `fd` with the tokio runtime's reactor (panics outside one).
#[cfg_attr(target_os = "macos", allow(dead_code))]
pub fn watch(
    fd: std::os::fd::OwnedFd,
) -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: an OwnedFd keeps its descriptor open, under the same number,
    // until it is dropped, and the AsyncFd owns it for its whole life.
    Ok(unsafe { tokio::io::unix::AsyncFd::register(fd) }?)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::IntoRawFd;

    use super::*;

    /// A descriptor that is not open is refused, never adopted; an open
    /// one (the control) is, and reads what was written to its pipe.
    #[test]
    fn only_an_open_descriptor_is_adopted() {
        let e = adopt_inherited(RawFd::MAX).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}");
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        std::fs::File::from(write_end).write_all(b"args").unwrap();
        let adopted = adopt_inherited(read_end.into_raw_fd()).unwrap();
        let mut got = String::new();
        std::fs::File::from(adopted)
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!(got, "args");
    }

    fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
        libc::pollfd {
            fd,
            events,
            revents: 0,
        }
    }

    /// macOS's `poll` over `select(2)` gives what Linux's `poll(2)` gives
    /// for what the relay asks: readable, writable, neither, a skipped
    /// descriptor, a hung-up writer, a terminal's both sides.
    #[test]
    fn poll_by_select_answers_as_poll_does() {
        let (r, w) = pipe().unwrap();
        let (master, slave) = crate::sys::pty::open_pty().unwrap();
        let check = |fds: &[libc::pollfd], label: &str| {
            let mut native = fds.to_vec();
            let mut by_select = fds.to_vec();
            poll(&mut native, 0).unwrap();
            poll_by_select(&mut by_select, 0).unwrap();
            let asked = |p: &libc::pollfd| p.revents & (libc::POLLIN | libc::POLLOUT);
            let native: Vec<_> = native.iter().map(asked).collect();
            let by_select: Vec<_> = by_select.iter().map(|p| p.revents).collect();
            assert_eq!(by_select, native, "{label}");
            by_select
        };
        let both = libc::POLLIN | libc::POLLOUT;
        let set = |fds: [RawFd; 3]| {
            [
                pollfd(fds[0], libc::POLLIN),
                pollfd(fds[1], both),
                pollfd(fds[2], both),
            ]
        };
        let fds = [r.as_raw_fd(), w.as_raw_fd(), master.as_raw_fd()];
        // Nothing written yet: the pipe's read end is not readable, its
        // write end and the master are writable, the master not readable.
        let got = check(&set(fds), "idle");
        assert_eq!(got, [0, libc::POLLOUT, libc::POLLOUT]);
        write_all(w.as_raw_fd(), b"x").unwrap();
        write_all(slave.as_raw_fd(), b"y").unwrap();
        let got = check(&set(fds), "written");
        assert_eq!(got[0], libc::POLLIN);
        assert_eq!(got[2], both);
        // A descriptor of -1 is skipped, and reports nothing.
        let got = check(&set([-1, w.as_raw_fd(), -1]), "skipped");
        assert_eq!(got, [0, libc::POLLOUT, 0]);
        // The writer gone: the read end is readable (end of file).
        drop(w);
        let got = check(&[pollfd(r.as_raw_fd(), libc::POLLIN)], "hung up");
        assert_eq!(got, [libc::POLLIN]);
        // A timeout with nothing ready returns with nothing reported.
        let mut fds = [pollfd(master.as_raw_fd(), 0)];
        poll_by_select(&mut fds, 10).unwrap();
        assert_eq!(fds[0].revents, 0);
    }

    /// A descriptor select(2) cannot hold is refused, not ignored.
    #[test]
    fn poll_by_select_refuses_a_descriptor_beyond_its_set() {
        let mut fds = [pollfd(libc::FD_SETSIZE as RawFd, libc::POLLIN)];
        let e = poll_by_select(&mut fds, 0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    }

    /// A wake-up makes the waker readable until cleared; many wake-ups
    /// never block the waking thread (the control: not readable before).
    #[test]
    fn a_waker_is_readable_after_a_wake_until_cleared() {
        let waker = Waker::new().unwrap();
        let readable = |waker: &Waker| {
            let mut fds = [pollfd(waker.fd().as_raw_fd(), libc::POLLIN)];
            poll(&mut fds, 0).unwrap();
            fds[0].revents & libc::POLLIN != 0
        };
        assert!(!readable(&waker));
        waker.wake();
        assert!(readable(&waker));
        waker.clear();
        assert!(!readable(&waker));
        // More than a pipe holds: the writes that do not fit are dropped.
        for _ in 0..200_000 {
            waker.wake();
        }
        assert!(readable(&waker));
        waker.clear();
        assert!(!readable(&waker));
    }
}
