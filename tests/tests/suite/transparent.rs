//! Transparent brokering end to end (`sluice run --transparent`): unmodified
//! tools (`cat`, `cp`, `git`, `python3`, `sh`) and plain `open` calls from the
//! probe get brokered files without the SDK, through seccomp user
//! notification.
//!
//! Every test has its control: the same command without `--transparent` (or
//! without the broker rule) fails, so a success really came from the broker;
//! and what the broker refuses fails exactly as it does without it. These
//! tests need seccomp user notification with ADDFD (Linux 5.14+) and
//! WAIT_KILLABLE_RECV (5.19+): where it is missing they fail, not skip.
//! Renames, unlinks and rmdirs are in `transparent_names.rs`.

use std::fs;
use std::path::Path;
use std::process::Command;

use sluice_tests::broker::{assert_file, logged_descriptors, DENIED_SECRET, NOTES, UNRULED};
use sluice_tests::{execute, strs, Fixture, Outcome, DOTENV, README, SECRET_MARK};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

pub(super) fn fixture() -> (Fixture, String) {
    sluice_tests::broker::fixture(PROBE)
}

/// `sluice run --policy POLICY [--transparent] -- PROGRAM...`, with the
/// broker logging at debug level.
pub(super) fn run(fx: &Fixture, policy: &str, transparent: bool, program: &[&str]) -> Outcome {
    let mut args = vec!["--policy", policy];
    if transparent {
        args.push("--transparent");
    }
    let mut cmd = fx.sluice_command(&args, program);
    cmd.env("SLUICE_LOG", "supervisor::broker=debug");
    execute(cmd)
}

/// Every decision record of the fixture's sessions, one JSON line each.
pub(super) fn decisions(fx: &Fixture) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir(fx.audit_dir()).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        out.extend(
            text.lines()
                .filter(|l| l.contains("\"kind\":\"decision\""))
                .map(str::to_owned),
        );
    }
    out
}

#[track_caller]
pub(super) fn assert_recorded(fx: &Fixture, via: &str, decision: &str, path: &str) {
    let all = decisions(fx);
    let needle = format!("\"path_opened\":\"{path}\"");
    let found = all.iter().any(|l| {
        l.contains(&format!("\"via\":\"{via}\""))
            && l.contains(&format!("\"decision\":\"{decision}\""))
            && (l.contains(&needle) || l.contains(&format!("\"path_asked\":\"{path}\"")))
    });
    assert!(
        found,
        "no {via} {decision} record for {path} in\n{}",
        all.join("\n")
    );
}

#[test]
fn cat_reads_an_approved_file_outside_the_workspace() {
    let (fx, policy) = fixture();
    let notes = fx.brokered("allowed/notes.txt");
    let out = run(&fx, &policy, true, &["cat", &notes]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, NOTES, "{out}");
    assert_recorded(&fx, "seccomp:openat", "allowed", &notes);
    // Controls: without --transparent the sandbox refuses the same cat, and
    // with it but without the rule the broker does.
    let out = run(&fx, &policy, false, &["cat", &notes]);
    assert_eq!(out.code(), 1, "{out}");
    // Not in the sandbox's view at all without --transparent.
    assert!(out.stderr.contains("No such file or directory"), "{out}");
    let out = run(&fx, "default", true, &["cat", &notes]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(out.stderr.contains("Permission denied"), "{out}");
    assert!(!out.stdout.contains(NOTES.trim()), "{out}");
}

/// A file the broker answers a plain read-only `open` with comes from a
/// read-only mount, so the program cannot change its mode, owner, times or
/// attributes through it (`broker/readonly.rs`). Control: outside sluice
/// the same program changes them.
#[test]
fn a_brokered_read_only_open_cannot_change_the_files_metadata() {
    use std::os::unix::fs::MetadataExt;
    let (fx, policy) = fixture();
    let notes = fx.brokered("allowed/notes.txt");
    let meta = || {
        let m = fs::metadata(&notes).unwrap();
        (m.mode(), m.mtime(), m.mtime_nsec())
    };
    let before = meta();
    let out = run(&fx, &policy, true, &[&fx.probe_path(), "fd-meta", &notes]);
    out.assert_blocked();
    assert_eq!(
        out.stdout.matches("Read-only file system").count(),
        4,
        "{out}"
    );
    assert_eq!(meta(), before, "metadata changed\n{out}");
    assert_recorded(&fx, "seccomp:openat", "allowed", &notes);
    fx.direct(&["fd-meta", &notes]).assert_ok();
    assert_ne!(meta(), before, "the control changed nothing");
}

#[test]
fn transparent_can_be_set_in_the_policy() {
    let (fx, policy) = fixture();
    let text = fs::read_to_string(&policy).unwrap() + "transparent = true\n";
    let policy = fx.write_policy("transparent.toml", &text);
    let notes = fx.brokered("allowed/notes.txt");
    let out = run(&fx, &policy, false, &["cat", &notes]);
    assert_eq!((out.code(), out.stdout.as_str()), (0, NOTES), "{out}");
}

#[test]
fn cp_writes_into_an_approved_directory() {
    let (fx, policy) = fixture();
    let readme = fx.ws("README.md");
    let copy = fx.brokered("writable/copy.txt");
    let out = run(&fx, &policy, true, &["cp", &readme, &copy]);
    assert_eq!(out.code(), 0, "{out}");
    assert_file(&copy, README);
    assert_recorded(&fx, "seccomp:openat", "allowed", &copy);
    // Controls: a read-only rule does not let cp write, nor does the
    // sandbox without --transparent.
    let refused = fx.brokered("allowed/copy.txt");
    let out = run(&fx, &policy, true, &["cp", &readme, &refused]);
    assert_ne!(out.code(), 0, "{out}");
    assert!(!Path::new(&refused).exists(), "cp created {refused}");
    let other = fx.brokered("writable/other.txt");
    let out = run(&fx, &policy, false, &["cp", &readme, &other]);
    assert_ne!(out.code(), 0, "{out}");
    assert!(!Path::new(&other).exists(), "cp created {other}");
}

/// `mkdir` in an approved directory is done by the supervisor (the sandbox
/// alone refuses it: the directory is not one of its write trees), so
/// `cp -r` copies a whole tree there, and a new directory gets the
/// program's mode less its umask. Controls: under a read-only rule, and
/// without --transparent, the same `mkdir` fails as the sandbox has it.
#[test]
fn mkdir_and_cp_r_work_in_an_approved_directory() {
    use std::os::unix::fs::PermissionsExt;
    let (fx, policy) = fixture();
    fs::create_dir_all(fx.ws("tree/sub/deeper")).unwrap();
    fs::write(fx.ws("tree/sub/deeper/f.txt"), "deep\n").unwrap();
    let copy = fx.brokered("writable/tree-copy");
    let out = run(&fx, &policy, true, &["cp", "-r", &fx.ws("tree"), &copy]);
    assert_eq!(out.code(), 0, "{out}");
    assert_file(&format!("{copy}/sub/deeper/f.txt"), "deep\n");
    let made = |via: &str, path: &str| {
        decisions(&fx).iter().any(|l| {
            l.contains(&format!("\"via\":\"{via}\""))
                && l.contains("\"op\":\"mkdir\"")
                && l.contains("\"decision\":\"allowed\"")
                && l.contains(&format!("\"path_opened\":\"{path}\""))
        })
    };
    let sub = format!("{copy}/sub");
    assert!(
        made("seccomp:mkdir", &sub) || made("seccomp:mkdirat", &sub),
        "no mkdir record for {sub}:\n{}",
        decisions(&fx).join("\n")
    );
    // The program's mode less its umask, whatever the supervisor's is.
    let dir = fx.brokered("writable/made");
    let script = format!("umask 027; mkdir '{dir}' && mkdir '{dir}' 2>&1; echo $?");
    let out = run(&fx, &policy, true, &["/bin/sh", "-c", &script]);
    assert!(out.stdout.contains("File exists"), "{out}");
    let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o750, "{out}");
    // Controls.
    for (path, transparent) in [
        (fx.brokered("allowed/made"), true),
        (fx.brokered("writable/other"), false),
    ] {
        let out = run(&fx, &policy, transparent, &["mkdir", &path]);
        assert_ne!(out.code(), 0, "{out}");
        assert!(!Path::new(&path).exists(), "mkdir made {path}");
        // The sandbox's own answer: the host's view is read-only there,
        // and without --transparent no such directory is in view at all.
        let error = match transparent {
            true => "Read-only file system",
            false => "No such file or directory",
        };
        assert!(out.stderr.contains(error), "{out}");
    }
}

/// A file the broker creates for the program gets the program's mode, less
/// the program's umask and nothing else; `O_SYNC` and `O_DSYNC` (which
/// cannot be set after an open) are on the brokered descriptor. The
/// supervisor runs with umask 077 so its own mask would show.
#[test]
fn created_files_get_the_programs_mode_and_sync_flags_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let (fx, policy) = fixture();
    let dir = fx.brokered("writable");
    let script = format!(
        "import os, fcntl\n\
         os.chdir({dir:?})\n\
         os.umask(0o002)\n\
         os.close(os.open('g.txt', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o664))\n\
         os.umask(0o022)\n\
         os.close(os.open('h.txt', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))\n\
         for flag in ('O_SYNC', 'O_DSYNC'):\n\
         \x20   want = getattr(os, flag)\n\
         \x20   fd = os.open('existing.txt', os.O_WRONLY | want)\n\
         \x20   got = fcntl.fcntl(fd, fcntl.F_GETFL)\n\
         \x20   print(flag, 'kept' if got & want == want else 'lost')\n\
         \x20   os.close(fd)\n"
    );
    let py = ["/usr/bin/python3", "-S", "-c", &script];
    let mut cmd = fx.sluice_command(&["--policy", &policy, "--transparent"], &py);
    // SAFETY: umask is async-signal-safe and touches only this process.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let out = execute(cmd);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "O_SYNC kept\nO_DSYNC kept\n", "{out}");
    let mode = |name: &str| {
        fs::metadata(Path::new(&dir).join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("g.txt"), 0o664);
    assert_eq!(mode("h.txt"), 0o644);
    assert_recorded(
        &fx,
        "seccomp:openat",
        "allowed",
        &fx.brokered("writable/g.txt"),
    );
}

pub(super) fn git(dir: &Path, args: &[&str]) {
    let out = execute({
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(dir).args(args);
        cmd.env("GIT_CONFIG_NOSYSTEM", "1").env("HOME", dir);
        cmd.stdin(std::process::Stdio::null());
        cmd
    });
    assert_eq!(out.code(), 0, "{out}");
}

#[test]
fn git_status_works_in_a_repository_approved_read_only() {
    let (fx, _) = fixture();
    let repo = fx.root().join("repo");
    fs::create_dir_all(repo.join("src")).unwrap();
    fs::write(repo.join("src/lib.rs"), "pub fn f() {}\n").unwrap();
    fs::write(repo.join("README"), "repo\n").unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    let who = ["-c", "user.name=t", "-c", "user.email=t@example.com"];
    git(&repo, &[&who[..], &["commit", "-qm", "first"]].concat());
    fs::write(repo.join("src/lib.rs"), "pub fn g() {}\n").unwrap();
    fs::write(repo.join("new.txt"), "untracked\n").unwrap();
    let repo_s = repo.to_str().unwrap();
    let policy = fx.write_policy(
        "git.toml",
        &format!("extends = [\"default\"]\n[broker]\nallow = [{repo_s:?}]\n"),
    );
    let status = ["git", "-C", repo_s, "status", "--porcelain"];
    let out = run(&fx, &policy, true, &status);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, " M src/lib.rs\n?? new.txt\n", "{out}");
    // Control: without --transparent git cannot read the repository.
    let out = run(&fx, &policy, false, &status);
    assert_ne!(out.code(), 0, "{out}");
    assert!(!out.stdout.contains("src/lib.rs"), "{out}");
}

#[test]
fn scripts_open_through_relative_paths_and_directory_descriptors() {
    let (fx, policy) = fixture();
    let allowed = fx.brokered("allowed");
    let script = format!(
        "import os\n\
         os.chdir({allowed:?})\n\
         print(open('notes.txt').read(), end='')\n\
         d = os.open('.', os.O_RDONLY | os.O_DIRECTORY)\n\
         f = os.open('same.txt', os.O_RDONLY, dir_fd=d)\n\
         print(os.read(f, 100).decode(), end='')\n\
         try:\n\
         \x20   open('../denied/secret.txt').read()\n\
         \x20   print('LEAK')\n\
         except PermissionError:\n\
         \x20   print('refused')\n"
    );
    let py = ["/usr/bin/python3", "-S", "-c", &script];
    let out = run(&fx, &policy, true, &py);
    assert_eq!(out.code(), 0, "{out}");
    let expected = format!("{NOTES}{}refused\n", sluice_tests::broker::ALLOWED_SAME);
    assert_eq!(out.stdout, expected, "{out}");
    // The shell's relative path, through its working directory.
    let sh = format!("cd {allowed} && cat notes.txt ../unruled/other.txt");
    let out = run(&fx, &policy, true, &["sh", "-c", &sh]);
    assert_eq!(out.stdout, NOTES, "{out}");
    assert!(out.stderr.contains("Permission denied"), "{out}");
    assert!(!out.stdout.contains(UNRULED.trim()), "{out}");
    // The probe's openat with a brokered directory descriptor.
    let probe = fx.probe_path();
    let out = run(
        &fx,
        &policy,
        true,
        &[&probe, "openat-dirfd", &allowed, "notes.txt"],
    );
    out.assert_ok();
    // Control: without --transparent none of it works.
    let out = run(&fx, &policy, false, &py);
    assert_ne!(out.code(), 0, "{out}");
    let out = run(
        &fx,
        &policy,
        false,
        &[&probe, "openat-dirfd", &allowed, "notes.txt"],
    );
    out.assert_blocked();
}

/// The supervisor remembers each thread's working directory between calls;
/// every way a program changes it must be seen. Each round moves between
/// the workspace (the sandbox's) and a brokered directory, by `chdir`,
/// `fchdir`, from another thread and in a forked child, and opens a
/// relative path that only the new directory has. A remembered directory
/// left over from before a change sends the brokered open to the kernel,
/// which refuses it.
#[test]
fn relative_opens_follow_every_change_of_working_directory() {
    let (fx, policy) = fixture();
    let allowed = fx.brokered("allowed");
    let ws = fx.ws("");
    let script = format!(
        "import os, threading\n\
         A, W = {allowed:?}, {ws:?}\n\
         fa = os.open(A, os.O_RDONLY | os.O_DIRECTORY)\n\
         fw = os.open(W, os.O_RDONLY | os.O_DIRECTORY)\n\
         def check(where):\n\
         \x20   if where == 'A':\n\
         \x20       assert open('notes.txt').read().startswith('brokered'), 'A'\n\
         \x20   else:\n\
         \x20       assert open('README.md').read(), 'W'\n\
         def other_thread(path):\n\
         \x20   t = threading.Thread(target=os.chdir, args=(path,))\n\
         \x20   t.start(); t.join()\n\
         for i in range(150):\n\
         \x20   os.chdir(W); check('W')\n\
         \x20   os.chdir(A); check('A')\n\
         \x20   os.fchdir(fw); check('W')\n\
         \x20   os.fchdir(fa); check('A')\n\
         \x20   other_thread(W); check('W')\n\
         \x20   other_thread(A); check('A')\n\
         \x20   os.chdir(W); check('W')\n\
         \x20   pid = os.fork()\n\
         \x20   if pid == 0:\n\
         \x20       check('W'); os.chdir(A); check('A'); os._exit(0)\n\
         \x20   assert os.waitpid(pid, 0)[1] == 0, 'child'\n\
         \x20   check('W')\n\
         print('ok')\n"
    );
    let py = ["/usr/bin/python3", "-S", "-c", &script];
    let out = run(&fx, &policy, true, &py);
    assert_eq!((out.code(), out.stdout.as_str()), (0, "ok\n"), "{out}");
    // Control: without the broker the brokered directory's file is refused.
    let out = run(&fx, &policy, false, &py);
    assert!(!out.stdout.contains("ok"), "{out}");
    assert_ne!(out.code(), 0, "{out}");
}

#[test]
fn refused_files_fail_as_landlock_would_in_the_hosts_view() {
    let (fx, policy) = fixture();
    let probe = fx.probe_path();
    let paths = [
        fx.brokered("denied/secret.txt"),
        fx.brokered("denied/missing.txt"),
        fx.brokered("unruled/other.txt"),
        fx.brokered("unruled/missing.txt"),
        fx.brokered("no-such-dir/file"),
        fx.ws(".env"),
        fx.home(".ssh/id_rsa"),
        fx.outside("secret.txt"),
    ];
    // Without --transparent these paths are not even in the sandbox's view
    // (the policy-built root); with it the host's tree is, so the answer to
    // compare with is Landlock's there: EACCES for a file that exists,
    // ENOENT for one that does not. Nothing more is revealed.
    for path in &paths {
        let exists = Path::new(path).exists();
        let expected = if exists { "EACCES" } else { "ENOENT" };
        let with = run(&fx, &policy, true, &[&probe, "read", path]);
        with.assert_blocked().assert_no_secret();
        assert!(with.stdout.contains(expected), "{path}: {with}");
        let before = fs::read(path).ok();
        let write = run(&fx, &policy, true, &[&probe, "write", path]);
        write.assert_blocked();
        assert_eq!(fs::read(path).ok(), before, "{path} changed: {write}");
    }
    assert_recorded(
        &fx,
        "seccomp:openat",
        "denied",
        &fx.brokered("denied/secret.txt"),
    );
    // Control: the probe reads what the broker allows, and what the sandbox does.
    run(
        &fx,
        &policy,
        true,
        &[&probe, "read", &fx.brokered("allowed/notes.txt")],
    )
    .assert_ok();
    run(&fx, &policy, true, &[&probe, "read", &fx.ws("README.md")]).assert_ok();
    assert!(DOTENV.contains(SECRET_MARK) && DENIED_SECRET.contains(SECRET_MARK));
}

#[test]
fn swapping_the_path_while_it_is_checked_never_opens_a_refused_file() {
    let (fx, policy) = fixture();
    let probe = fx.probe_path();
    // Cycled by one thread while another opens: a file the sandbox allows
    // (left to the kernel), one the broker allows (opened by the broker),
    // one the broker denies and one under [filesystem] deny.
    let readme = fx.ws("README.md");
    let notes = fx.brokered("allowed/notes.txt");
    let denied = fx.brokered("denied/secret.txt");
    let dotenv = fx.ws(".env");
    let args = [
        &probe,
        "open-race",
        &readme,
        &notes,
        &denied,
        &dotenv,
        "4000",
    ];
    let out = run(&fx, &policy, true, &args);
    out.assert_ok().assert_no_secret();
    // Control: both allowed files were opened in the race, and the denied
    // ones are readable outside the sandbox (so "never" means something).
    let line = out.status_line();
    assert!(line.contains(&README.escape_debug().to_string()), "{out}");
    assert!(line.contains(&NOTES.escape_debug().to_string()), "{out}");
    fx.direct(&["read", &denied]).assert_ok();
    fx.direct(&["read", &dotenv]).assert_ok();
}

#[test]
fn a_program_killed_mid_call_leaves_the_supervisor_whole() {
    let (fx, policy) = fixture();
    let probe = fx.probe_path();
    let notes = fx.brokered("allowed/notes.txt");
    // The reference: one brokered open, same policy and mode.
    let reference = run(&fx, &policy, true, &[&probe, "read", &notes]);
    reference.assert_ok();
    let reference = logged_descriptors(&reference);
    for _ in 0..3 {
        let out = run(&fx, &policy, true, &[&probe, "open-and-die", &notes, "4"]);
        assert_eq!(out.code(), 128 + libc::SIGKILL, "{out}");
        assert!(!out.stderr.contains("still in progress"), "{out}");
        let got = logged_descriptors(&out);
        assert_eq!(got.leaked, 0, "{out}");
        assert_eq!(got, reference, "{out}");
    }
    // The record is whole: every session verifies.
    let mut cmd = fx.sluice_cli_command(&["audit", "verify"]);
    cmd.env("SLUICE_LOG", "warn");
    let verify = execute(cmd);
    assert_eq!(verify.code(), 0, "{verify}");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn the_32_bit_open_is_killed_not_brokered() {
    let (fx, policy) = fixture();
    let probe = fx.probe_path();
    let notes = fx.brokered("allowed/notes.txt");
    let out = run(&fx, &policy, true, &[&probe, "int80-open", &notes]);
    assert_eq!(out.code(), 128 + libc::SIGSYS, "{out}");
    assert!(!out.stdout.contains(NOTES.trim()), "{out}");
    // Control: the 64-bit open of the same file is brokered, and outside
    // the sandbox the 32-bit open works.
    run(&fx, &policy, true, &[&probe, "read", &notes]).assert_ok();
    fx.direct(&["int80-open", &notes]).assert_ok();
}

/// Issue 13, section 1, with the program's own calls: a directory it opens
/// with a plain `open` (outside its policy, so brokered: asked, and
/// `--approve allow` says yes) is served from the sandbox's own view. What
/// is beneath it is still judged file by file, whatever the way to it
/// (`openat`, an `O_PATH` descriptor reopened), and `fchdir` then `..`
/// reaches no socket outside the policy, nor a file the broker refuses.
/// (A file the broker grants is served wherever the climb ends: that is the
/// broker's answer, not a way out.) Controls: the brokered file beneath it,
/// and the same calls outside sluice.
#[test]
fn a_directory_the_program_opens_through_the_broker_gives_nothing_the_policy_withholds() {
    let fx = Fixture::new(PROBE);
    let outside = fx.outside_dir.join("docker.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&outside).unwrap();
    let home = fx.home("");
    let beneath = |rest: &[&str]| -> Vec<String> {
        ["dir-beneath", "open", home.as_str()]
            .iter()
            .chain(rest)
            .map(|s| s.to_string())
            .collect()
    };
    let attacks: [&[&str]; 5] = [
        &["openat", ".ssh/id_rsa"],
        &["opath", ".ssh/id_rsa"],
        &["opath", ".aws/credentials"],
        &["climb-connect", "1", "outside/docker.sock"],
        &["climb-read", "1", "home/.ssh/id_rsa"],
    ];
    for rest in attacks {
        fx.direct(&strs(&beneath(rest))).assert_ok();
    }
    let args = ["--transparent", "--approve", "allow"];
    fx.sluice(&args, &strs(&beneath(&["openat", "notes.txt"])))
        .assert_ok()
        .assert_says("home-notes");
    for rest in attacks {
        fx.sluice(&args, &strs(&beneath(rest))).assert_blocked();
    }

    // A directory the policy denies inside the workspace, which the broker's
    // rules would serve (`allow_write = ["$WORKSPACE"]`): the sandbox sees
    // a placeholder there, so it is not served as a directory, and an
    // `O_PATH` descriptor beneath it (which Landlock never checks) cannot
    // be reopened into the file.
    fs::create_dir(fx.ws_dir.join("secrets")).unwrap();
    fs::write(fx.ws_dir.join("secrets/key"), "SECRET-workspace-key\n").unwrap();
    let policy = fx.write_policy(
        "deny-secrets.toml",
        "extends = [\"default\"]\n\n[filesystem]\ndeny = [\"$WORKSPACE/secrets\"]\n",
    );
    let secrets = fx.ws("secrets");
    let probe = fx.probe_path();
    let beneath = |rest: &[&str]| -> Vec<String> {
        [probe.as_str(), "dir-beneath", "open", secrets.as_str()]
            .iter()
            .chain(rest)
            .map(|s| s.to_string())
            .collect()
    };
    fx.direct(&strs(&beneath(&["opath", "key"])[1..]))
        .assert_ok();
    for transparent in [false, true] {
        let out = run(
            &fx,
            &policy,
            transparent,
            &strs(&beneath(&["opath", "key"])),
        );
        out.assert_blocked();
        // Through the SDK too.
        let mut action = vec![&probe, "dir-beneath", "broker", &secrets, "opath", "key"];
        let out = run(&fx, &policy, transparent, &action);
        out.assert_blocked();
        action[5] = "../README.md";
        let out = run(&fx, &policy, transparent, &action);
        // Refused before any rule: the broker never serves what
        // `[filesystem] deny` hides.
        out.assert_blocked()
            .assert_says("(the policy's [filesystem] deny)");
    }
}
