//! One frame per `SOCK_SEQPACKET` record, with its descriptors.
//!
//! The broker's sockets are `AF_UNIX`/`SOCK_SEQPACKET`: the kernel keeps
//! record boundaries, so one `sendmsg` is one frame and the descriptor sent
//! with it (`SCM_RIGHTS`) arrives with exactly that frame and no other. This
//! module is the only place that talks to those sockets; the client SDK and
//! the supervisor (through tokio's `AsyncFd`) both use it, blocking or not.
//!
//! Receiving follows the rules of [`crate::fd`]: descriptors are received
//! close-on-exec (`MSG_CMSG_CLOEXEC`), truncated control data
//! (`MSG_CTRUNC`) and truncated records (`MSG_TRUNC`) are reported, and every
//! descriptor the caller does not take is closed.

use std::io::{self, IoSlice};
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::fd::{classify_received_fds, FdError};
use crate::frame::{self, FrameError, HEADER_LEN, MAX_FRAME_LEN};

/// Size of a receive buffer that holds the largest valid frame, plus one
/// byte so that an oversize record is seen as truncated rather than fitting.
pub const RECV_BUF_LEN: usize = HEADER_LEN + MAX_FRAME_LEN + 1;

/// Descriptors one receive makes room for. The protocol sends at most one;
/// room for a few more means a peer that sends several is caught as
/// [`FdError::Extra`] (and they are closed) rather than as truncation.
const MAX_FDS: usize = 4;

/// Whether a call may block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    /// Wait for the peer (blocking sockets, the client SDK).
    Yes,
    /// `MSG_DONTWAIT`: return `WouldBlock` at once (an event loop).
    No,
}

impl Blocking {
    fn flag(self) -> MsgFlags {
        match self {
            Blocking::Yes => MsgFlags::empty(),
            Blocking::No => MsgFlags::MSG_DONTWAIT,
        }
    }
}

/// Creates a connected `SOCK_SEQPACKET` pair, both ends close-on-exec.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

/// `SO_DOMAIN` and `SO_TYPE` of a socket (`ENOTSOCK` for anything else).
pub fn domain_and_type(fd: BorrowedFd<'_>) -> io::Result<(i32, i32)> {
    Ok((
        int_sockopt(fd, libc::SO_DOMAIN)?,
        int_sockopt(fd, libc::SO_TYPE)?,
    ))
}

/// A `SOL_SOCKET` option whose value is one `int` (`SO_DOMAIN`,
/// `SO_PEERPIDFD`, ...).
pub fn int_sockopt(fd: BorrowedFd<'_>, option: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`, which is a
    // c_int of exactly that size, and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// Sends `bytes` (one whole frame) as one record, with `fd` attached as
/// `SCM_RIGHTS` when given. Never raises `SIGPIPE` (`MSG_NOSIGNAL`); a gone
/// peer is `BrokenPipe`.
pub fn send_frame(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fd: Option<BorrowedFd<'_>>,
    blocking: Blocking,
) -> io::Result<()> {
    send_record(sock, bytes, fd.as_slice(), blocking)
}

/// Sends `bytes` as one record with any number of descriptors attached
/// (`SCM_RIGHTS`). The protocol sends at most one ([`send_frame`]); tests
/// and the probe send more to check that they are refused.
pub fn send_record(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    blocking: Blocking,
) -> io::Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &rights };
    let iov = [IoSlice::new(bytes)];
    loop {
        let flags = MsgFlags::MSG_NOSIGNAL | blocking.flag();
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, flags, None) {
            Ok(n) => {
                // A SOCK_SEQPACKET record is sent whole or not at all.
                debug_assert_eq!(n, bytes.len());
                return Ok(());
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Encodes `msg` and sends it as one record (see [`send_frame`]).
pub fn send_message<T: Serialize>(
    sock: BorrowedFd<'_>,
    msg: &T,
    fd: Option<BorrowedFd<'_>>,
    blocking: Blocking,
) -> Result<(), SocketError> {
    let bytes = frame::encode(msg)?;
    send_frame(sock, &bytes, fd, blocking)?;
    Ok(())
}

/// What one `recvmsg` brought.
#[derive(Debug)]
pub struct Received {
    /// Bytes of the record now at the start of the buffer; 0 is end of file
    /// (the peer closed).
    pub len: usize,
    /// The record did not fit the buffer (`MSG_TRUNC`).
    pub truncated: bool,
    /// Control data was cut (`MSG_CTRUNC`).
    pub ctrunc: bool,
    /// Descriptors that arrived (close-on-exec), owned by the caller.
    pub fds: Vec<OwnedFd>,
}

/// Receives one record into `buf` with any descriptors attached.
///
/// `buf` should be [`RECV_BUF_LEN`] long; a shorter one makes larger
/// records come back `truncated`.
///
/// Not on nix's `recvmsg`: when control data is cut (`MSG_CTRUNC`), the
/// kernel has already installed the descriptors that fit, and nix's
/// `RecvMsg::cmsgs` refuses to walk a truncated buffer, so they would leak;
/// [`take_fds`] walks it and owns every one.
pub fn recv_frame(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    blocking: Blocking,
) -> io::Result<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut control = CmsgBuf::new();
    // SAFETY: an all-zero msghdr is valid; the fields set below point into
    // iov and control, which outlive the recvmsg call.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr();
    msg.msg_controllen = CmsgBuf::LEN as _;
    let n = loop {
        let flags = MsgFlags::MSG_CMSG_CLOEXEC | blocking.flag();
        // SAFETY: msg describes writable buffers of the stated lengths.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, flags.bits()) };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    let fds = take_fds(&msg);
    Ok(Received {
        len: n.min(buf.len()),
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        ctrunc: msg.msg_flags & libc::MSG_CTRUNC != 0,
        fds,
    })
}

/// Takes ownership of every descriptor in the control messages of `msg`.
fn take_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // msg was filled in by a successful recvmsg: CMSG_FIRSTHDR/CMSG_NXTHDR
    // walk the control buffer within msg_controllen, and each SCM_RIGHTS
    // SAFETY: payload holds (cmsg_len - CMSG_LEN(0)) / 4 descriptors that
    // the kernel just installed in this process and nobody else owns.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg) as *const RawFd;
                let payload = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..payload / mem::size_of::<RawFd>() {
                    let raw = std::ptr::read_unaligned(data.add(i));
                    fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    fds
}

/// Why a message could not be received.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The socket failed.
    #[error("broker socket: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection.
    #[error("the broker connection was closed")]
    Closed,
    /// The record is not one valid frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The descriptors that came with the frame break the protocol.
    #[error(transparent)]
    Fd(#[from] FdError),
}

/// Receives one record and decodes it as a `T`, applying the descriptor
/// rules: `expects_fd(&msg)` says whether exactly one descriptor must come
/// with it. Descriptors that break the rules are closed.
pub fn recv_message<T: DeserializeOwned>(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    blocking: Blocking,
    expects_fd: impl FnOnce(&T) -> bool,
) -> Result<(T, Option<OwnedFd>), SocketError> {
    let got = recv_frame(sock, buf, blocking)?;
    decode_received(&buf[..got.len], got, expects_fd)
}

/// The decoding half of [`recv_message`], for callers that did the
/// `recvmsg` themselves (an event loop).
pub fn decode_received<T: DeserializeOwned>(
    bytes: &[u8],
    got: Received,
    expects_fd: impl FnOnce(&T) -> bool,
) -> Result<(T, Option<OwnedFd>), SocketError> {
    if got.len == 0 && !got.truncated {
        // A zero-length record is not a frame; with no control data it is
        // the peer's close.
        return Err(SocketError::Closed);
    }
    if got.truncated {
        drop(got.fds);
        return Err(FrameError::TooLarge { len: got.len }.into());
    }
    let (msg, used) = match frame::parse::<T>(bytes) {
        Ok(parsed) => parsed,
        // A record is one whole frame: anything short of that is malformed.
        Err(FrameError::Incomplete) => {
            return Err(FrameError::Malformed {
                reason: format!("record of {} bytes is not a whole frame", bytes.len()),
            }
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    if used != bytes.len() {
        return Err(FrameError::Malformed {
            reason: format!("{} bytes after the frame in its record", bytes.len() - used),
        }
        .into());
    }
    let wants = expects_fd(&msg);
    let fd = classify_received_fds(wants, got.fds, got.ctrunc)?;
    Ok((msg, fd))
}

/// An aligned control-message buffer with room for [`MAX_FDS`] descriptors.
struct CmsgBuf {
    storage: [u64; CmsgBuf::WORDS],
}

impl CmsgBuf {
    /// CMSG_SPACE(MAX_FDS * 4) on every Linux ABI (header of 16 bytes on
    /// 64-bit, 12 on 32-bit, payload padded to the word size), rounded up.
    const LEN: usize = 16 + MAX_FDS * mem::size_of::<RawFd>() + 8;
    const WORDS: usize = CmsgBuf::LEN.div_ceil(8);

    fn new() -> CmsgBuf {
        CmsgBuf {
            storage: [0; CmsgBuf::WORDS],
        }
    }

    fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.storage.as_mut_ptr().cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{ClientMessage, Request, RequestBody, Response, ResponseBody};
    use crate::ServerMessage;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    fn ping(id: u64) -> ClientMessage {
        ClientMessage::Request(Request {
            id,
            body: RequestBody::Ping,
        })
    }

    fn opened(id: u64) -> ServerMessage {
        ServerMessage::Response(Response {
            id,
            body: ResponseBody::Opened,
        })
    }

    #[test]
    fn frames_keep_their_boundaries() {
        let (a, b) = seqpacket_pair().unwrap();
        for id in 0..3 {
            send_message(a.as_fd(), &ping(id), None, Blocking::Yes).unwrap();
        }
        let mut buf = vec![0; RECV_BUF_LEN];
        for id in 0..3 {
            let (msg, fd) =
                recv_message::<ClientMessage>(b.as_fd(), &mut buf, Blocking::Yes, |_| false)
                    .unwrap();
            assert_eq!(msg, ping(id));
            assert!(fd.is_none());
        }
        let err = recv_message::<ClientMessage>(b.as_fd(), &mut buf, Blocking::No, |_| false)
            .unwrap_err();
        assert!(matches!(err, SocketError::Io(e) if e.kind() == io::ErrorKind::WouldBlock));
        drop(a);
        let err = recv_message::<ClientMessage>(b.as_fd(), &mut buf, Blocking::Yes, |_| false)
            .unwrap_err();
        assert!(matches!(err, SocketError::Closed), "{err:?}");
    }

    #[test]
    fn a_descriptor_travels_with_its_frame_close_on_exec() {
        let (a, b) = seqpacket_pair().unwrap();
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        send_message(a.as_fd(), &opened(9), Some(theirs.as_fd()), Blocking::Yes).unwrap();
        drop(theirs);
        let mut buf = vec![0; RECV_BUF_LEN];
        let (msg, fd) =
            recv_message::<ServerMessage>(b.as_fd(), &mut buf, Blocking::Yes, |m| m.expects_fd())
                .unwrap();
        assert_eq!(msg, opened(9));
        let fd = fd.expect("descriptor");
        // SAFETY: F_GETFD reads descriptor flags only.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        let mut received = UnixStream::from(fd);
        received.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        ours.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
    }

    #[test]
    fn an_unexpected_descriptor_is_refused_and_closed() {
        let (a, b) = seqpacket_pair().unwrap();
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        send_message(a.as_fd(), &ping(1), Some(theirs.as_fd()), Blocking::Yes).unwrap();
        drop(theirs);
        let mut buf = vec![0; RECV_BUF_LEN];
        let err = recv_message::<ClientMessage>(b.as_fd(), &mut buf, Blocking::Yes, |_| false)
            .unwrap_err();
        assert!(matches!(
            err,
            SocketError::Fd(FdError::Unexpected { received: 1 })
        ));
        // Every copy is closed: the peer sees end of file.
        let mut byte = [0u8; 1];
        assert_eq!(ours.read(&mut byte).unwrap(), 0);
    }

    /// More descriptors than the receive buffer holds: the kernel installs
    /// those that fit and sets MSG_CTRUNC. They must all be closed, not
    /// leaked (nix's `RecvMsg::cmsgs` refuses to walk a truncated buffer,
    /// which is why the receive side keeps its own walk).
    #[test]
    fn descriptors_beyond_the_buffer_are_refused_and_all_closed() {
        let (a, b) = seqpacket_pair().unwrap();
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let many = vec![theirs.as_fd(); MAX_FDS * 4];
        let bytes = frame::encode(&ping(1)).unwrap();
        send_record(a.as_fd(), &bytes, &many, Blocking::Yes).unwrap();
        drop(many);
        drop(theirs);
        let mut buf = vec![0; RECV_BUF_LEN];
        let err = recv_message::<ClientMessage>(b.as_fd(), &mut buf, Blocking::Yes, |_| false)
            .unwrap_err();
        assert!(
            matches!(err, SocketError::Fd(FdError::Truncated { .. })),
            "{err:?}"
        );
        // Every copy is closed: the peer sees end of file.
        let mut byte = [0u8; 1];
        assert_eq!(ours.read(&mut byte).unwrap(), 0);
    }

    #[test]
    fn records_that_are_not_one_frame_are_malformed() {
        let (a, b) = seqpacket_pair().unwrap();
        let mut buf = vec![0; RECV_BUF_LEN];
        // Half a frame.
        let whole = frame::encode(&ping(1)).unwrap();
        send_frame(a.as_fd(), &whole[..3], None, Blocking::Yes).unwrap();
        let err = recv_message::<ClientMessage>(b.as_fd(), &mut buf, Blocking::Yes, |_| false)
            .unwrap_err();
        assert!(
            matches!(err, SocketError::Frame(FrameError::Malformed { .. })),
            "{err}"
        );
        // Two frames in one record.
        let mut two = whole.clone();
        two.extend_from_slice(&whole);
        send_frame(a.as_fd(), &two, None, Blocking::Yes).unwrap();
        let err = recv_message::<ClientMessage>(b.as_fd(), &mut buf, Blocking::Yes, |_| false)
            .unwrap_err();
        assert!(
            matches!(err, SocketError::Frame(FrameError::Malformed { .. })),
            "{err}"
        );
        // Larger than any frame.
        send_frame(
            a.as_fd(),
            &vec![0u8; RECV_BUF_LEN + 10],
            None,
            Blocking::Yes,
        )
        .unwrap();
        let err = recv_message::<ClientMessage>(b.as_fd(), &mut buf, Blocking::Yes, |_| false)
            .unwrap_err();
        assert!(
            matches!(err, SocketError::Frame(FrameError::TooLarge { .. })),
            "{err}"
        );
        // And the socket still works afterwards.
        send_message(a.as_fd(), &ping(2), None, Blocking::Yes).unwrap();
        let (msg, _) =
            recv_message::<ClientMessage>(b.as_fd(), &mut buf, Blocking::Yes, |_| false).unwrap();
        assert_eq!(msg, ping(2));
    }

    #[test]
    fn sending_to_a_closed_peer_is_broken_pipe_not_sigpipe() {
        let (a, b) = seqpacket_pair().unwrap();
        drop(b);
        let err = send_message(a.as_fd(), &ping(1), None, Blocking::Yes).unwrap_err();
        assert!(
            matches!(&err, SocketError::Io(e) if e.kind() == io::ErrorKind::BrokenPipe),
            "{err}"
        );
    }
}
