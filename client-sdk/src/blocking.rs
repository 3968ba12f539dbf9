//! The blocking client: one request in flight at a time, no runtime.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::socket::{send_frame, Blocking, FrameReader, Wire};
use proto::{Access, PolicySummary, RequestBody, Response, ResponseBody, ServerMessage};

use crate::error::{Error, Failure, ProtocolError};
use crate::options::{self, OpenOptions};
use crate::reply::{self, QueryAnswer};
use crate::{broker, sys};

/// A private connection to the broker, used blocking.
///
/// Each call sends one request and waits for its answer, which may take as
/// long as a person takes to decide. To ask from several threads at once,
/// give each its own connection ([`Client::try_clone`]) or use the
/// `tokio` feature's pipelining client.
///
/// After the connection breaks ([`Error::Closed`], [`Error::Refused`],
/// [`Error::Protocol`] or [`Error::Io`]) every later call fails with the
/// same error; make a new client with [`Client::try_clone`] or
/// [`Client::from_env`]. Not fork-safe: a child process makes its own.
pub struct Client {
    /// Our close-on-exec copy of the inherited socket, for new connections.
    shared: Arc<OwnedFd>,
    /// How frames travel, from the shared socket's type.
    wire: Wire,
    conn: OwnedFd,
    name: String,
    session: String,
    policy: PolicySummary,
    next_id: u64,
    reader: FrameReader,
    failed: Option<Failure>,
}

impl Client {
    /// Connects through the socket `sluice run` passed down in
    /// `SLUICE_BROKER_FD`, naming this client after the program
    /// (`argv[0]`'s file name).
    ///
    /// [`Error::NotUnderSluice`] when the variable is unset, not a
    /// descriptor number, or does not name an open `AF_UNIX`
    /// `SOCK_SEQPACKET` (or, the macOS wire, `SOCK_DGRAM`) socket. The inherited descriptor is not modified.
    pub fn from_env() -> Result<Client, Error> {
        Client::from_env_named(&broker::default_client_name())
    }

    /// [`Client::from_env`] with a client name of your choice (shown in the
    /// supervisor's prompts and audit log; informational only).
    pub fn from_env_named(client_name: &str) -> Result<Client, Error> {
        let (shared, wire) = broker::shared_from_env()?;
        Client::handshake(Arc::new(shared), wire, client_name.to_owned())
    }

    /// Connects through `shared`, a socket of the kind `SLUICE_BROKER_FD`
    /// names. The client keeps its own close-on-exec copy of it.
    pub fn connect(shared: BorrowedFd<'_>, client_name: &str) -> Result<Client, Error> {
        let (shared, wire) = broker::adopt_shared(shared)?;
        Client::handshake(Arc::new(shared), wire, client_name.to_owned())
    }

    /// A new, independent private connection over the same shared socket,
    /// with the same name: for another thread, or to start over after this
    /// connection broke.
    pub fn try_clone(&self) -> Result<Client, Error> {
        Client::handshake(Arc::clone(&self.shared), self.wire, self.name.clone())
    }

    fn handshake(shared: Arc<OwnedFd>, wire: Wire, name: String) -> Result<Client, Error> {
        let (conn, theirs) = wire.pair()?;
        broker::send_connect(shared.as_fd(), theirs.as_fd(), Blocking::Yes)
            .map_err(broker::socket_error)?;
        // The broker holds the other end now; keeping a copy would hide its
        // close from us.
        drop(theirs);
        send_frame(conn.as_fd(), &broker::hello(&name)?, None, Blocking::Yes)
            .map_err(broker::socket_error)?;
        let mut reader = FrameReader::new(wire);
        let (answer, _) = reader.recv(conn.as_fd(), Blocking::Yes, |m: &ServerMessage| {
            m.expects_fd()
        })?;
        let (session, policy) = broker::welcome(answer)?;
        Ok(Client {
            shared,
            wire,
            conn,
            name,
            session,
            policy,
            next_id: 1,
            reader,
            failed: None,
        })
    }

    /// The session identifier the broker gave at the handshake.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// What the broker said about the policy in force.
    pub fn policy(&self) -> &PolicySummary {
        &self.policy
    }

    /// Asks the broker to open `path` and returns the file it opened.
    ///
    /// A relative `path` is sent as given and resolved by the broker against
    /// this process's working directory. Errors are `io::Error`s whose kind
    /// follows [`Error::io_kind`] (a denial is `PermissionDenied`); the
    /// typed error is available through [`Error::from_io`]. Invalid
    /// `options` are `InvalidInput`, before anything is sent.
    pub fn open(&mut self, path: impl AsRef<Path>, options: &OpenOptions) -> io::Result<File> {
        let request = options.request(path.as_ref())?;
        let (body, fd) = self.call(request)?;
        let file = reply::opened(body, fd);
        Ok(self.settle(file)?)
    }

    /// Asks whether opening `path` with `access` would be allowed, asked
    /// about, or denied, without opening anything.
    pub fn query(&mut self, path: impl AsRef<Path>, access: Access) -> Result<QueryAnswer, Error> {
        let request = RequestBody::Query {
            path: options::path_bytes(path.as_ref()),
            access,
        };
        let (body, _) = self.call(request)?;
        let answer = reply::queried(body);
        self.settle(answer)
    }

    /// Checks that the broker answers; returns the round-trip time.
    pub fn ping(&mut self) -> Result<Duration, Error> {
        let start = Instant::now();
        let (body, _) = self.call(RequestBody::Ping)?;
        let pong = reply::ponged(body);
        self.settle(pong)?;
        Ok(start.elapsed())
    }

    /// Registers the sandbox a stacked sluice made (its Landlock
    /// `ruleset` and resolved `protect` list) with the enclosing session,
    /// whose guard then makes its program's writes in that sandbox. For
    /// `sluice run` itself; a program gains nothing by it (see the
    /// supervisor's `broker/guard/stacked.rs`).
    #[doc(hidden)]
    pub fn register_stacked(
        &mut self,
        ruleset: BorrowedFd<'_>,
        protect: Vec<String>,
    ) -> Result<(), Error> {
        if let Some(failure) = &self.failed {
            return Err(failure.error());
        }
        let id = self.next_id;
        self.next_id += 1;
        let frame = broker::stacked(id, protect)?;
        let result = self.round_trip_with(id, &frame, Some(ruleset));
        let (body, _) = self.settle(result)?;
        match body {
            ResponseBody::Allowed { .. } => Ok(()),
            ResponseBody::Denied { reason, rule } => Err(Error::Denied { reason, rule }),
            ResponseBody::Error { kind, message } => Err(Error::Broker { kind, message }),
            _ => Err(ProtocolError::Unexpected {
                expected: "an answer to a registration",
                got: "another response",
            }
            .into()),
        }
    }

    /// Sends one request and waits for its response.
    fn call(&mut self, body: RequestBody) -> Result<(ResponseBody, Option<OwnedFd>), Error> {
        if let Some(failure) = &self.failed {
            return Err(failure.error());
        }
        let id = self.next_id;
        self.next_id += 1;
        let frame = broker::request(id, body)?;
        let result = self.round_trip(id, &frame);
        self.settle(result)
    }

    fn round_trip(
        &mut self,
        id: u64,
        frame: &[u8],
    ) -> Result<(ResponseBody, Option<OwnedFd>), Error> {
        self.round_trip_with(id, frame, None)
    }

    fn round_trip_with(
        &mut self,
        id: u64,
        frame: &[u8],
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<(ResponseBody, Option<OwnedFd>), Error> {
        send_frame(self.conn.as_fd(), frame, fd, Blocking::Yes).map_err(broker::socket_error)?;
        let (answer, fd) =
            self.reader
                .recv(self.conn.as_fd(), Blocking::Yes, |m: &ServerMessage| {
                    m.expects_fd()
                })?;
        match answer {
            ServerMessage::Response(Response { id: got, body }) if got == id => Ok((body, fd)),
            ServerMessage::Response(Response { id: got, .. }) => {
                Err(ProtocolError::UnknownId { id: got }.into())
            }
            ServerMessage::Refused { reason } => Err(Error::Refused { reason }),
            ServerMessage::Welcome { .. } => Err(ProtocolError::Unexpected {
                expected: "a response",
                got: "a second welcome",
            }
            .into()),
        }
    }

    /// Marks the connection broken when `result` is an error that breaks it
    /// (anything but an answer to the request), and shuts it down so the
    /// broker stops working for us.
    fn settle<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(err) = &result {
            if err.breaks_connection() && self.failed.is_none() {
                self.failed = Some(Failure::of(err));
                sys::shutdown(self.conn.as_fd());
            }
        }
        result
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.name)
            .field("session", &self.session)
            .field("policy", &self.policy)
            .field("conn", &self.conn)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
