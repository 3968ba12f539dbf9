//! A pseudo-terminal to run `sluice run` on, as a person's terminal would.
//!
//! [`Terminal::spawn`] opens a pty, starts the command in a new session with
//! the pty's slave as its controlling terminal and as stdin, stdout and
//! stderr, and reads the master on a thread into a transcript. The test then
//! waits for text ([`Terminal::expect`]), types ([`Terminal::send`]), resizes
//! the window ([`Terminal::resize`]) and finally collects the exit status.
//!
//! Waiting is for text, never for time: [`Terminal::expect`] returns as soon
//! as the text is there; its guard only turns a hung session into a failure
//! that shows the transcript.
//!
//! Like a real terminal, it answers the status queries written to it, in
//! order and through the same input as the keys typed: primary device
//! attributes (DA1), device status (DSR, cursor position) and mode requests
//! (DECRQM), as xterm does, and ENQ with an answerback as PuTTY does
//! ([`Replies::Xterm`]); or never
//! ([`Replies::None`], [`Terminal::spawn_with`]). Typed keys and replies go
//! through one writer thread, so a reply to output shown before a key was
//! typed reaches the command before that key.
//!
//! ```no_run
//! # fn demo(fx: &sluice_tests::Fixture) {
//! let cmd = fx.sluice_command(&[], &["/bin/sh", "-c", "read x; echo got $x"]);
//! let mut term = sluice_tests::pty::Terminal::spawn(cmd, 24, 80);
//! term.send(b"hello\r");
//! term.expect("got hello");
//! assert_eq!(term.wait().code, 0);
//! # }
//! ```

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Liveness guard for one wait (not a speed check).
const GUARD: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Shared {
    bytes: Vec<u8>,
    /// The master reached EOF or EIO: every holder of the slave is gone.
    closed: bool,
}

/// How the terminal answers the queries written to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replies {
    /// As xterm does.
    Xterm,
    /// As xterm does, over a slow link: each write (a reply, or keys)
    /// waits a millisecond first.
    SlowXterm,
    /// Never (a terminal without replies, or one that ignores them).
    None,
}

pub struct Terminal {
    master: OwnedFd,
    child: Child,
    transcript: Arc<(Mutex<Shared>, Condvar)>,
    reader: Option<JoinHandle<()>>,
    /// Input to the command: typed keys and replies, in order.
    input: Option<mpsc::Sender<Vec<u8>>>,
    writer: Option<JoinHandle<()>>,
    /// How many queries were answered.
    replied: Arc<AtomicUsize>,
    /// How far [`Terminal::expect`] has consumed the transcript.
    seen: usize,
    command: String,
}

/// How a session on the terminal ended.
pub struct Finished {
    pub code: i32,
    /// Everything the terminal showed, as text (lossy).
    pub transcript: String,
    /// The terminal's local modes (`c_lflag`) after the command exited.
    pub local_modes: libc::tcflag_t,
}

fn check(ret: libc::c_int, what: &str) -> libc::c_int {
    assert!(ret >= 0, "{what}: {}", io::Error::last_os_error());
    ret
}

/// A pty pair, both ends close-on-exec (tests fork concurrently: no other
/// test's child may keep the slave open), with the given window size.
pub fn open_pty(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: posix_openpt takes flags, returns a new descriptor or -1.
    let master = check(unsafe { libc::posix_openpt(flags) }, "posix_openpt");
    // SAFETY: a new descriptor owned here.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    // SAFETY: integer arguments on a pty master.
    check(unsafe { libc::grantpt(master.as_raw_fd()) }, "grantpt");
    // SAFETY: as above.
    check(unsafe { libc::unlockpt(master.as_raw_fd()) }, "unlockpt");
    // SAFETY: TIOCGPTPEER takes open flags, returns a new descriptor.
    let slave = check(
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) },
        "TIOCGPTPEER",
    );
    // SAFETY: a new descriptor owned here.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    set_size(&master, rows, cols);
    (master, slave)
}

fn set_size(master: &OwnedFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize.
    check(
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
        "TIOCSWINSZ",
    );
}

impl Terminal {
    /// Starts `cmd` on a new pty of `rows` x `cols`: its own session, the
    /// pty its controlling terminal and all three standard descriptors.
    pub fn spawn(cmd: Command, rows: u16, cols: u16) -> Terminal {
        Terminal::spawn_with(cmd, rows, cols, Replies::Xterm)
    }

    /// [`Terminal::spawn`], answering queries as `replies` says.
    pub fn spawn_with(mut cmd: Command, rows: u16, cols: u16, replies: Replies) -> Terminal {
        let (master, slave) = open_pty(rows, cols);
        let command = format!("{cmd:?}");
        let slave_copy = || Stdio::from(slave.try_clone().expect("dup the slave"));
        cmd.stdin(slave_copy())
            .stdout(slave_copy())
            .stderr(slave_copy());
        // SAFETY: setsid and ioctl are async-signal-safe; nothing else runs.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
        // Our copies of the slave: the master's EIO must mean the session
        // is over.
        drop(cmd);
        drop(slave);
        let transcript = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let (input, queue) = mpsc::channel::<Vec<u8>>();
        let writer = {
            let fd = master.try_clone().expect("dup the master");
            let pace = (replies == Replies::SlowXterm).then_some(Duration::from_millis(1));
            thread::spawn(move || write_all(fd, queue, pace))
        };
        let replied = Arc::new(AtomicUsize::new(0));
        let reader = {
            let fd = master.try_clone().expect("dup the master");
            let transcript = transcript.clone();
            let answer = (replies != Replies::None).then(|| (input.clone(), replied.clone()));
            thread::spawn(move || read_all(fd, &transcript, answer))
        };
        Terminal {
            master,
            child,
            transcript,
            reader: Some(reader),
            input: Some(input),
            writer: Some(writer),
            replied,
            seen: 0,
            command,
        }
    }

    /// Waits until `text` appears in what the terminal showed after the
    /// previous match; returns what came before it, and moves past it.
    #[track_caller]
    pub fn expect(&mut self, text: &str) -> String {
        let (lock, cond) = &*self.transcript;
        let deadline = Instant::now() + GUARD;
        let mut shared = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let rest = &shared.bytes[self.seen..];
            if let Some(at) = find(rest, text.as_bytes()) {
                let before = String::from_utf8_lossy(&rest[..at]).into_owned();
                self.seen += at + text.len();
                return before;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if shared.closed || left.is_zero() {
                let why = if shared.closed {
                    "the session ended"
                } else {
                    "hung"
                };
                panic!(
                    "{why} without showing {text:?}\ncommand: {}\nafter:\n{}",
                    self.command,
                    String::from_utf8_lossy(rest)
                );
            }
            shared = cond.wait_timeout(shared, left).unwrap().0;
        }
    }

    /// Everything shown so far, as text.
    pub fn transcript(&self) -> String {
        let shared = self.transcript.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&shared.bytes).into_owned()
    }

    /// Types `bytes` (in raw mode: `\r` is Enter), after the replies to
    /// what the terminal showed so far; returns at once (the writer thread
    /// types them as the command's side takes them).
    pub fn send(&mut self, bytes: &[u8]) {
        if let Some(input) = &self.input {
            input.send(bytes.to_vec()).expect("the writer thread");
        }
    }

    /// How many queries the terminal answered so far.
    pub fn replies(&self) -> usize {
        self.replied.load(Ordering::SeqCst)
    }

    /// Resizes the window: the session's foreground group gets SIGWINCH.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        set_size(&self.master, rows, cols);
    }

    /// The slave's name, `/dev/pts/N`: the terminal the command was given.
    pub fn slave_name(&self) -> String {
        let mut n: libc::c_uint = 0;
        // SAFETY: TIOCGPTN writes one unsigned int.
        check(
            unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCGPTN, &mut n) },
            "TIOCGPTN",
        );
        format!("/dev/pts/{n}")
    }

    /// The terminal's modes as the command left them (`c_lflag`).
    pub fn local_modes(&self) -> libc::tcflag_t {
        // SAFETY: an all-zero termios is valid; tcgetattr fills it.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: t is a valid out-pointer; a master reports its pty's modes.
        check(
            unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) },
            "tcgetattr",
        );
        t.c_lflag
    }

    /// The pid of `sluice run`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the command to exit and for the terminal to close.
    pub fn wait(mut self) -> Finished {
        let deadline = Instant::now() + GUARD;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                self.child.kill().ok();
                self.child.wait().ok();
                panic!("{} hung\n{}", self.command, self.transcript());
            }
            thread::sleep(Duration::from_millis(5));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the reader thread");
        }
        // The reader held the last other sender: the writer ends.
        drop(self.input.take());
        if let Some(writer) = self.writer.take() {
            writer.join().expect("the writer thread");
        }
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Finished {
            code,
            transcript: self.transcript(),
            local_modes: self.local_modes(),
        }
    }
}

impl Drop for Terminal {
    /// A test that failed half-way leaves no session running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

/// Writes what is queued, in order, until every sender is gone or the
/// command's side is closed.
fn write_all(fd: OwnedFd, queue: mpsc::Receiver<Vec<u8>>, pace: Option<Duration>) {
    for bytes in queue {
        if let Some(pace) = pace {
            thread::sleep(pace);
        }
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            // SAFETY: rest is valid for its length.
            let n = unsafe { libc::write(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                // The session is over: what is left has no one to read it.
                return;
            }
            rest = &rest[n as usize..];
        }
    }
}

/// Finds the queries in what the terminal shows and answers them as xterm
/// does. Strings (OSC, DCS...) are skipped; a sequence may be cut between
/// two reads.
#[derive(Default)]
struct Answerer {
    /// The control sequence being read, after `ESC [`.
    csi: Option<Vec<u8>>,
    after_escape: bool,
    in_string: bool,
}

impl Answerer {
    fn answer(&mut self, bytes: &[u8], mut reply: impl FnMut(Vec<u8>)) {
        for &b in bytes {
            if self.in_string {
                // Until BEL or ESC \ (the ESC is taken below).
                if b == 0x07 {
                    self.in_string = false;
                } else if b == 0x1b {
                    self.in_string = false;
                    self.after_escape = true;
                }
                continue;
            }
            if self.after_escape {
                self.after_escape = false;
                match b {
                    b'[' => self.csi = Some(Vec::new()),
                    b']' | b'P' | b'X' | b'^' | b'_' => self.in_string = true,
                    b'Z' => reply(DA1.to_vec()),
                    _ => {}
                }
                continue;
            }
            if let Some(csi) = &mut self.csi {
                match b {
                    0x40..=0x7e => {
                        let params = std::mem::take(csi);
                        self.csi = None;
                        if let Some(r) = xterm_reply(&params, b) {
                            reply(r);
                        }
                    }
                    0x1b => {
                        self.csi = None;
                        self.after_escape = true;
                    }
                    0x18 | 0x1a => self.csi = None,
                    _ if csi.len() < 64 => csi.push(b),
                    _ => {}
                }
                continue;
            }
            match b {
                0x1b => self.after_escape = true,
                0x05 => reply(ANSWERBACK.to_vec()),
                _ => {}
            }
        }
    }
}

/// The answerback to ENQ: plain text, not an escape sequence (PuTTY's;
/// xterm's is empty unless configured).
const ANSWERBACK: &[u8] = b"PuTTY";

/// What xterm answers (as a VT420, its default).
const DA1: &[u8] = b"\x1b[?64;1;2;6;9;15;16;17;18;21;22;28c";

fn xterm_reply(params: &[u8], last: u8) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(params);
    match (text.as_ref(), last) {
        ("" | "0", b'c') => Some(DA1.to_vec()),
        ("5", b'n') => Some(b"\x1b[0n".to_vec()),
        ("6", b'n') => Some(b"\x1b[1;1R".to_vec()),
        ("?6", b'n') => Some(b"\x1b[?1;1;1R".to_vec()),
        // DECRQM: every mode reported reset (2).
        (mode, b'p') => {
            let mode = mode.strip_suffix('$')?;
            Some(format!("\x1b[{mode};2$y").into_bytes())
        }
        _ => None,
    }
}

type Answering = Option<(mpsc::Sender<Vec<u8>>, Arc<AtomicUsize>)>;

fn read_all(fd: OwnedFd, transcript: &(Mutex<Shared>, Condvar), answering: Answering) {
    let mut buf = [0u8; 4096];
    let mut answerer = Answerer::default();
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if let (Some((input, replied)), true) = (&answering, n > 0) {
            // Answered before the output is seen: what a test types after
            // seeing it comes after the reply, as on a real terminal.
            answerer.answer(&buf[..n as usize], |r| {
                replied.fetch_add(1, Ordering::SeqCst);
                let _ = input.send(r);
            });
        }
        let (lock, cond) = transcript;
        let mut shared = lock.lock().unwrap_or_else(|p| p.into_inner());
        if n <= 0 {
            shared.closed = true;
            cond.notify_all();
            return;
        }
        shared.bytes.extend_from_slice(&buf[..n as usize]);
        cond.notify_all();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
