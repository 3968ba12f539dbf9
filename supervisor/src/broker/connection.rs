//! One private connection: the handshake, then requests read in a loop and
//! served each in its own task, answered as they finish.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use proto::socket::{self, send_some, Blocking, FrameReader, SocketError, Wire};
use proto::{
    ClientMessage, ErrorKind, PolicySummary, Request, Response, ResponseBody, ServerMessage,
    PROTOCOL_VERSION,
};
use tokio::io::unix::AsyncFd;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handler::{self, Requester};
use super::peer::Peer;
use super::{Shared, MAX_IN_FLIGHT_PER_CONNECTION};
#[cfg(target_os = "linux")]
use crate::audit::{Access, By, Decision, DecisionRecord, Op, Via};

/// The id of an error response to a frame that could not be decoded (and so
/// has no id of its own).
pub const NO_ID: u64 = u64::MAX;
/// How long a new connection may take to say `Hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Undecodable frames tolerated on one connection before it is closed.
const MAX_MALFORMED: u32 = 64;

type Sock = Arc<Conn>;

/// One private connection: its socket, its wire, and on a stream the
/// lock that keeps answers from different tasks from interleaving.
struct Conn {
    fd: AsyncFd<OwnedFd>,
    wire: Wire,
    /// Held while a frame is being sent on a stream ([`Wire::Stream`]): a
    /// frame may go out in several writes, and no other frame may come in
    /// between. Records are sent whole, unlocked.
    sending: tokio::sync::Mutex<()>,
}

/// Sends `Refused` on a connection that will not be served, without
/// waiting (a full socket just loses the courtesy), and closes it.
pub fn refuse(sock: OwnedFd, reason: &str) {
    let msg = ServerMessage::Refused {
        reason: reason.to_owned(),
    };
    let _ = socket::send_message(sock.as_fd(), &msg, None, Blocking::No);
}

/// Serves connection `sock`, a private connection of `wire` (a unix
/// `SOCK_SEQPACKET` socket for [`Wire::Records`], `SOCK_STREAM` for
/// [`Wire::Stream`], as checked by the accept loop).
pub async fn run(
    sock: OwnedFd,
    wire: Wire,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let peer = match Peer::of(sock.as_fd()) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            tracing::debug!("broker: no credentials for a connection: {e}");
            return;
        }
    };
    // A process inside a sandbox the program started (a stacked sluice's
    // program holds its own broker's socket, but another sandbox may pass
    // this one on): whatever this broker served would carry past that
    // sandbox's rules. Refused in answer to its Hello.
    let stacked = shared
        .filters_at_exec
        .is_some_and(|at_exec| peer.is_stacked(at_exec));
    if stacked {
        tracing::info!(
            pid = peer.pid,
            "broker: a connection from inside a stacked sandbox refused"
        );
    }
    let sock: Sock = match super::watch(sock) {
        Ok(fd) => Arc::new(Conn {
            fd,
            wire,
            sending: tokio::sync::Mutex::new(()),
        }),
        Err(e) => {
            tracing::warn!("broker: cannot watch a connection: {e}");
            return;
        }
    };
    let mut buf = FrameReader::new(wire);
    let client = tokio::select! {
        _ = shutdown.cancelled() => return,
        hello = tokio::time::timeout(HELLO_TIMEOUT, handshake(&sock, &shared, &mut buf, stacked)) => {
            match hello {
                Ok(Some(client)) => Arc::<str>::from(client),
                Ok(None) => return,
                Err(_) => {
                    let _ = send(&sock, &refused("no Hello within 10 seconds"), None).await;
                    return;
                }
            }
        }
    };
    tracing::debug!(pid = peer.pid, uid = peer.uid, client = %client, "broker: connection");
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONNECTION));
    let mut malformed = 0;
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = recv(&sock, &mut buf) => r,
        };
        let req = match received {
            Ok((ClientMessage::Request(req), _)) => req,
            Ok((ClientMessage::Stacked(stacked), ruleset)) => {
                let body = register_stacked(&shared, &peer, &client, &stacked, ruleset);
                if send(&sock, &response(stacked.id, body), None)
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            Ok((other, _)) => {
                let what = match other {
                    ClientMessage::Hello { .. } => "Hello after the handshake",
                    _ => "Connect on a private connection",
                };
                if reply_malformed(&sock, NO_ID, what, &mut malformed).await {
                    return;
                }
                continue;
            }
            Err(SocketError::Closed) => return,
            Err(SocketError::Io(e)) => {
                tracing::debug!(pid = peer.pid, "broker: connection failed: {e}");
                return;
            }
            Err(e @ (SocketError::Frame(_) | SocketError::Fd(_))) => {
                if reply_malformed(&sock, NO_ID, &e.to_string(), &mut malformed).await {
                    return;
                }
                continue;
            }
        };
        // Past its own bound a connection is told to slow down (the SDK
        // stays well below it); the bound over all connections instead
        // makes this connection wait, so well-behaved clients are never
        // refused because of others.
        let Ok(mine) = in_flight.clone().try_acquire_owned() else {
            let busy = response(
                req.id,
                ResponseBody::Error {
                    kind: ErrorKind::TooManyRequests,
                    message: "too many requests in flight; wait for answers".into(),
                },
            );
            if send(&sock, &busy, None).await.is_err() {
                return;
            }
            continue;
        };
        let all = tokio::select! {
            _ = shutdown.cancelled() => return,
            permit = shared.in_flight.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_closed) => return,
            },
        };
        let (sock, shared, peer, client) =
            (sock.clone(), shared.clone(), peer.clone(), client.clone());
        tracker.spawn(async move {
            serve_request(&sock, &shared, &peer, &client, req).await;
            drop((mine, all));
        });
    }
}

/// A stacked sluice's registration where nothing stacks (macOS: no
/// guard, no Landlock ruleset to make writes under): refused, and the
/// ruleset descriptor, if one came, closed.
#[cfg(not(target_os = "linux"))]
fn register_stacked(
    _shared: &Shared,
    peer: &Peer,
    _client: &str,
    _stacked: &proto::StackedSandbox,
    ruleset: Option<OwnedFd>,
) -> ResponseBody {
    drop(ruleset);
    tracing::info!(
        pid = peer.pid,
        "broker: a stacked sandbox's registration refused"
    );
    ResponseBody::Denied {
        reason: "this session does not guard its program's writes: nothing stacks on macOS"
            .to_owned(),
        rule: None,
    }
}

/// Registers a stacked sluice's sandbox with the guard, records it when
/// this session guards, and answers.
#[cfg(target_os = "linux")]
fn register_stacked(
    shared: &Shared,
    peer: &Peer,
    client: &str,
    stacked: &proto::StackedSandbox,
    ruleset: Option<OwnedFd>,
) -> ResponseBody {
    let started = std::time::Instant::now();
    let registered = shared.stacked.register(peer, &stacked.protect, ruleset);
    tracing::info!(
        pid = peer.pid,
        ?registered,
        "broker: a stacked sandbox's registration"
    );
    if shared.stacked.guards() {
        let (decision, reason) = match &registered {
            Ok(()) => (
                Decision::Allowed,
                "its program's writes are made in its sandbox".to_owned(),
            ),
            // Not a policy refusal: no flag lifts it.
            Err(why) => (Decision::Error, why.clone()),
        };
        let record = DecisionRecord {
            pid: peer.pid as u32,
            exe: peer.exe.clone(),
            client: client.to_owned(),
            via: Via::Sdk,
            request_id: stacked.id,
            op: Op::RegisterStacked,
            path_asked: peer.exe.clone().unwrap_or_default(),
            path_opened: None,
            access: Access::Write,
            flags: proto::OpenFlags::default(),
            decision,
            by: By::Rule,
            rule: None,
            reason: Some(reason),
            latency_us: started.elapsed().as_micros() as u64,
        };
        // The answer stands without its record (`record` says why).
        let _ = shared.record(&record);
    }
    match registered {
        Ok(()) => ResponseBody::Allowed { rule: None },
        Err(reason) => ResponseBody::Denied { reason, rule: None },
    }
}

async fn serve_request(sock: &Sock, shared: &Shared, peer: &Peer, client: &str, req: Request) {
    let who = Requester { peer, client };
    let handled = handler::handle(shared, &who, &req).await;
    let msg = response(req.id, handled.body);
    if let Err(e) = send(sock, &msg, handled.fd.as_ref().map(|f| f.as_fd())).await {
        tracing::debug!(pid = peer.pid, "broker: answer not delivered: {e}");
    }
    // handled.fd, our copy of the descriptor, closes here.
}

/// Waits for `Hello` and answers it. Returns the client's name, or `None`
/// when the connection is to be closed.
async fn handshake(
    sock: &Sock,
    shared: &Shared,
    buf: &mut FrameReader,
    stacked: bool,
) -> Option<String> {
    let reply = match recv(sock, buf).await {
        Ok((ClientMessage::Hello { .. }, _)) if stacked => refused(
            "this process is inside a sandbox of its own, within the session's: \
             ask that sandbox's broker",
        ),
        Ok((
            ClientMessage::Hello {
                protocol: PROTOCOL_VERSION,
                client,
            },
            _,
        )) => {
            let welcome = ServerMessage::Welcome {
                session: shared.session.clone(),
                policy: PolicySummary {
                    name: shared.policy.name.clone(),
                    broker_rules: u32::try_from(shared.policy.broker.len()).unwrap_or(u32::MAX),
                },
            };
            return send(sock, &welcome, None).await.ok().map(|()| client);
        }
        Ok((ClientMessage::Hello { protocol, .. }, _)) => refused(&format!(
            "unsupported protocol version {protocol}: this sluice speaks version {PROTOCOL_VERSION}"
        )),
        Ok(_) => refused("the first frame on a connection must be Hello"),
        Err(SocketError::Closed | SocketError::Io(_)) => return None,
        Err(e) => refused(&format!("bad Hello: {e}")),
    };
    let _ = send(sock, &reply, None).await;
    None
}

/// Answers an undecodable or out-of-place frame; true when the connection
/// has sent too many of them and is to be closed.
async fn reply_malformed(sock: &Sock, id: u64, what: &str, count: &mut u32) -> bool {
    *count += 1;
    let msg = response(
        id,
        ResponseBody::Error {
            kind: ErrorKind::Malformed,
            message: what.to_owned(),
        },
    );
    send(sock, &msg, None).await.is_err() || *count >= MAX_MALFORMED
}

fn refused(reason: &str) -> ServerMessage {
    ServerMessage::Refused {
        reason: reason.to_owned(),
    }
}

fn response(id: u64, body: ResponseBody) -> ServerMessage {
    ServerMessage::Response(Response { id, body })
}

/// Receives one whole frame: one record, or on a stream one frame read in
/// as many reads as it takes (`frames` keeps a partly read one), the
/// descriptor rules applied either way ([`FrameReader`]).
async fn recv(
    sock: &Sock,
    frames: &mut FrameReader,
) -> Result<(ClientMessage, Option<OwnedFd>), SocketError> {
    loop {
        let mut guard = sock.fd.readable().await?;
        let got = guard.try_io(|fd| {
            match frames.recv(fd.as_fd(), Blocking::No, |m: &ClientMessage| m.expects_fd()) {
                Err(SocketError::Io(e)) => Err(e),
                other => Ok(other),
            }
        });
        match got {
            Ok(Ok(received)) => return received,
            Ok(Err(e)) => return Err(SocketError::Io(e)),
            Err(_would_block) => continue,
        }
    }
}

async fn send(sock: &Sock, msg: &ServerMessage, fd: Option<BorrowedFd<'_>>) -> std::io::Result<()> {
    let bytes = proto::frame::encode(msg)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    if sock.wire == Wire::Stream {
        return send_on_stream(sock, &bytes, fd).await;
    }
    loop {
        let mut guard = sock.fd.writable().await?;
        match guard.try_io(|s| socket::send_frame(s.as_fd(), &bytes, fd, Blocking::No)) {
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

/// Sends one frame on a stream, the descriptor with its first byte, under
/// the connection's lock: the frame may take several writes, each when
/// the socket has room (never blocking a worker thread), and no other
/// task's frame comes in between. This task runs to the end of its frame
/// (the connection's tasks are never cancelled mid-send), so the stream
/// is never left with half a frame but for a write error, which ends the
/// connection.
async fn send_on_stream(
    sock: &Sock,
    bytes: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> std::io::Result<()> {
    let _one_at_a_time = sock.sending.lock().await;
    let mut sent = 0;
    while sent < bytes.len() {
        let fds = match sent {
            0 => fd.as_slice(),
            _ => &[],
        };
        let mut guard = sock.fd.writable().await?;
        match guard.try_io(|s| send_some(s.as_fd(), &bytes[sent..], fds, Blocking::No)) {
            Ok(n) => sent += n?,
            Err(_would_block) => continue,
        }
    }
    Ok(())
}
