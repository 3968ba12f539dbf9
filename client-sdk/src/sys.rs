//! The few system calls std does not wrap. The only `unsafe` in the crate.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Duplicates descriptor number `raw` (close-on-exec, numbered 3 or above),
/// leaving the original and its flags as they are. `EBADF` if `raw` is not
/// open.
///
/// Working on a copy means the client never depends on a number it does not
/// own staying open, and never changes the inherited descriptor's flags.
pub(crate) fn dup_raw(raw: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer argument and touches no
    // memory; on a number that is not open it fails with EBADF.
    let new = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` was just created by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Shuts a connection down both ways, so the broker sees the end of it at
/// once even while this process still holds the descriptor.
pub(crate) fn shutdown(fd: BorrowedFd<'_>) {
    // A failure means the connection is already gone, which is what was
    // wanted; the descriptor itself is closed when its owner drops it.
    // SAFETY: shutdown takes an integer and a flag and touches no memory.
    unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
}

/// Registers a connection with the current tokio runtime's reactor.
///
/// Panics outside a runtime with I/O enabled, as tokio does.
#[cfg(feature = "tokio")]
pub(crate) fn register(fd: OwnedFd) -> io::Result<::tokio::io::unix::AsyncFd<OwnedFd>> {
    use ::tokio::io::{unix::AsyncFd, Interest};
    let interest = Interest::READABLE | Interest::WRITABLE;
    // SAFETY: an OwnedFd stays open under the same number until dropped;
    // the AsyncFd owns it from here on and drops it after deregistering.
    let registered = unsafe { AsyncFd::register_with_interest(fd, interest) };
    Ok(registered?)
}
