//! Transparent brokering: the program's own `open` calls, answered by the
//! broker through seccomp user notification (seccomp_unotify(2)).
//!
//! The child installs a second seccomp filter whose only job is to hand
//! `open`, `openat`, `openat2` and `creat` to the supervisor, and sends its
//! listener here before exec ([`receive_listener`]). One reader thread
//! receives the notifications ([`Transparent::start`]); for each it reads
//! the call's arguments from the program (`process_vm_readv`, checked with
//! `NOTIF_ID_VALID` after every read) and then:
//!
//! - a path the sandbox itself allows ([`view`]) or that only the kernel can
//!   answer for (`O_PATH`, `O_TMPFILE`, the program's `/proc`, openat2 with
//!   `resolve` restrictions, unreadable arguments) is answered on the spot
//!   with `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: the call runs in the kernel,
//!   where Landlock and the mount view still decide;
//! - anything else goes to a task on the broker's runtime, through the same
//!   resolve-decide-open core as SDK requests (`handler::open_path`): the
//!   file the rules (or a person) allow is opened by the supervisor with
//!   exactly the access the call asked for and placed in the program with
//!   `SECCOMP_IOCTL_NOTIF_ADDFD` + `SECCOMP_ADDFD_FLAG_SEND` as the call's
//!   result; the decision is recorded first;
//! - what the broker refuses is also left to the kernel, so the program
//!   gets exactly the error it gets without transparent brokering
//!   (`EACCES`, or `ENOENT` where the sandbox reveals that anyway).
//!
//! A call waiting for a person holds only its own thread: other threads'
//! calls are received and answered meanwhile.
//!
//! # Security
//!
//! `CONTINUE` is safe here only because Landlock stays underneath: the
//! kernel reads the path again (the program may have changed it since), and
//! whatever it reads is checked by the sandbox as if there were no broker.
//! For brokered calls the path is read once into the supervisor and the file
//! judged is the file opened (`fsops`), so swapping the path buffer from
//! another thread gains nothing. The 32-bit and x32 system call ABIs are
//! killed by the filter before anything is notified.
//!
//! # Compatibility
//!
//! Linux 5.19+ (`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`; `ADDFD_FLAG_SEND`
//! is 5.14).

mod call;
mod notif;
mod serve;
mod target;
mod view;

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use proto::socket::{recv_frame, Blocking};
use tokio_util::task::TaskTracker;

pub use view::SandboxView;

use super::Shared;
use notif::Listener;
use serve::Context;

/// Receives the listener the child sent on `sock` before exec (so, after
/// the launch pipe's end of file, it is already queued).
pub fn receive_listener(sock: &OwnedFd) -> io::Result<OwnedFd> {
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

/// The running notification reader.
pub struct Transparent {
    stop: OwnedFd,
    reader: std::thread::JoinHandle<()>,
    tracker: TaskTracker,
}

impl Transparent {
    /// Starts the reader thread; brokered calls run as tasks on `runtime`.
    pub fn start(
        listener: OwnedFd,
        shared: Arc<Shared>,
        runtime: tokio::runtime::Handle,
    ) -> io::Result<Transparent> {
        let listener = Listener::new(listener)?;
        let (stop_rx, stop) = pipe()?;
        let tracker = TaskTracker::new();
        let ctx = Arc::new(Context {
            view: SandboxView::new(&shared.policy.filesystem),
            shared,
            listener,
            runtime,
            tracker: tracker.clone(),
        });
        let reader = std::thread::Builder::new()
            .name("sluice-notify".into())
            .spawn(move || read_loop(&ctx, &stop_rx))?;
        Ok(Transparent {
            stop,
            reader,
            tracker,
        })
    }

    /// Stops reading and waits (briefly) for calls being served.
    pub fn stop(self, runtime: &tokio::runtime::Runtime) {
        // SAFETY: writing one byte from a valid buffer to our pipe.
        unsafe { libc::write(self.stop.as_raw_fd(), b"x".as_ptr().cast(), 1) };
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
    }
}

/// Receives notifications until the program is gone (every thread that
/// could be notified has exited: `POLLHUP`) or `stop` is readable.
fn read_loop(ctx: &Arc<Context>, stop: &OwnedFd) {
    loop {
        let mut fds = [
            libc::pollfd {
                fd: ctx.listener.fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of two pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!("transparent: poll failed: {e}");
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            match ctx.listener.recv() {
                Ok(notif) => serve::dispatch(ctx, notif),
                // The call went away before it was received: go on.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => {
                    tracing::error!("transparent: receiving a notification failed: {e}");
                    return;
                }
            }
        } else if fds[0].revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            tracing::debug!("transparent: every thread of the program has exited");
            return;
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors that we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
