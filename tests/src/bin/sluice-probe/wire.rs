//! The broker on the raw wire (the `proto` crate, blocking): frames no
//! well-behaved client sends, and clients that vanish in the middle of a
//! request. The SDK never produces these, so they are built by hand here.
//!
//! What the probe can see from inside: the answers on its private connection
//! (a malformed frame gets `Response { id: u64::MAX, Error Malformed }` and
//! the connection keeps working), `Refused` for a bad handshake, and whether a
//! descriptor it handed the broker was closed (the other end of a socket pair
//! or pipe reads end of file). The shared socket never answers; that a normal
//! connection still works afterwards is what shows it survived.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use client_sdk::OpenOptions;
use proto::socket::{recv_message, send_record, seqpacket_pair, Blocking, RECV_BUF_LEN};
use proto::{
    frame, Access, ClientMessage, ErrorKind, Request, RequestBody, Response, ResponseBody,
    ServerMessage, PROTOCOL_VERSION,
};

use crate::{describe, usage, Fail, Step};

/// The id the broker answers undecodable frames with.
const NO_ID: u64 = u64::MAX;
/// Hang guard for one answer, and for a descriptor the broker must close.
/// Not a speed check: both happen within milliseconds when the broker works.
const PATIENCE: Duration = Duration::from_secs(30);

/// A setup step that failed: the probe could not do its job.
fn setup(what: &str, err: impl std::fmt::Display) -> Fail {
    usage(&format!("{what}: {err}"))
}

/// Our own close-on-exec copy of the inherited shared socket.
fn shared_socket() -> Result<OwnedFd, Fail> {
    let value = std::env::var("SLUICE_BROKER_FD")
        .map_err(|_| Fail::Error("SLUICE_BROKER_FD is not set: not under sluice".into()))?;
    let raw: i32 = value
        .parse()
        .map_err(|_| usage(&format!("SLUICE_BROKER_FD={value:?}")))?;
    // SAFETY: F_DUPFD_CLOEXEC takes an integer and touches no memory.
    let fd = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(setup(
            "dup SLUICE_BROKER_FD",
            describe(&io::Error::last_os_error()),
        ));
    }
    // SAFETY: fd was just created by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn encode(msg: &ClientMessage) -> Result<Vec<u8>, Fail> {
    frame::encode(msg).map_err(|e| setup("encode", e))
}

fn request(id: u64, body: RequestBody) -> ClientMessage {
    ClientMessage::Request(Request { id, body })
}

fn open_body(path: &[u8], access: Access, truncate: bool, directory: bool) -> RequestBody {
    RequestBody::Open {
        path: path.to_vec(),
        access,
        flags: proto::OpenFlags {
            truncate,
            directory,
            mode: 0o600,
            ..proto::OpenFlags::default()
        },
    }
}

/// Waits until `fd` is readable or hung up; false if nothing happened within
/// [`PATIENCE`].
fn wait_readable(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: poll reads and writes exactly the one pollfd it is given.
        let rc = unsafe { libc::poll(&mut pfd, 1, PATIENCE.as_millis() as libc::c_int) };
        if rc >= 0 {
            return Ok(rc > 0);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether the other end of `ours` was closed: reading it gives end of file.
/// (Nothing else is ever written to it.)
fn peer_closed(ours: &OwnedFd) -> io::Result<bool> {
    if !wait_readable(ours.as_fd())? {
        return Ok(false);
    }
    let mut byte = [0u8; 1];
    // SAFETY: reading at most one byte into a one-byte buffer.
    let n = unsafe { libc::read(ours.as_raw_fd(), byte.as_mut_ptr().cast(), 1) };
    Ok(n == 0)
}

fn stream_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = std::os::unix::net::UnixStream::pair()?;
    Ok((a.into(), b.into()))
}

/// A private connection spoken by hand.
struct Conn {
    sock: OwnedFd,
    buf: Vec<u8>,
    next_id: u64,
}

impl Conn {
    /// Sends `Connect` with a fresh socket end on the shared socket; no Hello yet.
    fn connect(shared: &OwnedFd) -> Result<Conn, Fail> {
        let (ours, theirs) = seqpacket_pair().map_err(|e| setup("socketpair", e))?;
        send_record(
            shared.as_fd(),
            &encode(&ClientMessage::Connect)?,
            &[theirs.as_fd()],
            Blocking::Yes,
        )
        .map_err(|e| setup("send Connect", describe(&e)))?;
        Ok(Conn {
            sock: ours,
            buf: vec![0; RECV_BUF_LEN],
            next_id: 1,
        })
    }

    /// `connect` and the handshake.
    fn open(shared: &OwnedFd) -> Result<Conn, Fail> {
        let mut conn = Conn::connect(shared)?;
        conn.send(&ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            client: "sluice-probe wire".into(),
        })?;
        match conn.recv()? {
            (ServerMessage::Welcome { .. }, None) => Ok(conn),
            other => Err(Fail::Error(format!(
                "handshake: expected Welcome, got {other:?}"
            ))),
        }
    }

    fn send(&self, msg: &ClientMessage) -> Result<(), Fail> {
        self.send_bytes(&encode(msg)?, &[])
    }

    fn send_bytes(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), Fail> {
        send_record(self.sock.as_fd(), bytes, fds, Blocking::Yes)
            .map_err(|e| Fail::Error(format!("send on the private connection: {}", describe(&e))))
    }

    /// The next message, within [`PATIENCE`].
    fn recv(&mut self) -> Result<(ServerMessage, Option<OwnedFd>), Fail> {
        let ready = wait_readable(self.sock.as_fd()).map_err(|e| setup("poll", e))?;
        if !ready {
            return Err(Fail::Failed(format!(
                "no answer from the broker within {PATIENCE:?}"
            )));
        }
        recv_message(
            self.sock.as_fd(),
            &mut self.buf,
            Blocking::Yes,
            |m: &ServerMessage| m.expects_fd(),
        )
        .map_err(|e| Fail::Error(format!("receive: {e}")))
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A ping with a fresh id must come back as a pong with that id.
    fn ping(&mut self) -> Result<(), String> {
        let id = self.id();
        self.send(&request(id, RequestBody::Ping))
            .map_err(Fail::into_message)?;
        match self.recv().map_err(Fail::into_message)? {
            (
                ServerMessage::Response(Response {
                    id: got,
                    body: ResponseBody::Pong,
                }),
                None,
            ) if got == id => Ok(()),
            other => Err(format!("ping {id}: got {other:?}")),
        }
    }

    /// Opens `path` read-only; the descriptor must come with `Opened`.
    fn open_file(&mut self, path: &str) -> Result<OwnedFd, String> {
        let id = self.id();
        let body = open_body(path.as_bytes(), Access::Read, false, false);
        self.send(&request(id, body)).map_err(Fail::into_message)?;
        match self.recv().map_err(Fail::into_message)? {
            (
                ServerMessage::Response(Response {
                    id: got,
                    body: ResponseBody::Opened,
                }),
                Some(fd),
            ) if got == id => Ok(fd),
            other => Err(format!("open {path}: got {other:?}")),
        }
    }
}

/// The checks of `broker-garbage`, with what went wrong in each.
struct Checks {
    passed: usize,
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => self.passed += 1,
            Err(why) => self.failed.push(format!("{name}: {why}")),
        }
    }
}

/// The answer to an undecodable frame: an `Error Malformed` with id `u64::MAX`.
fn expect_malformed(conn: &mut Conn) -> Result<(), String> {
    match conn.recv().map_err(Fail::into_message)? {
        (
            ServerMessage::Response(Response {
                id: NO_ID,
                body:
                    ResponseBody::Error {
                        kind: ErrorKind::Malformed,
                        ..
                    },
            }),
            None,
        ) => Ok(()),
        other => Err(format!(
            "expected Error Malformed with id u64::MAX, got {other:?}"
        )),
    }
}

/// The answer to request `id`: an `Error` of `kind`.
fn expect_error(conn: &mut Conn, id: u64, kind: ErrorKind) -> Result<(), String> {
    match conn.recv().map_err(Fail::into_message)? {
        (
            ServerMessage::Response(Response {
                id: got,
                body: ResponseBody::Error { kind: k, .. },
            }),
            None,
        ) if got == id && k == kind => Ok(()),
        other => Err(format!(
            "expected Error {kind:?} for request {id}, got {other:?}"
        )),
    }
}

/// Sends `bytes` with each of `sent` attached, drops our copies of them, and
/// checks the broker closed every one (their peers in `kept` read EOF).
fn hand_over(
    send: impl FnOnce(&[BorrowedFd<'_>]) -> Result<(), String>,
    pairs: Vec<(OwnedFd, OwnedFd)>,
) -> Result<(), String> {
    let (kept, sent): (Vec<OwnedFd>, Vec<OwnedFd>) = pairs.into_iter().unzip();
    let borrowed: Vec<BorrowedFd<'_>> = sent.iter().map(|f| f.as_fd()).collect();
    send(&borrowed)?;
    drop(borrowed);
    drop(sent);
    for (i, end) in kept.iter().enumerate() {
        match peer_closed(end) {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "descriptor {i} handed to the broker was not closed within {PATIENCE:?}"
                ))
            }
            Err(e) => return Err(format!("watching descriptor {i}: {}", describe(&e))),
        }
    }
    Ok(())
}

/// Descriptor pairs: the first end is kept, the second handed over.
type Pairs = Result<Vec<(OwnedFd, OwnedFd)>, String>;
/// Makes the pairs for one check.
type MakePairs = Box<dyn Fn() -> Pairs>;

fn seqpackets(n: usize) -> Pairs {
    (0..n)
        .map(|_| seqpacket_pair().map_err(|e| format!("socketpair: {e}")))
        .collect()
}

/// A frame header declaring `len` payload bytes, followed by `payload`.
fn raw_frame(len: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = len.to_le_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

/// `broker-garbage PATH`: malformed frames on a private connection, on the
/// handshake and on the shared socket, each followed by proof that the
/// broker still serves (a ping on the same connection; at the end, PATH,
/// which must be allowed, opened on the old connection and on a new one).
pub(crate) fn garbage(path: &str) -> Step {
    let shared = shared_socket()?;
    let mut conn = Conn::open(&shared)?;
    let mut checks = Checks {
        passed: 0,
        failed: Vec::new(),
    };
    let ping = encode(&request(0, RequestBody::Ping))?;
    let oversize = vec![0xa5u8; RECV_BUF_LEN + 4096];
    let mut trailing = ping.clone();
    trailing.extend_from_slice(b"extra");
    trailing[..4].copy_from_slice(&((ping.len() - 4 + 5) as u32).to_le_bytes());

    // Undecodable frames on a private connection: each is answered Malformed
    // with id u64::MAX, and the connection goes on.
    let undecodable: [(&str, Vec<u8>); 6] = [
        (
            "bytes that are no frame",
            b"\xde\xad\xbe\xef\xff\xff garbage".to_vec(),
        ),
        ("a length over the maximum", raw_frame(u32::MAX - 7, b"abc")),
        (
            "a frame shorter than its header says",
            raw_frame(100, b"0123456789"),
        ),
        ("bytes after the message in its frame", trailing),
        ("an unknown message variant", raw_frame(1, &[0x7f])),
        ("a record larger than any frame", oversize.clone()),
    ];
    for (name, bytes) in undecodable {
        let result = conn
            .send_bytes(&bytes, &[])
            .map_err(Fail::into_message)
            .and_then(|()| expect_malformed(&mut conn))
            .and_then(|()| conn.ping());
        checks.check(&format!("private connection, {name}"), result);
    }

    // Frames that decode but do not belong on a private connection.
    let hello = encode(&ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        client: "again".into(),
    })?;
    let result = conn
        .send_bytes(&hello, &[])
        .map_err(Fail::into_message)
        .and_then(|()| expect_malformed(&mut conn))
        .and_then(|()| conn.ping());
    checks.check("private connection, Hello after the handshake", result);

    // Descriptors where none belongs: refused, and closed by the broker.
    let connect = encode(&ClientMessage::Connect)?;
    for (name, bytes, count) in [
        ("a request with a descriptor attached", ping.clone(), 1),
        ("a request with three descriptors attached", ping.clone(), 3),
        (
            "a request with more descriptors than the broker makes room for",
            ping.clone(),
            8,
        ),
        ("Connect on a private connection", connect.clone(), 1),
        (
            "a record larger than any frame, with a descriptor",
            oversize.clone(),
            1,
        ),
    ] {
        let result = seqpackets(count).and_then(|pairs| {
            hand_over(
                |fds| {
                    conn.send_bytes(&bytes, fds).map_err(Fail::into_message)?;
                    expect_malformed(&mut conn)
                },
                pairs,
            )
        });
        let result = result.and_then(|()| conn.ping());
        checks.check(&format!("private connection, {name}"), result);
    }

    // Requests that decode but make no sense: an error for that request.
    for (name, body, kind) in [
        (
            "an empty path",
            open_body(b"", Access::Read, false, false),
            ErrorKind::Malformed,
        ),
        (
            "a path with a NUL byte",
            open_body(b"/etc/\0passwd", Access::Read, false, false),
            ErrorKind::Malformed,
        ),
        (
            "truncate without write access",
            open_body(path.as_bytes(), Access::Read, true, false),
            ErrorKind::Malformed,
        ),
        (
            "a directory opened for writing",
            open_body(b"/tmp", Access::Write, false, true),
            ErrorKind::Malformed,
        ),
    ] {
        let id = conn.id();
        let result = conn
            .send(&request(id, body))
            .map_err(Fail::into_message)
            .and_then(|()| expect_error(&mut conn, id, kind))
            .and_then(|()| conn.ping());
        checks.check(&format!("private connection, {name}"), result);
    }

    // A bad handshake is refused and the connection closed.
    let bad_hellos: [(&str, Vec<u8>); 3] = [
        ("garbage", b"\x01\x00\x00\x00\xff".to_vec()),
        ("a request", ping.clone()),
        (
            "another protocol version",
            encode(&ClientMessage::Hello {
                protocol: PROTOCOL_VERSION + 1000,
                client: "future".into(),
            })?,
        ),
    ];
    for (name, first) in bad_hellos {
        let result = Conn::connect(&shared)
            .map_err(Fail::into_message)
            .and_then(|mut fresh| {
                fresh.send_bytes(&first, &[]).map_err(Fail::into_message)?;
                match fresh.recv().map_err(Fail::into_message)? {
                    (ServerMessage::Refused { .. }, None) => {}
                    other => return Err(format!("expected Refused, got {other:?}")),
                }
                match peer_closed(&fresh.sock) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err("the refused connection was not closed".into()),
                    Err(e) => Err(describe(&e)),
                }
            });
        checks.check(&format!("handshake, {name}"), result);
    }

    // The shared socket takes only Connect with one seqpacket socket; it
    // never answers, and closes whatever descriptors it refuses.
    let send_shared = |bytes: &[u8], fds: &[BorrowedFd<'_>]| {
        send_record(shared.as_fd(), bytes, fds, Blocking::Yes)
            .map_err(|e| format!("send on the shared socket: {}", describe(&e)))
    };
    for (name, bytes) in [
        ("garbage", b"\xde\xad\xbe\xef".to_vec()),
        ("Connect without a descriptor", connect.clone()),
        ("a request", ping.clone()),
        ("a Hello", hello.clone()),
        ("a record larger than any frame", oversize.clone()),
    ] {
        checks.check(&format!("shared socket, {name}"), send_shared(&bytes, &[]));
    }
    let refused_fds: [(&str, Vec<u8>, MakePairs); 6] = [
        (
            "Connect with two sockets",
            connect.clone(),
            Box::new(|| seqpackets(2)),
        ),
        (
            "Connect with more sockets than the broker makes room for",
            connect.clone(),
            Box::new(|| seqpackets(8)),
        ),
        (
            "Connect with a pipe",
            connect.clone(),
            Box::new(|| {
                // The write end goes; the read end sees EOF once it is closed.
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                    .map(|(r, w)| vec![(r, w)])
                    .map_err(|e| e.to_string())
            }),
        ),
        (
            "Connect with a stream socket",
            connect.clone(),
            Box::new(|| stream_pair().map(|p| vec![p]).map_err(|e| e.to_string())),
        ),
        (
            "garbage with a socket",
            b"\xde\xad\xbe\xef".to_vec(),
            Box::new(|| seqpackets(1)),
        ),
        (
            "a record larger than any frame, with a socket",
            oversize,
            Box::new(|| seqpackets(1)),
        ),
    ];
    for (name, bytes, make) in refused_fds {
        let result = make().and_then(|pairs| hand_over(|fds| send_shared(&bytes, fds), pairs));
        checks.check(&format!("shared socket, {name}"), result);
    }

    // After all that, the broker serves PATH on the old connection and on a new one.
    checks.check(
        "the first connection still serves",
        conn.open_file(path).map(drop),
    );
    let fresh = client_sdk::Client::from_env()
        .map_err(|e| e.to_string())
        .and_then(|mut client| {
            client
                .open(path, OpenOptions::new().read(true))
                .map(drop)
                .map_err(|e| e.to_string())
        });
    checks.check("a new connection is served", fresh);

    if checks.failed.is_empty() {
        Ok(format!("garbage checks={} failed=0", checks.passed))
    } else {
        Err(Fail::Failed(format!(
            "garbage checks={} failed={}: {}",
            checks.passed + checks.failed.len(),
            checks.failed.len(),
            checks.failed.join("; ")
        )))
    }
}

/// The last thing a vanishing client sends before it exits.
#[derive(Clone, Copy)]
enum Vanish {
    Connect,
    Hello,
    OneRequest,
    ManyRequests,
}

const VANISH: [Vanish; 4] = [
    Vanish::Connect,
    Vanish::Hello,
    Vanish::OneRequest,
    Vanish::ManyRequests,
];

/// The forked child: its own connection, as far as `how` says, then
/// `_exit` without reading anything.
fn vanish(shared: &OwnedFd, path: &str, how: Vanish) -> i32 {
    let Ok(conn) = Conn::connect(shared) else {
        return 10;
    };
    if matches!(how, Vanish::Connect) {
        return 0;
    }
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        client: "vanishing".into(),
    };
    if conn.send(&hello).is_err() {
        return 11;
    }
    let count = match how {
        Vanish::Connect | Vanish::Hello => 0,
        Vanish::OneRequest => 1,
        Vanish::ManyRequests => 32,
    };
    for id in 1..=count {
        let body = open_body(path.as_bytes(), Access::Read, false, false);
        if conn.send(&request(id, body)).is_err() {
            return 12;
        }
    }
    0
}

/// `broker-die-mid-request PATH N`: N times, fork a child that opens its own
/// connection and exits without reading its answers (after Connect, after
/// Hello, after one request for PATH, after 32 of them, in turn); then PATH,
/// which must be allowed, is asked for on a new connection and served.
pub(crate) fn die_mid_request(path: &str, n: u64) -> Step {
    let shared = shared_socket()?;
    for i in 0..n {
        let how = VANISH[(i % VANISH.len() as u64) as usize];
        // SAFETY: the probe is single-threaded here; the child only encodes
        // and sends a few frames, then leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(setup("fork", describe(&io::Error::last_os_error())));
        }
        if pid == 0 {
            let code = vanish(&shared, path, how);
            // SAFETY: leaving the forked child without running destructors
            // or flushing the parent's buffers.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child; status is a valid out-pointer.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            return Err(setup("waitpid", describe(&io::Error::last_os_error())));
        }
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            return Err(setup(
                "a vanishing child",
                format!("wait status {status:#x}"),
            ));
        }
    }
    let mut client = client_sdk::Client::from_env()
        .map_err(|e| Fail::Error(format!("connect after {n} vanished clients: {e}")))?;
    let mut file = client
        .open(path, OpenOptions::new().read(true))
        .map_err(|e| Fail::Error(format!("open {path} after {n} vanished clients: {e}")))?;
    let mut data = Vec::new();
    io::Read::read_to_end(&mut file, &mut data)
        .map_err(|e| Fail::Error(format!("read {path}: {}", describe(&e))))?;
    Ok(format!(
        "die-mid-request children={n}; then {path} served: {}",
        crate::preview(&data)
    ))
}
