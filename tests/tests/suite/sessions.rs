//! One session cannot touch another, and nothing is left behind.
//!
//! Whether a session lives is decided by its supervisor's `flock` on a record
//! in sluice's state directory (denied to every sandbox); every session
//! directory lives under `$TMPDIR/sluice-<uid>`, which every sandbox sees as a
//! read-only directory holding only its own `tmp/`. The sweep of dead
//! sessions acts only on what a record names.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sluice_tests::{execute, session_cgroups, sluice_bin, Fixture, Outcome};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
const NOBODY: u32 = 65534;

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// The per-user parent of the session directories under `tmp`.
fn sessions_parent(tmp: &Path, uid: u32) -> PathBuf {
    tmp.join(format!("sluice-{uid}"))
}

/// The session ids with a directory under `tmp`'s parent of ours, but `other`.
fn session_dirs(tmp: &Path, other: &str) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(sessions_parent(tmp, euid()))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name != other && !waits(name))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The prefix of a finished session's emptied directory, kept for the next
/// session's (`session_dir::take_spare`): not a session.
const SPARE: &str = ".spare-";

/// Whether `name` is an empty directory a finished session left for the
/// next one: a spare, or the mount point of Python's bytecode cache set
/// aside (`session_dir::set_aside`).
fn waits(name: &str) -> bool {
    name.starts_with(SPARE) || name.starts_with(".aside-")
}

/// The session directories in a sessions parent, without the spares.
fn sessions_in(parent: &Path) -> Vec<String> {
    let mut names = names(parent);
    names.retain(|n| !waits(n));
    names
}

/// The names in `dir` (empty when it does not exist).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Whether `pid` is still a live (not zombie) copy of the probe.
fn probe_alive(pid: &str, probe: &Path) -> bool {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    let needle = probe.as_os_str().as_encoded_bytes();
    cmdline.windows(needle.len()).any(|w| w == needle) && !state.starts_with('Z')
}

/// Waits for the probe's daemon to have written `path`, and returns its pid
/// as the host sees it: what it wrote is its pid in the sandbox's own PID
/// namespace, so it is found by its command line (`daemon PATH`).
fn wait_for_pid(path: &str, sluice: &mut std::process::Child) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let needle = format!("daemon\0{path}\0");
    loop {
        if let Some(inner) = fs::read_to_string(path)
            .ok()
            .filter(|pid| !pid.trim().is_empty())
        {
            // The daemon, not the probe that forked it (same command line):
            // the process whose pid in its innermost namespace is the one
            // written (`NSpid:`'s last field).
            let host = fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|pid| pid.parse::<u32>().is_ok())
                .find(|pid| {
                    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    let status =
                        fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                    let nspid = status
                        .lines()
                        .find_map(|l| l.strip_prefix("NSpid:"))
                        .and_then(|l| l.split_whitespace().last())
                        .unwrap_or("");
                    nspid == inner.trim()
                        && cmdline
                            .windows(needle.len())
                            .any(|w| w == needle.as_bytes())
                });
            if let Some(pid) = host {
                return pid;
            }
        }
        assert!(sluice.try_wait().unwrap().is_none(), "sluice exited early");
        assert!(std::time::Instant::now() < deadline, "no daemon started");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// What a test leaves running, killed when it ends however it ends: sluice
/// processes it started, and daemons (by pid, killed only while they still
/// are the probe).
struct Leftovers<'a> {
    probe: &'a Path,
    sluices: Vec<std::process::Child>,
    daemons: Vec<String>,
}

impl Drop for Leftovers<'_> {
    fn drop(&mut self) {
        // SIGTERM first, so a live session ends as a person's would and
        // removes what it made (its session cgroup among them: a killed
        // one's is swept only through its record, which the fixture's state
        // directory takes with it); SIGKILL if it does not end in time.
        for sluice in &mut self.sluices {
            if let Ok(None) = sluice.try_wait() {
                // SAFETY: kill has no memory arguments.
                unsafe { libc::kill(sluice.id() as libc::pid_t, libc::SIGTERM) };
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while matches!(sluice.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
            let _ = sluice.kill();
            let _ = sluice.wait();
        }
        for pid in &self.daemons {
            if probe_alive(pid, self.probe) {
                // SAFETY: kill has no memory arguments.
                unsafe { libc::kill(pid.parse().unwrap(), libc::SIGKILL) };
            }
        }
    }
}

/// A session under sluice with `TMPDIR=tmp` whose program starts a daemon
/// (its pid written to `pidfile`) and then sleeps.
fn start_daemon_session(fx: &Fixture, tmp: &Path, pidfile: &str) -> std::process::Child {
    let script = format!("\"$0\" daemon {pidfile} && exec sleep 600");
    // A limit below the smallest pid_max: root's is held by a session
    // cgroup, which a killed supervisor leaves behind.
    let policy = fx.write_policy(
        "cgroup.toml",
        "extends = [\"default\"]\n\n[limits]\nprocesses = 64\n",
    );
    let mut cmd = fx.sluice_command(
        &["--policy", &policy],
        &["/bin/sh", "-c", &script, &fx.probe_path()],
    );
    cmd.env("TMPDIR", tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().unwrap()
}

fn private_dir(path: &Path) {
    fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(path)
        .unwrap();
}

/// A supervisor killed with SIGKILL runs no clean-up: its session directory
/// and cgroup stay (the control; a daemon its program left dies with the
/// PID namespace). The next `sluice run` sweeps them: the cgroup, the
/// directory and the record removed. A live session is left alone by the
/// sweep, and so is a directory no record names.
#[test]
fn a_killed_supervisors_session_is_swept_by_the_next_run_and_a_live_one_is_not() {
    let fx = Fixture::new(PROBE);
    let tmp = fx.root().join("tmp");
    let records = fx.state_dir().join("sluice/sessions");
    // A directory by a session's name that no record names (planted, or of
    // another records directory): whether its supervisor lives cannot be
    // told, so it stays.
    let unknown = "00000000000000ff";
    private_dir(&sessions_parent(&tmp, euid()).join(unknown));
    let mut left = Leftovers {
        probe: &fx.probe,
        sluices: vec![start_daemon_session(&fx, &tmp, &fx.ws("killed.pid"))],
        daemons: Vec::new(),
    };
    let killed_daemon = wait_for_pid(&fx.ws("killed.pid"), &mut left.sluices[0]);
    left.daemons.push(killed_daemon.clone());
    let [stale] = <[String; 1]>::try_from(session_dirs(&tmp, unknown)).unwrap();
    assert_eq!(
        names(&records),
        std::slice::from_ref(&stale),
        "the live session's record"
    );
    left.sluices[0].kill().unwrap(); // SIGKILL
    left.sluices[0].wait().unwrap();
    // The sandbox's init dies with its supervisor (its parent-death signal)
    // and the kernel kills the rest of its PID namespace, daemon included.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while probe_alive(&killed_daemon, &fx.probe) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let remains = (
        probe_alive(&killed_daemon, &fx.probe),
        sessions_parent(&tmp, euid()).join(&stale).is_dir(),
        records.join(&stale).is_file(),
        !session_cgroups(&stale).is_empty(),
    );
    assert_eq!(
        remains,
        (false, true, true, true),
        "control: what a killed sluice leaves (its daemon dies with the PID namespace)"
    );

    left.sluices
        .push(start_daemon_session(&fx, &tmp, &fx.ws("live.pid")));
    let live_daemon = wait_for_pid(&fx.ws("live.pid"), &mut left.sluices[1]);
    left.daemons.push(live_daemon.clone());
    assert!(
        !probe_alive(&killed_daemon, &fx.probe),
        "the stale session's daemon {killed_daemon} survived the sweep"
    );
    assert!(
        session_cgroups(&stale).is_empty(),
        "the stale cgroup stayed"
    );
    let [current] = <[String; 1]>::try_from(session_dirs(&tmp, unknown)).unwrap();
    assert_ne!(current, stale, "the stale directory stayed");
    assert_eq!(
        names(&records),
        std::slice::from_ref(&current),
        "the stale record stayed"
    );

    // Another run sweeps again: the live session is untouched.
    let mut cmd = fx.sluice_command(&[], &["true"]);
    cmd.env("TMPDIR", &tmp);
    execute(cmd).assert_code(0);
    assert_eq!(session_dirs(&tmp, unknown), std::slice::from_ref(&current));
    assert!(
        sessions_parent(&tmp, euid()).join(unknown).is_dir(),
        "a directory no record names was swept"
    );
    assert!(probe_alive(&live_daemon, &fx.probe), "the live daemon died");
    assert!(!session_cgroups(&current).is_empty());
    let live = &mut left.sluices[1];
    assert!(live.try_wait().unwrap().is_none(), "the live sluice died");
    // SAFETY: kill has no memory arguments.
    unsafe { libc::kill(live.id() as libc::pid_t, libc::SIGTERM) };
    live.wait().unwrap();
    assert!(
        session_dirs(&tmp, unknown).is_empty(),
        "the live session did not clean up"
    );
    assert!(
        names(&records).is_empty(),
        "the live session left its record"
    );
}

/// What a program tries against session `$2` (whose directories are under
/// `$1`, records in `$3`): each attempt that succeeds prints `BREACH`. It
/// also lists `$1` and writes its own TMPDIR (the controls).
const AGAINST_ANOTHER_SESSION: &str = r#"
P="$1"; A="$2"; R="$3"; PROBE="$4"
try() { if "$@" >/dev/null 2>&1; then echo "BREACH: $*"; fi; }
echo "listing: $(ls -A "$P" 2>/dev/null | tr '\n' ' ')"
echo x > "$TMPDIR/mine" && echo own-tmp-written
try ls "$P/$A"
try test -e "$P/$A/tmp"
try sh -c "echo x > '$P/$A/tmp/planted'"
try cat "$P/$A/private/marker"
try ls "$P/$(basename "$(dirname "$TMPDIR")")/private/veil"
try "$PROBE" read "$P/$A/tmp/secret"
try "$PROBE" symlink / "$P/$A.planted"
try mkdir "$P/0123456789abcdef"
try ls "$R"
try cat "$R/$A"
try sh -c "echo x > '$R/$A'"
try rm "$R/$A"
try "$PROBE" rename "$R" "$R.moved"
try "$PROBE" rename "$P" "$P.moved"
try "$PROBE" rename "$(dirname "$P")" "$(dirname "$P").moved"
try "$PROBE" broker-read "$P/$A/tmp/secret"
try "$PROBE" broker-write "$P/$A/tmp/planted" x --create
"$PROBE" broker-read "$TMPDIR/mine" >/dev/null 2>&1 && echo own-tmp-served
# What an older sluice's sweep trusted: a free lock in `sluice-<id>`.
mkdir -p "$(dirname "$P")/sluice-$A" && : > "$(dirname "$P")/sluice-$A/lock"
"#;

/// The ways a later session could reach another's directory: a writable
/// tree over it, and that with `--approve allow`, `--transparent`, or both.
fn reaching_modes(root: &str) -> [Vec<&str>; 4] {
    let write = ["--allow-write", root];
    let with = |more: &[&'static str]| write.iter().copied().chain(more.iter().copied()).collect();
    [
        write.to_vec(),
        with(&["--approve", "allow"]),
        with(&["--transparent"]),
        with(&["--transparent", "--approve", "allow"]),
    ]
}

/// [`AGAINST_ANOTHER_SESSION`] in a session run with `mode` and `TMPDIR`
/// `tmp`, against the live session `live` under `parent` (its record in
/// `records`): it reaches nothing of it, and writes its own `TMPDIR`.
fn against_another_session(
    fx: &Fixture,
    mode: &[&str],
    tmp: &Path,
    (parent, live, records): (&Path, &str, &Path),
) -> Outcome {
    let args = [
        "/bin/sh",
        "-c",
        AGAINST_ANOTHER_SESSION,
        "sh",
        parent.to_str().unwrap(),
        live,
        records.to_str().unwrap(),
        &fx.probe_path(),
    ];
    let mut cmd = fx.sluice_command(mode, &args);
    cmd.env("TMPDIR", tmp);
    let out = execute(cmd);
    out.assert_code(0);
    assert!(
        !out.stdout.contains("BREACH"),
        "{mode:?}: another session reached\n{out}"
    );
    assert!(
        out.stdout.contains("own-tmp-written"),
        "{mode:?}: control: the program writes its own TMPDIR\n{out}"
    );
    out
}

/// A program with the whole of its TMPDIR's parent writable (as with
/// `--allow-write /tmp`), and sluice's state directory inside what it may
/// write, cannot see another live session's directory, read or write it,
/// nor replace, remove or move the record that says it lives: the next run's
/// sweep leaves that session alone; nor can the broker serve it. In the
/// plain mode and under `--transparent` (no policy-built root), each with
/// and without the broker told to allow everything. Controls: the same script outside sluice, against a
/// copy of the layout, breaches every one of them; inside, the program
/// writes its own TMPDIR and sees itself in the listing.
#[test]
fn a_session_with_tmp_writable_cannot_make_another_live_session_look_dead_nor_reach_its_directory()
{
    let fx = Fixture::new(PROBE);
    let tmp = fx.root().join("tmp");
    let records = fx.state_dir().join("sluice/sessions");
    let parent = sessions_parent(&tmp, euid());
    private_dir(&tmp);
    let mut left = Leftovers {
        probe: &fx.probe,
        sluices: vec![start_daemon_session(&fx, &tmp, &fx.ws("live.pid"))],
        daemons: Vec::new(),
    };
    let daemon = wait_for_pid(&fx.ws("live.pid"), &mut left.sluices[0]);
    left.daemons.push(daemon.clone());
    let [live] = <[String; 1]>::try_from(session_dirs(&tmp, "")).unwrap();
    fs::write(
        parent.join(&live).join("tmp/secret"),
        "SECRET-other-session\n",
    )
    .unwrap();
    let record_before = fs::read(records.join(&live)).unwrap();

    // Control: outside sluice the same attempts succeed, on a copy.
    let decoy = fx.root().join("decoy");
    let (decoy_parent, decoy_records) = (decoy.join("sluice-0"), decoy.join("sessions"));
    private_dir(&decoy_parent.join(&live).join("tmp"));
    private_dir(&decoy_parent.join(&live).join("private/veil"));
    private_dir(&decoy_records);
    fs::write(decoy_parent.join(&live).join("tmp/secret"), "x").unwrap();
    fs::write(decoy_parent.join(&live).join("private/marker"), "x").unwrap();
    fs::write(decoy_records.join(&live), "x").unwrap();
    let mut control = Command::new("/bin/sh");
    control
        .args(["-c", AGAINST_ANOTHER_SESSION, "sh"])
        .args([&decoy_parent, &PathBuf::from(&live), &decoy_records])
        .arg(&fx.probe)
        .env("TMPDIR", decoy_parent.join(&live).join("tmp"))
        .stdin(Stdio::null());
    let control = execute(control);
    let breaches = control.stdout.matches("BREACH").count();
    assert_eq!(
        breaches, 15,
        "control: every attempt works outside\n{control}"
    );

    let root = fx.root().to_str().unwrap().to_owned();
    for mode in reaching_modes(&root) {
        let mode = &mode[..];
        let out = against_another_session(&fx, mode, &tmp, (&parent, &live, &records));
        if mode.contains(&"allow") {
            assert!(
                out.stdout.contains("own-tmp-served"),
                "{mode:?}: control: the broker serves the program's own TMPDIR\n{out}"
            );
        }
        let listing = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("listing: "))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>();
        assert_eq!(
            listing.len(),
            1,
            "{mode:?}: the program sees exactly its own session\n{out}"
        );
        assert_ne!(listing[0], live, "{mode:?}: it sees the other one\n{out}");

        // The next run sweeps: the live session is still alive, whole.
        let mut sweep = fx.sluice_command(&[], &["true"]);
        sweep.env("TMPDIR", &tmp);
        execute(sweep).assert_code(0);
        assert!(
            probe_alive(&daemon, &fx.probe),
            "{mode:?}: the live daemon died"
        );
        assert!(
            left.sluices[0].try_wait().unwrap().is_none(),
            "{mode:?}: the live sluice died"
        );
        assert_eq!(
            session_dirs(&tmp, ""),
            std::slice::from_ref(&live),
            "{mode:?}"
        );
        assert_eq!(
            names(&parent.join(&live).join("tmp")),
            ["pycache", "secret"],
            "{mode:?}"
        );
        assert_eq!(
            fs::read(records.join(&live)).unwrap(),
            record_before,
            "{mode:?}"
        );
    }
    let live_sluice = &mut left.sluices[0];
    // SAFETY: kill has no memory arguments.
    unsafe { libc::kill(live_sluice.id() as libc::pid_t, libc::SIGTERM) };
    live_sluice.wait().unwrap();
    assert!(
        session_dirs(&tmp, "").is_empty(),
        "the session did not clean up"
    );
}

/// `program` as the unprivileged user `nobody`.
fn as_nobody(program: &Path) -> Command {
    let mut cmd = sluice_tests::setpriv_nobody();
    cmd.arg(program).stdin(Stdio::null());
    cmd
}

/// Run by an unprivileged user, a session whose policy denies a directory
/// (its placeholder is mode 000) leaves nothing behind and warns of
/// nothing; and the leftover of that kind from an older sluice (a dead
/// session's `$TMPDIR/sluice-<id>` with a mode-000 `private/deny-dir`) is
/// swept. Control: the denied directory really was covered.
#[test]
fn an_unprivileged_run_leaves_nothing_behind_and_warns_of_nothing() {
    let fx = Fixture::new(PROBE);
    fs::create_dir(fx.ws("secrets")).unwrap();
    fs::write(fx.ws("secrets/key"), "SECRET-dir\n").unwrap();
    fx.give_to(NOBODY, NOBODY);
    let tmp = fx.root().join("tmp-nobody");
    let legacy = tmp.join("sluice-00000000000000aa");
    for dir in [
        fx.state_dir(),
        fx.config_home(),
        legacy.join("private/deny-dir"),
        legacy.join("tmp/a"),
    ] {
        private_dir(&dir);
    }
    fs::write(legacy.join("lock"), "").unwrap();
    for dir in [&tmp, &fx.state_dir(), &fx.config_home()] {
        Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(dir)
            .status()
            .unwrap();
    }
    for dir in [legacy.join("private/deny-dir"), legacy.join("tmp/a")] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o000)).unwrap();
    }
    let policy = fx.write_policy(
        "deny-dir.toml",
        "extends = [\"default\"]\n\n[filesystem]\ndeny = [\"$WORKSPACE/secrets\"]\n",
    );

    let sluice = sluice_bin();
    let mut cmd = as_nobody(&sluice);
    cmd.args(["run", "--policy", &policy, "--workspace", &fx.ws(""), "--"])
        .args([
            "/bin/sh",
            "-c",
            "cat secrets/key 2>/dev/null; echo x > $TMPDIR/y; echo done",
        ])
        .current_dir(fx.ws(""))
        .env("HOME", fx.home(""))
        .env("XDG_STATE_HOME", fx.state_dir())
        .env("XDG_CONFIG_HOME", fx.config_home())
        .env("NO_COLOR", "1")
        .env("TMPDIR", &tmp);
    let out: Outcome = execute(cmd);
    out.assert_code(0);
    assert!(out.stdout.contains("done"), "{out}");
    assert!(
        !out.stdout.contains("SECRET-dir"),
        "control: the denied directory was not covered\n{out}"
    );
    assert!(
        !out.stderr.contains("WARN") && !out.stderr.contains("Permission denied"),
        "a warning\n{out}"
    );
    assert_eq!(names(&tmp), [format!("sluice-{NOBODY}")], "left in TMPDIR");
    let parent = sessions_parent(&tmp, NOBODY);
    assert!(
        sessions_in(&parent).is_empty(),
        "a session directory was left behind"
    );
    // What waits for the next session is an empty directory.
    for spare in names(&parent) {
        assert!(
            names(&parent.join(&spare)).is_empty(),
            "{spare} is not empty"
        );
    }
    assert!(
        names(&fx.state_dir().join("sluice/sessions")).is_empty(),
        "a session record was left behind"
    );
}

/// A live session started with another `$TMPDIR` (so under another parent,
/// which the veil does not cover) is denied to a later session whose policy
/// could write it: the same attempts as above all fail, and the next run's
/// sweep leaves it alone. (The control for each attempt is in the test
/// above.)
#[test]
fn a_live_session_under_another_tmpdir_is_out_of_reach_of_a_later_one() {
    let fx = Fixture::new(PROBE);
    let (tmp, other_tmp) = (fx.root().join("tmp"), fx.root().join("other-tmp"));
    private_dir(&tmp);
    private_dir(&other_tmp);
    let records = fx.state_dir().join("sluice/sessions");
    let mut left = Leftovers {
        probe: &fx.probe,
        sluices: vec![start_daemon_session(&fx, &other_tmp, &fx.ws("live.pid"))],
        daemons: Vec::new(),
    };
    let daemon = wait_for_pid(&fx.ws("live.pid"), &mut left.sluices[0]);
    left.daemons.push(daemon.clone());
    let [live] = <[String; 1]>::try_from(session_dirs(&other_tmp, "")).unwrap();
    let other_parent = sessions_parent(&other_tmp, euid());
    fs::write(other_parent.join(&live).join("tmp/secret"), "SECRET\n").unwrap();

    let root = fx.root().to_str().unwrap().to_owned();
    // The plainest and the widest of the ways.
    let [plain, _, _, widest] = reaching_modes(&root);
    for mode in [plain, widest] {
        let mode = &mode[..];
        let out = against_another_session(&fx, mode, &tmp, (&other_parent, &live, &records));
        assert!(
            out.stdout.contains("listing: \n"),
            "{mode:?}: the other parent is listed\n{out}"
        );
        let mut sweep = fx.sluice_command(&[], &["true"]);
        sweep.env("TMPDIR", &tmp);
        execute(sweep).assert_code(0);
        assert!(probe_alive(&daemon, &fx.probe), "{mode:?}: the daemon died");
        assert_eq!(
            names(&other_parent.join(&live).join("tmp")),
            ["pycache", "secret"],
            "{mode:?}"
        );
    }
}

/// The parent of the session directories is refused, with a message naming
/// it, when it is a symlink (a program that could write `$TMPDIR` before
/// any session ran could plant one to steer sluice's directories and sweep
/// elsewhere) or when others may enter it. Control: the same directory,
/// made ours with mode 0700, is used.
#[test]
fn a_planted_parent_of_the_session_directories_is_refused() {
    let fx = Fixture::new(PROBE);
    let tmp = fx.root().join("tmp");
    let elsewhere = fx.root().join("elsewhere");
    private_dir(&tmp);
    private_dir(&elsewhere);
    let parent = sessions_parent(&tmp, euid());
    let run = || {
        let mut cmd = fx.sluice_command(&[], &["true"]);
        cmd.env("TMPDIR", &tmp);
        execute(cmd)
    };

    std::os::unix::fs::symlink(&elsewhere, &parent).unwrap();
    let out = run();
    assert_ne!(out.code(), 0, "a symlinked parent was used\n{out}");
    assert!(
        out.stderr.contains(parent.to_str().unwrap()),
        "the message does not name it\n{out}"
    );
    assert!(
        names(&elsewhere).is_empty(),
        "sluice wrote through it\n{out}"
    );
    fs::remove_file(&parent).unwrap();

    private_dir(&parent);
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o755)).unwrap();
    let out = run();
    assert_ne!(out.code(), 0, "a parent others may enter was used\n{out}");
    assert!(out.stderr.contains("mode 0700"), "{out}");

    fs::set_permissions(&parent, fs::Permissions::from_mode(0o700)).unwrap();
    run().assert_code(0);
}

/// `sluice policy check` inside a sandbox keeps its throwaway session's
/// record where a stacked sluice keeps its state (the records directory of
/// the person is denied there). Control: it runs outside too.
#[test]
fn policy_check_works_inside_a_sandbox_whose_records_are_denied() {
    let fx = Fixture::new(PROBE);
    let check = "\"$SLUICE_BIN\" policy check default >/dev/null && echo checked";
    let out = execute(fx.sluice_command(&[], &["/bin/sh", "-c", check]));
    out.assert_code(0);
    assert!(out.stdout.contains("checked"), "{out}");
    execute(fx.sluice_cli_command(&["policy", "check", "default"])).assert_code(0);
}

/// What a program tries against the deny placeholders over `secrets` (a
/// directory) and `secret.txt` in `$1`: each attempt that succeeds prints
/// `BREACH`; the same on its own files are the controls. Then it says it is
/// ready and waits (bounded) for `$1/go`.
const AGAINST_PLACEHOLDERS: &str = r#"
W="$1"
try() { if "$@" >/dev/null 2>&1; then echo "BREACH: $*"; fi; }
echo "modes: $(stat -c %a "$W/secrets") $(stat -c %a "$W/secret.txt")"
try cat "$W/secret.txt"
try ls "$W/secrets"
try chmod 755 "$W/secrets"
try chmod 644 "$W/secret.txt"
try sh -c "echo x > '$W/secret.txt'"
try touch "$W/secrets/planted"
chmod 600 "$W/own.txt" && echo own-chmod
echo x > "$W/own.txt" && echo own-write
mkdir "$W/own-dir" && chmod 700 "$W/own-dir" && echo own-dir
: > "$W/ready"
n=0; while [ ! -e "$W/go" ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done
echo waited
"#;

/// The deny placeholders (and the policy-built root's mount point) are made
/// by the child in a tmpfs of its own, not on the host's disk: while a
/// session that denies a directory and a file runs, its directory on the
/// host holds only `tmp/` (the program's TMPDIR), as root and as an
/// unprivileged user. Attack: inside, the placeholders are mode 000 and
/// read-only: reading, listing, chmod, writing and planting all fail.
/// Control: the same on the program's own files succeed.
#[test]
fn the_deny_placeholders_are_in_the_sandboxs_memory_not_on_the_hosts_disk() {
    for nobody in [false, true] {
        let fx = Fixture::new(PROBE);
        fs::create_dir(fx.ws("secrets")).unwrap();
        fs::write(fx.ws("secrets/key"), "SECRET-dir\n").unwrap();
        fs::write(fx.ws("secret.txt"), "SECRET-file\n").unwrap();
        fs::write(fx.ws("own.txt"), "mine\n").unwrap();
        let tmp = fx.root().join("tmp-placeholders");
        private_dir(&tmp);
        let uid = if nobody { NOBODY } else { euid() };
        if nobody {
            private_dir(&fx.state_dir());
            private_dir(&fx.config_home());
            fx.give_to(NOBODY, NOBODY);
            for dir in [&tmp, &fx.state_dir(), &fx.config_home()] {
                let chown = Command::new("chown")
                    .args(["-R", "65534:65534"])
                    .arg(dir)
                    .status()
                    .unwrap();
                assert!(chown.success());
            }
        }
        let policy = fx.write_policy(
            "placeholders.toml",
            "extends = [\"default\"]\n\n[filesystem]\n\
             deny = [\"$WORKSPACE/secrets\", \"$WORKSPACE/secret.txt\"]\n",
        );
        let ws = fx.ws("");
        let program = ["/bin/sh", "-c", AGAINST_PLACEHOLDERS, "sh", ws.as_str()];
        let mut cmd = match nobody {
            false => fx.sluice_command(&["--policy", &policy], &program),
            true => {
                let mut cmd = as_nobody(&sluice_bin());
                cmd.args(["run", "--policy", &policy, "--workspace", &ws, "--"])
                    .args(program)
                    .current_dir(&ws)
                    .env("HOME", fx.home(""))
                    .env("XDG_STATE_HOME", fx.state_dir())
                    .env("XDG_CONFIG_HOME", fx.config_home());
                cmd
            }
        };
        cmd.env("TMPDIR", &tmp)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The program ends by itself within two minutes if the test fails
        // before it writes `go`.
        let mut live = cmd.spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !Path::new(&fx.ws("ready")).exists() {
            assert!(live.try_wait().unwrap().is_none(), "sluice exited early");
            assert!(
                std::time::Instant::now() < deadline,
                "the program never ran"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let parent = sessions_parent(&tmp, uid);
        let ids = sessions_in(&parent);
        assert_eq!(ids.len(), 1, "one session directory: {ids:?}");
        let session = parent.join(&ids[0]);
        let on_disk = names(&session);
        fs::write(fx.ws("go"), "").unwrap();
        let out = live.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let shown = format!("nobody: {nobody}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        assert!(out.status.success(), "{shown}");
        assert_eq!(
            on_disk,
            ["tmp"],
            "the session's directory on the host held more than the program's TMPDIR\n{shown}"
        );
        assert!(stdout.contains("modes: 0 0"), "{shown}");
        assert!(!stdout.contains("BREACH"), "{shown}");
        assert!(!stdout.contains("SECRET"), "{shown}");
        for control in ["own-chmod", "own-write", "own-dir", "waited"] {
            assert!(
                stdout.contains(control),
                "control {control} failed\n{shown}"
            );
        }
        assert!(sessions_in(&parent).is_empty(), "left behind\n{shown}");
    }
}
