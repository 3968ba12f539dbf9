//! Socket options the broker reads about its peers.

use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::socket::{getsockopt, sockopt};

/// The pid and uid the kernel recorded for the peer of `sock`
/// (`SO_PEERCRED`).
pub fn peer_credentials(sock: BorrowedFd<'_>) -> io::Result<(libc::pid_t, libc::uid_t)> {
    let cred = getsockopt(&sock, sockopt::PeerCredentials)?;
    Ok((cred.pid(), cred.uid()))
}

/// A pidfd of the peer of `sock` (`SO_PEERPIDFD`, Linux 6.5+), or `None`
/// where the kernel gives none.
pub fn peer_pidfd(sock: BorrowedFd<'_>) -> Option<OwnedFd> {
    let fd = proto::socket::int_sockopt(sock, libc::SO_PEERPIDFD).ok()?;
    // SAFETY: on success the kernel installed a new pidfd we now own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}
