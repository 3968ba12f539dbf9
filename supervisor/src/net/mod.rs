//! The hosts mode's proxy (`[network] hosts`, `--allow-host`).
//!
//! The program runs in a network namespace of its own where nothing but
//! loopback exists (`sandbox_child::netns`). Before exec the child listened
//! there on 127.0.0.1:[`policies::PROXY_PORT`] and on each loopback service
//! the policy names, and sent those sockets here: a socket keeps the
//! namespace it was made in, so `accept` gets the program's connections,
//! while the connections this module makes go out in sluice's own
//! namespace. The only way out of the sandbox is therefore this proxy, which
//! judges each connection by host name and port against the policy:
//!
//! - HTTP `CONNECT host:port` (HTTPS, and anything tunnelled), and plain HTTP
//!   requests with an absolute URI (`GET http://host/path`), forwarded with
//!   `Connection: close` so that the next request comes back here; on the
//!   same port, SOCKS5 `CONNECT` (no authentication; a name, or an address
//!   literal judged as such), told apart by its first byte;
//! - a name is resolved here, and the connection goes only to an address it
//!   resolved to; an address literal passes only where a rule names that
//!   address; a name that resolves to a loopback or unspecified address is
//!   refused unless an exact rule (not `*.`) names it;
//! - loopback services (`127.0.0.1:5432`): what the program sends to that
//!   port in its namespace is forwarded to the same address in the host's;
//! - a host no rule allows but `ask_hosts` matches is put to the person
//!   (the approvals overlay's `[network]` answers, then the prompt on
//!   sluice's terminal, else `--approve`), as `ask` rules are for files; a
//!   host allowed so is never reached at a loopback address;
//! - a refusal answers `403` with a body that says how to allow the host,
//!   and sluice says it once per host on stderr;
//! - each connection is one audit record when it ends ([`ConnectionRecord`]),
//!   and an allowed one a record as it opens too, before anything passes
//!   (a connection that cannot be recorded is not opened).

mod http;
mod judge;
mod socks;

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use policies::{Host, HostPolicy};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::audit::AuditLog;
use crate::audit::{By, ConnectionRecord, Decision};
pub use judge::allow_hint;

/// The variables that point the program's HTTP clients at the proxy.
pub const PROXY_VARIABLES: [&str; 6] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// Loopback stays direct: in the program's namespace only its own servers
/// and the loopback services the policy names listen there.
pub const NO_PROXY: &str = "localhost,127.0.0.1,::1";

/// The most descriptors the proxy holds at once: with the broker's 256
/// and sluice's own, within a 1,024 limit (the usual soft `RLIMIT_NOFILE`
/// of the person's shell, which sluice keeps).
const MAX_DESCRIPTORS: usize = 512;

/// Directions relayed with `splice(2)` at once, each through a pipe of
/// its own (two descriptors); the others are copied through user space,
/// with none. Without this bound each connection held six descriptors
/// (two sockets, two pipes), and 256 of them took the supervisor past a
/// 1,024 limit: the guard's opens then failed (`EMFILE`) for the whole
/// session.
const SPLICED_DIRECTIONS: usize = 32;

/// Connections served at once (program side); more wait to be accepted.
/// Each holds up to two descriptors (the program's and the host's), and
/// what is left of [`MAX_DESCRIPTORS`] goes to the splicing pipes.
const MAX_CONNECTIONS: usize = (MAX_DESCRIPTORS - 2 * SPLICED_DIRECTIONS) / 2;

/// How long a name's resolution and the connection to one of its addresses
/// may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the program may take to send its request (HTTP head, SOCKS5
/// greeting and request).
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes one connection record (to the session's audit log).
pub type Recorder = Arc<dyn Fn(&ConnectionRecord, Stage) -> io::Result<()> + Send + Sync>;

/// Which record of a connection is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Opened, before anything passes through it (`connection-open`).
    Open,
    /// Ended, or refused (`connection`).
    End,
}

/// The proxy of one session, on a runtime of its own.
pub struct Proxy {
    runtime: tokio::runtime::Runtime,
    server: tokio::task::JoinHandle<()>,
    shutdown: CancellationToken,
}

/// Where the proxy's own connections go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// Straight to the address (a name resolved here).
    Direct,
    /// Through the enclosing sluice session's proxy (stacked): a `CONNECT`
    /// there, by name, so that its rules hold too; it resolves.
    Via(SocketAddr),
}

impl Upstream {
    /// Stacked: the enclosing session's proxy, as its `HTTPS_PROXY` (or
    /// `https_proxy`, `ALL_PROXY`...) in sluice's own environment names it
    /// (`http://127.0.0.1:PORT`); `Direct` when there is none (the outer
    /// session is not in the hosts mode).
    pub fn from_env() -> Upstream {
        PROXY_VARIABLES
            .iter()
            .filter_map(std::env::var_os)
            .find_map(|v| {
                let v = v.to_str()?.strip_prefix("http://")?;
                v.trim_end_matches('/').parse::<SocketAddr>().ok()
            })
            .filter(|a| a.ip().is_loopback())
            .map_or(Upstream::Direct, Upstream::Via)
    }
}

/// What every connection consults.
struct Context {
    hosts: HostPolicy,
    /// One permit a direction relayed with a pipe ([`SPLICED_DIRECTIONS`]).
    pipes: Arc<Semaphore>,
    upstream: Upstream,
    audit: Option<Recorder>,
    /// Who answers `ask_hosts` (the session's approvals); `None`: nobody,
    /// refused.
    approvals: Option<Arc<crate::broker::Shared>>,
    /// Hosts already refused once: sluice says so on stderr once each.
    told: Mutex<HashSet<String>>,
}

/// A verdict on one `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed by this rule; connect to these addresses (in order).
    Allow {
        rule: String,
        addrs: Vec<SocketAddr>,
        by: By,
    },
    /// Refused, with the reason the program and the record get.
    Refuse { reason: String, by: By },
}

impl Proxy {
    /// Starts serving `listeners`: the proxy's first, then one per loopback
    /// service of `hosts`, in [`HostPolicy::loopback_services`] order.
    /// `audit` writes one connection record; `approvals` answers the
    /// connections `ask_hosts` puts to the person.
    pub fn start(
        listeners: Vec<OwnedFd>,
        hosts: HostPolicy,
        upstream: Upstream,
        audit: Option<Recorder>,
        approvals: Option<Arc<crate::broker::Shared>>,
    ) -> io::Result<Proxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-proxy")
            .enable_io()
            .enable_time()
            .build()?;
        let services = hosts.loopback_services();
        if listeners.len() != services.len() + 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the child sent {} listening sockets, expected {}",
                    listeners.len(),
                    services.len() + 1
                ),
            ));
        }
        let ctx = Arc::new(Context {
            hosts,
            pipes: Arc::new(Semaphore::new(SPLICED_DIRECTIONS)),
            upstream,
            audit,
            approvals,
            told: Mutex::new(HashSet::new()),
        });
        let shutdown = CancellationToken::new();
        let mut accepted = Vec::new();
        {
            let _entered = runtime.enter();
            for fd in listeners {
                let std_listener = std::net::TcpListener::from(fd);
                std_listener.set_nonblocking(true)?;
                accepted.push(TcpListener::from_std(std_listener)?);
            }
        }
        let mut listeners = accepted.into_iter();
        let proxy = listeners.next().expect("counted above");
        let loopback: Vec<_> = listeners.zip(services).collect();
        let server = runtime.spawn(serve(proxy, loopback, ctx, shutdown.clone()));
        Ok(Proxy {
            runtime,
            server,
            shutdown,
        })
    }

    /// Stops accepting, ends the connections still open (each is recorded),
    /// and waits for them briefly.
    pub fn stop(self) {
        self.shutdown.cancel();
        let finished = self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), self.server)
                .await
                .is_ok()
        });
        if !finished {
            tracing::warn!("proxy: connections still open after 5 seconds; dropped");
        }
        self.runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

async fn serve(
    proxy: TcpListener,
    loopback: Vec<(TcpListener, (IpAddr, u16))>,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
) {
    // One budget for every listener: each connection holds up to two of
    // the supervisor's descriptors (and pipes within `ctx.pipes`).
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut loops = JoinSet::new();
    for (listener, (ip, port)) in loopback {
        let ctx = ctx.clone();
        let stop = shutdown.clone();
        loops.spawn(accept_loop(
            listener,
            permits.clone(),
            shutdown.clone(),
            move |s| loopback_service(s, ip, port, ctx.clone(), stop.clone()),
        ));
    }
    let stop = shutdown.clone();
    accept_loop(proxy, permits, shutdown, move |s| {
        client(s, ctx.clone(), stop.clone())
    })
    .await;
    while loops.join_next().await.is_some() {}
}

/// Accepts connections on `listener` while a permit is free, each served
/// by `serve` in a task of its own, until `shutdown`; then waits for them.
async fn accept_loop<F, Fut>(
    listener: TcpListener,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
    serve: F,
) where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let served = serve(stream);
                    conns.spawn(async move {
                        served.await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of descriptors, most likely: not a busy loop.
                    tracing::warn!("proxy: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    while conns.join_next().await.is_some() {}
}

/// What the program asked the proxy for, in either protocol.
struct Asked {
    host: Host,
    port: u16,
    how: How,
    /// What the program sent after its request, to pass on first.
    rest: Vec<u8>,
}

/// The protocol and request the program used, which shape the answers.
enum How {
    /// HTTP `CONNECT`: a tunnel once `200` is answered.
    Connect,
    /// A plain-HTTP request: this head (origin form) is sent on, then the
    /// bytes both ways.
    Http(Vec<u8>),
    /// SOCKS5 `CONNECT`: a tunnel once its success reply is sent.
    Socks5,
}

impl How {
    /// The record's `via`.
    fn via(&self) -> &'static str {
        match self {
            How::Connect => "connect",
            How::Http(_) => "http",
            How::Socks5 => "socks5",
        }
    }
}

/// One connection to the proxy's port: the request (HTTP, or SOCKS5 when
/// its first byte says so), then [`pass`].
async fn client(mut stream: TcpStream, ctx: Arc<Context>, shutdown: CancellationToken) {
    let started = Instant::now();
    let _ = stream.set_nodelay(true);
    let request = async {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(1) if first[0] == socks::VERSION => socks::request(&mut stream).await,
            Ok(1) => http::request(&mut stream).await,
            _ => None,
        }
    };
    let asked = tokio::select! {
        _ = shutdown.cancelled() => return,
        asked = tokio::time::timeout(HEAD_TIMEOUT, request) => asked,
    };
    if let Ok(Some(asked)) = asked {
        pass(stream, asked, &ctx, &shutdown, started).await;
    }
}

/// Judges what the program asked for, answers it in its protocol, opens
/// the way and relays; records the connection when it ends.
async fn pass(
    mut stream: TcpStream,
    asked: Asked,
    ctx: &Context,
    shutdown: &CancellationToken,
    started: Instant,
) {
    let Asked {
        host,
        port,
        how,
        rest,
    } = asked;
    let mut rec = ConnectionRecord {
        host: host.to_string(),
        port,
        via: how.via().to_owned(),
        address: None,
        decision: Decision::Denied,
        by: By::Rule,
        rule: None,
        reason: None,
        sent: 0,
        received: 0,
        duration_ms: 0,
    };
    let addrs = match ctx.judge(&host, port).await {
        Verdict::Allow { rule, addrs, by } => {
            rec.rule = Some(rule);
            rec.by = by;
            addrs
        }
        Verdict::Refuse { reason, by } => {
            rec.by = by;
            // The person who answered at the prompt has been told.
            if !matches!(by, By::Person | By::Timeout) {
                ctx.tell_refused(&host, port, &reason);
            }
            // Allowed, but not to be reached (not resolved, or only to
            // addresses the rule may not reach): a gateway's failure, and no
            // advice to allow what is allowed.
            let allowed = ctx.hosts.allowed(&host, port).is_some();
            match (how, allowed) {
                (How::Socks5, true) => {
                    socks::reply(&mut stream, socks::Reply::HostUnreachable).await;
                }
                (How::Socks5, false) => {
                    socks::reply(&mut stream, socks::Reply::NotAllowed).await;
                }
                (How::Connect | How::Http(_), true) => {
                    let body = format!(
                        "sluice: the connection to {host}:{port} is allowed but failed: {reason}.\n"
                    );
                    http::respond(&mut stream, 502, "Bad Gateway", &body).await;
                }
                (How::Connect | How::Http(_), false) => {
                    let body = format!(
                        "sluice refused the connection to {host}:{port}: {reason}.\n\
                         To allow it: sluice run --allow-host {} ..., or add it to \
                         [network] hosts in the policy.\n",
                        allow_hint(&host, port)
                    );
                    http::respond(&mut stream, 403, "Forbidden", &body).await;
                }
            }
            rec.reason = Some(reason);
            rec.duration_ms = started.elapsed().as_millis() as u64;
            ctx.record(&rec);
            return;
        }
    };
    let (mut upstream, addr) = match open(ctx.upstream, &host, port, &addrs).await {
        Ok(found) => found,
        Err(e) => {
            let reason = format!("connecting to {host}:{port}: {e}");
            match how {
                How::Socks5 => {
                    socks::reply(&mut stream, socks::Reply::failed(&e)).await;
                }
                How::Connect | How::Http(_) => {
                    let body = format!("sluice's proxy: {reason}\n");
                    http::respond(&mut stream, 502, "Bad Gateway", &body).await;
                }
            }
            rec.decision = Decision::Error;
            rec.reason = Some(reason);
            rec.duration_ms = started.elapsed().as_millis() as u64;
            ctx.record(&rec);
            return;
        }
    };
    rec.decision = Decision::Allowed;
    rec.address = Some(addr);
    rec.duration_ms = started.elapsed().as_millis() as u64;
    // On the record before the program's first byte passes, as a file
    // decision is before its descriptor is served: a supervisor killed
    // later leaves this record, and one that cannot be written is refused.
    if let Err(e) = ctx.record_open(&rec) {
        let reason = format!("the connection cannot be recorded: {e}");
        match how {
            How::Socks5 => {
                socks::reply(&mut stream, socks::Reply::Failure).await;
            }
            How::Connect | How::Http(_) => {
                let body = format!("sluice's proxy: {reason}\n");
                http::respond(&mut stream, 502, "Bad Gateway", &body).await;
            }
        }
        rec.decision = Decision::Error;
        rec.reason = Some(reason);
        ctx.record(&rec);
        return;
    }
    let answered = match &how {
        How::Connect => stream
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_ok(),
        How::Socks5 => socks::reply(&mut stream, socks::Reply::Succeeded).await,
        How::Http(_) => true,
    };
    if answered {
        let mut first = match how {
            How::Http(forward) => forward,
            How::Connect | How::Socks5 => Vec::new(),
        };
        first.extend_from_slice(&rest);
        if upstream.write_all(&first).await.is_ok() {
            let (sent, received) = relay(&stream, &upstream, &ctx.pipes, shutdown).await;
            rec.sent = first.len() as u64 + sent;
            rec.received = received;
        }
    }
    rec.duration_ms = started.elapsed().as_millis() as u64;
    ctx.record(&rec);
}

impl Context {
    /// Records a connection that ended or was refused.
    fn record(&self, rec: &ConnectionRecord) {
        if let Some(audit) = &self.audit {
            if let Err(e) = audit(rec, Stage::End) {
                tracing::error!("audit: cannot record a connection: {e}");
            }
        }
    }

    /// Records a connection as it opens; an error means it must not.
    fn record_open(&self, rec: &ConnectionRecord) -> io::Result<()> {
        match &self.audit {
            Some(audit) => audit(rec, Stage::Open).inspect_err(|e| {
                tracing::error!("audit: cannot record a connection: {e}");
            }),
            None => Ok(()),
        }
    }
}

/// Opens the way to `host:port`: through the enclosing session's proxy,
/// or to the first of `addrs` that answers. Returns the stream and what it
/// reached, for the record.
async fn open(
    upstream: Upstream,
    host: &Host,
    port: u16,
    addrs: &[SocketAddr],
) -> io::Result<(TcpStream, String)> {
    match upstream {
        Upstream::Direct => connect(addrs)
            .await
            .map(|(stream, addr)| (stream, addr.to_string())),
        Upstream::Via(proxy) => {
            let (mut stream, _) = connect(&[proxy]).await?;
            let ask = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n");
            stream.write_all(ask.as_bytes()).await?;
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if head.len() > 16 * 1024
                    || tokio::io::AsyncReadExt::read(&mut stream, &mut byte).await? == 0
                {
                    return Err(io::Error::other("the enclosing session's proxy closed"));
                }
                head.push(byte[0]);
            }
            let status = String::from_utf8_lossy(&head);
            let status = status.lines().next().unwrap_or("").to_owned();
            if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
                return Err(io::Error::other(format!(
                    "the enclosing sluice session's proxy answered {status:?}"
                )));
            }
            Ok((stream, format!("{host}:{port} via {proxy}")))
        }
    }
}

/// Connects to the first of `addrs` that answers.
async fn connect(addrs: &[SocketAddr]) -> io::Result<(TcpStream, SocketAddr)> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for &addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, addr));
            }
            Ok(Err(e)) => last = e,
            Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
        }
    }
    Err(last)
}

/// Copies both ways until both sides are done or the session ends; returns
/// the bytes each way (program to host, host to program), counted as they
/// move: a connection the session's end cuts is recorded with what it
/// carried until then. A direction is spliced when one of `pipes`'
/// permits is free, else copied through user space.
async fn relay(
    a: &TcpStream,
    b: &TcpStream,
    pipes: &Arc<Semaphore>,
    shutdown: &CancellationToken,
) -> (u64, u64) {
    let (there, back) = (AtomicU64::new(0), AtomicU64::new(0));
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = async {
            tokio::join!(one_way(a, b, pipes, &there), one_way(b, a, pipes, &back))
        } => {}
    }
    (there.into_inner(), back.into_inner())
}

/// Moves what `src` receives to `dst` until its end, then shuts `dst`'s
/// sending side; spliced while a pipe permit is held ([`splice_one_way`]),
/// else through a buffer ([`copy_one_way`]).
async fn one_way(src: &TcpStream, dst: &TcpStream, pipes: &Arc<Semaphore>, moved: &AtomicU64) {
    let spliced = match pipes.clone().try_acquire_owned() {
        Ok(_permit) => splice_one_way(src, dst, moved).await,
        Err(_) => false,
    };
    if !spliced {
        copy_one_way(src, dst, moved).await;
    }
    let _ = nix::sys::socket::shutdown(dst.as_raw_fd(), nix::sys::socket::Shutdown::Write);
}

/// Moves what `src` receives to `dst` through a pipe with `splice(2)`, so
/// the bytes stay in the kernel (a copy through user space halved the rate
/// on loopback: `cargo bench --bench net`), until `src`'s end or an error.
/// Adds the bytes moved to `moved` as they go. `false` when no pipe could
/// be made (nothing moved: copy instead).
async fn splice_one_way(src: &TcpStream, dst: &TcpStream, moved: &AtomicU64) -> bool {
    use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
    // As much as one pipe holds at a time.
    const CHUNK: usize = 1 << 20;
    let Ok((from_pipe, into_pipe)) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
    else {
        return false;
    };
    // Best effort: a larger pipe means fewer calls.
    let _ = fcntl(&into_pipe, FcntlArg::F_SETPIPE_SZ(CHUNK as i32));
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    loop {
        // The pipe is empty here: `EAGAIN` means `src` has nothing yet.
        let read = src
            .async_io(tokio::io::Interest::READABLE, || {
                splice(src, None, &into_pipe, None, CHUNK, flags).map_err(io::Error::from)
            })
            .await;
        let mut left = match read {
            Ok(0) | Err(_) => return true,
            Ok(n) => n,
        };
        // The pipe holds `left` bytes: `EAGAIN` means `dst` is full.
        while left > 0 {
            let written = dst
                .async_io(tokio::io::Interest::WRITABLE, || {
                    splice(&from_pipe, None, dst, None, left, flags).map_err(io::Error::from)
                })
                .await;
            match written {
                Ok(0) | Err(_) => return true,
                Ok(n) => {
                    left -= n;
                    moved.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Moves what `src` receives to `dst` through a buffer, until `src`'s end
/// or an error; adds the bytes moved to `moved` as they go.
async fn copy_one_way(src: &TcpStream, dst: &TcpStream, moved: &AtomicU64) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if src.readable().await.is_err() {
            return;
        }
        let n = match src.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        };
        let mut at = 0;
        while at < n {
            if dst.writable().await.is_err() {
                return;
            }
            match dst.try_write(&buf[at..n]) {
                Ok(0) => return,
                Ok(w) => {
                    at += w;
                    moved.fetch_add(w as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }
}

/// A connection to a loopback service's port in the program's namespace:
/// forwarded to the same address in the host's.
async fn loopback_service(
    mut stream: TcpStream,
    ip: IpAddr,
    port: u16,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let host = Host::Ip(ip);
    let mut rec = ConnectionRecord {
        host: host.to_string(),
        port,
        via: "loopback".to_owned(),
        address: None,
        decision: Decision::Allowed,
        by: By::Rule,
        rule: ctx.hosts.allowed(&host, port).map(|r| r.to_string()),
        reason: None,
        sent: 0,
        received: 0,
        duration_ms: 0,
    };
    match connect(&[SocketAddr::new(ip, port)]).await {
        Ok((upstream, addr)) => {
            rec.address = Some(addr.to_string());
            match ctx.record_open(&rec) {
                Ok(()) => {
                    (rec.sent, rec.received) =
                        relay(&stream, &upstream, &ctx.pipes, &shutdown).await;
                }
                Err(e) => {
                    rec.decision = Decision::Error;
                    rec.reason = Some(format!("the connection cannot be recorded: {e}"));
                    let _ = stream.shutdown().await;
                }
            }
        }
        Err(e) => {
            rec.decision = Decision::Error;
            rec.reason = Some(format!("connecting to {ip}:{port}: {e}"));
            let _ = stream.shutdown().await;
        }
    }
    rec.duration_ms = started.elapsed().as_millis() as u64;
    ctx.record(&rec);
}

/// Writes one connection record to `audit`.
pub fn auditor(audit: Arc<crate::broker::Shared>) -> Recorder {
    Arc::new(move |rec, stage| match (&audit.audit, stage) {
        (Some(log), Stage::Open) => AuditLog::append_connection_open(log, rec),
        (Some(log), Stage::End) => AuditLog::append_connection(log, rec),
        (None, _) => Ok(()),
    })
}

#[cfg(test)]
mod tests;
