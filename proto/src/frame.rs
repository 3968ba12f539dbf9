//! Length-prefixed framing: pure, synchronous, no I/O.
//!
//! A frame is a 4-byte little-endian payload length followed by exactly that
//! many bytes of a postcard-encoded message. The reader keeps its own buffer
//! and asks [`check`] whether a whole frame is there yet; [`parse`] then
//! decodes it. "Need more bytes" ([`FrameError::Incomplete`]) is kept apart
//! from "this peer is broken or hostile" ([`FrameError::TooLarge`],
//! [`FrameError::Malformed`]) so the connection can keep reading in the first
//! case and drop the peer in the others.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Size of the length prefix in bytes.
pub const HEADER_LEN: usize = 4;

/// Largest payload (bytes after the header) a frame may declare.
///
/// Every message in this protocol is small; the limit bounds what a peer can
/// make the other side buffer before a single message is decoded.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// Why a buffer does not (yet) hold a usable frame, or a message cannot be
/// framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The buffer holds only part of a frame; read more and try again.
    #[error("incomplete frame: more bytes are needed")]
    Incomplete,
    /// The declared (or, when encoding, actual) payload length exceeds
    /// [`MAX_FRAME_LEN`].
    #[error("frame payload of {len} bytes exceeds the maximum of {MAX_FRAME_LEN} bytes")]
    TooLarge {
        /// The offending payload length in bytes.
        len: usize,
    },
    /// A whole frame arrived but its payload is not exactly one valid message.
    #[error("malformed frame: {reason}")]
    Malformed {
        /// What was wrong with the payload.
        reason: String,
    },
    /// The message could not be serialized (never happens for this crate's
    /// message types; kept so `encode` need not panic).
    #[error("cannot encode message: {reason}")]
    Encode {
        /// The serializer's explanation.
        reason: String,
    },
}

impl FrameError {
    /// True when the caller should read more bytes rather than give up.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, FrameError::Incomplete)
    }
}

/// Checks whether `buf` starts with a whole frame.
///
/// Returns the frame's total length (header plus payload) when it is all
/// there. An oversize declared length is reported as soon as the 4-byte
/// header is present, so a peer cannot make the reader wait for (and buffer)
/// a payload that will be rejected anyway. Bytes after the frame are ignored:
/// they belong to the next frame.
pub fn check(buf: &[u8]) -> Result<usize, FrameError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Err(FrameError::Incomplete);
    };
    // u32 always fits in usize on the platforms this crate supports (Unix,
    // 32 and 64 bit); saturate rather than wrap just in case.
    let len = usize::try_from(u32::from_le_bytes(*header)).unwrap_or(usize::MAX);
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len });
    }
    let total = HEADER_LEN + len;
    if buf.len() < total {
        return Err(FrameError::Incomplete);
    }
    Ok(total)
}

/// Decodes the frame at the start of `buf`.
///
/// Returns the message and the number of bytes consumed (the frame's total
/// length); the caller discards that many bytes from its buffer. The payload
/// must be exactly one message: trailing bytes inside the frame make it
/// [`FrameError::Malformed`].
pub fn parse<T: DeserializeOwned>(buf: &[u8]) -> Result<(T, usize), FrameError> {
    let total = check(buf)?;
    let payload = &buf[HEADER_LEN..total];
    let (msg, rest) =
        postcard::take_from_bytes::<T>(payload).map_err(|e| FrameError::Malformed {
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed {
            reason: format!("{} trailing bytes after the message", rest.len()),
        });
    }
    Ok((msg, total))
}

/// Encodes `msg` as one frame (header and payload).
///
/// Refuses with [`FrameError::TooLarge`] rather than produce a frame the
/// other side would reject.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out =
        postcard::to_extend(msg, vec![0u8; HEADER_LEN]).map_err(|e| FrameError::Encode {
            reason: e.to_string(),
        })?;
    let len = out.len() - HEADER_LEN;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len });
    }
    let header = u32::try_from(len).map_err(|_| FrameError::TooLarge { len })?;
    out[..HEADER_LEN].copy_from_slice(&header.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{ClientMessage, Request, RequestBody};

    fn ping() -> ClientMessage {
        ClientMessage::Request(Request {
            id: 7,
            body: RequestBody::Ping,
        })
    }

    fn frame_with_payload(payload: &[u8]) -> Vec<u8> {
        let mut buf = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
        buf.extend_from_slice(payload);
        buf
    }

    #[test]
    fn every_prefix_is_incomplete_then_whole_frame_is_ok() {
        let frame = encode(&ping()).unwrap();
        for cut in 0..frame.len() {
            assert_eq!(
                check(&frame[..cut]),
                Err(FrameError::Incomplete),
                "cut {cut}"
            );
            let err = parse::<ClientMessage>(&frame[..cut]).unwrap_err();
            assert!(err.is_incomplete(), "cut {cut}: {err}");
        }
        assert_eq!(check(&frame), Ok(frame.len()));
        assert_eq!(parse::<ClientMessage>(&frame), Ok((ping(), frame.len())));
    }

    #[test]
    fn bytes_after_the_frame_are_left_for_the_next_frame() {
        let mut buf = encode(&ping()).unwrap();
        let first = buf.len();
        buf.extend_from_slice(&encode(&ping()).unwrap());
        buf.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(check(&buf), Ok(first));
        let (msg, used) = parse::<ClientMessage>(&buf).unwrap();
        assert_eq!((msg, used), (ping(), first));
        let (msg, used) = parse::<ClientMessage>(&buf[first..]).unwrap();
        assert_eq!((msg, used), (ping(), first));
        assert!(check(&buf[2 * first..]).unwrap_err().is_incomplete());
    }

    #[test]
    fn oversize_header_is_rejected_without_the_payload() {
        let len = MAX_FRAME_LEN + 1;
        let header = u32::try_from(len).unwrap().to_le_bytes();
        assert_eq!(check(&header), Err(FrameError::TooLarge { len }));
        assert_eq!(
            parse::<ClientMessage>(&header),
            Err(FrameError::TooLarge { len })
        );
        let header = u32::MAX.to_le_bytes();
        assert_eq!(
            check(&header),
            Err(FrameError::TooLarge {
                len: u32::MAX as usize
            })
        );
    }

    #[test]
    fn maximum_length_is_accepted_by_check() {
        let buf = frame_with_payload(&vec![0u8; MAX_FRAME_LEN]);
        assert_eq!(check(&buf), Ok(HEADER_LEN + MAX_FRAME_LEN));
        // ...but that payload is not one message.
        assert!(matches!(
            parse::<ClientMessage>(&buf),
            Err(FrameError::Malformed { .. })
        ));
    }

    #[test]
    fn trailing_bytes_inside_a_frame_are_malformed() {
        let mut payload = postcard::to_allocvec(&ping()).unwrap();
        payload.push(0);
        let err = parse::<ClientMessage>(&frame_with_payload(&payload)).unwrap_err();
        assert_eq!(
            err,
            FrameError::Malformed {
                reason: "1 trailing bytes after the message".into()
            }
        );
    }

    #[test]
    fn truncated_or_garbage_payload_is_malformed_not_incomplete() {
        let payload = postcard::to_allocvec(&ping()).unwrap();
        let short = frame_with_payload(&payload[..payload.len() - 1]);
        assert!(matches!(
            parse::<ClientMessage>(&short),
            Err(FrameError::Malformed { .. })
        ));
        assert!(matches!(
            parse::<ClientMessage>(&frame_with_payload(&[])),
            Err(FrameError::Malformed { .. })
        ));
        assert!(matches!(
            parse::<ClientMessage>(&frame_with_payload(&[0x7f])),
            Err(FrameError::Malformed { .. })
        ));
    }

    #[test]
    fn encode_refuses_oversize_messages() {
        let msg = ClientMessage::Request(Request {
            id: 1,
            body: RequestBody::Query {
                path: vec![b'a'; MAX_FRAME_LEN],
                access: crate::messages::Access::Read,
            },
        });
        assert!(matches!(encode(&msg), Err(FrameError::TooLarge { len }) if len > MAX_FRAME_LEN));
    }

    #[test]
    fn header_is_little_endian_payload_length() {
        let frame = encode(&ping()).unwrap();
        let declared = u32::from_le_bytes(frame[..4].try_into().unwrap());
        assert_eq!(declared as usize, frame.len() - HEADER_LEN);
    }
}
