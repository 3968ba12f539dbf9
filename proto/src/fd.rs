//! The receiving side's rules for descriptors passed with `SCM_RIGHTS`.
//!
//! Socket code (`recvmsg`) collects whatever descriptors the kernel installed
//! and hands them here together with the decoded frame's
//! [`ServerMessage::expects_fd`](crate::messages::ServerMessage::expects_fd).
//! The kernel installs passed descriptors in the receiver whether or not it
//! wanted them, so every descriptor not accepted here is closed (dropped)
//! before the error is returned: a misbehaving or hostile peer cannot leak
//! descriptors into the receiver or exhaust its descriptor table.

use std::os::fd::OwnedFd;

/// Why the descriptors received with a frame break the protocol. In every
/// case all received descriptors have already been closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FdError {
    /// `MSG_CTRUNC` was set: the kernel dropped part of the control data, so
    /// which descriptors were sent is unknown.
    #[error("control data truncated (MSG_CTRUNC); closed {received} received descriptor(s)")]
    Truncated {
        /// Descriptors that did arrive (and were closed).
        received: usize,
    },
    /// The frame promises a descriptor but none arrived.
    #[error("expected a descriptor with this frame but none arrived")]
    Missing,
    /// The frame promises one descriptor but several arrived.
    #[error("expected one descriptor with this frame but {received} arrived; closed them all")]
    Extra {
        /// Descriptors that arrived (and were closed).
        received: usize,
    },
    /// The frame promises no descriptor but some arrived.
    #[error("expected no descriptor with this frame but {received} arrived; closed them")]
    Unexpected {
        /// Descriptors that arrived (and were closed).
        received: usize,
    },
    /// On a stream connection ([`crate::socket::Wire::Stream`]), descriptors
    /// arrived with a later byte of a frame than its first: a frame's
    /// descriptor is sent with its first byte, so these belong to no frame.
    #[error(
        "{received} descriptor(s) arrived inside a frame, not with its first byte; closed them"
    )]
    Misplaced {
        /// Descriptors that arrived (and were closed).
        received: usize,
    },
}

/// Applies the protocol's descriptor rules to what one `recvmsg` returned.
///
/// - `ctrunc` (`MSG_CTRUNC` set) is always an error.
/// - When `expects_fd`, exactly one descriptor must be present; it is
///   returned. None or more than one is an error.
/// - When not `expects_fd`, no descriptor may be present; `Ok(None)`.
///
/// On every error all of `fds` are closed before returning; a frame with the
/// wrong number of descriptors is rejected as a whole rather than guessing
/// which descriptor was meant.
pub fn classify_received_fds(
    expects_fd: bool,
    fds: Vec<OwnedFd>,
    ctrunc: bool,
) -> Result<Option<OwnedFd>, FdError> {
    let received = fds.len();
    if ctrunc {
        drop(fds);
        return Err(FdError::Truncated { received });
    }
    match (expects_fd, received) {
        (false, 0) => Ok(None),
        (false, _) => {
            drop(fds);
            Err(FdError::Unexpected { received })
        }
        (true, 0) => Err(FdError::Missing),
        (true, 1) => Ok(fds.into_iter().next()),
        (true, _) => {
            drop(fds);
            Err(FdError::Extra { received })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::{AsRawFd, RawFd};
    use std::os::unix::net::UnixStream;
    use std::sync::Mutex;

    /// The "is it closed" check looks at descriptor numbers, which another
    /// test opening descriptors in parallel could reuse; serialize them.
    static FD_TESTS: Mutex<()> = Mutex::new(());

    /// A descriptor to hand over, and its peer, which sees EOF once every
    /// copy of the descriptor is closed.
    struct Probe {
        fd: OwnedFd,
        peer: UnixStream,
    }

    fn probe() -> Probe {
        let (ours, peer) = UnixStream::pair().unwrap();
        Probe {
            fd: ours.into(),
            peer,
        }
    }

    fn probes(n: usize) -> (Vec<OwnedFd>, Vec<(RawFd, UnixStream)>) {
        (0..n)
            .map(|_| {
                let Probe { fd, peer } = probe();
                let raw = fd.as_raw_fd();
                (fd, (raw, peer))
            })
            .unzip()
    }

    fn is_open(raw: RawFd) -> bool {
        // SAFETY: F_GETFD only reads the descriptor flags of `raw`; it does
        // not touch memory and is harmless on a closed descriptor.
        let rc = unsafe { libc::fcntl(raw, libc::F_GETFD) };
        if rc == -1 {
            let err = std::io::Error::last_os_error();
            assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
            false
        } else {
            true
        }
    }

    fn assert_closed(handed: &mut [(RawFd, UnixStream)]) {
        for (raw, peer) in handed {
            assert!(!is_open(*raw), "descriptor {raw} still open");
            let mut buf = [0u8; 1];
            assert_eq!(peer.read(&mut buf).unwrap(), 0, "peer of {raw} not at EOF");
        }
    }

    #[test]
    fn nothing_expected_nothing_received() {
        let _guard = FD_TESTS.lock().unwrap();
        assert_eq!(
            classify_received_fds(false, Vec::new(), false)
                .unwrap()
                .map(|_| ()),
            None
        );
    }

    #[test]
    fn expected_descriptor_is_returned_open() {
        let _guard = FD_TESTS.lock().unwrap();
        let (fds, handed) = probes(1);
        let fd = classify_received_fds(true, fds, false).unwrap().unwrap();
        assert_eq!(fd.as_raw_fd(), handed[0].0);
        assert!(is_open(fd.as_raw_fd()));
        let mut stream = UnixStream::from(fd);
        std::io::Write::write_all(&mut stream, b"x").unwrap();
        let mut buf = [0u8; 1];
        let mut peer = &handed[0].1;
        peer.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"x");
    }

    #[test]
    fn missing_descriptor_is_an_error() {
        let _guard = FD_TESTS.lock().unwrap();
        assert_eq!(
            classify_received_fds(true, Vec::new(), false).unwrap_err(),
            FdError::Missing
        );
    }

    #[test]
    fn unexpected_descriptors_are_closed() {
        let _guard = FD_TESTS.lock().unwrap();
        for n in 1..=3 {
            let (fds, mut handed) = probes(n);
            assert_eq!(
                classify_received_fds(false, fds, false).unwrap_err(),
                FdError::Unexpected { received: n }
            );
            assert_closed(&mut handed);
        }
    }

    #[test]
    fn extra_descriptors_are_all_closed() {
        let _guard = FD_TESTS.lock().unwrap();
        let (fds, mut handed) = probes(3);
        assert_eq!(
            classify_received_fds(true, fds, false).unwrap_err(),
            FdError::Extra { received: 3 }
        );
        assert_closed(&mut handed);
    }

    #[test]
    fn truncated_control_data_closes_everything() {
        let _guard = FD_TESTS.lock().unwrap();
        for expects in [true, false] {
            for n in 0..=2 {
                let (fds, mut handed) = probes(n);
                assert_eq!(
                    classify_received_fds(expects, fds, true).unwrap_err(),
                    FdError::Truncated { received: n }
                );
                assert_closed(&mut handed);
            }
        }
    }
}
