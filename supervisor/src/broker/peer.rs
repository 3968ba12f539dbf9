//! Who is asking: the kernel's word for the process behind a connection.
//!
//! A private connection is a socket pair the client made; `SO_PEERCRED`
//! names the process that made it (the kernel records it at `socketpair`),
//! and `SO_PEERPIDFD` gives a pidfd for that process, so a later look at
//! `/proc/<pid>` can be checked against pid reuse. Nothing the client says
//! about itself (its `Hello` name) is trusted for attribution.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use crate::sys;

/// The process at the other end of a connection.
#[derive(Debug)]
pub struct Peer {
    pub pid: libc::pid_t,
    pub uid: libc::uid_t,
    /// Its executable when the connection was made, if it could be read.
    pub exe: Option<PathBuf>,
    /// A pidfd of `pid`, when the kernel gives one (Linux 6.5+).
    pidfd: Option<OwnedFd>,
}

impl Peer {
    /// The credentials the kernel recorded for the peer of `sock`.
    pub fn of(sock: BorrowedFd<'_>) -> io::Result<Peer> {
        let (pid, uid) = sys::socket::peer_credentials(sock)?;
        let pidfd = sys::socket::peer_pidfd(sock);
        let mut peer = Peer {
            pid,
            uid,
            exe: None,
            pidfd,
        };
        peer.exe = peer
            .proc_link("exe")
            .ok()
            .filter(|p| p.is_absolute())
            .map(strip_deleted);
        Ok(peer)
    }

    /// The peer's current working directory (for relative paths): read from
    /// `/proc/<pid>/cwd`, then checked to belong to the same process (the
    /// pidfd still refers to a live process, so the pid was not reused).
    pub fn cwd(&self) -> io::Result<PathBuf> {
        let cwd = self.proc_link("cwd")?;
        if !cwd.is_absolute() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the requester's working directory has no usable path",
            ));
        }
        Ok(cwd)
    }

    /// Whether the peer runs under more seccomp filters than `at_exec`:
    /// inside a sandbox of its own (`transparent/stacked.rs`). A peer
    /// whose filters cannot be counted, or that has exited, counts as one.
    pub fn is_stacked(&self, at_exec: u32) -> bool {
        let filters = super::transparent::filters_of(&self.pid.to_string());
        match (filters, self.check_alive()) {
            (Ok(filters), Ok(())) => super::transparent::is_stacked(filters, at_exec),
            _ => true,
        }
    }

    /// A pidfd of the peer, when the kernel gave one.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
    }

    fn proc_link(&self, name: &str) -> io::Result<PathBuf> {
        let link = std::fs::read_link(format!("/proc/{}/{name}", self.pid))?;
        self.check_alive()?;
        Ok(link)
    }

    /// Fails when the peer process has exited (its pid may now be another's).
    fn check_alive(&self) -> io::Result<()> {
        let Some(pidfd) = &self.pidfd else {
            return Ok(());
        };
        // Signal 0 only checks the process exists.
        if sys::process::pidfd_send_signal(pidfd.as_fd(), 0).is_ok() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the requesting process has exited",
            ))
        }
    }
}

fn strip_deleted(p: PathBuf) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let bytes = p.as_os_str().as_bytes();
    match bytes.strip_suffix(b" (deleted)") {
        Some(rest) => PathBuf::from(std::ffi::OsStr::from_bytes(rest)),
        None => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_socketpair_names_its_creator() {
        let (a, _b) = proto::socket::seqpacket_pair().unwrap();
        let peer = Peer::of(a.as_fd()).unwrap();
        assert_eq!(peer.pid, std::process::id() as libc::pid_t);
        assert_eq!(peer.uid, nix::unistd::getuid().as_raw());
        assert_eq!(peer.exe, Some(std::env::current_exe().unwrap()));
        assert_eq!(peer.cwd().unwrap(), std::env::current_dir().unwrap());
        assert!(peer.pidfd.is_some(), "SO_PEERPIDFD (Linux 6.5+) missing");
    }

    /// Set in the copy of the test binary [`a_dead_peer_is_detected`]
    /// starts: the peer must be another process.
    const MAKE_A_PAIR: &str = "SLUICE_TEST_PEER_MAKES_A_PAIR";

    /// The other process's part: makes a pair and sends one end over its
    /// standard input (a socket), then exits. Nothing when run as a test.
    #[test]
    fn another_process_makes_a_pair() {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        use proto::socket::{send_frame, Blocking};
        if std::env::var_os(MAKE_A_PAIR).is_none() {
            return;
        }
        let (end, _other) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::empty(),
        )
        .unwrap();
        send_frame(
            std::io::stdin().as_fd(),
            b"x",
            Some(end.as_fd()),
            Blocking::Yes,
        )
        .unwrap();
    }

    #[test]
    fn a_dead_peer_is_detected() {
        use proto::socket::{recv_frame, Blocking};
        let (ours, theirs) = proto::socket::seqpacket_pair().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "broker::peer::tests::another_process_makes_a_pair",
            ])
            .args(["--test-threads", "1", "--quiet"])
            .env(MAKE_A_PAIR, "1")
            .stdin(std::process::Stdio::from(theirs))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut buf = [0u8; 16];
        let got = recv_frame(ours.as_fd(), &mut buf, Blocking::Yes).unwrap();
        let sock = got.fds.into_iter().next().expect("a socket from the child");
        let peer = Peer::of(sock.as_fd()).unwrap();
        assert_eq!(
            peer.pid,
            child.id() as libc::pid_t,
            "attributed to the process that made the pair"
        );
        assert!(child.wait().unwrap().success());
        let err = peer.cwd().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }
}
