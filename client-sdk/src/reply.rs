//! What a response means for the call that made the request; shared by the
//! blocking and the tokio client.

use std::fs::File;
use std::os::fd::OwnedFd;

use proto::ResponseBody;

use crate::error::{Error, ProtocolError};

/// The broker's answer to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryAnswer {
    /// An open with this access would be allowed.
    Allowed {
        /// The policy rule that allows it, when one did.
        rule: Option<String>,
    },
    /// An open would be put to a person, who may allow or deny it.
    WouldAsk {
        /// The policy rule that asks.
        rule: Option<String>,
    },
    /// An open would be refused.
    Denied {
        /// The broker's explanation.
        reason: String,
        /// The policy rule that decided, when one did.
        rule: Option<String>,
    },
}

impl QueryAnswer {
    /// True only for [`QueryAnswer::Allowed`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, QueryAnswer::Allowed { .. })
    }
}

/// The answer to an `Open`: the descriptor as a file.
pub(crate) fn opened(body: ResponseBody, fd: Option<OwnedFd>) -> Result<File, Error> {
    match (body, fd) {
        (ResponseBody::Opened, Some(fd)) => Ok(File::from(fd)),
        // Unreachable through proto::socket, which refuses an `Opened`
        // without its descriptor; kept as an error rather than a panic.
        (ResponseBody::Opened, None) => Err(ProtocolError::Fd(proto::fd::FdError::Missing).into()),
        (body, _) => Err(refusal(body, "an opened file")),
    }
}

/// The answer to a `Query`.
pub(crate) fn queried(body: ResponseBody) -> Result<QueryAnswer, Error> {
    match body {
        ResponseBody::Allowed { rule } => Ok(QueryAnswer::Allowed { rule }),
        ResponseBody::WouldAsk { rule } => Ok(QueryAnswer::WouldAsk { rule }),
        ResponseBody::Denied { reason, rule } => Ok(QueryAnswer::Denied { reason, rule }),
        body => Err(refusal(body, "an answer to a query")),
    }
}

/// The answer to a `Ping`.
pub(crate) fn ponged(body: ResponseBody) -> Result<(), Error> {
    match body {
        ResponseBody::Pong => Ok(()),
        body => Err(refusal(body, "a pong")),
    }
}

/// The error for a body that is not the success `expected`: a refusal or
/// failure the broker may give to any request, or a protocol violation.
fn refusal(body: ResponseBody, expected: &'static str) -> Error {
    match body {
        ResponseBody::Denied { reason, rule } => Error::Denied { reason, rule },
        ResponseBody::Error { kind, message } => Error::Broker { kind, message },
        other => ProtocolError::Unexpected {
            expected,
            got: body_name(&other),
        }
        .into(),
    }
}

fn body_name(body: &ResponseBody) -> &'static str {
    match body {
        ResponseBody::Opened => "an opened file",
        ResponseBody::Denied { .. } => "a denial",
        ResponseBody::Allowed { .. } => "an allowed answer",
        ResponseBody::Error { .. } => "an error",
        ResponseBody::Pong => "a pong",
        ResponseBody::WouldAsk { .. } => "a would-ask answer",
    }
}
