//! Transparent brokering and the guard, child side: the program's filter
//! and the hand-over of its listener to the supervisor.
//!
//! The filter is the user-notification filter and the deny filter in one
//! program ([`seccomp::Program::supervised`]): it decides as the two
//! stacked would (the most severe result wins, so an `ERRNO` or `KILL` of
//! the deny part always beats `USER_NOTIF`, and the foreign-ABI guard at
//! its start kills an `int 0x80` before anything is notified), and it
//! refuses the program a listener of its own once it is in place. It is the
//! program's last `seccomp` call before exec: what it notifies, the calls
//! that add a filter among them, never waits for a supervisor that does not
//! hold the listener yet. The listener goes to the supervisor over a socket
//! pair made for it alone (close-on-exec, so the program never holds it),
//! then is closed here: the program cannot answer its own notifications.

use std::os::raw::c_int;

use crate::seccomp;
use crate::sys;

/// What the child needs for transparent brokering, prepared before fork.
pub(crate) struct Notify {
    /// The program's one filter, the deny filter included.
    pub program: seccomp::Program,
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
