//! An in-process broker that speaks the protocol from a thread, for tests.
//!
//! It answers by path, so one fake serves every test:
//!
//! | path | Open | Query |
//! |---|---|---|
//! | contains `denied` | `Denied` (rule `deny-secrets`) | same |
//! | contains `ask` | opens | `WouldAsk` (rule `ask-home`) |
//! | `/fake/missing` | `Error NotFound` | same |
//! | `/fake/busy` | `Error TooManyRequests` | same |
//! | `/fake/garbage` | a record that is not a frame | same |
//! | `/fake/fd-with-denied` | `Denied` with the planted descriptor attached | same |
//! | `/fake/wrong-id` | a `Pong` for another id | same |
//! | `/fake/pong` | a `Pong` for this id | same |
//! | `/fake/hold` | never answered | same |
//! | `/fake/hangup` | the connection is closed | same |
//! | anything else | opens the real file as asked | `Allowed`, rule = the path |

#![allow(dead_code)]

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use proto::socket::{send_frame, send_message, Blocking, FrameReader, SocketError, Wire};
use proto::{
    ClientMessage, ErrorKind, PolicySummary, Request, RequestBody, Response, ResponseBody,
    ServerMessage, PROTOCOL_VERSION,
};

pub const SESSION: &str = "fake-session-1";

#[derive(Debug, Clone)]
pub struct Config {
    /// The only protocol version the fake accepts.
    pub version: u32,
    /// Gather up to this many requests (waiting up to `gather` for each
    /// next one) and answer them in reverse order.
    pub reorder_batch: Option<usize>,
    pub gather: Duration,
    /// Close every private connection right after it arrives.
    pub drop_connections: bool,
    /// How frames travel: records (Linux) or the macOS stream wire, tested
    /// here on Linux.
    pub wire: Wire,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: PROTOCOL_VERSION,
            reorder_batch: None,
            gather: Duration::from_millis(50),
            drop_connections: false,
            wire: crate::WIRE,
        }
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicUsize,
    pub requests: AtomicUsize,
    pub held: AtomicUsize,
    /// Batches answered in another order than they came.
    pub reordered: AtomicUsize,
    /// Names from the clients' `Hello`.
    pub names: Mutex<Vec<String>>,
    /// A copy of every private connection, for `hang_up`.
    conns: Mutex<Vec<OwnedFd>>,
}

pub struct FakeBroker {
    /// The end a sandboxed program would inherit as `SLUICE_BROKER_FD`.
    pub shared: OwnedFd,
    pub stats: Arc<Stats>,
    planted: Arc<Mutex<Option<OwnedFd>>>,
    /// Dropped with the broker; until then, a clock that ends the process.
    _watchdog: mpsc::Sender<()>,
}

/// No test may hang: a test still holding its broker after this long ends
/// the whole test process with a failure.
const WATCHDOG: Duration = Duration::from_secs(60);

fn watchdog() -> mpsc::Sender<()> {
    let (alive, done) = mpsc::channel::<()>();
    let test = thread::current().name().unwrap_or("?").to_owned();
    thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(WATCHDOG) {
            eprintln!("test '{test}' hung for {WATCHDOG:?}; aborting");
            std::process::abort();
        }
    });
    alive
}

impl FakeBroker {
    pub fn start() -> FakeBroker {
        FakeBroker::with(Config::default())
    }

    pub fn with(config: Config) -> FakeBroker {
        let (shared, server) = config.wire.shared_pair().unwrap();
        let stats = Arc::new(Stats::default());
        let planted = Arc::new(Mutex::new(None));
        let (st, pl) = (Arc::clone(&stats), Arc::clone(&planted));
        thread::spawn(move || accept_loop(server, config, st, pl));
        FakeBroker {
            shared,
            stats,
            planted,
            _watchdog: watchdog(),
        }
    }

    pub fn shared(&self) -> BorrowedFd<'_> {
        self.shared.as_fd()
    }

    /// The descriptor `/fake/fd-with-denied` sends (once).
    pub fn plant(&self, fd: OwnedFd) {
        *self.planted.lock().unwrap() = Some(fd);
    }

    /// Shuts every private connection down, as a broker that goes away.
    pub fn hang_up(&self) {
        for conn in self.stats.conns.lock().unwrap().drain(..) {
            shut(conn.as_fd());
        }
    }

    /// Waits until `n` requests are being held.
    pub fn wait_held(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.stats.held.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "requests never arrived");
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The shared socket: takes `Connect` frames only, answers nothing.
fn accept_loop(
    server: OwnedFd,
    config: Config,
    stats: Arc<Stats>,
    planted: Arc<Mutex<Option<OwnedFd>>>,
) {
    let config = Arc::new(config);
    // One datagram or record per frame on the shared socket, either wire.
    let mut frames = FrameReader::new(Wire::Records);
    loop {
        match frames.recv(server.as_fd(), Blocking::Yes, |m: &ClientMessage| {
            m.expects_fd()
        }) {
            Ok((ClientMessage::Connect, Some(conn))) => {
                stats.connections.fetch_add(1, Ordering::SeqCst);
                if config.drop_connections {
                    continue;
                }
                stats.conns.lock().unwrap().push(conn.try_clone().unwrap());
                let (config, stats, planted) = (
                    Arc::clone(&config),
                    Arc::clone(&stats),
                    Arc::clone(&planted),
                );
                thread::spawn(move || serve(conn, &config, &stats, &planted));
            }
            Ok(_) => panic!("the shared socket takes Connect only"),
            Err(SocketError::Closed) => return,
            Err(e) => panic!("shared socket: {e}"),
        }
    }
}

fn serve(conn: OwnedFd, config: &Config, stats: &Stats, planted: &Mutex<Option<OwnedFd>>) {
    // The suite runs on the wire it names.
    let (_, kind) = proto::socket::domain_and_type(conn.as_fd()).unwrap();
    assert_eq!(kind, config.wire.private_type(), "{:?}", config.wire);
    let mut frames = FrameReader::new(config.wire);
    let Ok((hello, _)) = frames.recv(conn.as_fd(), Blocking::Yes, |_: &ClientMessage| false) else {
        return;
    };
    let ClientMessage::Hello { protocol, client } = hello else {
        panic!("first frame must be Hello, got {hello:?}");
    };
    stats.names.lock().unwrap().push(client);
    if protocol != config.version {
        let refused = ServerMessage::Refused {
            reason: format!("protocol {protocol} is not {}", config.version),
        };
        send_message(conn.as_fd(), &refused, None, Blocking::Yes).unwrap();
        return;
    }
    let welcome = ServerMessage::Welcome {
        session: SESSION.into(),
        policy: PolicySummary {
            name: "fake".into(),
            broker_rules: 3,
        },
    };
    send_message(conn.as_fd(), &welcome, None, Blocking::Yes).unwrap();
    let mut held = Vec::new();
    while let Some(mut batch) = next_batch(conn.as_fd(), &mut frames, config) {
        stats.requests.fetch_add(batch.len(), Ordering::SeqCst);
        if batch.len() > 1 {
            batch.make_contiguous().reverse();
            stats.reordered.fetch_add(1, Ordering::SeqCst);
        }
        for request in batch {
            match answer(request, planted) {
                Action::Send(msg, fd) => {
                    let sent = send_message(
                        conn.as_fd(),
                        &msg,
                        fd.as_ref().map(|f| f.as_fd()),
                        Blocking::Yes,
                    );
                    if sent.is_err() {
                        return; // the client went away
                    }
                }
                Action::Garbage => {
                    send_frame(
                        conn.as_fd(),
                        b"\x03\x00\x00\x00\xff\xff\xff",
                        None,
                        Blocking::Yes,
                    )
                    .unwrap();
                }
                Action::Hold(id) => {
                    held.push(id);
                    stats.held.fetch_add(1, Ordering::SeqCst);
                }
                Action::Hangup => {
                    // `hang_up` holds a copy: dropping ours would not do.
                    shut(conn.as_fd());
                    return;
                }
            }
        }
    }
}

/// The next request, or (when reordering) as many as arrive in a row.
fn next_batch(
    conn: BorrowedFd<'_>,
    frames: &mut FrameReader,
    config: &Config,
) -> Option<VecDeque<Request>> {
    let mut batch = VecDeque::new();
    batch.push_back(next_request(conn, frames)?);
    if let Some(max) = config.reorder_batch {
        while batch.len() < max && readable_within(conn, config.gather) {
            match next_request(conn, frames) {
                Some(request) => batch.push_back(request),
                None => break,
            }
        }
    }
    Some(batch)
}

fn next_request(conn: BorrowedFd<'_>, frames: &mut FrameReader) -> Option<Request> {
    match frames.recv(conn, Blocking::Yes, |_: &ClientMessage| false) {
        Ok((ClientMessage::Request(request), _)) => Some(request),
        Ok((other, _)) => panic!("expected a request, got {other:?}"),
        Err(SocketError::Closed) => None,
        Err(e) => panic!("private connection: {e}"),
    }
}

fn shut(conn: BorrowedFd<'_>) {
    // SAFETY: shutdown takes an integer and a flag only.
    let rc = unsafe { libc::shutdown(conn.as_raw_fd(), libc::SHUT_RDWR) };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
}

fn readable_within(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll reads and writes exactly the one pollfd it is given.
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
    rc > 0
}

enum Action {
    Send(ServerMessage, Option<OwnedFd>),
    Garbage,
    Hold(u64),
    Hangup,
}

fn answer(request: Request, planted: &Mutex<Option<OwnedFd>>) -> Action {
    let id = request.id;
    let reply = |body| Action::Send(ServerMessage::Response(Response { id, body }), None);
    let path = match &request.body {
        RequestBody::Ping => return reply(ResponseBody::Pong),
        RequestBody::Open { path, .. } | RequestBody::Query { path, .. } => {
            String::from_utf8_lossy(path).into_owned()
        }
    };
    match path.as_str() {
        "/fake/missing" => {
            return reply(ResponseBody::Error {
                kind: ErrorKind::NotFound,
                message: "no such file".into(),
            })
        }
        "/fake/busy" => {
            return reply(ResponseBody::Error {
                kind: ErrorKind::TooManyRequests,
                message: "slow down".into(),
            })
        }
        "/fake/garbage" => return Action::Garbage,
        "/fake/fd-with-denied" => {
            let fd = planted.lock().unwrap().take().expect("nothing planted");
            return Action::Send(
                ServerMessage::Response(Response { id, body: denied() }),
                Some(fd),
            );
        }
        "/fake/wrong-id" => {
            return Action::Send(
                ServerMessage::Response(Response {
                    id: id + 1000,
                    body: ResponseBody::Pong,
                }),
                None,
            )
        }
        "/fake/pong" => return reply(ResponseBody::Pong),
        "/fake/hold" => return Action::Hold(id),
        "/fake/hangup" => return Action::Hangup,
        _ => {}
    }
    if path.contains("denied") {
        return reply(denied());
    }
    match request.body {
        RequestBody::Query { .. } if path.contains("ask") => reply(ResponseBody::WouldAsk {
            rule: Some("ask-home".into()),
        }),
        RequestBody::Query { .. } => reply(ResponseBody::Allowed { rule: Some(path) }),
        RequestBody::Open {
            path,
            access,
            flags,
        } => {
            let path = Path::new(std::ffi::OsStr::from_bytes(&path));
            let mut opts = fs::OpenOptions::new();
            opts.read(access.wants_read())
                .write(access.wants_write())
                .append(flags.append)
                .truncate(flags.truncate)
                .create(flags.create)
                .mode(flags.mode);
            if flags.directory {
                opts.custom_flags(libc::O_DIRECTORY);
            }
            match opts.open(path) {
                Ok(file) => Action::Send(
                    ServerMessage::Response(Response {
                        id,
                        body: ResponseBody::Opened,
                    }),
                    Some(file.into()),
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => reply(ResponseBody::Error {
                    kind: ErrorKind::NotFound,
                    message: e.to_string(),
                }),
                Err(e) => reply(ResponseBody::Error {
                    kind: ErrorKind::Io,
                    message: e.to_string(),
                }),
            }
        }
        RequestBody::Ping => unreachable!(),
    }
}

fn denied() -> ResponseBody {
    ResponseBody::Denied {
        reason: "the fake policy says no".into(),
        rule: Some("deny-secrets".into()),
    }
}

/// A fresh path under the temporary directory (not created).
pub fn temp_path(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("client-sdk-test-{}-{tag}-{n}", std::process::id()))
}

/// A descriptor to hand over, and its peer, which sees end of file once
/// every copy of the descriptor is closed.
pub fn probe() -> (OwnedFd, std::os::unix::net::UnixStream) {
    let (ours, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (ours.into(), peer)
}

/// Whether the peer of a probe sees end of file (every copy closed).
pub fn probe_closed(peer: &mut std::os::unix::net::UnixStream) -> bool {
    use std::io::Read;
    let mut byte = [0u8; 1];
    matches!(peer.read(&mut byte), Ok(0))
}

pub fn fd_flags(fd: BorrowedFd<'_>) -> libc::c_int {
    // SAFETY: F_GETFD reads descriptor flags only.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert!(flags >= 0);
    flags
}
