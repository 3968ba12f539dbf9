//! The broker: file handles for the sandboxed program, by policy, over a
//! Unix socket.
//!
//! The shape is tokio's mini-redis: a listener ([`serve`]) accepts
//! connections, a [`connection`] task per connection reads requests and
//! spawns a task per request, and a cancellation token plus a task tracker
//! give a graceful shutdown when the program exits.
//!
//! The program inherits one end of a `SOCK_SEQPACKET` pair (the *shared*
//! socket, `SLUICE_BROKER_FD`). Every process of the sandbox may hold it, so
//! answers are never sent on it: the only frame it takes is
//! `Connect`, carrying one end of a socket pair the client made, which
//! becomes a private connection. Requests on a connection are answered as
//! they finish, out of order, so a request waiting for a person never holds
//! up the others.
//!
//! Decisions are made on the file actually opened, never on the name asked
//! ([`safe_open`]); every decision is appended to the audit record.
//!
//! The core (the accept loop, [`connection`]s, the decide-and-open core,
//! requests, approvals, the record before every answer) is the same on
//! Linux and macOS. What one kernel alone gives sits behind one interface
//! each: who the peer is ([`peer`]: `SO_PEERCRED` and a pidfd, or the
//! audit token), the safe open ([`safe_open`]: `openat2` and `O_PATH`, or a
//! walk), and on Linux only: the read-only copy of the mount tree
//! (`readonly`), directories served from the sandbox's own view
//! (`sandbox_view`; none are served on macOS), the guard and transparent
//! brokering (seccomp), and a stacked session's outer broker (nothing
//! stacks on macOS).

pub mod approve;
mod connection;
mod decide;
#[cfg(target_os = "linux")]
pub mod guard;
mod handler;
#[cfg(target_os = "linux")]
pub mod outer;
#[cfg_attr(target_os = "macos", path = "peer_macos.rs")]
mod peer;
// The guard's acts and regions are Linux's (the guard is seccomp's).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) mod protect;
pub use protect::replaced_when_checked;
#[cfg(target_os = "linux")]
mod readonly;
pub(crate) mod safe_open;
#[cfg(target_os = "linux")]
mod sandbox_view;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // the seccomp notifier: raw notification structs
pub mod transparent;
#[cfg(not(target_os = "linux"))]
#[path = "no_transparent.rs"]
pub mod transparent;

#[cfg(all(test, target_os = "linux"))]
mod tests;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use policies::Policy;
use proto::socket::{decode_received, recv_frame, Blocking, Wire};
use proto::ClientMessage;
use tokio::io::unix::AsyncFd;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use approve::Approvals;
#[cfg(target_os = "linux")]
pub use sandbox_view::SandboxView;

use crate::audit::{AuditLog, DecisionRecord};

/// Connections served at once; a `Connect` beyond this is refused.
pub const MAX_CONNECTIONS: usize = 256;
/// Requests of one connection being served at once (including answers
/// waiting to be sent); beyond this a request is answered `TooManyRequests`.
/// The client SDK keeps well below it.
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 128;
/// Requests being served at once over all connections: bounds the
/// descriptors the broker holds for answers not yet sent. A connection that
/// finds it full waits (stops reading) rather than being refused.
pub const MAX_IN_FLIGHT: usize = 4096;

/// What every connection and request shares.
pub struct Shared {
    pub session: String,
    pub policy: Policy,
    pub approvals: Approvals,
    pub audit: Option<AuditLog>,
    connections: Arc<Semaphore>,
    in_flight: Arc<Semaphore>,
    /// Where what is granted for reading only is opened; `None` where no
    /// read-only copy of the mount tree could be made (then such
    /// descriptors can change the file's metadata, and a warning says so).
    #[cfg(target_os = "linux")]
    readonly: Option<readonly::ReadOnlyView>,
    /// Where directories are opened: the sandbox's own view, handed over
    /// by the child. `None` (no sandbox to take it from): no directory is
    /// served.
    #[cfg(target_os = "linux")]
    sandbox: Option<SandboxView>,
    /// Stacked inside another session: its broker, for what this sandbox
    /// cannot open ([`outer`]).
    #[cfg(target_os = "linux")]
    pub outer: Option<outer::OuterBroker>,
    /// The seccomp filters the program ran under at exec: a connection
    /// made by a process under more comes from a sandbox inside the
    /// program's, and is refused (`None`: nothing is refused so; always on
    /// macOS, which has no filters to count).
    pub filters_at_exec: Option<u32>,
    /// The sluice sessions stacked inside this one that registered their
    /// sandbox, whose programs' writes the guard makes there.
    #[cfg(target_os = "linux")]
    pub stacked: guard::stacked::Registry,
}

impl Shared {
    /// `protected`: sluice's own state (audit log, approvals, session
    /// directory, `/proc`...). They are added to the policy's broker rules
    /// as paths no rule can open.
    pub fn new(
        session: String,
        mut policy: Policy,
        approvals: Approvals,
        audit: Option<AuditLog>,
        protected: Vec<(PathBuf, &str)>,
    ) -> Shared {
        for (path, why) in protected {
            policy.broker.protect(path, why);
        }
        Shared {
            session,
            policy,
            approvals,
            audit,
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            // The copy itself is made at the first request that needs it.
            #[cfg(target_os = "linux")]
            readonly: readonly::ReadOnlyView::new()
                .inspect_err(|e| {
                    tracing::warn!(
                        "no read-only copy of the mount tree ({e}): a descriptor served \
                         for reading can change the file's mode, times and attributes"
                    )
                })
                .ok(),
            #[cfg(target_os = "linux")]
            sandbox: None,
            #[cfg(target_os = "linux")]
            outer: None,
            filters_at_exec: None,
            #[cfg(target_os = "linux")]
            stacked: guard::stacked::Registry::default(),
        }
    }

    /// The descriptors kept for the whole session (the read-only copy of
    /// the mount tree, once made), which a leak check must not count.
    fn kept_descriptors(&self) -> usize {
        #[cfg(target_os = "linux")]
        return self.readonly.as_ref().map_or(0, |v| v.descriptors());
        #[cfg(not(target_os = "linux"))]
        0
    }

    /// Serves directories from `view`, the sandbox's own (see
    /// [`SandboxView`]); without one every directory is refused.
    #[cfg(target_os = "linux")]
    pub fn with_sandbox_view(mut self, view: SandboxView) -> Shared {
        self.sandbox = Some(view);
        self
    }

    /// Appends `record` to the session's audit log, if it keeps one. An
    /// error (logged here) means the decision must not be carried out: no
    /// record, no descriptor, and no connection. Every decision the broker
    /// serves, by the SDK or transparently, is recorded through here.
    pub fn record(&self, record: &DecisionRecord) -> io::Result<()> {
        let Some(audit) = &self.audit else {
            return Ok(());
        };
        audit.append(record).inspect_err(|e| {
            tracing::error!("audit: cannot append a record: {e}");
        })
    }
}

/// The broker running on its own threads while the main thread supervises
/// the program; stopped when dropped ([`Broker::stop`]).
pub struct Broker {
    /// Both taken by the stop.
    runtime: Option<tokio::runtime::Runtime>,
    server: Option<tokio::task::JoinHandle<()>>,
    shutdown: CancellationToken,
    descriptors_at_start: usize,
    /// The runtime's own descriptors (its event loop's).
    runtime_descriptors: usize,
    /// For the descriptors made during the session that outlive the
    /// broker (the read-only copy of the mount tree, made at first use).
    shared: Arc<Shared>,
    /// Transparent brokering, when the program's open calls are notified.
    /// With how many descriptors it was given.
    transparent: Option<(transparent::Transparent, usize)>,
}

impl Broker {
    /// Starts serving `listener` (our end of the shared socket). Called
    /// after the fork: the runtime's threads must not exist in the child.
    pub fn start(listener: OwnedFd, shared: Arc<Shared>) -> io::Result<Broker> {
        Broker::start_with(listener, shared, None)
    }

    /// [`Broker::start`], and with `notify` (the seccomp listener of the
    /// program's calls, and its connector) transparent brokering too.
    pub fn start_with(
        listener: OwnedFd,
        shared: Arc<Shared>,
        notify: Option<transparent::Program>,
    ) -> io::Result<Broker> {
        Broker::start_on(Runtime::new()?, listener, shared, notify)
    }

    /// [`Broker::start_with`] on a runtime made before (`sluice run` makes
    /// it while the child runs its steps, off the launch's path).
    pub fn start_on(
        runtime: Runtime,
        listener: OwnedFd,
        shared: Arc<Shared>,
        notify: Option<transparent::Program>,
    ) -> io::Result<Broker> {
        // Without the runtime's own descriptors; the listeners are counted
        // and are closed again by the time `stop` counts.
        let descriptors_at_start = open_descriptors().saturating_sub(runtime.descriptors);
        let runtime_descriptors = runtime.descriptors;
        let runtime = runtime.runtime;
        let shutdown = CancellationToken::new();
        let transparent = match notify {
            Some(program) => {
                let held = program.descriptors();
                let t = transparent::Transparent::start(
                    program,
                    shared.clone(),
                    runtime.handle().clone(),
                )?;
                Some((t, held))
            }
            None => None,
        };
        let server = runtime.spawn(serve(listener, shared.clone(), shutdown.clone()));
        Ok(Broker {
            runtime: Some(runtime),
            server: Some(server),
            shutdown,
            descriptors_at_start,
            runtime_descriptors,
            shared,
            transparent,
        })
    }

    /// Stops accepting, lets requests in progress finish (briefly), and
    /// reports descriptors the broker failed to close. Dropping the broker
    /// does the same.
    pub fn stop(self) {
        drop(self);
    }

    fn shut_down(&mut self) {
        let (Some(runtime), Some(server)) = (self.runtime.take(), self.server.take()) else {
            return;
        };
        // Its descriptors close here, besides the broker's own listener.
        let (listeners, calls_finished) = match self.transparent.take() {
            Some((t, held)) => (1 + held, t.stop(&runtime)),
            None => (1, true),
        };
        self.shutdown.cancel();
        let finished = runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(5), server)
                .await
                .is_ok()
        });
        if !finished {
            tracing::warn!("broker: requests still in progress after 5 seconds; dropped");
        }
        // Nothing runs on the runtime any more once the server has finished:
        // its threads end on their own, unwaited (joining them was a chain
        // of wake-ups at the end of every launch), and its descriptors are
        // still counted as its own below.
        let (runtime, runtime_open) = match finished && calls_finished {
            true => (Some(runtime), self.runtime_descriptors),
            false => {
                runtime.shutdown_timeout(std::time::Duration::from_secs(1));
                (None, 0)
            }
        };
        // Their restricted connectors exit as their sockets close.
        #[cfg(target_os = "linux")]
        self.shared.stacked.clear();
        // The listeners and every connection are closed now: one
        // descriptor per listener fewer than at start, unless one leaked.
        // Counted, like at start, without the runtime's own.
        let now = open_descriptors().saturating_sub(runtime_open);
        if let Some(runtime) = runtime {
            runtime.shutdown_background();
        }
        let kept = self.shared.kept_descriptors();
        let leaked = (now + listeners).saturating_sub(self.descriptors_at_start + kept);
        tracing::debug!(
            at_start = self.descriptors_at_start,
            at_end = now,
            leaked,
            "broker: supervisor descriptors"
        );
        if leaked > 0 {
            tracing::warn!("broker: {leaked} descriptor(s) left open");
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The broker's tokio runtime, its worker threads started.
pub struct Runtime {
    runtime: tokio::runtime::Runtime,
    /// The descriptors it opened (its event loop's), which a leak check
    /// started after it must not count.
    descriptors: usize,
}

impl Runtime {
    /// Called after the child's clone: its threads must not exist in the
    /// child.
    pub fn new() -> io::Result<Runtime> {
        let before = open_descriptors();
        let workers = cpus_allowed().clamp(1, 8);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("sluice-broker")
            // No signal driver (tokio's "signal" feature is off): it would
            // make process-wide descriptors that outlive the runtime, and
            // the main thread reads signals from a signalfd anyway.
            .enable_io()
            .enable_time()
            .build()?;
        let descriptors = open_descriptors().saturating_sub(before);
        Ok(Runtime {
            runtime,
            descriptors,
        })
    }
}

/// The CPUs this thread may run on (2 if unknown). Not
/// `available_parallelism`, which also reads the cgroup's CPU quota through
/// `/proc/self/mountinfo` and `/proc/self/cgroup`: a tenth of a millisecond
/// at every launch, for a number of threads that a quota does not change
/// much.
#[cfg(target_os = "linux")]
fn cpus_allowed() -> usize {
    use nix::sched::{sched_getaffinity, CpuSet};
    use nix::unistd::Pid;
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
            .count()
            .max(1),
        Err(_) => 2,
    }
}

/// The CPUs this process may use (2 if unknown): macOS has no affinity
/// masks and no cgroups, so the standard library's count is the cheap one.
#[cfg(not(target_os = "linux"))]
fn cpus_allowed() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Serves the shared socket until `shutdown` is cancelled, then waits for
/// the connections and requests in progress to finish.
///
/// The shared socket reaching end of file (every process of the sandbox
/// closed it) stops accepting, not serving. The shared socket's type says
/// which wire its connections speak ([`Wire::of_shared`]): records on
/// Linux; streams, on macOS, with a datagram shared socket (which has no
/// end of file: it is served until `shutdown`).
pub async fn serve(listener: OwnedFd, shared: Arc<Shared>, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    if let Err(e) = accept_loop(listener, &shared, &shutdown, &tracker).await {
        tracing::warn!("broker: the shared socket failed: {e}");
    }
    shutdown.cancelled().await;
    tracker.close();
    tracker.wait().await;
}

async fn accept_loop(
    listener: OwnedFd,
    shared: &Arc<Shared>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> io::Result<()> {
    let wire = shared_wire(listener.as_fd())?;
    let listener = watch(listener)?;
    // A Connect frame is five bytes; anything that does not fit is not one.
    let mut buf = [0u8; 64];
    loop {
        let got = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            ready = listener.readable() => {
                let mut guard = ready?;
                match guard.try_io(|fd| recv_frame(fd.as_fd(), &mut buf, Blocking::No)) {
                    Ok(got) => got?,
                    Err(_would_block) => continue,
                }
            }
        };
        // An empty read is the end of a seqpacket socket, or a record of
        // no bytes that any process of the sandbox can send: only a hang-up
        // the kernel reports says which (else one empty record would stop
        // the broker accepting for the rest of the session). An empty
        // datagram is only a datagram (a connected datagram socket has no
        // end of file). Either is ignored below like any other bad frame.
        if wire == Wire::Records
            && got.len == 0
            && got.fds.is_empty()
            && !got.truncated
            && hung_up(listener.get_ref().as_fd())
        {
            tracing::debug!("broker: every holder of the shared socket closed it");
            return Ok(());
        }
        let len = got.len.min(buf.len());
        let sock = match decode_received::<ClientMessage>(&buf[..len], got, |m| m.expects_fd()) {
            Ok((ClientMessage::Connect, Some(sock))) => sock,
            Ok((other, _)) => {
                tracing::debug!("broker: ignored {other:?} on the shared socket");
                continue;
            }
            Err(e) => {
                tracing::debug!("broker: ignored a bad frame on the shared socket: {e}");
                continue;
            }
        };
        if let Err(e) = check_private(sock.as_fd(), wire) {
            tracing::debug!("broker: refused a connection: {e}");
            continue;
        }
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            connection::refuse(sock, "too many connections to the broker");
            continue;
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let spawner = tracker.clone();
        tracker.spawn(async move {
            connection::run(sock, wire, shared, shutdown, spawner).await;
            drop(permit);
        });
    }
}

/// Whether the other end of the seqpacket socket `fd` is closed: the
/// kernel says `POLLHUP` then, never for a record of no bytes.
fn hung_up(fd: BorrowedFd<'_>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
        // Unknown: stop accepting, as before, rather than spin on it.
        Err(_) => true,
    }
}

/// The wire the shared socket `fd` speaks: records on a `SOCK_SEQPACKET`
/// one (Linux), streams on a `SOCK_DGRAM` one (macOS, and Linux when
/// tested in macOS's configuration). Anything else is not served.
fn shared_wire(fd: BorrowedFd<'_>) -> io::Result<Wire> {
    Wire::of_shared(fd)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the shared socket is neither a unix seqpacket nor a unix datagram socket",
        )
    })
}

/// A private connection must be a Unix socket of its wire's type
/// (`SOCK_SEQPACKET` for records, `SOCK_STREAM` for streams): anything
/// else (a file, a TCP socket, the other wire's type) is not spoken to.
fn check_private(fd: BorrowedFd<'_>, wire: Wire) -> io::Result<()> {
    match proto::socket::domain_and_type(fd)? {
        (libc::AF_UNIX, kind) if kind == wire.private_type() => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            match wire {
                Wire::Records => "not a unix seqpacket socket",
                Wire::Stream => "not a unix stream socket",
            },
        )),
    }
}

/// Registers a socket with the runtime's reactor.
fn watch(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    crate::sys::io::watch(fd)
}

/// The number of descriptors this process has open (for leak checks):
/// `/proc/self/fd` on Linux, `/dev/fd` (the process's own) on macOS.
pub fn open_descriptors() -> usize {
    let listing = if cfg!(target_os = "linux") {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    std::fs::read_dir(listing).map_or(0, |d| d.count())
}
