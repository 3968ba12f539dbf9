//! Plain descriptor I/O: reads and writes retried on EINTR, `poll`, and
//! non-blocking mode.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};

use super::check;

/// Sets `O_NONBLOCK` on `fd`, keeping its other status flags.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
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

/// Empties a non-blocking eventfd or signalfd.
pub fn drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 128];
    while matches!(read(fd.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
}

/// `poll(2)` on `fds`, retried on EINTR; the results are in each `revents`.
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

/// Takes ownership of descriptor `fd`, inherited from the process that
/// started sluice and named on its command line for sluice to consume (as
/// bubblewrap's `--args FD`): `EBADF` when it is not open. The caller must
/// name only a descriptor nothing else in this process owns: one inherited
/// at exec and handed over for this use alone.
pub fn adopt_inherited(fd: RawFd) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: F_GETFD only asks whether `fd` is open.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: `fd` is open (checked above) and, by this function's
    // contract, inherited and handed to us for this alone: no other owner
    // closes it.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Registers `fd` with the tokio runtime's reactor (panics outside one).
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
}
