//! Wire types of the broker protocol.
//!
//! Every type here is encoded with postcard inside a [`crate::frame`]. The
//! encoding is positional: variant order and field order *are* the wire
//! format, so new variants and fields go at the end and any other change
//! bumps [`PROTOCOL_VERSION`].
//!
//! A session: the client sends [`ClientMessage::Hello`]; the supervisor
//! answers [`ServerMessage::Welcome`] or [`ServerMessage::Refused`] (and then
//! closes). After a welcome the client sends [`ClientMessage::Request`]s and
//! gets one [`ServerMessage::Response`] per request, matched by `id`.

use serde::{Deserialize, Serialize};

/// Version of this protocol, sent in [`ClientMessage::Hello`]. The supervisor
/// refuses clients speaking another version.
pub const PROTOCOL_VERSION: u32 = 1;

/// A filesystem path as raw bytes: paths on Unix are not necessarily UTF-8.
/// Interpreted by the supervisor, never trusted to be canonical.
pub type PathBytes = Vec<u8>;

/// A frame sent by the sandboxed client to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// First frame of a session: the protocol version the client speaks and
    /// a free-form client name (for logs and the audit trail only).
    Hello {
        /// Must equal [`PROTOCOL_VERSION`] for the session to proceed.
        protocol: u32,
        /// Self-reported client name; untrusted, informational.
        client: String,
    },
    /// A request, valid only after [`ServerMessage::Welcome`].
    Request(Request),
    /// Open a private connection: exactly one descriptor travels with this
    /// frame, one end of a `SOCK_SEQPACKET` socket pair the client made; the
    /// client keeps the other end and says [`ClientMessage::Hello`] on it.
    ///
    /// Sent only on the shared socket a sandboxed program inherits
    /// (`SLUICE_BROKER_FD`), and the only frame that socket takes: every
    /// process of the sandbox may hold that socket, so answers sent on it
    /// could be read by the wrong process. Nothing is answered on the shared
    /// socket; a refused connection is closed.
    Connect,
    /// A sluice stacked inside the session registers its sandbox, so the
    /// session's guard can make its program's writes (`supervisor/src/
    /// broker/guard/stacked.rs`): exactly one descriptor travels with this
    /// frame, the Landlock ruleset its program was restricted by. Answered
    /// by a [`Response`] with the same `id`: [`ResponseBody::Allowed`] when
    /// registered, else [`ResponseBody::Denied`] or [`ResponseBody::Error`].
    /// Valid only after [`ServerMessage::Welcome`], once per process.
    Stacked(StackedSandbox),
}

/// What a stacked sluice registers besides its ruleset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackedSandbox {
    /// Client-chosen correlation identifier, echoed in the response.
    pub id: u64,
    /// Its `[filesystem] protect` list, resolved (`!` before an exception).
    pub protect: Vec<String>,
}

impl ClientMessage {
    /// Whether exactly one descriptor travels with this frame: true only for
    /// [`ClientMessage::Connect`] and [`ClientMessage::Stacked`].
    pub fn expects_fd(&self) -> bool {
        matches!(self, ClientMessage::Connect | ClientMessage::Stacked(_))
    }
}

/// A frame sent by the supervisor to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The handshake succeeded: a session identifier (for correlating logs)
    /// and a summary of the policy in force.
    Welcome {
        /// Opaque session identifier.
        session: String,
        /// What the client may expect the broker to allow.
        policy: PolicySummary,
    },
    /// The handshake failed (for example an unknown protocol version); the
    /// supervisor closes the connection after this frame.
    Refused {
        /// Human-readable explanation.
        reason: String,
    },
    /// The answer to one [`Request`].
    Response(Response),
}

impl ServerMessage {
    /// Whether exactly one file descriptor travels (as `SCM_RIGHTS`, in the
    /// same `sendmsg`) with this frame. True only for a response whose body is
    /// [`ResponseBody::Opened`]; any descriptor arriving with another frame is
    /// a protocol violation and must be closed.
    pub fn expects_fd(&self) -> bool {
        matches!(
            self,
            ServerMessage::Response(Response {
                body: ResponseBody::Opened,
                ..
            })
        )
    }
}

/// A request from the client; `id` is chosen by the client and echoed in the
/// matching [`Response`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Client-chosen correlation identifier.
    pub id: u64,
    /// What is asked for.
    pub body: RequestBody,
}

/// The operation a [`Request`] asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestBody {
    /// Open `path` and pass the descriptor back ([`ResponseBody::Opened`]),
    /// if the policy allows. The flags mirror `open(2)`; the supervisor
    /// decides which of them it honours.
    Open {
        /// Path to open, as bytes.
        path: PathBytes,
        /// Requested access mode.
        access: Access,
        /// The rest of `open(2)`'s flags (encoded in place: the frame is
        /// the same as with each flag a field of its own).
        flags: OpenFlags,
    },
    /// Ask whether an `Open` of `path` with `access` would be allowed,
    /// without opening anything. Answered by [`ResponseBody::Allowed`] or
    /// [`ResponseBody::Denied`].
    Query {
        /// Path to ask about, as bytes.
        path: PathBytes,
        /// Access mode to ask about.
        access: Access,
    },
    /// Liveness check, answered by [`ResponseBody::Pong`].
    Ping,
}

impl RequestBody {
    /// The path this request is about, if any.
    pub fn path(&self) -> Option<&[u8]> {
        match self {
            RequestBody::Open { path, .. } | RequestBody::Query { path, .. } => Some(path),
            RequestBody::Ping => None,
        }
    }
}

/// What an open asks of `open(2)` besides its access mode: one type for
/// the wire, the SDK's `OpenOptions`, the broker's requests and the audit
/// record. What only the supervisor's transparent brokering knows of a call
/// (`O_EXCL`, `O_NOFOLLOW`, `O_SYNC`, a `mkdir`) stays apart, in the
/// supervisor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpenFlags {
    /// `O_CREAT`.
    pub create: bool,
    /// `O_TRUNC`.
    pub truncate: bool,
    /// `O_APPEND`.
    pub append: bool,
    /// `O_DIRECTORY`.
    pub directory: bool,
    /// Permission bits for a created file (as for `open(2)`, before umask).
    pub mode: u32,
}

impl OpenFlags {
    /// The names of the flags (`mode` is not one), in the order the audit
    /// record lists them.
    pub const NAMES: [&'static str; 4] = ["create", "truncate", "append", "directory"];

    /// Whether the flags change the file whatever the access: creating,
    /// truncating or appending.
    pub fn writes(&self) -> bool {
        self.create || self.truncate || self.append
    }

    fn bits(&self) -> [bool; 4] {
        [self.create, self.truncate, self.append, self.directory]
    }

    /// The names of the flags that are set, in the order of [`Self::NAMES`].
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        let bits = self.bits();
        Self::NAMES
            .into_iter()
            .zip(bits)
            .filter_map(|(n, on)| on.then_some(n))
    }

    /// Sets the flag called `name`; `false` when no flag has that name.
    pub fn set_named(&mut self, name: &str) -> bool {
        let flag = match name {
            "create" => &mut self.create,
            "truncate" => &mut self.truncate,
            "append" => &mut self.append,
            "directory" => &mut self.directory,
            _ => return false,
        };
        *flag = true;
        true
    }
}

/// Access mode of an open or query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Access {
    /// `O_RDONLY`.
    Read,
    /// `O_WRONLY`.
    Write,
    /// `O_RDWR`.
    ReadWrite,
}

impl Access {
    /// True for [`Access::Read`] and [`Access::ReadWrite`].
    pub fn wants_read(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }

    /// True for [`Access::Write`] and [`Access::ReadWrite`].
    pub fn wants_write(self) -> bool {
        matches!(self, Access::Write | Access::ReadWrite)
    }
}

/// The supervisor's answer to the [`Request`] with the same `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The `id` of the request being answered.
    pub id: u64,
    /// The outcome.
    pub body: ResponseBody,
}

/// Outcome of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseBody {
    /// The open succeeded: exactly one descriptor travels with this frame.
    Opened,
    /// The policy refused the request.
    Denied {
        /// Human-readable explanation.
        reason: String,
        /// The policy rule that decided, when one did.
        rule: Option<String>,
    },
    /// Answer to [`RequestBody::Query`]: the access would be allowed.
    Allowed {
        /// The policy rule that allows it, when one did.
        rule: Option<String>,
    },
    /// The request could not be carried out for a reason other than policy.
    Error {
        /// Category, for programs to act on.
        kind: ErrorKind,
        /// Human-readable detail.
        message: String,
    },
    /// Answer to [`RequestBody::Ping`].
    Pong,
    /// Answer to [`RequestBody::Query`]: an `Open` would be put to a person,
    /// who may allow or deny it.
    WouldAsk {
        /// The policy rule that asks.
        rule: Option<String>,
    },
}

/// Category of a [`ResponseBody::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The request was not understood.
    Malformed,
    /// The request needs a protocol version the supervisor does not speak.
    UnsupportedVersion,
    /// The path does not exist.
    NotFound,
    /// The operating system refused (other than not found).
    Io,
    /// The client exceeded a rate or concurrency limit.
    TooManyRequests,
    /// A bug or unexpected state in the supervisor.
    Internal,
}

/// What the client is told about the policy in force at [`ServerMessage::Welcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySummary {
    /// Policy name.
    pub name: String,
    /// Number of rules the broker evaluates requests against.
    pub broker_rules: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{check, encode, parse, FrameError};
    use serde::de::DeserializeOwned;
    use std::fmt::Debug;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(msg: T) {
        let frame = encode(&msg).unwrap();
        for cut in 0..frame.len() {
            assert_eq!(
                check(&frame[..cut]),
                Err(FrameError::Incomplete),
                "{msg:?} cut {cut}"
            );
        }
        assert_eq!(check(&frame), Ok(frame.len()));
        let (back, used) = parse::<T>(&frame).unwrap();
        assert_eq!(back, msg);
        assert_eq!(used, frame.len());
    }

    fn all_client_messages() -> Vec<ClientMessage> {
        let mut out = vec![ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            client: "agent 🦀".into(),
        }];
        for access in [Access::Read, Access::Write, Access::ReadWrite] {
            out.push(ClientMessage::Request(Request {
                id: u64::MAX,
                body: RequestBody::Open {
                    // Not UTF-8 on purpose: paths are bytes.
                    path: b"/tmp/\xff\xfe/x".to_vec(),
                    access,
                    flags: OpenFlags {
                        create: true,
                        append: true,
                        mode: 0o644,
                        ..OpenFlags::default()
                    },
                },
            }));
            out.push(ClientMessage::Request(Request {
                id: 0,
                body: RequestBody::Query {
                    path: Vec::new(),
                    access,
                },
            }));
        }
        out.push(ClientMessage::Request(Request {
            id: 3,
            body: RequestBody::Ping,
        }));
        out.push(ClientMessage::Connect);
        out.push(ClientMessage::Stacked(StackedSandbox {
            id: 7,
            protect: vec!["**/.git/hooks".into(), "!**/.git/hooks/*.sample".into()],
        }));
        out
    }

    fn all_server_messages() -> Vec<ServerMessage> {
        let response = |body| ServerMessage::Response(Response { id: 42, body });
        let mut out = vec![
            ServerMessage::Welcome {
                session: "s-1".into(),
                policy: PolicySummary {
                    name: "dev".into(),
                    broker_rules: 12,
                },
            },
            ServerMessage::Refused {
                reason: "unsupported protocol version 9".into(),
            },
            response(ResponseBody::Opened),
            response(ResponseBody::Denied {
                reason: "not in policy".into(),
                rule: None,
            }),
            response(ResponseBody::Denied {
                reason: "explicit deny".into(),
                rule: Some("deny ~/.ssh".into()),
            }),
            response(ResponseBody::Allowed { rule: None }),
            response(ResponseBody::Allowed {
                rule: Some("read /usr".into()),
            }),
            response(ResponseBody::Pong),
            response(ResponseBody::WouldAsk {
                rule: Some("ask /".into()),
            }),
        ];
        for kind in [
            ErrorKind::Malformed,
            ErrorKind::UnsupportedVersion,
            ErrorKind::NotFound,
            ErrorKind::Io,
            ErrorKind::TooManyRequests,
            ErrorKind::Internal,
        ] {
            out.push(response(ResponseBody::Error {
                kind,
                message: format!("{kind:?}"),
            }));
        }
        out
    }

    #[test]
    fn every_client_message_round_trips() {
        for msg in all_client_messages() {
            round_trip(msg);
        }
    }

    #[test]
    fn every_server_message_round_trips() {
        for msg in all_server_messages() {
            round_trip(msg);
        }
    }

    #[test]
    fn only_opened_expects_a_descriptor() {
        for msg in all_server_messages() {
            let opened = matches!(
                &msg,
                ServerMessage::Response(Response {
                    body: ResponseBody::Opened,
                    ..
                })
            );
            assert_eq!(msg.expects_fd(), opened, "{msg:?}");
        }
    }

    #[test]
    fn only_connect_and_stacked_carry_a_descriptor_to_the_supervisor() {
        for msg in all_client_messages() {
            let with_fd = matches!(msg, ClientMessage::Connect | ClientMessage::Stacked(_));
            assert_eq!(msg.expects_fd(), with_fd, "{msg:?}");
        }
    }

    #[test]
    fn access_helpers() {
        assert!(Access::Read.wants_read() && !Access::Read.wants_write());
        assert!(!Access::Write.wants_read() && Access::Write.wants_write());
        assert!(Access::ReadWrite.wants_read() && Access::ReadWrite.wants_write());
    }

    #[test]
    fn request_path() {
        let open = RequestBody::Open {
            path: b"/a".to_vec(),
            access: Access::Read,
            flags: OpenFlags {
                directory: true,
                ..OpenFlags::default()
            },
        };
        assert_eq!(open.path(), Some(&b"/a"[..]));
        assert_eq!(RequestBody::Ping.path(), None);
    }

    /// The wire format is positional; pin a few encodings so an accidental
    /// reordering of variants or fields fails here rather than between a
    /// new supervisor and an old client.
    #[test]
    fn wire_format_is_stable() {
        let hello = ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            client: "c".into(),
        };
        assert_eq!(encode(&hello).unwrap(), [4, 0, 0, 0, 0, 1, 1, b'c']);
        let ping = ClientMessage::Request(Request {
            id: 5,
            body: RequestBody::Ping,
        });
        assert_eq!(encode(&ping).unwrap(), [3, 0, 0, 0, 1, 5, 2]);
        let opened = ServerMessage::Response(Response {
            id: 5,
            body: ResponseBody::Opened,
        });
        assert_eq!(encode(&opened).unwrap(), [3, 0, 0, 0, 2, 5, 0]);
        let err = ServerMessage::Response(Response {
            id: 1,
            body: ResponseBody::Error {
                kind: ErrorKind::Internal,
                message: String::new(),
            },
        });
        assert_eq!(encode(&err).unwrap(), [5, 0, 0, 0, 2, 1, 3, 5, 0]);
        assert_eq!(encode(&ClientMessage::Connect).unwrap(), [1, 0, 0, 0, 2]);
        // An open's flags are one struct, encoded in place: the frame is
        // the one of the flags as fields of `Open` (path, access, create,
        // truncate, append, directory, mode).
        let open = ClientMessage::Request(Request {
            id: 5,
            body: RequestBody::Open {
                path: b"/a".to_vec(),
                access: Access::Write,
                flags: OpenFlags {
                    create: true,
                    append: true,
                    mode: 0o640,
                    ..OpenFlags::default()
                },
            },
        });
        let payload = [1, 5, 0, 2, b'/', b'a', 1, 1, 0, 1, 0, 0xa0, 0x03];
        let mut frame = vec![payload.len() as u8, 0, 0, 0];
        frame.extend_from_slice(&payload);
        assert_eq!(encode(&open).unwrap(), frame);
    }
}
