//! Red team 15: the broker, transparent mode, nesting, sessions and what
//! sluice itself shows the person. Each attack with its control (the same
//! action where it is allowed, or outside sluice, or the same text shown
//! where it is already made harmless); `#[ignore = "escape: ..."]` marks
//! one that still works, its reason says how.
//!
//! What sluice writes on the person's terminal by itself, past the relay's
//! filter, must hold nothing the program chose unescaped: its notices after
//! the session (what it found in the person's repositories and agents'
//! state, quoting file contents and names the program wrote) and the audit
//! commands' JSON output (`--json`, `--jsonl`, `tail --json`), read in a
//! terminal like the rest. The escaper itself must cover every invisible
//! character that reorders or hides text, not only the overrides.

use serde_json::Value;
use sluice_tests::audit::{audit, decision_about, json_lines, only_session, records};
use sluice_tests::pty::Terminal;
use sluice_tests::{Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

/// What a terminal acts on or reorders by, as the program writes it: an
/// OSC 52 that sets the person's clipboard, a UTF-8 encoded C1 CSI asking
/// for the cursor position (answered into the person's input), a bidi
/// override and an Arabic letter mark (text reordered), a bell.
const PAYLOAD: &str = "x\u{1b}]52;c;cHduZWQ=\u{7}\u{9b}6n\u{202e}hs.live\u{61c}y";

/// The characters of [`PAYLOAD`] that must never reach the terminal raw.
const UNSAFE: [char; 5] = ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\u{61c}'];

#[track_caller]
fn assert_shown_harmless(text: &str, what: &str, out: &Outcome) {
    for c in UNSAFE {
        assert!(
            !text.contains(c),
            "{what} carried {c:?} raw to the person's terminal\n{out}"
        );
    }
}

/// A repository at the workspace's root with one commit.
fn repository(fx: &Fixture) {
    std::fs::write(fx.ws_dir.join("a.txt"), "a\n").unwrap();
    for args in [
        &["init", "-q"][..],
        &["add", "a.txt"],
        &["commit", "-qm", "init"],
    ] {
        fx.git_outside(&fx.ws_dir, args).assert_code(0);
    }
}

/// Writes [`PAYLOAD`] where the session's end quotes what it finds: a line
/// of `.git/info/exclude` (the exclude file moved aside, its lines said), a
/// sparse-checkout pattern, and a replace ref's name in `packed-refs`; as
/// the value of a `core.worktree` the guard refuses during the session,
/// quoting it; and prints it itself, which the relay filters (the control).
const PLANT: &str = r#"
p="$(printf 'x\033]52;c;cHduZWQ=\007\302\2336n\342\200\256hs.live\330\234y')"
printf '%s\n' "$p" >> .git/info/exclude
printf '%s\n' "$p" > .git/info/sparse-checkout
h=$(git rev-parse HEAD)
printf '%s refs/replace/%s\n' "$h" "$p" >> .git/packed-refs
cp .git/config c.new
printf '[core]\n\tworktree = "/%s"\n' "$p" >> c.new
mv c.new .git/config || echo refused
printf 'own output: %s\n' "$p"
echo planted
"#;

/// The session's end says what the program changed in the person's
/// repository (an exclude file, sparse-checkout patterns, a replace ref),
/// quoting what it wrote there, and the guard says during the session why
/// it refused a git configuration, quoting its `core.worktree`. Those
/// notices are sluice's own, written on its stderr, the person's terminal,
/// past the relay that filters the program's output: the program's bytes in them must be shown escaped, or
/// an OSC 52 there sets the person's clipboard and a status query types its
/// answer into their shell, which the relay refuses the program's own
/// output. On a terminal, under `default` and `--transparent`. Controls:
/// the same OSC 52 printed by the program itself never reaches the
/// terminal (the relay's filter), and each notice is still said, with the
/// payload written out.
#[test]
fn sluices_notices_after_the_session_carry_no_program_bytes_to_the_terminal() {
    for args in [&[][..], &["--transparent"]] {
        let fx = Fixture::new(PROBE);
        repository(&fx);
        let mark = fx.outside("ran");
        let cmd = fx.sluice_command(args, &["/bin/sh", "-c", PLANT, "sh", &mark]);
        let mut t = Terminal::spawn(cmd, 24, 200);
        t.expect("planted");
        let done = t.wait();
        let shown = done.transcript;
        assert_eq!(done.code, 0, "{shown:?}");
        assert!(
            !shown.contains("\u{1b}]52;"),
            "{args:?}: an OSC 52 reached the person's terminal: {shown:?}"
        );
        // The program may write its terminal a query or bidi text of its own
        // (the relay follows them); sluice's notices hold none raw.
        for line in shown.lines().filter(|l| l.contains("sluice:")) {
            for c in ['\u{9b}', '\u{7}', '\u{202e}', '\u{61c}'] {
                assert!(!line.contains(c), "{args:?}: {c:?} raw: {line:?}");
            }
        }
        // Control: the notices are there, naming what was written.
        for notice in [
            "an exclude file",
            "sparse-checkout",
            "refs/replace/",
            "core.worktree",
        ] {
            let line = shown
                .lines()
                .find(|l| l.contains(notice))
                .unwrap_or_else(|| panic!("no notice of {notice}: {shown:?}"));
            assert!(line.contains("\\x1b]52;c;cHduZWQ="), "{line:?}");
        }
    }
}

/// What a requester chose (its client name, the path it asks for) is
/// recorded as it is; every way the audit commands print it, the JSON
/// ones included (`show --json`, `show --jsonl`, `tail --json`, `stats
/// --json`), shows it harmless: a C1 CSI, a bidi override or an Arabic
/// letter mark printed raw acts on the reviewer's terminal or makes
/// `evil.sh` read `hs.live`. Control: the JSON still holds the exact text
/// (parsed back, the same string).
#[test]
fn the_audit_commands_json_shows_what_the_requester_chose_harmlessly() {
    let fx = Fixture::with_broker(PROBE);
    let policy = fx.broker_policy(&[]);
    let name = format!("client{PAYLOAD}");
    let path = format!("{}/{PAYLOAD}", fx.ws(""));
    let out = fx.brokered_run(&policy, &[], &["broker-read-as", &name, &path]);
    out.assert_not_found();
    let session = only_session(&fx);
    for args in [
        vec!["show", session.as_str()],
        vec!["show", session.as_str(), "--json"],
        vec!["show", session.as_str(), "--jsonl"],
        vec!["tail"],
        vec!["tail", "--json"],
        vec!["stats"],
        vec!["stats", "--json"],
        vec!["list"],
        vec!["list", "--json"],
        vec!["verify", "--json"],
    ] {
        let shown = audit(&fx, &args);
        shown.assert_code(0);
        assert_shown_harmless(&shown.stdout, &format!("audit {args:?}"), &shown);
    }
    // Control: the exact text, parsed back.
    let all = records(&fx, &session);
    let asked = decision_about(&all, &path);
    assert_eq!(asked["client"], Value::from(name.as_str()));
    let tail = audit(&fx, &["tail", "--json"]);
    assert!(
        json_lines(&tail)
            .iter()
            .any(|r| r["path_asked"] == path.as_str()),
        "{tail}"
    );
    let doc: Value = serde_json::from_str(&audit(&fx, &["show", &session, "--json"]).stdout)
        .expect("one JSON document");
    assert!(
        doc["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["client"] == name.as_str()),
        "{doc}"
    );
}

/// Holds a shared `flock` and a POSIX read lock on `$1`, says so, and keeps
/// them until `$2` exists.
const HOLD_LOCKS: &str = r#"
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_SH)
fcntl.lockf(fd, fcntl.LOCK_SH)
print("locked", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
"#;

/// Whether the person can take an exclusive `flock` and a write lock on
/// `path` now, without waiting: `(flock, fcntl)`.
fn person_can_lock(path: &std::path::Path) -> (bool, bool) {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let fd = file.as_raw_fd();
    // SAFETY: flock on an open descriptor.
    let flock = unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0;
    // SAFETY: lockf on an open descriptor.
    let fcntl = unsafe { libc::lockf(fd, libc::F_TLOCK, 0) } == 0;
    (flock, fcntl)
}

/// Runs [`HOLD_LOCKS`] on `target` inside sluice with `args`; returns
/// whether the person could lock it meanwhile.
fn locks_while_the_program_holds_them(
    fx: &Fixture,
    args: &[&str],
    target: &std::path::Path,
) -> (bool, bool) {
    use std::io::{BufRead, BufReader};
    let go = fx.ws_dir.join("go");
    let target_arg = target.to_str().unwrap();
    let go_arg = go.to_str().unwrap();
    let mut cmd = fx.sluice_command(
        args,
        &["/usr/bin/python3", "-c", HOLD_LOCKS, target_arg, go_arg],
    );
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok);
    let can = person_can_lock(target);
    std::fs::write(&go, "").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(first.as_deref(), Some("locked"), "{status}");
    assert!(status.success(), "{status}");
    can
}

/// A file of the person's that the policy lets the program read (here by
/// `--allow-read`; under `default`, `/etc`, `/usr` and the package caches
/// of the home directory) can be locked by the program, which holds a
/// shared `flock` and a POSIX read lock on it for the whole session: the
/// person's tools that take an exclusive lock on it (a `flock(1)` in a
/// script, a SQLite database's writer, a cache guarded by a lock file)
/// wait or fail until the session ends. Read leases are refused (red team
/// 14); locks are not: the same calls on the program's own files are what
/// SQLite, git's and cargo's locks use, and seccomp cannot tell whose file
/// a descriptor is.
#[test]
#[ignore = "escape: the program locks the person's readable files for the session's length (flock, fcntl read locks); availability only"]
fn the_program_cannot_hold_a_lock_on_the_persons_readable_files() {
    let fx = Fixture::new(PROBE);
    let target = fx.outside_dir.join("shared.db");
    std::fs::write(&target, "data").unwrap();
    let dir = fx.outside_dir.to_str().unwrap().to_owned();
    let can = locks_while_the_program_holds_them(&fx, &["--allow-read", &dir], &target);
    assert_eq!(can, (true, true), "the person's lock was refused");
}

/// Control: the program locks its own workspace files (what SQLite and
/// git need), which the person then cannot lock meanwhile either; once
/// the session ends every lock is gone.
#[test]
fn control_the_program_locks_its_own_files_and_the_locks_end_with_it() {
    let fx = Fixture::new(PROBE);
    let target = fx.ws_dir.join("own.db");
    std::fs::write(&target, "data").unwrap();
    let can = locks_while_the_program_holds_them(&fx, &[], &target);
    assert_eq!(can, (false, false), "the program's locks did not hold");
    assert_eq!(person_can_lock(&target), (true, true));
}
