//! Transparent brokering: the program's own `open` calls, answered by the
//! broker through seccomp user notification (seccomp_unotify(2)).
//!
//! The child installs a second seccomp filter whose only job is to hand
//! `open`, `openat`, `openat2` and `creat` (and `mkdir`, `mkdirat`, served
//! as an exclusive create: see `call::MKDIR_FLAGS`) to the supervisor (and the calls
//! that change a thread's working directory, for [`threads`]), and sends its
//! listener here before exec ([`Program::receive`]). One reader thread
//! receives the notifications ([`Transparent::start`]); for each it reads
//! the call's arguments from the program (`process_vm_readv`, checked with
//! `NOTIF_ID_VALID` before anything read is acted on) and then:
//!
//! - a path the sandbox itself allows ([`view`]) or that only the kernel can
//!   answer for (`O_PATH`, `O_TMPFILE`, the program's `/proc`, openat2 with
//!   `resolve` restrictions, unreadable arguments) is answered on the spot
//!   with `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: the call runs in the kernel,
//!   where Landlock and the mount view still decide;
//! - anything else goes through the same resolve-decide-open core as SDK
//!   requests (`decide::decide_and_open`): the file the rules (or a person)
//!   allow is opened by the supervisor with exactly the access the call
//!   asked for and placed in the program with `SECCOMP_IOCTL_NOTIF_ADDFD`
//!   as the call's result; the decision is recorded first. What the rules
//!   decide is served on the reader thread; a call that waits for a person
//!   goes to a task on the broker's runtime;
//! - what the broker refuses is also left to the kernel, so the program
//!   gets exactly the error it gets without transparent brokering
//!   (`EACCES`, or `ENOENT` where the sandbox reveals that anyway).
//!
//! A call waiting for a person holds only its own thread: other threads'
//! calls are received and answered meanwhile.
//!
//! `rename`, `unlink` and `rmdir` of a name outside the sandbox's write
//! trees are judged with the same rules as an open for writing, and made
//! by the supervisor where they allow it ([`names`]).
//!
//! `connect` is notified too, and made by the connector in the program's
//! own sandbox after the supervisor has judged a named socket ([`connect`]):
//! without the policy-built root, Landlock alone would let the program
//! reach any socket file it can name.
//!
//! # Speed
//!
//! The notifying thread and the reader hand the CPU to each other
//! (`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`), the reader waits in `RECV`
//! itself rather than in `poll`, a call answered with `CONTINUE` costs one
//! memory read (each thread's working directory is remembered between
//! calls), and no call the rules decide leaves the reader thread.
//! `benches/transparent/` measures each part.
//!
//! # Security
//!
//! `CONTINUE` is safe here only because Landlock stays underneath: the
//! kernel reads the path again (the program may have changed it since), and
//! whatever it reads is checked by the sandbox as if there were no broker.
//! For brokered calls the path is read once into the supervisor and the file
//! judged is the file opened (`safe_open`), so swapping the path buffer from
//! another thread gains nothing. The 32-bit and x32 system call ABIs are
//! killed by the filter before anything is notified.
//!
//! # Compatibility
//!
//! Linux 5.19+ (`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`; `ADDFD_FLAG_SEND`
//! is 5.14).

pub(crate) mod call;
pub(crate) mod caller;
pub(crate) mod connect;
mod context;
mod names;
mod notif;
mod serve;
pub(crate) mod socket;
pub(crate) mod stacked;
mod threads;
pub(crate) mod view;
mod watch;

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proto::socket::{recv_frame, Blocking};
use tokio_util::task::TaskTracker;

pub use notif::Listener;
pub use stacked::{filters_at_exec, filters_of, is_stacked};
pub use view::SandboxView;

use super::Shared;

use context::Context;

/// Receives the listener the child sent on `sock` before exec (so, after
/// the launch pipe's end of file, it is already queued).
fn receive_listener(sock: &OwnedFd) -> io::Result<OwnedFd> {
    let mut buf = [0u8; 8];
    let got = recv_frame(sock.as_fd(), &mut buf, Blocking::No)?;
    let mut fds = got.fds.into_iter();
    let (Some(fd), None, false) = (fds.next(), fds.next(), got.ctrunc) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the child did not send exactly one descriptor",
        ));
    };
    let what = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    if what.as_os_str() != "anon_inode:seccomp notify" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the child sent {} instead of a seccomp listener",
                what.display()
            ),
        ));
    }
    Ok(fd)
}

/// The supervisor's ends of a program launched for transparent brokering.
#[derive(Debug)]
pub struct Program {
    /// The seccomp user-notification listener.
    pub listener: OwnedFd,
    /// The socket of the connector (`sandbox_child::connector`), which makes
    /// the program's `connect` calls; without it they fail with `EPERM`.
    pub connector: Option<OwnedFd>,
    /// How many seccomp filters the program runs under at exec
    /// ([`filters_at_exec`]): a thread under more is inside a sandbox of
    /// its own, and is served nothing beyond it ([`stacked`]).
    pub filters: u32,
}

impl Program {
    /// Takes the launch's hand-over socket: receives the listener the child
    /// sent over it, and keeps the socket as the connector's (the child
    /// forked the connector holding the other end).
    pub fn receive(handover: OwnedFd, filters: u32) -> io::Result<Program> {
        Ok(Program {
            listener: receive_listener(&handover)?,
            connector: Some(handover),
            filters,
        })
    }

    /// How many descriptors this holds.
    pub fn descriptors(&self) -> usize {
        1 + usize::from(self.connector.is_some())
    }
}

/// The running notification reader.
pub struct Transparent {
    stopping: Arc<AtomicBool>,
    reader: std::thread::JoinHandle<()>,
    /// Disconnected the moment the reader returns (it holds the sender):
    /// [`Transparent::stop`] waits on it rather than sleeping.
    gone: std::sync::mpsc::Receiver<()>,
    tracker: TaskTracker,
}

impl Transparent {
    /// Starts the reader thread; calls a person must answer run as tasks
    /// on `runtime`.
    pub fn start(
        program: Program,
        shared: Arc<Shared>,
        runtime: tokio::runtime::Handle,
    ) -> io::Result<Transparent> {
        let listener = Listener::new(program.listener)?;
        install_wake_handler()?;
        let tracker = TaskTracker::new();
        let stopping = Arc::new(AtomicBool::new(false));
        // One view for both: making one lists `/` and resolves its symlinks.
        let view = SandboxView::new(&shared.policy.filesystem);
        let ctx = Arc::new(Context {
            guard: super::guard::Guard::new(
                &shared.policy.filesystem,
                program.filters,
                view.clone(),
            ),
            view,
            brokering: shared.policy.transparent,
            shared,
            listener,
            runtime,
            tracker: tracker.clone(),
            connector: program.connector,
            stacking: stacked::Stacking::new(program.filters),
            network_told: AtomicBool::new(false),
        });
        let stop = stopping.clone();
        let (done, gone) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::Builder::new()
            .name("sluice-notify".into())
            .spawn(move || {
                let _done = done;
                read_loop(&ctx, &stop)
            })?;
        Ok(Transparent {
            stopping,
            reader,
            gone,
            tracker,
        })
    }

    /// Stops reading and waits (briefly) for calls being served; whether
    /// they all finished.
    pub fn stop(self, runtime: &tokio::runtime::Runtime) -> bool {
        self.stopping.store(true, Ordering::SeqCst);
        // The reader may be between its check of `stopping` and its wait:
        // the signal then arrives too early, so it is sent until the
        // reader has gone. Its end is seen at once (the channel
        // disconnects), not at the next millisecond: a launch used to
        // sleep a whole one here after every program.
        let thread = self.reader.as_pthread_t();
        while !self.reader.is_finished() {
            // SAFETY: the thread has not been joined, so its id is valid.
            unsafe { libc::pthread_kill(thread, wake_signal()) };
            let waited = self.gone.recv_timeout(Duration::from_millis(1));
            if waited == Err(std::sync::mpsc::RecvTimeoutError::Disconnected) {
                break;
            }
        }
        if self.reader.join().is_err() {
            tracing::error!("transparent: the notification reader panicked");
        }
        self.tracker.close();
        let waited = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await
        });
        if waited.is_err() {
            tracing::warn!("transparent: calls still in progress after 5 seconds; dropped");
        }
        waited.is_ok()
    }
}

/// Receives notifications until the program is gone (every thread that
/// could be notified has exited) or `stopping` is set.
///
/// The reader waits in `SECCOMP_IOCTL_NOTIF_RECV` itself, not in `poll`:
/// with the listener's synchronous wake-ups, the notifying thread hands its
/// CPU straight to the reader. [`Transparent::stop`] interrupts the wait
/// with a signal whose handler does nothing.
fn read_loop(ctx: &Arc<Context>, stopping: &AtomicBool) {
    if let Err(e) = unblock_wake_signal() {
        tracing::error!("transparent: cannot unblock the reader's wake-up signal: {e}");
        return;
    }
    let mut threads = threads::Threads::default();
    while !stopping.load(Ordering::SeqCst) {
        match ctx.listener.recv() {
            Ok(notif) => serve::dispatch(ctx, &mut threads, notif),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            // The call went away before it was received, or nobody is left
            // to notify (the kernel answers at once, then, every time).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                if ctx.listener.hung_up() {
                    tracing::debug!("transparent: every thread of the program has exited");
                    return;
                }
            }
            Err(e) => {
                tracing::error!("transparent: receiving a notification failed: {e}");
                return;
            }
        }
    }
}

/// The signal that interrupts the reader's wait: a real-time one, which
/// nothing else in sluice (or in the Rust runtime) uses.
fn wake_signal() -> libc::c_int {
    libc::SIGRTMIN() + 2
}

extern "C" fn ignore(_: libc::c_int) {}

/// A handler that does nothing, installed without `SA_RESTART` so the
/// interrupted wait returns `EINTR` instead of resuming. (With the signal's
/// default action, the whole supervisor would exit.)
fn install_wake_handler() -> io::Result<()> {
    // SAFETY: a zeroed sigaction with a handler that touches nothing is
    // valid; `sa_mask` is emptied before use.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(wake_signal(), &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn unblock_wake_signal() -> io::Result<()> {
    // SAFETY: sigset operations on a zeroed local set.
    let rc = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, wake_signal());
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}
