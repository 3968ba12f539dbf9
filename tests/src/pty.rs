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

pub struct Terminal {
    master: OwnedFd,
    child: Child,
    transcript: Arc<(Mutex<Shared>, Condvar)>,
    reader: Option<JoinHandle<()>>,
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
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> Terminal {
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
        let reader = {
            let fd = master.try_clone().expect("dup the master");
            let transcript = transcript.clone();
            thread::spawn(move || read_all(fd, &transcript))
        };
        Terminal {
            master,
            child,
            transcript,
            reader: Some(reader),
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

    /// Types `bytes` (in raw mode: `\r` is Enter).
    pub fn send(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            // SAFETY: rest is valid for its length.
            let n =
                unsafe { libc::write(self.master.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            assert!(n > 0, "typing: {}", io::Error::last_os_error());
            rest = &rest[n as usize..];
        }
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

fn read_all(fd: OwnedFd, transcript: &(Mutex<Shared>, Condvar)) {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
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
