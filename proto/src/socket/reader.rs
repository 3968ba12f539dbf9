//! Whole frames from one connection of either [`Wire`]: on a record, one
//! `recvmsg`; on a stream, each read bounded by the frame it is in, so a
//! descriptor arrives with its own frame's first byte or is refused.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use serde::de::DeserializeOwned;

use super::{
    decode_received, recv_frame, recv_message, Blocking, Received, SocketError, Wire, RECV_BUF_LEN,
};
use crate::fd::FdError;
use crate::frame::{self, FrameError, HEADER_LEN};

/// Receives whole frames from one connection of either [`Wire`], keeping a
/// partly read frame across [`Blocking::No`] calls that would block.
///
/// On a stream every read is bounded by the frame being read (its header
/// first, then exactly its payload), so it never takes bytes, or the
/// descriptor, of the next frame: the kernel hands over a send's
/// descriptors with the first read that takes any of that send's bytes, so
/// a descriptor belongs to the frame holding the first byte of the send
/// that carried it, and to no other. Senders put it on the frame's first
/// byte; one that arrives with a later read of the frame (the payload) is
/// [`FdError::Misplaced`] and closed. An oversize length is refused from
/// the header alone, before any payload is read.
#[derive(Debug)]
pub struct FrameReader {
    wire: Wire,
    buf: Box<[u8]>,
    /// Bytes of the current frame read so far (stream only).
    filled: usize,
    /// Descriptors that came with the current frame's first byte.
    fds: Vec<OwnedFd>,
    ctrunc: bool,
}

impl FrameReader {
    /// A reader for a connection of `wire`.
    pub fn new(wire: Wire) -> FrameReader {
        FrameReader {
            wire,
            buf: vec![0; RECV_BUF_LEN].into_boxed_slice(),
            filled: 0,
            fds: Vec::new(),
            ctrunc: false,
        }
    }

    /// Receives and decodes one message, applying the descriptor rules as
    /// [`recv_message`] does. With [`Blocking::No`], `WouldBlock` (as
    /// [`SocketError::Io`]) keeps what was read for the next call; every
    /// other error leaves the connection unusable.
    pub fn recv<T: DeserializeOwned>(
        &mut self,
        sock: BorrowedFd<'_>,
        blocking: Blocking,
        expects_fd: impl FnOnce(&T) -> bool,
    ) -> Result<(T, Option<OwnedFd>), SocketError> {
        match self.wire {
            Wire::Records => recv_message(sock, &mut self.buf, blocking, expects_fd),
            Wire::Stream => {
                let total = self.fill(sock, blocking).inspect_err(|e| {
                    if !matches!(e, SocketError::Io(io) if io.kind() == io::ErrorKind::WouldBlock) {
                        self.reset();
                    }
                })?;
                let got = Received {
                    len: total,
                    truncated: false,
                    ctrunc: std::mem::take(&mut self.ctrunc),
                    fds: std::mem::take(&mut self.fds),
                };
                self.filled = 0;
                decode_received(&self.buf[..total], got, expects_fd)
            }
        }
    }

    /// Reads until one whole frame is in the buffer; returns its length.
    fn fill(&mut self, sock: BorrowedFd<'_>, blocking: Blocking) -> Result<usize, SocketError> {
        loop {
            let want = match frame::check(&self.buf[..self.filled]) {
                Ok(total) => return Ok(total),
                Err(FrameError::Incomplete) if self.filled < HEADER_LEN => HEADER_LEN,
                Err(FrameError::Incomplete) => {
                    let header = self.buf.first_chunk::<HEADER_LEN>().expect("header read");
                    HEADER_LEN + u32::from_le_bytes(*header) as usize
                }
                Err(e) => return Err(e.into()),
            };
            let got = recv_frame(sock, &mut self.buf[self.filled..want], blocking)?;
            if !got.fds.is_empty() || got.ctrunc {
                if self.filled > 0 {
                    return Err(FdError::Misplaced {
                        received: got.fds.len(),
                    }
                    .into());
                }
                self.fds = got.fds;
                self.ctrunc = got.ctrunc;
            }
            if got.len == 0 {
                if self.filled == 0 && self.fds.is_empty() {
                    return Err(SocketError::Closed);
                }
                return Err(FrameError::Malformed {
                    reason: format!("the connection ended {} bytes into a frame", self.filled),
                }
                .into());
            }
            self.filled += got.len;
        }
    }

    /// Forgets a partly read frame, closing its descriptors.
    fn reset(&mut self) {
        self.filled = 0;
        self.fds.clear();
        self.ctrunc = false;
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{opened, ping};
    use super::super::*;
    use crate::messages::{ClientMessage, Request, RequestBody};
    use crate::ServerMessage;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    /// Both wires through the same reader: frames keep their boundaries,
    /// each descriptor arrives with its own frame, and the end is `Closed`.
    #[test]
    fn both_wires_carry_frames_and_descriptors_alike() {
        for wire in [Wire::Records, Wire::Stream] {
            let (a, b) = wire.pair().unwrap();
            let (mut ours, theirs) = UnixStream::pair().unwrap();
            send_message(a.as_fd(), &ping(1), None, Blocking::Yes).unwrap();
            send_message(a.as_fd(), &opened(2), Some(theirs.as_fd()), Blocking::Yes).unwrap();
            send_message(a.as_fd(), &ping(3), None, Blocking::Yes).unwrap();
            drop(theirs);
            let mut reader = FrameReader::new(wire);
            let (msg, fd) = reader
                .recv::<ClientMessage>(b.as_fd(), Blocking::Yes, |_| false)
                .unwrap();
            assert_eq!((msg, fd.is_none()), (ping(1), true), "{wire:?}");
            let (msg, fd) = reader
                .recv::<ServerMessage>(b.as_fd(), Blocking::Yes, |m| m.expects_fd())
                .unwrap();
            assert_eq!(msg, opened(2), "{wire:?}");
            let mut received = UnixStream::from(fd.expect("descriptor"));
            received.write_all(b"x").unwrap();
            let mut byte = [0u8; 1];
            ours.read_exact(&mut byte).unwrap();
            let (msg, fd) = reader
                .recv::<ClientMessage>(b.as_fd(), Blocking::Yes, |_| false)
                .unwrap();
            assert_eq!((msg, fd.is_none()), (ping(3), true), "{wire:?}");
            let err = reader
                .recv::<ClientMessage>(b.as_fd(), Blocking::No, |_| false)
                .unwrap_err();
            assert!(matches!(err, SocketError::Io(e) if e.kind() == io::ErrorKind::WouldBlock));
            drop(a);
            let err = reader
                .recv::<ClientMessage>(b.as_fd(), Blocking::Yes, |_| false)
                .unwrap_err();
            assert!(matches!(err, SocketError::Closed), "{wire:?}: {err:?}");
        }
    }

    /// A frame that arrives a few bytes at a time on a stream is kept
    /// across `WouldBlock` and decoded once whole; reads never take the
    /// next frame's bytes.
    #[test]
    fn a_stream_frame_in_pieces_is_kept_until_whole() {
        let (a, b) = Wire::Stream.pair().unwrap();
        let mut two = frame::encode(&ping(7)).unwrap();
        two.extend(frame::encode(&ping(8)).unwrap());
        let mut writer = UnixStream::from(a);
        let mut reader = FrameReader::new(Wire::Stream);
        for (at, byte) in two.iter().enumerate() {
            writer.write_all(&[*byte]).unwrap();
            match reader.recv::<ClientMessage>(b.as_fd(), Blocking::No, |_| false) {
                Ok((msg, None)) => {
                    let first = frame::check(&two).unwrap();
                    let expected = if at + 1 == first { ping(7) } else { ping(8) };
                    assert!(at + 1 == first || at + 1 == two.len(), "early at {at}");
                    assert_eq!(msg, expected);
                }
                Err(SocketError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => panic!("at byte {at}: {other:?}"),
            }
        }
    }

    /// Attack: a descriptor sent with a later byte of a frame than its
    /// first. It belongs to no frame: refused and closed. Control: the
    /// same bytes with the descriptor on the first byte are accepted.
    #[test]
    fn a_descriptor_inside_a_stream_frame_is_refused_and_closed() {
        let bytes = frame::encode(&opened(4)).unwrap();
        for on_first_byte in [true, false] {
            let (a, b) = Wire::Stream.pair().unwrap();
            let (mut ours, theirs) = UnixStream::pair().unwrap();
            if on_first_byte {
                send_record(a.as_fd(), &bytes, &[theirs.as_fd()], Blocking::Yes).unwrap();
            } else {
                // After the header: the reader's first read (the header)
                // ends where this send begins.
                send_record(a.as_fd(), &bytes[..HEADER_LEN], &[], Blocking::Yes).unwrap();
                let rest = &bytes[HEADER_LEN..];
                send_record(a.as_fd(), rest, &[theirs.as_fd()], Blocking::Yes).unwrap();
            }
            drop(theirs);
            let mut reader = FrameReader::new(Wire::Stream);
            let got = reader.recv::<ServerMessage>(b.as_fd(), Blocking::Yes, |m| m.expects_fd());
            if on_first_byte {
                let (msg, fd) = got.unwrap();
                assert_eq!(msg, opened(4));
                assert!(fd.is_some());
            } else {
                let err = got.unwrap_err();
                assert!(
                    matches!(err, SocketError::Fd(FdError::Misplaced { received: 1 })),
                    "{err:?}"
                );
                let mut byte = [0u8; 1];
                assert_eq!(ours.read(&mut byte).unwrap(), 0, "the descriptor was kept");
            }
        }
    }

    /// An oversize length on a stream is refused from the header alone;
    /// an end inside a frame is malformed, not a clean close.
    #[test]
    fn stream_frames_that_cannot_be_whole_are_refused() {
        let (a, b) = Wire::Stream.pair().unwrap();
        let mut writer = UnixStream::from(a);
        let too_long = u32::try_from(MAX_FRAME_LEN + 1).unwrap().to_le_bytes();
        writer.write_all(&too_long).unwrap();
        let err = FrameReader::new(Wire::Stream)
            .recv::<ClientMessage>(b.as_fd(), Blocking::Yes, |_| false)
            .unwrap_err();
        assert!(
            matches!(err, SocketError::Frame(FrameError::TooLarge { .. })),
            "{err:?}"
        );

        let (a, b) = Wire::Stream.pair().unwrap();
        let whole = frame::encode(&ping(1)).unwrap();
        send_frame(a.as_fd(), &whole[..whole.len() - 1], None, Blocking::Yes).unwrap();
        drop(a);
        let err = FrameReader::new(Wire::Stream)
            .recv::<ClientMessage>(b.as_fd(), Blocking::Yes, |_| false)
            .unwrap_err();
        assert!(
            matches!(err, SocketError::Frame(FrameError::Malformed { .. })),
            "{err:?}"
        );
    }

    /// A frame larger than the socket's buffer goes out whole, even
    /// non-blocking: the sender finishes what it started, and the reader
    /// gets one frame.
    #[test]
    fn a_large_stream_frame_is_sent_whole_and_read_whole() {
        let (a, b) = Wire::Stream.pair().unwrap();
        nix::sys::socket::setsockopt(&a, nix::sys::socket::sockopt::SndBuf, &4096).unwrap();
        // Non-blocking as a socket, too (as an event loop's is).
        let flags = nix::fcntl::fcntl(&a, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&a, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
        let path = vec![b'p'; MAX_FRAME_LEN - 64];
        let msg = ClientMessage::Request(Request {
            id: 5,
            body: RequestBody::Query {
                path,
                access: crate::Access::Read,
            },
        });
        let bytes = frame::encode(&msg).unwrap();
        let sender = std::thread::spawn(move || {
            send_frame(a.as_fd(), &bytes, None, Blocking::No).unwrap();
            a
        });
        let mut reader = FrameReader::new(Wire::Stream);
        let (got, _) = reader
            .recv::<ClientMessage>(b.as_fd(), Blocking::Yes, |_| false)
            .unwrap();
        assert_eq!(got, msg);
        drop(sender.join().unwrap());
    }
}
