//! The relay thread: one poll(2) loop over the person's terminal, the pty's
//! master, the window-change signal, the prompter's wake-up and the stop
//! request.
//!
//! Without a prompt open, the program's output goes to the person's
//! terminal as it comes (watched by [`Screen`], its clipboard,
//! remote-control and file-transfer sequences taken out by
//! [`ClipboardFilter`]) and the person's input goes
//! to the program (buffered here, the master being non-blocking, so a
//! program that does not read its input never stalls its output). With a
//! prompt open, the master is not read: the program's output waits in the
//! pty and the program blocks when it is full; the person's next key
//! answers the prompt and reaches no one else.
//!
//! Only a key pressed after the prompt was drawn answers it. The input is
//! cut into keys ([`Keys`]): the bytes of an escape sequence (the
//! terminal's replies to the program's queries among them) are never an
//! answer. Input pending when the prompt opens, the program's unread
//! type-ahead included, is discarded, and so is everything until the
//! terminal answers a query of sluice's own written after the prompt (a
//! fence: the terminal answers in order, so every reply to the program's
//! earlier queries comes before it) and the input is then quiet for a
//! moment; the prompt says how much was discarded.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::clipboard::ClipboardFilter;
use super::keys::{Keys, Token};
use super::screen::Screen;
use super::{STDIN, STDOUT};
use crate::prompt::render::{self, Choice, View};
use crate::prompt::Prompter;
use crate::sys::io::{self as fdio, Waker};
use crate::sys::pty::{self, WindowChanges};

/// Input for the program held while it does not read it.
const MAX_PENDING_INPUT: usize = 64 * 1024;
/// How much of what the program already wrote is shown before a prompt.
const WRITTEN_BEFORE: usize = 64 * 1024;
/// How much more of the program's output is read to let an escape sequence
/// it is writing finish before a prompt.
const SEQUENCE_GRACE: usize = 4096;
/// The fence: a primary device attributes query (DA1), which every
/// terminal answers (`CSI ? ... c`).
const FENCE_QUERY: &[u8] = b"\x1b[c";
/// How long the fence waits for a terminal that never answers.
const FENCE_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest wait for a stop of sluice's own group to be over: a group
/// the kernel finds orphaned is neither stopped (`SIGTSTP` discarded) nor
/// continued.
const STOP_WAIT: Duration = Duration::from_secs(1);
/// After the fence (answered or timed out), how long the input must be
/// quiet before keys answer: what the terminal still sends in a burst (a
/// reply the fence was not told of, a held key) is discarded too.
const QUIET: Duration = Duration::from_millis(200);
/// Most pending input read (and discarded) at once when a prompt opens; the
/// rest is discarded as it comes, before the fence's reply.
const DISCARD_AT_OPEN: usize = 256 * 1024;

pub(super) struct Pump {
    master: OwnedFd,
    winch: WindowChanges,
    stop: Arc<Waker>,
    prompter: Option<Arc<Prompter>>,
    screen: Screen,
    /// Takes the program's clipboard sequences out of its output.
    clipboard: ClipboardFilter,
    /// The person's input, cut into keys.
    keys: Keys,
    /// Replies to the program's DA1 queries seen in the input: with
    /// [`Screen::da1_queries`], how many are still to come before the
    /// fence's own.
    da1_replies: u64,
    to_program: Vec<u8>,
    /// The person's terminal still gives input / takes output.
    input_open: bool,
    output_open: bool,
    /// Some process of the program still holds the pty.
    master_open: bool,
    prompt: Option<Open>,
    /// After a prompt: the program's line and attributes are to be put back
    /// before its next output (unless another prompt comes first).
    resume_pending: bool,
    raw: Arc<pty::RawMode>,
}

/// What the input must do before keys answer a prompt.
#[derive(Debug, Clone, Copy)]
struct Fence {
    /// DA1 replies still to come (the program's, then sluice's own); 0:
    /// the input must then be quiet for [`QUIET`].
    replies: u64,
    /// When to stop waiting for them, or the end of the quiet.
    until: Instant,
}

impl Fence {
    fn quiet() -> Fence {
        Fence {
            replies: 0,
            until: Instant::now() + QUIET,
        }
    }
}

struct Open {
    view: View,
    status: String,
    deadline: Instant,
    /// Until keys answer. `None`: they do.
    fence: Option<Fence>,
    /// Bytes of input discarded since the prompt opened.
    discarded: usize,
}

impl Pump {
    pub(super) fn new(
        master: OwnedFd,
        stop: Arc<Waker>,
        prompter: Option<Arc<Prompter>>,
        raw: Arc<pty::RawMode>,
    ) -> io::Result<Pump> {
        fdio::set_nonblocking(master.as_fd())?;
        Ok(Pump {
            master,
            // The supervisor leaves SIGWINCH to this (Linux: blocked in
            // every thread, `supervise_except`; macOS: its kqueue does not
            // forward it).
            winch: WindowChanges::new()?,
            stop,
            prompter,
            screen: Screen::default(),
            clipboard: ClipboardFilter::default(),
            keys: Keys::default(),
            da1_replies: 0,
            to_program: Vec::new(),
            input_open: true,
            output_open: true,
            master_open: true,
            prompt: None,
            resume_pending: false,
            raw,
        })
    }

    pub(super) fn run(mut self) -> io::Result<()> {
        // A change of size before the window changes were watched (macOS's
        // kqueue sees only signals after it is made) is caught here; the
        // kernel signals the program only if the size differs.
        self.resize();
        let result = self.pump();
        // Whatever happened, nobody answers from here on.
        if let Some(p) = &self.prompter {
            p.close();
        }
        result
    }

    fn pump(&mut self) -> io::Result<()> {
        loop {
            if self.prompt.is_none() {
                self.open_prompt()?;
            }
            let wake = self.prompter.as_ref().map(|p| p.wake_fd().as_raw_fd());
            let mut fds = [
                pollfd(self.stop.fd().as_raw_fd(), libc::POLLIN),
                pollfd(self.winch.fd().as_raw_fd(), libc::POLLIN),
                pollfd(wake.unwrap_or(-1), libc::POLLIN),
                pollfd(if self.input_open { STDIN } else { -1 }, libc::POLLIN),
                pollfd(self.master_fd(), self.master_events()),
            ];
            if self.input_open
                && self.prompt.is_none()
                && self.to_program.len() >= MAX_PENDING_INPUT
            {
                fds[3].fd = -1;
            }
            fdio::poll_terminals(&mut fds, self.poll_timeout())?;
            let ready = |i: usize| fds[i].revents != 0;
            // The window change first: input typed after a resize must find
            // the program's terminal resized.
            if ready(1) {
                self.winch.drain();
                self.resize();
            }
            if ready(2) {
                if let Some(p) = &self.prompter {
                    p.woken();
                }
                self.refresh_prompt()?;
            }
            if ready(3) {
                self.person_input()?;
            }
            if ready(4) {
                self.master_ready(fds[4].revents)?;
            }
            self.fence_timer();
            if self
                .prompt
                .as_ref()
                .is_some_and(|o| Instant::now() >= o.deadline)
            {
                self.close_prompt(Choice::Timeout)?;
            }
            if ready(0) {
                return self.finish();
            }
        }
    }

    fn master_fd(&self) -> RawFd {
        // Not polled at all when nothing is wanted of it: a hung-up master
        // reports POLLHUP whatever was asked, and would spin the loop.
        if self.master_open && self.master_events() != 0 {
            self.master.as_raw_fd()
        } else {
            -1
        }
    }

    fn master_events(&self) -> libc::c_short {
        let mut events = 0;
        if self.prompt.is_none() {
            events |= libc::POLLIN;
        }
        if !self.to_program.is_empty() {
            events |= libc::POLLOUT;
        }
        events
    }

    fn poll_timeout(&self) -> libc::c_int {
        match &self.prompt {
            None => -1,
            Some(open) => {
                let until = match open.fence {
                    Some(fence) => fence.until.min(open.deadline),
                    None => open.deadline,
                };
                let left = until.saturating_duration_since(Instant::now());
                // Rounded up, so the deadline has passed when poll returns.
                left.as_millis().saturating_add(1).min(i32::MAX as u128) as libc::c_int
            }
        }
    }

    fn resize(&self) {
        if let Ok(size) = pty::get_size(STDOUT) {
            if let Err(e) = pty::set_size(self.master.as_raw_fd(), &size) {
                tracing::debug!("terminal relay: resizing the program's terminal: {e}");
            }
        }
    }

    /// Writes to the person's terminal; once that fails (it hung up), the
    /// rest is dropped so the program never blocks on it.
    fn show(&mut self, bytes: &[u8]) {
        if self.output_open && fdio::write_all(STDOUT, bytes).is_err() {
            self.output_open = false;
        }
    }

    fn person_input(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        let n = match fdio::read(STDIN, &mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(_) => 0,
        };
        if n == 0 {
            // The terminal hung up: no one can answer a prompt any more,
            // and the program hears of it as it would on its own terminal
            // (it is in a session of its own, out of reach of the hangup).
            self.input_open = false;
            if self.master_open {
                pty::signal_foreground(self.master.as_fd(), libc::SIGHUP);
            }
            if let Some(p) = &self.prompter {
                p.close();
            }
            self.prompt = None;
            return Ok(());
        }
        if self.prompt.is_some() {
            return self.prompt_input(&buf[..n]);
        }
        let input = &buf[..n];
        self.count_replies(input);
        if !self.master_open {
            return Ok(());
        }
        match self.suspend_key(input) {
            Some((at, group)) => {
                self.to_program.extend_from_slice(&input[..at]);
                self.suspend(group);
                self.to_program.extend_from_slice(&input[at + 1..]);
            }
            None => self.to_program.extend_from_slice(input),
        }
        Ok(())
    }

    /// Follows input that goes to the program (or is discarded), counting
    /// the terminal's replies to the program's DA1 queries.
    fn count_replies(&mut self, input: &[u8]) {
        let mut replies = 0;
        self.keys.feed(input, |t| {
            replies += u64::from(t == Token::DeviceAttributes)
        });
        self.da1_replies += replies;
    }

    /// Input while a prompt is open: discarded until the fence's reply,
    /// then the first key answers. The rest of what came with it was typed
    /// at the prompt too, and goes nowhere.
    fn prompt_input(&mut self, input: &[u8]) -> io::Result<()> {
        for &b in input {
            let token = self.keys.byte(b);
            let Some(open) = &mut self.prompt else {
                // Answered: what follows is only followed.
                continue;
            };
            if let Some(fence) = &mut open.fence {
                open.discarded += 1;
                match (fence.replies, token) {
                    // Input keeps coming: the quiet starts again.
                    (0, _) => fence.until = Instant::now() + QUIET,
                    (1, Some(Token::DeviceAttributes)) => {
                        // The fence's own reply was not input.
                        open.discarded = open.discarded.saturating_sub(self.keys.token_len());
                        *fence = Fence::quiet();
                    }
                    (_, Some(Token::DeviceAttributes)) => {
                        fence.replies -= 1;
                        self.da1_replies += 1;
                    }
                    _ => {}
                }
                continue;
            }
            let choice = match token {
                Some(Token::Key(key)) => open.view.choice(key),
                // A character beyond ASCII or a paste: not a choice.
                Some(Token::Text) => Choice::DenyOnce,
                // A function key, a report, a late reply: not an answer.
                Some(Token::Sequence | Token::DeviceAttributes) | None => continue,
            };
            self.close_prompt(choice)?;
        }
        Ok(())
    }

    /// The fence's time ran out: a terminal that does not answer DA1 (or
    /// not in time) has the input wait for the quiet; after the quiet, keys
    /// answer.
    fn fence_timer(&mut self) {
        let Some(fence) = self.prompt.as_mut().and_then(|o| o.fence.as_mut()) else {
            return;
        };
        if Instant::now() < fence.until {
            return;
        }
        if fence.replies > 0 {
            *fence = Fence::quiet();
            self.da1_replies = self.screen.da1_queries();
        } else {
            self.fence_passed();
        }
    }

    /// The terminal answered the fence and the input was quiet (or the
    /// terminal never answers): the status line is drawn, and the next key
    /// answers.
    fn fence_passed(&mut self) {
        let Some(open) = &mut self.prompt else {
            return;
        };
        open.fence = None;
        open.status = render::status(&open.view);
        let mut shown = String::new();
        if open.discarded > 0 {
            shown = render::discarded(open.discarded);
        }
        shown += &open.status;
        self.show(shown.as_bytes());
    }

    /// Where in `input` the person asked to suspend the program, and the
    /// program's process group, when its own terminal cannot do it: the
    /// suspend character (`VSUSP`, Ctrl-Z) with signals on (`ISIG`), while
    /// the foreground group is the program's own. The program leads a
    /// session of its own, so that group is orphaned, and the kernel
    /// discards a terminal's stop for it. (A job of a shell the program
    /// runs is not orphaned: its shell stops it, and this stays out.)
    fn suspend_key(&self, input: &[u8]) -> Option<(usize, libc::pid_t)> {
        let master = self.master.as_raw_fd();
        let modes = pty::get_termios(master).ok()?;
        // The person's own suspend character, where the program's terminal
        // would act on it too: the program sets its pty's, and a key of its
        // choosing (a space, Enter) suspended the session mid-line, the rest
        // of what the person typed then going to their shell.
        let key = modes.c_cc[libc::VSUSP];
        if modes.c_lflag & libc::ISIG == 0 || key == 0 || key != self.raw.suspend_char() {
            return None;
        }
        let at = input.iter().position(|&b| b == key)?;
        let (group, session) = pty::group_and_session(master);
        (group > 0 && group == session).then_some((at, group))
    }

    /// Suspends the whole session, as the person's terminal would have
    /// without the relay: stops the program's group, gives the terminal its
    /// modes back (the line discipline's, and the screen's settings a shell
    /// expects: [`Screen::give_back`], so no mouse report types into the
    /// shell meanwhile) and stops sluice's own process group (`SIGTSTP`,
    /// which the kernel discards for an orphaned group, so sluice never
    /// stops where no shell could continue it). When continued: raw mode,
    /// the program's settings written again, the window size checked (a
    /// full-screen program's redrawn), and the program continued.
    fn suspend(&mut self, group: libc::pid_t) {
        // Errors ignored: a group already gone has nothing to stop.
        let group = Pid::from_raw(group);
        let _ = killpg(group, Signal::SIGSTOP);
        let back = self.screen.give_back();
        self.show(&back);
        if let Err(e) = self.raw.pause() {
            tracing::debug!("terminal relay: restoring the modes to stop: {e}");
        }
        // Our own process group; on from here once continued.
        pty::stop_own_group(STOP_WAIT);
        if let Err(e) = self.raw.resume() {
            tracing::debug!("terminal relay: raw mode after a stop: {e}");
        }
        let again = self.screen.take_back();
        self.show(&again);
        self.resize();
        if self.screen.alternate() {
            self.redraw();
        }
        let _ = killpg(group, Signal::SIGCONT);
    }

    fn master_ready(&mut self, revents: libc::c_short) -> io::Result<()> {
        if revents & libc::POLLOUT != 0 {
            match fdio::write(self.master.as_raw_fd(), &self.to_program) {
                Ok(n) => {
                    self.to_program.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => self.to_program.clear(),
            }
        }
        if self.prompt.is_none() && revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            self.program_output(usize::MAX);
        }
        Ok(())
    }

    /// Relays what the program wrote, up to `limit` bytes (or until it
    /// would block). Returns how much was relayed.
    fn program_output(&mut self, limit: usize) -> usize {
        let mut buf = [0u8; 16 * 1024];
        let want = buf.len().min(limit);
        match fdio::read(self.master.as_raw_fd(), &mut buf[..want]) {
            Ok(0) => {
                self.master_open = false;
                0
            }
            Ok(n) => {
                if std::mem::take(&mut self.resume_pending) {
                    let resume = self.screen.resume();
                    self.show(&resume);
                }
                let shown = self.clipboard.filter(&buf[..n]);
                self.screen.track(&shown);
                self.show(&shown);
                n
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            // EIO: every process of the program closed the pty.
            Err(_) => {
                self.master_open = false;
                self.to_program.clear();
                0
            }
        }
    }

    /// Shows the next question, if one waits.
    fn open_prompt(&mut self) -> io::Result<()> {
        let Some(prompter) = self.prompter.clone() else {
            return Ok(());
        };
        if !self.input_open {
            return Ok(());
        }
        let Some(view) = prompter.next() else {
            return Ok(());
        };
        // Input pending now came before the question: it answers nothing
        // and, the person having no way to know which of it the program
        // got, reaches no one.
        let discarded = self.discard_pending();
        // What the program wrote before it asked is shown before the
        // question (up to a bound), and an escape sequence it is writing may
        // finish if its bytes are already here; `interrupt` cancels it
        // otherwise.
        let mut before = WRITTEN_BEFORE;
        while self.master_open && before > 0 {
            match self.program_output(before) {
                0 => break,
                n => before -= n,
            }
        }
        let mut grace = SEQUENCE_GRACE;
        while self.master_open && self.screen.in_sequence() && grace > 0 {
            match self.program_output(grace.min(64)) {
                0 => break,
                n => grace = grace.saturating_sub(n),
            }
        }
        let mut out = Vec::new();
        if !std::mem::take(&mut self.resume_pending) {
            out = self.screen.interrupt();
        }
        out.extend_from_slice(&render::prompt(&view));
        out.extend_from_slice(FENCE_QUERY);
        self.show(&out);
        let now = Instant::now();
        // The program's DA1 queries not answered yet are answered first.
        let before = self.screen.da1_queries().saturating_sub(self.da1_replies);
        self.prompt = Some(Open {
            status: String::new(),
            deadline: now + prompter.timeout(),
            view,
            fence: Some(Fence {
                replies: before + 1,
                until: now + FENCE_TIMEOUT,
            }),
            discarded,
        });
        Ok(())
    }

    /// Throws away the input that waits: the program's unread type-ahead
    /// and what the person's terminal holds. Returns how many bytes.
    fn discard_pending(&mut self) -> usize {
        let mut discarded = std::mem::take(&mut self.to_program).len();
        let mut fds = [pollfd(STDIN, libc::POLLIN)];
        while discarded < DISCARD_AT_OPEN
            && fdio::poll_terminals(&mut fds, 0).is_ok()
            && fds[0].revents & libc::POLLIN != 0
        {
            let mut buf = [0u8; 4096];
            match fdio::read(STDIN, &mut buf) {
                Ok(n) if n > 0 => {
                    self.count_replies(&buf[..n]);
                    discarded += n;
                }
                _ => break,
            }
        }
        discarded
    }

    /// Redraws the open prompt's status line when requests joined it or
    /// queued behind it.
    fn refresh_prompt(&mut self) -> io::Result<()> {
        let (Some(open), Some(p)) = (&self.prompt, &self.prompter) else {
            return Ok(());
        };
        let Some(view) = p.refresh(open.view.id) else {
            return Ok(());
        };
        let status = render::status(&view);
        let drawn = open.fence.is_none();
        if status != open.status && drawn {
            self.show(status.as_bytes());
        }
        if let Some(open) = &mut self.prompt {
            if drawn {
                open.status = status;
            }
            open.view = view;
        }
        Ok(())
    }

    fn close_prompt(&mut self, choice: Choice) -> io::Result<()> {
        let Some(open) = self.prompt.take() else {
            return Ok(());
        };
        let discarded = (open.discarded > 0).then(|| render::discarded_note(open.discarded));
        let note = self
            .prompter
            .as_ref()
            .and_then(|p| p.answer(open.view.id, choice, discarded.as_deref()));
        self.show(&render::answered(&open.view, choice, note.as_deref()));
        self.resume_pending = true;
        if self.screen.alternate() {
            self.redraw();
        }
        Ok(())
    }

    /// Has a full-screen program draw its screen again over the prompt:
    /// its terminal's size changed and changed back, two `SIGWINCH`es (the
    /// kernel sends one only for a real change), the last at its size.
    fn redraw(&self) {
        let master = self.master.as_raw_fd();
        let Ok(size) = pty::get_size(master) else {
            return;
        };
        let nudged = libc::winsize {
            ws_col: size.ws_col.saturating_sub(1).max(1),
            ..size
        };
        if nudged.ws_col == size.ws_col {
            return;
        }
        for size in [&nudged, &size] {
            if let Err(e) = pty::set_size(master, size) {
                tracing::debug!("terminal relay: redrawing the program's screen: {e}");
            }
        }
    }

    /// The program is gone: relay what it left in the pty, say what
    /// became of an open prompt, and give the terminal back with the
    /// settings a shell expects ([`Screen::give_back`]).
    fn finish(&mut self) -> io::Result<()> {
        if self.prompt.take().is_some() {
            self.show(b"\r\x1b[K\x1b[1msluice:\x1b[0m the program ended before the question was answered\r\n");
            self.resume_pending = true;
        }
        while self.master_open && self.program_output(usize::MAX) > 0 {}
        // What the clipboard filter held (a lone `ESC` at the very end).
        let held = self.clipboard.flush();
        self.screen.track(&held);
        self.show(&held);
        let back = self.screen.give_back();
        self.show(&back);
        if self.screen.asked() && self.input_open && self.output_open {
            self.exit_fence();
        }
        Ok(())
    }

    /// The terminal's replies to what the program asked last would reach
    /// the person's input after this relay stops reading it: the shell
    /// would read them as typed (an answerback, a report with the text the
    /// program chose). So a fence, as for a prompt: everything until the
    /// terminal answers a query of sluice's own is read and discarded
    /// ([`FENCE_TIMEOUT`] at most, for a terminal that never answers).
    fn exit_fence(&mut self) {
        let pending = self.screen.da1_queries().saturating_sub(self.da1_replies);
        exit_fence(&mut self.keys, pending, STDOUT);
    }
}

/// Writes the fence's query to the person's terminal (`out`) and reads and
/// discards its input until the terminal answered it, after the `pending`
/// replies to the program's own queries ([`FENCE_TIMEOUT`] at most). The
/// terminal is in raw mode: replies carry no newline.
pub(super) fn exit_fence(keys: &mut Keys, pending: u64, out: RawFd) {
    if fdio::write_all(out, FENCE_QUERY).is_err() {
        return;
    }
    let mut replies = pending.saturating_add(1);
    let until = Instant::now() + FENCE_TIMEOUT;
    let mut buf = [0u8; 4096];
    while replies > 0 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::debug!("terminal relay: the terminal did not answer the exit fence");
            return;
        }
        let mut fds = [pollfd(STDIN, libc::POLLIN)];
        let timeout = left.as_millis().saturating_add(1).min(i32::MAX as u128);
        if fdio::poll_terminals(&mut fds, timeout as libc::c_int).is_err() {
            return;
        }
        if fds[0].revents == 0 {
            continue;
        }
        let n = match fdio::read(STDIN, &mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        };
        keys.feed(&buf[..n], |t| {
            if t == Token::DeviceAttributes {
                replies = replies.saturating_sub(1);
            }
        });
    }
}

pub(super) fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}
