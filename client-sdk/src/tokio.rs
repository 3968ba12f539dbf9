//! The tokio client: `&self` methods, many requests in flight on one
//! connection, answers matched by id in whatever order they come.
//!
//! One reader task per connection receives every response and hands it to
//! the request with the same id through a oneshot channel; requests are sent
//! by the calling tasks themselves. At most [`MAX_IN_FLIGHT`] requests of a
//! connection are outstanding at once (the others wait for a slot), so a
//! well-behaved program never sees the broker's `TooManyRequests`.
//!
//! Request futures are cancel-safe: dropping one (for example under
//! `tokio::time::timeout`) before its request was sent sends nothing; after,
//! the answer is discarded when it comes, and a descriptor it carried is
//! closed.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ::tokio::io::unix::AsyncFd;
use ::tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use ::tokio::task::JoinHandle;
use proto::socket::{send_some, Blocking, FrameReader, SocketError, Wire};
use proto::{Access, PolicySummary, RequestBody, Response, ResponseBody, ServerMessage};

use crate::error::{Error, Failure, ProtocolError};
use crate::options::{self, OpenOptions};
use crate::reply::{self, QueryAnswer};
use crate::{broker, sys};

/// Requests one connection keeps in flight at most; more wait their turn.
pub const MAX_IN_FLIGHT: usize = 64;

/// A private connection to the broker, shared by every clone of this
/// handle; requests from many tasks are pipelined on it.
///
/// Create it inside the tokio runtime that will use it (its socket is
/// registered with that runtime's reactor and its reader task runs there);
/// the connection closes when the last clone is dropped.
///
/// When the connection breaks (the broker closed it, or broke the
/// protocol), every request in flight and every later one fails with
/// [`Error::Closed`], [`Error::Refused`], [`Error::Protocol`] or
/// [`Error::Io`]; [`Client::new_connection`] starts over. Not fork-safe.
#[derive(Clone)]
pub struct Client {
    conn: Arc<Connection>,
}

struct Connection {
    /// Our close-on-exec copy of the inherited socket, for new connections.
    shared: Arc<OwnedFd>,
    wire: Wire,
    name: String,
    session: String,
    policy: PolicySummary,
    io: Arc<Io>,
    reader: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Nobody can ask anything any more: stop reading, which drops the
        // socket and tells the broker.
        self.reader.abort();
    }
}

/// The socket and the requests waiting for an answer on it.
struct Io {
    fd: AsyncFd<OwnedFd>,
    wire: Wire,
    /// Held while a frame is sent on a stream, across the waits for room,
    /// so that frames from several tasks never interleave (a record is
    /// sent whole anyway).
    sending: ::tokio::sync::Mutex<()>,
    state: Mutex<State>,
    next_id: AtomicU64,
    slots: Arc<Semaphore>,
}

#[derive(Default)]
struct State {
    pending: HashMap<u64, Pending>,
    failed: Option<Failure>,
}

type Answer = (ResponseBody, Option<OwnedFd>);

/// A request sent (or about to be) and not answered yet.
struct Pending {
    reply: oneshot::Sender<Result<Answer, Error>>,
    /// Held until the answer comes, even if the caller gave up waiting: the
    /// broker counts the request until it answers.
    _slot: OwnedSemaphorePermit,
}

impl Pending {
    fn answer(self, answer: Result<Answer, Error>) {
        if let Err(unwanted) = self.reply.send(answer) {
            // The caller stopped waiting; this closes any descriptor.
            drop(unwanted);
        }
    }
}

impl Client {
    /// Connects through the socket `sluice run` passed down in
    /// `SLUICE_BROKER_FD`; see [`crate::Client::from_env`].
    pub async fn from_env() -> Result<Client, Error> {
        Client::from_env_named(&broker::default_client_name()).await
    }

    /// [`Client::from_env`] with a client name of your choice.
    pub async fn from_env_named(client_name: &str) -> Result<Client, Error> {
        let (shared, wire) = broker::shared_from_env()?;
        Client::handshake(Arc::new(shared), wire, client_name.to_owned()).await
    }

    /// Connects through `shared`, a socket of the kind `SLUICE_BROKER_FD`
    /// names. The client keeps its own close-on-exec copy of it.
    pub async fn connect(shared: BorrowedFd<'_>, client_name: &str) -> Result<Client, Error> {
        let (shared, wire) = broker::adopt_shared(shared)?;
        Client::handshake(Arc::new(shared), wire, client_name.to_owned()).await
    }

    /// A new, independent private connection over the same shared socket
    /// (clones of this handle share one connection).
    pub async fn new_connection(&self) -> Result<Client, Error> {
        let conn = &self.conn;
        Client::handshake(Arc::clone(&conn.shared), conn.wire, conn.name.clone()).await
    }

    async fn handshake(shared: Arc<OwnedFd>, wire: Wire, name: String) -> Result<Client, Error> {
        let (ours, theirs) = wire.pair()?;
        match broker::send_connect(shared.as_fd(), theirs.as_fd(), Blocking::No) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The shared socket is full (the broker is busy). Wait on a
                // blocking thread rather than register a socket every
                // process of the sandbox shares with this runtime.
                let shared = Arc::clone(&shared);
                ::tokio::task::spawn_blocking(move || {
                    broker::send_connect(shared.as_fd(), theirs.as_fd(), Blocking::Yes)
                })
                .await
                .map_err(io::Error::other)?
                .map_err(broker::socket_error)?;
            }
            sent => {
                sent.map_err(broker::socket_error)?;
                drop(theirs);
            }
        }
        let io = Io {
            fd: sys::register(ours)?,
            wire,
            sending: ::tokio::sync::Mutex::new(()),
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        };
        io.send(&broker::hello(&name)?)
            .await
            .map_err(broker::socket_error)?;
        let mut frames = FrameReader::new(wire);
        let (answer, _) = io.recv(&mut frames).await?;
        let (session, policy) = broker::welcome(answer)?;
        let io = Arc::new(io);
        let reader = ::tokio::spawn(read_responses(Arc::clone(&io), frames));
        Ok(Client {
            conn: Arc::new(Connection {
                shared,
                wire,
                name,
                session,
                policy,
                io,
                reader,
            }),
        })
    }

    /// The session identifier the broker gave at the handshake.
    pub fn session(&self) -> &str {
        &self.conn.session
    }

    /// What the broker said about the policy in force.
    pub fn policy(&self) -> &PolicySummary {
        &self.conn.policy
    }

    /// Asks the broker to open `path`; see [`crate::Client::open`].
    pub async fn open(&self, path: impl AsRef<Path>, options: &OpenOptions) -> io::Result<File> {
        let request = options.request(path.as_ref())?;
        let (body, fd) = self.call(request).await?;
        Ok(self.settle(reply::opened(body, fd))?)
    }

    /// Asks whether opening `path` with `access` would be allowed; see
    /// [`crate::Client::query`].
    pub async fn query(
        &self,
        path: impl AsRef<Path>,
        access: Access,
    ) -> Result<QueryAnswer, Error> {
        let request = RequestBody::Query {
            path: options::path_bytes(path.as_ref()),
            access,
        };
        let (body, _) = self.call(request).await?;
        self.settle(reply::queried(body))
    }

    /// Checks that the broker answers; returns the round-trip time
    /// (including any wait for a free slot).
    pub async fn ping(&self) -> Result<Duration, Error> {
        let start = Instant::now();
        let (body, _) = self.call(RequestBody::Ping).await?;
        self.settle(reply::ponged(body))?;
        Ok(start.elapsed())
    }

    /// Sends one request and waits for the response with its id.
    async fn call(&self, body: RequestBody) -> Result<Answer, Error> {
        let io = &self.conn.io;
        let id = io.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = broker::request(id, body)?;
        // The semaphore is closed when the connection breaks.
        let slot = Arc::clone(&io.slots)
            .acquire_owned()
            .await
            .map_err(|_| io.failure())?;
        let (reply, answer) = oneshot::channel();
        {
            let mut state = io.lock();
            if let Some(failure) = &state.failed {
                return Err(failure.error());
            }
            // Registered before it is sent: the answer may come at once.
            state.pending.insert(id, Pending { reply, _slot: slot });
        }
        let unsent = Unsent { io, id };
        if let Err(e) = io.send(&frame).await {
            drop(unsent);
            let err = broker::socket_error(e);
            io.fail(&err);
            return Err(err);
        }
        std::mem::forget(unsent);
        answer.await.unwrap_or_else(|_| Err(io.failure()))
    }

    /// Breaks the connection when an answer broke the protocol (a response
    /// that does not fit its request): ids may be confused from here on.
    fn settle<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(err) = &result {
            if err.breaks_connection() {
                self.conn.io.fail(err);
            }
        }
        result
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.conn.name)
            .field("session", &self.conn.session)
            .field("policy", &self.conn.policy)
            .field("conn", self.conn.io.fd.get_ref())
            .finish_non_exhaustive()
    }
}

/// Forgets a registered request whose frame was never sent (the caller's
/// future was dropped while waiting to send, or sending failed), giving its
/// slot back. Forgotten with `mem::forget` once the frame is sent.
struct Unsent<'a> {
    io: &'a Io,
    id: u64,
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        let removed = self.io.lock().pending.remove(&self.id);
        drop(removed);
    }
}

impl Io {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent under every panic point (a map insert
        // or remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The error the connection broke with, or `Closed`.
    fn failure(&self) -> Error {
        self.lock()
            .failed
            .as_ref()
            .map_or(Error::Closed, Failure::error)
    }

    /// Breaks the connection: remembers why (the first reason wins), fails
    /// every request in flight, wakes everyone waiting for a slot, and shuts
    /// the socket down so the broker and the reader task see the end.
    fn fail(&self, err: &Error) {
        let (failure, pending) = {
            let mut state = self.lock();
            let failure = state.failed.get_or_insert_with(|| Failure::of(err)).clone();
            (failure, std::mem::take(&mut state.pending))
        };
        self.slots.close();
        sys::shutdown(self.fd.get_ref().as_fd());
        for (_, waiting) in pending {
            waiting.answer(Err(failure.error()));
        }
    }

    /// Sends one frame, waiting while the socket is full. On a stream a
    /// frame may go out in several writes; no other task's frame comes in
    /// between, and a request abandoned halfway through its frame breaks
    /// the connection (the rest of the stream would be misread).
    async fn send(&self, frame: &[u8]) -> io::Result<()> {
        let _one_at_a_time = match self.wire {
            Wire::Stream => Some(self.sending.lock().await),
            Wire::Records => None,
        };
        let mut partial = Partial { io: self, sent: 0 };
        while partial.sent < frame.len() {
            let mut ready = self.fd.writable().await?;
            let rest = &frame[partial.sent..];
            match ready.try_io(|fd| send_some(fd.get_ref().as_fd(), rest, &[], Blocking::No)) {
                Ok(sent) => partial.sent += sent?,
                Err(_would_block) => continue,
            }
        }
        partial.sent = 0;
        Ok(())
    }

    /// Receives and decodes one message, with the descriptor rules applied;
    /// a frame read in part is kept in `frames` until the rest comes.
    async fn recv(
        &self,
        frames: &mut FrameReader,
    ) -> Result<(ServerMessage, Option<OwnedFd>), Error> {
        loop {
            let mut ready = self.fd.readable().await?;
            let got = ready.try_io(|fd| {
                match frames.recv(fd.get_ref().as_fd(), Blocking::No, |m: &ServerMessage| {
                    m.expects_fd()
                }) {
                    Err(SocketError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
                    other => Ok(other),
                }
            });
            match got {
                Ok(got) => return Ok(got??),
                Err(_would_block) => continue,
            }
        }
    }
}

/// A frame being sent: dropped with part of it out (the caller gave up),
/// it breaks the connection.
struct Partial<'a> {
    io: &'a Io,
    sent: usize,
}

impl Drop for Partial<'_> {
    fn drop(&mut self) {
        if self.sent > 0 {
            let halfway = io::Error::other("a request was abandoned halfway through its frame");
            self.io.fail(&Error::Io(halfway));
        }
    }
}

/// The reader task: hands each response to the request with its id until
/// the connection ends or breaks the protocol, then fails whatever is left.
async fn read_responses(io: Arc<Io>, mut frames: FrameReader) {
    let err = loop {
        let (answer, fd) = match io.recv(&mut frames).await {
            Ok(received) => received,
            Err(err) => break err,
        };
        match answer {
            ServerMessage::Response(Response { id, body }) => {
                let waiting = io.lock().pending.remove(&id);
                match waiting {
                    Some(waiting) => waiting.answer(Ok((body, fd))),
                    None => break ProtocolError::UnknownId { id }.into(),
                }
            }
            ServerMessage::Refused { reason } => break Error::Refused { reason },
            ServerMessage::Welcome { .. } => {
                break ProtocolError::Unexpected {
                    expected: "a response",
                    got: "a second welcome",
                }
                .into()
            }
        }
    };
    io.fail(&err);
}
