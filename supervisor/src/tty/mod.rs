//! The person's terminal, owned by sluice.
//!
//! When sluice's standard input and output are a terminal (and sluice is in
//! its foreground), the program gets a pseudo-terminal of its own: the child
//! makes the pty's slave its controlling terminal in a new session and its
//! standard input and output (and error, when that was a terminal too) before
//! any other step of the sandbox, so no process of the sandbox holds a
//! descriptor of the person's terminal. TIOCSTI into it, reading the
//! person's keystrokes, or changing its modes are impossible by
//! construction, not by filter.
//!
//! sluice puts the person's terminal in raw mode (restored on every way
//! out), gives the pty the modes and size the person's terminal had, and a
//! relay thread ([`relay`]) copies bytes both ways, passes window size
//! changes on (SIGWINCH, read from a signalfd on Linux, a kqueue on macOS:
//! [`pty::WindowChanges`]), and shows approval prompts
//! ([`crate::prompt`]): while one is open the program's output is not read
//! (it waits in the pty, nothing is lost) and the person's keys answer the
//! prompt instead of reaching the program.
//!
//! Without a pty (sluice's stdout a pipe, or sluice in the background),
//! [`Piped`] gives the program a pipe for each standard descriptor that is
//! the person's terminal, relayed through the same filter ([`bare`]).
//!
//! # Compatibility
//! Linux: `TIOCGPTPEER` (4.13) opens the slave through the master. macOS:
//! the same code over the per-OS calls of [`crate::sys::pty`] (the slave
//! opened by its devfs name, SIGWINCH from a kqueue) and
//! [`crate::sys::io::poll_terminals`] (over `select(2)`); type-checked for both Apple
//! targets, never run there.

#[cfg(target_os = "linux")]
mod bare;
mod clipboard;
mod keys;
mod relay;
mod screen;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use std::thread::JoinHandle;

use sandbox_child::ChildTerminal;

#[cfg(target_os = "linux")]
pub use bare::Piped;

use crate::sys::io::Waker;
use crate::sys::pty;

use crate::prompt::Prompter;

/// The signal the relay handles itself: the supervisor must leave it unread.
pub const WINDOW_CHANGE: libc::c_int = libc::SIGWINCH;

const STDIN: i32 = 0;
const STDOUT: i32 = 1;
const STDERR: i32 = 2;

/// The pty made for the program, before the program runs.
pub struct Terminal {
    master: OwnedFd,
    slave: Option<OwnedFd>,
    /// The person's terminal's modes, put back at the end.
    saved: libc::termios,
    stderr: bool,
}

impl Terminal {
    /// A pty for the program when sluice's stdin and stdout are a terminal
    /// and sluice is in its foreground; `None` otherwise (then no prompt is
    /// ever shown). Called before the fork.
    pub fn take() -> io::Result<Option<Terminal>> {
        if !(pty::is_terminal(STDIN) && pty::is_terminal(STDOUT) && pty::in_foreground(STDIN)) {
            return Ok(None);
        }
        let saved = pty::get_termios(STDIN)?;
        let (master, slave) = pty::open_pty()?;
        // The program starts with the modes the person's terminal had.
        pty::set_termios(slave.as_raw_fd(), &saved)?;
        if let Ok(size) = pty::get_size(STDOUT) {
            pty::set_size(master.as_raw_fd(), &size)?;
        }
        Ok(Some(Terminal {
            master,
            slave: Some(slave),
            saved,
            stderr: pty::is_terminal(STDERR),
        }))
    }

    /// What the child needs (the slave); the supervisor's copy goes with
    /// the launch plan, which is dropped after the fork.
    pub fn child_side(&mut self) -> Option<ChildTerminal> {
        let slave = self.slave.take()?;
        Some(ChildTerminal {
            slave,
            stderr: self.stderr,
        })
    }

    /// Puts the person's terminal in raw mode and starts relaying. With a
    /// prompter, its questions are shown on the person's terminal.
    pub fn relay(self, prompter: Option<Arc<Prompter>>) -> io::Result<Relay> {
        let raw = Arc::new(pty::RawMode::enter(STDIN, self.saved)?);
        let stop = Arc::new(Waker::new()?);
        let pump = relay::Pump::new(self.master, stop.clone(), prompter, raw.clone())?;
        Relay::start(stop, Some(raw), move || pump.run())
    }
}

/// The relay thread, running until [`Relay::finish`].
pub struct Relay {
    thread: JoinHandle<io::Result<()>>,
    stop: Arc<Waker>,
    /// Shared with the relay thread, which gives the terminal its modes
    /// back while sluice is stopped. `None`: pipes, no pty ([`Piped`]).
    _raw: Option<Arc<pty::RawMode>>,
}

impl Relay {
    /// Runs `pump` on the relay thread, which `stop` ends.
    fn start(
        stop: Arc<Waker>,
        raw: Option<Arc<pty::RawMode>>,
        pump: impl FnOnce() -> io::Result<()> + Send + 'static,
    ) -> io::Result<Relay> {
        let thread = std::thread::Builder::new()
            .name("sluice-tty".into())
            .spawn(pump)?;
        Ok(Relay {
            thread,
            stop,
            _raw: raw,
        })
    }

    /// The signals the relay handles itself, which the supervisor must
    /// leave unread: the window changes, for a pty.
    #[cfg(target_os = "linux")]
    pub fn signals(&self) -> &'static [libc::c_int] {
        match self._raw {
            Some(_) => &[WINDOW_CHANGE],
            None => &[],
        }
    }

    /// After the program and everything it started are gone: relays what is
    /// left in the pty, answers open questions with the fallback, stops the
    /// thread and restores the person's terminal.
    pub fn finish(self) {
        self.stop.wake();
        match self.thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("terminal relay: {e}"),
            Err(_) => tracing::error!("terminal relay: the thread panicked"),
        }
        // Dropping the last `_raw` (the thread's is gone) restores the modes.
    }
}
