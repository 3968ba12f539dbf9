//! The person's terminal when sluice makes no pty (its stdin or stdout is
//! not a terminal, or it runs in the background: `sluice run -- make |
//! tee log`): no standard descriptor of the program is the terminal itself.
//! Each of stdin, stdout and stderr that is a terminal becomes a pipe; one
//! thread relays them: the program's output through the same filter as
//! the pty relay ([`ClipboardFilter`], watched by [`Screen`]) to the
//! terminal, the person's input (read only while sluice is in the
//! terminal's foreground) to the program, its end of input closing the
//! pipe. Stdout and stderr on the same terminal share one pipe, so what the
//! program writes on the two keeps its order. At the end, where the program
//! asked the terminal something, the exit fence (in raw mode for its
//! length) keeps the replies from the person's shell.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::clipboard::ClipboardFilter;
use super::keys::{Keys, Token};
use super::relay::{exit_fence, pollfd};
use super::screen::Screen;
use super::{Relay, STDERR, STDIN, STDOUT};
use crate::sys::io::{self as fdio, Waker};
use crate::sys::pty;

/// Input for the program held while it does not read it.
const MAX_PENDING_INPUT: usize = 64 * 1024;
/// How often the input is looked at again while sluice is in the
/// background (reading the terminal there would stop it).
const BACKGROUND_RECHECK: Duration = Duration::from_millis(250);

/// The pipes made for the program's standard descriptors that were the
/// person's terminal, before the program runs.
pub struct Piped {
    /// The program's ends, with the numbers they take in it.
    child: Vec<(OwnedFd, RawFd)>,
    /// The program's output: our read end and the terminal it goes to.
    outputs: Vec<Output>,
    /// Our write end of the program's input.
    input: Option<OwnedFd>,
}

struct Output {
    pipe: OwnedFd,
    to: RawFd,
    open: bool,
    clipboard: ClipboardFilter,
    screen: Screen,
}

impl Piped {
    /// Pipes for whichever of stdin, stdout and stderr is a terminal;
    /// `None` (and nothing made) when none is. Called before the fork,
    /// when [`super::Terminal::take`] made no pty.
    pub fn take() -> io::Result<Option<Piped>> {
        let tty = [STDIN, STDOUT, STDERR].map(pty::is_terminal);
        if !tty.contains(&true) {
            return Ok(None);
        }
        let mut piped = Piped {
            child: Vec::new(),
            outputs: Vec::new(),
            input: None,
        };
        if tty[0] {
            let (read, write) = fdio::pipe()?;
            fdio::set_blocking(read.as_fd())?;
            piped.child.push((read, STDIN));
            piped.input = Some(write);
        }
        let shared = tty[1] && tty[2] && pty::same_terminal(STDOUT, STDERR);
        for fd in [STDOUT, STDERR] {
            if !tty[fd as usize] {
                continue;
            }
            if fd == STDERR && shared {
                let theirs = piped.child[piped.child.len() - 1].0.try_clone()?;
                piped.child.push((theirs, STDERR));
                continue;
            }
            let (read, write) = fdio::pipe()?;
            fdio::set_blocking(write.as_fd())?;
            piped.child.push((write, fd));
            piped.outputs.push(Output {
                pipe: read,
                to: fd,
                open: true,
                clipboard: ClipboardFilter::default(),
                screen: Screen::default(),
            });
        }
        Ok(Some(piped))
    }

    /// The program's ends and their numbers; the supervisor's copies go
    /// with the launch plan, dropped after the fork.
    pub fn child_side(&mut self) -> Vec<(OwnedFd, RawFd)> {
        std::mem::take(&mut self.child)
    }

    /// Starts relaying.
    pub fn relay(self) -> io::Result<Relay> {
        let stop = Arc::new(Waker::new()?);
        let pump = Pump {
            outputs: self.outputs,
            input: self.input,
            stop: stop.clone(),
            input_open: true,
            to_program: Vec::new(),
            keys: Keys::default(),
            da1_replies: 0,
        };
        Relay::start(stop, None, move || pump.run())
    }
}

struct Pump {
    outputs: Vec<Output>,
    input: Option<OwnedFd>,
    stop: Arc<Waker>,
    /// The person's terminal still gives input.
    input_open: bool,
    to_program: Vec<u8>,
    /// The person's input, cut into keys: replies to the program's DA1
    /// queries it passed on are not waited for at the end.
    keys: Keys,
    da1_replies: u64,
}

impl Pump {
    fn run(mut self) -> io::Result<()> {
        loop {
            let reading = self.input.is_some()
                && self.input_open
                && self.to_program.len() < MAX_PENDING_INPUT;
            let foreground = reading && pty::in_foreground(STDIN);
            let mut fds = vec![
                pollfd(self.stop.fd().as_raw_fd(), libc::POLLIN),
                pollfd(if foreground { STDIN } else { -1 }, libc::POLLIN),
                pollfd(self.input_fd(), libc::POLLOUT),
            ];
            for out in &self.outputs {
                fds.push(pollfd(
                    if out.open { out.pipe.as_raw_fd() } else { -1 },
                    libc::POLLIN,
                ));
            }
            let timeout = if reading && !foreground {
                BACKGROUND_RECHECK.as_millis() as libc::c_int
            } else {
                -1
            };
            fdio::poll_terminals(&mut fds, timeout)?;
            if fds[1].revents != 0 {
                self.person_input();
            }
            if fds[2].revents != 0 {
                self.feed_program();
            }
            for (i, pfd) in fds[3..].iter().enumerate() {
                // One read each turn: a flood on one output starves neither
                // the other nor the input.
                if pfd.revents != 0 {
                    self.program_output(i);
                }
            }
            if fds[0].revents != 0 {
                self.finish();
                return Ok(());
            }
        }
    }

    fn input_fd(&self) -> RawFd {
        match &self.input {
            Some(fd) if !self.to_program.is_empty() => fd.as_raw_fd(),
            _ => -1,
        }
    }

    fn person_input(&mut self) {
        let mut buf = [0u8; 4096];
        let n = match fdio::read(STDIN, &mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            // Put in the background between the check and the read
            // (SIGTTIN blocked: EIO): not the end of the input.
            Err(_) if !pty::in_foreground(STDIN) => return,
            Err(_) => 0,
        };
        if n == 0 {
            // End of input (Ctrl-D at the start of a line, or a hangup):
            // the program reads its end once what waits is written.
            self.input_open = false;
            if self.to_program.is_empty() {
                self.input = None;
            }
            return;
        }
        let mut replies = 0;
        self.keys.feed(&buf[..n], |t| {
            replies += u64::from(t == Token::DeviceAttributes)
        });
        self.da1_replies += replies;
        self.to_program.extend_from_slice(&buf[..n]);
    }

    fn feed_program(&mut self) {
        let Some(fd) = &self.input else { return };
        match fdio::write(fd.as_raw_fd(), &self.to_program) {
            Ok(n) => {
                self.to_program.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // Every reader is gone.
            Err(_) => {
                self.to_program.clear();
                self.input = None;
            }
        }
        if self.to_program.is_empty() && !self.input_open {
            self.input = None;
        }
    }

    /// Relays what the program wrote on output `i`; how much.
    fn program_output(&mut self, i: usize) -> usize {
        let out = &mut self.outputs[i];
        if !out.open {
            return 0;
        }
        let mut buf = [0u8; 16 * 1024];
        match fdio::read(out.pipe.as_raw_fd(), &mut buf) {
            Ok(n) if n > 0 => {
                let shown = out.clipboard.filter(&buf[..n]);
                out.screen.track(&shown);
                show(out.to, &shown);
                n
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            // Every writer is gone.
            _ => {
                out.open = false;
                0
            }
        }
    }

    /// The program and all it started are gone: what it left in the pipes
    /// is relayed, the terminal given back with the settings a shell
    /// expects ([`Screen::give_back`]), and the exit fence written where
    /// it asked the terminal something.
    fn finish(&mut self) {
        for i in 0..self.outputs.len() {
            while self.program_output(i) > 0 {}
            let out = &mut self.outputs[i];
            let held = out.clipboard.flush();
            out.screen.track(&held);
            show(out.to, &held);
            show(out.to, &out.screen.give_back());
        }
        let asked = self.outputs.iter().find(|o| o.screen.asked());
        let Some(out) = asked else { return };
        // The replies come on the terminal's input: only when that is the
        // same terminal, sluice in its foreground.
        if !pty::is_terminal(STDIN)
            || !pty::in_foreground(STDIN)
            || !pty::same_terminal(STDIN, out.to)
        {
            return;
        }
        let pending = out.screen.da1_queries().saturating_sub(self.da1_replies);
        let to = out.to;
        let raw = pty::get_termios(STDIN).and_then(|saved| pty::RawMode::enter(STDIN, saved));
        match raw {
            Ok(_raw) => exit_fence(&mut self.keys, pending, to),
            Err(e) => tracing::debug!("terminal relay: raw mode for the exit fence: {e}"),
        }
    }
}

/// Writes to the person's terminal; errors (it hung up) drop the rest.
fn show(fd: RawFd, bytes: &[u8]) {
    if !bytes.is_empty() {
        let _ = fdio::write_all(fd, bytes);
    }
}
