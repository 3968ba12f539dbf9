//! Wire protocol between the sluice supervisor's file-descriptor broker and
//! the sandboxed programs that talk to it over a Unix socket.
//!
//! - [`messages`]: what is said — [`ClientMessage`], [`ServerMessage`] and
//!   the types inside them, plus [`PROTOCOL_VERSION`].
//! - [`frame`]: how it is framed — a 4-byte little-endian payload length
//!   followed by one postcard-encoded message, at most [`MAX_FRAME_LEN`]
//!   payload bytes. Pure and synchronous: [`frame::check`] and
//!   [`frame::parse`] work on a byte buffer the connection owns.
//! - [`fd`] (Unix): the rules for descriptors received with a frame
//!   (`SCM_RIGHTS`, sent in the same `sendmsg` as the frame carrying
//!   [`messages::ResponseBody::Opened`]).
//!
//! - [`socket`] (Unix): the only I/O here — one frame per `SOCK_SEQPACKET`
//!   record with its descriptors (or, where there is no unix seqpacket
//!   socket, macOS, frames on a stream, each read bounded by its frame:
//!   [`socket::Wire`]), blocking or not, shared by the client SDK and the
//!   supervisor's event loop.
//!
//! Framing is pure; connections, buffers and policy belong to the SDK and
//! the supervisor.
//!
//! # Example
//!
//! ```
//! use proto::frame::{self, FrameError};
//! use proto::{ClientMessage, Request, RequestBody, Access, PROTOCOL_VERSION};
//!
//! // Sender: encode two messages back to back.
//! let mut wire = frame::encode(&ClientMessage::Hello {
//!     protocol: PROTOCOL_VERSION,
//!     client: "example".into(),
//! })?;
//! wire.extend(frame::encode(&ClientMessage::Request(Request {
//!     id: 1,
//!     body: RequestBody::Query { path: b"/etc/hosts".to_vec(), access: Access::Read },
//! }))?);
//!
//! // Receiver: bytes arrive in pieces; parse whatever whole frames are buffered.
//! let mut buf = Vec::new();
//! let mut got = Vec::new();
//! for chunk in wire.chunks(5) {
//!     buf.extend_from_slice(chunk);
//!     loop {
//!         match frame::parse::<ClientMessage>(&buf) {
//!             Ok((msg, used)) => {
//!                 got.push(msg);
//!                 buf.drain(..used);
//!             }
//!             Err(e) if e.is_incomplete() => break, // read more
//!             Err(e) => return Err(e),               // drop the peer
//!         }
//!     }
//! }
//! assert_eq!(got.len(), 2);
//! assert!(buf.is_empty());
//! # Ok::<(), FrameError>(())
//! ```
//!
//! # Compatibility
//!
//! - The framing and messages are platform independent and build everywhere;
//!   [`fd`] is compiled on Unix only (descriptor passing is a Unix-socket
//!   feature; sluice itself runs on Linux).
//! - postcard's encoding is positional: variant and field order are the wire
//!   format. Changing them, or the meaning of a field, requires bumping
//!   [`PROTOCOL_VERSION`]; the supervisor answers a [`ClientMessage::Hello`]
//!   with another version with [`ServerMessage::Refused`]. Unit tests pin a
//!   few exact encodings so accidental reordering is caught.
//! - Both ends are expected to come from the same sluice build; there is no
//!   negotiation beyond the version check.
//!
//! # Security
//!
//! The supervisor is privileged and its peer is untrusted, so decoding is
//! written for a hostile sender. The framing guarantees:
//!
//! - **Bounded buffering.** A declared length above [`MAX_FRAME_LEN`]
//!   (64 KiB) is rejected as [`FrameError::TooLarge`] from the 4-byte header
//!   alone, before any payload is read, so a peer cannot make the reader
//!   buffer more than one header plus 64 KiB per frame.
//! - **No panics, no out-of-bounds reads.** [`frame::check`] and
//!   [`frame::parse`] accept arbitrary bytes, never read past the frame they
//!   report, and never panic (fuzzed with arbitrary inputs in
//!   `tests/decode_fuzz.rs`). The only `unsafe` is the `sendmsg`/`recvmsg`
//!   plumbing of [`socket`].
//! - **Bounded allocation.** Every decoded string or byte vector lives inside
//!   one frame, so decoding allocates at most about the frame's size.
//! - **Incomplete is not malformed.** [`FrameError::Incomplete`] only means
//!   "read more"; everything else ([`FrameError::TooLarge`],
//!   [`FrameError::Malformed`]) means the stream cannot be resynchronised and
//!   the connection should be closed.
//! - **One message per frame.** Trailing bytes inside a frame are
//!   [`FrameError::Malformed`], so a frame has exactly one meaning.
//! - **Descriptors.** [`fd::classify_received_fds`] closes every descriptor
//!   not expected by the frame it arrived with, and rejects truncated control
//!   data, so a peer cannot plant descriptors in the receiver.
//!
//! Not protected here: the *content* of messages. Paths are raw bytes and may
//! contain `..`, symlinks, NUL bytes or anything else; client names, session
//! identifiers and reasons are untrusted text. Policy decisions, path
//! resolution, rate limiting ([`ErrorKind::TooManyRequests`]) and timeouts
//! belong to the supervisor.

// `socket` calls sendmsg/recvmsg; tests call `fcntl` to prove descriptors
// were closed. Nothing else may use `unsafe`.
#![cfg_attr(not(test), deny(unsafe_code))]
#![warn(missing_docs)]

#[cfg(unix)]
pub mod fd;
pub mod frame;
pub mod messages;
#[cfg(unix)]
#[allow(unsafe_code)]
pub mod socket;

pub use frame::{FrameError, MAX_FRAME_LEN};
pub use messages::{
    Access, ClientMessage, ErrorKind, OpenFlags, PathBytes, PolicySummary, Request, RequestBody,
    Response, ResponseBody, ServerMessage, StackedSandbox, PROTOCOL_VERSION,
};
