//! Red team 15: the broker, transparent mode, nesting, sessions and what
//! sluice itself shows the person. Each attack with its control (the same
//! action where it is allowed, or outside sluice, or the same text shown
//! where it is already made harmless); `#[ignore = "escape: ..."]` marks
//! one that still works, its reason says how.
//!
//! - What sluice writes on the person's terminal by itself, past the
//!   relay's filter, holds nothing the program chose unescaped: its notices
//!   (what the session's end found in the person's repositories, quoting
//!   lines and names the program wrote; the guard's refusals, quoting a
//!   git configuration's value) and the audit commands' output, JSON views
//!   included. The escaper covers every invisible character that reorders
//!   or hides text, not only the overrides (fixed).
//! - A record planted as a stacked session's names the real session: the
//!   review commands no longer put it under that session (fixed).
//! - Under `--transparent`, an inotify watch on a directory outside the
//!   policy reported the names the person made and opened there; watches
//!   are now made by the supervisor on what the sandbox may read (fixed).
//! - Locks on the person's readable files, and descriptors in flight
//!   counted per user: availability, not fixed (ignored, with controls).

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sluice_tests::audit::{audit, decision_about, json_lines, only_session, records};
use sluice_tests::pty::Terminal;
use sluice_tests::{execute, Fixture, Outcome};

use super::net_hosts::PYTHON;
use super::redteam14b::while_the_program_hoards_lines;

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

/// `python3 -c HOLD_LOCKS FILE RELEASE`: holds a shared `flock` and a POSIX
/// read lock on `FILE`, says so, and keeps them until `RELEASE` exists.
const HOLD_LOCKS: &str = r#"
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_SH)
fcntl.lockf(fd, fcntl.LOCK_SH)
print("locked", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
"#;

/// `python3 -c TRY_LOCKS FILE`: whether the person takes an exclusive
/// `flock` and a write lock on `FILE` now, without waiting.
const TRY_LOCKS: &str = r#"
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for name, take in (("flock", lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)),
                   ("fcntl", lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))):
    try:
        take()
        print(name, "ok")
    except OSError as e:
        print(name, "refused:", e.strerror)
"#;

/// What [`TRY_LOCKS`] says of `target` while [`HOLD_LOCKS`] holds it inside
/// sluice with `args`.
fn locks_while_the_program_holds_them(fx: &Fixture, args: &[&str], target: &Path) -> Outcome {
    let target = target.to_str().unwrap();
    let hoarder = fx.sluice_command(args, &[PYTHON, "-c", HOLD_LOCKS, target]);
    let mut person = Command::new(PYTHON);
    person.args(["-c", TRY_LOCKS, target]);
    let (said, out) =
        while_the_program_hoards_lines(hoarder, 1, person, &fx.ws_dir.join("release"));
    assert_eq!(said, ["locked"], "{out}");
    out
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
    let out = locks_while_the_program_holds_them(&fx, &["--allow-read", &dir], &target);
    assert!(out.stdout.contains("flock ok"), "{out}");
    assert!(out.stdout.contains("fcntl ok"), "{out}");
}

/// Control: the program locks its own workspace files (what SQLite and
/// git need), which the person then cannot lock meanwhile either; once
/// the session ends every lock is gone.
#[test]
fn control_the_program_locks_its_own_files_and_the_locks_end_with_it() {
    let fx = Fixture::new(PROBE);
    let target = fx.ws_dir.join("own.db");
    std::fs::write(&target, "data").unwrap();
    let out = locks_while_the_program_holds_them(&fx, &[], &target);
    assert!(out.stdout.contains("flock refused"), "{out}");
    assert!(out.stdout.contains("fcntl refused"), "{out}");
    let after = execute({
        let mut c = Command::new(PYTHON);
        c.args(["-c", TRY_LOCKS, target.to_str().unwrap()]);
        c
    });
    assert!(after.stdout.contains("flock ok"), "{after}");
    assert!(after.stdout.contains("fcntl ok"), "{after}");
}

/// `python3 -c IN_FLIGHT RELEASE`: puts descriptors in flight, the same
/// one 253 times a datagram on socket pairs nobody reads, until the kernel
/// refuses more; says how many, and keeps them until `RELEASE` exists.
const IN_FLIGHT: &str = r#"
import array, os, socket, sys, time
fd, n, pairs = os.open("/dev/null", os.O_RDONLY), 0, []
try:
    while n < 1_000_000:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        pairs.append((a, b))
        a.setblocking(False)
        while True:
            try:
                a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd] * 253))])
                n += 253
            except BlockingIOError:
                break
except OSError as e:
    pass
print("in flight", n, flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
"#;

/// `python3 -c PASS_ONE`: whether the person passes one descriptor over a
/// socket pair (what a Wayland client, D-Bus, PipeWire and a browser's
/// processes do all the time).
const PASS_ONE: &str = r#"
import array, socket
a, b = socket.socketpair()
try:
    a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0]))])
    print("pass: ok", flush=True)
except OSError as e:
    print("pass:", e.strerror, flush=True)
"#;

/// The kernel counts descriptors in flight in unix sockets per user
/// (`unix_inflight`) and refuses a `sendmsg` with `SCM_RIGHTS` from any
/// process of that user whose `RLIMIT_NOFILE` is below the count
/// (`ETOOMANYREFS`), whatever its namespace. The program, running as the
/// person, puts its `open_files` limit's worth in flight (4,096 under
/// `default`: one descriptor sent 253 times a datagram, nobody reading),
/// and every process of the person's with the usual soft limit of 1,024
/// (`systemd --user`'s services, the desktop's clients) can pass no
/// descriptor while the session runs: a Wayland client's buffers and
/// keymaps, D-Bus's and PipeWire's descriptors. The same class as the epoll
/// watches (`redteam14b`); the fix to weigh is the same, a uid of the
/// sandbox's own (an `open_files` limit under the person's own soft limit
/// would only narrow it). Run as an otherwise unused uid (65532).
#[test]
#[ignore = "escape: descriptors in flight are counted per user; the program takes the person's (a uid of the sandbox's own would fix it)"]
fn the_program_leaves_the_person_descriptors_to_pass() {
    const UID: u32 = 65532;
    let fx = Fixture::new(PROBE);
    fx.give_to(UID, UID);
    let tmp = fx.root().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::os::unix::fs::chown(&tmp, Some(UID), Some(UID)).unwrap();
    let user = |program: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args([format!("--reuid={UID}"), format!("--regid={UID}")])
            .args([
                "--clear-groups",
                "--",
                "sh",
                "-c",
                "ulimit -n 1024 && exec \"$@\"",
                "sh",
            ])
            .args(program)
            .current_dir(&fx.ws_dir)
            .env("HOME", &fx.home_dir)
            .env("TMPDIR", &tmp);
        cmd
    };
    // Control: before, the person passes a descriptor.
    let before = execute(user(&[PYTHON, "-c", PASS_ONE]));
    assert!(before.stdout.contains("pass: ok"), "{before}");
    let sluice = sluice_tests::sluice_bin();
    let mut hoarder = Command::new("setpriv");
    hoarder
        .args([format!("--reuid={UID}"), format!("--regid={UID}")])
        .args(["--clear-groups", "--"])
        .args([
            sluice.to_str().unwrap(),
            "run",
            "--",
            PYTHON,
            "-c",
            IN_FLIGHT,
        ])
        .current_dir(&fx.ws_dir)
        .env("HOME", &fx.home_dir)
        .env("TMPDIR", &tmp);
    let person = user(&[PYTHON, "-c", PASS_ONE]);
    let (said, out) =
        while_the_program_hoards_lines(hoarder, 1, person, &fx.ws_dir.join("release"));
    assert!(said.iter().any(|l| l.starts_with("in flight")), "{said:?}");
    assert!(out.stdout.contains("pass: ok"), "{said:?}\n{out}");
}

/// Control: outside sluice, the same hoarder (as the same user) leaves the
/// person no descriptor to pass, so the attack above is what it claims.
#[test]
fn control_descriptors_in_flight_outside_sluice_stop_the_persons_passing() {
    const UID: u32 = 65531;
    let fx = Fixture::new(PROBE);
    fx.give_to(UID, UID);
    let user = |limit: u32, program: &[&str]| {
        let mut cmd = Command::new("setpriv");
        let script = format!("ulimit -n {limit} && exec \"$@\"");
        cmd.args([format!("--reuid={UID}"), format!("--regid={UID}")])
            .args(["--clear-groups", "--", "sh", "-c", &script, "sh"])
            .args(program)
            .current_dir(&fx.ws_dir);
        cmd
    };
    let hoarder = user(4096, &[PYTHON, "-c", IN_FLIGHT]);
    let person = user(1024, &[PYTHON, "-c", PASS_ONE]);
    let (said, out) =
        while_the_program_hoards_lines(hoarder, 1, person, &fx.ws_dir.join("release"));
    assert!(said.iter().any(|l| l.starts_with("in flight")), "{said:?}");
    assert!(
        out.stdout.contains("pass: Too many references"),
        "{said:?}\n{out}"
    );
}

/// The program plants a "stacked session's" record in its TMPDIR (the
/// outer session keeps it, labelled, when it ends) whose records name the
/// program's own session: a decision about a file it never asked for.
/// `tail`, `stats` and a `--session` selection took each record's session
/// from the record, so the reviewer saw the forged decision among the real
/// session's. Records that name another session than their file's are not
/// that file's (as `verify` says). Controls: the planted file is kept (so
/// the review commands read it), `verify` fails it, and the session's real
/// decision is shown.
#[test]
fn a_planted_record_puts_nothing_under_the_real_sessions_id() {
    let fx = Fixture::with_broker(PROBE);
    let policy = fx.broker_policy(&[]);
    let notes = fx.brokered("allowed/notes.txt");
    let first = fx.brokered_run(&policy, &[], &["broker-read", &notes]);
    first.assert_code(0);
    let earlier = only_session(&fx);
    let line = records(&fx, &earlier)
        .into_iter()
        .find(|r| r["kind"] == "decision")
        .expect("a decision");
    let mut forged = line.clone();
    forged["session"] = "__SESSION__".into();
    forged["path_asked"] = "/forged/by/the/program".into();
    forged["path_opened"] = "/forged/by/the/program".into();
    std::fs::write(fx.ws_dir.join("forged.tmpl"), format!("{forged}\n")).unwrap();
    let plant = "d=\"$TMPDIR/sluice-nested-state/audit\" && mkdir -p \"$d\" && \
                 sed \"s/__SESSION__/$SLUICE_SESSION/\" forged.tmpl > \"$d/0123456789abcdef.jsonl\" && \
                 echo \"planted by $SLUICE_SESSION\" && $0 broker-read \"$1\"";
    let out = execute(fx.sluice_command(
        &["--policy", &policy],
        &["/bin/sh", "-c", plant, &fx.probe_path(), &notes],
    ));
    out.assert_code(0);
    let session = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("planted by "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    // Control: the planted file was kept with the session's records.
    assert!(
        fx.audit_dir().join("0123456789abcdef.jsonl").exists(),
        "{out}"
    );
    for args in [
        vec!["tail"],
        vec!["tail", "--json"],
        vec!["tail", "--session", session.as_str()],
        vec!["stats"],
        vec!["stats", "--json"],
        vec!["show", session.as_str()],
    ] {
        let shown = audit(&fx, &args);
        shown.assert_code(0);
        assert!(
            !shown.stdout.contains("/forged/by/the/program"),
            "audit {args:?} showed the planted decision\n{shown}"
        );
        // Control: the session's own decision is there (not for stats,
        // which counts).
        if args[0] != "stats" {
            assert!(shown.stdout.contains("notes.txt"), "{args:?}\n{shown}");
        }
    }
    // Control: verify fails the planted file.
    let verified = audit(&fx, &["verify", "0123456789abcdef"]);
    verified.assert_code(1);
    assert!(verified.stdout.contains("FAILED"), "{verified}");
}

/// `python3 -c WATCH DIR RELEASE`: watches `DIR` with inotify, says so (or
/// why not), and once `RELEASE` exists prints the names its events named.
const WATCH: &str = r#"
import ctypes, os, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_NONBLOCK)
if libc.inotify_add_watch(fd, sys.argv[1].encode(), 0xfff) < 0:
    print("refused:", os.strerror(ctypes.get_errno()), flush=True)
    sys.exit(0)
print("watching", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
names = set()
try:
    data = os.read(fd, 65536)
except BlockingIOError:
    data = b""
i = 0
while i < len(data):
    _, _, _, n = struct.unpack_from("iIII", data, i)
    names.add(data[i + 16:i + 16 + n].rstrip(b"\0").decode())
    i += 16 + n
print("named:", " ".join(sorted(names)), flush=True)
"#;

/// What [`WATCH`] on `watch` (as the program names it, from the
/// workspace) inside sluice with `args` says, while the person makes and
/// reads `dir/salary-2027.ods` (once the watch is made).
pub(super) fn watched(fx: &Fixture, args: &[&str], watch: &str, dir: &Path) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    let release = fx.ws_dir.join("release");
    let _ = std::fs::remove_file(&release);
    let mut cmd = fx.sluice_command(
        args,
        &[PYTHON, "-c", WATCH, watch, release.to_str().unwrap()],
    );
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let mut said = vec![first.clone()];
    if first == "watching" {
        let file = dir.join("salary-2027.ods");
        std::fs::write(&file, "figures").unwrap();
        std::fs::read(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
    }
    std::fs::write(&release, "").unwrap();
    said.extend(lines.map_while(Result::ok));
    assert!(child.wait().unwrap().success(), "{said:?}");
    said
}

/// Under `--transparent` the host's tree stays in view and Landlock has no
/// right for `inotify_add_watch`: the program watched a directory its
/// policy does not let it read (another project, `~/Documents`, the
/// person's mail) and learnt the name of every file the person made,
/// opened, read or wrote there, as it happened. The supervisor now makes
/// each watch itself, on what the sandbox may read only: the watch is
/// refused (`EACCES`) and recorded, by its name, relative, and through a
/// symlink in the workspace. Without `--transparent` such a directory is
/// not in the program's view at all.
#[test]
fn under_transparent_the_program_cannot_watch_what_it_may_not_read() {
    let fx = Fixture::new(PROBE);
    let private = fx.outside_dir.join("private");
    std::fs::create_dir_all(&private).unwrap();
    std::os::unix::fs::symlink(&private, fx.ws_dir.join("link")).unwrap();
    let relative = "../outside/private".to_owned();
    for watch in [private.to_str().unwrap(), "link", relative.as_str()] {
        let said = watched(&fx, &["--transparent"], watch, &private);
        assert_eq!(said, ["refused: Permission denied"], "{watch}");
    }
    let session = sluice_tests::audit::sessions(&fx).pop().unwrap();
    let refused = records(&fx, &session)
        .into_iter()
        .filter(|r| r["op"] == "watch" && r["decision"] == "denied")
        .count();
    assert_eq!(refused, 1, "the refusal is recorded");
}

/// Controls: under `default` the same watch finds nothing to watch (not in
/// the view); under `--transparent` a watch on the workspace, by its name
/// and relative, names the file made there.
#[test]
fn control_a_watch_names_what_the_policy_lets_the_program_read_and_nothing_outside_its_view() {
    let fx = Fixture::new(PROBE);
    let private = fx.outside_dir.join("private");
    std::fs::create_dir_all(&private).unwrap();
    let said = watched(&fx, &[], private.to_str().unwrap(), &private);
    assert!(said[0].starts_with("refused:"), "{said:?}");
    let own = fx.ws_dir.join("own");
    std::fs::create_dir_all(&own).unwrap();
    for watch in [own.to_str().unwrap(), "own", "./own/../own"] {
        let said = watched(&fx, &["--transparent"], watch, &own);
        assert!(
            said.iter().any(|l| l.contains("salary-2027.ods")),
            "{watch}: {said:?}"
        );
    }
}
