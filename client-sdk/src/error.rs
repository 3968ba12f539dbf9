//! What can go wrong when asking the broker, and how it maps to `io::Error`.

use std::fmt;
use std::io;

use proto::fd::FdError;
use proto::socket::SocketError;
use proto::{ErrorKind, FrameError};

/// Why a request to the broker did not produce what was asked for.
///
/// Methods returning `io::Result` (such as [`Client::open`](crate::Client::open))
/// wrap this type inside the `io::Error` (see [`Error::io_kind`] for the
/// mapping); get it back with [`Error::from_io`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// This process has no usable broker socket: it was not started by
    /// `sluice run`, or `SLUICE_BROKER_FD` does not name an `AF_UNIX`
    /// `SOCK_SEQPACKET` socket.
    #[error("not running under sluice: {why}")]
    NotUnderSluice {
        /// What was missing or wrong.
        why: String,
    },
    /// The broker refused the handshake (for example another protocol
    /// version) and closed the connection.
    #[error("the broker refused the connection: {reason}")]
    Refused {
        /// The broker's explanation.
        reason: String,
    },
    /// The policy, or the person asked, refused the request.
    #[error("denied by the broker: {reason}{}", RuleSuffix { reason, rule })]
    Denied {
        /// The broker's explanation.
        reason: String,
        /// The policy rule that decided, when one did.
        rule: Option<String>,
    },
    /// The broker could not carry the request out for a reason other than
    /// policy (the file does not exist, the open failed, too many requests).
    #[error("the broker reports {}: {message}", kind_name(*kind))]
    Broker {
        /// Category, to act on.
        kind: ErrorKind,
        /// The broker's detail.
        message: String,
    },
    /// The broker closed the connection (the session is ending, or it gave
    /// up on this client). Requests in flight fail with this.
    #[error("the broker connection was closed")]
    Closed,
    /// The broker sent something this client cannot accept. The connection
    /// is closed; any descriptor that came with the offending record was
    /// closed too.
    #[error("broker protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// A system call on the broker socket failed.
    #[error("broker socket: {0}")]
    Io(#[from] io::Error),
}

/// How the broker broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A record that is not exactly one valid frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Descriptors that do not belong with the frame they came with (all
    /// were closed).
    #[error(transparent)]
    Fd(#[from] FdError),
    /// A valid message that makes no sense at this point.
    #[error("expected {expected}, got {got}")]
    Unexpected {
        /// What the client was waiting for.
        expected: &'static str,
        /// What arrived instead.
        got: &'static str,
    },
    /// A response whose id matches no request in flight.
    #[error("a response for request {id}, which is not in flight")]
    UnknownId {
        /// The id the broker sent.
        id: u64,
    },
}

impl Error {
    /// The `io::ErrorKind` this error becomes in an `io::Error`:
    ///
    /// | error | kind |
    /// |---|---|
    /// | `NotUnderSluice` | `Unsupported` (the feature is not available here) |
    /// | `Refused` | `ConnectionRefused` |
    /// | `Denied` | `PermissionDenied` |
    /// | `Broker` `NotFound` | `NotFound` |
    /// | `Broker` `TooManyRequests` | `ResourceBusy` (not `WouldBlock`, which callers of non-blocking I/O treat as "retry when ready") |
    /// | `Broker` `Malformed`, `UnsupportedVersion` | `InvalidInput` |
    /// | `Broker` `Io`, `Internal` | `Other` |
    /// | `Closed` | `ConnectionAborted` |
    /// | `Protocol` | `InvalidData` |
    /// | `Io(e)` | `e.kind()` (and the `io::Error` is `e` itself, errno included) |
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::NotUnderSluice { .. } => io::ErrorKind::Unsupported,
            Error::Refused { .. } => io::ErrorKind::ConnectionRefused,
            Error::Denied { .. } => io::ErrorKind::PermissionDenied,
            Error::Broker { kind, .. } => match kind {
                ErrorKind::NotFound => io::ErrorKind::NotFound,
                ErrorKind::TooManyRequests => io::ErrorKind::ResourceBusy,
                ErrorKind::Malformed | ErrorKind::UnsupportedVersion => io::ErrorKind::InvalidInput,
                ErrorKind::Io | ErrorKind::Internal => io::ErrorKind::Other,
            },
            Error::Closed => io::ErrorKind::ConnectionAborted,
            Error::Protocol(_) => io::ErrorKind::InvalidData,
            Error::Io(e) => e.kind(),
        }
    }

    /// Whether this error leaves the connection unusable: everything except
    /// an answer to one request ([`Error::Denied`], [`Error::Broker`]).
    pub(crate) fn breaks_connection(&self) -> bool {
        matches!(
            self,
            Error::Closed | Error::Refused { .. } | Error::Protocol(_) | Error::Io(_)
        )
    }

    /// The typed error inside an `io::Error` made from an [`Error`], if it
    /// is one. `None` for errors that were an [`Error::Io`] (those become the
    /// inner `io::Error` itself) and for errors from elsewhere.
    pub fn from_io(err: &io::Error) -> Option<&Error> {
        err.get_ref()?.downcast_ref::<Error>()
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        match err {
            Error::Io(e) => e,
            other => io::Error::new(other.io_kind(), other),
        }
    }
}

impl From<SocketError> for Error {
    fn from(err: SocketError) -> Error {
        match err {
            SocketError::Io(e) if is_gone(&e) => Error::Closed,
            SocketError::Io(e) => Error::Io(e),
            SocketError::Closed => Error::Closed,
            SocketError::Frame(e) => Error::Protocol(e.into()),
            SocketError::Fd(e) => Error::Protocol(e.into()),
        }
    }
}

/// The peer is gone: sending to it fails this way.
fn is_gone(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

/// Why a connection can no longer be used, kept so that every later (or
/// every pending) request can be failed with the same error.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    Closed,
    Refused(String),
    Protocol(ProtocolError),
    Io(io::ErrorKind, String),
}

impl Failure {
    /// What to remember of `err` once it has broken a connection.
    pub(crate) fn of(err: &Error) -> Failure {
        match err {
            Error::Refused { reason } => Failure::Refused(reason.clone()),
            Error::Protocol(e) => Failure::Protocol(e.clone()),
            Error::Io(e) => Failure::Io(e.kind(), e.to_string()),
            // Answers to one request (Denied, Broker) never break a
            // connection; anything else means it is gone.
            _ => Failure::Closed,
        }
    }

    /// A fresh error for one more request on the broken connection.
    pub(crate) fn error(&self) -> Error {
        match self {
            Failure::Closed => Error::Closed,
            Failure::Refused(reason) => Error::Refused {
                reason: reason.clone(),
            },
            Failure::Protocol(e) => Error::Protocol(e.clone()),
            Failure::Io(kind, message) => Error::Io(io::Error::new(*kind, message.clone())),
        }
    }
}

/// " (rule NAME)" when a rule decided and the reason does not already
/// name it, nothing otherwise.
struct RuleSuffix<'a> {
    reason: &'a str,
    rule: &'a Option<String>,
}

impl fmt::Display for RuleSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            Some(rule) if !self.reason.contains(rule.as_str()) => write!(f, " (rule {rule})"),
            _ => Ok(()),
        }
    }
}

fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Malformed => "a malformed request",
        ErrorKind::UnsupportedVersion => "an unsupported protocol version",
        ErrorKind::NotFound => "not found",
        ErrorKind::Io => "an I/O error",
        ErrorKind::TooManyRequests => "too many requests",
        ErrorKind::Internal => "an internal error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_names_its_rule_once() {
        let err = Error::Denied {
            reason: "no".into(),
            rule: Some("deny \"~/.ssh\"".into()),
        };
        assert_eq!(
            err.to_string(),
            "denied by the broker: no (rule deny \"~/.ssh\")"
        );
        let err = Error::Denied {
            reason: "denied by rule deny \"~/.ssh\" (default:12)".into(),
            rule: Some("deny \"~/.ssh\"".into()),
        };
        assert_eq!(
            err.to_string(),
            "denied by the broker: denied by rule deny \"~/.ssh\" (default:12)"
        );
        let err = Error::Denied {
            reason: "no".into(),
            rule: None,
        };
        assert_eq!(err.to_string(), "denied by the broker: no");
    }

    #[test]
    fn io_errors_carry_the_typed_error_except_io() {
        let err = io::Error::from(Error::Broker {
            kind: ErrorKind::TooManyRequests,
            message: "slow down".into(),
        });
        assert_eq!(err.kind(), io::ErrorKind::ResourceBusy);
        assert!(matches!(
            Error::from_io(&err),
            Some(Error::Broker {
                kind: ErrorKind::TooManyRequests,
                ..
            })
        ));
        let os = io::Error::from_raw_os_error(libc::EMFILE);
        let err = io::Error::from(Error::Io(os));
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE));
        assert!(Error::from_io(&err).is_none());
        let err = io::Error::from(Error::Protocol(ProtocolError::UnknownId { id: 7 }));
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = io::Error::from(Error::Closed);
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    }
}
