//! Who is asking, on macOS: [`super::peer`]'s interface over the kernel's
//! audit token for the socket's peer (`LOCAL_PEERTOKEN`, checked against
//! `LOCAL_PEERPID`; [`crate::platform::macos::peer`]). Its working
//! directory and executable are read through the token, which fails once
//! the process is gone, as the pidfd does on Linux. Type-checked for both
//! Apple targets; never run.

use std::io;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use crate::platform::macos::peer::MacPeer;

/// The process at the other end of a connection.
#[derive(Debug)]
pub struct Peer {
    pub pid: libc::pid_t,
    pub uid: libc::uid_t,
    /// Its executable when the connection was made, if it could be read.
    pub exe: Option<PathBuf>,
    token: MacPeer,
}

impl Peer {
    /// The credentials the kernel recorded for the peer of `sock`.
    pub fn of(sock: BorrowedFd<'_>) -> io::Result<Peer> {
        let token = MacPeer::of(sock)?;
        let exe = token.exe().ok().filter(|p| p.is_absolute());
        Ok(Peer {
            pid: token.pid,
            uid: token.uid,
            exe,
            token,
        })
    }

    /// The peer's current working directory (for relative paths), read
    /// while the token still names a live process.
    pub fn cwd(&self) -> io::Result<PathBuf> {
        self.token.cwd()
    }

    /// Whether the peer is inside a sandbox of its own within the
    /// program's. macOS cannot count a process's Seatbelt profiles, so
    /// the answer is yes (refused) wherever it is asked; it is asked only
    /// with `filters_at_exec`, which nothing sets on macOS.
    pub fn is_stacked(&self, _at_exec: u32) -> bool {
        true
    }
}
