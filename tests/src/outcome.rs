//! What one command did: [`execute`] runs it to completion with a liveness
//! guard, and [`Outcome`] holds its status and output, with the assertions
//! the tests make on them.

use std::fmt;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::SECRET_MARK;

/// Set `SLUICE_TEST_TRACE=1` (with `--nocapture`) to print every command's status.
/// Liveness guard only, not a speed assertion: a hung sluice must not hang CI.
const HANG_GUARD: Duration = Duration::from_secs(300);

/// What one command did.
pub struct Outcome {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The exit code; `128 + N` when the process was killed by signal N.
    pub fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => code,
            (None, Some(sig)) => 128 + sig,
            _ => unreachable!("an exit status has a code or a signal"),
        }
    }

    /// The probe's last status line (`OK`, `BLOCKED`, `NOTFOUND`, `ERROR` or
    /// `FAIL`, see the probe's documentation), or "" if there is none.
    pub fn status_line(&self) -> &str {
        const STATUSES: [&str; 5] = ["OK ", "BLOCKED ", "NOTFOUND ", "ERROR ", "FAIL "];
        self.stdout
            .lines()
            .rev()
            .find(|l| STATUSES.iter().any(|s| l.starts_with(s)))
            .unwrap_or("")
    }

    /// The value of a `key=value` word of the status line (the broker race and
    /// flood print their totals that way).
    pub fn field(&self, key: &str) -> Option<&str> {
        self.status_line().split_whitespace().find_map(|word| {
            word.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix('='))
        })
    }

    /// [`Outcome::field`] as a number; panics, showing the outcome, if it is not one.
    #[track_caller]
    pub fn count(&self, key: &str) -> u64 {
        self.field(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number {key}= in the status line\n{self}"))
    }

    /// Exit 3 with a NOTFOUND line: the broker said the file does not exist.
    #[track_caller]
    pub fn assert_not_found(&self) -> &Self {
        assert!(
            self.code() == 3 && self.status_line().starts_with("NOTFOUND "),
            "expected the broker to answer not found (exit 3)\n{self}"
        );
        self.assert_no_secret()
    }

    /// Exit 4 with an ERROR line: the broker failed the request (not a denial).
    #[track_caller]
    pub fn assert_broker_error(&self) -> &Self {
        assert!(
            self.code() == 4 && self.status_line().starts_with("ERROR "),
            "expected the broker to fail the request (exit 4)\n{self}"
        );
        self.assert_no_secret()
    }

    /// The status line contains `text`.
    #[track_caller]
    pub fn assert_says(&self, text: &str) -> &Self {
        assert!(
            self.status_line().contains(text),
            "expected the status line to say {text:?}\n{self}"
        );
        self
    }

    /// sluice (or the program) said `text` on stderr.
    #[track_caller]
    pub fn assert_stderr_says(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "expected stderr to say {text:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.code() == 0 && self.status_line().starts_with("OK "),
            "expected the action to succeed (exit 0, OK)\n{self}"
        );
        self
    }

    /// Exit 1 with a BLOCKED line, and no secret in the output.
    #[track_caller]
    pub fn assert_blocked(&self) -> &Self {
        assert!(
            self.code() == 1 && self.status_line().starts_with("BLOCKED "),
            "expected the attack to be BLOCKED (exit 1)\n{self}"
        );
        self.assert_no_secret()
    }

    #[track_caller]
    pub fn assert_no_secret(&self) -> &Self {
        assert!(
            !self.stdout.contains(SECRET_MARK) && !self.stderr.contains(SECRET_MARK),
            "a secret leaked into the output\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "unexpected exit status\n{self}");
        self
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        writeln!(f, "status:  {} ({})", self.code(), self.status)?;
        writeln!(f, "stdout:\n{}", indent(&self.stdout))?;
        write!(f, "stderr:\n{}", indent(&self.stderr))
    }
}

fn indent(text: &str) -> String {
    if text.is_empty() {
        return "    (empty)".to_owned();
    }
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// Runs `cmd` to completion, capturing stdout and stderr. The caller sets stdin.
pub fn execute(mut cmd: Command) -> Outcome {
    let command = format!("{cmd:?}");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let (tx, rx) = mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for (index, mut pipe) in pipes.into_iter().enumerate() {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut buf = Vec::new();
            pipe.read_to_end(&mut buf).ok();
            tx.send((index, buf)).ok();
        });
    }
    let deadline = Instant::now() + HANG_GUARD;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("{command} did not finish within {HANG_GUARD:?}: hung");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let mut out = [Vec::new(), Vec::new()];
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let (index, buf) = rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!("{command} exited but something it started still holds its output")
        });
        out[index] = buf;
    }
    let [stdout, stderr] = out.map(|b| String::from_utf8_lossy(&b).into_owned());
    let outcome = Outcome {
        command,
        status,
        stdout,
        stderr,
    };
    if std::env::var_os("SLUICE_TEST_TRACE").is_some() {
        eprintln!(
            "[{}] {}\n    => {}",
            outcome.code(),
            outcome.command,
            outcome.status_line()
        );
    }
    outcome
}
