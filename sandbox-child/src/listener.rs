//! Transparent brokering, child side: the user-notification filter and the
//! hand-over of its listener to the supervisor.
//!
//! The filter is installed just before the deny filter, which refuses the
//! program a listener of its own (and so would refuse this one): the kernel
//! runs every filter and keeps the most severe result, whatever their order,
//! so an `ERRNO` or `KILL` from the deny filter always wins over
//! `USER_NOTIF`, and the foreign-ABI guard at the start of both kills an
//! `int 0x80` before anything is notified. The
//! listener goes to the supervisor over a socket pair made for it alone
//! (close-on-exec, so the program never holds it), then is closed here: the
//! program cannot answer its own notifications.

use std::os::raw::c_int;

use crate::seccomp;
use crate::sys;

/// What the child needs for transparent brokering, prepared before fork.
pub(crate) struct Notify {
    pub program: seccomp::Program,
    /// The deny filter to install instead of the plan's once `program` is
    /// in place: one that leaves to `program` what it notifies (IP sockets
    /// under `[network] mode = "none"`). Without `program` it would allow
    /// them, so it is used only if `program` was installed.
    pub deny: Option<seccomp::Program>,
    /// The child's end of the hand-over socket pair (close-on-exec).
    pub socket: std::os::fd::OwnedFd,
}

/// Installs the notification filter and sends its listener over `socket`.
/// Async-signal-safe.
pub(crate) fn install_and_hand_over(fprog: &libc::sock_fprog, socket: c_int) -> Result<(), i32> {
    // WAIT_KILLABLE_RECV: once the supervisor has received a notification,
    // only a fatal signal interrupts the waiting call, so an approval that
    // takes a while is not restarted over and over by harmless signals.
    let listener =
        seccomp::install_with_listener(fprog, libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)?;
    let sent = send_fd(socket, listener);
    // SAFETY: closing the listener this function was just given.
    unsafe { libc::close(listener) };
    sent
}

/// One byte with `fd` attached (`SCM_RIGHTS`), on a `SOCK_SEQPACKET` socket.
fn send_fd(socket: c_int, fd: c_int) -> Result<(), i32> {
    sys::send_fds(socket, b"L", &[fd])
}
