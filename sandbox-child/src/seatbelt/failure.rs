//! A failed `sandbox_init`, reported over the launch pipe.
//!
//! The child writes one [`StepRecord`] with step [`Step::Seatbelt`], fatal,
//! its `index` the length of the message, then the message itself (the
//! error string `sandbox_init` returned, such as a profile syntax error with
//! its line). Encoding writes into a fixed buffer and allocates nothing, as
//! it runs between fork and exec; decoding runs in the supervisor. Both are
//! portable and tested on Linux.

use crate::report::{Step, StepRecord};

/// Longest message kept; a longer one is cut (Seatbelt's errors are one line).
pub const MAX_MESSAGE: usize = 1024;

/// The most bytes one failure takes on the pipe.
pub const MAX_ENCODED: usize = StepRecord::SIZE + MAX_MESSAGE;

/// Writes the record for a failed `sandbox_init` and its message into
/// `buf`; returns how many bytes to write to the pipe.
pub fn encode(errno: i32, message: &[u8], buf: &mut [u8; MAX_ENCODED]) -> usize {
    let len = message.len().min(MAX_MESSAGE);
    let record = StepRecord {
        step: Step::Seatbelt,
        fatal: true,
        index: len as u16,
        errno,
    };
    buf[..StepRecord::SIZE].copy_from_slice(&record.encode());
    buf[StepRecord::SIZE..StepRecord::SIZE + len].copy_from_slice(&message[..len]);
    StepRecord::SIZE + len
}

/// Why bytes read from the pipe are not a Seatbelt failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("launch pipe: truncated record")]
    Truncated,
    #[error("launch pipe: unknown record")]
    Unknown,
    #[error("launch pipe: a {0:?} record where a Seatbelt failure was expected")]
    OtherStep(Step),
}

/// A decoded failure: the record, and the message as text (invalid UTF-8
/// replaced, control characters escaped, so it prints on one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub record: StepRecord,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}", Step::Seatbelt.describe(), self.message)
    }
}

/// Decodes a failure from the start of `bytes`; returns it and the bytes used.
pub fn decode(bytes: &[u8]) -> Result<(Failure, usize), DecodeError> {
    let head: &[u8; StepRecord::SIZE] = bytes
        .get(..StepRecord::SIZE)
        .and_then(|h| h.try_into().ok())
        .ok_or(DecodeError::Truncated)?;
    let record = StepRecord::decode(head).ok_or(DecodeError::Unknown)?;
    if record.step != Step::Seatbelt {
        return Err(DecodeError::OtherStep(record.step));
    }
    let len = usize::from(record.index).min(MAX_MESSAGE);
    let raw = bytes
        .get(StepRecord::SIZE..StepRecord::SIZE + len)
        .ok_or(DecodeError::Truncated)?;
    let message = String::from_utf8_lossy(raw).escape_debug().to_string();
    Ok((Failure { record, message }, StepRecord::SIZE + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_round_trips() {
        let mut buf = [0u8; MAX_ENCODED];
        let msg = b"unbound variable: frobnicate (line 7)";
        let n = encode(1, msg, &mut buf);
        let (failure, used) = decode(&buf[..n]).unwrap();
        assert_eq!(used, n);
        assert!(failure.record.fatal);
        assert_eq!(failure.record.errno, 1);
        assert_eq!(
            failure.to_string(),
            "applying the Seatbelt profile failed: unbound variable: frobnicate (line 7)"
        );
    }

    #[test]
    fn long_and_hostile_messages_are_cut_and_escaped() {
        let mut buf = [0u8; MAX_ENCODED];
        let long = [b'x'; 5000];
        let n = encode(0, &long, &mut buf);
        assert_eq!(n, MAX_ENCODED);
        assert_eq!(decode(&buf[..n]).unwrap().0.message.len(), MAX_MESSAGE);
        let n = encode(0, b"a\nb\xff\x1b[2J", &mut buf);
        assert_eq!(
            decode(&buf[..n]).unwrap().0.message,
            "a\\nb\u{fffd}\\u{1b}[2J"
        );
    }

    #[test]
    fn short_or_foreign_input_is_an_error() {
        let mut buf = [0u8; MAX_ENCODED];
        let n = encode(0, b"message", &mut buf);
        assert_eq!(decode(&buf[..n - 1]), Err(DecodeError::Truncated));
        assert_eq!(decode(&buf[..4]), Err(DecodeError::Truncated));
        assert_eq!(decode(&[0; 8]), Err(DecodeError::Unknown));
        let exec = StepRecord {
            step: Step::Exec,
            fatal: true,
            index: 0,
            errno: 2,
        };
        assert_eq!(
            decode(&exec.encode()),
            Err(DecodeError::OtherStep(Step::Exec))
        );
    }
}
