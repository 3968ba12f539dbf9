//! One frame per record, with its descriptor: the broker's sockets.
//!
//! This module is the only place that talks to the broker's sockets; the
//! client SDK and the supervisor (through tokio's `AsyncFd`) both use it,
//! blocking or not. A frame travels in one of two ways ([`Wire`]):
//!
//! - [`Wire::Records`] (Linux): `AF_UNIX`/`SOCK_SEQPACKET`. The kernel keeps
//!   record boundaries, so one `sendmsg` is one frame and the descriptor sent
//!   with it (`SCM_RIGHTS`) arrives with exactly that frame and no other.
//! - [`Wire::Stream`] (macOS, which has no unix `SOCK_SEQPACKET`):
//!   `SOCK_STREAM` private connections, frames back to back with their
//!   length prefix, the descriptor sent with the frame's first byte, and a
//!   reader ([`FrameReader`]) that never reads past the end of the frame it
//!   is in, so a descriptor arrives with the first read of its frame and
//!   cannot be mistaken for another frame's ([`FdError::Misplaced`]
//!   otherwise). The shared socket is then `SOCK_DGRAM`
//!   ([`Wire::shared_pair`]): every process of the sandbox sends on it, and
//!   datagrams keep one process's half-written frame from running into
//!   another's, as records do.
//!
//! Both are tested on Linux; which one a client speaks follows from the
//! type of the shared socket it is given ([`Wire::of_shared`]).
//!
//! Receiving follows the rules of [`crate::fd`]: descriptors are received
//! close-on-exec (`MSG_CMSG_CLOEXEC`; on macOS, which lacks it, `FD_CLOEXEC`
//! is set right after `recvmsg`), truncated control data (`MSG_CTRUNC`) and
//! truncated records (`MSG_TRUNC`) are reported, and every descriptor the
//! caller does not take is closed.

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

mod reader;

pub use reader::FrameReader;

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

/// How the frames of a broker connection travel (see the module's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// `SOCK_SEQPACKET`: one frame per record (Linux).
    Records,
    /// `SOCK_STREAM` private connections and a `SOCK_DGRAM` shared socket:
    /// frames back to back, each read within one frame (macOS).
    Stream,
}

impl Wire {
    /// The wire of this platform: records where the kernel has unix
    /// `SOCK_SEQPACKET` sockets (Linux), a stream elsewhere (macOS).
    pub const NATIVE: Wire = if cfg!(target_os = "linux") {
        Wire::Records
    } else {
        Wire::Stream
    };

    /// A connected pair for a private connection, both ends close-on-exec.
    pub fn pair(self) -> io::Result<(OwnedFd, OwnedFd)> {
        match self {
            Wire::Records => unix_pair(SockType::SeqPacket),
            Wire::Stream => unix_pair(SockType::Stream),
        }
    }

    /// A connected pair for the shared socket every process of the sandbox
    /// inherits, both ends close-on-exec: `SOCK_SEQPACKET`, or `SOCK_DGRAM`
    /// beside stream connections (a datagram, like a record, is sent whole
    /// or not at all, so no process can break another's frame).
    pub fn shared_pair(self) -> io::Result<(OwnedFd, OwnedFd)> {
        match self {
            Wire::Records => unix_pair(SockType::SeqPacket),
            Wire::Stream => unix_pair(SockType::Datagram),
        }
    }

    /// The wire a shared socket belongs to, from its type: `None` for a
    /// socket that is no broker's (not `AF_UNIX`, or neither
    /// `SOCK_SEQPACKET` nor `SOCK_DGRAM`). `ENOTSOCK` for a non-socket.
    pub fn of_shared(fd: BorrowedFd<'_>) -> io::Result<Option<Wire>> {
        Ok(match domain_and_type(fd)? {
            (libc::AF_UNIX, libc::SOCK_SEQPACKET) => Some(Wire::Records),
            (libc::AF_UNIX, libc::SOCK_DGRAM) => Some(Wire::Stream),
            _ => None,
        })
    }

    /// The socket type of this wire's private connections.
    pub fn private_type(self) -> libc::c_int {
        match self {
            Wire::Records => libc::SOCK_SEQPACKET,
            Wire::Stream => libc::SOCK_STREAM,
        }
    }
}

/// Creates a connected `SOCK_SEQPACKET` pair, both ends close-on-exec
/// (the Linux wire, [`Wire::Records`]).
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    unix_pair(SockType::SeqPacket)
}

/// A connected `AF_UNIX` pair of `kind`, both ends close-on-exec, and on
/// macOS `SO_NOSIGPIPE` (it has no `MSG_NOSIGNAL`).
fn unix_pair(kind: SockType) -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        Ok(socketpair(
            AddressFamily::Unix,
            kind,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // No SOCK_CLOEXEC here: a thread that forks and execs in between
        // could inherit the pair (see the module's text).
        let (a, b) = socketpair(AddressFamily::Unix, kind, None, SockFlag::empty())?;
        for end in [&a, &b] {
            let end = std::os::fd::AsFd::as_fd(end);
            set_cloexec(end)?;
            #[cfg(target_vendor = "apple")]
            no_sigpipe(end)?;
        }
        Ok((a, b))
    }
}

/// `SO_NOSIGPIPE`: writing to a gone peer is `EPIPE`, never `SIGPIPE`.
#[cfg(target_vendor = "apple")]
fn no_sigpipe(sock: BorrowedFd<'_>) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads exactly `size_of::<c_int>()` bytes from `on`.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NOSIGPIPE,
            (&on as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets `FD_CLOEXEC` on `fd`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(())
}

/// The address family and `SO_TYPE` of a socket (`ENOTSOCK` for anything
/// else).
pub fn domain_and_type(fd: BorrowedFd<'_>) -> io::Result<(i32, i32)> {
    Ok((family(fd)?, int_sockopt(fd, libc::SO_TYPE)?))
}

/// `SO_DOMAIN` where the kernel has it.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn family(fd: BorrowedFd<'_>) -> io::Result<i32> {
    int_sockopt(fd, libc::SO_DOMAIN)
}

/// The family of the socket's own address (macOS has no `SO_DOMAIN`).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn family(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut addr: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into `addr`, which is
    // exactly that large, and updates `len`.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i32::from(addr.ss_family))
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
/// `SCM_RIGHTS` when given. Never raises `SIGPIPE` (`MSG_NOSIGNAL`, on
/// macOS `SO_NOSIGPIPE` on the pairs made here); a gone peer is
/// `BrokenPipe`.
///
/// On a stream ([`Wire::Stream`]) the descriptor goes with the frame's
/// first byte and a frame is never left half-written: once part of it is
/// sent, the rest is sent too, waiting for room even under
/// [`Blocking::No`]. Callers sharing a stream between threads send under
/// one lock, so frames do not interleave; an event loop that must never
/// wait uses [`send_some`] instead.
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
    let mut sent = 0;
    loop {
        // The descriptors ride on the first byte only. A record (or a
        // datagram) is sent whole or not at all, so only a stream loops.
        let (fds, flags) = match sent {
            0 => (fds, blocking),
            _ => (&[][..], Blocking::Yes),
        };
        match send_some(sock, &bytes[sent..], fds, flags) {
            Ok(n) => {
                sent += n;
                if sent >= bytes.len() {
                    return Ok(());
                }
            }
            // Part of a frame is out: the rest must follow, whatever the
            // caller's wish not to wait (the socket itself may be
            // non-blocking).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && sent > 0 => wait_writable(sock)?,
            Err(e) => return Err(e),
        }
    }
}

/// Sends what the socket takes of `bytes` now, `fds` with its first byte,
/// and says how much that was: all of it on a record or a datagram, perhaps
/// less on a stream. For an event loop that must not wait: it keeps the
/// rest of the frame and sends it, without descriptors, when the socket is
/// writable again, letting nothing else onto the stream in between.
pub fn send_some(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    blocking: Blocking,
) -> io::Result<usize> {
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &rights };
    let iov = [IoSlice::new(bytes)];
    loop {
        match sendmsg::<()>(
            sock.as_raw_fd(),
            &iov,
            cmsgs,
            no_signal() | blocking.flag(),
            None,
        ) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `MSG_NOSIGNAL` where it exists; macOS sockets made here carry
/// `SO_NOSIGPIPE` instead.
fn no_signal() -> MsgFlags {
    #[cfg(not(target_vendor = "apple"))]
    return MsgFlags::MSG_NOSIGNAL;
    #[cfg(target_vendor = "apple")]
    return MsgFlags::empty();
}

/// Waits until `sock` can be written (or has an error to report),
/// without changing its flags: a socket shared with other processes may
/// have been made non-blocking by one of them.
pub fn wait_writable(sock: BorrowedFd<'_>) -> io::Result<()> {
    wait(sock, libc::POLLOUT)
}

/// Waits until `sock` has `events` (or an error to report).
fn wait(sock: BorrowedFd<'_>, events: libc::c_short) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events,
        revents: 0,
    };
    loop {
        // SAFETY: poll reads and writes exactly the one pollfd it is given.
        let rc = unsafe { libc::poll(&mut pfd, 1, -1) };
        if rc >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
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
        let flags = cmsg_cloexec() | blocking.flag();
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

/// `MSG_CMSG_CLOEXEC` where it exists; elsewhere [`take_fds`] sets
/// `FD_CLOEXEC` itself.
fn cmsg_cloexec() -> MsgFlags {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return MsgFlags::MSG_CMSG_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    return MsgFlags::empty();
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
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    for fd in &fds {
        // Best effort: the descriptor is ours either way, and a failure
        // here (there is none for an open descriptor) leaves it inheritable.
        let _ = set_cloexec(std::os::fd::AsFd::as_fd(fd));
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

    pub(super) fn ping(id: u64) -> ClientMessage {
        ClientMessage::Request(Request {
            id,
            body: RequestBody::Ping,
        })
    }

    pub(super) fn opened(id: u64) -> ServerMessage {
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

    /// The shared socket beside stream connections is a datagram socket:
    /// a broken frame from one process is one bad datagram, and the next
    /// frame (another process's) still reads whole. On a stream the same
    /// broken frame would swallow it (the control).
    #[test]
    fn a_broken_frame_on_the_shared_socket_spoils_only_itself() {
        let whole = frame::encode(&ClientMessage::Connect).unwrap();
        let (a, b) = Wire::Stream.shared_pair().unwrap();
        assert_eq!(Wire::of_shared(b.as_fd()).unwrap(), Some(Wire::Stream));
        send_frame(a.as_fd(), &whole[..2], None, Blocking::Yes).unwrap();
        send_frame(a.as_fd(), &whole, None, Blocking::Yes).unwrap();
        let mut reader = FrameReader::new(Wire::Records);
        let err = reader
            .recv::<ClientMessage>(b.as_fd(), Blocking::Yes, |_| false)
            .unwrap_err();
        assert!(matches!(err, SocketError::Frame(_)), "{err:?}");
        let (msg, _) = reader
            .recv::<ClientMessage>(b.as_fd(), Blocking::Yes, |_| false)
            .unwrap();
        assert_eq!(msg, ClientMessage::Connect);

        let (a, b) = Wire::Stream.pair().unwrap();
        send_frame(a.as_fd(), &whole[..2], None, Blocking::Yes).unwrap();
        send_frame(a.as_fd(), &whole, None, Blocking::Yes).unwrap();
        let got =
            FrameReader::new(Wire::Stream)
                .recv::<ClientMessage>(b.as_fd(), Blocking::No, |_| false);
        assert_ne!(got.ok().map(|(m, _)| m), Some(ClientMessage::Connect));
    }

    #[test]
    fn a_shared_socket_names_its_wire() {
        let (a, _b) = Wire::Records.shared_pair().unwrap();
        assert_eq!(Wire::of_shared(a.as_fd()).unwrap(), Some(Wire::Records));
        let (s, _t) = UnixStream::pair().unwrap();
        assert_eq!(Wire::of_shared(s.as_fd()).unwrap(), None);
        #[cfg(target_os = "linux")]
        assert_eq!(Wire::NATIVE, Wire::Records);
    }
}
